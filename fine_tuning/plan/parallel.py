"""Per-GPU memory of a run on several GPUs (`slm plan --gpus N --strategy ddp|fsdp`). Pure Python (no torch).

DDP (fine_tuning/train/accelerate_configs/ddp.yaml): every GPU holds a whole replica; torch's DistributedDataParallel
also allocates its gradient buckets, one flat copy of every trainable gradient (gradient_as_bucket_view=False, the
default), so per GPU = the one-GPU estimate + the trainable gradients once more.

FSDP (FULL_SHARD, fsdp_qlora.yaml; one unit per decoder layer, the root unit holding embeddings, final norm and
lm_head): weights, gradients, optimizer states, adapters and autocast copies are split N ways; the root unit stays
unsharded through forward and backward (FSDP does not reshard the root after forward), and while a layer computes,
it and the prefetched next layer are gathered whole. Activations are per GPU (each GPU runs its own micro-batch).
Gradient accumulation under FSDP: torch's `FullyShardedDataParallel.no_sync` (used by transformers' Trainer through
accelerate unless `sync_each_batch`, and by LitGPT's `fabric.no_backward_sync`) skips the reduce-scatter of every
micro-batch but the last, so each GPU accumulates the *unsharded* gradient of every trainable parameter; they are
reduce-scattered in the last micro-batch's backward, so the optimizer step sees shards (torch's no_sync docstring
warns of this memory; LitGPT issue #676 is an OOM it caused). The peak is then backward's with whole gradients.

Not counted: NCCL's communication buffers (a few hundred MB per GPU, depending on NCCL's settings), and ZeRO/DeepSpeed
(not a launcher config of this project).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from fine_tuning.plan.architecture import Architecture
from fine_tuning.plan.memory_terms import GIB, MemoryLine, MemorySetup

__all__ = ["STRATEGIES", "SHARDED_LINES", "Layout", "ddp_lines", "fsdp_lines", "launch_layout"]

STRATEGIES = ("ddp", "fsdp")
SHARDED_LINES = frozenset({"lora_params", "modules_to_save", "gradients", "optimizer_states", "weight_copies"})


@dataclass(frozen=True)
class Layout:
    """How the run is launched: GPUs, strategy, and how gradients are accumulated across micro-batches."""

    n_gpus: int = 1
    strategy: str = "ddp"
    grad_accum_steps: int = 1  # train.gradient_accumulation_steps
    sync_each_batch: bool = False  # accelerate's GradientAccumulationPlugin(sync_each_batch=True): no no_sync

    def __post_init__(self) -> None:
        if self.n_gpus < 1 or self.strategy not in STRATEGIES:
            raise ValueError(f"--gpus must be >= 1 and --strategy one of {', '.join(STRATEGIES)}")
        if self.grad_accum_steps < 1:
            raise ValueError("train.gradient_accumulation_steps must be >= 1")

    @property
    def unsharded_grads(self) -> bool:
        """FSDP accumulating under no_sync: whole gradients on every GPU until the last micro-batch."""
        fsdp = self.n_gpus > 1 and self.strategy == "fsdp"
        return fsdp and self.grad_accum_steps > 1 and not self.sync_each_batch

    def settings(self) -> dict:
        return {"n_gpus": self.n_gpus, "strategy": self.strategy, "grad_accum_steps": self.grad_accum_steps,
                "sync_each_batch": self.sync_each_batch}  # fmt: skip


def _root_bytes(arch: Architecture, s: MemorySetup) -> float:
    """Bytes of the root unit's weights (embeddings + untied lm_head + final norm)."""
    wb = s.master_bytes if s.method == "full" else (4 if s.upcast_frozen_fp32 else s.compute_bytes)
    return float((arch.embedding_params() + arch.lm_head_params() + arch.hidden_size) * wb)


def ddp_lines(lines: list[MemoryLine], layout: Layout) -> list[MemoryLine]:
    """DDP on several GPUs: a whole replica each, plus DDP's gradient buckets (a copy of the gradients)."""
    if layout.n_gpus == 1 or layout.strategy != "ddp":
        return lines
    grads = next(ln.gb for ln in lines if ln.name == "gradients")
    knob = f"--gpus {layout.n_gpus} --strategy ddp"
    return [*lines, MemoryLine("ddp_buckets", grads, f"{knob}: DDP's gradient buckets, one copy of the gradients")]


def fsdp_lines(
    lines: list[MemoryLine], arch: Architecture, s: MemorySetup, layout: Layout, scratch_gb: float
) -> tuple[list[MemoryLine], float]:
    """The one-GPU lines (before not_at_once) as one GPU's share under FSDP, and the optimizer scratch per GPU."""
    gpus = layout.n_gpus
    if gpus == 1 or layout.strategy != "fsdp":
        return lines, scratch_gb
    knob = f"--gpus {gpus} --strategy fsdp"
    out = []
    for ln in lines:
        if ln.name in SHARDED_LINES:
            out.append(MemoryLine(ln.name, ln.gb / gpus, f"{ln.explanation}; / {gpus} ({knob})"))
        elif ln.name == "weights":
            out.extend(_fsdp_weights(ln, arch, s, gpus, knob))
        else:
            out.append(ln)
    grads = next(ln.gb for ln in lines if ln.name == "gradients")
    if layout.unsharded_grads:
        expl = (
            f"train.gradient_accumulation_steps={layout.grad_accum_steps} under FSDP: no_sync keeps the gradients "
            "whole on every GPU until the last micro-batch (the share above is the rest)"
        )
        out.append(MemoryLine("fsdp_unsharded_grads", grads * (1 - 1 / gpus), expl))
    return out, scratch_gb / gpus


def _fsdp_weights(weights: MemoryLine, arch: Architecture, s: MemorySetup, gpus: int, knob: str) -> list[MemoryLine]:
    root = min(_root_bytes(arch, s) / GIB, weights.gb)
    layers = weights.gb - root
    one_layer = layers / arch.num_layers
    return [
        MemoryLine(
            "weights",
            root + layers / gpus,
            f"{weights.explanation}; decoder layers / {gpus}, root unit (embeddings/lm_head) whole ({knob})",
        ),  # fmt: skip
        MemoryLine(
            "fsdp_gathered",
            2 * one_layer * (1 - 1 / gpus),
            f"{knob}: the computing layer and the prefetched next one, gathered whole",
        ),  # fmt: skip
    ]


def launch_layout(environ: Mapping[str, str], grad_accum_steps: int = 1) -> Layout:
    """The layout `slm train` is about to run under, from the launcher's environment: WORLD_SIZE (torchrun and
    `accelerate launch` export it to every process; absent = one process) and ACCELERATE_USE_FSDP (exported by
    `accelerate launch` with an FSDP config: fsdp_qlora.yaml) — else DDP. `slm train` sets no accelerator_config, so
    the Trainer accumulates under no_sync (sync_each_batch=False). ValueError naming the variable when malformed."""
    raw = environ.get("WORLD_SIZE", "1").strip() or "1"
    try:
        world = int(raw)
    except ValueError:
        raise ValueError(f"WORLD_SIZE={raw!r} is not a number of processes") from None
    if world < 1:
        raise ValueError(f"WORLD_SIZE={raw!r} must be >= 1")
    fsdp = environ.get("ACCELERATE_USE_FSDP", "").strip().lower() in ("1", "true", "yes")
    return Layout(world, "fsdp" if fsdp else "ddp", grad_accum_steps, sync_each_batch=False)
