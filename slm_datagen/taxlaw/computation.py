"""What a computation returns (TaxComputation, BracketLine) and the arithmetic every tax shares: picking the table
version in force, applying a progressive schedule, 누진공제, whole-won rounding.

Rounding: 산출세액 and each credit are truncated to whole won (원 미만 절사). Only the top bracket can produce a
fraction (every full bracket width is a multiple of 100원), so the bracket lines always add up to `computed_tax`.
"""

from __future__ import annotations

import math
from datetime import date
from fractions import Fraction
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from slm_datagen.taxlaw.amounts import format_won
from slm_datagen.taxlaw.tables import RateSchedule, UnsupportedCase, Versioned

GIFT_LAW = "상속세 및 증여세법"
INCOME_LAW = "소득세법"

TaxKind = Literal[
    "gift_tax",
    "inheritance_tax",
    "income_tax",
    "capital_gains_tax",
    "corporate_tax",
    "vat",
    "simplified_vat",
]
ResultField = Literal[
    "computed_tax",
    "payable",
    "taxable_base",
    "deduction",
    "filing_credit",
    "prepaid_tax_credit",
    "gross_value",
    "surcharge",
    "penalty_tax",
    "local_income_tax",
    "payable_with_local_tax",
]
RESULT_FIELDS: tuple[str, ...] = ResultField.__args__  # type: ignore[attr-defined]

# What a step of a computation is, for the checks that compare an answer's every labelled line: the result fields
# above plus the parts that make them up (each 공제 item, each 가산세).
StepKey = Literal[
    "gross_value",
    "deduction_item",
    "deduction",
    "taxable_base",
    "computed_tax",
    "surcharge",
    "prepaid_tax_credit",
    "tax_credit",
    "filing_credit",
    "nonfiling_penalty",
    "late_payment_penalty",
    "penalty_tax",
    "payable",
    "local_income_tax",
    "payable_with_local_tax",
]


class BracketLine(BaseModel):
    """The part of the base taxed at one rate. `upper` None = open-ended; a flat rate is one line from 0."""

    model_config = ConfigDict(frozen=True)

    lower: int
    upper: int | None
    rate_pct: int
    amount_taxed: int
    tax: int


class Step(BaseModel):
    """One labelled line of a computation, as a return or a 세무사's worksheet prints it."""

    model_config = ConfigDict(frozen=True)

    key: StepKey
    label: str  # e.g. "과세표준", "증여재산공제", "세대생략 할증", "납부지연가산세"
    won: int
    article: str  # e.g. "상속세 및 증여세법 제53조"


class TaxComputation(BaseModel):
    model_config = ConfigDict(frozen=True)

    kind: TaxKind
    as_of: date | None  # the date whose tables were used (1 January of an int year); None = the latest tables
    inputs: dict[str, Any]
    deduction: int  # every 공제 between the 과세가액 (or 양도차익) and the 과세표준
    taxable_base: int  # 과세표준
    computed_tax: int  # 산출세액 (before the 세대생략 할증)
    prepaid_tax_credit: int  # 기납부세액공제 (상증법 제58조) for aggregated prior gifts
    filing_credit: int  # 신고세액공제 (상증법 제69조)
    payable: int  # 산출세액 + 할증 − 세액공제 + 가산세 (negative = 환급 for 부가가치세)
    brackets: list[BracketLine]
    articles: list[str]
    explanation: str
    gross_value: int = 0  # 과세가액 (증여·상속), 양도차익 (양도), 매출세액 (부가가치세)
    surcharge: int = 0  # 세대생략 할증 (상증법 제27조·제57조)
    penalty_tax: int = 0  # 무신고가산세 + 납부지연가산세 (국세기본법 제47조의2·제47조의4)
    local_income_tax: int = 0  # 지방소득세 (지방세법 제92조·제103조의3), a separate tax: not in `payable`
    payable_with_local_tax: int = 0  # payable + local_income_tax
    steps: list[Step] = []

    def amount(self, field: str) -> int:
        if field not in RESULT_FIELDS:
            raise ValueError(f"unknown result field {field!r}")
        return int(getattr(self, field))


