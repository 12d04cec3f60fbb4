"""`train.lora.modules_to_save`: names resolved per architecture, passed to peft (tied embeddings trained once),
trained, saved in the adapter and merged by export with the adapter model's logits."""

from __future__ import annotations

import json

import pytest

from slm_forest.errors import SlmError
from slm_forest.pipeline import run_stage
from tests.test_train_stage import config, write_build

TEXTS = ["증여세 과세가액은 증여재산에서 채무를 뺀 금액입니다.", "부가가치세 확정신고 기한은 25일 이내입니다."] * 40


@pytest.fixture(scope="module")
def tiny_dirs(tmp_path_factory):
    from fine_tuning.train.tiny import build_tiny_model

    root = tmp_path_factory.mktemp("bases")
    kinds = ("tiny-random-phi", "tiny-random-gemma3")
    return {kind: build_tiny_model(kind, root / kind, TEXTS, seed=3, overrides={}) for kind in kinds}


def load(path):
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(path)


@pytest.mark.parametrize(
    ("kind", "requested", "names", "tied"),
    [
        ("tiny-random-phi", ["embed_tokens", "lm_head"], ["model.embed_tokens", "lm_head"], False),
        ("tiny-random-phi", ["lm_head"], ["lm_head"], False),
        ("tiny-random-gemma3", ["embed_tokens", "lm_head"], ["model.embed_tokens"], True),
        ("tiny-random-gemma3", ["lm_head"], ["model.embed_tokens"], True),  # the one shared matrix
        ("tiny-random-gemma3", ["input_embeddings", "output_embeddings"], ["model.embed_tokens"], True),
    ],
)
def test_names_resolve_per_architecture(tiny_dirs, kind, requested, names, tied):
    from fine_tuning.train.trainable_modules import resolve_modules_to_save

    resolved = resolve_modules_to_save(load(tiny_dirs[kind]), requested)
    assert resolved.names == names and resolved.tied is tied


def test_unknown_module_is_an_error_naming_the_key(tiny_dirs):
    from fine_tuning.train.trainable_modules import resolve_modules_to_save

    with pytest.raises(SlmError, match="train.lora.modules_to_save: PhiForCausalLM has no module 'wte'"):
        resolve_modules_to_save(load(tiny_dirs["tiny-random-phi"]), ["wte"])
    assert resolve_modules_to_save(load(tiny_dirs["tiny-random-phi"]), []) is None


def test_peft_unties_a_tied_pair_without_ensure_weight_tying(tiny_dirs):
    """The installed peft's behaviour the module relies on: two copies and an untied merge without the flag, one
    shared copy and a tied merge with it. If peft changes this, trainable_modules.py must be revisited."""
    from peft import LoraConfig, get_peft_model

    def merged(ensure: bool):
        config = LoraConfig(
            r=4,
            target_modules=["q_proj"],
            modules_to_save=["model.embed_tokens", "lm_head"],
            ensure_weight_tying=ensure,
            task_type="CAUSAL_LM",
        )
        with pytest.warns(UserWarning) if not ensure else _no_warning():
            peft_model = get_peft_model(load(tiny_dirs["tiny-random-gemma3"]), config)
        trainable = [n for n, p in peft_model.named_parameters() if p.requires_grad and "lora" not in n]
        return len(trainable), peft_model.merge_and_unload()

    copies, untied = merged(ensure=False)
    assert copies == 2 and untied.config.tie_word_embeddings is False
    copies, tied = merged(ensure=True)
    assert copies == 1 and tied.config.tie_word_embeddings is True
    assert tied.lm_head.weight is tied.get_input_embeddings().weight


def _no_warning():
    import contextlib

    return contextlib.nullcontext()


@pytest.fixture(scope="module")
def trained_runs(tmp_path_factory):
    """A LoRA run with modules_to_save on the untied tiny Phi and on the tied tiny Gemma 3."""
    runs_dir = tmp_path_factory.mktemp("runs")
    stages = {}
    for kind in ("tiny-random-phi", "tiny-random-gemma3"):
        write_build(runs_dir, kind, n_train=16, n_val=0)
        cfg = config(
            runs_dir,
            kind,
            f"train.base_model={kind}",
            "train.max_steps=4",
            "train.report_to=[]",
            "train.lora.modules_to_save=[embed_tokens, lm_head]",
        )
        run_stage(cfg, "train")
        stages[kind] = runs_dir / kind / "train"
    return stages


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["tiny-random-phi", "tiny-random-gemma3"])
def test_saved_weights_are_trained_and_the_merge_equals_the_adapter_model(trained_runs, kind, tmp_path):
    import torch
    from safetensors.torch import load_file

    from fine_tuning.export.merge import logits_of, merge_adapter
    from fine_tuning.train.loading import load_trained

    stage = trained_runs[kind]
    summary = json.loads((stage / "train_summary.json").read_text(encoding="utf-8"))
    tied = kind == "tiny-random-gemma3"
    expected = ["model.embed_tokens"] if tied else ["model.embed_tokens", "lm_head"]
    assert summary["lora"]["modules_to_save"] == expected
    assert summary["lora"]["tied_embeddings_trained_once"] is tied
    assert summary["trainable_dtypes"] == {"float32": summary["trainable_parameters"]}

    base = load(stage / "base_model")
    saved = load_file(str(stage / "adapter" / "adapter_model.safetensors"))
    embedding = saved["base_model.model.model.embed_tokens.weight"]
    assert not torch.equal(embedding, base.get_input_embeddings().weight)  # trained
    head = saved["base_model.model.lm_head.weight"]
    assert not torch.equal(head, base.lm_head.weight)
    if tied:
        assert torch.equal(head, embedding)  # one matrix, trained once

    adapter_model, tokenizer = load_trained(stage)
    ids = torch.arange(5, 40)[None]
    adapter_logits = logits_of(adapter_model, ids)
    merged, _, facts = merge_adapter(stage, None)
    assert facts["probe_max_abs_logit_diff"] < 1e-3
    assert (logits_of(merged, ids) - adapter_logits).abs().max() < 1e-4
    merged.save_pretrained(tmp_path / "merged")
    reloaded = load(tmp_path / "merged").eval()  # what export writes and users load: trained weights survive
    assert (logits_of(reloaded, ids) - adapter_logits).abs().max() < 1e-4
    assert reloaded.config.tie_word_embeddings is tied
