"""`slm train`: LoRA / QLoRA fine-tuning with TRL's SFTTrainer on the build stage's chat examples.

Reads `build/train.jsonl` and `build/val.jsonl` (SFTExample lines) and writes into the stage directory:
  adapter/             the PEFT adapter (adapter_config.json, adapter_model.safetensors, README.md)
  tokenizer/           the tokenizer with the training chat template (and pad token) that inference must use
  base_model/          tiny models only: the locally built base (evaluate/export/ask load it with from_pretrained)
  checkpoints/         Trainer checkpoints (or `train.output_dir`, e.g. under /workspace on RunPod)
  tb/                  TensorBoard logs when `train.report_to` includes tensorboard
  trainer_log.jsonl    every logged step (train loss, eval loss, lr, grad norm …)
  loss.png             train/eval loss curve
  train_summary.json   steps, losses, dtype, method, token shares, step times, preflight results

Order of work: check the config (schedule, report targets, optimizer, dtype, memory plan) → decide about
checkpoints (continue, or which are stale — nothing is deleted yet) → build or locate the base → load it (LoRA or
4-bit QLoRA) → tokenizer (pad ≠ eos) and training chat template (choice + rendering check) → preflight on the
tokenized data → LoRA adapters → only now remove the stale checkpoints → SFTTrainer (assistant-only loss, bfd
packing without padding, eval + early stopping on eval_loss, best checkpoint kept) → train, resuming from the last
complete checkpoint when `--resume` is given or a checkpoint of the same configuration exists → save and summarise.
So a rerun that fails any check (a bad chat template, a preflight error, W&B not installed …) leaves the
checkpoints of the previous configuration where they were.

Resume: a checkpoint is complete once Trainer wrote its trainer_state.json (last). Checkpoints carry a key of the
train section (minus schedule knobs such as max_steps/save_steps) and the data hashes, so only a run of the same
model, data and optimisation setup is continued; `--resume` against other checkpoints is an error, a plain run
replaces them. A `--force` rerun of a finished run with intact checkpoints also continues from the last one (it
re-saves the same adapter); delete the checkpoints directory to train again from scratch. Callback states come back
too (`restore_callback_states_from_checkpoint`): the early-stopping patience counter continues where the checkpoint
left it, while the patience itself is the config's (it may change between a kill and the resumption). A tiny base
built locally is stamped with the resume key and reused only by checkpoints of the same key.

Text-only batches (also for the multimodal Gemma 3 4B/12B, `Gemma3ForConditionalGeneration`): TRL's collator gives
input_ids, labels and position_ids (packed) and no `token_type_ids`. transformers 5.23's Gemma 3 builds its
bidirectional image-block attention only from token_type_ids (1 = image token); without them it uses the plain
causal / sliding-window masks, which for text are exactly what all-zero token_type_ids give (pinned by a test) —
and it does not require them in training (4.5x versions raised without them). So none are passed; should a batch
carry them anyway, they must be all zero (no image tokens) and are dropped (`text_only_inputs`), keeping SDPA's
causal fast path and flash-attention's padding-free packing, which an explicit block mask would switch off.

Several processes (accelerate/torchrun): rank 0 decides about checkpoints and builds the tiny base first, the
other ranks follow; rank 0 removes stale checkpoints after the checks while the others wait; only rank 0 writes
adapter/, tokenizer/, logs, plot and summary, and every rank returns after it did. Token counts in the summary are
rank 0's (its shard of every batch).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from slm_forest.errors import SlmError
from slm_forest.files import read_jsonl, sha256_file, write_json
from slm_forest.pipeline import StageContext, StageResult
from slm_forest.progress import console
from slm_forest.records import SFTExample

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
}
# Keys added after checkpoints already existed: left out of the resume key while they hold the value the earlier
# code used implicitly, so those checkpoints still resume.
_RESUME_KEY_OMITTED_DEFAULTS = {"optim": "adamw_torch"}


# ------------------------------------------------------------------------------------------------------- data
def read_examples(path: Path, *, required: bool) -> list[SFTExample]:
    """SFTExample rows of a split; a malformed row is an error naming file and line."""
    if not path.exists():
        if required:
            raise SlmError(f"{path}: not found", "run `slm build CONFIG` first")
        return []
    examples: list[SFTExample] = []
    for line_no, row in enumerate(read_jsonl(path), start=1):
        try:
            examples.append(SFTExample.model_validate(row))
        except ValueError as exc:
            first = str(exc).splitlines()[1:2] or [str(exc)]
            raise SlmError(
                f"{path}:{line_no}: not an SFTExample ({first[0].strip()})", "rerun `slm build --force`"
            ) from None
    if required and not examples:
        raise SlmError(f"{path}: no training examples", "check the build stage's counts (rejected.jsonl)")
    return examples


def conversations(examples: list[SFTExample]) -> list[tuple[str, list[dict[str, str]]]]:
    return [(ex.id, [{"role": m.role, "content": m.content} for m in ex.messages]) for ex in examples]


def corpus_texts(examples: list[SFTExample]) -> list[str]:
    return [m.content for ex in examples for m in ex.messages]


# ----------------------------------------------------------------------------------------------------- device
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


# ----------------------------------------------------------------------------------------------------- resume
def resume_key(cfg: Any, seed: int, data_hashes: list[str]) -> str:
    """What must be identical for a checkpoint to be continued: the model, method, data and optimisation setup."""
    section = {k: v for k, v in cfg.model_dump(mode="json").items() if k not in _RESUME_FREE_KEYS}
    for name, implicit in _RESUME_KEY_OMITTED_DEFAULTS.items():
        if section.get(name) == implicit:
            section.pop(name)
    payload = json.dumps({"train": section, "seed": seed, "data": data_hashes}, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(payload.encode()).hexdigest()


def checkpoint_step(path: Path) -> int:
    try:
        return int(path.name[len(CHECKPOINT_PREFIX) :])
    except ValueError:
        return -1


def last_complete_checkpoint(output_dir: Path) -> Path | None:
    """The newest checkpoint whose trainer_state.json (written last by Trainer) and adapter exist."""
    if not output_dir.is_dir():
        return None
    candidates = sorted(
        (p for p in output_dir.glob(f"{CHECKPOINT_PREFIX}*") if p.is_dir() and checkpoint_step(p) >= 0),
        key=checkpoint_step,
        reverse=True,
    )
    for path in candidates:
        if (path / "trainer_state.json").exists() and all((path / f).exists() for f in ADAPTER_FILES):
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


# ------------------------------------------------------------------------------------------------------ trainer
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


def finished_state(checkpoint: Path, cfg: Any) -> Any | None:
    """The checkpoint's TrainerState when it already reached this config's end (train.max_steps, or train.epochs
    when max_steps is -1), else None. max_steps and epochs may have been raised since: then training goes on."""
    from transformers import TrainerState

    state = TrainerState.load_from_json(str(checkpoint / "trainer_state.json"))
    if cfg.max_steps > 0:
        return state if state.global_step >= cfg.max_steps else None
    return state if state.epoch is not None and state.epoch >= cfg.epochs - 1e-9 else None


def restore_finished(trainer: Any, state: Any, checkpoint: Path, has_eval: bool) -> Any:
    """Load the adapter a finished run ended with (the best checkpoint when eval picked one) and its state."""
    from peft import set_peft_model_state_dict
    from safetensors.torch import load_file
    from transformers.trainer_utils import TrainOutput

    best = Path(state.best_model_checkpoint) if has_eval and state.best_model_checkpoint else None
    source = best if best is not None and (best / "adapter_model.safetensors").exists() else checkpoint
    set_peft_model_state_dict(trainer.model, load_file(str(source / "adapter_model.safetensors")))
    trainer.state = state
    return TrainOutput(state.global_step, None, {"train_runtime": 0.0})


def _move_contents(source: Path, target: Path) -> None:
    """Move the adapter files the trainer wrote (it also writes training_args.bin, which the adapter does not need)."""
    for path in source.iterdir():
        if path.name.startswith("adapter_") or path.name == "README.md":
            shutil.move(str(path), target / path.name)
    shutil.rmtree(source, ignore_errors=True)


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


def sft_config(
    cfg: Any, seed: int, output_dir: Path, device: str, dtype: str, has_eval: bool, report: list[str]
) -> Any:
    from trl import SFTConfig

    optim = check_optimizer(cfg.optim)
    checkpointing_kwargs = {"use_reentrant": False} if cfg.activation_checkpointing else None
    return SFTConfig(
        output_dir=str(output_dir),
        seed=seed,
        data_seed=seed,
        num_train_epochs=cfg.epochs,
        max_steps=cfg.max_steps,
        learning_rate=cfg.learning_rate,
        optim=optim,
        per_device_train_batch_size=cfg.micro_batch_size,
        per_device_eval_batch_size=cfg.micro_batch_size,
        gradient_accumulation_steps=cfg.gradient_accumulation_steps,
        warmup_steps=cfg.warmup_ratio,  # a float in [0, 1) is a ratio of the total steps (transformers 5)
        lr_scheduler_type=cfg.lr_scheduler,
        logging_steps=cfg.logging_steps,
        eval_strategy="steps" if has_eval else "no",
        eval_steps=cfg.eval_steps,
        save_strategy="steps",
        save_steps=cfg.save_steps,
        save_total_limit=cfg.save_total_limit,
        # The checkpoint's callback states (the early-stopping patience counter, TrainerControl) come back on resume.
        restore_callback_states_from_checkpoint=True,
        load_best_model_at_end=has_eval,
        metric_for_best_model="eval_loss" if has_eval else None,
        greater_is_better=False if has_eval else None,
        report_to=[t for t in report if t != "tensorboard"] or "none",  # tensorboard gets its own callback (tb/)
        activation_checkpointing=cfg.activation_checkpointing,
        activation_checkpointing_kwargs=checkpointing_kwargs,
        use_cpu=device == "cpu",
        bf16=device == "cuda" and dtype == "bf16",
        fp16=device == "cuda" and dtype == "fp16",
        max_length=cfg.max_length,
        packing=cfg.packing,  # bfd: best-fit bins, padding-free batches (no pad tokens at all)
        assistant_only_loss=True,
        disable_tqdm=True,  # slm_forest's progress bar instead
        dataloader_num_workers=0,
        # Every LoRA parameter gets a gradient each step; searching for unused ones costs a pass over the graph.
        ddp_find_unused_parameters=False,
    )


def cpu_threads(device: str, parameters: int) -> int:
    """Intra-op threads for this run. A tiny model on CPU trains fastest on one thread: its matmuls are too small
    to share, and with other processes on the cores OpenMP's spin-waits made steps 3–50× slower (0.03 s/step on
    one thread vs 0.1–2 s on two, measured on 2 busy cores)."""
    import torch

    if device == "cpu" and parameters < 50_000_000:
        return 1
    return torch.get_num_threads()


def early_stopping(patience: int) -> Any:
    """An EarlyStoppingCallback whose counter a resume restores and whose patience is always the config's.

    On resume Trainer rebuilds each stateful callback as `type(callback)(**args_in_checkpoint)` and sets its saved
    attributes (the counter). The patience is re-applied at train begin, so `train.early_stopping_patience` (free to
    change between a kill and the resumption) wins over the value stored in the checkpoint.
    """
    from transformers import EarlyStoppingCallback

    class EarlyStopping(EarlyStoppingCallback):
        def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> Any:
            self.early_stopping_patience = patience
            return super().on_train_begin(args, state, control, **kwargs)

    return EarlyStopping(early_stopping_patience=patience)


def text_only_inputs(inputs: dict[str, Any]) -> dict[str, Any]:
    """The batch the model sees: text only, without `token_type_ids` (see the module docstring).

    All-zero token_type_ids (no image tokens) are dropped: Gemma 3 then uses its plain causal masks, which give the
    same loss. Non-zero ones would mean image tokens in a text-only run, which is an error, as are pixel values.
    """
    if "pixel_values" in inputs and inputs["pixel_values"] is not None:
        raise SlmError("a training batch carries pixel_values", "the train stage trains on text conversations only")
    token_types = inputs.get("token_type_ids")
    if token_types is None:
        return inputs
    if bool((token_types != 0).any()):
        raise SlmError(
            "a training batch has token_type_ids marking image tokens",
            "the train stage trains on text conversations only; remove image placeholders from the data",
        )
    return {k: v for k, v in inputs.items() if k != "token_type_ids"}


def make_trainer(
    model: Any,
    tokenizer: Any,
    args: Any,
    train_convs: list[tuple[str, list[dict[str, str]]]],
    val_convs: list[tuple[str, list[dict[str, str]]]],
    callbacks: list[Any],
) -> Any:
    """An SFTTrainer that also counts the tokens of every training micro-batch (`trainer.token_counter`)."""
    from datasets import Dataset
    from trl import SFTTrainer

    from fine_tuning.train.callbacks import TokenCounter

    class CountingSFTTrainer(SFTTrainer):
        token_counter: TokenCounter

        def training_step(self, model: Any, inputs: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
            self.token_counter.observe(inputs)
            return super().training_step(model, inputs, *args, **kwargs)

        def compute_loss(self, model: Any, inputs: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
            # training and evaluation (prediction_step) both come through here
            return super().compute_loss(model, text_only_inputs(inputs), *args, **kwargs)

    train_ds = Dataset.from_list([{"messages": m} for _, m in train_convs])
    val_ds = Dataset.from_list([{"messages": m} for _, m in val_convs]) if val_convs else None
    trainer = CountingSFTTrainer(
        model=model,
        args=args,
        train_dataset=train_ds,
        eval_dataset=val_ds,
        processing_class=tokenizer,
        callbacks=callbacks,
    )
    trainer.token_counter = TokenCounter()
    return trainer


def _quiet_transformers() -> None:
    """Our progress bar and summaries replace the libraries' per-shard bars and info chatter."""
    from datasets.utils.logging import disable_progress_bar as datasets_quiet
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    datasets_quiet()


