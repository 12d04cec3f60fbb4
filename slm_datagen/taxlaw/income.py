"""종합소득세 산출세액 (소득세법 제55조① 기본세율, tax years 2018 onward), with 지방소득세 as its own line and the
가산세 of a late return; `finish_income_tax` is shared with the 양도소득세 of capital_gains.py.

지방소득세 (지방세법 제92조, 제103조의3) is one tenth of the 소득세 rates on the same base: 10% of the 산출세액, truncated
to the won. It is a separate local tax: `payable` is the national tax, `payable_with_local_tax` adds it.

Not modelled: 종합소득공제 (the base is an input), 세액공제·감면 (so 결정세액 = 산출세액), 기납부세액 (원천징수·중간예납),
the 복식부기의무자 alternative 무신고가산세 on 수입금액 (제47조의2①), the 지방소득세's own 가산세.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

from slm_datagen.taxlaw.amounts import format_won
from slm_datagen.taxlaw.computation import (
    INCOME_LAW,
    BracketLine,
    Step,
    TaxComputation,
    TaxKind,
    apply_schedule,
    as_of_date,
    as_of_field,
    lines_text,
    pct_of,
    pick,
    require_won,
    year_of,
)
from slm_datagen.taxlaw.income_tables import INCOME_TAX_RATES, LOCAL_INCOME_TAX_PCT
from slm_datagen.taxlaw.penalties import ON_TIME, Lateness, deadline_window, late_penalties, penalty_sentence
from slm_datagen.taxlaw.tables import RateSchedule

LOCAL_TAX_ARTICLES = {"income_tax": "지방세법 제92조", "capital_gains_tax": "지방세법 제103조의3"}


def income_deadline(tax_year_day: date) -> date:
    """종합소득 과세표준 확정신고기한: 다음 연도 5월 31일 (소득세법 제70조①)."""
    return date(tax_year_day.year + 1, 5, 31)


def finish_income_tax(
    kind: TaxKind,
    year: int | date | str,
    computed: int,
    lines: list[BracketLine],
    lateness: Lateness,
    deadline_of: Callable[[date], date],
    *,
    base: int,
    head_steps: list[Step],
    articles: list[str],
    explanation: str,
    inputs: dict,
    gross: int = 0,
    deduction: int = 0,
) -> TaxComputation:
    """The common tail of 종합소득세 and 양도소득세: 가산세, 납부할 세액, 지방소득세, their steps and sentences."""
    window = deadline_window(year, deadline_of) if lateness.is_late else None
    nonfiling, late_payment, penalty_steps, penalty_articles = late_penalties(computed, lateness, window)
    payable = computed + nonfiling + late_payment
    local = pct_of(computed, pick(LOCAL_INCOME_TAX_PCT, year))
    local_article = LOCAL_TAX_ARTICLES[kind]
    steps = head_steps + [Step(key="computed_tax", label="산출세액", won=computed, article=articles[-1])]
    steps += penalty_steps + [Step(key="payable", label="납부할 세액", won=payable, article=articles[0])]
    steps.append(Step(key="local_income_tax", label="지방소득세", won=local, article=local_article))
    steps.append(
        Step(key="payable_with_local_tax", label="지방소득세 포함 합계", won=payable + local, article=local_article)
    )
    if penalty_steps:
        explanation += " " + penalty_sentence(nonfiling, late_payment, lateness)
        explanation += f" 납부할 세액은 {format_won(payable)}입니다."
    explanation += f" 지방소득세는 산출세액의 10%인 {format_won(local)}으로 별도입니다({local_article})."
    return TaxComputation(
        kind=kind,
        as_of=as_of_field(year),
        inputs={**inputs, "year": year_of(year), "filed_on_time": lateness.filed_on_time},
        deduction=deduction,
        taxable_base=base,
        computed_tax=computed,
        prepaid_tax_credit=0,
        filing_credit=0,
        payable=payable,
        brackets=lines,
        articles=articles + penalty_articles + [local_article],
        explanation=explanation,
        gross_value=gross,
        penalty_tax=nonfiling + late_payment,
        local_income_tax=local,
        payable_with_local_tax=payable + local,
        steps=steps,
    )


def income_tax(
    taxable_income_won: int, year: int | date | str, filed_on_time: bool = True, *, lateness: Lateness = ON_TIME
) -> TaxComputation:
    """종합소득 산출세액 (제55조①) for a 과세표준 and tax year (귀속연도), 지방소득세 and 가산세 as their own lines."""
    require_won("taxable_income_won", taxable_income_won)
    if year is None:
        raise ValueError("income_tax needs the tax year")
    if not filed_on_time:
        lateness = Lateness(**{**lateness.__dict__, "filed_on_time": False})
    schedule: RateSchedule = pick(INCOME_TAX_RATES, year)
    computed, lines = apply_schedule(taxable_income_won, schedule)
    top = lines[-1].rate_pct if lines else schedule.brackets[0].rate_pct
    text = (
        f"{as_of_date(year).year}년 귀속 종합소득 과세표준 {format_won(taxable_income_won)}에 소득세법 제55조① 기본세율"
        f"(최고 적용세율 {top}%)을 적용한 산출세액은 {format_won(computed)}입니다"
        + (f"({lines_text(lines)})." if len(lines) > 1 else ".")
        + " 세액공제·감면은 반영하지 않았습니다."
    )
    return finish_income_tax(
        "income_tax",
        year,
        computed,
        lines,
        lateness,
        income_deadline,
        base=taxable_income_won,
        head_steps=[Step(key="taxable_base", label="과세표준", won=taxable_income_won, article=f"{INCOME_LAW} 제14조")],
        articles=[f"{INCOME_LAW} 제55조"],
        explanation=text,
        inputs={"taxable_income_won": taxable_income_won},
    )
