"""`slm distill`: chunks.jsonl -> qa_pairs.jsonl + failures.jsonl, through the teachers, with a ledger that never pays twice.

    run_distill(ctx) -> StageResult

1. Plan: stream the chunks (the first `--limit N` only) and list one request per (chunk, teacher, audience,
   style), each with its content-derived key (`plan.py`). Requests whose key is `done` in the ledger are cached.
2. `--dry-run`: print requests, estimated tokens and dollars per teacher, call nothing, return complete=False.
3. Send what is not cached: online (`engine.py`) or through the providers' batch APIs (`batch.py`); every result
   is one durable ledger line. The offline teacher needs no ledger: it is pure and free.
4. Assemble: walk the plan again in order and write qa_pairs.jsonl / failures.jsonl atomically from the ledger,
   so a kill at any moment loses nothing completed and a rerun never duplicates a pair (pair id = f(request key)).

The stage fails only when the share of failed requests is above `distill.failure_threshold` (after writing both
files, so the reasons can be read); it stops early (complete=False) when `distill.max_cost_usd` is reached. The cap
is on the dataset's total teacher spend as the ledger records it (every run, every teacher), not on one run, so
rerunning with the same cap sends nothing more once it is reached.
"""

from __future__ import annotations

import asyncio
from collections import Counter, defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from rich.table import Table

from slm_datagen.distill.engine import Budget, Engine, Job, TeacherRuntime, make_runtime
from slm_datagen.distill.ledger import LEDGER_NAME, Ledger
from slm_datagen.distill.offline import offline_draft
from slm_datagen.distill.plan import PlannedRequest, iter_chunks, plan_chunk, prompt_for, teacher_label
from slm_datagen.distill.pricing import PRICES_AS_OF, Price, estimate_output_tokens, find_price
from slm_datagen.distill.schema import PairDraft
from slm_datagen.distill.teachers import resolve_api_key
from slm_forest.config import DistillConfig
from slm_forest.errors import SlmError
from slm_forest.files import atomic_writer, dumps_line
from slm_forest.pipeline import StageContext, StageResult
from slm_forest.progress import console, progress_bar
from slm_forest.records import Chunk, DistillFailure, QAPair, Usage, content_id

QA_NAME = "qa_pairs.jsonl"
FAILURES_NAME = "failures.jsonl"


# ------------------------------------------------------------------------------------------------------- plan
def make_plan(path: Path, cfg: DistillConfig, limit: int | None, seed: int = 0) -> tuple[list[PlannedRequest], int]:
    """All requests in a fixed order (chunk, teacher, audience, style); a repeated key is planned once."""
    plan: list[PlannedRequest] = []
    seen: set[str] = set()
    n_chunks = 0
    for index, chunk in enumerate(iter_chunks(path, limit)):
        n_chunks += 1
        for request in plan_chunk(chunk, index, cfg, seed):
            if request.key not in seen:
                seen.add(request.key)
                plan.append(request)
    return plan, n_chunks


def _prices(cfg: DistillConfig) -> dict[int, Price | None]:
    return {i: find_price(t.model, t.provider, cfg.prices) for i, t in enumerate(cfg.teachers)}


def estimate(plan: list[PlannedRequest], pending: set[str], cfg: DistillConfig) -> dict[str, dict[str, Any]]:
    """Per teacher: requests to send, estimated input/output tokens and dollars (None when the price is unknown)."""
    prices = _prices(cfg)
    out: dict[str, dict[str, Any]] = {}
    for request in plan:
        teacher = cfg.teachers[request.teacher_index]
        label = teacher_label(teacher)
        entry = out.setdefault(
            label, {"requests": 0, "cached": 0, "input_tokens": 0, "output_tokens": 0, "cost_usd": 0.0, "price": None}
        )
        if request.key not in pending:
            entry["cached"] += 1
            continue
        out_tokens = 0 if teacher.provider == "offline" else estimate_output_tokens(request.style, teacher.max_tokens)
        entry["requests"] += 1
        entry["input_tokens"] += request.input_tokens_est
        entry["output_tokens"] += out_tokens
        price = prices[request.teacher_index]
        if price is None:
            entry["cost_usd"] = None
        elif entry["cost_usd"] is not None:
            entry["cost_usd"] += price.cost(request.input_tokens_est, out_tokens, batch=cfg.mode == "batch")
        entry["price"] = None if price is None else f"${price.input_per_mtok:g} in / ${price.output_per_mtok:g} out"
        entry["price_source"] = None if price is None else price.source
    return out


