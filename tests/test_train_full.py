"""`train.method: full`: every weight trained (fp32 master weights or pure bf16), the model saved where downstream
stages find it, resume from a checkpoint, evaluate's base switch, export without a merge, and the config checks."""

from __future__ import annotations

import json

import pytest

from slm_forest.config import load_config
from slm_forest.errors import SlmError
from slm_forest.pipeline import run_stage
from tests.test_train_stage import config, example, write_build

TEXTS = ["증여세 과세가액은 증여재산에서 채무를 뺀 금액입니다.", "부가가치세 확정신고 기한은 25일 이내입니다."] * 40
KINDS = ("tiny-random-phi", "tiny-random-gemma3")


@pytest.fixture(scope="module")
def tiny_dirs(tmp_path_factory):
    from fine_tuning.train.tiny import build_tiny_model

    root = tmp_path_factory.mktemp("bases")
    return {kind: build_tiny_model(kind, root / kind, TEXTS, seed=3, overrides={}) for kind in KINDS}


def conversations(n: int = 16) -> list[tuple[str, list[dict[str, str]]]]:
    return [(f"sft-{i}", example(i)["messages"]) for i in range(n)]


def train_full(path, kind, tmp_path, master_weights: str, steps: int = 6):
    """A few SFTTrainer steps of full fine-tuning on the tiny base at `path`: (trainer, tokenizer, base state)."""
    import torch
    from transformers import AutoTokenizer

    from fine_tuning.plan.registry import get_model_spec
    from fine_tuning.train.loading import load_model_for_training, prepare_tokenizer
    from fine_tuning.train.trainer import make_trainer, sft_config

    spec = get_model_spec(kind)
    model = load_model_for_training(
        spec, path, "full", "fp32", "cpu", activation_checkpointing=True, master_weights=master_weights
    )
    base = {name: p.detach().clone() for name, p in model.named_parameters()}
    tokenizer = AutoTokenizer.from_pretrained(path)
    prepare_tokenizer(tokenizer, model)
    overrides = ["train.report_to=[]", "train.max_length=512", "train.learning_rate=0.002", "train.logging_steps=1"]
    overrides += [f"train.max_steps={steps}", "train.method=full", f"train.master_weights={master_weights}"]
    overrides += ["train.activation_checkpointing=true", "train.warmup_ratio=0"]
    cfg = load_config(None, overrides).train
    args = sft_config(cfg, 0, tmp_path / "out", "cpu", "fp32", has_eval=False, report=[])
    trainer = make_trainer(model, tokenizer, args, conversations(), [], callbacks=[])
    torch.manual_seed(0)
    trainer.train()
    return trainer, tokenizer, base


@pytest.mark.slow
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("master_weights", ["fp32", "bf16"])
def test_full_fine_tuning_trains_every_weight_in_the_configured_dtype(tiny_dirs, tmp_path, kind, master_weights):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from fine_tuning.train.full import save_full_model

    trainer, tokenizer, base = train_full(tiny_dirs[kind], kind, tmp_path, master_weights)
    model = trainer.model
    assert not hasattr(model, "peft_config")  # no adapters: the model itself
    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    assert len(losses) == 6 and losses[-1] < losses[0]
    expected = torch.float32 if master_weights == "fp32" else torch.bfloat16
    params = dict(model.named_parameters())
    assert {p.dtype for p in params.values()} == {expected}
    assert all(p.requires_grad for p in params.values())
    unchanged = [name for name, p in params.items() if torch.equal(p.detach(), base[name])]
    assert not unchanged  # every parameter (embeddings, norms, biases, lm_head) moved
    # torch's AdamW keeps its moments in the parameter dtype: fp32 master weights get fp32 states, bf16 gets bf16
    states = [s for s in trainer.optimizer.state.values() if "exp_avg" in s]
    assert states and {s["exp_avg"].dtype for s in states} == {expected}

    out = tmp_path / "saved"
    save_full_model(model, tokenizer, out)
    assert (out / "model.safetensors").exists()
    assert AutoTokenizer.from_pretrained(out).chat_template == tokenizer.chat_template
    reloaded = AutoModelForCausalLM.from_pretrained(out, dtype=expected).eval()
    model.eval()
    ids = torch.arange(5, 40)[None]
    with torch.no_grad():
        assert torch.equal(reloaded(input_ids=ids).logits, model(input_ids=ids, use_cache=False).logits)


