"""The offline teacher on the real corpus rows: grounded, cited, Korean Q&A a person would accept."""

from __future__ import annotations

import re

import pytest

from slm_datagen.distill.korean import (
    particle,
    polite_from_nominal,
    polite_from_plain,
    question_from_issue,
    split_sentences,
)
from slm_datagen.distill.offline import offline_pair, parse_article, related_law_citations
from slm_datagen.distill.stage import run_distill
from slm_datagen.hangul import hangul_share
from slm_forest.records import Chunk, QAPair
from tests.test_distill_common import make_ctx, read_rows, ruling_chunks, statute_chunks


@pytest.mark.parametrize(
    "plain, polite",
    [
        ("소득세를 과세하지 아니한다.", "소득세를 과세하지 아니합니다."),
        ("그 주소지로 한다.", "그 주소지로 합니다."),
        ("효력을 가진다.", "효력을 가집니다."),
        ("요구할 수 있다.", "요구할 수 있습니다."),
        ("상여로 처분한 금액을 말한다.", "상여로 처분한 금액을 말합니다."),
        ("신고를 받는다.", "신고를 받습니다."),
        ("과세대상이 아니다.", "과세대상이 아닙니다."),
    ],
)
def test_statute_style_becomes_polite(plain, polite):
    assert polite_from_plain(plain) == polite


@pytest.mark.parametrize(
    "nominal, polite",
    [
        ("납세증명서 제출대상에 해당하지 않음", "납세증명서 제출대상에 해당하지 않습니다."),
        ("신고기한의 다음 날임", "신고기한의 다음 날입니다."),
        ("증액경정을 함께 할 수 없음", "증액경정을 함께 할 수 없습니다."),
        ("감면 대상 창업에 해당함", "감면 대상 창업에 해당합니다."),
        ("취득가액으로 봄", "취득가액으로 봅니다."),
        ("과세대상에 포함됨", "과세대상에 포함됩니다."),
        ("최대주주 할증평가 대상이 아님", "최대주주 할증평가 대상이 아닙니다."),
        ("영세율 적용 가능", "영세율 적용 가능합니다."),
        ("주택 수에서 제외", "주택 수에서 제외됩니다."),
        ("합산배제 임대 주택을 주택 수에서 제외", "합산배제 임대 주택을 주택 수에서 제외합니다."),
    ],
)
def test_casebook_style_becomes_polite(nominal, polite):
    assert polite_from_nominal(nominal) == polite


@pytest.mark.parametrize(
    "issue, question",
    [
        (
            "압류가 금지된 소액금융재산에 대한 압류처분 시 징수권 소멸시효 중단 여부",
            "압류가 금지된 소액금융재산에 대한 압류처분 시 징수권 소멸시효가 중단되나요?",
        ),
        (
            "손익귀속시기 오류에 따른 후발적 경정청구에 대한 감액경정 시 증액경정도 함께 할 수 있는지 여부",
            "손익귀속시기 오류에 따른 후발적 경정청구에 대한 감액경정 시 증액경정도 함께 할 수 있나요?",
        ),
        (
            "증액경정처분 이후 경정청구로 인한 국세환급가산금 기산일",
            "증액경정처분 이후 경정청구로 인한 국세환급가산금 기산일은 언제인가요?",
        ),
        ("주식매수선택권 행사차액의 손금산입 여부", "주식매수선택권 행사차액을 손금에 산입할 수 있나요?"),
        (
            "공사잔대금 분쟁과 관련한 법원 판결 후 세금계산서를 교부받은 경우 매입세액공제 여부",
            "공사잔대금 분쟁과 관련한 법원 판결 후 세금계산서를 교부받은 경우 매입세액공제를 받을 수 있나요?",
        ),
        (
            "관리형 토지신탁에서 신탁 재산을 처분하는 경우 부가가치세 납세의무자가 누구인지",
            "관리형 토지신탁에서 신탁 재산을 처분하는 경우 부가가치세 납세의무자는 누구인가요?",
        ),
        ("창업중소기업 세액감면 적용 시 창업의 의미", "창업중소기업 세액감면 적용 시 창업의 의미는 무엇인가요?"),
        (
            "전환사채의 전환권 행사로 취득한 주식의 취득가액 산정방법",
            "전환사채의 전환권 행사로 취득한 주식의 취득가액 산정방법은 어떻게 되나요?",
        ),
    ],
)
def test_issue_becomes_a_natural_question(issue, question):
    assert question_from_issue(issue) == question


