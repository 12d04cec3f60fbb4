"""Search a built index: cited articles first, then BM25 over Korean morphemes, only the versions in force.

    index = load_index(Path("runs/smoke/index"))
    result = search(index, "소득세법 제12조 비과세소득에는 무엇이 있나요?", k=5, as_of="2026-12-01")
    result.hits[0].citation, result.hits[0].effective_date, result.hits[0].match  # '소득세법 제12조', '2026-07-01', 'citation'

Order of the hits:
1. every article the query cites ("소득세법 제55조", "소득세법 제55조 제1항", or "법 제55조" / "같은 법 제3조" with
   `law` naming the law in context), in the order cited: its chunk that holds the cited 항/호/목, else its best BM25
   chunk. A cited article the index does not hold is listed in `missing` (the caller can say so).
2. then the BM25 ranking (Lucene variant, over the terms of slm_datagen.index.terms) until k hits, with two lifts:
   a chunk whose title subject the query names ("세율", "압류금지 재산": the share of the subject's terms the query
   has) scores up to ×(1 + TITLE_WEIGHT), and the articles of a law the query names ("소득세법에서 …", or `law`)
   ×(1 + LAW_WEIGHT). On the bundled corpus they took uncited teacher questions from recall@5 0.86 to 0.95
   (tests/test_index_recall.py).
Both see only what is searchable on `as_of` (slm_datagen.index.versions): superseded versions never appear.
"""

from __future__ import annotations

import json
import os
import re
import threading
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict

from slm_datagen.index.build import read_meta
from slm_datagen.index.terms import QUERY_TABLE_LIMIT, TermAnalyser
from slm_datagen.index.versions import as_of_number, citation_key, number_to_date, searchable
from slm_datagen.taxlaw.citations import Citation, find_citations, normalize_law_name
from slm_forest.errors import SlmError
from slm_forest.records import nfc

TITLE_WEIGHT = 1.0  # a chunk whose title subject the query names in full scores ×(1 + TITLE_WEIGHT)
LAW_WEIGHT = 1.0  # the articles of a law the query names score ×(1 + LAW_WEIGHT)
_CIRCLED = "".join(chr(0x2460 + n) for n in range(20))  # ①..⑳: paragraph markers at the start of a line


class Hit(BaseModel):
    """One retrieved chunk, with what a prompt needs to cite it."""

    model_config = ConfigDict(extra="forbid")

    rank: int  # 1-based
    score: float  # BM25 score (0.0 for a cited article whose text shares no term with the query)
    match: Literal["citation", "bm25"]  # how it was found
    cited_as: str | None = None  # the query's citation that found it: "소득세법 제55조 제1항"
    chunk_id: str
    doc_id: str
    kind: str
    citation: str  # "소득세법 제55조", or the ruling's document number
    title: str
    text: str
    law_name: str | None = None
    article_no: int | None = None
    article_branch: int | None = None
    effective_date: str | None = None  # 시행일자 of this version (statute articles)
    in_force: bool | None = None  # on as_of; False: the only version held starts later; None: no 시행일 (rulings)


class SearchResult(BaseModel):
    model_config = ConfigDict(extra="forbid")

    query: str
    as_of: str  # YYYY-MM-DD the versions were chosen for
    hits: list[Hit]
    cited: list[str]  # articles the query cites that the index holds
    missing: list[str]  # articles the query cites that the index does not hold


@dataclass
class RetrievalIndex:
    """A loaded index; `search` only reads it, so one instance serves many threads."""

    path: Path
    meta: dict[str, Any]
    bm25: Any  # bm25s.BM25 over title + text
    title_bm25: Any  # bm25s.BM25 over the title subjects, same vocabulary: its postings give subject coverage
    analyser: TermAnalyser
    offsets: np.ndarray
    group: np.ndarray
    effective: np.ndarray
    subject_terms: np.ndarray  # distinct terms of each chunk's title subject (0: none)
    articles: dict[str, int]
    _members: dict[int, np.ndarray] = field(default_factory=dict)
    _masks: dict[int, np.ndarray] = field(default_factory=dict)
    _fd: int = -1
    _laws: dict[str, int] | None = None
    row_law: np.ndarray | None = None  # per chunk, its law's id in law_names() (-1: not a statute article)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def size(self) -> int:
        return len(self.group)

    def record(self, row: int) -> dict[str, Any]:
        start, end = int(self.offsets[row]), int(self.offsets[row + 1])
        return json.loads(os.pread(self._fd, end - start, start))

    def members(self, group: int) -> np.ndarray:
        """Rows of one article group (every version), in file order."""
        if not self._members:
            with self._lock:
                order = np.argsort(self.group, kind="stable")
                sorted_groups = self.group[order]
                bounds = np.searchsorted(sorted_groups, np.arange(len(self.articles) + 1))
                self._members.update({g: order[bounds[g] : bounds[g + 1]] for g in range(len(self.articles))})
        return self._members[group]

    def law_names(self) -> dict[str, int]:
        """The laws held ("소득세법" -> its id in `row_law`)."""
        if self._laws is None:
            with self._lock:
                laws: dict[str, int] = {}
                of_group = np.asarray([laws.setdefault(key.split("|", 1)[0], len(laws)) for key in self.articles])
                self.row_law = (
                    np.where(self.group >= 0, of_group[np.maximum(self.group, 0)], -1)
                    if len(of_group)
                    else np.full(len(self.group), -1)
                )
                self._laws = laws
        return self._laws

    def mask(self, as_of: int) -> np.ndarray:
        """1.0 for the rows searchable on `as_of`, 0.0 for the rest (superseded versions)."""
        mask = self._masks.get(as_of)
        if mask is None:
            mask = searchable(self.group, self.effective, as_of).astype(np.float32)
            if len(self._masks) > 64:  # a server asked for many dates: keep memory bounded
                self._masks.clear()
            self._masks[as_of] = mask
        return mask

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


