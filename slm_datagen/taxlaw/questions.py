"""Calculation questions with known answers, drawn from the calculator's own inputs (kinds.INPUT_TYPES).

`generate_questions(n, seed)` draws realistic cases for every kind `kinds.compute` models — gifts (who gave what to
whom, the donee's age, earlier gifts, late filing), inheritances (from the 과세표준, or from the estate with the heirs),
종합소득세, 양도소득세 (from the 과세표준, or from the sale: prices, holding and residence years), 법인세, 부가가치세 and
간이과세 — and phrases each as a 세무사 or as the person concerned would ask (question_phrasing.py). Every fact the
computation uses is stated in the question, so the answer is the calculator's and nothing else.

Distributions: amounts are log-uniform over the range people ask about and written to two or three significant
digits ("3억 2,000만원", "8,750만원"); dates fall in the years the tables cover (2023–2025); 15% of gifts and
inheritances are filed late (15–180 days, with a 기한후신고). A case the calculator does not model is drawn again.

A *family* is a kind + the shape of its inputs: which inputs are given and their non-amount values (relationship,
minor or not, asset kind, holding period, sector, on time or late, the year). Two questions of one family differ only
in amounts, so splits keep a family in one split (`question_split`).
"""

from __future__ import annotations

import hashlib
import math
import random
from dataclasses import dataclass, field
from datetime import date, timedelta
from functools import cached_property
from typing import Any

from slm_datagen.taxlaw.computation import TaxComputation
from slm_datagen.taxlaw.kinds import INPUT_TYPES, compute, typed_inputs
from slm_datagen.taxlaw.penalties import add_months_end
from slm_datagen.taxlaw.tables import LAW_KNOWN_THROUGH, UnsupportedCase

YEARS = (2023, 2024, 2025)
KINDS: tuple[str, ...] = tuple(INPUT_TYPES)
AUDIENCES = ("expert", "layperson")
LATE_SHARE = 0.15


@dataclass(frozen=True)
class Case:
    """The facts of one question: the calculator's inputs and the words the question uses for them."""

    kind: str
    year: int  # the tax year (the date that picks the tables is `when`)
    event: date  # 증여일, 상속개시일, 양도일, or the last day of the tax year
    inputs: dict[str, Any]
    words: dict[str, str] = field(default_factory=dict)

    @property
    def when(self) -> int | str:
        """What `compute` is given: the exact date for a sale (the rates changed mid-year in 2021), else the year."""
        return self.inputs.get("transfer_date") or self.year


@dataclass(frozen=True)
class CalcQuestion:
    id: str
    family: str
    audience: str
    question: str
    case: Case

    @property
    def kind(self) -> str:
        return self.case.kind

    @cached_property
    def computation(self) -> TaxComputation:
        return compute(self.case.kind, self.case.when, typed_inputs(self.case.kind, self.case.inputs))

    def facts(self) -> dict[str, Any]:
        """What a reward needs to recompute the answer: kind, the date, the inputs (JSON-able)."""
        return {"kind": self.kind, "year": self.case.when, "inputs": dict(self.case.inputs)}


# ------------------------------------------------------------------------------------------------------ drawing
def amount(rng: random.Random, low: int, high: int) -> int:
    """Log-uniform in [low, high], written to 2–3 significant digits (people say 3억 2,000만원, not 3억 1,987만 4,211원)."""
    value = math.exp(rng.uniform(math.log(low), math.log(high)))
    digits = rng.choice((2, 2, 3))
    step = 10 ** max(4, int(math.log10(value)) + 1 - digits)  # never below 1만원
    return max(low, min(high, round(value / step) * step))


def _day_in(rng: random.Random, year: int) -> date:
    return date(year, 1, 1) + timedelta(days=rng.randrange(0, 365))


def _late(rng: random.Random, event: date, months: int) -> dict[str, Any]:
    """On time, or late: the due date (end of the month `months` after the event) and the days after it."""
    due = add_months_end(event, months)
    days = rng.randrange(15, 181)
    if rng.random() >= LATE_SHARE or due + timedelta(days=days) > LAW_KNOWN_THROUGH:
        return {"filed_on_time": True}
    return {"filed_on_time": False, "days_late": days, "late_return_filed": True, "due_date": due.isoformat()}


# (relationship, weight, donor words, range in won, minors possible)
_RELATIONS = (
    ("lineal_ascendant", 45, ("아버지", "어머니"), (30_000_000, 2_000_000_000), True),
    ("grandparent", 15, ("할아버지", "할머니", "외할머니"), (30_000_000, 1_500_000_000), True),
    ("spouse", 10, ("남편", "아내"), (300_000_000, 3_000_000_000), False),
    ("lineal_descendant", 10, ("아들", "딸"), (30_000_000, 800_000_000), False),
    ("other_relative", 15, ("삼촌", "이모", "고모", "큰아버지"), (20_000_000, 500_000_000), True),
    ("unrelated", 5, ("지인",), (10_000_000, 300_000_000), False),
)


