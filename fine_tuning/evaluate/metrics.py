"""Answer-quality metrics for `slm evaluate`: pure functions over strings, no torch.

- chrF (sacrebleu's `CHRF`, character n-grams up to 6, no word n-grams): the character-level overlap score that
  suits Korean, where a word carries its particles and word-level overlap punishes 은/는 differences.
- ROUGE-L on characters: the F1 of the longest common subsequence of characters. No ROUGE package is installed (and
  the common ones split on whitespace or need language-specific tokenizers), so the LCS is computed here with the
  bit-parallel algorithm (Allison–Dix / Hyyrö): one big-integer operation per character of the shorter string, so a
  4,000-character reference against a 1,000-character answer takes milliseconds instead of seconds.
- Citations: `find_citations` (slm_datagen) on the generated answer; each cited article (law, 조, 의) is checked
  against the statute articles of the run's corpus (`collect/documents.jsonl`) and against the reference citations
  (the pair's `meta.citations` and the articles the reference answer cites).
- Numbers: on calculation items, the final amount of the generated answer (`find_amounts`, last mention) against the
  final amount of the reference answer.

Aggregation keeps sums (not means) so groups (per law, per source kind) and the whole set use the same code.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ArticleKey = tuple[str, int, int]  # (normalised law name, 조, 가지번호 or 0)


# ------------------------------------------------------------------------------------------------------ overlap
def lcs_length(a: str, b: str) -> int:
    """Length of the longest common subsequence of two strings (bit-parallel, exact)."""
    if len(a) < len(b):
        a, b = b, a
    if not b:
        return 0
    n = len(a)
    masks: dict[str, int] = {}
    for index, char in enumerate(a):
        masks[char] = masks.get(char, 0) | (1 << index)
    full = (1 << n) - 1
    row = full  # bit i is 0 where the LCS "steps" at position i of `a`
    for char in b:
        matches = row & masks.get(char, 0)
        row = ((row + matches) | (row - matches)) & full
    return n - bin(row).count("1")


def rouge_l(hypothesis: str, reference: str) -> float:
    """ROUGE-L F1 on characters (whitespace removed, so spacing differences do not count)."""
    hyp = "".join(hypothesis.split())
    ref = "".join(reference.split())
    if not hyp or not ref:
        return 0.0
    lcs = lcs_length(hyp, ref)
    if lcs == 0:
        return 0.0
    precision, recall = lcs / len(hyp), lcs / len(ref)
    return 2 * precision * recall / (precision + recall)


def _chrf() -> Any:
    from sacrebleu.metrics import CHRF

    return CHRF(char_order=6, word_order=0)


def chrf_sentence(hypothesis: str, reference: str) -> float:
    """Sentence-level chrF (0–100)."""
    return float(_chrf().sentence_score(hypothesis, [reference]).score)


def chrf_corpus(hypotheses: list[str], references: list[str]) -> float | None:
    """Corpus-level chrF (0–100): n-gram statistics summed over the set before the F-score, as sacrebleu defines it."""
    if not hypotheses:
        return None
    return float(_chrf().corpus_score(hypotheses, [references]).score)


# ---------------------------------------------------------------------------------------------------- citations
def article_keys(text: str) -> set[ArticleKey]:
    """The articles a text cites, as (law, article, branch); citations whose law cannot be resolved are dropped."""
    from slm_datagen.taxlaw.citations import find_citations, normalize_law_name

    keys: set[ArticleKey] = set()
    for citation in find_citations(text, default_law=None):
        if citation.law:
            keys.add((normalize_law_name(citation.law), citation.article, citation.branch or 0))
    return keys


def label(key: ArticleKey) -> str:
    law, article, branch = key
    return f"{law} 제{article}조" + (f"의{branch}" if branch else "")


@dataclass(frozen=True)
class CorpusIndex:
    """The statute articles present in the run's corpus."""

    articles: frozenset[ArticleKey]

    @classmethod
    def from_documents(cls, path: Path) -> CorpusIndex:
        from slm_datagen.taxlaw.citations import normalize_law_name
        from slm_forest.files import read_jsonl

        found: set[ArticleKey] = set()
        for row in read_jsonl(path):
            if row.get("kind") == "statute_article" and row.get("law_name") and row.get("article_no") is not None:
                found.add(
                    (normalize_law_name(row["law_name"]), int(row["article_no"]), int(row.get("article_branch") or 0))
                )
        return cls(frozenset(found))

    def __contains__(self, key: object) -> bool:
        return key in self.articles


