"""Late filing and late payment (국세기본법): 무신고가산세 (제47조의2), its 기한후신고 감면 (제48조②2호) and 납부지연가산세
(제47조의4), each returned as its own step.

A return filed after the 법정신고기한 gets no 신고세액공제 (상증법 제69조 needs a return within the deadline). The
caller gives how many days after the deadline the tax was paid (`days_late`, the 기한후신고 being filed that day) and
whether a 기한후신고 was filed at all (without one the office assesses the tax and no 감면 applies). The deadline
itself comes from the tax's own rule (`deadline_window`) or an explicit `due_date`. When only a year is known and
the deadline could fall on either side of a rate change, the case is unverified rather than guessed.
"""

from __future__ import annotations

import calendar
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from fractions import Fraction

from slm_datagen.taxlaw.amounts import format_won
from slm_datagen.taxlaw.computation import Step, as_of_date
from slm_datagen.taxlaw.penalty_tables import (
    LATE_PAYMENT_DAILY_RATE,
    LATE_PAYMENT_MAX_DAYS,
    LATE_RETURN_REDUCTION,
    NONFILING_PENALTY,
    NonFilingPenalty,
)
from slm_datagen.taxlaw.tables import UnsupportedCase

BASIC_LAW = "국세기본법"


@dataclass(frozen=True)
class Lateness:
    """How late the return and the payment were; the default is a return and payment within the deadline."""

    filed_on_time: bool = True
    days_late: int = 0  # days after the 법정납부기한 until payment (and the 기한후신고, when one was filed)
    late_return_filed: bool = False  # a 기한후신고 was filed (국세기본법 제45조의3): 제48조②2호 감면 applies
    fraudulent: bool = False  # 부정행위로 무신고: 40%
    due_date: date | None = None  # the 법정신고·납부기한 when known; else derived from the tax date

    @property
    def is_late(self) -> bool:
        return not self.filed_on_time or self.days_late > 0


ON_TIME = Lateness()


def add_months_end(day: date, months: int) -> date:
    """The last day of the month `months` after `day`'s month ("…이 속하는 달의 말일부터 N개월 이내")."""
    month_index = day.year * 12 + day.month - 1 + months
    year, month = divmod(month_index, 12)
    return date(year, month + 1, calendar.monthrange(year, month + 1)[1])


def _add_months(day: date, months: int) -> date:
    month_index = day.year * 12 + day.month - 1 + months
    year, month = divmod(month_index, 12)
    return date(year, month + 1, min(day.day, calendar.monthrange(year, month + 1)[1]))


def deadline_window(year: int | date | str | None, deadline_of: Callable[[date], date]) -> tuple[date, date]:
    """The earliest and latest 법정신고기한 for a tax date given as a date (one deadline) or a year (any day of it)."""
    if year is None:
        raise UnsupportedCase("late filing needs the tax date or year to find the 법정신고기한")
    when = as_of_date(year)
    exact = isinstance(year, date) or (isinstance(year, str) and not year.strip().isdigit())
    if exact:
        return deadline_of(when), deadline_of(when)
    return deadline_of(date(when.year, 1, 1)), deadline_of(date(when.year, 12, 31))


def _nonfiling(tax_due: int, lateness: Lateness, deadline: date) -> Fraction:
    if lateness.filed_on_time:
        return Fraction(0)
    rates: NonFilingPenalty = NONFILING_PENALTY.at(deadline)
    pct = rates.fraud_pct if lateness.fraudulent else rates.pct
    penalty = Fraction(tax_due * pct, 100)
    if lateness.late_return_filed:
        filed = deadline + timedelta(days=lateness.days_late)
        for months, cut in LATE_RETURN_REDUCTION.at(deadline):
            if filed <= _add_months(deadline, months):
                return penalty * (100 - cut) / 100
    return penalty


def _late_payment(tax_due: int, lateness: Lateness, deadline: date) -> Fraction:
    if lateness.days_late > LATE_PAYMENT_MAX_DAYS:
        raise UnsupportedCase(f"납부지연 {lateness.days_late}일: the 5-year limit of 제47조의4⑦ is not modelled")
    total = Fraction(0)
    for offset in range(1, lateness.days_late + 1):
        total += LATE_PAYMENT_DAILY_RATE.at(deadline + timedelta(days=offset))
    return tax_due * total


def late_penalties(
    tax_due: int, lateness: Lateness, window: tuple[date, date] | None
) -> tuple[int, int, list[Step], list[str]]:
    """(무신고가산세, 납부지연가산세, their steps, articles) on `tax_due`, the tax the return should have paid."""
    if not lateness.is_late or tax_due <= 0:
        return 0, 0, [], []
    deadlines = {lateness.due_date} if lateness.due_date else set(window or ())
    if not deadlines:
        raise UnsupportedCase("late filing needs the 법정신고기한 (due_date) or the tax date")
    results = set()
    for deadline in deadlines:
        nonfiling = math.floor(_nonfiling(tax_due, lateness, deadline))
        late_payment = math.floor(_late_payment(tax_due, lateness, deadline))
        results.add((nonfiling, late_payment))
    if len(results) > 1:
        raise UnsupportedCase(
            "가산세 depends on the exact 법정신고기한: give the tax date or due_date, not only the year"
        )
    nonfiling, late_payment = results.pop()
    steps, articles = [], []
    if nonfiling:
        reduced = " (기한후신고 감면 후, 제48조②)" if lateness.late_return_filed else ""
        steps.append(
            Step(
                key="nonfiling_penalty", label="무신고가산세" + reduced, won=nonfiling, article=f"{BASIC_LAW} 제47조의2"
            )
        )
        articles.append(f"{BASIC_LAW} 제47조의2")
        if lateness.late_return_filed:
            articles.append(f"{BASIC_LAW} 제48조")
    if late_payment:
        steps.append(
            Step(key="late_payment_penalty", label="납부지연가산세", won=late_payment, article=f"{BASIC_LAW} 제47조의4")
        )
        articles.append(f"{BASIC_LAW} 제47조의4")
    if steps:
        total = nonfiling + late_payment
        steps.append(Step(key="penalty_tax", label="가산세", won=total, article=f"{BASIC_LAW} 제47조의2·제47조의4"))
    return nonfiling, late_payment, steps, articles


def penalty_sentence(nonfiling: int, late_payment: int, lateness: Lateness) -> str:
    parts = []
    if nonfiling:
        pct = "40%" if lateness.fraudulent else "20%"
        cut = ", 기한후신고 감면 반영(제48조②)" if lateness.late_return_filed else ""
        parts.append(f"무신고가산세 {pct}{cut} {format_won(nonfiling)}(국세기본법 제47조의2)")
    if late_payment:
        parts.append(f"납부지연가산세 {lateness.days_late}일분 {format_won(late_payment)}(국세기본법 제47조의4)")
    if not parts:
        return ""
    return "가산세로 " + "과 ".join(parts) + "을 더합니다."
