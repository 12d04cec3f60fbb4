"""Tax arithmetic: recompute what a pair claims with the calculator in slm_datagen.taxlaw.

Two cases:
* a calculation pair (QAPair.calculation): verdict.check_calculation recomputes the payload (mismatch beyond
  rounding -> calc_mismatch, malformed -> calc_bad_payload, unmodelled case -> calc_unverified, a flag), and the tax
  the answer text states must agree with the recomputation (calc_answer_mismatch);
* a free-text answer that states a 증여세 (or 상속세) figure: the facts are recovered from the question — the gift
  amount, who gave it (부모 → 직계존속, 배우자, …), whether the donee is a minor, the year — and the answer's figure is
  checked against every reading the text allows (an unstated age tries both 성년 and 미성년). Cases the calculator
  does not model (10-year aggregation, 세대생략, 부담부증여, …) or facts that cannot be recovered are left alone.
  An answer that denies the 증여재산공제 the stated relationship carries is caught too (deduction_denied): the seed
  project's sample said a parent's gift has no deduction.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from slm_datagen.dataset.rules import Finding
from slm_datagen.taxlaw.amounts import AmountMention, find_amounts, format_won
from slm_datagen.taxlaw.answer_amounts import check_answer_amounts, labelled_amounts
from slm_datagen.taxlaw.computation import TaxComputation
from slm_datagen.taxlaw.gift import gift_tax
from slm_datagen.taxlaw.inheritance import inheritance_tax
from slm_datagen.taxlaw.inputs import DonorRelation
from slm_datagen.taxlaw.tables import UnsupportedCase
from slm_datagen.taxlaw.verdict import check_calculation
from slm_forest.records import QAPair

# Labels (as answer_amounts.labelled_amounts returns them, spaces removed) that state a tax, as opposed to a base or value.
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

# Who gave the gift, read from the donee's side. Grandparents are left out on purpose: 세대생략 할증 is not modelled.
_RELATION_PATTERNS: tuple[tuple[DonorRelation, re.Pattern[str]], ...] = (
    (
        DonorRelation.LINEAL_ASCENDANT,
        re.compile(r"아버지|어머니|부모|부친|모친|아빠|엄마|직계존속|(?:자녀|아들|딸)에게"),
    ),
    (DonorRelation.SPOUSE, re.compile(r"배우자|남편|아내")),
    (DonorRelation.LINEAL_DESCENDANT, re.compile(r"(?:자녀|아들|딸)(?:로부터|으로부터|에게서)|직계비속")),
    (DonorRelation.OTHER_RELATIVE, re.compile(r"형제|자매|삼촌|이모|고모|외삼촌|친척|친족")),
    (DonorRelation.UNRELATED, re.compile(r"타인|지인|친구")),
)
# Facts the calculator does not model: with any of them, a free-text answer is not second-guessed.
_UNMODELLED = re.compile(
    r"할아버지|할머니|조부|조모|손자|손녀|세대\s*생략|할증|10년|십년|합산|재차|이전에|부담부|채무|비거주|창업자금|가업|"
    r"저가|고가|양도|상속|신탁|보험금|해외|외국|법인"
)
_MARRIAGE_BIRTH = re.compile(r"혼인|결혼|출산|출생|입양")
_MINOR = re.compile(r"미성년")
_ADULT = re.compile(r"(?<!미)성년|성인|직장인")
_YEAR = re.compile(r"((?:19|20)\d{2})\s*년")
# "20억원을 증여받았습니다", "20억원 상당의 아파트를 증여", "증여재산 20억원", "증여받은 금액은 20억원"
_GIFT_AFTER = re.compile(r"^[^.,\n]{0,15}?증여")
_GIFT_BEFORE = re.compile(r"(?:증여재산가액|증여재산|증여받은\s*금액|증여액|증여\s*금액)\s*(?:은|는|이|가|:)?\s*$")
# "공제가 적용되지 않습니다", "증여재산공제를 받을 수 없습니다" — but not another 공제 (신고세액공제 may rightly be
# denied for a late return, 혼인공제 without a marriage).
_DEDUCTION_DENIED = re.compile(
    r"(?:증여재산\s*공제|(?<![가-힣])공제)(?:는|가|를|도|의)?\s*(?:[가-힣]{0,6}\s*)?"
    r"(?:적용되지\s*않|적용\s*되지\s*않|받을\s*수\s*없|없습니다|없음|불가|인정되지\s*않|해당하지\s*않|대상이\s*아니)"
)
_BASE_THEN_AMOUNT = re.compile(r"과세표준[^.\n]{0,12}?$")


def _states_tax(answer: str) -> bool:
    return any(label in TAX_LABELS for label, _ in labelled_amounts(answer))


def check_calculation_payload(pair: QAPair) -> list[Finding]:
    calc = pair.calculation
    if calc is None:
        return []
    verdict = check_calculation(calc.model_dump(mode="json"))
    if verdict.status == "mismatch":
        return [Finding("calc_mismatch", verdict.reason)]
    if verdict.status == "bad_input":
        return [Finding("calc_bad_payload", verdict.reason)]
    if verdict.status == "unsupported":
        return [Finding("calc_unverified", verdict.reason, "flag")]
    if verdict.computation is not None and _states_tax(pair.answer):
        problems = check_answer_amounts(pair.answer, verdict.computation)
        if problems:
            return [Finding("calc_answer_mismatch", "; ".join(problems))]
    return []


def _amount_near_gift(text: str, mention: AmountMention) -> bool:
    if mention.qualifier:
        return False  # "1억원 이하": a bracket limit, not the gift
    return bool(_GIFT_AFTER.search(text[mention.end :]) or _GIFT_BEFORE.search(text[: mention.start]))


def gift_amount(question: str) -> int | None:
    """The gift amount the question states, when it states exactly one."""
    amounts = {m.won for m in find_amounts(question) if _amount_near_gift(question, m)}
    return amounts.pop() if len(amounts) == 1 else None


def donor_relation_in(text: str) -> DonorRelation | None:
    found = {relation for relation, pattern in _RELATION_PATTERNS if pattern.search(text)}
    return found.pop() if len(found) == 1 else None


@dataclass(frozen=True)
class GiftFacts:
    amount_won: int
    relation: DonorRelation
    minor_options: tuple[bool, ...]  # (False,), (True,) or both when the question does not say
    year: int | None
    marriage_options: tuple[int, ...]  # 혼인·출산 증여재산공제 amounts worth trying


def recover_gift_facts(question: str) -> GiftFacts | None:
    """The facts a 증여세 computation needs, from the question; None when any is missing or not modelled."""
    if "증여" not in question or _UNMODELLED.search(question):
        return None
    amount = gift_amount(question)
    relation = donor_relation_in(question)
    if amount is None or relation is None:
        return None
    if _MINOR.search(question):
        minors: tuple[bool, ...] = (True,)
    elif _ADULT.search(question):
        minors = (False,)
    else:
        minors = (False, True)
    years = {int(y) for y in _YEAR.findall(question)}
    if len(years) > 1:
        return None
    year = years.pop() if years else None
    marriage = (0, min(100_000_000, amount)) if _MARRIAGE_BIRTH.search(question) else (0,)
    return GiftFacts(amount, relation, minors, year, marriage)


def gift_readings(facts: GiftFacts) -> list[TaxComputation]:
    readings = []
    for minor in facts.minor_options:
        for marriage in facts.marriage_options:
            if marriage and facts.relation is not DonorRelation.LINEAL_ASCENDANT:
                continue
            try:
                readings.append(
                    gift_tax(
                        facts.amount_won,
                        facts.relation,
                        donee_is_minor=minor,
                        year=facts.year,
                        marriage_birth_deduction_won=marriage,
                    )
                )
            except (UnsupportedCase, ValueError):
                continue
    return readings


def _mismatch(answer: str, readings: list[TaxComputation], what: str) -> Finding | None:
    """calc_answer_mismatch unless some reading of the facts agrees with every amount the answer states."""
    if not readings:
        return None
    problems = [check_answer_amounts(answer, computation) for computation in readings]
    if any(not p for p in problems):
        return None
    return Finding("calc_answer_mismatch", f"{what}: " + "; ".join(problems[0]))


def check_gift_answer(pair: QAPair) -> list[Finding]:
    facts = recover_gift_facts(pair.question)
    if facts is None:
        return []
    findings: list[Finding] = []
    readings = gift_readings(facts)
    if readings and _states_tax(pair.answer):
        what = f"증여 {format_won(facts.amount_won)}, 증여자 {facts.relation.value}"
        finding = _mismatch(pair.answer, readings, what)
        if finding:
            findings.append(finding)
    if readings and min(r.deduction for r in readings) > 0:
        denial = _DEDUCTION_DENIED.search(pair.answer)
        if denial:
            allowed = format_won(min(r.deduction for r in readings))
            findings.append(
                Finding(
                    "deduction_denied",
                    f"answer says {denial.group(0)!r}, but a gift from a {facts.relation.value} carries "
                    f"a 증여재산공제 of at least {allowed} (상속세 및 증여세법 제53조)",
                )
            )
    return findings


def check_inheritance_answer(pair: QAPair) -> list[Finding]:
    """상속세 stated for a 과세표준 the question gives ("상속세 과세표준이 15억원일 때 …")."""
    question = pair.question
    if "상속세" not in question or "증여" in question or not _states_tax(pair.answer):
        return []
    bases = {m.won for m in find_amounts(question) if not m.qualifier and _BASE_THEN_AMOUNT.search(question[: m.start])}
    if len(bases) != 1:
        return []
    years = {int(y) for y in _YEAR.findall(question)}
    try:
        reading = inheritance_tax(bases.pop(), year=years.pop() if len(years) == 1 else None)
    except (UnsupportedCase, ValueError):
        return []
    finding = _mismatch(pair.answer, [reading], f"상속세 과세표준 {format_won(reading.taxable_base)}")
    return [finding] if finding else []


def check_arithmetic(pair: QAPair) -> list[Finding]:
    if pair.calculation is not None:
        return check_calculation_payload(pair)
    return check_gift_answer(pair) + check_inheritance_answer(pair)
