"""Acceptance for issue 13 (Distill): seeded random fault mixes through the real openai / anthropic SDKs, with kills.

Each scenario draws, from its seed: the provider, the concurrency (1, 4 or 16), a mix of 429s with and without
headers, 500s, hangs, cut and dropped bodies, malformed and English replies, and maybe a server whose real limit is
below the configured one. Then it runs the stage, either to the end, or stopped by SIGTERM (in this process) or
SIGKILL (a child process) after a random number of finished requests, followed by a plain rerun. For every run:

- in = out + failed: every planned request is exactly one pair or one failure row (after the rerun, if killed);
- 0 duplicate pairs (request keys, pair ids);
- 0 requests paid twice after SIGTERM; after SIGKILL at most those in flight at the kill (≤ max_concurrency);
- 0 failures from 429s alone;
- no hang: each run ends within its bound; no `.tmp` file is left after the next run.

"Paid" = a 200 the server delivered with a usable body (cut or dropped bodies, and replies to a client that had
already timed out, were never received). Nothing in the SDKs is patched: only `base_url` points at the fake.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from slm_datagen.distill.stage import run_distill
from slm_forest.errors import SlmError
from slm_forest.records import content_id
from tests.fake_teacher_server import FakeTeacherServer
from tests.test_distill_common import child_env, make_ctx, read_rows, synthetic_chunks

FAULTS = ("rate_limit", "rate_limit_bare", "server_error", "hang", "cut_body", "drop", "malformed", "english")
MODELS = {"openai": "gpt-4o-mini", "anthropic": "claude-haiku-4-5"}
RUN_BOUND_S = 60.0  # a run (or a kill + rerun) that takes longer than this counts as a hang
UNDELIVERED = {"cut_body", "drop"}


@dataclass
class Scenario:
    seed: int
    provider: str
    concurrency: int
    n_requests: int
    chaos: dict[str, float]
    real_limit_per_s: int | None  # the server's own limit over a 1 s window, below the configured rate
    rate_headers: bool
    kill_after: int  # finished requests before the kill
    latency: float = 0.0
    pairs: int = 1  # pairs per chunk: 2 = both audiences in one request (the default layout)
    notes: dict = field(default_factory=dict)


def draw(seed: int) -> Scenario:
    rng = random.Random(seed)
    n = rng.randint(16, 28)
    scenario = Scenario(
        seed=seed,
        provider=rng.choice(["openai", "anthropic"]),
        concurrency=rng.choice([1, 4, 16]),
        n_requests=n,
        chaos={fault: round(rng.uniform(0.0, 0.04), 3) for fault in FAULTS},
        real_limit_per_s=rng.choice([None, 6, 12]),
        rate_headers=rng.random() < 0.5,
        kill_after=rng.randint(2, n // 2),
        latency=rng.uniform(0.0, 0.05),
    )
    scenario.pairs = rng.choice([1, 2])  # drawn last: the draws above are the same as before issue 16
    return scenario


def start_server(sc: Scenario) -> FakeTeacherServer:
    return FakeTeacherServer(
        latency=sc.latency,
        latency_jitter=0.05,
        retry_after=0.2,
        hang_seconds=3.0,
        chaos=sc.chaos,
        seed=sc.seed,
        requests_per_minute=sc.real_limit_per_s,
        window_seconds=1.0,
        rate_limit_headers=sc.rate_headers,
    ).start()


def distill_config(sc: Scenario, server: FakeTeacherServer) -> dict:
    base = server.anthropic_base_url if sc.provider == "anthropic" else server.openai_base_url
    teacher = {
        "provider": sc.provider,
        "model": MODELS[sc.provider],
        "base_url": base,
        "max_concurrency": sc.concurrency,
        "timeout_s": 1.0,  # a hang (3 s) is cut after 1 s and retried
        "max_retries": 5,
        "max_tokens": 600,
    }
    if sc.real_limit_per_s:
        teacher["requests_per_minute"] = 6000  # configured far above what the server really allows
    return {
        "teachers": [teacher],
        "audiences": ["expert", "layperson"][: sc.pairs],
        "failure_threshold": 1.0,
        "stall_timeout_s": 20.0,
        "stop_grace_s": 5.0,
    }


@pytest.fixture
def keys(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "test-openai-suite-key")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "test-anthropic-suite-key")


# ------------------------------------------------------------------------------------------------------ checks
def delivered_keys(records) -> set[str]:
    return {r.request_key for r in records if r.status == 200 and r.variant not in UNDELIVERED and r.request_key}


def check_outputs(stage_dir: Path, n_requests: int, per_request: int = 1) -> tuple[list[dict], list[dict]]:
    pairs, failures = read_rows(stage_dir / "qa_pairs.jsonl"), read_rows(stage_dir / "failures.jsonl")
    keys = [(row["request_key"], row.get("audience") if per_request > 1 else None) for row in pairs + failures]
    assert len(keys) == n_requests * per_request, "in = out + failed"
    assert len(set(keys)) == len(keys), "a pair appears twice"
    assert len({key for key, _ in keys}) == n_requests, "a request lost or split"
    assert len({p["id"] for p in pairs}) == len(pairs), "duplicate pair ids"
    if per_request == 1:
        assert all(p["id"] == content_id("qa", p["request_key"]) for p in pairs)
    else:
        assert all(p["id"] == content_id("qa", p["request_key"], p["audience"], p["style"]) for p in pairs)
    assert not [f for f in failures if "rate-limited attempts" in f["detail"]], "a failure from 429s alone"
    assert not list(stage_dir.glob(".*.tmp")), "a temporary file was left behind"
    return pairs, failures


def timed_run(ctx) -> float:
    started = time.monotonic()
    run_distill(ctx)
    elapsed = time.monotonic() - started
    assert elapsed < RUN_BOUND_S, f"the run took {elapsed:.0f} s"
    return elapsed


def done_lines(ledger: Path) -> int:
    if not ledger.exists():
        return 0
    return ledger.read_bytes().count(b'"type":"done"') + ledger.read_bytes().count(b'"type":"error"')


# ------------------------------------------------------------------------------------------------------- runs
@pytest.mark.timeout(120)
@pytest.mark.parametrize(
    "seed", [102, 103, 104, 105, pytest.param(101, marks=pytest.mark.slow), pytest.param(106, marks=pytest.mark.slow)]
)
def test_random_fault_mix_runs_to_the_end(tmp_path, keys, seed):
    sc = draw(seed)
    server = start_server(sc)
    try:
        ctx = make_ctx(tmp_path, synthetic_chunks(sc.n_requests, seed=seed), distill_config(sc, server))
        timed_run(ctx)
        check_outputs(ctx.stage_dir, sc.n_requests, sc.pairs)
        assert server.duplicate_keys() == {}, "a request was answered twice within one run"
        before = len(server.requests)
        timed_run(ctx)  # a plain rerun retries transient failures only; nothing answered is asked again
        check_outputs(ctx.stage_dir, sc.n_requests, sc.pairs)
        assert not delivered_keys(server.requests[:before]) & {r.request_key for r in server.requests[before:]}
    finally:
        server.stop()


@pytest.mark.timeout(120)
@pytest.mark.parametrize(
    "seed", [201, 203, 205, pytest.param(202, marks=pytest.mark.slow)]
)  # 205: two pairs per request
def test_sigterm_at_a_random_point_then_rerun_pays_nothing_twice(tmp_path, keys, seed):
    sc = draw(seed)
    server = start_server(sc)
    try:
        ctx = make_ctx(tmp_path, synthetic_chunks(sc.n_requests, seed=seed), distill_config(sc, server))
        ledger = ctx.stage_dir / "ledger.jsonl"

        def terminate_later() -> None:
            deadline = time.monotonic() + RUN_BOUND_S
            while done_lines(ledger) < sc.kill_after and time.monotonic() < deadline:
                time.sleep(0.01)
            os.kill(os.getpid(), signal.SIGTERM)  # the stage's own handler takes it (the loop's signal handler)

        late: list[int] = []  # a signal after the run (it never came so late so far) must not end pytest
        previous = signal.signal(signal.SIGTERM, lambda signum, frame: late.append(signum))
        killer = threading.Thread(target=terminate_later, daemon=True)
        killer.start()
        started = time.monotonic()
        with pytest.raises(SlmError, match="stopped by SIGTERM") as info:
            run_distill(ctx)  # at most half of the requests were finished when the signal came: it stops early
        assert "to resume" in info.value.hint and time.monotonic() - started < RUN_BOUND_S
        killer.join(RUN_BOUND_S)
        assert late == [] and signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL  # the host's handler is back
        signal.signal(signal.SIGTERM, previous)
        before = len(server.requests)
        timed_run(ctx)
        check_outputs(ctx.stage_dir, sc.n_requests, sc.pairs)
        paid_twice = delivered_keys(server.requests[:before]) & {r.request_key for r in server.requests[before:]}
        assert paid_twice == set(), "paid twice after SIGTERM"
        assert server.duplicate_keys() == {}
    finally:
        server.stop()


CHILD = """
import json, sys
from pathlib import Path
from slm_forest.config import RunConfig
from slm_forest.pipeline import StageContext
from slm_datagen.distill.stage import run_distill
run = Path(sys.argv[1])
cfg = RunConfig.model_validate({"distill": json.loads(sys.argv[2])})
run_distill(StageContext(cfg, "distill", run, run / "distill", {}, {}))
"""


@pytest.mark.slow
@pytest.mark.timeout(180)
@pytest.mark.parametrize("seed", [301, 302, 306])  # 306: two pairs per request
def test_sigkill_at_a_random_point_pays_at_most_the_requests_in_flight_twice(tmp_path, keys, seed):
    sc = draw(seed)
    server = start_server(sc)
    try:
        distill = distill_config(sc, server)
        ctx = make_ctx(tmp_path, synthetic_chunks(sc.n_requests, seed=seed), distill)
        ledger = ctx.stage_dir / "ledger.jsonl"
        child = subprocess.Popen(
            [sys.executable, "-c", CHILD, str(ctx.run_dir), json.dumps(distill)],
            env=child_env(),
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 2 * RUN_BOUND_S  # the child's imports are slow on a loaded machine
        while done_lines(ledger) < sc.kill_after and child.poll() is None:
            assert time.monotonic() < deadline, "the child made no progress"
            time.sleep(0.005)
        killed_at = time.time()
        child.kill()
        assert child.wait(10) == -signal.SIGKILL, child.stderr.read().decode()  # killed, not finished
        # a kill during the final write leaves one of these behind: the next run must sweep it
        (ctx.stage_dir / ".qa_pairs.jsonl.k1ll3d.tmp").write_bytes(b'{"id": "half a line')
        before = len(server.requests)
        timed_run(ctx)
        check_outputs(ctx.stage_dir, sc.n_requests, sc.pairs)
        earlier = [r for r in server.requests[:before] if r.request_key in delivered_keys(server.requests[:before])]
        paid_twice = {r.request_key for r in earlier} & {r.request_key for r in server.requests[before:]}
        assert len(paid_twice) <= sc.concurrency
        # and each of them was in flight at the kill: its answer left the server in the moment before it
        for record in earlier:
            if record.request_key in paid_twice:
                assert record.finished is not None and record.finished > killed_at - 1.0
    finally:
        server.stop()
