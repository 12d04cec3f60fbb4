"""Per-architecture facts about the models SLM Forest fine-tunes.

Pure Python on purpose (no torch, no transformers): `slm plan`, config validation and the data stages import it,
and it must import in well under 0.2 s.

What lives here
  * `Architecture`: the shape numbers of a checkpoint, read from its ``config.json``; ``params()`` derives the total
    parameter count (checked in tests against transformers-instantiated counts and the published model cards).
  * `ModelSpec`: an architecture plus the training facts the pipeline needs (LoRA targets, chat end-of-turn token,
    whether fp16 is allowed, which modules 4-bit loading must skip).
  * `get_model_spec()`: registry key, Hugging Face id, or a local directory with ``config.json`` → `ModelSpec`.
  * `choose_dtype()`: the one place that decides bf16 / fp16 / fp32.

Numbers for the shipped entries come from the checkpoints' ``config.json`` files (google/gemma-3-{1b,4b,12b}-it,
microsoft/phi-2), with the fields Google leaves out of the 4B/12B configs filled in from transformers' own
``Gemma3TextConfig`` / ``SiglipVisionConfig`` defaults — exactly what ``AutoConfig`` does.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

__all__ = [
    "Architecture",
    "ModelSpec",
    "GEMMA3_LORA_TARGET_REGEX",
    "PHI_LORA_TARGETS",
    "TINY_CONFIGS",
    "TINY_VOCAB_SIZE",
    "architecture_from_config",
    "choose_dtype",
    "default_lora_targets",
    "get_model_spec",
    "known_models",
]

# --------------------------------------------------------------------------------------------------------------------
# Architecture
# --------------------------------------------------------------------------------------------------------------------

_GEMMA_TYPES = frozenset({"gemma", "gemma2", "gemma3", "gemma3_text"})
# Architectures whose MLP is fc1 → act → fc2 (no gate) and whose linears carry biases.
_PLAIN_MLP_TYPES = frozenset({"phi", "gpt2", "gpt_neox", "gptj", "gpt_bigcode", "falcon", "opt", "bloom", "starcoder2"})


@dataclass(frozen=True)
class Architecture:
    """Shape of a (language) model, as read from ``config.json``.

    For multimodal Gemma 3 the text numbers come from ``text_config`` and the vision tower + projector are folded
    into ``vision_params`` (they are loaded with the model even for text-only training).
    """

    model_type: str  # "phi", "gemma3" (multimodal 4B/12B/27B), "gemma3_text" (1B), "llama", ...
    hidden_size: int
    num_layers: int
    num_heads: int
    num_kv_heads: int
    head_dim: int
    intermediate_size: int
    vocab_size: int
    tie_embeddings: bool
    vision_params: int = 0  # vision tower + multimodal projector, 0 for text-only checkpoints
    mlp_kind: str = "gated"  # "gated" (gate/up/down: Gemma, Llama) or "plain" (fc1/fc2: Phi)
    # Extra (optional) fact used by the memory planner: local attention window of Gemma-style sliding layers.
    sliding_window: int | None = None

    # -- derived sizes ------------------------------------------------------------------------------------------------
    @property
    def q_dim(self) -> int:
        return self.num_heads * self.head_dim

    @property
    def kv_dim(self) -> int:
        return self.num_kv_heads * self.head_dim

    @property
    def family(self) -> str:
        """ "gemma", "phi" or "llama" (the generic decoder); selects per-family formulas in the planner."""
        if self.model_type in _GEMMA_TYPES:
            return "gemma"
        if self.model_type == "phi" or self.mlp_kind == "plain":
            return "phi"
        return "llama"

    def projections(self) -> dict[str, tuple[int, int]]:
        """The linear layers of one decoder layer: logical name → (in_features, out_features).

        Logical names are q, k, v, o, gate, up, down (Phi's dense/fc1/fc2 map to o/up/down).
        """
        h, i = self.hidden_size, self.intermediate_size
        proj = {"q": (h, self.q_dim), "k": (h, self.kv_dim), "v": (h, self.kv_dim), "o": (self.q_dim, h)}
        if self.mlp_kind == "plain":
            proj.update({"up": (h, i), "down": (i, h)})
        else:
            proj.update({"gate": (h, i), "up": (h, i), "down": (i, h)})
        return proj

    def linear_params_per_layer(self) -> int:
        """Weights of the decoder layer's linear layers (what 4-bit/8-bit loading quantizes), biases excluded."""
        return sum(a * b for a, b in self.projections().values())

    def embedding_params(self) -> int:
        return self.vocab_size * self.hidden_size

    def lm_head_params(self) -> int:
        """Extra parameters of the output projection (0 when tied to the input embedding)."""
        if self.tie_embeddings:
            return 0
        bias = self.vocab_size if self.family == "phi" else 0  # Phi's lm_head has a bias
        return self.vocab_size * self.hidden_size + bias

    def _small_params_per_layer(self) -> int:
        """Norm weights and biases of one decoder layer."""
        h = self.hidden_size
        if self.family == "phi":
            # q/k/v/dense/fc1/fc2 biases + one LayerNorm (weight+bias; Phi's block is parallel)
            return self.q_dim + 2 * self.kv_dim + h + self.intermediate_size + h + 2 * h
        if self.family == "gemma":
            # 4 RMSNorms per layer (input, post-attention, pre-/post-feedforward) + q_norm/k_norm over head_dim
            return 4 * h + 2 * self.head_dim
        bias = self.q_dim + 2 * self.kv_dim if self.model_type in ("qwen2", "qwen2_moe") else 0  # Qwen2 qkv bias
        return 2 * h + bias  # input + post-attention RMSNorm

    def language_params(self) -> int:
        """All parameters except the vision tower / projector."""
        final_norm = 2 * self.hidden_size if self.family == "phi" else self.hidden_size
        per_layer = self.linear_params_per_layer() + self._small_params_per_layer()
        return self.embedding_params() + self.lm_head_params() + self.num_layers * per_layer + final_norm

    def params(self) -> int:
        """Total parameter count, derived from the shape (exact for Phi and Gemma 3, ~1% for other families)."""
        return self.language_params() + self.vision_params


def _siglip_vision_params(vc: dict[str, Any]) -> int:
    """SigLIP vision tower parameters (patch conv + position embedding + encoder + post-layernorm)."""
    h = int(vc.get("hidden_size", 768))
    inter = int(vc.get("intermediate_size", 3072))
    layers = int(vc.get("num_hidden_layers", 12))
    image, patch = int(vc.get("image_size", 224)), int(vc.get("patch_size", 16))
    channels = int(vc.get("num_channels", 3))
    n_pos = (image // patch) ** 2
    embeddings = channels * patch * patch * h + h + n_pos * h
    layer = 2 * h + 4 * (h * h + h) + 2 * h + (h * inter + inter) + (inter * h + h)
    total = embeddings + layers * layer + 2 * h  # post_layernorm
    if vc.get("vision_use_head", True):  # attention-pooling head (not used by Gemma 3)
        total += h + 4 * (h * h + h) + 2 * h + (h * inter + inter) + (inter * h + h)
    return total


# transformers' defaults for keys a config.json may omit (Google's gemma-3-4b-it config lists only a few text keys).
_TEXT_DEFAULTS: dict[str, dict[str, Any]] = {
    "gemma3_text": dict(
        vocab_size=262208,
        hidden_size=2304,
        intermediate_size=9216,
        num_hidden_layers=26,
        num_attention_heads=8,
        num_key_value_heads=4,
        head_dim=256,
        tie_word_embeddings=True,
        sliding_window=4096,
    ),
    "phi": dict(
        vocab_size=51200,
        hidden_size=2048,
        intermediate_size=8192,
        num_hidden_layers=24,
        num_attention_heads=32,
        tie_word_embeddings=False,
    ),
    "llama": dict(
        vocab_size=32000,
        hidden_size=4096,
        intermediate_size=11008,
        num_hidden_layers=32,
        num_attention_heads=32,
        tie_word_embeddings=False,
    ),
}
_SIGLIP_DEFAULTS = dict(
    hidden_size=768,
    intermediate_size=3072,
    num_hidden_layers=12,
    num_attention_heads=12,
    image_size=224,
    patch_size=16,
    num_channels=3,
)
# Default of tie_word_embeddings per family when a config omits it (transformers' own class defaults).
_UNTIED_BY_DEFAULT = frozenset({"llama", "mistral", "mixtral", "qwen2", "qwen3", "phi", "phi3", "olmo", "olmo2"})

_ALIASES = {
    "hidden_size": ("hidden_size", "n_embd", "d_model"),
    "num_hidden_layers": ("num_hidden_layers", "n_layer", "num_layers"),
    "num_attention_heads": ("num_attention_heads", "n_head", "num_heads"),
    "num_key_value_heads": ("num_key_value_heads", "num_kv_heads", "multi_query_group_num"),
    "intermediate_size": ("intermediate_size", "n_inner", "ffn_dim"),
    "vocab_size": ("vocab_size", "padded_vocab_size"),
}


def _get(cfg: dict[str, Any], key: str, defaults: dict[str, Any]) -> Any:
    for alias in _ALIASES.get(key, (key,)):
        if cfg.get(alias) is not None:
            return cfg[alias]
    return defaults.get(key)


def architecture_from_config(config: dict[str, Any]) -> Architecture:
    """Build an `Architecture` from a ``config.json`` dict.

    Handles Gemma 3's nested ``text_config``/``vision_config`` (missing keys take transformers' defaults), Phi's
    fields, and Llama/Qwen/Mistral-style generic fields (plus GPT-2 style aliases such as ``n_embd``).
    """
    if not isinstance(config, dict):
        raise TypeError(f"config must be a dict parsed from config.json, got {type(config).__name__}")
    model_type = str(config.get("model_type") or "").lower()
    if not model_type:
        raise ValueError("config.json has no 'model_type'; cannot tell the architecture")

    text = config
    vision_params = 0
    if isinstance(config.get("text_config"), dict) or model_type == "gemma3":
        text = dict(config.get("text_config") or {})
        text.setdefault("model_type", "gemma3_text" if model_type == "gemma3" else model_type)
        vc = config.get("vision_config")
        if vc is not None or model_type == "gemma3":
            vc = {**_SIGLIP_DEFAULTS, **(vc or {})}
            vision_params = _siglip_vision_params(vc)
        text_type = str(text["model_type"]).lower()
    else:
        text_type = model_type

    family_defaults = _TEXT_DEFAULTS.get(text_type, _TEXT_DEFAULTS["gemma3_text"] if text_type in _GEMMA_TYPES else {})
    hidden = _get(text, "hidden_size", family_defaults)
    layers = _get(text, "num_hidden_layers", family_defaults)
    heads = _get(text, "num_attention_heads", family_defaults)
    vocab = _get(text, "vocab_size", family_defaults)
    missing = [
        k
        for k, v in (
            ("hidden_size", hidden),
            ("num_hidden_layers", layers),
            ("num_attention_heads", heads),
            ("vocab_size", vocab),
        )
        if v is None
    ]
    if missing:
        raise ValueError(f"config.json (model_type={model_type!r}) lacks {', '.join(missing)}")
    hidden, layers, heads, vocab = int(hidden), int(layers), int(heads), int(vocab)
    kv = _get(text, "num_key_value_heads", family_defaults)
    kv = int(kv) if kv is not None else heads
    head_dim = text.get("head_dim") or family_defaults.get("head_dim") or hidden // heads
    inter = _get(text, "intermediate_size", family_defaults)
    inter = int(inter) if inter is not None else 4 * hidden
    if "tie_word_embeddings" in text:
        tie = bool(text["tie_word_embeddings"])
    elif text is not config and "tie_word_embeddings" in config:
        tie = bool(config["tie_word_embeddings"])
    else:
        tie = bool(family_defaults.get("tie_word_embeddings", text_type not in _UNTIED_BY_DEFAULT))
    mlp_kind = "plain" if text_type in _PLAIN_MLP_TYPES else "gated"
    window = text.get("sliding_window", family_defaults.get("sliding_window"))
    if text_type not in _GEMMA_TYPES:
        window = None  # only Gemma interleaves sliding-window layers by default
    vision_params += _projector_params(config, text_type, hidden) if vision_params else 0
    return Architecture(
        model_type=model_type,
        hidden_size=hidden,
        num_layers=layers,
        num_heads=heads,
        num_kv_heads=kv,
        head_dim=int(head_dim),
        intermediate_size=inter,
        vocab_size=vocab,
        tie_embeddings=tie,
        vision_params=vision_params,
        mlp_kind=mlp_kind,
        sliding_window=int(window) if window else None,
    )


def _projector_params(config: dict[str, Any], text_type: str, text_hidden: int) -> int:
    vh = int({**_SIGLIP_DEFAULTS, **(config.get("vision_config") or {})}["hidden_size"])
    if text_type in _GEMMA_TYPES:
        return vh * text_hidden + vh  # Gemma3MultiModalProjector: input projection + soft-embedding RMSNorm
    return vh * text_hidden + text_hidden + text_hidden * text_hidden + text_hidden  # generic 2-layer MLP projector


# --------------------------------------------------------------------------------------------------------------------
# Model specs
# --------------------------------------------------------------------------------------------------------------------

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
_GEMMA3_MM_SKIP = ["model.vision_tower", "model.multi_modal_projector", "lm_head"]


@dataclass(frozen=True)
class ModelSpec:
    name: str  # registry key, e.g. "phi-2", "gemma-3-12b-it", "tiny-random-phi"
    hf_id: str | None  # "microsoft/phi-2"; None for tiny local models and local directories
    arch: Architecture
    lora_target_modules: list[str] | str  # list of module names, a regex (PEFT fullmatch), or "all-linear"
    multimodal: bool  # True for Gemma3ForConditionalGeneration checkpoints (4B/12B/27B)
    end_of_turn_token: str | None  # "<end_of_turn>" for Gemma; None for Phi-2 (no chat template)
    allows_fp16: bool  # False for Gemma 3: activations overflow fp16 (NaN / empty output)
    skip_quantization_modules: list[str] = field(default_factory=list)  # llm_int8_skip_modules for 4/8-bit loading
    notes: str = ""


def default_lora_targets(arch: Architecture) -> list[str] | str:
    """LoRA targets for an architecture: Phi's explicit list, the Gemma language-model regex, else "all-linear"."""
    if arch.family == "phi" and arch.model_type == "phi":
        return list(PHI_LORA_TARGETS)
    if arch.family == "gemma":
        return GEMMA3_LORA_TARGET_REGEX
    return "all-linear"


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

# Real checkpoints (values from their config.json; see module docstring).
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


def _spec_for(name: str, hf_id: str | None, arch: Architecture, notes: str = "") -> ModelSpec:
    gemma = arch.family == "gemma"
    multimodal = arch.vision_params > 0
    if gemma and multimodal:
        skip = list(_GEMMA3_MM_SKIP)
    else:
        skip = ["lm_head"]
    return ModelSpec(
        name=name,
        hf_id=hf_id,
        arch=arch,
        lora_target_modules=default_lora_targets(arch),
        multimodal=multimodal,
        end_of_turn_token="<end_of_turn>" if gemma else None,
        allows_fp16=not gemma,
        skip_quantization_modules=skip,
        notes=notes,
    )


_REGISTRY: dict[str, ModelSpec] = {
    "phi-2": _spec_for(
        "phi-2",
        "microsoft/phi-2",
        architecture_from_config(_PHI2_CONFIG),
        "2.78B; no chat template (train on prompt/completion text); fp16 is fine for Phi-2",
    ),
    "gemma-3-1b-it": _spec_for(
        "gemma-3-1b-it",
        "google/gemma-3-1b-it",
        architecture_from_config(_GEMMA3_1B_CONFIG),
        "text-only Gemma3ForCausalLM; bf16 only",
    ),
    "gemma-3-4b-it": _spec_for(
        "gemma-3-4b-it",
        "google/gemma-3-4b-it",
        architecture_from_config(_GEMMA3_4B_CONFIG),
        "multimodal Gemma3ForConditionalGeneration (SigLIP 0.42B); bf16 only",
    ),
    "gemma-3-12b-it": _spec_for(
        "gemma-3-12b-it",
        "google/gemma-3-12b-it",
        architecture_from_config(_GEMMA3_12B_CONFIG),
        "multimodal Gemma3ForConditionalGeneration (SigLIP 0.42B); bf16 only",
    ),
}
for _name, _cfg in TINY_CONFIGS.items():
    _REGISTRY[_name] = _spec_for(
        _name,
        None,
        architecture_from_config(_cfg),
        f"tiny random model for CPU tests; vocab_size {TINY_VOCAB_SIZE} is a placeholder "
        "until the tokenizer is trained",
    )


def known_models() -> list[str]:
    """Registry keys, in registration order."""
    return list(_REGISTRY)


def _copy(spec: ModelSpec, **changes: Any) -> ModelSpec:
    targets = spec.lora_target_modules
    return replace(
        spec,
        lora_target_modules=list(targets) if isinstance(targets, list) else targets,
        skip_quantization_modules=list(spec.skip_quantization_modules),
        **changes,
    )


def _hub_cache_dir() -> str:
    """The hub cache directory as the environment says *now* (huggingface_hub reads it once, at import)."""
    if os.environ.get("HF_HUB_CACHE"):
        return os.path.expanduser(os.environ["HF_HUB_CACHE"])
    if os.environ.get("HUGGINGFACE_HUB_CACHE"):
        return os.path.expanduser(os.environ["HUGGINGFACE_HUB_CACHE"])
    if os.environ.get("HF_HOME"):
        return os.path.join(os.path.expanduser(os.environ["HF_HOME"]), "hub")
    xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(xdg, "huggingface", "hub")


def _hub_offline() -> bool:
    """HF_HUB_OFFLINE (or TRANSFORMERS_OFFLINE) as huggingface_hub interprets it, read at call time."""
    value = os.environ.get("HF_HUB_OFFLINE") or os.environ.get("TRANSFORMERS_OFFLINE") or ""
    return value.strip().upper() in ("1", "ON", "YES", "TRUE")


def _hf_cache_config(repo_id: str) -> Path | None:
    """config.json of a repo already in a local Hugging Face cache (no network), newest snapshot first.

    Also finds snapshots without a ``refs/main`` file (copied caches), which huggingface_hub's own lookup skips.
    """
    roots = [_hub_cache_dir(), os.path.join(os.path.expanduser("~"), ".cache", "huggingface", "hub")]
    folder = "models--" + repo_id.replace("/", "--")
    for root in dict.fromkeys(roots):
        snapshots = Path(root) / folder / "snapshots"
        if snapshots.is_dir():
            found = sorted(snapshots.glob("*/config.json"), key=lambda p: p.stat().st_mtime, reverse=True)
            if found:
                return found[0]
    return None


def _hub_config(repo_id: str) -> Path:
    """config.json of a Hugging Face repo: from the local cache, else downloaded (only that file, a few kB).

    Honours HF_HUB_OFFLINE: offline, a repo that is not cached is a ValueError saying how to get it. Any hub error
    (unknown or gated repo, no network) is a ValueError too.
    """
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import GatedRepoError, HfHubHTTPError, LocalEntryNotFoundError, RepositoryNotFoundError

    cache_dir = _hub_cache_dir()
    try:  # the cache first: no network round trip for a model that is already here
        return Path(hf_hub_download(repo_id, "config.json", cache_dir=cache_dir, local_files_only=True))
    except (LocalEntryNotFoundError, OSError, ValueError):
        pass
    copied = _hf_cache_config(repo_id)
    if copied is not None:
        return copied
    if _hub_offline():
        raise ValueError(
            f"model {repo_id!r} is not in the local Hugging Face cache ({cache_dir}) and HF_HUB_OFFLINE is set, so "
            "its config.json cannot be downloaded. Run once online (unset HF_HUB_OFFLINE) to cache it, pass a local "
            "model directory instead, or plan with `slm plan CONFIG --model-config path/to/config.json`"
        )
    try:
        return Path(hf_hub_download(repo_id, "config.json", cache_dir=cache_dir, etag_timeout=10))
    except GatedRepoError:
        raise ValueError(
            f"{repo_id!r} is a gated model on the Hugging Face Hub: accept its license on the model page and set "
            "HF_TOKEN to a token of that account"
        ) from None
    except RepositoryNotFoundError:
        raise ValueError(f"{repo_id!r} was not found on the Hugging Face Hub (a private repo needs HF_TOKEN)") from None
    except (HfHubHTTPError, LocalEntryNotFoundError, OSError) as exc:  # no network, hub down, no config.json
        raise ValueError(
            f"cannot fetch config.json of {repo_id!r} from the Hugging Face Hub ({type(exc).__name__}: "
            f"{str(exc).splitlines()[0][:200] if str(exc) else 'no detail'}); check the id and the network, or pass a "
            "local model directory"
        ) from None


def _spec_from_config_file(path: Path, name: str, hf_id: str | None) -> ModelSpec:
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"cannot read {path}: {exc}") from exc
    arch = architecture_from_config(config)
    notes = f"read from {path}"
    if default_lora_targets(arch) == "all-linear":
        notes += "; unknown architecture: LoRA targets 'all-linear', generic facts"
    return _spec_for(name, hf_id, arch, notes)


def get_model_spec(name_or_path: str | os.PathLike[str]) -> ModelSpec:
    """Look up a model by registry key, Hugging Face id, or local directory (or file) with ``config.json``.

    A Hugging Face id outside the registry (``owner/name``, e.g. ``Qwen/Qwen2.5-0.5B-Instruct``) is resolved from its
    ``config.json``: the local HF cache first, else downloaded with ``huggingface_hub`` (that one file only); its
    architecture is read from the config and LoRA targets ``all-linear`` (or the family's list). With
    HF_HUB_OFFLINE set and nothing cached, a ValueError says how to fix it. Other unknown names are a ValueError
    naming the known keys.
    """
    raw = os.fspath(name_or_path).strip()
    key = raw.lower()
    if key in _REGISTRY:
        return _copy(_REGISTRY[key])
    for spec in _REGISTRY.values():
        if spec.hf_id and spec.hf_id.lower() == key:
            return _copy(spec)
    path = Path(raw).expanduser()
    if path.is_dir():
        cfg = path / "config.json"
        if not cfg.is_file():
            raise ValueError(f"{path} is a directory but has no config.json; is it a saved model?")
        return _spec_from_config_file(cfg, path.resolve().name, None)
    if path.is_file() and path.name == "config.json":
        return _spec_from_config_file(path, path.resolve().parent.name, None)
    known = ", ".join(known_models())
    hf_ids = ", ".join(s.hf_id for s in _REGISTRY.values() if s.hf_id)
    if re.fullmatch(r"[\w.-]+/[\w.-]+", raw) and not path.exists():
        try:
            config = _hub_config(raw)
        except ValueError as exc:
            raise ValueError(f"{exc}. (Registry keys: {known}.)") from None
        return _spec_from_config_file(config, raw.split("/")[-1], raw)
    raise ValueError(
        f"unknown model {raw!r}. Known registry keys: {known} (or their ids: {hf_ids}); "
        "or pass a Hugging Face id (owner/name) or a local directory containing config.json."
    )


# --------------------------------------------------------------------------------------------------------------------
# dtype rules
# --------------------------------------------------------------------------------------------------------------------

_DTYPE_ALIASES = {
    "auto": "auto",
    "bf16": "bf16",
    "bfloat16": "bf16",
    "fp16": "fp16",
    "float16": "fp16",
    "half": "fp16",
    "fp32": "fp32",
    "float32": "fp32",
    "float": "fp32",
}


def choose_dtype(
    spec: ModelSpec,
    device: str,
    bf16_supported: bool,
    requested: str = "auto",
    allow_fp32_fallback: bool = False,
) -> str:
    """Pick the training dtype: "bf16", "fp16" or "fp32".

    Rules (in order):
      * fp16 for a model that does not allow it (Gemma 3) → ValueError, on any device.
      * CPU / non-CUDA device → "fp32" (TRL cannot train bf16 on CPU); an explicit bf16/fp16 there → ValueError.
      * CUDA: "auto" → bf16 when supported (Ampere+), else fp16 if the model allows it, else (Gemma on a pre-Ampere
        GPU) ValueError unless ``allow_fp32_fallback`` (then "fp32": slow and twice the weight memory).
        An explicit "bf16" on a GPU without bf16 → same fallback rule.
    """
    req = _DTYPE_ALIASES.get(str(requested).strip().lower())
    if req is None:
        raise ValueError(f"unknown dtype {requested!r}; use one of auto, bf16, fp16, fp32")
    name = spec.name
    if req == "fp16" and not spec.allows_fp16:
        raise ValueError(
            f"{name} cannot train in fp16: Gemma 3 activations overflow fp16 (NaN loss / empty generations). "
            "Use bf16 on an Ampere-or-newer GPU (A100, A40, A6000, L4, L40S, RTX 30xx/40xx, H100) or fp32."
        )
    dev = str(device).strip().lower()
    if not dev.startswith("cuda"):
        if req in ("bf16", "fp16"):
            raise ValueError(
                f"dtype {req} was requested on device {device!r}; use dtype 'auto' or 'fp32' off-GPU "
                "(TRL cannot train in bf16/fp16 on CPU)"
            )
        return "fp32"
    if req == "fp32":
        return "fp32"
    if req == "fp16":
        return "fp16"
    if bf16_supported:
        return "bf16"
    # CUDA without bf16 (pre-Ampere: T4, V100, RTX 20xx)
    if req == "auto" and spec.allows_fp16:
        return "fp16"
    if allow_fp32_fallback:
        return "fp32"
    hint = "pass dtype 'fp16' or 'auto'" if spec.allows_fp16 else "Gemma 3 cannot use fp16 (activations overflow)"
    raise ValueError(
        f"this GPU has no bf16 support (pre-Ampere) and {name} was asked to train in {req}: {hint}; "
        "use an Ampere-or-newer GPU, or allow the fp32 fallback (allow_fp32_fallback=True; ~2x memory, slower)."
    )
