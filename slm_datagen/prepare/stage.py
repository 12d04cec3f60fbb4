"""`slm prepare`: collect's documents.jsonl → chunks.jsonl (+ duplicates.jsonl, dedup_report.json)."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

from slm_datagen.prepare.process import prepare_documents
from slm_forest.config import DumpSource
from slm_forest.pipeline import StageContext, StageResult


def _documents_rows(ctx: StageContext) -> int | None:
    """The row count collect recorded for documents.jsonl (sizes the progress bar without reading the file)."""
    manifest = ctx.upstream.get("collect")
    for entry in manifest.outputs if manifest else []:
        if entry.path.endswith("documents.jsonl"):
            return entry.rows
    return None


def _dump_roots(ctx: StageContext) -> list[str]:
    """The dump paths collect read, as they appear in `Document.source` (for the per-source duplicate counts)."""
    return [
        Path(source.path).expanduser().as_posix()
        for source in ctx.cfg.collect.sources
        if isinstance(source, DumpSource)
    ]


def run_prepare(ctx: StageContext) -> StageResult:
    outcome = prepare_documents(
        ctx.upstream_dir("collect") / "documents.jsonl",
        ctx.stage_dir,
        ctx.cfg.prepare,
        ctx.cfg.seed,
        total_documents=_documents_rows(ctx),
        dump_roots=_dump_roots(ctx),
    )
    totals = outcome.totals()
    counts = {
        "documents_in": totals["documents_in"],
        "documents_kept": totals["documents_kept"],
        "exact_duplicates": totals["exact_duplicates"],
        "near_duplicates": totals["near_duplicates"],
        "deleted_skipped": totals["deleted_skipped"],
        "pii_masked": totals["pii_masked"],
        "sampled_out": totals["sampled_out"],
        "chunks": totals["chunks_out"],
    }
    stats = {
        "by_kind": {kind: asdict(kind_stats) for kind, kind_stats in sorted(outcome.by_kind.items())},
        "by_source": outcome.by_source_report(),
        "chunk_budget_chars": ctx.cfg.prepare.chunk_budget_chars,
        "pii": dict(sorted(outcome.pii.items())),
        "short_chunks_skipped": totals["short_chunks_skipped"],
    }
    return StageResult(outputs=outcome.outputs, counts=counts, stats=stats, summary=outcome.summary())
