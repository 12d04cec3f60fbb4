"""Secrets never reach a message, a log line, a traceback (SLM_DEBUG=1 too), a manifest or a card.

The end-to-end tests point the real clients (huggingface_hub, the openai SDK) at a local server that answers 401
with the credentials it was sent echoed in the body, as some hubs and proxies do.
"""

from __future__ import annotations

import http.server
import json
import logging
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from slm_forest import redact
from slm_forest.files import atomic_writer, write_json, write_jsonl
from slm_forest.manifest import Manifest, write_manifest

REPO = Path(__file__).resolve().parent.parent
SMOKE = REPO / "configs" / "smoke.yaml"
HF_SECRET = "hf_EchoedBack0123fake"
TEACHER_SECRET = "test-teacher-key-EchoedBack-98765"


class _EchoCredentials(http.server.BaseHTTPRequestHandler):
    """401 for everything, with the Authorization header in the body: the Hub's shape, or OpenAI's under /v1/."""

    def _reply(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        if length:
            self.rfile.read(length)
        sent = self.headers.get("authorization", "")
        if self.path.startswith("/v1/"):
            body = {"error": {"message": f"Incorrect API key provided: {sent}", "type": "invalid_request_error"}}
        else:
            body = {"error": f"Invalid credentials in Authorization header: {sent}"}
        data = json.dumps(body).encode()
        self.send_response(401)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_HEAD = _reply

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def echo_server() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _EchoCredentials)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _slm(*args: str, **env: str | None) -> subprocess.CompletedProcess:
    full = {**os.environ, "PYTHONPATH": str(REPO), "COLUMNS": "400"}
    for name, value in env.items():
        if value is None:
            full.pop(name, None)
        else:
            full[name] = value
    return subprocess.run([sys.executable, "-m", "slm_forest.cli", *args], capture_output=True, text=True, env=full)


@pytest.fixture(scope="module")
def distilled(tmp_path_factory) -> Path:
    """runs/ of the smoke config up to distill, made once; each test copies it."""
    root = tmp_path_factory.mktemp("distilled")
    result = _slm("run", str(SMOKE), "--to", "distill", "--set", f"runs_dir={root / 'runs'}")
    assert result.returncode == 0, result.stderr
    return root / "runs"


def _files_containing(root: Path, secret: str) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and secret.encode() in p.read_bytes()]


@pytest.mark.parametrize("debug", ["0", "1"])
def test_a_hub_401_that_echoes_hf_token_never_prints_it(tmp_path, echo_server, distilled, debug):
    shutil.copytree(distilled, tmp_path / "runs")
    result = _slm(
        "build",
        str(SMOKE),
        "--set",
        "build.formats=[chat]",
        "--set",
        "build.push_to_hub=someone/tax-qa",
        HF_TOKEN=HF_SECRET,
        HF_ENDPOINT=echo_server,
        HF_HUB_OFFLINE=None,
        TRANSFORMERS_OFFLINE=None,
        SLM_DEBUG=debug,
    )
    output = result.stdout + result.stderr
    # A failed push is the build's last step: the stage is recorded and the failure is a warning with the retry command
    assert result.returncode == 0, output
    assert "<HF_TOKEN>" in output  # the server did echo it: the test saw the leak and its repair
    assert HF_SECRET not in output
    assert "python -m slm_datagen.dataset.hub" in output
    manifest = (tmp_path / "runs" / "smoke" / "build" / "manifest.json").read_text(encoding="utf-8")
    assert '"pushed": false' in manifest and "<HF_TOKEN>" in manifest
    assert _files_containing(tmp_path / "runs", HF_SECRET) == []


@pytest.mark.parametrize("debug", ["0", "1"])
def test_a_teacher_401_that_echoes_its_key_never_prints_it(tmp_path, echo_server, distilled, debug):
    shutil.copytree(distilled, tmp_path / "runs")
    teacher = (
        f"distill.teachers=[{{provider: openai_compatible, model: echo, base_url: '{echo_server}/v1', "
        "api_key_env: TEACHER_KEY_VAR, max_retries: 0}]"
    )
    result = _slm("distill", str(SMOKE), "--set", teacher, TEACHER_KEY_VAR=TEACHER_SECRET, SLM_DEBUG=debug)
    output = result.stdout + result.stderr
    assert result.returncode != 0 and "401" in output
    assert TEACHER_SECRET not in output
    assert _files_containing(tmp_path / "runs", TEACHER_SECRET) == []


