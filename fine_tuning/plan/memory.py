"""Peak GPU memory of one LoRA / QLoRA training step (`slm plan`, and `slm train`'s check before loading).

Pure Python (no torch): it runs before any GPU is rented. Everything is estimated from the architecture shape:
`estimate_memory` checks its arguments into a `MemorySetup` and adds up the terms of `fine_tuning.plan.memory_terms`
(where the memory model and its measurements are described). Time and dollars are in `fine_tuning.plan.cost`, the
GPU table in `fine_tuning.plan.gpus`, what would make a run fit in `fine_tuning.plan.suggest`.

Units: "GB" in names and output means GiB (2**30 bytes) — the unit GPU memory is actually sold in (a "24 GB" RTX 4090
has 24 GiB). Published figures in decimal GB are converted in the tests.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fine_tuning.plan.activation_terms import (
    ActivationProfile,
    activation_profile,
    activations_term,
    backward_peak_term,
    loss_head_bytes,
)
from fine_tuning.plan.architecture import Architecture
from fine_tuning.plan.lora_targets import resolve_lora_targets
from fine_tuning.plan.memory_terms import (
    DTYPE_BYTES,
    GIB,
    MODULES_TO_SAVE,
    OPTIMIZER_STATES,
    QUANTIZATION_NAMES,
    MemoryLine,
    MemorySetup,
    cuda_overhead_term,
    gradients_term,
    lora_param_count,
    lora_params_term,
    modules_to_save_term,
    optimizer_scratch_bytes,
    optimizer_states_term,
    trainable_params,
    weight_copies_term,
    weights_term,
    workspace_term,
)
from fine_tuning.plan.parallel import Layout, ddp_lines, fsdp_lines
from fine_tuning.plan.registry import ModelSpec, get_model_spec

__all__ = ["MemoryEstimate", "as_architecture", "estimate_memory", "resolve_setup"]


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


def as_architecture(spec_or_arch: ModelSpec | Architecture | str) -> tuple[Architecture, ModelSpec | None]:
    """(architecture, its registry spec or None) for a spec, a bare architecture or a model name."""
    if isinstance(spec_or_arch, str):
        spec_or_arch = get_model_spec(spec_or_arch)
    if isinstance(spec_or_arch, ModelSpec):
        return spec_or_arch.arch, spec_or_arch
    if isinstance(spec_or_arch, Architecture):
        return spec_or_arch, None
    raise TypeError(f"expected a ModelSpec, Architecture or model name, got {type(spec_or_arch).__name__}")


_ATTN = ("sdpa", "flash_attention_2", "eager")
_LOSS_HEADS = ("fused", "full", "chunked")


def _check_choices(c: dict[str, Any]) -> None:
    """ValueError naming the bad argument (and the config key a user sets) for names the planner does not know."""
    for key, known in (
        ("dtype", DTYPE_BYTES),
        ("adapter_dtype", DTYPE_BYTES),
        ("attn_impl", _ATTN),
        ("loss_impl", _LOSS_HEADS),
        ("method", ("lora", "full")),
        ("master_weights", ("fp32", "bf16")),
        ("impl", ("hf", "litgpt")),
    ):
        if str(c[key]).lower() not in known:
            raise ValueError(f"unknown {key} {c[key]!r}; use {', '.join(known)}")
    if str(c["optimizer"]).lower() not in OPTIMIZER_STATES:
        raise ValueError(f"unknown optimizer {c['optimizer']!r} (train.optim); known: {', '.join(OPTIMIZER_STATES)}")
    if c["lora_r"] <= 0 or c["seq_len"] <= 0 or c["micro_batch"] <= 0:
        raise ValueError("lora_r, seq_len and micro_batch must be positive")
    for name in c["modules_to_save"] or ():
        if str(name).split(".")[-1] not in MODULES_TO_SAVE:
            raise ValueError(
                f"train.lora.modules_to_save: {name!r} is not an embedding or lm_head the planner knows "
                f"({', '.join(MODULES_TO_SAVE)})"
            )


def _quantization(arch: Architecture, c: dict[str, Any]) -> str:
    """The base's storage: a checkpoint stored quantized (GPTQ/AWQ/bitsandbytes) loads so whatever was asked."""
    quant = QUANTIZATION_NAMES.get(str(c["quantization"]).lower())
    if quant is None:
        raise ValueError(f"unknown quantization {c['quantization']!r}; use none, 8bit, 4bit, gptq or awq")
    stored = {"gptq": "gptq", "awq": "awq", "bnb-4bit": "4bit", "bnb-8bit": "8bit"}.get(arch.prequantized or "")
    if stored:
        quant = stored
    if c["method"] == "full" and quant != "none":
        raise ValueError(
            f"train.method=full trains every weight, and a {quant} base cannot be trained in full; "
            "use train.method=qlora (LoRA over the quantized base) or an unquantized checkpoint"
        )
    return quant


