"""`slm reinforce`: GRPO on calculation questions, continuing from the SFT adapter, rewards from the tax calculator.

Reads train/ (adapter, tokenizer, train_summary.json: base, class, method, dtype), build/ and distill/ (the dataset's
verified calculation pairs), collect/documents.jsonl (the corpus the citation reward checks against) and writes:
  prompts.jsonl          every prompt row with its split and facts (generated + dataset), no family in two splits
  adapter/ tokenizer/    the RL adapter (the "ref" copy TRL trains against is not saved) and the tokenizer
  checkpoints/           Trainer checkpoints (or `reinforce.output_dir`); resume with --resume
  trainer_log.jsonl      every logged step: reward (total and per reward), reward_std, frac_reward_zero_std, kl,
                         completion lengths, clipped ratio, groups/zero_variance
  rollouts.jsonl         per generation batch: each group's mean/spread (flat groups marked) and two sample rollouts
  reinforce_summary.json steps, first/last reward, zero-variance groups, prompts per split, timing, preflight

Order: rows and their split → checks before any weights (device, dtype rules of the train section, the memory plan,
the checkpoint decision) → the base + the SFT adapter (trainable) → preflight (end-of-turn token, prompt rendering,
max_completion_length against the longest reference answer) → stale checkpoints removed only now → GRPOTrainer →
train or resume → save → summary. The runner writes the manifest last.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fine_tuning.reinforce.prompts import (
    PromptRow,
    check_no_family_in_two_splits,
    dataset_rows,
    generated_rows,
    reference_answer,
    write_rows,
)
from fine_tuning.reinforce.trainer import grpo_config, make_trainer, read_rollouts, reward_functions
from fine_tuning.train.checkpoints import commit_fresh_start, decide_resume, finished_state, resume_key
from fine_tuning.train.checks import detect_device, model_spec, report_targets, resolve_dtype
from slm_forest.errors import SlmError
from slm_forest.files import read_jsonl, sha256_file, write_json
from slm_forest.pipeline import StageContext, StageResult
from slm_forest.progress import console


def run_reinforce(ctx: StageContext) -> StageResult:
    from transformers import PrinterCallback, set_seed

    from fine_tuning.train.callbacks import make_callbacks

    cfg, stage_dir = ctx.cfg.reinforce, ctx.stage_dir
    rows = prompt_rows(ctx)
    setup = prepare_run(ctx, rows)
    set_seed(ctx.cfg.seed)
    model, tokenizer, eos_ids = load_policy(setup, ctx.cfg.train)
    preflight = check_prompts(tokenizer, rows, cfg.max_completion_length)
    with setup.args.main_process_first(local=False, desc="removing stale checkpoints"):
        commit_fresh_start(setup.decision)
    log_path, rollout_log = stage_dir / "trainer_log.jsonl", stage_dir / "rollouts.jsonl"
    if setup.decision.checkpoint is None and setup.main_process:
        log_path.unlink(missing_ok=True)
        rollout_log.unlink(missing_ok=True)
    callbacks = list(make_callbacks(log_path, f"reinforce {setup.spec.name} ({ctx.cfg.train.method})"))
    train_rows = [row.record(ctx.cfg.build.system_prompt) for row in rows if row.split == "train"]
    funcs = reward_functions(cfg, corpus_index(ctx), eos_ids)
    trainer = make_trainer(model, tokenizer, setup.args, train_rows, funcs, callbacks, rollout_log)
    trainer.remove_callback(PrinterCallback)  # added by disable_tqdm; our bar and trainer_log.jsonl replace it
    if setup.device == "cpu":
        from fine_tuning.reinforce.trainer import cast_adapters_to_fp32

        cast_adapters_to_fp32(trainer.model)
    global_step = train_or_restore(trainer, setup, cfg)
    save_outputs(trainer, tokenizer, stage_dir, setup.main_process)
    summary = reinforce_summary(ctx, setup, rows, trainer, global_step, callbacks[1], preflight, eos_ids)
    if setup.main_process:
        write_json(stage_dir / "reinforce_summary.json", summary)
    trainer.accelerator.wait_for_everyone()
    outputs = [stage_dir / n for n in ("prompts.jsonl", "adapter", "tokenizer", "trainer_log.jsonl")]
    outputs += [stage_dir / "rollouts.jsonl", stage_dir / "reinforce_summary.json"]
    first, last = summary["reward_first"], summary["reward_last"]
    return StageResult(
        outputs=[p for p in outputs if p.exists()],
        counts={"prompts": len(rows), "train_prompts": len(train_rows), "steps": summary["global_step"]},
        stats={k: summary[k] for k in ("reward_first", "reward_last", "zero_variance_groups", "groups", "device")},
        summary=f"{setup.spec.name} GRPO: {summary['global_step']} steps, reward {_fmt(first)} → {_fmt(last)}, "
        f"{summary['zero_variance_groups']}/{summary['groups']} zero-variance groups",
    )


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


# -------------------------------------------------------------------------------------------------------- steps
def prompt_rows(ctx: StageContext) -> list[PromptRow]:
    """Generated questions + the dataset's verified calculation pairs, split, written to prompts.jsonl."""
    from slm_datagen.taxlaw.questions import KINDS

    cfg = ctx.cfg.reinforce
    kinds = tuple(cfg.kinds) or KINDS
    unknown = [k for k in kinds if k not in KINDS]
    if unknown:
        raise SlmError(f"reinforce.kinds: unknown kind '{unknown[0]}'", f"kinds are: {', '.join(KINDS)}")
    rows = generated_rows(cfg.questions, ctx.cfg.seed, kinds, cfg.val_share, cfg.test_share)
    if cfg.dataset_pairs:
        rows += dataset_rows(ctx.upstream_dir("build"), ctx.upstream_dir("distill"))
    check_no_family_in_two_splits(rows)
    if not any(row.split == "train" for row in rows):
        raise SlmError("reinforce: no training prompts", "raise reinforce.questions or lower val_share/test_share")
    write_rows(ctx.stage_dir / "prompts.jsonl", rows)
    return rows


