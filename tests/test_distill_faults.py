"""Distill under the faults real endpoints produce (issue 13), one test per fault, through the real SDKs.

Cut bodies, hangs, a watchdog, transient vs content failures across reruns, AIMD on 429s without headers, temp files
left by a kill, SIGTERM with requests in flight. The seeded random mixes with kills are in test_distill_fault_suite.
"""

from __future__ import annotations

import inspect
import os
import signal
import subprocess
import sys
import time

import pytest

from slm_datagen.distill import outcome as outcome_module
from slm_datagen.distill.stage import run_distill
from slm_forest.config import load_config
from slm_forest.errors import SlmError
from slm_forest.pipeline import run_stage
from tests.fake_teacher_server import FakeTeacherServer
from tests.test_distill_common import child_env, cli_config, make_ctx, read_rows, synthetic_chunks

MODELS = {"openai": "gpt-4o-mini", "anthropic": "claude-haiku-4-5"}


@pytest.fixture
def keys(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "test-openai-faults-key")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "test-anthropic-faults-key")


@pytest.fixture
def server():
    with FakeTeacherServer(latency=0.0, retry_after=0.1) as srv:
        yield srv


def teacher(server, provider: str = "openai", **extra) -> dict:
    base = server.anthropic_base_url if provider == "anthropic" else server.openai_base_url
    return {"provider": provider, "model": MODELS[provider], "base_url": base, "timeout_s": 5, **extra}


def distill_cfg(server, provider: str = "openai", **teacher_extra) -> dict:
    return {"teachers": [teacher(server, provider, **teacher_extra)], "audiences": ["expert"], "failure_threshold": 1.0}


@pytest.mark.timeout(60)
@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_cut_bodies_are_retried_then_a_failure_row_never_a_crash(tmp_path, server, keys, provider):
    ctx = make_ctx(tmp_path, synthetic_chunks(4), distill_cfg(server, provider, max_retries=1, max_concurrency=2))
    server.on_prompt("제101조", "cut_body")  # every attempt of this request: 2 cut bodies, then give up
    server.on_prompt("제102조", "cut_body", times=1)  # one cut body, then an answer
    result = run_distill(ctx)
    failures = read_rows(ctx.stage_dir / "failures.jsonl")
    assert [f["reason"] for f in failures] == ["http_error"]
    assert "cut off or not JSON" in failures[0]["detail"] and "rerun" in failures[0]["detail"]
    assert result.counts["pairs"] == 3 and result.counts["failures_transient"] == 1
    assert result.counts["failures_content"] == 0 and result.stats["retry_on_rerun"] == 1


@pytest.mark.timeout(60)
def test_as_many_cut_bodies_as_workers_does_not_hang(tmp_path, server, keys):
    # Before: each cut body killed a worker; with both dead the feeder blocked on a full queue forever.
    # The script is consumed in arrival order, so on a slow machine one request can draw several of the four faults
    # in a row: max_retries=4 lets any request absorb all of them, so the counts below do not depend on timing.
    ctx = make_ctx(tmp_path, synthetic_chunks(12), distill_cfg(server, max_retries=4, max_concurrency=2))
    server.script("cut_body", "drop", "cut_body", "drop")
    result = run_distill(ctx)
    assert result.complete and result.counts["pairs"] == 12 and result.stats["http_retries"] == 4
    assert not server.duplicate_keys()


def test_an_unexpected_exception_in_a_job_is_an_error_row_and_the_rest_goes_on(tmp_path, server, keys, monkeypatch):
    real = outcome_module.parse_reply

    def parse_with_a_bug(text, **kwargs):  # our own code failing on one reply (no SDK internals touched)
        if "제103조" in (text or ""):
            raise KeyError("a bug")
        return real(text, **kwargs)

    monkeypatch.setattr(outcome_module, "parse_reply", parse_with_a_bug)
    ctx = make_ctx(tmp_path, synthetic_chunks(6), distill_cfg(server, max_concurrency=2))
    result = run_distill(ctx)
    failures = read_rows(ctx.stage_dir / "failures.jsonl")
    assert [f["reason"] for f in failures] == ["internal_error"] and "KeyError" in failures[0]["detail"]
    assert result.counts["pairs"] == 5 and result.counts["failures_transient"] == 1
    monkeypatch.setattr(outcome_module, "parse_reply", real)
    assert run_distill(ctx).counts["pairs"] == 6  # an error row is retried by the next run


