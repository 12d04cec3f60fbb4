"""The terms of the peak-memory estimate that are not activations, one function each (`fine_tuning.plan.memory`).

Pure Python (no torch). Each term takes the architecture and the resolved `MemorySetup` and returns one
`MemoryLine` (GiB, with the arithmetic and the config key that drives it spelled out for `slm plan`): weights,
lora_params, modules_to_save, gradients, optimizer_states, weight_copies, workspace, cuda_overhead. The
activation terms and the loss head are in `fine_tuning.plan.activation_terms`.

Facts of the stack behind the terms (read from the installed torch 2.13, peft 0.21, bitsandbytes 0.50, TRL 1.16):
  * torch keeps AdamW states in the parameter's dtype (fp32 master: 8 B per param; pure bf16: 4 B). torch.optim's
    AdamW on CUDA defaults to the foreach implementation, whose step allocates one more state-sized tensor
    (`_foreach_sqrt` of exp_avg_sq); the fused one (adamw_torch_fused) and bitsandbytes' do not.
  * fp32 master weights under bf16 autocast: each linear's weight is cast to bf16 per forward and that copy is
    saved for backward, so a bf16 copy of every matmul weight lives from forward to the end of backward.
  * peft's modules_to_save wraps a deep copy of the module (same dtype as the base: bf16 under `slm train`); its
    gradients and AdamW states follow that dtype.
  * bitsandbytes nf4: 4-bit codes + one fp32 absmax per 64 weights (8-bit absmax + fp32 per 256 blocks with double
    quant); int8 (LLM.int8): 1 B + an fp32 scale per output row. GPTQ / AWQ checkpoints: bits/8 B + an fp16 scale
    and a packed zero point per group of `group_size` weights.
"""

from __future__ import annotations

from dataclasses import dataclass

from fine_tuning.plan.architecture import Architecture

GIB = 2**30
NF4_BYTES = 0.5 + 4 / 64  # 4-bit codes + one fp32 absmax per 64-weight block
NF4_DQ_BYTES = 0.5 + 1 / 64 + 4 / (64 * 256)  # double quantization: 8-bit absmax + fp32 per 256 blocks
CUDA_CONTEXT_GB = 0.5  # CUDA context + cuBLAS/cuDNN handles (not in torch.cuda.max_memory_allocated)
ALLOCATOR_OVERHEAD = 0.07  # caching-allocator fragmentation: reserved vs allocated
FUSED_HEAD_TOKEN_TILE = 4096  # TRL chunked_logprob TOKEN_CHUNK_SIZE
FUSED_HEAD_VOCAB_TILE = 32768  # TRL _CHUNKED_LOGPROB_CHUNK_SIZE

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
# torch.optim foreach implementations: the step allocates one more state-sized tensor (see the module docstring).
FOREACH_OPTIMIZERS = frozenset({"adamw", "adamw_torch", "adamw_hf"})

# Optimizer names the memory model knows (transformers' TrainingArguments.optim names, plus "adamw").
PLANNED_OPTIMIZERS = frozenset(OPTIMIZER_STATES)

# Spellings of the quantization argument → "none" | "4bit" (bitsandbytes nf4) | "8bit" (bitsandbytes int8) |
# "gptq" | "awq" (a checkpoint stored quantized).
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
    "gptq": "gptq",
    "awq": "awq",
}
DTYPE_BYTES = {"bf16": 2, "fp16": 2, "fp32": 4, "bfloat16": 2, "float16": 2, "float32": 4}
MODULES_TO_SAVE = {"embed_tokens": "embed", "wte": "embed", "embed_in": "embed", "lm_head": "lm_head"}
MODULES_TO_SAVE.update({"embed_out": "lm_head", "output": "lm_head"})


@dataclass(frozen=True)
class MemoryLine:
    name: str
    gb: float
    explanation: str


@dataclass(frozen=True)
class MemorySetup:
    """`estimate_memory`'s arguments, checked and resolved (lower-case names, LoRA targets as projections)."""

    model: str
    method: str  # "lora" (adapters over a frozen base, quantized or not) | "full" (every weight trains)
    quantization: str  # "none" | "8bit" | "4bit" | "gptq" | "awq"
    dtype: str  # frozen weight and compute dtype
    master_weights: str  # full only: "fp32" (weights + states fp32 under autocast) | "bf16" (pure bf16)
    lora_r: int
    lora_targets: tuple[str, ...]  # q, k, v, o, gate, up, down
    modules_to_save: tuple[str, ...]  # "embed", "lm_head": trained in full beside the adapters
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
    loss_impl: str  # "fused" | "full" | "chunked"
    bnb_saves_inputs: bool
    impl: str = "hf"  # whose modules save the activations: "hf" (transformers + TRL, `slm train`) | "litgpt"
    quant_bits: int = 4  # gptq / awq
    quant_group_size: int = 128

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
    def master_bytes(self) -> int:
        """Bytes of a trainable weight under full fine-tuning (its gradient and AdamW states have the same)."""
        return 4 if self.master_weights == "fp32" else self.compute_bytes

    @property
    def saved_module_bytes(self) -> int:
        """Bytes of a modules_to_save copy: the base's dtype (fp32 when the frozen weights were upcast)."""
        return 4 if self.upcast_frozen_fp32 else self.compute_bytes

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


