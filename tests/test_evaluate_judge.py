"""The optional LLM judge of `slm evaluate`, against the local fake teacher server through the real openai SDK."""

from __future__ import annotations

import pytest

from fine_tuning.evaluate.answers import aggregate
from fine_tuning.evaluate.examples import MODELS
from fine_tuning.evaluate.judge import run_judge
from fine_tuning.evaluate.report import write_report
from slm_forest.config import TeacherConfig
from slm_forest.errors import SlmError
from tests.fake_teacher_server import FakeTeacherServer, last_user_text
from tests.test_evaluate_tiny import examples

GOOD = "부가가치세법 제49조에 따라 과세기간 종료 후 25일 이내에 확정신고합니다."
BAD = "잘 모르겠습니다."


def _rows() -> list[dict]:
    rows = []
    for i, example in enumerate(examples([0, 1])):
        row = {
            "id": example.id,
            "question": example.messages[1].content,
            "reference": example.messages[2].content,
            "law_name": "부가가치세법",
            "kind": "statute_article",
            "style": "explain",
        }
        for which, answer in (("base", BAD), ("tuned", GOOD)):
            citations = {"cited": [], "reference": ["부가가치세법 제49조"], "matched_cited": 0, "matched_reference": 0}
            citations["hallucinated"] = []
            row[which] = {
                "answer": answer,
                "finish_reason": "stop",
                "tokens": 10,
                "scores": {"chrf": 10.0 + i, "rouge_l": 0.1, "citations": citations, "numeric": None},
            }
        rows.append(row)
    return rows


def _judge(request: dict, provider: str) -> dict:
    answer = last_user_text(request).split("[평가할 답변]\n", 1)[1]
    if answer.startswith(GOOD):
        return {"correctness": 5, "legal_basis": 5, "clarity": 4, "reason": "조문과 기한이 정확함"}
    return {"correctness": 1, "legal_basis": 1, "clarity": 2, "reason": "근거가 없음"}


def _config(server: FakeTeacherServer) -> TeacherConfig:
    return TeacherConfig(
        provider="openai_compatible",
        model="judge-1",
        base_url=server.openai_base_url,
        api_key_env="JUDGE_KEY",
        max_retries=0,
        max_concurrency=2,
    )


def test_judge_scores_both_models_with_reasons(monkeypatch, tmp_path):
    monkeypatch.setenv("JUDGE_KEY", "fake-judge-key")
    rows = _rows()
    with FakeTeacherServer(_judge, require_api_key=True) as server:
        server.script("malformed")  # the first request gets an unreadable reply: counted, kept with its reason
        summary = run_judge(_config(server), rows, tmp_path)
        requests = [r for r in server.requests if r.path == "/v1/chat/completions"]
    assert summary["requests"] == 4 and summary["errors"] == 1 and "unreadable judgement" in summary["last_error"]
    assert len(requests) == 4
    judged = [row[which]["scores"]["judge"] for row in rows for which in MODELS]
    assert sum("error" in j for j in judged) == 1
    scored = [(row[which]["answer"], row[which]["scores"]["judge"]) for row in rows for which in MODELS]
    for answer, judge in scored:
        if "error" in judge:
            continue
        assert judge["score"] == pytest.approx(14 / 3 if answer == GOOD else 4 / 3, abs=1e-3)  # mean of the criteria
        assert judge["reason"]

    metrics = aggregate(rows, examples([0, 1]))
    assert metrics["tuned"]["all"]["judge_mean"] > metrics["base"]["all"]["judge_mean"]
    assert metrics["tuned"]["all"]["judge_n"] + metrics["base"]["all"]["judge_n"] == 3

    report_metrics = {
        "run_name": "t",
        "settings": {"max_new_tokens": 8, "batch_size": 1, "temperature": 0.0, "bootstrap_resamples": 10, "seed": 0},
        "examples": {"test": 2, "val": 0, "generated": 2},
        "loss": {},
        "generation": metrics,
        "benchmarks": [],
        "judge": summary,
        "headline": [],
        "verdict": "No significant difference between tuned and base (0 better, 0 worse of 0 metrics): ",
    }
    write_report(tmp_path, report_metrics, rows, tmp_path / "no-train")
    text = (tmp_path / "report.md").read_text(encoding="utf-8")
    assert "openai_compatible:judge-1: 4 requests, 1 errors" in text


