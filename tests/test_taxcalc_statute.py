"""The calculator items of issue 11, each expected figure worked out by hand from the statute cited beside it.

억 = 10^8 and 만 = 10^4 won. 2024 rates unless stated: 상증법 제26조 (1억 10%, 5억 20%, 10억 30%, 30억 40%, 초과 50%),
신고세액공제 3% (제69조); 소득세법 제55조 (2023~: 1,400만 6%, 5,000만 15%, 8,800만 24%, 1.5억 35%, 3억 38%, ...).
"""

from __future__ import annotations

from datetime import date

import pytest

from slm_datagen.taxlaw.business_tables import CORPORATE_TAX_RATES
from slm_datagen.taxlaw.capital_gains_sale import capital_gains_tax_from_sale
from slm_datagen.taxlaw.computation import progressive_deductions
from slm_datagen.taxlaw.corporate import corporate_tax
from slm_datagen.taxlaw.gift import gift_tax
from slm_datagen.taxlaw.income import income_tax
from slm_datagen.taxlaw.inheritance import inheritance_tax_from_estate
from slm_datagen.taxlaw.inheritance_deductions import HeirFacts
from slm_datagen.taxlaw.penalties import Lateness
from slm_datagen.taxlaw.tables import LAW_KNOWN_THROUGH, UnsupportedCase
from slm_datagen.taxlaw.vat import simplified_vat, vat
from slm_datagen.taxlaw.verdict import check_calculation

억 = 100_000_000
만 = 10_000


def _step(calc, label):
    return next(s.won for s in calc.steps if s.label == label)


# --- 세대생략 할증 (상증법 제57조) ------------------------------------------------------------------------------------


def test_grandparent_gift_carries_the_30_percent_surcharge() -> None:
    # 3억, 조부모 → 성년 손자녀: 공제 5,000만 (제53조 직계존속), 과세표준 2.5억, 산출세액 1,000만 + 1.5억×20% = 4,000만,
    # 할증 30% 1,200만 (제57조①), 신고세액공제 3% of 5,200만 = 156만 (제69조: 할증 포함), 납부 5,044만
    calc = gift_tax(3 * 억, "조부모", year=2024)
    assert (calc.deduction, calc.taxable_base, calc.computed_tax) == (5_000 * 만, 25_000 * 만, 4_000 * 만)
    assert calc.surcharge == 1_200 * 만 and calc.filing_credit == 156 * 만 and calc.payable == 5_044 * 만
    assert _step(calc, "세대생략 할증") == 1_200 * 만
    assert "상속세 및 증여세법 제57조" in calc.articles
    # the same gift from a parent: no surcharge, 4,000만 − 120만
    assert gift_tax(3 * 억, "부모", year=2024).payable == 3_880 * 만


def test_minor_grandchild_over_20eok_pays_40_percent() -> None:
    # 25억 → 미성년 손자녀: 공제 2,000만, 과세표준 24억 8,000만; 산출세액 2.4억 + 14.8억×40% = 8억 3,200만;
    # 할증 40% (제57조②: 미성년자, 20억 초과) 3억 3,280만; 신고세액공제 3% of 11억 6,480만 = 3,494만 4,000
    calc = gift_tax(25 * 억, "grandparent", donee_is_minor=True, year=2024)
    assert calc.computed_tax == 832_000_000 and calc.surcharge == 332_800_000
    assert calc.filing_credit == 34_944_000 and calc.payable == 1_129_856_000
    # 15억 to a minor: 30% (not over 20억)
    small = gift_tax(15 * 억, "grandparent", donee_is_minor=True, year=2024)
    assert small.surcharge == small.computed_tax * 30 // 100
    # before 2016 the 40% did not exist
    assert gift_tax(25 * 억, "grandparent", donee_is_minor=True, year=2015).surcharge == (
        gift_tax(25 * 억, "grandparent", donee_is_minor=True, year=2015).computed_tax * 30 // 100
    )


def test_no_surcharge_when_the_parent_has_died() -> None:
    # 제57조① 단서: 증여자의 최근친 직계비속이 사망하여 그 직계비속이 증여받은 경우
    calc = gift_tax(3 * 억, "조부모", year=2024, donee_parent_deceased=True)
    assert calc.surcharge == 0 and calc.payable == 3_880 * 만


