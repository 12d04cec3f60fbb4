"""scripts/runpod_train.sh: the dry run prints the whole RunPod procedure in order, runs nothing, never shows a secret.

The dry run must work where CI runs: no GPU, no nvidia-smi, no /workspace. shellcheck runs when it is installed
(`apt-get install shellcheck`); the rest always runs.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
SCRIPT = REPO_ROOT / "scripts" / "runpod_train.sh"
SECRET = "fake-hf-token-must-never-show"


def dry_run(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    full_env = {k: v for k, v in os.environ.items() if k not in ("GPUS", "STOP_POD", "WORKSPACE", "SKIP_EVALUATE")}
    full_env.update(env or {})
    return subprocess.run(
        ["bash", str(SCRIPT), "--dry-run", *args],
        cwd=cwd or REPO_ROOT,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def commands(output: str) -> list[str]:
    return [line[2:] for line in output.splitlines() if line.startswith("+ ")]


def index_of(lines: list[str], pattern: str) -> int:
    for i, line in enumerate(lines):
        if re.search(pattern, line):
            return i
    raise AssertionError(f"no command matches {pattern!r} in:\n" + "\n".join(lines))


def test_dry_run_prints_every_step_in_order(tmp_path):
    result = dry_run("configs/gemma-3-12b-qlora.yaml", env={"HF_TOKEN": SECRET})
    assert result.returncode == 0, result.stderr
    cmds = commands(result.stdout)
    order = [
        r"^nvidia-smi ",
        r"^df -h /workspace",
        r"^export HF_HOME=/workspace/",
        r"^export PIP_CACHE_DIR=/workspace/",
        r"^python3 -m venv --system-site-packages /workspace/",
        r"bash scripts/setup\.sh$",
        r"/bin/hf auth whoami$",
        r"/bin/slm config validate configs/gemma-3-12b-qlora\.yaml ",
        r"/bin/slm run configs/gemma-3-12b-qlora\.yaml --to build ",
        r"/bin/slm plan configs/gemma-3-12b-qlora\.yaml ",
        r"^nohup \S+/bin/slm train configs/gemma-3-12b-qlora\.yaml ",
        r"/bin/slm evaluate configs/gemma-3-12b-qlora\.yaml ",
    ]
    positions = [index_of(cmds, pattern) for pattern in order]
    assert positions == sorted(positions), positions

    train = cmds[positions[order.index(r"^nohup \S+/bin/slm train configs/gemma-3-12b-qlora\.yaml ")]]
    # Runs, checkpoints and the log all live on the persistent volume.
    assert "--set runs_dir=/workspace/slm-forest/runs" in train
    assert "--set train.output_dir=/workspace/slm-forest/checkpoints/gemma-3-12b-qlora" in train
    assert re.search(r">> /workspace/slm-forest/logs/gemma-3-12b-qlora-train\.log 2>&1 &$", train)
    # The venv (and with it the installed project) is on the volume too.
    assert all(c.startswith("/workspace/") or not c.startswith("/") for c in cmds if "/bin/" in c.split()[0])
    # No checkpoint yet: a first run must not pass --resume (slm train refuses --resume without a checkpoint).
    assert "--resume" not in train
    # Not asked to stop the pod.
    assert "runpodctl" not in result.stdout


def checkpoint(root: Path, name: str, *, complete: bool) -> Path:
    path = root / "slm-forest" / "checkpoints" / "phi-2-lora" / name
    path.mkdir(parents=True)
    (path / "adapter_config.json").write_text("{}", encoding="utf-8")
    if complete:
        (path / "adapter_model.safetensors").write_bytes(b"x")
        (path / "trainer_state.json").write_text("{}", encoding="utf-8")  # written last by Trainer
    return path


def resume_lines(stdout: str) -> list[str]:
    return [line for line in stdout.splitlines() if line.startswith("resume: ")]


def test_rerun_after_a_restart_leaves_the_resume_decision_to_slm_train(tmp_path):
    """Checkpoints on the volume: the script never adds --resume (a changed train config would then be an error);
    it says that slm train continues from the newest complete one when config and data match."""
    checkpoint(tmp_path, "checkpoint-20", complete=True)
    checkpoint(tmp_path, "checkpoint-40", complete=True)
    result = dry_run("configs/phi-2-lora.yaml", env={"WORKSPACE": str(tmp_path)})
    assert result.returncode == 0, result.stderr
    train = commands(result.stdout)[index_of(commands(result.stdout), r"^nohup .*slm train ")]
    assert "--resume" not in train
    assert f"train.output_dir={tmp_path}/slm-forest/checkpoints/phi-2-lora" in train
    (line,) = resume_lines(result.stdout)
    assert "continues from checkpoint-40 if it was made with this train config and data" in line
    assert "otherwise it starts over" in line
    # A dry run creates nothing, not even the directories it would create.
    assert sorted(p.name for p in (tmp_path / "slm-forest").iterdir()) == ["checkpoints"]


def test_a_checkpoint_cut_by_a_kill_during_its_save_is_reported_as_ignored(tmp_path):
    checkpoint(tmp_path, "checkpoint-20", complete=True)
    checkpoint(tmp_path, "checkpoint-40", complete=False)  # killed while saving: no trainer_state.json
    result = dry_run("configs/phi-2-lora.yaml", env={"WORKSPACE": str(tmp_path)})
    assert resume_lines(result.stdout) == [
        "resume: checkpoint-40 is incomplete (a save was interrupted): slm train ignores it",
        "resume: slm train continues from checkpoint-20 if it was made with this train config and data "
        "(its slm_resume_key.json); otherwise it starts over and replaces the checkpoints",
    ]


def test_no_checkpoint_means_a_fresh_start(tmp_path):
    result = dry_run("configs/phi-2-lora.yaml", env={"WORKSPACE": str(tmp_path)})
    assert resume_lines(result.stdout) == [
        f"resume: no complete checkpoint in {tmp_path}/slm-forest/checkpoints/phi-2-lora: training starts at step 0"
    ]
    checkpoint(tmp_path, "checkpoint-10", complete=False)
    only_partial = dry_run("configs/phi-2-lora.yaml", env={"WORKSPACE": str(tmp_path)})
    assert resume_lines(only_partial.stdout)[-1].startswith("resume: no complete checkpoint")


def test_hf_token_never_appears(tmp_path):
    result = dry_run("configs/gemma-3-4b-qlora.yaml", "--stop-pod", env={"HF_TOKEN": SECRET, "GPUS": "2"})
    assert result.returncode == 0, result.stderr
    assert SECRET not in result.stdout and SECRET not in result.stderr
    assert "hf auth whoami" in result.stdout  # the token is checked, through the environment only


def test_gated_model_without_token_is_reported():
    result = dry_run("configs/gemma-3-12b-qlora.yaml")
    assert "export HF_TOKEN" in result.stderr and "gated" in result.stderr


def test_stop_pod_only_when_asked():
    plain = dry_run("configs/phi-2-lora.yaml")
    assert plain.returncode == 0 and "runpodctl" not in plain.stdout
    for args, env in ((("--stop-pod",), {}), ((), {"STOP_POD": "1"})):
        asked = dry_run("configs/phi-2-lora.yaml", *args, env={**env, "RUNPOD_POD_ID": "abc123xyz"})
        assert asked.returncode == 0, asked.stderr
        cmds = commands(asked.stdout)
        assert cmds[-1] == "runpodctl stop pod abc123xyz"  # the very last step, after training and evaluation
        assert index_of(cmds, r"slm train ") < index_of(cmds, r"^runpodctl ")


def test_several_gpus_launch_one_process_per_gpu_with_the_ddp_config():
    result = dry_run("configs/gemma-3-12b-qlora.yaml", env={"GPUS": "4", "HF_TOKEN": SECRET})
    assert result.returncode == 0, result.stderr
    train = commands(result.stdout)[index_of(commands(result.stdout), r"^nohup ")]
    assert re.search(
        r"^nohup \S+/bin/accelerate launch --config_file fine_tuning/train/accelerate_configs/ddp\.yaml --num_processes 4 "
        r"-m slm_forest\.cli train configs/gemma-3-12b-qlora\.yaml ",
        train,
    ), train
    assert (REPO_ROOT / "fine_tuning" / "train" / "accelerate_configs" / "ddp.yaml").exists()

    fsdp = dry_run(
        "configs/gemma-3-12b-qlora.yaml",
        env={
            "GPUS": "2",
            "ACCELERATE_CONFIG": "fine_tuning/train/accelerate_configs/fsdp_qlora.yaml",
            "HF_TOKEN": SECRET,
        },
    )
    assert "--config_file fine_tuning/train/accelerate_configs/fsdp_qlora.yaml --num_processes 2" in fsdp.stdout


def test_overrides_and_config_paths_from_another_directory(tmp_path):
    result = dry_run(
        str(REPO_ROOT / "configs" / "phi-2-lora.yaml"),
        "--set",
        "train.max_steps=30",
        "--set=train.lora.r=8",
        "--set",
        "run_name=phi-quick",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    train = commands(result.stdout)[index_of(commands(result.stdout), r"^nohup ")]
    assert "train configs/phi-2-lora.yaml " in train  # relative to the repository root, where the script runs
    assert "--set train.max_steps=30 --set train.lora.r=8 --set run_name=phi-quick" in train
    assert "checkpoints/phi-quick" in train and "logs/phi-quick-train.log" in train


def test_bad_invocations_fail_with_usage():
    missing = dry_run("configs/nope.yaml")
    assert missing.returncode == 2 and "config not found" in missing.stderr
    assert dry_run().returncode == 2
    assert dry_run("configs/phi-2-lora.yaml", "--frobnicate").returncode == 2


def test_a_real_run_without_a_gpu_stops_at_the_first_step(tmp_path):
    """Not a dry run: on a machine without nvidia-smi it must stop before installing or downloading anything."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("bash", "dirname", "sed", "head", "basename", "cat", "grep", "tr", "df", "tail"):
        found = shutil.which(tool)
        if found:
            (bin_dir / tool).symlink_to(found)
    result = subprocess.run(
        ["bash", str(SCRIPT), "configs/phi-2-lora.yaml"],
        cwd=REPO_ROOT,
        env={"PATH": str(bin_dir), "HOME": str(tmp_path), "WORKSPACE": str(tmp_path / "ws")},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert "nvidia-smi not found" in result.stderr
    assert not (tmp_path / "ws").exists()


def test_shellcheck_clean():
    if shutil.which("shellcheck") is None:
        pytest.skip("shellcheck is not installed (apt-get install shellcheck)")
    result = subprocess.run(["shellcheck", str(SCRIPT)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