def _gift(rng: random.Random) -> Case:
    relation, _, donors, (low, high), minors = rng.choices(_RELATIONS, weights=[r[1] for r in _RELATIONS])[0]
    year = rng.choice(YEARS)
    event = _day_in(rng, year)
    minor = minors and rng.random() < 0.3
    inputs: dict[str, Any] = {"amount_won": amount(rng, low, high), "relationship": relation, "donee_is_minor": minor}
    if rng.random() < 0.2:  # an earlier gift from the same donor within 10 years (제47조②)
        inputs["prior_gifts_won"] = amount(rng, 10_000_000, 300_000_000)
    if relation == "lineal_ascendant" and not minor and year >= 2024 and rng.random() < 0.15:
        inputs["marriage_birth_deduction_won"] = min(100_000_000, inputs["amount_won"])  # 혼인 증여재산공제 (제53조의2)
    inputs.update(_late(rng, event, 3))
    adult_ages = (20, 40) if relation == "grandparent" else (20, 60)
    age = (
        rng.randrange(58, 85)
        if relation == "lineal_descendant"
        else rng.randrange(8, 19)
        if minor
        else rng.randrange(*adult_ages)
    )
    return Case("gift_tax", year, event, inputs, {"donor": rng.choice(donors), "age": str(age)})


def _inheritance(rng: random.Random) -> Case:
    year = rng.choice(YEARS)
    event = _day_in(rng, year)
    inputs: dict[str, Any] = {"taxable_base_won": amount(rng, 100_000_000, 5_000_000_000)}
    inputs.update(_late(rng, event, 6))
    return Case("inheritance_tax", year, event, inputs, {"deceased": rng.choice(("아버지", "어머니"))})


def _estate(rng: random.Random) -> Case:
    year = rng.choice(YEARS)
    event = _day_in(rng, year)
    estate = amount(rng, 800_000_000, 8_000_000_000)
    children = rng.choice((1, 2, 2, 3, 4))
    inputs: dict[str, Any] = {"taxable_estate_won": estate, "children": children}
    if rng.random() < 0.7:
        share = estate * 3 // (3 + 2 * children)  # 배우자 법정상속분: 1.5 : 1 per child (민법 제1009조)
        inherited = amount(rng, min(100_000_000, share), max(share, 100_000_001))
        inputs |= {"spouse_survives": True, "spouse_inherited_won": inherited, "spouse_legal_share_won": share}
    if rng.random() < 0.4:
        inputs["net_financial_assets_won"] = amount(rng, 20_000_000, min(estate, 2_000_000_000))
    inputs.update(_late(rng, event, 6))
    return Case("inheritance_tax_estate", year, event, inputs, {"deceased": rng.choice(("아버지", "어머니"))})


def _income(rng: random.Random) -> Case:
    year = rng.choice(YEARS)
    inputs = {"taxable_income_won": amount(rng, 10_000_000, 600_000_000)}
    job = rng.choice(("프리랜서 디자이너", "개인 음식점 사장", "유튜버", "학원 강사", "개인사업자", "웹툰 작가"))
    return Case("income_tax", year, date(year, 12, 31), inputs, {"job": job})


# (asset_kind, holding_period, months held, expert words, plain words)
_HOLDINGS = (
    ("land_building", "2y_or_more", (25, 240), "상가 건물", "상가"),
    ("land_building", "2y_or_more", (25, 240), "토지", "땅"),
    ("land_building", "under_1y", (2, 11), "상가 건물", "상가"),
    ("land_building", "1y_to_2y", (13, 23), "토지", "땅"),
    ("housing", "under_1y", (2, 11), "주택", "집"),
    ("housing", "1y_to_2y", (13, 23), "주택", "집"),
    ("presale_right", "under_1y", (2, 11), "아파트 분양권", "분양권"),
)


def _capital_gains(rng: random.Random) -> Case:
    asset, period, (low, high), expert, plain = rng.choice(_HOLDINGS)
    year = rng.choice(YEARS)
    event = _day_in(rng, year)
    inputs = {
        "taxable_base_won": amount(rng, 10_000_000, 1_000_000_000),
        "asset_kind": asset,
        "holding_period": period,
        "transfer_date": event.isoformat(),
    }
    words = {"asset": expert, "plain": plain, "months": str(rng.randrange(low, high + 1))}
    return Case("capital_gains_tax", year, event, inputs, words)