def test_judge_without_key_is_an_error_naming_the_variable(monkeypatch, tmp_path):
    monkeypatch.delenv("JUDGE_KEY", raising=False)
    with FakeTeacherServer(_judge) as server:
        with pytest.raises(SlmError, match="JUDGE_KEY"):
            run_judge(_config(server), _rows(), tmp_path)


def test_evaluate_stage_runs_the_judge_when_configured(monkeypatch, tmp_path, tmp_path_factory):
    import json

    from slm_forest.config import EvaluateConfig, RunConfig
    from slm_forest.pipeline import run_stage
    from tests.test_evaluate_tiny import copy_run, tiny_run

    if "judge" not in EvaluateConfig.model_fields:
        pytest.skip("slm_forest.config.EvaluateConfig has no `judge: TeacherConfig | None` field yet")
    monkeypatch.setenv("JUDGE_KEY", "fake-judge-key")
    run = copy_run(tiny_run(tmp_path_factory), tmp_path)
    with FakeTeacherServer(_judge) as server:
        judge = _config(server).model_dump(mode="json")
        cfg = RunConfig.model_validate(
            {
                "run_name": run.name,
                "runs_dir": str(run.parent),
                "evaluate": {"max_examples": 2, "max_new_tokens": 8, "judge": judge},
            }
        )
        run_stage(cfg, "evaluate")
    metrics = json.loads((run / "evaluate" / "metrics.json").read_text(encoding="utf-8"))
    assert metrics["judge"]["requests"] == 4 and metrics["judge"]["errors"] == 0
    assert metrics["generation"]["tuned"]["all"]["judge_n"] == 2
    assert "judge score (1-5)" in {row["metric"] for row in metrics["headline"]}
    assert "openai_compatible:judge-1: 4 requests" in (run / "evaluate" / "report.md").read_text(encoding="utf-8")


def test_a_second_evaluation_of_the_same_answers_reads_the_ledger_and_pays_nothing(monkeypatch, tmp_path):
    monkeypatch.setenv("JUDGE_KEY", "fake-judge-key")
    with FakeTeacherServer(_judge) as server:
        first = run_judge(_config(server), _rows(), tmp_path)
        rows = _rows()
        again = run_judge(_config(server), rows, tmp_path)
        assert len(server.generation_requests()) == 4
    assert first["sent"] == 4 and first["cost_usd_this_run"] == first["cost_usd"]
    assert again["sent"] == 0 and again["from_ledger"] == 4 and again["cost_usd_this_run"] == 0
    assert again["cost_usd"] == first["cost_usd"]  # what the verdicts cost, wherever they came from
    assert all("score" in row[which]["scores"]["judge"] for row in rows for which in MODELS)
    assert (tmp_path / "judge_ledger.jsonl").read_text(encoding="utf-8").count('"type":"done"') == 4


def test_evaluate_max_cost_usd_stops_the_judge_in_one_line(monkeypatch, tmp_path):
    monkeypatch.setenv("JUDGE_KEY", "fake-judge-key")
    prices = {"judge-1": {"input_per_mtok": 20.0, "output_per_mtok": 20.0}}  # about a cent per request
    with FakeTeacherServer(_judge) as server:
        judge = _config(server).model_copy(update={"max_concurrency": 1})
        with pytest.raises(SlmError, match=r"evaluate\.judge: budget reached: .* of evaluate\.max_cost_usd \$0\.02"):
            run_judge(judge, _rows(), tmp_path, max_cost_usd=0.02, prices=prices)
        paid = len(server.generation_requests())
        assert 1 <= paid < 4
        summary = run_judge(judge, _rows(), tmp_path, max_cost_usd=1.0, prices=prices)
        assert len(server.generation_requests()) == 4 and summary["sent"] == 4 - paid
