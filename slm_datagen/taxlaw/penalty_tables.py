"""국세기본법 가산세 tables, as dated data (see tables.Versioned)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from fractions import Fraction

from slm_datagen.taxlaw.tables import Versioned


@dataclass(frozen=True)
class NonFilingPenalty:
    """무신고가산세 (국세기본법 제47조의2①): percent of the 무신고납부세액; `fraud_pct` for 부정행위."""

    pct: int
    fraud_pct: int
    basis: str


NONFILING_PENALTY = Versioned(
    "국세기본법 제47조의2 무신고가산세",
    ((date(2012, 1, 1), NonFilingPenalty(20, 40, "제47조의2① (일반 20%, 부정행위 40%)")),),
)

# 국세기본법 제48조②2호 기한후신고 감면 of the 무신고가산세: (months after the 법정신고기한, percent cut), in order.
LATE_RETURN_REDUCTION = Versioned(
    "국세기본법 제48조②2호 기한후신고 가산세 감면",
    ((date(2020, 1, 1), ((1, 50), (3, 30), (6, 20))),),
)

# 납부지연가산세 (국세기본법 제47조의4①1호): 미납세액 × days × the daily rate of 시행령 제27조의4, the rate of each day
# being the one in force on that day (시행령 부칙: 2022.2.15 이후 기간분부터 1일 10만분의 22).
LATE_PAYMENT_DAILY_RATE = Versioned(
    "국세기본법 시행령 제27조의4 납부지연가산세 이자율",
    ((date(2019, 2, 12), Fraction(25, 100_000)), (date(2022, 2, 15), Fraction(22, 100_000))),
)
# 제47조의4⑦: the daily part is charged for at most 5 years.
LATE_PAYMENT_MAX_DAYS = 5 * 365