@dataclass(frozen=True)
class RunSetup:
    spec: Any
    device: str
    dtype: str
    args: Any  # GRPOConfig
    decision: Any  # ResumeDecision
    base_path: str
    train_dir: Path
    train_summary: dict[str, Any]

    @property
    def main_process(self) -> bool:
        return self.args.process_index == 0


def prepare_run(ctx: StageContext, rows: list[PromptRow]) -> RunSetup:
    """Device, dtype (the train section's rules), the memory plan, GRPOConfig and the checkpoint decision."""
    from fine_tuning.plan.cli import check_memory_before_training
    from fine_tuning.train.loading import read_train_summary
    from fine_tuning.train.trainer import quiet_transformers
    from fine_tuning.train.tuned import refuse_full_for_reinforce

    cfg, train_cfg = ctx.cfg.reinforce, ctx.cfg.train
    train_dir = ctx.upstream_dir("train")
    summary = read_train_summary(train_dir)
    adapter = refuse_full_for_reinforce(train_dir).adapter_dir / "adapter_model.safetensors"  # full: refused
    spec = model_spec(train_cfg.base_model)
    device, bf16_supported = detect_device()
    dtype = resolve_dtype(spec, device, bf16_supported, train_cfg)
    note = check_memory_before_training(ctx.cfg)  # before any weights are loaded
    if note:
        console.print(f"reinforce: {note}")
    output_dir = Path(cfg.output_dir) if cfg.output_dir else ctx.stage_dir / "checkpoints"
    hashes = [sha256_file(ctx.stage_dir / "prompts.jsonl"), sha256_file(adapter)]
    key = resume_key(cfg.model_copy(update={"enabled": True}), ctx.cfg.seed, hashes)
    quiet_transformers()
    # TRL warns once per batch that a completion got None from every reward (a row whose facts do not compute; a cut
    # rollout scores 0 for format, see rewards.py); rollouts.jsonl records them instead.
    logging.getLogger("trl").setLevel(logging.ERROR)
    args = grpo_config(cfg, train_cfg, ctx.cfg.seed, output_dir, device, dtype, report_targets(train_cfg))
    with args.main_process_first(local=False, desc="checkpoint decision"):
        decision = decide_resume(
            output_dir,
            key,
            bool(ctx.option("resume", False)),
            main_process=args.process_index == 0,
            fresh=bool(ctx.option("force", False)),
        )
    base = train_dir / summary["base_model_dir"] if summary.get("base_model_dir") else summary["base_model_path"]
    return RunSetup(spec, device, dtype, args, decision, str(base), train_dir, summary)


