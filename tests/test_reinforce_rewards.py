"""The reinforce rewards on hand-written completions: right, wrong by a step, 지방소득세 added, Hangul numerals,
truncated, English — and the partial credit, citation and format rules that keep a GRPO group's rewards apart.

Figures are worked by hand (as in tests/fixtures/planted/pairs.yaml), never taken from the calculator:
gift 20억 from a father to an adult child (2024): 공제 5,000만 → 과세표준 19억 5,000만; 19.5억 × 40% − 1.6억 = 산출세액
6억 2,000만; 신고세액공제 3% 1,860만; 납부 6억 140만. Income 2024, 과세표준 5,000만: 84만 + 3,600만 × 15% = 624만;
지방소득세 10% 62만 4,000; together 686만 4,000.
"""

from __future__ import annotations

import pytest

from fine_tuning.reinforce import rewards
from fine_tuning.reinforce.prompts import question_amounts, reference_answer
from fine_tuning.reinforce.rewards import RowFacts, score_all
from slm_datagen.dataset.grounding import build_statute_index
from slm_forest.records import Document

GIFT_Q = "2024년에 성인 자녀가 아버지로부터 현금 20억원을 증여받았습니다. 기한 내에 신고하면 증여세는 얼마인가요?"
GIFT = RowFacts(
    "gift_tax", 2024, {"amount_won": 2_000_000_000, "relationship": "lineal_ascendant"}, question_amounts(GIFT_Q)
)
INCOME_Q = "2024년 귀속 종합소득 과세표준이 5,000만원입니다. 종합소득세는 얼마인가요?"
INCOME = RowFacts("income_tax", 2024, {"taxable_income_won": 50_000_000}, question_amounts(INCOME_Q))

GIFT_RIGHT = (
    "성년 자녀가 부모에게 받은 증여이므로 증여재산공제 5,000만원을 적용합니다(상속세 및 증여세법 제53조).\n"
    "- 과세표준: 19억 5,000만원\n"
    "- 산출세액: 19억 5,000만원 × 40% − 1억 6,000만원 = 6억 2,000만원(상속세 및 증여세법 제56조)\n"
    "- 신고세액공제: 1,860만원(상속세 및 증여세법 제69조)\n"
    "따라서 납부할 세액은 6억 140만원입니다."
)


def test_right_answer_scores_full_marks_on_every_reward():
    assert score_all(GIFT_RIGHT, GIFT) == {
        "final_amount": 1.0,
        "partial_amount": 1.0,
        "steps": 1.0,
        "citations": 1.0,
        "format": 1.0,
    }


def test_wrong_intermediate_step_costs_the_step_reward_only():
    answer = GIFT_RIGHT.replace("- 과세표준: 19억 5,000만원", "- 과세표준: 19억 8,000만원")
    scores = score_all(answer, GIFT)
    assert scores["final_amount"] == 1.0 and scores["partial_amount"] == 1.0
    assert scores["steps"] == pytest.approx(3 / 4)  # 증여재산공제, 과세표준 (wrong), 산출세액, 신고세액공제


def test_wrong_step_that_carries_into_the_final_amount_loses_exactness_but_keeps_partial_credit():
    answer = (
        "과세표준은 19억 5,000만원, 산출세액은 6억 2,000만원입니다(상속세 및 증여세법 제56조). 신고세액공제는 "
        "1,800만원이므로 납부할 세액은 6억 200만원입니다."
    )
    scores = score_all(answer, GIFT)
    assert scores["final_amount"] == 0.0
    assert 0.99 < scores["partial_amount"] < 1.0  # 60만원 off 6억 140만원
    assert scores["steps"] == pytest.approx(2 / 3)  # 신고세액공제 1,800만 is wrong


def test_right_answer_with_local_income_tax_added():
    answer = (
        "과세표준 5,000만원에 소득세법 제55조의 세율을 적용하면 산출세액은 624만원이고, 납부할 세액도 624만원입니다.\n"
        "지방소득세는 62만 4,000원이므로 둘을 합한 합계는 686만 4,000원입니다."
    )
    scores = score_all(answer, INCOME)
    assert scores["final_amount"] == 1.0 and scores["steps"] == 1.0 and scores["citations"] == 1.0
    wrong_local = answer.replace("62만 4,000원", "68만원")
    assert rewards.steps(wrong_local, INCOME) < 1.0
    wrong_total = answer.replace("686만 4,000원", "690만원")
    assert rewards.final_amount(wrong_total, INCOME) == 0.0


def test_hangul_numerals_are_read():
    answer = (
        "과세표준은 십구억 오천만원이고 산출세액은 육억 이천만원이며(상속세 및 증여세법 제56조), 신고세액공제를 반영한 "
        "납부할 세액은 육억 백사십만원입니다."
    )
    scores = score_all(answer, GIFT)
    assert scores["final_amount"] == 1.0 and scores["steps"] == 1.0 and scores["format"] == 1.0


