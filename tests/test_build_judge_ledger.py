"""`slm build`'s judge and second teacher pay once: build/judge_ledger.jsonl, build.max_cost_usd, kills and reruns.

The real openai and anthropic SDKs talk to tests/fake_teacher_server.py (nothing in them is patched); the run is the
small hand-made one of test_review_api (statute articles of 소득세법, pairs that pass every rule).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from slm_datagen.dataset.stats import dataset_stats
from slm_datagen.dataset.teacher_calls import JUDGE_LEDGER_NAME
from slm_forest.config import RunConfig
from slm_forest.errors import SlmError
from slm_forest.files import read_jsonl
from slm_forest.manifest import read_manifest
from slm_forest.pipeline import run_stage
from slm_forest.records import Document
from tests.fake_teacher_server import FakeTeacherServer, prompt_text
from tests.test_build_dataset import chunk_of, make_pair, write_upstream
from tests.test_redact import echo_server  # noqa: F401 - a fixture: a server that answers 401 to everything

REPO = Path(__file__).resolve().parent.parent
ARTICLE = "제{n}조(비과세소득) 다음 각 호의 소득에 대해서는 소득세를 과세하지 아니한다.\n1. 공익신탁의 이익"
ANSWER = "{cite}에 따르면 공익신탁의 이익은 소득세를 과세하지 아니합니다. 구체적인 적용은 사실관계에 따라 달라집니다."
UNFAITHFUL_MARK = "질문 3번"  # the judge scores this pair 1


def responder(request: dict, provider: str):
    prompt = prompt_text(request, provider)
    if "채점 기준" in prompt:
        score = 1 if UNFAITHFUL_MARK in prompt else 5
        return {"score": score, "reason": "원문과 다름" if score == 1 else "원문에 충실함"}
    cite = prompt.split("[질문]\n", 1)[1].split("에서", 1)[0]
    return ANSWER.format(cite=cite)  # the second teacher agrees: same article


def write_run(root: Path, name: str = "jl", n_pairs: int = 6) -> Path:
    docs = [
        Document(
            id=f"d{n}",
            kind="statute_article",
            title=f"소득세법 제{n}조",
            text=ARTICLE.format(n=n),
            source="test",
            law_name="소득세법",
            article_no=n,
            effective_date="2025-01-01",
        )
        for n in range(12, 12 + n_pairs)
    ]
    chunks = [chunk_of(d) for d in docs]
    pairs = [
        make_pair(c, f"{c.citation}에서 비과세되는 소득은 무엇인가요? 질문 {i}번", ANSWER.format(cite=c.citation), i)
        for i, c in enumerate(chunks)
    ]
    run_dir = root / "runs" / name
    write_upstream(run_dir, docs, chunks, pairs)
    return run_dir


def config(root: Path, server: FakeTeacherServer, name: str = "jl", **build) -> dict:
    judge = {"provider": "openai", "model": "gpt-4o-mini", "base_url": server.openai_base_url, "max_retries": 2}
    second = {"provider": "anthropic", "model": "claude-haiku-4-5", "base_url": server.anthropic_base_url}
    return {
        "run_name": name,
        "runs_dir": str(root / "runs"),
        "build": {"judge": judge, "second_teacher": second | {"max_retries": 2}, **build},
    }


@pytest.fixture
def keys(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "test-openai-key-123456")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "test-anthropic-key-123456")


def sent(server: FakeTeacherServer) -> int:
    return sum(1 for r in server.generation_requests() if r.status == 200)


def test_a_forced_rebuild_answers_every_check_from_the_ledger_and_pays_nothing(tmp_path, keys):
    run_dir = write_run(tmp_path)
    with FakeTeacherServer(responder) as server:
        cfg = RunConfig.model_validate(config(tmp_path, server))
        first = run_stage(cfg, "build")
        assert sent(server) == 6 + 5  # every pair judged; the one scored 1 is rejected before the second teacher
        info = (run_dir / "build" / "build_info.json").read_bytes()
        card = (run_dir / "build" / "README.md").read_text(encoding="utf-8")
        again = run_stage(cfg, "build", force=True)
        assert sent(server) == 11  # nothing new reached the server
        assert server.duplicate_keys() == {}
    assert not again.skipped
    run = read_manifest(run_dir / "build").stats["teacher_checks_this_run"]
    assert run["judge"]["sent"] == 0 and run["judge"]["from_ledger"] == 6 and run["judge"]["cost_usd_this_run"] == 0
    assert run["second_teacher"]["from_ledger"] == 5 and run["second_teacher"]["cost_usd_this_run"] == 0
    assert first.manifest.stats["teacher_checks_this_run"]["judge"]["cost_usd_this_run"] > 0
    # the dataset files do not depend on where the answers came from: same bytes, so train is not redone
    assert (run_dir / "build" / "build_info.json").read_bytes() == info
    assert (run_dir / "build" / "README.md").read_text(encoding="utf-8") == card
    assert [(e.path, e.sha256) for e in first.manifest.outputs] == [(e.path, e.sha256) for e in again.manifest.outputs]
    judge = json.loads(info)["judge"]["judge"]
    assert judge["requests"] == 6 and judge["scores"] == {"1": 1, "5": 5} and judge["cost_usd"] > 0
    # the card and `slm data stats` count what the checks cost
    stats = dataset_stats(run_dir / "build")
    assert stats["cost_usd"]["judge"] == judge["cost_usd"] and stats["cost_usd"]["second_teacher"] > 0
    assert f"LLM judge ${judge['cost_usd']:.4f}" in card and "LLM judge: openai/gpt-4o-mini, 6 requests" in card
    ledger = list(read_jsonl(run_dir / "build" / JUDGE_LEDGER_NAME))
    assert len(ledger) == 11 and {row["role"] for row in ledger} == {"build.judge", "build.second_teacher"}
    assert [r["rule"] for r in list(read_jsonl(run_dir / "build" / "rejected.jsonl"))] == ["judge_low_score"]


def test_the_budget_stops_the_judge_in_one_line_and_a_higher_one_resumes_without_paying_twice(tmp_path, keys):
    run_dir = write_run(tmp_path)
    with FakeTeacherServer(responder) as server:
        # a price that makes every judge request cost about a cent, so a 2.5-cent budget covers two of them
        raw = config(tmp_path, server, max_cost_usd=0.025)
        raw["build"]["judge"]["max_concurrency"] = 1
        raw["distill"] = {"prices": {"gpt-4o-mini": {"input_per_mtok": 20.0, "output_per_mtok": 20.0}}}
        with pytest.raises(SlmError, match=r"build\.judge: budget reached: \$0\.0\d+ of build\.max_cost_usd \$0\.025"):
            run_stage(RunConfig.model_validate(raw), "build")
        paid = list(read_jsonl(run_dir / "build" / JUDGE_LEDGER_NAME))
        assert 1 <= len(paid) < 6 and sent(server) == len(paid)
        assert read_manifest(run_dir / "build") is None  # nothing of a dataset was written
        raw["build"]["max_cost_usd"] = 5.0
        run_stage(RunConfig.model_validate(raw), "build")
        assert sent(server) == 6 + 5 and server.duplicate_keys() == {}
    done = [row for row in list(read_jsonl(run_dir / "build" / JUDGE_LEDGER_NAME)) if row["type"] == "done"]
    assert len({row["key"] for row in done}) == len(done) == 11


def test_an_unknown_price_with_a_budget_is_refused_before_anything_is_sent(tmp_path, keys):
    write_run(tmp_path)
    with FakeTeacherServer(responder) as server:
        raw = config(tmp_path, server, max_cost_usd=1.0)
        raw["build"]["judge"]["model"] = "judge-of-unknown-price"
        with pytest.raises(SlmError, match="no price known for model 'judge-of-unknown-price'.*build.max_cost_usd"):
            run_stage(RunConfig.model_validate(raw), "build")
        assert sent(server) == 0


def test_transient_failures_are_retried_and_a_request_out_of_retries_is_asked_again_by_a_plain_rerun(tmp_path, keys):
    run_dir = write_run(tmp_path)
    with FakeTeacherServer(responder) as server:
        raw = config(tmp_path, server)
        raw["build"]["judge"] |= {"max_concurrency": 1, "max_retries": 1}
        raw["build"]["second_teacher"] = None
        # first request: 500 then 500 (out of retries: an error line); second request: 503 then ok (retried)
        server.script("server_error", "server_error", "overloaded")
        cfg = RunConfig.model_validate(raw)
        first = run_stage(cfg, "build")
        assert first.manifest.stats["retry_on_rerun"] == 1
        assert json.loads((run_dir / "build" / "build_info.json").read_text())["judge"]["judge"]["judged"] == 5
        before = sent(server)
        second = run_stage(cfg, "build")  # no --force: the stage asks for the unjudged pair again, and only it
        assert not second.skipped and sent(server) == before + 1
        assert second.manifest.stats["retry_on_rerun"] == 0
        assert run_stage(cfg, "build").skipped


def _slm(*args: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO), "COLUMNS": "300", "SLM_DEBUG": ""}
    return subprocess.Popen(
        [sys.executable, "-m", "slm_forest.cli", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def test_a_build_killed_mid_judge_does_not_pay_twice_for_what_it_recorded(tmp_path, keys):
    run_dir = write_run(tmp_path, n_pairs=8)
    ledger = run_dir / "build" / JUDGE_LEDGER_NAME
    with FakeTeacherServer(responder, latency=0.4) as server:
        raw = config(tmp_path, server)
        raw["build"]["judge"]["max_concurrency"] = 2
        path = tmp_path / "jl.yaml"
        path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
        proc = _slm("build", str(path))
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and (not ledger.exists() or ledger.read_bytes().count(b"\n") < 3):
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        recorded = {row["key"] for row in list(read_jsonl(ledger))}
        assert 3 <= len(recorded) < 8
        run_stage(RunConfig.model_validate(raw), "build")
        answered = [r.request_key for r in server.generation_requests() if r.status == 200]
    assert all(answered.count(key) == 1 for key in recorded)  # recorded before the kill: never sent again
    # only what was in flight at the kill (at most max_concurrency requests) could have been answered twice
    assert sum(n - 1 for n in map(answered.count, set(answered))) <= 2
    assert json.loads((run_dir / "build" / "build_info.json").read_text())["judge"]["judge"]["judged"] == 8


def test_a_refused_key_stops_the_build_in_one_line_without_the_key(tmp_path, keys, echo_server):  # noqa: F811
    write_run(tmp_path)
    raw = {
        "run_name": "jl",
        "runs_dir": str(tmp_path / "runs"),
        "build": {"judge": {"provider": "openai", "model": "gpt-4o-mini", "base_url": echo_server + "/v1"}},
    }
    path = tmp_path / "jl.yaml"
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    proc = _slm("build", str(path))
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 1
    assert "build.judge (openai:gpt-4o-mini) was refused: HTTP 401" in err and "OPENAI_API_KEY" in err
    assert "Traceback" not in err and "test-openai-key-123456" not in out + err
