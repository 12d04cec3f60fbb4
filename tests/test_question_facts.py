"""Reading the facts a question states: the tax asked about, the direction of a gift, dates, late filing."""

from __future__ import annotations

import pytest

from slm_datagen.dataset.question_facts import holding_years_in, lateness_in, taxes_asked
from slm_datagen.dataset.question_gift import donor_relation_in
from slm_datagen.dataset.question_readings import read_question
from slm_datagen.taxlaw.inputs import DonorRelation


@pytest.mark.parametrize(
    ("question", "relation"),
    [
        ("성인 자녀가 아버지로부터 현금 20억원을 증여받았습니다.", DonorRelation.LINEAL_ASCENDANT),
        ("아들이 아버지에게 1억원을 증여했습니다.", DonorRelation.LINEAL_DESCENDANT),
        ("부모님께 받은 1억원", DonorRelation.LINEAL_ASCENDANT),
        ("손자에게 3억원을 증여하려 합니다.", DonorRelation.GRANDPARENT),
        ("남편이 아내에게 10억원을 증여하면", DonorRelation.SPOUSE),
        ("할머니가 미성년 손녀에게 1억원을 증여", DonorRelation.GRANDPARENT),
        ("삼촌으로부터 5천만원을 받았습니다.", DonorRelation.OTHER_RELATIVE),
        ("아버지가 돌아가신 뒤 할아버지로부터 3억원을 증여받았습니다.", DonorRelation.GRANDPARENT),
    ],
)
def test_the_direction_of_a_gift_comes_from_the_sentence(question: str, relation: DonorRelation) -> None:
    assert donor_relation_in(question) is relation


def test_local_income_tax_is_not_income_tax() -> None:
    assert taxes_asked("양도소득세와 지방소득세는 얼마인가요?") == ["capital_gains_tax"]
    assert taxes_asked("지방소득세만 따로 내나요?") == []
    assert taxes_asked("종합소득세 과세표준 5,000만원의 소득세는?") == ["income_tax"]


def test_late_filing_and_its_days() -> None:
    late = lateness_in("신고기한을 15일 넘겨 기한 후 신고와 함께 납부했습니다.")
    assert (late.late, late.return_filed, late.days) == (True, True, 15)
    never = lateness_in("증여세 신고를 하지 않았습니다.")
    assert (never.late, never.return_filed, never.days) == (True, False, None)
    assert not lateness_in("기한 내에 신고했습니다.").late


def test_holding_years_from_words_and_months() -> None:
    assert holding_years_in("5년 보유했습니다") == 5
    assert holding_years_in("10년 전에 5억원에 취득했고") == 10
    assert holding_years_in("산 주택을 10개월 만에 팔았습니다") == 0


def test_the_gift_date_is_the_one_in_its_clause_and_earlier_gifts_are_added_back() -> None:
    facts = read_question(
        "2021년에 아버지로부터 1억원을 증여받았고, 2024년 6월에 다시 아버지로부터 2억원을 증여받았습니다. "
        "저는 성인입니다. 이번 증여세는 얼마인가요?"
    )
    assert facts is not None and len(facts.readings) == 1
    reading = facts.readings[0]
    assert reading.year == 2024
    assert (reading.inputs["amount_won"], reading.inputs["prior_gifts_won"]) == (200_000_000, 100_000_000)


def test_questions_that_ask_for_no_amount_or_state_none_are_not_calculations() -> None:
    assert read_question("배우자로부터 증여받을 때 증여재산공제 한도는 얼마인가요?") is None
    assert read_question("증여재산 과세표준이 1억원 이하일 때 증여세율은 얼마인가요?") is None  # a bracket limit
    assert read_question("아버지로부터 1억원을 증여받았습니다. 신고는 어디에 하나요?") is None


def test_unmodelled_and_missing_facts_say_why() -> None:
    burdened = read_question(
        "아버지로부터 대출 2억원이 있는 10억원짜리 아파트를 부담부증여로 받았습니다. 증여세는 얼마인가요?"
    )
    assert burdened is not None and burdened.unverified and "대출" in burdened.unverified
    no_base = read_question("연봉이 6,000만원인 직장인의 종합소득세는 얼마인가요?")
    assert no_base is not None and no_base.unverified and "과세표준" in no_base.unverified


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        (
            "피상속인이 2024년 5월 23일 사망했고 상속세 과세표준은 27억원입니다(세대생략 상속과 증여세액공제 없음). "
            "상속세는 얼마인가요?",
            ["inheritance_tax"],
        ),
        ("상속세 및 증여세법 제26조에 따라 상속세 과세표준 5억원의 세액은 얼마인가요?", ["inheritance_tax"]),
        ("상속세 및 증여세법에 따라 아버지에게 2억원을 증여받으면 증여세는 얼마인가요?", ["gift_tax"]),
    ],
)
def test_a_law_name_or_a_credit_naming_the_other_tax_does_not_change_the_tax_asked(question, expected):
    from slm_datagen.dataset.question_facts import taxes_asked

    assert taxes_asked(question) == expected


