"""The online engine: asyncio workers per teacher, rate-limited, retried, budgeted, every result in the ledger.

For each job (one planned request):
1. wait for the teacher's rate limiter (requests/min, tokens/min), send with a per-request timeout;
2. transient errors (5xx, timeouts, connection errors, a reply body cut off mid-JSON, any unexpected exception from
   the SDK) retry with exponential backoff and full jitter, up to `max_retries`, waiting at least the server's
   Retry-After. A 429 does not spend that budget: it lowers the teacher's sending rate (AIMD, `ratelimit.py`) and
   the request waits its turn again (up to `RATE_LIMITED_ATTEMPTS` times);
3. judge the reply pair by pair (`outcome.judge`: one pair, or several with `distill.pairs_per_request`); a reply
   with unusable pairs is written to the ledger as an `attempt` (it was paid for, its good pairs are kept) and ONE
   repair request asks for the bad pairs only; the second verdict is final;
4. write ONE `done` line (each pair or its failure reason, usage with cached input apart, dollars) and move the
   progress bar, which shows dollars spent and the projected total.

The budget (`budget.py`, `distill.max_cost_usd`) is checked before every new request. Each request is judged on
its own, so one teacher's expensive requests do not stop another teacher's cheaper ones. A reply that runs longer
than expected may still push the total slightly over the cap. Unsent work stays unsent; rerunning resumes.

The pool of workers, the watchdog and the orderly stop on SIGINT/SIGTERM are in `pool.py`. An exception in one job
never kills its worker: it becomes an `error` line (retried by the next run). A fatal error (bad key, unknown model)
stops everything and surfaces as one SlmError.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from slm_datagen.distill.budget import Budget
from slm_datagen.distill.estimate import Projection
from slm_datagen.distill.ledger import Ledger
from slm_datagen.distill.outcome import (
    MAX_REPLY_IN_LEDGER,
    Paid,
    Verdict,
    attempt_fields,
    done_fields,
    failed_indices,
    judge,
    merge,
    repair_conversation,
    resumed,
)
from slm_datagen.distill.parse import ReplyProblem
from slm_datagen.distill.plan import PlannedRequest, shape_for
from slm_datagen.distill.pricing import Price, estimate_output_tokens
from slm_datagen.distill.prompts import Prompt
from slm_datagen.distill.ratelimit import RateLimiter
from slm_datagen.distill.teachers import Teacher, TeacherError, TeacherReply, key_env_name, redact
from slm_forest.config import TeacherConfig
from slm_forest.errors import SlmError
from slm_forest.progress import ProgressTask

# A 429 is "not now", not a failure: the limiter slows down and the request queues again. This only bounds a server
# that refuses one request forever while answering others (a stuck account limit ends in the watchdog instead).
RATE_LIMITED_ATTEMPTS = 50


@dataclass
class Job:
    planned: PlannedRequest
    prompt: Prompt


@dataclass
class TeacherRuntime:
    index: int
    cfg: TeacherConfig
    label: str
    teacher: Teacher
    limiter: RateLimiter
    price: Price
    batch: bool = False


@dataclass
class EngineStats:
    ok: int = 0
    failed: int = 0
    errors: int = 0  # not completed (retries exhausted, or an unexpected exception); retried by the next run
    skipped_budget: int = 0
    repaired: int = 0
    http_retries: int = 0
    rate_limited: int = 0
    rate_decreases: int = 0  # AIMD: times a 429 storm cut a teacher's sending rate
    reasons: Counter = field(default_factory=Counter)
    per_teacher: dict[str, dict[str, float]] = field(default_factory=dict)

    def _entry(self, label: str) -> dict[str, float]:
        return self.per_teacher.setdefault(
            label, {"requests": 0, "input_tokens": 0, "cached_input_tokens": 0, "output_tokens": 0, "cost_usd": 0.0}
        )

    def add_usage(self, label: str, input_tokens: int, output_tokens: int, cost: float, cached: int = 0) -> None:
        entry = self._entry(label)
        entry["input_tokens"] += input_tokens
        entry["cached_input_tokens"] += cached
        entry["output_tokens"] += output_tokens
        entry["cost_usd"] += cost

    def count_request(self, label: str) -> None:
        self._entry(label)["requests"] += 1


class Stopped(Exception):
    """Raised inside a job when the run is stopping (signal, watchdog, fatal error): nothing more is sent."""


class _GiveUp(Exception):
    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


def backoff_delay(
    attempt: int, retry_after: float | None, *, base: float = 0.5, cap: float = 60.0, rng: random.Random | None = None
) -> float:
    """Full-jitter exponential backoff, never shorter than the server's Retry-After."""
    rng = rng or random
    ceiling = min(cap, base * (2**attempt))
    delay = rng.uniform(0.0, ceiling)
    if retry_after is not None:
        delay = max(delay, retry_after + rng.uniform(0.0, min(1.0, 0.1 * max(retry_after, 1.0))))
    return delay


