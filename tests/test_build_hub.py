"""`build.push_to_hub`: a push that fails leaves a consistent build stage, and never shows the token (issue 13).

The Hub is a local server that refuses every request with 401 and echoes the Authorization header in its body, as
a real 401 behind some proxies does. The upload goes through the real huggingface_hub client.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from slm_datagen.dataset.hub import main as hub_main
from slm_forest.errors import SlmError
from slm_forest.manifest import outputs_intact, read_manifest
from slm_forest.pipeline import run_stage
from tests.test_build_dataset import small_run

TOKEN = "hf_SecretForTests0123"
ANSWERS = tuple(
    f"증여세는 증여받은 날이 속하는 달의 말일부터 3개월 이내에 신고하고 납부해야 합니다. 확인 사례 {i}번입니다."
    for i in range(3)
)


class _EchoingHub(BaseHTTPRequestHandler):
    def _refuse(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        body = json.dumps(
            {"error": f"Invalid credentials in Authorization header: {self.headers.get('Authorization')}"}
        )
        data = body.encode()
        self.send_response(401)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PUT = _refuse

    def log_message(self, *args) -> None:
        return None


@pytest.fixture
def echoing_hub(monkeypatch):
    import huggingface_hub.constants

    server = ThreadingHTTPServer(("127.0.0.1", 0), _EchoingHub)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(huggingface_hub.constants, "ENDPOINT", f"http://127.0.0.1:{server.server_address[1]}")
    yield server
    server.shutdown()
    server.server_close()


def _with_push(cfg, repo="someone/dataset"):
    return cfg.model_copy(update={"build": cfg.build.model_copy(update={"push_to_hub": repo})})


def test_a_failed_push_leaves_the_new_build_recorded_and_says_how_to_retry(tmp_path, echoing_hub, capsys):
    cfg = small_run(tmp_path, answers=ANSWERS)
    first = run_stage(cfg, "build")
    assert first.counts["accepted"] == len(ANSWERS)
    capsys.readouterr()

    pushing = _with_push(cfg)
    report = run_stage(pushing, "build")  # push_to_hub is part of the stage's config: this reruns it

    stage_dir = cfg.run_dir() / "build"
    manifest = read_manifest(stage_dir)
    assert manifest is not None and manifest.complete and manifest.fingerprint == report.manifest.fingerprint
    assert manifest.finished_at >= first.manifest.finished_at and manifest.config["push_to_hub"] == "someone/dataset"
    assert outputs_intact(manifest, cfg.run_dir())  # the files on disk are the ones the manifest describes
    hub = manifest.stats["hub"]
    assert hub["pushed"] is False and "401" in hub["error"]
    assert hub["retry"] == f"python -m slm_datagen.dataset.hub {stage_dir} someone/dataset"
    assert "push to someone/dataset failed" in report.summary

    err = capsys.readouterr().err
    warning = " ".join(err.split())
    assert "the dataset is built, but the push to someone/dataset failed" in warning
    assert f"Retry: python -m slm_datagen.dataset.hub {stage_dir} someone/dataset" in warning
    assert TOKEN not in err and TOKEN not in (stage_dir / "manifest.json").read_text(encoding="utf-8")
    assert "Bearer <HF_TOKEN>" in hub["error"] or "hf_***" in hub["error"]

    again = run_stage(pushing, "build")  # consistent: a plain rerun skips the finished stage
    assert again.skipped


def test_a_push_that_cannot_happen_fails_before_the_build_rewrites_anything(tmp_path, monkeypatch):
    cfg = small_run(tmp_path, answers=ANSWERS)
    run_stage(cfg, "build")
    stage_dir = cfg.run_dir() / "build"
    before = {p.name: p.stat().st_mtime_ns for p in stage_dir.iterdir() if p.is_file()}
    monkeypatch.delenv("HF_TOKEN", raising=False)
    with pytest.raises(SlmError, match="HF_TOKEN is not set") as info:
        run_stage(_with_push(cfg), "build")
    assert "build.push_to_hub: null" in info.value.hint
    assert {p.name: p.stat().st_mtime_ns for p in stage_dir.iterdir() if p.is_file()} == before
    previous = read_manifest(stage_dir)
    assert previous is not None and outputs_intact(previous, cfg.run_dir())  # the old build is still whole


def test_the_retry_command_reports_a_failed_push_in_one_line_without_the_token(tmp_path, echoing_hub, capsys):
    cfg = small_run(tmp_path, answers=ANSWERS)
    run_stage(cfg, "build")
    capsys.readouterr()
    assert hub_main([str(cfg.run_dir() / "build"), "someone/dataset"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: push to someone/dataset failed: ") and err.count("\n") == 1
    assert TOKEN not in err
    assert hub_main([str(tmp_path), "someone/dataset"]) == 1
    assert "no train.jsonl here" in capsys.readouterr().err
