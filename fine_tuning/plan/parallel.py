"""Per-GPU memory of a run on several GPUs (`slm plan --gpus N --strategy ddp|fsdp`). Pure Python (no torch).

DDP (fine_tuning/train/accelerate_configs/ddp.yaml): every GPU holds a whole replica; torch's DistributedDataParallel
also allocates its gradient buckets, one flat copy of every trainable gradient (gradient_as_bucket_view=False, the
default), so per GPU = the one-GPU estimate + the trainable gradients once more.

FSDP (FULL_SHARD, fsdp_qlora.yaml; one unit per decoder layer, the root unit holding embeddings, final norm and
lm_head): weights, gradients, optimizer states, adapters and autocast copies are split N ways; the root unit stays
unsharded through forward and backward (FSDP does not reshard the root after forward), and while a layer computes,
it and the prefetched next layer are gathered whole. Activations are per GPU (each GPU runs its own micro-batch).

Not counted: NCCL's communication buffers (a few hundred MB per GPU, depending on NCCL's settings), and ZeRO/DeepSpeed
(not a launcher config of this project).
"""

from __future__ import annotations

from fine_tuning.plan.architecture import Architecture
from fine_tuning.plan.memory_terms import GIB, MemoryLine, MemorySetup, cuda_overhead_term

__all__ = ["STRATEGIES", "SHARDED_LINES", "per_gpu_lines"]

STRATEGIES = ("ddp", "fsdp")
# not_at_once is mostly gradients, states and the optimizer scratch, all sharded: scaled like them (approximate)
SHARDED_LINES = frozenset(
    {"lora_params", "modules_to_save", "gradients", "optimizer_states", "weight_copies", "not_at_once"}
)


def _root_bytes(arch: Architecture, s: MemorySetup) -> float:
    """Bytes of the root unit's weights (embeddings + untied lm_head + final norm)."""
    wb = s.master_bytes if s.method == "full" else (4 if s.upcast_frozen_fp32 else s.compute_bytes)
    return float((arch.embedding_params() + arch.lm_head_params() + arch.hidden_size) * wb)


def per_gpu_lines(
    lines: tuple[MemoryLine, ...], arch: Architecture, s: MemorySetup, gpus: int, strategy: str
) -> tuple[MemoryLine, ...]:
    """The one-GPU lines turned into one GPU's share under DDP or FSDP (module docstring); cuda_overhead redone."""
    if gpus == 1:
        return lines
    body = [ln for ln in lines if ln.name != "cuda_overhead"]
    knob = f"--gpus {gpus} --strategy {strategy}"
    if strategy == "ddp":
        grads = next(ln.gb for ln in body if ln.name == "gradients")
        body.append(MemoryLine("ddp_buckets", grads, f"{knob}: DDP's gradient buckets, one copy of the gradients"))
    else:
        out = []
        for ln in body:
            if ln.name in SHARDED_LINES:
                out.append(MemoryLine(ln.name, ln.gb / gpus, f"{ln.explanation}; / {gpus} ({knob})"))
            elif ln.name == "weights":
                out.extend(_fsdp_weights(ln, arch, s, gpus, knob))
            else:
                out.append(ln)
        body = out
    body.append(cuda_overhead_term(sum(ln.gb for ln in body)))
    return tuple(body)


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
