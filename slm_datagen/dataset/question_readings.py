"""From a question's stated facts to the calculator inputs it allows (`read_question`); 증여세, 상속세, 종합소득세 and
법인세 here, 양도소득세 and 부가가치세 in question_sales.py.

A reading is one way the law applies to what the question says: kind, date and inputs for taxlaw.kinds.compute. A
fact the question leaves open that changes the result gives several readings (a spouse's actual share unstated → the
5억 minimum; residence unstated for a 1세대1주택 → with and without 표2); an unstated age is an adult's, unless the
answer itself says it assumes a minor. A fact the calculator does not model, or a missing one it needs, leaves no
reading and says why (`unverified`). `stated` keeps the facts said in so many words, by input name, so that a
teacher's payload can be compared with the question.
"""

from __future__ import annotations

import re
from typing import Any

from slm_datagen.dataset.question_facts import (
    Lateness,
    QuestionFacts,
    Reading,
    RoledAmount,
    asks_amount,
    dated_mentions,
    late_inputs,
    lateness_in,
    roled_amounts,
    stated_late,
    tax_date,
    taxes_asked,
    unmodelled_fact,
    unverified_facts,
    with_readings,
)
from slm_datagen.dataset.question_gift import donor_relation_in
from slm_datagen.dataset.question_sales import capital_gains_facts, vat_facts
from slm_datagen.taxlaw.amounts import find_amounts
from slm_datagen.taxlaw.inputs import DonorRelation

_word = re.compile


_GIFT_ROLES = (
    (
        "gift",
        _word(r"증여재산|증여받은\s*(?:금액|재산)?|증여액|증여\s*금액|증여할|현금|아파트|주식|토지"),
        _word(r"^[^.,\n]{0,15}?(?:증여|보내\s*주|주셨|이체|송금|(?:을|를)\s*받(?:았|은\s*적))"),
    ),
    ("other", _word(r"채무|대출|전세\s*보증금|부채|이하|초과"), None),
)
_GIFT_UNMODELLED = _word(
    r"부담부|채무|대출|전세\s*보증금|비거주|창업자금|가업|저가|고가\s*양수|신탁|보험금|해외|외국|법인|각각(?!\s*얼마)|각자(?!\s*얼마)|"
    r"명의신탁|차명|상속"
)
_PRIOR = _word(
    r"(?:\d+|몇)\s*년\s*전|이전에|전에|과거|앞서|이미|예전|먼저|지난해|작년|같은\s*(?:증여자|분)\S{0,6}\s*받은\s*증여"
)
# Earlier gifts over 10 years before are not added back (제47조②).
_OUTSIDE_TEN_YEARS = _word(r"(?:1[1-9]|[2-9]\d)\s*년\s*전")
_EARLIER_GIFTS = _word(r"10\s*년|십\s*년|재차|다시|두\s*번|세\s*번|여러\s*번|매년|나누어|분할|전에도|이전에도|합산")
_MINOR = _word(r"미성년")
_ADULT = _word(r"(?<!미)성년|성인|직장인|대학생|결혼한|기혼")
_AGE = _word(r"(\d{1,3})\s*(?:세|살)(?!금|액|율|법|무|대|입|출)")
_MARRIAGE = _word(r"혼인|결혼|출산|출생|입양")
_PARENT_DECEASED = _word(
    r"(?:아버지|어머니|부모|부친|모친|아들|딸)[가-힣]{0,3}\s*(?:이미\s*|먼저\s*)?(?:사망|돌아가|별세)"
)
_LATE_INPUT_NAMES = ("filed_on_time", "days_late", "late_return_filed", "fraudulent")


def _minor_options(question: str, answer: str) -> tuple[bool, ...] | None:
    ages = {int(a) for a in _AGE.findall(question)}
    says_minor = _MINOR.search(question) is not None or any(a < 19 for a in ages)
    says_adult = _ADULT.search(question) is not None or any(19 <= a < 120 for a in ages)
    if says_minor and says_adult:
        return None
    if says_minor:
        return (True,)
    if says_adult:
        return (False,)
    return (False, True) if _MINOR.search(answer) else (False,)


