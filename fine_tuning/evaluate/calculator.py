"""The tax calculator as evaluation sees it: the right final amount of a calculation item, and the one an answer states.

A small adapter over the calculator in `slm_datagen.taxlaw` (`verdict.check_calculation`, the `TaxComputation` it
returns, `answer_amounts`): evaluation calls it here and nowhere else.

- With the item's calculation payload (`meta.calculation`: kind, year, inputs, result_field) the expected amount is
  the calculator's recomputation, not the teacher's claim, and the answer is judged by the calculator's own
  answer check (`check_answer_amounts`) with zero tolerance: right or wrong to the 원.
- Without one (older builds keep only the text), the expected amount is the final tax the reference answer states
  (the last amount labelled 세액/산출세액/납부할 세액/증여세 …), and the answer's final stated tax must equal it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# Labels whose amount is not a tax (bases, values, deductions, credits): the final tax is the last amount with another.
_NOT_TAX_WORDS = ("공제", "과세표준", "과세가액", "재산가액", "기납부")


@dataclass(frozen=True)
class NumericCheck:
    expected: int | None  # None: the item has no amount to check
    stated: int | None  # the answer's final stated tax, None when it states none
    correct: bool | None  # None when there is nothing to check
    source: str  # "calculator" (recomputed from the payload) or "reference" (the reference answer's figure)

    def as_dict(self) -> dict[str, Any]:
        return {"expected": self.expected, "stated": self.stated, "correct": self.correct, "source": self.source}


def final_stated_tax(text: str) -> int | None:
    """The last tax amount a text states (won), by the calculator's labelled-amount reader; with no labelled amount
    at all, the text's last amount ("= 624만원")."""
    from slm_datagen.taxlaw.amounts import find_amounts
    from slm_datagen.taxlaw.answer_amounts import labelled_amounts

    labelled = labelled_amounts(text)
    taxes = [m.won for label, m in labelled if not any(w in label for w in _NOT_TAX_WORDS)]
    if taxes:
        return taxes[-1]
    if labelled:  # only bases, values and deductions: no tax is stated
        return None
    mentions = find_amounts(text)
    return mentions[-1].won if mentions else None


def recomputed(payload: dict[str, Any]) -> Any | None:
    """The calculator's TaxComputation for a calculation payload, or None when it cannot recompute it."""
    from slm_datagen.taxlaw.verdict import check_calculation

    verdict = check_calculation(payload)
    return verdict.computation if verdict.status in ("ok", "mismatch") else None


def check_numeric(answer: str, reference: str, meta: dict[str, Any]) -> NumericCheck | None:
    """None for a non-calculation item; else whether the answer's final tax is right to the 원."""
    if meta.get("style") != "calculation":
        return None
    payload = meta.get("calculation")
    computation = recomputed(payload) if isinstance(payload, dict) else None
    if computation is not None:
        from slm_datagen.taxlaw.answer_amounts import check_answer_amounts

        field = str(payload.get("result_field") or "computed_tax")  # type: ignore[union-attr]
        problems = check_answer_amounts(answer, computation)  # to the 원: the calculator has no ratio tolerance
        final_ok = not any("최종 세액" in p or "final" in p for p in problems)
        return NumericCheck(computation.amount(field), final_stated_tax(answer), final_ok, "calculator")
    expected = final_stated_tax(reference)
    if expected is None:
        return NumericCheck(None, None, None, "reference")
    stated = final_stated_tax(answer)
    return NumericCheck(expected, stated, stated == expected, "reference")