def load_policy(setup: RunSetup, train_cfg: Any) -> tuple[Any, Any, list[int]]:
    """(model with the SFT adapter trainable, tokenizer, the ids that end a rollout)."""
    from peft import PeftModel
    from transformers import AutoTokenizer

    from fine_tuning.train.loading import load_model_for_training

    base = load_model_for_training(
        setup.spec,
        setup.base_path,
        train_cfg.method,
        setup.dtype,
        setup.device,
        activation_checkpointing=train_cfg.activation_checkpointing,
        quantization=train_cfg.quantization,  # the base the SFT adapter was trained on (nf4 or int8)
    )
    model = PeftModel.from_pretrained(base, str(setup.train_dir / "adapter"), is_trainable=True)
    tokenizer = AutoTokenizer.from_pretrained(str(setup.train_dir / "tokenizer"))
    end_of_turn = setup.train_summary.get("end_of_turn_token") or tokenizer.eos_token
    eot_id = tokenizer.convert_tokens_to_ids(end_of_turn)
    if eot_id is None or eot_id == tokenizer.unk_token_id:
        raise SlmError(
            f"reinforce: the end-of-turn token {end_of_turn!r} of the train stage is not in its tokenizer",
            "rerun `slm train CONFIG --force`",
        )
    eos_ids = list(dict.fromkeys(i for i in (tokenizer.eos_token_id, eot_id) if i is not None))
    # TRL stops a rollout on model.generation_config.eos_token_id: without the end-of-turn token (Gemma 3: 106 as
    # well as 1) every rollout would run to max_completion_length and be masked as truncated.
    model.generation_config.eos_token_id = eos_ids
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    return model, tokenizer, eos_ids


