"""SIGKILL in the middle of distillation, then rerun: nothing completed is asked again, nothing lost or doubled."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from slm_datagen.distill.ledger import Ledger
from slm_datagen.distill.stage import run_distill
from tests.fake_teacher_server import FakeTeacherServer
from tests.test_distill_common import child_env, make_ctx, read_rows, ruling_chunks, statute_chunks

ENTRY = """
import json, sys
from pathlib import Path
from slm_forest.config import RunConfig
from slm_forest.pipeline import StageContext
from slm_datagen.distill.stage import run_distill
run = Path(sys.argv[1])
cfg = RunConfig.model_validate({"distill": json.loads(sys.argv[2])})
run_distill(StageContext(cfg, "distill", run, run / "distill", {}, {}))
"""


def _done_lines(path) -> int:
    if not path.exists():
        return 0
    return sum(1 for line in path.read_bytes().split(b"\n") if b'"type":"done"' in line)


@pytest.mark.parametrize("pairs_per_request, n_requests, kill_after", [(1, 40, 12), (None, 20, 6)])
def test_sigkill_then_rerun_repeats_nothing_completed(
    tmp_path, shared_dir, monkeypatch, pairs_per_request, n_requests, kill_after
):
    monkeypatch.setenv("OPENAI_API_KEY", "test-openai-kill-key")
    chunks = statute_chunks(shared_dir / "corpus")[:10] + ruling_chunks(shared_dir / "corpus")[:10]
    with FakeTeacherServer(
        latency=0.15, latency_jitter=0.1, retry_after=0.1, chaos={"english": 0.1, "server_error": 0.05}, seed=3
    ) as server:
        distill = {
            "teachers": [
                {"provider": "openai", "model": "gpt-4o", "base_url": server.openai_base_url, "max_concurrency": 4}
            ],
            "failure_threshold": 1.0,
            "pairs_per_request": pairs_per_request,  # None: both audiences of a chunk in one request
        }
        ctx = make_ctx(tmp_path, chunks, distill)
        ledger_path = ctx.stage_dir / "ledger.jsonl"
        proc = subprocess.Popen(
            [sys.executable, "-c", ENTRY, str(ctx.run_dir), json.dumps(distill)],
            env=child_env(),
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 120  # only bounds a hung child: a loaded machine may take long to import
        while _done_lines(ledger_path) < kill_after:
            assert proc.poll() is None, proc.stderr.read().decode()
            assert time.monotonic() < deadline, "the child made no progress"
            time.sleep(0.02)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        assert proc.returncode == -signal.SIGKILL

        with Ledger(ledger_path) as ledger:
            done_before = set(ledger.index.done)
            attempts_before = set(ledger.index.attempts)
        assert kill_after <= len(done_before) < n_requests
        sent_before = len(server.requests)

        result = run_distill(ctx)  # the rerun, in this process

        sent_after = [r for r in server.requests[sent_before:] if r.request_key]
        base_keys = {r.request_key.removesuffix(":repair") for r in sent_after}
        assert not base_keys & done_before  # nothing completed was asked again
        firsts_after = {r.request_key for r in sent_after if not r.request_key.endswith(":repair")}
        assert not firsts_after & attempts_before  # a paid bad first reply resumes at its repair
        # only requests in flight at the kill (never completed) can have been answered twice
        doubled = set(server.duplicate_keys())
        assert not {k.removesuffix(":repair") for k in doubled} & done_before and len(doubled) <= 4

        pairs = read_rows(ctx.stage_dir / "qa_pairs.jsonl")
        failures = read_rows(ctx.stage_dir / "failures.jsonl")
        # every pair exactly once (a request with both audiences gives two rows): none lost, none doubled
        keys = [(row["request_key"], row.get("audience")) for row in pairs + failures]
        assert len(keys) == len(set(keys)) == 40
        assert len({row["id"] for row in pairs}) == len(pairs)
        assert done_before <= {key for key, _ in keys} and len({key for key, _ in keys}) == n_requests
        assert result.complete and result.counts["cached"] == len(done_before)
