"""The attention kernel per model class, read from what the installed transformers declares; packed sequences stay
apart under every choice; the text-only Gemma 3 training class; bf16 training on CUDA with each kernel (gpu)."""

from __future__ import annotations

import pytest

from slm_forest.config import load_config
from slm_forest.errors import SlmError

TEXTS = ["증여세 과세가액은 증여재산에서 채무를 뺀 금액입니다.", "부가가치세 확정신고 기한은 25일 이내입니다."] * 40
KINDS = ("tiny-random-phi", "tiny-random-gemma3", "tiny-random-gemma3-mm")


@pytest.fixture(scope="module")
def tiny_dirs(tmp_path_factory):
    from fine_tuning.train.tiny import build_tiny_model

    root = tmp_path_factory.mktemp("bases")
    return {kind: build_tiny_model(kind, root / kind, TEXTS, seed=3, overrides={}) for kind in KINDS}


def classes():
    from transformers import Gemma3ForCausalLM, Gemma3ForConditionalGeneration, PhiForCausalLM

    return PhiForCausalLM, Gemma3ForCausalLM, Gemma3ForConditionalGeneration


@pytest.mark.parametrize("device", ["cpu", "cuda"])
@pytest.mark.parametrize("installed", [True, False])
def test_auto_follows_what_each_class_declares(device, installed):
    from fine_tuning.train.attention import choose_attention

    for model_cls in classes():
        choice = choose_attention(model_cls, device, "auto", flash_installed=installed)
        flash = device == "cuda" and installed and model_cls._supports_flash_attn
        assert choice.implementation == ("flash_attention_2" if flash else "sdpa"), (model_cls, choice)
        assert choice.reason.startswith("auto")


def test_gemma3_multimodal_class_never_gets_flash_attention_which_it_refuses():
    from fine_tuning.train.attention import choose_attention

    mm = classes()[2]
    assert mm._supports_flash_attn is False  # transformers >= 5.24; if this changes, auto follows it
    assert choose_attention(mm, "cuda", "auto", flash_installed=True).implementation == "sdpa"
    with pytest.raises(SlmError, match="Gemma3ForConditionalGeneration declares no flash-attention"):
        choose_attention(mm, "cuda", "flash_attention_2", flash_installed=True)


def test_explicit_requests_are_checked():
    from fine_tuning.train.attention import choose_attention

    phi = classes()[0]
    assert (
        choose_attention(phi, "cuda", "flash_attention_2", flash_installed=True).implementation == "flash_attention_2"
    )
    with pytest.raises(SlmError, match="needs a CUDA GPU and the flash_attn package"):
        choose_attention(phi, "cuda", "flash_attention_2", flash_installed=False)
    with pytest.raises(SlmError, match="needs a CUDA GPU"):
        choose_attention(phi, "cpu", "flash_attention_2", flash_installed=True)
    assert choose_attention(phi, "cuda", "eager", flash_installed=True).implementation == "eager"
    assert choose_attention(phi, "cpu", "sdpa").implementation == "sdpa"
    with pytest.raises(SlmError, match="unknown value 'flex'"):
        choose_attention(phi, "cpu", "flex")

    class NoSdpa:
        _supports_flash_attn = False
        _supports_sdpa = False

    assert choose_attention(NoSdpa, "cuda", "auto", flash_installed=True).implementation == "eager"
    with pytest.raises(SlmError, match="declares no SDPA"):
        choose_attention(NoSdpa, "cpu", "sdpa")


def test_multimodal_checkpoint_trains_as_its_language_model(tiny_dirs):
    from fine_tuning.train.attention import training_class_for_model_type
    from fine_tuning.train.loading import training_model_class

    assert training_model_class(tiny_dirs["tiny-random-gemma3-mm"]).__name__ == "Gemma3ForCausalLM"
    assert training_model_class(tiny_dirs["tiny-random-gemma3"]).__name__ == "Gemma3ForCausalLM"
    assert training_model_class(tiny_dirs["tiny-random-phi"]).__name__ == "PhiForCausalLM"
    # the torch-free answer `slm config validate` uses agrees with the loader
    assert training_class_for_model_type("gemma3").__name__ == "Gemma3ForCausalLM"
    assert training_class_for_model_type("phi").__name__ == "PhiForCausalLM"


