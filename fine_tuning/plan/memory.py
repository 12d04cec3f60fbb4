"""GPU memory, time and cost planner for LoRA / QLoRA runs (`slm plan`).

Pure Python (no torch): it runs before any GPU is rented. Everything is estimated from the architecture shape.

Units: "GB" in names and output means GiB (2**30 bytes) — the unit GPU memory is actually sold in (a "24 GB" RTX 4090
has 24 GiB). Published figures in decimal GB are converted in the tests.

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

import re
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from fine_tuning.plan.registry import Architecture, ModelSpec, default_lora_targets, get_model_spec

__all__ = [
    "DEFAULT_GPUS",
    "DEFAULT_MFU",
    "GPU",
    "GpuPlan",
    "PLANNED_OPTIMIZERS",
    "MemoryEstimate",
    "MemoryLine",
    "RunPlan",
    "Suggestion",
    "estimate_memory",
    "flops_per_token",
    "gpus_from_config",
    "plan_run",
    "plan_to_dict",
    "resolve_lora_targets",
    "suggest_changes",
]

GIB = 2**30

# --------------------------------------------------------------------------------------------------------------------
# GPU table
# --------------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GPU:
    name: str
    memory_gb: float  # GiB the card reports
    usd_per_hour: float
    bf16: bool  # Ampere or newer; Gemma 3 needs it (or fp32)
    tflops_16bit: float  # dense bf16/fp16 tensor-core peak, no sparsity
    mem_bandwidth_gbs: float  # GB/s, for the 4-bit dequantization cost
    note: str = ""

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> GPU:
        return cls(**{k: d[k] for k in cls.__dataclass_fields__ if k in d})


# Prices: RunPod community-cloud on-demand list prices per GPU-hour as published in March 2026 (RTX 4090 0.34, L4
# 0.44, L40S 0.79, A100 PCIe 1.19, A100 SXM 1.39, H100 PCIe 1.99, H100 SXM 2.69 — deploybase.ai "RunPod GPU pricing");
# RTX A5000 / A40 / RTX A6000 are typical listings, less certain. Prices move weekly: edit them in the run config
# (`plan.gpus`) rather than here. TFLOPS are NVIDIA datasheet dense 16-bit tensor numbers (RTX 4090: 165 with fp32
# accumulate, which bf16 uses); bandwidth is the datasheet figure.
DEFAULT_GPUS: tuple[GPU, ...] = (
    GPU("RTX 4090", 24.0, 0.34, True, 165.2, 1008, "consumer Ada, 24 GB"),
    GPU("RTX A5000", 24.0, 0.27, True, 111.1, 768, "Ampere workstation"),
    GPU("L4", 22.5, 0.44, True, 121.0, 300, "low bandwidth: slow for 4-bit"),
    GPU("A40", 45.0, 0.40, True, 149.7, 696, "48 GB nominal, ~45 GiB usable with ECC"),
    GPU("RTX A6000", 48.0, 0.49, True, 154.8, 768, ""),
    GPU("L40S", 45.0, 0.79, True, 362.0, 864, "48 GB nominal, ~45 GiB usable with ECC"),
    GPU("A100 PCIe 80GB", 80.0, 1.19, True, 312.0, 1935, ""),
    GPU("A100 SXM 80GB", 80.0, 1.39, True, 312.0, 2039, ""),
    GPU("H100 PCIe", 79.6, 1.99, True, 756.0, 2000, ""),
    GPU("H100 SXM", 79.6, 2.69, True, 989.0, 3350, ""),
)

# Model-FLOPs utilisation at large micro-batches: HF Trainer + PEFT without custom kernels typically reaches 30-45%
# of dense peak on long sequences. Assumed 0.35, and lowered for small micro-batches (launch-bound):
#   mfu_eff = DEFAULT_MFU * T / (T + MFU_HALF_TOKENS), T = tokens per micro-batch.
DEFAULT_MFU = 0.35
MFU_HALF_TOKENS = 256
# Pod start, image pull, model download/load, final save: billed but not training.
DEFAULT_SETUP_HOURS = 0.2
# Without packing and with micro-batch > 1, batches are padded to their longest example; assumed 25% padding.
UNPACKED_PADDING_FACTOR = 1.25


def gpus_from_config(entries: Iterable[dict[str, Any]] | None) -> tuple[GPU, ...]:
    """GPU table from a config list (each entry: name, memory_gb, usd_per_hour, ...); entries whose name matches a
    default row override only the fields they give."""
    if not entries:
        return DEFAULT_GPUS
    defaults = {g.name.lower(): g for g in DEFAULT_GPUS}
    table = []
    for e in entries:
        base = defaults.get(str(e.get("name", "")).lower())
        merged = {**(asdict(base) if base else {}), **e}
        missing = [
            k
            for k in ("name", "memory_gb", "usd_per_hour", "bf16", "tflops_16bit", "mem_bandwidth_gbs")
            if k not in merged
        ]
        if missing:
            raise ValueError(f"GPU entry {e!r} lacks {', '.join(missing)}")
        table.append(GPU.from_dict(merged))
    return tuple(table)


# --------------------------------------------------------------------------------------------------------------------
# Memory estimate
# --------------------------------------------------------------------------------------------------------------------

NF4_BYTES = 0.5 + 4 / 64  # 4-bit codes + one fp32 absmax per 64-weight block
NF4_DQ_BYTES = 0.5 + 1 / 64 + 4 / (64 * 256)  # double quantization: 8-bit absmax + fp32 per 256 blocks
CUDA_CONTEXT_GB = 0.5  # CUDA context + cuBLAS/cuDNN handles (not in torch.cuda.max_memory_allocated)
ALLOCATOR_OVERHEAD = 0.07  # caching-allocator fragmentation: reserved vs allocated
FUSED_HEAD_TOKEN_TILE = 4096  # TRL chunked_logprob TOKEN_CHUNK_SIZE
FUSED_HEAD_VOCAB_TILE = 32768  # TRL _CHUNKED_LOGPROB_CHUNK_SIZE
FULL_LOGITS_BYTES = 14  # measured: bf16 logits + fp32 upcast/log-softmax + its gradient, per token per vocab entry
CKPT_RECOMPUTE_FACTOR = 1.45  # measured: peak of one recomputed layer (saved + backward temporaries) / its activations
NO_CKPT_TRANSIENT_FACTOR = 0.5  # measured: backward temporaries of the last layer on top of all saved activations

_OPTIMIZERS: dict[str, tuple[float | None, bool]] = {
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
PLANNED_OPTIMIZERS = frozenset(_OPTIMIZERS)

_PROJ_ALIASES = {
    "q_proj": "q",
    "query": "q",
    "q": "q",
    "k_proj": "k",
    "key": "k",
    "k": "k",
    "v_proj": "v",
    "value": "v",
    "v": "v",
    "o_proj": "o",
    "dense": "o",
    "out_proj": "o",
    "o": "o",
    "gate_proj": "gate",
    "w1": "gate",
    "gate": "gate",
    "up_proj": "up",
    "fc1": "up",
    "w3": "up",
    "up": "up",
    "down_proj": "down",
    "fc2": "down",
    "w2": "down",
    "down": "down",
}
_QUANT = {
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
_DTYPE_BYTES = {"bf16": 2, "fp16": 2, "fp32": 4, "bfloat16": 2, "float16": 2, "float32": 4}


@dataclass(frozen=True)
class MemoryLine:
    name: str
    gb: float
    explanation: str


@dataclass(frozen=True)
class MemoryEstimate:
    lines: tuple[MemoryLine, ...]
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def peak_gb(self) -> float:
        """Total GPU memory needed at the peak (what must fit the card), GiB."""
        return sum(line.gb for line in self.lines)

    @property
    def allocated_gb(self) -> float:
        """Peak of tensor memory (comparable to torch.cuda.max_memory_allocated), GiB."""
        return sum(line.gb for line in self.lines if line.name != "cuda_overhead")

    def line(self, name: str) -> MemoryLine:
        for ln in self.lines:
            if ln.name == name:
                return ln
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        return {
            "peak_memory_gb": round(self.peak_gb, 2),
            "allocated_gb": round(self.allocated_gb, 2),
            "lines": [{"name": ln.name, "gb": round(ln.gb, 3), "explanation": ln.explanation} for ln in self.lines],
            "settings": dict(self.settings),
        }

    def format(self) -> str:
        width = max(len(ln.name) for ln in self.lines)
        rows = [f"{ln.name:<{width}}  {ln.gb:7.2f} GB  {ln.explanation}" for ln in self.lines]
        rows.append(f"{'total peak':<{width}}  {self.peak_gb:7.2f} GB")
        return "\n".join(rows)


def _n(count: float) -> str:
    """Human count: 139.9k, 65.5M, 12.19B."""
    if count >= 1e9:
        return f"{count / 1e9:.2f}B"
    if count >= 1e6:
        return f"{count / 1e6:.1f}M"
    return f"{count / 1e3:.1f}k"


def _as_arch(spec_or_arch: ModelSpec | Architecture | str) -> tuple[Architecture, ModelSpec | None]:
    if isinstance(spec_or_arch, str):
        spec_or_arch = get_model_spec(spec_or_arch)
    if isinstance(spec_or_arch, ModelSpec):
        return spec_or_arch.arch, spec_or_arch
    if isinstance(spec_or_arch, Architecture):
        return spec_or_arch, None
    raise TypeError(f"expected a ModelSpec, Architecture or model name, got {type(spec_or_arch).__name__}")


def _canonical_module_names(arch: Architecture, proj: str) -> list[str]:
    if arch.family == "phi":
        leaf = {
            "q": "self_attn.q_proj",
            "k": "self_attn.k_proj",
            "v": "self_attn.v_proj",
            "o": "self_attn.dense",
            "up": "mlp.fc1",
            "down": "mlp.fc2",
        }[proj]
    else:
        leaf = {
            "q": "self_attn.q_proj",
            "k": "self_attn.k_proj",
            "v": "self_attn.v_proj",
            "o": "self_attn.o_proj",
            "gate": "mlp.gate_proj",
            "up": "mlp.up_proj",
            "down": "mlp.down_proj",
        }[proj]
    prefixes = ["model.", "model.language_model.", "language_model.model."]
    return [f"{p}layers.0.{leaf}" for p in prefixes]


def resolve_lora_targets(arch: Architecture, targets: list[str] | tuple[str, ...] | str | None) -> tuple[str, ...]:
    """Which decoder-layer projections (q, k, v, o, gate, up, down) a LoRA target spec wraps.

    Accepts PEFT's forms: a list of module names (suffix match), a regex (full match) or "all-linear".
    """
    projs = arch.projections()
    if targets is None:
        targets = default_lora_targets(arch)
    if isinstance(targets, str):
        if targets == "all-linear":
            return tuple(projs)
        try:
            pattern = re.compile(targets)
        except re.error as exc:
            raise ValueError(f"lora target regex {targets!r} does not compile: {exc}") from exc
        found = tuple(p for p in projs if any(pattern.fullmatch(n) for n in _canonical_module_names(arch, p)))
        if not found:
            raise ValueError(f"lora target regex {targets!r} matches no q/k/v/o/gate/up/down projection")
        return found
    found: list[str] = []
    for name in targets:
        leaf = str(name).split(".")[-1]
        if leaf in ("lm_head", "embed_tokens"):
            continue  # not a decoder-layer projection; not modelled (small for LoRA)
        proj = _PROJ_ALIASES.get(leaf)
        if proj is None:
            raise ValueError(f"unknown LoRA target {name!r}; known: {', '.join(sorted(_PROJ_ALIASES))}")
        if proj in projs and proj not in found:
            found.append(proj)
    if not found:
        raise ValueError(f"LoRA targets {list(targets)!r} name no projection of this architecture")
    return tuple(found)


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


def _sliding_layers(arch: Architecture) -> int:
    if arch.sliding_window is None:
        return 0
    if arch.model_type == "gemma2":
        return arch.num_layers // 2
    return arch.num_layers - max(1, arch.num_layers // 6)  # Gemma 3: 5 local layers per global layer


def estimate_memory(
    spec_or_arch: ModelSpec | Architecture | str,
    *,
    quantization: str = "none",
    dtype: str = "bf16",
    lora_r: int = 16,
    lora_targets: list[str] | str | None = None,
    seq_len: int = 2048,
    micro_batch: int = 1,
    gradient_checkpointing: bool = True,
    optimizer: str = "adamw",
    packing: bool = True,
    lora_dropout: float = 0.05,
    adapter_dtype: str = "fp32",
    upcast_frozen_fp32: bool | None = None,
    double_quant: bool = True,
    load_vision_tower: bool | None = None,
    attn_impl: str = "sdpa",
    loss_impl: str = "fused",
    bnb_saves_inputs: bool = False,
) -> MemoryEstimate:
    """Itemised peak GPU memory of one LoRA/QLoRA training step (GiB).

    quantization: "none" | "8bit" | "4bit" (bitsandbytes nf4). dtype: compute/weight dtype "bf16" | "fp16" | "fp32".
    lora_targets: None → the model's defaults. optimizer: HF Trainer names (adamw_torch, paged_adamw_8bit, ...).
    Knobs that mirror code choices of the training stack:
      adapter_dtype       PEFT keeps adapters in fp32 by default (autocast_adapter_dtype=True).
      upcast_frozen_fp32  peft.prepare_model_for_kbit_training casts every non-quantized weight (embeddings, norms,
                          vision tower) to fp32; default: True when quantized. Pass False if the trainer skips it.
      load_vision_tower   multimodal Gemma loads its SigLIP tower even for text; default: True if it has one.
      attn_impl           "sdpa" (default), "flash_attention_2" (no masks), "eager" (materialises attention).
      loss_impl           "fused" = TRL 1.16 SFTTrainer's tiled LM head (default); "full" = transformers' loss on
                          full [tokens, vocab] logits (custom loops, label smoothing, older TRL).
      bnb_saves_inputs    True reproduces 2023 bitsandbytes (<=0.41) that saved each 4-bit layer's input.
    """
    arch, spec = _as_arch(spec_or_arch)
    quant = _QUANT.get(str(quantization).lower())
    if quant is None:
        raise ValueError(f"unknown quantization {quantization!r}; use none, 8bit or 4bit")
    if str(dtype).lower() not in _DTYPE_BYTES:
        raise ValueError(f"unknown dtype {dtype!r}; use bf16, fp16 or fp32")
    if str(adapter_dtype).lower() not in _DTYPE_BYTES:
        raise ValueError(f"unknown adapter_dtype {adapter_dtype!r}; use fp32, bf16 or fp16")
    opt = str(optimizer).lower()
    if opt not in _OPTIMIZERS:
        raise ValueError(f"unknown optimizer {optimizer!r}; known: {', '.join(_OPTIMIZERS)}")
    if lora_r <= 0 or seq_len <= 0 or micro_batch <= 0:
        raise ValueError("lora_r, seq_len and micro_batch must be positive")
    if attn_impl not in ("sdpa", "flash_attention_2", "eager"):
        raise ValueError(f"unknown attn_impl {attn_impl!r}; use sdpa, flash_attention_2 or eager")
    if loss_impl not in ("fused", "full"):
        raise ValueError(f"unknown loss_impl {loss_impl!r}; use fused or full")
    if lora_targets is None and spec is not None:
        lora_targets = spec.lora_target_modules
    targets = resolve_lora_targets(arch, lora_targets)

    quantized = quant != "none"
    upcast = quantized if upcast_frozen_fp32 is None else bool(upcast_frozen_fp32)
    vision = arch.vision_params if (load_vision_tower is None or load_vision_tower) else 0
    wb = _DTYPE_BYTES[str(dtype).lower()]  # frozen weight bytes (and compute bytes)
    cb = wb
    ab = max(_DTYPE_BYTES[str(adapter_dtype).lower()], wb)  # adapters are at least as wide as compute
    T = seq_len * micro_batch
    L, h, V = arch.num_layers, arch.hidden_size, arch.vocab_size
    projs = arch.projections()
    lines: list[MemoryLine] = []

    # -- weights
    lang_linear = L * arch.linear_params_per_layer()
    other = arch.language_params() - lang_linear  # embeddings, untied lm_head, norms, biases
    if not quantized:
        w = (arch.language_params() + vision) * wb
        parts = f"{_n(arch.language_params())} language" + (f" + {_n(vision)} vision tower" if vision else "")
        expl = f"{parts} params x {wb} B ({str(dtype).lower()})"
    else:
        qb = (NF4_DQ_BYTES if double_quant else NF4_BYTES) if quant == "4bit" else 1.0 + 4 / h
        ob = 4 if upcast else wb
        w = lang_linear * qb + (other + vision) * ob
        rest = f"{_n(other)} embeddings/norms" + (f" + {_n(vision)} vision tower" if vision else "")
        expl = (
            f"{_n(lang_linear)} decoder linears x {qb:.3f} B ({quant}"
            f"{' double-quant' if quant == '4bit' and double_quant else ''}) + ({rest}) x {ob} B"
            + (" (fp32: prepare_model_for_kbit_training)" if upcast else "")
        )
    lines.append(MemoryLine("weights", w / GIB, expl))

    # -- LoRA parameters, gradients, optimizer states
    n_lora = L * sum(lora_r * (projs[p][0] + projs[p][1]) for p in targets)
    lines.append(
        MemoryLine(
            "lora_params",
            n_lora * ab / GIB,
            f"{_n(n_lora)} adapter params (r={lora_r} on {'/'.join(targets)}) x {ab} B",
        )
    )
    lines.append(MemoryLine("gradients", n_lora * ab / GIB, f"adapter gradients only (base frozen), {ab} B each"))
    state_b, paged = _OPTIMIZERS[opt]
    state_b = 2 * ab if state_b is None else state_b
    states = n_lora * state_b
    if paged:
        lines.append(
            MemoryLine(
                "optimizer_states",
                0.0,
                f"{opt}: {states / GIB:.2f} GB of states paged to CPU RAM under memory pressure "
                "(QLoRA paged optimizer), so not resident at the peak",
            )
        )
    else:
        lines.append(MemoryLine("optimizer_states", states / GIB, f"{opt}: {state_b:g} B per adapter param"))

    # -- activations
    S = _layer_bytes_per_token(
        arch,
        targets,
        lora_dropout=lora_dropout,
        upcast=upcast,
        old_bnb=quantized and bnb_saves_inputs,
        compute_bytes=cb,
        attn_impl=attn_impl,
        seq_len=seq_len,
    )
    outside = (8 if upcast else 6) * h * cb / 2  # embedding output + final-norm input, per token
    # SDPA with a mask (Gemma's sliding layers beyond the window; padded unpacked batches) runs the memory-efficient
    # kernel, which converts the bool mask to a float bias per call and keeps it for backward.
    mask_layers = 0
    if attn_impl == "sdpa":
        if not packing and micro_batch > 1:
            mask_layers = L
        elif arch.sliding_window is not None and seq_len > arch.sliding_window:
            mask_layers = _sliding_layers(arch)
    mask_bytes = micro_batch * seq_len * seq_len * cb
    if gradient_checkpointing:
        per_layer_saved = (2.25 * h * (2 if upcast else 1)) * cb / 2  # the checkpointed layer input
        saved = L * per_layer_saved * T + outside * T
        transient = CKPT_RECOMPUTE_FACTOR * S * T + (mask_bytes if mask_layers else 0)
        act_expl = (
            f"checkpointed layer inputs: {L} layers x {per_layer_saved / h:.2f}h B x {T} tokens "
            "(+ embeddings/final norm)"
        )
        trans_name = "recomputing one layer"
    else:
        saved = L * S * T + outside * T + mask_layers * mask_bytes
        transient = NO_CKPT_TRANSIENT_FACTOR * S * T
        act_expl = f"all layers keep activations: {L} x {S / 1e3:.0f} kB/token x {T} tokens" + (
            f" + {mask_layers} float attention masks" if mask_layers else ""
        )
        trans_name = "backward temporaries of the last layer"
    lines.append(MemoryLine("activations", saved / GIB, act_expl))

    if loss_impl == "full":
        head = (FULL_LOGITS_BYTES if cb == 2 else 16) * V * T
        head_name = f"full logits ({V} vocab x {T} tokens, upcast to fp32 for the loss)"
    else:
        head = (6 * h * cb / 2 + 32) * T
        head_name = "fused LM head (TRL: tiled, no full logits)"
    if head > transient:
        lines.append(MemoryLine("backward_peak", head / GIB, f"{head_name}; larger than {trans_name}"))
    else:
        lines.append(
            MemoryLine(
                "backward_peak",
                transient / GIB,
                f"{trans_name} ({S / 1e3:.0f} kB/token/layer); larger than the {head_name} term",
            )
        )

    # -- workspaces
    ws = 0.0
    ws_parts = []
    if loss_impl == "fused":
        tile = min(T, FUSED_HEAD_TOKEN_TILE) * min(V, FUSED_HEAD_VOCAB_TILE) * cb
        if upcast and cb < 4:  # fp32 lm_head chunk cast to the compute dtype per tile
            tile += min(V, FUSED_HEAD_VOCAB_TILE) * h * cb
        ws += tile
        ws_parts.append("LM-head tile")
    if quantized:
        ws += max(a * b for a, b in projs.values()) * cb
        ws_parts.append("one dequantized weight")
    lines.append(MemoryLine("workspace", ws / GIB, " + ".join(ws_parts) if ws_parts else "none"))

    allocated = sum(ln.gb for ln in lines)
    overhead = CUDA_CONTEXT_GB + ALLOCATOR_OVERHEAD * allocated
    lines.append(
        MemoryLine(
            "cuda_overhead",
            overhead,
            f"CUDA context {CUDA_CONTEXT_GB} GB + {ALLOCATOR_OVERHEAD:.0%} allocator fragmentation",
        )
    )

    settings = dict(
        model=spec.name if spec else arch.model_type,
        quantization=quant,
        dtype=str(dtype).lower(),
        lora_r=lora_r,
        lora_targets=list(targets),
        seq_len=seq_len,
        micro_batch=micro_batch,
        gradient_checkpointing=gradient_checkpointing,
        optimizer=opt,
        packing=packing,
        lora_dropout=lora_dropout,
        adapter_dtype=str(adapter_dtype).lower(),
        upcast_frozen_fp32=upcast,
        double_quant=double_quant,
        load_vision_tower=bool(vision),
        attn_impl=attn_impl,
        loss_impl=loss_impl,
        bnb_saves_inputs=bnb_saves_inputs,
        trainable_params=n_lora,
    )
    return MemoryEstimate(tuple(lines), settings)


# --------------------------------------------------------------------------------------------------------------------
# Throughput, time, cost
# --------------------------------------------------------------------------------------------------------------------


def flops_per_token(
    arch: Architecture, *, seq_len: int, gradient_checkpointing: bool, lora_params: int = 0, loss_impl: str = "fused"
) -> float:
    """Training FLOPs per token for LoRA on a frozen base.

    Full fine-tuning costs ~6N per token (2N forward, 2N activation grads, 2N weight grads). With a frozen base the
    weight-gradient GEMMs are skipped, so:
        forward 2N + backward (activation gradients only) 2N            = 4N
        + gradient checkpointing re-runs the decoder forward: + 2N_layers ≈ 6N
    with N the matmul parameters (decoder linears + LM head); plus attention scores 4*q_dim*ctx per layer forward
    (x3 with backward, x4 with recompute; ctx = mean attended positions, seq/2 causal, capped by a sliding window),
    LoRA's own ~6 FLOPs per adapter param, and TRL's fused head recomputing the LM-head GEMM in backward (+2N_head).
    """
    n_layers = arch.num_layers * arch.linear_params_per_layer()
    n_head = arch.vocab_size * arch.hidden_size
    full_ctx = seq_len / 2
    local = _sliding_layers(arch)
    ctx_sum = (arch.num_layers - local) * full_ctx
    if local:
        ctx_sum += local * min(full_ctx, float(arch.sliding_window or seq_len))
    attn = 4 * arch.q_dim * ctx_sum
    fwd = 2 * n_layers + 2 * n_head + attn + 2 * lora_params
    bwd = 2 * n_layers + 2 * n_head + 2 * attn + 4 * lora_params
    if loss_impl == "fused":
        bwd += 2 * n_head
    recompute = (2 * n_layers + attn + 2 * lora_params) if gradient_checkpointing else 0.0
    return fwd + bwd + recompute


@dataclass(frozen=True)
class GpuPlan:
    gpu: GPU
    fits: bool
    margin_gb: float
    tight: bool  # fits with less than 10% of the card to spare
    tokens_per_s: float
    hours: float
    usd: float
    note: str = ""


@dataclass(frozen=True)
class Suggestion:
    description: str  # names the run-config key to set, e.g. "… (train.optim=paged_adamw_8bit)"
    changes: dict[str, Any]  # in estimate_memory's terms
    estimate: MemoryEstimate
    target_gb: float
    fits: bool
    config: dict[str, Any] = field(default_factory=dict)  # the same change as run-config keys (`slm … --set k=v`)


def config_changes(changes: dict[str, Any]) -> dict[str, Any]:
    """estimate_memory changes → the run-config keys that make them (changes without a config key are left out)."""
    out: dict[str, Any] = {}
    for name, value in changes.items():
        if name == "gradient_checkpointing":
            out["train.activation_checkpointing"] = bool(value)
        elif name == "micro_batch":
            out["train.micro_batch_size"] = int(value)
        elif name == "quantization":
            out["train.method"] = "qlora" if _QUANT.get(str(value).lower()) == "4bit" else "lora"
        elif name == "optimizer":
            out["train.optim"] = value
        elif name == "seq_len":
            out["train.max_length"] = int(value)
    return out


@dataclass(frozen=True)
class RunPlan:
    model: str
    memory: MemoryEstimate
    train_tokens: int
    epochs: float
    processed_tokens: float
    flops_per_token: float
    gpus: tuple[GpuPlan, ...]
    suggestions: tuple[Suggestion, ...]
    assumptions: dict[str, Any]

    @property
    def peak_memory_gb(self) -> float:
        return self.memory.peak_gb

    def cheapest_fit(self) -> GpuPlan | None:
        fitting = [g for g in self.gpus if g.fits and not g.note.startswith("unusable")]
        return min(fitting, key=lambda g: (g.usd, g.hours)) if fitting else None


def _tokens_per_s(
    gpu: GPU,
    *,
    flops: float,
    tokens_per_step: float,
    quant_params: float,
    quant: str,
    dequant_passes: int,
    mfu: float,
    compute_bytes: int,
) -> float:
    peak = gpu.tflops_16bit * 1e12 * (0.5 if compute_bytes == 4 else 1.0)  # fp32 runs on TF32 at ~half rate
    mfu_eff = mfu * tokens_per_step / (tokens_per_step + MFU_HALF_TOKENS)
    seconds = flops / (peak * mfu_eff)
    if quant != "none":
        # bitsandbytes dequantizes every quantized weight to 16-bit before each GEMM: read 0.5-1 B + write 2 B per
        # weight, memory-bound at ~70% of bandwidth, once per forward, backward and (checkpointing) recompute.
        bytes_per_pass = quant_params * (2.5 if quant == "4bit" else 3.0)
        seconds += dequant_passes * bytes_per_pass / (gpu.mem_bandwidth_gbs * 1e9 * 0.7) / tokens_per_step
    return 1.0 / seconds


def plan_run(
    spec_or_arch: ModelSpec | Architecture | str,
    *,
    train_tokens: int | None = None,
    num_examples: int | None = None,
    mean_example_tokens: float | None = None,
    epochs: float = 1.0,
    gpus: Sequence[GPU] | None = None,
    mfu: float = DEFAULT_MFU,
    setup_hours: float = DEFAULT_SETUP_HOURS,
    **memory_kwargs: Any,
) -> RunPlan:
    """Memory, fit, throughput, hours and dollars per GPU for one training run.

    Give ``train_tokens`` (tokens in one epoch) or ``num_examples`` x ``mean_example_tokens``. ``memory_kwargs`` are
    passed to `estimate_memory`. When the run does not fit some card of the table, `suggest_changes` is asked what
    would make it fit the smallest such card (or the largest card, when nothing fits).
    """
    arch, spec = _as_arch(spec_or_arch)
    if train_tokens is None:
        if num_examples is None or mean_example_tokens is None:
            raise ValueError("give train_tokens, or num_examples and mean_example_tokens")
        train_tokens = int(round(num_examples * mean_example_tokens))
    if train_tokens < 0 or epochs <= 0:
        raise ValueError("train_tokens must be >= 0 and epochs > 0")
    table = tuple(gpus) if gpus is not None else DEFAULT_GPUS
    if not table:
        raise ValueError("empty GPU table")
    mem = estimate_memory(spec if spec is not None else arch, **memory_kwargs)
    st = mem.settings
    seq_len, micro_batch, packing = st["seq_len"], st["micro_batch"], st["packing"]
    quant, ckpt = st["quantization"], st["gradient_checkpointing"]
    compute_bytes = _DTYPE_BYTES[st["dtype"]]
    pad = 1.0 if (packing or micro_batch == 1) else UNPACKED_PADDING_FACTOR
    processed = train_tokens * epochs * pad
    if packing or mean_example_tokens is None:
        step_tokens = float(seq_len * micro_batch)
    else:
        step_tokens = float(micro_batch * min(seq_len, mean_example_tokens) * pad)
    flops = flops_per_token(
        arch,
        seq_len=seq_len,
        gradient_checkpointing=ckpt,
        lora_params=st["trainable_params"],
        loss_impl=st["loss_impl"],
    )
    quant_params = arch.num_layers * arch.linear_params_per_layer()
    needs_bf16 = spec is not None and not spec.allows_fp16 and st["dtype"] != "fp32"
    rows = []
    for g in table:
        margin = g.memory_gb - mem.peak_gb
        fits = margin >= 0
        tps = _tokens_per_s(
            g,
            flops=flops,
            tokens_per_step=step_tokens,
            quant_params=quant_params,
            quant=quant,
            dequant_passes=3 if ckpt else 2,
            mfu=mfu,
            compute_bytes=compute_bytes,
        )
        hours = processed / tps / 3600 + setup_hours
        note = g.note
        if needs_bf16 and not g.bf16:
            fits, note = False, "unusable: no bf16 and this model cannot train in fp16"
        rows.append(
            GpuPlan(g, fits, margin, fits and margin < 0.1 * g.memory_gb, tps, hours, hours * g.usd_per_hour, note)
        )
    not_fitting = [r.gpu for r in rows if not r.fits]
    suggestions: tuple[Suggestion, ...] = ()
    if not_fitting:
        fitting_any = any(r.fits for r in rows)
        target = min(g.memory_gb for g in not_fitting) if fitting_any else max(g.memory_gb for g in table)
        suggestions = tuple(suggest_changes(spec if spec is not None else arch, target_gb=target, **memory_kwargs))
    assumptions = dict(
        mfu=mfu,
        mfu_half_tokens=MFU_HALF_TOKENS,
        setup_hours=setup_hours,
        padding_factor=pad,
        tokens_per_micro_batch=step_tokens,
        cuda_context_gb=CUDA_CONTEXT_GB,
        allocator_overhead=ALLOCATOR_OVERHEAD,
        flops_formula="frozen-base LoRA: 4N per token (+2N_layers with gradient checkpointing) + attention",
        prices="RunPod community cloud list prices (edit plan.gpus in the run config)",
    )
    return RunPlan(
        spec.name if spec else arch.model_type,
        mem,
        int(train_tokens),
        float(epochs),
        processed,
        flops,
        tuple(rows),
        suggestions,
        assumptions,
    )


def suggest_changes(
    spec_or_arch: ModelSpec | Architecture | str,
    *,
    target_gb: float | None = None,
    gpus: Sequence[GPU] | None = None,
    **memory_kwargs: Any,
) -> list[Suggestion]:
    """Concrete changes that bring the peak under ``target_gb`` (default: the largest card of ``gpus``).

    Each single change is evaluated on its own (gradient checkpointing, micro-batch 1, 4-bit, 8-bit paged
    optimizer, fused loss, no fp32 upcast, the longest sequence that fits); then, if no single change suffices, the
    cumulative combination in that order. Fitting suggestions come first; each carries its new estimate.
    """
    table = tuple(gpus) if gpus is not None else DEFAULT_GPUS
    target = float(target_gb) if target_gb is not None else max(g.memory_gb for g in table)
    base = estimate_memory(spec_or_arch, **memory_kwargs)
    st = base.settings
    candidates: list[tuple[str, dict[str, Any]]] = []
    if not st["gradient_checkpointing"]:
        candidates.append(
            ("turn on activation checkpointing (train.activation_checkpointing=true)", {"gradient_checkpointing": True})
        )
    if st["micro_batch"] > 1:
        candidates.append(
            (
                "micro-batch 1 (train.micro_batch_size=1; raise train.gradient_accumulation_steps to keep "
                "the effective batch)",
                {"micro_batch": 1},
            )
        )
    if st["quantization"] != "4bit":
        candidates.append(
            ("load the base in 4-bit (train.method=qlora: QLoRA, nf4 + double quant)", {"quantization": "4bit"})
        )
    if not st["optimizer"].endswith("8bit"):
        candidates.append(("8-bit paged AdamW (train.optim=paged_adamw_8bit)", {"optimizer": "paged_adamw_8bit"}))
    if st["loss_impl"] == "full":
        candidates.append(
            ("use TRL SFTTrainer's fused LM-head loss (no full logits; what `slm train` does)", {"loss_impl": "fused"})
        )
    if st["upcast_frozen_fp32"]:
        candidates.append(
            (
                "keep non-quantized weights in bf16 (skip prepare_model_for_kbit_training's fp32 cast; "
                "a code change, no config key)",
                {"upcast_frozen_fp32": False},
            )
        )

    def est(changes: dict[str, Any]) -> MemoryEstimate:
        return estimate_memory(spec_or_arch, **{**memory_kwargs, **changes})

    def longest_seq(changes: dict[str, Any]) -> int | None:
        lo, hi = 0, st["seq_len"] // 128  # in units of 128 tokens
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if est({**changes, "seq_len": mid * 128}).peak_gb <= target:
                lo = mid
            else:
                hi = mid - 1
        return lo * 128 if lo >= 1 and lo * 128 < st["seq_len"] else None

    out: list[Suggestion] = []
    for desc, ch in candidates:
        e = est(ch)
        out.append(Suggestion(desc, ch, e, target, e.peak_gb <= target, config_changes(ch)))
    seq = longest_seq({})
    if seq is not None:
        e = est({"seq_len": seq})
        out.append(
            Suggestion(
                f"shorten the sequence length (train.max_length={seq}; longer examples must be shortened or left out)",
                {"seq_len": seq},
                e,
                target,
                True,
                config_changes({"seq_len": seq}),
            )
        )
    if candidates and not any(s.fits for s in out):
        combined: dict[str, Any] = {}
        descs = []
        for desc, ch in candidates:
            combined.update(ch)
            descs.append(desc)
            e = est(combined)
            if e.peak_gb <= target:
                break
        if e.peak_gb > target:
            seq = longest_seq(combined)
            if seq is not None:
                combined["seq_len"] = seq
                descs.append(f"train.max_length={seq}")
                e = est(combined)
        out.append(
            Suggestion(
                "combine: " + "; ".join(descs), dict(combined), e, target, e.peak_gb <= target, config_changes(combined)
            )
        )
    out.sort(key=lambda s: (not s.fits, s.estimate.peak_gb if not s.fits else 0.0))
    return out


def plan_to_dict(plan: RunPlan) -> dict[str, Any]:
    """JSON-ready summary: peak_memory_gb, fits/margin_gb/tokens_per_s/hours/usd keyed by GPU name, and more."""
    cheapest = plan.cheapest_fit()
    fitting = [g for g in plan.gpus if g.fits]
    fastest = min(fitting, key=lambda g: g.hours) if fitting else None
    return {
        "model": plan.model,
        "peak_memory_gb": round(plan.memory.peak_gb, 2),
        "allocated_gb": round(plan.memory.allocated_gb, 2),
        "memory": {ln.name: round(ln.gb, 3) for ln in plan.memory.lines},
        "memory_explanations": {ln.name: ln.explanation for ln in plan.memory.lines},
        "settings": dict(plan.memory.settings),
        "train_tokens": plan.train_tokens,
        "epochs": plan.epochs,
        "processed_tokens": int(round(plan.processed_tokens)),
        "flops_per_token": plan.flops_per_token,
        "fits": {g.gpu.name: g.fits for g in plan.gpus},
        "margin_gb": {g.gpu.name: round(g.margin_gb, 2) for g in plan.gpus},
        "tight": {g.gpu.name: g.tight for g in plan.gpus},
        "tokens_per_s": {g.gpu.name: round(g.tokens_per_s, 1) for g in plan.gpus},
        "hours": {g.gpu.name: round(g.hours, 3) for g in plan.gpus},
        "usd": {g.gpu.name: round(g.usd, 2) for g in plan.gpus},
        "usd_per_hour": {g.gpu.name: g.gpu.usd_per_hour for g in plan.gpus},
        "notes": {g.gpu.name: g.note for g in plan.gpus if g.note},
        "cheapest_fit": cheapest.gpu.name if cheapest else None,
        "fastest_fit": fastest.gpu.name if fastest else None,
        "suggestions": [
            {
                "description": s.description,
                "changes": s.changes,
                "config": dict(s.config),
                "peak_memory_gb": round(s.estimate.peak_gb, 2),
                "target_gb": s.target_gb,
                "fits": s.fits,
            }
            for s in plan.suggestions
        ],
        "assumptions": dict(plan.assumptions),
    }
