"""The optional LLM judge and second teacher, against the local fake OpenAI/Anthropic server (real SDKs)."""

from __future__ import annotations

import pytest

from slm_datagen.dataset.checks import CheckOutcome
from slm_datagen.dataset.judge import compare_answers, parse_judgement, run_teacher_checks
from slm_forest.config import BuildConfig, TeacherConfig
from slm_forest.errors import SlmError
from slm_forest.records import Chunk, QAPair

fake_teacher_server = pytest.importorskip("tests.fake_teacher_server")

SOURCE = "제12조(비과세소득) 다음 각 호의 소득에 대해서는 소득세를 과세하지 아니한다.\n1. 「공익신탁법」에 따른 공익신탁의 이익"
FAITHFUL = "소득세법 제12조 제1호에 따라 공익신탁의 이익은 비과세소득입니다."
UNFAITHFUL = "소득세법 제12조에 따르면 모든 이자소득은 과세됩니다."


def pair(n: int, answer: str) -> QAPair:
    return QAPair(
        id=f"p{n}",
        chunk_id="c1",
        doc_id="d1",
        kind="statute_article",
        question=f"공익신탁의 이익 질문 {n}?",
        answer=answer,
        audience="expert",
        teacher="openai",
        model="gpt-4o-mini",
        prompt_version="v1",
        request_key=f"k{n}",
        source_citation="소득세법 제12조",
        law_name="소득세법",
    )


CHUNK = Chunk(
    id="c1",
    doc_id="d1",
    kind="statute_article",
    title="소득세법 제12조",
    text=SOURCE,
    citation="소득세법 제12조",
    law_name="소득세법",
    article_no=12,
)


def responder(request_json: dict, provider: str):
    prompt = fake_teacher_server.prompt_text(request_json, provider)
    if "채점 기준" in prompt:  # the judge
        score = 1 if "모든 이자소득은 과세됩니다" in prompt else 5
        return {"score": score, "reason": "원문과 다름" if score == 1 else "원문에 충실함"}
    if "질문 2?" in prompt:  # the second teacher disagrees with pair 2 about the article
        return "소득세법 제14조에 따라 과세표준을 계산합니다."
    return "소득세법 제12조 제1호에 따라 공익신탁의 이익은 비과세소득입니다."


@pytest.fixture
def server(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "test-openai-key")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "test-anthropic-key")
    with fake_teacher_server.FakeTeacherServer(responder) as srv:
        yield srv


def outcome_for(pairs: list[QAPair]) -> CheckOutcome:
    return CheckOutcome([[] for _ in pairs])


def test_judge_rejects_unfaithful_pairs_and_second_teacher_sends_disagreements_to_review(server, tmp_path):
    cfg = BuildConfig(
        judge=TeacherConfig(provider="openai", model="gpt-4o-mini", base_url=server.openai_base_url, max_retries=0),
        second_teacher=TeacherConfig(
            provider="openai_compatible", model="qwen-local", base_url=server.openai_base_url, max_retries=0
        ),
    )
    pairs = [pair(0, FAITHFUL), pair(1, UNFAITHFUL), pair(2, FAITHFUL)]
    outcome = outcome_for(pairs)
    run_teacher_checks(pairs, [CHUNK], outcome, cfg, tmp_path)
    assert [[f.rule for f in found] for found in outcome.findings] == [
        [],
        ["judge_low_score"],
        ["teacher_disagreement"],
    ]
    assert outcome.findings[1][0].action == "reject" and "score 1" in outcome.findings[1][0].details
    assert outcome.findings[2][0].action == "review" and "소득세법 제14조" in outcome.findings[2][0].details
    judge, second = outcome.judge["judge"], outcome.judge["second_teacher"]
    assert judge["requests"] == 3 and judge["scores"] == {"1": 1, "5": 2} and judge["cost_usd"] > 0
    assert second["requests"] == 2  # the rejected pair is not asked again
    requests = server.generation_requests()
    assert sorted(r.model for r in requests) == ["gpt-4o-mini"] * 3 + ["qwen-local"] * 2


def test_the_judge_also_speaks_anthropic_through_a_forced_tool(server, tmp_path):
    cfg = BuildConfig(
        judge=TeacherConfig(
            provider="anthropic", model="claude-haiku-4-5", base_url=server.anthropic_base_url, max_retries=0
        )
    )
    pairs = [pair(0, FAITHFUL), pair(1, UNFAITHFUL)]
    outcome = outcome_for(pairs)
    run_teacher_checks(pairs, [CHUNK], outcome, cfg, tmp_path)
    assert [[f.rule for f in found] for found in outcome.findings] == [[], ["judge_low_score"]]
    assert outcome.judge["judge"]["provider"] == "anthropic" and outcome.judge["judge"]["input_tokens"] > 0


def test_a_missing_or_refused_key_stops_the_build_naming_the_variable(server, monkeypatch, tmp_path):
    cfg = BuildConfig(
        judge=TeacherConfig(
            provider="openai", model="gpt-4o-mini", base_url=server.openai_base_url, api_key_env="JUDGE_KEY"
        )
    )
    with pytest.raises(SlmError, match="environment variable JUDGE_KEY, which is not set"):
        run_teacher_checks([pair(0, FAITHFUL)], [CHUNK], outcome_for([pair(0, FAITHFUL)]), cfg, tmp_path)
    with pytest.raises(SlmError, match=r"build\.judge\.provider is 'offline'"):
        run_teacher_checks(
            [pair(0, FAITHFUL)], [CHUNK], outcome_for([pair(0, FAITHFUL)]), BuildConfig(judge=TeacherConfig()), tmp_path
        )


def test_failed_requests_leave_pairs_unjudged_and_are_counted(server, tmp_path):
    server.script("server_error")
    cfg = BuildConfig(
        judge=TeacherConfig(
            provider="openai", model="gpt-4o-mini", base_url=server.openai_base_url, max_retries=0, max_concurrency=1
        )
    )
    pairs = [pair(0, FAITHFUL), pair(1, UNFAITHFUL)]
    outcome = outcome_for(pairs)
    run_teacher_checks(pairs, [CHUNK], outcome, cfg, tmp_path)
    assert outcome.judge["judge"]["errors"] == 1 and outcome.judge["judge"]["judged"] == 1
    assert sum(len(found) for found in outcome.findings) <= 1


def test_parsing_and_comparing():
    assert parse_judgement('{"score": 4, "reason": "ok"}') == (4, "ok")
    assert parse_judgement('채점 결과: {"score": "2", "reason": "오류"}') == (2, "오류")
    for bad in ('{"score": 7}', "점수 없음", ""):
        with pytest.raises(ValueError):
            parse_judgement(bad)
    assert compare_answers("증여세는 6억 2,000만원입니다.", "산출세액은 6억 2,000만원입니다.") is None
    assert "final tax" in compare_answers("증여세는 6억 2,000만원입니다.", "증여세는 9,000만원입니다.")
    assert compare_answers("소득세법 제12조", "소득세법 제12조 제1호와 제14조") is None
    assert "no article in common" in compare_answers("소득세법 제12조에 따라", "법인세법 제12조에 따라")