def _print_estimate(est: dict[str, dict[str, Any]], cfg: DistillConfig, n_chunks: int, spent_usd: float = 0.0) -> str:
    batch = " (batch: half price)" if cfg.mode == "batch" else ""
    title = f"distill --dry-run: {n_chunks} chunks{batch}; USD per 1M tokens, shipped prices as of {PRICES_AS_OF}"
    header = ("teacher", "requests", "cached", "in tokens", "out tokens", "dollars", "price/Mtok")
    rows = []
    total = 0.0
    unknown = False
    for label, e in est.items():
        cost = e["cost_usd"]
        unknown |= cost is None
        total += cost or 0.0
        rows.append(
            (
                label,
                str(e["requests"]),
                str(e["cached"]),
                f"{e['input_tokens']:,}",
                f"{e['output_tokens']:,}",
                "unknown (set distill.prices)" if cost is None else f"${cost:,.4f}",
                e["price"] or "-",
            )
        )
    if console.is_terminal:
        table = Table(title=title)
        for column in header:
            table.add_column(column, overflow="fold")
        for row in rows:
            table.add_row(*row)
        console.print(table)
    else:
        # Piped or logged: rich would squeeze the table into 80 columns and cut teacher names; plain
        # tab-separated lines (written as is: rich would expand the tabs) keep every value whole and easy to grep.
        print(title, file=console.file)
        for row in (header, *rows):
            print("\t".join(row), file=console.file)
    summary = (
        f"dry run: {sum(e['requests'] for e in est.values())} requests, "
        f"~{sum(e['input_tokens'] + e['output_tokens'] for e in est.values()):,} tokens (estimated), "
        f"~${total:,.2f}{' + unknown' if unknown else ''}; each bad reply adds one repair request; "
        "nothing was sent"
    )
    if cfg.max_cost_usd is not None:
        summary += f"; ${spent_usd:,.4f} of the distill.max_cost_usd ${cfg.max_cost_usd:g} already spent"
    return summary


# ---------------------------------------------------------------------------------------------------- sending
def _jobs(path: Path, limit: int | None, cfg: DistillConfig, todo: dict[int, list[PlannedRequest]]) -> Iterator[Job]:
    """Stream the chunks again and rebuild the prompts of the requests still to send, in plan order."""
    if not todo:
        return
    last = max(todo)
    for index, chunk in enumerate(iter_chunks(path, limit)):
        for request in todo.get(index, ()):
            yield Job(request, prompt_for(chunk, cfg.teachers[request.teacher_index], request.audience, request.style))
        if index >= last:
            return


def _runtimes(cfg: DistillConfig, needed: set[int]) -> list[TeacherRuntime]:
    runtimes = []
    for index in sorted(needed):
        teacher = cfg.teachers[index]
        price = find_price(teacher.model, teacher.provider, cfg.prices)
        if price is None:
            if cfg.max_cost_usd is not None:
                raise SlmError(
                    f"distill: no price known for model '{teacher.model}', so distill.max_cost_usd cannot be enforced",
                    f"add distill.prices.{teacher.model}: {{input_per_mtok: …, output_per_mtok: …}} (USD per million tokens)",
                )
            price = Price(teacher.model, 0.0, 0.0, "unknown: counted as $0")
        api_key = resolve_api_key(teacher)
        runtimes.append(make_runtime(index, teacher, api_key, price, batch=cfg.mode == "batch"))
    return runtimes


async def _send(
    runtimes: list[TeacherRuntime], ledger: Ledger, budget: Budget, jobs: Iterator[Job], cfg: DistillConfig, total: int
):
    with progress_bar("distill", total, show_cost=True) as task:
        try:
            if cfg.mode == "batch":
                from slm_datagen.distill.batch import BatchRunner

                return await BatchRunner(runtimes, ledger, budget, cfg, task).run(jobs)
            return await Engine(runtimes, ledger, budget, task).run(jobs)
        finally:
            for rt in runtimes:
                await rt.teacher.close()