class Engine:
    def __init__(
        self,
        runtimes: list[TeacherRuntime],
        ledger: Ledger,
        budget: Budget,
        progress: ProgressTask | None = None,
        *,
        backoff_base: float = 0.5,
    ) -> None:
        self.runtimes = {rt.index: rt for rt in runtimes}
        self.ledger = ledger
        self.budget = budget
        self.progress = progress
        self.backoff_base = backoff_base
        self.stats = EngineStats()
        self.rng = random.Random()
        self.resend: set[str] = set()  # done-but-failed keys to ask again (`--retry-failures`)
        self.stopping = False  # no new request is sent once set (signal, watchdog, fatal error)
        self.stop_event = asyncio.Event()
        self.sending: set[asyncio.Task | None] = set()  # workers with a request in flight right now
        self.last_progress = time.monotonic()  # any ledger line written (the watchdog's clock)
        self.last_error = ""  # the latest failed attempt, for the watchdog's message
        self.projection: Projection | None = None  # the projected total shown in the progress bar

    # ------------------------------------------------------------------------------------------------- one call
    def check_stop(self) -> None:
        if self.stopping:
            raise Stopped()

    async def _wait(self, seconds: float) -> None:
        """Sleep (a backoff), but wake up when the run stops: nothing was sent, so nothing is lost."""
        self.check_stop()
        if seconds > 0:
            try:
                await asyncio.wait_for(self.stop_event.wait(), timeout=seconds)
            except asyncio.TimeoutError:
                pass
        self.check_stop()

    async def _send(self, rt: TeacherRuntime, messages: list[dict[str, str]], key: str, job: Job) -> TeacherReply:
        """The one await during which a request is in flight (paid if answered): the pool waits for these on stop."""
        task = asyncio.current_task()
        self.sending.add(task)
        try:
            shape = shape_for(rt.cfg, job.planned, job.prompt.kinds)
            return await asyncio.wait_for(rt.teacher.complete(messages, key, shape), timeout=rt.cfg.timeout_s + 5.0)
        finally:
            self.sending.discard(task)

    async def _call(
        self, rt: TeacherRuntime, job: Job, messages: list[dict[str, str]], *, repair: bool = False
    ) -> TeacherReply:
        est_in = job.planned.input_tokens_est
        reserve_out = rt.cfg.max_tokens * len(job.planned.pairs)
        failures = rate_limited = 0
        last = "no attempt made"
        while True:
            self.check_stop()
            await rt.limiter.acquire(est_in, reserve_out)
            self.check_stop()  # the limiter may have waited long: a stop meanwhile sends nothing more
            retry_after: float | None = None
            was_rate_limited = False
            try:
                reply = await self._send(rt, messages, job.planned.key + (":repair" if repair else ""), job)
            except TeacherError as exc:
                rt.limiter.settle(est_in, reserve_out, 0, 0)
                rt.limiter.observe(exc.headers, rate_limited=exc.rate_limited, retry_after=exc.retry_after)
                if exc.kind == "fatal":
                    raise self._fatal(rt, exc) from None
                if exc.kind == "rejected":
                    raise _GiveUp("bad_request", str(exc)) from None
                last, retry_after, was_rate_limited = str(exc), exc.retry_after, exc.rate_limited
            except asyncio.TimeoutError:
                rt.limiter.settle(est_in, reserve_out, 0, 0)
                last = f"no reply within {rt.cfg.timeout_s:.0f}s"
            except Exception as exc:  # noqa: BLE001 - e.g. JSONDecodeError from a cut body: a retry, never a crash
                rt.limiter.settle(est_in, reserve_out, 0, 0)
                last = redact(f"{type(exc).__name__}: {exc}", rt.teacher.secrets)[:500]
            else:
                rt.limiter.settle(est_in, reserve_out, reply.input_tokens, reply.output_tokens)
                rt.limiter.observe(reply.headers)
                return reply
            self.last_error = last
            if was_rate_limited:
                rate_limited += 1
                self.stats.rate_limited += 1
                if rate_limited >= RATE_LIMITED_ATTEMPTS:
                    raise _GiveUp("http_error", f"gave up after {rate_limited} rate-limited attempts: {last}")
                # The limiter now sends slower; this request only waits what the server asked (or a short, growing
                # backoff when it said nothing), without spending the retry budget.
                await self._wait(backoff_delay(min(rate_limited, 5), retry_after, base=0.25, rng=self.rng))
                continue
            failures += 1
            if failures > rt.cfg.max_retries:
                raise _GiveUp("http_error", f"gave up after {failures} attempts: {last}")
            self.stats.http_retries += 1
            await self._wait(backoff_delay(failures - 1, retry_after, base=self.backoff_base, rng=self.rng))

    def _fatal(self, rt: TeacherRuntime, exc: TeacherError) -> SlmError:
        if exc.code == "insufficient_quota":
            return SlmError(
                f"distill teacher {rt.label}: the account's quota is used up (429 insufficient_quota)",
                "add credit or raise the account's limit, then rerun: completed requests are not paid again",
            )
        if exc.status in (401, 403):
            return SlmError(
                f"distill teacher {rt.label}: the API key was rejected ({exc.status})",
                f"check the key in the environment variable {key_env_name(rt.cfg)}",
            )
        return SlmError(
            f"distill teacher {rt.label}: {exc}",
            "check distill.teachers[].model and base_url (the model or endpoint does not exist)",
        )

    # -------------------------------------------------------------------------------------------------- one job
    def paid(self, rt: TeacherRuntime, reply: TeacherReply) -> Paid:
        """What one reply cost, from its usage (cached and cache-written input at their own prices)."""
        cost = rt.price.cost(
            reply.input_tokens,
            reply.output_tokens,
            batch=rt.batch,
            cached_tokens=reply.cached_tokens,
            cache_write_tokens=reply.cache_write_tokens,
            cache_write_1h_tokens=reply.cache_write_1h_tokens,
        )
        self.stats.add_usage(rt.label, reply.input_tokens, reply.output_tokens, cost, reply.cached_tokens)
        written = (reply.cache_write_tokens, reply.cache_write_1h_tokens)
        return Paid(reply.input_tokens, reply.output_tokens, cost, reply.cached_tokens, *written)

    def expected_cost(self, rt: TeacherRuntime, job: Job) -> float:
        """What the budget reserves for a request: no cache discount assumed, the expected reply per pair."""
        out = sum(estimate_output_tokens(style, rt.cfg.max_tokens) for _, style in job.planned.pairs)
        return rt.price.cost(job.planned.input_tokens_est, out, batch=rt.batch)

    def _row(self, rt: TeacherRuntime, job: Job, **extra: Any) -> dict[str, Any]:
        p = job.planned
        row = {
            "key": p.key,
            "teacher": rt.cfg.provider,
            "model": rt.cfg.model,
            "prompt_version": p.prompt_version,
            "chunk_id": p.chunk_id,
            "audience": p.audience,
            "style": p.style,
        }
        return {**row, **extra}

    def judge(self, job: Job, reply: TeacherReply, indices: list[int] | None = None) -> list[Verdict]:
        return judge(
            job.planned, job.prompt, reply.text, truncated=reply.truncated, refusal=reply.refusal, indices=indices
        )

    async def process(self, rt: TeacherRuntime, job: Job) -> None:
        key = job.planned.key
        if self.ledger.is_done(key) and key not in self.resend:
            return
        expected = self.expected_cost(rt, job)
        if not await self.budget.reserve(expected):
            self.stats.skipped_budget += 1
            return
        held = [expected]  # the reservation this job still holds (released on any exit)
        try:
            await self._process(rt, job, expected, held)
        finally:
            if held[0]:
                self.budget.settle(held[0], 0.0)

    def _spend(self, held: list[float], actual: float) -> None:
        self.budget.settle(held[0], actual)
        held[0] = 0.0

    async def _process(self, rt: TeacherRuntime, job: Job, expected: float, held: list[float]) -> None:
        previous = self.ledger.index.attempts.get(job.planned.key)
        if previous is not None:  # resumed: the first reply was paid for and had bad pairs; go to the repair
            verdicts, bad_text, paid = resumed(job.planned, previous)
        else:
            self.stats.count_request(rt.label)
            try:
                reply = await self._call(rt, job, job.prompt.as_list())
            except _GiveUp as exc:
                self._give_up(rt, job, exc, Paid(), None)
                return
            paid = self.paid(rt, reply)
            self._spend(held, paid.cost_usd)
            verdicts = self.judge(job, reply)
            if not failed_indices(verdicts):
                self._done(rt, job, verdicts, paid, attempts=1, reply=reply.text or "")
                return
            bad_text = (reply.text or "")[:MAX_REPLY_IN_LEDGER]
            self.last_progress = time.monotonic()
            self.ledger.append(
                self._row(rt, job, type="attempt", **attempt_fields(job.planned, verdicts, paid, bad_text))
            )
            # The repair is a new request: it needs budget like any other (a resumed run picks it up).
            self.check_stop()
            if not await self.budget.reserve(expected):
                self.stats.skipped_budget += 1
                return
            held[0] = expected
        self.stats.count_request(rt.label)
        messages = repair_conversation(job.planned, job.prompt, verdicts, bad_text)
        try:
            reply = await self._call(rt, job, messages, repair=True)
        except _GiveUp as exc:
            self._give_up(rt, job, exc, paid, verdicts)
            return
        repair_paid = self.paid(rt, reply)
        self._spend(held, repair_paid.cost_usd)
        final = merge(verdicts, self.judge(job, reply, failed_indices(verdicts)))
        self.stats.repaired += len(failed_indices(verdicts)) - len(failed_indices(final))
        self._done(rt, job, final, paid + repair_paid, attempts=2, reply=reply.text or "")

    def _done(self, rt, job, verdicts: list[Verdict], paid: Paid, *, attempts: int, reply: str, **extra) -> None:
        fields = done_fields(job.planned, verdicts, paid, attempts, reply)
        self.ledger.append(self._row(rt, job, type="done", **fields, **extra))
        for verdict in verdicts:
            if isinstance(verdict, ReplyProblem):
                self.stats.failed += 1
                self.stats.reasons[verdict.reason] += 1
            else:
                self.stats.ok += 1
        self._advance(job, paid)

    def _give_up(self, rt, job, exc: _GiveUp, paid: Paid, verdicts: list[Verdict] | None) -> None:
        if exc.reason == "bad_request":  # the provider refused this exact request: final, never resent
            problem = ReplyProblem("bad_request", exc.detail[:1000])
            kept = [problem] * len(job.planned.pairs) if verdicts is None else verdicts
            final = [problem if isinstance(v, ReplyProblem) else v for v in kept]
            self._done(rt, job, final, paid, attempts=1 if verdicts is None else 2, reply="")
            return
        # out of retries: not completed, the next run tries again (from the repair, when a first reply was paid)
        self.ledger.append(self._row(rt, job, type="error", reason=exc.reason, detail=exc.detail[:1000]))
        self.stats.errors += 1
        self.stats.reasons[exc.reason] += 1
        self._advance(job, paid)

    def record_crash(self, rt: TeacherRuntime, job: Job, exc: BaseException) -> None:
        """An exception nobody foresaw (a bug, an SDK surprise): this job is an `error` line, the worker lives on."""
        detail = redact(f"unexpected {type(exc).__name__}: {exc}", rt.teacher.secrets)[:1000]
        self.ledger.append(self._row(rt, job, type="error", reason="internal_error", detail=detail))
        self.stats.errors += 1
        self.stats.reasons["internal_error"] += 1
        self._advance(job)

    def _advance(self, job: Job, paid: Paid | None = None) -> None:
        self.last_progress = time.monotonic()
        if self.projection is not None:
            self.projection.finished(job.planned.key, paid.cost_usd if paid is not None else 0.0)
        if self.progress is not None:
            self.progress.advance(1, cost_usd=self.budget.spent_usd)
            if self.projection is not None:
                self.progress.update(description=self.projection.label(self.budget.total_usd))

    async def run(self, jobs: Iterable[Job], control: RunControl | None = None) -> EngineStats:
        """Feed `jobs` (a lazy iterable is fine) to one worker pool per teacher; return when all are settled."""
        from slm_datagen.distill.pool import run_pool

        return await run_pool(self, jobs, control or RunControl())


