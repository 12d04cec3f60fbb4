"""Retrieval over the law in force: the chunks of `slm prepare`, searchable by cited article and by BM25 over Korean
morphemes, one version of each article per date.

    from slm_datagen.index import load_index, search
    index = load_index(run_dir / "index")
    result = search(index, "법 제55조의 세율은?", k=5, as_of="2025-01-01", law="소득세법")
    for hit in result.hits: print(hit.rank, hit.citation, hit.effective_date, hit.score)

Modules: `terms` (morphemes → search terms), `versions` (which version is in force), `build` (the index files),
`search` (the query side), `metrics` (recall@k, MRR), `stage` (`slm index`), `show` (`slm index --query`).
"""

from __future__ import annotations

from slm_datagen.index.search import Hit, RetrievalIndex, SearchResult, load_index, search

__all__ = ["Hit", "RetrievalIndex", "SearchResult", "load_index", "search"]