def _gift(question: str, answer: str, lateness: Lateness) -> QuestionFacts:
    facts = QuestionFacts("gift_tax", lateness)
    if (fact := unmodelled_fact(_GIFT_UNMODELLED, question)) is not None:
        return unverified_facts(facts, f"계산기가 모델링하지 않는 사실: {fact}")
    relation = donor_relation_in(question)
    if relation is None:
        return unverified_facts(facts, "증여자와 수증자의 관계를 질문에서 읽을 수 없음 / relation not stated")
    amounts = [r for r in roled_amounts(question, _GIFT_ROLES) if r.role == "gift"]
    latest = max((y for r in amounts if (y := _clausetax_date(r.sentence)) is not None), default=None)

    def is_prior(r: RoledAmount) -> bool:  # said to be earlier, or dated before the latest gift
        year_of_clause = _clausetax_date(r.sentence)
        return bool(_PRIOR.search(r.sentence)) or (year_of_clause is not None and year_of_clause < latest)

    prior = {r.mention.won for r in amounts if is_prior(r) and not _OUTSIDE_TEN_YEARS.search(r.sentence)}
    current_amounts = [r for r in amounts if not is_prior(r)]
    if len({r.mention.won for r in current_amounts}) != 1 or len(prior) > 1:
        return unverified_facts(facts, "증여재산가액을 하나로 읽을 수 없음 / gift amount not stated once")
    if not prior and unmodelled_fact(_EARLIER_GIFTS, question) is not None:  # "…받은 돈은 없습니다" rules it out
        return unverified_facts(
            facts, "10년 내 이전 증여가 있으나 금액을 읽을 수 없음 / earlier gifts without an amount"
        )
    minors = _minor_options(question, answer)
    if minors is None:
        return unverified_facts(facts, "수증자의 성년 여부가 모순됨 / contradictory age")
    clause_dates = dated_mentions(current_amounts[0].sentence)
    year, why = (clause_dates[0].value(), None) if len(clause_dates) == 1 else tax_date(question, "gift")
    if why:
        return unverified_facts(facts, why)
    amount = current_amounts[0].mention.won
    inputs: dict[str, Any] = {"amount_won": amount, "relationship": relation.value}
    if prior:
        inputs["prior_gifts_won"] = prior.pop()
    if relation is DonorRelation.GRANDPARENT and _PARENT_DECEASED.search(question):
        inputs["donee_parent_deceased"] = True
    marriage = 0
    year_number = int(str(year)[:4]) if year is not None else None
    ascendant = relation in (DonorRelation.LINEAL_ASCENDANT, DonorRelation.GRANDPARENT)
    if _MARRIAGE.search(question) and ascendant and (year_number is None or year_number >= 2024):
        marriage = min(100_000_000, amount)
    stated = dict(inputs) | ({"donee_is_minor": minors[0]} if len(minors) == 1 and _said_age(question) else {})
    readings = []
    for minor in minors:
        for late in late_inputs(lateness):
            extra = {"marriage_birth_deduction_won": marriage} if marriage else {}
            readings.append(
                Reading("gift_tax", year, inputs | {"donee_is_minor": minor} | extra | late, "미성년" if minor else "")
            )
    return with_readings(facts, readings, stated | stated_late(lateness), year)


def _clausetax_date(clause: str) -> int | None:
    dates = dated_mentions(clause)
    return dates[0].year if dates else None


def _said_age(question: str) -> bool:
    return bool(_MINOR.search(question) or _ADULT.search(question) or _AGE.search(question))


_ESTATE_ROLES = (
    ("base", _word(r"과세표준"), None),
    (
        "estate",
        _word(r"상속재산|상속세\s*과세가액|과세가액|유산|재산|상속받은\s*재산"),
        _word(r"^[^.,\n]{0,12}?(?:남기|물려|상속재산|의\s*재산)"),
    ),
    ("spouse", _word(r"배우자|어머니|아내|남편"), None),
    ("financial", _word(r"금융재산|예금|적금"), None),
)
_ESTATE_UNMODELLED = _word(r"채무|장례|공과금|사전\s*증여|가업|영농|동거주택|재해|대습|손자|손녀|비거주|유증|사인증여")
_SPOUSE = _word(r"배우자|아내|남편|부인|어머니(?:와|가|는|께서|도)")
_NO_SPOUSE = _word(r"배우자\s*(?:는|가)?\s*(?:없|이미|먼저)|사별|이혼|배우자\s*없이|홀로|독신")
_CHILDREN = _word(r"(?:자녀|아들|딸|자식)\s*(\d+|한|두|세|네|다섯|하나|둘|셋|넷)\s*(?:명|분)?")
_KOREAN_COUNT = {"한": 1, "하나": 1, "두": 2, "둘": 2, "세": 3, "셋": 3, "네": 4, "넷": 4, "다섯": 5}


def _children(question: str) -> int | None:
    counts = [_KOREAN_COUNT.get(g, None) or int(g) for g in _CHILDREN.findall(question)]
    if counts:
        return sum(counts)
    if re.search(r"외아들|외동|자녀\s*한\s*명", question):
        return 1
    if re.search(r"아들과\s*딸|딸과\s*아들", question):
        return 2
    return None


