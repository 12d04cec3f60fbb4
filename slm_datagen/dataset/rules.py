"""The named quality rules of `slm build` and the finding a check returns.

Every check in this package returns `Finding`s whose `rule` is a key of `RULES`. A finding with action "reject"
sends the pair to rejected.jsonl (as a RejectedPair with that rule and the details); "flag" keeps the pair and
records the rule in the example's `meta["flags"]`; "review" holds the pair out of the splits and writes it to
review.jsonl for a person to decide. The dataset card lists the rules with the descriptions below.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Action = Literal["reject", "flag", "review"]

# rule name -> what it catches (shown in the dataset card and by `slm data stats`)
RULES: dict[str, str] = {
    "empty": "question or answer is empty",
    "too_short": "answer shorter than build.min_answer_chars",
    "too_long": "answer longer than build.max_answer_chars",
    "not_korean": "Hangul share of the letters below build.min_hangul_share",
    "refusal": "the teacher refused or hedged instead of answering (죄송하지만, I cannot, AI 언어 모델 …)",
    "truncated": "the answer stops mid-sentence, has unbalanced brackets/quotes/code fences, or hit the token limit",
    "repeats_question": "the answer adds (almost) nothing beyond the words of the question",
    "duplicate": "the same question (after Hangul-aware normalisation) appears earlier in the dataset",
    "near_duplicate": "a question whose character n-gram Jaccard similarity to an earlier one is above the threshold",
    "paraphrase": (
        "a reworded question (Korean morphemes, prompt boilerplate ignored) that asks what an earlier one asks: "
        "the earlier pair is kept"
    ),
    "citation_not_in_corpus": "cites an article that a law collected in full does not have",
    "citation_paragraph_missing": "cites a 항 that the article's text does not have",
    "citation_wrong_version": "cites an article that is deleted or not yet in force in the source's version",
    "citation_unverified": (
        "cites an article of a law collected only in part, or a known law that was not collected: held for review "
        "(collect the whole law to check it)"
    ),
    "citation_unresolvable": (
        "cites a law that is not collected, not in the tax-law catalogue and not named by any collected document"
    ),
    "conclusion_contradicts_source": (
        "the answer states the opposite conclusion (가능/불가, 해당/해당하지 않음, 과세/비과세 …) of the interpretation "
        "or ruling it was made from"
    ),
    "source_not_cited": "a pair generated from a statute article does not cite that article",
    "calc_mismatch": "the attached calculation does not recompute to the stated result",
    "calc_bad_payload": "the attached calculation is malformed (missing inputs, unreadable amounts, no result_field)",
    "calc_unverified": "a calculation answer that cannot be checked (facts missing or not modelled, an undated question "
    "whose tables changed); build.unverified_calculations sends it to review (default), keeps it flagged or rejects it",
    "calc_answer_mismatch": "the tax amount stated in the answer disagrees with a recomputation from the stated facts",
    "calc_step_mismatch": "an intermediate line of the answer (과세표준, 공제, 산출세액, 할증, 가산세 …) is wrong",
    "calc_late_filing_ignored": "a late-filing question answered with the on-time computation (신고세액공제, no 가산세)",
    "calc_payload_contradicts_question": "the calculation payload changes a fact the question states (relationship, "
    "amount, holding period, date, late filing)",
    "deduction_denied": "the answer denies a deduction (증여재산공제) that the stated relationship allows",
    "contamination": "overlaps a benchmark question (character n-grams), so it could leak the test into training",
    "judge_low_score": "the LLM judge scored faithfulness to the source chunk below build.judge_min_score",
    "teacher_disagreement": "a second teacher's answer disagrees on amounts or cited articles",
    "human_rejected": "a person rejected the pair on the review page (`slm review`), with the reason given there",
}


@dataclass(frozen=True)
class Finding:
    """One rule that fired on one pair."""

    rule: str
    details: str
    action: Action = "reject"

    def __post_init__(self) -> None:
        if self.rule not in RULES:  # a typo in a rule name would silently split the statistics
            raise ValueError(f"unknown rule {self.rule!r}; add it to slm_datagen.dataset.rules.RULES")


def first_reject(findings: list[Finding]) -> Finding | None:
    return next((f for f in findings if f.action == "reject"), None)
