"""The streaming driver: documents.jsonl → chunks.jsonl, duplicates.jsonl, dedup_report.json, in bounded memory.

Pass 1 streams the documents. The per-document work (workers.py) — clean → skip 삭제 articles → fingerprint (comparison
text, digest, MinHash) → mask PII → chunk — needs no shared state, so `Preparer` runs it inline or, for large inputs,
in a pool of worker processes (`prepare.workers`; at most 4 batches per worker in flight). The main process takes
the results in input order, asks the `Deduplicator` about each one and appends the chunks of kept documents to a
spool file beside the output, each line tagged with its document's ordinal and kind. The decisions are made in
input order by one process, so the output does not depend on the number of workers. Memory holds the
de-duplication index (digests, signatures, LSH bands), a chunk count per kept statute, and the batches in flight.
Pass 2 reads the spool: it drops the chunks of statute versions that a newer version replaced later in the input
(see dedup.py), applies the sample plan (sample.py) and writes chunks.jsonl atomically.

Work on a duplicate is wasted (it is chunked before the verdict), which costs about the duplicate share of the
run; in exchange the expensive part parallelises without sharing the index.

Duplicates are reported per kind and per source (`by_source` in dedup_report.json, `dropped_source` /
`kept_source` in duplicates.jsonl): a short label of `Document.source` — `bundled`, `dump:<the dump source's
path>` (the configured path the file was found under; its folder when the paths are not known), `lawgo:<target>` —
so "these 3,000 rulings of the seed dump were already in the bundled casebook" can be read off the report.

A run starts by removing the temporary files a killed run left in the output directory (atomic-writer temps
`.<name>.<random>.tmp`, the spool `.chunks.<random>.spool`): nothing else writes those names there.

The stage (stage.py) and the benchmark (bench/prepare.py) both call `prepare_documents`.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from slm_datagen.prepare.dedup import (
    LSH_WEIGHTS,
    Deduplicator,
    Verdict,
    lsh_params,
)
from slm_datagen.prepare.sample import plan_sample
from slm_datagen.prepare.workers import Prepared, prepared_documents, resolve_workers, worker_pool
from slm_forest.config import PrepareConfig
from slm_forest.errors import SlmError
from slm_forest.files import atomic_writer, dumps_line, write_json
from slm_forest.progress import progress_bar

CHUNKS_FILE = "chunks.jsonl"
DUPLICATES_FILE = "duplicates.jsonl"
REPORT_FILE = "dedup_report.json"

_KEEP = Verdict(keep=True)

KEEP_RULE = (
    "decisions, rulings and interpretations: the first copy in documents.jsonl is kept; statute articles are "
    "compared only with versions of the same article (law, 조, 가지번호) and the newest effective_date is kept "
    "(ties and missing dates: the first copy)"
)


@dataclass
class KindStats:
    documents_in: int = 0
    deleted_skipped: int = 0
    exact_duplicates: int = 0
    near_duplicates: int = 0
    replaced_by_newer: int = 0  # statute versions dropped for a newer one (also counted as exact/near duplicates)
    documents_kept: int = 0
    chunks: int = 0  # before sampling
    short_chunks_skipped: int = 0
    pii_masked: int = 0
    sampled_out: int = 0
    chunks_out: int = 0  # written to chunks.jsonl


@dataclass
class SourceStats:
    documents_in: int = 0
    deleted_skipped: int = 0
    exact_duplicates: int = 0  # documents of this source dropped as a copy (later copy, or an older statute version)
    near_duplicates: int = 0
    replaced_by_newer: int = 0  # of those, statute versions replaced by a newer one
    documents_kept: int = 0
    duplicate_of: dict[str, int] = field(default_factory=dict)  # source of the copy that was kept -> count


@dataclass
class PrepareOutcome:
    by_kind: dict[str, KindStats] = field(default_factory=dict)
    by_source: dict[str, SourceStats] = field(default_factory=dict)
    pii: Counter[str] = field(default_factory=Counter)
    outputs: list[Path] = field(default_factory=list)

    def totals(self) -> dict[str, int]:
        totals: Counter[str] = Counter()
        for stats in self.by_kind.values():
            totals.update(asdict(stats))
        names = list(KindStats.__dataclass_fields__)
        return {name: totals[name] for name in names}

    def by_source_report(self) -> dict[str, dict[str, Any]]:
        report = {}
        for label, stats in sorted(self.by_source.items()):
            row = asdict(stats)
            row["duplicate_of"] = dict(sorted(stats.duplicate_of.items()))
            report[label] = row
        return report

    def summary(self) -> str:
        t = self.totals()
        return (
            f"{t['documents_in']} documents → {t['documents_kept']} kept ({t['exact_duplicates']} exact and "
            f"{t['near_duplicates']} near duplicates, {t['deleted_skipped']} deleted articles dropped) → "
            f"{t['chunks_out']} chunks ({t['sampled_out']} sampled out); {t['pii_masked']} PII masks"
        )


_PROGRESS_EVERY = 64


# ------------------------------------------------------------------------------------------------ the passes
# What atomic_writer (tempfile.mkstemp) and _spool_path name their temporary files: `.<name>.<8 random>.tmp|spool`.
_STALE_TEMP = re.compile(r"\..+\.[a-z0-9_]{8}\.(?:tmp|spool)")


def sweep_stale_temps(out_dir: Path) -> list[Path]:
    """Remove the temporary files a killed run left in `out_dir` (a finished run leaves none); returns them."""
    removed = []
    for path in out_dir.iterdir():
        if path.is_file() and _STALE_TEMP.fullmatch(path.name):
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed


def _spool_path(out_dir: Path) -> Path:
    fd, name = tempfile.mkstemp(prefix=".chunks.", suffix=".spool", dir=out_dir)
    os.close(fd)
    return Path(name)


def prepare_documents(
    documents: Path,
    out_dir: Path,
    cfg: PrepareConfig,
    seed: int,
    *,
    total_documents: int | None = None,
    dump_roots: Sequence[str] = (),
) -> PrepareOutcome:
    """Run clean → dedup → PII → chunk → sample over `documents`, writing the three outputs into `out_dir`.

    `dump_roots`: the paths of collect's dump sources, so documents are counted per dump source (see source_label).
    """
    documents = Path(documents)
    if not documents.exists():
        raise SlmError(f"{documents}: file not found", "run `slm collect CONFIG` first")
    out_dir.mkdir(parents=True, exist_ok=True)
    # Left by a run killed before its `finally` / before an atomic rename (kill -9): only this stage writes there.
    sweep_stale_temps(out_dir)
    outcome = PrepareOutcome()
    spool = _spool_path(out_dir)
    try:
        replaced = _first_pass(
            documents, spool, out_dir / DUPLICATES_FILE, cfg, outcome, total_documents, tuple(dump_roots)
        )
        _second_pass(spool, out_dir / CHUNKS_FILE, cfg, seed, outcome, replaced)
    finally:
        spool.unlink(missing_ok=True)
    write_json(out_dir / REPORT_FILE, _report(documents, cfg, seed, outcome))
    outcome.outputs = [out_dir / CHUNKS_FILE, out_dir / DUPLICATES_FILE, out_dir / REPORT_FILE]
    return outcome


@dataclass
class _FirstPass:
    """What pass 1 carries from one document to the next."""

    dedup: Deduplicator
    outcome: PrepareOutcome
    replaced: set[int] = field(default_factory=set)  # ordinals of statute versions a newer version replaced
    statute_chunks: dict[int, int] = field(default_factory=dict)  # ordinal → chunks spooled, for kept statutes
    tags: dict[str, int] = field(default_factory=dict)  # source label <-> the small int the Deduplicator keeps
    labels: list[str] = field(default_factory=list)

    def tag(self, source: str) -> int:
        tag = self.tags.get(source)
        if tag is None:
            tag = self.tags[source] = len(self.labels)
            self.labels.append(source)
        return tag


def _first_pass(
    documents: Path,
    spool: Path,
    duplicates_path: Path,
    cfg: PrepareConfig,
    outcome: PrepareOutcome,
    total_documents: int | None,
    dump_roots: tuple[str, ...] = (),
) -> set[int]:
    """Decide duplicates in input order and spool the chunks of kept documents; returns replaced ordinals."""
    state = _FirstPass(Deduplicator(cfg.dedup), outcome)
    workers = resolve_workers(cfg, documents)
    with (
        worker_pool(cfg, documents, workers, dump_roots) as pool,
        open(spool, "w", encoding="utf-8") as spool_out,
        atomic_writer(duplicates_path) as duplicates_out,
        progress_bar(f"prepare: documents ({workers} process{'es' if workers > 1 else ''})", total_documents) as bar,
    ):
        done = 0
        for item in prepared_documents(documents, cfg, pool, workers, dump_roots):
            done += 1
            if done % _PROGRESS_EVERY == 0:  # a rich update per document costs more than the LSH query
                bar.advance(_PROGRESS_EVERY)
            if item.error is not None:
                raise SlmError(*item.error)
            _take_document(item, state, spool_out, duplicates_out)
        bar.advance(done % _PROGRESS_EVERY)
    return state.replaced


def _take_document(item: Prepared, state: _FirstPass, spool_out: Any, duplicates_out: Any) -> None:
    """Count one document, ask the Deduplicator about it, and spool its chunks when it is kept."""
    stats = state.outcome.by_kind.setdefault(item.kind, KindStats())
    source = state.outcome.by_source.setdefault(item.source, SourceStats())
    stats.documents_in += 1
    source.documents_in += 1
    if item.deleted:
        stats.deleted_skipped += 1
        source.deleted_skipped += 1
        return
    tag = state.tag(item.source)
    verdict = state.dedup.check(item.ordinal, item.fingerprint, tag) if item.fingerprint is not None else _KEEP
    if not verdict.keep or verdict.replaces is not None:
        dropped = _record_duplicate(item, verdict, state, stats, duplicates_out)
        if not verdict.keep:
            return
        # This newer statute version replaces one kept earlier: its spooled chunks are dropped in pass 2.
        state.replaced.add(verdict.replaces)  # type: ignore[arg-type]
        stats.replaced_by_newer += 1
        stats.documents_kept -= 1
        dropped.replaced_by_newer += 1
        dropped.documents_kept -= 1
        stats.chunks -= state.statute_chunks.pop(verdict.replaces, 0)  # type: ignore[arg-type]
    stats.documents_kept += 1
    source.documents_kept += 1
    stats.pii_masked += sum(item.pii.values())
    state.outcome.pii.update(item.pii)
    stats.short_chunks_skipped += item.too_short
    stats.chunks += len(item.chunk_lines)
    if item.kind == "statute_article":
        state.statute_chunks[item.ordinal] = len(item.chunk_lines)
    prefix = f"{item.ordinal}\t{item.kind}\t"
    spool_out.writelines(prefix + line + "\n" for line in item.chunk_lines)


def _record_duplicate(
    item: Prepared, verdict: Verdict, state: _FirstPass, stats: KindStats, duplicates_out: Any
) -> SourceStats:
    """Count a duplicate against the source of the copy dropped, write its duplicates.jsonl line; returns that
    source's stats (a newer statute version drops the copy kept earlier, possibly of another source)."""
    doc_id = item.fingerprint.doc_id  # type: ignore[union-attr]
    other = state.labels[verdict.duplicate_tag]
    if verdict.keep:  # a newer statute version: the kept copy is the one dropped
        dropped_id, kept_id = verdict.duplicate_of, doc_id
        dropped_source, kept_source = other, item.source
    else:
        dropped_id, kept_id = doc_id, verdict.duplicate_of
        dropped_source, kept_source = item.source, other
    dropped = state.outcome.by_source[dropped_source]
    dropped.duplicate_of[kept_source] = dropped.duplicate_of.get(kept_source, 0) + 1
    if verdict.method == "exact":
        stats.exact_duplicates += 1
        dropped.exact_duplicates += 1
    else:
        stats.near_duplicates += 1
        dropped.near_duplicates += 1
    duplicates_out.write(
        dumps_line(
            {
                "dropped": dropped_id,
                "kept": kept_id,
                "kind": item.kind,
                "dropped_source": dropped_source,
                "kept_source": kept_source,
                "method": verdict.method,
                "similarity": round(verdict.similarity, 4),
                "reason": "newer_version" if verdict.replaces is not None else "later_copy",
            }
        )
    )
    return dropped


