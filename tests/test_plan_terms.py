"""The planner's terms for what a user can configure: full fine-tuning, modules_to_save, int8 / GPTQ / AWQ bases,
the loss head, the frozen-weight upcast, per-architecture activations and the config.json quirks. Pure Python."""

from __future__ import annotations

import json

import pytest

from fine_tuning.plan.activation_terms import layer_terms
from fine_tuning.plan.architecture import Architecture, architecture_from_config
from fine_tuning.plan.memory import estimate_memory
from fine_tuning.plan.registry import get_model_spec

GIB = 2**30
LLAMA32_1B = Architecture("llama", 2048, 16, 32, 8, 64, 8192, 128256, True)


def _gb(est, name):
    return est.line(name).gb * GIB


def test_full_fine_tuning_fp32_master_counts_weights_grads_states_and_autocast_copies():
    n = LLAMA32_1B.language_params()
    est = estimate_memory(LLAMA32_1B, method="full", master_weights="fp32", optimizer="adamw_torch_fused")
    assert _gb(est, "weights") == pytest.approx(4 * n)
    assert _gb(est, "gradients") == pytest.approx(4 * n)
    assert _gb(est, "optimizer_states") == pytest.approx(8 * n)  # two fp32 states, fused step: no scratch
    matmul = 16 * LLAMA32_1B.linear_params_per_layer() + 128256 * 2048
    assert _gb(est, "weight_copies") == pytest.approx(2 * matmul)  # bf16 copies autocast saves for backward
    assert est.line("lora_params").gb == 0 and est.settings["trainable_params"] == n
    assert "train.master_weights=fp32" in est.line("weights").explanation


def test_full_fine_tuning_pure_bf16_and_optimizer_variants():
    n = LLAMA32_1B.language_params()
    bf16 = estimate_memory(LLAMA32_1B, method="full", master_weights="bf16", optimizer="adamw_torch")
    assert _gb(bf16, "weights") == pytest.approx(2 * n) and _gb(bf16, "gradients") == pytest.approx(2 * n)
    assert _gb(bf16, "optimizer_states") == pytest.approx(4 * n + 2 * n)  # bf16 states + the foreach scratch
    assert bf16.line("weight_copies").gb == 0  # no autocast copies without fp32 masters
    eight = estimate_memory(LLAMA32_1B, method="full", master_weights="bf16", optimizer="adamw_8bit")
    assert _gb(eight, "optimizer_states") == pytest.approx(2 * n)
    paged = estimate_memory(LLAMA32_1B, method="full", master_weights="bf16", optimizer="paged_adamw_8bit")
    assert paged.line("optimizer_states").gb == 0 and "paged" in paged.line("optimizer_states").explanation
    # full fine-tuning saves each trainable linear's input: more activations than LoRA on the same shape
    kw = dict(gradient_checkpointing=False, seq_len=512, lora_dropout=0.0)
    assert (
        estimate_memory(LLAMA32_1B, method="full", **kw).line("activations").gb
        > estimate_memory(LLAMA32_1B, lora_targets=["q_proj"], **kw).line("activations").gb
    )
    with pytest.raises(ValueError, match="train.method=full"):
        estimate_memory(LLAMA32_1B, method="full", quantization="4bit")


def test_modules_to_save_adds_trainable_copies_with_their_gradients_and_states():
    V, h = LLAMA32_1B.vocab_size, LLAMA32_1B.hidden_size
    plain = estimate_memory(LLAMA32_1B, optimizer="adamw_torch_fused")
    both = estimate_memory(LLAMA32_1B, optimizer="adamw_torch_fused", modules_to_save=["embed_tokens", "lm_head"])
    assert _gb(both, "modules_to_save") == pytest.approx(2 * V * h * 2)  # two bf16 copies
    assert _gb(both, "gradients") - _gb(plain, "gradients") == pytest.approx(2 * V * h * 2)
    assert _gb(both, "optimizer_states") - _gb(plain, "optimizer_states") == pytest.approx(2 * V * h * 4)
    assert both.settings["trainable_params"] - plain.settings["trainable_params"] == 2 * V * h
    assert plain.line("modules_to_save").gb == 0
    with pytest.raises(ValueError, match="modules_to_save"):
        estimate_memory(LLAMA32_1B, modules_to_save=["norm"])


