"""Fault injection: collect against the law.go.kr replay server with seeded random mixes of faults, and killed.

Each run must end within its bound; every requested law is collected or listed in skipped.jsonl with its reason;
after SIGTERM or SIGKILL at a random point, the rerun asks nothing that was already cached, leaves no temporary
file, and writes the same documents.jsonl, byte for byte, as an undisturbed run.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from slm_datagen.collect.lawgo_client import LawgoClient
from slm_forest.config import load_config
from slm_forest.files import read_jsonl
from slm_forest.pipeline import run_stage
from tests.lawgo_replay_server import FaultMix, ReplayServer, Reply, request_key

REPO = Path(__file__).resolve().parent.parent
LAW = Path(__file__).parent / "fixtures" / "collect" / "lawgo" / "law_single_dict.json"
OC = "fault-oc-5512"
MSTS = [str(n) for n in range(101, 109)]
BY_NAME = "소득세법"  # one law found by name: a search, then its detail
TIMEOUT_S, MAX_RETRIES = 0.25, 3
# The most one request can take: every attempt times out, plus the (tiny) waits between them.
WORST_REQUEST_S = (MAX_RETRIES + 1) * (TIMEOUT_S + 0.15)


def _law_body(name: str) -> Reply:
    body = json.loads(LAW.read_text(encoding="utf-8"))
    body["법령"]["기본정보"]["법령명_한글"] = name
    return Reply.json(body)


def _routes(server: ReplayServer) -> ReplayServer:
    for mst in MSTS:
        server.route("lawService.do", {"MST": mst}, _law_body(f"시험법{mst}"))
    row = {"법령일련번호": "900", "법령명한글": BY_NAME, "시행일자": "20250101", "현행연혁코드": "현행"}
    server.route("lawSearch.do", {"query": BY_NAME}, Reply.json({"LawSearch": {"totalCnt": "1", "law": row}}))
    server.route("lawService.do", {"MST": "900"}, _law_body(BY_NAME))
    return server


def _requested() -> int:
    return len(MSTS) + 2  # details + the search


def _collect(base_url: str, cache_dir: Path | None = None) -> dict:
    source = {
        "kind": "lawgo",
        "laws": [BY_NAME],
        "msts": MSTS,
        "base_url": base_url,
        "timeout_s": TIMEOUT_S,
        "max_retries": MAX_RETRIES,
        "backoff_s": 0.01,
        "requests_per_second": 1000.0,
    }
    return {"sources": [source], **({"cache_dir": str(cache_dir)} if cache_dir else {})}


def _write_config(path: Path, run: str, collect: dict) -> Path:
    path.write_text(yaml.safe_dump({"run_name": run, "collect": collect}, allow_unicode=True), encoding="utf-8")
    return path


def _temporaries(root: Path) -> list[Path]:
    return [p for p in root.rglob("*.tmp")]


def _law_names(run: str) -> set[str]:
    return {row["law_name"] for row in read_jsonl(Path("runs") / run / "collect" / "documents.jsonl")}


# --------------------------------------------------------------------------------------------- random mixes
def _mix_run(tmp_path: Path, monkeypatch, seed: int) -> None:
    monkeypatch.setenv("LAWGO_OC", OC)
    rng = random.Random(seed)
    broken_mst = rng.choice(MSTS)
    with _routes(ReplayServer()) as server:
        mix = FaultMix(seed=seed, rate=0.6, max_failures=MAX_RETRIES, hang_s=0.6)
        mix.broken = frozenset({request_key("lawService.do", {"target": "eflaw", "MST": broken_mst, "type": "JSON"})})
        server.inject(mix)
        cfg = load_config(_write_config(tmp_path / f"mix{seed}.yaml", f"mix{seed}", _collect(server.base_url)))
        started = time.monotonic()
        report = run_stage(cfg, "collect")
        elapsed = time.monotonic() - started
    faults = [r.fault for r in server.requests if r.fault]
    assert elapsed < _requested() * WORST_REQUEST_S + 2, (elapsed, faults)
    assert len(faults) >= 3, faults  # the mix did inject something
    collected = _law_names(f"mix{seed}")
    skipped = {row["input"]: row["reason"] for row in read_jsonl(Path(f"runs/mix{seed}/collect/skipped.jsonl"))}
    # Every requested law: collected, or listed with the reason it is not.
    assert collected == {f"시험법{m}" for m in MSTS if m != broken_mst} | {BY_NAME}
    assert list(skipped) == [f"eflaw MST={broken_mst}"]
    assert f"(gave up after {MAX_RETRIES + 1} attempts)" in skipped[f"eflaw MST={broken_mst}"]
    assert report.counts["lawgo_retries"] >= len(faults) - (MAX_RETRIES + 1)


@pytest.mark.parametrize("seed", [1, 2])
def test_random_fault_mixes(tmp_path, monkeypatch, seed):
    _mix_run(tmp_path, monkeypatch, seed)


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(3, 13))
def test_random_fault_mixes_more_seeds(tmp_path, monkeypatch, seed):
    _mix_run(tmp_path, monkeypatch, seed)


# ------------------------------------------------------------------------------------------------ kills
def _cli(config: Path, cwd: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "LAWGO_OC": OC, "PYTHONPATH": str(REPO)}
    command = [sys.executable, "-m", "slm_forest.cli", "collect", str(config)]
    return subprocess.Popen(command, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _finish(process: subprocess.Popen[str], bound_s: float) -> tuple[int, str]:
    try:
        _, err = process.communicate(timeout=bound_s)
    except subprocess.TimeoutExpired:
        process.kill()
        pytest.fail(f"collect did not end within {bound_s:.0f}s")
    return process.returncode, err


def _cached_keys(cache_dir: Path, server: ReplayServer) -> set[str]:
    """The requests whose answers are in the cache (the client's own cache paths, no OC involved)."""
    client = LawgoClient(base_url=server.base_url, oc=None, cache_dir=cache_dir)
    keys = set()
    for received in server.requests:
        params = {k: v for k, v in received.params.items() if k != "OC"}
        path = client._cache_path(received.endpoint, params)
        if path is not None and path.exists():
            keys.add(received.key)
    client.close()
    return keys


def _kill_then_rerun(tmp_path: Path, seed: int, how: signal.Signals, undisturbed: bytes) -> None:
    rng = random.Random(seed)
    run = f"kill{seed}"
    cache_dir = tmp_path / f"cache{seed}"
    bound = _requested() * WORST_REQUEST_S + 30  # + interpreter start-up on a busy 2-core machine
    with _routes(ReplayServer()) as server:
        server.inject(FaultMix(seed=seed, rate=0.5, max_failures=MAX_RETRIES, hang_s=0.6))
        config = _write_config(tmp_path / f"{run}.yaml", run, _collect(server.base_url, cache_dir))
        process = _cli(config, tmp_path)
        kill_after = rng.randint(1, _requested())  # requests received before the kill (attempts included)
        deadline = time.monotonic() + bound
        while len(server.requests) < kill_after and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.005)
        time.sleep(rng.uniform(0, 0.3))
        process.send_signal(how)
        code, err = _finish(process, bound)
        if how == signal.SIGTERM and code == 1:  # stopped inside collect: cleaned up at once
            assert "stopped by SIGTERM" in err, err
            assert not _temporaries(tmp_path / "runs" / run) and not _temporaries(cache_dir)
        elif how == signal.SIGTERM:  # finished first, or the signal came after collect returned (the runner's part)
            assert code in (0, -signal.SIGTERM), err
        if code == -signal.SIGKILL:  # killed mid-run: the temporary documents.jsonl is still there
            assert [p.name.startswith(".documents.jsonl.") for p in _temporaries(tmp_path / "runs" / run)] == [True]
        cached = _cached_keys(cache_dir, server)
        before = len(server.requests)
        code, err = _finish(_cli(config, tmp_path), bound)
        assert code == 0, err
        again = [r.key for r in server.requests[before:]]
    assert not set(again) & cached, (sorted(set(again) & cached), how)  # nothing already cached is asked again
    assert not _temporaries(tmp_path / "runs" / run) and not _temporaries(cache_dir)
    assert (tmp_path / "runs" / run / "collect" / "documents.jsonl").read_bytes() == undisturbed


