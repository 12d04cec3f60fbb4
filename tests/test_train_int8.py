"""`train.quantization: int8`: an 8-bit bitsandbytes base under LoRA. bitsandbytes 0.50.2 runs 8-bit layers on CPU
(Linear8bitLt, int8 weights), so the real path trains here; the config built and the validation are checked too."""

from __future__ import annotations

import json

import pytest

from slm_forest.config import load_config
from slm_forest.pipeline import run_stage
from tests.test_train_stage import config, write_build


def spec(name: str = "tiny-random-phi"):
    from fine_tuning.plan.registry import get_model_spec

    return get_model_spec(name)


def test_int8_config_is_8bit_and_skips_lm_head():
    from fine_tuning.train.loading import quantization_config

    q = quantization_config(spec(), "cpu", quantization="int8")
    assert q.load_in_8bit and not q.load_in_4bit and q.llm_int8_threshold == 6.0
    assert q.llm_int8_skip_modules == ["lm_head"]
    nf4 = quantization_config(spec(), "cpu")  # the default stays nf4 with double quantization
    assert nf4.load_in_4bit and nf4.bnb_4bit_quant_type == "nf4" and nf4.bnb_4bit_use_double_quant


def test_int8_skips_the_vision_modules_of_a_multimodal_checkpoint():
    from fine_tuning.train.loading import quantization_config

    q = quantization_config(spec("gemma-3-12b-it"), "cuda", quantization="int8")
    assert {"model.vision_tower", "model.multi_modal_projector", "lm_head"} <= set(q.llm_int8_skip_modules)


def test_int8_under_gemma_3_warns_about_fp16_matmul_inputs():
    from slm_forest.validate import check_config

    gemma = load_config(None, ["train.base_model=tiny-random-gemma3", "train.method=qlora", "train.quantization=int8"])
    assert [(f.level, f.key) for f in check_config(gemma)] == [("warning", "train.quantization")]
    phi = load_config(None, ["train.method=qlora", "train.quantization=int8"])
    assert check_config(phi) == []


@pytest.mark.slow
def test_int8_qlora_trains_on_cpu_and_reloads_unquantised(tmp_path):
    import torch

    from fine_tuning.export.merge import merge_adapter
    from fine_tuning.train.loading import load_model_for_training

    runs_dir = tmp_path / "runs"
    write_build(runs_dir, "int8", n_train=16, n_val=0)
    overrides = ["train.method=qlora", "train.quantization=int8", "train.max_steps=6", "train.report_to=[]"]
    run_stage(config(runs_dir, "int8", *overrides, "train.max_length=512"), "train")
    stage = runs_dir / "int8" / "train"
    summary = json.loads((stage / "train_summary.json").read_text(encoding="utf-8"))
    assert summary["method"] == "qlora" and summary["quantization"] == "int8"
    assert summary["frozen_dtypes"].get("int8", 0) > 0  # the frozen linear weights are stored in 8 bits
    losses = [
        json.loads(line)["loss"] for line in (stage / "trainer_log.jsonl").read_text().splitlines() if '"loss"' in line
    ]
    assert losses[-1] < losses[0]

    model = load_model_for_training(spec(), stage / "base_model", "qlora", "fp32", "cpu", quantization="int8")
    assert {type(m).__name__ for m in model.modules()} >= {"Linear8bitLt"}
    merged, _, facts = merge_adapter(stage, None)  # into the unquantised base, never into int8 weights
    assert facts["dtype"] == "float32" and facts["probe_max_abs_logit_diff"] < 1e-3
    assert all(p.dtype == torch.float32 for p in merged.parameters())


def test_resume_key_tells_int8_from_nf4_but_keeps_old_checkpoints_valid():
    from fine_tuning.train.checkpoints import resume_key

    def key(*overrides: str) -> str:
        return resume_key(load_config(None, ["train.method=qlora", *overrides]).train, 0, ["data"])

    assert key("train.quantization=int8") != key()
    assert key("train.quantization=nf4") == key()  # the default is left out, as before the field existed
