"""Duplicate and near-duplicate questions across the whole dataset.

Exact duplicates compare the Hangul-aware key (NFKC, no spaces or punctuation, see korean.match_key), so
"증여세 는 얼마 인가요?" and "증여세는 얼마인가요" are the same question. Near-duplicates are found with MinHash LSH
over character 3-grams of that key and confirmed with the exact Jaccard similarity. Two questions that differ in a
number or in the article they cite ("소득세법 제12조 …" vs "소득세법 제14조 …") are never near-duplicates, however
similar their wording: templated questions about different provisions are the point of the dataset.

Paraphrases (the same question reworded, or with a fixed sentence in front) are found on Korean morphemes, see
paraphrase.py; candidates come from MinHash LSH over the question's terms and are confirmed with
paraphrase_similarity, under the same rule that numbers and cited articles must be equal.

The first occurrence (in input order) is kept; later ones get a Finding naming the pair they repeat.
"""

from __future__ import annotations

import re
from collections import Counter

from slm_datagen.dataset.korean import char_ngrams, jaccard, match_key
from slm_datagen.dataset.paraphrase import PARAPHRASE_THRESHOLD, paraphrase_similarity, question_terms
from slm_datagen.dataset.rules import Finding
from slm_datagen.taxlaw.citations import find_citations
from slm_forest.records import QAPair

NGRAM = 3
NUM_PERM = 64
_NUMBER_RE = re.compile(r"\d+")


def _anchors(question: str, key: str) -> tuple[tuple[str, ...], frozenset[tuple[str, int, int | None]]]:
    """What must be equal for two questions to be near-duplicates: their numbers and the articles they cite."""
    cited = frozenset((c.law, c.article, c.branch) for c in find_citations(question))
    return tuple(sorted(_NUMBER_RE.findall(key))), cited


def _signature(items: set[str]):
    from datasketch import MinHash  # noqa: PLC0415 - heavy import, only when the build runs

    signature = MinHash(num_perm=NUM_PERM, seed=1)
    signature.update_batch([g.encode("utf-8") for g in sorted(items)])
    return signature


def find_duplicates(pairs: list[QAPair], threshold: float) -> dict[int, Finding]:
    """Position in `pairs` -> a `duplicate`, `near_duplicate` or `paraphrase` Finding for each pair whose question
    repeats an earlier one (positions, not ids: a pair written twice has the same id twice and one copy must stay)."""
    from datasketch import MinHashLSH  # noqa: PLC0415 - heavy import, only when the build runs

    findings: dict[int, Finding] = {}
    first_by_key: dict[str, str] = {}
    # LSH recall drops near its threshold, so candidates come from a lower one and are confirmed exactly.
    lsh = MinHashLSH(threshold=max(0.3, threshold - 0.15), num_perm=NUM_PERM)
    terms_lsh = MinHashLSH(threshold=max(0.3, PARAPHRASE_THRESHOLD - 0.25), num_perm=NUM_PERM)
    kept: dict[str, tuple[str, set[str], tuple, Counter[str]]] = {}  # LSH key -> (pair id, grams, anchors, terms)
    for index, pair in enumerate(pairs):
        key = match_key(pair.question)
        if not key:
            continue
        if key in first_by_key:
            findings[index] = Finding("duplicate", f"same question as pair {first_by_key[key]}")
            continue
        first_by_key[key] = pair.id
        grams = char_ngrams(key, NGRAM)
        anchors = _anchors(pair.question, key)
        signature = _signature(grams)
        best: tuple[float, str] | None = None
        for other_id in lsh.query(signature):
            other_pair_id, other_grams, other_anchors, _ = kept[other_id]
            if other_anchors != anchors:
                continue
            similarity = jaccard(grams, other_grams)
            if similarity >= threshold and (best is None or similarity > best[0]):
                best = (similarity, other_pair_id)
        if best is not None:
            findings[index] = Finding(
                "near_duplicate",
                f"question {best[0]:.2f} similar to pair {best[1]} (build.near_duplicate_threshold {threshold})",
            )
            continue
        terms = question_terms(pair.question)
        terms_signature = _signature(set(terms))
        paraphrase = _best_paraphrase(terms, anchors, terms_lsh.query(terms_signature), kept)
        if paraphrase is not None:
            findings[index] = Finding(
                "paraphrase",
                f"question rewords pair {paraphrase[1]} (morpheme similarity {paraphrase[0]:.2f} >= "
                f"{PARAPHRASE_THRESHOLD})",
            )
            continue
        lsh_key = str(index)  # pair ids from hand-written files may repeat; LSH keys must not
        kept[lsh_key] = (pair.id, grams, anchors, terms)
        lsh.insert(lsh_key, signature)
        if terms:
            terms_lsh.insert(lsh_key, terms_signature)
    return findings


def _best_paraphrase(
    terms: Counter[str], anchors: tuple, candidates: list[str], kept: dict[str, tuple[str, set[str], tuple, Counter]]
) -> tuple[float, str] | None:
    best: tuple[float, str] | None = None
    for other_id in candidates:
        other_pair_id, _, other_anchors, other_terms = kept[other_id]
        if other_anchors != anchors:
            continue
        similarity = paraphrase_similarity(terms, other_terms)
        if similarity >= PARAPHRASE_THRESHOLD and (best is None or similarity > best[0]):
            best = (similarity, other_pair_id)
    return best
