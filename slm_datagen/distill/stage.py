"""`slm distill`: chunks.jsonl -> qa_pairs.jsonl + failures.jsonl, through the teachers, with a ledger that never pays twice.

    run_distill(ctx) -> StageResult

1. Plan: stream the chunks (the first `--limit N` only) and list the requests per (chunk, teacher), each asking
   for `distill.pairs_per_request` (default: all) of the chunk's (audience, style) pairs, each with its
   content-derived key (`plan.py`). Requests whose key is `done` in the ledger are cached;
   with `--retry-failures` the done-but-failed ones (content failures) are asked again.
2. `--dry-run`: print requests, estimated tokens and dollars per teacher (`estimate.py`), call nothing.
3. Send what is not cached: online (`engine.py`, `pool.py`) or through the providers' batch APIs (`batch.py`);
   every result is one durable ledger line. The offline teacher needs no ledger: it is pure and free.
4. Assemble (`assemble.py`): walk the plan again in order and write qa_pairs.jsonl / failures.jsonl atomically
   from the ledger, so a kill at any moment loses nothing completed and a rerun never duplicates a pair.

Ending: the files are always written first. Then a stop by SIGINT/SIGTERM (after the requests in flight came back,
up to `distill.stop_grace_s`) or by the watchdog (`distill.stall_timeout_s` without a finished request) is one
SlmError saying how to resume; a failure share above `distill.failure_threshold` is one too. `distill.max_cost_usd`
reached ends the stage early (complete=False). Transient failures (429s, 5xx, timeouts, cut bodies) leave the stage
finished but marked `retry_on_rerun`, so a plain rerun retries them; content failures are kept.
"""

from __future__ import annotations

import asyncio
import signal
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from slm_datagen.distill.assemble import FAILURES_NAME, QA_NAME, assemble
from slm_datagen.distill.budget import Budget
from slm_datagen.distill.engine import Engine, EngineStats, Job, RunControl, TeacherRuntime, make_runtime
from slm_datagen.distill.estimate import Projection, calibrate, estimate, print_estimate, request_estimates
from slm_datagen.distill.imports import append_imports, read_imports
from slm_datagen.distill.ledger import LEDGER_NAME, Ledger
from slm_datagen.distill.plan import PlannedRequest, iter_chunks, plan_chunk, request_prompt
from slm_datagen.distill.pool import request_stop
from slm_datagen.distill.pricing import PRICES_AS_OF, Price, price_under_cap
from slm_datagen.distill.teachers import resolve_api_key
from slm_forest.config import DistillConfig
from slm_forest.errors import SlmError
from slm_forest.pipeline import StageContext, StageResult
from slm_forest.progress import progress_bar

__all__ = ["FAILURES_NAME", "QA_NAME", "make_plan", "run_distill", "sweep_temp_files"]


# ------------------------------------------------------------------------------------------------------- plan
def make_plan(
    path: Path, cfg: DistillConfig, limit: int | None, ledger: Ledger | None = None, seed: int = 0
) -> tuple[list[PlannedRequest], int]:
    """All requests in a fixed order (chunk, teacher, pairs); a repeated key is planned once. With the ledger, pairs
    an earlier run answered under another `pairs_per_request` keep those answers (`plan._covered`)."""
    plan: list[PlannedRequest] = []
    seen: set[str] = set()
    n_chunks = 0
    answered = None
    if ledger is not None:
        index_ = ledger.index
        answered = lambda key: key in index_.done or key in index_.attempts  # noqa: E731
    for index, chunk in enumerate(iter_chunks(path, limit)):
        n_chunks += 1
        for request in plan_chunk(chunk, index, cfg, answered, seed):
            if request.key not in seen:
                seen.add(request.key)
                plan.append(request)
    return plan, n_chunks


@dataclass
class Todo:
    """What this run must send: planned API requests not done yet, plus the failed ones `--retry-failures` resends."""

    pending: list[PlannedRequest] = field(default_factory=list)
    resend: set[str] = field(default_factory=set)
    cached: int = 0


def pending_requests(
    plan: list[PlannedRequest], cfg: DistillConfig, ledger: Ledger | None, retry_failures: bool
) -> Todo:
    todo = Todo()
    if ledger is None:
        return todo
    for request in plan:
        if cfg.teachers[request.teacher_index].provider == "offline":
            continue
        if not ledger.is_done(request.key):
            todo.pending.append(request)
        elif retry_failures and ledger.index.done_status.get(request.key) in ("failed", "partial"):
            todo.pending.append(request)
            todo.resend.add(request.key)
        else:
            todo.cached += 1
    return todo