def test_40_percent_threshold_with_aggregation_is_unverified() -> None:
    # this gift 15억 (≤ 20억) but 과세가액 with 10억 of earlier gifts 25억: 제57조② reading not settled → unverified
    with pytest.raises(UnsupportedCase):
        gift_tax(15 * 억, "grandparent", donee_is_minor=True, year=2024, prior_gifts_won=10 * 억)


# --- direction of the gift (제53조) -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("relation", "minor", "deduction"),
    [
        ("배우자", False, 6 * 억),
        ("lineal_ascendant", False, 5_000 * 만),  # 부모 → 성년 자녀
        ("lineal_ascendant", True, 2_000 * 만),  # 부모 → 미성년 자녀
        ("lineal_descendant", False, 5_000 * 만),  # 아들이 아버지에게: 직계비속으로부터
        ("lineal_descendant", True, 5_000 * 만),  # the donee's minority does not matter for a child's gift
        ("other_relative", False, 1_000 * 만),
        ("unrelated", False, 0),
    ],
)
def test_gift_deduction_follows_the_direction(relation: str, minor: bool, deduction: int) -> None:
    assert gift_tax(10 * 억, relation, donee_is_minor=minor, year=2024).deduction == deduction


def test_child_to_parent_gift() -> None:
    # 아들이 아버지에게 1억: 공제 5,000만 (제53조 3호), 과세표준 5,000만, 산출세액 500만, 공제 15만, 납부 485만
    calc = gift_tax(1 * 억, "child_to_parent", year=2024)
    assert (calc.taxable_base, calc.computed_tax, calc.payable) == (5_000 * 만, 500 * 만, 485 * 만)


# --- 10-year aggregation (제47조②) and 기납부세액공제 (제58조) -----------------------------------------------------------


def test_prior_gifts_under_10_million_are_not_added_but_used_the_deduction() -> None:
    # earlier 900만 from the same parent: not added (합친 금액 < 1,000만), but it used 900만 of the 5,000만 allowance;
    # this 1억: 과세표준 1억 − 4,100만 = 5,900만, all in the 1억 이하 10% band → 590만
    calc = gift_tax(1 * 억, "부모", year=2024, prior_gifts_won=900 * 만)
    assert calc.gross_value == 1 * 억 and calc.deduction == 4_100 * 만
    assert calc.computed_tax == 590 * 만 and calc.prepaid_tax_credit == 0


def test_prior_gifts_of_10_million_or_more_are_added_and_credited() -> None:
    # earlier 1억 + now 1억 from a parent: 과세가액 2억, 공제 5,000만, 과세표준 1.5억, 산출세액 1,000만 + 5,000만×20%
    # = 2,000만; 기납부세액 (recomputed) on 1억 − 5,000만 = 500만, 한도 2,000만 × 5,000만/1.5억 = 666만 → 500만;
    # 신고세액공제 3% of 1,500만 = 45만; 납부 1,455만
    calc = gift_tax(1 * 억, "부모", year=2024, prior_gifts_won=1 * 억)
    assert (calc.gross_value, calc.taxable_base, calc.computed_tax) == (2 * 억, 15_000 * 만, 2_000 * 만)
    assert calc.prepaid_tax_credit == 500 * 만 and calc.filing_credit == 45 * 만 and calc.payable == 1_455 * 만
    # exactly 1,000만 counts ("1천만원 이상")
    assert gift_tax(1 * 억, "부모", year=2024, prior_gifts_won=1_000 * 만).gross_value == 1 * 억 + 1_000 * 만
    # a stated prior tax replaces the recomputation (still within the 한도)
    assert gift_tax(
        1 * 억, "부모", year=2024, prior_gifts_won=1 * 억, prior_gift_tax_won=485 * 만
    ).prepaid_tax_credit == (485 * 만)


def test_deduction_used_by_other_donors_of_the_group() -> None:
    # grandparents' earlier gifts used 3,000만 of the 직계존속 allowance: a parent's 1억 now gets 2,000만; 과세표준 8,000만
    calc = gift_tax(1 * 억, "부모", year=2024, deduction_used_won=3_000 * 만)
    assert calc.deduction == 2_000 * 만 and calc.computed_tax == 800 * 만


# --- late filing (국세기본법 제47조의2, 제47조의4, 제48조②) -------------------------------------------------------------


