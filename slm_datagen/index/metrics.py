"""Retrieval quality: where the source article of a question lands in the hits (recall@k, MRR).

    ranks = [source_rank(search(index, q, k=5).hits, gold) for q, gold in questions]
    retrieval_metrics(ranks, ks=(1, 5)) -> {"n": 60, "recall@1": 0.75, "recall@5": 1.0, "mrr": 0.84}

A hit counts when its citation is the source's ("소득세법 제12조"): any chunk of the source article, since a question
about an article is answered by the article, whichever of its chunks comes first.
"""

from __future__ import annotations

from collections.abc import Sequence

from slm_datagen.index.search import Hit


def source_rank(hits: Sequence[Hit], citation: str) -> int | None:
    """1-based rank of the first hit with this citation; None when it is not among the hits."""
    for hit in hits:
        if hit.citation == citation:
            return hit.rank
    return None


def retrieval_metrics(ranks: Sequence[int | None], ks: Sequence[int] = (1, 5)) -> dict[str, float]:
    """recall@k for each k and the mean reciprocal rank (0 for a miss) over the questions' source ranks."""
    n = len(ranks)
    out: dict[str, float] = {"n": n}
    for k in ks:
        out[f"recall@{k}"] = round(sum(1 for r in ranks if r is not None and r <= k) / n, 4) if n else 0.0
    out["mrr"] = round(sum(1 / r for r in ranks if r is not None) / n, 4) if n else 0.0
    return out
