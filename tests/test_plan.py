"""GPU memory / time / cost planner (`fine_tuning.plan`: memory, cost, suggest, gpus). Pure Python, fast.

Validation against published peak-memory figures: tests/test_plan_published.py over tests/data/plan_published.csv.
"""

from __future__ import annotations

import math

import pytest

from fine_tuning.plan.cost import flops_per_token, plan_run, plan_to_dict
from fine_tuning.plan.gpus import DEFAULT_GPUS, GPU, gpus_from_config
from fine_tuning.plan.lora_targets import resolve_lora_targets
from fine_tuning.plan.memory import estimate_memory
from fine_tuning.plan.registry import get_model_spec
from fine_tuning.plan.suggest import suggest_changes

GIB = 2**30

# -- the seed project's setups ----------------------------------------------------------------------------------------


def test_gemma12b_bf16_lora_needs_more_than_24gb_and_plan_suggests_4bit():
    plan = plan_run(
        "gemma-3-12b-it",
        quantization="none",
        dtype="bf16",
        seq_len=2048,
        micro_batch=1,
        gradient_checkpointing=True,
        train_tokens=10_000_000,
    )
    d = plan_to_dict(plan)
    assert d["peak_memory_gb"] > 24
    assert not d["fits"]["RTX 4090"] and not d["fits"]["RTX A5000"] and not d["fits"]["L4"]
    assert d["fits"]["A100 SXM 80GB"] and d["fits"]["RTX A6000"]
    four_bit = [s for s in plan.suggestions if s.changes == {"quantization": "4bit"}]
    assert four_bit and four_bit[0].fits and four_bit[0].estimate.peak_gb < 22.5
    assert plan.suggestions[0].fits  # fitting suggestions come first


def test_gemma12b_qlora_fits_24gb_cards_with_checkpointing():
    est = estimate_memory(
        "gemma-3-12b-it", quantization="4bit", seq_len=2048, micro_batch=1, gradient_checkpointing=True
    )
    assert est.peak_gb < 22.5  # fits RTX 4090 / A5000 (24 GiB) and even the L4 (22.5 GiB)
    # even with full-vocabulary logits (no fused loss) it still squeezes into a 24 GiB card
    assert estimate_memory("gemma-3-12b-it", quantization="4bit", seq_len=2048, loss_impl="full").peak_gb < 24
    # without checkpointing it does not, and the suggestion is to turn it on
    no_ckpt = dict(quantization="4bit", seq_len=2048, micro_batch=1, gradient_checkpointing=False)
    assert estimate_memory("gemma-3-12b-it", **no_ckpt).peak_gb > 24
    sugg = suggest_changes("gemma-3-12b-it", target_gb=24, **no_ckpt)
    ckpt = [s for s in sugg if s.changes == {"gradient_checkpointing": True}]
    assert ckpt and ckpt[0].fits


def test_nothing_fits_suggests_a_combination():
    kw = dict(quantization="none", seq_len=8192, micro_batch=8, gradient_checkpointing=False)
    plan = plan_run("gemma-3-12b-it", train_tokens=1_000_000, **kw)
    assert not any(g.fits for g in plan.gpus)
    assert plan.suggestions and all(s.target_gb == max(g.memory_gb for g in DEFAULT_GPUS) for s in plan.suggestions)
    fitting = [s for s in plan.suggestions if s.fits]
    assert fitting and all(s.estimate.peak_gb <= s.target_gb for s in fitting)
    tiny_target = suggest_changes("gemma-3-12b-it", target_gb=4, **kw)
    assert not any(s.fits for s in tiny_target)  # 12B weights alone exceed 4 GiB: say so, do not pretend


