"""`slm evaluate` with retrieval: recall@k / MRR of each test question's source, the answers again with the articles
in the prompt (never a second block for a RAFT pair), and `evaluate.retrieve` / `evaluate.as_of` checked."""

from __future__ import annotations

import json

import pytest

from fine_tuning.evaluate.report import SECTIONS
from fine_tuning.evaluate.retrieval import grounded_examples, retrieval_quality, user_question
from slm_datagen.index import load_index
from slm_datagen.index.context import CONTEXT_HEADER, ContextArticle, question_with_context
from slm_forest.config import RunConfig
from slm_forest.errors import SlmError
from slm_forest.files import read_jsonl, write_jsonl
from slm_forest.pipeline import run_stage
from slm_forest.records import ChatMessage, SFTExample
from tests.test_evaluate_tiny import copy_run, refresh_manifest, tiny_run
from tests.test_index import build, statute
from tests.test_serve_retrieval import add_index


def example(question: str, source: str, kind: str = "statute_article") -> SFTExample:
    return SFTExample(
        id=f"sft-{abs(hash(question)) % 10_000}",
        messages=[
            ChatMessage(role="system", content="세법 도우미"),
            ChatMessage(role="user", content=question),
            ChatMessage(role="assistant", content="답"),
        ],
        meta={"kind": kind, "source_citation": source},
    )


@pytest.fixture
def index(tmp_path):
    opened = load_index(build(tmp_path))
    yield opened
    opened.close()


RAFT = question_with_context(
    "증여재산공제 한도는 얼마인가요?", [ContextArticle(citation="국세기본법 제22조", text="수정신고의 효력")]
)


def test_recall_and_mrr_of_the_source_per_kind(index):
    examples = [
        example("소득세법 제55조의 종합소득 세율은?", "소득세법 제55조"),  # cited: rank 1
        example(RAFT, "상속세 및 증여세법 제53조"),  # searched by its question part, not the block's 국세기본법
        example("zzqx", "국세기본법 제22조"),  # no term in common: a miss
        example("퇴직소득에 대한 소득세 계산 방법", "서면-2024-법규소득-0001", kind="interpretation"),
        example("출처 없는 질문", ""),  # imported pair without a source: left out
    ]
    quality = retrieval_quality(index, examples, "2025-06-01")
    statute = quality["groups"]["kind:statute_article"]
    assert statute == {"n": 3, "recall@1": 0.6667, "recall@5": 0.6667, "recall@10": 0.6667, "mrr": 0.6667}
    assert quality["groups"]["all"]["n"] == 4 and quality["groups"]["kind:interpretation"]["recall@10"] == 1.0
    assert quality["no_source"] == 1 and quality["as_of"] == "2025-06-01"
    assert user_question(examples[1]) == "증여재산공제 한도는 얼마인가요?"


def test_grounded_examples_add_one_block_and_leave_raft_pairs_alone(index):
    plain, raft = example("증여재산공제 한도는 얼마인가요?", ""), example(RAFT, "")
    grounded, retrieved = grounded_examples(index, [plain, raft], k=2, as_of="2025-06-01")
    prompt = grounded[0].messages[1].content
    assert prompt.startswith(CONTEXT_HEADER) and prompt.endswith("질문: 증여재산공제 한도는 얼마인가요?")
    assert retrieved[0][0] == "상속세 및 증여세법 제53조" and len(retrieved[0]) <= 2
    assert grounded[0].messages[2] == plain.messages[2] and grounded[0].meta == plain.meta
    assert grounded[1] == raft and retrieved[1] == [] and grounded[1].messages[1].content.count(CONTEXT_HEADER) == 1


def test_the_config_keys_are_checked():
    for bad in ({"retrieve": True}, {"retrieve": 0}, {"retrieve": "always"}, {"as_of": "2025-02-30"}):
        with pytest.raises(ValueError, match="retrieve|as_of"):
            RunConfig.model_validate({"evaluate": bad})
    assert RunConfig.model_validate({"evaluate": {"retrieve": 3}}).evaluate.retrieve == 3


# ------------------------------------------------------------------------------------------------- the stage
def _config(run_dir, **evaluate) -> RunConfig:
    settings = {"max_examples": 4, "max_new_tokens": 8, "batch_size": 4, "harness": False, "bootstrap_resamples": 50}
    return RunConfig.model_validate(
        {"run_name": run_dir.name, "runs_dir": str(run_dir.parent), "evaluate": settings | evaluate}
    )


