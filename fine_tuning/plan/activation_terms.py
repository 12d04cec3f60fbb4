"""Activations saved for backward, derived from the decoder layer's modules, and the loss head (`fine_tuning.plan`).

Pure Python (no torch). A layer's saved bytes per token are the sum of what each of its modules keeps for backward
(storage counted once when two ops save the same tensor), with frozen base weights (a frozen linear saves nothing:
its input gradient needs only the weight):
  norm            RMSNorm computes on an fp32 copy of its input and saves it: 4h; LayerNorm under bf16 autocast
                  (layer_norm runs in fp32) the same; LayerNorm in pure bf16 (LitGPT's bf16-true) its bf16 input: 2h
  q/k norm        Gemma 3 / Qwen 3: fp32 copies of q and k: 4q + 4kv
  attention       SDPA / flash-attention save the roped q, k, v and the output: 4q + 4kv (eager adds the fp32
                  softmax and its bf16 copy per head per attended position)
  MLP             gated (gate/up/down): activation input + activation output + up = 2i + 2i + 2i;
                  plain (fc1/fc2): the activation's saves alone. An activation with a fused kernel (silu, gelu,
                  gelu_pytorch_tanh) saves its input, 2i; HF's NewGELUActivation ("gelu_new", "gelu_fast") is built
                  from pow/tanh/mul and saves four tensors, 8i
  LoRA            per wrapped projection, the bf16 copy of its input that lora_A saves (2 x in_features), + 1 byte
                  per element for the dropout mask when lora_dropout > 0; LitGPT's fused qkv applies one dropout
                  and one lora_A to q/k/v together, so its copy is counted once
  old bitsandbytes  (<= 0.43: LitGPT's, Unsloth's and the QLoRA paper's runs) 4-bit layers saved their inputs:
                  the attention input, o's input, the MLP input (shared with attention under a parallel residual)
                  and down's input: 2h + 2q + 2h + 2i
  fp32 upcast     prepare_model_for_kbit_training makes the residual stream fp32: +4h per norm + 8h
Validated against storage counts on CPU (bench/memory.py; transformers 5, bf16 autocast): Llama-shaped 8h+4q+4kv+6i,
Gemma-3-shaped 16h+8q+8kv+6i, Phi-2-shaped 10h+8i measured where this derives 12h+8i (+5 % of a layer).
"""

from __future__ import annotations

from dataclasses import dataclass

from fine_tuning.plan.architecture import Architecture
from fine_tuning.plan.memory_terms import GIB, MemoryLine, MemorySetup

# Peak of one recomputed layer (its saved tensors + backward temporaries) / its saved tensors (measured, HF).
CKPT_RECOMPUTE_FACTOR = 1.45
NO_CKPT_TRANSIENT_FACTOR = 0.5  # backward temporaries of the last layer on top of all saved activations (measured)
FULL_LOGITS_BYTES = 14  # HF loss: bf16 logits + fp32 upcast + fp32 log-softmax + its gradient, per token per vocab
CHUNKED_LOGITS_BYTES = 4  # LitGPT: bf16 logits (lm_head in 128-token chunks) + bf16 log-softmax, all kept
COMPOSITE_ACTS = frozenset({"gelu_new", "gelu_fast", "gelu_python", "quick_gelu"})


