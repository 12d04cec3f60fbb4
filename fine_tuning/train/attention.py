"""Which attention kernel `slm train` asks transformers for, decided per model class from what the installed
transformers declares.

Why per class: `Gemma3ForConditionalGeneration` declares `_supports_flash_attn = False` (flash-attention would drop
the bidirectional mask over image tokens) and raises at load when asked for it, while `Gemma3ForCausalLM` and
`PhiForCausalLM` support it. Asking for flash-attention whenever `flash_attn` is installed broke the production
Gemma 3 configs on every pod image that ships it.

Every choice keeps packed sequences apart: TRL's padding-free batches are one flattened row with position_ids
restarting at each example. flash-attention 2 turns the restarts into varlen boundaries, and SDPA and eager build a
block-diagonal causal mask from them (transformers 5 `create_causal_mask` detects packed position_ids); tests pin
this for sdpa and eager on CPU and for flash-attention 2 on CUDA.

`train.attn_implementation`: auto (flash-attention 2 on CUDA when installed and the class supports it, else SDPA,
else eager), or one of sdpa / eager / flash_attention_2, refused with the reason when this class or machine cannot.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass

from slm_forest.errors import SlmError

ATTENTION_CHOICES = ("auto", "sdpa", "eager", "flash_attention_2")


@dataclass(frozen=True)
class AttentionChoice:
    implementation: str  # what transformers is asked for: sdpa | eager | flash_attention_2
    reason: str  # recorded in train_summary.json

    def to_dict(self) -> dict[str, str]:
        return {"implementation": self.implementation, "reason": self.reason}


def flash_attn_installed() -> bool:
    return importlib.util.find_spec("flash_attn") is not None


def choose_attention(
    model_cls: type, device: str, requested: str = "auto", *, flash_installed: bool | None = None
) -> AttentionChoice:
    """The attention implementation for `model_cls` on `device`; SlmError naming train.attn_implementation when an
    explicit request cannot work here."""
    if requested not in ATTENTION_CHOICES:
        raise SlmError(
            f"train.attn_implementation: unknown value '{requested}'", f"use one of: {', '.join(ATTENTION_CHOICES)}"
        )
    name = model_cls.__name__
    flash_ok = bool(getattr(model_cls, "_supports_flash_attn", False))
    sdpa_ok = bool(getattr(model_cls, "_supports_sdpa", False))
    installed = flash_attn_installed() if flash_installed is None else flash_installed
    if requested == "flash_attention_2":
        if not flash_ok:
            raise SlmError(
                f"train.attn_implementation=flash_attention_2: {name} declares no flash-attention support "
                "in this transformers version",
                "use train.attn_implementation: auto (or sdpa)",
            )
        if device != "cuda" or not installed:
            raise SlmError(
                "train.attn_implementation=flash_attention_2 needs a CUDA GPU and the flash_attn package",
                "pip install flash-attn on the GPU machine, or use train.attn_implementation: auto",
            )
        return AttentionChoice("flash_attention_2", "requested (train.attn_implementation)")
    if requested == "sdpa":
        if not sdpa_ok:
            raise SlmError(
                f"train.attn_implementation=sdpa: {name} declares no SDPA support",
                "use train.attn_implementation: auto (or eager)",
            )
        return AttentionChoice("sdpa", "requested (train.attn_implementation)")
    if requested == "eager":
        return AttentionChoice("eager", "requested (train.attn_implementation)")
    if device == "cuda" and installed and flash_ok:
        return AttentionChoice("flash_attention_2", f"auto: flash_attn installed and {name} supports it")
    if sdpa_ok:
        why = "on CPU" if device != "cuda" else ("flash_attn not installed" if flash_ok else f"{name} has no flash")
        return AttentionChoice("sdpa", f"auto: SDPA ({why}); packed rows get a block-diagonal mask")
    return AttentionChoice("eager", f"auto: {name} supports neither flash-attention nor SDPA")


def training_class_for_model_type(model_type: str) -> type | None:
    """The class `slm train` trains for a config's model_type, without reading any weights (for `slm config
    validate`): multimodal Gemma 3 ("gemma3") trains as Gemma3ForCausalLM (see `loading.training_model_class`)."""
    import transformers
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

    if model_type == "gemma3":
        return transformers.Gemma3ForCausalLM
    name = MODEL_FOR_CAUSAL_LM_MAPPING_NAMES.get(model_type)
    return getattr(transformers, name, None) if name else None


def flash_attention_problem(model_type: str) -> str | None:
    """Why `train.attn_implementation: flash_attention_2` cannot work for this model_type, or None."""
    import transformers

    model_cls = training_class_for_model_type(model_type)
    if model_cls is None or getattr(model_cls, "_supports_flash_attn", False):
        return None
    return (
        f"{model_cls.__name__} (model_type '{model_type}') declares no flash-attention support in "
        f"transformers {transformers.__version__}"
    )
