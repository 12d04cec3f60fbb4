"""Answer-quality metrics for `slm evaluate`: pure functions over strings, no torch.

- chrF (sacrebleu's `CHRF`, character n-grams up to 6, no word n-grams): the character-level overlap score that
  suits Korean, where a word carries its particles and word-level overlap punishes 은/는 differences.
- ROUGE-L on characters: the F1 of the longest common subsequence of characters. No ROUGE package is installed (and
  the common ones split on whitespace or need language-specific tokenizers), so the LCS is computed here with the
  bit-parallel algorithm (Allison–Dix / Hyyrö): one big-integer operation per character of the shorter string, so a
  4,000-character reference against a 1,000-character answer takes milliseconds instead of seconds.
- Citations (`citation_scores`): precision/recall/F1 by 법령 + 조 + 항 against the reference, and hallucinated
  citations; numbers (`calculator`): the final tax amount, right or wrong to the 원.

Aggregation keeps per-answer counts and their sums (not means of scores), so groups (per law, per source kind), the
whole set and the paired bootstrap of every delta (`stats`) use the same code.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any


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


# ------------------------------------------------------------------------------------------- per-answer rows
def chrf_stats(hypothesis: str, reference: str) -> list[float]:
    """sacrebleu's chrF sufficient statistics of one answer (hyp/ref/match counts per n-gram order): summed over a
    set they give the corpus chrF exactly, so the bootstrap can resample answers."""
    return [float(v) for v in _chrf()._extract_corpus_statistics([hypothesis], [[reference]])[0]]


def chrf_from_stats(sums: list[float]) -> float | None:
    return float(_chrf()._compute_score_from_stats(list(sums)).score) if any(sums) else None


# (key, label, higher is better): the answer metrics, in report order. `metric_rows` gives each one's per-answer
# counts and `METRIC_STATISTICS` the function of their sums, so the point value and its bootstrap use the same code.
ANSWER_METRICS: tuple[tuple[str, str, bool], ...] = (
    ("chrf", "chrF", True),
    ("rouge_l", "ROUGE-L (chars)", True),
    ("citation_f1", "citation F1 (law + 조 + 항)", True),
    ("citation_precision", "citation precision", True),
    ("citation_recall", "citation recall", True),
    ("hallucinated_citation_rate", "hallucinated citations (share of cited)", False),
    ("numeric_accuracy", "final tax amount correct (to the 원)", True),
    ("judge_mean", "judge score (1-5)", True),
)


def metric_rows(answer: str, reference: str, scores: dict[str, Any]) -> dict[str, list[float]]:
    """Per-answer counts of every answer metric (see ANSWER_METRICS)."""
    c = scores["citations"]
    cited, ref = len(c["cited"]), len(c["reference"])
    numeric = scores.get("numeric") or {}
    judge = scores.get("judge") or {}
    judged = judge.get("score") is not None
    return {
        "chrf": chrf_stats(answer, reference),
        "rouge_l": [scores["rouge_l"], 1.0],
        "citation_f1": [c["matched_cited"], cited, c["matched_reference"], ref],
        "citation_precision": [c["matched_cited"], cited],
        "citation_recall": [c["matched_reference"], ref],
        "hallucinated_citation_rate": [len(c["hallucinated"]), cited],
        "numeric_accuracy": [float(bool(numeric.get("correct"))), float(numeric.get("correct") is not None)],
        "judge_mean": [float(judge["score"]) if judged else 0.0, float(judged)],
    }


def _metric_statistics() -> dict[str, Any]:
    from fine_tuning.evaluate.stats import f1_of_sums, ratio

    return {key: ratio for key, _, _ in ANSWER_METRICS} | {"chrf": chrf_from_stats, "citation_f1": f1_of_sums}


# --------------------------------------------------------------------------------------------------- aggregation
@dataclass
class ScoreSums:
    """Sums of per-answer counts for one model over one group of examples."""

    n: int = 0
    empty: int = 0
    answers_citing: int = 0
    cited: int = 0
    sums: dict[str, list[float]] = field(default_factory=dict)

    def add(self, answer: str, reference: str, scores: dict[str, Any]) -> None:
        self.n += 1
        self.empty += int(not answer.strip())
        self.answers_citing += int(bool(scores["citations"]["cited"]))
        self.cited += len(scores["citations"]["cited"])
        for key, row in metric_rows(answer, reference, scores).items():
            total = self.sums.setdefault(key, [0.0] * len(row))
            for i, value in enumerate(row):
                total[i] += value

    def summary(self) -> dict[str, Any]:
        statistics = _metric_statistics()
        out: dict[str, Any] = {"n": self.n, "empty_answers": self.empty}
        for key, _, _ in ANSWER_METRICS:
            value = statistics[key](self.sums[key]) if key in self.sums else None
            out[key] = None if value is None else round(value, 2 if key == "chrf" else 4)
        out["citing_share"] = round(self.answers_citing / self.n, 4) if self.n else None
        out["citations"] = self.cited
        out["numeric_n"] = int(self.sums.get("numeric_accuracy", [0, 0])[1])
        out["judge_n"] = int(self.sums.get("judge_mean", [0, 0])[1])
        return out


def answer_deltas(rows: list[dict[str, Any]], resamples: int, seed: int) -> dict[str, Any]:
    """Paired-bootstrap interval of tuned − base for every answer metric, over the answered test questions."""
    from fine_tuning.evaluate.stats import paired_bootstrap

    statistics = _metric_statistics()
    per_model = {
        which: [metric_rows(r[which]["answer"], r["reference"], r[which]["scores"]) for r in rows]
        for which in ("base", "tuned")
    }
    out: dict[str, Any] = {}
    for key, _, _ in ANSWER_METRICS:
        base = [m[key] for m in per_model["base"]]
        tuned = [m[key] for m in per_model["tuned"]]
        out[key] = paired_bootstrap(base, tuned, statistics[key], resamples, seed).as_dict()
    return out


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