@pytest.fixture(scope="module")
def full_run(tmp_path_factory):
    """One tiny Gemma 3 full fine-tune through `run_stage`: 4 steps with checkpoints every 2."""
    runs_dir = tmp_path_factory.mktemp("runs")
    write_build(runs_dir, "full", n_train=24, n_val=4)
    overrides = ["train.base_model=tiny-random-gemma3", "train.method=full", "train.report_to=[]"]
    overrides += ["train.eval_steps=2", "train.save_steps=2", "train.learning_rate=0.002"]
    cfg = config(runs_dir, "full", *overrides, "train.max_steps=4")
    report = run_stage(cfg, "train")
    return runs_dir, overrides, report


@pytest.mark.slow
def test_stage_writes_the_full_model_and_records_the_method(full_run):
    from transformers import AutoTokenizer

    from fine_tuning.train.tuned import has_tuned_weights, tuned_weights

    runs_dir, _, _ = full_run
    stage = runs_dir / "full" / "train"
    summary = json.loads((stage / "train_summary.json").read_text(encoding="utf-8"))
    assert summary["method"] == "full" and summary["master_weights"] == "fp32" and summary["lora"] is None
    assert summary["trainable_parameters"] == summary["total_parameters"] and summary["frozen_dtypes"] == {}
    assert summary["trainable_dtypes"] == {"float32": summary["total_parameters"]}
    recorded = {o["path"] for o in json.loads((stage / "manifest.json").read_text(encoding="utf-8"))["outputs"]}
    assert "train/model/model.safetensors" in recorded and not (stage / "adapter").exists()
    assert (stage / "model" / "model.safetensors").exists() and not (stage / "model" / "training_args.bin").exists()
    template = AutoTokenizer.from_pretrained(stage / "model").chat_template
    assert template and template == AutoTokenizer.from_pretrained(stage / "tokenizer").chat_template
    tuned = tuned_weights(stage)
    assert tuned.full and tuned.model_dir == stage / "model" and tuned.tokenizer_dir == stage / "model"
    assert has_tuned_weights(stage) and not has_tuned_weights(runs_dir / "missing")


@pytest.mark.slow
def test_loaders_see_the_trained_model_and_evaluate_can_switch_to_the_base(full_run):
    import torch
    from transformers import AutoModelForCausalLM

    from fine_tuning.train.loading import load_trained
    from fine_tuning.train.tuned import load_for_comparison

    runs_dir, _, _ = full_run
    stage = runs_dir / "full" / "train"
    trained = AutoModelForCausalLM.from_pretrained(stage / "model").eval()
    base = AutoModelForCausalLM.from_pretrained(stage / "base_model").eval()
    ids = torch.arange(5, 30)[None]
    with torch.no_grad():
        tuned_logits, base_logits = trained(input_ids=ids).logits, base(input_ids=ids).logits
        model, _ = load_trained(stage)
        assert torch.equal(model(input_ids=ids).logits, tuned_logits)
        compared, _ = load_for_comparison(stage)
        with compared.disable_adapter():
            assert torch.equal(compared(input_ids=ids).logits, base_logits)
        assert torch.equal(compared(input_ids=ids).logits, tuned_logits)  # the tuned weights are back
    assert not torch.equal(tuned_logits, base_logits)


@pytest.mark.slow
def test_raised_max_steps_resumes_the_full_model_from_its_checkpoint(full_run):
    runs_dir, overrides, _ = full_run
    stage = runs_dir / "full" / "train"
    assert (stage / "checkpoints" / "checkpoint-4" / "model.safetensors").exists()
    cfg = config(runs_dir, "full", *overrides, "train.max_steps=6")
    run_stage(cfg, "train", options={"resume": True})
    summary = json.loads((stage / "train_summary.json").read_text(encoding="utf-8"))
    assert summary["resumed_from"] == "checkpoint-4" and summary["global_step"] == 6


@pytest.mark.slow
def test_export_of_a_full_run_is_the_trained_model_without_a_merge(full_run):
    import torch
    from transformers import AutoModelForCausalLM

    from fine_tuning.export.merge import merge_adapter

    runs_dir, _, _ = full_run
    stage = runs_dir / "full" / "train"
    model, tokenizer, facts = merge_adapter(stage, None)
    assert facts["merge"].startswith("none") and facts["probe_max_abs_logit_diff"] == 0.0
    trained = AutoModelForCausalLM.from_pretrained(stage / "model").eval()
    ids = torch.arange(5, 30)[None]
    with torch.no_grad():
        assert torch.equal(model(input_ids=ids).logits, trained(input_ids=ids).logits)