def test_suggestions_name_the_config_key_that_applies_them():
    kw = dict(quantization="none", seq_len=4096, micro_batch=4, gradient_checkpointing=False, optimizer="adamw_torch")
    sugg = {tuple(s.changes): s for s in suggest_changes("gemma-3-12b-it", target_gb=24, **kw)}
    expected = {
        ("gradient_checkpointing",): ("train.activation_checkpointing=true", {"train.activation_checkpointing": True}),
        ("micro_batch",): ("train.micro_batch_size=1", {"train.micro_batch_size": 1}),
        ("quantization",): ("train.method=qlora", {"train.method": "qlora", "train.quantization": "nf4"}),
        ("optimizer",): ("train.optim=paged_adamw_8bit", {"train.optim": "paged_adamw_8bit"}),
    }
    for changes, (text, config) in expected.items():
        assert text in sugg[changes].description and sugg[changes].config == config
    shorter = sugg.get(("seq_len",))
    if shorter is not None:
        assert f"train.max_length={shorter.changes['seq_len']}" in shorter.description
        assert shorter.config == {"train.max_length": shorter.changes["seq_len"]}
    (combined,) = [
        s for s in suggest_changes("gemma-3-12b-it", target_gb=4, **kw) if s.description.startswith("combine:")
    ]
    assert "train.method=qlora" in combined.description and combined.config["train.method"] == "qlora"
    assert combined.config["train.optim"] == "paged_adamw_8bit"
    d = plan_to_dict(plan_run("gemma-3-12b-it", train_tokens=1000, **kw))
    assert all("config" in s for s in d["suggestions"])


# -- itemisation and behaviour ----------------------------------------------------------------------------------------


def test_lines_are_itemised_and_explained():
    est = estimate_memory("gemma-3-4b-it", quantization="4bit")
    names = [ln.name for ln in est.lines]
    assert names == [
        "weights",
        "lora_params",
        "modules_to_save",
        "gradients",
        "optimizer_states",
        "weight_copies",
        "activations",
        "backward_peak",
        "workspace",
        "not_at_once",
        "cuda_overhead",
    ]
    assert all(ln.explanation and (ln.gb >= 0 or ln.name == "not_at_once") for ln in est.lines)
    assert math.isclose(est.peak_gb, sum(ln.gb for ln in est.lines))
    assert est.allocated_gb < est.peak_gb
    assert "total peak" in est.format() and est.to_dict()["peak_memory_gb"] == round(est.peak_gb, 2)


def test_monotonic_and_sensible():
    base = dict(quantization="none", seq_len=1024, micro_batch=1, gradient_checkpointing=True)
    e0 = estimate_memory("gemma-3-4b-it", **base)
    assert estimate_memory("gemma-3-4b-it", **{**base, "seq_len": 4096}).peak_gb > e0.peak_gb
    assert estimate_memory("gemma-3-4b-it", **{**base, "micro_batch": 4}).peak_gb > e0.peak_gb
    assert estimate_memory("gemma-3-4b-it", **{**base, "gradient_checkpointing": False}).peak_gb > e0.peak_gb
    # 4-bit: the decoder linears shrink ~4x, but prepare_model_for_kbit_training's fp32 cast of the 262k-row
    # embedding and the vision tower (what `slm train` did before) gave much of it back on Gemma 3 4B
    with_vision = {**base, "load_vision_tower": True}
    e0_vision = estimate_memory("gemma-3-4b-it", **with_vision)
    q4_upcast = estimate_memory("gemma-3-4b-it", **{**with_vision, "quantization": "4bit", "upcast_frozen_fp32": True})
    q4 = estimate_memory("gemma-3-4b-it", **{**base, "quantization": "4bit"})  # what `slm train` does now
    assert (
        q4.line("weights").gb < e0.line("weights").gb / 2 < q4_upcast.line("weights").gb < e0_vision.line("weights").gb
    )
    assert q4.settings["upcast_frozen_fp32"] is False and q4.settings["load_vision_tower"] is False
    assert estimate_memory("gemma-3-4b-it", **{**base, "lora_r": 64}).line("lora_params").gb == pytest.approx(
        4 * e0.line("lora_params").gb
    )
    assert e0.line("weights").gb < e0_vision.line("weights").gb  # text-only training drops the tower
    assert estimate_memory("gemma-3-4b-it", **{**base, "attn_impl": "eager"}).peak_gb > e0.peak_gb
    # Gemma's 262k vocabulary makes full logits expensive: ~7 GiB at 2048 tokens
    full = estimate_memory("gemma-3-4b-it", **{**base, "seq_len": 2048, "loss_impl": "full"})
    fused = estimate_memory("gemma-3-4b-it", **{**base, "seq_len": 2048})
    assert full.peak_gb - fused.peak_gb > 5
    # fp32 (CPU-style) weights double the weight line
    assert estimate_memory("phi-2", dtype="fp32").line("weights").gb == pytest.approx(
        2 * estimate_memory("phi-2").line("weights").gb
    )
    # 8-bit optimizer states are a quarter of fp32 AdamW's (the fused step has no foreach scratch)
    assert estimate_memory("phi-2", optimizer="adamw_8bit").line("optimizer_states").gb == pytest.approx(
        estimate_memory("phi-2", optimizer="adamw_torch_fused").line("optimizer_states").gb / 4
    )
    # torch's foreach AdamW allocates one more state-sized tensor in its step: 8 B + 4 B per fp32 adapter param
    assert estimate_memory("phi-2", optimizer="adamw_torch").line("optimizer_states").gb == pytest.approx(
        1.5 * estimate_memory("phi-2", optimizer="adamw_torch_fused").line("optimizer_states").gb
    )


