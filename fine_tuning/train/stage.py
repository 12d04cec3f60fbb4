"""`slm train`: LoRA / QLoRA (nf4 or int8) / full fine-tuning with TRL's SFTTrainer on the build stage's chat examples.

Reads `build/train.jsonl` and `build/val.jsonl` (SFTExample lines) and writes into the stage directory:
  adapter/             the PEFT adapter (adapter_config.json, adapter_model.safetensors, README.md)
  model/               instead of adapter/ for train.method full: the whole model + tokenizer (`full`)
  tokenizer/           the tokenizer with the training chat template (and pad token) that inference must use
  base_model/          tiny models only: the locally built base (evaluate/export/ask load it with from_pretrained)
  checkpoints/         Trainer checkpoints (or `train.output_dir`, e.g. under /workspace on RunPod)
  tb/                  TensorBoard logs when `train.report_to` includes tensorboard
  trainer_log.jsonl    every logged step (train loss, eval loss, lr, grad norm …)
  loss.png             train/eval loss curve
  train_summary.json   steps, losses, dtype, method, token shares, step times, preflight results

`run_train` is the list of steps; the steps live in `examples` (the input splits), `checks` (config, device, dtype),
`checkpoints` (resume key, continue or start fresh, the tiny base), `loading` + `chat_templates` + `preflight` (model,
tokenizer, template, data checks), `trainer` (SFTConfig, SFTTrainer, early stopping) and `outputs` (the files above).

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

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fine_tuning.train.checkpoints import (
    ResumeDecision,
    checkpoint_step,
    commit_fresh_start,
    decide_resume,
    finished_state,
    prepare_base,
    restore_finished,
    resume_key,
)
from fine_tuning.train.checks import (
    check_master_weights,
    check_method_settings,
    check_schedule,
    detect_device,
    end_of_turn_token,
    model_spec,
    report_targets,
    resolve_dtype,
)
from fine_tuning.train.examples import TrainingData, corpus_texts, read_training_data
from fine_tuning.train.full import parameter_counts
from fine_tuning.train.outputs import (
    frozen_dtypes,
    last_logged,
    lowest_logged,
    method_facts,
    save_artifacts,
    stage_result,
    trainable_dtypes,
)
from fine_tuning.train.trainer import cpu_threads, early_stopping, make_trainer, quiet_transformers, sft_config
from slm_forest.files import write_json
from slm_forest.pipeline import StageContext, StageResult
from slm_forest.progress import console


# -------------------------------------------------------------------------------------------------------- stage
def run_train(ctx: StageContext) -> StageResult:
    from transformers import PrinterCallback, set_seed

    from fine_tuning.train.loading import apply_lora

    cfg, stage_dir = ctx.cfg.train, ctx.stage_dir
    data = read_training_data(ctx.upstream_dir("build"))
    setup = prepare_run(ctx, data)
    loaded = load_checked_model(setup.spec, setup.base_path, cfg, setup.dtype, setup.device, data)
    set_seed(ctx.cfg.seed)  # LoRA's A matrices are random: same seed, same starting adapter
    # Full fine-tuning trains the loaded model itself; otherwise adapters (can still fail: train.lora.*).
    model = loaded.model if cfg.method == "full" else apply_lora(loaded.model, setup.spec, cfg.lora)
    # Every check passed: now the checkpoints of another configuration may go. The main process removes them while
    # the others wait, so no rank writes into the checkpoint directory before it is clean.
    with setup.args.main_process_first(local=False, desc="removing stale checkpoints"):
        commit_fresh_start(setup.decision)
    parameters = parameter_counts(model)
    log_path = stage_dir / "trainer_log.jsonl"
    if setup.decision.checkpoint is None and setup.main_process:
        log_path.unlink(missing_ok=True)
    callbacks, log_cb = training_callbacks(log_path, stage_dir, setup.spec, cfg, setup.report, data.has_eval)
    trainer = make_trainer(model, loaded.tokenizer, setup.args, loaded.train_convs, data.val_convs, callbacks)
    trainer.remove_callback(PrinterCallback)  # added by disable_tqdm; our bar and trainer_log.jsonl replace it

    result, threads = train_or_restore(trainer, setup, cfg, parameters[1], data.has_eval)
    title = f"{setup.spec.name} · {cfg.method} · {ctx.cfg.run_name}"
    save_artifacts(trainer, loaded.tokenizer, stage_dir, log_path, title, setup.main_process, full=cfg.method == "full")
    summary = train_summary(
        ctx,
        setup,
        loaded,
        data,
        model=model,
        trainer=trainer,
        result=result,
        log_cb=log_cb,
        threads=threads,
        parameters=parameters,
    )
    if setup.main_process:
        write_json(stage_dir / "train_summary.json", summary)
    trainer.accelerator.wait_for_everyone()  # every rank returns only once rank 0's files exist
    return stage_result(summary, stage_dir, log_path, setup.spec.name)


# -------------------------------------------------------------------------------------------------------- steps
@dataclass(frozen=True)
class RunSetup:
    """What the stage decided before loading any weights."""

    spec: Any  # the registry's ModelSpec
    device: str
    dtype: str
    report: list[str]  # report targets (tensorboard, wandb)
    output_dir: Path  # checkpoints
    args: Any  # TRL's SFTConfig
    decision: ResumeDecision  # continue from a checkpoint, or start fresh
    base_path: str  # what to load: a hub id or a directory
    built_locally: bool  # a tiny base built under the stage directory

    @property
    def main_process(self) -> bool:
        return self.args.process_index == 0


def prepare_run(ctx: StageContext, data: TrainingData) -> RunSetup:
    """Check the config (schedule, report targets, optimizer, dtype, memory plan), decide about checkpoints
    (continue, or which are stale — nothing is deleted yet) and build or locate the base."""
    import os

    from fine_tuning.plan.cli import check_memory_before_training

    cfg, seed, has_eval = ctx.cfg.train, ctx.cfg.seed, data.has_eval
    check_schedule(cfg, has_eval)
    report = report_targets(cfg)
    if "wandb" in report and cfg.wandb_project:
        os.environ["WANDB_PROJECT"] = cfg.wandb_project
    spec = model_spec(cfg.base_model)
    check_method_settings(ctx.cfg, spec)
    device, bf16_supported = detect_device()
    dtype = resolve_dtype(spec, device, bf16_supported, cfg)
    check_master_weights(cfg, device, bf16_supported)
    # Before any weights are downloaded: refuse a run the memory plan says will not fit the GPU present.
    memory_note = check_memory_before_training(ctx.cfg)
    if memory_note:
        console.print(f"train: {memory_note}")
    output_dir = Path(cfg.output_dir) if cfg.output_dir else ctx.stage_dir / "checkpoints"
    key = resume_key(cfg, seed, data.hashes)
    quiet_transformers()
    # Built first: under a launcher (accelerate/torchrun) this joins the process group, so the ranks can take turns.
    args = sft_config(cfg, seed, output_dir, device, dtype, has_eval, report)
    main_process = args.process_index == 0
    with args.main_process_first(local=False, desc="checkpoint decision and base model"):
        # Only decided here: stale checkpoints are removed after the checks passed (commit_fresh_start).
        decision = decide_resume(
            output_dir,
            key,
            bool(ctx.option("resume", False)),
            main_process=main_process,
            fresh=bool(ctx.option("force", False)),
        )
        base_path, built_locally = prepare_base(
            spec,
            cfg,
            ctx.stage_dir,
            corpus_texts(data.train_examples),
            seed,
            reuse=decision.checkpoint is not None or not main_process,
            key=key,
        )
    return RunSetup(spec, device, dtype, report, output_dir, args, decision, base_path, built_locally)


@dataclass
class LoadedModel:
    """The base model and tokenizer ready for LoRA, with what the checks on them found."""

    model: Any
    model_class: str
    tokenizer: Any  # carrying the training chat template
    pad_changes: Any  # what prepare_tokenizer changed (pad token)
    chat_template: Any  # the TemplateChoice
    end_of_turn: str
    preflight: Any  # the PreflightReport
    attention: Any  # the AttentionChoice
    train_convs: list[tuple[str, list[dict[str, str]]]]  # what is trained: minus cut examples under truncated=drop
    text_only_of_multimodal: bool = False  # a multimodal checkpoint's language model, loaded alone

    @property
    def vision_tower(self) -> str | None:
        """What happened to a multimodal checkpoint's vision tower (None: there was none)."""
        if self.text_only_of_multimodal:
            return "not loaded: text-only training of the language model (export.keep_vision restores it)"
        return None


