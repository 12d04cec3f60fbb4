"""`slm config validate`: what can be known about a run without a GPU or the network.

Beyond the schema (load_config): the base model must be a registry key, a local model directory or shaped like a
Hugging Face id (owner/name); fp16 is refused for a model whose registry entry forbids it (Gemma 3),
flash-attention for a model whose training class does not declare it (read from the installed transformers); and every
secret the run will need (teacher and judge keys, the law.go.kr OC, HF_TOKEN for a push, WANDB_API_KEY) is looked
for in the environment — a warning only, since validation may run on another machine than the stages. A spending
cap over a teacher with no known price is an error (the stage refuses it too, but only when it is reached); a cap
with no teacher under it is a warning.

The registry lives in fine_tuning/plan/registry.py (torch-free); it is imported inside the check, so importing
slm_forest never imports fine_tuning.
"""

from __future__ import annotations

import difflib
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from slm_forest.config import LawgoSource, RunConfig
from slm_forest.config_source import YamlSource, parse_override, read_yaml_config
from slm_forest.errors import SlmError

HUB_ID = re.compile(r"[\w.-]+/[\w.-]+")


@dataclass(frozen=True)
class Finding:
    level: Literal["error", "warning"]
    key: str  # dotted config key
    message: str
    hint: str


def check_config(cfg: RunConfig) -> list[Finding]:
    """Errors first, then warnings; an empty list means nothing is wrong that can be known here."""
    findings = [
        *_base_model_findings(cfg),
        *train_method_findings(cfg),
        *_cost_cap_findings(cfg),
        *_secret_findings(cfg),
    ]
    return sorted(findings, key=lambda f: f.level != "error")


def where(key: str, cfg: RunConfig, overrides: list[str]) -> str:
    """`--set key=…` when an override set it, else `<file>:<line>` of the key (or its nearest parent written)."""
    for assignment in reversed(overrides):
        set_key = ".".join(parse_override(assignment)[0])
        if key == set_key or key.startswith(set_key + "."):
            return f"--set {assignment}"
    source: YamlSource | None = read_yaml_config(Path(cfg.source_path)) if cfg.source_path else None
    if source is None:
        return key
    parts = key.split(".")
    for depth in range(len(parts), 0, -1):
        line = source.lines.get(".".join(parts[:depth]))
        if line:
            return f"{source.path}:{line}: {key}"
    return f"{source.path}: {key}"


# ---------------------------------------------------------------------------------------------------- base model
def _base_model_findings(cfg: RunConfig) -> list[Finding]:
    from fine_tuning.plan import registry  # noqa: PLC0415 - lazy: slm_forest never imports fine_tuning at import

    name = cfg.train.base_model.strip()
    hub_ids = [spec.hf_id.lower() for spec in map(registry.get_model_spec, registry.known_models()) if spec.hf_id]
    path = Path(name).expanduser()
    if name.lower() in registry.known_models() or name.lower() in hub_ids:
        spec = registry.get_model_spec(name)
    elif path.exists():
        try:
            spec = registry.get_model_spec(path)  # a local config.json: no network
        except ValueError as exc:
            return [Finding("error", "train.base_model", str(exc), "pass a directory saved with save_pretrained")]
    elif HUB_ID.fullmatch(name):
        return []  # a Hugging Face id: its config.json would need the network, so `slm plan` / `slm train` check it
    else:
        choices = [*registry.known_models(), *hub_ids]
        close = difflib.get_close_matches(name.lower(), choices, n=1, cutoff=0.5)
        hint = f"did you mean '{close[0]}'? " if close else ""
        return [
            Finding(
                "error",
                "train.base_model",
                f"unknown model '{name}': not a registry key, not a local path, not a Hugging Face id (owner/name)",
                f"{hint}registry keys: {', '.join(registry.known_models())}",
            )
        ]
    warnings = int8_findings(cfg, spec)
    if cfg.train.attn_implementation == "flash_attention_2":
        from fine_tuning.train.attention import flash_attention_problem  # noqa: PLC0415 - imports transformers

        problem = flash_attention_problem(spec.arch.model_type)
        if problem:
            return warnings + [
                Finding(
                    "error",
                    "train.attn_implementation",
                    f"flash_attention_2 cannot train {spec.name}: {problem}",
                    "use train.attn_implementation: auto (flash-attention where the class supports it, else SDPA)",
                )
            ]
    if cfg.train.dtype == "fp16" and not spec.allows_fp16:
        return warnings + [
            Finding(
                "error",
                "train.dtype",
                f"fp16 cannot train {spec.name}: its activations overflow fp16 (NaN loss, empty generations)",
                "use train.dtype: bf16 (or auto); on a GPU without bf16, fp32 with train.allow_fp32_fallback: true",
            )
        ]
    return warnings


# -------------------------------------------------------------------------------------------------- train method
def _method_error(key: str, message: str, hint: str) -> Finding:
    return Finding("error", key, message, hint)


