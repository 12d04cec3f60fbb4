"""The tax calculator and the checks built on it.

Expected figures are written out by hand (bracket by bracket) rather than taken from the module, and the 누진공제
(progressive deduction) constants below are the published quick-table values, so a wrong table fails here.
"""

from __future__ import annotations

import random
from datetime import date

import pytest

from slm_datagen.taxlaw.answer_amounts import check_answer_amounts, labelled_amounts
from slm_datagen.taxlaw.capital_gains import capital_gains_tax
from slm_datagen.taxlaw.computation import apply_schedule, progressive_deductions
from slm_datagen.taxlaw.gift import gift_tax
from slm_datagen.taxlaw.income import income_tax
from slm_datagen.taxlaw.income_tables import INCOME_TAX_RATES
from slm_datagen.taxlaw.inheritance import inheritance_tax
from slm_datagen.taxlaw.inputs import AssetKind, DonorRelation, HoldingPeriod, holding_period_between
from slm_datagen.taxlaw.tables import FILING_CREDIT_PCT, INHERITANCE_GIFT_RATES, RateSchedule, UnsupportedCase
from slm_datagen.taxlaw.verdict import check_calculation

억 = 100_000_000
만 = 10_000

# Published 누진공제 (NTS quick tables), one per band.
PUBLISHED_DEDUCTIONS = {
    ("inheritance_gift", date(2000, 1, 1)): [0, 1_000 * 만, 6_000 * 만, 1 * 억 + 6_000 * 만, 4 * 억 + 6_000 * 만],
    ("income", date(2018, 1, 1)): [0, 108 * 만, 522 * 만, 1_490 * 만, 1_940 * 만, 2_540 * 만, 3_540 * 만],
    ("income", date(2021, 1, 1)): [0, 108 * 만, 522 * 만, 1_490 * 만, 1_940 * 만, 2_540 * 만, 3_540 * 만, 6_540 * 만],
    ("income", date(2023, 1, 1)): [0, 126 * 만, 576 * 만, 1_544 * 만, 1_994 * 만, 2_594 * 만, 3_594 * 만, 6_594 * 만],
}


def _schedules() -> list[tuple[str, RateSchedule]]:
    out = [("inheritance_gift", s) for _, s in INHERITANCE_GIFT_RATES.versions]
    out += [("income", s) for _, s in INCOME_TAX_RATES.versions]
    return out


# --- the seed project's wrong sample -----------------------------------------------------------------------------


def test_seed_sample_gift_20eok_parent_to_adult_child() -> None:
    calc = gift_tax(20 * 억, "직계존속", donee_is_minor=False, year=2024)
    assert calc.deduction == 5_000 * 만
    assert calc.taxable_base == 19 * 억 + 5_000 * 만
    assert calc.computed_tax == 6 * 억 + 2_000 * 만
    # 1천만 + 8천만 + 1.5억 + 3.8억 = 6.2억
    assert [line.tax for line in calc.brackets] == [1_000 * 만, 8_000 * 만, 1 * 억 + 5_000 * 만, 3 * 억 + 8_000 * 만]
    assert [line.rate_pct for line in calc.brackets] == [10, 20, 30, 40]
    assert calc.brackets[-1].lower == 10 * 억 and calc.brackets[-1].upper == 30 * 억
    assert calc.filing_credit == 1_860 * 만  # 3% in 2024
    assert calc.payable == 6 * 억 + 140 * 만
    for article in ("제26조", "제53조", "제56조", "제69조"):
        assert f"상속세 및 증여세법 {article}" in calc.articles
    assert "6억 2,000만원" in calc.explanation and "19억 5,000만원" in calc.explanation


def test_seed_sample_claim_of_9000man_is_a_mismatch() -> None:
    verdict = check_calculation(
        {
            "kind": "gift_tax",
            "year": 2024,
            "inputs": {"amount_won": "20억원", "relationship": "부모"},
            "result_won": "9,000만원",
            "result_field": "computed_tax",
        }
    )
    assert verdict.status == "mismatch"
    assert verdict.expected_won == 620_000_000
    assert verdict.claimed_won == 90_000_000
    assert "불일치" in verdict.reason and "mismatch" in verdict.reason