def _last(history: list[dict[str, Any]], key: str) -> float | None:
    values = [entry[key] for entry in history if key in entry]
    return round(float(values[-1]), 6) if values else None


def _best(history: list[dict[str, Any]], key: str) -> float | None:
    values = [entry[key] for entry in history if key in entry]
    return round(float(min(values)), 6) if values else None


def _save_dir_atomically(stage_dir: Path, name: str, save: Any) -> Path:
    final = stage_dir / name
    tmp = stage_dir / f".{name}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    save(tmp)
    shutil.rmtree(final, ignore_errors=True)
    os.replace(tmp, final)
    return final


# -------------------------------------------------------------------------------------------------------- stage
def run_train(ctx: StageContext) -> StageResult:
    import torch
    from transformers import AutoTokenizer, PrinterCallback, set_seed
    from transformers.integrations import TensorBoardCallback

    from fine_tuning.plan.cli import check_memory_before_training
    from fine_tuning.train.callbacks import make_callbacks, plot_loss, write_log_history
    from fine_tuning.train.chat_templates import check_same_rendering, choose_training_template
    from fine_tuning.train.loading import apply_lora, load_model_for_training, prepare_tokenizer
    from fine_tuning.train.preflight import run_preflight

    cfg = ctx.cfg.train
    seed = ctx.cfg.seed
    stage_dir = ctx.stage_dir
    build_dir = ctx.upstream_dir("build")
    train_path, val_path = build_dir / "train.jsonl", build_dir / "val.jsonl"
    train_examples = read_examples(train_path, required=True)
    val_examples = read_examples(val_path, required=False)
    train_convs, val_convs = conversations(train_examples), conversations(val_examples)
    has_eval = bool(val_convs)
    check_schedule(cfg, has_eval)
    report = report_targets(cfg)
    if "wandb" in report and cfg.wandb_project:
        os.environ["WANDB_PROJECT"] = cfg.wandb_project

    spec = model_spec(cfg.base_model)
    device, bf16_supported = detect_device()
    dtype = resolve_dtype(spec, device, bf16_supported, cfg)
    # Before any weights are downloaded: refuse a run the memory plan says will not fit the GPU present.
    memory_note = check_memory_before_training(ctx.cfg)
    if memory_note:
        console.print(f"train: {memory_note}")

    output_dir = Path(cfg.output_dir) if cfg.output_dir else stage_dir / "checkpoints"
    data_hashes = [sha256_file(train_path)] + ([sha256_file(val_path)] if val_path.exists() else [])
    key = resume_key(cfg, seed, data_hashes)
    _quiet_transformers()
    # Built first: under a launcher (accelerate/torchrun) this joins the process group, so the ranks can take turns.
    args = sft_config(cfg, seed, output_dir, device, dtype, has_eval, report)
    main_process = args.process_index == 0
    with args.main_process_first(local=False, desc="checkpoint decision and base model"):
        # Only decided here: stale checkpoints are removed after the checks below passed (commit_fresh_start).
        decision = decide_resume(
            output_dir,
            key,
            bool(ctx.option("resume", False)),
            main_process=main_process,
            fresh=bool(ctx.option("force", False)),
        )
        checkpoint = decision.checkpoint
        base_path, built_locally = prepare_base(
            spec,
            cfg,
            stage_dir,
            corpus_texts(train_examples),
            seed,
            reuse=checkpoint is not None or not main_process,
            key=key,
        )
    model = load_model_for_training(
        spec, base_path, cfg.method, dtype, device, activation_checkpointing=cfg.activation_checkpointing
    )
    model_class = type(model).__name__
    tokenizer = AutoTokenizer.from_pretrained(base_path)
    pad_changes = prepare_tokenizer(tokenizer, model)
    choice = choose_training_template(tokenizer, model.config.model_type, cfg.chat_template)
    check_same_rendering(tokenizer, choice, [messages for _, messages in train_convs[:32]])
    tokenizer.chat_template = choice.template
    end_of_turn = end_of_turn_token(spec, choice, tokenizer)
    preflight = run_preflight(
        tokenizer, train_convs, template=choice.template, end_of_turn_token=end_of_turn, max_length=cfg.max_length
    )

    set_seed(seed)  # LoRA's A matrices are random: same seed, same starting adapter
    model = apply_lora(model, spec, cfg.lora)  # can still fail (train.lora.target_modules)
    # Every check passed: now the checkpoints of another configuration may go. The main process removes them while
    # the others wait, so no rank writes into the checkpoint directory before it is clean.
    with args.main_process_first(local=False, desc="removing stale checkpoints"):
        commit_fresh_start(decision)
    trainable, total = model.get_nb_trainable_parameters()
    log_path = stage_dir / "trainer_log.jsonl"
    if checkpoint is None and main_process:
        log_path.unlink(missing_ok=True)
    progress_cb, log_cb = make_callbacks(log_path, f"train {spec.name} ({cfg.method})")
    callbacks: list[Any] = [progress_cb, log_cb]
    if "tensorboard" in report:
        tb = TensorBoardCallback()
        tb.logging_dir = str(stage_dir / "tb")
        callbacks.append(tb)
    if has_eval and cfg.early_stopping_patience:
        callbacks.append(early_stopping(cfg.early_stopping_patience))
    trainer = make_trainer(model, tokenizer, args, train_convs, val_convs, callbacks)
    trainer.remove_callback(PrinterCallback)  # added by disable_tqdm; our bar and trainer_log.jsonl replace it
    counter = trainer.token_counter

    if checkpoint is not None:
        console.print(f"train: resuming from {checkpoint} (optimizer, scheduler and RNG state)")
    threads_before = torch.get_num_threads()
    threads = cpu_threads(device, total)
    torch.set_num_threads(threads)
    finished = finished_state(checkpoint, cfg) if checkpoint is not None else None
    try:
        if finished is not None:
            # Killed after its last checkpoint but before the manifest: the training is complete. Resuming would
            # step past max_steps, so take the checkpoint's (or the best checkpoint's) weights and state instead.
            result = restore_finished(trainer, finished, checkpoint, has_eval)
            console.print(f"train: {checkpoint.name} already reached step {finished.global_step}: not training again")
        else:
            result = trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint else None)
    finally:
        torch.set_num_threads(threads_before)
    state = trainer.state
    adapter_dir, tokenizer_dir = stage_dir / "adapter", stage_dir / "tokenizer"
    history = state.log_history
    if getattr(trainer, "is_fsdp_enabled", False):
        # FSDP shards the adapter across ranks: every rank takes part in gathering the full state dict, and the
        # trainer writes it from rank 0. (Written from PEFT's FSDP guide; not run here: no GPUs.)
        trainer.accelerator.state.fsdp_plugin.set_state_dict_type("FULL_STATE_DICT")
        gathered = stage_dir / ".adapter.fsdp"
        trainer.save_model(str(gathered))
        if main_process:
            _save_dir_atomically(stage_dir, "adapter", lambda d: _move_contents(gathered, d))
    elif main_process:  # one writer; the other ranks hold identical weights (DDP) and wait below
        _save_dir_atomically(stage_dir, "adapter", lambda d: trainer.model.save_pretrained(str(d)))
    if main_process:
        _save_dir_atomically(stage_dir, "tokenizer", lambda d: tokenizer.save_pretrained(str(d)))
        write_log_history(history, log_path)
        plot_loss(history, stage_dir / "loss.png", title=f"{spec.name} · {cfg.method} · {ctx.cfg.run_name}")
    summary: dict[str, Any] = {
        "base_model": cfg.base_model,
        "base_model_path": base_path,
        "base_model_dir": "base_model" if built_locally else None,
        "model_class": model_class,
        "method": cfg.method,
        "dtype": dtype,
        "device": device,
        "processes": args.world_size,
        "cpu_threads": threads if device == "cpu" else None,
        "global_step": state.global_step,
        "max_steps": state.max_steps,
        "epochs_run": round(float(state.epoch or 0.0), 4),
        "stopped_early": has_eval and state.global_step < state.max_steps,
        "resumed_from": checkpoint.name if checkpoint else None,
        "train_loss": _last(history, "loss"),
        "train_runtime_loss": round(float(result.training_loss), 6) if result.training_loss is not None else None,
        "eval_loss": _last(history, "eval_loss"),
        "best_eval_loss": _best(history, "eval_loss"),
        "best_checkpoint": Path(state.best_model_checkpoint).name if state.best_model_checkpoint else None,
        "train_examples": len(train_convs),
        "val_examples": len(val_convs),
        "trainable_parameters": int(trainable),
        "total_parameters": int(total),
        "lora": cfg.lora.model_dump(mode="json")
        | {"target_modules": _jsonable(model.peft_config["default"].target_modules)},
        "packing": cfg.packing,
        "max_length": cfg.max_length,
        "tokens": counter.stats() | {"counted_from_step": checkpoint_step(checkpoint) if checkpoint else 0},
        "timing": log_cb.timing()
        | {"train_runtime_seconds": round(float(result.metrics.get("train_runtime", 0.0)), 3)},
        "chat_template": choice.source,
        "end_of_turn_token": end_of_turn,
        "tokenizer_changes": pad_changes,
        "preflight": preflight.to_dict(),
        "output_dir": str(output_dir),
        "report_to": report,
    }
    if main_process:
        write_json(stage_dir / "train_summary.json", summary)
    trainer.accelerator.wait_for_everyone()  # every rank returns only once rank 0's files exist

    outputs = [adapter_dir, tokenizer_dir, log_path, stage_dir / "loss.png", stage_dir / "train_summary.json"]
    if built_locally:
        outputs.insert(2, stage_dir / "base_model")
    share = summary["tokens"]["real_token_share"]
    eval_text = f", eval loss {summary['eval_loss']:.3f}" if summary["eval_loss"] is not None else ""
    train_text = f", train loss {summary['train_loss']:.3f}" if summary["train_loss"] is not None else ""
    return StageResult(
        outputs=outputs,
        counts={"train_examples": len(train_convs), "val_examples": len(val_convs), "steps": state.global_step},
        stats={
            k: summary[k]
            for k in ("method", "dtype", "device", "train_loss", "eval_loss", "best_eval_loss", "tokens", "timing")
        },
        summary=(
            f"{spec.name} {cfg.method} {dtype}: {state.global_step} steps{train_text}{eval_text}, "
            f"real-token share {share if share is not None else 'n/a'}"
        ),
    )


def _jsonable(value: Any) -> Any:
    if isinstance(value, (set, frozenset)):
        return sorted(value)
    return value
