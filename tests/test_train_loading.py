"""Loading for training and inference: LoRA/QLoRA on CPU for real, multimodal Gemma 3 done right, dtype rules.

The training tests check behaviour, as TRL's own tests do: every LoRA tensor moved, every base tensor stayed.
"""

from __future__ import annotations

import pytest

from slm_forest.config import load_config
from slm_forest.errors import SlmError

QA = [
    ("증여세 과세가액은 어떻게 계산하나요?", "증여일 현재의 재산가액에서 증여재산에 담보된 채무를 뺀 금액입니다."),
    ("부가가치세 확정신고 기한은 언제인가요?", "과세기간이 끝난 후 25일 이내에 신고하고 납부해야 합니다."),
    ("법인세 중간예납은 누가 하나요?", "사업연도가 6개월을 초과하는 내국법인이 중간예납 의무를 집니다."),
    (
        "양도소득세 장기보유특별공제는 무엇인가요?",
        "3년 이상 보유한 토지와 건물의 양도차익에서 보유기간별 공제율만큼 빼 줍니다.",
    ),
]
CONVS = [
    (f"ex-{i}", [{"role": "user", "content": q}, {"role": "assistant", "content": a}])
    for i, (q, a) in enumerate(QA * 4)
]
TEXTS = [t for pair in QA for t in pair] * 10


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny models train fastest on one thread (see fine_tuning.train.trainer.cpu_threads); restored afterwards."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def tiny_dirs(tmp_path_factory):
    from fine_tuning.train.tiny import build_tiny_model

    root = tmp_path_factory.mktemp("bases")
    return {
        kind: build_tiny_model(kind, root / kind, TEXTS, seed=3, overrides={})
        for kind in ("tiny-random-phi", "tiny-random-gemma3", "tiny-random-gemma3-mm")
    }


def short_run(model, tokenizer, out_dir, steps=4, method="lora"):
    """A few real SFTTrainer steps through the train stage's own config and trainer builders."""
    from fine_tuning.train.trainer import make_trainer, sft_config

    cfg = load_config(
        None,
        [
            f"train.max_steps={steps}",
            "train.learning_rate=0.01",
            "train.max_length=128",
            "train.micro_batch_size=4",
            f"train.method={method}",
            "train.save_steps=1000",
            "train.report_to=[]",
            "train.lora.dropout=0",
        ],
    ).train
    args = sft_config(cfg, 0, out_dir, "cpu", "fp32", has_eval=False, report=[])
    trainer = make_trainer(model, tokenizer, args, CONVS, [], callbacks=[])
    trainer.train()
    return trainer


def snapshot(model):
    return {name: p.detach().clone() for name, p in model.named_parameters()}