def check_prompts(tokenizer: Any, rows: list[PromptRow], max_completion_length: int) -> dict[str, Any]:
    """The prompts render with the generation prompt, and the longest reference answer fits max_completion_length."""
    sample = rows[0].record("")["prompt"]
    rendered = tokenizer.apply_chat_template(sample, tokenize=False, add_generation_prompt=True)
    if not rendered.rstrip().endswith(tuple(_generation_prompt_ends(tokenizer, sample))):
        raise SlmError(
            "reinforce: the chat template does not end a prompt with the assistant's turn (add_generation_prompt)",
            "set train.chat_template to a template that honours add_generation_prompt",
        )
    lengths = [len(tokenizer(reference_answer(r.facts.computation, r.audience))["input_ids"]) + 1 for r in rows]
    longest = max(lengths)
    if longest > max_completion_length:
        raise SlmError(
            f"reinforce.max_completion_length={max_completion_length}: the longest worked answer of these prompts is "
            f"{longest} tokens, so right answers would be cut and masked (flat rewards)",
            f"set reinforce.max_completion_length to at least {longest} (about {int(longest * 1.25)} leaves room)",
        )
    return {"longest_reference_tokens": longest, "median_reference_tokens": sorted(lengths)[len(lengths) // 2]}


def _generation_prompt_ends(tokenizer: Any, sample: list[dict[str, str]]) -> list[str]:
    """What a rendered prompt ends with after add_generation_prompt: the text it adds to the plain rendering."""
    plain = tokenizer.apply_chat_template(sample, tokenize=False, add_generation_prompt=False)
    full = tokenizer.apply_chat_template(sample, tokenize=False, add_generation_prompt=True)
    added = full[len(plain) :].strip() if full.startswith(plain) else ""
    return [added] if added else ["\x00never"]


def corpus_index(ctx: StageContext) -> Any:
    """The collected statutes, for the citation reward; None (applied-rule checks only) without documents."""
    from slm_datagen.dataset.grounding import build_statute_index
    from slm_forest.records import Document

    path = ctx.upstream_dir("collect") / "documents.jsonl"
    if not path.exists():
        return None
    return build_statute_index([Document.model_validate(row) for row in read_jsonl(path)])


def train_or_restore(trainer: Any, setup: RunSetup, cfg: Any) -> int:
    """Train (resuming from the chosen checkpoint), or take a checkpoint that already reached max_steps."""
    import torch

    from fine_tuning.train.checkpoints import restore_finished
    from fine_tuning.train.trainer import cpu_threads

    checkpoint = setup.decision.checkpoint
    threads_before = torch.get_num_threads()
    torch.set_num_threads(cpu_threads(setup.device, trainer.model.get_nb_trainable_parameters()[1]))
    try:
        finished = finished_state(checkpoint, cfg) if checkpoint is not None else None
        if finished is not None:
            restore_finished(trainer, finished, checkpoint, has_eval=False)
            console.print(f"reinforce: {checkpoint.name} already reached step {finished.global_step}")
        else:
            if checkpoint is not None:
                console.print(f"reinforce: resuming from {checkpoint}")
            trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint else None)
    finally:
        torch.set_num_threads(threads_before)
    return trainer.state.global_step


def save_outputs(trainer: Any, tokenizer: Any, stage_dir: Path, main_process: bool) -> None:
    """adapter/ (only the trained adapter: TRL's frozen "ref" copy is dropped first) and tokenizer/, atomically."""
    from fine_tuning.train.outputs import save_dir_atomically

    model = trainer.model
    if "ref" in getattr(model, "peft_config", {}):
        model.delete_adapter("ref")
    if main_process:
        save_dir_atomically(stage_dir, "adapter", lambda d: model.save_pretrained(str(d)))
        save_dir_atomically(stage_dir, "tokenizer", lambda d: tokenizer.save_pretrained(str(d)))


def reinforce_summary(
    ctx: StageContext,
    setup: RunSetup,
    rows: list[PromptRow],
    trainer: Any,
    step: int,
    log_cb: Any,
    preflight: dict[str, Any],
    eos_ids: list[int],
) -> dict[str, Any]:
    history = trainer.state.log_history
    rewards_logged = [entry["reward"] for entry in history if entry.get("reward") is not None]
    rollouts = read_rollouts(ctx.stage_dir / "rollouts.jsonl")
    return {
        "base_model": ctx.cfg.train.base_model,
        "sft_adapter": str(setup.train_dir / "adapter"),
        "method": ctx.cfg.train.method,
        "dtype": setup.dtype,
        "device": setup.device,
        "global_step": step,
        "max_steps": ctx.cfg.reinforce.max_steps,
        "resumed_from": setup.decision.checkpoint.name if setup.decision.checkpoint else None,
        "reward_first": round(rewards_logged[0], 4) if rewards_logged else None,
        "reward_last": round(rewards_logged[-1], 4) if rewards_logged else None,
        "reward_by_step": [round(r, 4) for r in rewards_logged],
        "zero_variance_groups": sum(entry["zero_variance"] for entry in rollouts),
        "groups": sum(len(entry["groups"]) for entry in rollouts),
        "prompts": {split: sum(row.split == split for row in rows) for split in ("train", "val", "test")},
        "sources": {src: sum(row.source == src for row in rows) for src in ("generated", "dataset")},
        "eos_token_ids": eos_ids,
        "preflight": preflight,
        "timing": log_cb.timing(),
        "config": ctx.cfg.reinforce.model_dump(mode="json"),
    }
