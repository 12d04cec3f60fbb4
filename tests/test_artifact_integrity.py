"""End to end through `slm`: an artifact edited behind its manifest is never read downstream, and the temporaries
a killed run left are gone after the next run."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SMOKE = REPO / "configs" / "smoke.yaml"


def _slm(*args: str) -> subprocess.CompletedProcess:
    # PYTHONPATH: this checkout's code, not whatever checkout the shared venv's editable install points at.
    # COLUMNS: one line stays one line however long the paths are.
    env = {**os.environ, "PYTHONPATH": str(REPO), "COLUMNS": "400"}
    return subprocess.run([sys.executable, "-m", "slm_forest.cli", *args], capture_output=True, text=True, env=env)


def test_a_flipped_digit_in_qa_pairs_with_the_mtime_restored_is_refused_by_build(tmp_path):
    result = _slm("run", str(SMOKE), "--to", "distill")
    assert result.returncode == 0, result.stderr
    pairs = tmp_path / "runs" / "smoke" / "distill" / "qa_pairs.jsonl"
    stat = pairs.stat()
    data = pairs.read_bytes()
    assert "1퍼센트".encode() in data
    pairs.write_bytes(data.replace("1퍼센트".encode(), "9퍼센트".encode(), 1))  # same length
    os.utime(pairs, ns=(stat.st_atime_ns, stat.st_mtime_ns))

    result = _slm("build", str(SMOKE), "--set", "build.formats=[chat]")
    assert result.returncode == 1
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert "distill/qa_pairs.jsonl: its contents changed (sha256 differs" in lines[0]
    assert f"slm distill {SMOKE} --force" in lines[0]
    assert not (tmp_path / "runs" / "smoke" / "build" / "train.jsonl").exists()

    # The fix the error names works: distill remakes the file (from its ledger), build then runs.
    assert _slm("distill", str(SMOKE), "--force").returncode == 0
    assert "9퍼센트".encode() not in pairs.read_bytes()
    result = _slm("build", str(SMOKE), "--set", "build.formats=[chat]")
    assert result.returncode == 0, result.stderr


def test_a_killed_atomic_write_leaves_nothing_after_the_next_run(tmp_path):
    assert _slm("run", str(SMOKE), "--to", "prepare").returncode == 0
    stale = tmp_path / "runs" / "smoke" / "prepare" / ".chunks.jsonl.q1w2e3r4.tmp"
    stale.write_bytes(b"x" * 1024)
    result = _slm("run", str(SMOKE), "--to", "prepare")
    assert result.returncode == 0 and "skipped" in result.stderr
    assert not stale.exists()
