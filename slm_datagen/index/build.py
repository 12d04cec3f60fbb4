"""Build the retrieval index from prepare's chunks.jsonl, streaming: one pass over the file, one Kiwi analysis per
distinct word, then bm25s builds its sparse score matrix from the term ids.

What goes into the index directory (`runs/<run>/index/`):
    chunks.jsonl        the searchable chunks, in index order (a hit is read from here: the index stands alone)
    chunk_offsets.npy   byte offset of each line (n + 1 values), so a hit is one seek and one read
    articles.json       the statute articles held: "법령명|조|가지" keys, each one version group
    docs.npz            per chunk: its article group (-1: not a statute article), 시행일자 as YYYYMMDD (0: unknown) and
                        the number of distinct terms of its title subject
    bm25/               the bm25s index of title + text (score matrix, vocabulary, parameters)
    bm25_title/         the bm25s index of the title subjects alone (an article's heading "세율", a ruling's question),
                        same vocabulary: search reads its postings to see how much of a subject the query names
    index.json          settings, counts and library versions, written after everything else
"""

from __future__ import annotations

import importlib.metadata
import json
import shutil
import time
from array import array
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import ValidationError

from slm_datagen.index.terms import TermAnalyser
from slm_datagen.index.versions import article_key, date_number
from slm_forest.config import IndexConfig
from slm_forest.errors import SlmError
from slm_forest.files import atomic_path, atomic_writer, write_json
from slm_forest.progress import progress_bar
from slm_forest.records import Chunk

INDEX_FORMAT = 3  # bump when the files above or the terms (terms.py) change: load_index refuses other formats
_BATCH = 512  # chunks analysed per Kiwi call: enough to keep its threads busy, small enough to stream


@dataclass
class BuildOutcome:
    outputs: list[Path]
    counts: dict[str, int]
    stats: dict[str, Any] = field(default_factory=dict)


@dataclass
class _Corpus:
    """What the pass over chunks.jsonl collects besides the records file."""

    term_ids: list[array] = field(default_factory=list)  # per chunk, its terms as vocabulary ids (int32)
    title_ids: list[array] = field(default_factory=list)  # per chunk, the terms of its title alone
    vocab: dict[str, int] = field(default_factory=dict)
    groups: list[int] = field(default_factory=list)
    effective: list[int] = field(default_factory=list)
    article_keys: dict[str, int] = field(default_factory=dict)
    offsets: list[int] = field(default_factory=lambda: [0])
    by_kind: dict[str, int] = field(default_factory=dict)
    skipped_kinds: int = 0
    terms: int = 0


def build_index(chunks_path: Path, out_dir: Path, cfg: IndexConfig, total: int | None = None) -> BuildOutcome:
    """Index `chunks_path` into `out_dir`; every file is written atomically and index.json last."""
    started = time.perf_counter()
    corpus = _read_chunks(chunks_path, out_dir / "chunks.jsonl", cfg, total)
    if not corpus.groups:
        raise SlmError(
            f"{chunks_path}: no chunk of the kinds {', '.join(cfg.kinds)} to index",
            "add those kinds to collect's sources, or widen index.kinds",
        )
    analysed = time.perf_counter()
    bm25_dir = _write_bm25(corpus.term_ids, corpus.vocab, out_dir / "bm25", cfg)
    title_dir = _write_bm25(corpus.title_ids, corpus.vocab, out_dir / "bm25_title", cfg)
    with atomic_path(out_dir / "chunk_offsets.npy") as tmp:
        with open(tmp, "wb") as handle:
            np.save(handle, np.asarray(corpus.offsets, dtype=np.int64))
    with atomic_path(out_dir / "docs.npz") as tmp:
        with open(tmp, "wb") as handle:
            np.savez(
                handle,
                group=np.asarray(corpus.groups, np.int32),
                effective=np.asarray(corpus.effective, np.int32),
                subject_terms=np.asarray([len(set(ids)) for ids in corpus.title_ids], np.int32),
            )
    write_json(out_dir / "articles.json", {"keys": list(corpus.article_keys)})
    counts = {
        "chunks": len(corpus.groups),
        "articles": len(corpus.article_keys),
        "statute_chunks": sum(1 for group in corpus.groups if group >= 0),
        "terms": len(corpus.vocab),
        "skipped_kinds": corpus.skipped_kinds,
    }
    stats = {
        "by_kind": dict(sorted(corpus.by_kind.items())),
        "term_occurrences": corpus.terms,
        "analyse_seconds": round(analysed - started, 2),
        "bm25_seconds": round(time.perf_counter() - analysed, 2),
    }
    write_json(out_dir / "index.json", _meta(cfg, counts, stats))
    outputs = [out_dir / name for name in ("chunks.jsonl", "chunk_offsets.npy", "articles.json", "docs.npz")]
    return BuildOutcome([*outputs, bm25_dir, title_dir, out_dir / "index.json"], counts, stats)