def test_int8_base_and_prequantized_gptq_awq_checkpoints():
    lin = 16 * LLAMA32_1B.linear_params_per_layer()
    bf16 = _gb(estimate_memory(LLAMA32_1B), "weights")
    int8 = estimate_memory(LLAMA32_1B, quantization="int8")
    assert _gb(int8, "weights") == pytest.approx(bf16 - lin * (2 - (1 + 4 / 2048)))
    cfg = {
        "model_type": "llama",
        "hidden_size": 2048,
        "num_hidden_layers": 16,
        "num_attention_heads": 32,
        "num_key_value_heads": 8,
        "intermediate_size": 8192,
        "vocab_size": 128256,
        "tie_word_embeddings": True,
        "quantization_config": {"quant_method": "gptq", "bits": 4, "group_size": 128},
    }
    gptq_arch = architecture_from_config(cfg)
    assert (gptq_arch.prequantized, gptq_arch.quant_bits, gptq_arch.quant_group_size) == ("gptq", 4, 128)
    gptq = estimate_memory(gptq_arch)  # a GPTQ checkpoint loads 4-bit whatever the method asked
    assert gptq.settings["quantization"] == "gptq"
    assert _gb(gptq, "weights") == pytest.approx(bf16 - lin * (2 - (0.5 + 2.5 / 128)))
    assert "quantization_config" in gptq.line("weights").explanation
    awq = architecture_from_config({**cfg, "quantization_config": {"quant_method": "awq", "bits": 4}})
    assert estimate_memory(awq).settings["quantization"] == "awq"
    with pytest.raises(ValueError, match="quant_method"):
        architecture_from_config({**cfg, "quantization_config": {"quant_method": "hqq"}})


def test_loss_head_choice_changes_the_backward_peak():
    kw = dict(quantization="4bit", seq_len=8192, micro_batch=1)
    fused = estimate_memory("gemma-3-4b-it", **kw)
    full = estimate_memory("gemma-3-4b-it", loss_impl="full", **kw)
    chunked = estimate_memory("gemma-3-4b-it", loss_impl="chunked", **kw)
    V = get_model_spec("gemma-3-4b-it").arch.vocab_size
    assert _gb(full, "backward_peak") == pytest.approx(14 * V * 8192)
    assert fused.line("backward_peak").gb < chunked.line("backward_peak").gb < full.line("backward_peak").gb
    assert "plan.loss_head=full" in full.line("backward_peak").explanation
    with pytest.raises(ValueError, match="loss_impl"):
        estimate_memory("gemma-3-4b-it", loss_impl="tiled")


def test_frozen_upcast_is_off_like_slm_train_and_can_be_stated():
    ours = estimate_memory("gemma-3-12b-it", quantization="4bit")
    upcast = estimate_memory("gemma-3-12b-it", quantization="4bit", upcast_frozen_fp32=True)
    other = (
        get_model_spec("gemma-3-12b-it").arch.language_params()
        - 48 * get_model_spec("gemma-3-12b-it").arch.linear_params_per_layer()
    )
    assert _gb(upcast, "weights") - _gb(ours, "weights") == pytest.approx(2 * other)
    assert upcast.line("activations").gb > ours.line("activations").gb  # fp32 checkpointed inputs
    assert "--frozen-fp32" in upcast.line("weights").explanation
    assert ours.settings["upcast_frozen_fp32"] is False


