"""The GPU table `slm plan` prices a run on, and the throughput assumptions behind its hours.

Pure Python (no torch). Units: `memory_gb` is GiB (2**30 bytes), the unit GPU memory is actually sold in (a "24 GB"
RTX 4090 has 24 GiB).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["DEFAULT_GPUS", "DEFAULT_MFU", "DEFAULT_SETUP_HOURS", "GPU", "MFU_HALF_TOKENS", "gpus_from_config"]


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
# RTX A4000 / RTX A5000 / A40 / RTX A6000 are typical listings, less certain (the A4000, 16 GB, is the smallest bf16
# card RunPod rents: what Gemma 3 12B QLoRA fits on since frozen weights stay bf16). Prices move weekly: edit them in the run config
# (`plan.gpus`) rather than here. TFLOPS are NVIDIA datasheet dense 16-bit tensor numbers (RTX 4090: 165 with fp32
# accumulate, which bf16 uses); bandwidth is the datasheet figure.
DEFAULT_GPUS: tuple[GPU, ...] = (
    GPU("RTX A4000", 16.0, 0.17, True, 76.7, 448, "Ampere workstation, 16 GB"),
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

_REQUIRED_FIELDS = ("name", "memory_gb", "usd_per_hour", "bf16", "tflops_16bit", "mem_bandwidth_gbs")


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
        missing = [k for k in _REQUIRED_FIELDS if k not in merged]
        if missing:
            raise ValueError(f"GPU entry {e!r} lacks {', '.join(missing)}")
        table.append(GPU.from_dict(merged))
    return tuple(table)
