"""양도소득세 from the sale (소득세법): 양도가액 − 취득가액 − 필요경비 = 양도차익 (제95조①, 제97조); 1세대1주택 비과세
up to the 고가주택 기준 and the proportional rule above it (제89조①3호, 제95조③, 시행령 제160조); 장기보유특별공제
(제95조② 표1, and 표2 for a 1세대1주택 with 2 years' residence); 양도소득 기본공제 250만원 (제103조); then the rates of
capital_gains.py (기본세율 or the short-holding rates, the larger when both apply).

Inputs the caller states: `one_house_exempt` means the 1세대1주택 비과세 요건 (시행령 제154조: 보유 2년, and 거주 2년
where required) are met; `holding_years` / `residence_years` are whole years (제95조④: 취득일부터 양도일까지);
`basic_deduction_available` is false when the 250만원 was already used this year in the same asset group.

Not modelled: 미등기 양도 (70%, no 공제), 비사업용토지 (+10%p), 다주택 중과 (유예 2022.5.10~2026.5.9 aside), 조합원입주권
의 장기보유특별공제 split, 일시적 2주택, 감면 (조세특례제한법), 이월과세 (제97조의2), 환산취득가액.
"""

from __future__ import annotations

from datetime import date

from slm_datagen.taxlaw.amounts import format_won
from slm_datagen.taxlaw.capital_gains import capital_gains_tax
from slm_datagen.taxlaw.computation import INCOME_LAW, Step, TaxComputation, pick, require_won
from slm_datagen.taxlaw.income_tables import (
    CAPITAL_GAINS_BASIC_DEDUCTION,
    LONG_TERM_TABLE_1,
    LONG_TERM_TABLE_2,
    ONE_HOUSE_EXEMPT_PRICE,
    LongTermHoldingTable,
)
from slm_datagen.taxlaw.inputs import AssetKind, HoldingPeriod
from slm_datagen.taxlaw.penalties import ON_TIME, Lateness


def holding_period_of(years: int) -> HoldingPeriod:
    if years < 1:
        return HoldingPeriod.UNDER_1Y
    return HoldingPeriod.FROM_1Y_TO_2Y if years < 2 else HoldingPeriod.TWO_YEARS_OR_MORE


def _long_term_pct(
    kind: AssetKind, holding_years: int, residence_years: int, one_house: bool, year: int | date | str
) -> tuple[int, str]:
    """(percent, which table) of 제95조②; 분양권 has none, and none below 3 years' holding."""
    if kind is AssetKind.PRESALE_RIGHT or holding_years < 3:
        return 0, ""
    if one_house and residence_years >= 2:
        holding, residence = pick(LONG_TERM_TABLE_2, year)
        return holding.pct(holding_years) + residence.pct(residence_years), "표2"
    table: LongTermHoldingTable = pick(LONG_TERM_TABLE_1, year)
    return table.pct(holding_years), "표1"


def capital_gains_tax_from_sale(
    transfer_price_won: int,
    acquisition_price_won: int,
    year: int | date | str,
    *,
    expenses_won: int = 0,
    asset_kind: str | AssetKind = AssetKind.LAND_BUILDING,
    holding_years: int = 2,
    residence_years: int = 0,
    one_house_exempt: bool = False,
    basic_deduction_available: bool = True,
    filed_on_time: bool = True,
    lateness: Lateness = ON_TIME,
) -> TaxComputation:
    """양도소득세 from the sale price down (see the module docstring)."""
    for name, value in (("transfer_price_won", transfer_price_won), ("acquisition_price_won", acquisition_price_won)):
        require_won(name, value)
    require_won("expenses_won", expenses_won)
    for name, value in (("holding_years", holding_years), ("residence_years", residence_years)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"{name} must be a whole number of years ≥ 0, got {value!r}")
    kind = AssetKind(asset_kind)
    if one_house_exempt and kind is not AssetKind.HOUSING:
        raise ValueError("one_house_exempt applies to a 주택 (asset_kind housing)")
    gain = max(transfer_price_won - acquisition_price_won - expenses_won, 0)
    steps = [Step(key="gross_value", label="양도차익", won=gain, article=f"{INCOME_LAW} 제95조")]
    text = (
        f"양도가액 {format_won(transfer_price_won)}에서 취득가액과 필요경비를 빼면 양도차익은 {format_won(gain)}입니다."
    )
    if one_house_exempt:
        threshold = pick(ONE_HOUSE_EXEMPT_PRICE, year)
        if transfer_price_won <= threshold:
            gain = 0
            text += f" 양도가액이 {format_won(threshold)} 이하인 1세대1주택이므로 비과세입니다(제89조①3호)."
        else:
            gain = gain * (transfer_price_won - threshold) // transfer_price_won
            text += f" 1세대1주택 고가주택이므로 {format_won(threshold)} 초과분에 해당하는 양도차익 {format_won(gain)}만 과세합니다(제95조③)."
        steps.append(Step(key="deduction_item", label="과세대상 양도차익", won=gain, article=f"{INCOME_LAW} 제95조"))
    pct, table = _long_term_pct(kind, holding_years, residence_years, one_house_exempt, year)
    long_term = gain * pct // 100
    basic = min(pick(CAPITAL_GAINS_BASIC_DEDUCTION, year), gain - long_term) if basic_deduction_available else 0
    if long_term:
        steps.append(
            Step(key="deduction_item", label="장기보유특별공제", won=long_term, article=f"{INCOME_LAW} 제95조")
        )
        text += f" 장기보유특별공제 {table} {pct}% {format_won(long_term)}을 뺍니다(제95조②)."
    steps.append(Step(key="deduction_item", label="양도소득금액", won=gain - long_term, article=f"{INCOME_LAW} 제95조"))
    if basic:
        steps.append(Step(key="deduction_item", label="양도소득 기본공제", won=basic, article=f"{INCOME_LAW} 제103조"))
        text += f" 기본공제 {format_won(basic)}을 뺍니다(제103조)."
    steps.append(Step(key="deduction", label="공제 합계", won=long_term + basic, article=f"{INCOME_LAW} 제92조"))
    return capital_gains_tax(
        gain - long_term - basic,
        year,
        kind,
        holding_period_of(holding_years),
        filed_on_time,
        lateness=lateness,
        head_steps=steps,
        head_text=text,
        gross=max(transfer_price_won - acquisition_price_won - expenses_won, 0),
        deduction=long_term + basic,
        extra_inputs={
            "transfer_price_won": transfer_price_won,
            "acquisition_price_won": acquisition_price_won,
            "expenses_won": expenses_won,
            "holding_years": holding_years,
            "residence_years": residence_years,
            "one_house_exempt": one_house_exempt,
        },
    )
