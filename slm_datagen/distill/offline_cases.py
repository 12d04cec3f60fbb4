"""The cases the offline teacher computes: realistic facts drawn from a seeded generator, and their Korean wording.

`draw_case(kind, rng, chunk)` picks the facts (amounts in 10만원 steps, a date in 2023–2025, who gave what to whom
and the donee's age, how long an asset was held, on-time or late filing) and returns them with the calculator's
inputs. `expert_question` states them as a 세무사 would ask; `lay_question` as the person concerned would tell it
(first person, plain words, a different order), so the two are different questions for the paraphrase rule.
Every fact the computation uses is stated: an unstated age or filing date would make the answer unverifiable.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from slm_datagen.distill.korean import particle
from slm_datagen.taxlaw.amounts import format_won
from slm_datagen.taxlaw.computation import Step, TaxComputation
from slm_datagen.taxlaw.penalties import add_months_end
from slm_forest.records import Chunk

YEARS = (2023, 2024, 2025)  # the calculator's tables are current to 2025-12-31
TABLES_CURRENT_TO = date(2025, 12, 31)


@dataclass(frozen=True)
class Case:
    kind: str
    year: int
    event_date: date  # 증여일, 상속개시일, 양도일, or 31 December of the income year
    inputs: dict[str, Any]  # the calculator's inputs (kinds.INPUT_TYPES names), also the payload's
    words: dict[str, str] = field(default_factory=dict)  # donor, donee, asset … as the question says them
    on_time: bool = True
    days_late: int = 0
    due_date: date | None = None

    @property
    def lay_tip(self) -> str:
        if not self.on_time:
            return "기한을 넘기면 신고세액공제를 받지 못하고 가산세가 붙으니, 다음에는 신고기한을 꼭 지키세요."
        if self.kind in ("income_tax", "capital_gains_tax"):
            return "받을 수 있는 세액공제·감면이 있으면 실제 세액은 줄어드니, 신고 전에 홈택스나 세무서에서 확인하세요."
        return "기한 안에 신고해야 신고세액공제를 받을 수 있으니, 실제 신고 전에 홈택스나 관할 세무서에서 확인하세요."


def _won(rng: random.Random, low: int, high: int, step: int = 100_000) -> int:
    return rng.randrange(low // step, high // step + 1) * step


def _date_in(rng: random.Random, year: int) -> date:
    return date(year, 1, 1) + timedelta(days=rng.randrange(0, 365))


def _ko_date(day: date) -> str:
    return f"{day.year}년 {day.month}월 {day.day}일"


def _lateness(rng: random.Random, event: date, months: int, late_share: float) -> tuple[bool, int, date]:
    due = add_months_end(event, months)
    days = rng.randrange(15, 181)
    if rng.random() >= late_share or due + timedelta(days=days) > TABLES_CURRENT_TO:
        return True, 0, due  # a late payment after the tables' last known date could not be checked
    return False, days, due


def _late_inputs(on_time: bool, days: int, due: date) -> dict[str, Any]:
    if on_time:
        return {"filed_on_time": True}
    return {"filed_on_time": False, "days_late": days, "late_return_filed": True, "due_date": due.isoformat()}


# (relationship, donor words, donee words, donor is an elder (께서), amount range in won)
_DONORS: tuple[tuple[str, tuple[str, ...], str, bool, tuple[int, int]], ...] = (
    ("lineal_ascendant", ("아버지", "어머니"), "자녀", True, (60_000_000, 1_500_000_000)),
    ("lineal_ascendant", ("아버지", "어머니"), "자녀", True, (60_000_000, 1_500_000_000)),
    ("grandparent", ("할아버지", "할머니", "외할머니"), "손자녀", True, (50_000_000, 1_000_000_000)),
    ("spouse", ("남편", "아내"), "배우자", False, (700_000_000, 2_000_000_000)),
    ("lineal_descendant", ("아들", "딸"), "아버지", False, (80_000_000, 600_000_000)),
    ("other_relative", ("삼촌", "이모", "고모"), "조카", True, (30_000_000, 400_000_000)),
)


def _gift(rng: random.Random, chunk: Chunk) -> Case:
    relation, donors, donee, elder, (low, high) = rng.choice(_DONORS)
    if chunk.article_no == 57 and chunk.kind == "statute_article":  # the 세대생략 할증 article: a grandparent's gift
        relation, donors, donee, elder, (low, high) = _DONORS[2]
    donor = rng.choice(donors)
    minor = relation in ("lineal_ascendant", "grandparent", "other_relative") and rng.random() < 0.3
    if relation == "lineal_descendant":
        age = rng.randrange(58, 80)
    else:
        age = rng.randrange(7, 19) if minor else rng.randrange(21, 46)
    year = rng.choice(YEARS)
    event = _date_in(rng, year)
    on_time, days, due = _lateness(rng, event, 3, 0.2)
    inputs = {"amount_won": _won(rng, low, high), "relationship": relation, "donee_is_minor": minor}
    inputs.update(_late_inputs(on_time, days, due))
    if relation == "lineal_descendant":
        donee = rng.choice(("아버지", "어머니"))
    words = {
        "donor": donor,
        "donee": donee,
        "age": str(age),
        "honorific": "께서" if elder else particle(donor, "이", "가"),
        "sent": "보내 주셨어요" if elder else "보내 줬어요",
    }
    return Case("gift_tax", year, event, inputs, words, on_time, days, due)


def _inheritance(rng: random.Random, chunk: Chunk) -> Case:
    year = rng.choice(YEARS)
    event = _date_in(rng, year)
    on_time, days, due = _lateness(rng, event, 6, 0.2)
    inputs = {"taxable_base_won": _won(rng, 100_000_000, 4_000_000_000, 1_000_000)}
    inputs.update(_late_inputs(on_time, days, due))
    words = {"deceased": rng.choice(("아버지", "어머니"))}
    return Case("inheritance_tax", year, event, inputs, words, on_time, days, due)


def _income(rng: random.Random, chunk: Chunk) -> Case:
    year = rng.choice(YEARS)
    inputs = {"taxable_income_won": _won(rng, 12_000_000, 400_000_000, 10_000)}
    words = {"job": rng.choice(("프리랜서 디자이너", "개인 음식점 사장", "유튜버", "학원 강사", "개인사업자"))}
    return Case("income_tax", year, date(year, 12, 31), inputs, words, True, 0, date(year + 1, 5, 31))


# (asset_kind, holding_period, asset words (expert), asset words (plain), months held range)
_ASSETS = (
    ("land_building", "2y_or_more", "상가 건물", "작은 상가", (25, 180)),
    ("land_building", "2y_or_more", "사업용 토지", "가게 자리 땅", (25, 180)),
    ("land_building", "under_1y", "상가 건물", "작은 상가", (3, 11)),
    ("land_building", "1y_to_2y", "사업용 토지", "가게 자리 땅", (13, 23)),
    ("housing", "under_1y", "주택(분양권 아님)", "집", (3, 11)),
    ("housing", "1y_to_2y", "주택(분양권 아님)", "집", (13, 23)),
)


def _held(months: int) -> str:
    years, rest = divmod(months, 12)
    if not years:
        return f"{rest}개월"
    return f"{years}년" + (f" {rest}개월" if rest else "")


def _capital_gains(rng: random.Random, chunk: Chunk) -> Case:
    asset_kind, holding, asset, plain, (low, high) = rng.choice(_ASSETS)
    year = rng.choice(YEARS)
    event = _date_in(rng, year)
    months = rng.randrange(low, high + 1)
    inputs = {
        "taxable_base_won": _won(rng, 10_000_000, 500_000_000),
        "asset_kind": asset_kind,
        "holding_period": holding,
        "transfer_date": event.isoformat(),
    }
    words = {"asset": asset, "plain": plain, "held": _held(months)}
    return Case("capital_gains_tax", year, event, inputs, words, True, 0, add_months_end(event, 2))


_DRAW = {"gift_tax": _gift, "inheritance_tax": _inheritance, "income_tax": _income, "capital_gains_tax": _capital_gains}


def draw_case(kind: str, rng: random.Random, chunk: Chunk) -> Case:
    return _DRAW[kind](rng, chunk)


# -------------------------------------------------------------------------------------------------- questions
def _filing_expert(case: Case, what: str) -> str:
    if case.on_time:
        return f"{what}는 법정신고기한({_ko_date(case.due_date)})까지 신고·납부합니다."  # type: ignore[arg-type]
    return (
        f"법정신고기한({_ko_date(case.due_date)})까지 신고하지 않았고, 기한이 지나 {case.days_late}일 뒤에 "  # type: ignore[arg-type]
        "기한후신고를 하면서 함께 납부했습니다(부정행위 없음)."
    )


def _filing_lay(case: Case) -> str:
    if case.on_time:
        return "신고는 기한 안에 하려고 합니다."
    return (
        f"그런데 신고 기한({_ko_date(case.due_date)})을 놓쳐서 {case.days_late}일이 지나서야 "  # type: ignore[arg-type]
        "기한후신고를 하고 세금을 냈습니다."
    )


def expert_question(case: Case) -> str:
    w, i = case.words, case.inputs
    if case.kind == "gift_tax":
        minor = "미성년자" if i["donee_is_minor"] else "성년"
        return (
            f"거주자인 {w['donee']}(만 {w['age']}세, {minor})가 {_ko_date(case.event_date)} {w['donor']}로부터 현금 "
            f"{format_won(i['amount_won'])}을 증여받았습니다. 10년 이내에 같은 증여자(직계존속이면 그 배우자 포함)로부터 "
            f"받은 다른 증여는 없고, 혼인·출산 증여재산공제도 받지 않습니다. {_filing_expert(case, '증여세')} "
            "이 경우 증여세 과세표준, 산출세액과 납부할 세액은 각각 얼마인가요?"
        )
    if case.kind == "inheritance_tax":
        return (
            f"거주자인 피상속인이 {_ko_date(case.event_date)} 사망하여 상속이 개시되었고, 상속공제를 모두 뺀 상속세 "
            f"과세표준은 {format_won(i['taxable_base_won'])}입니다(세대생략 상속과 증여세액공제 없음). "
            f"{_filing_expert(case, '상속세')} 상속세 산출세액과 납부할 세액은 얼마인가요?"
        )
    if case.kind == "income_tax":
        return (
            f"거주자의 {case.year}년 귀속 종합소득 과세표준이 {format_won(i['taxable_income_won'])}입니다. "
            f"{case.year + 1}년 5월 확정신고기한 내에 신고하고 세액공제·감면과 기납부세액은 없다고 할 때, "
            "종합소득세 산출세액과 납부할 세액은 얼마인가요?"
        )
    return (
        f"거주자가 {w['held']} 보유한 {w['asset']}{particle(w['asset'], '을', '를')} {_ko_date(case.event_date)}에 "
        f"양도했습니다. 장기보유특별공제와 양도소득 기본공제를 뺀 양도소득 과세표준은 "
        f"{format_won(i['taxable_base_won'])}이고, 비과세·감면과 중과 대상이 아닙니다. 예정신고기한 내에 신고한다면 "
        "양도소득세 산출세액과 납부할 세액은 얼마인가요?"
    )


def lay_question(case: Case) -> str:
    w, i = case.words, case.inputs
    if case.kind == "gift_tax":
        return (
            f"{_ko_date(case.event_date)}에 {w['donor']}{w['honorific']} 제 통장으로 {format_won(i['amount_won'])}을 "
            f"{w['sent']}. 저는 만 {w['age']}세이고, 지난 10년 동안 가족에게서 따로 받은 돈은 없습니다. "
            f"{_filing_lay(case)} 제가 내야 할 증여세는 얼마인가요?"
        )
    if case.kind == "inheritance_tax":
        return (
            f"{_ko_date(case.event_date)}에 {w['deceased']}께서 돌아가셨습니다. 세무사님 말로는 상속공제를 다 빼고 남은 "
            f"과세표준이 {format_won(i['taxable_base_won'])}이라고 합니다. {_filing_lay(case)} 상속세는 얼마나 나오나요?"
        )
    if case.kind == "income_tax":
        return (
            f"{w['job']}로 일하고 있는데, {case.year}년 소득을 정리해 보니 소득공제를 다 빼고 남은 과세표준이 "
            f"{format_won(i['taxable_income_won'])}입니다. 다음 해 5월에 제때 신고할 생각이고, 세액공제나 미리 낸 세금은 "
            "없다고 치면 종합소득세를 얼마 내게 되나요?"
        )
    return (
        f"{w['plain']}{particle(w['plain'], '을', '를')} {w['held']} 갖고 있다가 {_ko_date(case.event_date)}에 팔았어요. "
        f"이것저것 공제를 빼고 계산한 양도소득 과세표준이 {format_won(i['taxable_base_won'])}이라는데, 따로 비과세나 "
        "감면 받을 것은 없습니다. 기한 안에 신고하면 양도소득세를 얼마 내야 하나요?"
    )


# ------------------------------------------------------------------------------------------------------ notes
_RELATION_NOTES = {
    "lineal_ascendant": "직계존속으로부터 받은 증여",
    "grandparent": "직계존속(조부모)으로부터 받은 증여",
    "spouse": "배우자로부터 받은 증여",
    "lineal_descendant": "직계비속으로부터 받은 증여",
    "other_relative": "기타친족으로부터 받은 증여",
    "unrelated": "타인으로부터 받은 증여",
}


def bracket_text(computation: TaxComputation) -> str:
    """'1억원 × 10% + 1억 5,000만원 × 20%': each band's part of the base and its rate."""
    return " + ".join(f"{format_won(b.amount_taxed)} × {b.rate_pct}%" for b in computation.brackets if b.amount_taxed)