def _undisturbed(tmp_path: Path) -> bytes:
    with _routes(ReplayServer()) as server:
        config = _write_config(tmp_path / "calm.yaml", "calm", _collect(server.base_url, tmp_path / "calm_cache"))
        code, err = _finish(_cli(config, tmp_path), 120)
    assert code == 0, err
    return (tmp_path / "runs/calm/collect/documents.jsonl").read_bytes()


def test_killed_collect_resumes_from_the_cache_and_writes_the_same_documents(tmp_path):
    undisturbed = _undisturbed(tmp_path)
    assert undisturbed.count(b"\n") == len(MSTS) + 1
    _kill_then_rerun(tmp_path, 1, signal.SIGTERM, undisturbed)
    _kill_then_rerun(tmp_path, 2, signal.SIGKILL, undisturbed)


@pytest.mark.slow
def test_killed_collect_more_seeds(tmp_path):
    undisturbed = _undisturbed(tmp_path)
    for seed in range(3, 11):
        _kill_then_rerun(tmp_path, seed, signal.SIGTERM if seed % 2 else signal.SIGKILL, undisturbed)


def test_the_sweep_keeps_a_temporary_another_running_collect_is_writing(tmp_path):
    from slm_datagen.collect.temporaries import sweep_temporaries

    stage, cache = tmp_path / "collect", tmp_path / "collect" / "cache" / "lawService-eflaw"
    cache.mkdir(parents=True)
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
        files = {
            "stale_output": stage / ".documents.jsonl.ab12cd.tmp",
            "dead_writer": cache / f".x.json.pid{dead.stdout.strip()}.tmp",
            "untagged": cache / ".y.json.k3j4.tmp",
            "live_writer": cache / f".z.json.pid{other.pid}.tmp",
        }
        for path in files.values():
            path.write_text("partial")
        removed = sweep_temporaries(stage, tmp_path / "collect" / "cache")
    finally:
        other.kill()
        other.wait()
    assert sorted(removed) == sorted(files[k] for k in ("stale_output", "dead_writer", "untagged"))
    assert files["live_writer"].exists()