def test_tiny_models_are_tiny():
    for name in ("tiny-random-phi", "tiny-random-gemma3", "tiny-random-gemma3-mm"):
        est = estimate_memory(name, dtype="fp32", seq_len=128, micro_batch=4)
        assert est.allocated_gb < 0.1
        plan = plan_run(name, num_examples=300, mean_example_tokens=80, dtype="fp32", seq_len=128)
        assert plan.train_tokens == 24_000 and all(g.fits for g in plan.gpus) and not plan.suggestions


def test_lora_target_resolution():
    g = get_model_spec("gemma-3-12b-it")
    assert resolve_lora_targets(g.arch, g.lora_target_modules) == ("q", "k", "v", "o", "gate", "up", "down")
    p = get_model_spec("phi-2")
    assert resolve_lora_targets(p.arch, p.lora_target_modules) == ("q", "k", "v", "o", "up", "down")
    assert resolve_lora_targets(p.arch, "all-linear") == ("q", "k", "v", "o", "up", "down")
    assert resolve_lora_targets(g.arch, ["q_proj", "v_proj", "lm_head"]) == ("q", "v")
    assert resolve_lora_targets(g.arch, r".*\.(q_proj|v_proj)") == ("q", "v")
    with pytest.raises(ValueError):
        resolve_lora_targets(g.arch, ["bogus"])
    with pytest.raises(ValueError):
        resolve_lora_targets(g.arch, r".*vision_tower.*")
    with pytest.raises(ValueError):
        estimate_memory("phi-2", optimizer="adamax")
    with pytest.raises(ValueError):
        estimate_memory("phi-2", quantization="3bit")


# -- throughput, time, cost -------------------------------------------------------------------------------------------


def test_flops_formula_is_lora_not_full_training():
    arch = get_model_spec("gemma-3-12b-it").arch
    n = arch.num_layers * arch.linear_params_per_layer() + arch.vocab_size * arch.hidden_size
    no_ckpt = flops_per_token(arch, seq_len=256, gradient_checkpointing=False, loss_impl="full")
    ckpt = flops_per_token(arch, seq_len=256, gradient_checkpointing=True, loss_impl="full")
    assert no_ckpt == pytest.approx(4 * n, rel=0.03)  # frozen base: 2N forward + 2N activation gradients
    assert 5.5 * n < ckpt < 6.1 * n  # + recomputed decoder forward


