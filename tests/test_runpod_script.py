"""scripts/runpod_train.sh: the dry run prints the whole RunPod procedure in order, runs nothing, never shows a secret,
and ends with the list of problems the real run would hit (non-zero exit when there is any).

CI has no GPU and no /workspace: `pod_env` makes a healthy pod in a temporary directory (a fake `nvidia-smi` that
reports one GPU, a workspace with room, the tokens set) and each test takes away what it checks. shellcheck runs when
it is installed (`apt-get install shellcheck`); the rest always runs.
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
OPENAI_SECRET = "fake-openai-key-must-never-show"
FAKE_NVIDIA_SMI = """#!/bin/sh
case "$*" in
  -L) echo "GPU 0: NVIDIA GeForce RTX 4090 (UUID: GPU-0)" ;;
  *nounits*) echo "0, NVIDIA GeForce RTX 4090, ${FAKE_GPU_MIB:-24564}" ;;
  *) echo "0, NVIDIA GeForce RTX 4090, ${FAKE_GPU_MIB:-24564} MiB" ;;
esac
"""


def pod_env(root: Path) -> dict[str, str]:
    """A healthy pod under `root`: one 24 GiB GPU, a workspace with room, HF_TOKEN and the teacher's key set."""
    bin_dir = root / "fake-bin"
    bin_dir.mkdir(parents=True, exist_ok=True)
    (bin_dir / "nvidia-smi").write_text(FAKE_NVIDIA_SMI, encoding="utf-8")
    (bin_dir / "nvidia-smi").chmod(0o755)
    (root / "ws").mkdir(exist_ok=True)
    return {
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "WORKSPACE": str(root / "ws"),
        "MIN_FREE_GB": "0",
        "HF_TOKEN": SECRET,
        "OPENAI_API_KEY": OPENAI_SECRET,
    }


def problems(stdout: str) -> list[str]:
    """The closing list of a dry run ([] when it found none)."""
    lines = stdout.rstrip().splitlines()
    if lines[-1].startswith("dry run: no problems found"):
        return []
    start = next(i for i, line in enumerate(lines) if line.startswith("dry run: ") and "problem(s)" in line)
    return [line[2:] for line in lines[start + 1 :]]