def resolve_setup(arch: Architecture, spec: ModelSpec | None, c: dict[str, Any]) -> MemorySetup:
    """Check `estimate_memory`'s arguments (ValueError naming the bad one) and fill in the defaults."""
    _check_choices(c)
    quant = _quantization(arch, c)
    targets = c["lora_targets"]
    if targets is None and spec is not None:
        targets = spec.lora_target_modules
    full = str(c["method"]).lower() == "full"
    saved = tuple(sorted({MODULES_TO_SAVE[str(m).split(".")[-1]] for m in c["modules_to_save"] or ()}))
    return MemorySetup(
        model=spec.name if spec else arch.model_type,
        method="full" if full else "lora",
        quantization=quant,
        dtype=str(c["dtype"]).lower(),
        master_weights=str(c["master_weights"]).lower(),
        lora_r=c["lora_r"],
        lora_targets=() if full else resolve_lora_targets(arch, targets),
        modules_to_save=() if full else saved,
        seq_len=c["seq_len"],
        micro_batch=c["micro_batch"],
        gradient_checkpointing=c["gradient_checkpointing"],
        optimizer=str(c["optimizer"]).lower(),
        packing=c["packing"],
        lora_dropout=c["lora_dropout"],
        adapter_dtype=str(c["adapter_dtype"]).lower(),
        upcast_frozen_fp32=bool(c["upcast_frozen_fp32"]) and quant != "none",
        double_quant=c["double_quant"],
        vision_params=arch.vision_params if c["load_vision_tower"] else 0,
        attn_impl=c["attn_impl"],
        loss_impl=c["loss_impl"],
        bnb_saves_inputs=c["bnb_saves_inputs"],
        impl=c["impl"],
        quant_bits=arch.quant_bits if arch.prequantized else 4,
        quant_group_size=arch.quant_group_size,
    )


def setup_settings(s: MemorySetup, n_trainable: int) -> dict[str, Any]:
    """The settings an estimate reports (`MemoryEstimate.settings`, in `slm plan --json`)."""
    out = {name: getattr(s, name) for name in MemorySetup.__dataclass_fields__ if name != "vision_params"}
    out["lora_targets"] = list(s.lora_targets)
    out["modules_to_save"] = list(s.modules_to_save)
    out["load_vision_tower"] = bool(s.vision_params)
    out["trainable_params"] = n_trainable
    return out


def not_at_once_term(
    arch: Architecture, s: MemorySetup, lines: list[MemoryLine], profile: ActivationProfile, scratch_gb: float
) -> MemoryLine:
    """What the sum of the lines counts twice: the step's peak and backward's peak are not at the same moment.

    Backward (states from the last step alive): the loss head peaks before any gradient exists; a recomputed layer
    peaks with the gradients made so far (counted whole). The optimizer step: weights, gradients, states and the
    foreach scratch, with activations, weight copies and the loss head already freed. Measured on CPU
    (bench/memory.py): full fine-tuning's peak is the step's, weights + gradients + states + scratch, to the byte."""
    gb = {ln.name: ln.gb for ln in lines}
    base = gb["weights"] + gb["lora_params"] + gb["modules_to_save"]
    states = gb["optimizer_states"] - (0.0 if gb["optimizer_states"] == 0 else scratch_gb)
    head = loss_head_bytes(arch, s)[0] / GIB
    # FSDP (per-GPU lines): gathered layers and gradients held unsharded by no_sync exist in backward, not in the step
    backward = base + states + gb["weight_copies"] + gb["activations"] + gb["workspace"] + gb.get("fsdp_gathered", 0)
    backward += max(head, profile.transient / GIB + gb["gradients"] + gb.get("fsdp_unsharded_grads", 0))
    step = base + gb["gradients"] + states + scratch_gb
    overlap = max(backward, step) - sum(gb.values())
    which = "the optimizer step" if step >= backward else "backward"
    return MemoryLine(
        "not_at_once",
        min(0.0, overlap),
        f"the peak is {which}'s: gradients / loss head / optimizer scratch (train.optim) do not all live at once",
    )