def test_facts_the_question_rules_out_are_not_read_as_stated():
    from slm_datagen.dataset.question_readings import read_question

    sale = (
        "거주자가 1년 9개월 보유한 주택(분양권 아님)을 2023년 1월 22일에 양도했습니다. 양도소득 과세표준은 "
        "2억 390만원이고, 비과세·감면과 중과 대상이 아닙니다. 양도소득세 산출세액은 얼마인가요?"
    )
    facts = read_question(sale, "")
    assert facts.unverified is None
    assert facts.stated["asset_kind"] == "housing" and facts.stated["holding_period"] == "1y_to_2y"
    gift = (
        "2023년 12월 14일에 어머니께서 제 통장으로 2억 8,000만원을 보내 주셨어요. 저는 만 21세이고, 지난 10년 동안 "
        "가족에게서 따로 받은 돈은 없습니다. 제가 내야 할 증여세는 얼마인가요?"
    )
    facts = read_question(gift, "")
    assert facts.unverified is None and facts.stated["donee_is_minor"] is False
    assert facts.stated["amount_won"] == 280_000_000
    # a fact that is stated is still one the calculator does not model
    assert read_question(
        "감면 대상인 토지의 양도소득 과세표준 3억원, 5년 보유. 양도소득세는 얼마인가요?", ""
    ).unverified


# ------------------------------------------------------------------- generated questions read back to their facts
def _reads_back(question) -> bool | None:
    """True: a reading equals the facts the question was generated from; None: no reading (unverified); False: a
    reading that contradicts them (a misreading: the check would pass or fail the wrong answer)."""
    facts = read_question(question.question)
    if facts is None or facts.unverified:
        return None
    want = dict(question.case.inputs)
    for reading in facts.readings:
        if reading.kind == question.kind and all(
            reading.inputs[k] == v for k, v in want.items() if k in reading.inputs
        ):
            return True
    return False


@pytest.mark.parametrize("seed", [7, 23])
def test_generated_questions_are_never_misread_and_mostly_read(seed: int) -> None:
    """Reinforce prompts state their facts in so many words (both audiences' phrasings): a reading must agree with
    them. Measured on 400 questions per seed before the fixes: 10 and 10 misread ('(부정행위 없음)' read as fraud,
    '큰아버지' as a parent, '보유기간 1년 미만' as one year held) and 209 and 194 read ('각각 얼마' taken for several gifts,
    '…에게서 N원을 받았습니다' not taken for a gift, '5년 8개월(…) 보유' not read); after: none misread, 354 and 354 read."""
    from slm_datagen.taxlaw.questions import KINDS, generate_questions

    questions = generate_questions(400, seed, KINDS)
    results = [(_reads_back(q), q) for q in questions]
    misread = [q.question for ok, q in results if ok is False]
    assert not misread, misread[:3]
    assert sum(ok is True for ok, _ in results) >= 0.85 * len(questions)


def test_denied_fraud_is_not_fraud() -> None:
    late = "법정신고기한까지 신고하지 않았고, 기한이 지나 30일 뒤에 기한후신고를 하면서 세액을 함께 납부했습니다"
    assert not lateness_in(f"{late}(부정행위 없음).").fraudulent
    assert not lateness_in(f"{late}. 부정행위는 없었습니다.").fraudulent
    assert lateness_in(f"{late}. 재산을 은닉했습니다.").fraudulent
    assert lateness_in("부정행위로 신고하지 않았고 60일 뒤에 기한후신고를 했습니다.").fraudulent


def test_uncles_and_aunts_are_other_relatives_not_parents() -> None:
    for word in ("큰아버지", "작은아버지", "큰어머니", "숙부"):
        assert donor_relation_in(f"{word}로부터 현금 5,000만원을 증여받았습니다.") is DonorRelation.OTHER_RELATIVE
    assert donor_relation_in("아버지로부터 현금 5,000만원을 증여받았습니다.") is DonorRelation.LINEAL_ASCENDANT


def test_a_holding_bracket_is_not_the_period_held() -> None:
    assert holding_years_in("거주자가 10개월(보유기간 1년 미만) 보유한 주택을 양도했습니다.") == 0
    assert holding_years_in("거주자가 5년 8개월(보유기간 2년 이상) 보유한 토지를 양도했습니다.") == 5
    assert holding_years_in("상가를 11개월 갖고 있다가 팔았어요.") == 0
    assert holding_years_in("19년 전에 1억 3,000만원에 산 상가 건물을 팔았습니다.") == 19
    assert holding_years_in("보유기간은 3년입니다.") == 3


def test_colloquial_gift_with_an_earlier_one_and_each_amount_asked() -> None:
    facts = read_question(
        "2025년 7월 7일에 어머니에게서 8억 9,000만원을 받았습니다. 저는 만 37세입니다. 몇 년 전에도 같은 분에게서 "
        "1억 1,000만원을 받은 적이 있는데 그때는 공제를 받지 않았습니다. 제가 내야 할 증여세는 얼마인가요?"
    )
    assert facts is not None and facts.unverified is None
    assert {(r.inputs["amount_won"], r.inputs["prior_gifts_won"]) for r in facts.readings} == {
        (890_000_000, 110_000_000)
    }
    each = read_question(
        "거주자(만 27세, 성년)가 2024년 3월 8일에 직계존속인 어머니로부터 현금 4억 5,000만원을 증여받았습니다. "
        "증여세 과세표준, 산출세액과 납부할 세액은 각각 얼마인가요?"
    )
    assert each is not None and each.unverified is None and each.readings[0].inputs["amount_won"] == 450_000_000
    several = read_question("자녀 두 명이 각각 1억원씩 아버지로부터 증여받았습니다. 증여세는 얼마인가요?")
    assert several is not None and several.unverified  # several gifts: not one computation
