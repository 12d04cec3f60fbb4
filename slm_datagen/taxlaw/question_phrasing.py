"""The Korean wording of a drawn calculation case (questions.Case): as a 세무사 asks it (`expert`: the legal terms, every
fact in order) or as the person concerned tells it (`layperson`: first person, plain words, another order).

Every fact the calculator uses is stated; what it does not model (감면, 다른 증여, 중과) is ruled out in words, so the
computation is the only right answer. Particles are fixed by construction: every variable word here ends the same way
("…원을", "…세이고"), so no particle needs choosing.
"""

from __future__ import annotations

from datetime import date

from slm_datagen.taxlaw.amounts import format_won
from slm_datagen.taxlaw.questions import Case

_RELATION_WORDS = {
    "lineal_ascendant": "직계존속",
    "grandparent": "조부모",
    "spouse": "배우자",
    "lineal_descendant": "직계비속",
    "other_relative": "기타친족",
    "unrelated": "특수관계 없는 타인",
}
_HOLDING_WORDS = {"under_1y": "1년 미만", "1y_to_2y": "1년 이상 2년 미만", "2y_or_more": "2년 이상"}


def ko_date(day: date) -> str:
    return f"{day.year}년 {day.month}월 {day.day}일"


def _won(value: int) -> str:
    return format_won(value)


def _obj(word: str) -> str:
    """`word` with its object particle: 을 after a final consonant (건물을, 집을), else 를 (토지를)."""
    last = next((ch for ch in reversed(word) if "가" <= ch <= "힣"), "")
    return word + ("을" if last and (ord(last) - 0xAC00) % 28 else "를")


def _held(months: int) -> str:
    years, rest = divmod(months, 12)
    if not years:
        return f"{rest}개월"
    return f"{years}년" + (f" {rest}개월" if rest else "")


def _filing(case: Case, audience: str, tax: str) -> str:
    i = case.inputs
    if i.get("filed_on_time", True):
        if audience == "expert":
            return f"{tax}는 법정신고기한 내에 신고·납부합니다."
        return "신고는 기한 안에 할 생각입니다."
    due = date.fromisoformat(i["due_date"])
    if audience == "expert":
        return (
            f"법정신고기한({ko_date(due)})까지 신고하지 않았고, 기한이 지나 {i['days_late']}일 뒤에 기한후신고를 하면서 "
            "세액을 함께 납부했습니다(부정행위 없음)."
        )
    return f"그런데 신고 기한({ko_date(due)})을 놓쳐서 {i['days_late']}일 늦게 기한후신고를 하고 세금을 냈습니다."


def _gift(case: Case, audience: str) -> str:
    i, w = case.inputs, case.words
    minor = i.get("donee_is_minor", False)
    prior = i.get("prior_gifts_won", 0)
    marriage = i.get("marriage_birth_deduction_won", 0)
    if audience == "expert":
        parts = [
            f"거주자(만 {w['age']}세, {'미성년자' if minor else '성년'})가 {ko_date(case.event)}에 "
            f"{_RELATION_WORDS[i['relationship']]}인 {w['donor']}로부터 현금 {_won(i['amount_won'])}을 증여받았습니다."
        ]
        if prior:
            parts.append(
                f"10년 이내에 같은 증여자로부터 받은 증여재산 {_won(prior)}이 있으며, 그때 증여재산공제는 받지 않았습니다."
            )
        else:
            parts.append("10년 이내에 같은 증여자(직계존속이면 그 배우자 포함)로부터 받은 다른 증여는 없습니다.")
        parts.append(
            f"혼인 증여재산공제 {_won(marriage)}을 적용받습니다."
            if marriage
            else "혼인·출산 증여재산공제는 받지 않습니다."
        )
        parts.append(_filing(case, audience, "증여세"))
        parts.append("증여세 과세표준, 산출세액과 납부할 세액은 각각 얼마인가요?")
        return " ".join(parts)
    parts = [f"{ko_date(case.event)}에 {w['donor']}에게서 {_won(i['amount_won'])}을 받았습니다."]
    parts.append(f"저는 만 {w['age']}세{'로 미성년자' if minor else ''}입니다.")
    if prior:
        parts.append(f"몇 년 전에도 같은 분에게서 {_won(prior)}을 받은 적이 있는데 그때는 공제를 받지 않았습니다.")
    else:
        parts.append("지난 10년 동안 가족에게서 따로 받은 돈은 없습니다.")
    if marriage:
        parts.append(f"결혼 자금이라 혼인 증여재산공제 {_won(marriage)}을 받으려고 합니다.")
    parts.append(_filing(case, audience, "증여세"))
    parts.append("제가 내야 할 증여세는 얼마인가요?")
    return " ".join(parts)