def _inheritance(question: str, answer: str, lateness: Lateness) -> QuestionFacts:
    facts = QuestionFacts("inheritance_tax", lateness)
    year, why = tax_date(question, "death")
    if why:
        return unverified_facts(facts, why)
    roled = roled_amounts(question, _ESTATE_ROLES)
    bases = {r.mention.won for r in roled if r.role == "base"}
    if len(bases) == 1:
        base = bases.pop()
        readings = [
            Reading("inheritance_tax", year, {"taxable_base_won": base} | late) for late in late_inputs(lateness)
        ]
        return with_readings(facts, readings, {"taxable_base_won": base} | stated_late(lateness), year)
    if _ESTATE_UNMODELLED.search(question) and "과세가액" not in question:
        return unverified_facts(
            facts, f"상속세 과세가액 계산에 필요한 사실: {_ESTATE_UNMODELLED.search(question).group(0)}"
        )
    estates = {r.mention.won for r in roled if r.role == "estate"}
    if len(estates) != 1:
        return unverified_facts(facts, "상속재산(과세가액)을 하나로 읽을 수 없음 / estate not stated once")
    estate = estates.pop()
    heirs: dict[str, Any] = {}
    children = _children(question)
    if children:
        heirs["children"] = children
    minor_years = sum(19 - int(a) for a in _AGE.findall(question) if int(a) < 19)
    if minor_years:
        heirs["minor_years"] = minor_years
    if _SPOUSE.search(question) and not _NO_SPOUSE.search(question):
        heirs["spouse_survives"] = True
        shares = {r.mention.won for r in roled if r.role == "spouse"}
        if len(shares) > 1:
            return unverified_facts(facts, "배우자 상속분을 하나로 읽을 수 없음")
        share = shares.pop() if shares else 0
        heirs["spouse_inherited_won"] = share
        if share > 500_000_000:
            if not children:
                return unverified_facts(facts, "배우자 법정상속분을 정할 자녀 수가 없음 / children count needed")
            heirs["spouse_legal_share_won"] = estate * 3 // (3 + 2 * children)  # 민법 제1009조: 배우자 1.5
    financial = {r.mention.won for r in roled if r.role == "financial"}
    if len(financial) == 1:
        heirs["net_financial_assets_won"] = financial.pop()
    inputs = {"taxable_estate_won": estate} | heirs
    readings = [Reading("inheritance_tax_estate", year, inputs | late) for late in late_inputs(lateness)]
    return with_readings(facts, readings, inputs | stated_late(lateness), year)


_BASE_ROLES = (("base", _word(r"과세표준"), None), ("income", _word(r"소득금액|연봉|총급여|급여|수입|매출"), None))


def _from_base(kind: str, question: str, lateness: Lateness, input_name: str, year_role: str) -> QuestionFacts:
    facts = QuestionFacts(kind, lateness)
    bases = {r.mention.won for r in roled_amounts(question, _BASE_ROLES) if r.role == "base"}
    if len(bases) != 1:
        return unverified_facts(facts, "과세표준을 하나로 읽을 수 없음 / taxable base not stated once")
    year, why = tax_date(question, year_role)
    if why:
        return unverified_facts(facts, why)
    inputs = {input_name: bases.pop()}
    lates = late_inputs(lateness) if kind == "income_tax" else [{}]
    if kind == "corporate_tax" and lateness.late:
        return unverified_facts(facts, "법인세 가산세는 모델링하지 않음 / corporate late filing not modelled")
    readings = [Reading(kind, year, inputs | late) for late in lates]
    return with_readings(facts, readings, inputs | stated_late(lateness), year)


_READERS = {
    "gift_tax": _gift,
    "inheritance_tax": _inheritance,
    "capital_gains_tax": capital_gains_facts,
    "vat": vat_facts,
    "income_tax": lambda q, a, late: _from_base("income_tax", q, late, "taxable_income_won", "tax_year"),
    "corporate_tax": lambda q, a, late: _from_base("corporate_tax", q, late, "taxable_base_won", "tax_year"),
}


def read_question(question: str, answer: str = "") -> QuestionFacts | None:
    """The facts of a question that asks for a tax amount and states at least one amount; None for any other."""
    amounts = frozenset(m.won for m in find_amounts(question) if not m.qualifier)
    if not amounts or not asks_amount(question):
        return None
    taxes = taxes_asked(question)
    lateness = lateness_in(question)
    if len(taxes) != 1:
        if not taxes:
            return None
        return QuestionFacts(
            taxes[0], lateness, (), f"여러 세목({', '.join(taxes)})을 묻는 질문 / several taxes", {}, amounts
        )
    facts = _READERS[taxes[0]](question, answer, lateness)
    return QuestionFacts(facts.tax, lateness, facts.readings, facts.unverified, facts.stated, amounts)
