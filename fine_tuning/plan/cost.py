"""Throughput, hours and dollars of a training run on each GPU of the table (`slm plan`).

Pure Python (no torch). The memory comes from `fine_tuning.plan.memory`, the GPUs and the utilisation assumptions
from `fine_tuning.plan.gpus`; when the run does not fit some card, `fine_tuning.plan.suggest` says what would.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from fine_tuning.plan.activation_terms import sliding_layers
from fine_tuning.plan.architecture import Architecture
from fine_tuning.plan.gpus import DEFAULT_GPUS, DEFAULT_MFU, DEFAULT_SETUP_HOURS, GPU, MFU_HALF_TOKENS
from fine_tuning.plan.memory import MemoryEstimate, as_architecture, estimate_memory
from fine_tuning.plan.memory_terms import ALLOCATOR_OVERHEAD, CUDA_CONTEXT_GB, DTYPE_BYTES
from fine_tuning.plan.registry import ModelSpec
from fine_tuning.plan.suggest import Suggestion, suggest_changes

__all__ = ["GpuPlan", "RunPlan", "UNPACKED_PADDING_FACTOR", "flops_per_token", "plan_run", "plan_to_dict"]

# Without packing and with micro-batch > 1, batches are padded to their longest example; assumed 25% padding.
UNPACKED_PADDING_FACTOR = 1.25
# Several GPUs: throughput per GPU kept after gradient all-reduce / FSDP gathers (assumed, not measured here).
MULTI_GPU_SCALING = 0.9


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
    local = sliding_layers(arch)
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


@dataclass(frozen=True)
class _Workload:
    """What every GPU of the table is asked to do: tokens to process, tokens per micro-batch, FLOPs per token."""

    processed_tokens: float
    tokens_per_step: float
    padding_factor: float
    flops_per_token: float
    quant_params: float  # weights bitsandbytes dequantizes before each GEMM
    quantization: str
    dequant_passes: int  # forward, backward (and the checkpointing recompute)
    compute_bytes: int


def _tokens_per_s(gpu: GPU, work: _Workload, mfu: float) -> float:
    peak = gpu.tflops_16bit * 1e12 * (0.5 if work.compute_bytes == 4 else 1.0)  # fp32 runs on TF32 at ~half rate
    mfu_eff = mfu * work.tokens_per_step / (work.tokens_per_step + MFU_HALF_TOKENS)
    seconds = work.flops_per_token / (peak * mfu_eff)
    if work.quantization != "none":
        # bitsandbytes dequantizes every quantized weight to 16-bit before each GEMM: read 0.5-1 B + write 2 B per
        # weight, memory-bound at ~70% of bandwidth, once per forward, backward and (checkpointing) recompute.
        bytes_per_pass = work.quant_params * (2.5 if work.quantization == "4bit" else 3.0)
        seconds += work.dequant_passes * bytes_per_pass / (gpu.mem_bandwidth_gbs * 1e9 * 0.7) / work.tokens_per_step
    return 1.0 / seconds


def _workload(
    arch: Architecture, mem: MemoryEstimate, train_tokens: int, epochs: float, mean_example_tokens: float | None
) -> _Workload:
    st = mem.settings
    seq_len, micro_batch, packing = st["seq_len"], st["micro_batch"], st["packing"]
    pad = 1.0 if (packing or micro_batch == 1) else UNPACKED_PADDING_FACTOR
    if packing or mean_example_tokens is None:
        step_tokens = float(seq_len * micro_batch)
    else:
        step_tokens = float(micro_batch * min(seq_len, mean_example_tokens) * pad)
    flops = flops_per_token(
        arch,
        seq_len=seq_len,
        gradient_checkpointing=st["gradient_checkpointing"],
        lora_params=st["trainable_params"],
        loss_impl=st["loss_impl"],
    )
    return _Workload(
        processed_tokens=train_tokens * epochs * pad,
        tokens_per_step=step_tokens,
        padding_factor=pad,
        flops_per_token=flops,
        quant_params=arch.num_layers * arch.linear_params_per_layer(),
        quantization=st["quantization"],
        dequant_passes=3 if st["gradient_checkpointing"] else 2,
        compute_bytes=DTYPE_BYTES[st["dtype"]],
    )


def _gpu_plan(
    gpu: GPU, mem: MemoryEstimate, work: _Workload, mfu: float, setup_hours: float, needs_bf16: bool
) -> GpuPlan:
    margin = gpu.memory_gb - mem.peak_gb
    fits = margin >= 0
    n = int(mem.settings.get("n_gpus", 1))
    tps = _tokens_per_s(gpu, work, mfu) * (1 if n == 1 else n * MULTI_GPU_SCALING)
    hours = work.processed_tokens / tps / 3600 + setup_hours
    note = gpu.note
    if needs_bf16 and not gpu.bf16:
        fits, note = False, "unusable: no bf16 and this model cannot train in fp16"
    usd = hours * gpu.usd_per_hour * n  # every GPU of the pod is billed
    return GpuPlan(gpu, fits, margin, fits and margin < 0.1 * gpu.memory_gb, tps, hours, usd, note)


def _assumptions(work: _Workload, mfu: float, setup_hours: float) -> dict[str, Any]:
    return dict(
        mfu=mfu,
        mfu_half_tokens=MFU_HALF_TOKENS,
        setup_hours=setup_hours,
        padding_factor=work.padding_factor,
        tokens_per_micro_batch=work.tokens_per_step,
        cuda_context_gb=CUDA_CONTEXT_GB,
        allocator_overhead=ALLOCATOR_OVERHEAD,
        flops_formula="frozen-base LoRA: 4N per token (+2N_layers with gradient checkpointing) + attention",
        prices="RunPod community cloud list prices (edit plan.gpus in the run config)",
    )


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
    arch, spec = as_architecture(spec_or_arch)
    if train_tokens is None:
        if num_examples is None or mean_example_tokens is None:
            raise ValueError("give train_tokens, or num_examples and mean_example_tokens")
        train_tokens = int(round(num_examples * mean_example_tokens))
    if train_tokens < 0 or epochs <= 0:
        raise ValueError("train_tokens must be >= 0 and epochs > 0")
    table = tuple(gpus) if gpus is not None else DEFAULT_GPUS
    if not table:
        raise ValueError("empty GPU table")
    model = spec if spec is not None else arch
    mem = estimate_memory(model, **memory_kwargs)
    work = _workload(arch, mem, train_tokens, epochs, mean_example_tokens)
    needs_bf16 = spec is not None and not spec.allows_fp16 and mem.settings["dtype"] != "fp32"
    rows = tuple(_gpu_plan(g, mem, work, mfu, setup_hours, needs_bf16) for g in table)
    not_fitting = [r.gpu for r in rows if not r.fits]
    suggestions: tuple[Suggestion, ...] = ()
    if not_fitting:
        # the smallest card it misses, or (nothing fits) the largest card of the table
        fitting_any = any(r.fits for r in rows)
        target = min(g.memory_gb for g in not_fitting) if fitting_any else max(g.memory_gb for g in table)
        suggestions = tuple(suggest_changes(model, target_gb=target, **memory_kwargs))
    return RunPlan(
        spec.name if spec else arch.model_type,
        mem,
        int(train_tokens),
        float(epochs),
        work.processed_tokens,
        work.flops_per_token,
        rows,
        suggestions,
        _assumptions(work, mfu, setup_hours),
    )


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