# --------------------------------------------------------------------------------------------------- assembly
def to_qa_pair(
    draft: PairDraft,
    chunk: Chunk,
    request: PlannedRequest,
    teacher: str,
    model: str,
    usage: dict[str, Any] | None = None,
) -> QAPair:
    return QAPair(
        id=content_id("qa", request.key),
        chunk_id=chunk.id,
        doc_id=chunk.doc_id,
        kind=chunk.kind,
        question=draft.question.strip(),
        answer=draft.answer.strip(),
        audience=request.audience,  # type: ignore[arg-type]
        style=request.style,  # type: ignore[arg-type]
        citations=[c.label() for c in draft.citations],
        calculation=draft.calculation.to_record() if draft.calculation else None,
        teacher=teacher,
        model=model,
        prompt_version=request.prompt_version,
        request_key=request.key,
        usage=Usage(**(usage or {})),
        source_citation=chunk.citation,
        law_name=chunk.law_name,
    )


def assemble(
    stage_dir: Path,
    path: Path,
    limit: int | None,
    cfg: DistillConfig,
    plan: list[PlannedRequest],
    ledger: Ledger | None,
    seed: int = 0,
) -> dict[str, Any]:
    """Write qa_pairs.jsonl and failures.jsonl (atomically, plan order) from the ledger and the offline teacher."""
    by_chunk: dict[int, list[PlannedRequest]] = defaultdict(list)
    for request in plan:
        by_chunk[request.chunk_index].append(request)
    result: dict[str, Any] = {
        "pairs": 0,
        "failures": 0,
        "pending": 0,
        "reasons": Counter(),
        "cost_by_teacher": defaultdict(float),
        "tokens": Counter(),
    }
    with atomic_writer(stage_dir / QA_NAME) as qa_out, atomic_writer(stage_dir / FAILURES_NAME) as fail_out:
        for index, chunk in enumerate(iter_chunks(path, limit)):
            for request in by_chunk.get(index, ()):
                teacher = cfg.teachers[request.teacher_index]
                label = teacher_label(teacher)
                if teacher.provider == "offline":
                    result["cost_by_teacher"][label] += 0.0
                    found = offline_draft(chunk, request.audience, request.style, seed, cfg.offline.planted_error_rate)
                    if found is None:
                        row: Any = DistillFailure(
                            request_key=request.key,
                            chunk_id=chunk.id,
                            teacher="offline",
                            model=teacher.model,
                            reason="offline_unsupported",
                            detail=f"{chunk.kind} chunk without text the offline teacher can use",
                        )
                    else:
                        row = to_qa_pair(found[0], chunk, request, "offline", teacher.model)
                        row.meta.update(found[1])  # planted_error: the demo's deliberately wrong pairs
                else:
                    assert ledger is not None
                    record = ledger.read_done(request.key)
                    if record is None:
                        error = ledger.index.errors.get(request.key)
                        if error is None:
                            result["pending"] += 1  # budget stop: not sent yet
                            continue
                        row = DistillFailure(
                            request_key=request.key,
                            chunk_id=chunk.id,
                            teacher=teacher.provider,
                            model=teacher.model,
                            reason=error.get("reason", "http_error"),
                            detail=error.get("detail", "") + " (not completed: rerun with --force to retry)",
                        )
                    else:
                        usage = record.get("usage") or {}
                        result["cost_by_teacher"][label] += float(usage.get("cost_usd", 0.0))
                        result["tokens"]["input"] += int(usage.get("input_tokens", 0))
                        result["tokens"]["output"] += int(usage.get("output_tokens", 0))
                        if record.get("status") == "ok":
                            draft = PairDraft.model_validate(record["pair"])
                            row = to_qa_pair(draft, chunk, request, teacher.provider, teacher.model, usage)
                        else:
                            row = DistillFailure(
                                request_key=request.key,
                                chunk_id=chunk.id,
                                teacher=teacher.provider,
                                model=teacher.model,
                                reason=record.get("reason", "schema"),
                                detail=record.get("detail", ""),
                                usage=Usage(**usage),
                            )
                if isinstance(row, QAPair):
                    qa_out.write(dumps_line(row))
                    result["pairs"] += 1
                else:
                    fail_out.write(dumps_line(row))
                    result["failures"] += 1
                    result["reasons"][row.reason] += 1
    return result