@pytest.mark.parametrize(
    "model_type, extra, norms, mlp",
    [
        ("llama", {}, 8, 6),  # 2 RMSNorms (fp32 copies) ; SiLU-gated MLP
        ("gpt_neox", {}, 8, 2),  # 2 LayerNorms under autocast; plain MLP with F.gelu: its input only
        ("phi", {}, 4, 8),  # 1 LayerNorm (parallel block); NewGELUActivation's composite ops: 4 tensors
        ("stablelm", {}, 8, 6),  # LayerNorms; SiLU-gated
        ("falcon", {"new_decoder_architecture": True}, 8, 2),
    ],
)
def test_layer_activations_come_from_the_modules(model_type, extra, norms, mlp):
    cfg = {
        "model_type": model_type,
        "hidden_size": 1024,
        "num_hidden_layers": 2,
        "num_attention_heads": 8,
        "intermediate_size": 4096,
        "ffn_hidden_size": 4096,
        "vocab_size": 1000,
        **extra,
    }
    from fine_tuning.plan.memory import resolve_setup

    arch = architecture_from_config(cfg)
    terms = layer_terms(arch, resolve_setup(arch, None, {**_defaults(), "lora_targets": "all-linear"}))
    assert terms["norms"] == norms * 1024
    assert terms["mlp"] == mlp * 4096


def _defaults() -> dict:
    import inspect

    params = inspect.signature(estimate_memory).parameters
    return {k: p.default for k, p in params.items() if k != "spec_or_arch"}


def test_gemma_and_llama_layers_match_the_cpu_measured_formulas():
    """transformers 5, bf16 autocast, counted on CPU (bench/memory.py): the derivation reproduces them."""
    from fine_tuning.plan.memory import resolve_setup

    for arch in (LLAMA32_1B, get_model_spec("gemma-3-12b-it").arch):
        s = resolve_setup(arch, None, {**_defaults(), "lora_targets": ["q_proj"], "lora_dropout": 0.0})
        t = layer_terms(arch, s)
        base = t["norms"] + t["qk_norm"] + t["attention"] + t["mlp"]
        h, q, kv, i = arch.hidden_size, arch.q_dim, arch.kv_dim, arch.intermediate_size
        measured = (16 * h + 8 * q + 8 * kv + 6 * i) if arch.qk_norm else (8 * h + 4 * q + 4 * kv + 6 * i)
        assert base == measured


@pytest.mark.parametrize(
    "cfg, kv, width",
    [
        ({"model_type": "qwen", "intermediate_size": 22016}, 32, 11008),  # Qwen-1 stores twice the MLP width
        ({"model_type": "falcon", "multi_query": True}, 1, 4 * 4096),  # no intermediate_size; one KV head
        ({"model_type": "falcon", "new_decoder_architecture": True, "num_kv_heads": 8}, 8, 4 * 4096),
        ({"model_type": "mpt", "expansion_ratio": 4}, 32, 4 * 4096),
        ({"model_type": "gpt_bigcode", "intermediate_size": 16384}, 1, 16384),  # multi-query by default
        ({"model_type": "llama", "intermediate_size": 11008}, 32, 11008),  # no quirk
    ],
    ids=["qwen", "falcon-mq", "falcon-new", "mpt", "gpt_bigcode", "llama"],
)
def test_config_quirks(cfg, kv, width):
    full = {"hidden_size": 4096, "num_hidden_layers": 2, "num_attention_heads": 32, "vocab_size": 1000, **cfg}
    arch = architecture_from_config(json.loads(json.dumps(full)))
    assert (arch.num_kv_heads, arch.intermediate_size) == (kv, width)


