"""The terms of the peak-memory estimate, one function each, and the tables they use (`fine_tuning.plan.memory`).

Pure Python (no torch). Each term takes the architecture and the resolved `MemorySetup` and returns one
`MemoryLine` (GiB, with the arithmetic spelled out for `slm plan`): weights, lora_params, gradients,
optimizer_states, activations, backward_peak, workspace, cuda_overhead.

How the memory model was built (see tests/test_plan.py for the validation table against published runs):
  * Saved activations per token per decoder layer were *measured* for the Hugging Face implementations
    (transformers 5.23, peft 0.21, bitsandbytes 0.50, torch 2.13, bf16 autocast) by counting live tensor storage
    with a TorchDispatchMode during forward+backward of 1- and 2-layer models with the real hidden sizes of
    Llama-2-7B, Llama-3-8B, Gemma-3-1B/12B and Phi-2; the per-layer difference is fitted by the per-family
    formulas in `_layer_bytes_per_token` (within 5% of the measurements).
  * The loss head: TRL's SFTTrainer (1.16, the version pinned here) computes log-probs with a fused, tiled LM head
    (`add_fused_lm_head`; never builds the [tokens, vocab] logits); plain transformers `ForCausalLMLoss` builds them and upcasts to fp32 — measured peak
    14 bytes x vocab per token. With Gemma's 262k vocabulary that is 7 GiB at 2048 tokens, so the choice matters.
  * bitsandbytes 0.50 no longer saves the input of 4-bit layers for backward; 2023 versions (0.41, used by the
    LitGPT and QLoRA numbers) did — `bnb_saves_inputs=True` reproduces them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from fine_tuning.plan.architecture import Architecture

GIB = 2**30
NF4_BYTES = 0.5 + 4 / 64  # 4-bit codes + one fp32 absmax per 64-weight block
NF4_DQ_BYTES = 0.5 + 1 / 64 + 4 / (64 * 256)  # double quantization: 8-bit absmax + fp32 per 256 blocks
CUDA_CONTEXT_GB = 0.5  # CUDA context + cuBLAS/cuDNN handles (not in torch.cuda.max_memory_allocated)
ALLOCATOR_OVERHEAD = 0.07  # caching-allocator fragmentation: reserved vs allocated
FUSED_HEAD_TOKEN_TILE = 4096  # TRL chunked_logprob TOKEN_CHUNK_SIZE
FUSED_HEAD_VOCAB_TILE = 32768  # TRL _CHUNKED_LOGPROB_CHUNK_SIZE
FULL_LOGITS_BYTES = 14  # measured: bf16 logits + fp32 upcast/log-softmax + its gradient, per token per vocab entry
CKPT_RECOMPUTE_FACTOR = 1.45  # measured: peak of one recomputed layer (saved + backward temporaries) / its activations
NO_CKPT_TRANSIENT_FACTOR = 0.5  # measured: backward temporaries of the last layer on top of all saved activations

OPTIMIZER_STATES: dict[str, tuple[float | None, bool]] = {
    # name: (state bytes per trainable param; None = 2 x param bytes (torch keeps states in the param dtype), paged)
    "adamw": (None, False),
    "adamw_torch": (None, False),
    "adamw_torch_fused": (None, False),
    "adamw_hf": (None, False),
    "adamw_8bit": (2.0, False),
    "adamw_bnb_8bit": (2.0, False),
    "paged_adamw_8bit": (2.0, True),
    "paged_adamw_32bit": (8.0, True),
    "paged_adamw": (8.0, True),
    "lion_8bit": (1.0, False),
    "paged_lion_8bit": (1.0, True),
    "lion_32bit": (4.0, False),
    "adafactor": (0.4, False),
    "sgd": (0.0, False),
}

# Optimizer names the memory model knows (transformers' TrainingArguments.optim names, plus "adamw").
PLANNED_OPTIMIZERS = frozenset(OPTIMIZER_STATES)

# Spellings of the quantization argument → "none" | "4bit" | "8bit".
QUANTIZATION_NAMES = {
    "none": "none",
    "no": "none",
    "bf16": "none",
    "16bit": "none",
    "4bit": "4bit",
    "nf4": "4bit",
    "qlora": "4bit",
    "8bit": "8bit",
    "int8": "8bit",
}
DTYPE_BYTES = {"bf16": 2, "fp16": 2, "fp32": 4, "bfloat16": 2, "float16": 2, "float32": 4}


@dataclass(frozen=True)
class MemoryLine:
    name: str
    gb: float
    explanation: str


@dataclass(frozen=True)
class MemorySetup:
    """`estimate_memory`'s arguments, checked and resolved (lower-case names, LoRA targets as projections)."""

    model: str
    quantization: str  # "none" | "8bit" | "4bit"
    dtype: str  # frozen weight and compute dtype
    lora_r: int
    lora_targets: tuple[str, ...]  # q, k, v, o, gate, up, down
    seq_len: int
    micro_batch: int
    gradient_checkpointing: bool
    optimizer: str
    packing: bool
    lora_dropout: float
    adapter_dtype: str
    upcast_frozen_fp32: bool
    double_quant: bool
    vision_params: int  # 0 when the vision tower is not loaded (or there is none)
    attn_impl: str
    loss_impl: str
    bnb_saves_inputs: bool

    @property
    def quantized(self) -> bool:
        return self.quantization != "none"

    @property
    def compute_bytes(self) -> int:
        """Bytes of a frozen weight, and of an activation in the compute dtype."""
        return DTYPE_BYTES[self.dtype]

    @property
    def adapter_bytes(self) -> int:
        """Bytes of an adapter parameter: adapters are at least as wide as compute."""
        return max(DTYPE_BYTES[self.adapter_dtype], self.compute_bytes)

    @property
    def tokens(self) -> int:
        """Tokens of one micro-batch."""
        return self.seq_len * self.micro_batch