def test_late_gift_return() -> None:
    # 1억 from a parent on 2024-03-15: 법정신고기한 2024-06-30 (제68조: 달의 말일부터 3개월); tax 500만, no 신고세액공제.
    # 기한후신고 30 days late (by 2024-07-30, within 1 month): 무신고가산세 20% 100만 less 50% = 50만;
    # 납부지연가산세 500만 × 30일 × 0.022% = 33,000원
    late = Lateness(filed_on_time=False, days_late=30, late_return_filed=True)
    calc = gift_tax(1 * 억, "부모", year="2024-03-15", lateness=late)
    assert calc.filing_credit == 0 and calc.penalty_tax == 533_000 and calc.payable == 5_533_000
    assert _step(calc, "납부지연가산세") == 33_000
    # no 기한후신고 (assessed): the full 20%; 부정행위: 40%
    assessed = gift_tax(1 * 억, "부모", year="2024-03-15", lateness=Lateness(filed_on_time=False, days_late=30))
    assert assessed.payable == 5_000_000 + 1_000_000 + 33_000
    fraud = Lateness(filed_on_time=False, days_late=30, fraudulent=True)
    assert gift_tax(1 * 억, "부모", year="2024-03-15", lateness=fraud).payable == 5_000_000 + 2_000_000 + 33_000


def test_late_payment_rate_before_2022_02_15_and_ambiguous_years() -> None:
    # 2021-01-10 gift, deadline 2021-04-30, filed on time (신고세액공제 15만) but paid 10 days late: 미납세액 485만 ×
    # 10 × 0.025%/day = 12,125원
    calc = gift_tax(1 * 억, "부모", year="2021-01-10", lateness=Lateness(days_late=10))
    assert calc.penalty_tax == 12_125 and calc.filing_credit == 15 * 만
    # only the year 2021: the deadline may be 2021-04-30 or 2022-03-31, on either side of the rate change
    with pytest.raises(UnsupportedCase):
        gift_tax(1 * 억, "부모", year=2021, lateness=Lateness(days_late=100))
    # before the first tabulated daily rate (2019-02-12)
    with pytest.raises(UnsupportedCase):
        gift_tax(1 * 억, "부모", year="2018-06-01", lateness=Lateness(days_late=10))


# --- 상속세 from the estate (제18조~제22조) ----------------------------------------------------------------------------


def test_estate_with_spouse_and_two_children() -> None:
    # 과세가액 20억; 기초 2억 + 자녀 2×5,000만 = 3억 < 일괄 5억 → 5억 (제21조); 배우자 실제 3억 → 최소 5억 (제19조④);
    # 과세표준 10억, 산출세액 2.4억, 신고세액공제 720만, 납부 2억 3,280만
    heirs = HeirFacts(children=2, spouse_survives=True, spouse_inherited_won=3 * 억)
    calc = inheritance_tax_from_estate(20 * 억, 2024, heirs)
    assert calc.deduction == 10 * 억 and calc.taxable_base == 10 * 억
    assert calc.computed_tax == 24_000 * 만 and calc.payable == 23_280 * 만
    assert _step(calc, "일괄공제") == 5 * 억 and _step(calc, "배우자 상속공제") == 5 * 억


def test_spouse_deduction_is_capped_by_the_legal_share() -> None:
    # 과세가액 21억; 자녀 3 (one minor, 10 years to 19): 기초 2억 + 1.5억 + 1억 = 4.5억 < 5억 → 일괄 5억;
    # 배우자 실제 12억, 법정상속분 9억 → 9억; 과세표준 7억 → 1,000만 + 8,000만 + 2억×30% = 1.5억; 납부 1억 4,550만
    heirs = HeirFacts(
        children=3, minor_years=10, spouse_survives=True, spouse_inherited_won=12 * 억, spouse_legal_share_won=9 * 억
    )
    calc = inheritance_tax_from_estate(21 * 억, 2024, heirs)
    assert calc.taxable_base == 7 * 억 and calc.computed_tax == 15_000 * 만 and calc.payable == 14_550 * 만
    with pytest.raises(ValueError):  # above 5억 the legal share is needed
        inheritance_tax_from_estate(21 * 억, 2024, HeirFacts(spouse_survives=True, spouse_inherited_won=12 * 억))


