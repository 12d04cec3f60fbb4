"""A deterministic Korean tax calculator for checking teacher answers, with rate tables versioned by effective date.

Why this exists: teacher models get arithmetic and law wrong in ways a reader does not notice. A widely copied sample
computes 증여세 on 20억원 with the brackets up to 5억 only (9,000만원) and says a parent's gift has no deduction; the
law gives a 5,000만원 증여재산공제 (상속세 및 증여세법 제53조), a base of 19억 5,000만원 and 산출세액 6억 2,000만원.
`check_calculation` recomputes such payloads and `check_answer_amounts` checks the final figure of a free-text answer.

Scope (what is computed, from the 과세표준 or the gift amount the caller gives):

* 상속세 / 증여세 세율 (상증법 제26조, applied to gifts by 제56조), 증여재산공제 (제53조), 혼인·출산 증여재산공제
  (제53조의2), 10-year same-donor aggregation (제47조②) with 기납부세액공제 (제58조), 신고세액공제 (제69조), and the
  "과세표준 50만원 미만이면 부과하지 아니한다" rule (제25조②, 제55조②).
* 종합소득세 기본세율 (소득세법 제55조①) for tax years 2018 onward.
* 양도소득세 기본세율 (소득세법 제104조①1호 → 제55조①) and the short-holding flat rates of 제104조①1~3호 for
  토지·건물, 주택·조합원입주권 and 분양권, tax years 2018 onward.

Not covered (raise `UnsupportedCase` or are outside the inputs): 세대생략 할증 (제27조·제57조), 상속공제 (the
inheritance base is an input), 감정평가수수료공제, 외국납부세액공제, 연부연납; 종합소득 세액공제·감면 and 지방소득세
(10% of the 산출세액, a separate local tax); 양도소득 미등기 70%, 비사업용토지 +10%p, 다주택 중과 (제104조⑦, 유예
2022.5.10~2026.5.9), 주식·기타자산 rates, 장기보유특별공제 and 기본공제 (the 양도 base is an input), 분양권
transfers before 2021-06-01.

Rounding: 산출세액 and each credit are truncated to whole won (원 미만 절사). Only the top bracket can produce a
fraction (every full bracket width is a multiple of 100원), so the bracket lines always add up to `computed_tax`.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import date
from enum import Enum
from fractions import Fraction
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from slm_datagen.taxlaw.amounts import AmountMention, find_amounts, format_won, parse_won

GIFT_LAW = "상속세 및 증여세법"
INCOME_LAW = "소득세법"

TaxKind = Literal["gift_tax", "inheritance_tax", "income_tax", "capital_gains_tax"]
ResultField = Literal["computed_tax", "payable", "taxable_base", "deduction", "filing_credit", "prepaid_tax_credit"]
_RESULT_FIELDS: tuple[str, ...] = ResultField.__args__  # type: ignore[attr-defined]


class UnsupportedCase(ValueError):
    """The law covers the case but these tables do not (a year before the first table, an unmodelled rate, ...)."""


# ---------------------------------------------------------------------------------------------------------------
# Versioned tables
# ---------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Bracket:
    upper: int | None  # inclusive upper bound of the 과세표준 band; None = no upper bound
    rate_pct: int


@dataclass(frozen=True)
class RateSchedule:
    """One version of a progressive schedule, in force from `effective_from` until the next version."""

    name: str
    effective_from: date
    brackets: tuple[Bracket, ...]
    # 누진공제액 as printed in the NTS quick tables, one per bracket; tests recompute them from `brackets`
    published_progressive_deductions: tuple[int, ...]
    basis: str  # article and amendment the version comes from


@dataclass(frozen=True)
class Versioned:
    """A value that changed over time: the version in force on a date is the last one whose start is on or before it."""

    name: str
    versions: tuple[tuple[date, Any], ...]  # (effective_from, value), ascending

    def at(self, when: date) -> Any:
        found = None
        for start, value in self.versions:
            if start <= when:
                found = value
        if found is None:
            raise UnsupportedCase(
                f"{self.name}: no table before {self.versions[0][0].isoformat()} (asked for {when.isoformat()})"
            )
        return found

    def changes_within_year(self, year: int) -> list[date]:
        return [start for start, _ in self.versions if start.year == year and (start.month, start.day) != (1, 1)]


# 상속세 및 증여세법 제26조 (상속세 세율), applied to 증여세 by 제56조. The five-band 10/20/30/40/50% schedule has been in
# force since 2000-01-01 (개정 1999.12.28). Earlier schedules are not tabulated here.
INHERITANCE_GIFT_RATES = Versioned(
    "상속세 및 증여세법 제26조 세율",
    (
        (
            date(2000, 1, 1),
            RateSchedule(
                name="상속세·증여세 세율",
                effective_from=date(2000, 1, 1),
                brackets=(
                    Bracket(100_000_000, 10),
                    Bracket(500_000_000, 20),
                    Bracket(1_000_000_000, 30),
                    Bracket(3_000_000_000, 40),
                    Bracket(None, 50),
                ),
                published_progressive_deductions=(0, 10_000_000, 60_000_000, 160_000_000, 460_000_000),
                basis="상속세 및 증여세법 제26조 (1999.12.28 개정, 2000.1.1 시행); 증여세는 제56조",
            ),
        ),
    ),
)

# 소득세법 제55조① 종합소득 기본세율 (also the 양도소득 basic rate through 제104조①1호).
INCOME_TAX_RATES = Versioned(
    "소득세법 제55조 기본세율",
    (
        (
            date(2018, 1, 1),
            RateSchedule(
                name="종합소득세 기본세율 (2018~2020 귀속)",
                effective_from=date(2018, 1, 1),
                brackets=(
                    Bracket(12_000_000, 6),
                    Bracket(46_000_000, 15),
                    Bracket(88_000_000, 24),
                    Bracket(150_000_000, 35),
                    Bracket(300_000_000, 38),
                    Bracket(500_000_000, 40),
                    Bracket(None, 42),
                ),
                published_progressive_deductions=(
                    0,
                    1_080_000,
                    5_220_000,
                    14_900_000,
                    19_400_000,
                    25_400_000,
                    35_400_000,
                ),
                basis="소득세법 제55조① (2017.12.19 개정, 2018.1.1 이후 발생 소득분): 3억~5억 40%, 5억 초과 42% 신설",
            ),
        ),
        (
            date(2021, 1, 1),
            RateSchedule(
                name="종합소득세 기본세율 (2021~2022 귀속)",
                effective_from=date(2021, 1, 1),
                brackets=(
                    Bracket(12_000_000, 6),
                    Bracket(46_000_000, 15),
                    Bracket(88_000_000, 24),
                    Bracket(150_000_000, 35),
                    Bracket(300_000_000, 38),
                    Bracket(500_000_000, 40),
                    Bracket(1_000_000_000, 42),
                    Bracket(None, 45),
                ),
                published_progressive_deductions=(
                    0,
                    1_080_000,
                    5_220_000,
                    14_900_000,
                    19_400_000,
                    25_400_000,
                    35_400_000,
                    65_400_000,
                ),
                basis="소득세법 제55조① (2020.12.29 개정, 2021.1.1 이후 발생 소득분): 10억 초과 45% 신설",
            ),
        ),
        (
            date(2023, 1, 1),
            RateSchedule(
                name="종합소득세 기본세율 (2023 귀속~)",
                effective_from=date(2023, 1, 1),
                brackets=(
                    Bracket(14_000_000, 6),
                    Bracket(50_000_000, 15),
                    Bracket(88_000_000, 24),
                    Bracket(150_000_000, 35),
                    Bracket(300_000_000, 38),
                    Bracket(500_000_000, 40),
                    Bracket(1_000_000_000, 42),
                    Bracket(None, 45),
                ),
                published_progressive_deductions=(
                    0,
                    1_260_000,
                    5_760_000,
                    15_440_000,
                    19_940_000,
                    25_940_000,
                    35_940_000,
                    65_940_000,
                ),
                basis="소득세법 제55조① (2022.12.31 개정, 2023.1.1 이후 발생 소득분): 6%·15% 구간 1,400만·5,000만원으로 상향",
            ),
        ),
    ),
)


class DonorRelation(str, Enum):
    """Who the donor is *to the donee* (제53조 is written from the donee's side)."""

    SPOUSE = "spouse"  # 배우자
    LINEAL_ASCENDANT = "lineal_ascendant"  # 직계존속 (부모·조부모 …)
    LINEAL_DESCENDANT = "lineal_descendant"  # 직계비속 (자녀·손자녀)
    OTHER_RELATIVE = "other_relative"  # 그 밖의 친족: 6촌 이내 혈족, 4촌 이내 인척
    UNRELATED = "unrelated"  # 타인: no deduction


_RELATION_ALIASES: dict[str, DonorRelation] = {
    "배우자": DonorRelation.SPOUSE,
    "spouse": DonorRelation.SPOUSE,
    "직계존속": DonorRelation.LINEAL_ASCENDANT,
    "부모": DonorRelation.LINEAL_ASCENDANT,
    "부": DonorRelation.LINEAL_ASCENDANT,
    "모": DonorRelation.LINEAL_ASCENDANT,
    "아버지": DonorRelation.LINEAL_ASCENDANT,
    "어머니": DonorRelation.LINEAL_ASCENDANT,
    "조부모": DonorRelation.LINEAL_ASCENDANT,
    "parent": DonorRelation.LINEAL_ASCENDANT,
    "lineal_ascendant": DonorRelation.LINEAL_ASCENDANT,
    "직계비속": DonorRelation.LINEAL_DESCENDANT,
    "자녀": DonorRelation.LINEAL_DESCENDANT,
    "child": DonorRelation.LINEAL_DESCENDANT,
    "lineal_descendant": DonorRelation.LINEAL_DESCENDANT,
    "기타친족": DonorRelation.OTHER_RELATIVE,
    "그 밖의 친족": DonorRelation.OTHER_RELATIVE,
    "친족": DonorRelation.OTHER_RELATIVE,
    "other_relative": DonorRelation.OTHER_RELATIVE,
    "타인": DonorRelation.UNRELATED,
    "기타": DonorRelation.UNRELATED,
    "unrelated": DonorRelation.UNRELATED,
    "other": DonorRelation.UNRELATED,
}


def donor_relation(value: str | DonorRelation) -> DonorRelation:
    """Accept the enum, its value, or a Korean label ("직계존속", "부모", "배우자", "기타친족", "타인")."""
    if isinstance(value, DonorRelation):
        return value
    key = " ".join(str(value).split()).lower()
    if key in _RELATION_ALIASES:
        return _RELATION_ALIASES[key]
    raise ValueError(f"unknown donor relation {value!r}; use one of {sorted(r.value for r in DonorRelation)}")


@dataclass(frozen=True)
class GiftDeductionTable:
    """증여재산공제 limits (10-year totals per relation group), 상속세 및 증여세법 제53조."""

    spouse: int
    ascendant_to_adult: int
    ascendant_to_minor: int
    descendant: int
    other_relative: int
    basis: str

    def limit(self, relation: DonorRelation, donee_is_minor: bool) -> int:
        if relation is DonorRelation.SPOUSE:
            return self.spouse
        if relation is DonorRelation.LINEAL_ASCENDANT:
            return self.ascendant_to_minor if donee_is_minor else self.ascendant_to_adult
        if relation is DonorRelation.LINEAL_DESCENDANT:
            return self.descendant
        if relation is DonorRelation.OTHER_RELATIVE:
            return self.other_relative
        return 0


# Versions of 제53조 this module is sure of. The table starts at 2008-01-01 (배우자 6억원); the values before 2008
# (배우자 3억원 from 2003 and 5억원 before that, per secondary sources) are NOT tabulated because they could not be
# verified against the statute history here — such years raise UnsupportedCase.
GIFT_DEDUCTIONS = Versioned(
    "상속세 및 증여세법 제53조 증여재산공제",
    (
        (
            date(2008, 1, 1),
            GiftDeductionTable(
                spouse=600_000_000,
                ascendant_to_adult=30_000_000,
                ascendant_to_minor=15_000_000,
                descendant=30_000_000,
                other_relative=5_000_000,
                basis="제53조 (2007.12.31 개정, 2008.1.1 이후 증여분: 배우자 3억→6억원)",
            ),
        ),
        (
            date(2014, 1, 1),
            GiftDeductionTable(
                spouse=600_000_000,
                ascendant_to_adult=50_000_000,
                ascendant_to_minor=20_000_000,
                descendant=30_000_000,
                other_relative=5_000_000,
                basis="제53조 (2014.1.1 이후 증여분: 직계존속→성년 3,000만→5,000만원, 미성년 1,500만→2,000만원)",
            ),
        ),
        (
            date(2016, 1, 1),
            GiftDeductionTable(
                spouse=600_000_000,
                ascendant_to_adult=50_000_000,
                ascendant_to_minor=20_000_000,
                descendant=50_000_000,
                other_relative=10_000_000,
                basis="제53조 (2016.1.1 이후 증여분: 직계비속 3,000만→5,000만원, 그 밖의 친족 500만→1,000만원)",
            ),
        ),
    ),
)

# 제53조의2 혼인·출산 증여재산공제: 직계존속이 혼인(신고일 전후 2년) 또는 출산(출생일·입양신고일부터 2년) 때 증여하면
# 제53조와 별도로 1억원까지 (혼인·출산 합산 한도 1억원). 2023.12.31 신설, 2024.1.1 이후 증여분부터.
MARRIAGE_BIRTH_DEDUCTION_LIMIT = Versioned(
    "상속세 및 증여세법 제53조의2 혼인·출산 증여재산공제",
    ((date(2024, 1, 1), 100_000_000),),
)

# 제69조 신고세액공제 (percent of 산출세액 less 공제·감면세액). The 2016.12.20 amendment cut 10% to 3% with a phase-in
# (7% for 2017, 5% for 2018). The 10% rate predates 2000; the table begins with the rate schedule above.
FILING_CREDIT_PCT = Versioned(
    "상속세 및 증여세법 제69조 신고세액공제",
    (
        (date(2000, 1, 1), 10),
        (date(2017, 1, 1), 7),
        (date(2018, 1, 1), 5),
        (date(2019, 1, 1), 3),
    ),
)

# 과세표준이 50만원 미만이면 상속세·증여세를 부과하지 아니한다 (제25조②, 제55조②).
MINIMUM_TAXABLE_BASE = 500_000


class AssetKind(str, Enum):
    """What was transferred, for 소득세법 제104조①'s short-holding rates."""

    LAND_BUILDING = "land_building"  # 토지·건물(주택 제외)·부동산에 관한 권리
    HOUSING = "housing"  # 주택 및 조합원입주권
    PRESALE_RIGHT = "presale_right"  # 분양권


class HoldingPeriod(str, Enum):
    UNDER_1Y = "under_1y"
    FROM_1Y_TO_2Y = "1y_to_2y"
    TWO_YEARS_OR_MORE = "2y_or_more"


def holding_period_between(acquired: date, transferred: date) -> HoldingPeriod:
    """보유기간 (제95조④: 취득일부터 양도일까지) bucketed the way 제104조① uses it."""
    if transferred < acquired:
        raise ValueError("transfer date before acquisition date")

    def add_years(d: date, years: int) -> date:
        try:
            return d.replace(year=d.year + years)
        except ValueError:  # 29 February
            return d.replace(year=d.year + years, day=28)

    if transferred < add_years(acquired, 1):
        return HoldingPeriod.UNDER_1Y
    if transferred < add_years(acquired, 2):
        return HoldingPeriod.FROM_1Y_TO_2Y
    return HoldingPeriod.TWO_YEARS_OR_MORE


@dataclass(frozen=True)
class ShortHoldingRates:
    """Flat rates of 제104조①2·3호 (and 1호 for 분양권) in percent; None = only the basic rate applies."""

    under_1y: int | None
    from_1y_to_2y: int | None
    two_years_or_more: int | None  # only 분양권 has a flat rate here (60%, 제104조①1호 괄호)
    basis: str

    def rate(self, period: HoldingPeriod) -> int | None:
        return {
            HoldingPeriod.UNDER_1Y: self.under_1y,
            HoldingPeriod.FROM_1Y_TO_2Y: self.from_1y_to_2y,
            HoldingPeriod.TWO_YEARS_OR_MORE: self.two_years_or_more,
        }[period]


# Short-holding rates, tabulated from 2018-01-01 (the first basic-rate table here).
SHORT_HOLDING_RATES: dict[AssetKind, Versioned] = {
    AssetKind.LAND_BUILDING: Versioned(
        "소득세법 제104조① 토지·건물 단기보유 세율",
        (
            (
                date(2018, 1, 1),
                # 토지·건물: 1년 미만 50% (3호), 1년 이상 2년 미만 40% (2호), 2년 이상 기본세율 (1호)
                ShortHoldingRates(50, 40, None, "제104조①2·3호"),
            ),
        ),
    ),
    AssetKind.HOUSING: Versioned(
        "소득세법 제104조① 주택·조합원입주권 단기보유 세율",
        (
            (
                date(2018, 1, 1),
                # 주택·조합원입주권: 1년 미만 40% (3호), 1년 이상 기본세율 (2호는 주택을 제외)
                ShortHoldingRates(40, None, None, "제104조①3호"),
            ),
            (
                date(2021, 6, 1),
                # 2020.8.18 개정, 2021.6.1 이후 양도분: 주택·조합원입주권 1년 미만 70%, 1년 이상 2년 미만 60%
                ShortHoldingRates(70, 60, None, "제104조①2·3호, 2021.6.1 이후 양도분"),
            ),
        ),
    ),
    AssetKind.PRESALE_RIGHT: Versioned(
        "소득세법 제104조① 분양권 세율",
        (
            (
                date(2021, 6, 1),
                # 2020.8.18 개정, 2021.6.1 이후 양도분: 분양권 1년 미만 70%, 그 밖 60% (1호 괄호)
                ShortHoldingRates(70, 60, 60, "제104조①1·3호, 2021.6.1 이후 양도분"),
            ),
        ),
    ),
}


# ---------------------------------------------------------------------------------------------------------------
# Result records
# ---------------------------------------------------------------------------------------------------------------


class BracketLine(BaseModel):
    """The part of the base taxed at one rate. `upper` None = open-ended; a flat rate is one line from 0."""

    model_config = ConfigDict(frozen=True)

    lower: int
    upper: int | None
    rate_pct: int
    amount_taxed: int
    tax: int


class TaxComputation(BaseModel):
    model_config = ConfigDict(frozen=True)

    kind: TaxKind
    as_of: date | None  # the date whose tables were used (1 January of an int year); None = the latest tables
    inputs: dict[str, Any]
    deduction: int  # 증여재산공제 + 혼인·출산공제 for gifts; 0 where the base is given
    taxable_base: int  # 과세표준
    computed_tax: int  # 산출세액
    prepaid_tax_credit: int  # 기납부세액공제 (제58조) for aggregated prior gifts
    filing_credit: int  # 신고세액공제 (제69조)
    payable: int  # 산출세액 − 기납부세액공제 − 신고세액공제 (other credits are not modelled)
    brackets: list[BracketLine]
    articles: list[str]
    explanation: str

    def amount(self, field: str) -> int:
        if field not in _RESULT_FIELDS:
            raise ValueError(f"unknown result field {field!r}")
        return int(getattr(self, field))


# ---------------------------------------------------------------------------------------------------------------
# Arithmetic
# ---------------------------------------------------------------------------------------------------------------


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


def _as_of_field(year: int | date | str | None) -> date | None:
    return None if year is None else as_of_date(year)


def _year_of(year: int | date | str | None) -> int | None:
    if year is None:
        return None
    return as_of_date(year).year


def _pick(table: Versioned, year: int | date | str | None) -> Any:
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


def _pct_of(amount: int, pct: int) -> int:
    return amount * pct // 100


def _lines_text(lines: list[BracketLine]) -> str:
    return " + ".join(format_won(line.tax) for line in lines)


def _require_won(name: str, value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} must be an int number of won, got {value!r}")
    if value < 0:
        raise ValueError(f"{name} must not be negative, got {value}")
    return value


def _law(article: str) -> str:
    return f"{GIFT_LAW} {article}"


def _credits_sentence(
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


# ---------------------------------------------------------------------------------------------------------------
# 증여세 / 상속세
# ---------------------------------------------------------------------------------------------------------------


def gift_tax(
    amount_won: int,
    relationship: str | DonorRelation,
    donee_is_minor: bool = False,
    year: int | date | str | None = None,
    prior_gifts_won: int = 0,
    marriage_birth_deduction_won: int = 0,
    filed_on_time: bool = True,
) -> TaxComputation:
    """증여세 for one gift to a resident donee.

    amount_won: 증여재산가액 (after 비과세·채무인수 adjustments, which are the caller's job).
    relationship: the donor's relation to the donee (DonorRelation or a Korean label).
    prior_gifts_won: gifts from the same donor (or that donor's spouse if a 직계존속) within 10 years, added back under
        제47조②. Assumed to have used the same 증여재산공제 group first; deductions used by *other* donors of the same
        group are not known here. Their 증여세 is credited (제58조) as recomputed on those gifts alone.
    marriage_birth_deduction_won: the 제53조의2 amount claimed (capped at 1억원, only from a 직계존속, 2024 onward).
    year: the gift date or its year (None = the latest tables here).
    """
    _require_won("amount_won", amount_won)
    _require_won("prior_gifts_won", prior_gifts_won)
    _require_won("marriage_birth_deduction_won", marriage_birth_deduction_won)
    relation = donor_relation(relationship)
    schedule: RateSchedule = _pick(INHERITANCE_GIFT_RATES, year)
    deductions: GiftDeductionTable = _pick(GIFT_DEDUCTIONS, year)
    articles = [_law("제26조"), _law("제56조"), _law("제53조"), _law("제55조")]

    gross = amount_won + prior_gifts_won  # 증여세 과세가액 (제47조②)
    limit = deductions.limit(relation, donee_is_minor)
    relation_deduction = min(limit, gross)

    marriage_deduction = 0
    if marriage_birth_deduction_won:
        if relation is not DonorRelation.LINEAL_ASCENDANT:
            raise ValueError("혼인·출산 증여재산공제 (제53조의2) applies only to gifts from a 직계존속")
        cap = _pick(MARRIAGE_BIRTH_DEDUCTION_LIMIT, year)
        if marriage_birth_deduction_won > cap:
            raise ValueError(f"혼인·출산 증여재산공제 is capped at {format_won(cap)}")
        marriage_deduction = min(marriage_birth_deduction_won, gross - relation_deduction)
        articles.append(_law("제53조의2"))
    deduction = relation_deduction + marriage_deduction

    base = gross - deduction
    computed, lines = apply_schedule(base, schedule) if base >= MINIMUM_TAXABLE_BASE else (0, [])

    prepaid = 0
    if prior_gifts_won:
        articles.insert(0, _law("제47조"))
        articles.append(_law("제58조"))
        prior_base = prior_gifts_won - min(limit, prior_gifts_won)
        prior_tax = apply_schedule(prior_base, schedule)[0] if prior_base >= MINIMUM_TAXABLE_BASE else 0
        # 제58조① 한도: 산출세액 × (가산한 증여재산의 과세표준 / 전체 과세표준)
        cap = computed * prior_base // base if base else 0
        prepaid = min(prior_tax, cap)

    filing_pct = _pick(FILING_CREDIT_PCT, year) if filed_on_time else 0
    filing_credit = _pct_of(computed - prepaid, filing_pct)
    if filed_on_time:
        articles.append(_law("제69조"))
    payable = computed - prepaid - filing_credit

    relation_label = {
        DonorRelation.SPOUSE: "배우자",
        DonorRelation.LINEAL_ASCENDANT: "직계존속→" + ("미성년" if donee_is_minor else "성년") + " 수증자",
        DonorRelation.LINEAL_DESCENDANT: "직계비속",
        DonorRelation.OTHER_RELATIVE: "그 밖의 친족",
        DonorRelation.UNRELATED: "타인",
    }[relation]
    if prior_gifts_won:
        head = (
            f"증여재산가액 {format_won(amount_won)}에 10년 내 동일인 증여 {format_won(prior_gifts_won)}을 합산한 "
            f"과세가액 {format_won(gross)}(제47조②)"
        )
    else:
        head = f"증여재산가액 {format_won(amount_won)}"
    if deduction:
        subtracted = f"증여재산공제 {format_won(relation_deduction)}({relation_label}, 제53조)"
        if marriage_deduction:
            subtracted += f"과 혼인·출산 증여재산공제 {format_won(marriage_deduction)}(제53조의2)"
        sentences = [f"{head}에서 {subtracted}을 빼면 과세표준은 {format_won(base)}입니다."]
    else:
        sentences = [f"{head}에 대해 증여재산공제가 없으므로({relation_label}) 과세표준은 {format_won(base)}입니다."]
    if lines:
        sentences.append(
            f"제56조에 따라 제26조 세율을 적용한 산출세액은 {format_won(computed)}({_lines_text(lines)})입니다."
        )
    else:
        sentences.append("과세표준이 50만원 미만이므로 증여세를 부과하지 않습니다(제55조②).")
    sentences.append(_credits_sentence(computed, prepaid, filing_pct, filing_credit, filed_on_time, payable))

    return TaxComputation(
        kind="gift_tax",
        as_of=_as_of_field(year),
        inputs={
            "amount_won": amount_won,
            "relationship": relation.value,
            "donee_is_minor": donee_is_minor,
            "year": _year_of(year),
            "prior_gifts_won": prior_gifts_won,
            "marriage_birth_deduction_won": marriage_birth_deduction_won,
            "filed_on_time": filed_on_time,
        },
        deduction=deduction,
        taxable_base=base,
        computed_tax=computed,
        prepaid_tax_credit=prepaid,
        filing_credit=filing_credit,
        payable=payable,
        brackets=lines,
        articles=articles,
        explanation=" ".join(sentences),
    )


def inheritance_tax(
    taxable_base_won: int, year: int | date | str | None = None, filed_on_time: bool = True
) -> TaxComputation:
    """상속세 from a given 과세표준 (상속공제 already taken): 제26조 세율, 제69조 신고세액공제."""
    _require_won("taxable_base_won", taxable_base_won)
    schedule: RateSchedule = _pick(INHERITANCE_GIFT_RATES, year)
    articles = [_law("제26조")]
    computed, lines = (0, [])
    if taxable_base_won >= MINIMUM_TAXABLE_BASE:
        computed, lines = apply_schedule(taxable_base_won, schedule)
    filing_pct = _pick(FILING_CREDIT_PCT, year) if filed_on_time else 0
    filing_credit = _pct_of(computed, filing_pct)
    if filed_on_time:
        articles.append(_law("제69조"))
    payable = computed - filing_credit
    if lines:
        text = (
            f"과세표준 {format_won(taxable_base_won)}에 제26조 세율을 적용한 산출세액은 "
            f"{format_won(computed)}({_lines_text(lines)})입니다."
        )
    else:
        articles.append(_law("제25조"))
        text = "과세표준이 50만원 미만이므로 상속세를 부과하지 않습니다(제25조②)."
    text += " " + _credits_sentence(computed, 0, filing_pct, filing_credit, filed_on_time, payable)
    return TaxComputation(
        kind="inheritance_tax",
        as_of=_as_of_field(year),
        inputs={"taxable_base_won": taxable_base_won, "year": _year_of(year), "filed_on_time": filed_on_time},
        deduction=0,
        taxable_base=taxable_base_won,
        computed_tax=computed,
        prepaid_tax_credit=0,
        filing_credit=filing_credit,
        payable=payable,
        brackets=lines,
        articles=articles,
        explanation=text,
    )


# ---------------------------------------------------------------------------------------------------------------
# 소득세
# ---------------------------------------------------------------------------------------------------------------


def income_tax(taxable_income_won: int, year: int | date | str) -> TaxComputation:
    """종합소득 산출세액 (소득세법 제55조①) for a 과세표준 and tax year (귀속연도). payable = 산출세액: 세액공제·감면
    and 지방소득세 are not modelled."""
    _require_won("taxable_income_won", taxable_income_won)
    if year is None:
        raise ValueError("income_tax needs the tax year")
    schedule: RateSchedule = _pick(INCOME_TAX_RATES, year)
    computed, lines = apply_schedule(taxable_income_won, schedule)
    top = lines[-1].rate_pct if lines else schedule.brackets[0].rate_pct
    text = (
        f"{as_of_date(year).year}년 귀속 종합소득 과세표준 {format_won(taxable_income_won)}에 소득세법 제55조① 기본세율"
        f"(최고 적용세율 {top}%)을 적용한 산출세액은 {format_won(computed)}입니다"
        + (f"({_lines_text(lines)})." if len(lines) > 1 else ".")
        + " 세액공제·감면과 지방소득세는 반영하지 않았습니다."
    )
    return TaxComputation(
        kind="income_tax",
        as_of=_as_of_field(year),
        inputs={"taxable_income_won": taxable_income_won, "year": _year_of(year)},
        deduction=0,
        taxable_base=taxable_income_won,
        computed_tax=computed,
        prepaid_tax_credit=0,
        filing_credit=0,
        payable=computed,
        brackets=lines,
        articles=[f"{INCOME_LAW} 제55조"],
        explanation=text,
    )


def capital_gains_tax(
    taxable_base_won: int,
    year: int | date | str,
    asset_kind: str | AssetKind = AssetKind.LAND_BUILDING,
    holding_period: str | HoldingPeriod = HoldingPeriod.TWO_YEARS_OR_MORE,
) -> TaxComputation:
    """양도소득 산출세액 for a given 과세표준 (after 장기보유특별공제 and 기본공제).

    year: the transfer date, or its year when no table changes within that year (2021 for 주택·분양권 needs the date,
        because the rates changed on 2021-06-01).
    asset_kind: "land_building" (토지·건물·부동산에 관한 권리), "housing" (주택·조합원입주권), "presale_right" (분양권).
    holding_period: "under_1y", "1y_to_2y", "2y_or_more" (see holding_period_between).

    When an asset falls under more than one rate of 제104조①, the larger 산출세액 applies (제104조① 후단): e.g. land held
    1–2 years pays max(40% flat, 기본세율).
    """
    _require_won("taxable_base_won", taxable_base_won)
    if year is None:
        raise ValueError("capital_gains_tax needs the transfer year or date")
    try:
        kind = AssetKind(asset_kind)
        period = HoldingPeriod(holding_period)
    except ValueError as exc:
        raise ValueError(str(exc)) from exc
    basic_schedule: RateSchedule = _pick(INCOME_TAX_RATES, year)
    flat_rates: ShortHoldingRates = _pick(SHORT_HOLDING_RATES[kind], year)
    flat_pct = flat_rates.rate(period)

    candidates: list[tuple[int, list[BracketLine], str]] = []
    if kind is not AssetKind.PRESALE_RIGHT:  # 분양권 is excluded from the basic rate of 제104조①1호 since 2021-06-01
        basic_tax, basic_lines = apply_schedule(taxable_base_won, basic_schedule)
        candidates.append((basic_tax, basic_lines, "기본세율(제104조①1호, 제55조①)"))
    if flat_pct is not None:
        flat_tax = taxable_base_won * flat_pct // 100
        flat_line = BracketLine(lower=0, upper=None, rate_pct=flat_pct, amount_taxed=taxable_base_won, tax=flat_tax)
        candidates.append(
            (flat_tax, [flat_line] if taxable_base_won else [], f"단일세율 {flat_pct}%({flat_rates.basis})")
        )
    computed, lines, label = max(candidates, key=lambda c: c[0])

    kind_label = {
        AssetKind.LAND_BUILDING: "토지·건물",
        AssetKind.HOUSING: "주택·조합원입주권",
        AssetKind.PRESALE_RIGHT: "분양권",
    }[kind]
    period_label = {
        HoldingPeriod.UNDER_1Y: "1년 미만",
        HoldingPeriod.FROM_1Y_TO_2Y: "1년 이상 2년 미만",
        HoldingPeriod.TWO_YEARS_OR_MORE: "2년 이상",
    }[period]
    text = (
        f"{kind_label}(보유기간 {period_label})의 양도소득 과세표준 {format_won(taxable_base_won)}에 {label}을 적용한 "
        f"산출세액은 {format_won(computed)}입니다."
    )
    if len(candidates) > 1:
        text += " 둘 이상의 세율에 해당하여 큰 산출세액을 적용했습니다(제104조① 후단)."
    text += " 지방소득세는 별도입니다."
    articles = [f"{INCOME_LAW} 제104조"]
    if label.startswith("기본세율"):
        articles.append(f"{INCOME_LAW} 제55조")
    return TaxComputation(
        kind="capital_gains_tax",
        as_of=_as_of_field(year),
        inputs={
            "taxable_base_won": taxable_base_won,
            "year": _year_of(year),
            "asset_kind": kind.value,
            "holding_period": period.value,
        },
        deduction=0,
        taxable_base=taxable_base_won,
        computed_tax=computed,
        prepaid_tax_credit=0,
        filing_credit=0,
        payable=computed,
        brackets=lines,
        articles=articles,
        explanation=text,
    )


# ---------------------------------------------------------------------------------------------------------------
# Checking a teacher's calculation payload
# ---------------------------------------------------------------------------------------------------------------

# Rounding tolerance. The absolute part covers 원-level truncation differences (원 미만 절사 here; 10원 미만 절사 on
# payment under 국고금관리법 제47조) and the relative part covers teachers that round to 만원 or print four
# significant digits ("약 6억 2,000만원"). 0.1% stays well below the smallest real error worth catching: the 3%
# 신고세액공제, a missing 1,000만원 deduction (≥ 100만원 of tax), a wrong band, or a 2021-vs-2023 table mix-up at
# ordinary incomes (e.g. 18만원 on 102만원 at a base of 1,400만원).
DEFAULT_TOLERANCE_WON = 10
DEFAULT_TOLERANCE_RATIO = 0.001

VerdictStatus = Literal["ok", "mismatch", "unsupported", "bad_input"]


class CalcVerdict(BaseModel):
    model_config = ConfigDict(frozen=True)

    status: VerdictStatus
    kind: str | None = None
    result_field: str | None = None
    expected_won: int | None = None
    claimed_won: int | None = None
    difference_won: int | None = None  # claimed − expected
    tolerance_won: int | None = None
    reason: str  # one line, Korean then English
    computation: TaxComputation | None = None

    @property
    def ok(self) -> bool:
        return self.status == "ok"


# Inputs accepted per kind: name -> "won" | "bool" | "str". Required names are listed in _REQUIRED_INPUTS.
_INPUT_TYPES: dict[str, dict[str, str]] = {
    "gift_tax": {
        "amount_won": "won",
        "relationship": "str",
        "donee_is_minor": "bool",
        "prior_gifts_won": "won",
        "marriage_birth_deduction_won": "won",
        "filed_on_time": "bool",
    },
    "inheritance_tax": {"taxable_base_won": "won", "filed_on_time": "bool"},
    "income_tax": {"taxable_income_won": "won"},
    "capital_gains_tax": {
        "taxable_base_won": "won",
        "asset_kind": "str",
        "holding_period": "str",
        "transfer_date": "str",
    },
}
_REQUIRED_INPUTS: dict[str, tuple[str, ...]] = {
    "gift_tax": ("amount_won", "relationship"),
    "inheritance_tax": ("taxable_base_won",),
    "income_tax": ("taxable_income_won",),
    "capital_gains_tax": ("taxable_base_won",),
}


def tolerance_for(
    expected: int, tolerance_won: int = DEFAULT_TOLERANCE_WON, tolerance_ratio: float = DEFAULT_TOLERANCE_RATIO
) -> int:
    """The allowed |claimed − expected|: the larger of the absolute and the relative tolerance."""
    return max(tolerance_won, int(abs(expected) * tolerance_ratio))


def _verdict(status: VerdictStatus, reason: str, **fields: Any) -> CalcVerdict:
    return CalcVerdict(status=status, reason=reason, **fields)


def compute(kind: str, year: int | date | str | None, inputs: dict[str, Any]) -> TaxComputation:
    """Run the calculator named by `kind` on already-typed inputs (see check_calculation for the names)."""
    if kind == "gift_tax":
        return gift_tax(
            inputs["amount_won"],
            inputs["relationship"],
            donee_is_minor=inputs.get("donee_is_minor", False),
            year=year,
            prior_gifts_won=inputs.get("prior_gifts_won", 0),
            marriage_birth_deduction_won=inputs.get("marriage_birth_deduction_won", 0),
            filed_on_time=inputs.get("filed_on_time", True),
        )
    if kind == "inheritance_tax":
        return inheritance_tax(inputs["taxable_base_won"], year=year, filed_on_time=inputs.get("filed_on_time", True))
    if kind == "income_tax":
        return income_tax(inputs["taxable_income_won"], year)
    if kind == "capital_gains_tax":
        return capital_gains_tax(
            inputs["taxable_base_won"],
            inputs.get("transfer_date") or year,
            asset_kind=inputs.get("asset_kind", AssetKind.LAND_BUILDING),
            holding_period=inputs.get("holding_period", HoldingPeriod.TWO_YEARS_OR_MORE),
        )
    raise UnsupportedCase(f"unknown calculation kind {kind!r}")


def _typed_inputs(kind: str, raw: dict[str, Any]) -> dict[str, Any]:
    spec = _INPUT_TYPES[kind]
    unknown = sorted(set(raw) - set(spec))
    if unknown:
        # A key we do not model (e.g. generation_skipping) may change the result, so we cannot vouch for it.
        raise UnsupportedCase(f"inputs not modelled for {kind}: {', '.join(unknown)}")
    missing = [name for name in _REQUIRED_INPUTS[kind] if raw.get(name) is None]
    if missing:
        raise ValueError(f"missing inputs for {kind}: {', '.join(missing)}")
    typed: dict[str, Any] = {}
    for name, value in raw.items():
        if value is None:
            continue
        kind_of = spec[name]
        if kind_of == "won":
            if isinstance(value, float) and value.is_integer():
                value = int(value)
            typed[name] = parse_won(value)
            if typed[name] < 0:
                raise ValueError(f"{name} is negative")
        elif kind_of == "bool":
            if not isinstance(value, bool):
                raise ValueError(f"{name} must be true/false, got {value!r}")
            typed[name] = value
        else:
            if not isinstance(value, str):
                raise ValueError(f"{name} must be a string, got {value!r}")
            typed[name] = value
    return typed


def check_calculation(
    calc: dict[str, Any],
    tolerance_won: int = DEFAULT_TOLERANCE_WON,
    tolerance_ratio: float = DEFAULT_TOLERANCE_RATIO,
) -> CalcVerdict:
    """Recompute a teacher's calculation payload and compare its claimed amount.

    Payload: {"kind": ..., "year": 2024 | "2024-03-15", "inputs": {...}, "result_won": int | "6억 2,000만원",
    "result_field": one of computed_tax | payable | taxable_base | deduction | filing_credit | prepaid_tax_credit}.
    Amount inputs may be ints or Korean strings ("20억원"). "year" is required for income_tax and capital_gains_tax;
    for gift_tax and inheritance_tax a missing year means the latest tables in this module.

    inputs per kind (required first):
      gift_tax:          amount_won, relationship ("직계존속"/"배우자"/"직계비속"/"기타친족"/"타인" or DonorRelation
                         values); donee_is_minor (false), prior_gifts_won (0), marriage_birth_deduction_won (0),
                         filed_on_time (true)
      inheritance_tax:   taxable_base_won; filed_on_time (true)
      income_tax:        taxable_income_won            (year = 귀속연도, required)
      capital_gains_tax: taxable_base_won; asset_kind ("land_building"), holding_period ("2y_or_more"),
                         transfer_date ("YYYY-MM-DD", overrides year)

    Status: ok | mismatch | unsupported (a kind, year or input this module does not model) | bad_input (missing or
    malformed fields, including a missing result_field: a claim is compared with the amount before 신고세액공제
    (computed_tax) or after it (payable) only as the payload says, never with whichever fits).
    """
    if not isinstance(calc, dict):
        return _verdict("bad_input", "계산 정보가 객체가 아님 / calculation payload is not an object")
    kind = calc.get("kind")
    if kind not in _INPUT_TYPES:
        return _verdict(
            "unsupported", f"지원하지 않는 계산 종류 {kind!r} / unsupported calculation kind {kind!r}", kind=kind
        )
    field = calc.get("result_field")
    if field not in _RESULT_FIELDS:
        return _verdict(
            "bad_input",
            f"result_field가 없거나 잘못됨({field!r}) / result_field missing or not one of {list(_RESULT_FIELDS)}",
            kind=kind,
            result_field=field if isinstance(field, str) else None,
        )
    try:
        claimed = parse_won(calc.get("result_won"))  # type: ignore[arg-type]
    except ValueError as exc:
        reason = f"result_won을 해석할 수 없음 / result_won unreadable: {exc}"
        return _verdict("bad_input", reason, kind=kind, result_field=field)
    raw_inputs = calc.get("inputs")
    if not isinstance(raw_inputs, dict):
        return _verdict(
            "bad_input", "inputs가 없음 / inputs missing", kind=kind, result_field=field, claimed_won=claimed
        )
    year = calc.get("year")
    if kind in ("income_tax", "capital_gains_tax") and year is None and not raw_inputs.get("transfer_date"):
        return _verdict("bad_input", "year가 없음 / year missing", kind=kind, result_field=field, claimed_won=claimed)
    try:
        computation = compute(kind, year, _typed_inputs(kind, raw_inputs))
    except UnsupportedCase as exc:
        reason = f"계산 범위 밖 / not modelled: {exc}"
        return _verdict("unsupported", reason, kind=kind, result_field=field, claimed_won=claimed)
    except (ValueError, TypeError) as exc:
        return _verdict(
            "bad_input", f"입력 오류 / bad input: {exc}", kind=kind, result_field=field, claimed_won=claimed
        )

    expected = computation.amount(field)
    tolerance = tolerance_for(expected, tolerance_won, tolerance_ratio)
    difference = claimed - expected
    common = dict(
        kind=kind,
        result_field=field,
        expected_won=expected,
        claimed_won=claimed,
        difference_won=difference,
        tolerance_won=tolerance,
        computation=computation,
    )
    if abs(difference) <= tolerance:
        return _verdict("ok", f"{field} 일치 / {field} matches: {format_won(expected)}", **common)
    hint = ""
    for other in ("computed_tax", "payable"):
        if other != field and abs(claimed - computation.amount(other)) <= tolerance:
            hint = f" (주장값은 {other}와 같음 / the claim equals {other}, but result_field says {field})"
    return _verdict(
        "mismatch",
        f"{field} 불일치: 주장 {format_won(claimed)}, 계산 {format_won(expected)} / "
        f"{field} mismatch: claimed {claimed:,} won, expected {expected:,} won{hint}",
        **common,
    )


# ---------------------------------------------------------------------------------------------------------------
# Checking the final amount of a free-text answer
# ---------------------------------------------------------------------------------------------------------------

# Words that label the amount after them. Longest first so "신고세액공제" is not read as "세액".
_LABELS: dict[str, str] = {
    # the amount is a deduction, base or value, not a tax
    "신고세액공제": "other",
    "기납부세액공제": "other",
    "기납부세액": "other",
    "세액공제": "other",
    "누진공제": "other",
    "증여재산공제": "other",
    "공제액": "other",
    "공제": "other",
    "과세표준": "other",
    "과세가액": "other",
    "재산가액": "other",
    "증여재산": "other",
    "상속재산": "other",
    "소득금액": "other",
    "양도차익": "other",
    "양도가액": "other",
    "취득가액": "other",
    "증여액": "other",
    "증여한": "other",
    "증여받은": "other",
    # the amount after 신고세액공제
    "납부할 세액": "payable",
    "납부할 증여세": "payable",
    "납부할 상속세": "payable",
    "납부할 세금": "payable",
    "납부세액": "payable",
    "납부할": "payable",
    # 산출세액 (before credits)
    "산출세액": "computed",
    # a tax amount that could be either
    "결정세액": "tax",
    "최종 세액": "tax",
    "양도소득세": "tax",
    "종합소득세": "tax",
    "증여세": "tax",
    "상속세": "tax",
    "소득세": "tax",
    "세액": "tax",
    "세금": "tax",
}
# Looked up with all whitespace removed, so "납부할세액" and "납부할  세액" both count.
_LABEL_KIND: dict[str, str] = {label.replace(" ", ""): kind for label, kind in _LABELS.items()}
_LABEL_RE = re.compile("|".join(sorted((label.replace(" ", r"\s*") for label in _LABELS), key=len, reverse=True)))
# Clause ends: a sentence end, a line break, or ", " (a digit group comma has no space after it: "1,000만원").
_SENTENCE_BREAK = re.compile(r"[.!?。](?=\s|$)|\n|[,，](?=\s)")
_OPERATORS = "×x*+−-/÷"
_RESULT_MARKS = ("=", "→", "⇒")
# Subtraction written out in words: "20억원에서 증여재산공제 5,000만원을 뺀 19억 5,000만원", "20억원에서 5천만원을
# 공제하면 과세표준은 19억 5천만원". The minuend ("…에서") and the subtrahend ("…을/를 뺀/차감한/공제한/제외한", also
# -하면/-하고/-하여) are operands; the figure the clause goes on to state is the result. A short parenthetical may sit
# between amount and particle ("5,000만원(증여재산공제)을 뺀"). 공제받은/공제받을 is not a subtraction: it states a deduction.
_PAREN_NOTE = r"(?:\s*\([^()\n]{0,30}\))?"
_SUBTRACT_VERB = r"[을를]\s*(?:뺀|빼[가-힣]*|(?:차감|공제|제외)(?:한|하[가-힣]*))"
# The minuend swallows a subtrahend named without an amount, whose label would otherwise pass to the result
# ("증여세는 6억 2,000만원에서 신고세액공제를 빼면 6억 140만원": 증여세, not 신고세액공제).
_MINUEND_RE = re.compile(_PAREN_NOTE + rf"\s*에서(?:\s*[가-힣][가-힣 ]{{0,20}}?{_SUBTRACT_VERB})?")
_SUBTRAHEND_RE = re.compile(_PAREN_NOTE + rf"\s*{_SUBTRACT_VERB}")
# A label directly in front of an operand, with only spaces or a colon between, names that operand ("증여재산 20억원에서"),
# not the result; one followed by a particle is the topic of the clause ("과세표준은 20억원에서 …").
_ATTACHED_GAP = re.compile(r"[\s:：]*")


def _clause_start(text: str, pos: int, max_back: int = 80) -> int:
    """Start of the clause holding `pos`: after the last sentence break, at most `max_back` characters back."""
    start = max(0, pos - max_back)
    breaks = [m.end() for m in _SENTENCE_BREAK.finditer(text, start, pos)]
    return breaks[-1] if breaks else start


def _last_label(text: str, start: int, end: int) -> str | None:
    labels = list(_LABEL_RE.finditer(text, start, end))
    return "".join(labels[-1].group(0).split()) if labels else None


def _operand_label_start(text: str, clause: int, operand_start: int) -> int:
    """Where the words naming an operand begin: at its own label when one sits right before it, else at the operand."""
    labels = list(_LABEL_RE.finditer(text, clause, operand_start))
    if labels and _ATTACHED_GAP.fullmatch(text, labels[-1].end(), operand_start):
        return labels[-1].start()
    return operand_start


def _statement_label(text: str, clause: int, end: int, chain: tuple[int, int, int, int] | None) -> str | None:
    """The last label in text[clause:end], looking past a worded subtraction the clause holds.

    chain = (clause start, start of the first operand's own label, start of the first operand, end of the run) for the
    run of operands before the amount ("증여재산 20억원에서 증여재산공제 5,000만원을 뺀"). Its labels describe the
    operands, so the result's label is one after the run ("…공제하면 과세표준은 19억 5천만원"), else the last one before
    it ("과세표준은 20억원에서 … 뺀 19억 5,000만원"), else the first operand's own ("과세표준 20억원에서 … 뺀 19억
    5,000만원", where nothing else names the figure).
    """
    if chain is None or chain[3] > end:
        return _last_label(text, clause, end)
    chain_clause, label_start, operand_start, chain_end = chain
    start = min(clause, chain_clause)
    return (
        _last_label(text, chain_end, end)
        or _last_label(text, start, label_start)
        or _last_label(text, start, operand_start)
    )


def labelled_amounts(answer_text: str) -> list[tuple[str, AmountMention]]:
    """(label, amount) for each stated amount, the label being the nearest known word before it in its clause
    (whitespace removed, e.g. "납부할세액", "과세표준", "증여세").

    An amount right after "=" takes the label of the left-hand side ("산출세액 = 19.5억 × 40% − 1.6억 = 6.2억").
    Operands of ×, +, −, ÷, of a subtraction in words ("20억원에서 5,000만원을 뺀 19억 5,000만원": the first two) and
    band limits ("1억원 이하") are not statements and are skipped, as are unlabelled ones.
    """
    out: list[tuple[str, AmountMention]] = []
    chain: tuple[int, int, int, int] | None = None  # the worded subtraction in progress, see _statement_label
    for mention in find_amounts(answer_text):
        if mention.qualifier:
            continue
        before = answer_text[: mention.start].rstrip()
        after = answer_text[mention.end :].lstrip()
        if (before and before[-1] in _OPERATORS) or (after and after[0] in _OPERATORS):
            continue
        clause = _clause_start(answer_text, mention.start)
        if chain is not None and _SENTENCE_BREAK.search(answer_text, chain[3], mention.start):
            chain = None  # a subtraction does not carry its result into the next clause
        operand = _MINUEND_RE.match(answer_text, mention.end) or _SUBTRAHEND_RE.match(answer_text, mention.end)
        if operand is not None:
            if chain is None:
                label_start = _operand_label_start(answer_text, clause, mention.start)
                chain = (clause, label_start, mention.start, operand.end())
            else:
                chain = (*chain[:3], operand.end())
            continue
        label = None
        if before and before[-1] in _RESULT_MARKS:
            marks = [i for i in (answer_text.find(mark, clause, mention.start) for mark in _RESULT_MARKS) if i >= 0]
            if marks:
                label = _statement_label(answer_text, clause, min(marks), chain)
        if label is None:
            label = _statement_label(answer_text, clause, mention.start, chain)
        chain = None  # the result closes the subtraction
        if label is not None:
            out.append((label, mention))
    return out


def check_answer_amounts(
    answer_text: str,
    computation: TaxComputation,
    tolerance_won: int = DEFAULT_TOLERANCE_WON,
    tolerance_ratio: float = DEFAULT_TOLERANCE_RATIO,
) -> list[str]:
    """Problems with the amounts a free-text answer states, judged against `computation`; [] when it agrees.

    Flags (1) the final stated tax — the last amount labelled by 세액/증여세/상속세/산출세액/납부할 … — when it matches
    neither the computed figure it names (산출세액 → computed_tax, 납부할 세액 → payable, a bare 증여세/세액 → either),
    (2) an answer with no stated tax at all, (3) the last stated 과세표준 when it differs from the computed base.
    """
    problems: list[str] = []
    stated = labelled_amounts(answer_text)
    taxes = [(_LABEL_KIND[label], m.won) for label, m in stated if _LABEL_KIND[label] in ("tax", "computed", "payable")]
    if not taxes:
        problems.append("답변에 최종 세액이 없음 / no final tax amount stated in the answer")
    else:
        kind, claimed = taxes[-1]
        targets = {
            "computed": [("산출세액", computation.computed_tax)],
            "payable": [("납부할 세액", computation.payable)],
            "tax": [("산출세액", computation.computed_tax), ("납부할 세액", computation.payable)],
        }[kind]
        within = [abs(claimed - value) <= tolerance_for(value, tolerance_won, tolerance_ratio) for _, value in targets]
        if not any(within):
            expected_ko = ", ".join(f"{name} {format_won(value)}" for name, value in targets)
            expected_en = " or ".join(f"{value:,}" for _, value in targets)
            problems.append(
                f"최종 세액 {format_won(claimed)}이 계산과 다름({expected_ko}) / "
                f"final stated tax {claimed:,} won does not match the computation ({expected_en} won)"
            )
    bases = [m.won for label, m in stated if label == "과세표준"]
    if bases:
        claimed_base, expected_base = bases[-1], computation.taxable_base
        if abs(claimed_base - expected_base) > tolerance_for(expected_base, tolerance_won, tolerance_ratio):
            problems.append(
                f"과세표준 {format_won(claimed_base)}이 계산과 다름(계산 {format_won(expected_base)}) / "
                f"stated taxable base {claimed_base:,} won differs from the computed {expected_base:,} won"
            )
    return problems
