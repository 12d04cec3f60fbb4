"""Write qa_pairs.jsonl and failures.jsonl (atomically, in plan order) from the ledger and the offline teacher.

Every planned request ends in exactly one of: a pair, a failure row, or `pending` (not sent: budget reached or the
run was stopped). Failure rows are of two kinds, counted apart:
- transient: the request never completed (429s, 5xx, timeouts, cut bodies, an unexpected exception; a ledger
  `error` line). A plain rerun retries them, and the stage asks the runner to rerun it (`retry_on_rerun`).
- content: the teacher answered and the answer stayed unusable after one repair (not Korean, off-schema, empty,
  truncated, refused) or the provider rejected the request. Paid for: kept unless `--retry-failures`.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from slm_datagen.distill.ledger import Ledger
from slm_datagen.distill.offline import offline_draft
from slm_datagen.distill.plan import PlannedRequest, iter_chunks, teacher_label
from slm_datagen.distill.schema import PairDraft
from slm_forest.config import DistillConfig, TeacherConfig
from slm_forest.files import atomic_writer, dumps_line
from slm_forest.records import Chunk, DistillFailure, QAPair, Usage, content_id

QA_NAME = "qa_pairs.jsonl"
FAILURES_NAME = "failures.jsonl"
TRANSIENT_NOTE = " (not completed: a plain rerun retries it)"


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


def _offline_row(
    chunk: Chunk, request: PlannedRequest, teacher: TeacherConfig, seed: int, planted_error_rate: float
) -> QAPair | DistillFailure:
    found = offline_draft(chunk, request.audience, request.style, seed, planted_error_rate)
    if found is not None:
        pair = to_qa_pair(found[0], chunk, request, "offline", teacher.model)
        pair.meta.update(found[1])  # planted_error: the demo's deliberately wrong pairs
        return pair
    return DistillFailure(
        request_key=request.key,
        chunk_id=chunk.id,
        teacher="offline",
        model=teacher.model,
        reason="offline_unsupported",
        detail=f"{chunk.kind} chunk without text the offline teacher can use",
    )


def _ledger_row(
    chunk: Chunk, request: PlannedRequest, teacher: TeacherConfig, ledger: Ledger, result: dict[str, Any]
) -> tuple[QAPair | DistillFailure | None, bool]:
    """(the row, or None when not sent yet; whether it is a transient failure)."""
    record = ledger.read_done(request.key)
    if record is None:
        error = ledger.index.errors.get(request.key)
        if error is None:
            return None, False
        failure = DistillFailure(
            request_key=request.key,
            chunk_id=chunk.id,
            teacher=teacher.provider,
            model=teacher.model,
            reason=error.get("reason", "http_error"),
            detail=error.get("detail", "") + TRANSIENT_NOTE,
        )
        return failure, True
    usage = record.get("usage") or {}
    result["cost_by_teacher"][teacher_label(teacher)] += float(usage.get("cost_usd", 0.0))
    result["tokens"]["input"] += int(usage.get("input_tokens", 0))
    result["tokens"]["output"] += int(usage.get("output_tokens", 0))
    if record.get("status") == "ok":
        draft = PairDraft.model_validate(record["pair"])
        return to_qa_pair(draft, chunk, request, teacher.provider, teacher.model, usage), False
    failure = DistillFailure(
        request_key=request.key,
        chunk_id=chunk.id,
        teacher=teacher.provider,
        model=teacher.model,
        reason=record.get("reason", "schema"),
        detail=record.get("detail", ""),
        usage=Usage(**usage),
    )
    return failure, False


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
    with atomic_writer(stage_dir / QA_NAME) as qa_out, atomic_writer(stage_dir / FAILURES_NAME) as fail_out:
        for index, chunk in enumerate(iter_chunks(path, limit)):
            for request in by_chunk.get(index, ()):
                teacher = cfg.teachers[request.teacher_index]
                transient = False
                if teacher.provider == "offline":
                    result["cost_by_teacher"][teacher_label(teacher)] += 0.0
                    row: QAPair | DistillFailure | None = _offline_row(
                        chunk, request, teacher, seed, cfg.offline.planted_error_rate
                    )
                else:
                    assert ledger is not None
                    row, transient = _ledger_row(chunk, request, teacher, ledger, result)
                if row is None:
                    result["pending"] += 1  # budget reached or stopped: not sent yet
                elif isinstance(row, QAPair):
                    qa_out.write(dumps_line(row))
                    result["pairs"] += 1
                else:
                    fail_out.write(dumps_line(row))
                    kind = "transient" if transient else "content"
                    result["failures"] += 1
                    result[kind] += 1
                    result["reasons"][row.reason] += 1
                    result[f"{kind}_reasons"][row.reason] += 1
    return result