def test_20eok_without_deduction_gives_6eok_4000man() -> None:
    assert gift_tax(20 * 억, DonorRelation.UNRELATED, year=2024).computed_tax == 6 * 억 + 4_000 * 만
    assert inheritance_tax(20 * 억, year=2024).computed_tax == 6 * 억 + 4_000 * 만


def test_filing_credit_is_3_percent_in_2024() -> None:
    calc = inheritance_tax(20 * 억, year=2024)
    assert calc.filing_credit == 640_000_000 * 3 // 100
    assert calc.payable == calc.computed_tax - calc.filing_credit
    late = inheritance_tax(20 * 억, year=2024, filed_on_time=False)
    # no 신고세액공제, and 무신고가산세 20% of 6억 4,000만원 = 1억 2,800만원 (국세기본법 제47조의2①)
    assert late.filing_credit == 0 and late.penalty_tax == 128_000_000
    assert late.payable == late.computed_tax + 128_000_000


@pytest.mark.parametrize(("year", "pct"), [(2010, 10), (2016, 10), (2017, 7), (2018, 5), (2019, 3), (2025, 3)])
def test_filing_credit_rate_history(year: int, pct: int) -> None:
    assert FILING_CREDIT_PCT.at(date(year, 1, 1)) == pct
    calc = inheritance_tax(10 * 억, year=year)
    assert calc.filing_credit == calc.computed_tax * pct // 100


# --- tables ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("family", "schedule"), _schedules(), ids=lambda v: getattr(v, "name", v))
def test_progressive_deductions_match_published_tables(family: str, schedule: RateSchedule) -> None:
    published = PUBLISHED_DEDUCTIONS[(family, schedule.effective_from)]
    assert progressive_deductions(schedule) == published
    assert list(schedule.published_progressive_deductions) == published


@pytest.mark.parametrize(("family", "schedule"), _schedules(), ids=lambda v: getattr(v, "name", v))
def test_bracket_sum_equals_rate_times_base_minus_deduction(family: str, schedule: RateSchedule) -> None:
    rng = random.Random(7)
    deductions = PUBLISHED_DEDUCTIONS[(family, schedule.effective_from)]
    uppers = [b.upper for b in schedule.brackets if b.upper is not None]
    bases = uppers + [u + 1 for u in uppers] + [u - 1 for u in uppers] + [rng.randrange(1, 50 * 억) for _ in range(300)]
    for base in bases:
        tax, lines = apply_schedule(base, schedule)
        band = next(i for i, b in enumerate(schedule.brackets) if b.upper is None or base <= b.upper)
        rate = schedule.brackets[band].rate_pct
        assert tax == (base * rate - deductions[band] * 100) // 100, base
        assert sum(line.tax for line in lines) == tax
        assert sum(line.amount_taxed for line in lines) == base


# --- 증여재산공제 history and options ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("year", "relation", "minor", "deduction"),
    [
        (2013, "직계존속", False, 3_000 * 만),
        (2013, "직계존속", True, 1_500 * 만),
        (2014, "직계존속", False, 5_000 * 만),
        (2014, "직계존속", True, 2_000 * 만),
        (2015, "직계비속", False, 3_000 * 만),
        (2015, "기타친족", False, 500 * 만),
        (2016, "직계비속", False, 5_000 * 만),
        (2016, "기타친족", False, 1_000 * 만),
        (2024, "배우자", False, 6 * 억),
        (2008, "배우자", False, 6 * 억),
        (2024, "타인", False, 0),
    ],
)
def test_gift_deduction_by_relation_and_year(year: int, relation: str, minor: bool, deduction: int) -> None:
    assert gift_tax(10 * 억, relation, donee_is_minor=minor, year=year).deduction == deduction


def test_gift_before_2008_is_unsupported() -> None:
    with pytest.raises(UnsupportedCase):
        gift_tax(10 * 억, "배우자", year=2007)