def test_truncated_completion_is_unscorable_for_the_readers_but_fails_the_format():
    cut = GIFT_RIGHT[:80]
    scores = score_all(cut, GIFT, truncated=True)
    assert scores.pop("format") == 0.0  # scorable: it stays in the group's baseline, at the bottom
    assert set(scores.values()) == {None}
    assert score_all(GIFT_RIGHT, GIFT)["format"] == 1.0  # the same answer, ended, is not penalised


def test_english_completion_cannot_be_read_but_fails_the_format():
    answer = "The taxable base is 1.95 billion won, so the gift tax payable is 601,400,000 won."
    scores = score_all(answer, GIFT)
    assert scores["format"] == pytest.approx(1 / 3)  # not Korean, no Korean final line; only the length is fine
    assert {k: v for k, v in scores.items() if k != "format"} == dict.fromkeys(
        ("final_amount", "partial_amount", "steps", "citations")
    )


def test_partial_credit_ranks_closer_answers_higher_and_bottoms_out():
    def final(won: str) -> float:
        return rewards.partial_amount(f"증여세 과세표준은 19억 5,000만원이고 납부할 세액은 {won}입니다.", GIFT)

    assert final("6억 140만원") == 1.0
    assert 1.0 > final("6억원") > final("5억원") > final("4억원") > 0.0
    assert final("1억원") == 0.0
    assert (
        rewards.partial_amount("증여세 과세표준은 19억 5,000만원이고 납부할 세액은 1억원입니다.", GIFT, scale=1.0) > 0
    )


def test_korean_answer_without_any_amount_scores_zero_not_none():
    answer = "증여세는 과세표준에 세율을 곱해 계산하며, 자세한 금액은 세무서에 문의하시기 바랍니다."
    scores = score_all(answer, GIFT)
    assert scores["final_amount"] == 0.0 and scores["partial_amount"] == 0.0 and scores["steps"] == 0.0


def test_facts_that_do_not_compute_make_the_row_unscorable():
    broken = RowFacts("gift_tax", 2024, {"amount_won": 100_000_000})  # no relationship
    assert set(score_all(GIFT_RIGHT, broken).values()) - {None} == {1.0}  # only format: it reads no facts
    assert rewards.final_amount(GIFT_RIGHT, broken) is None


def _full_law_index():
    """상속세 및 증여세법 held in full (제1조–제70조), as a legalize-kr whole-law read would give it."""
    docs = [
        Document(
            id=f"law-{n}",
            kind="statute_article",
            title=f"제{n}조",
            text="① 내용",
            source="legalize:kr/상속세및증여세법/법률.md",
            law_name="상속세 및 증여세법",
            effective_date="2024-01-01",
            article_no=n,
            meta={"complete_law": True},
        )
        for n in range(1, 71)
    ]
    return build_statute_index(docs)


def test_citations_reward_the_applied_rule_and_punish_an_invented_article():
    index = _full_law_index()
    assert rewards.citations(GIFT_RIGHT, GIFT, index) == 1.0
    invented = GIFT_RIGHT.replace("제69조", "제99조")  # the law is held in full and has no 제99조
    assert rewards.citations(invented, GIFT, index) == 0.0
    unrelated = GIFT_RIGHT.replace("제53조", "제2조").replace("제56조", "제3조").replace("제69조", "제4조")
    assert rewards.citations(unrelated, GIFT, index) == 0.25  # real articles, but not the rule applied
    uncited = "과세표준은 19억 5,000만원, 산출세액은 6억 2,000만원이고 납부할 세액은 6억 140만원입니다."
    assert rewards.citations(uncited, GIFT, index) == 0.0


def test_format_wants_the_final_amount_last_and_no_runaway():
    assert rewards.format_score(GIFT_RIGHT, GIFT) == 1.0
    trailing = GIFT_RIGHT + "\n참고로 1억원 이하는 10%, 5억원 이하는 20% 세율입니다."
    assert rewards.format_score(trailing, GIFT) == pytest.approx(2 / 3)
    looping = GIFT_RIGHT + "\n신고는 홈택스에서 할 수 있습니다." * 4
    assert rewards.format_score(looping, GIFT) < 1.0
    assert rewards.format_score(GIFT_RIGHT, GIFT, max_chars=100) == pytest.approx(2 / 3)


def test_reference_answer_of_every_kind_earns_full_marks():
    from fine_tuning.reinforce.prompts import generated_rows
    from slm_datagen.taxlaw.questions import KINDS

    rows = generated_rows(200, 11, KINDS, 0.1, 0.1)
    assert {row.facts.kind for row in rows} == set(KINDS)
    for row in rows:
        answer = reference_answer(row.facts.computation, row.audience)
        assert set(score_all(answer, row.facts).values()) == {1.0}, (row.question, answer)
