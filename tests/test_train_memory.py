"""What the memory plan assumes is what `slm train` does: frozen weights keep the load dtype under QLoRA (no fp32
cast), the vision tower of a multimodal Gemma 3 never loads for text training and comes back on export with
export.keep_vision, TRL's chunked LM-head loss equals the plain loss and gradients, and the goals of issue 14."""

from __future__ import annotations

import pytest

from slm_forest.config import load_config

TEXTS = ["증여세 과세가액은 증여재산에서 채무를 뺀 금액입니다.", "부가가치세 확정신고 기한은 25일 이내입니다."] * 40


@pytest.fixture(scope="module")
def tiny_dirs(tmp_path_factory):
    from fine_tuning.train.tiny import build_tiny_model

    root = tmp_path_factory.mktemp("bases")
    return {
        kind: build_tiny_model(kind, root / kind, TEXTS, seed=3, overrides={})
        for kind in ("tiny-random-phi", "tiny-random-gemma3-mm")
    }


@pytest.mark.parametrize("kind", ["tiny-random-phi", "tiny-random-gemma3-mm"])
def test_qlora_keeps_frozen_weights_in_the_load_dtype_and_adapters_in_fp32(tiny_dirs, kind):
    import torch

    from fine_tuning.plan.memory import estimate_memory
    from fine_tuning.plan.registry import get_model_spec
    from fine_tuning.train.loading import apply_lora, load_model_for_training
    from fine_tuning.train.outputs import frozen_dtypes

    spec = get_model_spec(kind)
    model = load_model_for_training(spec, tiny_dirs[kind], "qlora", "bf16", "cpu", activation_checkpointing=True)
    floating = {n: p.dtype for n, p in model.named_parameters() if p.dtype.is_floating_point}
    assert floating and set(floating.values()) == {torch.bfloat16}, {
        n: d for n, d in floating.items() if d != torch.bfloat16
    }
    assert {"model.embed_tokens.weight", "lm_head.weight"} & set(floating)  # embeddings / head: bf16, not fp32
    assert model.is_activation_checkpointing and not any(p.requires_grad for p in model.parameters())
    model = apply_lora(model, spec, load_config(None).train.lora)
    trainable = {p.dtype for p in model.parameters() if p.requires_grad}
    assert trainable == {torch.float32}  # LoRA weights: fp32 (PEFT's autocast_adapter_dtype)
    counts = frozen_dtypes(model)
    assert "float32" not in counts and counts["bfloat16"] > 0 and counts["uint8"] > 0  # uint8 = packed 4-bit
    # the planner's default setup is exactly this one
    settings = estimate_memory(spec, quantization="4bit").settings
    assert settings["upcast_frozen_fp32"] is False and settings["load_vision_tower"] is False


def test_text_only_training_model_has_no_vision_tower_and_the_full_models_text_logits(tiny_dirs):
    import torch
    from transformers import AutoModelForCausalLM

    from fine_tuning.plan.registry import get_model_spec
    from fine_tuning.train.loading import load_model_for_training

    path = tiny_dirs["tiny-random-gemma3-mm"]
    full = AutoModelForCausalLM.from_pretrained(path).eval()
    text = load_model_for_training(get_model_spec("tiny-random-gemma3-mm"), path, "lora", "fp32", "cpu").eval()
    assert type(full).__name__ == "Gemma3ForConditionalGeneration" and type(text).__name__ == "Gemma3ForCausalLM"
    assert not [n for n, _ in text.named_parameters() if "vision" in n or "multi_modal" in n]
    assert sum(p.numel() for p in text.parameters()) < sum(p.numel() for p in full.parameters())
    ids = torch.randint(10, 300, (2, 48))
    with torch.no_grad():
        assert torch.equal(text(input_ids=ids, use_cache=False).logits, full(input_ids=ids, use_cache=False).logits)


def test_export_keep_vision_restores_the_tower_around_the_trained_language_model(tiny_dirs):
    import torch
    from transformers import AutoModelForCausalLM

    from fine_tuning.export.merge import restore_vision_tower
    from fine_tuning.plan.registry import get_model_spec
    from fine_tuning.train.loading import apply_lora, load_model_for_training

    path = tiny_dirs["tiny-random-gemma3-mm"]
    spec = get_model_spec("tiny-random-gemma3-mm")
    model = apply_lora(load_model_for_training(spec, path, "lora", "fp32", "cpu"), spec, load_config(None).train.lora)
    torch.manual_seed(0)
    with torch.no_grad():  # stands in for training: every adapter moves
        for name, param in model.named_parameters():
            if "lora_B" in name:
                param.normal_(std=0.05)
    merged = model.merge_and_unload().eval()
    restored, facts = restore_vision_tower(merged, str(path), torch.float32)
    base = AutoModelForCausalLM.from_pretrained(path).eval()
    assert type(restored).__name__ == "Gemma3ForConditionalGeneration" and facts["text_logit_diff"] < 1e-4
    base_state, restored_state = base.state_dict(), restored.state_dict()
    vision = [k for k in base_state if "vision_tower" in k or "multi_modal_projector" in k]
    assert vision and all(torch.equal(base_state[k], restored_state[k]) for k in vision)  # the tower as it was
    ids = torch.randint(10, 300, (1, 32))
    with torch.no_grad():
        tuned = merged(input_ids=ids, use_cache=False).logits
        assert torch.allclose(restored(input_ids=ids, use_cache=False).logits, tuned, atol=1e-5)
        assert not torch.allclose(base(input_ids=ids, use_cache=False).logits, tuned, atol=1e-3)  # trained weights in


