"""Checks the train stage makes before any weights are loaded: device, model, dtype, schedule, report targets,
optimizer — each failure one SlmError naming the config key — and the end-of-turn token training must include.
"""

from __future__ import annotations

import importlib.util
import os
from typing import Any

from slm_forest.errors import SlmError


def detect_device() -> tuple[str, bool]:
    import torch

    if torch.cuda.is_available():
        return "cuda", bool(torch.cuda.is_bf16_supported())
    return "cpu", False


def model_spec(base_model: str) -> Any:
    from fine_tuning.plan.registry import get_model_spec

    try:
        return get_model_spec(base_model)
    except ValueError as exc:
        raise SlmError(
            f"train.base_model: {exc}", "use a registry key, a Hugging Face id (owner/name) or a local model directory"
        ) from None


def resolve_dtype(spec: Any, device: str, bf16_supported: bool, cfg: Any) -> str:
    """The registry's dtype rules (Gemma 3 never fp16, fp32 on CPU) as a config error naming train.dtype."""
    from fine_tuning.plan.registry import choose_dtype

    try:
        dtype = choose_dtype(
            spec, device, bf16_supported, requested=cfg.dtype, allow_fp32_fallback=cfg.allow_fp32_fallback
        )
    except ValueError as exc:
        raise SlmError(
            f"train.dtype={cfg.dtype}: {exc}",
            "set train.dtype=auto (bf16 on Ampere+ GPUs, fp32 on CPU) or train.allow_fp32_fallback=true",
        ) from None
    if dtype == "fp16" and not spec.allows_fp16:  # the registry's rule, enforced again where the model is loaded
        raise SlmError(f"train.dtype: {spec.name} must not train in fp16 (activations overflow)", "use bf16")
    return dtype


def end_of_turn_token(spec: Any, choice: Any, tokenizer: Any) -> str:
    """The token that ends an answer, which training must include in the loss.

    The registry's (`<end_of_turn>` for Gemma); for Phi-2's Instruct/Output format, eos; for a template that closes
    turns with `<end_of_turn>` (our tiny models, whatever their architecture), that token; otherwise eos.
    """
    if spec.end_of_turn_token:
        return spec.end_of_turn_token
    if choice.source != "slm:phi2" and "<end_of_turn>" in choice.template and "<end_of_turn>" in tokenizer.get_vocab():
        return "<end_of_turn>"
    if tokenizer.eos_token is None:
        raise SlmError(
            "the tokenizer has no eos token to end answers with", "set train.chat_template and use a tokenizer with eos"
        )
    return tokenizer.eos_token


def report_targets(cfg: Any) -> list[str]:
    targets = list(dict.fromkeys(cfg.report_to))
    unknown = [t for t in targets if t not in ("tensorboard", "wandb", "none")]
    if unknown:
        raise SlmError(f"train.report_to: unknown target '{unknown[0]}'", "use tensorboard, wandb, or []")
    if "wandb" in targets and importlib.util.find_spec("wandb") is None:
        # Checked here, before any model is loaded: transformers' WandbCallback would only fail once training starts.
        raise SlmError(
            "train.report_to includes wandb but the wandb package is not installed",
            "pip install wandb (or pip install 'slm-forest[wandb]'), or remove wandb from train.report_to",
        )
    if "wandb" in targets and not os.environ.get("WANDB_API_KEY"):
        raise SlmError(
            "train.report_to includes wandb but WANDB_API_KEY is not set",
            "export WANDB_API_KEY=… or remove wandb from train.report_to",
        )
    return [t for t in targets if t != "none"]


def check_schedule(cfg: Any, has_eval: bool) -> None:
    if has_eval and cfg.save_steps % cfg.eval_steps != 0:
        raise SlmError(
            f"train.save_steps={cfg.save_steps} is not a multiple of train.eval_steps={cfg.eval_steps}; the best "
            "checkpoint (by eval_loss) can only be kept at an evaluated step",
            f"set train.save_steps to {cfg.eval_steps * max(1, round(cfg.save_steps / cfg.eval_steps))}",
        )


def check_optimizer(name: str) -> str:
    """`train.optim` must be one of transformers' optimizer names (TrainingArguments.optim)."""
    from transformers.training_args import OptimizerNames

    known = [o.value for o in OptimizerNames]
    if name not in known:
        raise SlmError(
            f"train.optim: unknown optimizer '{name}'",
            "use a transformers optimizer name, e.g. adamw_torch, adamw_torch_fused or paged_adamw_8bit (GPU, less memory)",
        )
    return name


def check_method_settings(run_cfg: Any, spec: Any = None) -> None:
    """The first contradiction between train.method and the other settings (`slm_forest.validate`) as an SlmError
    naming the key, before anything is loaded; warnings (int8 under Gemma 3, given its registry `spec`) are printed."""
    from slm_forest.progress import console
    from slm_forest.validate import int8_findings, train_method_findings

    findings = train_method_findings(run_cfg) + (int8_findings(run_cfg, spec) if spec is not None else [])
    errors = [f for f in findings if f.level == "error"]
    if errors:
        raise SlmError(errors[0].message, errors[0].hint)
    for finding in findings:
        console.print(f"[yellow]train: {finding.key}: {finding.message} ({finding.hint})[/yellow]")


def check_master_weights(cfg: Any, device: str, bf16_supported: bool) -> None:
    """Pure-bf16 full fine-tuning needs a GPU with bf16 (Ampere or newer); on CPU torch trains bf16 without autocast."""
    if cfg.method == "full" and cfg.master_weights == "bf16" and device == "cuda" and not bf16_supported:
        raise SlmError(
            "train.master_weights=bf16: this GPU has no bf16 (pre-Ampere)",
            "set train.master_weights: fp32 (fp16 autocast for models that allow it), or use an Ampere-or-newer GPU",
        )
