"""The answer metrics of `slm evaluate` (pure functions, no model): LCS / ROUGE-L, chrF, citations, amounts, judge replies."""

from __future__ import annotations

import random

import pytest

from fine_tuning.evaluate.judge import parse_judge_reply
from fine_tuning.evaluate.metrics import (
    CorpusIndex,
    LossSums,
    ScoreSums,
    check_citations,
    chrf_corpus,
    chrf_sentence,
    final_amount,
    lcs_length,
    rouge_l,
)
from slm_forest.files import write_jsonl


def _lcs_dp(a: str, b: str) -> int:
    previous = [0] * (len(b) + 1)
    for x in a:
        current = [0]
        for j, y in enumerate(b):
            current.append(previous[j] + 1 if x == y else max(previous[j + 1], current[j]))
        previous = current
    return previous[-1]


def test_bit_parallel_lcs_equals_dynamic_programming():
    rng = random.Random(3)
    for _ in range(400):
        a = "".join(rng.choice("가나다세법ab ") for _ in range(rng.randint(0, 40)))
        b = "".join(rng.choice("가나다세법ab ") for _ in range(rng.randint(0, 40)))
        assert lcs_length(a, b) == _lcs_dp(a, b), (a, b)


def test_rouge_l_on_characters_ignores_spacing_and_rewards_overlap():
    reference = "과세기간 종료 후 25일 이내에 신고하여야 합니다."
    assert rouge_l(reference, reference) == pytest.approx(1.0)
    assert rouge_l(reference.replace(" ", ""), reference) == pytest.approx(1.0)  # spacing does not count
    close = rouge_l("과세기간 종료 후 25일 이내 신고", reference)
    far = rouge_l("법인세는 3개월 이내", reference)
    assert 1.0 > close > far > 0.0
    assert rouge_l("", reference) == 0.0


def test_chrf_orders_answers_by_character_overlap():
    reference = "부가가치세법 제49조에 따라 25일 이내에 확정신고합니다."
    assert chrf_sentence(reference, reference) == pytest.approx(100.0)
    assert chrf_sentence("부가가치세법 제49조에 따라 신고합니다.", reference) > chrf_sentence(
        "잘 모르겠습니다.", reference
    )
    assert chrf_corpus([], []) is None


def test_citation_check_against_corpus_and_reference(tmp_path):
    write_jsonl(
        tmp_path / "documents.jsonl",
        [
            {"kind": "statute_article", "law_name": "부가가치세법", "article_no": 49},
            {"kind": "statute_article", "law_name": "국세기본법", "article_no": 45, "article_branch": 2},
            {"kind": "interpretation", "law_name": None},
        ],
    )
    corpus = CorpusIndex.from_documents(tmp_path / "documents.jsonl")
    answer = "부가법 제49조와 국세기본법 제45조의2, 그리고 소득세법 제999조를 보면 됩니다."
    check = check_citations(answer, "부가가치세법 제49조에 따라 신고합니다.", ["부가가치세법 제49조"], corpus)
    # the abbreviation resolves to the official name; 제45조의2 is another article than 제45조
    assert set(check.cited) == {"부가가치세법 제49조", "국세기본법 제45조의2", "소득세법 제999조"}
    assert check.in_corpus == 2  # 소득세법 제999조 is not in the corpus
    assert check.matched == 1 and check.reference == 1


def test_final_amount_is_the_last_money_mention():
    assert final_amount("84만원 + (5,000만원 - 1,400만원) × 15% = 624만원입니다.") == 6_240_000
    assert final_amount("제55조에 따라 계산합니다.") is None  # an article number is not money


def test_score_sums_aggregate_citations_numbers_and_judge():
    sums = ScoreSums()
    citing = {"cited": ["부가가치세법 제49조", "소득세법 제1조"], "in_corpus": 1, "matched": 1, "reference": 1}
    silent = {"cited": [], "in_corpus": 0, "matched": 0, "reference": 2}
    sums.add("답 A", "참고 A", {"rouge_l": 0.5, "citations": citing, "numeric_correct": True, "judge": {"score": 4.0}})
    sums.add("", "참고 B", {"rouge_l": 0.0, "citations": silent, "numeric_correct": False})
    sums.add("답 C", "참고 C", {"rouge_l": 1.0, "citations": silent, "numeric_correct": None})
    out = sums.summary()
    assert out["n"] == 3 and out["empty_answers"] == 1
    assert out["rouge_l"] == pytest.approx(0.5)
    assert out["citing_share"] == pytest.approx(1 / 3, abs=1e-4)
    assert out["citation_precision"] == 0.5 and out["citation_recall"] == pytest.approx(0.2)
    assert out["citation_in_corpus"] == 0.5
    assert out["numeric_n"] == 2 and out["numeric_accuracy"] == 0.5
    assert out["judge_n"] == 1 and out["judge_mean"] == 4.0


def test_loss_sums_are_token_weighted():
    sums = LossSums()
    sums.add(nll_sum=10.0, tokens=10)  # mean 1.0 over 10 tokens
    sums.add(nll_sum=3.0, tokens=1)  # mean 3.0 over 1 token
    out = sums.summary()
    assert out["loss"] == pytest.approx(13 / 11, abs=1e-6)
    assert out["perplexity"] == pytest.approx(2.718281828 ** (13 / 11), rel=1e-4)
    assert LossSums().summary()["loss"] is None


def test_judge_reply_parsing():
    reply = '설명입니다. {"correctness": 4, "legal_basis": "5", "clarity": 3, "reason": "조문 인용이 정확함"}'
    parsed = parse_judge_reply(reply)
    assert (parsed["correctness"], parsed["legal_basis"], parsed["clarity"]) == (4, 5, 3)
    assert parsed["score"] == 4.0 and parsed["reason"] == "조문 인용이 정확함"
    with pytest.raises(ValueError, match="clarity"):
        parse_judge_reply('{"correctness": 4, "legal_basis": 5, "clarity": 9}')
    with pytest.raises(ValueError):
        parse_judge_reply("not json")