@pytest.mark.parametrize("vocab", [1024, 262_144])
def test_trl_chunked_lm_head_loss_equals_the_plain_loss_and_gradients(vocab):
    """TRL 1.16's SFTTrainer never builds [tokens, vocab] logits: it scores the labels through a tiled LM head
    (trl.kernels.ChunkedLogProbFunction). Same loss and gradients as the plain full-logit cross-entropy, also at
    Gemma 3's vocabulary (several vocabulary tiles)."""
    import torch
    from transformers import Gemma3ForCausalLM, Gemma3TextConfig
    from trl.trainer.utils import add_fused_lm_head

    torch.manual_seed(0)
    config = Gemma3TextConfig(
        vocab_size=vocab,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=1,
        head_dim=16,
        sliding_window=16,
        layer_types=["full_attention"],
    )
    model = Gemma3ForCausalLM(config)
    fused = Gemma3ForCausalLM(config)
    fused.load_state_dict(model.state_dict())
    add_fused_lm_head(fused, outputs=("log_probs",))
    ids = torch.randint(0, vocab, (1, 96))
    labels = ids.clone()
    labels[:, :30] = -100  # the prompt is not trained
    plain = model(input_ids=ids, labels=labels, use_cache=False).loss
    out = fused(input_ids=ids, labels=labels, fused_lm_head=True)
    chunked = -out.log_probs.sum() / out.label_mask.sum()
    plain.backward()
    chunked.backward()
    assert torch.allclose(plain, chunked, atol=1e-5, rtol=1e-5), (float(plain), float(chunked))
    for (name, p), (_, q) in zip(model.named_parameters(), fused.named_parameters()):
        assert torch.allclose(p.grad, q.grad, atol=1e-6, rtol=1e-4), name


@pytest.mark.parametrize(
    ("config", "goal_gib"),
    [("gemma-3-12b-qlora.yaml", 12.0), ("gemma-3-4b-qlora.yaml", 6.0), ("phi-2-lora.yaml", 9.0)],
)
def test_planner_goals_for_the_production_configs(config, goal_gib):
    """Issue 14's goals at seq 2,048 with checkpointing (Phi-2 LoRA bf16 with train.activation_checkpointing=true)."""
    from pathlib import Path

    from fine_tuning.plan.cli import _memory_kwargs, _model_spec
    from fine_tuning.plan.memory import estimate_memory

    path = Path(__file__).resolve().parent.parent / "configs" / config
    cfg = load_config(path, ["train.activation_checkpointing=true"])
    estimate = estimate_memory(_model_spec(cfg, None), **_memory_kwargs(cfg))
    assert estimate.settings["seq_len"] == 2048 and estimate.peak_gb <= goal_gib, estimate.format()
    weights = estimate.line("weights").explanation
    assert "fp32" not in weights
    if "gemma" in config:
        assert "vision tower" in weights and "not loaded" in weights


def test_the_text_model_saves_under_its_own_names_and_reloads_with_the_same_weights(tiny_dirs, tmp_path):
    """transformers 5 reverts a load's key_mapping on save: unchecked, the text model would be saved with
    `language_model.model.*` keys and reload as random weights without an error."""
    import torch
    from safetensors import safe_open
    from transformers import AutoModelForCausalLM

    from fine_tuning.train.loading import load_language_model_only

    text = load_language_model_only(tiny_dirs["tiny-random-gemma3-mm"]).eval()
    text.save_pretrained(tmp_path / "text")
    with safe_open(str(tmp_path / "text" / "model.safetensors"), "pt") as weights:
        assert all(key.startswith(("model.", "lm_head.")) for key in weights.keys())
    again = AutoModelForCausalLM.from_pretrained(tmp_path / "text").eval()
    ids = torch.randint(10, 300, (1, 24))
    with torch.no_grad():
        assert torch.equal(again(input_ids=ids).logits, text(input_ids=ids).logits)