@pytest.mark.slow
def test_lora_training_moves_every_adapter_tensor_and_no_base_tensor(tiny_dirs, tmp_path):
    from transformers import AutoTokenizer

    from fine_tuning.plan.registry import get_model_spec
    from fine_tuning.train.loading import apply_lora, load_model_for_training, prepare_tokenizer

    spec = get_model_spec("tiny-random-gemma3")
    model = load_model_for_training(spec, tiny_dirs["tiny-random-gemma3"], "lora", "fp32", "cpu")
    tokenizer = AutoTokenizer.from_pretrained(tiny_dirs["tiny-random-gemma3"])
    prepare_tokenizer(tokenizer, model)
    model = apply_lora(model, spec, load_config(None).train.lora)
    before = snapshot(model)
    trainer = short_run(model, tokenizer, tmp_path / "out")
    after = snapshot(trainer.model)

    lora = [n for n in before if "lora_" in n]
    base = [n for n in before if "lora_" not in n]
    assert lora and base
    assert all(not (before[n] == after[n]).all() for n in lora), "some LoRA tensor did not change"
    assert all(before[n].equal(after[n]) for n in base), "a base weight changed"
    assert all(not after[n].requires_grad for n in base)
    # the trainer saw real tokens only (bfd packing, padding-free) and trained part of them
    stats = trainer.token_counter.stats()
    assert stats["real_token_share"] == 1.0 and 0.2 < stats["trained_token_share"] < 0.9


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["tiny-random-phi", "tiny-random-gemma3-mm"])
def test_qlora_on_cpu_quantizes_the_language_model_only_and_trains(tiny_dirs, tmp_path, kind):
    import bitsandbytes as bnb
    import torch
    from peft import PeftModel
    from peft.tuners.lora import LoraLayer
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from fine_tuning.plan.registry import get_model_spec
    from fine_tuning.train.loading import apply_lora, load_base, load_model_for_training, prepare_tokenizer

    spec = get_model_spec(kind)
    path = tiny_dirs[kind]
    model = load_model_for_training(spec, path, "qlora", "fp32", "cpu")
    modules = dict(model.named_modules())
    four_bit = [n for n, m in modules.items() if isinstance(m, bnb.nn.Linear4bit)]
    assert four_bit and all("vision_tower" not in n and "multi_modal_projector" not in n for n in four_bit)
    assert not isinstance(modules["lm_head"], bnb.nn.Linear4bit)
    # Text-only training: the multimodal checkpoint trains as its language model, with no vision tower at all.
    assert not [n for n in modules if "vision_tower" in n or "multi_modal_projector" in n]
    if kind == "tiny-random-gemma3-mm":
        assert type(model).__name__ == "Gemma3ForCausalLM"

    tokenizer = AutoTokenizer.from_pretrained(path)
    prepare_tokenizer(tokenizer, model)
    model = apply_lora(model, spec, load_config(None).train.lora)
    wrapped = [n for n, m in model.named_modules() if isinstance(m, LoraLayer)]
    assert wrapped and not [n for n in wrapped if "vision_tower" in n or "multi_modal_projector" in n]
    before = snapshot(model)
    trainer = short_run(model, tokenizer, tmp_path / "out", steps=3, method="qlora")
    after = snapshot(trainer.model)
    assert all(not torch.equal(before[n].float(), after[n].float()) for n in before if "lora_B" in n)

    adapter = tmp_path / "adapter"
    trainer.model.save_pretrained(str(adapter))
    assert sorted(p.name for p in adapter.iterdir()) == [
        "README.md",
        "adapter_config.json",
        "adapter_model.safetensors",
    ]
    # the adapter loads back on the class it was trained on, over a full-precision base, and changes its output
    base = load_base(type(trainer.model.get_base_model()), path)
    expected = (
        "Gemma3ForCausalLM" if kind == "tiny-random-gemma3-mm" else type(AutoModelForCausalLM.from_pretrained(path))
    )
    assert type(base).__name__ == getattr(expected, "__name__", expected)
    ids = tokenizer.apply_chat_template(CONVS[0][1], return_tensors="pt", return_dict=True)["input_ids"]
    with torch.no_grad():
        plain = base(input_ids=ids).logits
        tuned = PeftModel.from_pretrained(base, str(adapter)).eval()(input_ids=ids).logits
    assert not torch.allclose(plain, tuned)


def test_language_model_only_load_matches_the_multimodal_model(tiny_dirs):
    import torch

    from fine_tuning.train.loading import load_language_model_only, load_pretrained, model_class_for

    path = tiny_dirs["tiny-random-gemma3-mm"]
    full_cls = model_class_for(path)
    assert full_cls.__name__ == "Gemma3ForConditionalGeneration"
    full = load_pretrained(full_cls, path).eval()
    text_only = load_language_model_only(path).eval()
    assert type(text_only).__name__ == "Gemma3ForCausalLM"
    ids = torch.randint(10, 300, (2, 24))
    with torch.no_grad():
        assert torch.equal(full(input_ids=ids).logits, text_only(input_ids=ids).logits)


