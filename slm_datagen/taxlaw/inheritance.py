"""상속세 (상속세 및 증여세법): from the 과세표준 the caller gives, or from the estate with the 상속공제.

From the estate (`inheritance_tax_from_estate`): 상속세 과세가액 (after 공과금·장례비·채무 and with 사전증여재산 added:
the caller's job) − 상속공제 = 과세표준. The 상속공제 are those of inheritance_deductions.py: 기초공제 and 인적공제 or
일괄공제 (the larger, as 제21조 allows), 배우자 상속공제 (제19조), 금융재산 상속공제 (제22조), all within 제24조's
limit of the 과세가액. Then 세율 (제26조), 세대생략 할증 (제27조: 30% — 40% for a minor heir receiving more than
20억 — of the 산출세액 in the proportion of the skip-generation heirs' share to the 과세가액), 신고세액공제 (제69조) and
가산세 (penalties.py). 50만원 미만 불부과 (제25조②).

Not modelled: 가업·영농상속공제, 동거주택 상속공제, 재해손실공제, 제24조's reduction of the limit for bequests to
non-heirs and added gifts, 감정평가수수료, 외국납부·단기재상속 세액공제, 연부연납.
"""

from __future__ import annotations

from datetime import date

from slm_datagen.taxlaw.amounts import format_won
from slm_datagen.taxlaw.computation import (
    Step,
    TaxComputation,
    apply_schedule,
    as_of_field,
    gift_article,
    lines_text,
    pct_of,
    pick,
    require_won,
    year_of,
)
from slm_datagen.taxlaw.inheritance_deductions import HeirFacts, inheritance_deductions
from slm_datagen.taxlaw.penalties import ON_TIME, Lateness, add_months_end, deadline_window, late_penalties
from slm_datagen.taxlaw.penalties import penalty_sentence as _penalty_sentence
from slm_datagen.taxlaw.tables import (
    FILING_CREDIT_PCT,
    GENERATION_SKIP_SURCHARGE,
    INHERITANCE_GIFT_RATES,
    MINIMUM_TAXABLE_BASE,
    GenerationSkipSurcharge,
    RateSchedule,
)


def inheritance_deadline(death_day: date) -> date:
    """상속세 법정신고기한: 상속개시일이 속하는 달의 말일부터 6개월 (제67조①, 거주자)."""
    return add_months_end(death_day, 6)


def inheritance_tax(
    taxable_base_won: int,
    year: int | date | str | None = None,
    filed_on_time: bool = True,
    *,
    lateness: Lateness = ON_TIME,
) -> TaxComputation:
    """상속세 from a given 과세표준 (상속공제 already taken)."""
    require_won("taxable_base_won", taxable_base_won)
    return _from_base(taxable_base_won, year, _lateness(filed_on_time, lateness), gross=0, deduction_steps=[])


def inheritance_tax_from_estate(
    taxable_estate_won: int,
    year: int | date | str | None = None,
    heirs: HeirFacts | None = None,
    filed_on_time: bool = True,
    *,
    skip_generation_share_won: int = 0,
    skip_generation_heir_is_minor: bool = False,
    lateness: Lateness = ON_TIME,
) -> TaxComputation:
    """상속세 from the 상속세 과세가액: 상속공제 (inheritance_deductions), then the tax of `_from_base`."""
    require_won("taxable_estate_won", taxable_estate_won)
    require_won("skip_generation_share_won", skip_generation_share_won)
    if skip_generation_share_won > taxable_estate_won:
        raise ValueError("skip_generation_share_won exceeds the 과세가액")
    lateness = _lateness(filed_on_time, lateness)
    facts = heirs or HeirFacts()
    total, deduction_steps = inheritance_deductions(
        taxable_estate_won, facts, year, return_filed=lateness.filed_on_time or lateness.late_return_filed
    )
    base = taxable_estate_won - total
    return _from_base(
        base,
        year,
        lateness,
        gross=taxable_estate_won,
        deduction_steps=deduction_steps,
        skip=(skip_generation_share_won, skip_generation_heir_is_minor),
        inputs={"taxable_estate_won": taxable_estate_won, **facts.as_inputs()},
    )


def _lateness(filed_on_time: bool, lateness: Lateness) -> Lateness:
    return lateness if filed_on_time else Lateness(**{**lateness.__dict__, "filed_on_time": False})