@pytest.mark.parametrize("implementation", ["sdpa", "eager"])
@pytest.mark.parametrize("kind", KINDS)
def test_packed_sequences_stay_apart_with_each_cpu_kernel(tiny_dirs, kind, implementation):
    """The model exactly as the train stage loads it (training class, chosen kernel): a packed row with restarting
    position_ids gives each example the logits it has alone."""
    import torch

    from fine_tuning.plan.registry import get_model_spec
    from fine_tuning.train.attention import choose_attention
    from fine_tuning.train.loading import load_model_for_training, training_model_class

    path = tiny_dirs[kind]
    attention = choose_attention(training_model_class(path), "cpu", implementation)
    model = load_model_for_training(get_model_spec(kind), path, "lora", "fp32", "cpu", attention=attention).eval()
    assert model.config._attn_implementation == implementation
    first, second = torch.randint(10, 300, (1, 40)), torch.randint(10, 300, (1, 24))
    packed = torch.cat([first, second], dim=1)
    positions = torch.cat([torch.arange(40), torch.arange(24)])[None]
    with torch.no_grad():
        alone = model(input_ids=second, use_cache=False).logits
        together = model(input_ids=packed, position_ids=positions, use_cache=False).logits
    assert torch.allclose(together[:, 40:], alone, atol=1e-4), float((together[:, 40:] - alone).abs().max())


# ------------------------------------------------------------------------------------------------ GPU (skip here)
def _cuda_or_skip():
    import torch

    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA GPU")
    if not torch.cuda.is_bf16_supported():
        pytest.skip("needs a GPU with bf16 (Ampere or newer)")


@pytest.mark.gpu
@pytest.mark.parametrize("implementation", ["sdpa", "eager", "flash_attention_2"])
@pytest.mark.parametrize("kind", ["tiny-random-phi", "tiny-random-gemma3", "tiny-random-gemma3-mm"])
@pytest.mark.parametrize("method", ["lora", "qlora"])
def test_bf16_training_on_cuda_with_each_kernel(tiny_dirs, tmp_path, kind, implementation, method):
    import torch
    from transformers import AutoTokenizer

    from fine_tuning.plan.registry import get_model_spec
    from fine_tuning.train.attention import choose_attention, flash_attn_installed
    from fine_tuning.train.loading import apply_lora, load_model_for_training, prepare_tokenizer, training_model_class
    from fine_tuning.train.trainer import make_trainer, sft_config

    _cuda_or_skip()
    if implementation == "flash_attention_2" and not flash_attn_installed():
        pytest.skip("flash_attn is not installed")
    spec, path = get_model_spec(kind), tiny_dirs[kind]
    attention = choose_attention(training_model_class(path), "cuda", implementation)
    model = load_model_for_training(
        spec, path, method, "bf16", "cuda", activation_checkpointing=True, attention=attention
    )
    assert model.config._attn_implementation == implementation
    frozen = {p.dtype for p in model.parameters() if p.dtype.is_floating_point}
    assert torch.float32 not in frozen  # no fp32 copy of frozen weights
    tokenizer = AutoTokenizer.from_pretrained(path)
    prepare_tokenizer(tokenizer, model)
    model = apply_lora(model, spec, load_config(None).train.lora)
    convs = [
        (f"ex-{i}", [{"role": "user", "content": t}, {"role": "assistant", "content": t}])
        for i, t in enumerate(TEXTS[:16])
    ]
    cfg = load_config(
        None, ["train.max_steps=3", "train.report_to=[]", "train.max_length=128", f"train.method={method}"]
    ).train
    args = sft_config(cfg, 0, tmp_path / "out", "cuda", "bf16", has_eval=False, report=[])
    trainer = make_trainer(model, tokenizer, args, convs, [], callbacks=[])
    trainer.train()
    assert trainer.state.global_step == 3
    assert torch.isfinite(torch.tensor(trainer.state.log_history[-1]["train_loss"]))