def _n(count: float) -> str:
    """Human count: 139.9k, 65.5M, 12.19B."""
    if count >= 1e9:
        return f"{count / 1e9:.2f}B"
    if count >= 1e6:
        return f"{count / 1e6:.1f}M"
    return f"{count / 1e3:.1f}k"


def sliding_layers(arch: Architecture) -> int:
    """Decoder layers with sliding-window (local) attention."""
    if arch.sliding_window is None:
        return 0
    if arch.model_type == "gemma2":
        return arch.num_layers // 2
    return arch.num_layers - max(1, arch.num_layers // 6)  # Gemma 3: 5 local layers per global layer


def _layer_bytes_per_token(
    arch: Architecture,
    targets: Sequence[str],
    *,
    lora_dropout: float,
    upcast: bool,
    old_bnb: bool,
    compute_bytes: int,
    attn_impl: str,
    seq_len: int,
) -> float:
    """Activations saved for backward by one decoder layer, per token (bytes).

    Base terms (bf16 autocast, frozen weights: frozen linears save no inputs), measured on transformers 5.23:
      llama : 2 RMSNorm fp32 inputs 8h, roped q/k + v + SDPA output 4q+4kv, SiLU-gated MLP 6i
      gemma : 4 RMSNorms 16h, q_norm/k_norm fp32 + roped q/k + v + output 8q+8kv, GELU-gated MLP 6i
      phi   : fp32 LayerNorm, partial-rotary q/k, tanh-GELU MLP: fitted 10h + 8i
    LoRA (PEFT casts the input to the fp32 adapter dtype; autocast makes a bf16 copy that lora_A saves): 2 bytes x
    in_features per wrapped projection, +1 for the bool dropout mask when lora_dropout > 0 (CUDA).
    fp32 upcast of the non-quantized weights (prepare_model_for_kbit_training) makes the residual stream and norm
    outputs fp32: measured +16h (llama) / +24h (gemma) per token per layer.
    """
    h, q, kv, i = arch.hidden_size, arch.q_dim, arch.kv_dim, arch.intermediate_size
    fam = arch.family
    if fam == "gemma":
        base, upc, bnb_in = 16 * h + 8 * q + 8 * kv + 6 * i, 24 * h, 4 * h + 2 * q + 2 * i
    elif fam == "phi":
        base, upc, bnb_in = 10 * h + 8 * i, 8 * h, 10 * h + 2 * i
    else:
        base, upc, bnb_in = 8 * h + 4 * q + 4 * kv + 6 * i, 16 * h, 4 * h + 2 * q + 2 * i
    projs = arch.projections()
    lora = sum(projs[p][0] for p in targets) * (2 + (1 if lora_dropout > 0 else 0))
    total = base + lora + (upc if upcast else 0) + (bnb_in if old_bnb else 0)
    total *= compute_bytes / 2
    if attn_impl == "eager":  # fp32 softmax output + its bf16 copy, per head per attended position
        total += 6 * arch.num_heads * seq_len
    return float(total)


# ---------------------------------------------------------------------------------------------------- the terms
def weights_term(arch: Architecture, s: MemorySetup) -> MemoryLine:
    """The frozen base: every weight in the compute dtype, or the decoder linears quantized and the rest (embeddings,
    norms, vision tower) in the compute dtype — fp32 when prepare_model_for_kbit_training upcasts them."""
    wb = s.compute_bytes
    vision = s.vision_params
    lang_linear = arch.num_layers * arch.linear_params_per_layer()
    other = arch.language_params() - lang_linear  # embeddings, untied lm_head, norms, biases
    if not s.quantized:
        w = (arch.language_params() + vision) * wb
        parts = f"{_n(arch.language_params())} language" + (f" + {_n(vision)} vision tower" if vision else "")
        expl = f"{parts} params x {wb} B ({s.dtype})" + (
            f"; vision tower ({_n(arch.vision_params)}) not loaded: text-only training"
            if arch.vision_params and not vision
            else ""
        )
        return MemoryLine("weights", w / GIB, expl)
    if arch.vision_params and not vision:
        dropped = f"; vision tower ({_n(arch.vision_params)}) not loaded: text-only training"
    else:
        dropped = ""
    quant = s.quantization
    qb = (NF4_DQ_BYTES if s.double_quant else NF4_BYTES) if quant == "4bit" else 1.0 + 4 / arch.hidden_size
    ob = 4 if s.upcast_frozen_fp32 else wb
    w = lang_linear * qb + (other + vision) * ob
    rest = f"{_n(other)} embeddings/norms" + (f" + {_n(vision)} vision tower" if vision else "")
    expl = (
        f"{_n(lang_linear)} decoder linears x {qb:.3f} B ({quant}"
        f"{' double-quant' if quant == '4bit' and s.double_quant else ''}) + ({rest}) x {ob} B"
        + (" (fp32: prepare_model_for_kbit_training)" if s.upcast_frozen_fp32 else "")
        + dropped
    )
    return MemoryLine("weights", w / GIB, expl)


def lora_param_count(arch: Architecture, s: MemorySetup) -> int:
    """Trainable adapter parameters: r x (in + out) per wrapped projection per layer."""
    projs = arch.projections()
    return arch.num_layers * sum(s.lora_r * (projs[p][0] + projs[p][1]) for p in s.lora_targets)


def lora_params_term(s: MemorySetup, n_lora: int) -> MemoryLine:
    ab = s.adapter_bytes
    expl = f"{_n(n_lora)} adapter params (r={s.lora_r} on {'/'.join(s.lora_targets)}) x {ab} B"
    return MemoryLine("lora_params", n_lora * ab / GIB, expl)


def gradients_term(s: MemorySetup, n_lora: int) -> MemoryLine:
    ab = s.adapter_bytes
    return MemoryLine("gradients", n_lora * ab / GIB, f"adapter gradients only (base frozen), {ab} B each")


def optimizer_states_term(s: MemorySetup, n_lora: int) -> MemoryLine:
    """The optimizer's states of the adapter parameters; a paged optimizer moves them to CPU RAM at the peak."""
    opt = s.optimizer
    state_b, paged = OPTIMIZER_STATES[opt]
    state_b = 2 * s.adapter_bytes if state_b is None else state_b
    states = n_lora * state_b
    if paged:
        return MemoryLine(
            "optimizer_states",
            0.0,
            f"{opt}: {states / GIB:.2f} GB of states paged to CPU RAM under memory pressure "
            "(QLoRA paged optimizer), so not resident at the peak",
        )
    return MemoryLine("optimizer_states", states / GIB, f"{opt}: {state_b:g} B per adapter param")


@dataclass(frozen=True)
class ActivationProfile:
    """What the activations term and the backward peak share: saved bytes, the largest transient, their names."""

    layer_bytes_per_token: float  # activations one decoder layer saves per token
    saved: float  # bytes held through backward
    transient: float  # bytes of the largest backward temporary (recomputed layer, or the last layer's)
    explanation: str
    transient_name: str


def activation_profile(arch: Architecture, s: MemorySetup) -> ActivationProfile:
    cb, T, L, h = s.compute_bytes, s.tokens, arch.num_layers, arch.hidden_size
    upcast = s.upcast_frozen_fp32
    S = _layer_bytes_per_token(
        arch,
        s.lora_targets,
        lora_dropout=s.lora_dropout,
        upcast=upcast,
        old_bnb=s.quantized and s.bnb_saves_inputs,
        compute_bytes=cb,
        attn_impl=s.attn_impl,
        seq_len=s.seq_len,
    )
    outside = (8 if upcast else 6) * h * cb / 2  # embedding output + final-norm input, per token
    # SDPA with a mask (Gemma's sliding layers beyond the window; padded unpacked batches) runs the memory-efficient
    # kernel, which converts the bool mask to a float bias per call and keeps it for backward.
    mask_layers = 0
    if s.attn_impl == "sdpa":
        if not s.packing and s.micro_batch > 1:
            mask_layers = L
        elif arch.sliding_window is not None and s.seq_len > arch.sliding_window:
            mask_layers = sliding_layers(arch)
    mask_bytes = s.micro_batch * s.seq_len * s.seq_len * cb
    if s.gradient_checkpointing:
        per_layer_saved = (2.25 * h * (2 if upcast else 1)) * cb / 2  # the checkpointed layer input
        saved = L * per_layer_saved * T + outside * T
        transient = CKPT_RECOMPUTE_FACTOR * S * T + (mask_bytes if mask_layers else 0)
        expl = (
            f"checkpointed layer inputs: {L} layers x {per_layer_saved / h:.2f}h B x {T} tokens "
            "(+ embeddings/final norm)"
        )
        return ActivationProfile(S, saved, transient, expl, "recomputing one layer")
    saved = L * S * T + outside * T + mask_layers * mask_bytes
    transient = NO_CKPT_TRANSIENT_FACTOR * S * T
    expl = f"all layers keep activations: {L} x {S / 1e3:.0f} kB/token x {T} tokens" + (
        f" + {mask_layers} float attention masks" if mask_layers else ""
    )
    return ActivationProfile(S, saved, transient, expl, "backward temporaries of the last layer")


def activations_term(profile: ActivationProfile) -> MemoryLine:
    return MemoryLine("activations", profile.saved / GIB, profile.explanation)


def backward_peak_term(arch: Architecture, s: MemorySetup, profile: ActivationProfile) -> MemoryLine:
    """The larger of the loss head (full logits, or TRL's tiled head) and the largest backward temporary."""
    cb, T, V = s.compute_bytes, s.tokens, arch.vocab_size
    if s.loss_impl == "full":
        head = (FULL_LOGITS_BYTES if cb == 2 else 16) * V * T
        head_name = f"full logits ({V} vocab x {T} tokens, upcast to fp32 for the loss)"
    else:
        head = (6 * arch.hidden_size * cb / 2 + 32) * T
        head_name = "fused LM head (TRL: tiled, no full logits)"
    if head > profile.transient:
        return MemoryLine("backward_peak", head / GIB, f"{head_name}; larger than {profile.transient_name}")
    return MemoryLine(
        "backward_peak",
        profile.transient / GIB,
        f"{profile.transient_name} ({profile.layer_bytes_per_token / 1e3:.0f} kB/token/layer); "
        f"larger than the {head_name} term",
    )


def workspace_term(arch: Architecture, s: MemorySetup) -> MemoryLine:
    """Scratch buffers: the fused head's logits tile, and one dequantized weight when quantized."""
    cb, V = s.compute_bytes, arch.vocab_size
    ws = 0.0
    ws_parts = []
    if s.loss_impl == "fused":
        tile = min(s.tokens, FUSED_HEAD_TOKEN_TILE) * min(V, FUSED_HEAD_VOCAB_TILE) * cb
        if s.upcast_frozen_fp32 and cb < 4:  # fp32 lm_head chunk cast to the compute dtype per tile
            tile += min(V, FUSED_HEAD_VOCAB_TILE) * arch.hidden_size * cb
        ws += tile
        ws_parts.append("LM-head tile")
    if s.quantized:
        ws += max(a * b for a, b in arch.projections().values()) * cb
        ws_parts.append("one dequantized weight")
    return MemoryLine("workspace", ws / GIB, " + ".join(ws_parts) if ws_parts else "none")


def cuda_overhead_term(allocated_gb: float) -> MemoryLine:
    overhead = CUDA_CONTEXT_GB + ALLOCATOR_OVERHEAD * allocated_gb
    return MemoryLine(
        "cuda_overhead",
        overhead,
        f"CUDA context {CUDA_CONTEXT_GB} GB + {ALLOCATOR_OVERHEAD:.0%} allocator fragmentation",
    )