def _surcharge(computed: int, skip: tuple[int, bool], gross: int, year: int | date | str | None) -> tuple[int, int]:
    """(percent, amount) of 제27조: 산출세액 × (skip-generation share / 과세가액) × 30% (40%)."""
    share, minor = skip
    if not share or not gross:
        return 0, 0
    rule: GenerationSkipSurcharge = pick(GENERATION_SKIP_SURCHARGE, year)
    pct = rule.pct
    if minor and rule.minor_threshold is not None and rule.minor_pct is not None and share > rule.minor_threshold:
        pct = rule.minor_pct
    return pct, computed * share * pct // (gross * 100)


def _from_base(
    base: int,
    year: int | date | str | None,
    lateness: Lateness,
    *,
    gross: int,
    deduction_steps: list[Step],
    skip: tuple[int, bool] = (0, False),
    inputs: dict | None = None,
) -> TaxComputation:
    schedule: RateSchedule = pick(INHERITANCE_GIFT_RATES, year)
    computed, lines = apply_schedule(base, schedule) if base >= MINIMUM_TAXABLE_BASE else (0, [])
    surcharge_pct, surcharge = _surcharge(computed, skip, gross, year)
    filing_pct = pick(FILING_CREDIT_PCT, year) if lateness.filed_on_time else 0
    filing_credit = pct_of(computed + surcharge, filing_pct)
    tax_due = computed + surcharge - filing_credit
    window = deadline_window(year, inheritance_deadline) if lateness.is_late else None
    nonfiling, late_payment, penalty_steps, penalty_articles = late_penalties(tax_due, lateness, window)
    payable = tax_due + nonfiling + late_payment

    steps = (
        [Step(key="gross_value", label="상속세 과세가액", won=gross, article=gift_article("제13조"))] if gross else []
    )
    steps += deduction_steps
    steps.append(Step(key="taxable_base", label="과세표준", won=base, article=gift_article("제25조")))
    steps.append(Step(key="computed_tax", label="산출세액", won=computed, article=gift_article("제26조")))
    articles = [gift_article(a) for a in ["제26조"] + (["제25조"] if not lines else [])]
    if surcharge:
        steps.append(Step(key="surcharge", label="세대생략 할증", won=surcharge, article=gift_article("제27조")))
        articles.append(gift_article("제27조"))
    if filing_credit:
        steps.append(Step(key="filing_credit", label="신고세액공제", won=filing_credit, article=gift_article("제69조")))
    if lateness.filed_on_time:
        articles.append(gift_article("제69조"))
    steps += penalty_steps + [Step(key="payable", label="납부할 세액", won=payable, article=gift_article("제70조"))]
    deduction = sum(s.won for s in deduction_steps if s.key == "deduction")

    text = f"상속세 과세가액 {format_won(gross)}에서 상속공제 {format_won(deduction)}을 빼면 " if gross else ""
    text += f"과세표준은 {format_won(base)}이고, "
    if lines:
        text += f"제26조 세율을 적용한 산출세액은 {format_won(computed)}({lines_text(lines)})입니다."
    else:
        text += "과세표준이 50만원 미만이므로 상속세를 부과하지 않습니다(제25조②)."
    if surcharge:
        text += f" 세대생략 할증 {surcharge_pct}% {format_won(surcharge)}을 더합니다(제27조)."
    if filing_credit:
        text += f" 신고세액공제 {filing_pct}% {format_won(filing_credit)}(제69조)을 뺍니다."
    text += (" " + _penalty_sentence(nonfiling, late_payment, lateness) if penalty_steps else "") + (
        f" 납부할 세액은 {format_won(payable)}입니다."
    )
    return TaxComputation(
        kind="inheritance_tax",
        as_of=as_of_field(year),
        inputs={
            **(inputs or {"taxable_base_won": base}),
            "year": year_of(year),
            "filed_on_time": lateness.filed_on_time,
        },
        deduction=deduction,
        taxable_base=base,
        computed_tax=computed,
        prepaid_tax_credit=0,
        filing_credit=filing_credit,
        payable=payable,
        brackets=lines,
        articles=(["상속세 및 증여세법 제18조"] if gross else []) + articles + penalty_articles,
        explanation=text,
        gross_value=gross,
        surcharge=surcharge,
        penalty_tax=nonfiling + late_payment,
        payable_with_local_tax=payable,
        steps=steps,
    )
