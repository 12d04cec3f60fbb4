"""Teacher requests made by the checks of `build` (judge, second teacher) and `evaluate` (judge), paid once.

They go through the same parts as distill's requests, reused rather than copied:

- the ledger (`distill/ledger.py`): one fsync'ed JSON line per finished request, keyed by the sha256 of what was
  sent (`plan.request_key`: provider, model, prompt version, messages, parameters). A key with a `done` line is
  answered from the ledger and costs nothing, so a rebuild, a `--force` or a rerun after a kill never pays twice
  for a request it already recorded. Each stage keeps its own ledger in its own folder (`build/judge_ledger.jsonl`,
  `evaluate/judge_ledger.jsonl`); it is not a stage output (its bytes change the dataset in no way), so it is not
  in the manifest's outputs and downstream fingerprints do not move when only the ledger grew.
- prices (`distill/pricing.py`, with the run's `distill.prices` overrides: one price table for the whole run);
- the budget (`distill/budget.py`): `build.max_cost_usd` / `evaluate.max_cost_usd` cap everything that stage's
  ledger records as paid, over all runs. A request that does not fit is not sent; the caller stops with one line;
- the async SDK adapters (`distill/teachers.py`, SDK retries off) with the rate limiter (`distill/ratelimit.py`) and
  the engine's backoff: transient failures (5xx, timeouts, cut bodies) are retried up to the teacher's
  `max_retries`, a 429 slows the limiter down and waits its turn; a refused key or an unknown model (401/403/404)
  stops the stage with an SlmError naming the config key; a 400-class refusal of one request is recorded as a
  failed `done` line (never resent, like distill's `bad_request`).

A request still failing after its retries becomes an `error` line: the pair is left unjudged, counted, and the next
run asks again. Requests in flight when the process is killed may be paid again (their replies were never recorded).
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from slm_datagen.distill.budget import Budget
from slm_datagen.distill.engine import RATE_LIMITED_ATTEMPTS, backoff_delay
from slm_datagen.distill.ledger import Ledger
from slm_datagen.distill.plan import request_key
from slm_datagen.distill.pricing import PRICES_AS_OF, Price, estimate_prompt_tokens, price_under_cap
from slm_datagen.distill.ratelimit import RateLimiter
from slm_datagen.distill.schema import RequestShape
from slm_datagen.distill.teachers import Teacher, TeacherError, TeacherReply, key_env_name, redact
from slm_forest.config import TeacherConfig
from slm_forest.errors import SlmError
from slm_forest.progress import progress_bar

JUDGE_LEDGER_NAME = "judge_ledger.jsonl"


@dataclass(frozen=True)
class CheckRequest:
    """One request of a check: `item` names what it is about (a pair id, an answer id) in the ledger line."""

    item: str
    messages: list[dict[str, str]]
    shape: RequestShape
    prompt_version: str
    expected_output_tokens: int  # what the budget reserves for the reply before it is known


@dataclass
class CheckReply:
    text: str | None
    truncated: bool
    usage: dict[str, Any]
    from_ledger: bool
    error: str = ""  # set when the request failed (refused, out of retries): no reply to read


def _failed(reason: str) -> CheckReply:
    return CheckReply(None, False, {}, False, error=reason[:300])


@dataclass
class CheckSpend:
    """What one check used, for the card (dataset numbers) and the manifest (this run's numbers).

    `replies`, tokens and `cost_usd` describe the replies the result is made of, whether paid now or by an earlier
    run, so they are the same on every rebuild; `sent` and `cost_usd_this_run` are what this run paid."""

    role: str
    provider: str
    model: str
    price: Price | None
    replies: int = 0
    from_ledger: int = 0
    sent: int = 0
    errors: int = 0
    transient: int = 0  # out of retries (an `error` line): a plain rerun asks again
    not_sent: int = 0  # left unsent because the budget could not cover them
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    cost_usd_this_run: float = 0.0
    spent_before_usd: float = 0.0
    last_error: str = ""
    scores: dict[int, int] = field(default_factory=dict)  # the judge's verdicts, score -> pairs

    def add(self, reply: CheckReply) -> None:
        self.replies += 1
        self.from_ledger += int(reply.from_ledger)
        self.input_tokens += int(reply.usage.get("input_tokens", 0))
        self.output_tokens += int(reply.usage.get("output_tokens", 0))
        self.cost_usd += float(reply.usage.get("cost_usd", 0.0))
        if not reply.from_ledger:
            self.cost_usd_this_run += float(reply.usage.get("cost_usd", 0.0))

    def fail(self, message: str) -> None:
        self.errors += 1
        self.last_error = message[:300]

    def summary(self) -> dict[str, Any]:
        """The run-independent numbers (build_info.json, the card): a cached rebuild writes the same bytes."""
        out: dict[str, Any] = {
            "provider": self.provider,
            "model": self.model,
            "requests": self.replies,
            "errors": self.errors,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cost_usd": round(self.cost_usd, 6),
        }
        if self.price is None:
            out["cost_note"] = "no price known for this model: cost not counted (set distill.prices)"
        if self.scores:
            out["scores"] = {str(k): v for k, v in sorted(self.scores.items())}
        if self.last_error:
            out["last_error"] = self.last_error
        return out

    def this_run(self) -> dict[str, Any]:
        """This run's numbers, for the manifest stats and the summary line."""
        return {
            "sent": self.sent,
            "from_ledger": self.from_ledger,
            "not_sent": self.not_sent,
            "retry_on_rerun": self.transient,
            "cost_usd_this_run": round(self.cost_usd_this_run, 6),
            "ledger_total_usd": round(self.spent_before_usd + self.cost_usd_this_run, 6),
            "prices_as_of": PRICES_AS_OF,
        }


class _GiveUp(Exception):
    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


def _teacher_config(cfg: TeacherConfig, role: str) -> TeacherConfig:
    if cfg.provider == "offline":
        raise SlmError(
            f"{role}.provider is 'offline': the offline teacher cannot judge or answer freely",
            f"set {role}.provider to openai, anthropic or openai_compatible (or {role}: null)",
        )
    # Checks are asked at temperature 0: the same question gets the same verdict, and the ledger key says so.
    return cfg.model_copy(update={"temperature": 0.0})


def _api_key(cfg: TeacherConfig, role: str) -> str:
    env = key_env_name(cfg)
    key = os.environ.get(env, "").strip()
    if key:
        return key
    if cfg.provider == "openai_compatible" and cfg.api_key_env is None:
        return "not-needed"  # local servers accept any key
    raise SlmError(
        f"{role} ({cfg.provider}:{cfg.model}) needs an API key in the environment variable {env}, which is not set",
        f"export {env}=... (or set {role}.api_key_env to the variable that holds it)",
    )


def check_key(cfg: TeacherConfig, role: str, request: CheckRequest) -> str:
    """The ledger key of a check request: the sha256 of what is sent (as distill's `plan.request_key`). Pure, so the
    review page finds the judge's verdict on a pair without a key or a client."""
    sent = _teacher_config(cfg, role)
    params = {
        "role": role,
        "schema": request.shape.schema,
        "max_tokens": request.shape.max_tokens or sent.max_tokens,
        "temperature": sent.temperature,
    }
    return request_key(sent, request.prompt_version, request.messages, params)


class CheckCaller:
    """Sends one check's requests for one teacher through the ledger, the budget and the rate limiter."""

    def __init__(
        self,
        role: str,
        cfg: TeacherConfig,
        ledger: Ledger,
        budget: Budget,
        prices: dict[str, dict[str, float]],
        budget_key: str,
    ) -> None:
        self.role = role
        self.cfg = _teacher_config(cfg, role)
        self.ledger = ledger
        self.budget = budget
        cap = budget_key if budget.max_usd is not None else None
        price = price_under_cap(self.cfg.model, self.cfg.provider, prices, cap, who=role)
        self.price = price or Price(cfg.model, 0.0, 0.0, "unknown: counted as $0")
        self.spend = CheckSpend(role, cfg.provider, cfg.model, price, spent_before_usd=budget.spent_before_usd)
        self.budget_key = budget_key
        self._api_key = _api_key(self.cfg, role)
        self.limiter = RateLimiter(
            requests_per_minute=cfg.requests_per_minute,
            tokens_per_minute=cfg.tokens_per_minute,
            input_tokens_per_minute=cfg.input_tokens_per_minute,
            output_tokens_per_minute=cfg.output_tokens_per_minute,
            split_tokens=cfg.provider == "anthropic",
        )
        self.stopping = False

    def key(self, request: CheckRequest) -> str:
        return check_key(self.cfg, self.role, request)

    def run(self, requests: list[CheckRequest], description: str) -> list[CheckReply | None]:
        """One reply per request, in order (`error` set when it failed; None when the budget left it unsent);
        ledger lines are written as the replies arrive."""
        return asyncio.run(self._run_all(requests, description))

    async def _run_all(self, requests: list[CheckRequest], description: str) -> list[CheckReply | None]:
        results: list[CheckReply | None] = [None] * len(requests)
        queue: asyncio.Queue[int] = asyncio.Queue()
        for position in range(len(requests)):
            queue.put_nowait(position)
        failure: list[SlmError] = []
        teacher = Teacher(self.cfg, self._api_key)
        workers = max(1, min(self.cfg.max_concurrency, 32, len(requests) or 1))
        try:
            with progress_bar(description, len(requests), show_cost=True) as bar:

                async def work() -> None:
                    while not self.stopping and not queue.empty():
                        position = queue.get_nowait()
                        try:
                            results[position] = await self._one(teacher, requests[position])
                        except SlmError as exc:  # fatal for the stage: nothing new is sent
                            failure.append(exc)
                            self.stopping = True
                            return
                        bar.advance(1, cost_usd=self.spend.cost_usd_this_run)

                await asyncio.gather(*(work() for _ in range(workers)))
        finally:
            await teacher.close()
        if failure:
            raise failure[0]
        return results

    async def _one(self, teacher: Teacher, request: CheckRequest) -> CheckReply | None:
        key = self.key(request)
        if self.ledger.is_done(key):
            return self._from_ledger(key)
        est_in = estimate_prompt_tokens(request.messages)
        expected = self.price.cost(est_in, request.expected_output_tokens)
        if not await self.budget.reserve(expected):
            self.spend.not_sent += 1
            return None
        held = expected
        try:
            self.spend.sent += 1
            try:
                reply = await self._call(teacher, request, key, est_in)
            except _GiveUp as exc:
                self._record_give_up(request, key, exc)
                return _failed(exc.detail)
            usage = self._usage(reply)
            self.budget.settle(held, usage["cost_usd"])
            held = 0.0
            line = self._row(request, key, "done", status="ok", reply=reply.text, truncated=reply.truncated)
            self.ledger.append(line | {"usage": usage})
            checked = CheckReply(reply.text, reply.truncated, usage, from_ledger=False)
            self.spend.add(checked)
            return checked
        finally:
            if held:
                self.budget.settle(held, 0.0)

    def _from_ledger(self, key: str) -> CheckReply | None:
        row = self.ledger.read_done(key) or {}
        if row.get("status") != "ok":
            reason = f"refused by the provider (recorded in the ledger): {row.get('reason', '')}"
            self.spend.fail(reason)
            return _failed(reason)
        reply = CheckReply(row.get("reply"), bool(row.get("truncated")), dict(row.get("usage") or {}), True)
        self.spend.add(reply)
        return reply

    def _record_give_up(self, request: CheckRequest, key: str, exc: _GiveUp) -> None:
        self.spend.fail(exc.detail)
        if exc.reason == "bad_request":  # the provider refused this exact request: final, never resent
            self.ledger.append(self._row(request, key, "done", status="failed", reason=exc.detail[:1000]))
        else:  # out of retries: the next run asks again
            self.spend.transient += 1
            self.ledger.append(self._row(request, key, "error", reason=exc.reason, detail=exc.detail[:1000]))

    def _row(self, request: CheckRequest, key: str, kind: str, **extra: Any) -> dict[str, Any]:
        return {
            "type": kind,
            "key": key,
            "role": self.role,
            "teacher": self.cfg.provider,
            "model": self.cfg.model,
            "prompt_version": request.prompt_version,
            "item": request.item,
            **extra,
        }

    def _usage(self, reply: TeacherReply) -> dict[str, Any]:
        cost = self.price.cost(
            reply.input_tokens,
            reply.output_tokens,
            cached_tokens=reply.cached_tokens,
            cache_write_tokens=reply.cache_write_tokens,
        )
        return {
            "input_tokens": reply.input_tokens,
            "output_tokens": reply.output_tokens,
            "cached_tokens": reply.cached_tokens,
            "cache_write_tokens": reply.cache_write_tokens,
            "cost_usd": cost,
        }

    async def _call(self, teacher: Teacher, request: CheckRequest, key: str, est_in: int) -> TeacherReply:
        """Send with retries: transient errors back off (at least Retry-After), 429s slow the limiter."""
        reserve_out = request.shape.max_tokens or self.cfg.max_tokens
        failures = rate_limited = 0
        while True:
            await self.limiter.acquire(est_in, reserve_out)
            retry_after, was_rate_limited = None, False
            try:
                coro = teacher.complete(request.messages, key, request.shape)
                reply = await asyncio.wait_for(coro, timeout=self.cfg.timeout_s + 5.0)
            except TeacherError as exc:
                self.limiter.settle(est_in, reserve_out, 0, 0)
                self.limiter.observe(exc.headers, rate_limited=exc.rate_limited, retry_after=exc.retry_after)
                if exc.kind == "fatal":
                    raise self._fatal(exc) from None
                if exc.kind == "rejected":
                    raise _GiveUp("bad_request", str(exc)) from None
                last, retry_after, was_rate_limited = str(exc), exc.retry_after, exc.rate_limited
            except asyncio.TimeoutError:
                self.limiter.settle(est_in, reserve_out, 0, 0)
                last = f"no reply within {self.cfg.timeout_s:.0f}s"
            else:
                self.limiter.settle(est_in, reserve_out, reply.input_tokens, reply.output_tokens)
                self.limiter.observe(reply.headers)
                return reply
            if was_rate_limited:
                rate_limited += 1
                if rate_limited >= RATE_LIMITED_ATTEMPTS:
                    raise _GiveUp("http_error", f"gave up after {rate_limited} rate-limited attempts: {last}")
                await asyncio.sleep(backoff_delay(min(rate_limited, 5), retry_after, base=0.25))
                continue
            failures += 1
            if failures > self.cfg.max_retries:
                raise _GiveUp("http_error", f"gave up after {failures} attempts: {last}")
            await asyncio.sleep(backoff_delay(failures - 1, retry_after))

    def _fatal(self, exc: TeacherError) -> SlmError:
        label = f"{self.role} ({self.cfg.provider}:{self.cfg.model})"
        message = redact(str(exc), [self._api_key])[:300]
        if exc.code == "insufficient_quota":
            return SlmError(
                f"{label}: the account's quota is used up (429 insufficient_quota)",
                "add credit or raise the account's limit, then rerun: recorded replies are not paid again",
            )
        if exc.status in (401, 403):
            return SlmError(
                f"{label} was refused: HTTP {exc.status} {message}",
                f"check the key in the environment variable {key_env_name(self.cfg)}",
            )
        return SlmError(f"{label} was refused: HTTP {exc.status} {message}", f"check {self.role}.model and base_url")


@dataclass
class CheckLedger:
    """A stage's check ledger and the one budget its checks share (the judge and the second teacher of a build)."""

    ledger: Ledger
    budget: Budget
    budget_key: str
    prices: dict[str, dict[str, float]] = field(default_factory=dict)

    @classmethod
    def open(
        cls, stage_dir: Path, max_cost_usd: float | None, budget_key: str, prices: dict[str, dict[str, float]]
    ) -> CheckLedger:
        ledger = Ledger(Path(stage_dir) / JUDGE_LEDGER_NAME)
        return cls(ledger, Budget(max_cost_usd, spent_before_usd=ledger.index.spent_usd), budget_key, dict(prices))

    def caller(self, role: str, cfg: TeacherConfig) -> CheckCaller:
        return CheckCaller(role, cfg, self.ledger, self.budget, self.prices, self.budget_key)

    def raise_if_stopped(self, spend: CheckSpend, what: str) -> None:
        """The budget left requests unsent: stop the stage (nothing half-written); what was paid stays recorded."""
        if not spend.not_sent:
            return
        raise SlmError(
            f"{spend.role}: budget reached: ${self.budget.total_usd:.4f} of {self.budget_key} "
            f"${self.budget.max_usd:g}; {spend.replies} {what} answered, {spend.not_sent} not sent "
            f"(the answers are kept in {self.ledger.path})",
            f"raise {self.budget_key} and rerun: recorded answers are read from the ledger, not paid again",
        )

    def close(self) -> None:
        self.ledger.close()
