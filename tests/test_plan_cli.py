"""`slm plan`: JSON keys, the fit verdict per GPU, --model-config for models outside the registry."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from slm_forest.cli import app

runner = CliRunner()


def _built_dataset(run: str = "p", n: int = 200) -> None:
    build = Path("runs") / run / "build"
    build.mkdir(parents=True)
    row = {
        "id": "x",
        "messages": [
            {"role": "system", "content": "당신은 한국 세법 전문가입니다."},
            {"role": "user", "content": "부가가치세 신고는 언제 해야 하나요?" * 3},
            {"role": "assistant", "content": "부가가치세는 과세기간 종료 후 25일 이내에 신고·납부합니다." * 10},
        ],
        "meta": {},
    }
    (build / "train.jsonl").write_text("\n".join(json.dumps(row, ensure_ascii=False) for _ in range(n)) + "\n")


def test_json_has_the_promised_keys(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        "train:\n  base_model: gemma-3-12b-it\n  method: qlora\n  activation_checkpointing: true\n"
        "  micro_batch_size: 1\n"
    )
    _built_dataset()
    result = runner.invoke(app, ["plan", str(cfg), "--set", "run_name=p", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    for key in ("peak_memory_gb", "fits", "train_tokens", "hours", "usd"):
        assert key in data
    assert data["fits"]["RTX 4090"] is True  # QLoRA 12B with checkpointing fits a 24 GB card
    assert data["dataset"]["examples"] == 200 and data["train_tokens"] > 200 * 100


def test_seed_setup_does_not_fit_24gb_and_names_4bit(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("train:\n  base_model: gemma-3-12b-it\n  method: lora\n  micro_batch_size: 1\n")
    _built_dataset()
    result = runner.invoke(app, ["plan", str(cfg), "--set", "run_name=p", "--gpu", "RTX 4090", "--json"])
    assert result.exit_code == 1  # the named GPU does not fit: a script can stop here
    data = json.loads(result.stdout)
    assert data["fits"] == {"RTX 4090": False}
    assert any("4-bit" in s["description"] and s["fits"] for s in data["suggestions"])


def test_model_outside_the_registry_from_a_local_config(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("train:\n  base_model: some/unknown-model\n  max_length: 1024\n")
    model_config = tmp_path / "config.json"
    model_config.write_text(
        json.dumps(
            {
                "model_type": "llama",
                "hidden_size": 2048,
                "num_hidden_layers": 16,
                "num_attention_heads": 32,
                "num_key_value_heads": 8,
                "intermediate_size": 8192,
                "vocab_size": 128256,
                "tie_word_embeddings": True,
            }
        )
    )
    result = runner.invoke(
        app,
        ["plan", str(cfg), "--set", "run_name=p", "--model-config", str(model_config), "--tokens", "1000000", "--json"],
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert 2 < data["peak_memory_gb"] < 24 and data["train_tokens"] == 1_000_000


def test_without_a_dataset_the_memory_plan_stands_and_time_says_what_it_needs(tmp_path):
    """Memory does not depend on the dataset size: no built dataset and no --tokens still plan the memory; hours and
    dollars (which do depend on it) are absent, not computed for zero tokens, and the note names the fix."""
    cfg = tmp_path / "c.yaml"
    cfg.write_text("run_name: nothing\ntrain:\n  base_model: gemma-3-12b-it\n  method: qlora\n")
    result = runner.invoke(app, ["plan", str(cfg), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    with_tokens = json.loads(runner.invoke(app, ["plan", str(cfg), "--json", "--tokens", "1000000"]).stdout)
    assert data["peak_memory_gb"] == with_tokens["peak_memory_gb"] > 5
    assert data["fits"] == with_tokens["fits"] and data["memory"] == with_tokens["memory"]
    assert set(data["hours"].values()) == {None} and set(data["usd"].values()) == {None}
    assert data["steps"] is None and data["train_tokens"] is None and data["cheapest_fit"] is None
    assert any("--tokens" in n and "--to build" in n for n in data["plan_notes"])
    assert all(v > 0 for v in with_tokens["hours"].values())  # with a run length, the hours are there
    text = runner.invoke(app, ["plan", str(cfg)])
    assert text.exit_code == 0, text.output
    flat = " ".join(text.output.split())
    assert "peak GPU memory" in flat and "hours and dollars need" in flat and "--tokens N" in flat
    assert "USD/hour" in flat  # the table prices per hour instead of inventing a total
    capped = json.loads(runner.invoke(app, ["plan", str(cfg), "--json", "--set", "train.max_steps=10"]).stdout)
    assert capped["steps"] == 10 and capped["hours"]["RTX 4090"] > 0  # max_steps alone fixes the run's length


def test_negative_tokens_is_a_clear_error(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("run_name: nothing\n")
    result = runner.invoke(app, ["plan", str(cfg), "--tokens", "-5"])
    assert result.exit_code != 0 and "--tokens" in str(result.exception)


def test_train_refuses_a_run_that_does_not_fit_the_gpu_it_finds():
    """The decision `slm train` makes on a GPU, tested on CPU with the GPU's name and memory given."""
    import pytest

    from fine_tuning.plan.cli import memory_verdict
    from slm_forest.config import load_config
    from slm_forest.errors import SlmError

    seed_setup = load_config(None, ["train.base_model=gemma-3-12b-it", "train.micro_batch_size=1"])
    with pytest.raises(SlmError) as info:
        memory_verdict(seed_setup, "NVIDIA GeForce RTX 4090", 23.6)
    assert "4-bit" in info.value.hint and "RTX 4090" in info.value.message
    qlora = load_config(
        None,
        [
            "train.base_model=gemma-3-12b-it",
            "train.method=qlora",
            "train.micro_batch_size=1",
            "train.activation_checkpointing=true",
        ],
    )
    assert "GiB on NVIDIA GeForce RTX 4090" in memory_verdict(qlora, "NVIDIA GeForce RTX 4090", 23.6)


