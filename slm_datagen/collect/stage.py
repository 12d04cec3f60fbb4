"""`slm collect`: read every configured source into `documents.jsonl` (one `Document` per line).

Sources are read in config order, files in sorted order, API results in request order, and a document whose id
was already written is dropped (ids are content-derived, so that is an exact duplicate: the same article from the
bundled corpus and a dump, or a precedent listed twice). Together this makes the output order deterministic
without holding all documents in memory: they are streamed to a temporary file that replaces `documents.jsonl`
only when every source finished, so a failed run leaves the previous output intact.

A malformed input file (or one API item) is skipped and listed in `skipped.jsonl` when `collect.on_error: skip`,
or stops the run with its file and position when `on_error: fail`. Documents already read are never lost: with
`skip` they are written, with `fail` the previous output stays and law.go.kr responses stay in the cache.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.markup import escape

from slm_datagen.collect.bundled import DATA_DIR, bundled_files, read_bundled_file
from slm_datagen.collect.dumps import DumpFile
from slm_datagen.collect.legalize_source import legalize_items
from slm_datagen.collect.legalize_source import signature as legalize_signature
from slm_datagen.collect.listing import list_dump
from slm_datagen.collect.problems import InputProblem
from slm_datagen.collect.temporaries import sweep_temporaries
from slm_forest.config import BundledSource, DumpSource, LawgoSource, LegalizeSource, RunConfig
from slm_forest.errors import SlmError
from slm_forest.files import atomic_writer, dumps_line, write_jsonl
from slm_forest.pipeline import StageContext, StageResult
from slm_forest.progress import console, progress_bar
from slm_forest.records import Document

DOCUMENTS = "documents.jsonl"
SKIPPED = "skipped.jsonl"
_MAX_SKIPPED_IN_STATS = 20
_SKIPPED_SHOWN = 10  # printed at the end of collect; skipped.jsonl has them all


@dataclass
class _Item:
    """One unit of work from a source: a file or an API item, with its documents or the problem it has.

    `documents` may be a stream that raises InputProblem part-way (a dump file that breaks half-way); `encoding`
    may be a callable, asked once the documents were read (a streamed file knows it only then).
    """

    label: str  # file path or request, for messages
    documents: Iterable[Document]
    problem: InputProblem | None = None
    encoding: str | Callable[[], str | None] | None = None
    input_file: Path | None = None  # a local file: hashed into the manifest once it was read


class _Writer:
    """Streams documents to the open output, dropping ids already written, and keeps the counts.

    An item's documents are written as they come; when the item turns out broken half-way, what it wrote is
    rolled back (the output truncated to where the item started, its ids forgotten, its counts not added), so a
    broken file contributes nothing — without holding a whole file's documents in memory.
    """

    def __init__(self, handle: Any, on_error: str) -> None:
        self.handle = handle
        self.on_error = on_error
        self.seen: set[str] = set()
        self.counts: Counter[str] = Counter()
        self.skipped: list[dict[str, str]] = []
        self.encodings: Counter[str] = Counter()
        self.inputs: list[Path] = []  # local files read, hashed into the manifest (not those that cannot be read)

    def take(self, item: _Item, source_kind: str) -> None:
        self.counts["items_read"] += 1
        problem = item.problem
        if problem is None:
            problem = self._write(item, source_kind)
        if problem is not None:
            where = f"{item.label}:{problem.where}" if problem.where else item.label
            if self.on_error == "fail":
                raise SlmError(
                    f"{where}: {problem.message}",
                    "fix or remove that input, or set collect.on_error: skip to skip bad inputs (they are counted)",
                )
            self.counts["skipped"] += 1
            self.skipped.append({"input": item.label, "where": problem.where, "reason": problem.message})
            if item.input_file is not None and not problem.unreadable:
                self.inputs.append(item.input_file)  # a malformed file counts: editing it must rerun collect
            return
        encoding = item.encoding() if callable(item.encoding) else item.encoding
        if encoding:
            self.encodings[encoding] += 1
        if item.input_file is not None:
            self.inputs.append(item.input_file)

    def _write(self, item: _Item, source_kind: str) -> InputProblem | None:
        """Write the item's new documents; on an InputProblem undo them and return it."""
        start = self.handle.tell()
        added: list[str] = []
        counts: Counter[str] = Counter()
        try:
            for doc in item.documents:
                if doc.id in self.seen:
                    counts["duplicates"] += 1
                    continue
                self.seen.add(doc.id)
                added.append(doc.id)
                self.handle.write(dumps_line(doc))
                counts["documents"] += 1
                counts[doc.kind] += 1
                counts[f"from_{source_kind}"] += 1
        except InputProblem as problem:
            self.seen.difference_update(added)
            self.handle.seek(start)
            self.handle.truncate()
            return problem
        self.counts.update(counts)
        return None