def test_marriage_birth_deduction_from_2024() -> None:
    calc = gift_tax(3 * 억, "직계존속", year=2024, marriage_birth_deduction_won=1 * 억)
    assert calc.deduction == 1 * 억 + 5_000 * 만
    assert calc.taxable_base == 1 * 억 + 5_000 * 만
    assert calc.computed_tax == 1_000 * 만 + 1_000 * 만  # 1억×10% + 5천만×20%
    assert "상속세 및 증여세법 제53조의2" in calc.articles
    with pytest.raises(UnsupportedCase):
        gift_tax(3 * 억, "직계존속", year=2023, marriage_birth_deduction_won=1 * 억)
    with pytest.raises(ValueError):
        gift_tax(3 * 억, "배우자", year=2024, marriage_birth_deduction_won=1 * 억)
    with pytest.raises(ValueError):
        gift_tax(3 * 억, "직계존속", year=2024, marriage_birth_deduction_won=2 * 억)


def test_gift_deduction_never_exceeds_the_gift() -> None:
    calc = gift_tax(3_000 * 만, "직계존속", year=2024)
    assert calc.deduction == 3_000 * 만 and calc.taxable_base == 0 and calc.payable == 0


def test_base_under_500k_is_not_taxed() -> None:
    assert gift_tax(5_049 * 만, "직계존속", year=2024).computed_tax == 0  # base 49만원
    assert gift_tax(5_050 * 만, "직계존속", year=2024).computed_tax == 5 * 만  # base 50만원 × 10%
    assert inheritance_tax(499_999, year=2024).computed_tax == 0


def test_prior_gifts_are_aggregated_and_credited() -> None:
    # 1억 then 3억 from the same parent within 10 years: base 4억 − 5천만 = 3.5억 -> 1천만 + 5천만 = 6천만;
    # the first gift alone: 5천만 base -> 500만 credited (제58조).
    calc = gift_tax(3 * 억, "직계존속", year=2024, prior_gifts_won=1 * 억)
    assert calc.taxable_base == 3 * 억 + 5_000 * 만
    assert calc.computed_tax == 6_000 * 만
    assert calc.prepaid_tax_credit == 500 * 만
    assert calc.filing_credit == (6_000 * 만 - 500 * 만) * 3 // 100
    assert calc.payable == 6_000 * 만 - 500 * 만 - calc.filing_credit
    assert "상속세 및 증여세법 제47조" in calc.articles and "상속세 및 증여세법 제58조" in calc.articles


def test_gift_rejects_unknown_relation_and_negative_amount() -> None:
    with pytest.raises(ValueError):
        gift_tax(1 * 억, "친구의 친구", year=2024)
    with pytest.raises(ValueError):
        gift_tax(-1, "직계존속", year=2024)


# --- income tax --------------------------------------------------------------------------------------------------

INCOME_2023 = [
    (14_000_000, 840_000),
    (14_000_001, 840_000),  # 1원 × 15% truncates to 0
    (50_000_000, 6_240_000),
    (88_000_000, 15_360_000),
    (150_000_000, 37_060_000),
    (300_000_000, 94_060_000),
    (500_000_000, 174_060_000),
    (1_000_000_000, 384_060_000),
    (1_200_000_000, 474_060_000),
    (0, 0),
]
INCOME_2021 = [
    (12_000_000, 720_000),
    (14_000_000, 1_020_000),  # the 2021 table taxes 1,200만~1,400만 at 15%
    (46_000_000, 5_820_000),
    (88_000_000, 15_900_000),
    (150_000_000, 37_600_000),
    (300_000_000, 94_600_000),
    (500_000_000, 174_600_000),
    (1_000_000_000, 384_600_000),
    (2_000_000_000, 834_600_000),
]


@pytest.mark.parametrize(("base", "tax"), INCOME_2023)
def test_income_tax_2023_bracket_edges(base: int, tax: int) -> None:
    calc = income_tax(base, 2023)
    assert calc.computed_tax == tax
    assert calc.payable == tax
    assert calc.articles[0] == "소득세법 제55조"
    assert calc.local_income_tax == tax // 10  # 지방세법 제92조: 10% of the 산출세액
    assert income_tax(base, 2025).computed_tax == tax  # unchanged since 2023