def load_checked_model(spec: Any, base_path: str, cfg: Any, dtype: str, device: str, data: TrainingData) -> LoadedModel:
    """Load the base (LoRA or 4-bit QLoRA) with the attention kernel chosen for its class, give the tokenizer a pad
    token and the training chat template (choice + rendering check), and run the preflight on the tokenized
    training data (leaving out answers cut at max_length under train.truncated=drop)."""
    from transformers import AutoTokenizer

    from fine_tuning.train.attention import choose_attention
    from fine_tuning.train.chat_templates import check_same_rendering, choose_training_template
    from fine_tuning.train.loading import (
        is_text_model_of_multimodal,
        load_model_for_training,
        prepare_tokenizer,
        training_model_class,
    )
    from fine_tuning.train.preflight import run_preflight

    model_cls = training_model_class(base_path)
    attention = choose_attention(model_cls, device, cfg.attn_implementation)
    model = load_model_for_training(
        spec,
        base_path,
        cfg.method,
        dtype,
        device,
        activation_checkpointing=cfg.activation_checkpointing,
        attention=attention,
        quantization=cfg.quantization,
        master_weights=cfg.master_weights,
    )
    tokenizer = AutoTokenizer.from_pretrained(base_path)
    pad_changes = prepare_tokenizer(tokenizer, model)
    choice = choose_training_template(tokenizer, model.config.model_type, cfg.chat_template)
    check_same_rendering(tokenizer, choice, [messages for _, messages in data.train_convs[:32]])
    tokenizer.chat_template = choice.template
    end_of_turn = end_of_turn_token(spec, choice, tokenizer)
    preflight = run_preflight(
        tokenizer,
        data.train_convs,
        template=choice.template,
        end_of_turn_token=end_of_turn,
        max_length=cfg.max_length,
        max_truncated_share=cfg.max_truncated_share,
        truncated_policy=cfg.truncated,
    )
    dropped = set(preflight.truncated_ids) if cfg.truncated == "drop" else set()
    if dropped:
        console.print(f"train: {len(dropped)} example(s) longer than train.max_length left out (train.truncated=drop)")
    return LoadedModel(
        model,
        type(model).__name__,
        tokenizer,
        pad_changes,
        choice,
        end_of_turn,
        preflight,
        attention,
        [conv for conv in data.train_convs if conv[0] not in dropped],
        is_text_model_of_multimodal(model_cls, base_path),
    )