def test_train_optim_reaches_the_planner_and_the_8bit_suggestion_applies(tmp_path):
    """The planner's '8-bit paged AdamW (train.optim=paged_adamw_8bit)' is a config key the plan then honours."""
    from fine_tuning.plan.cli import _memory_kwargs
    from slm_forest.config import load_config

    base = ["train.base_model=gemma-3-12b-it", "train.micro_batch_size=1", "train.activation_checkpointing=true"]
    assert _memory_kwargs(load_config(None, base))["optimizer"] == "adamw_torch"
    assert _memory_kwargs(load_config(None, [*base, "train.optim=paged_adamw_8bit"]))["optimizer"] == "paged_adamw_8bit"

    cfg = tmp_path / "c.yaml"
    cfg.write_text("train:\n  base_model: gemma-3-12b-it\n  micro_batch_size: 1\n  activation_checkpointing: true\n")
    _built_dataset()
    before = json.loads(runner.invoke(app, ["plan", str(cfg), "--set", "run_name=p", "--json"]).stdout)
    (suggestion,) = [s for s in before["suggestions"] if s["changes"] == {"optimizer": "paged_adamw_8bit"}]
    assert "train.optim=paged_adamw_8bit" in suggestion["description"]
    applied = [f"{k}={v}" for k, v in suggestion["config"].items()]
    assert applied == ["train.optim=paged_adamw_8bit"]
    after = json.loads(
        runner.invoke(app, ["plan", str(cfg), "--set", "run_name=p", "--set", applied[0], "--json"]).stdout
    )
    assert after["settings"]["optimizer"] == "paged_adamw_8bit" and after["memory"]["optimizer_states"] == 0
    assert after["peak_memory_gb"] == suggestion["peak_memory_gb"] < before["peak_memory_gb"]


def test_unknown_optimizer_is_planned_as_adamw_with_a_note(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("train:\n  base_model: phi-2\n  optim: adamw_torch_4bit\n")
    _built_dataset()
    data = json.loads(runner.invoke(app, ["plan", str(cfg), "--set", "run_name=p", "--json"]).stdout)
    assert data["settings"]["optimizer"] == "adamw" and "train.optim=adamw_torch_4bit" in data["plan_notes"][0]


def test_plan_reports_optimizer_steps(tmp_path):
    import math

    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        "train:\n  base_model: phi-2\n  max_length: 256\n  micro_batch_size: 2\n"
        "  gradient_accumulation_steps: 4\n  epochs: 3\n"
    )
    _built_dataset()
    data = json.loads(runner.invoke(app, ["plan", str(cfg), "--set", "run_name=p", "--json"]).stdout)
    tokens = data["dataset"]["tokens_per_epoch"]
    assert data["steps"] == math.ceil(tokens * 3 / (2 * 4 * 256)) and data["steps"] > 1  # packed
    unpacked = json.loads(
        runner.invoke(app, ["plan", str(cfg), "--set", "run_name=p", "--set", "train.packing=false", "--json"]).stdout
    )
    assert unpacked["steps"] == math.ceil(200 * 3 / (2 * 4))
    capped = json.loads(
        runner.invoke(app, ["plan", str(cfg), "--set", "run_name=p", "--set", "train.max_steps=7", "--json"]).stdout
    )
    assert capped["steps"] == 7 and capped["train_tokens"] == 7 * 2 * 4 * 256 and capped["epochs"] == 1
    text = runner.invoke(app, ["plan", str(cfg), "--set", "run_name=p"])
    assert text.exit_code == 0, text.output
    assert f"optimizer steps: {data['steps']:,}" in text.output


