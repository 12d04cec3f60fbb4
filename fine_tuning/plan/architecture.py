"""The shape of a checkpoint, read from its ``config.json``: `Architecture` and `architecture_from_config`.

Pure Python (no torch, no transformers). ``Architecture.params()`` derives the total parameter count (checked in
tests against transformers-instantiated counts and the published model cards). Keys a ``config.json`` may leave out
(Google's Gemma 3 4B/12B configs list only a few text keys) take transformers' own ``Gemma3TextConfig`` /
``SiglipVisionConfig`` / family defaults — exactly what ``AutoConfig`` does.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fine_tuning.plan.config_quirks import apply_config_quirks, layer_modules, prequantization

__all__ = ["GEMMA_TYPES", "Architecture", "architecture_from_config"]

GEMMA_TYPES = frozenset({"gemma", "gemma2", "gemma3", "gemma3_text"})
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
    # The decoder layer's modules, for the activation terms (`fine_tuning.plan.activation_terms`):
    norm_kind: str = "rms"  # "rms" (RMSNorm: always computed on an fp32 copy) or "layer" (LayerNorm)
    norms_per_layer: int = 2  # Llama 2, Gemma 2/3 4, Phi 1, GPT-NeoX 2, Falcon 1 or 2
    qk_norm: bool = False  # RMSNorm over each head's q and k (Gemma 3, Qwen 3, OLMo 2)
    parallel_residual: bool = False  # attention and MLP read the same normed input (Phi, GPT-NeoX, Falcon)
    hidden_act: str = "silu"  # as config.json names it: decides what the activation function saves
    # A checkpoint stored quantized (config.json's quantization_config): "gptq" | "awq" | "bnb-4bit" | "bnb-8bit"
    prequantized: str | None = None
    quant_bits: int = 16
    quant_group_size: int = 128

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
        if self.model_type in GEMMA_TYPES:
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

    family_defaults = _TEXT_DEFAULTS.get(text_type, _TEXT_DEFAULTS["gemma3_text"] if text_type in GEMMA_TYPES else {})
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
    if text_type not in GEMMA_TYPES:
        window = None  # only Gemma interleaves sliding-window layers by default
    vision_params += _projector_params(config, text_type, hidden) if vision_params else 0
    kv, inter = apply_config_quirks(text_type, text, heads=heads, kv=kv, intermediate=inter, hidden=hidden)
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
        **layer_modules(text_type, text),
        **prequantization(config),
    )


def _projector_params(config: dict[str, Any], text_type: str, text_hidden: int) -> int:
    vh = int({**_SIGLIP_DEFAULTS, **(config.get("vision_config") or {})}["hidden_size"])
    if text_type in GEMMA_TYPES:
        return vh * text_hidden + vh  # Gemma3MultiModalProjector: input projection + soft-embedding RMSNorm
    return vh * text_hidden + text_hidden + text_hidden * text_hidden + text_hidden  # generic 2-layer MLP projector