def dry_run(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    unset = ("GPUS", "STOP_POD", "WORKSPACE", "SKIP_EVALUATE", "HF_TOKEN", "OPENAI_API_KEY", "RUNPOD_POD_ID")
    full_env = {k: v for k, v in os.environ.items() if k not in unset}
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
    result = dry_run("configs/gemma-3-12b-qlora.yaml", env=pod_env(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    ws = f"{tmp_path}/ws"
    cmds = commands(result.stdout)
    order = [
        r"^nvidia-smi ",
        rf"^df -h {ws} /$",
        rf"^export HF_HOME={ws}/",
        rf"^export PIP_CACHE_DIR={ws}/",
        rf"^python3 -m venv --system-site-packages {ws}/",
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
    assert f"--set runs_dir={ws}/slm-forest/runs" in train
    assert f"--set train.output_dir={ws}/slm-forest/checkpoints/gemma-3-12b-qlora" in train
    assert train.endswith(f">> {ws}/slm-forest/logs/gemma-3-12b-qlora-train.log 2>&1 &")
    # The venv (and with it the installed project) is on the volume too.
    assert all(c.startswith(ws) or not c.startswith("/") for c in cmds if "/bin/" in c.split()[0])
    # No checkpoint yet: a first run must not pass --resume (slm train refuses --resume without a checkpoint).
    assert "--resume" not in train
    # Not asked to stop the pod, nor to reinforce.
    assert "runpodctl" not in result.stdout and "slm reinforce" not in result.stdout
    # The memory plan was checked against the GPU nvidia-smi reports, and nothing is wrong.
    assert "memory plan: ~" in result.stdout and "on NVIDIA GeForce RTX 4090" in result.stdout
    assert problems(result.stdout) == []


def test_dry_run_lists_every_problem_and_fails(tmp_path):
    """No GPU, no volume, a gated model without HF_TOKEN: each is listed at the end, and the exit status is 1."""
    env = pod_env(tmp_path)
    env.update(PATH=os.environ["PATH"], WORKSPACE=str(tmp_path / "no-volume"))
    env.pop("HF_TOKEN")
    result = dry_run("configs/gemma-3-12b-qlora.yaml", env=env)
    assert result.returncode == 1
    listed = problems(result.stdout)
    assert len(listed) == 3, listed
    assert listed[0].startswith("nvidia-smi not found: this is not a GPU pod")
    assert listed[1] == f"{tmp_path}/no-volume does not exist: attach a volume (or set WORKSPACE)"
    assert "gated Google model: export HF_TOKEN" in listed[2]
    assert "slm train" in result.stdout  # the dry run still shows every command it would run


def test_dry_run_reports_a_config_that_does_not_validate(tmp_path):
    result = dry_run("configs/phi-2-lora.yaml", "--set", "train.lora.r=-1", env=pod_env(tmp_path))
    assert result.returncode == 1
    (listed,) = problems(result.stdout)
    assert listed.startswith("the config does not validate: --set train.lora.r=-1: invalid value for 'train.lora.r'")


def test_dry_run_reports_a_plan_that_does_not_fit_the_gpu(tmp_path):
    env = pod_env(tmp_path) | {"FAKE_GPU_MIB": "8192"}  # an 8 GiB card for Gemma 3 12B QLoRA
    result = dry_run("configs/gemma-3-12b-qlora.yaml", env=env)
    assert result.returncode == 1
    (listed,) = problems(result.stdout)
    assert re.match(
        r"the plan does not fit the GPU: the plan says this run needs ~[\d.]+ GiB on NVIDIA GeForce "
        r"RTX 4090, which has 8\.0 GiB",
        listed,
    ), listed


def test_dry_run_reports_a_missing_teacher_key_only_while_the_dataset_is_not_built(tmp_path):
    env = pod_env(tmp_path)
    env.pop("OPENAI_API_KEY")
    result = dry_run("configs/gemma-3-12b-qlora.yaml", env=env)
    assert result.returncode == 1
    assert problems(result.stdout) == [
        "the dataset is not built yet and the distill teacher reads its key from OPENAI_API_KEY, which is not set: "
        "export OPENAI_API_KEY=…"
    ]
    build = tmp_path / "ws" / "slm-forest" / "runs" / "gemma-3-12b-qlora" / "build"
    build.mkdir(parents=True)
    (build / "manifest.json").write_text("{}", encoding="utf-8")  # built (e.g. copied from a laptop)
    assert dry_run("configs/gemma-3-12b-qlora.yaml", env=env).returncode == 0


def test_reinforce_runs_after_training_when_asked_or_enabled(tmp_path):
    for args in (("--reinforce",), ("--set", "reinforce.enabled=true")):
        result = dry_run("configs/phi-2-lora.yaml", *args, env=pod_env(tmp_path))
        assert result.returncode == 0, result.stdout + result.stderr
        cmds = commands(result.stdout)
        reinforce = cmds[index_of(cmds, r"/bin/slm reinforce configs/phi-2-lora\.yaml ")]
        assert index_of(cmds, r"slm train ") < index_of(cmds, r"slm reinforce ") < index_of(cmds, r"slm evaluate ")
        assert reinforce.endswith("-reinforce.log 2>&1") and f"--set runs_dir={tmp_path}/ws/" in reinforce
        assert "merge the RL adapter" in result.stdout


def checkpoint(root: Path, name: str, *, complete: bool) -> Path:
    path = root / "ws" / "slm-forest" / "checkpoints" / "phi-2-lora" / name
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
    result = dry_run("configs/phi-2-lora.yaml", env=pod_env(tmp_path))
    assert result.returncode == 0, result.stderr
    train = commands(result.stdout)[index_of(commands(result.stdout), r"^nohup .*slm train ")]
    assert "--resume" not in train
    assert f"train.output_dir={tmp_path}/ws/slm-forest/checkpoints/phi-2-lora" in train
    (line,) = resume_lines(result.stdout)
    assert "continues from checkpoint-40 if it was made with this train config and data" in line
    assert "otherwise it starts over" in line
    # A dry run creates nothing, not even the directories it would create.
    assert sorted(p.name for p in (tmp_path / "ws" / "slm-forest").iterdir()) == ["checkpoints"]


def test_a_checkpoint_cut_by_a_kill_during_its_save_is_reported_as_ignored(tmp_path):
    checkpoint(tmp_path, "checkpoint-20", complete=True)
    checkpoint(tmp_path, "checkpoint-40", complete=False)  # killed while saving: no trainer_state.json
    result = dry_run("configs/phi-2-lora.yaml", env=pod_env(tmp_path))
    assert resume_lines(result.stdout) == [
        "resume: checkpoint-40 is incomplete (a save was interrupted): slm train ignores it",
        "resume: slm train continues from checkpoint-20 if it was made with this train config and data "
        "(its slm_resume_key.json); otherwise it starts over and replaces the checkpoints",
    ]


def test_no_checkpoint_means_a_fresh_start(tmp_path):
    result = dry_run("configs/phi-2-lora.yaml", env=pod_env(tmp_path))
    assert resume_lines(result.stdout) == [
        f"resume: no complete checkpoint in {tmp_path}/ws/slm-forest/checkpoints/phi-2-lora: training starts at step 0"
    ]
    checkpoint(tmp_path, "checkpoint-10", complete=False)
    only_partial = dry_run("configs/phi-2-lora.yaml", env=pod_env(tmp_path))
    assert resume_lines(only_partial.stdout)[-1].startswith("resume: no complete checkpoint")


def test_secrets_never_appear(tmp_path):
    env = pod_env(tmp_path) | {"GPUS": "2", "RUNPOD_POD_ID": "abc123xyz"}
    result = dry_run("configs/gemma-3-4b-qlora.yaml", "--stop-pod", "--reinforce", env=env)
    assert result.returncode == 0, result.stderr
    for secret in (SECRET, OPENAI_SECRET):
        assert secret not in result.stdout and secret not in result.stderr
    assert "hf auth whoami" in result.stdout  # the token is checked, through the environment only


def test_gated_model_without_token_is_reported(tmp_path):
    env = pod_env(tmp_path)
    env.pop("HF_TOKEN")
    result = dry_run("configs/gemma-3-12b-qlora.yaml", env=env)
    assert "export HF_TOKEN" in result.stderr and "gated" in result.stderr and result.returncode == 1
    public = dry_run("configs/gemma-3-12b-qlora.yaml", "--set", "train.base_model=microsoft/phi-2", env=env)
    assert "gated" not in public.stderr  # --set of another base model is followed


def test_stop_pod_only_when_asked(tmp_path):
    plain = dry_run("configs/phi-2-lora.yaml", env=pod_env(tmp_path))
    assert plain.returncode == 0 and "runpodctl" not in plain.stdout
    for args, env in ((("--stop-pod",), {}), ((), {"STOP_POD": "1"})):
        asked = dry_run("configs/phi-2-lora.yaml", *args, env=pod_env(tmp_path) | env | {"RUNPOD_POD_ID": "abc123xyz"})
        assert asked.returncode == 0, asked.stderr
        cmds = commands(asked.stdout)
        assert cmds[-1] == "runpodctl stop pod abc123xyz"  # the very last step, after training and evaluation
        assert index_of(cmds, r"slm train ") < index_of(cmds, r"^runpodctl ")
    no_id = dry_run("configs/phi-2-lora.yaml", "--stop-pod", env=pod_env(tmp_path))
    assert no_id.returncode == 1 and problems(no_id.stdout)[0].startswith("--stop-pod needs RUNPOD_POD_ID")


def test_several_gpus_launch_one_process_per_gpu_with_the_ddp_config(tmp_path):
    result = dry_run("configs/gemma-3-12b-qlora.yaml", env=pod_env(tmp_path) | {"GPUS": "4"})
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
        env=pod_env(tmp_path)
        | {"GPUS": "2", "ACCELERATE_CONFIG": "fine_tuning/train/accelerate_configs/fsdp_qlora.yaml"},
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
        env=pod_env(tmp_path),
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