@pytest.mark.parametrize(("base", "tax"), INCOME_2021)
def test_income_tax_2021_bracket_edges(base: int, tax: int) -> None:
    assert income_tax(base, 2021).computed_tax == tax
    assert income_tax(base, 2022).computed_tax == tax


def test_income_tax_2018_to_2020_tops_out_at_42_percent() -> None:
    assert income_tax(1_000_000_000, 2019).computed_tax == 384_600_000
    assert income_tax(2_000_000_000, 2019).computed_tax == 384_600_000 + 420_000_000
    assert income_tax(2_000_000_000, 2021).computed_tax == 384_600_000 + 450_000_000


def test_income_tax_before_2018_is_unsupported() -> None:
    with pytest.raises(UnsupportedCase):
        income_tax(50_000_000, 2017)


# --- capital gains -----------------------------------------------------------------------------------------------


def test_capital_gains_basic_rate_is_the_income_schedule() -> None:
    for base in (14_000_000, 150_000_000, 2_000_000_000):
        calc = capital_gains_tax(base, 2024)
        assert calc.computed_tax == income_tax(base, 2024).computed_tax
        assert calc.articles[:2] == ["소득세법 제104조", "소득세법 제55조"]


def test_land_short_holding_takes_the_larger_tax() -> None:
    assert capital_gains_tax(1 * 억, 2024, "land_building", "under_1y").computed_tax == 5_000 * 만
    assert capital_gains_tax(1 * 억, 2024, "land_building", "1y_to_2y").computed_tax == 4_000 * 만
    # at 20억 the basic rate (8억 3,406만) exceeds 40% (8억): 제104조① 후단 takes the larger
    big = capital_gains_tax(20 * 억, 2024, AssetKind.LAND_BUILDING, HoldingPeriod.FROM_1Y_TO_2Y)
    assert big.computed_tax == income_tax(20 * 억, 2024).computed_tax == 834_060_000


def test_housing_short_holding_rates_change_on_2021_06_01() -> None:
    assert capital_gains_tax(1 * 억, "2021-05-31", "housing", "under_1y").computed_tax == 4_000 * 만
    basic_2021 = income_tax(1 * 억, 2021).computed_tax
    assert capital_gains_tax(1 * 억, "2021-05-31", "housing", "1y_to_2y").computed_tax == basic_2021
    assert capital_gains_tax(1 * 억, date(2021, 6, 1), "housing", "under_1y").computed_tax == 7_000 * 만
    assert capital_gains_tax(1 * 억, 2024, "housing", "1y_to_2y").computed_tax == 6_000 * 만
    with pytest.raises(UnsupportedCase):  # the year alone is ambiguous in 2021
        capital_gains_tax(1 * 억, 2021, "housing", "under_1y")


def test_presale_rights() -> None:
    assert capital_gains_tax(1 * 억, 2024, "presale_right", "2y_or_more").computed_tax == 6_000 * 만
    assert capital_gains_tax(1 * 억, 2024, "presale_right", "under_1y").computed_tax == 7_000 * 만
    with pytest.raises(UnsupportedCase):
        capital_gains_tax(1 * 억, "2021-05-01", "presale_right", "under_1y")


def test_holding_period_between() -> None:
    assert holding_period_between(date(2023, 3, 1), date(2024, 2, 29)) is HoldingPeriod.UNDER_1Y
    assert holding_period_between(date(2023, 3, 1), date(2024, 3, 1)) is HoldingPeriod.FROM_1Y_TO_2Y
    assert holding_period_between(date(2020, 2, 29), date(2022, 2, 28)) is HoldingPeriod.TWO_YEARS_OR_MORE


# --- check_calculation -------------------------------------------------------------------------------------------