def test_naive_text_only_load_of_a_multimodal_checkpoint_is_refused(tiny_dirs):
    from transformers import AutoConfig, Gemma3ForCausalLM

    from fine_tuning.train.loading import load_pretrained

    path = tiny_dirs["tiny-random-gemma3-mm"]
    # What transformers itself does: no error, every weight random. Shown here so the guard below stays needed.
    silent, info = Gemma3ForCausalLM.from_pretrained(path, output_loading_info=True)
    assert len(info["missing_keys"]) > 10
    with pytest.raises(SlmError, match="multimodal gemma3 checkpoint; Gemma3ForCausalLM"):
        load_pretrained(Gemma3ForCausalLM, path)
    with pytest.raises(SlmError, match="would stay randomly initialised"):
        load_pretrained(Gemma3ForCausalLM, path, config=AutoConfig.from_pretrained(path).text_config)


def test_all_linear_lora_on_multimodal_gemma_is_refused(tiny_dirs):
    from fine_tuning.plan.registry import get_model_spec
    from fine_tuning.train.loading import apply_lora, load_model_for_training

    spec = get_model_spec("tiny-random-gemma3-mm")
    model = load_model_for_training(spec, tiny_dirs["tiny-random-gemma3-mm"], "lora", "fp32", "cpu")
    lora = load_config(None, ["train.lora.target_modules=all-linear"]).train.lora
    with pytest.raises(SlmError, match="vision tower"):
        apply_lora(model, spec, lora)


def test_pad_equal_to_eos_gets_a_distinct_pad_within_the_embedding(tiny_dirs):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from fine_tuning.train.loading import prepare_tokenizer

    path = tiny_dirs["tiny-random-phi"]
    model = AutoModelForCausalLM.from_pretrained(path)
    tokenizer = AutoTokenizer.from_pretrained(path)
    assert prepare_tokenizer(tokenizer, model) == {}  # already distinct: untouched
    tokenizer.pad_token = tokenizer.eos_token
    changes = prepare_tokenizer(tokenizer, model)
    assert changes["pad_token"] == "<pad>" and tokenizer.pad_token_id != tokenizer.eos_token_id
    assert tokenizer.pad_token_id < model.get_input_embeddings().weight.shape[0]


def test_dtype_rules_gemma3_never_fp16_and_fp32_on_cpu(tiny_dirs):
    from fine_tuning.plan.registry import get_model_spec
    from fine_tuning.train.checks import resolve_dtype
    from fine_tuning.train.loading import load_model_for_training

    gemma, phi = get_model_spec("tiny-random-gemma3"), get_model_spec("tiny-random-phi")

    def cfg(*overrides):
        return load_config(None, list(overrides)).train

    assert resolve_dtype(gemma, "cpu", False, cfg()) == "fp32"
    assert resolve_dtype(gemma, "cuda", True, cfg()) == "bf16"
    with pytest.raises(SlmError, match=r"train\.dtype=fp16: .*fp16"):
        resolve_dtype(gemma, "cuda", True, cfg("train.dtype=fp16"))
    # a GPU without bf16 (T4, V100): Gemma 3 refuses, unless fp32 is allowed; Phi-2 may use fp16
    with pytest.raises(SlmError, match=r"train\.dtype=auto: .*no bf16"):
        resolve_dtype(gemma, "cuda", False, cfg())
    assert resolve_dtype(gemma, "cuda", False, cfg("train.allow_fp32_fallback=true")) == "fp32"
    assert resolve_dtype(phi, "cuda", False, cfg()) == "fp16"
    with pytest.raises(SlmError, match="train.dtype=bf16"):
        resolve_dtype(phi, "cpu", False, cfg("train.dtype=bf16"))
    # and the loader refuses fp16 for Gemma 3 whoever calls it
    with pytest.raises(SlmError, match="fp16"):
        load_model_for_training(gemma, tiny_dirs["tiny-random-gemma3"], "lora", "fp16", "cuda")