def test_reinforce_refuses_a_full_run(tmp_path):
    from fine_tuning.train.tuned import refuse_full_for_reinforce

    stage = tmp_path / "train"
    (stage / "model").mkdir(parents=True)
    (stage / "model" / "config.json").write_text("{}")
    summary = {"method": "full", "model_class": "PhiForCausalLM", "base_model_path": "x", "base_model_dir": None}
    (stage / "train_summary.json").write_text(json.dumps(summary))
    with pytest.raises(SlmError, match="train.method: full"):
        refuse_full_for_reinforce(stage)


@pytest.mark.parametrize(
    ("overrides", "key"),
    [
        (["train.method=lora", "train.quantization=int8"], "train.quantization"),
        (["train.method=full", "train.quantization=nf4"], "train.quantization"),
        (["train.method=qlora", "train.master_weights=bf16"], "train.master_weights"),
        (["train.method=full", "train.lora.modules_to_save=[embed_tokens]"], "train.lora.modules_to_save"),
        (["train.method=full", "train.lora.target_modules=[q_proj]"], "train.lora.target_modules"),
        (["train.method=full", "train.master_weights=bf16", "train.dtype=fp16"], "train.dtype"),
        (["train.method=full", "reinforce.enabled=true"], "reinforce.enabled"),
    ],
)
def test_contradictory_settings_are_one_error_naming_the_key(overrides, key):
    from fine_tuning.train.checks import check_method_settings
    from slm_forest.validate import check_config

    cfg = load_config(None, overrides)
    errors = [f for f in check_config(cfg) if f.level == "error"]
    assert [f.key for f in errors] == [key]
    with pytest.raises(SlmError) as caught:
        check_method_settings(cfg)  # the train stage refuses the same, before loading anything
    assert key in str(caught.value) and "\n" not in str(caught.value)


@pytest.mark.parametrize(
    "overrides",
    [
        ["train.method=full", "train.master_weights=bf16"],
        ["train.method=full", "train.master_weights=fp32", "train.dtype=bf16"],
        ["train.method=qlora", "train.quantization=int8"],
        ["train.method=lora", "train.lora.modules_to_save=[embed_tokens, lm_head]"],
        ["train.method=full"],
    ],
)
def test_consistent_settings_pass(overrides):
    from slm_forest.validate import check_config

    assert [f for f in check_config(load_config(None, overrides)) if f.level == "error"] == []


def test_bf16_master_weights_need_a_gpu_with_bf16():
    from fine_tuning.train.checks import check_master_weights

    cfg = load_config(None, ["train.method=full", "train.master_weights=bf16"]).train
    with pytest.raises(SlmError, match="train.master_weights"):
        check_master_weights(cfg, "cuda", bf16_supported=False)
    check_master_weights(cfg, "cuda", bf16_supported=True)
    check_master_weights(cfg, "cpu", bf16_supported=False)  # torch trains bf16 on CPU without autocast


def test_sft_config_autocasts_fp32_master_weights_on_a_gpu_only(tmp_path):
    from fine_tuning.train.trainer import sft_config

    cfg = load_config(None, ["train.method=full", "train.report_to=[]"]).train
    cpu = sft_config(cfg, 0, tmp_path, "cpu", "fp32", has_eval=False, report=[])
    assert (cpu.bf16, cpu.fp16, cpu.use_cpu) == (False, False, True)


@pytest.mark.gpu
@pytest.mark.parametrize("implementation", ["sdpa", "eager", "flash_attention_2"])
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("master_weights", ["fp32", "bf16"])
def test_full_bf16_training_on_cuda_with_each_kernel(tiny_dirs, tmp_path, kind, implementation, master_weights):
    import torch
    from transformers import AutoTokenizer

    from fine_tuning.plan.registry import get_model_spec
    from fine_tuning.train.attention import choose_attention, flash_attn_installed
    from fine_tuning.train.loading import load_model_for_training, prepare_tokenizer, training_model_class
    from fine_tuning.train.trainer import make_trainer, sft_config

    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA GPU")
    if implementation == "flash_attention_2" and not flash_attn_installed():
        pytest.skip("flash_attn is not installed")
    spec, path = get_model_spec(kind), tiny_dirs[kind]
    attention = choose_attention(training_model_class(path), "cuda", implementation)
    model = load_model_for_training(
        spec,
        path,
        "full",
        "bf16",
        "cuda",
        activation_checkpointing=True,
        attention=attention,
        master_weights=master_weights,
    )
    expected = torch.float32 if master_weights == "fp32" else torch.bfloat16
    assert model.config._attn_implementation == implementation
    assert {p.dtype for p in model.parameters()} == {expected}
    tokenizer = AutoTokenizer.from_pretrained(path)
    prepare_tokenizer(tokenizer, model)
    cfg = load_config(None, ["train.max_steps=3", "train.report_to=[]", "train.max_length=128", "train.method=full"])
    args = sft_config(cfg.train, 0, tmp_path / "out", "cuda", "bf16", has_eval=False, report=[])
    trainer = make_trainer(model, tokenizer, args, conversations(), [], callbacks=[])
    trainer.train()
    assert trainer.state.global_step == 3
    assert torch.isfinite(torch.tensor(trainer.state.log_history[-1]["train_loss"]))


