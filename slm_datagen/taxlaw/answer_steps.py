"""Every figure a free-text answer states, checked against the labelled steps of a TaxComputation.

`answer_statements` reads each stated amount (answer_amounts.stated_amounts) and decides which step it claims from its
label: 과세가액 → the 과세가액 step, 증여재산공제 → that 공제, 과세표준, 산출세액, 할증, 신고세액공제, 가산세, 납부할 세액,
지방소득세, 합계 (지방소득세 포함) …; a bare 증여세/소득세/세액 is the tax (산출세액 or 납부할 세액). Restated inputs
(양도가액, 취득가액, 증여받은 …) and constants (누진공제) are not claims. The last tax-like amount of the answer is its
final claim even without a label ("9,000만원을 내시면 됩니다").

`check_statements` compares each claim with the computation after the statute's own rounding (원 미만 절사 in the
calculator; a payment may also drop amounts under 10원, 국고금관리법 제47조) and accepts a coarser figure only when
the answer states its rounding (약 …, 천원 단위, 만원 단위), within that unit. A claimed step the computation does not
have (신고세액공제 on a late return, 장기보유특별공제 under 3 years) is computed as 0.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from slm_datagen.taxlaw.amounts import AmountMention, format_won
from slm_datagen.taxlaw.answer_amounts import stated_amounts, stated_unit
from slm_datagen.taxlaw.computation import TaxComputation
from slm_datagen.taxlaw.verdict import matches

# label (whitespace removed) -> what it claims. "label:X|Y" = the step(s) whose label contains X or Y.
_TARGETS: dict[str, str] = {
    "과세가액": "key:gross_value",
    "양도차익": "label:양도차익",
    "양도소득금액": "label:양도소득금액",
    "장기보유특별공제": "label:장기보유특별공제",
    "기본공제": "label:기본공제",
    "기초공제": "label:기초공제",
    "일괄공제": "label:일괄공제",
    "인적공제": "label:인적공제",
    "증여재산공제": "label:증여재산공제",
    "매출세액": "label:매출세액",
    "매입세액": "label:매입세액",
    "공제": "deduction",
    "공제액": "deduction",
    "상속공제": "deduction",
    "과세표준": "key:taxable_base",
    "산출세액": "key:computed_tax",
    "세대생략할증": "key:surcharge",
    "할증": "key:surcharge",
    "신고세액공제": "key:filing_credit",
    "기납부세액공제": "key:prepaid_tax_credit",
    "기납부세액": "key:prepaid_tax_credit",
    "무신고가산세": "key:nonfiling_penalty",
    "납부지연가산세": "key:late_payment_penalty",
    "가산세": "key:penalty_tax",
    "납부할세액": "payable",
    "납부할증여세": "payable",
    "납부할상속세": "payable",
    "납부할세금": "payable",
    "납부할": "payable",
    "지방소득세": "key:local_income_tax",
    "환급세액": "refund",
    "합계": "sum",
    "합한": "sum",
    "합하면": "sum",
    "더한": "sum",
    "더하면": "sum",
    "포함하면": "total",
    "포함한": "total",
    "포함": "total",
    "총세액": "total",
    "총부담": "total",
    "총납부": "total",
    "납부세액": "tax",
    "결정세액": "tax",
    "최종세액": "tax",
    "양도소득세": "tax",
    "종합소득세": "tax",
    "증여세": "tax",
    "상속세": "tax",
    "소득세": "tax",
    "법인세": "tax",
    "부가가치세": "tax",
    "부가세": "tax",
    "세액": "tax",
    "세금": "tax",
}
_FINAL_TARGETS = frozenset({"tax", "payable", "total", "sum", "payment", "refund", "key:computed_tax", None})
# "686만 4천원(지방소득세 포함)": a note right after the amount says it is the total.
_TOTAL_AFTER = re.compile(r"^\s*\(?\s*(?:지방소득세\s*)?(?:포함|합계)")
_REFUND_AFTER = re.compile(r"^\s*(?:을|를|이|가)?\s*환급")
# "1,000만원을 납부해야 합니다", "9,000만원을 내시면 됩니다": whatever the label, the figure is what is paid.
_PAYMENT_AFTER = re.compile(r"^\s*(?:을|를|이|가|만|씩)?\s*(?:납부|내[시야면게]|내요|낸다|냅니다|부담)")
# Claims that are payments in their own right: a payment verb after them does not make them the tax paid.
_OWN_PAYMENTS = frozenset(
    {
        "payable",
        "total",
        "sum",
        "refund",
        "key:local_income_tax",
        "key:nonfiling_penalty",
        "key:late_payment_penalty",
        "key:penalty_tax",
    }
)
# Steps whose value depends on how many days late the tax was paid.
DAY_DEPENDENT = frozenset(
    {"key:late_payment_penalty", "key:penalty_tax", "payable", "total", "sum", "payment", "tax", None}
)


@dataclass(frozen=True)
class Statement:
    label: str | None  # the label as written, whitespace removed; None = unlabelled
    target: str | None  # what it claims (see _TARGETS); None = unlabelled
    mention: AmountMention
    final: bool = False  # the answer's final claim


@dataclass(frozen=True)
class StepProblem:
    """A stated figure that no allowed value of its step matches."""

    step: str  # the step's name as the computation labels it (or the answer's label)
    stated: int
    computed: tuple[int, ...]  # the value(s) the step may take
    final: bool
    target: str | None

    def describe(self) -> str:
        expected = " / ".join(format_won(v) for v in self.computed)
        return f"{self.step}: 답변 {format_won(self.stated)}, 계산 {expected} (stated {self.stated:,}, computed {expected})"


def answer_statements(answer: str, question_amounts: frozenset[int] = frozenset()) -> list[Statement]:
    """The answer's claims; an unlabelled amount counts only as the final claim, and not when it merely restates an
    amount of the question."""
    claims: list[Statement] = []
    for label, mention in stated_amounts(answer):
        target = _TARGETS.get(label, "input") if label is not None else None
        after = answer[mention.end : mention.end + 16]
        overridable = target not in _OWN_PAYMENTS
        if _TOTAL_AFTER.match(after):
            target = "total"
        elif overridable and _REFUND_AFTER.match(after):
            target = "refund"
        elif overridable and _PAYMENT_AFTER.match(after):
            target = "payment"  # "…1,000만원을 납부해야 합니다": what is paid, whatever the label said
        if target == "input" or (target is None and mention.won in question_amounts):
            continue  # a restated input or a constant (양도가액, 누진공제 …)
        claims.append(Statement(label, target, mention))
    final_at = max((i for i, c in enumerate(claims) if c.target in _FINAL_TARGETS), default=None)
    out = []
    for i, claim in enumerate(claims):
        if claim.target is None and i != final_at:
            continue  # an unlabelled figure in passing (a threshold, an example) is not a claim
        out.append(Statement(claim.label, claim.target, claim.mention, final=i == final_at))
    return out


def _step_values(computation: TaxComputation, target: str | None) -> tuple[str, tuple[int, ...]]:
    """(step name, the values a claim with this target may take)."""
    c = computation
    steps = c.steps
    tax_due = c.payable - c.penalty_tax
    if c.kind == "vat" and target in (None, "tax", "sum", "payment"):
        return "납부세액", (c.payable,)  # a 일반과세자's 산출 figure is the 매출세액, never the tax paid
    if target in (None, "tax", "sum"):
        values = {c.computed_tax, c.computed_tax + c.surcharge, tax_due, c.payable}
        if target != "tax":
            values.add(c.payable_with_local_tax)
        return ("최종 세액" if target is None else "세액"), tuple(sorted(values))
    if target == "payment":
        return "납부할 세액", tuple(sorted({c.payable, tax_due, c.payable_with_local_tax}))
    if target == "payable":
        return "납부할 세액", (c.payable,)
    if target == "total":
        return "지방소득세 포함 합계", tuple(sorted({c.payable_with_local_tax, c.payable}))
    if target == "refund":
        return "환급세액", (-c.payable,)
    if target == "deduction":
        values = {s.won for s in steps if s.key in ("deduction", "deduction_item") and "공제" in s.label}
        return "공제", tuple(sorted(values or {c.deduction}))
    kind, _, name = target.partition(":")
    if kind == "key":
        found = [s for s in steps if s.key == name]
        if name == "penalty_tax" and not found:
            found = [s for s in steps if s.key in ("nonfiling_penalty", "late_payment_penalty")]
        if found:
            return found[0].label, tuple(sorted({s.won for s in found}))
        value = getattr(c, name, 0)
        return name, (value if isinstance(value, int) else 0,)
    found = [s for s in steps if name in s.label.replace(" ", "")]
    return (found[0].label if found else name), tuple(sorted({s.won for s in found})) or (0,)


def check_statements(
    answer: str, statements: list[Statement], computation: TaxComputation, field_of: dict[str, str] | None = None
) -> list[StepProblem]:
    """The claims that disagree with `computation`; [] when every stated figure is right."""
    problems = []
    for claim in statements:
        step, values = _step_values(computation, claim.target)
        unit = stated_unit(answer, claim.mention)
        field = "payable" if claim.target in ("payable", "total", "sum", "payment", "tax", None) else "taxable_base"
        if not any(matches(claim.mention.won, value, field, unit) for value in values):
            problems.append(StepProblem(step, claim.mention.won, values, claim.final, claim.target))
    return problems