# ------------------------------------------------------------------------------------------------ the pieces
def test_scrub_replaces_every_known_secret_by_its_variable(monkeypatch):
    monkeypatch.setenv("HF_TOKEN", HF_SECRET)
    monkeypatch.setenv("LAWGO_OC", "my-oc-id@x")
    monkeypatch.setenv("GROQ_API_KEY", "gsk_guessedFromTheName")  # not listed: its name says what it is
    monkeypatch.setenv("SERVE_KEY_VAR", "served-secret-value")
    monkeypatch.setenv("WANDB_API_KEY", "short")  # too short to replace safely
    redact.register_secret_envs(["SERVE_KEY_VAR"])
    text = f"Bearer {HF_SECRET}; OC=my-oc-id%40x and my-oc-id@x; gsk_guessedFromTheName; served-secret-value; short"
    assert (
        redact.scrub(text) == "Bearer <HF_TOKEN>; OC=<LAWGO_OC> and <LAWGO_OC>; <GROQ_API_KEY>; <SERVE_KEY_VAR>; short"
    )


def test_the_token_huggingface_cli_stored_is_a_secret_too(monkeypatch, tmp_path):
    (tmp_path / "hf_home").mkdir(exist_ok=True)
    (tmp_path / "hf_home" / "token").write_text("hf_storedOnDiskToken42\n")
    assert redact.scrub("token hf_storedOnDiskToken42") == "token <HF_TOKEN>"


def test_a_config_registers_its_teachers_key_variables(monkeypatch):
    from slm_forest.config import load_config

    monkeypatch.setenv("JUDGE_KEY_VAR", "judge-secret-value")
    assert redact.scrub("judge-secret-value") == "judge-secret-value"  # not a secret yet: nothing names it
    load_config(None, ["build.judge={provider: openai, model: m, api_key_env: JUDGE_KEY_VAR}"])
    assert redact.scrub("judge-secret-value") == "<JUDGE_KEY_VAR>"


def test_manifests_cards_and_jsonl_are_written_scrubbed(monkeypatch, tmp_path):
    monkeypatch.setenv("OPENAI_API_KEY", TEACHER_SECRET)
    manifest = Manifest(
        stage="distill",
        run_name="t",
        fingerprint="f",
        config={},
        stats={"last_error": f"401: Incorrect API key provided: {TEACHER_SECRET}"},
        started_at="now",
        finished_at="now",
        seconds=0.0,
    )
    write_manifest(tmp_path, manifest)
    with atomic_writer(tmp_path / "README.md") as card:
        card.write(f"# card\n\nrun with key {TEACHER_SECRET}\n")
    write_jsonl(tmp_path / "failures.jsonl", [{"reason": f"rejected key {TEACHER_SECRET}"}])
    write_json(tmp_path / "info.json", {"note": TEACHER_SECRET})
    for name in ("manifest.json", "README.md", "failures.jsonl", "info.json"):
        text = (tmp_path / name).read_text(encoding="utf-8")
        assert TEACHER_SECRET not in text and "<OPENAI_API_KEY>" in text, name


def test_log_records_are_scrubbed_whatever_handler_formats_them(monkeypatch):
    monkeypatch.setenv("HF_TOKEN", HF_SECRET)
    try:
        raise RuntimeError(f"401 body: Bearer {HF_SECRET}")
    except RuntimeError:
        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "token %s failed", (HF_SECRET,), sys.exc_info())
    redact.SecretFilter().filter(record)
    text = logging.Formatter().format(record)
    assert HF_SECRET not in text and "token <HF_TOKEN> failed" in text and "Bearer <HF_TOKEN>" in text


def test_installed_redaction_covers_print_logging_and_uncaught_tracebacks(tmp_path):
    # A fresh process: install() replaces sys.stdout/sys.stderr and the log-record factory for good.
    code = f"""
import logging, sys, threading
from slm_forest import redact
redact.install()
lib = logging.getLogger("some.library")  # its own handler and no propagation, like transformers' loggers
lib.addHandler(logging.StreamHandler(sys.stderr)); lib.propagate = False
print("stdout {HF_SECRET}")
lib.warning("a %s", "{HF_SECRET}")
threading.Thread(target=lambda: 1 / 0 if False else (_ for _ in ()).throw(ValueError("{HF_SECRET}"))).start()
raise KeyError("{HF_SECRET}")
"""
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO), "HF_TOKEN": HF_SECRET},
    )
    output = result.stdout + result.stderr
    assert HF_SECRET not in output
    assert output.count("<HF_TOKEN>") == 4 and "Traceback" in output