def test_the_peak_is_the_larger_phase_not_the_sum():
    """Full fine-tuning: the optimizer step (weights + gradients + states + foreach scratch) and backward (weights +
    states + copies + activations + the loss head before any gradient exists) peak at different moments."""
    n = LLAMA32_1B.language_params()
    est = estimate_memory(LLAMA32_1B, method="full", master_weights="bf16", optimizer="adamw_torch", seq_len=256)
    step = 2 * n + 2 * n + 4 * n + 2 * n  # weights, gradients, bf16 states, scratch
    gb = {ln.name: ln.gb * GIB for ln in est.lines}
    assert est.allocated_gb * GIB >= step
    assert gb["not_at_once"] < 0 and est.allocated_gb * GIB == pytest.approx(
        sum(v for k, v in gb.items() if k != "cuda_overhead")
    )
    assert "optimizer step" in est.line("not_at_once").explanation
    # with the full-logit head at a long sequence, backward is the peak instead
    long = estimate_memory(LLAMA32_1B, method="full", master_weights="bf16", seq_len=16384, loss_impl="full")
    assert "backward" in long.line("not_at_once").explanation


def test_fsdp_shards_full_fine_tuning_and_ddp_adds_buckets():
    kw = dict(method="full", master_weights="fp32", optimizer="adamw_torch_fused", seq_len=1024)
    one = estimate_memory(LLAMA32_1B, **kw)
    fsdp = estimate_memory(LLAMA32_1B, n_gpus=4, strategy="fsdp", **kw)
    ddp = estimate_memory(LLAMA32_1B, n_gpus=4, strategy="ddp", **kw)
    assert one.allocated_gb / 4 < fsdp.allocated_gb < one.allocated_gb / 2  # root unit and activations stay whole
    assert fsdp.line("gradients").gb == pytest.approx(one.line("gradients").gb / 4)
    root = (LLAMA32_1B.embedding_params() + LLAMA32_1B.hidden_size) * 4 / GIB  # tied: embedding + final norm, fp32
    assert fsdp.line("weights").gb == pytest.approx(root + (one.line("weights").gb - root) / 4)
    assert ddp.line("ddp_buckets").gb == pytest.approx(one.line("gradients").gb)
    with pytest.raises(ValueError, match="strategy"):
        estimate_memory(LLAMA32_1B, n_gpus=2, strategy="zero3")


def test_fsdp_gradient_accumulation_under_no_sync_keeps_whole_gradients_until_the_last_micro_batch():
    kw = dict(method="full", master_weights="bf16", optimizer="adamw_torch", seq_len=512, n_gpus=4, strategy="fsdp")
    synced = estimate_memory(LLAMA32_1B, grad_accum_steps=1, **kw)
    no_sync = estimate_memory(LLAMA32_1B, grad_accum_steps=4, **kw)
    each = estimate_memory(LLAMA32_1B, grad_accum_steps=4, sync_each_batch=True, **kw)
    whole = LLAMA32_1B.language_params() * 2 / GIB
    assert no_sync.line("fsdp_unsharded_grads").gb == pytest.approx(whole * 3 / 4)
    assert "gradient_accumulation_steps=4" in no_sync.line("fsdp_unsharded_grads").explanation
    # backward now holds whole gradients beside the sharded states: the peak is backward's, not the step's
    gb = {ln.name: ln.gb for ln in no_sync.lines}
    backward_floor = gb["weights"] + gb["fsdp_gathered"] + whole + gb["optimizer_states"] * 2 / 3 + gb["activations"]
    assert no_sync.allocated_gb >= backward_floor > synced.allocated_gb
    assert "backward" in no_sync.line("not_at_once").explanation
    assert each.allocated_gb == pytest.approx(synced.allocated_gb)  # sync_each_batch: shards every micro-batch
    assert all(ln.name != "fsdp_unsharded_grads" for ln in each.lines)
    ddp = estimate_memory(LLAMA32_1B, grad_accum_steps=4, **{**kw, "strategy": "ddp"})
    assert ddp.allocated_gb == pytest.approx(estimate_memory(LLAMA32_1B, **{**kw, "strategy": "ddp"}).allocated_gb)
    with pytest.raises(ValueError, match="gradient_accumulation_steps"):
        estimate_memory(LLAMA32_1B, grad_accum_steps=0)
