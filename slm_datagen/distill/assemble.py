"""Write qa_pairs.jsonl and failures.jsonl (atomically, in plan order) from the ledger and the offline teacher.

Every pair a planned request asks for ends in exactly one of: a pair, a failure row, or `pending` (not sent:
budget reached or the run was stopped). A several-pairs request's usage is shared evenly by its pairs. Failure rows are of two kinds, counted apart:
- transient: the request never completed (429s, 5xx, timeouts, cut bodies, an unexpected exception; a ledger
  `error` line). A plain rerun retries them, and the stage asks the runner to rerun it (`retry_on_rerun`).
- content: the teacher answered and the answer stayed unusable after one repair (not Korean, off-schema, empty,
  truncated, refused) or the provider rejected the request. Paid for: kept unless `--retry-failures`.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from slm_datagen.distill.context import ContextSource, choose_context, open_context_source, wants_context
from slm_datagen.distill.ledger import Ledger
from slm_datagen.distill.offline import offline_draft, offline_with_context
from slm_datagen.distill.outcome import record_verdicts
from slm_datagen.distill.parse import ReplyProblem
from slm_datagen.distill.plan import PlannedRequest, iter_chunks, teacher_label
from slm_datagen.distill.schema import PairDraft
from slm_forest.config import DistillConfig, TeacherConfig
from slm_forest.files import atomic_writer, dumps_line
from slm_forest.records import Chunk, DistillFailure, QAPair, Usage, content_id

QA_NAME = "qa_pairs.jsonl"
FAILURES_NAME = "failures.jsonl"
TRANSIENT_NOTE = " (not completed: a plain rerun retries it)"
USAGE_FIELDS = ("input_tokens", "output_tokens", "cost_usd", "cached_input_tokens", "cache_write_tokens")


def to_qa_pair(
    draft: PairDraft,
    chunk: Chunk,
    request: PlannedRequest,
    teacher: str,
    model: str,
    usage: dict[str, Any] | None = None,
    item: tuple[str, str] | None = None,
) -> QAPair:
    """A pair with its provenance; `item` (audience, style) names which pair of a several-pairs request it is."""
    audience, style = item or (request.audience, request.style)
    pair_id = content_id("qa", request.key) if not request.multi else content_id("qa", request.key, audience, style)
    return QAPair(
        id=pair_id,
        chunk_id=chunk.id,
        doc_id=chunk.doc_id,
        kind=chunk.kind,
        question=draft.question.strip(),
        answer=draft.answer.strip(),
        audience=audience,  # type: ignore[arg-type]
        style=style,  # type: ignore[arg-type]
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


def _offline_row(
    chunk: Chunk,
    request: PlannedRequest,
    teacher: TeacherConfig,
    seed: int,
    planted_error_rate: float,
    context: ContextSource | None = None,
) -> QAPair | DistillFailure:
    found = offline_draft(chunk, request.audience, request.style, seed, planted_error_rate)
    if found is not None:
        draft, meta = found
        shown = (
            choose_context(context, chunk, draft.question, request.key) if wants_context(context, request.key) else None
        )
        if shown is not None:  # RAFT: the answer leads with the context article it rests on
            draft, meta = offline_with_context(draft, chunk, shown.gold), {**meta, **shown.meta()}
        pair = to_qa_pair(draft, chunk, request, "offline", teacher.model)
        pair.meta.update(meta)  # planted_error: the demo's deliberately wrong pairs; the context shown
        return pair
    return DistillFailure(
        request_key=request.key,
        chunk_id=chunk.id,
        teacher="offline",
        model=teacher.model,
        reason="offline_unsupported",
        detail=f"{chunk.kind} chunk without text the offline teacher can use",
    )


def split_usage(usage: dict[str, Any], n: int) -> list[dict[str, Any]]:
    """A request's usage shared by its n pairs: whole tokens (the remainder to the first ones), dollars evenly;
    the shares add up to the request's usage exactly, so per-pair sums (the dataset card) stay true."""
    if n == 1:
        return [{k: usage.get(k, 0) for k in USAGE_FIELDS}]
    shares: list[dict[str, Any]] = [{} for _ in range(n)]
    for name in USAGE_FIELDS:
        total = usage.get(name, 0) or 0
        for index in range(n):
            if name == "cost_usd":
                shares[index][name] = round(float(total) / n, 10)
            else:
                shares[index][name] = int(total) // n + (1 if index < int(total) % n else 0)
    return shares