def sweep_temp_files(stage_dir: Path) -> int:
    """Remove the temporary files a kill during a final write left behind (`.qa_pairs.jsonl.*.tmp`, …)."""
    removed = 0
    for path in stage_dir.glob(".*.tmp") if stage_dir.is_dir() else ():
        path.unlink(missing_ok=True)
        removed += 1
    return removed


# ---------------------------------------------------------------------------------------------------- sending
def _jobs(path: Path, limit: int | None, cfg: DistillConfig, todo: dict[int, list[PlannedRequest]]) -> Iterator[Job]:
    """Stream the chunks again and rebuild the prompts of the requests still to send, in plan order."""
    if not todo:
        return
    last = max(todo)
    for index, chunk in enumerate(iter_chunks(path, limit)):
        for request in todo.get(index, ()):
            yield Job(request, request_prompt(chunk, cfg.teachers[request.teacher_index], request, cfg))
        if index >= last:
            return


def _runtimes(cfg: DistillConfig, needed: set[int]) -> list[TeacherRuntime]:
    runtimes = []
    for index in sorted(needed):
        teacher = cfg.teachers[index]
        cap = "distill.max_cost_usd" if cfg.max_cost_usd is not None else None
        price = price_under_cap(teacher.model, teacher.provider, cfg.prices, cap, who="distill")
        if price is None:
            price = Price(teacher.model, 0.0, 0.0, "unknown: counted as $0")
        api_key = resolve_api_key(teacher)
        runtimes.append(make_runtime(index, teacher, api_key, price, batch=cfg.mode == "batch"))
    return runtimes


@dataclass
class Sent:
    stats: EngineStats | None = None
    control: RunControl | None = None
    last_error: str = ""


async def _send(
    runtimes: list[TeacherRuntime],
    ledger: Ledger,
    budget: Budget,
    jobs: Iterator[Job],
    cfg: DistillConfig,
    todo: Todo,
    projection: Projection,
) -> Sent:
    control = RunControl(stall_timeout_s=cfg.stall_timeout_s, grace_s=cfg.stop_grace_s)
    with progress_bar("distill", len(todo.pending), show_cost=True) as task:
        task.update(description=projection.label(budget.total_usd))
        try:
            if cfg.mode == "batch":
                from slm_datagen.distill.batch import BatchRunner

                runner = BatchRunner(runtimes, ledger, budget, cfg, task)
                runner.engine.projection = projection
                return Sent(await runner.run(jobs))
            engine = Engine(runtimes, ledger, budget, task)
            engine.resend = todo.resend
            engine.projection = projection
            installed = _install_stop_handlers(engine, control)
            try:
                stats = await engine.run(jobs, control)
                stats.rate_decreases = sum(rt.limiter.decreases for rt in runtimes)
            finally:
                for sig, previous in installed:
                    asyncio.get_running_loop().remove_signal_handler(sig)
                    signal.signal(sig, previous)  # whatever the host process had (remove_... would leave SIG_DFL)
            return Sent(stats, control, engine.last_error)
        finally:
            for rt in runtimes:
                await rt.teacher.close()


def _install_stop_handlers(engine: Engine, control: RunControl) -> list[tuple[signal.Signals, Any]]:
    """Ctrl-C / SIGTERM stop the run in order (see `pool.py`); only possible in the main thread."""
    loop = asyncio.get_running_loop()
    installed = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        previous = signal.getsignal(sig)
        try:
            loop.add_signal_handler(sig, request_stop, engine, control, sig.name)
        except (NotImplementedError, RuntimeError, ValueError):
            continue
        installed.append((sig, previous))
    return installed


def _send_pending(
    cfg: DistillConfig,
    chunks_path: Path,
    limit: int | None,
    todo: Todo,
    ledger: Ledger | None,
    budget: Budget,
    projection: Projection,
) -> Sent:
    if not todo.pending or ledger is None:
        return Sent()
    runtimes = _runtimes(cfg, {r.teacher_index for r in todo.pending})
    by_chunk: dict[int, list[PlannedRequest]] = defaultdict(list)
    for request in todo.pending:
        by_chunk[request.chunk_index].append(request)
    jobs = _jobs(chunks_path, limit, cfg, by_chunk)
    return asyncio.run(_send(runtimes, ledger, budget, jobs, cfg, todo, projection))


