"""Train/val/test splits by source document, so no statute article or decision is in two splits.

Pairs are grouped by their source: a statute article is identified by (law, article, branch), so two versions of
the same article (two documents with different 시행일자) are one group; every other document is its own group.
Groups are ordered by a seeded hash of their key and the first ones go to val, then test, the rest to train:
the assignment depends only on the seed and the group keys, so adding documents moves few groups.

Shares count groups (documents), as the seed project's 10% validation did. With three or more groups, val and test
each get at least one group when their share is above zero, and train always keeps at least one.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from slm_datagen.taxlaw.citations import normalize_law_name
from slm_forest.records import Chunk, Document, QAPair

SPLITS = ("train", "val", "test")


def _article_key(law_name: str | None, article_no: int | None, branch: int | None) -> str | None:
    if not law_name or article_no is None:
        return None
    return f"article:{normalize_law_name(law_name)}:{article_no}:{branch or 0}"


def group_key(pair: QAPair, documents: dict[str, Document], chunks: dict[str, Chunk]) -> str:
    """The leakage unit of a pair: its article across versions, else its source document."""
    doc = documents.get(pair.doc_id)
    if doc is not None:
        if doc.kind == "statute_article":
            key = _article_key(doc.law_name, doc.article_no, doc.article_branch)
            if key:
                return key
        return f"doc:{doc.id}"
    chunk = chunks.get(pair.chunk_id)
    if chunk is not None and chunk.kind == "statute_article":
        key = _article_key(chunk.law_name, chunk.article_no, chunk.article_branch)
        if key:
            return key
    return f"doc:{pair.doc_id}"


@dataclass(frozen=True)
class SplitPlan:
    assignment: dict[str, str]  # group key -> split name
    groups: dict[str, int]  # split name -> number of groups


def _rank(seed: int, key: str) -> str:
    return hashlib.sha256(f"{seed}\x1f{key}".encode()).hexdigest()


def plan_splits(keys: set[str], val_share: float, test_share: float, seed: int) -> SplitPlan:
    ordered = sorted(keys, key=lambda k: _rank(seed, k))
    total = len(ordered)
    n_val = round(total * val_share)
    n_test = round(total * test_share)
    if total >= 3:
        n_val = max(n_val, 1 if val_share > 0 else 0)
        n_test = max(n_test, 1 if test_share > 0 else 0)
    elif total == 2:
        n_val, n_test = (1 if val_share > 0 else 0), (1 if val_share == 0 and test_share > 0 else 0)
    else:
        n_val = n_test = 0
    while n_val + n_test >= total and total > 0:  # train keeps at least one group
        if n_test >= n_val and n_test > 0:
            n_test -= 1
        else:
            n_val -= 1
    assignment: dict[str, str] = {}
    for position, key in enumerate(ordered):
        assignment[key] = "val" if position < n_val else "test" if position < n_val + n_test else "train"
    return SplitPlan(assignment, {"train": total - n_val - n_test, "val": n_val, "test": n_test})


def split_pairs(
    pairs: list[QAPair],
    documents: dict[str, Document],
    chunks: dict[str, Chunk],
    val_share: float,
    test_share: float,
    seed: int,
) -> tuple[dict[str, list[QAPair]], SplitPlan]:
    """Pairs per split (input order kept inside each split) and the plan that produced them."""
    keys = [group_key(pair, documents, chunks) for pair in pairs]
    plan = plan_splits(set(keys), val_share, test_share, seed)
    out: dict[str, list[QAPair]] = {name: [] for name in SPLITS}
    for pair, key in zip(pairs, keys):
        out[plan.assignment[key]].append(pair)
    return out, plan
