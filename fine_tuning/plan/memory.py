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

from fine_tuning.plan.architecture import Architecture
from fine_tuning.plan.lora_targets import resolve_lora_targets
from fine_tuning.plan.memory_terms import (
    DTYPE_BYTES,
    OPTIMIZER_STATES,
    QUANTIZATION_NAMES,
    MemoryLine,
    MemorySetup,
    activation_profile,
    activations_term,
    backward_peak_term,
    cuda_overhead_term,
    gradients_term,
    lora_param_count,
    lora_params_term,
    optimizer_states_term,
    weights_term,
    workspace_term,
)
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


def resolve_setup(
    arch: Architecture,
    spec: ModelSpec | None,
    *,
    quantization: str,
    dtype: str,
    lora_r: int,
    lora_targets: list[str] | str | None,
    seq_len: int,
    micro_batch: int,
    gradient_checkpointing: bool,
    optimizer: str,
    packing: bool,
    lora_dropout: float,
    adapter_dtype: str,
    upcast_frozen_fp32: bool | None,
    double_quant: bool,
    load_vision_tower: bool | None,
    attn_impl: str,
    loss_impl: str,
    bnb_saves_inputs: bool,
) -> MemorySetup:
    """Check `estimate_memory`'s arguments (ValueError naming the bad one) and fill in the defaults."""
    quant = QUANTIZATION_NAMES.get(str(quantization).lower())
    if quant is None:
        raise ValueError(f"unknown quantization {quantization!r}; use none, 8bit or 4bit")
    if str(dtype).lower() not in DTYPE_BYTES:
        raise ValueError(f"unknown dtype {dtype!r}; use bf16, fp16 or fp32")
    if str(adapter_dtype).lower() not in DTYPE_BYTES:
        raise ValueError(f"unknown adapter_dtype {adapter_dtype!r}; use fp32, bf16 or fp16")
    opt = str(optimizer).lower()
    if opt not in OPTIMIZER_STATES:
        raise ValueError(f"unknown optimizer {optimizer!r}; known: {', '.join(OPTIMIZER_STATES)}")
    if lora_r <= 0 or seq_len <= 0 or micro_batch <= 0:
        raise ValueError("lora_r, seq_len and micro_batch must be positive")
    if attn_impl not in ("sdpa", "flash_attention_2", "eager"):
        raise ValueError(f"unknown attn_impl {attn_impl!r}; use sdpa, flash_attention_2 or eager")
    if loss_impl not in ("fused", "full"):
        raise ValueError(f"unknown loss_impl {loss_impl!r}; use fused or full")
    if lora_targets is None and spec is not None:
        lora_targets = spec.lora_target_modules
    quantized = quant != "none"
    return MemorySetup(
        model=spec.name if spec else arch.model_type,
        quantization=quant,
        dtype=str(dtype).lower(),
        lora_r=lora_r,
        lora_targets=resolve_lora_targets(arch, lora_targets),
        seq_len=seq_len,
        micro_batch=micro_batch,
        gradient_checkpointing=gradient_checkpointing,
        optimizer=opt,
        packing=packing,
        lora_dropout=lora_dropout,
        adapter_dtype=str(adapter_dtype).lower(),
        upcast_frozen_fp32=bool(upcast_frozen_fp32) and quantized,
        double_quant=double_quant,
        vision_params=arch.vision_params if load_vision_tower else 0,
        attn_impl=attn_impl,
        loss_impl=loss_impl,
        bnb_saves_inputs=bnb_saves_inputs,
    )


def setup_settings(s: MemorySetup, trainable_params: int) -> dict[str, Any]:
    """The settings an estimate reports (`MemoryEstimate.settings`, in `slm plan --json`)."""
    return dict(
        model=s.model,
        quantization=s.quantization,
        dtype=s.dtype,
        lora_r=s.lora_r,
        lora_targets=list(s.lora_targets),
        seq_len=s.seq_len,
        micro_batch=s.micro_batch,
        gradient_checkpointing=s.gradient_checkpointing,
        optimizer=s.optimizer,
        packing=s.packing,
        lora_dropout=s.lora_dropout,
        adapter_dtype=s.adapter_dtype,
        upcast_frozen_fp32=s.upcast_frozen_fp32,
        double_quant=s.double_quant,
        load_vision_tower=bool(s.vision_params),
        attn_impl=s.attn_impl,
        loss_impl=s.loss_impl,
        bnb_saves_inputs=s.bnb_saves_inputs,
        trainable_params=trainable_params,
    )


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
      upcast_frozen_fp32  True: every non-quantized weight (embeddings, norms, vision tower) in fp32, as
                          peft.prepare_model_for_kbit_training does. Default False: `slm train` no longer calls it
                          (fine_tuning.train.loading.freeze_for_adapters keeps them in the compute dtype).
      load_vision_tower   True: a multimodal Gemma's SigLIP tower is in GPU memory. Default False: `slm train` trains
                          the language model alone on text (Gemma3ForCausalLM; export.keep_vision restores it).
      attn_impl           "sdpa" (default), "flash_attention_2" (no masks), "eager" (materialises attention).
      loss_impl           "fused" = TRL 1.16 SFTTrainer's tiled LM head (default); "full" = transformers' loss on
                          full [tokens, vocab] logits (custom loops, label smoothing, older TRL).
      bnb_saves_inputs    True reproduces 2023 bitsandbytes (<=0.41) that saved each 4-bit layer's input.
    """
    arch, spec = as_architecture(spec_or_arch)
    s = resolve_setup(
        arch,
        spec,
        quantization=quantization,
        dtype=dtype,
        lora_r=lora_r,
        lora_targets=lora_targets,
        seq_len=seq_len,
        micro_batch=micro_batch,
        gradient_checkpointing=gradient_checkpointing,
        optimizer=optimizer,
        packing=packing,
        lora_dropout=lora_dropout,
        adapter_dtype=adapter_dtype,
        upcast_frozen_fp32=upcast_frozen_fp32,
        double_quant=double_quant,
        load_vision_tower=load_vision_tower,
        attn_impl=attn_impl,
        loss_impl=loss_impl,
        bnb_saves_inputs=bnb_saves_inputs,
    )
    n_lora = lora_param_count(arch, s)
    activations = activation_profile(arch, s)
    lines = [
        weights_term(arch, s),
        lora_params_term(s, n_lora),
        gradients_term(s, n_lora),
        optimizer_states_term(s, n_lora),
        activations_term(activations),
        backward_peak_term(arch, s, activations),
        workspace_term(arch, s),
    ]
    lines.append(cuda_overhead_term(sum(ln.gb for ln in lines)))
    return MemoryEstimate(tuple(lines), setup_settings(s, n_lora))