def _read_chunks(path: Path, records_path: Path, cfg: IndexConfig, total: int | None) -> _Corpus:
    """One pass: validate each line, keep the chosen kinds, copy them to the records file, analyse them in batches."""
    if not path.exists():
        raise SlmError(f"{path}: file not found", "run `slm prepare CONFIG` first")
    corpus = _Corpus()
    analyser = TermAnalyser(cfg.tags)
    kinds = set(cfg.kinds)
    pending: list[tuple[str, str]] = []  # (title + text, title)
    with open(path, "rb") as source, atomic_writer(records_path, "wb") as records:
        with progress_bar("index", total) as bar:
            for line_no, raw in enumerate(source, start=1):
                if not raw.strip():
                    continue
                chunk = _parse_chunk(raw, path, line_no)
                bar.advance()
                if chunk.kind not in kinds:
                    corpus.skipped_kinds += 1
                    continue
                line = raw if raw.endswith(b"\n") else raw + b"\n"
                records.write(line)
                corpus.offsets.append(corpus.offsets[-1] + len(line))
                _add_version(corpus, chunk, path, line_no)
                pending.append((f"{chunk.title}\n{chunk.text}", _subject(chunk)))
                if len(pending) >= _BATCH:
                    _add_terms(corpus, analyser, pending)
                    pending = []
            _add_terms(corpus, analyser, pending)
    return corpus


def _subject(chunk: Chunk) -> str:
    """What the title says a statute article is about: its heading without the citation ("소득세법 제55조(세율)" ->
    "세율"; the law and the number are matched by the exact look-up). Other chunks have none: a ruling's title is its
    whole question, whose common words gave the title postings so many rows at corpus scale that k=5 queries on 400 MB
    went from p50 8.7 to 12.3 ms, for a lift the text's own BM25 score already gives (bundled recall unchanged)."""
    if chunk.kind == "statute_article" and chunk.title.startswith(chunk.citation):
        return chunk.title[len(chunk.citation) :].strip().strip("()")
    return ""


def _parse_chunk(raw: bytes, path: Path, line_no: int) -> Chunk:
    try:
        return Chunk.model_validate_json(raw)
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(part) for part in error["loc"]) or "line"
        raise SlmError(
            f"{path}:{line_no}: not a chunk record ({where}: {error['msg']})",
            "rerun `slm prepare CONFIG --force` to rewrite chunks.jsonl, or fix that line",
        ) from None


def _add_version(corpus: _Corpus, chunk: Chunk, path: Path, line_no: int) -> None:
    corpus.by_kind[chunk.kind] = corpus.by_kind.get(chunk.kind, 0) + 1
    key = article_key(chunk)
    group = -1 if key is None else corpus.article_keys.setdefault(key, len(corpus.article_keys))
    corpus.groups.append(group)
    try:
        corpus.effective.append(date_number(chunk.effective_date) if chunk.effective_date else 0)
    except ValueError:
        raise SlmError(
            f"{path}:{line_no}: effective_date {chunk.effective_date!r} is not a YYYY-MM-DD date",
            "fix the 시행일자 in collect's source, then rerun `slm collect CONFIG --force` and `slm prepare`",
        ) from None


def _add_terms(corpus: _Corpus, analyser: TermAnalyser, texts: list[tuple[str, str]]) -> None:
    vocab = corpus.vocab
    # the title's words are in the text's analysis already (the title heads the text): the second call costs lookups
    for terms, title_terms in zip(
        analyser.terms_of_many([t for t, _ in texts]), analyser.terms_of_many([t for _, t in texts])
    ):
        ids = array("i", [vocab.setdefault(term, len(vocab)) for term in terms])
        corpus.term_ids.append(ids)
        corpus.title_ids.append(array("i", [vocab.setdefault(term, len(vocab)) for term in title_terms]))
        corpus.terms += len(ids)


def _write_bm25(term_ids: list[array], vocab: dict[str, int], final: Path, cfg: IndexConfig) -> Path:
    """bm25s builds the score matrix from the term ids; saved into a staging directory, then renamed into place.
    Both indexes share one vocabulary, so a query's ids are looked up once and score both."""
    import bm25s  # noqa: PLC0415 - numpy-only, but not needed by `slm --help`

    retriever = bm25s.BM25(k1=cfg.k1, b=cfg.b, method="lucene")
    # A chunk with no term at all (a table of numbers with SN not kept) still needs one id for bm25s' length and
    # frequency passes; bm25s' own empty token "" plays that role, as in its string API.
    empty = vocab.setdefault("", len(vocab))
    ids = [terms if len(terms) else array("i", [empty]) for terms in term_ids]
    retriever.index(bm25s.tokenization.Tokenized(ids=ids, vocab=vocab), show_progress=False)
    staging = final.parent / f".{final.name}.tmp"  # swept by the runner if a killed build leaves it
    shutil.rmtree(staging, ignore_errors=True)
    retriever.save(staging, show_progress=False)
    shutil.rmtree(final, ignore_errors=True)
    staging.rename(final)
    return final


def _meta(cfg: IndexConfig, counts: dict[str, int], stats: dict[str, Any]) -> dict[str, Any]:
    versions = {}
    for name in ("bm25s", "kiwipiepy", "kiwipiepy_model"):
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return {
        "format": INDEX_FORMAT,
        "settings": cfg.model_dump(mode="json", exclude={"enabled", "k"}),
        "k": cfg.k,
        "counts": counts,
        "stats": stats,
        "versions": versions,
    }


def read_meta(index_dir: Path) -> dict[str, Any]:
    """index.json of a built index, or an SlmError saying what is missing."""
    path = index_dir / "index.json"
    if not path.exists():
        raise SlmError(f"{index_dir}: no retrieval index here (no index.json)", "run `slm index CONFIG` first")
    meta = json.loads(path.read_text(encoding="utf-8"))
    if meta.get("format") != INDEX_FORMAT:
        raise SlmError(
            f"{path}: index format {meta.get('format')} but this version reads format {INDEX_FORMAT}",
            "rebuild it: `slm index CONFIG --force`",
        )
    return meta