@pytest.mark.timeout(60)
def test_watchdog_turns_a_silent_endpoint_into_a_clear_error(tmp_path, server, keys):
    server.hang_seconds = 30
    server.set_chaos({"hang": 1.0})
    distill = distill_cfg(server, timeout_s=0.5, max_retries=40, max_concurrency=2)
    ctx = make_ctx(tmp_path, synthetic_chunks(3), {**distill, "stall_timeout_s": 2.0})
    started = time.monotonic()
    with pytest.raises(SlmError, match=r"no request finished in 2 s .*last error: .*(timed out|no reply)") as info:
        run_distill(ctx)
    assert time.monotonic() - started < 15
    assert "stall_timeout_s" in info.value.hint and "rerun" in info.value.hint
    assert (ctx.stage_dir / "qa_pairs.jsonl").exists() and (ctx.stage_dir / "failures.jsonl").exists()


def test_stall_timeout_must_exceed_the_request_timeout(tmp_path, server, keys):
    ctx = make_ctx(tmp_path, synthetic_chunks(1), {**distill_cfg(server, timeout_s=120), "stall_timeout_s": 60})
    with pytest.raises(SlmError, match="distill.stall_timeout_s: 60 s is not longer than a teacher's timeout_s"):
        run_distill(ctx)


def test_leftover_temp_files_are_swept(tmp_path, server, keys):
    ctx = make_ctx(tmp_path, synthetic_chunks(2), distill_cfg(server))
    for name in (".qa_pairs.jsonl.k2j3h.tmp", ".failures.jsonl.x8a1.tmp", ".manifest.json.q1.tmp"):
        (ctx.stage_dir / name).write_bytes(b"x" * 1000)
    run_distill(ctx)
    assert sorted(p.name for p in ctx.stage_dir.iterdir()) == ["failures.jsonl", "ledger.jsonl", "qa_pairs.jsonl"]


def test_transient_failures_are_retried_by_a_plain_rerun_content_failures_kept(tmp_path, server, keys):
    distill = distill_cfg(server, max_retries=1)
    config = cli_config(tmp_path, synthetic_chunks(3), distill)
    server.on_prompt("제101조", "server_error", times=2)  # transient: both attempts fail
    server.on_prompt("제102조", "english", times=2)  # content: the answer and its repair are English
    cfg = load_config(config)
    first = run_stage(cfg, "distill")
    assert first.complete and first.counts["failures_transient"] == 1 and first.counts["failures_content"] == 1
    assert "1 transient: a plain rerun retries them; 1 content: kept, --retry-failures asks again" in first.summary
    second = run_stage(cfg, "distill")  # not "unchanged: skipped": the transient failure is retried
    assert not second.skipped and second.counts["pairs"] == 2 and second.counts["failures_content"] == 1
    assert second.manifest.stats["content_failure_reasons"] == {"not_korean": 1}
    assert run_stage(cfg, "distill").skipped  # nothing transient left: finished
    sent = len(server.generation_requests())
    from typer.testing import CliRunner

    from slm_forest.cli import app

    out = CliRunner().invoke(app, ["distill", str(config), "--retry-failures"])
    assert out.exit_code == 0, out.output
    assert len(server.generation_requests()) == sent + 1  # only the content failure was asked again
    pairs = read_rows(cfg.run_dir() / "distill" / "qa_pairs.jsonl")
    assert len(pairs) == 3 and read_rows(cfg.run_dir() / "distill" / "failures.jsonl") == []