@pytest.mark.slow
def test_export_stage_of_a_full_run_writes_the_model_with_its_card(full_run, monkeypatch, tmp_path):
    import torch
    from transformers import AutoModelForCausalLM

    runs_dir, overrides, _ = full_run
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))  # no llama.cpp converter: the GGUF is skipped
    cfg = config(runs_dir, "full", *overrides, "train.max_steps=4", "export.gguf=false")
    run_stage(cfg, "export")
    merged = runs_dir / "full" / "export" / "merged"
    card = (merged / "README.md").read_text(encoding="utf-8")
    assert "A full fine-tune of" in card and "merged into the base weights" not in card
    assert "nothing was merged" in card and "Merge check" not in card
    ids = torch.arange(5, 30)[None]
    exported = AutoModelForCausalLM.from_pretrained(merged).eval()
    trained = AutoModelForCausalLM.from_pretrained(runs_dir / "full" / "train" / "model").eval()
    with torch.no_grad():
        assert torch.equal(exported(input_ids=ids).logits, trained(input_ids=ids).logits)


def test_validate_names_the_file_line_of_a_contradiction_and_fails(tmp_path):
    from typer.testing import CliRunner

    from slm_forest.cli import app

    path = tmp_path / "run.yaml"
    path.write_text("run_name: c\ntrain:\n  method: lora\n  master_weights: bf16\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["config", "validate", str(path)])
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert result.exit_code == 1 and len(errors) == 1, result.output
    assert errors[0].startswith(f"error: {path}:4: train.master_weights: train.master_weights=bf16 only applies")
    assert "Traceback" not in result.output


def test_train_refuses_a_contradiction_before_building_or_deleting_anything(tmp_path):
    runs_dir = tmp_path / "runs"
    write_build(runs_dir, "bad", n_train=8, n_val=0)
    stale = runs_dir / "bad" / "train" / "checkpoints" / "checkpoint-2"
    stale.mkdir(parents=True)
    cfg = config(runs_dir, "bad", "train.method=full", "train.lora.modules_to_save=[lm_head]")
    with pytest.raises(SlmError, match="train.lora.modules_to_save"):
        run_stage(cfg, "train")
    assert stale.is_dir() and not (runs_dir / "bad" / "train" / "base_model").exists()


@pytest.mark.slow
def test_ask_and_serve_find_and_load_the_full_model_of_a_run(full_run):
    import torch
    from transformers import AutoModelForCausalLM

    from fine_tuning.serve.generate import GenerationSettings, generate_batch, load_model, resolve_source

    runs_dir, _, _ = full_run
    export = runs_dir / "full" / "export"
    if export.exists():  # an exported model would be found first: this test is about the train stage's
        export.rename(runs_dir / "full" / "export.aside")
    try:
        source = resolve_source(run="full", runs_dir=runs_dir)
    finally:
        if (runs_dir / "full" / "export.aside").exists():
            (runs_dir / "full" / "export.aside").rename(export)
    assert source.kind == "train"
    loaded = load_model(source, device="cpu")
    assert not hasattr(loaded.model, "peft_config")
    trained = AutoModelForCausalLM.from_pretrained(runs_dir / "full" / "train" / "model").eval()
    ids = torch.arange(5, 30)[None]
    with torch.no_grad():
        assert torch.equal(loaded.model(input_ids=ids).logits, trained(input_ids=ids).logits)
    question = [[{"role": "user", "content": "부가가치세 신고기한은?"}]]
    answers = generate_batch(loaded.model, loaded.tokenizer, question, GenerationSettings(max_new_tokens=4))
    assert len(answers) == 1 and answers[0].completion_tokens >= 1
