"""Model registry: parameter counts, LoRA target regex, spec lookup, dtype rules. Pure Python, no torch.

Parameter-count ground truth
  * "exact" numbers: instantiated with transformers 5.23 on the meta device (PhiForCausalLM / Gemma3ForCausalLM /
    Gemma3ForConditionalGeneration built from the checkpoints' config.json values) and counted with
    sum(p.numel() for p in model.parameters()).
  * "published" numbers: model cards (phi-2 "2.7B", gemma-3-12b-it "12.2B") and keras-hub's Gemma 3 preset
    metadata (keras_hub/src/models/gemma3/gemma3_presets.py: gemma3_1b 999,885,952; gemma3_4b_text 3,880,099,328;
    gemma3_4b 4,299,915,632; gemma3_12b_text 11,765,788,416; gemma3_12b 12,187,079,280). keras-hub counts a
    262,144-token embedding where the HF checkpoints have 262,208 rows, hence the tiny (<0.01%) differences.
    Tolerance against published numbers: 0.5% (card figures are rounded to 2-3 digits: 2%).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from fine_tuning.plan.architecture import Architecture, architecture_from_config
from fine_tuning.plan.model_table import GEMMA3_LORA_TARGET_REGEX, TINY_CONFIGS
from fine_tuning.plan.registry import choose_dtype, get_model_spec, known_models

REPO = Path(__file__).resolve().parents[1]

EXACT = {  # transformers 5.23, meta device
    "phi-2": 2_779_683_840,
    "gemma-3-1b-it": 999_885_952,
    "gemma-3-4b-it": 4_300_079_472,
    "gemma-3-12b-it": 12_187_325_040,
    "tiny-random-phi": 198_912,
    "tiny-random-gemma3": 139_904,
    "tiny-random-gemma3-mm": 157_280,
}
VISION_EXACT = {
    "gemma-3-4b-it": 416_866_032 + 2_950_272,
    "gemma-3-12b-it": 416_866_032 + 4_424_832,
    "tiny-random-gemma3-mm": 17_376,
}


@pytest.mark.parametrize("name", sorted(EXACT))
def test_params_match_transformers_exactly(name):
    assert get_model_spec(name).arch.params() == EXACT[name]


@pytest.mark.parametrize("name", sorted(VISION_EXACT))
def test_vision_params_match_transformers(name):
    assert get_model_spec(name).arch.vision_params == VISION_EXACT[name]


@pytest.mark.parametrize(
    "name, published, text_only, tol",
    [
        ("phi-2", 2.78e9, False, 0.005),
        ("gemma-3-1b-it", 999_885_952, False, 0.005),
        ("gemma-3-4b-it", 3_880_099_328, True, 0.005),
        ("gemma-3-4b-it", 4_299_915_632, False, 0.005),
        ("gemma-3-12b-it", 11_765_788_416, True, 0.005),
        ("gemma-3-12b-it", 12_187_079_280, False, 0.005),
        ("gemma-3-12b-it", 12.2e9, False, 0.02),  # model card
    ],
)
def test_params_against_published_counts(name, published, text_only, tol):
    arch = get_model_spec(name).arch
    ours = arch.language_params() if text_only else arch.params()
    assert abs(ours - published) / published <= tol


def test_sparse_gemma3_4b_config_takes_transformers_defaults():
    # google/gemma-3-4b-it's config.json names only a few text keys; heads/kv/head_dim/vocab come from defaults
    cfg = {
        "architectures": ["Gemma3ForConditionalGeneration"],
        "model_type": "gemma3",
        "mm_tokens_per_image": 256,
        "text_config": {
            "hidden_size": 2560,
            "intermediate_size": 10240,
            "model_type": "gemma3_text",
            "num_hidden_layers": 34,
            "sliding_window": 1024,
        },
        "vision_config": {
            "hidden_size": 1152,
            "image_size": 896,
            "intermediate_size": 4304,
            "model_type": "siglip_vision_model",
            "num_attention_heads": 16,
            "num_hidden_layers": 27,
            "patch_size": 14,
            "vision_use_head": False,
        },
    }
    arch = architecture_from_config(cfg)
    assert (arch.num_heads, arch.num_kv_heads, arch.head_dim, arch.vocab_size) == (8, 4, 256, 262208)
    assert arch.tie_embeddings and arch.mlp_kind == "gated" and arch.family == "gemma"
    assert arch.params() == EXACT["gemma-3-4b-it"]


def test_phi_and_generic_configs():
    phi = architecture_from_config(TINY_CONFIGS["tiny-random-phi"])
    assert phi.mlp_kind == "plain" and phi.family == "phi" and not phi.tie_embeddings and phi.head_dim == 16
    qwen = architecture_from_config(
        {
            "model_type": "qwen2",
            "hidden_size": 896,
            "intermediate_size": 4864,
            "num_hidden_layers": 24,
            "num_attention_heads": 14,
            "num_key_value_heads": 2,
            "vocab_size": 151936,
            "tie_word_embeddings": True,
        }
    )
    assert qwen.family == "llama" and qwen.kv_dim == 128
    assert abs(qwen.params() - 494_032_768) / 494_032_768 < 0.01  # Qwen2.5-0.5B: 0.49B
    gpt2 = architecture_from_config(
        {"model_type": "gpt2", "n_embd": 768, "n_layer": 12, "n_head": 12, "vocab_size": 50257}
    )
    assert (gpt2.hidden_size, gpt2.intermediate_size, gpt2.mlp_kind) == (768, 3072, "plain")
    with pytest.raises(ValueError, match="model_type"):
        architecture_from_config({"hidden_size": 8})
    with pytest.raises(ValueError, match="hidden_size"):
        architecture_from_config({"model_type": "mystery", "num_hidden_layers": 2})


# -- LoRA targets ---------------------------------------------------------------------------------------------------

LANGUAGE_MODULES = [
    "model.language_model.layers.0.self_attn.q_proj",  # Gemma3ForConditionalGeneration, transformers 5
    "model.language_model.layers.47.mlp.down_proj",
    "language_model.model.layers.0.mlp.down_proj",  # transformers 4.5x naming / saved keys
    "language_model.model.layers.3.self_attn.o_proj",
    "model.layers.0.self_attn.k_proj",  # Gemma3ForCausalLM (1B, or text model loaded with key_mapping)
    "model.layers.12.mlp.gate_proj",
    "base_model.model.model.language_model.layers.0.mlp.up_proj",
]
NOT_LANGUAGE = [
    "model.vision_tower.vision_model.encoder.layers.0.self_attn.q_proj",
    "model.vision_tower.encoder.layers.0.self_attn.q_proj",  # transformers 5.23 naming
    "vision_tower.vision_model.encoder.layers.0.mlp.fc1",
    "model.vision_tower.encoder.layers.0.self_attn.out_proj",
    "model.multi_modal_projector",
    "multi_modal_projector.mm_input_projection",
    "model.language_model.layers.0.self_attn.q_norm",
    "model.language_model.embed_tokens",
    "lm_head",
]


@pytest.mark.parametrize("module", LANGUAGE_MODULES)
def test_gemma_regex_matches_language_model(module):
    import re

    assert re.fullmatch(GEMMA3_LORA_TARGET_REGEX, module)


@pytest.mark.parametrize("module", NOT_LANGUAGE)
def test_gemma_regex_skips_vision_and_projector(module):
    import re

    assert not re.fullmatch(GEMMA3_LORA_TARGET_REGEX, module)


def test_spec_facts():
    phi = get_model_spec("phi-2")
    assert phi.lora_target_modules == ["q_proj", "k_proj", "v_proj", "dense", "fc1", "fc2"]
    assert phi.end_of_turn_token is None and phi.allows_fp16 and not phi.multimodal
    g12 = get_model_spec("google/gemma-3-12b-it")
    assert g12.name == "gemma-3-12b-it" and g12.multimodal and not g12.allows_fp16
    assert g12.end_of_turn_token == "<end_of_turn>"
    assert g12.lora_target_modules == GEMMA3_LORA_TARGET_REGEX
    assert g12.skip_quantization_modules == ["model.vision_tower", "model.multi_modal_projector", "lm_head"]
    assert "vision_tower" not in g12.skip_quantization_modules  # the short name skips nothing in transformers 5
    g1 = get_model_spec("GEMMA-3-1B-IT")
    assert not g1.multimodal and g1.hf_id == "google/gemma-3-1b-it" and g1.arch.vision_params == 0
    assert get_model_spec("tiny-random-gemma3-mm").multimodal
    assert get_model_spec("tiny-random-phi").hf_id is None
    assert set(known_models()) >= {
        "phi-2",
        "gemma-3-1b-it",
        "gemma-3-4b-it",
        "gemma-3-12b-it",
        "tiny-random-phi",
        "tiny-random-gemma3",
        "tiny-random-gemma3-mm",
    }


def test_specs_are_copies():
    a = get_model_spec("phi-2")
    a.lora_target_modules.append("lm_head")
    assert "lm_head" not in get_model_spec("phi-2").lora_target_modules


def test_local_directory(tmp_path):
    d = tmp_path / "my-tiny-gemma"
    d.mkdir()
    (d / "config.json").write_text(
        json.dumps(
            TINY_CONFIGS["tiny-random-gemma3-mm"]
            | {"text_config": {**TINY_CONFIGS["tiny-random-gemma3-mm"]["text_config"], "vocab_size": 900}}
        )
    )
    spec = get_model_spec(str(d))
    assert spec.name == "my-tiny-gemma" and spec.hf_id is None and spec.multimodal
    assert spec.arch.vocab_size == 900 and spec.lora_target_modules == GEMMA3_LORA_TARGET_REGEX
    assert get_model_spec(d / "config.json").arch == spec.arch

    other = tmp_path / "qwen"
    other.mkdir()
    (other / "config.json").write_text(
        json.dumps(
            {
                "model_type": "qwen2",
                "hidden_size": 64,
                "intermediate_size": 128,
                "num_hidden_layers": 2,
                "num_attention_heads": 4,
                "num_key_value_heads": 2,
                "vocab_size": 1000,
            }
        )
    )
    q = get_model_spec(other)
    assert q.lora_target_modules == "all-linear" and q.allows_fp16 and q.end_of_turn_token is None

    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ValueError, match="no config.json"):
        get_model_spec(empty)


def test_unknown_model_names_known_keys(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    monkeypatch.setenv("HF_HOME", str(tmp_path))
    with pytest.raises(ValueError) as err:
        get_model_spec("acme/not-a-model")
    assert "gemma-3-12b-it" in str(err.value) and "phi-2" in str(err.value)


def test_hf_cache_lookup(monkeypatch, tmp_path):
    snap = tmp_path / "models--Qwen--Qwen2.5-0.5B" / "snapshots" / "abc123"
    snap.mkdir(parents=True)
    (snap / "config.json").write_text(
        json.dumps(
            {
                "model_type": "qwen2",
                "hidden_size": 896,
                "intermediate_size": 4864,
                "num_hidden_layers": 24,
                "num_attention_heads": 14,
                "num_key_value_heads": 2,
                "vocab_size": 151936,
                "tie_word_embeddings": True,
            }
        )
    )
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    spec = get_model_spec("Qwen/Qwen2.5-0.5B")
    assert spec.hf_id == "Qwen/Qwen2.5-0.5B" and spec.arch.num_layers == 24


def _qwen_config(layers: int = 24) -> dict:
    return {
        "model_type": "qwen2",
        "hidden_size": 896,
        "intermediate_size": 4864,
        "num_hidden_layers": layers,
        "num_attention_heads": 14,
        "num_key_value_heads": 2,
        "vocab_size": 151936,
        "tie_word_embeddings": True,
    }


def test_offline_hub_id_not_in_the_cache_says_how_to_fix(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    with pytest.raises(ValueError) as err:
        get_model_spec("Qwen/Qwen2.5-0.5B-Instruct")
    message = str(err.value)
    assert "not in the local Hugging Face cache" in message and "HF_HUB_OFFLINE" in message
    assert "run once online" in message.lower() and "local model directory" in message and "--model-config" in message


def test_hub_id_resolves_from_a_hf_home_cache_without_network(monkeypatch, tmp_path):
    """The layout huggingface_hub writes: refs/main names the snapshot to use (not simply the newest one)."""
    import os

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    repo = tmp_path / "hf" / "hub" / "models--Qwen--Qwen2.5-0.5B-Instruct"
    for rev, layers in (("a" * 40, 24), ("b" * 40, 3)):
        (repo / "snapshots" / rev).mkdir(parents=True)
        (repo / "snapshots" / rev / "config.json").write_text(json.dumps(_qwen_config(layers)))
    os.utime(repo / "snapshots" / ("b" * 40) / "config.json", (2e9, 2e9))  # newer, but not what main points at
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("a" * 40)
    spec = get_model_spec("Qwen/Qwen2.5-0.5B-Instruct")
    assert spec.hf_id == "Qwen/Qwen2.5-0.5B-Instruct" and spec.name == "Qwen2.5-0.5B-Instruct"
    assert spec.arch.num_layers == 24 and spec.lora_target_modules == "all-linear" and not spec.multimodal


def test_uncached_hub_id_online_downloads_only_its_config(monkeypatch, tmp_path):
    import huggingface_hub
    from huggingface_hub.errors import LocalEntryNotFoundError

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    calls = []

    def fake_download(repo_id, filename, *, cache_dir=None, local_files_only=False, **kwargs):
        calls.append((repo_id, filename, local_files_only, cache_dir))
        if local_files_only:
            raise LocalEntryNotFoundError("not cached")
        target = tmp_path / "downloaded" / "config.json"
        target.parent.mkdir(exist_ok=True)
        target.write_text(json.dumps(_qwen_config()))
        return str(target)

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", fake_download)
    spec = get_model_spec("Qwen/Qwen2.5-0.5B-Instruct")
    assert spec.arch.num_layers == 24 and spec.lora_target_modules == "all-linear"
    assert [c[:3] for c in calls] == [
        ("Qwen/Qwen2.5-0.5B-Instruct", "config.json", True),
        ("Qwen/Qwen2.5-0.5B-Instruct", "config.json", False),
    ]
    assert calls[1][3] == str(tmp_path / "hf" / "hub")  # HF_HOME as set now, not when huggingface_hub was imported


# -- dtype rules -----------------------------------------------------------------------------------------------------


def test_choose_dtype_rules():
    gemma, phi = get_model_spec("gemma-3-12b-it"), get_model_spec("phi-2")
    assert choose_dtype(gemma, "cuda", True) == "bf16"
    assert choose_dtype(gemma, "cuda:0", True, "bfloat16") == "bf16"
    assert choose_dtype(phi, "cuda", True) == "bf16"
    assert choose_dtype(phi, "cuda", False) == "fp16"  # pre-Ampere: Phi may use fp16
    assert choose_dtype(phi, "cuda", True, "fp16") == "fp16"
    assert choose_dtype(gemma, "cpu", False) == "fp32"
    assert choose_dtype(phi, "cpu", True, "fp32") == "fp32"
    assert choose_dtype(gemma, "cuda", True, "fp32") == "fp32"
    with pytest.raises(ValueError, match="overflow"):
        choose_dtype(gemma, "cuda", True, "fp16")  # Gemma never fp16, with the reason
    with pytest.raises(ValueError, match="overflow"):
        choose_dtype(gemma, "cpu", False, "float16")
    with pytest.raises(ValueError, match="bf16"):
        choose_dtype(gemma, "cuda", False)  # pre-Ampere Gemma without fallback
    assert choose_dtype(gemma, "cuda", False, allow_fp32_fallback=True) == "fp32"
    assert choose_dtype(gemma, "cuda", False, "bf16", allow_fp32_fallback=True) == "fp32"
    with pytest.raises(ValueError, match="fp16"):
        choose_dtype(phi, "cuda", False, "bf16")
    with pytest.raises(ValueError, match="CPU"):
        choose_dtype(phi, "cpu", False, "bf16")
    with pytest.raises(ValueError, match="unknown dtype"):
        choose_dtype(phi, "cuda", True, "int4")


def test_import_is_fast_and_torch_free():
    # Measured in a fresh interpreter; best of up to 3 tries so a busy CI box does not flake the 0.2 s budget.
    code = (
        "import sys, time; t = time.perf_counter(); "
        "import fine_tuning.plan.registry, fine_tuning.plan.memory, fine_tuning.plan.cost; "
        "print(time.perf_counter() - t, 'torch' in sys.modules, 'transformers' in sys.modules)"
    )
    best = float("inf")
    for _ in range(3):
        out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
        seconds, torch_loaded, tf_loaded = out.stdout.split()
        assert torch_loaded == "False" and tf_loaded == "False"
        best = min(best, float(seconds))
        if best < 0.2:
            break
    assert best < 0.2


def test_architecture_is_hashable_value():
    a = Architecture("llama", 64, 2, 4, 4, 16, 128, 1000, False)
    assert a == Architecture("llama", 64, 2, 4, 4, 16, 128, 1000, False) and hash(a)