def _inheritance(case: Case, audience: str) -> str:
    i, w = case.inputs, case.words
    if audience == "expert":
        return (
            f"거주자인 피상속인이 {ko_date(case.event)} 사망하여 상속이 개시되었고, 상속공제를 모두 뺀 상속세 과세표준은 "
            f"{_won(i['taxable_base_won'])}입니다(세대생략 상속과 증여세액공제 없음). {_filing(case, audience, '상속세')} "
            "상속세 산출세액과 납부할 세액은 얼마인가요?"
        )
    return (
        f"{ko_date(case.event)}에 {w['deceased']}께서 돌아가셨습니다. 세무사님 말로는 상속공제를 다 빼고 남은 과세표준이 "
        f"{_won(i['taxable_base_won'])}이라고 합니다. {_filing(case, audience, '상속세')} 상속세는 얼마나 나오나요?"
    )


def _estate(case: Case, audience: str) -> str:
    i, w = case.inputs, case.words
    heirs = f"자녀 {i['children']}명(모두 성년, 65세 미만, 장애 없음)"
    if i.get("spouse_survives"):
        heirs = (
            f"배우자와 {heirs}이 상속인이고, 배우자가 실제 상속받은 금액은 {_won(i['spouse_inherited_won'])}, 배우자의 "
            f"법정상속분 상당액은 {_won(i['spouse_legal_share_won'])}입니다"
        )
    else:
        heirs = f"배우자는 없고 {heirs}이 상속인입니다"
    financial = i.get("net_financial_assets_won", 0)
    money = f"순금융재산은 {_won(financial)}입니다." if financial else "금융재산은 없습니다."
    if audience == "expert":
        return (
            f"{ko_date(case.event)}에 거주자가 사망했습니다. 상속세 과세가액은 {_won(i['taxable_estate_won'])}이고, {heirs}. "
            f"{money} 동거주택·가업상속공제와 세대생략 상속은 없습니다. {_filing(case, audience, '상속세')} "
            "상속공제 합계, 과세표준과 납부할 상속세는 얼마인가요?"
        )
    return (
        f"{w['deceased']}께서 {ko_date(case.event)}에 돌아가셨습니다. 빚과 장례비를 빼고 남은 상속재산(과세가액)이 "
        f"{_won(i['taxable_estate_won'])}이고, {heirs}. {money} {_filing(case, audience, '상속세')} "
        "상속세를 얼마 내야 하나요?"
    )


def _income(case: Case, audience: str) -> str:
    i, w = case.inputs, case.words
    if audience == "expert":
        return (
            f"거주자의 {case.year}년 귀속 종합소득 과세표준이 {_won(i['taxable_income_won'])}입니다. {case.year + 1}년 "
            "5월 확정신고기한 내에 신고하고 세액공제·감면과 기납부세액은 없다고 할 때, 종합소득세 산출세액과 납부할 "
            "세액은 얼마이며 지방소득세를 합하면 얼마인가요?"
        )
    return (
        f"{w['job']}로 일하고 있는데, {case.year}년 소득에서 소득공제를 다 빼고 남은 과세표준이 "
        f"{_won(i['taxable_income_won'])}입니다. 다음 해 5월에 제때 신고할 생각이고, 세액공제나 미리 낸 세금은 없다고 "
        "치면 종합소득세를 얼마 내게 되나요?"
    )


def _capital_gains(case: Case, audience: str) -> str:
    i, w = case.inputs, case.words
    held = _held(int(w["months"]))
    if audience == "expert":
        return (
            f"거주자가 {held}(보유기간 {_HOLDING_WORDS[i['holding_period']]}) 보유한 {_obj(w['asset'])} "
            f"{ko_date(case.event)}에 양도했습니다. 장기보유특별공제와 양도소득 기본공제를 뺀 양도소득 과세표준은 "
            f"{_won(i['taxable_base_won'])}이고, 비과세·감면과 중과 대상이 아닙니다. 예정신고기한 내에 신고한다면 "
            "양도소득세 산출세액과 납부할 세액은 얼마인가요?"
        )
    return (
        f"{_obj(w['plain'])} {held} 갖고 있다가 {ko_date(case.event)}에 팔았어요. 공제를 다 빼고 계산한 양도소득 "
        f"과세표준이 {_won(i['taxable_base_won'])}이라는데, 비과세나 감면 받을 것은 없습니다. 기한 안에 신고하면 "
        "양도소득세를 얼마 내야 하나요?"
    )


