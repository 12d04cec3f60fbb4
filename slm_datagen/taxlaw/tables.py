"""The calculator's rate tables as dated data: every value with the article and 시행일 it comes from.

A `Versioned` table holds (effective_from, value) pairs; the version in force on a date is the last one that started
on or before it, and a date before the first start raises `UnsupportedCase` (never a guess from another year).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from slm_datagen.taxlaw.inputs import AssetKind, DonorRelation, HoldingPeriod


class UnsupportedCase(ValueError):
    """The law covers the case but these tables do not (a year before the first table, an unmodelled rate, ...)."""


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