def sliding_layers(arch: Architecture) -> int:
    """Decoder layers with sliding-window (local) attention."""
    if arch.sliding_window is None:
        return 0
    if arch.model_type == "gemma2":
        return arch.num_layers // 2
    return arch.num_layers - max(1, arch.num_layers // 6)  # Gemma 3: 5 local layers per global layer


def layer_terms(arch: Architecture, s: MemorySetup) -> dict[str, float]:
    """Saved bytes per token of one decoder layer, by module, at 2-byte compute (module docstring)."""
    h, q, kv, i = arch.hidden_size, arch.q_dim, arch.kv_dim, arch.intermediate_size
    pure_bf16 = s.impl == "litgpt"  # bf16-true: no autocast, LayerNorm saves its bf16 input
    norm_bytes = 2 if (arch.norm_kind == "layer" and pure_bf16) else 4
    act = 8 if (arch.hidden_act in COMPOSITE_ACTS and not pure_bf16) else 2  # LitGPT's GELU is F.gelu
    terms = {
        "norms": float(arch.norms_per_layer * norm_bytes * h),
        "qk_norm": float(4 * q + 4 * kv) if arch.qk_norm else 0.0,
        "attention": float(4 * q + 4 * kv),
        "mlp": float(act * i + (4 * i if arch.mlp_kind == "gated" else 0)),
    }
    if s.impl == "litgpt":  # v stays a view of the fused qkv output, which keeps the whole qkv storage alive
        terms["attention"] += 2 * (q + kv)
    projs = arch.projections()
    per_in = 2 + (1 if s.lora_dropout > 0 else 0)
    targets = [p for p in s.lora_targets if p in projs]
    if s.impl == "litgpt" and any(p in ("q", "k", "v") for p in targets):
        targets = ["qkv", *[p for p in targets if p not in ("q", "k", "v")]]
    terms["lora"] = float(sum((h if p == "qkv" else projs[p][0]) * per_in for p in targets))
    if s.quantized and s.bnb_saves_inputs:
        terms["quantized_inputs"] = float(2 * h + 2 * q + (0 if arch.parallel_residual else 2 * h) + 2 * i)
    if s.upcast_frozen_fp32:
        terms["fp32_upcast"] = float(4 * h * arch.norms_per_layer + 8 * h)
    if s.method == "full":  # trainable weights: each linear saves its input for the weight gradient
        saved_inputs = 2 * h + 2 * q + (0 if arch.parallel_residual else 2 * h) + 2 * i
        terms["weight_grad_inputs"] = float(saved_inputs)
    return terms


def layer_bytes_per_token(arch: Architecture, s: MemorySetup) -> float:
    total = sum(layer_terms(arch, s).values()) * s.compute_bytes / 2
    if s.attn_impl == "eager":  # fp32 softmax output + its bf16 copy, per head per attended position
        total += 6 * arch.num_heads * s.seq_len
    return float(total)


@dataclass(frozen=True)
class ActivationProfile:
    """What the activations term and the backward peak share: saved bytes, the largest transient, their names."""

    layer_bytes_per_token: float  # activations one decoder layer saves per token
    saved: float  # bytes held through backward
    transient: float  # bytes of the largest backward temporary (recomputed layer, or the last layer's)
    explanation: str
    transient_name: str


def _mask_bytes(arch: Architecture, s: MemorySetup) -> tuple[int, float]:
    """SDPA with a mask (Gemma's sliding layers beyond the window; padded unpacked batches) runs the memory-efficient
    kernel, which converts the bool mask to a float bias per call and keeps it for backward: (layers, bytes each)."""
    layers = 0
    if s.attn_impl == "sdpa" and s.impl == "hf":
        if not s.packing and s.micro_batch > 1:
            layers = arch.num_layers
        elif arch.sliding_window is not None and s.seq_len > arch.sliding_window:
            layers = sliding_layers(arch)
    return layers, float(s.micro_batch * s.seq_len * s.seq_len * s.compute_bytes)


def activation_profile(arch: Architecture, s: MemorySetup) -> ActivationProfile:
    cb, T, L, h = s.compute_bytes, s.tokens, arch.num_layers, arch.hidden_size
    upcast = s.upcast_frozen_fp32
    S = layer_bytes_per_token(arch, s)
    outside = (8 if upcast else 6) * h * cb / 2  # embedding output + final-norm input, per token
    mask_layers, mask_bytes = _mask_bytes(arch, s)
    knob = "train.activation_checkpointing"
    if s.gradient_checkpointing:
        per_layer_saved = (2.25 * h * (2 if upcast else 1)) * cb / 2  # the checkpointed layer input
        saved = L * per_layer_saved * T + outside * T
        transient = CKPT_RECOMPUTE_FACTOR * S * T + (mask_bytes if mask_layers else 0)
        expl = (
            f"{knob}=true: checkpointed layer inputs {L} layers x {per_layer_saved / h:.2f}h B x {T} tokens "
            f"(train.max_length x train.micro_batch_size; + embeddings/final norm)"
        )
        return ActivationProfile(S, saved, transient, expl, "recomputing one layer")
    saved = L * S * T + outside * T + mask_layers * mask_bytes
    transient = NO_CKPT_TRANSIENT_FACTOR * S * T
    expl = (
        f"{knob}=false: all layers keep activations, {L} x {S / 1e3:.0f} kB/token x {T} tokens "
        "(train.max_length x train.micro_batch_size)"
        + (f" + {mask_layers} float attention masks" if mask_layers else "")
    )
    return ActivationProfile(S, saved, transient, expl, "backward temporaries of the last layer")


def activations_term(profile: ActivationProfile) -> MemoryLine:
    return MemoryLine("activations", profile.saved / GIB, profile.explanation)


def loss_head_bytes(arch: Architecture, s: MemorySetup) -> tuple[float, str]:
    """Bytes of the loss head at its peak and its description (plan.loss_head)."""
    cb, T, V = s.compute_bytes, s.tokens, arch.vocab_size
    if s.loss_impl == "full":
        head = (FULL_LOGITS_BYTES if cb == 2 else 16) * V * T
        return head, f"plan.loss_head=full: [{T} tokens x {V} vocab] logits, upcast to fp32 for the loss"
    if s.loss_impl == "chunked":
        head = (CHUNKED_LOGITS_BYTES * cb / 2) * V * T + 8 * V * min(T, 128)
        return head, f"plan.loss_head=chunked: bf16 [{T} x {V}] logits kept, fp32 loss per 128-token chunk"
    head = (6 * arch.hidden_size * cb / 2 + 32) * T
    return head, "plan.loss_head=fused: TRL's tiled LM head (what `slm train` runs), no full logits"


def backward_peak_term(arch: Architecture, s: MemorySetup, profile: ActivationProfile) -> MemoryLine:
    """The larger of the loss head and the largest backward temporary."""
    head, head_name = loss_head_bytes(arch, s)
    if head > profile.transient:
        return MemoryLine("backward_peak", head / GIB, f"{head_name}; larger than {profile.transient_name}")
    return MemoryLine(
        "backward_peak",
        profile.transient / GIB,
        f"{profile.transient_name} ({profile.layer_bytes_per_token / 1e3:.0f} kB/token/layer); "
        f"larger than the loss head ({head_name})",
    )