def test_basic_plus_personal_when_larger_than_the_lump_sum() -> None:
    # 자녀 6 + 연로자 2: 기초 2억 + 3억 + 1억 = 6억 > 5억 → 6억; 과세가액 10억 → 과세표준 4억 → 7,000만; 납부 6,790만
    calc = inheritance_tax_from_estate(10 * 억, 2024, HeirFacts(children=6, seniors=2))
    assert calc.deduction == 6 * 억 and calc.computed_tax == 7_000 * 만 and calc.payable == 6_790 * 만
    # no return at all: 일괄공제 5억 only (제21조① 단서); 과세표준 5억 → 9,000만; 무신고가산세 20% 1,800만
    unfiled = inheritance_tax_from_estate(10 * 억, 2024, HeirFacts(children=6, seniors=2), filed_on_time=False)
    assert unfiled.deduction == 5 * 억 and unfiled.payable == 9_000 * 만 + 1_800 * 만


def test_spouse_sole_heir_and_the_limit_of_the_estate() -> None:
    # 배우자 단독상속: no 일괄공제 (제21조②): 기초 2억 + 배우자 10억 = 12억, capped at the 과세가액 10억 (제24조)
    heirs = HeirFacts(
        spouse_survives=True, spouse_inherited_won=10 * 억, spouse_legal_share_won=10 * 억, spouse_sole_heir=True
    )
    calc = inheritance_tax_from_estate(10 * 억, 2024, heirs)
    assert _step(calc, "기초공제") == 2 * 억 and "일괄공제" not in [s.label for s in calc.steps]
    assert calc.deduction == 10 * 억 and calc.payable == 0


@pytest.mark.parametrize(
    ("net", "deduction"), [(1_500 * 만, 1_500 * 만), (5_000 * 만, 2_000 * 만), (3 * 억, 6_000 * 만), (15 * 억, 2 * 억)]
)
def test_financial_asset_deduction(net: int, deduction: int) -> None:
    calc = inheritance_tax_from_estate(30 * 억, 2024, HeirFacts(children=1, net_financial_assets_won=net))
    assert _step(calc, "금융재산 상속공제") == deduction  # 제22조①


def test_inheritance_generation_skipping_surcharge() -> None:
    # 과세가액 20억, 자녀 1, 손자녀(성년)가 5억: 일괄 5억 → 과세표준 15억 → 2.4억 + 5억×40% = 4.4억;
    # 할증 4.4억 × 5/20 × 30% = 3,300만 (제27조); 신고세액공제 3% of 4.73억 = 1,419만; 납부 4억 5,881만
    calc = inheritance_tax_from_estate(20 * 억, 2024, HeirFacts(children=1), skip_generation_share_won=5 * 억)
    assert calc.computed_tax == 44_000 * 만 and calc.surcharge == 3_300 * 만 and calc.payable == 45_881 * 만


# --- 종합소득세 with 지방소득세, and late filing -------------------------------------------------------------------------


def test_income_tax_with_local_income_tax() -> None:
    # 2023 귀속 과세표준 5,000만: 84만 + 3,600만×15% = 624만; 지방소득세 10% 62만 4,000 (지방세법 제92조)
    calc = income_tax(5_000 * 만, 2023)
    assert calc.computed_tax == 624 * 만 and calc.local_income_tax == 624_000
    assert calc.payable_with_local_tax == 6_864_000 and _step(calc, "지방소득세") == 624_000


def test_late_income_tax_return() -> None:
    # 2023 귀속, 기한 2024-05-31 (제70조), 기한후신고 10일: 무신고 20% 124만 8,000 × 50% = 62만 4,000;
    # 납부지연 624만 × 10 × 0.022% = 13,728원
    calc = income_tax(5_000 * 만, 2023, lateness=Lateness(filed_on_time=False, days_late=10, late_return_filed=True))
    assert calc.penalty_tax == 624_000 + 13_728 and calc.payable == 6_877_728


def test_payment_cut_to_10_won_is_accepted() -> None:
    # 과세표준 1,234,567원 × 6% = 74,074.02 → 74,074원; paid as 74,070원 (국고금관리법 제47조) is right, 74,060 is not
    payload = {
        "kind": "income_tax",
        "year": 2024,
        "inputs": {"taxable_income_won": 1_234_567},
        "result_field": "payable",
    }
    assert check_calculation({**payload, "result_won": 74_074}).status == "ok"
    assert check_calculation({**payload, "result_won": 74_070}).status == "ok"
    assert check_calculation({**payload, "result_won": 74_060}).status == "mismatch"
    assert check_calculation({**payload, "result_won": 74_070, "result_field": "computed_tax"}).status == "mismatch"


# --- 양도소득세 from the sale (소득세법 제95조, 제89조, 제103조) -------------------------------------------------------------


