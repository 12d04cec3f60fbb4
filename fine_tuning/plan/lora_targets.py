"""Which decoder-layer projections a LoRA target spec wraps, in the planner's terms (q, k, v, o, gate, up, down).

Pure Python (no torch, no peft): the planner reads PEFT's three forms of `target_modules` — a list of module names
(suffix match), a regex (full match against module names) or "all-linear" — without building a model.
"""

from __future__ import annotations

import re

from fine_tuning.plan.architecture import Architecture
from fine_tuning.plan.registry import default_lora_targets

__all__ = ["resolve_lora_targets"]

# Module leaf names of the common architectures → logical projection.
_PROJ_ALIASES = {
    "q_proj": "q",
    "query": "q",
    "q": "q",
    "k_proj": "k",
    "key": "k",
    "k": "k",
    "v_proj": "v",
    "value": "v",
    "v": "v",
    "o_proj": "o",
    "dense": "o",
    "out_proj": "o",
    "o": "o",
    "gate_proj": "gate",
    "w1": "gate",
    "gate": "gate",
    "up_proj": "up",
    "fc1": "up",
    "w3": "up",
    "up": "up",
    "down_proj": "down",
    "fc2": "down",
    "w2": "down",
    "down": "down",
}


def _canonical_module_names(arch: Architecture, proj: str) -> list[str]:
    """Full module names of one projection in layer 0, under each prefix a transformers model may use."""
    if arch.family == "phi":
        leaf = {
            "q": "self_attn.q_proj",
            "k": "self_attn.k_proj",
            "v": "self_attn.v_proj",
            "o": "self_attn.dense",
            "up": "mlp.fc1",
            "down": "mlp.fc2",
        }[proj]
    else:
        leaf = {
            "q": "self_attn.q_proj",
            "k": "self_attn.k_proj",
            "v": "self_attn.v_proj",
            "o": "self_attn.o_proj",
            "gate": "mlp.gate_proj",
            "up": "mlp.up_proj",
            "down": "mlp.down_proj",
        }[proj]
    prefixes = ["model.", "model.language_model.", "language_model.model."]
    return [f"{p}layers.0.{leaf}" for p in prefixes]


def _regex_targets(arch: Architecture, targets: str) -> tuple[str, ...]:
    try:
        pattern = re.compile(targets)
    except re.error as exc:
        raise ValueError(f"lora target regex {targets!r} does not compile: {exc}") from exc
    projs = arch.projections()
    found = tuple(p for p in projs if any(pattern.fullmatch(n) for n in _canonical_module_names(arch, p)))
    if not found:
        raise ValueError(f"lora target regex {targets!r} matches no q/k/v/o/gate/up/down projection")
    return found


def _named_targets(arch: Architecture, targets: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    projs = arch.projections()
    found: list[str] = []
    for name in targets:
        leaf = str(name).split(".")[-1]
        if leaf in ("lm_head", "embed_tokens"):
            continue  # not a decoder-layer projection; not modelled (small for LoRA)
        proj = _PROJ_ALIASES.get(leaf)
        if proj is None:
            raise ValueError(f"unknown LoRA target {name!r}; known: {', '.join(sorted(_PROJ_ALIASES))}")
        if proj in projs and proj not in found:
            found.append(proj)
    if not found:
        raise ValueError(f"LoRA targets {list(targets)!r} name no projection of this architecture")
    return tuple(found)


def resolve_lora_targets(arch: Architecture, targets: list[str] | tuple[str, ...] | str | None) -> tuple[str, ...]:
    """Which decoder-layer projections (q, k, v, o, gate, up, down) a LoRA target spec wraps.

    Accepts PEFT's forms: a list of module names (suffix match), a regex (full match) or "all-linear".
    """
    if targets is None:
        targets = default_lora_targets(arch)
    if isinstance(targets, str):
        if targets == "all-linear":
            return tuple(arch.projections())
        return _regex_targets(arch, targets)
    return _named_targets(arch, targets)
