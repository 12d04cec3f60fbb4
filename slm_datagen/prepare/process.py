"""The streaming driver: documents.jsonl → chunks.jsonl, duplicates.jsonl, dedup_report.json, in bounded memory.

Pass 1 streams the documents. The per-document work — clean → skip 삭제 articles → fingerprint (comparison text,
digest, MinHash) → mask PII → chunk — needs no shared state, so `Preparer` runs it inline or, for large inputs, in
a pool of worker processes (`prepare.workers`; at most 4 batches per worker in flight). The main process takes
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

import contextlib
import multiprocessing
import os
import posixpath
import re
import tempfile
from collections import Counter, deque
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from multiprocessing.pool import AsyncResult, Pool
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from slm_datagen.prepare.chunk import chunk_document, is_deleted
from slm_datagen.prepare.clean import clean_document
from slm_datagen.prepare.dedup import (
    LSH_WEIGHTS,
    Deduplicator,
    Fingerprint,
    Verdict,
    fingerprint,
    lsh_params,
    make_hasher,
)
from slm_datagen.prepare.pii import scrub_document
from slm_datagen.prepare.sample import plan_sample
from slm_forest.config import PrepareConfig
from slm_forest.errors import SlmError
from slm_forest.files import atomic_writer, dumps_line, read_jsonl, write_json
from slm_forest.progress import progress_bar
from slm_forest.records import Document

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


def source_label(source: str, dump_roots: Sequence[str] = ()) -> str:
    """A short label for `Document.source`: bundled, dump:<dump path>, lawgo:<target>, or the source itself."""
    kind, colon, rest = source.partition(":")
    if not colon:
        return source
    if kind == "bundled":
        return "bundled"
    if kind == "lawgo":
        return "lawgo:" + rest.split("?", 1)[0]
    if kind == "dump":
        roots = [r for r in dump_roots if rest == r or rest.startswith(r.rstrip("/") + "/")]
        return f"dump:{max(roots, key=len) if roots else (posixpath.dirname(rest) or rest)}"
    return kind


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


def _parse(row: Any, path: Path, line: int) -> Document:
    try:
        return Document.model_validate(row)
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(part) for part in error["loc"]) or "<record>"
        raise SlmError(
            f"{path}:{line}: not a Document record ({where}: {error['msg']})",
            "rerun `slm collect CONFIG --force` to rewrite documents.jsonl, or fix that line",
        ) from None


# ------------------------------------------------------------------------------------- per-document work
@dataclass
class Prepared:
    """One document after clean → fingerprint → PII → chunk: everything but the de-duplication decision."""

    ordinal: int
    kind: str = ""
    source: str = ""  # source_label of the document
    deleted: bool = False
    fingerprint: Fingerprint | None = None
    chunk_lines: list[str] = field(default_factory=list)  # Chunk records, already JSON
    too_short: int = 0
    pii: dict[str, int] = field(default_factory=dict)
    error: tuple[str, str] | None = None  # an SlmError's (message, hint): exceptions lose the hint when pickled


class Preparer:
    """The per-document work. It needs no shared state, so it runs in worker processes as well as inline."""

    def __init__(self, cfg: PrepareConfig, source: Path, dump_roots: Sequence[str] = ()) -> None:
        self.cfg = cfg
        self.source = source
        self.dump_roots = tuple(dump_roots)
        self.hasher = make_hasher(cfg.dedup)

    def __call__(self, batch: list[tuple[int, Any]]) -> list[Prepared]:
        return [self.one(ordinal, row) for ordinal, row in batch]

    def one(self, ordinal: int, row: Any) -> Prepared:
        try:
            doc = _parse(row, self.source, ordinal + 1)  # write_jsonl writes no blank lines: record n is line n
        except SlmError as exc:
            return Prepared(ordinal, error=(exc.message, exc.hint))
        cfg = self.cfg
        label = source_label(doc.source, self.dump_roots)
        if doc.deleted and not cfg.include_deleted:
            return Prepared(ordinal, doc.kind, label, deleted=True)
        doc = clean_document(doc)
        if not cfg.include_deleted and is_deleted(doc):
            return Prepared(ordinal, doc.kind, label, deleted=True)
        fp = fingerprint(doc, self.hasher) if (cfg.dedup.exact or cfg.dedup.near) else None
        pii: Counter[str] = Counter()
        if cfg.scrub_pii:
            doc = scrub_document(doc, pii)
        chunked = chunk_document(doc, cfg.chunk_budget_chars, cfg.min_chunk_chars, cfg.chars_per_token)
        lines = [chunk.model_dump_json() for chunk in chunked.chunks]
        return Prepared(ordinal, doc.kind, label, False, fp, lines, chunked.too_short, dict(pii))


_WORKER: Preparer | None = None


def _init_worker(cfg: PrepareConfig, source: Path, dump_roots: tuple[str, ...]) -> None:
    global _WORKER
    _WORKER = Preparer(cfg, source, dump_roots)


def _work(batch: list[tuple[int, Any]]) -> list[Prepared]:
    assert _WORKER is not None
    return _WORKER(batch)


_PROGRESS_EVERY = 64
_BATCH = 32  # documents per task: large enough to amortise pickling, small enough to keep the pipe busy
_PARALLEL_FROM_BYTES = 32 * 1024 * 1024  # below this, starting processes costs more than it saves


def resolve_workers(cfg: PrepareConfig, documents: Path) -> int:
    if cfg.workers:
        return cfg.workers
    if documents.stat().st_size < _PARALLEL_FROM_BYTES:
        return 1
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1))


def _batches(rows: Iterator[Any], size: int) -> Iterator[list[tuple[int, Any]]]:
    batch: list[tuple[int, Any]] = []
    for item in enumerate(rows):
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


@contextlib.contextmanager
def worker_pool(
    cfg: PrepareConfig, documents: Path, workers: int, dump_roots: Sequence[str] = ()
) -> Iterator[Pool | None]:
    """A pool of `workers` processes running `Preparer`, or None for inline work.

    Opened before any progress bar: fork copies only the calling thread, so forking while rich's refresh thread
    holds a lock could leave a worker blocked on it.
    """
    if workers <= 1:
        yield None
        return
    # fork: the workers inherit the imported modules (numpy, datasketch) instead of importing them again.
    method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
    with multiprocessing.get_context(method).Pool(workers, _init_worker, (cfg, documents, tuple(dump_roots))) as pool:
        yield pool


def prepared_documents(
    documents: Path, cfg: PrepareConfig, pool: Pool | None, workers: int, dump_roots: Sequence[str] = ()
) -> Iterator[Prepared]:
    """Every document of the file, prepared, in input order; in the pool's processes when there is one.

    At most 4 batches per worker are in flight, so memory stays bounded however far the reader could run ahead
    (Pool.imap would queue the whole file).
    """
    batches = _batches(read_jsonl(documents), _BATCH)
    if pool is None:
        preparer = Preparer(cfg, documents, dump_roots)
        for batch in batches:
            yield from preparer(batch)
        return
    in_flight = 4 * workers
    pending: deque[AsyncResult] = deque()
    for batch in batches:
        pending.append(pool.apply_async(_work, (batch,)))
        if len(pending) >= in_flight:
            yield from pending.popleft().get()
    while pending:
        yield from pending.popleft().get()


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
    dedup = Deduplicator(cfg.dedup)
    replaced: set[int] = set()
    statute_chunks: dict[int, int] = {}  # ordinal → chunks spooled, for statutes a newer version may replace
    by_kind, by_source = outcome.by_kind, outcome.by_source
    tags: dict[str, int] = {}  # source label <-> the small int the Deduplicator keeps per document
    labels: list[str] = []
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
            stats = by_kind.setdefault(item.kind, KindStats())
            source = by_source.setdefault(item.source, SourceStats())
            stats.documents_in += 1
            source.documents_in += 1
            if item.deleted:
                stats.deleted_skipped += 1
                source.deleted_skipped += 1
                continue
            tag = tags.get(item.source)
            if tag is None:
                tag = tags[item.source] = len(labels)
                labels.append(item.source)
            verdict = dedup.check(item.ordinal, item.fingerprint, tag) if item.fingerprint is not None else _KEEP
            if not verdict.keep or verdict.replaces is not None:
                doc_id = item.fingerprint.doc_id  # type: ignore[union-attr]
                other = labels[verdict.duplicate_tag]
                if verdict.keep:  # a newer statute version: the kept copy is the one dropped
                    dropped_id, kept_id = verdict.duplicate_of, doc_id
                    dropped_source, kept_source = other, item.source
                else:
                    dropped_id, kept_id = doc_id, verdict.duplicate_of
                    dropped_source, kept_source = item.source, other
                dropped = by_source[dropped_source]
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
                if not verdict.keep:
                    continue
                # This newer statute version replaces one kept earlier: its spooled chunks are dropped in pass 2.
                replaced.add(verdict.replaces)  # type: ignore[arg-type]
                stats.replaced_by_newer += 1
                stats.documents_kept -= 1
                dropped.replaced_by_newer += 1
                dropped.documents_kept -= 1
                stats.chunks -= statute_chunks.pop(verdict.replaces, 0)  # type: ignore[arg-type]
            stats.documents_kept += 1
            source.documents_kept += 1
            stats.pii_masked += sum(item.pii.values())
            outcome.pii.update(item.pii)
            stats.short_chunks_skipped += item.too_short
            stats.chunks += len(item.chunk_lines)
            if item.kind == "statute_article":
                statute_chunks[item.ordinal] = len(item.chunk_lines)
            prefix = f"{item.ordinal}\t{item.kind}\t"
            spool_out.writelines(prefix + line + "\n" for line in item.chunk_lines)
        bar.advance(done % _PROGRESS_EVERY)
    return replaced


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