# -------------------------------------------------------------------------------------------------------- stage
def run_distill(ctx: StageContext) -> StageResult:
    cfg = ctx.cfg.distill
    chunks_path = ctx.upstream_dir("prepare") / "chunks.jsonl"
    limit = ctx.options.get("limit")
    if limit is not None and int(limit) < 1:
        raise SlmError(f"--limit {limit}: must be at least 1", "for a trial run use e.g. --limit 20")
    dry_run = bool(ctx.options.get("dry_run"))
    if not cfg.teachers:
        raise SlmError(
            "distill.teachers is empty", "add a teacher, e.g. {provider: offline} or {provider: openai, model: gpt-4o}"
        )

    plan, n_chunks = make_plan(chunks_path, cfg, limit, ctx.cfg.seed)
    uses_api = any(t.provider != "offline" for t in cfg.teachers)
    # A dry run only reads the ledger: it must not create one (it reports that nothing was written).
    ledger = Ledger(ctx.stage_dir / LEDGER_NAME, readonly=dry_run) if uses_api else None
    try:

        def is_api(r: PlannedRequest) -> bool:
            return cfg.teachers[r.teacher_index].provider != "offline"

        cached = sum(1 for r in plan if is_api(r) and ledger is not None and ledger.is_done(r.key))
        pending = [r for r in plan if is_api(r) and ledger is not None and not ledger.is_done(r.key)]
        counts = {"chunks": n_chunks, "requests": len(plan), "cached": cached}

        if dry_run:
            est = estimate(plan, {r.key for r in pending} | {r.key for r in plan if not is_api(r)}, cfg)
            summary = _print_estimate(est, cfg, n_chunks, ledger.index.spent_usd if ledger is not None else 0.0)
            return StageResult(
                outputs=[],
                counts={**counts, "to_send": len(pending)},
                stats={"estimate": est},
                complete=False,
                summary=summary,
            )

        # The cap is on the dataset's total spend: start from what the ledger already records as paid.
        budget = Budget(cfg.max_cost_usd, spent_before_usd=ledger.index.spent_usd if ledger is not None else 0.0)
        engine_stats = None
        if pending and ledger is not None:
            runtimes = _runtimes(cfg, {r.teacher_index for r in pending})
            todo: dict[int, list[PlannedRequest]] = defaultdict(list)
            for request in pending:
                todo[request.chunk_index].append(request)
            jobs = _jobs(chunks_path, limit, cfg, todo)
            engine_stats = asyncio.run(_send(runtimes, ledger, budget, jobs, cfg, len(pending)))

        assembled = assemble(ctx.stage_dir, chunks_path, limit, cfg, plan, ledger, ctx.cfg.seed)
    finally:
        if ledger is not None:
            ledger.close()

    pairs, failures, not_sent = assembled["pairs"], assembled["failures"], assembled["pending"]
    counts.update(pairs=pairs, failures=failures)
    if not_sent:
        counts["not_sent"] = not_sent
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
        "prices_as_of": PRICES_AS_OF,
        "mode": cfg.mode,
    }
    if engine_stats is not None:
        stats.update(
            repaired=engine_stats.repaired,
            http_retries=engine_stats.http_retries,
            rate_limited=engine_stats.rate_limited,
        )

    outputs = [ctx.stage_dir / QA_NAME, ctx.stage_dir / FAILURES_NAME]
    finished = pairs + failures
    if finished and failures / finished > cfg.failure_threshold:
        reasons = ", ".join(f"{k} {v}" for k, v in assembled["reasons"].most_common())
        raise SlmError(
            f"distill: {failures} of {finished} requests failed ({failures / finished:.0%}, above "
            f"distill.failure_threshold {cfg.failure_threshold:.0%}): {reasons}; see {ctx.stage_dir / FAILURES_NAME}",
            "fix the cause (teacher model, max_tokens, prompts) and rerun, or raise distill.failure_threshold",
        )
    complete = not_sent == 0
    summary = f"{pairs} pairs, {failures} failures, {cached} cached, ${budget.spent_usd:.4f} spent this run"
    if not complete and cfg.max_cost_usd is None:
        summary += f"; {not_sent} requests not sent (rerun to resume)"
    elif not complete:
        summary += (
            f"; budget reached: ${budget.total_usd:.4f} of ${cfg.max_cost_usd:g}; raise distill.max_cost_usd "
            f"and rerun ({not_sent} requests not sent)"
        )
    return StageResult(outputs=outputs, counts=counts, stats=stats, complete=complete, summary=summary)