def line_note(case: Case, computation: TaxComputation, step: Step) -> str:
    """The short explanation after a line's amount; amounts appear only as operands (× + −), never as claims."""
    article = step.article  # in full: a bare 제70조 after a 국세기본법 line would be read as 국세기본법 제70조
    key = step.key
    if key == "gross_value":
        return f"증여받은 현금, {article}"
    if key == "deduction_item":
        who = "미성년" if case.inputs.get("donee_is_minor") else "성년"
        return f"{_RELATION_NOTES.get(case.inputs.get('relationship', ''), '증여')}, {who} 수증자, {article}"
    if key == "taxable_base":
        return f"과세가액 − 공제, {article}" if case.kind == "gift_tax" else f"주어진 금액, {article}"
    if key == "computed_tax":
        return f"{bracket_text(computation)}, {step.article} 세율"
    if key == "surcharge":
        pct = round(computation.surcharge * 100 / computation.computed_tax) if computation.computed_tax else 30
        return f"산출세액의 {pct}%, {article}"
    if key == "filing_credit":
        return f"기한 내 신고, 3%, {article}"
    if key == "nonfiling_penalty":
        return "무신고가산세 20%, 기한후신고 감면 반영, 국세기본법 제47조의2·제48조"
    if key == "late_payment_penalty":
        return f"{case.days_late}일 × 1일 0.022%, {article}"
    if key == "penalty_tax":
        return "무신고가산세 + 납부지연가산세"
    if key == "payable":
        parts = ["산출세액"] + (["할증"] if computation.surcharge else [])
        parts += ["− 신고세액공제"] if computation.filing_credit else []
        parts += ["+ 가산세"] if computation.penalty_tax else []
        return " ".join(parts).replace("산출세액 할증", "산출세액 + 할증") + f", {article}"
    return article
