"""The calculator's rate tables as dated data: every value with the article and 시행일 it comes from.

A `Versioned` table holds (effective_from, value) pairs; the version in force on a date is the last one that started
on or before it, and a date before the first start raises `UnsupportedCase` (never a guess from another year).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from slm_datagen.taxlaw.inputs import DonorRelation


class UnsupportedCase(ValueError):
    """The law covers the case but these tables do not (a year before the first table, an unmodelled rate, ...)."""


# The tables follow the statutes as amended by the December 2024 tax-law amendments, in force through 2025 (소득세법,
# 상속세 및 증여세법 — whose 2024 government bill to cut the rates was voted down —, 법인세법, 부가가치세법 and its
# 시행령 as of 2025, 국세기본법 and its 시행령 as of 2025). An amendment that takes effect later was not checked, so a
# tax date after this one is "unverified" rather than computed with a table that may be out of date.
LAW_KNOWN_THROUGH = date(2025, 12, 31)
LAW_KNOWN_THROUGH_SOURCE = "statutes as amended to December 2024, in force in 2025"


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
        if LAW_KNOWN_THROUGH < when < date.max:
            raise UnsupportedCase(
                f"unverified: {self.name} for {when.isoformat()} is after {LAW_KNOWN_THROUGH.isoformat()}, the last date "
                f"these tables are known to be current ({LAW_KNOWN_THROUGH_SOURCE})"
            )
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
        if relation in (DonorRelation.LINEAL_ASCENDANT, DonorRelation.GRANDPARENT):
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
class GenerationSkipSurcharge:
    """세대생략 할증 (제27조 상속, 제57조 증여): percent added to the 산출세액 when the heir or donee is a 직계비속 other
    than a child of the decedent or donor; a higher percent for a minor receiving more than `minor_threshold`."""

    pct: int
    minor_pct: int | None
    minor_threshold: int | None
    basis: str


GENERATION_SKIP_SURCHARGE = Versioned(
    "상속세 및 증여세법 제27조·제57조 세대생략 할증",
    (
        (date(2008, 1, 1), GenerationSkipSurcharge(30, None, None, "제27조·제57조: 산출세액의 30% 가산")),
        (
            date(2016, 1, 1),
            GenerationSkipSurcharge(
                30, 40, 2_000_000_000, "제27조·제57조 (2015.12.15 개정, 2016.1.1 시행): 미성년자가 20억원 초과 시 40%"
            ),
        ),
    ),
)

# 제47조②: gifts from the same donor (a 직계존속's spouse counts as the same donor) within 10 years before this one are
# added to the 과세가액 when together they come to 1,000만원 or more.
AGGREGATION_THRESHOLD = 10_000_000


@dataclass(frozen=True)
class InheritanceDeductionTable:
    """상속공제 amounts, 상속세 및 증여세법 제18조~제22조."""

    basic: int  # 기초공제 (제18조)
    per_child: int  # 자녀공제 1인당 (제20조①1호)
    minor_per_year: int  # 미성년자공제: × 19세까지의 연수 (제20조①2호)
    senior: int  # 연로자공제 65세 이상 1인당 (제20조①3호)
    disabled_per_year: int  # 장애인공제: × 기대여명의 연수 (제20조①4호)
    lump_sum: int  # 일괄공제 (제21조)
    spouse_minimum: int  # 배우자 상속공제 최소 (제19조④)
    spouse_maximum: int  # 배우자 상속공제 한도 (제19조①)
    basis: str


INHERITANCE_DEDUCTIONS = Versioned(
    "상속세 및 증여세법 제18조~제21조 상속공제",
    (
        (
            date(2016, 1, 1),
            InheritanceDeductionTable(
                basic=200_000_000,
                per_child=50_000_000,
                minor_per_year=10_000_000,
                senior=50_000_000,
                disabled_per_year=10_000_000,
                lump_sum=500_000_000,
                spouse_minimum=500_000_000,
                spouse_maximum=3_000_000_000,
                basis="제18조~제21조 (2015.12.15 개정, 2016.1.1 이후 상속개시분: 자녀 5,000만·미성년자 1,000만×연수 등)",
            ),
        ),
    ),
)


@dataclass(frozen=True)
class FinancialAssetDeduction:
    """금융재산 상속공제 (제22조①) on 순금융재산 (금융재산 − 금융채무)."""

    full_up_to: int  # 2,000만원 이하: 전액
    flat: int  # 2,000만원 초과 1억원 이하: 2,000만원
    flat_up_to: int
    pct_above: int  # 1억원 초과: 20%
    maximum: int  # 한도 2억원
    basis: str

    def amount(self, net_financial: int) -> int:
        if net_financial <= self.full_up_to:
            return net_financial
        if net_financial <= self.flat_up_to:
            return self.flat
        return min(net_financial * self.pct_above // 100, self.maximum)


FINANCIAL_ASSET_DEDUCTION = Versioned(
    "상속세 및 증여세법 제22조 금융재산 상속공제",
    ((date(2016, 1, 1), FinancialAssetDeduction(20_000_000, 20_000_000, 100_000_000, 20, 200_000_000, "제22조①")),),
)