def _gift_payload(result: int | str, field: str | None = "computed_tax", **inputs: object) -> dict:
    payload = {
        "kind": "gift_tax",
        "year": 2024,
        "inputs": {"amount_won": 2_000_000_000, "relationship": "직계존속", **inputs},
        "result_won": result,
    }
    if field is not None:
        payload["result_field"] = field
    return payload


def test_check_accepts_correct_claims_as_int_or_korean() -> None:
    assert check_calculation(_gift_payload(620_000_000)).status == "ok"
    assert check_calculation(_gift_payload("6억 2,000만원")).status == "ok"
    assert check_calculation(_gift_payload("6.2억")).status == "ok"
    assert check_calculation(_gift_payload("6억 140만원", "payable")).status == "ok"
    assert check_calculation(_gift_payload(1_950_000_000, "taxable_base")).status == "ok"
    assert check_calculation(_gift_payload("5,000만원", "deduction")).status == "ok"


def test_check_compares_to_the_won() -> None:
    """No ratio tolerance: 60만원 off on 6억 2,000만원 is a mismatch (it was "ok" under the old 0.1%)."""
    assert check_calculation(_gift_payload(620_000_000)).status == "ok"
    assert check_calculation(_gift_payload(620_000_000 + 600_000)).status == "mismatch"
    assert check_calculation(_gift_payload(620_000_000 - 1)).status == "mismatch"
    # base 600,009원 -> 60,000원 (60,000.9 truncated, 원 미만 절사)
    assert check_calculation(_gift_payload(60_000, amount_won=50_600_009)).status == "ok"
    assert check_calculation(_gift_payload(60_001, amount_won=50_600_009)).status == "mismatch"
    # a payment may be cut to 10원 (국고금관리법 제47조): 납부할 세액 601,400,000 has nothing under 10원; use 50,600,009
    # 원: 산출세액 60,000원, 신고세액공제 1,800원, 납부할 세액 58,200원 — and 58,200 is its own 10원 cut
    assert check_calculation(_gift_payload(58_200, "payable", amount_won=50_600_009)).status == "ok"
    # a stated rounding is honoured only when the caller says the claim is rounded to that unit
    assert check_calculation(_gift_payload(620_000_000 + 5_000), rounding_unit_won=10_000).status == "mismatch"
    assert check_calculation(_gift_payload(620_010_000), rounding_unit_won=10_000).status == "mismatch"
    assert check_calculation(_gift_payload("6억 2천만원"), rounding_unit_won=10_000).status == "ok"


def test_check_matches_before_or_after_filing_credit_only_as_the_field_says() -> None:
    verdict = check_calculation(_gift_payload(620_000_000, "payable"))
    assert verdict.status == "mismatch"
    assert "computed_tax" in verdict.reason  # hints that the claim is the amount before 신고세액공제
    assert check_calculation(_gift_payload(601_400_000, "computed_tax")).status == "mismatch"
    assert check_calculation(_gift_payload(620_000_000, None)).status == "bad_input"


def test_check_reports_unsupported_and_bad_input() -> None:
    assert check_calculation({**_gift_payload(1), "kind": "vat"}).status == "unsupported"
    assert check_calculation(_gift_payload(1, generation_skipping=True)).status == "unsupported"
    assert check_calculation({**_gift_payload(1), "year": 2005}).status == "unsupported"
    assert check_calculation(_gift_payload("많음")).status == "bad_input"
    assert check_calculation(_gift_payload(1, amount_won="20억 5억")).status == "bad_input"
    assert check_calculation(_gift_payload(1, relationship="이웃집")).status == "bad_input"
    assert check_calculation(_gift_payload(1, donee_is_minor="no")).status == "bad_input"
    no_year = {"kind": "income_tax", "inputs": {"taxable_income_won": 1}, "result_won": 0}
    assert check_calculation({**no_year, "result_field": "computed_tax"}).status == "bad_input"
    assert check_calculation("not a dict").status == "bad_input"  # type: ignore[arg-type]


