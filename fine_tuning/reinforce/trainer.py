"""The trainer `slm reinforce` runs: TRL's GRPOConfig from the reinforce (and train) sections, the rewards as TRL
reward functions, and a GRPOTrainer that logs every zero-variance group and a sample of rollouts.

Traps handled here (each measured or read in the installed TRL 1.16):
- truncated completions: `mask_truncated_completions=True` (TRL's default is False), and every reward returns None
  for them, so a cut-off answer neither counts in its group's baseline nor gets a gradient;
- stopping: TRL stops generation on `model.generation_config.eos_token_id`; the stage sets it to eos *and* the chat
  template's end-of-turn token (Gemma 3: ids 1 and 106), otherwise every rollout runs to max_completion_length;
- zero-variance groups (every rollout of a prompt scored the same: no advantage, no learning): TRL only logs the
  fraction; `ZeroVarianceLog` writes each such group (row id, reward) to rollouts.jsonl and the metric
  `groups/zero_variance`, and the stage summary counts them;
- dtype: bf16/fp16 only on a GPU (`use_cpu`, fp32 on CPU); TRL casts QLoRA adapters to bf16, which on a CPU is
  undone (`cast_adapters_to_fp32`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from fine_tuning.reinforce import rewards
from fine_tuning.reinforce.rewards import facts_from_json
from fine_tuning.train.checks import check_optimizer
from slm_forest.files import dumps_line

REWARD_NAMES = ("final_amount", "partial_amount", "steps", "citations", "format")


def grpo_config(
    cfg: Any, train_cfg: Any, seed: int, output_dir: Path, device: str, dtype: str, report: list[str]
) -> Any:
    from trl import GRPOConfig

    checkpointing_kwargs = {"use_reentrant": False} if train_cfg.activation_checkpointing else None
    return GRPOConfig(
        output_dir=str(output_dir),
        seed=seed,
        data_seed=seed,
        max_steps=cfg.max_steps,
        learning_rate=cfg.learning_rate,
        optim=check_optimizer(train_cfg.optim),
        lr_scheduler_type="constant_with_warmup",  # RL rewards move slowly; a decaying LR would stall them early
        warmup_steps=cfg.warmup_ratio,
        per_device_train_batch_size=cfg.micro_batch_size,
        gradient_accumulation_steps=cfg.gradient_accumulation_steps,
        num_generations=cfg.num_generations,
        max_completion_length=cfg.max_completion_length,
        temperature=cfg.temperature,
        beta=cfg.beta,
        mask_truncated_completions=True,
        reward_weights=[float(getattr(cfg.weights, name)) for name in REWARD_NAMES],
        logging_steps=cfg.logging_steps,
        save_strategy="steps",
        save_steps=cfg.save_steps,
        save_total_limit=cfg.save_total_limit,
        restore_callback_states_from_checkpoint=True,
        report_to=[t for t in report if t != "tensorboard"] or "none",
        activation_checkpointing=train_cfg.activation_checkpointing,  # TRL's own default would be True
        activation_checkpointing_kwargs=checkpointing_kwargs,
        use_cpu=device == "cpu",
        bf16=device == "cuda" and dtype == "bf16",
        fp16=device == "cuda" and dtype == "fp16",
        use_vllm=cfg.use_vllm,
        vllm_mode="colocate",
        vllm_gpu_memory_utilization=cfg.vllm_gpu_memory_utilization,
        log_completions=False,  # TRL's table needs pandas; rollouts.jsonl (ZeroVarianceLog) replaces it
        disable_tqdm=True,
        dataloader_num_workers=0,
        ddp_find_unused_parameters=False,
    )


def reward_functions(cfg: Any, index: Any, eos_ids: list[int]) -> list[Any]:
    """The five rewards as TRL reward functions (named, so TRL logs rewards/<name>/mean)."""
    end_ids = set(eos_ids)

    def texts_and_cuts(completions: list[Any], completion_ids: list[list[int]]) -> list[tuple[str, bool]]:
        out = []
        for completion, ids in zip(completions, completion_ids):
            text = completion[-1]["content"] if isinstance(completion, list) else completion
            out.append((text, not ids or ids[-1] not in end_ids))  # TRL cuts after the first end id
        return out

    def make(name: str, score: Any) -> Any:
        def reward(completions: list[Any], completion_ids: list[list[int]], facts: list[str], **_: Any) -> list:
            pairs = texts_and_cuts(completions, completion_ids)
            return [score(text, facts_from_json(row), cut) for (text, cut), row in zip(pairs, facts)]

        reward.__name__ = name
        return reward

    scale, max_chars = cfg.partial_credit_scale, cfg.max_answer_chars
    return [
        make("final_amount", lambda t, f, cut: rewards.final_amount(t, f, truncated=cut)),
        make("partial_amount", lambda t, f, cut: rewards.partial_amount(t, f, truncated=cut, scale=scale)),
        make("steps", lambda t, f, cut: rewards.steps(t, f, truncated=cut)),
        make("citations", lambda t, f, cut: rewards.citations(t, f, index, truncated=cut)),
        make("format", lambda t, f, cut: rewards.format_score(t, f, truncated=cut, max_chars=max_chars)),
    ]


def group_report(rewards_per_func: Any, weights: Any, row_ids: list[str], num_generations: int) -> list[dict]:
    """One entry per prompt group: its row, mean and spread of the weighted reward, and whether it is flat."""
    import torch

    total = (rewards_per_func * weights.unsqueeze(0)).nansum(dim=1)
    unscorable = torch.isnan(rewards_per_func).all(dim=1)
    total[unscorable] = torch.nan
    groups = []
    for g, start in enumerate(range(0, len(total), num_generations)):
        values = total[start : start + num_generations]
        scored = values[~torch.isnan(values)]
        spread = float(scored.max() - scored.min()) if len(scored) else 0.0
        groups.append(
            {
                "row_id": row_ids[start] if start < len(row_ids) else f"group-{g}",
                "scored": int(len(scored)),
                "mean": round(float(scored.mean()), 4) if len(scored) else None,
                "spread": round(spread, 4),
                "zero_variance": spread < 1e-6,
            }
        )
    return groups


def make_trainer(
    model: Any,
    tokenizer: Any,
    args: Any,
    train_rows: list[dict],
    reward_funcs: list[Any],
    callbacks: list[Any],
    rollout_log: Path,
) -> Any:
    """A GRPOTrainer that writes each step's groups (flat ones marked) and two sample rollouts to `rollout_log`."""
    from datasets import Dataset
    from trl import GRPOTrainer

    class LoggingGRPOTrainer(GRPOTrainer):
        zero_variance_groups = 0
        groups_seen = 0

        def _calculate_rewards(self, inputs, prompts, completions, completion_ids_list):  # noqa: ANN001, ANN202
            per_func = super()._calculate_rewards(inputs, prompts, completions, completion_ids_list)
            if self.accelerator.is_main_process:
                self._record(inputs, completions, per_func)
            return per_func

        def _record(self, inputs: list[dict], completions: list[Any], per_func: Any) -> None:
            groups = group_report(
                per_func, self.reward_weights.to(per_func.device), [x["row_id"] for x in inputs], self.num_generations
            )
            flat = sum(g["zero_variance"] for g in groups)
            self.zero_variance_groups += flat
            self.groups_seen += len(groups)
            self._metrics["train"]["groups/zero_variance"].append(float(flat))
            samples = [
                {
                    "row_id": x["row_id"],
                    "completion": c[-1]["content"] if isinstance(c, list) else c,
                    "rewards": dict(zip(REWARD_NAMES, [None if v != v else round(v, 4) for v in r.tolist()])),
                }
                for x, c, r in list(zip(inputs, completions, per_func))[:2]
            ]
            entry = {"step": self.state.global_step, "groups": groups, "zero_variance": flat, "samples": samples}
            rollout_log.parent.mkdir(parents=True, exist_ok=True)
            with open(rollout_log, "a", encoding="utf-8") as handle:
                handle.write(dumps_line(entry))

    trainer = LoggingGRPOTrainer(
        model=model,
        reward_funcs=reward_funcs,
        args=args,
        train_dataset=Dataset.from_list(train_rows),
        processing_class=tokenizer,
        callbacks=callbacks,
    )
    return trainer


def cast_adapters_to_fp32(model: Any) -> int:
    """TRL casts trainable (adapter) weights of a quantized model to bf16; on a CPU they train in fp32. Returns how
    many tensors were cast."""
    import torch

    cast = 0
    for param in model.parameters():
        if param.requires_grad and param.dtype != torch.float32:
            param.data = param.data.to(torch.float32)
            cast += 1
    return cast


def read_rollouts(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
