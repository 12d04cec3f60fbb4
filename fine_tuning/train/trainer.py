"""The trainer `slm train` runs: TRL's SFTConfig from the train section, the SFTTrainer (token counting, text-only
batches), the early-stopping callback a resume restores, and the CPU thread count.

transformers and TRL are imported inside the functions, so importing this module stays cheap.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fine_tuning.train.checks import check_optimizer
from slm_forest.errors import SlmError


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


def quiet_transformers() -> None:
    """Our progress bar and summaries replace the libraries' per-shard bars and info chatter."""
    from datasets.utils.logging import disable_progress_bar as datasets_quiet
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    datasets_quiet()
