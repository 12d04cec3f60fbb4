"""종합소득세 산출세액: 소득세법 제55조① 기본세율 for tax years 2018 onward.

Not modelled: 종합소득 세액공제·감면, 지방소득세 (10% of the 산출세액, a separate local tax).
"""

from __future__ import annotations

from datetime import date

from slm_datagen.taxlaw.amounts import format_won
from slm_datagen.taxlaw.computation import (
    INCOME_LAW,
    TaxComputation,
    apply_schedule,
    as_of_date,
    as_of_field,
    lines_text,
    pick,
    require_won,
    year_of,
)
from slm_datagen.taxlaw.tables import INCOME_TAX_RATES, RateSchedule


def income_tax(taxable_income_won: int, year: int | date | str) -> TaxComputation:
    """종합소득 산출세액 (소득세법 제55조①) for a 과세표준 and tax year (귀속연도). payable = 산출세액: 세액공제·감면
    and 지방소득세 are not modelled."""
    require_won("taxable_income_won", taxable_income_won)
    if year is None:
        raise ValueError("income_tax needs the tax year")
    schedule: RateSchedule = pick(INCOME_TAX_RATES, year)
    computed, lines = apply_schedule(taxable_income_won, schedule)
    top = lines[-1].rate_pct if lines else schedule.brackets[0].rate_pct
    text = (
        f"{as_of_date(year).year}년 귀속 종합소득 과세표준 {format_won(taxable_income_won)}에 소득세법 제55조① 기본세율"
        f"(최고 적용세율 {top}%)을 적용한 산출세액은 {format_won(computed)}입니다"
        + (f"({lines_text(lines)})." if len(lines) > 1 else ".")
        + " 세액공제·감면과 지방소득세는 반영하지 않았습니다."
    )
    return TaxComputation(
        kind="income_tax",
        as_of=as_of_field(year),
        inputs={"taxable_income_won": taxable_income_won, "year": year_of(year)},
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
