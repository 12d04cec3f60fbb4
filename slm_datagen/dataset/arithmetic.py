"""Tax arithmetic: every calculation answer ends verified, rejected (rule, step, stated, computed) or unverified (why).

A calculation answer is a pair with a calculation payload (QAPair.calculation), or one whose question asks for an
amount ("얼마", "계산") of one tax and states at least one amount. Explanations without figures are not judged.

* with a payload: verdict.check_calculation recomputes it (calc_mismatch, calc_bad_payload; a case the calculator
  does not model is unverified); the payload's facts must be the question's (relationship, amount, holding period,
  dates, late filing: calc_payload_contradicts_question); every figure the answer states must agree with it;
* free text: question_readings.read_question reads the facts the question states and the readings they allow; the
  answer is verified when one reading agrees with every figure it states (answer_steps), rejected when none does —
  calc_answer_mismatch when its final figure is wrong, calc_step_mismatch when only an intermediate line is,
  calc_late_filing_ignored when a late-filing question got the on-time computation — and unverified when the facts
  are missing, not modelled, or leave the figure open (a late payment whose days the question does not give).

Dates: the question's date picks the tables. A question without one is computed with the tables in force at the
dataset's as-of date (the newest 시행일 in the collected statutes, at most taxlaw.tables.LAW_KNOWN_THROUGH) only
when the tables gave the same figures throughout the two years before it; otherwise it is unverified.

`build.unverified_calculations` decides where an unverified one goes: review (review.jsonl, the default), keep
(kept, flagged calc_unverified) or reject.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from datetime import date
from typing import Any, Literal

from slm_datagen.dataset.question_facts import QuestionFacts, Reading
from slm_datagen.dataset.question_readings import read_question
from slm_datagen.dataset.rules import Action, Finding
from slm_datagen.taxlaw.amounts import format_won
from slm_datagen.taxlaw.answer_steps import DAY_DEPENDENT, StepProblem, answer_statements, check_statements
from slm_datagen.taxlaw.computation import TaxComputation
from slm_datagen.taxlaw.inputs import DonorRelation, HoldingPeriod, donor_relation
from slm_datagen.taxlaw.kinds import INPUT_TYPES, compute, typed_inputs
from slm_datagen.taxlaw.tables import LAW_KNOWN_THROUGH, UnsupportedCase
from slm_datagen.taxlaw.verdict import check_calculation
from slm_forest.records import Document, QAPair

# Labels (spaces removed) that state a tax, as opposed to a base or value; judge.py compares these across teachers.
TAX_LABELS = frozenset(
    {
        "증여세",
        "상속세",
        "산출세액",
        "세액",
        "세금",
        "결정세액",
        "납부세액",
        "납부할",
        "납부할세액",
        "납부할세금",
        "납부할증여세",
        "납부할상속세",
        "최종세액",
    }
)
Status = Literal["verified", "rejected", "unverified"]
UnverifiedPolicy = Literal["review", "keep", "reject"]
_POLICY_ACTION: dict[str, Action] = {"review": "review", "keep": "flag", "reject": "reject"}
_TAX_OF_KIND = {
    "inheritance_tax_estate": "inheritance_tax",
    "capital_gains_sale": "capital_gains_tax",
    "simplified_vat": "vat",
}
# "공제가 적용되지 않습니다", "증여재산공제를 받을 수 없습니다" — but not another 공제 (신고세액공제 may rightly be
# denied for a late return, 혼인공제 without a marriage).
_DEDUCTION_DENIED = re.compile(
    r"(?:증여재산\s*공제|(?<![가-힣])공제)(?:는|가|를|도|의)?\s*(?:[가-힣]{0,6}\s*)?"
    r"(?:적용되지\s*않|적용\s*되지\s*않|받을\s*수\s*없|없습니다|없음|불가|인정되지\s*않|해당하지\s*않|대상이\s*아니)"
)
_PAYLOAD_DEFAULTS: dict[str, Any] = {
    "filed_on_time": True,
    "donee_is_minor": False,
    "prior_gifts_won": 0,
    "days_late": 0,
    "one_house_exempt": False,
    "expenses_won": 0,
    "donee_parent_deceased": False,
    "children": 0,
    "spouse_survives": False,
}


@dataclass(frozen=True)
class CalcCheck:
    """The verdict on one calculation answer."""

    status: Status
    reason: str
    rule: str | None = None  # the rejecting rule, or calc_unverified
    step: str | None = None  # the first wrong step
    stated: int | None = None
    computed: tuple[int, ...] | None = None


@dataclass(frozen=True)
class ArithmeticResult:
    findings: list[Finding]
    check: CalcCheck | None  # None: not a calculation answer


def dataset_as_of(documents: list[Document]) -> date:
    """The newest 시행일 among the collected statutes, at most LAW_KNOWN_THROUGH; LAW_KNOWN_THROUGH without any."""
    dates = []
    for doc in documents:
        if doc.kind != "statute_article" or not doc.effective_date:
            continue
        try:
            dates.append(date.fromisoformat(doc.effective_date))
        except ValueError:
            continue  # a malformed date is the collect stage's problem; it must not move the as-of date
    return min(max(dates), LAW_KNOWN_THROUGH) if dates else LAW_KNOWN_THROUGH


def _window(as_of: date) -> list[date]:
    """The dates an undated question is computed on: 1 January and 1 July of the two years before as_of, and as_of."""
    days = [date(y, m, 1) for y in range(as_of.year - 2, as_of.year + 1) for m in (1, 7)]
    return [d for d in days if d <= as_of] + [as_of]


def _signature(c: TaxComputation) -> tuple:
    return tuple((s.key, s.label, s.won) for s in c.steps) + (c.payable, c.payable_with_local_tax)


def compute_reading(reading: Reading, as_of: date) -> TaxComputation:
    """The computation of a reading; an undated one only when the tables agree across the window before as_of."""
    typed = typed_inputs(reading.kind, reading.inputs)
    if reading.year is not None:
        return compute(reading.kind, reading.year, typed)
    results = [(day, compute(reading.kind, day, typed)) for day in _window(as_of)]
    first_day, first = results[0]
    for day, result in results[1:]:
        if _signature(result) != _signature(first):
            raise UnsupportedCase(
                f"질문에 날짜가 없고 {first_day.isoformat()}~{day.isoformat()} 사이에 세법 표가 바뀜 / no date in the "
                f"question and the tables changed between {first_day.isoformat()} and {day.isoformat()}"
            )
    return results[-1][1]


def _unverified(reason: str, policy: str) -> ArithmeticResult:
    return ArithmeticResult(
        [Finding("calc_unverified", reason, _POLICY_ACTION[policy])], CalcCheck("unverified", reason, "calc_unverified")
    )


def _rejected(rule: str, problems: list[StepProblem], head: str) -> ArithmeticResult:
    reason = head + "; ".join(p.describe() for p in problems)
    first = problems[0]
    return ArithmeticResult(
        [Finding(rule, reason)], CalcCheck("rejected", reason, rule, first.step, first.stated, first.computed)
    )


def _ordered(problems: list[StepProblem]) -> list[StepProblem]:
    """Intermediate steps first: the first wrong line is what a reviewer needs to see."""
    return sorted(problems, key=lambda p: p.final)


def _deduction_denied(answer: str, computations: list[TaxComputation]) -> Finding | None:
    gifts = [c for c in computations if c.kind == "gift_tax"]
    if not gifts or min(c.deduction for c in gifts) <= 0:
        return None
    denial = _DEDUCTION_DENIED.search(answer)
    if not denial:
        return None
    relation = gifts[0].inputs.get("relationship")
    return Finding(
        "deduction_denied",
        f"answer says {denial.group(0)!r}, but a gift from a {relation} carries a 증여재산공제 of at least "
        f"{format_won(min(c.deduction for c in gifts))} (상속세 및 증여세법 제53조)",
    )


def _on_time(reading: Reading) -> Reading:
    inputs = {k: v for k, v in reading.inputs.items() if k not in ("filed_on_time", "days_late", "late_return_filed")}
    return Reading(reading.kind, reading.year, inputs, reading.assumption)


def judge_free_text(pair: QAPair, facts: QuestionFacts, policy: str, as_of: date) -> ArithmeticResult:
    statements = answer_statements(pair.answer, facts.question_amounts)
    if not statements:
        return _unverified("답변에 계산 결과 금액이 없음 / the answer states no amount", policy)
    if facts.unverified:
        return _unverified(facts.unverified, policy)
    computed: list[tuple[Reading, TaxComputation]] = []
    errors: list[str] = []
    for reading in facts.readings:
        try:
            computed.append((reading, compute_reading(reading, as_of)))
        except (UnsupportedCase, ValueError) as exc:
            errors.append(str(exc))
    if not computed:
        return _unverified("계산 범위 밖 / not modelled: " + "; ".join(dict.fromkeys(errors)), policy)
    denial = _deduction_denied(pair.answer, [c for _, c in computed])
    results = [(reading, comp, check_statements(pair.answer, statements, comp)) for reading, comp in computed]
    if any(not problems for _, _, problems in results) and denial is None:
        return ArithmeticResult([], CalcCheck("verified", "모든 금액이 계산과 일치 / every stated figure agrees"))
    days_open = facts.lateness.late and facts.lateness.days is None
    for _, _, problems in results:
        if days_open and problems and all(p.target in DAY_DEPENDENT and p.stated > min(p.computed) for p in problems):
            return _unverified(
                "납부지연 일수가 질문에 없어 가산세·납부세액을 확인할 수 없음 / days late not stated", policy
            )
    reading, computation, problems = min(results, key=lambda r: (len(r[2]), sum(p.final for p in r[2])))
    head = f"{_describe(reading)}: "
    if not problems:  # every figure right, but the answer denies the deduction
        return ArithmeticResult([denial], CalcCheck("rejected", denial.details, denial.rule))
    if facts.lateness.late and _matches_on_time(pair.answer, statements, reading, as_of):
        rule = "calc_late_filing_ignored"
        head += "기한 후(무)신고인데 기한 내 신고로 계산함 / on-time computation for a late return: "
    else:
        rule = "calc_answer_mismatch" if any(p.final for p in problems) else "calc_step_mismatch"
    result = _rejected(rule, _ordered(problems), head)
    return ArithmeticResult(result.findings + ([denial] if denial else []), result.check)


def _matches_on_time(answer: str, statements: list, reading: Reading, as_of: date) -> bool:
    try:
        on_time = compute_reading(_on_time(reading), as_of)
    except (UnsupportedCase, ValueError):
        return False
    problems = check_statements(answer, statements, on_time)
    return not problems or any(s.target == "key:filing_credit" and s.mention.won > 0 for s in statements)


def _describe(reading: Reading) -> str:
    facts = ", ".join(f"{k}={format_won(v) if k.endswith('_won') else v}" for k, v in reading.inputs.items())
    when = f" {reading.year}" if reading.year is not None else ""
    return f"{reading.kind}{when} ({facts})"


def payload_contradictions(kind: str, year: int, inputs: dict[str, Any], facts: QuestionFacts | None) -> list[str]:
    """The facts the question states that the payload changes."""
    if facts is None:
        return []
    if _TAX_OF_KIND.get(kind, kind) != facts.tax:
        return [f"질문은 {facts.tax}, 계산은 {kind} / the question asks about {facts.tax}, the payload computes {kind}"]
    try:
        typed = typed_inputs(kind, inputs)
    except (UnsupportedCase, ValueError):
        return []
    out = []
    for name, said in facts.stated.items():
        if name == "year":
            given: Any = year
        elif name == "holding_years" and "holding_period" in INPUT_TYPES[kind]:
            name, said = "holding_period", _period_of(said)
            given = typed.get("holding_period", HoldingPeriod.TWO_YEARS_OR_MORE.value)
        elif name in INPUT_TYPES[kind]:
            given = typed.get(name, _PAYLOAD_DEFAULTS.get(name))
        else:
            continue
        if name == "relationship" and given is not None:
            given, said = _relation(given), DonorRelation(said)
        if given is not None and given != said:
            out.append(f"{name}: 질문 {said!r}, 계산 {given!r} / the question says {said!r}, the payload {given!r}")
    return out


def _relation(value: Any) -> DonorRelation | None:
    try:
        return donor_relation(value)
    except ValueError:
        return None


def _period_of(years: int) -> str:
    if years < 1:
        return HoldingPeriod.UNDER_1Y.value
    return (HoldingPeriod.FROM_1Y_TO_2Y if years < 2 else HoldingPeriod.TWO_YEARS_OR_MORE).value


def judge_payload(pair: QAPair, policy: str) -> ArithmeticResult:
    calc = pair.calculation
    assert calc is not None
    verdict = check_calculation(calc.model_dump(mode="json"))
    if verdict.status in ("mismatch", "bad_input"):
        rule = "calc_mismatch" if verdict.status == "mismatch" else "calc_bad_payload"
        return ArithmeticResult([Finding(rule, verdict.reason)], CalcCheck("rejected", verdict.reason, rule))
    if verdict.status == "unsupported" or verdict.computation is None:
        return _unverified(verdict.reason, policy)
    facts = read_question(pair.question, pair.answer)
    contradictions = payload_contradictions(calc.kind, calc.year, calc.inputs, facts)
    if contradictions:
        reason = "; ".join(contradictions)
        rule = "calc_payload_contradicts_question"
        return ArithmeticResult([Finding(rule, reason)], CalcCheck("rejected", reason, rule))
    amounts = facts.question_amounts if facts else frozenset()
    statements = answer_statements(pair.answer, amounts)
    problems = check_statements(pair.answer, statements, verdict.computation)
    if problems:
        rule = "calc_answer_mismatch" if any(p.final for p in problems) else "calc_step_mismatch"
        return _rejected(rule, _ordered(problems), "계산 정보와 답변이 다름 / the answer disagrees with its payload: ")
    return ArithmeticResult([], CalcCheck("verified", verdict.reason))


def judge_arithmetic(pair: QAPair, policy: str = "review", as_of: date = LAW_KNOWN_THROUGH) -> ArithmeticResult:
    if pair.calculation is not None:
        return judge_payload(pair, policy)
    facts = read_question(pair.question, pair.answer)
    if facts is None:
        return ArithmeticResult([], None)
    return judge_free_text(pair, facts, policy, as_of)


def check_arithmetic(pair: QAPair, policy: str = "review", as_of: date = LAW_KNOWN_THROUGH) -> list[Finding]:
    return judge_arithmetic(pair, policy, as_of).findings


def calculation_counts(checks: list[CalcCheck | None], policy: str) -> dict[str, Any]:
    """What the card shows: calculation answers by status, rejections by rule, unverified reasons."""
    judged = [c for c in checks if c is not None]
    return {
        "calculation_answers": len(judged),
        "by_status": {s: sum(1 for c in judged if c.status == s) for s in ("verified", "rejected", "unverified")},
        "rejected_by_rule": dict(Counter(c.rule for c in judged if c.status == "rejected").most_common()),
        "unverified_reasons": dict(
            Counter(c.reason.split(":")[0][:80] for c in judged if c.status == "unverified").most_common(10)
        ),
        "unverified_policy": policy,
    }