def test_check_other_kinds() -> None:
    income = {
        "kind": "income_tax",
        "year": 2023,
        "inputs": {"taxable_income_won": "5,000만원"},
        "result_won": "624만원",
        "result_field": "computed_tax",
    }
    assert check_calculation(income).status == "ok"
    assert check_calculation({**income, "year": 2021}).status == "mismatch"  # 582만 + 60만 = 642만 in 2021
    inherit = {
        "kind": "inheritance_tax",
        "year": 2024,
        "inputs": {"taxable_base_won": "20억"},
        "result_won": "6억 2,080만원",
        "result_field": "payable",
    }
    assert check_calculation(inherit).status == "ok"
    cgt = {
        "kind": "capital_gains_tax",
        "year": 2021,
        "inputs": {
            "taxable_base_won": "1억원",
            "asset_kind": "housing",
            "holding_period": "under_1y",
            "transfer_date": "2021-07-01",
        },
        "result_won": "7,000만원",
        "result_field": "computed_tax",
    }
    assert check_calculation(cgt).status == "ok"
    no_date = {**cgt, "inputs": {k: v for k, v in cgt["inputs"].items() if k != "transfer_date"}}
    assert check_calculation(no_date).status == "unsupported"


# --- check_answer_amounts ----------------------------------------------------------------------------------------

SEED_WRONG_ANSWER = (
    "부모로부터 20억원을 증여받는 경우 부모 증여는 공제가 없으므로 증여세 과세표준은 20억원이고, "
    "1억원 이하 10%, 5억원 이하 20%를 적용하면 1,000만원 + 8,000만원 = 9,000만원입니다. "
    "따라서 납부할 증여세는 9,000만원입니다."
)
GOOD_ANSWER = (
    "과세표준: 20억원 − 5,000만원 = 19억 5,000만원.\n"
    "산출세액 = 19억 5,000만원 × 40% − 1억 6,000만원 = 6억 2,000만원.\n"
    "신고세액공제 3%(1,860만원)를 빼면 납부할 세액은 6억 140만원입니다."
)


def test_answer_check_catches_the_seed_sample() -> None:
    calc = gift_tax(20 * 억, "직계존속", year=2024)
    problems = check_answer_amounts(SEED_WRONG_ANSWER, calc)
    assert any("9,000만원" in p and "final stated tax" in p for p in problems)
    assert any("과세표준 20억원" in p for p in problems)


def test_answer_check_accepts_a_correct_answer() -> None:
    calc = gift_tax(20 * 억, "직계존속", year=2024)
    assert check_answer_amounts(GOOD_ANSWER, calc) == []
    assert check_answer_amounts("증여세 산출세액은 6억 2,000만원입니다.", calc) == []
    assert check_answer_amounts("이 경우 증여세는 약 6억 140만원입니다.", calc) == []


def test_answer_check_uses_the_label_to_pick_the_figure() -> None:
    calc = gift_tax(20 * 억, "직계존속", year=2024)
    # 산출세액 must be the amount before 신고세액공제
    assert check_answer_amounts("산출세액은 6억 140만원입니다.", calc) != []
    # no deduction: 6억 4,000만원 is wrong for a parent's gift
    assert check_answer_amounts("증여세는 6억 4,000만원입니다.", calc) != []


def test_answer_without_a_tax_amount_is_flagged() -> None:
    calc = gift_tax(20 * 억, "직계존속", year=2024)
    problems = check_answer_amounts("증여재산공제는 5,000만원입니다.", calc)
    assert problems and "no final tax amount" in problems[0]