def _bundled_items(source: BundledSource) -> Iterator[_Item]:
    files = bundled_files(list(source.include))
    with progress_bar("collect: bundled corpus", len(files)) as bar:
        for path in files:
            yield _Item(f"bundled:{path.relative_to(DATA_DIR).as_posix()}", read_bundled_file(path), input_file=path)
            bar.advance()


def _dump_items(source: DumpSource, where: str, warnings: list[str]) -> Iterator[_Item]:
    listing = list_dump(source, where)
    if not listing.entries:
        matching = f" matching {source.glob!r}" if source.glob != "**/*" else ""
        _warn(warnings, f"{where}: {listing.root} is an empty directory (no files{matching}); nothing read from it")
    if listing.duplicates:
        path, first = listing.duplicates[0]
        more = f" (and {len(listing.duplicates) - 1} more)" if len(listing.duplicates) > 1 else ""
        _warn(warnings, f"{where}: {path} is the same as {first} (a symbolic link): read once{more}")
    with progress_bar(f"collect: {source.path}", len(listing.entries)) as bar:
        for entry in listing.entries:
            if entry.problem is not None:
                yield _Item(str(entry.path), [], InputProblem(entry.problem))
                bar.advance()
                continue
            dump = DumpFile(entry.path, source)
            # Streamed: the writer reads the documents (and rolls back a file that breaks half-way).
            encoding = lambda dump=dump: dump.encoding  # noqa: E731 (known only once the file was read)
            yield _Item(str(entry.path), dump.documents(), encoding=encoding, input_file=entry.path)
            bar.advance()


def _legalize_items(source: LegalizeSource, where: str, warnings: list[str]) -> Iterator[_Item]:
    items = legalize_items(source, where, lambda message: _warn(warnings, message))
    with progress_bar(f"collect: legalize {source.path}", None) as bar:
        for item in items:
            yield _Item(item.label, item.documents, item.problem, input_file=item.input_file)
            bar.advance()


def _warn(warnings: list[str], message: str) -> None:
    warnings.append(message)
    console.print(f"[yellow]warning:[/yellow] {escape(message)}", highlight=False, soft_wrap=True)


def _print_skipped(skipped: list[dict[str, str]], path: Path) -> None:
    """The first skipped inputs with their reasons, then where the whole list is."""
    if not skipped:
        return
    console.print(f"[yellow]collect: {len(skipped)} input(s) skipped:[/yellow]", highlight=False)
    for row in skipped[:_SKIPPED_SHOWN]:
        where = f"{row['input']}:{row['where']}" if row["where"] else row["input"]
        console.print(f"  {escape(where)}: {escape(row['reason'])}", highlight=False, soft_wrap=True)
    if len(skipped) > _SKIPPED_SHOWN:
        console.print(f"  … and {len(skipped) - _SKIPPED_SHOWN} more", highlight=False)
    console.print(f"  all of them, with reasons: {escape(str(path))}", highlight=False, soft_wrap=True)