def test_high_value_one_house_sale() -> None:
    # 15억 양도, 5억 취득, 10년 보유·거주, 1세대1주택 (2024): 양도차익 10억 × (15억 − 12억)/15억 = 2억 (제95조③);
    # 장기보유특별공제 표2 40% + 40% = 1.6억; 기본공제 250만; 과세표준 3,750만 → 84만 + 2,350만×15% = 436만 5,000
    calc = capital_gains_tax_from_sale(
        15 * 억, 5 * 억, "2024-03-10", asset_kind="housing", holding_years=10, residence_years=10, one_house_exempt=True
    )
    assert calc.gross_value == 10 * 억 and _step(calc, "과세대상 양도차익") == 2 * 억
    assert _step(calc, "장기보유특별공제") == 16_000 * 만 and calc.taxable_base == 3_750 * 만
    assert calc.computed_tax == 4_365_000 and calc.local_income_tax == 436_500


def test_one_house_threshold_moved_on_2021_12_08() -> None:
    # 11억 양도: 2024 비과세 (≤ 12억); on 2021-12-07 the threshold was 9억: 양도차익 6억 × 2억/11억 = 109,090,909원
    sale = dict(asset_kind="housing", holding_years=10, residence_years=10, one_house_exempt=True)
    assert capital_gains_tax_from_sale(11 * 억, 5 * 억, "2024-05-01", **sale).payable == 0
    before = capital_gains_tax_from_sale(11 * 억, 5 * 억, "2021-12-07", **sale)
    taxable_gain = 600_000_000 * 200_000_000 // 1_100_000_000
    assert _step(before, "과세대상 양도차익") == taxable_gain == 109_090_909
    base = taxable_gain - taxable_gain * 80 // 100 - 2_500_000
    assert before.taxable_base == base
    assert before.computed_tax == (1_200 * 만 * 6 + (base - 1_200 * 만) * 15) // 100  # 2021 table: 1,200만 6%
    with pytest.raises(UnsupportedCase):  # the year alone is ambiguous in 2021
        capital_gains_tax_from_sale(11 * 억, 5 * 억, 2021, **sale)


def test_land_sale_with_table_1() -> None:
    # 토지 5억 양도, 2억 취득, 필요경비 1,000만, 10년 보유: 양도차익 2.9억; 표1 6% + 7년×2% = 20% → 5,800만;
    # 기본공제 250만 → 과세표준 2억 2,950만; 2024 38% 구간: 2억 2,950만 × 38% − 1,994만 = 6,727만
    calc = capital_gains_tax_from_sale(5 * 억, 2 * 억, 2024, expenses_won=1_000 * 만, holding_years=10)
    assert _step(calc, "장기보유특별공제") == 5_800 * 만 and calc.taxable_base == 229_500_000
    assert calc.computed_tax == 67_270_000


def test_short_held_house() -> None:
    # 주택 1년 미만: 양도차익 1억, 장기보유특별공제 없음, 기본공제 250만 → 9,750만 × 70% (제104조①3호) = 6,825만
    calc = capital_gains_tax_from_sale(3 * 억, 2 * 억, 2024, asset_kind="housing", holding_years=0)
    assert calc.computed_tax == 6_825 * 만


# --- 법인세 (법인세법 제55조) and 부가가치세 ------------------------------------------------------------------------------


def test_corporate_tax_by_business_year() -> None:
    assert corporate_tax(5 * 억, 2022).computed_tax == 2_000 * 만 + 3 * 억 * 20 // 100  # 8,000만
    assert corporate_tax(5 * 억, 2023).computed_tax == 1_800 * 만 + 3 * 억 * 19 // 100  # 7,500만
    assert corporate_tax(300 * 억, 2024).computed_tax == 300 * 억 * 21 // 100 - 42_000 * 만  # 58.8억
    for _, schedule in CORPORATE_TAX_RATES.versions:  # 누진공제 as published: 0, 2,000만, 4.2억, 94.2억
        assert progressive_deductions(schedule) == list(schedule.published_progressive_deductions)
    with pytest.raises(UnsupportedCase):
        corporate_tax(5 * 억, 2017)


def test_general_vat() -> None:
    # 매출 1억, 매입 6,000만 (공급가액): 1,000만 − 600만 = 400만 (제37조); the reverse is a 환급 of 400만
    assert vat(1 * 억, 6_000 * 만, 2024).payable == 400 * 만
    assert vat(6_000 * 만, 1 * 억, 2024).payable == -400 * 만


