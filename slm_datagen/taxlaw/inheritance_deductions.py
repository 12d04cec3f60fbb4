"""상속공제 (상속세 및 증여세법 제18조~제22조, 제24조) from the facts about the heirs.

* 기초공제 2억 (제18조) + 그 밖의 인적공제 (제20조: 자녀 1인당 5,000만; 미성년자 1,000만 × 19세까지의 연수; 연로자
  65세 이상 1인당 5,000만; 장애인 1,000만 × 기대여명의 연수 — 1년 미만은 1년, the caller gives the years), or
  일괄공제 5억 (제21조①) — the larger, since the heirs may choose. Only 기초+인적 when the spouse inherits alone
  (제21조②); only 일괄공제 when no return was filed at all (제21조① 단서; a 기한후신고 is a return).
* 배우자 상속공제 (제19조) when a spouse survives: the amount actually inherited, at least 5억, at most the smaller of
  the spouse's 법정상속분 상당액 and 30억 (제19조①④). Above 5억 the legal-share amount must be given.
* 금융재산 상속공제 (제22조): on the 순금융재산, all of it up to 2,000만, 2,000만 up to 1억, 20% above (한도 2억).
* 제24조: the total never exceeds the 과세가액 (the reduction for bequests to non-heirs and added gifts is not modelled).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import date

from slm_datagen.taxlaw.computation import Step, gift_article, pick, require_won
from slm_datagen.taxlaw.tables import (
    FINANCIAL_ASSET_DEDUCTION,
    INHERITANCE_DEDUCTIONS,
    FinancialAssetDeduction,
    InheritanceDeductionTable,
)


@dataclass(frozen=True)
class HeirFacts:
    """What the 상속공제 depend on. Counts and years are the caller's (제20조: 1년 미만은 1년)."""

    children: int = 0  # 자녀 수 (제20조①1호)
    minor_years: int = 0  # 미성년자 (배우자 제외) 각자의 19세까지 연수의 합 (제20조①2호)
    seniors: int = 0  # 65세 이상 (배우자 제외) 인원 (제20조①3호)
    disabled_years: int = 0  # 장애인 각자의 기대여명 연수의 합 (제20조①4호)
    spouse_survives: bool = False
    spouse_inherited_won: int = 0  # 배우자가 실제 상속받은 금액 (제19조①)
    spouse_legal_share_won: int | None = None  # 배우자 법정상속분 상당액 (needed when the actual amount exceeds 5억)
    spouse_sole_heir: bool = False  # 배우자 단독상속 (제21조②)
    net_financial_assets_won: int = 0  # 순금융재산 (제22조)

    def as_inputs(self) -> dict:
        return {k: v for k, v in asdict(self).items() if v not in (None, 0, False)}


def _personal(facts: HeirFacts, table: InheritanceDeductionTable) -> int:
    for name in ("children", "minor_years", "seniors", "disabled_years"):
        value = getattr(facts, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"{name} must be a whole number ≥ 0, got {value!r}")
    return (
        facts.children * table.per_child
        + facts.minor_years * table.minor_per_year
        + facts.seniors * table.senior
        + facts.disabled_years * table.disabled_per_year
    )


def _spouse(facts: HeirFacts, table: InheritanceDeductionTable) -> int:
    if not facts.spouse_survives:
        if facts.spouse_inherited_won or facts.spouse_sole_heir:
            raise ValueError("spouse inputs given but spouse_survives is false")
        return 0
    actual = require_won("spouse_inherited_won", facts.spouse_inherited_won)
    if actual <= table.spouse_minimum:
        return table.spouse_minimum
    if facts.spouse_legal_share_won is None:
        raise ValueError("spouse_legal_share_won (법정상속분 상당액) is needed when the spouse inherits more than 5억")
    cap = min(require_won("spouse_legal_share_won", facts.spouse_legal_share_won), table.spouse_maximum)
    return max(min(actual, cap), table.spouse_minimum)


def inheritance_deductions(
    taxable_estate: int, facts: HeirFacts, year: int | date | str | None, return_filed: bool
) -> tuple[int, list[Step]]:
    """(total 상속공제, one step per item and the total)."""
    table: InheritanceDeductionTable = pick(INHERITANCE_DEDUCTIONS, year)
    personal = _personal(facts, table)
    items: list[tuple[str, int, str]] = []
    if facts.spouse_sole_heir:
        items += [("기초공제", table.basic, "제18조"), ("그 밖의 인적공제", personal, "제20조")]
    elif not return_filed or table.lump_sum >= table.basic + personal:
        items.append(("일괄공제", table.lump_sum, "제21조"))
    else:
        items += [("기초공제", table.basic, "제18조"), ("그 밖의 인적공제", personal, "제20조")]
    spouse = _spouse(facts, table)
    if spouse:
        items.append(("배우자 상속공제", spouse, "제19조"))
    if facts.net_financial_assets_won:
        rule: FinancialAssetDeduction = pick(FINANCIAL_ASSET_DEDUCTION, year)
        financial = rule.amount(require_won("net_financial_assets_won", facts.net_financial_assets_won))
        items.append(("금융재산 상속공제", financial, "제22조"))
    steps = [
        Step(key="deduction_item", label=label, won=won, article=gift_article(a)) for label, won, a in items if won
    ]
    total = min(sum(won for _, won, _ in items), taxable_estate)  # 제24조 공제 적용의 한도
    steps.append(Step(key="deduction", label="상속공제 합계", won=total, article=gift_article("제24조")))
    return total, steps
