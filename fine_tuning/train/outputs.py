"""What a training run leaves in its stage directory: adapter/ (LoRA/QLoRA) or model/ (full fine-tuning),
tokenizer/, trainer_log.jsonl, loss.png and train_summary.json, written by the main process only, each directory
atomically.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from slm_forest.pipeline import StageResult


def last_logged(history: list[dict[str, Any]], key: str) -> float | None:
    values = [entry[key] for entry in history if key in entry]
    return round(float(values[-1]), 6) if values else None


def lowest_logged(history: list[dict[str, Any]], key: str) -> float | None:
    values = [entry[key] for entry in history if key in entry]
    return round(float(min(values)), 6) if values else None


def frozen_dtypes(model: Any) -> dict[str, int]:
    """Frozen parameters per storage dtype ("uint8" = 4-bit packed weights): the summary's proof of no fp32 cast."""
    counts: dict[str, int] = {}
    for param in model.parameters():
        if not param.requires_grad:
            name = str(param.dtype).replace("torch.", "")
            counts[name] = counts.get(name, 0) + param.numel()
    return counts


def trainable_dtypes(model: Any) -> dict[str, int]:
    """Trainable parameters per dtype: LoRA weights and modules_to_save copies (fp32), or every weight (full)."""
    counts: dict[str, int] = {}
    for param in model.parameters():
        if param.requires_grad:
            name = str(param.dtype).replace("torch.", "")
            counts[name] = counts.get(name, 0) + param.numel()
    return counts


def method_facts(cfg: Any, model: Any) -> dict[str, Any]:
    """The summary's record of how the method was set up: LoRA (targets, modules_to_save, tied embeddings), the
    quantization under QLoRA, the master weights under full fine-tuning."""
    if cfg.method == "full":
        return {"master_weights": cfg.master_weights, "lora": None}
    peft_config = model.peft_config["default"]
    facts: dict[str, Any] = {
        "lora": cfg.lora.model_dump(mode="json")
        | {
            "target_modules": jsonable(peft_config.target_modules),
            "modules_to_save": list(peft_config.modules_to_save or []),
            "tied_embeddings_trained_once": bool(peft_config.ensure_weight_tying),
        }
    }
    if cfg.method == "qlora":
        facts["quantization"] = cfg.quantization
    return facts


def save_dir_atomically(stage_dir: Path, name: str, save: Any) -> Path:
    final = stage_dir / name
    tmp = stage_dir / f".{name}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    save(tmp)
    shutil.rmtree(final, ignore_errors=True)
    os.replace(tmp, final)
    return final


def _move_contents(source: Path, target: Path) -> None:
    """Move the model or adapter files the trainer wrote (not training_args.bin, which inference does not need)."""
    for path in source.iterdir():
        if path.name != "training_args.bin":
            shutil.move(str(path), target / path.name)
    shutil.rmtree(source, ignore_errors=True)


def jsonable(value: Any) -> Any:
    if isinstance(value, (set, frozenset)):
        return sorted(value)
    return value


def save_artifacts(
    trainer: Any,
    tokenizer: Any,
    stage_dir: Path,
    log_path: Path,
    title: str,
    main_process: bool,
    *,
    full: bool = False,
) -> None:
    """adapter/ (or model/ for full fine-tuning) and tokenizer/ (atomically), the whole log history and the loss
    plot; the FSDP gather on every rank."""
    from fine_tuning.train.callbacks import plot_loss, write_log_history
    from fine_tuning.train.full import MODEL_DIR, save_full_model

    history = trainer.state.log_history
    weights_dir = MODEL_DIR if full else "adapter"
    if getattr(trainer, "is_fsdp_enabled", False):
        # FSDP shards the weights across ranks: every rank takes part in gathering the full state dict, and the
        # trainer writes it from rank 0. (Written from PEFT's FSDP guide; not run here: no GPUs.)
        trainer.accelerator.state.fsdp_plugin.set_state_dict_type("FULL_STATE_DICT")
        gathered = stage_dir / f".{weights_dir}.fsdp"
        trainer.save_model(str(gathered))
        if main_process:
            # (Trainer.save_model also writes the tokenizer, its processing_class, beside a full model.)
            save_dir_atomically(stage_dir, weights_dir, lambda d: _move_contents(gathered, d))
    elif main_process and full:  # one writer; the other ranks hold identical weights (DDP) and wait below
        save_dir_atomically(stage_dir, weights_dir, lambda d: save_full_model(trainer.model, tokenizer, d))
    elif main_process:
        save_dir_atomically(stage_dir, weights_dir, lambda d: trainer.model.save_pretrained(str(d)))
    if main_process:
        save_dir_atomically(stage_dir, "tokenizer", lambda d: tokenizer.save_pretrained(str(d)))
        write_log_history(history, log_path)
        plot_loss(history, stage_dir / "loss.png", title=title)


def stage_result(summary: dict[str, Any], stage_dir: Path, log_path: Path, spec_name: str) -> StageResult:
    """The runner's record of the run: the files written, counts, the summary's headline numbers, one line."""
    weights = "model" if summary["method"] == "full" else "adapter"
    outputs = [stage_dir / weights, stage_dir / "tokenizer", log_path, stage_dir / "loss.png"]
    outputs.append(stage_dir / "train_summary.json")
    if summary["base_model_dir"]:
        outputs.insert(2, stage_dir / "base_model")
    share = summary["tokens"]["real_token_share"]
    eval_text = f", eval loss {summary['eval_loss']:.3f}" if summary["eval_loss"] is not None else ""
    train_text = f", train loss {summary['train_loss']:.3f}" if summary["train_loss"] is not None else ""
    steps = summary["global_step"]
    return StageResult(
        outputs=outputs,
        counts={"train_examples": summary["train_examples"], "val_examples": summary["val_examples"], "steps": steps},
        stats={
            k: summary[k]
            for k in ("method", "dtype", "device", "train_loss", "eval_loss", "best_eval_loss", "tokens", "timing")
        },
        summary=(
            f"{spec_name} {summary['method']} {summary['dtype']}: {steps} steps{train_text}{eval_text}, "
            f"real-token share {share if share is not None else 'n/a'}"
        ),
    )
