"""The online engine: asyncio workers per teacher, rate-limited, retried, budgeted, every result in the ledger.

For each job (one planned request):
1. wait for the teacher's rate limiter (requests/min, tokens/min), send with a per-request timeout;
2. transient errors (429, 5xx, timeouts) retry with exponential backoff and full jitter, waiting at least the
   server's Retry-After; a teacher drowning in 429s pauses as a whole (see `ratelimit.py`);
3. check the reply (`parse.parse_reply`); a bad reply is written to the ledger as an `attempt` (it was paid for)
   and retried ONCE with a repair instruction; the second verdict is final;
4. write ONE `done` line (pair or failure reason, usage, dollars) and move the progress bar.

The budget (`distill.max_cost_usd`) caps the dataset's total teacher spend: it starts from what the ledger already
records as paid (earlier runs, all teachers) and is checked before every new request, counting what the requests in
flight are expected to cost. A request that does not fit only because of requests in flight waits for them to
settle (they usually cost less than reserved); it is left unsent only when the money already spent leaves less than
its expected cost. Each request is judged on its own, so one teacher's expensive requests do not stop another
teacher's cheaper ones. A reply that runs longer than expected may still push the total slightly over the cap.
Unsent work stays unsent; rerunning (with a higher cap) resumes.
A fatal error (bad key, unknown model) cancels everything and surfaces as one SlmError.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from slm_datagen.distill.ledger import Ledger
from slm_datagen.distill.parse import ReplyProblem, parse_reply
from slm_datagen.distill.plan import PlannedRequest
from slm_datagen.distill.pricing import Price, estimate_output_tokens
from slm_datagen.distill.prompts import Prompt, repair_messages
from slm_datagen.distill.ratelimit import RateLimiter
from slm_datagen.distill.teachers import Teacher, TeacherError, TeacherReply, key_env_name
from slm_forest.config import TeacherConfig
from slm_forest.errors import SlmError
from slm_forest.progress import ProgressTask

MAX_REPLY_IN_LEDGER = 4000  # characters of a bad reply kept for the repair call and for reading failures


@dataclass
class Job:
    planned: PlannedRequest
    prompt: Prompt


@dataclass
class Budget:
    """Dollars: a cap on the dataset's total spend, what earlier runs and this run paid, what is in flight."""

    max_usd: float | None
    spent_before_usd: float = 0.0  # paid before this run, as the ledger records it
    spent_usd: float = 0.0  # paid in this run
    reserved_usd: float = 0.0  # expected cost of the requests in flight
    stopped: bool = False  # some request was left unsent because the budget could not cover it
    _waiters: list[asyncio.Future] = field(default_factory=list, repr=False)

    # Reservations are sums of floats: below this, nothing is in flight (a waiter must never wait on rounding dust).
    _EPSILON = 1e-9

    @property
    def total_usd(self) -> float:
        return self.spent_before_usd + self.spent_usd

    def _fits(self, expected_usd: float) -> bool:
        assert self.max_usd is not None
        return self.total_usd + self.reserved_usd + expected_usd <= self.max_usd + self._EPSILON

    def try_reserve(self, expected_usd: float) -> bool:
        """Reserve now or refuse (batch mode, where everything reserved is in flight together)."""
        if self.max_usd is None or self._fits(expected_usd):
            self.reserved_usd += expected_usd
            return True
        self.stopped = True
        return False

    async def reserve(self, expected_usd: float) -> bool:
        """Reserve, waiting while requests in flight hold the room; False when the spent money leaves too little."""
        while True:
            if self.max_usd is None or self._fits(expected_usd):
                self.reserved_usd += expected_usd
                return True
            if self.reserved_usd <= self._EPSILON or self.total_usd + expected_usd > self.max_usd + self._EPSILON:
                self.stopped = True
                return False
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            await waiter

    def settle(self, expected_usd: float, actual_usd: float) -> None:
        self.reserved_usd = max(0.0, self.reserved_usd - expected_usd)
        if self.reserved_usd <= self._EPSILON:
            self.reserved_usd = 0.0
        self.spent_usd += actual_usd
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)


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
    errors: int = 0  # not completed (retries exhausted); retried by the next run
    skipped_budget: int = 0
    repaired: int = 0
    http_retries: int = 0
    rate_limited: int = 0
    reasons: Counter = field(default_factory=Counter)
    per_teacher: dict[str, dict[str, float]] = field(default_factory=dict)

    def add_usage(self, label: str, input_tokens: int, output_tokens: int, cost: float) -> None:
        entry = self.per_teacher.setdefault(
            label, {"requests": 0, "input_tokens": 0, "output_tokens": 0, "cost_usd": 0.0}
        )
        entry["input_tokens"] += input_tokens
        entry["output_tokens"] += output_tokens
        entry["cost_usd"] += cost

    def count_request(self, label: str) -> None:
        self.per_teacher.setdefault(label, {"requests": 0, "input_tokens": 0, "output_tokens": 0, "cost_usd": 0.0})
        self.per_teacher[label]["requests"] += 1


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

    # ------------------------------------------------------------------------------------------------- one call
    async def _call(
        self, rt: TeacherRuntime, job: Job, messages: list[dict[str, str]], *, repair: bool = False
    ) -> TeacherReply:
        est_in = job.planned.input_tokens_est
        reserve_out = rt.cfg.max_tokens
        last = "no attempt made"
        for attempt in range(rt.cfg.max_retries + 1):
            await rt.limiter.acquire(est_in, reserve_out)
            try:
                reply = await asyncio.wait_for(
                    rt.teacher.complete(messages, job.planned.key + (":repair" if repair else "")),
                    timeout=rt.cfg.timeout_s + 5.0,
                )
            except TeacherError as exc:
                rt.limiter.settle(est_in, reserve_out, 0, 0)
                rt.limiter.observe(exc.headers, rate_limited=exc.rate_limited, retry_after=exc.retry_after)
                if exc.kind == "fatal":
                    raise self._fatal(rt, exc) from None
                if exc.kind == "rejected":
                    raise _GiveUp("bad_request", str(exc)) from None
                last = str(exc)
                self.stats.http_retries += 1
                self.stats.rate_limited += int(exc.rate_limited)
                await asyncio.sleep(backoff_delay(attempt, exc.retry_after, base=self.backoff_base, rng=self.rng))
                continue
            except asyncio.TimeoutError:
                rt.limiter.settle(est_in, reserve_out, 0, 0)
                last = f"no reply within {rt.cfg.timeout_s:.0f}s"
                self.stats.http_retries += 1
                await asyncio.sleep(backoff_delay(attempt, None, base=self.backoff_base, rng=self.rng))
                continue
            rt.limiter.settle(est_in, reserve_out, reply.input_tokens, reply.output_tokens)
            rt.limiter.observe(reply.headers)
            return reply
        raise _GiveUp("http_error", f"gave up after {rt.cfg.max_retries + 1} attempts: {last}")

    def _fatal(self, rt: TeacherRuntime, exc: TeacherError) -> SlmError:
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
    def _cost(self, rt: TeacherRuntime, reply: TeacherReply) -> float:
        return rt.price.cost(reply.input_tokens, reply.output_tokens, batch=rt.batch)

    def expected_cost(self, rt: TeacherRuntime, job: Job) -> float:
        out = estimate_output_tokens(job.planned.style, rt.cfg.max_tokens)
        return rt.price.cost(job.planned.input_tokens_est, out, batch=rt.batch)

    def _row(self, rt: TeacherRuntime, job: Job, **extra: Any) -> dict[str, Any]:
        p = job.planned
        return {
            "key": p.key,
            "teacher": rt.cfg.provider,
            "model": rt.cfg.model,
            "prompt_version": p.prompt_version,
            "chunk_id": p.chunk_id,
            "audience": p.audience,
            "style": p.style,
            **extra,
        }

    def _verdict(self, job: Job, reply: TeacherReply):
        return parse_reply(
            reply.text,
            audience=job.planned.audience,
            style=job.planned.style,
            truncated=reply.truncated,
            refusal=reply.refusal,
            allowed_kinds=job.prompt.kinds,
        )

    async def process(self, rt: TeacherRuntime, job: Job) -> None:
        key = job.planned.key
        if self.ledger.is_done(key):
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
        key = job.planned.key
        previous = self.ledger.index.attempts.get(key)
        if previous is not None:  # resumed: the first reply was paid for and failed its checks; go to the repair
            problem = ReplyProblem(previous.get("reason", "schema"), previous.get("detail", ""))
            bad_text = previous.get("reply", "")
            usage_in = int(previous.get("usage", {}).get("input_tokens", 0))
            usage_out = int(previous.get("usage", {}).get("output_tokens", 0))
            cost = float(previous.get("usage", {}).get("cost_usd", 0.0))
        else:
            self.stats.count_request(rt.label)
            try:
                reply = await self._call(rt, job, job.prompt.as_list())
            except _GiveUp as exc:
                self._give_up(rt, job, exc, 0, 0, 0.0)
                return
            cost = self._cost(rt, reply)
            self._spend(held, cost)
            self.stats.add_usage(rt.label, reply.input_tokens, reply.output_tokens, cost)
            usage_in, usage_out = reply.input_tokens, reply.output_tokens
            verdict = self._verdict(job, reply)
            if not isinstance(verdict, ReplyProblem):
                self._done_ok(rt, job, verdict, usage_in, usage_out, cost, attempts=1)
                return
            problem, bad_text = verdict, (reply.text or "")[:MAX_REPLY_IN_LEDGER]
            self.ledger.append(
                self._row(
                    rt,
                    job,
                    type="attempt",
                    reason=problem.reason,
                    detail=problem.detail,
                    reply=bad_text,
                    usage=_usage(usage_in, usage_out, cost),
                )
            )
            # The repair is a new request: it needs budget like any other (a resumed run picks it up).
            if not await self.budget.reserve(expected):
                self.stats.skipped_budget += 1
                return
            held[0] = expected
        self.stats.count_request(rt.label)
        messages = repair_messages(job.prompt, problem.reason, bad_text, problem.detail)
        try:
            reply = await self._call(rt, job, messages, repair=True)
        except _GiveUp as exc:
            self._give_up(rt, job, exc, usage_in, usage_out, cost)
            return
        repair_cost = self._cost(rt, reply)
        self._spend(held, repair_cost)
        self.stats.add_usage(rt.label, reply.input_tokens, reply.output_tokens, repair_cost)
        usage_in += reply.input_tokens
        usage_out += reply.output_tokens
        cost += repair_cost
        verdict = self._verdict(job, reply)
        if isinstance(verdict, ReplyProblem):
            detail = f"{verdict.detail} (after one repair; first reply: {problem.reason}: {problem.detail})"
            self.ledger.append(
                self._row(
                    rt,
                    job,
                    type="done",
                    status="failed",
                    reason=verdict.reason,
                    detail=detail[:1000],
                    reply=(reply.text or "")[:MAX_REPLY_IN_LEDGER],
                    usage=_usage(usage_in, usage_out, cost),
                    attempts=2,
                )
            )
            self.stats.failed += 1
            self.stats.reasons[verdict.reason] += 1
            self._advance()
            return
        self.stats.repaired += 1
        self._done_ok(rt, job, verdict, usage_in, usage_out, cost, attempts=2)

    def _done_ok(self, rt, job, draft, usage_in, usage_out, cost, *, attempts: int) -> None:
        self.ledger.append(
            self._row(
                rt,
                job,
                type="done",
                status="ok",
                pair=draft.model_dump(mode="json"),
                usage=_usage(usage_in, usage_out, cost),
                attempts=attempts,
            )
        )
        self.stats.ok += 1
        self._advance()

    def _give_up(self, rt, job, exc: _GiveUp, usage_in: int, usage_out: int, cost: float) -> None:
        if exc.reason == "bad_request":  # the provider refused this exact request: final, never resent
            self.ledger.append(
                self._row(
                    rt,
                    job,
                    type="done",
                    status="failed",
                    reason="bad_request",
                    detail=exc.detail[:1000],
                    usage=_usage(usage_in, usage_out, cost),
                    attempts=1,
                )
            )
            self.stats.failed += 1
        else:  # out of retries: not completed, the next run tries again
            self.ledger.append(self._row(rt, job, type="error", reason=exc.reason, detail=exc.detail[:1000]))
            self.stats.errors += 1
        self.stats.reasons[exc.reason] += 1
        self._advance()

    def _advance(self) -> None:
        if self.progress is not None:
            self.progress.advance(1, cost_usd=self.budget.spent_usd)

    # ------------------------------------------------------------------------------------------------- the pool
    async def run(self, jobs: Iterable[Job]) -> EngineStats:
        """Feed `jobs` (a lazy iterable is fine) to one worker pool per teacher; return when all are settled."""
        queues: dict[int, asyncio.Queue] = {
            index: asyncio.Queue(maxsize=2 * rt.cfg.max_concurrency) for index, rt in self.runtimes.items()
        }
        failure: list[BaseException] = []

        async def worker(rt: TeacherRuntime, queue: asyncio.Queue) -> None:
            while True:
                job = await queue.get()
                try:
                    if job is None:
                        return
                    if failure:
                        continue
                    await self.process(rt, job)
                except SlmError as exc:
                    failure.append(exc)
                finally:
                    queue.task_done()

        workers = [
            asyncio.create_task(worker(rt, queues[index]))
            for index, rt in self.runtimes.items()
            for _ in range(rt.cfg.max_concurrency)
        ]
        try:
            for job in jobs:
                if failure:
                    break
                # No shortcut on `budget.stopped`: a request that did not fit says nothing about the next one, which
                # may be cheaper or belong to another teacher. Each is judged by `Budget.reserve` in its worker.
                await queues[job.planned.teacher_index].put(job)
            for index, rt in self.runtimes.items():
                for _ in range(rt.cfg.max_concurrency):
                    await queues[index].put(None)
            await asyncio.gather(*workers)
        finally:
            for task in workers:
                task.cancel()
            await asyncio.gather(*workers, return_exceptions=True)
        if failure:
            raise failure[0]
        return self.stats


def _usage(input_tokens: int, output_tokens: int, cost: float) -> dict[str, Any]:
    return {"input_tokens": input_tokens, "output_tokens": output_tokens, "cost_usd": round(cost, 8)}


def make_runtime(index: int, cfg: TeacherConfig, api_key: str, price: Price, *, batch: bool = False) -> TeacherRuntime:
    limiter = RateLimiter(
        requests_per_minute=cfg.requests_per_minute,
        tokens_per_minute=cfg.tokens_per_minute,
        input_tokens_per_minute=cfg.input_tokens_per_minute,
        output_tokens_per_minute=cfg.output_tokens_per_minute,
        split_tokens=cfg.provider == "anthropic",
    )
    return TeacherRuntime(index, cfg, f"{cfg.provider}:{cfg.model}", Teacher(cfg, api_key), limiter, price, batch)


__all__ = ["Budget", "Engine", "EngineStats", "Job", "TeacherRuntime", "backoff_delay", "make_runtime"]
