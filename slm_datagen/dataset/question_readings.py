"""From a question's stated facts to the calculator inputs it allows (`read_question`).

A reading is one way the law applies to what the question says: kind, date and inputs for taxlaw.kinds.compute. A
fact the question leaves open that changes the result gives several readings (a spouse's actual share unstated → the
5억 minimum; residence unstated for a 1세대1주택 → with and without 표2); an unstated age is an adult's, unless the
answer itself says it assumes a minor. A fact the calculator does not model, or a missing one it needs, leaves no
reading and says why (`unverified`). `stated` keeps the facts said in so many words, by input name, so that a
teacher's payload can be compared with the question.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from slm_datagen.dataset.question_facts import (
    Lateness,
    RoledAmount,
    asks_amount,
    dated_mentions,
    event_date,
    holding_years_in,
    lateness_in,
    residence_years_in,
    roled_amounts,
    taxes_asked,
)
from slm_datagen.dataset.question_gift import donor_relation_in
from slm_datagen.taxlaw.amounts import find_amounts
from slm_datagen.taxlaw.inputs import AssetKind, DonorRelation, HoldingPeriod, VatSector


@dataclass(frozen=True)
class Reading:
    kind: str  # a key of taxlaw.kinds.INPUT_TYPES
    year: int | str | None  # as the question dates it (year or ISO date); None = not dated
    inputs: dict[str, Any]
    assumption: str = ""  # what this reading assumes beyond the question ("미성년 가정")


@dataclass(frozen=True)
class QuestionFacts:
    tax: str  # the tax asked about: gift_tax, inheritance_tax, income_tax, capital_gains_tax, corporate_tax, vat
    lateness: Lateness
    readings: tuple[Reading, ...] = ()
    unverified: str | None = None  # why there is no reading
    stated: dict[str, Any] = field(default_factory=dict)
    question_amounts: frozenset[int] = frozenset()


def _word(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


_GIFT_ROLES = (
    (
        "gift",
        _word(r"증여재산|증여받은\s*(?:금액|재산)?|증여액|증여\s*금액|증여할|현금|아파트|주식|토지"),
        _word(r"^[^.,\n]{0,15}?증여"),
    ),
    ("other", _word(r"채무|대출|전세\s*보증금|부채|이하|초과"), None),
)
_GIFT_UNMODELLED = _word(
    r"부담부|채무|대출|전세\s*보증금|비거주|창업자금|가업|저가|고가\s*양수|신탁|보험금|해외|외국|법인|각각|각자|"
    r"명의신탁|차명|상속"
)
_PRIOR = _word(r"(?:\d+|몇)\s*년\s*전|이전에|전에|과거|앞서|이미|예전|먼저|지난해|작년")
# Earlier gifts over 10 years before are not added back (제47조②).
_OUTSIDE_TEN_YEARS = _word(r"(?:1[1-9]|[2-9]\d)\s*년\s*전")
_EARLIER_GIFTS = _word(r"10\s*년|십\s*년|재차|다시|두\s*번|세\s*번|여러\s*번|매년|나누어|분할|전에도|이전에도|합산")
_MINOR = _word(r"미성년")
_ADULT = _word(r"(?<!미)성년|성인|직장인|대학생|결혼한|기혼")
_AGE = _word(r"(\d{1,3})\s*(?:세|살)(?![가-힣])")
_MARRIAGE = _word(r"혼인|결혼|출산|출생|입양")
_PARENT_DECEASED = _word(
    r"(?:아버지|어머니|부모|부친|모친|아들|딸)[가-힣]{0,3}\s*(?:이미\s*|먼저\s*)?(?:사망|돌아가|별세)"
)
_LATE_INPUT_NAMES = ("filed_on_time", "days_late", "late_return_filed", "fraudulent")


def _late_inputs(lateness: Lateness) -> list[dict[str, Any]]:
    """The lateness inputs to try: none when on time; the stated days, else 0 days with and without a 기한후신고."""
    if not lateness.late:
        return [{}]
    base: dict[str, Any] = {"filed_on_time": False, "fraudulent": lateness.fraudulent}
    if lateness.days is not None:
        return [base | {"days_late": lateness.days, "late_return_filed": lateness.return_filed}]
    variants = [base | {"days_late": 0, "late_return_filed": lateness.return_filed}]
    if lateness.return_filed:
        variants.append(base | {"days_late": 0, "late_return_filed": False})
    return variants


def _year(question: str, role: str) -> tuple[int | str | None, str | None]:
    dates, _ = event_date(question, role)
    if len(dates) > 1:
        return None, f"여러 날짜({', '.join(map(str, dates))}) 중 어느 것이 과세 기준일인지 불분명 / several dates"
    return (dates[0] if dates else None), None


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
    if _GIFT_UNMODELLED.search(question):
        return _unverified(facts, f"계산기가 모델링하지 않는 사실: {_GIFT_UNMODELLED.search(question).group(0)}")
    relation = donor_relation_in(question)
    if relation is None:
        return _unverified(facts, "증여자와 수증자의 관계를 질문에서 읽을 수 없음 / relation not stated")
    amounts = [r for r in roled_amounts(question, _GIFT_ROLES) if r.role == "gift"]
    latest = max((y for r in amounts if (y := _clause_year(r.sentence)) is not None), default=None)

    def is_prior(r: RoledAmount) -> bool:  # said to be earlier, or dated before the latest gift
        year_of_clause = _clause_year(r.sentence)
        return bool(_PRIOR.search(r.sentence)) or (year_of_clause is not None and year_of_clause < latest)

    prior = {r.mention.won for r in amounts if is_prior(r) and not _OUTSIDE_TEN_YEARS.search(r.sentence)}
    current_amounts = [r for r in amounts if not is_prior(r)]
    if len({r.mention.won for r in current_amounts}) != 1 or len(prior) > 1:
        return _unverified(facts, "증여재산가액을 하나로 읽을 수 없음 / gift amount not stated once")
    if not prior and _EARLIER_GIFTS.search(question):
        return _unverified(facts, "10년 내 이전 증여가 있으나 금액을 읽을 수 없음 / earlier gifts without an amount")
    minors = _minor_options(question, answer)
    if minors is None:
        return _unverified(facts, "수증자의 성년 여부가 모순됨 / contradictory age")
    clause_dates = dated_mentions(current_amounts[0].sentence)
    year, why = (clause_dates[0].value(), None) if len(clause_dates) == 1 else _year(question, "gift")
    if why:
        return _unverified(facts, why)
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
        for late in _late_inputs(lateness):
            extra = {"marriage_birth_deduction_won": marriage} if marriage else {}
            readings.append(
                Reading("gift_tax", year, inputs | {"donee_is_minor": minor} | extra | late, "미성년" if minor else "")
            )
    return _with(facts, readings, stated | _stated_late(lateness), year)


def _clause_year(clause: str) -> int | None:
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
    year, why = _year(question, "death")
    if why:
        return _unverified(facts, why)
    roled = roled_amounts(question, _ESTATE_ROLES)
    bases = {r.mention.won for r in roled if r.role == "base"}
    if len(bases) == 1:
        base = bases.pop()
        readings = [
            Reading("inheritance_tax", year, {"taxable_base_won": base} | late) for late in _late_inputs(lateness)
        ]
        return _with(facts, readings, {"taxable_base_won": base} | _stated_late(lateness), year)
    if _ESTATE_UNMODELLED.search(question) and "과세가액" not in question:
        return _unverified(facts, f"상속세 과세가액 계산에 필요한 사실: {_ESTATE_UNMODELLED.search(question).group(0)}")
    estates = {r.mention.won for r in roled if r.role == "estate"}
    if len(estates) != 1:
        return _unverified(facts, "상속재산(과세가액)을 하나로 읽을 수 없음 / estate not stated once")
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
            return _unverified(facts, "배우자 상속분을 하나로 읽을 수 없음")
        share = shares.pop() if shares else 0
        heirs["spouse_inherited_won"] = share
        if share > 500_000_000:
            if not children:
                return _unverified(facts, "배우자 법정상속분을 정할 자녀 수가 없음 / children count needed")
            heirs["spouse_legal_share_won"] = estate * 3 // (3 + 2 * children)  # 민법 제1009조: 배우자 1.5
    financial = {r.mention.won for r in roled if r.role == "financial"}
    if len(financial) == 1:
        heirs["net_financial_assets_won"] = financial.pop()
    inputs = {"taxable_estate_won": estate} | heirs
    readings = [Reading("inheritance_tax_estate", year, inputs | late) for late in _late_inputs(lateness)]
    return _with(facts, readings, inputs | _stated_late(lateness), year)


_BASE_ROLES = (("base", _word(r"과세표준"), None), ("income", _word(r"소득금액|연봉|총급여|급여|수입|매출"), None))


def _from_base(kind: str, question: str, lateness: Lateness, input_name: str, year_role: str) -> QuestionFacts:
    facts = QuestionFacts(kind, lateness)
    bases = {r.mention.won for r in roled_amounts(question, _BASE_ROLES) if r.role == "base"}
    if len(bases) != 1:
        return _unverified(facts, "과세표준을 하나로 읽을 수 없음 / taxable base not stated once")
    year, why = _year(question, year_role)
    if why:
        return _unverified(facts, why)
    inputs = {input_name: bases.pop()}
    lates = _late_inputs(lateness) if kind == "income_tax" else [{}]
    if kind == "corporate_tax" and lateness.late:
        return _unverified(facts, "법인세 가산세는 모델링하지 않음 / corporate late filing not modelled")
    readings = [Reading(kind, year, inputs | late) for late in lates]
    return _with(facts, readings, inputs | _stated_late(lateness), year)


_SALE_ROLES = (
    ("base", _word(r"과세표준"), None),
    (
        "transfer",
        _word(r"양도가액|양도가|매도가|양도\s*금액|판\s*금액|매매가"),
        _word(r"^\s*(?:에|으로|을|를)?\s*(?:팔|매도|양도|처분|매각)"),
    ),
    (
        "acquisition",
        _word(r"취득가액|취득가|매입가|구입가|취득\s*금액|산\s*금액|분양가"),
        _word(r"^\s*(?:에|으로|을|를)?\s*(?:샀|사서|산\s|구입|매입|취득|분양받)"),
    ),
    ("expenses", _word(r"필요경비|경비|중개수수료|수수료|취득세"), None),
)
_SALE_UNMODELLED = _word(
    r"다주택|[2-9]\s*주택|두\s*채|세\s*채|일시적|미등기|비사업용|조합원\s*입주권|입주권|이월과세|증여받은|상속받은|"
    r"감면|주식|비상장|상장|해외|겸용"
)
_ONE_HOUSE = _word(
    r"1\s*세대\s*1\s*주택|일세대\s*일주택|1\s*가구\s*1\s*주택|유일한\s*(?:주택|집)|한\s*채뿐|다른\s*주택(?:이|은)?\s*없"
)
_HOUSING = _word(r"주택|아파트|빌라|단독주택|다세대|연립|집")
_LAND = _word(r"토지|땅|건물|상가|임야|농지|오피스텔|대지")


def _asset_kind(question: str) -> AssetKind | None:
    if "분양권" in question:
        return AssetKind.PRESALE_RIGHT
    housing, land = _HOUSING.search(question), _LAND.search(question)
    if housing and not land:
        return AssetKind.HOUSING
    if land and not housing:
        return AssetKind.LAND_BUILDING
    return None


def _capital_gains(question: str, answer: str, lateness: Lateness) -> QuestionFacts:
    facts = QuestionFacts("capital_gains_tax", lateness)
    if _SALE_UNMODELLED.search(question):
        return _unverified(facts, f"계산기가 모델링하지 않는 사실: {_SALE_UNMODELLED.search(question).group(0)}")
    kind = _asset_kind(question)
    if kind is None:
        return _unverified(facts, "양도 자산의 종류(주택/토지·건물/분양권)를 읽을 수 없음 / asset kind")
    year, why = _year(question, "transfer")
    if why:
        return _unverified(facts, why)
    holding = holding_years_in(question)
    roled = roled_amounts(question, _SALE_ROLES)
    by_role = {
        role: {r.mention.won for r in roled if r.role == role}
        for role in ("base", "transfer", "acquisition", "expenses")
    }
    lates = _late_inputs(lateness)
    if len(by_role["base"]) == 1 and not by_role["transfer"]:
        period = _period(holding)
        if period is None:
            return _unverified(facts, "보유기간을 읽을 수 없음 / holding period not stated")
        inputs = {"taxable_base_won": by_role["base"].pop(), "asset_kind": kind.value, "holding_period": period}
        readings = [Reading("capital_gains_tax", year, inputs | late) for late in lates]
        return _with(facts, readings, inputs | _stated_late(lateness), year)
    if len(by_role["transfer"]) != 1 or len(by_role["acquisition"]) != 1 or len(by_role["expenses"]) > 1:
        return _unverified(facts, "양도가액·취득가액을 하나씩 읽을 수 없음 / sale and purchase price not stated once")
    if holding is None:
        return _unverified(facts, "보유기간을 읽을 수 없음 / holding period not stated")
    inputs: dict[str, Any] = {
        "transfer_price_won": by_role["transfer"].pop(),
        "acquisition_price_won": by_role["acquisition"].pop(),
        "holding_years": holding,
        "asset_kind": kind.value,
    }
    if by_role["expenses"]:
        inputs["expenses_won"] = by_role["expenses"].pop()
    one_house = kind is AssetKind.HOUSING and _ONE_HOUSE.search(question) is not None
    residences: tuple[int, ...] = (0,)
    if one_house:
        inputs["one_house_exempt"] = holding >= 2
        residence = residence_years_in(question, holding)
        residences = (residence,) if residence is not None else (0, holding)
    readings = [
        Reading("capital_gains_sale", year, inputs | {"residence_years": r} | late)
        for r in residences
        for late in lates
    ]
    return _with(facts, readings, inputs | _stated_late(lateness), year)


def _period(holding: int | None) -> str | None:
    if holding is None:
        return None
    if holding < 1:
        return HoldingPeriod.UNDER_1Y.value
    return (HoldingPeriod.FROM_1Y_TO_2Y if holding < 2 else HoldingPeriod.TWO_YEARS_OR_MORE).value


_VAT_ROLES = (
    ("output_tax", _word(r"매출세액"), None),
    ("input_tax", _word(r"매입세액"), None),
    ("supply_with_vat", _word(r"공급대가"), None),
    (
        "purchases",
        _word(r"(?:매입|구입|사들)(?:액|\s*금액)?(?:\s*(?:공급가액|공급대가))?"),
        _word(r"^\s*(?:의|어치)\s*(?:매입|구입)"),
    ),
    (
        "sales",
        _word(r"(?:매출|판매)(?:액|\s*금액)?(?:\s*공급가액)?|공급가액|수입금액"),
        _word(r"^\s*(?:의|어치)\s*(?:매출|판매)"),
    ),
)
_SECTORS: tuple[tuple[VatSector, re.Pattern[str]], ...] = (
    (VatSector.RETAIL_FOOD, _word(r"음식점|식당|소매|카페|편의점|분식")),
    (VatSector.MANUFACTURING, _word(r"제조|농업|임업|어업")),
    (VatSector.LODGING, _word(r"숙박|펜션|모텔|게스트하우스")),
    (VatSector.CONSTRUCTION_TRANSPORT_ICT, _word(r"건설|운수|운송|창고|정보통신")),
    (
        VatSector.FINANCE_PROFESSIONAL_REAL_ESTATE,
        _word(r"부동산\s*임대|임대업|금융|보험|전문\s*서비스|과학|기술\s*서비스"),
    ),
)


def _vat(question: str, answer: str, lateness: Lateness) -> QuestionFacts:
    facts = QuestionFacts("vat", lateness)
    if lateness.late or re.search(r"부가세\s*포함|부가가치세\s*포함|VAT\s*포함|신용카드|의제매입|대손", question):
        return _unverified(facts, "가산세·부가세 포함 금액·발행세액공제 등은 모델링하지 않음 / not modelled")
    year, why = _year(question, "tax_year")
    if why:
        return _unverified(facts, why)
    roled = roled_amounts(question, _VAT_ROLES)
    by_role = {role: {r.mention.won for r in roled if r.role == role} for role, _, _ in _VAT_ROLES}
    if "간이과세" in question:
        supply = by_role["supply_with_vat"] or by_role["sales"]
        sector = [s for s, pattern in _SECTORS if pattern.search(question)]
        if len(supply) != 1 or len(sector) != 1 or len(by_role["purchases"]) > 1:
            return _unverified(facts, "간이과세자의 공급대가·업종을 하나씩 읽을 수 없음")
        inputs = {"supply_with_vat_won": supply.pop(), "sector": sector[0].value}
        if by_role["purchases"]:
            inputs["purchases_with_vat_won"] = by_role["purchases"].pop()
        return _with(facts, [Reading("simplified_vat", year, inputs)], inputs, year)
    if len(by_role["output_tax"]) == 1 and len(by_role["input_tax"]) == 1:
        inputs = {"sales_won": by_role["output_tax"].pop() * 10, "purchases_won": by_role["input_tax"].pop() * 10}
    elif len(by_role["sales"]) == 1 and len(by_role["purchases"]) == 1:
        inputs = {"sales_won": by_role["sales"].pop(), "purchases_won": by_role["purchases"].pop()}
    else:
        return _unverified(facts, "매출·매입(공급가액)을 하나씩 읽을 수 없음 / sales and purchases not stated once")
    return _with(facts, [Reading("vat", year, inputs)], inputs, year)


def _stated_late(lateness: Lateness) -> dict[str, Any]:
    if not lateness.late:
        return {}
    return {"filed_on_time": False} | ({"days_late": lateness.days} if lateness.days is not None else {})


def _unverified(facts: QuestionFacts, why: str) -> QuestionFacts:
    return QuestionFacts(facts.tax, facts.lateness, (), why, {}, facts.question_amounts)


def _with(
    facts: QuestionFacts, readings: list[Reading], stated: dict[str, Any], year: int | str | None
) -> QuestionFacts:
    if year is not None:
        stated = stated | {"year": int(str(year)[:4])}
    return QuestionFacts(facts.tax, facts.lateness, tuple(readings), None, stated, facts.question_amounts)


_READERS = {
    "gift_tax": _gift,
    "inheritance_tax": _inheritance,
    "capital_gains_tax": _capital_gains,
    "vat": _vat,
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