def as_of_date(year: int | date | str | None) -> date:
    """The date whose tables apply: int 2024 -> 2024-01-01; a date or ISO "2021-07-01" as is; None -> date.max, i.e.
    the latest version of every table in this module (never the clock, so results are reproducible)."""
    if year is None:
        return date.max
    if isinstance(year, bool):
        raise ValueError("year must be an int or a date")
    if isinstance(year, date):
        return year
    if isinstance(year, int):
        if not 1900 <= year <= 2999:
            raise ValueError(f"implausible tax year {year}")
        return date(year, 1, 1)
    if isinstance(year, str):
        text = year.strip()
        if text.isdigit():
            return as_of_date(int(text))
        try:
            return date.fromisoformat(text)
        except ValueError as exc:
            raise ValueError(f"year/date not understood: {year!r}") from exc
    raise ValueError(f"year must be an int or a date, got {year!r}")


def as_of_field(year: int | date | str | None) -> date | None:
    return None if year is None else as_of_date(year)


def year_of(year: int | date | str | None) -> int | None:
    if year is None:
        return None
    return as_of_date(year).year


def pick(table: Versioned, year: int | date | str | None) -> Any:
    """Version in force; an int year whose table changes mid-year is ambiguous and needs a date."""
    when = as_of_date(year)
    if isinstance(year, int) or (isinstance(year, str) and year.strip().isdigit()):
        mid_year = table.changes_within_year(when.year)
        if mid_year:
            raise UnsupportedCase(
                f"{table.name} changed on {mid_year[0].isoformat()}; "
                f"give the exact date instead of the year {when.year}"
            )
    return table.at(when)


def apply_schedule(base: int, schedule: RateSchedule) -> tuple[int, list[BracketLine]]:
    """Progressive tax on `base`: sum over bands of (part of base in band) × rate, truncated to whole won."""
    lines: list[BracketLine] = []
    total = Fraction(0)
    lower = 0
    for bracket in schedule.brackets:
        if base <= lower:
            break
        top = base if bracket.upper is None else min(base, bracket.upper)
        portion = top - lower
        exact = Fraction(portion * bracket.rate_pct, 100)
        total += exact
        lines.append(
            BracketLine(
                lower=lower, upper=bracket.upper, rate_pct=bracket.rate_pct, amount_taxed=portion, tax=math.floor(exact)
            )
        )
        if bracket.upper is None:
            break
        lower = bracket.upper
    return math.floor(total), lines


def progressive_deductions(schedule: RateSchedule) -> list[int]:
    """누진공제액 recomputed from the bands: for the band starting at L with rate r, r×L − tax(L).

    With it, tax = base × r − 누진공제 inside that band; tests compare these to the published quick-table numbers.
    """
    out: list[int] = []
    lower = 0
    for bracket in schedule.brackets:
        tax_at_lower, _ = apply_schedule(lower, schedule)
        value = Fraction(lower * bracket.rate_pct, 100) - tax_at_lower
        if value.denominator != 1:
            raise AssertionError(f"non-integral 누진공제 in {schedule.name}")
        out.append(int(value))
        if bracket.upper is None:
            break
        lower = bracket.upper
    return out


def pct_of(amount: int, pct: int) -> int:
    return amount * pct // 100


def lines_text(lines: list[BracketLine]) -> str:
    return " + ".join(format_won(line.tax) for line in lines)


def require_won(name: str, value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} must be an int number of won, got {value!r}")
    if value < 0:
        raise ValueError(f"{name} must not be negative, got {value}")
    return value


def gift_article(article: str) -> str:
    return f"{GIFT_LAW} {article}"


def credits_sentence(
    computed: int, prepaid: int, filing_pct: int, filing_credit: int, filed_on_time: bool, payable: int
) -> str:
    credits = []
    if prepaid:
        credits.append(f"기납부세액공제 {format_won(prepaid)}(제58조)")
    if filing_credit:
        credits.append(f"신고세액공제 {filing_pct}% {format_won(filing_credit)}(제69조)")
    text = f"납부할 세액은 {format_won(payable)}입니다."
    if credits:
        text = f"{'과 '.join(credits)}을 빼면 {text}"
    if computed and not filed_on_time:
        text += " 법정신고기한 내 신고가 없어 신고세액공제는 적용하지 않았습니다."
    return text