@dataclass(frozen=True)
class CitationCheck:
    cited: tuple[str, ...]  # labels of the articles the answer cites
    in_corpus: int  # how many of them exist in the corpus
    matched: int  # how many of them are among the reference citations
    reference: int  # how many articles the reference cites

    def as_dict(self) -> dict[str, Any]:
        return {
            "cited": list(self.cited),
            "in_corpus": self.in_corpus,
            "matched": self.matched,
            "reference": self.reference,
        }


def check_citations(
    answer: str, reference_answer: str, reference_citations: Iterable[str], corpus: CorpusIndex
) -> CitationCheck:
    cited = article_keys(answer)
    reference: set[ArticleKey] = set(article_keys(reference_answer))
    for text in reference_citations:
        reference |= article_keys(text)
    return CitationCheck(
        cited=tuple(sorted(label(k) for k in cited)),
        in_corpus=sum(1 for k in cited if k in corpus),
        matched=len(cited & reference),
        reference=len(reference),
    )


# ------------------------------------------------------------------------------------------------------ numbers
def final_amount(text: str) -> int | None:
    """The last money amount in a text (in won), the usual place of the answer in a worked calculation."""
    from slm_datagen.taxlaw.amounts import find_amounts

    mentions = find_amounts(text)
    return mentions[-1].won if mentions else None


# --------------------------------------------------------------------------------------------------- aggregation
@dataclass
class ScoreSums:
    """Sums of per-answer scores for one model over one group of examples."""

    n: int = 0
    chrf_hyps: list[str] = field(default_factory=list)
    chrf_refs: list[str] = field(default_factory=list)
    rouge_l: float = 0.0
    answers_citing: int = 0
    cited: int = 0
    in_corpus: int = 0
    matched: int = 0
    reference_citations: int = 0
    numeric_n: int = 0
    numeric_correct: int = 0
    empty: int = 0
    judge_n: int = 0
    judge_total: float = 0.0

    def add(self, answer: str, reference: str, scores: dict[str, Any]) -> None:
        self.n += 1
        self.chrf_hyps.append(answer)
        self.chrf_refs.append(reference)
        self.rouge_l += scores["rouge_l"]
        self.empty += int(not answer.strip())
        cites = scores["citations"]
        self.answers_citing += int(bool(cites["cited"]))
        self.cited += len(cites["cited"])
        self.in_corpus += cites["in_corpus"]
        self.matched += cites["matched"]
        self.reference_citations += cites["reference"]
        if scores.get("numeric_correct") is not None:
            self.numeric_n += 1
            self.numeric_correct += int(scores["numeric_correct"])
        judge = scores.get("judge")
        if judge and judge.get("score") is not None:
            self.judge_n += 1
            self.judge_total += float(judge["score"])

    def summary(self) -> dict[str, Any]:
        def ratio(a: float, b: float) -> float | None:
            return round(a / b, 4) if b else None

        precision = ratio(self.matched, self.cited)
        recall = ratio(self.matched, self.reference_citations)
        f1 = (
            round(2 * precision * recall / (precision + recall), 4)
            if precision and recall
            else (0.0 if self.cited else None)
        )
        chrf = chrf_corpus(self.chrf_hyps, self.chrf_refs)
        return {
            "n": self.n,
            "chrf": round(chrf, 2) if chrf is not None else None,
            "rouge_l": ratio(self.rouge_l, self.n),
            "empty_answers": self.empty,
            "citing_share": ratio(self.answers_citing, self.n),
            "citations": self.cited,
            "citation_in_corpus": ratio(self.in_corpus, self.cited),
            "citation_precision": precision,
            "citation_recall": recall,
            "citation_f1": f1,
            "numeric_n": self.numeric_n,
            "numeric_accuracy": ratio(self.numeric_correct, self.numeric_n),
            "judge_n": self.judge_n,
            "judge_mean": ratio(self.judge_total, self.judge_n),
        }


@dataclass
class LossSums:
    """Token-weighted negative log-likelihood over assistant tokens."""

    nll: float = 0.0
    tokens: int = 0
    examples: int = 0

    def add(self, nll_sum: float, tokens: int) -> None:
        self.nll += nll_sum
        self.tokens += tokens
        self.examples += 1

    def summary(self) -> dict[str, Any]:
        if not self.tokens:
            return {"examples": self.examples, "tokens": 0, "loss": None, "perplexity": None}
        loss = self.nll / self.tokens
        return {
            "examples": self.examples,
            "tokens": self.tokens,
            "loss": round(loss, 6),
            "perplexity": round(math.exp(min(loss, 700.0)), 4),
        }


def delta(base: float | None, tuned: float | None) -> float | None:
    if base is None or tuned is None:
        return None
    return round(tuned - base, 6)
