"""양도소득세 산출세액 from a given 과세표준: 기본세율 (소득세법 제104조①1호 → 제55조①) and the short-holding flat
rates of 제104조①1~3호 for 토지·건물, 주택·조합원입주권 and 분양권, tax years 2018 onward.

Not modelled: 미등기 70%, 비사업용토지 +10%p, 다주택 중과 (제104조⑦, 유예 2022.5.10~2026.5.9), 주식·기타자산 rates,
장기보유특별공제 and 기본공제 (the base is an input), 분양권 transfers before 2021-06-01.
"""

from __future__ import annotations

from datetime import date

from slm_datagen.taxlaw.amounts import format_won
from slm_datagen.taxlaw.computation import (
    INCOME_LAW,
    BracketLine,
    Step,
    TaxComputation,
    apply_schedule,
    pick,
    require_won,
)
from slm_datagen.taxlaw.income import finish_income_tax
from slm_datagen.taxlaw.income_tables import INCOME_TAX_RATES, SHORT_HOLDING_RATES, ShortHoldingRates
from slm_datagen.taxlaw.inputs import AssetKind, HoldingPeriod
from slm_datagen.taxlaw.penalties import ON_TIME, Lateness, add_months_end
from slm_datagen.taxlaw.tables import RateSchedule


def capital_gains_tax(
    taxable_base_won: int,
    year: int | date | str,
    asset_kind: str | AssetKind = AssetKind.LAND_BUILDING,
    holding_period: str | HoldingPeriod = HoldingPeriod.TWO_YEARS_OR_MORE,
    filed_on_time: bool = True,
    *,
    lateness: Lateness = ON_TIME,
    head_steps: list[Step] | None = None,
    head_text: str = "",
    gross: int = 0,
    deduction: int = 0,
    extra_inputs: dict | None = None,
) -> TaxComputation:
    """양도소득 산출세액 for a given 과세표준 (after 장기보유특별공제 and 기본공제).

    year: the transfer date, or its year when no table changes within that year (2021 for 주택·분양권 needs the date,
        because the rates changed on 2021-06-01).
    asset_kind: "land_building" (토지·건물·부동산에 관한 권리), "housing" (주택·조합원입주권), "presale_right" (분양권).
    holding_period: "under_1y", "1y_to_2y", "2y_or_more" (see holding_period_between).

    When an asset falls under more than one rate of 제104조①, the larger 산출세액 applies (제104조① 후단): e.g. land held
    1–2 years pays max(40% flat, 기본세율).
    """
    require_won("taxable_base_won", taxable_base_won)
    if year is None:
        raise ValueError("capital_gains_tax needs the transfer year or date")
    try:
        kind = AssetKind(asset_kind)
        period = HoldingPeriod(holding_period)
    except ValueError as exc:
        raise ValueError(str(exc)) from exc
    computed, lines, label, several = _larger_rate_tax(taxable_base_won, year, kind, period)
    kind_label, period_label = KIND_LABELS[kind], PERIOD_LABELS[period]
    text = (
        f"{kind_label}(보유기간 {period_label})의 양도소득 과세표준 {format_won(taxable_base_won)}에 {label}을 적용한 "
        f"산출세액은 {format_won(computed)}입니다."
    )
    if several:
        text += " 둘 이상의 세율에 해당하여 큰 산출세액을 적용했습니다(제104조① 후단)."
    articles = [f"{INCOME_LAW} 제104조"]
    if label.startswith("기본세율"):
        articles.append(f"{INCOME_LAW} 제55조")
    if not filed_on_time:
        lateness = Lateness(**{**lateness.__dict__, "filed_on_time": False})
    base_step = Step(key="taxable_base", label="과세표준", won=taxable_base_won, article=f"{INCOME_LAW} 제92조")
    return finish_income_tax(
        "capital_gains_tax",
        year,
        computed,
        lines,
        lateness,
        capital_gains_deadline,
        base=taxable_base_won,
        head_steps=(head_steps or []) + [base_step],
        articles=articles,
        explanation=(head_text + " " if head_text else "") + text,
        inputs={
            **(extra_inputs or {}),
            "taxable_base_won": taxable_base_won,
            "asset_kind": kind.value,
            "holding_period": period.value,
        },
        gross=gross,
        deduction=deduction,
    )


def capital_gains_deadline(transfer_day: date) -> date:
    """양도소득 예정신고기한: 양도일이 속하는 달의 말일부터 2개월 (소득세법 제105조①1호, 토지·건물)."""
    return add_months_end(transfer_day, 2)


KIND_LABELS = {
    AssetKind.LAND_BUILDING: "토지·건물",
    AssetKind.HOUSING: "주택·조합원입주권",
    AssetKind.PRESALE_RIGHT: "분양권",
}
PERIOD_LABELS = {
    HoldingPeriod.UNDER_1Y: "1년 미만",
    HoldingPeriod.FROM_1Y_TO_2Y: "1년 이상 2년 미만",
    HoldingPeriod.TWO_YEARS_OR_MORE: "2년 이상",
}


def _larger_rate_tax(
    base: int, year: int | date | str, kind: AssetKind, period: HoldingPeriod
) -> tuple[int, list[BracketLine], str, bool]:
    """(산출세액, lines, which rate, whether two rates applied): the larger of 기본세율 and the flat rate (제104조① 후단)."""
    basic_schedule: RateSchedule = pick(INCOME_TAX_RATES, year)
    flat_rates: ShortHoldingRates = pick(SHORT_HOLDING_RATES[kind], year)
    flat_pct = flat_rates.rate(period)
    candidates: list[tuple[int, list[BracketLine], str]] = []
    if kind is not AssetKind.PRESALE_RIGHT:  # 분양권 is excluded from the basic rate of 제104조①1호 since 2021-06-01
        basic_tax, basic_lines = apply_schedule(base, basic_schedule)
        candidates.append((basic_tax, basic_lines, "기본세율(제104조①1호, 제55조①)"))
    if flat_pct is not None:
        flat_tax = base * flat_pct // 100
        flat_line = BracketLine(lower=0, upper=None, rate_pct=flat_pct, amount_taxed=base, tax=flat_tax)
        candidates.append((flat_tax, [flat_line] if base else [], f"단일세율 {flat_pct}%({flat_rates.basis})"))
    computed, lines, label = max(candidates, key=lambda c: c[0])
    return computed, lines, label, len(candidates) > 1
