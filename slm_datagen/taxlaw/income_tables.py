"""소득세법 and 지방세법 tables for 종합소득세 and 양도소득세, as dated data (see tables.Versioned)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from slm_datagen.taxlaw.inputs import AssetKind, HoldingPeriod
from slm_datagen.taxlaw.tables import Bracket, RateSchedule, Versioned

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


# 지방세법 제92조 (개인지방소득 종합소득 세율) and 제103조의3 (양도소득 세율): one tenth of the 소득세 rates on the same
# 과세표준, i.e. 10% of the 소득세 산출세액 (원 미만 절사 of either gives the same figure). In force since the 2014
# conversion of 지방소득세 into an independent tax (2014.1.1 시행).
LOCAL_INCOME_TAX_PCT = Versioned("지방세법 제92조·제103조의3 개인지방소득세", ((date(2014, 1, 1), 10),))

# 1세대1주택 비과세의 고가주택 기준 (소득세법 제89조①3호, 시행령 제156조): 9억원, 12억원 from 2021-12-08 (2021.12.8
# 개정 법률 시행일 이후 양도분). The table starts with the first year of the rate tables here.
ONE_HOUSE_EXEMPT_PRICE = Versioned(
    "소득세법 제89조①3호 1세대1주택 고가주택 기준",
    ((date(2018, 1, 1), 900_000_000), (date(2021, 12, 8), 1_200_000_000)),
)


@dataclass(frozen=True)
class LongTermHoldingTable:
    """장기보유특별공제율 (소득세법 제95조②): from `from_years`, `start_pct` then + `step_pct` per year, to `max_pct`."""

    from_years: int
    start_pct: int
    step_pct: int
    max_pct: int
    basis: str

    def pct(self, years: int) -> int:
        if years < self.from_years:
            return 0
        return min(self.start_pct + (years - self.from_years) * self.step_pct, self.max_pct)


# 표1 (일반): 3년 이상 6%, 1년마다 2%p, 15년 이상 30% — 2019.1.1 이후 양도분 (2018.12.31 개정).
LONG_TERM_TABLE_1 = Versioned(
    "소득세법 제95조② 표1 장기보유특별공제",
    ((date(2019, 1, 1), LongTermHoldingTable(3, 6, 2, 30, "제95조② 표1 (2019.1.1 이후 양도분)")),),
)
# 표2 (1세대1주택, 2년 이상 거주): 보유 3년 이상 12% + 1년마다 4%p (한도 40%) and 거주 2년 이상 8% + 1년마다 4%p
# (한도 40%), 합계 80% — 2021.1.1 이후 양도분 (2020.8.18 개정).
LONG_TERM_TABLE_2 = Versioned(
    "소득세법 제95조② 표2 장기보유특별공제 (1세대1주택)",
    (
        (
            date(2021, 1, 1),
            (
                LongTermHoldingTable(3, 12, 4, 40, "제95조② 표2 보유기간 (2021.1.1 이후 양도분)"),
                LongTermHoldingTable(2, 8, 4, 40, "제95조② 표2 거주기간 (2021.1.1 이후 양도분)"),
            ),
        ),
    ),
)

# 양도소득 기본공제 (소득세법 제103조①): 자산 그룹별 연 250만원 (미등기 양도자산 제외).
CAPITAL_GAINS_BASIC_DEDUCTION = Versioned("소득세법 제103조 양도소득 기본공제", ((date(2018, 1, 1), 2_500_000),))