def test_unknown_base_model_names_the_key():
    from fine_tuning.train.checks import model_spec

    with pytest.raises(SlmError, match="train.base_model: unknown model 'gemma-9'"):
        model_spec("gemma-9")


@pytest.mark.gpu
def test_bf16_lora_on_cuda(tiny_dirs, tmp_path):
    import torch

    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA GPU")
    from transformers import AutoTokenizer

    from fine_tuning.plan.registry import choose_dtype, get_model_spec
    from fine_tuning.train.loading import apply_lora, load_model_for_training, prepare_tokenizer
    from fine_tuning.train.trainer import make_trainer, sft_config

    spec = get_model_spec("tiny-random-gemma3")
    dtype = choose_dtype(spec, "cuda", torch.cuda.is_bf16_supported())
    assert dtype == "bf16"
    model = load_model_for_training(spec, tiny_dirs["tiny-random-gemma3"], "lora", dtype, "cuda")
    assert next(model.parameters()).dtype == torch.bfloat16
    tokenizer = AutoTokenizer.from_pretrained(tiny_dirs["tiny-random-gemma3"])
    prepare_tokenizer(tokenizer, model)
    model = apply_lora(model, spec, load_config(None).train.lora)
    cfg = load_config(None, ["train.max_steps=3", "train.report_to=[]", "train.max_length=128"]).train
    args = sft_config(cfg, 0, tmp_path / "out", "cuda", dtype, has_eval=False, report=[])
    assert args.bf16 and not args.fp16 and not args.use_cpu
    trainer = make_trainer(model, tokenizer, args, CONVS, [], callbacks=[])
    trainer.train()
    assert trainer.state.global_step == 3 and torch.isfinite(torch.tensor(trainer.state.log_history[-1]["train_loss"]))


@pytest.mark.gpu
def test_qlora_on_cuda_computes_in_bf16(tiny_dirs):
    import torch

    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA GPU")
    from fine_tuning.plan.registry import get_model_spec
    from fine_tuning.train.loading import quantization_config

    config = quantization_config(get_model_spec("tiny-random-gemma3-mm"), "cuda")
    assert config.bnb_4bit_compute_dtype == torch.bfloat16 and config.bnb_4bit_quant_type == "nf4"
    assert "model.vision_tower" in config.llm_int8_skip_modules


@pytest.mark.parametrize("kind", ["tiny-random-phi", "tiny-random-gemma3", "tiny-random-gemma3-mm"])
def test_packed_sequences_do_not_attend_to_each_other(tiny_dirs, kind):
    """bfd packing flattens a batch into one row; with position_ids restarting and use_cache=False (TRL's loss path)
    each example must see only itself. Checked on every architecture, the multimodal one included."""
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_dirs[kind]).eval()
    first, second = torch.randint(10, 300, (1, 40)), torch.randint(10, 300, (1, 24))
    packed = torch.cat([first, second], dim=1)
    positions = torch.cat([torch.arange(40), torch.arange(24)])[None]
    with torch.no_grad():
        alone = model(input_ids=second, use_cache=False).logits
        together = model(input_ids=packed, position_ids=positions, use_cache=False).logits
    assert torch.allclose(together[:, 40:], alone, atol=1e-5)


def test_auto_class_load_of_the_multimodal_checkpoint_is_allowed(tiny_dirs):
    from transformers import AutoModelForCausalLM

    from fine_tuning.train.loading import load_pretrained

    model = load_pretrained(AutoModelForCausalLM, tiny_dirs["tiny-random-gemma3-mm"])
    assert type(model).__name__ == "Gemma3ForConditionalGeneration"


# ----------------------------------------------------------------------------------- Gemma 3 token_type_ids
def _packed_batch():
    """Two examples packed in one row the way TRL's bfd collator gives them: position ids restart, no attention mask."""
    import torch

    generator = torch.Generator().manual_seed(0)
    ids = torch.randint(10, 300, (1, 64), generator=generator)
    positions = torch.cat([torch.arange(40), torch.arange(24)])[None]
    labels = ids.clone()
    labels[0, :10] = -100  # a masked prompt
    return {"input_ids": ids, "position_ids": positions, "labels": labels}