def test_simplified_vat() -> None:
    # 소매업 공급대가 8,000만 × 15% × 10% = 120만; 매입 공급대가 3,000만 × 0.5% = 15만 → 105만 (제63조)
    assert simplified_vat(8_000 * 만, "retail_food", 2024, 3_000 * 만).payable == 105 * 만
    # 부동산임대업 40%: 1억 × 40% × 10% = 400만
    assert simplified_vat(1 * 억, "finance_professional_real_estate", 2024).payable == 400 * 만
    # the credit never exceeds the tax (제63조⑤)
    assert simplified_vat(1 * 억, "retail_food", 2024, 10 * 억).payable == 0
    # under 4,800만: no 납부의무 (제69조①)
    assert simplified_vat(4_000 * 만, "retail_food", 2024).payable == 0
    with pytest.raises(UnsupportedCase):
        simplified_vat(8_000 * 만, "retail_food", "2021-06-30")
    with pytest.raises(UnsupportedCase):  # 2021 changed mid-year
        simplified_vat(8_000 * 만, "retail_food", 2021)


# --- dates ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "inputs"),
    [
        ("gift_tax", {"amount_won": 3 * 억, "relationship": "grandparent"}),
        ("income_tax", {"taxable_income_won": 5_000 * 만}),
        ("corporate_tax", {"taxable_base_won": 5 * 억}),
        ("vat", {"sales_won": 1 * 억, "purchases_won": 0}),
        ("inheritance_tax_estate", {"taxable_estate_won": 20 * 억, "children": 2}),
    ],
)
def test_dates_after_the_known_law_are_unverified(kind: str, inputs: dict) -> None:
    after = date(LAW_KNOWN_THROUGH.year + 1, 1, 1).isoformat()
    verdict = check_calculation(
        {"kind": kind, "year": after, "inputs": inputs, "result_won": 1, "result_field": "payable"}
    )
    assert verdict.status == "unsupported" and "unverified" in verdict.reason


def test_new_kinds_through_check_calculation() -> None:
    def check(kind, inputs, won, field="payable", year=2024):
        return check_calculation(
            {"kind": kind, "year": year, "inputs": inputs, "result_won": won, "result_field": field}
        ).status

    assert check("gift_tax", {"amount_won": "3억원", "relationship": "조부모"}, "5,044만원") == "ok"
    assert check("gift_tax", {"amount_won": "3억원", "relationship": "조부모"}, "3,880만원") == "mismatch"  # no 할증
    assert check("gift_tax", {"amount_won": "3억원", "relationship": "조부모"}, "1,200만원", "surcharge") == "ok"
    estate = {"taxable_estate_won": "20억", "children": 2, "spouse_survives": True, "spouse_inherited_won": "3억"}
    assert check("inheritance_tax_estate", estate, "2억 3,280만원") == "ok"
    assert (
        check("income_tax", {"taxable_income_won": "5,000만원"}, "686만 4,000원", "payable_with_local_tax", 2023)
        == "ok"
    )
    assert check("income_tax", {"taxable_income_won": "5,000만원"}, 750 * 만, "computed_tax", 2023) == "mismatch"
    late = {"taxable_income_won": "5,000만원", "filed_on_time": False, "days_late": 10, "late_return_filed": True}
    assert check("income_tax", late, 6_877_728, year=2023) == "ok"
    sale = {"transfer_price_won": "5억", "acquisition_price_won": "2억", "expenses_won": "1,000만", "holding_years": 10}
    assert check("capital_gains_sale", sale, 67_270_000, "computed_tax") == "ok"
    assert check("corporate_tax", {"taxable_base_won": "5억"}, "7,500만원", "computed_tax") == "ok"
    assert (
        check(
            "simplified_vat",
            {"supply_with_vat_won": "8,000만원", "sector": "retail_food", "purchases_with_vat_won": "3,000만원"},
            "105만원",
        )
        == "ok"
    )
    assert check("simplified_vat", {"supply_with_vat_won": "8,000만원", "sector": "소매업"}, 0) == "bad_input"
    assert check("capital_gains_sale", {**sale, "holding_years": "10년"}, 0) == "bad_input"


def test_a_calculation_payload_can_carry_every_kind_the_calculator_computes():
    from typing import get_args

    from slm_datagen.taxlaw.kinds import REQUIRED_INPUTS
    from slm_forest.records import Calculation

    assert set(get_args(Calculation.model_fields["kind"].annotation)) == set(REQUIRED_INPUTS)