# ---------------------------------------------------------------------------------------------------- the terms
def quantized_bytes_per_weight(arch: Architecture, s: MemorySetup) -> tuple[float, str]:
    """Bytes per decoder-linear weight of a quantized base, and its name."""
    if s.quantization == "4bit":
        return (NF4_DQ_BYTES if s.double_quant else NF4_BYTES), "nf4" + (" double-quant" if s.double_quant else "")
    if s.quantization == "8bit":
        return 1.0 + 4 / arch.hidden_size, "int8"
    group = s.quant_group_size if s.quant_group_size > 0 else arch.hidden_size
    bits = s.quant_bits
    return bits / 8 + (2 + bits / 8) / group, f"{s.quantization} {bits}-bit, group {group}"


def _vision_note(arch: Architecture, s: MemorySetup) -> str:
    if arch.vision_params and not s.vision_params:
        return f"; vision tower ({_n(arch.vision_params)}) not loaded: text-only training"
    return ""


def weights_term(arch: Architecture, s: MemorySetup) -> MemoryLine:
    """The base: every weight in the compute dtype (full: the master dtype), or the decoder linears quantized and the
    rest (embeddings, norms, vision tower) in the compute dtype — fp32 when prepare_model_for_kbit_training upcasts."""
    vision = s.vision_params
    lang = arch.language_params()
    lang_linear = arch.num_layers * arch.linear_params_per_layer()
    other = lang - lang_linear  # embeddings, untied lm_head, norms, biases
    if s.method == "full":
        wb = s.master_bytes
        expl = (
            f"{_n(lang)} params trained in full x {wb} B (train.method=full, train.master_weights="
            f"{s.master_weights})" + (f" + {_n(vision)} frozen vision tower" if vision else "")
        )
        return MemoryLine("weights", (lang * wb + vision * s.compute_bytes) / GIB, expl + _vision_note(arch, s))
    wb = s.compute_bytes
    if not s.quantized:
        parts = f"{_n(lang)} language" + (f" + {_n(vision)} vision tower" if vision else "")
        expl = f"{parts} params x {wb} B ({s.dtype}; train.method=lora)"
        return MemoryLine("weights", (lang + vision) * wb / GIB, expl + _vision_note(arch, s))
    qb, qname = quantized_bytes_per_weight(arch, s)
    ob = 4 if s.upcast_frozen_fp32 else wb
    rest = f"{_n(other)} embeddings/norms" + (f" + {_n(vision)} vision tower" if vision else "")
    driver = "the checkpoint's quantization_config" if s.quantization in ("gptq", "awq") else "train.quantization"
    expl = (
        f"{_n(lang_linear)} decoder linears x {qb:.3f} B ({qname}: {driver}) + ({rest}) x {ob} B"
        + (" (fp32: --frozen-fp32, prepare_model_for_kbit_training)" if s.upcast_frozen_fp32 else "")
        + _vision_note(arch, s)
    )
    return MemoryLine("weights", (lang_linear * qb + (other + vision) * ob) / GIB, expl)


def lora_param_count(arch: Architecture, s: MemorySetup) -> int:
    """Trainable adapter parameters: r x (in + out) per wrapped projection per layer."""
    if s.method == "full":
        return 0
    projs = arch.projections()
    return arch.num_layers * sum(s.lora_r * (projs[p][0] + projs[p][1]) for p in s.lora_targets)


def saved_module_params(arch: Architecture, s: MemorySetup) -> int:
    """Parameters of the modules_to_save copies (an embedding and an lm_head are vocab x hidden each)."""
    if s.method == "full":
        return 0
    return len(set(s.modules_to_save)) * arch.vocab_size * arch.hidden_size


def trainable_params(arch: Architecture, s: MemorySetup) -> int:
    if s.method == "full":
        return arch.language_params()
    return lora_param_count(arch, s) + saved_module_params(arch, s)


def lora_params_term(s: MemorySetup, n_lora: int) -> MemoryLine:
    ab = s.adapter_bytes
    if s.method == "full":
        return MemoryLine("lora_params", 0.0, "train.method=full: no adapters")
    expl = f"{_n(n_lora)} adapter params (train.lora.r={s.lora_r} on {'/'.join(s.lora_targets)}) x {ab} B"
    return MemoryLine("lora_params", n_lora * ab / GIB, expl + " (fp32: peft's autocast_adapter_dtype)")


