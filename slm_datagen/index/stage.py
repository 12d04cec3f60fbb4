"""`slm index`: prepare's chunks.jsonl → a retrieval index in runs/<run>/index/ (see slm_datagen.index.build)."""

from __future__ import annotations

from slm_datagen.index.build import build_index
from slm_forest.pipeline import StageContext, StageResult


def _chunk_rows(ctx: StageContext) -> int | None:
    """The row count prepare recorded for chunks.jsonl (sizes the progress bar without reading the file)."""
    manifest = ctx.upstream.get("prepare")
    for entry in manifest.outputs if manifest else []:
        if entry.path.endswith("chunks.jsonl"):
            return entry.rows
    return None


def run_index(ctx: StageContext) -> StageResult:
    cfg = ctx.cfg.index
    if not cfg.enabled:
        return StageResult(outputs=[], counts={"chunks": 0}, summary="index.enabled is false: no index built")
    outcome = build_index(ctx.upstream_dir("prepare") / "chunks.jsonl", ctx.stage_dir, cfg, total=_chunk_rows(ctx))
    counts = outcome.counts
    summary = (
        f"{counts['chunks']} chunks searchable ({counts['statute_chunks']} from {counts['articles']} statute articles), "
        f"{counts['terms']} distinct terms"
    )
    return StageResult(outputs=outcome.outputs, counts=counts, stats=outcome.stats, summary=summary)
