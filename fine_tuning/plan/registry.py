"""The model registry: which models SLM Forest fine-tunes, and the training facts the pipeline needs about each.

Pure Python on purpose (no torch, no transformers): `slm plan`, config validation and the data stages import it,
and it must import in well under 0.2 s.

What lives here
  * `ModelSpec`: an architecture (`fine_tuning.plan.architecture`) plus the training facts the pipeline needs (LoRA
    targets, chat end-of-turn token, whether fp16 is allowed, which modules 4-bit loading must skip).
  * `get_model_spec()`: registry key, Hugging Face id, or a local directory with ``config.json`` → `ModelSpec`.
  * `choose_dtype()`: the one place that decides bf16 / fp16 / fp32.
The registry's entries (real checkpoints and tiny test models) are data, in `fine_tuning.plan.model_table`; a hub
id outside them is resolved through `fine_tuning.plan.hub`.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from fine_tuning.plan.architecture import Architecture, architecture_from_config
from fine_tuning.plan.hub import hub_config
from fine_tuning.plan.model_table import (
    GEMMA3_LORA_TARGET_REGEX,
    GEMMA3_MM_SKIP_MODULES,
    KNOWN_CHECKPOINTS,
    PHI_LORA_TARGETS,
    TINY_CONFIGS,
    TINY_VOCAB_SIZE,
)

__all__ = ["ModelSpec", "choose_dtype", "default_lora_targets", "get_model_spec", "known_models"]


@dataclass(frozen=True)
class ModelSpec:
    name: str  # registry key, e.g. "phi-2", "gemma-3-12b-it", "tiny-random-phi"
    hf_id: str | None  # "microsoft/phi-2"; None for tiny local models and local directories
    arch: Architecture
    lora_target_modules: list[str] | str  # list of module names, a regex (PEFT fullmatch), or "all-linear"
    multimodal: bool  # True for Gemma3ForConditionalGeneration checkpoints (4B/12B/27B)
    end_of_turn_token: str | None  # "<end_of_turn>" for Gemma; None for Phi-2 (no chat template)
    allows_fp16: bool  # False for Gemma 3: activations overflow fp16 (NaN / empty output)
    skip_quantization_modules: list[str] = field(default_factory=list)  # llm_int8_skip_modules for 4/8-bit loading
    notes: str = ""


def default_lora_targets(arch: Architecture) -> list[str] | str:
    """LoRA targets for an architecture: Phi's explicit list, the Gemma language-model regex, else "all-linear"."""
    if arch.family == "phi" and arch.model_type == "phi":
        return list(PHI_LORA_TARGETS)
    if arch.family == "gemma":
        return GEMMA3_LORA_TARGET_REGEX
    return "all-linear"


def _spec_for(name: str, hf_id: str | None, arch: Architecture, notes: str = "") -> ModelSpec:
    gemma = arch.family == "gemma"
    multimodal = arch.vision_params > 0
    if gemma and multimodal:
        skip = list(GEMMA3_MM_SKIP_MODULES)
    else:
        skip = ["lm_head"]
    return ModelSpec(
        name=name,
        hf_id=hf_id,
        arch=arch,
        lora_target_modules=default_lora_targets(arch),
        multimodal=multimodal,
        end_of_turn_token="<end_of_turn>" if gemma else None,
        allows_fp16=not gemma,
        skip_quantization_modules=skip,
        notes=notes,
    )


_REGISTRY: dict[str, ModelSpec] = {
    name: _spec_for(name, hf_id, architecture_from_config(config), notes)
    for name, hf_id, config, notes in KNOWN_CHECKPOINTS
}
for _name, _cfg in TINY_CONFIGS.items():
    _REGISTRY[_name] = _spec_for(
        _name,
        None,
        architecture_from_config(_cfg),
        f"tiny random model for CPU tests; vocab_size {TINY_VOCAB_SIZE} is a placeholder "
        "until the tokenizer is trained",
    )


def known_models() -> list[str]:
    """Registry keys, in registration order."""
    return list(_REGISTRY)


def _copy(spec: ModelSpec, **changes: Any) -> ModelSpec:
    targets = spec.lora_target_modules
    return replace(
        spec,
        lora_target_modules=list(targets) if isinstance(targets, list) else targets,
        skip_quantization_modules=list(spec.skip_quantization_modules),
        **changes,
    )


def _spec_from_config_file(path: Path, name: str, hf_id: str | None) -> ModelSpec:
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"cannot read {path}: {exc}") from exc
    arch = architecture_from_config(config)
    notes = f"read from {path}"
    if default_lora_targets(arch) == "all-linear":
        notes += "; unknown architecture: LoRA targets 'all-linear', generic facts"
    return _spec_for(name, hf_id, arch, notes)