def load_index(path: Path) -> RetrievalIndex:
    """Open an index directory written by `slm index` (runs/<run>/index)."""
    import bm25s  # noqa: PLC0415 - only when retrieval is used

    path = Path(path)
    meta = read_meta(path)
    try:
        bm25 = bm25s.BM25.load(path / "bm25", mmap=False, show_progress=False)
        title_bm25 = bm25s.BM25.load(path / "bm25_title", mmap=False, show_progress=False)
        offsets = np.load(path / "chunk_offsets.npy")
        with np.load(path / "docs.npz") as docs:
            group, effective, subject_terms = docs["group"], docs["effective"], docs["subject_terms"]
        keys = json.loads((path / "articles.json").read_text(encoding="utf-8"))["keys"]
        fd = os.open(path / "chunks.jsonl", os.O_RDONLY)
    except (OSError, ValueError, KeyError) as exc:
        raise SlmError(
            f"{path}: the index is incomplete or damaged ({type(exc).__name__}: {exc})",
            "rebuild it: `slm index CONFIG --force`",
        ) from None
    if not len(offsets) == len(group) + 1 == int(bm25.scores["num_docs"]) + 1:
        os.close(fd)
        raise SlmError(
            f"{path}: the index files disagree on the number of chunks", "rebuild: `slm index CONFIG --force`"
        )
    analyser = TermAnalyser(meta["settings"]["tags"], limit=QUERY_TABLE_LIMIT)
    analyser.terms("세법")  # Kiwi's first analysis takes seconds (lazy set-up): pay it here, not in the first query
    articles = {key: g for g, key in enumerate(keys)}
    return RetrievalIndex(
        path, meta, bm25, title_bm25, analyser, offsets, group, effective, subject_terms, articles, _fd=fd
    )


def search(
    index: RetrievalIndex, query: str, k: int | None = None, as_of: str | date | None = None, law: str | None = None
) -> SearchResult:
    """The top `k` chunks for `query` (default: the index's `index.k`) in the law in force on `as_of` (default:
    today). `law` is the law in context, for "법 제55조" or a bare "제55조" in the query."""
    k = index.meta["k"] if k is None else k
    if not isinstance(k, int) or k < 1:
        raise SlmError(f"k={k!r}: the number of hits must be a whole number of at least 1", "e.g. k=5")
    query = nfc(query or "").strip()
    if not query:
        raise SlmError("the search query is empty", "ask a question, e.g. '증여재산공제 한도는 얼마인가요?'")
    day = as_of_number(as_of)
    mask = index.mask(day)
    scores = _bm25_scores(index, query, mask)
    _prefer_named_laws(index, query, law, scores)
    chosen: list[tuple[int, str | None]] = []  # (row, cited_as)
    cited, missing = _cited_rows(index, query, law, mask, scores, chosen)
    taken = {row for row, _ in chosen}
    for row in _top_rows(scores, k + len(taken)):
        if len(chosen) >= k:
            break
        if row not in taken:
            chosen.append((row, None))
    hits = [_hit(index, rank, row, cited_as, float(scores[row]), day) for rank, (row, cited_as) in enumerate(chosen, 1)]
    return SearchResult(query=query, as_of=number_to_date(day), hits=hits[:k], cited=cited, missing=missing)


def _bm25_scores(index: RetrievalIndex, query: str, mask: np.ndarray) -> np.ndarray:
    ids = index.bm25.get_tokens_ids(index.analyser.terms(query))
    if not ids:
        return np.zeros(index.size, dtype=np.float32)
    scores = index.bm25.get_scores_from_ids(ids, weight_mask=mask)
    # Multiplied, not added: a title match lifts a chunk that the text already ranks, but a chunk sharing only a
    # title word with the query (a content line that mentions 과세표준) does not leap over the chunk it came from.
    # (An added title BM25 score raised title questions too, but cost content questions 0.95 -> 0.85 recall@5.)
    return scores * (1.0 + TITLE_WEIGHT * _subject_coverage(index, ids))


