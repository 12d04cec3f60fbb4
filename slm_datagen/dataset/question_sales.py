"""The facts of 양도소득세 and 부가가치세 questions (see question_readings.py for what a reading is).

양도: the 과세표준 when the question gives it, else 양도가액, 취득가액, 필요경비 and whole years held, the asset kind
(주택 / 토지·건물 / 분양권), 1세대1주택 (residence unstated → with and without 표2); 다주택, 미등기, 비사업용토지 and the
other cases capital_gains_sale.py does not model leave the question unverified. 부가가치세: 매출·매입 공급가액 (or the
two 세액) of a 일반과세자; a 간이과세자's 공급대가, 업종 and 세금계산서 매입.
"""

from __future__ import annotations

import re
from typing import Any

from slm_datagen.dataset.question_facts import (
    Lateness,
    QuestionFacts,
    Reading,
    holding_years_in,
    late_inputs,
    residence_years_in,
    roled_amounts,
    stated_late,
    tax_date,
    unmodelled_fact,
    unverified_facts,
    with_readings,
)
from slm_datagen.taxlaw.inputs import AssetKind, HoldingPeriod, VatSector

_word = re.compile

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
    if "분양권" in question and not re.search(r"분양권\s*(?:이|은|는)?\s*(?:아님|아닌|아니)", question):
        return AssetKind.PRESALE_RIGHT  # "(분양권 아님)" says what the asset is not
    housing, land = _HOUSING.search(question), _LAND.search(question)
    if housing and not land:
        return AssetKind.HOUSING
    if land and not housing:
        return AssetKind.LAND_BUILDING
    return None


def capital_gains_facts(question: str, answer: str, lateness: Lateness) -> QuestionFacts:
    facts = QuestionFacts("capital_gains_tax", lateness)
    if (fact := unmodelled_fact(_SALE_UNMODELLED, question)) is not None:
        return unverified_facts(facts, f"계산기가 모델링하지 않는 사실: {fact}")
    kind = _asset_kind(question)
    if kind is None:
        return unverified_facts(facts, "양도 자산의 종류(주택/토지·건물/분양권)를 읽을 수 없음 / asset kind")
    year, why = tax_date(question, "transfer")
    if why:
        return unverified_facts(facts, why)
    holding = holding_years_in(question)
    roled = roled_amounts(question, _SALE_ROLES)
    by_role = {
        role: {r.mention.won for r in roled if r.role == role}
        for role in ("base", "transfer", "acquisition", "expenses")
    }
    lates = late_inputs(lateness)
    if len(by_role["base"]) == 1 and not by_role["transfer"]:
        period = _period(holding)
        if period is None:
            return unverified_facts(facts, "보유기간을 읽을 수 없음 / holding period not stated")
        inputs = {"taxable_base_won": by_role["base"].pop(), "asset_kind": kind.value, "holding_period": period}
        readings = [Reading("capital_gains_tax", year, inputs | late) for late in lates]
        return with_readings(facts, readings, inputs | stated_late(lateness), year)
    if len(by_role["transfer"]) != 1 or len(by_role["acquisition"]) != 1 or len(by_role["expenses"]) > 1:
        return unverified_facts(
            facts, "양도가액·취득가액을 하나씩 읽을 수 없음 / sale and purchase price not stated once"
        )
    if holding is None:
        return unverified_facts(facts, "보유기간을 읽을 수 없음 / holding period not stated")
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
    return with_readings(facts, readings, inputs | stated_late(lateness), year)


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


def vat_facts(question: str, answer: str, lateness: Lateness) -> QuestionFacts:
    facts = QuestionFacts("vat", lateness)
    if lateness.late or re.search(r"부가세\s*포함|부가가치세\s*포함|VAT\s*포함|신용카드|의제매입|대손", question):
        return unverified_facts(facts, "가산세·부가세 포함 금액·발행세액공제 등은 모델링하지 않음 / not modelled")
    year, why = tax_date(question, "tax_year")
    if why:
        return unverified_facts(facts, why)
    roled = roled_amounts(question, _VAT_ROLES)
    by_role = {role: {r.mention.won for r in roled if r.role == role} for role, _, _ in _VAT_ROLES}
    if "간이과세" in question:
        supply = by_role["supply_with_vat"] or by_role["sales"]
        sector = [s for s, pattern in _SECTORS if pattern.search(question)]
        if len(supply) != 1 or len(sector) != 1 or len(by_role["purchases"]) > 1:
            return unverified_facts(facts, "간이과세자의 공급대가·업종을 하나씩 읽을 수 없음")
        inputs = {"supply_with_vat_won": supply.pop(), "sector": sector[0].value}
        if by_role["purchases"]:
            inputs["purchases_with_vat_won"] = by_role["purchases"].pop()
        return with_readings(facts, [Reading("simplified_vat", year, inputs)], inputs, year)
    if len(by_role["output_tax"]) == 1 and len(by_role["input_tax"]) == 1:
        inputs = {"sales_won": by_role["output_tax"].pop() * 10, "purchases_won": by_role["input_tax"].pop() * 10}
    elif len(by_role["sales"]) == 1 and len(by_role["purchases"]) == 1:
        inputs = {"sales_won": by_role["sales"].pop(), "purchases_won": by_role["purchases"].pop()}
    else:
        return unverified_facts(
            facts, "매출·매입(공급가액)을 하나씩 읽을 수 없음 / sales and purchases not stated once"
        )
    return with_readings(facts, [Reading("vat", year, inputs)], inputs, year)
