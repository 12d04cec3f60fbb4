"""What a raw ``config.json`` does not say plainly: per-family quirks, the decoder layer's modules, and a stored
quantization. Pure Python (no torch); `fine_tuning.plan.architecture.architecture_from_config` applies them.

Each quirk is a fact of the family's transformers modelling code (or its remote code), with a test in
tests/test_plan.py:
  * qwen (Qwen-1, remote code): ``intermediate_size`` is twice the MLP width (QWenMLP builds w1/w2 with
    ``intermediate_size // 2`` and c_proj from it).
  * falcon: no ``intermediate_size``; the MLP is ``ffn_hidden_size`` (default 4 x hidden); ``multi_query`` without
    ``new_decoder_architecture`` means one KV head; ``num_kv_heads`` otherwise.
  * mpt: the MLP width is ``expansion_ratio`` x d_model (default 4).
  * gpt_bigcode (StarCoder 1): ``multi_query`` (default true) means one KV head.
"""

from __future__ import annotations

from typing import Any

__all__ = ["apply_config_quirks", "layer_modules", "prequantization"]


def apply_config_quirks(
    model_type: str, cfg: dict[str, Any], *, heads: int, kv: int, intermediate: int, hidden: int
) -> tuple[int, int]:
    """(num_kv_heads, MLP width) after the family's quirks (module docstring)."""
    if model_type == "qwen":
        return kv, intermediate // 2
    if model_type == "falcon":
        width = int(cfg.get("ffn_hidden_size") or 4 * hidden)
        if cfg.get("new_decoder_architecture"):
            kv = int(cfg.get("num_kv_heads") or heads)
        elif cfg.get("multi_query", True):
            kv = 1
        return kv, width
    if model_type == "mpt":
        ratio = (cfg.get("ffn_config") or {}).get("expansion_ratio") or cfg.get("expansion_ratio") or 4
        return kv, int(ratio * hidden)
    if model_type == "gpt_bigcode" and cfg.get("multi_query", True):
        return 1, intermediate
    return kv, intermediate


# The decoder layer's modules per family, as the Hugging Face implementations build them (transformers 5).
# norm: "rms" | "layer"; norms per layer; q/k norms; parallel residual; the config key of the activation function.
_MODULES: dict[str, dict[str, Any]] = {
    "gemma": dict(norm_kind="rms", norms_per_layer=2, hidden_act="gelu_pytorch_tanh"),
    "gemma2": dict(norm_kind="rms", norms_per_layer=4, hidden_act="gelu_pytorch_tanh"),
    "gemma3": dict(norm_kind="rms", norms_per_layer=4, qk_norm=True, hidden_act="gelu_pytorch_tanh"),
    "gemma3_text": dict(norm_kind="rms", norms_per_layer=4, qk_norm=True, hidden_act="gelu_pytorch_tanh"),
    "phi": dict(norm_kind="layer", norms_per_layer=1, parallel_residual=True, hidden_act="gelu_new"),
    "gpt_neox": dict(norm_kind="layer", norms_per_layer=2, parallel_residual=True, hidden_act="gelu"),
    "gptj": dict(norm_kind="layer", norms_per_layer=1, parallel_residual=True, hidden_act="gelu_new"),
    "gpt2": dict(norm_kind="layer", norms_per_layer=2, hidden_act="gelu_new"),
    "stablelm": dict(norm_kind="layer", norms_per_layer=2, hidden_act="silu"),
    "falcon": dict(norm_kind="layer", norms_per_layer=1, parallel_residual=True, hidden_act="gelu"),
    "qwen3": dict(norm_kind="rms", norms_per_layer=2, qk_norm=True, hidden_act="silu"),
    "olmo2": dict(norm_kind="rms", norms_per_layer=2, qk_norm=True, hidden_act="silu"),
    "starcoder2": dict(norm_kind="layer", norms_per_layer=2, hidden_act="gelu_pytorch_tanh"),
}
_ACT_KEYS = ("hidden_act", "hidden_activation", "activation_function")


def layer_modules(model_type: str, cfg: dict[str, Any]) -> dict[str, Any]:
    """The `Architecture` fields that describe one decoder layer's modules, from the family and the config's keys."""
    out: dict[str, Any] = dict(norm_kind="rms", norms_per_layer=2, qk_norm=False, parallel_residual=False)
    out["hidden_act"] = "silu"
    out.update(_MODULES.get(model_type, {}))
    # GemmaMLP uses gelu_pytorch_tanh whatever Gemma 1's hidden_act says (transformers warns and overrides it)
    keys = () if model_type.startswith("gemma") else _ACT_KEYS
    for key in keys:
        if cfg.get(key):
            out["hidden_act"] = str(cfg[key])
            break
    if "use_parallel_residual" in cfg:  # GPT-NeoX, StableLM
        out["parallel_residual"] = bool(cfg["use_parallel_residual"])
    if model_type == "falcon":
        out["parallel_residual"] = bool(cfg.get("parallel_attn", True))
        out["norms_per_layer"] = 2 if cfg.get("new_decoder_architecture") else 1
    if cfg.get("qk_layernorm") or cfg.get("use_qk_norm"):
        out["qk_norm"] = True
    return out


def prequantization(config: dict[str, Any]) -> dict[str, Any]:
    """`prequantized`, `quant_bits`, `quant_group_size` from a checkpoint's ``quantization_config`` (GPTQ, AWQ, a
    saved bitsandbytes 4/8-bit model); {} for a checkpoint stored in 16/32 bits."""
    qc = config.get("quantization_config")
    if not isinstance(qc, dict):
        return {}
    method = str(qc.get("quant_method", "")).lower()
    if method in ("gptq", "awq"):
        bits = int(qc.get("bits", qc.get("w_bit", 4)))
        group = int(qc.get("group_size", qc.get("q_group_size", 128)))
        return {"prequantized": method, "quant_bits": bits, "quant_group_size": group}
    if method == "bitsandbytes":
        if qc.get("load_in_4bit") or qc.get("_load_in_4bit"):
            return {"prequantized": "bnb-4bit", "quant_bits": 4, "quant_group_size": 64}
        if qc.get("load_in_8bit") or qc.get("_load_in_8bit"):
            return {"prequantized": "bnb-8bit", "quant_bits": 8, "quant_group_size": 0}
    raise ValueError(
        f"config.json quantization_config.quant_method={method!r} is not one the planner models "
        "(gptq, awq, bitsandbytes); plan the unquantized checkpoint instead"
    )
