"""The data behind the model registry: the checkpoints SLM Forest ships entries for, the tiny test models, and the
LoRA targets / quantization skips the registry assigns per family.

Numbers for the shipped entries come from the checkpoints' ``config.json`` files (google/gemma-3-{1b,4b,12b}-it,
microsoft/phi-2); keys Google leaves out of the 4B/12B configs are filled in by `architecture_from_config` from
transformers' defaults. Lookups live in `fine_tuning.plan.registry`.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "GEMMA3_LORA_TARGET_REGEX",
    "GEMMA3_MM_SKIP_MODULES",
    "KNOWN_CHECKPOINTS",
    "PHI_LORA_TARGETS",
    "TINY_CONFIGS",
    "TINY_VOCAB_SIZE",
]

PHI_LORA_TARGETS: list[str] = ["q_proj", "k_proj", "v_proj", "dense", "fc1", "fc2"]

# PEFT full-matches a string target against each module name (re.fullmatch). Anchored on the language model's
# decoder layers, so it matches
#   model.language_model.layers.N.…   (Gemma3ForConditionalGeneration, transformers 5)
#   language_model.model.layers.N.…   (transformers 4.5x naming / saved keys)
#   model.layers.N.…                  (Gemma3ForCausalLM: the 1B, or the text model loaded with key_mapping)
# and never model.vision_tower.(vision_model.)encoder.layers.N.self_attn.q_proj nor model.multi_modal_projector.
# ("all-linear" would wrap the vision tower too.)
GEMMA3_LORA_TARGET_REGEX = (
    r"^(?:base_model\.model\.)?(?:model\.)?(?:language_model\.)?(?:model\.)?layers\.\d+\."
    r"(?:self_attn\.(?:q_proj|k_proj|v_proj|o_proj)|mlp\.(?:gate_proj|up_proj|down_proj))$"
)

# Full module names: bitsandbytes matches llm_int8_skip_modules against full names, so a short "vision_tower"
# skips nothing in transformers 5 (see ML_STACK_NOTES.md).
GEMMA3_MM_SKIP_MODULES = ["model.vision_tower", "model.multi_modal_projector", "lm_head"]


# Tiny random models for CPU tests and CI. The tokenizer is trained by the pipeline, so its vocabulary size is not
# known here: TINY_VOCAB_SIZE (1024) is a placeholder of the right order (a byte-level BPE of ~1k tokens). Builders
# should overwrite vocab_size (and Gemma's image/boi/eoi token ids) with the trained tokenizer's values; get_model_spec
# on the built directory then reads the real numbers from its config.json.
TINY_VOCAB_SIZE = 1024
_TINY_GEMMA_TEXT: dict[str, Any] = {
    "model_type": "gemma3_text",
    "vocab_size": TINY_VOCAB_SIZE,
    "hidden_size": 64,
    "intermediate_size": 128,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "head_dim": 16,
    "sliding_window": 32,
    "layer_types": ["sliding_attention", "full_attention"],
    "max_position_embeddings": 4096,
    "tie_word_embeddings": True,
}
TINY_CONFIGS: dict[str, dict[str, Any]] = {
    # PhiConfig(...) → 198,912 parameters with vocab 1024 (transformers 5.23)
    "tiny-random-phi": {
        "model_type": "phi",
        "architectures": ["PhiForCausalLM"],
        "vocab_size": TINY_VOCAB_SIZE,
        "hidden_size": 64,
        "intermediate_size": 128,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 4,
        "max_position_embeddings": 4096,
        "tie_word_embeddings": False,
    },
    # Gemma3TextConfig(...) → 139,904 parameters with vocab 1024
    "tiny-random-gemma3": {**_TINY_GEMMA_TEXT, "architectures": ["Gemma3ForCausalLM"]},
    # Gemma3Config with a 1-layer SigLIP tower → 157,280 parameters (17,376 vision + projector); same module layout
    # as the real 4B/12B checkpoints (model.language_model.*, model.vision_tower.*, model.multi_modal_projector.*)
    "tiny-random-gemma3-mm": {
        "model_type": "gemma3",
        "architectures": ["Gemma3ForConditionalGeneration"],
        "text_config": dict(_TINY_GEMMA_TEXT),
        "vision_config": {
            "model_type": "siglip_vision_model",
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
            "image_size": 32,
            "patch_size": 8,
            "vision_use_head": False,
        },
        "mm_tokens_per_image": 4,
    },
}

# Real checkpoints (values from their config.json; see the module docstring).
_PHI2_CONFIG = {
    "model_type": "phi",
    "vocab_size": 51200,
    "hidden_size": 2560,
    "intermediate_size": 10240,
    "num_hidden_layers": 32,
    "num_attention_heads": 32,
    "num_key_value_heads": 32,
    "tie_word_embeddings": False,
}
_GEMMA3_1B_CONFIG = {
    "model_type": "gemma3_text",
    "vocab_size": 262144,
    "hidden_size": 1152,
    "intermediate_size": 6912,
    "num_hidden_layers": 26,
    "num_attention_heads": 4,
    "num_key_value_heads": 1,
    "head_dim": 256,
    "sliding_window": 512,
}
_GEMMA3_VISION = {
    "model_type": "siglip_vision_model",
    "hidden_size": 1152,
    "image_size": 896,
    "intermediate_size": 4304,
    "num_attention_heads": 16,
    "num_hidden_layers": 27,
    "patch_size": 14,
    "vision_use_head": False,
}
_GEMMA3_4B_CONFIG = {
    "model_type": "gemma3",
    "mm_tokens_per_image": 256,
    "vision_config": _GEMMA3_VISION,
    "text_config": {
        "model_type": "gemma3_text",
        "hidden_size": 2560,
        "intermediate_size": 10240,
        "num_hidden_layers": 34,
        "sliding_window": 1024,
    },
}
_GEMMA3_12B_CONFIG = {
    "model_type": "gemma3",
    "mm_tokens_per_image": 256,
    "vision_config": _GEMMA3_VISION,
    "text_config": {
        "model_type": "gemma3_text",
        "hidden_size": 3840,
        "intermediate_size": 15360,
        "num_hidden_layers": 48,
        "num_attention_heads": 16,
        "num_key_value_heads": 8,
        "sliding_window": 1024,
    },
}

# Registry key, Hugging Face id, config.json, notes — in registration order (`known_models()` lists them so).
KNOWN_CHECKPOINTS: tuple[tuple[str, str, dict[str, Any], str], ...] = (
    (
        "phi-2",
        "microsoft/phi-2",
        _PHI2_CONFIG,
        "2.78B; no chat template (train on prompt/completion text); fp16 is fine for Phi-2",
    ),
    ("gemma-3-1b-it", "google/gemma-3-1b-it", _GEMMA3_1B_CONFIG, "text-only Gemma3ForCausalLM; bf16 only"),
    (
        "gemma-3-4b-it",
        "google/gemma-3-4b-it",
        _GEMMA3_4B_CONFIG,
        "multimodal Gemma3ForConditionalGeneration (SigLIP 0.42B); bf16 only",
    ),
    (
        "gemma-3-12b-it",
        "google/gemma-3-12b-it",
        _GEMMA3_12B_CONFIG,
        "multimodal Gemma3ForConditionalGeneration (SigLIP 0.42B); bf16 only",
    ),
)