def _with_sources(run) -> None:
    """The tiny run's test split with the source citation distill records (its first cited article), and an index
    over those articles (the tiny run's documents are one-line stubs that prepare drops)."""
    path = run / "build" / "test.jsonl"
    rows = list(read_jsonl(path))
    for row in rows:
        row["meta"]["source_citation"] = row["meta"]["citations"][0]
    write_jsonl(path, rows)
    refresh_manifest(run, "build")
    add_index(run, ARTICLES)


ARTICLES = [
    statute(
        "부가가치세법",
        49,
        "확정신고와 납부",
        "① 사업자는 각 과세기간에 대한 과세표준과 납부세액 또는 환급세액을 그 과세기간이 끝난 후 25일 이내에 "
        "납세지 관할 세무서장에게 신고하여야 한다.",
        "2025-01-01",
    ),
    statute(
        "부가가치세법",
        48,
        "예정신고와 납부",
        "① 사업자는 각 과세기간 중 다음 각 호에 따른 기간(이하 예정신고기간이라 한다)이 끝난 후 25일 이내에 "
        "과세표준과 납부세액을 신고하여야 한다.\n1. 제1기: 1월 1일부터 3월 31일까지",
        "2025-01-01",
    ),
    statute(
        "소득세법",
        70,
        "종합소득과세표준 확정신고",
        "① 해당 과세기간의 종합소득금액이 있는 거주자는 그 종합소득 과세표준을 그 과세기간의 다음 연도 5월 1일부터 "
        "5월 31일까지 납세지 관할 세무서장에게 신고하여야 한다.",
        "2025-01-01",
    ),
    statute(
        "소득세법",
        55,
        "세율",
        "① 거주자의 종합소득에 대한 소득세는 종합소득 과세표준에 다음의 세율을 적용하여 계산한 금액(종합소득산출세액)"
        "으로 한다.",
        "2025-01-01",
    ),
]


def test_evaluate_reports_retrieval_and_answers_with_and_without(tmp_path, tmp_path_factory):
    run = copy_run(tiny_run(tmp_path_factory), tmp_path)
    with pytest.raises(SlmError, match="slm index CONFIG"):  # a number insists on an index
        run_stage(_config(run, retrieve=3), "evaluate")
    _with_sources(run)
    run_stage(_config(run, retrieve=3, as_of="2026-12-04"), "evaluate")

    stage = run / "evaluate"
    metrics = json.loads((stage / "metrics.json").read_text(encoding="utf-8"))
    found = metrics["retrieval"]
    assert found["k"] == 3 and found["as_of"] == "2026-12-04"
    groups = found["quality"]["groups"]
    assert groups["all"]["n"] == 4 and "kind:statute_article" in groups
    assert 0 <= groups["all"]["recall@1"] <= groups["all"]["recall@5"] <= groups["all"]["recall@10"] <= 1
    assert found["generation"]["tuned"]["all"]["n"] == 4 and "chrf" in found["gain_tuned"]
    plain = {r["id"]: r for r in read_jsonl(stage / "predictions.jsonl")}
    grounded = list(read_jsonl(stage / "predictions_retrieval.jsonl"))
    assert [r["id"] for r in grounded] == list(plain)
    for row in grounded:
        assert row["question"] == plain[row["id"]]["question"]  # as asked; the articles are in `retrieved`
        assert 1 <= len(row["retrieved"]) <= 3 and "citation_check" in row["tuned"]
    assert groups["kind:statute_article"]["recall@5"] == 1.0  # each question's article is among its 3-10 hits
    # the articles changed the prompts, so at least one answer differs from the one without them
    assert any(row["tuned"]["answer"] != plain[row["id"]]["tuned"]["answer"] for row in grounded)
    text = (stage / "report.md").read_text(encoding="utf-8")
    assert all(section in text for section in SECTIONS)
    assert "| questions | n | recall@1 | recall@5 | recall@10 | MRR |" in text and "tuned + retrieval" in text

    off = run_stage(_config(run, retrieve=False, as_of="2026-12-04"), "evaluate")
    assert not off.skipped
    metrics = json.loads((stage / "metrics.json").read_text(encoding="utf-8"))
    assert "retrieval" not in metrics and not (stage / "predictions_retrieval.jsonl").exists()  # no stale rows
    assert "Off: the run has no finished index" in (stage / "report.md").read_text(encoding="utf-8")