def training_callbacks(
    log_path: Path, stage_dir: Path, spec: Any, cfg: Any, report: list[str], has_eval: bool
) -> tuple[list[Any], Any]:
    """(callbacks, the JSONL log callback): progress bar, log, TensorBoard under tb/, early stopping with eval."""
    from transformers.integrations import TensorBoardCallback

    from fine_tuning.train.callbacks import make_callbacks

    progress_cb, log_cb = make_callbacks(log_path, f"train {spec.name} ({cfg.method})")
    callbacks: list[Any] = [progress_cb, log_cb]
    if "tensorboard" in report:
        tb = TensorBoardCallback()
        tb.logging_dir = str(stage_dir / "tb")
        callbacks.append(tb)
    if has_eval and cfg.early_stopping_patience:
        callbacks.append(early_stopping(cfg.early_stopping_patience))
    return callbacks, log_cb


def train_or_restore(trainer: Any, setup: RunSetup, cfg: Any, total_parameters: int, has_eval: bool) -> tuple[Any, int]:
    """(TrainOutput, CPU threads used): train, resuming from the checkpoint the setup chose — or, when that checkpoint
    already reached the end, take its weights and state instead."""
    import torch

    checkpoint = setup.decision.checkpoint
    if checkpoint is not None:
        console.print(f"train: resuming from {checkpoint} (optimizer, scheduler and RNG state)")
    threads_before = torch.get_num_threads()
    threads = cpu_threads(setup.device, total_parameters)
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
    return result, threads


def train_summary(
    ctx: StageContext,
    setup: RunSetup,
    loaded: LoadedModel,
    data: TrainingData,
    *,
    model: Any,
    trainer: Any,
    result: Any,
    log_cb: Any,
    threads: int,
    parameters: tuple[int, int],
) -> dict[str, Any]:
    """train_summary.json: steps, losses, dtype, method, token shares, step times, preflight results."""
    cfg, state, checkpoint = ctx.cfg.train, trainer.state, setup.decision.checkpoint
    history = state.log_history
    has_eval = data.has_eval
    trainable, total = parameters
    return {
        "base_model": cfg.base_model,
        "base_model_path": setup.base_path,
        "base_model_dir": "base_model" if setup.built_locally else None,
        "model_class": loaded.model_class,
        "attn_implementation": loaded.attention.to_dict()
        | {"loaded": getattr(model.config, "_attn_implementation", None)},
        "vision_tower": loaded.vision_tower,
        "frozen_dtypes": frozen_dtypes(model),
        "trainable_dtypes": trainable_dtypes(model),
        "method": cfg.method,
        **method_facts(cfg, model),
        "dtype": setup.dtype,
        "device": setup.device,
        "processes": setup.args.world_size,
        "cpu_threads": threads if setup.device == "cpu" else None,
        "global_step": state.global_step,
        "max_steps": state.max_steps,
        "epochs_run": round(float(state.epoch or 0.0), 4),
        "stopped_early": has_eval and state.global_step < state.max_steps,
        "resumed_from": checkpoint.name if checkpoint else None,
        "train_loss": last_logged(history, "loss"),
        "train_runtime_loss": round(float(result.training_loss), 6) if result.training_loss is not None else None,
        "eval_loss": last_logged(history, "eval_loss"),
        "best_eval_loss": lowest_logged(history, "eval_loss"),
        "best_checkpoint": Path(state.best_model_checkpoint).name if state.best_model_checkpoint else None,
        "train_examples": len(loaded.train_convs),
        "dropped_truncated_examples": loaded.preflight.dropped_truncated,
        "val_examples": len(data.val_convs),
        "trainable_parameters": int(trainable),
        "total_parameters": int(total),
        "packing": cfg.packing,
        "max_length": cfg.max_length,
        "tokens": trainer.token_counter.stats()
        | {"counted_from_step": checkpoint_step(checkpoint) if checkpoint else 0},
        "timing": log_cb.timing()
        | {"train_runtime_seconds": round(float(result.metrics.get("train_runtime", 0.0)), 3)},
        "chat_template": loaded.chat_template.source,
        "end_of_turn_token": loaded.end_of_turn,
        "tokenizer_changes": loaded.pad_changes,
        "preflight": loaded.preflight.to_dict(),
        "output_dir": str(setup.output_dir),
        "report_to": setup.report,
    }