def modules_to_save_term(arch: Architecture, s: MemorySetup) -> MemoryLine:
    n = saved_module_params(arch, s)
    if not n:
        return MemoryLine("modules_to_save", 0.0, "train.lora.modules_to_save=[]: embeddings and lm_head frozen")
    b = s.saved_module_bytes
    names = "+".join(sorted(set(s.modules_to_save)))
    expl = f"train.lora.modules_to_save ({names}): trainable copies, {_n(n)} params x {b} B (the frozen originals stay)"
    return MemoryLine("modules_to_save", n * b / GIB, expl)


def gradients_term(arch: Architecture, s: MemorySetup, n_lora: int) -> MemoryLine:
    if s.method == "full":
        n, b = arch.language_params(), s.master_bytes
        return MemoryLine(
            "gradients", n * b / GIB, f"train.method=full: {_n(n)} gradients x {b} B (train.master_weights)"
        )
    saved = saved_module_params(arch, s)
    grads = n_lora * s.adapter_bytes + saved * s.saved_module_bytes
    expl = f"adapter gradients x {s.adapter_bytes} B (base frozen: train.method={_method_name(s)})" + (
        f" + modules_to_save gradients x {s.saved_module_bytes} B" if saved else ""
    )
    return MemoryLine("gradients", grads / GIB, expl)


def _method_name(s: MemorySetup) -> str:
    return "full" if s.method == "full" else ("qlora" if s.quantized else "lora")


def optimizer_scratch_bytes(arch: Architecture, s: MemorySetup, n_lora: int) -> float:
    """Bytes the foreach AdamW step allocates on top of the states (0 for fused / 8-bit / paged optimizers)."""
    if s.optimizer not in FOREACH_OPTIMIZERS:
        return 0.0
    if s.method == "full":
        return float(arch.language_params() * s.master_bytes)
    return float(n_lora * s.adapter_bytes + saved_module_params(arch, s) * s.saved_module_bytes)


def optimizer_states_term(arch: Architecture, s: MemorySetup, n_lora: int) -> MemoryLine:
    """The optimizer's states of the trainable parameters (+ the foreach step's scratch); a paged optimizer moves
    them to CPU RAM under memory pressure, so they are not resident at the peak."""
    opt = s.optimizer
    state_b, paged = OPTIMIZER_STATES[opt]
    if s.method == "full":
        groups = [(arch.language_params(), s.master_bytes)]
    else:
        groups = [(n_lora, s.adapter_bytes), (saved_module_params(arch, s), s.saved_module_bytes)]
    states = sum(n * (2 * b if state_b is None else state_b) for n, b in groups)
    scratch = optimizer_scratch_bytes(arch, s, n_lora)
    per = "2 x param bytes" if state_b is None else f"{state_b:g} B per param"
    if paged:
        return MemoryLine(
            "optimizer_states",
            0.0,
            f"train.optim={opt}: {states / GIB:.2f} GB of states paged to CPU RAM under memory pressure, "
            "not resident at the peak",
        )
    expl = f"train.optim={opt}: {per}" + (" + the foreach step's scratch (one state-sized tensor)" if scratch else "")
    return MemoryLine("optimizer_states", (states + scratch) / GIB, expl)


def weight_copies_term(arch: Architecture, s: MemorySetup) -> MemoryLine:
    """fp32 master weights under bf16 autocast: the bf16 copy of every matmul weight, saved for backward."""
    if s.method != "full" or s.master_weights != "fp32" or s.compute_bytes == 4:
        return MemoryLine("weight_copies", 0.0, "none (train.master_weights=bf16 or no autocast)")
    matmul = arch.num_layers * arch.linear_params_per_layer() + arch.vocab_size * arch.hidden_size
    expl = f"train.master_weights=fp32: autocast's bf16 copies of {_n(matmul)} matmul weights, kept for backward"
    return MemoryLine("weight_copies", matmul * s.compute_bytes / GIB, expl)


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
        ws_parts.append("LM-head tile (plan.loss_head=fused)")
    if s.quantized:
        ws += max(a * b for a, b in arch.projections().values()) * cb
        ws_parts.append(f"one dequantized weight ({s.quantization} base)")
    return MemoryLine("workspace", ws / GIB, " + ".join(ws_parts) if ws_parts else "none")


def cuda_overhead_term(allocated_gb: float, weights_gb: float) -> MemoryLine:
    """The CUDA context, and the caching allocator's slack over what is allocated. The slack comes from blocks freed
    and reused at other sizes (activations, logits, gradients, optimizer scratch, every step); the model's weights
    are allocated once at load, at their exact sizes, and never freed, so they leave none."""
    overhead = CUDA_CONTEXT_GB + ALLOCATOR_OVERHEAD * max(allocated_gb - weights_gb, 0.0)
    return MemoryLine(
        "cuda_overhead",
        overhead,
        f"CUDA context {CUDA_CONTEXT_GB} GB + {ALLOCATOR_OVERHEAD:.0%} allocator fragmentation of what is allocated "
        "besides the weights (any setting)",
    )
