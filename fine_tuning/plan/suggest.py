"""What would make a run fit a card: single changes, the longest sequence that fits, and their combination.

Pure Python (no torch). Each suggestion carries its new memory estimate and the run-config keys that make it
(`slm … --set k=v`); `slm plan` prints them and `slm train` names the fitting ones when it refuses a run.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from fine_tuning.plan.architecture import Architecture
from fine_tuning.plan.gpus import DEFAULT_GPUS, GPU
from fine_tuning.plan.memory import MemoryEstimate, estimate_memory
from fine_tuning.plan.memory_terms import QUANTIZATION_NAMES
from fine_tuning.plan.registry import ModelSpec

__all__ = ["Suggestion", "config_changes", "suggest_changes"]

_Estimator = Callable[[dict[str, Any]], MemoryEstimate]


@dataclass(frozen=True)
class Suggestion:
    description: str  # names the run-config key to set, e.g. "… (train.optim=paged_adamw_8bit)"
    changes: dict[str, Any]  # in estimate_memory's terms
    estimate: MemoryEstimate
    target_gb: float
    fits: bool
    config: dict[str, Any] = field(default_factory=dict)  # the same change as run-config keys (`slm … --set k=v`)


def config_changes(changes: dict[str, Any]) -> dict[str, Any]:
    """estimate_memory changes → the run-config keys that make them. Every change `single_changes` proposes has one
    (tests/test_plan.py checks it); a change without a config key raises, so none is suggested by mistake."""
    out: dict[str, Any] = {}
    for name, value in changes.items():
        if name == "gradient_checkpointing":
            out["train.activation_checkpointing"] = bool(value)
        elif name == "micro_batch":
            out["train.micro_batch_size"] = int(value)
        elif name == "quantization":
            out["train.method"] = "qlora"
            out["train.quantization"] = "nf4" if QUANTIZATION_NAMES.get(str(value).lower()) == "4bit" else "int8"
        elif name == "method":
            out["train.method"] = "full" if value == "full" else "lora"
        elif name == "master_weights":
            out["train.master_weights"] = value
        elif name == "modules_to_save":
            out["train.lora.modules_to_save"] = list(value)
        elif name == "optimizer":
            out["train.optim"] = value
        elif name == "seq_len":
            out["train.max_length"] = int(value)
        else:
            raise ValueError(f"no run-config key changes {name!r}")
    return out


def single_changes(settings: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(description, changes) for each memory-saving change the run does not make yet, in the order tried.

    Only what a run-config key changes in `slm train`: not the loss head or the frozen-weight upcast (slm train
    always runs TRL's fused head and keeps frozen weights bf16; plan.loss_head and --frozen-fp32 describe other
    stacks), not the GPU count (a launch flag)."""
    candidates: list[tuple[str, dict[str, Any]]] = []
    if not settings["gradient_checkpointing"]:
        candidates.append(
            ("turn on activation checkpointing (train.activation_checkpointing=true)", {"gradient_checkpointing": True})
        )
    if settings["micro_batch"] > 1:
        candidates.append(
            (
                "micro-batch 1 (train.micro_batch_size=1; raise train.gradient_accumulation_steps to keep "
                "the effective batch)",
                {"micro_batch": 1},
            )
        )
    if settings["modules_to_save"]:
        candidates.append(("freeze the embeddings/lm_head (train.lora.modules_to_save=[])", {"modules_to_save": []}))
    if settings["method"] == "full" and settings["master_weights"] == "fp32":
        candidates.append(("pure bf16 weights and states (train.master_weights=bf16)", {"master_weights": "bf16"}))
    if settings["method"] == "full":
        candidates.append(("LoRA instead of full fine-tuning (train.method=lora)", {"method": "lora"}))
    if settings["quantization"] != "4bit" and settings["quantization"] in ("none", "8bit"):
        candidates.append(
            (
                "load the base in 4-bit (train.method=qlora, train.quantization=nf4: QLoRA, nf4 + double quant)",
                {"quantization": "4bit"}
                if settings["method"] != "full"
                else {"method": "lora", "quantization": "4bit"},
            )
        )
    if not settings["optimizer"].endswith("8bit"):
        candidates.append(("8-bit paged AdamW (train.optim=paged_adamw_8bit)", {"optimizer": "paged_adamw_8bit"}))
    return candidates


def longest_fitting_seq(est: _Estimator, changes: dict[str, Any], seq_len: int, target: float) -> int | None:
    """The longest multiple of 128 tokens below `seq_len` whose estimate (with `changes`) fits `target` GiB."""
    lo, hi = 0, seq_len // 128  # in units of 128 tokens
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if est({**changes, "seq_len": mid * 128}).peak_gb <= target:
            lo = mid
        else:
            hi = mid - 1
    return lo * 128 if lo >= 1 and lo * 128 < seq_len else None


def _combined(est: _Estimator, candidates: list[tuple[str, dict[str, Any]]], seq_len: int, target: float) -> Suggestion:
    """The candidates applied one after another until the run fits, then a shorter sequence if still needed."""
    combined: dict[str, Any] = {}
    descs = []
    for desc, ch in candidates:
        combined.update(ch)
        descs.append(desc)
        e = est(combined)
        if e.peak_gb <= target:
            break
    if e.peak_gb > target:
        seq = longest_fitting_seq(est, combined, seq_len, target)
        if seq is not None:
            combined["seq_len"] = seq
            descs.append(f"train.max_length={seq}")
            e = est(combined)
    return Suggestion(
        "combine: " + "; ".join(descs), dict(combined), e, target, e.peak_gb <= target, config_changes(combined)
    )


def suggest_changes(
    spec_or_arch: ModelSpec | Architecture | str,
    *,
    target_gb: float | None = None,
    gpus: Sequence[GPU] | None = None,
    **memory_kwargs: Any,
) -> list[Suggestion]:
    """Concrete changes that bring the peak under ``target_gb`` (default: the largest card of ``gpus``).

    Each single change is evaluated on its own (gradient checkpointing, micro-batch 1, frozen embeddings, bf16
    masters, LoRA instead of full, 4-bit, 8-bit paged optimizer, the longest sequence that fits); then, if no single change suffices, the
    cumulative combination in that order. Fitting suggestions come first; each carries its new estimate.
    """
    table = tuple(gpus) if gpus is not None else DEFAULT_GPUS
    target = float(target_gb) if target_gb is not None else max(g.memory_gb for g in table)
    settings = estimate_memory(spec_or_arch, **memory_kwargs).settings
    seq_len = settings["seq_len"]
    candidates = single_changes(settings)

    def est(changes: dict[str, Any]) -> MemoryEstimate:
        return estimate_memory(spec_or_arch, **{**memory_kwargs, **changes})

    out: list[Suggestion] = []
    for desc, ch in candidates:
        e = est(ch)
        out.append(Suggestion(desc, ch, e, target, e.peak_gb <= target, config_changes(ch)))
    seq = longest_fitting_seq(est, {}, seq_len, target)
    if seq is not None:
        out.append(
            Suggestion(
                f"shorten the sequence length (train.max_length={seq}; longer examples must be shortened or left out)",
                {"seq_len": seq},
                est({"seq_len": seq}),
                target,
                True,
                config_changes({"seq_len": seq}),
            )
        )
    if candidates and not any(s.fits for s in out):
        out.append(_combined(est, candidates, seq_len, target))
    out.sort(key=lambda s: (not s.fits, s.estimate.peak_gb if not s.fits else 0.0))
    return out
