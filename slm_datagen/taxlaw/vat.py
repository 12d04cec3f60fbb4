"""부가가치세 납부세액 for one 과세기간 (부가가치세법).

* 일반과세자 (`vat`): 매출세액 (공급가액 × 10%, 제30조) − 매입세액 (공제되는 세금계산서 등의 매입세액, 제38조) =
  납부세액 (제37조②); a negative figure is a 환급세액.
* 간이과세자 (`simplified_vat`, 2021.7.1 이후): 공급대가 × 업종별 부가가치율 (시행령 제111조②) × 10% (제63조②), less
  0.5% of the 매입 공급대가 on 세금계산서 등 (제63조③), the credit never above the 납부세액 (제63조⑤); no 납부의무 when
  the year's 공급대가 is under 4,800만원 (제69조①).

Not modelled: 신용카드매출전표 등 발행세액공제 (제46조), 의제매입세액, 대손세액, 예정고지, 가산세, a 과세기간 shorter
than a year for the 간이과세 threshold (제69조① 환산).
"""

from __future__ import annotations

from datetime import date

from slm_datagen.taxlaw.amounts import format_won
from slm_datagen.taxlaw.business_tables import SIMPLIFIED_VAT, VAT_RATE_PCT, SimplifiedVatTable
from slm_datagen.taxlaw.computation import Step, TaxComputation, as_of_field, pick, require_won, year_of
from slm_datagen.taxlaw.inputs import VatSector

VAT_LAW = "부가가치세법"


def _result(kind, year, inputs, gross, deduction, computed, payable, steps, articles, text) -> TaxComputation:
    return TaxComputation(
        kind=kind,
        as_of=as_of_field(year),
        inputs={**inputs, "year": year_of(year)},
        deduction=deduction,
        taxable_base=inputs.get("sales_won", inputs.get("supply_with_vat_won", 0)),
        computed_tax=computed,
        prepaid_tax_credit=0,
        filing_credit=0,
        payable=payable,
        brackets=[],
        articles=articles,
        explanation=text,
        gross_value=gross,
        payable_with_local_tax=payable,
        steps=steps,
    )


def vat(sales_won: int, purchases_won: int, year: int | date | str) -> TaxComputation:
    """일반과세자: sales/purchases are 공급가액 (VAT excluded); purchases only those whose 매입세액 is 공제 대상."""
    require_won("sales_won", sales_won)
    require_won("purchases_won", purchases_won)
    pct = pick(VAT_RATE_PCT, year)
    output_tax, input_tax = sales_won * pct // 100, purchases_won * pct // 100
    payable = output_tax - input_tax
    steps = [
        Step(key="taxable_base", label="과세표준(공급가액)", won=sales_won, article=f"{VAT_LAW} 제29조"),
        Step(key="gross_value", label="매출세액", won=output_tax, article=f"{VAT_LAW} 제30조"),
        Step(key="deduction", label="매입세액", won=input_tax, article=f"{VAT_LAW} 제38조"),
        Step(key="payable", label="납부세액" if payable >= 0 else "환급세액", won=payable, article=f"{VAT_LAW} 제37조"),
    ]
    text = (
        f"매출세액 {format_won(output_tax)}(공급가액 {format_won(sales_won)} × {pct}%)에서 매입세액 "
        f"{format_won(input_tax)}을 빼면 "
        + (f"납부세액은 {format_won(payable)}입니다." if payable >= 0 else f"환급세액은 {format_won(-payable)}입니다.")
    )
    inputs = {"sales_won": sales_won, "purchases_won": purchases_won}
    articles = [f"{VAT_LAW} 제30조", f"{VAT_LAW} 제37조", f"{VAT_LAW} 제38조"]
    return _result("vat", year, inputs, output_tax, input_tax, output_tax, payable, steps, articles, text)


def simplified_vat(
    supply_with_vat_won: int, sector: str | VatSector, year: int | date | str, purchases_with_vat_won: int = 0
) -> TaxComputation:
    """간이과세자 for a year's 공급대가 (VAT included) in one 업종; purchases = 세금계산서 등을 받은 매입 공급대가."""
    require_won("supply_with_vat_won", supply_with_vat_won)
    require_won("purchases_with_vat_won", purchases_with_vat_won)
    table: SimplifiedVatTable = pick(SIMPLIFIED_VAT, year)
    sector = VatSector(sector)
    value_added = table.value_added_pct[sector]
    computed = supply_with_vat_won * value_added * pick(VAT_RATE_PCT, year) // 10_000
    credit = min(purchases_with_vat_won * table.purchase_credit_permille // 1000, computed)
    exempt = supply_with_vat_won < table.exemption_below
    payable = 0 if exempt else computed - credit
    steps = [
        Step(key="taxable_base", label="공급대가", won=supply_with_vat_won, article=f"{VAT_LAW} 제63조"),
        Step(key="computed_tax", label="납부세액", won=computed, article=f"{VAT_LAW} 제63조"),
        Step(key="deduction", label="매입세금계산서 등 수취세액공제", won=credit, article=f"{VAT_LAW} 제63조"),
        Step(
            key="payable",
            label="차가감 납부할 세액",
            won=payable,
            article=f"{VAT_LAW} 제69조" if exempt else f"{VAT_LAW} 제63조",
        ),
    ]
    text = (
        f"공급대가 {format_won(supply_with_vat_won)} × 부가가치율 {value_added}% × 10% = 납부세액 {format_won(computed)}, "
        f"매입 공급대가의 0.5% 공제 {format_won(credit)}를 빼면 {format_won(computed - credit)}입니다."
    )
    if exempt:
        text += f" 공급대가가 {format_won(table.exemption_below)} 미만이므로 납부의무가 면제됩니다(제69조①)."
    inputs = {
        "supply_with_vat_won": supply_with_vat_won,
        "sector": sector.value,
        "purchases_with_vat_won": purchases_with_vat_won,
    }
    articles = [f"{VAT_LAW} 제63조"] + ([f"{VAT_LAW} 제69조"] if exempt else [])
    return _result(
        "simplified_vat", year, inputs, supply_with_vat_won, credit, computed, payable, steps, articles, text
    )