# -------------------------------------------------------------------------------------------------------- stage
def run_distill(ctx: StageContext) -> StageResult:
    cfg = ctx.cfg.distill
    limit, dry_run, retry_failures = _options(ctx)
    chunks_path = ctx.upstream_dir("prepare") / "chunks.jsonl"
    if not dry_run:
        sweep_temp_files(ctx.stage_dir)
    imported = read_imports(cfg, chunks_path)  # a malformed import file stops here, before anything is sent
    uses_api = any(t.provider != "offline" for t in cfg.teachers)
    # A dry run only reads the ledger: it must not create one (it reports that nothing was written).
    ledger = Ledger(ctx.stage_dir / LEDGER_NAME, readonly=dry_run) if uses_api else None
    try:
        plan, n_chunks = make_plan(chunks_path, cfg, limit, ledger, ctx.cfg.seed)
        todo = pending_requests(plan, cfg, ledger, retry_failures)
        counts = {"chunks": n_chunks, "requests": len(plan), "cached": todo.cached}
        spent_before = ledger.index.spent_usd if ledger is not None else 0.0
        # What the ledger measured (output per pair, cache hits) for these teachers and prompt versions
        calibration = calibrate(ledger.path if ledger is not None else None, cfg)
        if dry_run:
            est = estimate(plan, {r.key for r in todo.pending} | _offline_keys(plan, cfg), cfg, calibration)
            summary = print_estimate(est, cfg, n_chunks, spent_before)
            counts["to_send"] = len(todo.pending)
            return StageResult(outputs=[], counts=counts, stats={"estimate": est}, complete=False, summary=summary)
        # The cap is on the dataset's total spend: start from what the ledger already records as paid.
        budget = Budget(cfg.max_cost_usd, spent_before_usd=spent_before)
        projection = Projection(request_estimates(plan, {r.key for r in todo.pending}, cfg, calibration))
        sent = _send_pending(cfg, chunks_path, limit, todo, ledger, budget, projection)
        assembled = assemble(ctx.stage_dir, chunks_path, limit, cfg, plan, ledger, ctx.cfg.seed)
    finally:
        if ledger is not None:
            ledger.close()
    _raise_if_stopped(ctx, sent, assembled)
    _raise_above_threshold(ctx, cfg, assembled)
    counts.update(_result_counts(assembled))
    counts.update(append_imports(ctx.stage_dir, imported, QA_NAME, FAILURES_NAME))  # after the teacher pairs
    return StageResult(
        outputs=[ctx.stage_dir / QA_NAME, ctx.stage_dir / FAILURES_NAME],
        counts=counts,
        stats=_stats(cfg, budget, sent, assembled),
        complete=assembled["pending"] == 0,
        summary=_summary(cfg, budget, assembled, todo.cached),
    )


def _options(ctx: StageContext) -> tuple[int | None, bool, bool]:
    cfg = ctx.cfg.distill
    limit = ctx.options.get("limit")
    if limit is not None and int(limit) < 1:
        raise SlmError(f"--limit {limit}: must be at least 1", "for a trial run use e.g. --limit 20")
    if not cfg.teachers and not cfg.imports:
        raise SlmError(
            "distill.teachers is empty",
            "add a teacher, e.g. {provider: offline} or {provider: openai, model: gpt-4o}, or pair files under "
            "distill.imports",
        )
    slowest = max((t.timeout_s for t in cfg.teachers if t.provider != "offline"), default=0.0)
    if cfg.mode == "online" and cfg.stall_timeout_s <= slowest:
        raise SlmError(
            f"distill.stall_timeout_s: {cfg.stall_timeout_s:g} s is not longer than a teacher's timeout_s ({slowest:g} s)",
            "raise distill.stall_timeout_s (e.g. to 5 × timeout_s) or lower distill.teachers[].timeout_s",
        )
    return limit, bool(ctx.options.get("dry_run")), bool(ctx.options.get("retry_failures"))


def _offline_keys(plan: list[PlannedRequest], cfg: DistillConfig) -> set[str]:
    return {r.key for r in plan if cfg.teachers[r.teacher_index].provider == "offline"}


def _config_arg(ctx: StageContext) -> str:
    return ctx.cfg.source_path or "CONFIG"