def test_particles_and_sentences():
    assert particle("소득세법 제12조(비과세소득)", "은", "는") == "는"  # the particle of 제12조, not of the title
    assert particle("소득", "은", "는") == "은"
    assert split_sentences(
        "가족(혼인관계에 있는 사람을 포함한다. 이하 같다)의 물건. 압류할 수 없다. 다만, 그러하지 아니하다."
    ) == [
        "가족(혼인관계에 있는 사람을 포함한다. 이하 같다)의 물건. 압류할 수 없다.",
        "다만, 그러하지 아니하다.",
    ]
    assert [
        c.label()
        for c in related_law_citations(
            ["국세기본법 제26조의2 【국세의 부과제척기간】 국세기본법 시행령 제12조의3 【국세 부과제척기간의 기산일】"]
        )
    ] == ["국세기본법 제26조의2", "국세기본법 시행령 제12조의3"]
    assert [
        c.label() for c in related_law_citations(["합병법인은 세액공제를 승계(법인법§45④), 범위는 법인령§81③(2)"])
    ] == ["법인세법 제45조", "법인세법 시행령 제81조"]


def _chunk(shared_dir, citation: str) -> Chunk:
    return next(c for c in statute_chunks(shared_dir / "corpus") if c.citation == citation)


def test_income_tax_article_12_expert_answer_restates_the_article(shared_dir):
    chunk = _chunk(shared_dir, "소득세법 제12조")
    outline = parse_article(chunk.text)
    assert outline.title == "비과세소득" and [i.no for i in outline.paragraphs[0].items] == ["1", "2", "3", "4", "5"]
    pair = offline_pair(chunk, "expert")
    assert pair is not None and pair.audience == "expert"
    assert pair.question.startswith("소득세법 제12조(비과세소득)에서는") and pair.question.endswith("?")
    assert "다음 각 호의 소득에 대해서는 소득세를 과세하지 아니합니다." in pair.answer
    assert "1. 「공익신탁법」에 따른 공익신탁의 이익" in pair.answer
    assert "가. 논ㆍ밭을 작물 생산에 이용하게 함으로써 발생하는 소득" in pair.answer  # 목 kept under its 호
    assert "<개정" not in pair.answer
    assert pair.answer.endswith("(근거: 소득세법 제12조)")
    assert [c.label() for c in pair.citations] == ["소득세법 제12조"]


def test_every_real_article_gives_grounded_pairs_for_both_audiences(shared_dir):
    for chunk in statute_chunks(shared_dir / "corpus"):
        expert, lay = offline_pair(chunk, "expert"), offline_pair(chunk, "layperson")
        assert expert and lay, chunk.citation
        for pair in (expert, lay):
            assert pair.answer.endswith(f"(근거: {chunk.citation})")
            assert hangul_share(pair.question) > 0.8 and hangul_share(pair.answer) > 0.8
            assert chunk.citation in pair.question
        outline = parse_article(chunk.text)
        for paragraph in outline.paragraphs:  # every 항 is restated (its first words appear in the answer)
            if paragraph.text:
                assert paragraph.text[:12] in expert.answer, (chunk.citation, paragraph.no)
        # polite style outside parentheses: no sentence of the answer ends in the statute's '…한다.'
        body = re.sub(r"\([^()]*\)", "", expert.answer)
        assert not re.search(r"(한|있|없|된|본)다\.", body), chunk.citation
        assert lay.question != expert.question and "세무서" in lay.answer