@contextlib.contextmanager
def _sigterm_stops_collect() -> Iterator[None]:
    """SIGTERM (a pod being stopped, `kill`) ends collect like an error: the temporary output is removed, the
    previous documents.jsonl and every cached response stay, and the rerun fetches only what is not cached."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum: int, frame: object) -> None:
        raise SlmError(
            "collect: stopped by SIGTERM; nothing was written (the previous output, if any, is unchanged)",
            "rerun the same command: law.go.kr responses already received are read from the cache",
        )

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _cache_dir(ctx: StageContext) -> Path:
    return Path(ctx.cfg.collect.cache_dir) if ctx.cfg.collect.cache_dir else ctx.stage_dir / "cache"


def _lawgo_items(ctx: StageContext, source: LawgoSource, where: str, stats: Counter[str]) -> Iterator[_Item]:
    # Imported here: httpx and the client are only needed when a config asks for the API.
    from slm_datagen.collect.lawgo_client import LawgoClient
    from slm_datagen.collect.lawgo_source import collect_lawgo

    cache_dir = _cache_dir(ctx)
    # The number of details is only known once the searches ran, so the bar counts without a total.
    with (
        LawgoClient.from_source(source, cache_dir) as client,
        progress_bar(f"collect: law.go.kr {source.target}", None) as bar,
    ):
        try:
            for label, documents, problem in collect_lawgo(client, source, where, stats):
                yield _Item(label, documents, problem)
                bar.advance()
        finally:
            stats["lawgo_requests"] += client.stats.requests
            stats["lawgo_cache_hits"] += client.stats.cache_hits
            stats["lawgo_retries"] += client.stats.retries


def input_signature(cfg: RunConfig) -> list[list[object]]:
    """What the fingerprint must see besides the config: each local input file's path, size and mtime.

    So an edited, added or removed dump file reruns collect (and only what depends on it) without --force.
    law.go.kr sources are not listed: their raw responses are cached, and re-collecting is what --force is for.
    """
    listing: list[list[object]] = []
    for index, source in enumerate(cfg.collect.sources):
        if isinstance(source, BundledSource):
            entries = [(path, None) for path in bundled_files(list(source.include))]
        elif isinstance(source, DumpSource):
            entries = [(e.path, e.problem) for e in list_dump(source, f"collect.sources.{index}").entries]
        elif isinstance(source, LegalizeSource):  # the checkout's HEAD and the as_of day, not file mtimes
            listing.append(legalize_signature(source, f"collect.sources.{index}"))
            continue
        else:
            continue
        for path, problem in entries:
            if problem is not None:  # listed with its reason: once it is fixed, collect reruns
                listing.append([str(path), problem])
            else:
                stat = path.stat()
                listing.append([str(path), stat.st_size, stat.st_mtime_ns])
    return listing


def run_collect(ctx: StageContext) -> StageResult:
    cfg = ctx.cfg.collect
    if not cfg.sources:
        raise SlmError("collect.sources is empty", "add a source, e.g. `- kind: bundled` (see configs/smoke.yaml)")
    out_path = ctx.stage_dir / DOCUMENTS
    api_stats: Counter[str] = Counter()
    warnings: list[str] = []
    swept = sweep_temporaries(ctx.stage_dir, _cache_dir(ctx))
    with _sigterm_stops_collect(), atomic_writer(out_path) as handle:
        writer = _Writer(handle, cfg.on_error)
        for index, source in enumerate(cfg.sources):
            where = f"collect.sources.{index}"
            if isinstance(source, BundledSource):
                items, kind = _bundled_items(source), "bundled"
            elif isinstance(source, DumpSource):
                items, kind = _dump_items(source, where, warnings), "dump"
            elif isinstance(source, LegalizeSource):
                items, kind = _legalize_items(source, where, warnings), "legalize"
            else:
                items, kind = _lawgo_items(ctx, source, where, api_stats), "lawgo"
            for item in items:
                writer.take(item, kind)
    skipped_path = ctx.stage_dir / SKIPPED
    write_jsonl(skipped_path, writer.skipped)
    _print_skipped(writer.skipped, skipped_path)

    counts = dict(writer.counts)
    counts.update(api_stats)
    for key in ("documents", "skipped", "duplicates"):
        counts.setdefault(key, 0)
    if counts["documents"] == 0:
        raise SlmError(
            f"collect read {counts.get('items_read', 0)} input(s) but found no documents"
            + (f" ({counts['skipped']} skipped; see {skipped_path})" if counts["skipped"] else ""),
            "check collect.sources (paths, law names, query) and the skipped list",
        )
    kinds = ", ".join(
        f"{counts[k]} {k}" for k in ("statute_article", "precedent", "interpretation", "ruling") if counts.get(k)
    )
    summary = (
        f"{counts['documents']} documents ({kinds}); {counts['skipped']} skipped, {counts['duplicates']} duplicates"
    )
    if api_stats:
        summary += f"; law.go.kr: {counts['lawgo_requests']} requests, {counts['lawgo_cache_hits']} from cache"
    stats: dict[str, Any] = {"encodings": dict(writer.encodings)}
    if warnings:
        stats["warnings"] = warnings
    if swept:
        stats["temporaries_removed"] = [str(path) for path in swept]  # left by a killed run
    if writer.skipped:
        stats["skipped_examples"] = writer.skipped[:_MAX_SKIPPED_IN_STATS]
    return StageResult(
        outputs=[out_path, skipped_path],
        counts=counts,
        stats=stats,
        extra_inputs=writer.inputs,
        summary=summary,
    )