@pytest.mark.timeout(90)
def test_429s_without_headers_from_a_lower_real_limit_cost_no_failures(tmp_path, keys):
    # The server really allows 4 requests per 2 s window (120/min); the config says 3,000/min; no 429 says when to
    # come back. Before: every 429 spent a retry, so requests ran out of attempts ("gave up after 3 attempts: 429").
    with FakeTeacherServer(requests_per_minute=4, window_seconds=2.0, rate_limit_headers=False) as server:
        distill = distill_cfg(server, max_retries=2, max_concurrency=8, requests_per_minute=3000)
        ctx = make_ctx(tmp_path, synthetic_chunks(16), distill)
        result = run_distill(ctx)
        refused = server.stats()["refused_rate_limit"]
    assert result.counts["failures"] == 0 and result.counts["pairs"] == 16
    assert refused > 0 and result.stats["rate_limited"] == refused  # the limit was really hit, and survived


def test_run_distill_reads_as_its_steps():
    assert len(inspect.getsourcelines(run_distill)[0]) < 60


SIGTERM_CHILD = """
import sys
from slm_forest.cli import main
sys.argv = ["slm", "distill", sys.argv[1]]
main()
"""


@pytest.mark.timeout(120)
def test_sigterm_waits_for_requests_in_flight_records_them_and_says_how_to_resume(tmp_path, keys):
    with FakeTeacherServer(latency=0.8, latency_jitter=0.4) as server:
        distill = {**distill_cfg(server, max_concurrency=4), "stop_grace_s": 10}
        config = cli_config(tmp_path, synthetic_chunks(24), distill)
        proc = subprocess.Popen(
            [sys.executable, "-c", SIGTERM_CHILD, str(config)], env=child_env(), stderr=subprocess.PIPE, text=True
        )
        deadline = time.monotonic() + 60
        while server.stats()["answered"] < 4 or server.stats()["in_flight"] < 2:
            assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read()
            time.sleep(0.02)
        in_flight = server.stats()["in_flight"]
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=30)
        assert proc.returncode == 1, stderr
        error_lines = [line for line in stderr.splitlines() if line.startswith("error:")]
        assert len(error_lines) == 1 and "stopped by SIGTERM" in error_lines[0]
        assert f"rerun `slm distill {config}` to resume" in error_lines[0] and "Traceback" not in stderr
        answered_before = {r.request_key for r in server.generation_requests() if r.status == 200}
        assert len(answered_before) >= 4 + in_flight - 1  # the ones in flight came back (and were recorded)
        ledger = read_rows(tmp_path / "runs" / "faults" / "distill" / "ledger.jsonl")
        assert {row["key"] for row in ledger if row["type"] == "done"} == answered_before
        server.latency, server.latency_jitter = 0.0, 0.0
        rerun = run_stage(load_config(config), "distill")
        assert rerun.counts["pairs"] == 24 and rerun.counts["cached"] == len(answered_before)
        assert server.duplicate_keys() == {}  # 0 requests paid twice
    assert not list((tmp_path / "runs" / "faults" / "distill").glob(".*.tmp"))


def test_a_second_sigint_abandons_the_requests_in_flight(tmp_path, keys):
    """Ctrl-C twice: stop now, say how many replies may be paid again."""
    with FakeTeacherServer(latency=20.0) as server:
        ctx = make_ctx(tmp_path, synthetic_chunks(4), {**distill_cfg(server, max_concurrency=2), "stop_grace_s": 20})

        def interrupt_twice():
            deadline = time.monotonic() + 20
            while server.stats()["in_flight"] < 2 and time.monotonic() < deadline:
                time.sleep(0.02)
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.3)
            os.kill(os.getpid(), signal.SIGINT)

        import threading

        threading.Thread(target=interrupt_twice, daemon=True).start()
        started = time.monotonic()
        with pytest.raises(SlmError, match=r"stopped by SIGINT; 2 requests in flight .* 2 abandoned"):
            run_distill(ctx)
        assert time.monotonic() - started < 10  # neither the 20 s replies nor the 20 s grace were waited out
    assert (ctx.stage_dir / "qa_pairs.jsonl").exists() and read_rows(ctx.stage_dir / "qa_pairs.jsonl") == []