def _subject_coverage(index: RetrievalIndex, ids: list[int]) -> np.ndarray:
    """Per chunk, the share of its title's subject terms that the query has (1.0: the query names the subject)."""
    indptr, indices = index.title_bm25.scores["indptr"], index.title_bm25.scores["indices"]
    found = np.zeros(index.size, dtype=np.float32)
    for term in set(ids):
        found[indices[indptr[term] : indptr[term + 1]]] += 1.0
    return found / np.maximum(index.subject_terms, 1)


def _prefer_named_laws(index: RetrievalIndex, query: str, law: str | None, scores: np.ndarray) -> None:
    """A query that names a law ("소득세법에서 세율은?"), or a law in context, lifts that law's articles (×(1 +
    LAW_WEIGHT)): other laws' articles on the same words (상증법 and 소득세법 both have 세율) fall behind. The
    longest name wins, so "법인세법 시행령" is not read as 법인세법."""
    names = index.law_names()
    text = normalize_law_name(query)
    named = {name for name in names if name in text}
    named = {name for name in named if not any(name != other and name in other for other in named)}
    if law:
        named.add(normalize_law_name(law))
    for name in named:
        law_id = names.get(name)
        if law_id is not None:
            scores[index.row_law == law_id] *= 1.0 + LAW_WEIGHT


def _top_rows(scores: np.ndarray, n: int) -> list[int]:
    """Rows with a positive score, best first (ties: file order), at most `n`."""
    n = min(n, len(scores))
    top = np.argpartition(-scores, n - 1)[:n] if n < len(scores) else np.arange(len(scores))
    top = top[scores[top] > 0]
    return [int(row) for row in sorted(top, key=lambda row: (-scores[row], row))]


def _cited_rows(
    index: RetrievalIndex,
    query: str,
    law: str | None,
    mask: np.ndarray,
    scores: np.ndarray,
    chosen: list[tuple[int, str | None]],
) -> tuple[list[str], list[str]]:
    """Append the best chunk of each cited article to `chosen`; returns (cited articles held, cited not held)."""
    cited: list[str] = []
    missing: list[str] = []
    seen: set[str] = set()
    for citation in find_citations(query, default_law=law):
        key = citation_key(citation)
        label = _article_label(citation)
        if key in seen:
            continue
        seen.add(key)
        group = index.articles.get(key)
        rows = [] if group is None else [int(row) for row in index.members(group) if mask[row] > 0]
        if not rows:
            missing.append(label)
            continue
        cited.append(label)
        best = max(rows, key=lambda row: (_marker_match(index, row, citation), scores[row], -row))
        chosen.append((best, citation.label))
    return cited, missing


def _article_label(citation: Citation) -> str:
    return f"{citation.law} 제{citation.article}조" + (f"의{citation.branch}" if citation.branch else "")


def _marker_match(index: RetrievalIndex, row: int, citation: Citation) -> int:
    """How many of the cited 항 / 호 / 목 start a line of this chunk (a long article is cut into several chunks)."""
    if citation.paragraph is None and citation.item is None and citation.subitem is None:
        return 0
    text = index.record(row)["text"]
    found = 0
    if citation.paragraph is not None and citation.paragraph <= len(_CIRCLED):
        found += bool(re.search(rf"^\s*{_CIRCLED[citation.paragraph - 1]}", text, re.M))
    if citation.item is not None:
        found += bool(re.search(rf"^\s*{citation.item}\.", text, re.M))
    if citation.subitem is not None:
        found += bool(re.search(rf"^\s*{citation.subitem}\.", text, re.M))
    return found


def _hit(index: RetrievalIndex, rank: int, row: int, cited_as: str | None, score: float, day: int) -> Hit:
    record = index.record(row)
    effective = int(index.effective[row])
    in_force = None if index.group[row] < 0 or effective == 0 else effective <= day
    return Hit(
        rank=rank,
        score=round(score, 4),
        match="citation" if cited_as else "bm25",
        cited_as=cited_as,
        chunk_id=record["id"],
        doc_id=record["doc_id"],
        kind=record["kind"],
        citation=record["citation"],
        title=record["title"],
        text=record["text"],
        law_name=record.get("law_name"),
        article_no=record.get("article_no"),
        article_branch=record.get("article_branch"),
        effective_date=record.get("effective_date"),
        in_force=in_force,
    )


def load_run_index(cfg: Any) -> RetrievalIndex:
    """The index of a run (`runs/<run>/index`), refusing one whose stage did not finish or is switched off."""
    from slm_forest.manifest import read_manifest  # noqa: PLC0415 - keeps this module's imports light

    index_dir = cfg.run_dir() / "index"
    config_arg = cfg.source_path or "CONFIG"
    if not cfg.index.enabled:
        raise SlmError("index.enabled is false in this config: there is no index to search", "set index.enabled: true")
    manifest = read_manifest(index_dir)
    if manifest is None or not manifest.complete:
        raise SlmError(f"{index_dir}: the index has not been built", f"run `slm index {config_arg}` first")
    return load_index(index_dir)