def _sale(rng: random.Random) -> Case:
    asset = rng.choice(("land_building", "land_building", "housing"))
    year = rng.choice(YEARS)
    event = _day_in(rng, year)
    price = amount(rng, 200_000_000, 3_000_000_000)
    inputs: dict[str, Any] = {
        "transfer_price_won": price,
        "acquisition_price_won": amount(rng, price // 4, price * 9 // 10),
        "holding_years": rng.randrange(3, 21),
        "expenses_won": amount(rng, 1_000_000, max(price // 20, 1_000_001)),
        "asset_kind": asset,
        "transfer_date": event.isoformat(),
    }
    if asset == "housing":
        inputs["residence_years"] = rng.randrange(0, inputs["holding_years"] + 1)
    words = {"asset": "상가 건물" if asset == "land_building" else "주택"}
    return Case("capital_gains_sale", year, event, inputs, words)


def _corporate(rng: random.Random) -> Case:
    year = rng.choice(YEARS)
    inputs = {"taxable_base_won": amount(rng, 50_000_000, 50_000_000_000)}
    return Case(
        "corporate_tax", year, date(year, 12, 31), inputs, {"firm": rng.choice(("제조", "도소매", "소프트웨어"))}
    )


def _vat(rng: random.Random) -> Case:
    year = rng.choice(YEARS)
    sales = amount(rng, 30_000_000, 3_000_000_000)
    inputs = {"sales_won": sales, "purchases_won": amount(rng, sales // 5, sales * 95 // 100)}
    half = rng.choice((1, 2))
    return Case("vat", year, date(year, 6 * half, 30 if half == 1 else 31), inputs, {"half": str(half)})


_SECTORS = {
    "retail_food": "음식점",
    "manufacturing": "제조업",
    "lodging": "숙박업",
    "construction_transport_ict": "운수업",
    "finance_professional_real_estate": "부동산임대업",
    "other_services": "미용실",
}


def _simplified_vat(rng: random.Random) -> Case:
    year = rng.choice(YEARS)
    sector = rng.choice(list(_SECTORS))
    inputs: dict[str, Any] = {"supply_with_vat_won": amount(rng, 48_000_000, 104_000_000), "sector": sector}
    if rng.random() < 0.6:
        inputs["purchases_with_vat_won"] = amount(rng, 5_000_000, inputs["supply_with_vat_won"] * 6 // 10)
    return Case("simplified_vat", year, date(year, 12, 31), inputs, {"business": _SECTORS[sector]})


_DRAW = {
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
# Questions per kind, relative: gifts and sales are what people ask about most.
KIND_WEIGHTS = {
    "gift_tax": 5,
    "inheritance_tax": 1,
    "inheritance_tax_estate": 2,
    "income_tax": 3,
    "capital_gains_tax": 2,
    "capital_gains_sale": 3,
    "corporate_tax": 1,
    "vat": 2,
    "simplified_vat": 1,
}


def draw_case(kind: str, rng: random.Random, attempts: int = 20) -> Case:
    """A case of `kind` the calculator models (a case it refuses — UnsupportedCase — is drawn again)."""
    for _ in range(attempts):
        case = _DRAW[kind](rng)
        try:
            compute(kind, case.when, typed_inputs(kind, case.inputs))
        except (UnsupportedCase, ValueError):
            continue
        return case
    raise UnsupportedCase(f"no {kind} case the calculator models in {attempts} draws")


def family_of(case: Case) -> str:
    """kind + year + the given inputs with their non-amount values (see the module docstring)."""
    spec = INPUT_TYPES[case.kind]
    shape = [
        name if spec[name] in ("won", "int") else f"{name}={case.inputs[name]}"
        for name in sorted(case.inputs)
        if name != "due_date" and name != "transfer_date"
    ]
    return f"{case.kind}|{case.year}|" + ",".join(shape)


def generate_questions(
    n: int, seed: int, kinds: tuple[str, ...] = KINDS, audiences: tuple[str, ...] = AUDIENCES
) -> list[CalcQuestion]:
    """`n` questions, the same for the same seed; kinds in proportion to KIND_WEIGHTS."""
    from slm_datagen.taxlaw.question_phrasing import phrase

    unknown = [k for k in kinds if k not in _DRAW]
    if unknown:
        raise ValueError(f"unknown calculation kind(s): {', '.join(unknown)}; known: {', '.join(KINDS)}")
    rng = random.Random(f"slm-calc-questions:{seed}")
    weights = [KIND_WEIGHTS[k] for k in kinds]
    out: list[CalcQuestion] = []
    for _ in range(n):
        kind = rng.choices(kinds, weights=weights)[0]
        case = draw_case(kind, rng)
        audience = rng.choice(audiences)
        text = phrase(case, audience)
        digest = hashlib.sha256(f"{text}\x1f{sorted(case.inputs.items())}".encode()).hexdigest()[:16]
        out.append(CalcQuestion(f"calc-{digest}", family_of(case), audience, text, case))
    return out