@dataclass
class RunControl:
    """How a run ends when it cannot finish: the watchdog, the stop deadline, and what happened."""

    stall_timeout_s: float = 600.0  # no ledger line for this long: stop with a clear error
    grace_s: float = 30.0  # on SIGINT/SIGTERM, how long requests in flight may take to come back
    signal: str | None = None  # SIGINT / SIGTERM once asked to stop
    stalled: bool = False
    abandoned: int = 0  # requests still in flight at the deadline: cancelled, so they may be paid again
    in_flight_at_stop: int = 0


def make_runtime(index: int, cfg: TeacherConfig, api_key: str, price: Price, *, batch: bool = False) -> TeacherRuntime:
    limiter = RateLimiter(
        requests_per_minute=cfg.requests_per_minute,
        tokens_per_minute=cfg.tokens_per_minute,
        input_tokens_per_minute=cfg.input_tokens_per_minute,
        output_tokens_per_minute=cfg.output_tokens_per_minute,
        split_tokens=cfg.provider == "anthropic",
    )
    return TeacherRuntime(index, cfg, f"{cfg.provider}:{cfg.model}", Teacher(cfg, api_key), limiter, price, batch)


__all__ = ["Budget", "Engine", "EngineStats", "Job", "RunControl", "Stopped", "TeacherRuntime", "backoff_delay"]
__all__ += ["make_runtime"]