# A subtraction written out ("X에서 Y를 뺀 Z") names the minuend and subtrahend before the result; only the result is the
# stated value. These answers are correct for 증여 20억원, 부모 → 성년 자녀, 2024 (과세표준 19억 5,000만원, 산출세액
# 6억 2,000만원, 납부할 세액 6억 140만원), and each states the 과세표준 so that the base check really runs.
WORDED_GOOD_ANSWERS = [
    "과세표준은 20억원에서 증여재산공제 5,000만원을 뺀 19억 5,000만원입니다. 산출세액은 6억 2,000만원입니다.",
    "과세표준은 20억원 - 5,000만원 = 19억 5,000만원이고, 증여세는 6억 2,000만원입니다.",
    "20억원에서 5천만원을 공제하면 과세표준은 19억 5천만원이고, 산출세액은 6억 2,000만원입니다.",
    "과세표준: 19억 5,000만원. 산출세액: 19억 5,000만원 × 40% - 1억 6,000만원 = 6억 2,000만원",
    "증여세 과세표준은 증여재산 20억원에서 5,000만원을 차감한 19억 5,000만원이며, 산출세액은 "
    "19억 5,000만원 × 40% - 1억 6,000만원 = 6억 2,000만원입니다.",
    "과세표준 20억원에서 증여재산공제 5,000만원(직계존속)을 공제한 19억 5,000만원, 산출세액 6억 2,000만원.",
    "납부할 세액은 산출세액 6억 2,000만원에서 신고세액공제 1,860만원을 뺀 6억 140만원입니다. 과세표준은 "
    "20억원에서 5,000만원을 빼면 19억 5,000만원입니다.",
    "증여세는 6억 2,000만원에서 신고세액공제를 빼면 6억 140만원입니다. 과세표준은 19억 5,000만원입니다.",
]


@pytest.mark.parametrize("answer", WORDED_GOOD_ANSWERS)
def test_answer_check_accepts_worded_subtractions(answer: str) -> None:
    calc = gift_tax(20 * 억, "직계존속", year=2024)
    assert check_answer_amounts(answer, calc) == []
    bases = [m.won for label, m in labelled_amounts(answer) if label == "과세표준"]
    assert bases and bases[-1] == 19 * 억 + 5_000 * 만


def test_worded_subtraction_operands_are_not_statements() -> None:
    stated = labelled_amounts("과세표준은 20억원에서 증여재산공제 5,000만원을 뺀 19억 5,000만원입니다.")
    assert [(label, m.won) for label, m in stated] == [("과세표준", 19 * 억 + 5_000 * 만)]
    stated = labelled_amounts("증여재산 20억원에서 5,000만원을 공제한 금액이 과세표준이며 19억 5,000만원입니다.")
    assert [(label, m.won) for label, m in stated] == [("과세표준", 19 * 억 + 5_000 * 만)]
    # 공제받다 states a deduction, it does not subtract an operand
    stated = labelled_amounts("증여재산공제 5,000만원을 공제받을 수 있습니다.")
    assert [(label, m.won) for label, m in stated] == [("증여재산공제", 5_000 * 만)]


@pytest.mark.parametrize(
    "answer",
    [
        # wrong result of a worded subtraction
        "과세표준은 20억원에서 증여재산공제 5,000만원을 뺀 19억원입니다. 산출세액은 6억 2,000만원입니다.",
        # no deduction: the minuend restated as the base
        "과세표준은 20억원에서 공제액 0원을 뺀 20억원입니다. 산출세액은 6억 2,000만원입니다.",
        # right base, wrong tax
        "과세표준은 20억원에서 5,000만원을 뺀 19억 5,000만원이고, 증여세는 6억 4,000만원입니다.",
        "20억원에서 5천만원을 공제하면 과세표준은 19억 5천만원이고, 산출세액은 19억 5천만원 × 40% = 7억 8,000만원입니다.",
    ],
)
def test_answer_check_still_rejects_wrong_worded_answers(answer: str) -> None:
    calc = gift_tax(20 * 억, "직계존속", year=2024)
    assert check_answer_amounts(answer, calc) != []


def test_seed_wrong_answer_still_fails_with_worded_subtraction_support() -> None:
    calc = gift_tax(20 * 억, "직계존속", year=2024)
    problems = check_answer_amounts(SEED_WRONG_ANSWER, calc)
    assert any("9,000만원" in p for p in problems) and any("과세표준 20억원" in p for p in problems)
    reworded = "증여세 과세표준은 20억원에서 공제액 0원을 뺀 20억원이고, 납부할 증여세는 9,000만원입니다."
    problems = check_answer_amounts(reworded, calc)
    assert any("9,000만원" in p for p in problems) and any("과세표준 20억원" in p for p in problems)