def train_method_findings(cfg: RunConfig) -> list[Finding]:
    """Settings of `train` (and reinforce) that contradict `train.method`; `slm train` refuses the first error too.

    "Set" means written in the config or an override (pydantic's fields_set): a default never contradicts."""
    train = cfg.train
    written, method = train.model_fields_set, train.method
    findings: list[Finding] = []
    if "quantization" in written and method != "qlora":
        findings.append(
            _method_error(
                "train.quantization",
                f"train.quantization={train.quantization} only applies to train.method: qlora (the method is {method})",
                "remove train.quantization, or set train.method: qlora",
            )
        )
    if "master_weights" in written and method != "full":
        findings.append(
            _method_error(
                "train.master_weights",
                f"train.master_weights={train.master_weights} only applies to train.method: full (the method is {method})",
                "remove train.master_weights, or set train.method: full",
            )
        )
    if method == "full" and train.lora.modules_to_save:
        findings.append(
            _method_error(
                "train.lora.modules_to_save",
                "train.lora.modules_to_save with train.method: full: full fine-tuning already trains every module",
                "remove train.lora.modules_to_save, or use train.method: lora / qlora",
            )
        )
    if method == "full" and "target_modules" in train.lora.model_fields_set:
        findings.append(
            _method_error(
                "train.lora.target_modules",
                "train.lora.target_modules with train.method: full: there are no adapters to place",
                "remove train.lora.target_modules, or use train.method: lora / qlora",
            )
        )
    if method == "full" and train.master_weights == "bf16" and train.dtype in ("fp16", "fp32"):
        findings.append(
            _method_error(
                "train.dtype",
                f"train.master_weights: bf16 with train.dtype: {train.dtype}: bf16 weights train in bf16",
                "set train.dtype: bf16 (or auto), or train.master_weights: fp32",
            )
        )
    if method == "full" and cfg.reinforce.enabled:
        findings.append(
            _method_error(
                "reinforce.enabled",
                "reinforce.enabled: GRPO here continues the SFT adapter, and train.method: full leaves none",
                "set reinforce.enabled: false, or train with train.method: lora / qlora",
            )
        )
    return findings


def int8_findings(cfg: RunConfig, spec: Any) -> list[Finding]:
    """int8 under a model that must not compute in fp16: bitsandbytes 0.50's MatMul8bitLt casts every 8-bit
    layer's input to fp16 to quantize it, so Gemma 3 activations above 65,504 would overflow there."""
    if cfg.train.method != "qlora" or cfg.train.quantization != "int8" or spec.allows_fp16:
        return []
    return [
        Finding(
            "warning",
            "train.quantization",
            f"int8: bitsandbytes casts every 8-bit layer's input to fp16, where {spec.name}'s activations can overflow",
            "prefer train.quantization: nf4 for this model (its compute dtype is bf16)",
        )
    ]


# ------------------------------------------------------------------------------------------------------- secrets
def _teachers(cfg: RunConfig) -> list[tuple[str, object]]:
    found: list[tuple[str, object]] = [(f"distill.teachers.{i}", t) for i, t in enumerate(cfg.distill.teachers)]
    for key in ("build.judge", "build.second_teacher", "evaluate.judge"):
        section, field = key.split(".")
        teacher = getattr(getattr(cfg, section), field)
        if teacher is not None:
            found.append((key, teacher))
    return found


# Which teachers each spending cap limits (the stages' own budgets: distill's engine, build's and evaluate's
# teacher_calls.check_price).
CAPPED_TEACHERS = {
    "distill.max_cost_usd": ("distill.teachers",),
    "build.max_cost_usd": ("build.judge", "build.second_teacher"),
    "evaluate.max_cost_usd": ("evaluate.judge",),
}


def _cost_cap_findings(cfg: RunConfig) -> list[Finding]:
    """A cap with nothing under it (a warning: it does nothing), and a capped teacher whose price is unknown (an error:
    the stage would refuse it after collect/prepare/distill had run, so say it before anything runs)."""
    from slm_datagen.distill.pricing import price_under_cap  # noqa: PLC0415 - pricing tables, torch-free

    out: list[Finding] = []
    teachers = _teachers(cfg)
    for cap_key, prefixes in CAPPED_TEACHERS.items():
        section, field = cap_key.split(".")
        if getattr(getattr(cfg, section), field) is None:
            continue
        capped = [(key, t) for key, t in teachers if any(key == p or key.startswith(p + ".") for p in prefixes)]
        if not capped:
            needs = " or ".join(prefixes)
            message = f"{cap_key} is set but no {needs} is configured, so it limits nothing"
            out.append(Finding("warning", cap_key, message, f"configure {needs}, or remove {cap_key}"))
        for key, teacher in capped:
            try:
                price_under_cap(teacher.model, teacher.provider, cfg.distill.prices, cap_key)  # type: ignore[attr-defined]
            except SlmError as exc:
                out.append(Finding("error", key, exc.message, exc.hint))
    return out


def _secret_findings(cfg: RunConfig) -> list[Finding]:
    from slm_datagen.distill.teachers import DEFAULT_KEY_ENV  # noqa: PLC0415 - the providers' default variables

    needed: list[tuple[str, str, str]] = []  # (config key, variable, what needs it)
    for key, teacher in _teachers(cfg):
        provider, model, env = teacher.provider, teacher.model, teacher.api_key_env  # type: ignore[attr-defined]
        if provider == "offline" or (provider == "openai_compatible" and env is None):
            continue  # the offline teacher, or a local server (vLLM, Ollama) that takes any key
        needed.append((key, env or DEFAULT_KEY_ENV[provider], f"teacher {provider}:{model}"))
    for index, source in enumerate(cfg.collect.sources):
        if isinstance(source, LawgoSource):
            needed.append((f"collect.sources.{index}.oc_env", source.oc_env, "the law.go.kr source (its OC)"))
    for key in ("build.push_to_hub", "export.push_to_hub"):
        section, field = key.split(".")
        if getattr(getattr(cfg, section), field):
            needed.append((key, "HF_TOKEN", "the upload to the Hugging Face Hub"))
    if "wandb" in cfg.train.report_to:
        needed.append(("train.report_to", "WANDB_API_KEY", "reporting to Weights & Biases"))
    return [
        Finding(
            "warning",
            key,
            f"{what} reads its key from {env}, which is not set in this environment",
            f"export {env}=… where the stage runs (fine to ignore if that is another machine)",
        )
        for key, env, what in needed
        if not os.environ.get(env, "").strip()
    ]