def _raise_if_stopped(ctx: StageContext, sent: Sent, assembled: dict[str, Any]) -> None:
    """After the files are written: a signal or the watchdog ends the run with one line saying how to resume."""
    control = sent.control
    if control is None or not (control.signal or control.stalled):
        return
    resume = f"rerun `slm distill {_config_arg(ctx)}` to resume: nothing recorded is sent again"
    recorded = (
        f"{assembled['pairs']} pairs and {assembled['failures']} failures written, {assembled['pending']} not sent yet"
    )
    if control.stalled:
        raise SlmError(
            f"distill: no request finished in {control.stall_timeout_s:g} s ({control.in_flight_at_stop} in flight, "
            f"last error: {sent.last_error or 'none'}); stopped, {recorded}",
            f"check that the teacher endpoint answers (base_url, network, provider status), then {resume}; "
            "raise distill.stall_timeout_s if replies are really that slow",
        )
    waited = f"{control.in_flight_at_stop} requests in flight were waited for"
    if control.abandoned:
        waited += f", {control.abandoned} abandoned at the deadline (the next run may pay for those again)"
    raise SlmError(f"distill: stopped by {control.signal}; {waited}; {recorded}", resume)


def _raise_above_threshold(ctx: StageContext, cfg: DistillConfig, assembled: dict[str, Any]) -> None:
    failures = assembled["failures"]
    finished = assembled["pairs"] + failures
    if not finished or failures / finished <= cfg.failure_threshold:
        return
    reasons = ", ".join(f"{k} {v}" for k, v in assembled["reasons"].most_common())
    raise SlmError(
        f"distill: {failures} of {finished} pairs failed ({failures / finished:.0%}, above "
        f"distill.failure_threshold {cfg.failure_threshold:.0%}): {reasons} ({assembled['transient']} transient, "
        f"{assembled['content']} content); see {ctx.stage_dir / FAILURES_NAME}",
        "fix the cause (teacher model, max_tokens, prompts, endpoint) and rerun (transient failures are retried, "
        "content failures with --retry-failures), or raise distill.failure_threshold",
    )


def _result_counts(assembled: dict[str, Any]) -> dict[str, int]:
    counts = {
        "pairs": assembled["pairs"],
        "failures": assembled["failures"],
        "failures_transient": assembled["transient"],
        "failures_content": assembled["content"],
    }
    if assembled["pending"]:
        counts["not_sent"] = assembled["pending"]
    return counts


def _stats(cfg: DistillConfig, budget: Budget, sent: Sent, assembled: dict[str, Any]) -> dict[str, Any]:
    engine_stats = sent.stats
    run_cost: dict[str, Any] = {}
    if engine_stats is not None:
        run_cost = {
            label: {k: round(v, 6) if isinstance(v, float) else v for k, v in e.items()}
            for label, e in engine_stats.per_teacher.items()
        }
    stats = {
        "cost_usd_this_run": round(budget.spent_usd, 6),
        "cost_usd_total": round(budget.total_usd, 6),  # everything the ledger records as paid, all runs
        "max_cost_usd": cfg.max_cost_usd,
        "cost_by_teacher_this_run": run_cost,
        "dataset_cost_by_teacher": {k: round(v, 6) for k, v in assembled["cost_by_teacher"].items()},
        "tokens": dict(assembled["tokens"]),
        "failure_reasons": dict(assembled["reasons"]),
        "transient_failure_reasons": dict(assembled["transient_reasons"]),
        "content_failure_reasons": dict(assembled["content_reasons"]),
        # read by the runner: a finished stage with transient failures is run again by a plain rerun
        "retry_on_rerun": assembled["transient"],
        "prices_as_of": PRICES_AS_OF,
        "mode": cfg.mode,
        "context_gold_positions": assembled.get("context_gold_positions", {}),  # RAFT pairs: gold's place -> pairs
    }
    if engine_stats is not None:
        stats.update(
            repaired=engine_stats.repaired,
            http_retries=engine_stats.http_retries,
            rate_limited=engine_stats.rate_limited,
            rate_decreases=engine_stats.rate_decreases,
        )
    return stats


def _summary(cfg: DistillConfig, budget: Budget, assembled: dict[str, Any], cached: int) -> str:
    pairs, failures, not_sent = assembled["pairs"], assembled["failures"], assembled["pending"]
    summary = f"{pairs} pairs, {failures} failures"
    if failures:
        summary += (
            f" ({assembled['transient']} transient: a plain rerun retries them; {assembled['content']} content: "
            "kept, --retry-failures asks again)"
        )
    summary += f", {cached} cached, ${budget.spent_usd:.4f} spent this run"
    if not_sent and cfg.max_cost_usd is None:
        summary += f"; {not_sent} requests not sent (rerun to resume)"
    elif not_sent:
        summary += (
            f"; budget reached: ${budget.total_usd:.4f} of ${cfg.max_cost_usd:g}; raise distill.max_cost_usd "
            f"and rerun ({not_sent} requests not sent)"
        )
    return summary
