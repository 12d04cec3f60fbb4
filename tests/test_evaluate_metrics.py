"""The answer metrics of `slm evaluate` (pure functions, no model): LCS / ROUGE-L, chrF, citations, amounts, judge replies."""

from __future__ import annotations

import random

import pytest

from fine_tuning.evaluate.calculator import check_numeric, final_stated_tax
from fine_tuning.evaluate.citation_scores import CorpusIndex, score_citations
from fine_tuning.evaluate.judge import parse_judge_reply
from fine_tuning.evaluate.metrics import (
    LossSums,
    ScoreSums,
    chrf_corpus,
    chrf_from_stats,
    chrf_sentence,
    chrf_stats,
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


def test_corpus_chrf_from_summed_statistics_equals_sacrebleu():
    hyps = ["부가가치세법 제49조에 따라 신고", "모르겠습니다", "소득세법 제12조"]
    refs = [
        "부가가치세법 제49조에 따라 25일 이내에 확정신고합니다.",
        "과세기간 종료 후",
        "소득세법 제12조의 비과세소득",
    ]
    sums = [sum(col) for col in zip(*(chrf_stats(h, r) for h, r in zip(hyps, refs)))]
    assert chrf_from_stats(sums) == pytest.approx(chrf_corpus(hyps, refs), abs=1e-9)


def _corpus(tmp_path):
    write_jsonl(
        tmp_path / "documents.jsonl",
        [
            {
                "kind": "statute_article",
                "law_name": "부가가치세법",
                "article_no": 49,
                "text": "① 신고한다. ② 납부한다.",
            },
            {"kind": "statute_article", "law_name": "국세기본법", "article_no": 45, "article_branch": 2, "text": "…"},
            {"kind": "interpretation", "law_name": None, "text": "관련법령: 소득세법 제12조제3호"},
        ],
    )
    return CorpusIndex.from_documents(tmp_path / "documents.jsonl")


def test_citation_precision_recall_by_law_article_and_paragraph(tmp_path):
    corpus = _corpus(tmp_path)
    reference = "부가가치세법 제49조제1항에 따라 신고합니다. (근거: 부가가치세법 제49조제1항)"
    # 제49조제1항 matches; 제49조제2항 is the wrong paragraph; 국세기본법 제45조의2 is not in the reference
    score = score_citations("부가법 제49조제1항, 같은 조 제2항, 국세기본법 제45조의2", reference, [], corpus)
    assert set(score.cited) == {"부가가치세법 제49조 제1항", "부가가치세법 제49조 제2항", "국세기본법 제45조의2"}
    assert score.reference == ("부가가치세법 제49조 제1항",)
    assert (score.matched_cited, score.matched_reference) == (1, 1)
    assert score.hallucinated == ()
    # an article-level citation covers the paragraph the reference names (and the other way round)
    whole = score_citations("부가가치세법 제49조에 따릅니다.", reference, [], corpus)
    assert (whole.matched_cited, whole.matched_reference) == (1, 1)
    by_meta = score_citations("부가가치세법 제49조제2항", "신고합니다.", ["부가가치세법 제49조"], corpus)
    assert (by_meta.matched_cited, by_meta.matched_reference) == (1, 1)


def test_hallucinated_citations_are_articles_or_paragraphs_the_corpus_does_not_know(tmp_path):
    corpus = _corpus(tmp_path)
    answer = "소득세법 제12조, 소득세법 제999조, 부가가치세법 제49조제3항, 국세기본법 제45조"
    score = score_citations(answer, "", [], corpus)
    # 제12조 is cited by a corpus document; 제999조 exists nowhere; 제49조 has only ① and ②; 제45조 ≠ 제45조의2
    assert set(score.hallucinated) == {"소득세법 제999조", "부가가치세법 제49조 제3항", "국세기본법 제45조"}


def test_citation_f1_micro_over_answers_from_summed_counts():
    from fine_tuning.evaluate.stats import f1_of_sums

    sums = ScoreSums()
    # answer 1: 2 cited, 1 right, reference 1 (found); answer 2: cites nothing, reference 2
    one = {"cited": ["a", "b"], "reference": ["a"], "matched_cited": 1, "matched_reference": 1, "hallucinated": ["b"]}
    two = {"cited": [], "reference": ["c", "d"], "matched_cited": 0, "matched_reference": 0, "hallucinated": []}
    sums.add(
        "답 A", "참고 A", {"rouge_l": 0.5, "citations": one, "numeric": {"correct": True}, "judge": {"score": 4.0}}
    )
    sums.add("", "참고 B", {"rouge_l": 0.0, "citations": two, "numeric": {"correct": False}})
    sums.add("답 C", "참고 C", {"rouge_l": 1.0, "citations": two, "numeric": None})
    out = sums.summary()
    assert out["n"] == 3 and out["empty_answers"] == 1
    assert out["rouge_l"] == pytest.approx(0.5)
    assert out["citation_precision"] == 0.5 and out["citation_recall"] == pytest.approx(0.2)  # 1/2, 1/5
    assert out["citation_f1"] == pytest.approx(2 * 0.5 * 0.2 / 0.7, abs=1e-4)
    assert out["hallucinated_citation_rate"] == 0.5
    assert out["numeric_n"] == 2 and out["numeric_accuracy"] == 0.5
    assert out["judge_n"] == 1 and out["judge_mean"] == 4.0
    assert f1_of_sums([0, 0, 0, 0]) is None and f1_of_sums([0, 3, 0, 2]) == 0.0


def test_numeric_accuracy_uses_the_calculators_final_tax_to_the_won():
    reference = "과세표준 19억 5,000만원에 세율을 적용하면 산출세액은 6억 2,000만원입니다."
    meta = {"style": "calculation"}
    right = check_numeric("산출세액은 6억 2,000만원입니다.", reference, meta)
    assert right is not None and right.correct and right.expected == 620_000_000
    off_by_one = check_numeric("산출세액은 620,000,001원입니다.", reference, meta)
    assert off_by_one is not None and off_by_one.correct is False
    # the base and the deduction are not the final tax
    assert final_stated_tax("과세표준 1억원, 증여재산공제 5,000만원") is None
    assert final_stated_tax("84만원 + (5,000만원 - 1,400만원) × 15% = 624만원") == 6_240_000
    assert final_stated_tax("증여세는 1,000만원이고 과세표준은 1억원입니다.") == 10_000_000
    assert check_numeric("답", reference, {"style": "explain"}) is None


def test_numeric_accuracy_recomputes_a_calculation_payload():
    payload = {"kind": "gift_tax", "year": 2024, "inputs": {"amount_won": 2_000_000_000, "relationship": "직계존속"}}
    payload |= {"result_won": 1, "result_field": "computed_tax"}  # a wrong teacher claim: the calculator decides
    meta = {"style": "calculation", "calculation": payload}
    check = check_numeric("따라서 산출세액은 6억 2,000만원입니다.", "틀린 참고 답변 1원", meta)
    assert check is not None and check.source == "calculator"
    assert check.expected == 620_000_000 and check.correct is True
    wrong = check_numeric("따라서 산출세액은 6억 1,000만원입니다.", "", meta)
    assert wrong is not None and wrong.correct is False


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
