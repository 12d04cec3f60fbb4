"""RAFT-style pairs: which pairs get retrieved law in their question, and which articles (`distill.context`).

A pair with a context is shown to the model as `index.context.question_with_context(question, articles)` (the one
layout `ask/serve --retrieve` also use) and its answer cites the gold article, the pair's own source chunk, so a tuned
model learns to answer from retrieved law and to cite what it was given.

- Which pairs: a seeded share (`distill.context_share`) decided per pair from its request key, so a rerun picks the
  same pairs and the rest stay plain questions (the model must still answer without retrieval).
- The gold article: the source chunk, as the index would return it (`article_from`).
- Distractors (`gold+distractors`): the BM25 neighbours of the question in the run's retrieval index that are not
  the gold document, in the retriever's order with the gold at the rank the retriever gave it (what `--retrieve`
  shows at answer time); with no finished index, a seeded choice of other articles of the same law, the gold at a
  seeded position. Either way the context's citations and the gold's position go into the pair's meta.
"""

from __future__ import annotations

import hashlib
import random
from collections import defaultdict
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from slm_datagen.index.context import DEFAULT_MAX_CHARS, ContextArticle, article_from
from slm_datagen.taxlaw.citations import find_citations, normalize_law_name
from slm_forest.config import DistillConfig
from slm_forest.records import Chunk


@dataclass(frozen=True)
class PairContext:
    """The articles shown with one pair's question; `gold` is the 1-based position of the source article."""

    articles: tuple[ContextArticle, ...]
    gold: int
    distractors_from: str  # "index" (BM25 neighbours), "same_law" (seeded choice) or "none" (gold alone)
    max_chars: int = DEFAULT_MAX_CHARS  # of each article, when the prompt is rendered (distill.context_max_chars)

    def meta(self) -> dict[str, Any]:
        return {
            "context": [article.model_dump(mode="json") for article in self.articles],
            "context_gold": self.gold,
            "context_citations": [article.citation for article in self.articles],
            "context_distractors_from": self.distractors_from,
            "context_max_chars": self.max_chars,
        }


@dataclass
class ContextSource:
    """What distractors are drawn from: the run's index when it is built, else the chunks grouped by law."""

    cfg: DistillConfig
    seed: int
    index: Any = None  # slm_datagen.index.search.RetrievalIndex
    by_law: dict[str, list[Chunk]] = field(default_factory=dict)
    gold_ranks: dict[int, int] = field(default_factory=lambda: defaultdict(int))  # position of the gold -> pairs

    def close(self) -> None:
        if self.index is not None:
            self.index.close()


def open_context_source(run_dir: Path, chunks_path: Path, cfg: DistillConfig, seed: int) -> ContextSource | None:
    """None when `distill.context` is none. The index is used only when its stage finished (its manifest); without
    it the statute chunks are held in memory, grouped by law, to draw distractors from."""
    if cfg.context == "none":
        return None
    source = ContextSource(cfg, seed)
    if cfg.context == "gold":
        return source
    index_dir = run_dir / "index"
    from slm_forest.manifest import read_manifest  # noqa: PLC0415 - light, but only needed here

    manifest = read_manifest(index_dir) if index_dir.is_dir() else None
    if manifest is not None and manifest.complete and manifest.outputs:
        from slm_datagen.index.search import load_index  # noqa: PLC0415 - loads numpy/bm25s/kiwi only when used

        source.index = load_index(index_dir)
        return source
    from slm_datagen.distill.plan import iter_chunks  # noqa: PLC0415 - plan imports the teachers' modules

    for chunk in iter_chunks(chunks_path):
        law = chunk_law(chunk)
        if law and chunk.kind == "statute_article":
            source.by_law.setdefault(law, []).append(chunk)
    return source


def chunk_law(chunk: Chunk) -> str | None:
    """A statute chunk's law; for a ruling, the first law it cites (its 관련법령)."""
    if chunk.law_name:
        return normalize_law_name(chunk.law_name)
    for text in chunk.related_laws:
        cited = find_citations(text)
        if cited and cited[0].law:
            return normalize_law_name(cited[0].law)
    return None


def wants_context(source: ContextSource | None, pair_key: str) -> bool:
    """Whether this pair gets a context: a seeded draw from its key (stable across reruns, `context_share` of all)."""
    if source is None:
        return False
    digest = hashlib.sha256(f"{source.seed}:context:{pair_key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < source.cfg.context_share


def choose_context(source: ContextSource, chunk: Chunk, question: str, pair_key: str) -> PairContext:
    """The gold article (the source chunk) with its distractors, in the order the prompt shows them."""
    gold = article_from(chunk)
    if source.cfg.context == "gold":
        return _counted(source, PairContext((gold,), 1, "none"))
    wanted = source.cfg.context_distractors
    rng = random.Random(f"{source.seed}:distractors:{pair_key}")
    if source.index is not None:
        return _counted(source, _from_index(source.index, chunk, gold, question, wanted, rng))
    pool = [c for c in source.by_law.get(chunk_law(chunk) or "", []) if c.doc_id != chunk.doc_id]
    picked = rng.sample(pool, min(wanted, len(pool)))
    articles = [article_from(c) for c in picked]
    position = rng.randint(0, len(articles))
    articles.insert(position, gold)
    return _counted(source, PairContext(tuple(articles), position + 1, "same_law"))


def _from_index(
    index: Any, chunk: Chunk, gold: ContextArticle, question: str, wanted: int, rng: random.Random
) -> PairContext:
    """BM25 neighbours of the question that are not the gold document, the gold at the retriever's rank of it."""
    from slm_datagen.index.search import search  # noqa: PLC0415

    # As of the source's own 시행일: the neighbours a reader of that version of the law would have retrieved.
    hits = search(index, question, k=wanted + 8, as_of=chunk.effective_date).hits
    ranked: list[ContextArticle] = []
    gold_rank: int | None = None
    seen: set[str] = set()
    for hit in hits:
        if hit.doc_id == chunk.doc_id:
            gold_rank = len(ranked) if gold_rank is None else gold_rank
            continue
        if hit.doc_id in seen or len(ranked) >= wanted:
            continue
        seen.add(hit.doc_id)
        ranked.append(article_from(hit))
    # Not retrieved at all: the gold goes to a seeded place, as RAFT does, rather than always first or last.
    position = min(gold_rank, len(ranked)) if gold_rank is not None else rng.randint(0, len(ranked))
    ranked.insert(position, gold)
    return PairContext(tuple(ranked), position + 1, "index")


def _counted(source: ContextSource, context: PairContext) -> PairContext:
    source.gold_ranks[context.gold] += 1
    return replace(context, max_chars=source.cfg.context_max_chars)
