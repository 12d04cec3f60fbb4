"""상속세 from a given 과세표준 (상속세 및 증여세법 제26조 세율, 제69조 신고세액공제, 제25조② 50만원 미만 불부과).

Not modelled: 상속공제 (the base is an input), 세대생략 할증 (제27조).
"""

from __future__ import annotations

from datetime import date

from slm_datagen.taxlaw.amounts import format_won
from slm_datagen.taxlaw.computation import (
    TaxComputation,
    apply_schedule,
    as_of_field,
    credits_sentence,
    gift_article,
    lines_text,
    pct_of,
    pick,
    require_won,
    year_of,
)
from slm_datagen.taxlaw.tables import FILING_CREDIT_PCT, INHERITANCE_GIFT_RATES, MINIMUM_TAXABLE_BASE, RateSchedule


def inheritance_tax(
    taxable_base_won: int, year: int | date | str | None = None, filed_on_time: bool = True
) -> TaxComputation:
    """상속세 from a given 과세표준 (상속공제 already taken): 제26조 세율, 제69조 신고세액공제."""
    require_won("taxable_base_won", taxable_base_won)
    schedule: RateSchedule = pick(INHERITANCE_GIFT_RATES, year)
    articles = [gift_article("제26조")]
    computed, lines = (0, [])
    if taxable_base_won >= MINIMUM_TAXABLE_BASE:
        computed, lines = apply_schedule(taxable_base_won, schedule)
    filing_pct = pick(FILING_CREDIT_PCT, year) if filed_on_time else 0
    filing_credit = pct_of(computed, filing_pct)
    if filed_on_time:
        articles.append(gift_article("제69조"))
    payable = computed - filing_credit
    if lines:
        text = (
            f"과세표준 {format_won(taxable_base_won)}에 제26조 세율을 적용한 산출세액은 "
            f"{format_won(computed)}({lines_text(lines)})입니다."
        )
    else:
        articles.append(gift_article("제25조"))
        text = "과세표준이 50만원 미만이므로 상속세를 부과하지 않습니다(제25조②)."
    text += " " + credits_sentence(computed, 0, filing_pct, filing_credit, filed_on_time, payable)
    return TaxComputation(
        kind="inheritance_tax",
        as_of=as_of_field(year),
        inputs={"taxable_base_won": taxable_base_won, "year": year_of(year), "filed_on_time": filed_on_time},
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
