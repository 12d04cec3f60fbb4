"""Pass 1's per-document work — clean → skip 삭제 articles → fingerprint → mask PII → chunk — inline or in a pool.

The work needs no shared state, so `Preparer` runs it in the main process or, for large inputs, in worker processes
(`prepare.workers`; at most 4 batches per worker in flight). `prepared_documents` yields the results in input
order, so the de-duplication decisions (process.py) do not depend on the number of workers.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import posixpath
from collections import Counter, deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from multiprocessing.pool import AsyncResult, Pool
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from slm_datagen.prepare.chunk import chunk_document, is_deleted
from slm_datagen.prepare.clean import clean_document
from slm_datagen.prepare.dedup import Fingerprint, fingerprint, make_hasher
from slm_datagen.prepare.pii import scrub_document
from slm_forest.config import PrepareConfig
from slm_forest.errors import SlmError
from slm_forest.files import read_jsonl
from slm_forest.records import Document


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