def get_model_spec(name_or_path: str | os.PathLike[str]) -> ModelSpec:
    """Look up a model by registry key, Hugging Face id, or local directory (or file) with ``config.json``.

    A Hugging Face id outside the registry (``owner/name``, e.g. ``Qwen/Qwen2.5-0.5B-Instruct``) is resolved from its
    ``config.json``: the local HF cache first, else downloaded with ``huggingface_hub`` (that one file only); its
    architecture is read from the config and LoRA targets ``all-linear`` (or the family's list). With
    HF_HUB_OFFLINE set and nothing cached, a ValueError says how to fix it. Other unknown names are a ValueError
    naming the known keys.
    """
    raw = os.fspath(name_or_path).strip()
    key = raw.lower()
    if key in _REGISTRY:
        return _copy(_REGISTRY[key])
    for spec in _REGISTRY.values():
        if spec.hf_id and spec.hf_id.lower() == key:
            return _copy(spec)
    path = Path(raw).expanduser()
    if path.is_dir():
        cfg = path / "config.json"
        if not cfg.is_file():
            raise ValueError(f"{path} is a directory but has no config.json; is it a saved model?")
        return _spec_from_config_file(cfg, path.resolve().name, None)
    if path.is_file() and path.name == "config.json":
        return _spec_from_config_file(path, path.resolve().parent.name, None)
    known = ", ".join(known_models())
    hf_ids = ", ".join(s.hf_id for s in _REGISTRY.values() if s.hf_id)
    if re.fullmatch(r"[\w.-]+/[\w.-]+", raw) and not path.exists():
        try:
            config = hub_config(raw)
        except ValueError as exc:
            raise ValueError(f"{exc}. (Registry keys: {known}.)") from None
        return _spec_from_config_file(config, raw.split("/")[-1], raw)
    raise ValueError(
        f"unknown model {raw!r}. Known registry keys: {known} (or their ids: {hf_ids}); "
        "or pass a Hugging Face id (owner/name) or a local directory containing config.json."
    )


# --------------------------------------------------------------------------------------------------------------------
# dtype rules
# --------------------------------------------------------------------------------------------------------------------

_DTYPE_ALIASES = {
    "auto": "auto",
    "bf16": "bf16",
    "bfloat16": "bf16",
    "fp16": "fp16",
    "float16": "fp16",
    "half": "fp16",
    "fp32": "fp32",
    "float32": "fp32",
    "float": "fp32",
}


def choose_dtype(
    spec: ModelSpec,
    device: str,
    bf16_supported: bool,
    requested: str = "auto",
    allow_fp32_fallback: bool = False,
) -> str:
    """Pick the training dtype: "bf16", "fp16" or "fp32".

    Rules (in order):
      * fp16 for a model that does not allow it (Gemma 3) → ValueError, on any device.
      * CPU / non-CUDA device → "fp32" (TRL cannot train bf16 on CPU); an explicit bf16/fp16 there → ValueError.
      * CUDA: "auto" → bf16 when supported (Ampere+), else fp16 if the model allows it, else (Gemma on a pre-Ampere
        GPU) ValueError unless ``allow_fp32_fallback`` (then "fp32": slow and twice the weight memory).
        An explicit "bf16" on a GPU without bf16 → same fallback rule.
    """
    req = _DTYPE_ALIASES.get(str(requested).strip().lower())
    if req is None:
        raise ValueError(f"unknown dtype {requested!r}; use one of auto, bf16, fp16, fp32")
    name = spec.name
    if req == "fp16" and not spec.allows_fp16:
        raise ValueError(
            f"{name} cannot train in fp16: Gemma 3 activations overflow fp16 (NaN loss / empty generations). "
            "Use bf16 on an Ampere-or-newer GPU (A100, A40, A6000, L4, L40S, RTX 30xx/40xx, H100) or fp32."
        )
    dev = str(device).strip().lower()
    if not dev.startswith("cuda"):
        if req in ("bf16", "fp16"):
            raise ValueError(
                f"dtype {req} was requested on device {device!r}; use dtype 'auto' or 'fp32' off-GPU "
                "(TRL cannot train in bf16/fp16 on CPU)"
            )
        return "fp32"
    if req == "fp32":
        return "fp32"
    if req == "fp16":
        return "fp16"
    if bf16_supported:
        return "bf16"
    # CUDA without bf16 (pre-Ampere: T4, V100, RTX 20xx)
    if req == "auto" and spec.allows_fp16:
        return "fp16"
    if allow_fp32_fallback:
        return "fp32"
    hint = "pass dtype 'fp16' or 'auto'" if spec.allows_fp16 else "Gemma 3 cannot use fp16 (activations overflow)"
    raise ValueError(
        f"this GPU has no bf16 support (pre-Ampere) and {name} was asked to train in {req}: {hint}; "
        "use an Ampere-or-newer GPU, or allow the fp32 fallback (allow_fp32_fallback=True; ~2x memory, slower)."
    )
