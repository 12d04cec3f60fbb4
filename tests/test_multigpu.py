"""Several processes: DDP really runs two ranks on CPU (gloo), FSDP + QLoRA settings name classes that exist.

Facts these tests rest on (ML_STACK_NOTES, re-checked with accelerate 1.15 / torch 2.13):
- `accelerate launch --cpu --num_processes 2` silently runs ONE process. Launched through the shipped ddp.yaml
  (MULTI_GPU) on a GPU-less machine, two processes start and, because `slm train` sets `use_cpu=True` on CPU, they
  join one gloo process group (DistributedType.MULTI_CPU).
- FSDP on CPU silently becomes DDP, so FSDP itself is only tested on GPUs (`gpu` marker); on CPU we test the
  decisions behind fsdp_qlora.yaml.

The DDP run goes through the real CLI (`-m fine_tuning.train.ddp_probe train CONFIG` is `slm train CONFIG` plus a record of
what each rank did, see fine_tuning/train/ddp_probe.py).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from slm_forest.files import write_jsonl
from slm_forest.manifest import Manifest, describe_files, write_manifest

REPO_ROOT = Path(__file__).resolve().parent.parent
ACCELERATE_CONFIGS = REPO_ROOT / "fine_tuning" / "train" / "accelerate_configs"
ACCELERATE = Path(sys.executable).parent / "accelerate"
SYSTEM = "당신은 한국 세법 전문가입니다. 관련 법령을 근거로 정확하게 답변하세요."
LAWS = ["소득세법", "법인세법", "부가가치세법", "상속세 및 증여세법", "국세기본법", "조세특례제한법"]
ANSWERS = [
    "거주자와 비거주자 모두 국내원천소득에 대하여 납세의무를 집니다.",
    "총수입금액에서 필요경비를 뺀 금액을 과세표준으로 합니다.",
    "과세기간이 끝난 날이 속하는 달의 말일부터 3개월 이내에 신고합니다.",
    "신고를 하지 아니한 경우 납부할 세액의 100분의 20을 가산세로 냅니다.",
]


def _example(i: int) -> dict:
    law = LAWS[i % len(LAWS)]
    return {
        "id": f"sft-{i:04d}",
        "messages": [
            {"role": "system", "content": SYSTEM},
            {"role": "user", "content": f"{law} 제{10 + i}조에 대해 알려주세요."},
            {"role": "assistant", "content": f"{law} 제{10 + i}조에 따르면 {ANSWERS[i % len(ANSWERS)]}"},
        ],
        "meta": {"law_name": law},
    }


def write_build(run_dir: Path, n_train: int = 48, n_val: int = 8) -> None:
    """A finished build stage, as slm_datagen leaves it."""
    build = run_dir / "build"
    files = [build / "train.jsonl", build / "val.jsonl"]
    write_jsonl(files[0], [_example(i) for i in range(n_train)])
    write_jsonl(files[1], [_example(i) for i in range(1000, 1000 + n_val)])
    write_manifest(
        build,
        Manifest(
            stage="build",
            run_name=run_dir.name,
            fingerprint="test-build",
            config={},
            outputs=describe_files(files, run_dir),
            counts={"train": n_train, "val": n_val},
            started_at="2026-01-01T00:00:00",
            finished_at="2026-01-01T00:00:01",
            seconds=1.0,
        ),
    )


def write_config(path: Path, runs_dir: Path, run_name: str, base_model: str, method: str = "lora") -> Path:
    config = {
        "run_name": run_name,
        "runs_dir": str(runs_dir),
        "train": {
            "base_model": base_model,
            "method": method,
            "max_length": 128,
            "micro_batch_size": 2,
            "max_steps": 4,
            "eval_steps": 2,
            "save_steps": 2,
            "logging_steps": 1,
            "learning_rate": 0.005,
            "report_to": [],
        },
    }
    path.write_text(
        "# multi-process test config: slm train\n" + yaml.safe_dump(config, allow_unicode=True), encoding="utf-8"
    )
    return path


def launch_env(probe_dir: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        SLM_DDP_PROBE_DIR=str(probe_dir),
        OMP_NUM_THREADS="1",
        HF_HUB_OFFLINE="1",
        HF_DATASETS_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        TOKENIZERS_PARALLELISM="false",
        PYTHONPATH=str(REPO_ROOT),
    )
    return env


def read_probe(probe_dir: Path) -> dict[int, list[dict]]:
    records: dict[int, list[dict]] = {}
    for path in sorted(probe_dir.glob("rank*.jsonl")):
        rank = int(path.stem[len("rank") :])
        records[rank] = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    return records


def events(rows: list[dict], name: str) -> list[dict]:
    return [row for row in rows if row["event"] == name]


# ------------------------------------------------------------------------------------------------ DDP on CPU
@pytest.fixture(scope="module")
def ddp_run(tmp_path_factory):
    """`accelerate launch --config_file ddp.yaml --num_processes 2 -m fine_tuning.train.ddp_probe train CONFIG`, once."""
    root = tmp_path_factory.mktemp("ddp")
    runs_dir = root / "runs"
    write_build(runs_dir / "ddp")
    config = write_config(root / "ddp.yaml", runs_dir, "ddp", "tiny-random-phi")
    probe = root / "probe"
    command = [
        str(ACCELERATE),
        "launch",
        "--config_file",
        str(ACCELERATE_CONFIGS / "ddp.yaml"),
        "--num_processes",
        "2",
        "--main_process_port",
        "0",
        "-m",
        "fine_tuning.train.ddp_probe",
        "train",
        str(config),
    ]
    result = subprocess.run(command, cwd=root, env=launch_env(probe), capture_output=True, text=True, timeout=300)
    return result, read_probe(probe), runs_dir / "ddp" / "train"


@pytest.mark.slow
def test_ddp_runs_two_processes_in_one_process_group(ddp_run):
    result, probe, _ = ddp_run
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert sorted(probe) == [0, 1], "expected one record file per rank"
    pids = {events(rows, "start")[0]["pid"] for rows in probe.values()}
    assert len(pids) == 2  # two operating-system processes
    for rank, rows in probe.items():
        begin = events(rows, "train_begin")
        assert len(begin) == 1, rows
        seen = begin[0]
        assert seen["dist_initialized"] and seen["dist_world_size"] == 2 and seen["dist_rank"] == rank
        assert seen["dist_backend"] == "gloo" and seen["distributed_type"] == "DistributedType.MULTI_CPU"
        assert seen["args_world_size"] == 2 and seen["is_world_process_zero"] == (rank == 0)


@pytest.mark.slow
def test_ddp_ranks_train_on_different_data_and_end_with_identical_weights(ddp_run):
    result, probe, _ = ddp_run
    assert result.returncode == 0, result.stderr[-3000:]
    ends = {rank: events(rows, "train_end")[0] for rank, rows in probe.items()}
    assert ends[0]["global_step"] == ends[1]["global_step"] == 4
    assert ends[0]["real_tokens"] > 0 and ends[1]["real_tokens"] > 0
    # Each rank got its own shard of every batch, yet gradients were averaged: the LoRA weights agree bit for bit.
    # (Two independent single-process runs would end with different weights.)
    assert ends[0]["trainable_sha256"] == ends[1]["trainable_sha256"]


@pytest.mark.slow
def test_adapter_and_manifest_are_written_once_by_rank_zero(ddp_run):
    result, probe, stage = ddp_run
    assert result.returncode == 0, result.stderr[-3000:]
    saves = {rank: [row["name"] for row in events(rows, "save")] for rank, rows in probe.items()}
    manifests = {rank: len(events(rows, "manifest")) for rank, rows in probe.items()}
    assert saves == {0: ["adapter", "tokenizer"], 1: []}
    assert manifests == {0: 1, 1: 0}
    assert sorted(p.name for p in (stage / "adapter").iterdir()) == [
        "README.md",
        "adapter_config.json",
        "adapter_model.safetensors",
    ]
    summary = json.loads((stage / "train_summary.json").read_text(encoding="utf-8"))
    assert summary["global_step"] == 4
    manifest = json.loads((stage / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["complete"] and manifest["stage"] == "train"


def test_cli_module_is_a_launchable_entry_point():
    """accelerate/torchrun start `python -m slm_forest.cli`: it must run the same app as the `slm` script."""
    result = subprocess.run(
        [sys.executable, "-m", "slm_forest.cli", "train", "--help"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "--resume" in result.stdout
    probe = subprocess.run(
        [sys.executable, "-m", "fine_tuning.train.ddp_probe", "--help"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={k: v for k, v in os.environ.items() if k != "SLM_DDP_PROBE_DIR"},
    )
    assert probe.returncode != 0 and "SLM_DDP_PROBE_DIR" in (probe.stderr + probe.stdout)


# ---------------------------------------------------------------------------------- the accelerate configs (CPU)
def _accelerate_config(name: str):
    from accelerate.commands.config.config_args import load_config_from_file

    return load_config_from_file(str(ACCELERATE_CONFIGS / name))


def test_ddp_config_is_multi_gpu_and_leaves_precision_to_the_run_config():
    config = _accelerate_config("ddp.yaml")
    assert config.distributed_type.value == "MULTI_GPU"
    assert config.use_cpu is False  # use_cpu would run a single process
    assert config.mixed_precision == "no"  # train.dtype decides; never fp16 for Gemma from here
    assert config.num_machines == 1


def test_fsdp_qlora_config_has_the_settings_peft_documents_for_qlora():
    config = _accelerate_config("fsdp_qlora.yaml")
    fsdp = config.fsdp_config
    assert config.distributed_type.value == "FSDP"
    assert config.mixed_precision == "bf16"
    assert fsdp["fsdp_version"] == 1
    assert fsdp["fsdp_use_orig_params"] is False
    assert fsdp["fsdp_cpu_ram_efficient_loading"] is True and fsdp["fsdp_sync_module_states"] is True
    assert fsdp["fsdp_auto_wrap_policy"] == "TRANSFORMER_BASED_WRAP"
    assert fsdp["fsdp_sharding_strategy"] == "FULL_SHARD"
    # Both true is an error in transformers' Trainer; the run config's activation_checkpointing does it.
    assert fsdp["fsdp_activation_checkpointing"] is False


def _wrap_classes() -> list[str]:
    return _accelerate_config("fsdp_qlora.yaml").fsdp_config["fsdp_transformer_layer_cls_to_wrap"].split(",")


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory):
    from fine_tuning.train.tiny import build_tiny_model

    root = tmp_path_factory.mktemp("tiny")
    texts = [m["content"] for i in range(40) for m in _example(i)["messages"]]
    return {
        kind: build_tiny_model(kind, root / kind, texts, 0) for kind in ("tiny-random-gemma3-mm", "tiny-random-phi")
    }


def _lora_model(path: Path, kind: str):
    from transformers import AutoModelForCausalLM

    from fine_tuning.plan.registry import get_model_spec
    from fine_tuning.train.loading import apply_lora
    from slm_forest.config import LoraConfigSection

    return apply_lora(AutoModelForCausalLM.from_pretrained(path), get_model_spec(kind), LoraConfigSection())


def test_fsdp_wrap_classes_exist_in_gemma3_multimodal_and_wrap_its_layers(tiny_models, monkeypatch):
    """The layer classes the config names exist in Gemma3ForConditionalGeneration (the 4B/12B layout), and PEFT's
    auto-wrap policy (what the Trainer installs for a PEFT model under FSDP) wraps every decoder layer, every vision
    encoder layer and every trainable LoRA leaf."""
    from accelerate.utils.dataclasses import get_module_class_from_name
    from peft.tuners.lora import LoraLayer
    from peft.utils.other import fsdp_auto_wrap_policy

    model = _lora_model(tiny_models["tiny-random-gemma3-mm"], "tiny-random-gemma3-mm")
    assert _wrap_classes() == ["Gemma3DecoderLayer", "SiglipEncoderLayer"]
    for name in _wrap_classes():
        assert get_module_class_from_name(model, name) is not None, name

    monkeypatch.setenv("FSDP_TRANSFORMER_CLS_TO_WRAP", ",".join(_wrap_classes()))  # what accelerate launch exports
    policy = fsdp_auto_wrap_policy(model)
    wrapped = {
        type(module).__name__ for module in model.modules() if policy(module=module, recurse=False, nonwrapped_numel=0)
    }
    assert {"Gemma3DecoderLayer", "SiglipEncoderLayer"} <= wrapped
    lora_leaves = [m for m in model.modules() if isinstance(m, LoraLayer)]
    assert lora_leaves
    trainable_leaf = next(child for m in lora_leaves for child in m.lora_A.values() if child.weight.requires_grad)
    assert policy(module=trainable_leaf, recurse=False, nonwrapped_numel=0)


def test_fsdp_default_wrap_classes_would_fail_on_gemma3_multimodal(tiny_models, monkeypatch):
    """Why the config names the classes: the default (the model's _no_split_modules) includes SigLIP classes that
    the Gemma 3 checkpoint does not contain (SiglipTextEmbeddings), and the wrap policy refuses to build."""
    from peft.utils.other import fsdp_auto_wrap_policy

    monkeypatch.delenv("FSDP_TRANSFORMER_CLS_TO_WRAP", raising=False)
    model = _lora_model(tiny_models["tiny-random-gemma3-mm"], "tiny-random-gemma3-mm")
    with pytest.raises(TypeError, match="Could not find the transformer layer class"):
        fsdp_auto_wrap_policy(model)


def test_phi_needs_the_documented_wrap_override(tiny_models):
    from accelerate.utils.dataclasses import get_module_class_from_name

    model = _lora_model(tiny_models["tiny-random-phi"], "tiny-random-phi")
    assert all(get_module_class_from_name(model, name) is None for name in _wrap_classes())
    assert get_module_class_from_name(model, "PhiDecoderLayer") is not None
    header = (ACCELERATE_CONFIGS / "fsdp_qlora.yaml").read_text(encoding="utf-8")
    assert "--fsdp_transformer_layer_cls_to_wrap PhiDecoderLayer" in header


def test_shipped_qlora_configs_fit_the_fsdp_recipe():
    from slm_forest.config import load_config

    for name in ("gemma-3-12b-qlora.yaml", "gemma-3-4b-qlora.yaml"):
        cfg = load_config(REPO_ROOT / "configs" / name)
        assert cfg.train.method == "qlora" and cfg.train.dtype == "bf16", name
        assert cfg.train.packing and cfg.train.max_length == 2048, name


# --------------------------------------------------------------------------------------------------- FSDP on GPUs
def _cuda_devices() -> int:
    try:
        import torch
    except ImportError:  # pragma: no cover
        return 0
    return torch.cuda.device_count() if torch.cuda.is_available() else 0


@pytest.mark.gpu
@pytest.mark.slow
@pytest.mark.skipif(_cuda_devices() < 2, reason="FSDP needs at least two CUDA GPUs (on CPU it silently becomes DDP)")
def test_fsdp_qlora_shards_a_multimodal_gemma3_across_two_gpus(tmp_path):
    runs_dir = tmp_path / "runs"
    write_build(runs_dir / "fsdp")
    config = write_config(tmp_path / "fsdp.yaml", runs_dir, "fsdp", "tiny-random-gemma3-mm", method="qlora")
    probe = tmp_path / "probe"
    command = [
        str(ACCELERATE),
        "launch",
        "--config_file",
        str(ACCELERATE_CONFIGS / "fsdp_qlora.yaml"),
        "--num_processes",
        "2",
        "--main_process_port",
        "0",
        "-m",
        "fine_tuning.train.ddp_probe",
        "train",
        str(config),
    ]
    result = subprocess.run(command, cwd=tmp_path, env=launch_env(probe), capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    records = read_probe(probe)
    assert sorted(records) == [0, 1]
    for rank, rows in records.items():
        begin = events(rows, "train_begin")[0]
        assert begin["distributed_type"] == "DistributedType.FSDP" and begin["dist_world_size"] == 2
        assert "nccl" in begin["dist_backend"] and begin["dist_rank"] == rank
    stage = runs_dir / "fsdp" / "train"
    assert (stage / "adapter" / "adapter_model.safetensors").stat().st_size > 0
    assert json.loads((stage / "manifest.json").read_text(encoding="utf-8"))["complete"]
