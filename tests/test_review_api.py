"""`slm review`'s decisions log and JSON API end to end, and `slm build` following the decisions.

A small hand-made run (statute articles of 소득세법; pairs citing 법인세법, which is not collected, are held for
review) is built once per test; the API runs on uvicorn in a thread, or as a real `slm review` process that is killed.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import pytest

from slm_datagen.dataset.stats import dataset_stats
from slm_datagen.review.app import make_app
from slm_datagen.review.decisions import (
    TORN_FILE,
    Decision,
    append_decision,
    decisions_path,
    read_decisions,
    repair_tear,
)
from slm_datagen.review.state import load_state
from slm_forest.config import RunConfig
from slm_forest.errors import SlmError
from slm_forest.files import read_jsonl, write_jsonl
from slm_forest.local_server import LocalServer
from slm_forest.pipeline import run_stage
from slm_forest.records import Document, QAPair
from tests.test_build_dataset import chunk_of, make_pair, write_stage_manifest, write_upstream

REPO = Path(__file__).resolve().parent.parent
ARTICLE = (
    "제{n}조(비과세소득) ① 다음 각 호의 소득에 대해서는 소득세를 과세하지 아니한다.\n1. 공익신탁의 이익\n"
    "2. 사업소득 중 논밭을 작물 생산에 이용하게 하여 발생하는 소득"
)
GOOD_EDIT = "{cite}에 따라 공익신탁의 이익은 소득세를 과세하지 아니합니다. 구체적인 적용은 사실관계에 따라 달라집니다."


def make_run(root: Path, name: str = "rv") -> RunConfig:
    """4 accepted pairs and 4 held for review (citation_unverified: 법인세법 is not collected)."""
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
        for n in (12, 13, 14, 15)
    ]
    chunks = [chunk_of(d) for d in docs]
    pairs = []
    for i, c in enumerate(chunks):
        answer = f"{c.citation} 제1항에 따르면 공익신탁의 이익과 논밭 임대소득은 소득세를 과세하지 아니합니다. 구체적인 적용은 사실관계에 따라 달라집니다."
        pairs.append(make_pair(c, f"{c.citation}에서 비과세되는 소득은 무엇인가요?", answer, i, citations=[c.citation]))
        held = f"{c.citation}에 따라 공익신탁의 이익은 비과세되며, 법인세법 제55조의 세율과는 별개로 적용됩니다. 구체적인 적용은 사실관계에 따라 달라집니다."
        question = f"{c.citation}와 법인세법의 관계를 설명해 주세요 {i}"
        pairs.append(make_pair(c, question, held, 100 + i, citations=[c.citation, "법인세법 제55조"]))
    cfg = RunConfig(run_name=name, runs_dir=str(root / "runs"))
    write_upstream(cfg.run_dir(), docs, chunks, pairs)
    run_stage(cfg, "build")
    return cfg


def held_ids(cfg: RunConfig) -> list[str]:
    return [row["pair"]["id"] for row in read_jsonl(cfg.run_dir() / "build" / "review.jsonl")]


@pytest.fixture
def run(tmp_path) -> RunConfig:
    return make_run(tmp_path)


@pytest.fixture
def api(run):
    server = LocalServer(make_app(load_state(run, "kim")), "127.0.0.1", 0)
    server.run_in_thread()
    with httpx.Client(base_url=server.url, timeout=30) as client:
        yield client
    server.shutdown()
    server.server_close()


def decide(client: httpx.Client, pair_id: str, **body) -> httpx.Response:
    return client.post(f"/api/pairs/{pair_id}/decision", json=body)


def test_the_queue_lists_the_held_pairs_and_one_pair_comes_with_its_source(api, run):
    held = held_ids(run)
    listing = api.get("/api/pairs", params={"queue": "1"}).json()
    assert listing["total"] == 4 and [r["id"] for r in listing["rows"]] == held
    assert api.get("/api/pairs", params={"split": "train"}).json()["total"] >= 1
    assert api.get("/api/pairs", params={"q": "법인세법의 관계를 설명해 주세요 2"}).json()["total"] == 1
    assert api.get("/api/pairs", params={"article": "제55조"}).json()["total"] == 4
    detail = api.get(f"/api/pairs/{held[0]}").json()
    assert detail["status"] == "review" and detail["findings"][0]["rule"] == "citation_unverified"
    assert detail["source"]["text"].startswith("제12조(비과세소득)")
    cited = {c["label"]: c["text"] for c in detail["cited"]}
    assert cited["소득세법 제12조"].startswith("제12조") and cited["법인세법 제55조"] is None  # not collected
    summary = api.get("/api/summary").json()
    assert summary["progress"]["waiting"] == 4 and summary["progress"]["held"] == 4


def test_an_edit_that_fails_a_rule_is_refused_with_its_findings(api, run):
    pair_id = held_ids(run)[0]
    english = decide(api, pair_id, decision="edit", answer="This answer is written in English only, sorry.")
    assert english.status_code == 422 and "not_korean" in english.json()["error"]
    assert {"rule": "not_korean", "action": "reject"}.items() <= english.json()["findings"][0].items()
    empty = decide(api, pair_id, decision="edit", answer="   ")
    assert empty.status_code == 422 and "empty" in empty.json()["error"]
    wrong_article = decide(api, pair_id, decision="edit", answer=GOOD_EDIT.format(cite="소득세법 제99조"))
    assert wrong_article.status_code == 201  # 소득세법 is collected only in part: held for review, not rejected
    preview = api.post(f"/api/pairs/{pair_id}/check", json={"answer": "네"}).json()
    assert preview["refused"].startswith("too_short")
    assert decide(api, pair_id, decision="reject").status_code == 422  # a reason is required
    lines = decisions_path(run.run_dir()).read_text(encoding="utf-8").splitlines()
    assert len(lines) == 1  # refused decisions are never written


def test_two_clients_deciding_at_once_keep_every_line_and_the_last_wins(api, run):
    held = held_ids(run)
    reasons = [f"이유 {n}" for n in range(40)]

    def worker(start: int) -> None:
        with httpx.Client(base_url=str(api.base_url), timeout=30) as client:
            for reason in reasons[start::2]:
                assert decide(client, held[0], decision="reject", reason=reason).status_code == 201
                assert decide(client, held[1], decision="approve").status_code == 201

    threads = [threading.Thread(target=worker, args=(start,)) for start in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    log = read_decisions(decisions_path(run.run_dir()), run.run_name)
    assert len(log.decisions) == 80 and log.torn is None  # every line whole, none lost
    last_reject = [d for d in log.decisions if d.pair_id == held[0]][-1]
    assert log.latest[held[0]] == last_reject
    assert api.get(f"/api/pairs/{held[0]}").json()["decision"]["reason"] == last_reject.reason
    assert api.get("/api/summary").json()["progress"]["reviewed"] == 2


def _start_cli(cfg_path: Path) -> tuple[subprocess.Popen, str]:
    env = os.environ | {"PYTHONPATH": str(REPO), "COLUMNS": "300"}
    process = subprocess.Popen(
        [sys.executable, "-m", "slm_forest.cli", "review", str(cfg_path), "--port", "0", "--reviewer", "lee"],
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    line = process.stderr.readline()
    match = re.search(r"http://127\.0\.0\.1:\d+", line)
    assert match, line + process.stderr.read()
    return process, match[0]


def test_decisions_survive_killing_the_server(run, tmp_path):
    cfg_path = tmp_path / "rv.yaml"
    cfg_path.write_text(f"run_name: rv\nruns_dir: {run.runs_dir}\n", encoding="utf-8")
    held = held_ids(run)
    process, url = _start_cli(cfg_path)
    try:
        assert httpx.post(f"{url}/api/pairs/{held[0]}/decision", json={"decision": "approve"}).status_code == 201
        body = {"decision": "reject", "reason": "출처와 무관"}
        assert httpx.post(f"{url}/api/pairs/{held[1]}/decision", json=body).status_code == 201
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
    process, url = _start_cli(cfg_path)
    try:
        first = httpx.get(f"{url}/api/pairs/{held[0]}").json()
        second = httpx.get(f"{url}/api/pairs/{held[1]}").json()
        assert first["decision"]["decision"] == "approve" and first["decision"]["reviewer"] == "lee"
        assert second["decision"]["reason"] == "출처와 무관" and second["state"] == "decided"
        assert httpx.get(f"{url}/api/pairs", params={"queue": "1"}).json()["total"] == 2
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=10)


def test_build_follows_the_decisions_and_reruns_without_force(run, api):
    held = held_ids(run)
    assert decide(api, held[0], decision="approve").status_code == 201
    assert decide(api, held[1], decision="reject", reason="사실과 다름").status_code == 201
    edited = GOOD_EDIT.format(cite="소득세법 제14조")
    assert decide(api, held[2], decision="edit", answer=edited).status_code == 201
    report = run_stage(run, "build")  # no --force: the decisions are part of the fingerprint
    assert not report.skipped
    build = run.run_dir() / "build"
    examples = {
        row["meta"]["pair_id"]: row
        for split in ("train", "val", "test")
        for row in read_jsonl(build / f"{split}.jsonl")
    }
    assert held[0] in examples and held[2] in examples
    assert examples[held[2]]["messages"][-1]["content"] == edited
    rejected = {row["pair"]["id"]: row for row in read_jsonl(build / "rejected.jsonl")}
    assert rejected[held[1]]["rule"] == "human_rejected" and "사실과 다름" in rejected[held[1]]["details"]
    assert [row["pair"]["id"] for row in read_jsonl(build / "review.jsonl")] == [held[3]]
    assert run_stage(run, "build").skipped
    # the open page picks up the new build
    assert api.get(f"/api/pairs/{held[1]}").json()["status"] == "rejected"
    assert api.get(f"/api/pairs/{held[0]}").json()["status"] in ("train", "val", "test")
    # the page's progress and `slm data stats` are the same numbers
    page = api.get("/api/summary").json()["progress"]
    stats = dataset_stats(build)["human_review"]
    assert page == stats
    assert stats["applied"] == {"approve": 1, "reject": 1, "edit": 1} and stats["reviewed"] == 3
    assert stats["waiting"] == 1 and stats["pending_build"] == 0
    assert "1 approved, 1 rejected (rule `human_rejected`), 1 edited" in (build / "README.md").read_text("utf-8")


def test_a_decision_about_changed_content_is_stale_and_not_applied(run, api):
    held = held_ids(run)
    assert decide(api, held[0], decision="reject", reason="사실과 다름").status_code == 201
    pairs_path = run.run_dir() / "distill" / "qa_pairs.jsonl"
    pairs = [QAPair(**row) for row in read_jsonl(pairs_path)]
    changed = [
        p.model_copy(update={"answer": p.answer.replace("별개로", "따로")}) if p.id == held[0] else p for p in pairs
    ]
    write_jsonl(pairs_path, changed)  # the teacher was asked again: same pair id, new answer
    write_stage_manifest(run.run_dir(), "distill", "qa_pairs.jsonl")
    run_stage(run, "build")
    build = run.run_dir() / "build"
    assert held[0] in {row["pair"]["id"] for row in read_jsonl(build / "review.jsonl")}  # still held
    applied = json.loads((build / "review_applied.json").read_text("utf-8"))
    assert [s["pair_id"] for s in applied["stale"]] == [held[0]] and applied["applied"]["reject"] == 0
    fresh = load_state(run, "kim")
    server = LocalServer(make_app(fresh), "127.0.0.1", 0)
    server.run_in_thread()
    try:
        detail = httpx.get(f"{server.url}/api/pairs/{held[0]}").json()
        assert detail["state"] == "stale" and detail["decision"]["decision"] == "reject"
        progress = httpx.get(f"{server.url}/api/summary").json()["progress"]
        assert progress["stale"] == 1 and progress["reviewed"] == 0
    finally:
        server.shutdown()
        server.server_close()


def test_a_torn_last_line_is_read_up_to_the_tear_and_kept_aside(tmp_path):
    path = tmp_path / "review" / "decisions.jsonl"
    first = append_decision(path, Decision("rv", "qa-1", "abc", "approve", reviewer="kim"))
    with open(path, "ab") as handle:
        handle.write(b'{"run": "rv", "pair_id": "qa-2", "pair_sha')  # killed mid-write
    log = read_decisions(path, "rv")
    assert log.decisions == [first] and log.torn_line == 2 and "pair_sha" in (log.torn or "")
    message = repair_tear(path)
    assert message and f"{path}:2:" in message
    assert (path.parent / TORN_FILE).read_text("utf-8").startswith('{"run": "rv", "pair_id": "qa-2"')
    append_decision(path, Decision("rv", "qa-3", "def", "approve"))
    log = read_decisions(path, "rv")
    assert [d.pair_id for d in log.decisions] == ["qa-1", "qa-3"] and log.torn is None
    assert repair_tear(path) is None


def test_a_decisions_file_of_another_run_is_refused_in_one_line(run):
    path = decisions_path(run.run_dir())
    append_decision(path, Decision("other-run", "qa-1", "abc", "approve"))
    with pytest.raises(SlmError) as info:
        load_state(run, "kim")
    assert str(info.value).startswith(f"{path}:1: decisions of run 'other-run', not of run 'rv'")
    assert "\n" not in str(info.value)
    with pytest.raises(SlmError, match="other-run"):
        run_stage(run, "build")


def test_the_page_is_served_and_a_key_guards_the_api(run):
    server = LocalServer(make_app(load_state(run, "kim"), api_key="k" * 24), "127.0.0.1", 0)
    server.run_in_thread()
    try:
        page = httpx.get(f"{server.url}/")
        assert page.status_code == 200 and "review.js" in page.text
        assert "Noto Sans KR" in httpx.get(f"{server.url}/static/review.css").text
        assert httpx.get(f"{server.url}/api/summary").status_code == 401
        ok = httpx.get(f"{server.url}/api/summary", headers={"Authorization": "Bearer " + "k" * 24})
        assert ok.status_code == 200 and ok.json()["run"] == "rv"
    finally:
        server.shutdown()
        server.server_close()


def test_review_refuses_another_interface_without_a_key(run, tmp_path):
    from typer.testing import CliRunner

    from slm_forest.cli import app

    cfg_path = tmp_path / "rv.yaml"
    cfg_path.write_text(f"run_name: rv\nruns_dir: {run.runs_dir}\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["review", str(cfg_path), "--host", "0.0.0.0"])
    assert isinstance(result.exception, SlmError) and "--api-key-env" in result.exception.hint