def _second_pass(
    spool: Path, chunks_path: Path, cfg: PrepareConfig, seed: int, outcome: PrepareOutcome, replaced: set[int]
) -> None:
    """Copy the spooled chunks that survive (not replaced, in the sample) into chunks.jsonl."""
    counts = {kind: stats.chunks for kind, stats in outcome.by_kind.items()}
    plan = plan_sample(counts, cfg.sample.n, seed, cfg.sample.keep_source_ratio)
    seen: Counter[str] = Counter()
    total = sum(counts.values())
    with (
        open(spool, encoding="utf-8") as spool_in,
        atomic_writer(chunks_path) as out,
        progress_bar("prepare: writing chunks", total) as bar,
    ):
        done = 0
        for line in spool_in:
            ordinal, kind, payload = line.split("\t", 2)
            if replaced and int(ordinal) in replaced:
                continue
            done += 1
            if done % _PROGRESS_EVERY == 0:
                bar.advance(_PROGRESS_EVERY)
            stats = outcome.by_kind[kind]
            if plan is not None:
                bucket = plan.bucket(kind)
                position = seen[bucket]
                seen[bucket] += 1
                if position not in plan.keep[bucket]:
                    stats.sampled_out += 1
                    continue
            out.write(payload)
            stats.chunks_out += 1
        bar.advance(done % _PROGRESS_EVERY)


def _report(documents: Path, cfg: PrepareConfig, seed: int, outcome: PrepareOutcome) -> dict[str, Any]:
    return {
        "input": str(documents),
        "keep_rule": KEEP_RULE,
        "dedup": {
            **cfg.dedup.model_dump(mode="json"),
            "lsh_weights": list(LSH_WEIGHTS),
            "lsh_bands_rows": list(lsh_params(cfg.dedup.threshold, cfg.dedup.num_perm)) if cfg.dedup.near else None,
        },
        "sample": {**cfg.sample.model_dump(mode="json"), "seed": seed},
        "chunk_budget": {
            "max_chunk_chars": cfg.chunk_budget_chars,
            "max_chunk_tokens": cfg.max_chunk_tokens,
            "chars_per_token": cfg.chars_per_token,
        },
        "totals": outcome.totals(),
        "by_kind": {kind: asdict(stats) for kind, stats in sorted(outcome.by_kind.items())},
        "by_source": outcome.by_source_report(),
        "pii": dict(sorted(outcome.pii.items())),
        "duplicates_file": DUPLICATES_FILE,
    }