def test_config_keys_reach_the_plan(tmp_path):
    """train.method=full / master_weights / quantization=int8 / lora.modules_to_save and plan.loss_head each change
    the line they drive, and the line names its key."""
    cfg = tmp_path / "c.yaml"
    cfg.write_text("run_name: nothing\ntrain:\n  base_model: gemma-3-1b-it\n  micro_batch_size: 1\n")

    def plan(*sets):
        args = ["plan", str(cfg), "--json", *[a for s in sets for a in ("--set", s)]]
        result = runner.invoke(app, args)
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout)

    lora = plan()
    full = plan("train.method=full")
    bf16 = plan("train.method=full", "train.master_weights=bf16")
    assert full["memory"]["weights"] == pytest.approx(2 * lora["memory"]["weights"], abs=0.002)  # fp32 masters
    assert full["memory"]["weight_copies"] > 0 and bf16["memory"]["weight_copies"] == 0
    assert bf16["peak_memory_gb"] < full["peak_memory_gb"]
    assert "train.master_weights=fp32" in full["memory_explanations"]["weights"]
    int8 = plan("train.method=qlora", "train.quantization=int8")
    nf4 = plan("train.method=qlora")
    assert nf4["memory"]["weights"] < int8["memory"]["weights"] < lora["memory"]["weights"]
    saved = plan("train.lora.modules_to_save=[embed_tokens]")
    assert saved["memory"]["modules_to_save"] > 0 and lora["memory"]["modules_to_save"] == 0
    assert "train.lora.modules_to_save" in saved["memory_explanations"]["modules_to_save"]
    logits = plan("plan.loss_head=full")
    assert logits["memory"]["backward_peak"] > 3 * lora["memory"]["backward_peak"]
    assert "plan.loss_head=full" in logits["memory_explanations"]["backward_peak"]


def test_several_gpus_and_the_frozen_fp32_flag(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        "run_name: nothing\ntrain:\n  base_model: gemma-3-12b-it\n  micro_batch_size: 1\n"
        "  activation_checkpointing: true\n"
    )

    def plan(*args):
        result = runner.invoke(app, ["plan", str(cfg), "--json", "--tokens", "1000000", *args])
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout)

    one = plan()
    ddp = plan("--gpus", "2")
    fsdp = plan("--gpus", "2", "--strategy", "fsdp")
    assert ddp["peak_memory_gb"] > one["peak_memory_gb"] and ddp["memory"]["ddp_buckets"] > 0  # a replica each
    assert fsdp["peak_memory_gb"] < one["peak_memory_gb"] and "fsdp_gathered" in fsdp["memory"]
    assert not one["fits"]["RTX 4090"] and fsdp["fits"]["RTX 4090"]  # two 24 GB cards do it with FSDP
    assert fsdp["hours"]["RTX 4090"] < one["hours"]["RTX 4090"]  # two GPUs share the tokens
    assert ddp["usd"]["A100 SXM 80GB"] == pytest.approx(
        ddp["hours"]["A100 SXM 80GB"] * 2 * ddp["usd_per_hour"]["A100 SXM 80GB"], abs=0.02
    )  # both GPUs billed
    text = runner.invoke(app, ["plan", str(cfg), "--tokens", "1000", "--gpus", "2", "--strategy", "fsdp"])
    assert "per GPU (2 GPUs, fsdp)" in " ".join(text.output.split())
    bad = runner.invoke(app, ["plan", str(cfg), "--gpus", "2", "--strategy", "zero3"])
    assert bad.exit_code != 0 and "--strategy" in str(bad.exception)
    qlora = ["--set", "train.method=qlora"]
    up = plan(*qlora, "--frozen-fp32")
    assert up["memory"]["weights"] > plan(*qlora)["memory"]["weights"] and up["settings"]["upcast_frozen_fp32"]


def test_train_check_plans_the_launch_it_runs_under():
    """`slm train` checks one GPU's share of the launch it is part of (WORLD_SIZE, ACCELERATE_USE_FSDP)."""
    import pytest

    from fine_tuning.plan.cli import memory_verdict
    from fine_tuning.plan.parallel import Layout, launch_layout
    from slm_forest.config import load_config
    from slm_forest.errors import SlmError

    assert launch_layout({}) == Layout(1, "ddp")
    assert launch_layout({"WORLD_SIZE": "4", "ACCELERATE_USE_FSDP": "true"}, 8) == Layout(4, "fsdp", 8)
    assert launch_layout({"WORLD_SIZE": "2", "ACCELERATE_USE_FSDP": "false"}).strategy == "ddp"
    with pytest.raises(ValueError, match="WORLD_SIZE='two'"):
        launch_layout({"WORLD_SIZE": "two"})
    # bf16 LoRA of a 12B model: ~23 GiB of weights alone; a replica per GPU (DDP) cannot fit a 24 GB card,
    # FSDP over 4 GPUs shards it
    cfg = load_config(
        None, ["train.base_model=gemma-3-12b-it", "train.micro_batch_size=1", "train.activation_checkpointing=true"]
    )
    ddp = launch_layout({"WORLD_SIZE": "4"}, cfg.train.gradient_accumulation_steps)
    with pytest.raises(SlmError) as info:
        memory_verdict(cfg, "NVIDIA GeForce RTX 4090", 23.6, ddp)
    assert "each of 4 x NVIDIA GeForce RTX 4090 (ddp)" in info.value.message
    fsdp = launch_layout({"WORLD_SIZE": "4", "ACCELERATE_USE_FSDP": "1"}, cfg.train.gradient_accumulation_steps)
    note = memory_verdict(cfg, "NVIDIA GeForce RTX 4090", 23.6, fsdp)
    assert "each of 4 x NVIDIA GeForce RTX 4090 (fsdp)" in note
