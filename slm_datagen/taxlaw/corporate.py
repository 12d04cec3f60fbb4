"""법인세 산출세액 (법인세법 제55조①) on the 과세표준 of a 사업연도, by the date the 사업연도 begins: 2018.1.1~2022.12.31
10/20/22/25% (2억, 200억, 3,000억), 2023.1.1 이후 9/19/21/24%. A 사업연도 of less than a year (제55조① 후단의 환산)
is not modelled, nor 세액공제·감면, 최저한세, 토지등 양도소득 추가과세 or 법인지방소득세.
"""

from __future__ import annotations

from datetime import date

from slm_datagen.taxlaw.amounts import format_won
from slm_datagen.taxlaw.business_tables import CORPORATE_TAX_RATES
from slm_datagen.taxlaw.computation import (
    Step,
    TaxComputation,
    apply_schedule,
    as_of_field,
    lines_text,
    pick,
    require_won,
    year_of,
)
from slm_datagen.taxlaw.tables import RateSchedule

CORPORATE_LAW = "법인세법"


def corporate_tax(taxable_base_won: int, year: int | date | str) -> TaxComputation:
    """법인세 산출세액; `year` is the 사업연도 개시일 (or the year of a calendar-year 사업연도)."""
    require_won("taxable_base_won", taxable_base_won)
    if year is None:
        raise ValueError("corporate_tax needs the 사업연도 (start date or year)")
    schedule: RateSchedule = pick(CORPORATE_TAX_RATES, year)
    computed, lines = apply_schedule(taxable_base_won, schedule)
    article = f"{CORPORATE_LAW} 제55조"
    text = (
        f"과세표준 {format_won(taxable_base_won)}에 {schedule.name}을 적용한 산출세액은 {format_won(computed)}입니다"
        + (f"({lines_text(lines)})." if len(lines) > 1 else ".")
    )
    return TaxComputation(
        kind="corporate_tax",
        as_of=as_of_field(year),
        inputs={"taxable_base_won": taxable_base_won, "year": year_of(year)},
        deduction=0,
        taxable_base=taxable_base_won,
        computed_tax=computed,
        prepaid_tax_credit=0,
        filing_credit=0,
        payable=computed,
        brackets=lines,
        articles=[article],
        explanation=text,
        payable_with_local_tax=computed,
        steps=[
            Step(key="taxable_base", label="과세표준", won=taxable_base_won, article=f"{CORPORATE_LAW} 제13조"),
            Step(key="computed_tax", label="산출세액", won=computed, article=article),
            Step(key="payable", label="납부할 세액", won=computed, article=article),
        ],
    )