def estimate_memory(
    spec_or_arch: ModelSpec | Architecture | str,
    *,
    method: str = "lora",
    quantization: str = "none",
    dtype: str = "bf16",
    master_weights: str = "fp32",
    lora_r: int = 16,
    lora_targets: list[str] | str | None = None,
    modules_to_save: list[str] | tuple[str, ...] = (),
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
    impl: str = "hf",
    n_gpus: int = 1,
    strategy: str = "ddp",
    grad_accum_steps: int = 1,
    sync_each_batch: bool = False,
) -> MemoryEstimate:
    """Itemised peak GPU memory of one training step (GiB): LoRA, QLoRA or full fine-tuning.

    method: "lora" (adapters; the base quantized or not) | "full" (train.method=full, master_weights fp32|bf16).
    quantization: "none" | "8bit" | "4bit" (bitsandbytes) | "gptq" | "awq"; a checkpoint whose config.json carries
    a quantization_config is planned as stored. optimizer: HF names (adamw_torch, paged_adamw_8bit, ...).
    modules_to_save: embed_tokens / lm_head trained in full beside the adapters (train.lora.modules_to_save).
    Knobs that mirror code choices of the training stack:
      adapter_dtype       PEFT keeps adapters in fp32 by default (autocast_adapter_dtype=True).
      upcast_frozen_fp32  True: every non-quantized weight in fp32, as peft.prepare_model_for_kbit_training does
                          (`slm plan --frozen-fp32`). Default False: `slm train` keeps them in bf16.
      load_vision_tower   True: a multimodal Gemma's SigLIP tower is in GPU memory. Default False: `slm train` trains
                          the language model alone on text (export.keep_vision restores it).
      attn_impl           "sdpa" (default), "flash_attention_2" (no masks), "eager" (materialises attention).
      loss_impl           plan.loss_head: "fused" = TRL 1.16's tiled LM head (what `slm train` runs); "full" =
                          transformers' loss on fp32 [tokens, vocab] logits; "chunked" = LitGPT's bf16 logits.
      bnb_saves_inputs    True reproduces bitsandbytes <= 0.43, which saved each 4-bit layer's input.
      impl                "hf" (transformers modules, bf16 autocast) or "litgpt" (its modules, bf16-true).
    n_gpus, strategy: several GPUs, "ddp" (a replica each) or "fsdp" (sharded); the lines are then one GPU's share
    (`fine_tuning.plan.parallel`). grad_accum_steps (train.gradient_accumulation_steps) and sync_each_batch: under
    FSDP, accumulating without syncing each micro-batch (torch's no_sync, what the Trainer and LitGPT do) keeps every
    trainable gradient unsharded until the last micro-batch.
    """
    choices = dict(locals())
    for key in ("spec_or_arch", "n_gpus", "strategy", "grad_accum_steps", "sync_each_batch"):
        del choices[key]
    layout = Layout(n_gpus, strategy, grad_accum_steps, sync_each_batch)
    arch, spec = as_architecture(spec_or_arch)
    s = resolve_setup(arch, spec, choices)
    n_lora = lora_param_count(arch, s)
    activations = activation_profile(arch, s)
    lines = [
        weights_term(arch, s),
        lora_params_term(s, n_lora),
        modules_to_save_term(arch, s),
        gradients_term(arch, s, n_lora),
        optimizer_states_term(arch, s, n_lora),
        weight_copies_term(arch, s),
        activations_term(activations),
        backward_peak_term(arch, s, activations),
        workspace_term(arch, s),
    ]
    scratch_gb = optimizer_scratch_bytes(arch, s, n_lora) / GIB
    lines, scratch_gb = fsdp_lines(lines, arch, s, layout, scratch_gb)
    lines.append(not_at_once_term(arch, s, lines, activations, scratch_gb))
    lines = ddp_lines(lines, layout)
    lines.append(cuda_overhead_term(sum(ln.gb for ln in lines), sum(ln.gb for ln in lines if ln.name == "weights")))
    settings = {**setup_settings(s, trainable_params(arch, s)), **layout.settings()}
    return MemoryEstimate(tuple(lines), settings)