def _sale(case: Case, audience: str) -> str:
    i, w = case.inputs, case.words
    housing = i["asset_kind"] == "housing"
    lived = f", 그중 {i['residence_years']}년 거주" if housing else ""
    lived_lay = f" (그중 {i['residence_years']}년 거주)" if housing else ""
    tail = "1세대1주택 비과세와 다주택 중과는 적용되지 않습니다" if housing else "비사업용 토지가 아닙니다"
    if audience == "expert":
        return (
            f"거주자가 {i['holding_years']}년 보유한{lived} {_obj(w['asset'])} {ko_date(case.event)}에 양도가액 "
            f"{_won(i['transfer_price_won'])}에 양도했습니다. 취득가액은 {_won(i['acquisition_price_won'])}, 필요경비는 "
            f"{_won(i['expenses_won'])}이며, {tail}. 그 해 다른 양도는 없고 기한 내에 신고합니다. 양도차익, 과세표준과 "
            "납부할 양도소득세는 얼마인가요?"
        )
    return (
        f"{i['holding_years']}년 전에 {_won(i['acquisition_price_won'])}에 산 {_obj(w['asset'])} {ko_date(case.event)}에 "
        f"{_won(i['transfer_price_won'])}에 팔았습니다{lived_lay}. "
        f"중개수수료 같은 필요경비가 {_won(i['expenses_won'])} 들었고, {tail}. 올해 다른 부동산은 팔지 않았고 기한 안에 "
        "신고합니다. 양도소득세는 얼마인가요?"
    )


def _corporate(case: Case, audience: str) -> str:
    i, w = case.inputs, case.words
    if audience == "expert":
        return (
            f"{w['firm']}업을 하는 내국법인(중소기업, 사업연도 {case.year}년 1월 1일~12월 31일)의 법인세 과세표준이 "
            f"{_won(i['taxable_base_won'])}입니다. 세액공제·감면과 최저한세는 고려하지 않을 때 법인세 산출세액은 얼마인가요?"
        )
    return (
        f"작은 {w['firm']} 회사를 운영하는데, {case.year}년 사업연도 법인세 과세표준이 {_won(i['taxable_base_won'])}으로 "
        "나왔습니다. 공제나 감면은 없다고 하면 법인세는 얼마인가요?"
    )


def _vat(case: Case, audience: str) -> str:
    i, w = case.inputs, case.words
    if audience == "expert":
        return (
            f"일반과세자의 {case.year}년 제{w['half']}기 과세기간 매출 공급가액은 {_won(i['sales_won'])}, 세금계산서를 "
            f"받은 공제 가능한 매입 공급가액은 {_won(i['purchases_won'])}입니다(영세율·면세 없음, 다른 공제·가산세 없음). "
            "납부할 부가가치세는 얼마인가요?"
        )
    return (
        f"일반과세자로 가게를 하는데 {case.year}년 {w['half']}기에 부가세를 뺀 매출이 {_won(i['sales_won'])}이고, "
        f"세금계산서를 받은 매입이 부가세 빼고 {_won(i['purchases_won'])}입니다. 부가가치세를 얼마 내야 하나요?"
    )


def _simplified_vat(case: Case, audience: str) -> str:
    i, w = case.inputs, case.words
    purchases = i.get("purchases_with_vat_won", 0)
    bought = (
        f"세금계산서 등을 받은 매입액(공급대가)은 {_won(purchases)}입니다"
        if purchases
        else "세금계산서 등을 받은 매입은 없습니다"
    )
    if audience == "expert":
        return (
            f"{w['business']}을 하는 간이과세자의 {case.year}년 과세기간 공급대가(부가가치세 포함)는 "
            f"{_won(i['supply_with_vat_won'])}이고, {bought}(신용카드매출전표 발행세액공제는 고려하지 않음). "
            "납부할 부가가치세는 얼마인가요?"
        )
    return (
        f"{w['business']}을 하는 간이과세자입니다. {case.year}년 한 해 매출이 부가세 포함 {_won(i['supply_with_vat_won'])}이고, "
        f"{bought}. 카드 발행 공제는 빼고 생각하면 부가세를 얼마 내나요?"
    )


_PHRASES = {
    "gift_tax": _gift,
    "inheritance_tax": _inheritance,
    "inheritance_tax_estate": _estate,
    "income_tax": _income,
    "capital_gains_tax": _capital_gains,
    "capital_gains_sale": _sale,
    "corporate_tax": _corporate,
    "vat": _vat,
    "simplified_vat": _simplified_vat,
}


def phrase(case: Case, audience: str) -> str:
    """The question for `case` in the audience's style."""
    if audience not in ("expert", "layperson"):
        raise ValueError(f"unknown audience {audience!r}")
    return _PHRASES[case.kind](case, audience)