def test_plan_dict_time_and_cost():
    plan = plan_run("gemma-3-12b-it", quantization="4bit", seq_len=2048, train_tokens=20_000_000, epochs=2)
    d = plan_to_dict(plan)
    for key in (
        "peak_memory_gb",
        "fits",
        "train_tokens",
        "hours",
        "usd",
        "tokens_per_s",
        "margin_gb",
        "memory",
        "suggestions",
        "cheapest_fit",
        "assumptions",
    ):
        assert key in d
    assert d["train_tokens"] == 20_000_000 and d["processed_tokens"] == 40_000_000
    assert set(d["fits"]) == {g.name for g in DEFAULT_GPUS}
    for g in plan.gpus:
        assert g.usd == pytest.approx(g.hours * g.gpu.usd_per_hour)
        assert g.hours > plan.assumptions["setup_hours"]
    # faster cards finish sooner
    assert d["hours"]["H100 SXM"] < d["hours"]["A100 SXM 80GB"] < d["hours"]["RTX A5000"]
    assert d["cheapest_fit"] in d["fits"] and d["fits"][d["cheapest_fit"]]
    # 4-bit dequantization is bandwidth-bound: it costs relatively more on the 300 GB/s L4 than on an H100
    bf16 = plan_to_dict(plan_run("gemma-3-4b-it", seq_len=512, train_tokens=1_000_000))["tokens_per_s"]
    q4 = plan_to_dict(plan_run("gemma-3-4b-it", seq_len=512, quantization="4bit", train_tokens=1_000_000))[
        "tokens_per_s"
    ]
    assert q4["L4"] / bf16["L4"] < q4["H100 SXM"] / bf16["H100 SXM"] < 1
    with pytest.raises(ValueError):
        plan_run("phi-2")  # no token count


def test_gpu_table_overrides():
    table = gpus_from_config(
        [
            {"name": "RTX 4090", "usd_per_hour": 0.5},
            {
                "name": "My GPU",
                "memory_gb": 32,
                "usd_per_hour": 1.0,
                "bf16": True,
                "tflops_16bit": 200,
                "mem_bandwidth_gbs": 1500,
            },
        ]
    )
    assert table[0].usd_per_hour == 0.5 and table[0].memory_gb == 24.0 and table[1].name == "My GPU"
    assert gpus_from_config(None) == DEFAULT_GPUS
    with pytest.raises(ValueError):
        gpus_from_config([{"name": "Unknown"}])
    old = GPU("T4", 15.0, 0.2, False, 65.0, 320)
    plan = plan_run("gemma-3-1b-it", seq_len=512, train_tokens=1000, gpus=[old])
    assert not plan.gpus[0].fits and "bf16" in plan.gpus[0].note  # Gemma cannot run fp16 on a T4


@pytest.mark.parametrize(
    "overrides",
    [
        ["train.method=full", "train.micro_batch_size=4", "train.max_length=4096"],
        ["train.lora.modules_to_save=[embed_tokens,lm_head]", "train.micro_batch_size=2", "plan.loss_head=full"],
        ["train.method=qlora", "train.quantization=int8", "train.optim=adamw_torch"],
    ],
    ids=["full", "modules_to_save", "int8"],
)
def test_every_suggestion_is_a_config_key_the_plan_then_honours(overrides):
    """suggest_changes only proposes what a run-config key changes: applying its `config` with --set-style overrides
    gives exactly the estimate the suggestion promised."""
    from fine_tuning.plan.cli import _memory_kwargs
    from slm_forest.config import load_config

    base = ["train.base_model=gemma-3-4b-it", *overrides]
    cfg = load_config(None, base)
    sugg = suggest_changes("gemma-3-4b-it", target_gb=8, **_memory_kwargs(cfg))
    assert sugg
    for s in sugg:
        assert s.config, s.description
        sets = [f"{k}={'[' + ','.join(v) + ']' if isinstance(v, list) else v}" for k, v in s.config.items()]
        for key in s.config:
            assert key in s.description or key == "train.quantization", (key, s.description)
        applied = estimate_memory("gemma-3-4b-it", **_memory_kwargs(load_config(None, [*base, *sets])))
        assert applied.peak_gb == pytest.approx(s.estimate.peak_gb), s.description
    names = {k for s in sugg for k in s.changes}
    assert not names & {"loss_impl", "upcast_frozen_fp32", "n_gpus"}  # no config key changes them in slm train