def test_gemma3_multimodal_trains_on_text_the_same_without_token_type_ids(tiny_dirs):
    """transformers 5.23's Gemma3ForConditionalGeneration builds its bidirectional image-block mask from
    token_type_ids only. In training mode it does not require them, and for text all-zero ids give exactly the loss
    and gradients of no ids (plain causal masks), which is why the train stage passes none. Ids marking an image
    block do change the loss, so the comparison is not vacuous."""
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_dirs["tiny-random-gemma3-mm"])
    assert type(model).__name__ == "Gemma3ForConditionalGeneration"
    model.train()
    batch = _packed_batch()

    def loss_and_grads(**extra):
        model.zero_grad()
        loss = model(**batch, **extra, use_cache=False).loss
        loss.backward()
        return loss.detach(), {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}

    without, grads_without = loss_and_grads()
    zeros, grads_zeros = loss_and_grads(token_type_ids=torch.zeros_like(batch["input_ids"]))
    assert torch.isfinite(without) and torch.allclose(without, zeros, atol=1e-6)
    assert grads_without.keys() == grads_zeros.keys()
    assert all(torch.allclose(grads_without[n], grads_zeros[n], atol=1e-6) for n in grads_without)
    image = torch.zeros_like(batch["input_ids"])
    image[0, 12:16] = 1  # four "image" tokens attend to each other both ways
    with torch.no_grad():
        assert not torch.allclose(model(**batch, token_type_ids=image, use_cache=False).loss, without, atol=1e-6)


@pytest.mark.slow
def test_train_stage_batches_carry_no_token_type_ids_and_zeros_are_dropped(tiny_dirs, tmp_path):
    """What our trainer feeds the multimodal model: TRL's packed text batches have no token_type_ids; a batch with
    all-zero ones is trained exactly like one without (they are dropped), and image-marking ones are refused."""
    import torch
    from transformers import AutoTokenizer

    from fine_tuning.plan.registry import get_model_spec
    from fine_tuning.train.loading import apply_lora, load_model_for_training, prepare_tokenizer
    from fine_tuning.train.trainer import make_trainer, sft_config, text_only_inputs

    spec = get_model_spec("tiny-random-gemma3-mm")
    path = tiny_dirs["tiny-random-gemma3-mm"]
    model = load_model_for_training(spec, path, "lora", "fp32", "cpu")
    tokenizer = AutoTokenizer.from_pretrained(path)
    prepare_tokenizer(tokenizer, model)
    model = apply_lora(model, spec, load_config(None, ["train.lora.dropout=0"]).train.lora)
    cfg = load_config(None, ["train.max_steps=1", "train.max_length=128", "train.report_to=[]"]).train
    args = sft_config(cfg, 0, tmp_path / "out", "cpu", "fp32", has_eval=False, report=[])
    trainer = make_trainer(model, tokenizer, args, CONVS, [], callbacks=[])
    batch = next(iter(trainer.get_train_dataloader()))
    assert "token_type_ids" not in batch and "pixel_values" not in batch and "position_ids" in batch

    model.train()
    plain = trainer.compute_loss(model, dict(batch))
    zeros = trainer.compute_loss(model, {**batch, "token_type_ids": torch.zeros_like(batch["input_ids"])})
    assert torch.isfinite(plain) and torch.allclose(plain, zeros, atol=1e-6)
    zeros.backward()  # a training step's backward through the dropped-ids path
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for n, p in model.named_parameters() if "lora_B" in n)

    assert "token_type_ids" not in text_only_inputs({**batch, "token_type_ids": torch.zeros_like(batch["input_ids"])})
    image = torch.zeros_like(batch["input_ids"])
    image[0, 3] = 1
    with pytest.raises(SlmError, match="image tokens"):
        trainer.compute_loss(model, {**batch, "token_type_ids": image})
