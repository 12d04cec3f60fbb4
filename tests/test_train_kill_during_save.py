"""SIGTERM to a real `slm train` process while it writes a checkpoint (issue 13): the checkpoint being written is
ignored by the rerun, which continues from the last complete one and ends at the same step.

The pause in the save is the only test scaffolding: `Trainer._save_rng_state` (after the adapter and optimizer
files, before trainer_state.json, which Trainer writes last) waits for the signal, so the kill lands inside the save
every time instead of by chance.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from tests.test_train_stage import REPO_ROOT, write_build, write_config

SLOW_SAVE = """
import sys, time
from pathlib import Path
from transformers import Trainer

save_rng_state = Trainer._save_rng_state

def paused_save(self, output_dir):
    save_rng_state(self, output_dir)
    if Path(output_dir).name == "checkpoint-4":  # half written: adapter and optimizer, no trainer_state.json yet
        (Path(output_dir).parent.parent / "SAVING").write_text(str(output_dir))
        time.sleep(120)

Trainer._save_rng_state = paused_save
from slm_forest.cli import main

sys.argv = ["slm", "train", *sys.argv[1:]]
main()
"""


@pytest.mark.slow
def test_sigterm_during_a_checkpoint_save_leaves_a_checkpoint_the_rerun_ignores(tmp_path):
    runs_dir = tmp_path / "runs"
    write_build(runs_dir, "term", n_train=32, n_val=0)
    overrides = [
        f"runs_dir={runs_dir}",
        "run_name=term",
        "train.max_length=128",
        "train.learning_rate=0.005",
        "train.logging_steps=1",
        "train.max_steps=6",
        "train.save_steps=2",
        "train.save_total_limit=5",
        "train.report_to=[]",
    ]
    config = write_config(tmp_path, overrides)
    script = tmp_path / "slow_save.py"
    script.write_text(SLOW_SAVE, encoding="utf-8")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO_ROOT)}
    stage = runs_dir / "term" / "train"
    proc = subprocess.Popen(
        [sys.executable, str(script), str(config)], env=env, cwd=tmp_path, stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        deadline = time.time() + 180
        while not (stage / "SAVING").exists():
            if proc.poll() is not None:
                pytest.fail(f"slm train exited early: {proc.stderr.read().decode()[-2000:]}")
            if time.time() > deadline:
                pytest.fail("no checkpoint-4 save within 180 s")
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode != 0
    partial = stage / "checkpoints" / "checkpoint-4"
    assert (partial / "adapter_model.safetensors").exists() and not (partial / "trainer_state.json").exists()
    assert (stage / "checkpoints" / "checkpoint-2" / "trainer_state.json").exists()
    assert not (stage / "manifest.json").exists()  # a killed stage never claims to be done

    rerun = subprocess.run(
        [sys.executable, "-m", "slm_forest.cli", "train", str(config)], env=env, cwd=tmp_path,
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    summary = json.loads((stage / "train_summary.json").read_text(encoding="utf-8"))
    assert summary["resumed_from"] == "checkpoint-2"  # the half-written checkpoint-4 was ignored
    assert summary["global_step"] == 6
    rewritten = json.loads((partial / "trainer_state.json").read_text(encoding="utf-8"))
    assert rewritten["global_step"] == 4  # written again, completely, by the resumed run
    log = [json.loads(line) for line in (stage / "trainer_log.jsonl").read_text().splitlines()]
    assert [row["step"] for row in log if "loss" in row] == list(range(1, 7))