def _ledger_rows(
    chunk: Chunk, request: PlannedRequest, teacher: TeacherConfig, ledger: Ledger, result: dict[str, Any]
) -> tuple[list[QAPair | DistillFailure], bool]:
    """(one row per pair of the request, or [] when not sent yet; whether they are transient failures)."""
    record = ledger.read_done(request.key)
    if record is None:
        error = ledger.index.errors.get(request.key)
        if error is None:
            return [], False
        failures = [
            DistillFailure(
                request_key=request.key,
                chunk_id=chunk.id,
                teacher=teacher.provider,
                model=teacher.model,
                reason=error.get("reason", "http_error"),
                detail=error.get("detail", "") + TRANSIENT_NOTE,
                **_item_fields(request, audience, style),
            )
            for audience, style in request.pairs
        ]
        return failures, True  # type: ignore[return-value]
    usage = record.get("usage") or {}
    result["cost_by_teacher"][teacher_label(teacher)] += float(usage.get("cost_usd", 0.0))
    for name, counter in (("input_tokens", "input"), ("output_tokens", "output"), ("cached_input_tokens", "cached")):
        result["tokens"][counter] += int(usage.get(name, 0))
    verdicts = record_verdicts(record)
    rows: list[QAPair | DistillFailure] = []
    for (audience, style, verdict), share in zip(verdicts, split_usage(usage, len(verdicts))):
        if isinstance(verdict, ReplyProblem):
            rows.append(
                DistillFailure(
                    request_key=request.key,
                    chunk_id=chunk.id,
                    teacher=teacher.provider,
                    model=teacher.model,
                    reason=verdict.reason,
                    detail=verdict.detail,
                    usage=Usage(**share),
                    **_item_fields(request, audience, style),
                )
            )
        else:
            item = (audience, style) if request.multi else None
            rows.append(to_qa_pair(verdict, chunk, request, teacher.provider, teacher.model, share, item))
    return rows, False


def _item_fields(request: PlannedRequest, audience: str, style: str) -> dict[str, str]:
    """Which pair of a several-pairs request a failure is about (a single-pair failure row stays as it was)."""
    return {"audience": audience, "style": style} if request.multi else {}


def assemble(
    stage_dir: Path,
    path: Path,
    limit: int | None,
    cfg: DistillConfig,
    plan: list[PlannedRequest],
    ledger: Ledger | None,
    seed: int = 0,
) -> dict[str, Any]:
    """Write both files (`seed` draws the offline teacher's calculation cases); return counts (pairs, failures, transient, content, pending) and per-reason tallies."""
    by_chunk: dict[int, list[PlannedRequest]] = defaultdict(list)
    for request in plan:
        by_chunk[request.chunk_index].append(request)
    result: dict[str, Any] = {
        "pairs": 0,
        "failures": 0,
        "transient": 0,
        "content": 0,
        "pending": 0,
        "reasons": Counter(),
        "transient_reasons": Counter(),
        "content_reasons": Counter(),
        "cost_by_teacher": defaultdict(float),
        "tokens": Counter(),
    }
    context = open_context_source(stage_dir.parent, path, cfg, seed)
    try:
        _assemble_rows(stage_dir, path, limit, cfg, by_chunk, ledger, seed, context, result)
    finally:
        if context is not None:
            context.close()
            result["context_gold_positions"] = dict(sorted(context.gold_ranks.items()))
    return result


def _assemble_rows(
    stage_dir: Path,
    path: Path,
    limit: int | None,
    cfg: DistillConfig,
    by_chunk: dict[int, list[PlannedRequest]],
    ledger: Ledger | None,
    seed: int,
    context: ContextSource | None,
    result: dict[str, Any],
) -> None:
    with atomic_writer(stage_dir / QA_NAME) as qa_out, atomic_writer(stage_dir / FAILURES_NAME) as fail_out:
        for index, chunk in enumerate(iter_chunks(path, limit)):
            for request in by_chunk.get(index, ()):
                teacher = cfg.teachers[request.teacher_index]
                transient = False
                if teacher.provider == "offline":
                    result["cost_by_teacher"][teacher_label(teacher)] += 0.0
                    rows: list[QAPair | DistillFailure] = [
                        _offline_row(chunk, request, teacher, seed, cfg.offline.planted_error_rate, context)
                    ]
                else:
                    assert ledger is not None
                    rows, transient = _ledger_rows(chunk, request, teacher, ledger, result)
                    _attach_context(rows, chunk, context)
                if not rows:
                    result["pending"] += len(request.pairs)  # budget reached or stopped: not sent yet
                for row in rows:
                    _write(row, transient, qa_out, fail_out, result)


def _attach_context(rows: list[QAPair | DistillFailure], chunk: Chunk, context: ContextSource | None) -> None:
    """A teacher LLM's pair shown with retrieved law: its prompt asked it to cite the source first (prompts.py)."""
    for row in rows:
        if isinstance(row, QAPair) and wants_context(context, row.id):
            assert context is not None
            row.meta.update(choose_context(context, chunk, row.question, row.id).meta())


def _write(row: QAPair | DistillFailure, transient: bool, qa_out: Any, fail_out: Any, result: dict[str, Any]) -> None:
    if isinstance(row, QAPair):
        qa_out.write(dumps_line(row))
        result["pairs"] += 1
        return
    fail_out.write(dumps_line(row))
    kind = "transient" if transient else "content"
    result["failures"] += 1
    result[kind] += 1
    result["reasons"][row.reason] += 1
    result[f"{kind}_reasons"][row.reason] += 1