def test_every_casebook_ruling_becomes_a_question_and_an_answer(shared_dir):
    for chunk in ruling_chunks(shared_dir / "corpus"):
        pair = offline_pair(chunk, "expert")
        assert pair is not None
        assert pair.question.endswith("?") and "여부" not in pair.question[-6:], pair.question
        core = re.sub(r"\s+", " ", chunk.answer or "")[:15]
        assert core in pair.answer, (core, pair.answer)
        assert not re.search(r"(것임|않음|없음|해당함)\.?(\n|$)", pair.answer), pair.answer
        assert pair.answer.endswith(")") and "(근거: " in pair.answer
        if re.search(r"제\d+조|§", chunk.related_laws[0] + (chunk.answer or "")):
            assert pair.citations, chunk.citation
        assert chunk.citation in pair.answer  # the 문서번호 of the interpretation
        lay = offline_pair(chunk, "layperson")
        assert lay is not None and "결론부터" in lay.answer and lay.question != pair.question


def test_yes_no_lead_follows_the_official_answer(shared_dir):
    rulings = {c.citation: c for c in ruling_chunks(shared_dir / "corpus")}
    no = offline_pair(rulings["서면-2024-법규기본-1930"], "expert")  # 압류금지재산: 소멸시효 중단 사유에 해당하지 않음
    assert no.question.endswith("소멸시효가 중단되나요?") and no.answer.startswith("아니요. ")
    assert "(근거: 국세기본법 제28조)" in no.answer
    when = offline_pair(rulings["기준-2022-법규기본-0173"], "expert")
    assert when.question.endswith("기산일은 언제인가요?") and not when.answer.startswith(("네", "아니요"))


def test_precedent_uses_the_courts_verdict(shared_dir):
    text = (shared_dir / "corpus" / "precedents" / "대법원_2024-09-12_2022두64143.md").read_text(encoding="utf-8")
    chunk = Chunk(
        id="c",
        doc_id="d",
        kind="precedent",
        title="상속세",
        text=text.split("## 판례내용")[0],
        citation="대법원 2022두64143",
        related_laws=["구 상속세 및 증여세법 제3조의2"],
    )
    pair = offline_pair(chunk, "expert")
    assert pair.question.endswith("포함되나요?") and pair.answer.startswith("아니요. ")  # 판시사항 says (소극)
    assert "대법원 2022두64143" in pair.answer


def test_offline_teacher_is_deterministic_and_skips_calculations(shared_dir):
    chunk = _chunk(shared_dir, "국세징수법 제80조")
    assert offline_pair(chunk, "expert") == offline_pair(chunk, "expert")
    assert offline_pair(chunk, "expert", "calculation") is None


def test_offline_stage_writes_pairs_without_network_or_ledger(tmp_path, shared_dir):
    chunks = statute_chunks(shared_dir / "corpus")[:5] + ruling_chunks(shared_dir / "corpus")[:5]
    ctx = make_ctx(tmp_path, chunks)
    result = run_distill(ctx)
    assert result.complete and result.counts == {
        "chunks": 10,
        "requests": 20,
        "cached": 0,
        "pairs": 20,
        "failures": 0,
        "failures_transient": 0,
        "failures_content": 0,
    }
    pairs = [QAPair.model_validate(r) for r in read_rows(ctx.stage_dir / "qa_pairs.jsonl")]
    assert len({p.id for p in pairs}) == 20 and all(p.usage.cost_usd == 0 and p.teacher == "offline" for p in pairs)
    assert [p.chunk_id for p in pairs[:2]] == [chunks[0].id, chunks[0].id]
    assert not (ctx.stage_dir / "ledger.jsonl").exists()
    first = (ctx.stage_dir / "qa_pairs.jsonl").read_bytes()
    run_distill(ctx)
    assert (ctx.stage_dir / "qa_pairs.jsonl").read_bytes() == first  # same input, same bytes


def test_limit_takes_the_first_chunks(tmp_path, shared_dir):
    chunks = statute_chunks(shared_dir / "corpus")[:4]
    ctx = make_ctx(tmp_path, chunks, {"audiences": ["layperson"]}, limit=2)
    result = run_distill(ctx)
    rows = read_rows(ctx.stage_dir / "qa_pairs.jsonl")
    assert result.counts["chunks"] == 2 and [r["chunk_id"] for r in rows] == [c.id for c in chunks[:2]]
