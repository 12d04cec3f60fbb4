"""Checkpoints and resumption: the resume key, the last complete checkpoint, the decision to continue or start
fresh (stale checkpoints removed only after every check passed), the tiny base stamped with its key, and a run
that already reached its end.

A checkpoint is complete once Trainer wrote its trainer_state.json (last). Checkpoints carry a key of the train
section (minus schedule knobs such as max_steps/save_steps) and the data hashes, so only a run of the same model,
data and optimisation setup is continued (see `fine_tuning.train.stage` for the whole story).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from slm_forest.errors import SlmError
from slm_forest.files import write_json
from slm_forest.progress import console

CHECKPOINT_PREFIX = "checkpoint-"
RESUME_KEY_FILE = "slm_resume_key.json"
BASE_KEY_FILE = "slm_base_key.json"  # in a locally built tiny base: the resume key it was built for
ADAPTER_FILES = ("adapter_config.json", "adapter_model.safetensors")

# Keys that may change between a killed run and its resumption without invalidating the checkpoints.
_RESUME_FREE_KEYS = {
    "max_steps",
    "epochs",
    "eval_steps",
    "save_steps",
    "save_total_limit",
    "early_stopping_patience",
    "logging_steps",
    "report_to",
    "wandb_project",
    "output_dir",
    "max_truncated_share",  # a check before training; what is trained is decided by `truncated`
}
# Keys added after checkpoints already existed: left out of the resume key while they hold the value the earlier
# code used implicitly, so those checkpoints still resume.
_RESUME_KEY_OMITTED_DEFAULTS = {
    "optim": "adamw_torch",
    "truncated": "stop",
    "attn_implementation": "auto",
    "quantization": "nf4",
    "master_weights": "fp32",
}


def resume_key(cfg: Any, seed: int, data_hashes: list[str]) -> str:
    """What must be identical for a checkpoint to be continued: the model, method, data and optimisation setup."""
    section = {k: v for k, v in cfg.model_dump(mode="json").items() if k not in _RESUME_FREE_KEYS}
    for name, implicit in _RESUME_KEY_OMITTED_DEFAULTS.items():
        if section.get(name) == implicit:
            section.pop(name)
    if isinstance(section.get("lora"), dict) and not section["lora"].get("modules_to_save"):
        section["lora"].pop("modules_to_save", None)  # added later, like the keys above
    payload = json.dumps({"train": section, "seed": seed, "data": data_hashes}, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(payload.encode()).hexdigest()


def checkpoint_step(path: Path) -> int:
    try:
        return int(path.name[len(CHECKPOINT_PREFIX) :])
    except ValueError:
        return -1


def last_complete_checkpoint(output_dir: Path) -> Path | None:
    """The newest checkpoint whose trainer_state.json (written last by Trainer) and adapter (or, full fine-tuning,
    model weights) exist."""
    from fine_tuning.train.full import is_full_checkpoint

    if not output_dir.is_dir():
        return None
    candidates = sorted(
        (p for p in output_dir.glob(f"{CHECKPOINT_PREFIX}*") if p.is_dir() and checkpoint_step(p) >= 0),
        key=checkpoint_step,
        reverse=True,
    )
    for path in candidates:
        weights = all((path / f).exists() for f in ADAPTER_FILES) or is_full_checkpoint(path)
        if (path / "trainer_state.json").exists() and weights:
            return path
    return None


@dataclass
class ResumeDecision:
    """What `decide_resume` found: the checkpoint to continue from, or a fresh start that will remove `stale`."""

    output_dir: Path
    key: str
    checkpoint: Path | None
    stale: list[Path] = field(default_factory=list)
    main_process: bool = True


def decide_resume(
    output_dir: Path, key: str, requested: bool, *, main_process: bool = True, fresh: bool = False
) -> ResumeDecision:
    """The checkpoint to continue from, or a fresh start — without touching anything on disk.

    `fresh` (`slm train --force` without `--resume`) starts over even when checkpoints of this configuration exist.
    Under several processes the main one decides first; the others only read (and see the same files).
    """
    checkpoint = last_complete_checkpoint(output_dir)
    key_path = output_dir / RESUME_KEY_FILE
    stored = json.loads(key_path.read_text(encoding="utf-8")).get("key") if key_path.exists() else None
    if checkpoint is not None and stored == key and (requested or not fresh):
        return ResumeDecision(output_dir, key, checkpoint, [], main_process)
    if not main_process:
        return ResumeDecision(output_dir, key, None, [], main_process)
    if requested:
        if checkpoint is None:
            raise SlmError(
                f"--resume: no complete checkpoint in {output_dir}", "run `slm train CONFIG` without --resume"
            )
        raise SlmError(
            f"--resume: the checkpoints in {output_dir} were made with another train config or other training data",
            "rerun without --resume to start over (those checkpoints are then replaced), or restore the old config",
        )
    stale = sorted(p for p in output_dir.glob(f"{CHECKPOINT_PREFIX}*") if p.is_dir()) if output_dir.is_dir() else []
    return ResumeDecision(output_dir, key, None, stale, main_process)


def commit_fresh_start(decision: ResumeDecision) -> None:
    """For a fresh start, on the main process: remove the stale checkpoints and record the new key.

    Called only once every check that can fail before training has passed, so a failed rerun loses nothing.
    """
    if decision.checkpoint is not None or not decision.main_process:
        return
    output_dir = decision.output_dir
    if decision.stale:
        console.print(
            f"[yellow]train: removing {len(decision.stale)} checkpoint(s) of another configuration in {output_dir}[/yellow]"
        )
        for path in decision.stale:
            shutil.rmtree(path, ignore_errors=True)
    output_dir.mkdir(parents=True, exist_ok=True)
    write_json(output_dir / RESUME_KEY_FILE, {"key": decision.key})


def resolve_resume(
    output_dir: Path, key: str, requested: bool, *, main_process: bool = True, fresh: bool = False
) -> Path | None:
    """`decide_resume` and, for a fresh start, `commit_fresh_start` at once (no checks in between)."""
    decision = decide_resume(output_dir, key, requested, main_process=main_process, fresh=fresh)
    commit_fresh_start(decision)
    return decision.checkpoint


# ------------------------------------------------------------------------------------------------------- base
def _base_key(base_dir: Path) -> str | None:
    path = base_dir / BASE_KEY_FILE
    return json.loads(path.read_text(encoding="utf-8")).get("key") if path.exists() else None


def prepare_base(
    spec: Any, cfg: Any, stage_dir: Path, texts: list[str], seed: int, reuse: bool, key: str | None = None
) -> tuple[str, bool]:
    """(path or hub id to load, whether it is a locally built tiny base under stage_dir/base_model).

    A tiny base is stamped with `key` (the resume key) and reused only for that key: a rerun that rebuilt it and then
    failed its checks keeps the old checkpoints, which must not later resume on the new base.
    """
    from fine_tuning.train.tiny import build_tiny_model, is_tiny

    if not is_tiny(spec.name):
        return spec.hf_id or cfg.base_model, False
    base_dir = stage_dir / "base_model"
    stamp = _base_key(base_dir)
    if reuse and (base_dir / "config.json").exists() and (key is None or stamp in (None, key)):
        return str(base_dir), True  # a resumed run continues on exactly the base its checkpoints were made with
    tmp = stage_dir / ".base_model.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    build_tiny_model(spec.name, tmp, texts, seed, cfg.tiny_model)
    if key is not None:
        write_json(tmp / BASE_KEY_FILE, {"key": key})
    shutil.rmtree(base_dir, ignore_errors=True)
    os.replace(tmp, base_dir)
    return str(base_dir), True


def finished_state(checkpoint: Path, cfg: Any) -> Any | None:
    """The checkpoint's TrainerState when it already reached this config's end (train.max_steps, or train.epochs
    when max_steps is -1), else None. max_steps and epochs may have been raised since: then training goes on."""
    from transformers import TrainerState

    state = TrainerState.load_from_json(str(checkpoint / "trainer_state.json"))
    if cfg.max_steps > 0:
        return state if state.global_step >= cfg.max_steps else None
    return state if state.epoch is not None and state.epoch >= cfg.epochs - 1e-9 else None


def restore_finished(trainer: Any, state: Any, checkpoint: Path, has_eval: bool) -> Any:
    """Load the adapter (or full model) a finished run ended with (the best checkpoint when eval picked one) and its
    state."""
    from peft import set_peft_model_state_dict
    from safetensors.torch import load_file
    from transformers.trainer_utils import TrainOutput

    from fine_tuning.train.full import is_full_checkpoint, load_full_checkpoint_weights

    best = Path(state.best_model_checkpoint) if has_eval and state.best_model_checkpoint else None
    complete = best is not None and ((best / ADAPTER_FILES[1]).exists() or is_full_checkpoint(best))
    source = best if complete else checkpoint
    if hasattr(trainer.model, "peft_config"):
        set_peft_model_state_dict(trainer.model, load_file(str(source / "adapter_model.safetensors")))
    else:
        load_full_checkpoint_weights(trainer.model, source)
    trainer.state = state
    return TrainOutput(state.global_step, None, {"train_runtime": 0.0})
