"""`slm plan CONFIG`: will this training run fit, how long will it take, what will it cost — before paying.

The numbers come from `fine_tuning.plan.memory` (memory model validated against published runs), `.cost` (hours and
dollars per GPU) and `.suggest` (what would make a run fit); this module turns a run config and its built dataset
into the planner's inputs, prints the answer, and gives `slm train` the same check on the GPU it actually has. No
torch at import time: `slm --help` stays fast.
"""

from __future__ import annotations

import json
import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer

from fine_tuning.plan.parallel import Layout, launch_layout
from slm_forest.config import RunConfig, load_config
from slm_forest.errors import SlmError

# Chat-template tokens around each message (role markers, end-of-turn) that the characters don't show.
_TEMPLATE_TOKENS_PER_MESSAGE = 6


@dataclass(frozen=True)
class DatasetSize:
    examples: int
    tokens: int | None  # estimated tokens of one epoch; None: unknown (no built dataset, no --tokens)
    source: str  # where the numbers came from


def dataset_size(cfg: RunConfig, tokens_override: int | None = None) -> DatasetSize:
    """Examples and estimated tokens of the built train split (characters / plan.chars_per_token).

    Without a built dataset and without --tokens the size is unknown (tokens None): memory does not depend on it,
    so the plan still gives the memory, and hours and dollars say what they need."""
    train_file = cfg.run_dir() / "build" / "train.jsonl"
    if tokens_override is not None:
        if tokens_override < 0:
            raise SlmError(f"--tokens {tokens_override}: a token count cannot be negative", "pass --tokens N, N >= 0")
        return DatasetSize(0, tokens_override, "--tokens")
    if not train_file.exists():
        return DatasetSize(0, None, f"no built dataset ({train_file} not found)")
    examples, chars, messages = 0, 0, 0
    with open(train_file, encoding="utf-8") as handle:
        for line in handle:
            if not line.strip():
                continue
            row = json.loads(line)
            examples += 1
            for message in row.get("messages", []):
                chars += len(message.get("content", ""))
                messages += 1
    tokens = int(chars / cfg.plan.chars_per_token) + messages * _TEMPLATE_TOKENS_PER_MESSAGE
    return DatasetSize(examples, tokens, str(train_file))


def planner_optimizer(name: str) -> tuple[str, str | None]:
    """`train.optim` as the planner's optimizer: (name, None) when the memory model knows it, else ("adamw", a note).

    AdamW's fp32 states are the largest of the common optimizers, so an unknown one is planned on the safe side.
    """
    from fine_tuning.plan.memory_terms import PLANNED_OPTIMIZERS

    if name.lower() in PLANNED_OPTIMIZERS:
        return name.lower(), None
    return "adamw", f"train.optim={name} is not in the planner's table: its states were planned as AdamW's (fp32)"


def _memory_kwargs(cfg: RunConfig, *, frozen_fp32: bool = False) -> dict[str, Any]:
    """The run config as `estimate_memory`'s arguments; `frozen_fp32` (slm plan --frozen-fp32) plans a stack that
    upcasts the frozen non-quantized weights to fp32 (peft's prepare_model_for_kbit_training) where `slm train`
    keeps them in bf16."""
    train = cfg.train
    dtype = "fp32" if train.dtype == "fp32" else "bf16"
    quantization = {"nf4": "4bit", "int8": "8bit"}[train.quantization] if train.method == "qlora" else "none"
    return {
        "method": "full" if train.method == "full" else "lora",
        "master_weights": train.master_weights,
        "optimizer": planner_optimizer(train.optim)[0],
        "quantization": quantization,
        "dtype": dtype,
        "lora_r": train.lora.r,
        "lora_targets": train.lora.target_modules,
        "modules_to_save": list(train.lora.modules_to_save),
        "lora_dropout": train.lora.dropout,
        "seq_len": train.max_length,
        "micro_batch": train.micro_batch_size,
        "gradient_checkpointing": train.activation_checkpointing,
        "packing": train.packing,
        "loss_impl": cfg.plan.loss_head,
        "upcast_frozen_fp32": frozen_fp32,
        "grad_accum_steps": train.gradient_accumulation_steps,
    }


def _model_spec(cfg: RunConfig, model_config: Path | None):
    from fine_tuning.plan.registry import get_model_spec

    target = str(model_config) if model_config else cfg.train.base_model
    try:
        return get_model_spec(target)
    except ValueError as exc:
        raise SlmError(
            f"train.base_model: {exc}",
            "use a registry key, a local model directory, or pass --model-config path/to/config.json",
        ) from None


def plan_for_config(
    cfg: RunConfig,
    *,
    model_config: Path | None = None,
    tokens: int | None = None,
    gpu: str | None = None,
    gpus: int = 1,
    strategy: str = "ddp",
    frozen_fp32: bool = False,
):
    """The planner's RunPlan for this config (optionally on one named GPU of the table, on `gpus` of them)."""
    from fine_tuning.plan.cost import plan_run
    from fine_tuning.plan.gpus import gpus_from_config

    spec = _model_spec(cfg, model_config)
    size = dataset_size(cfg, tokens)
    try:
        table = gpus_from_config(cfg.plan.gpus)
    except (ValueError, TypeError) as exc:
        raise SlmError(
            f"plan.gpus: {exc}",
            "each GPU entry needs name, memory_gb, usd_per_hour, bf16, tflops_16bit, mem_bandwidth_gbs",
        ) from None
    if gpu:
        chosen = [g for g in table if g.name.lower() == gpu.lower()]
        if not chosen:
            raise SlmError(f"--gpu {gpu}: not in the GPU table", f"known: {', '.join(g.name for g in table)}")
        table = tuple(chosen)
    epochs = cfg.train.epochs
    train_tokens = size.tokens
    mean = size.tokens / size.examples if size.examples and size.tokens is not None else None
    if cfg.train.max_steps > 0:
        # max_steps decides the run's length (Trainer repeats the data if the epochs end first): each optimizer step
        # sees micro_batch x accumulation sequences, max_length tokens each when packed.
        sequences = cfg.train.max_steps * cfg.train.micro_batch_size * cfg.train.gradient_accumulation_steps
        per_sequence = cfg.train.max_length if cfg.train.packing or mean is None else min(cfg.train.max_length, mean)
        train_tokens = sequences * per_sequence
        epochs = 1.0
    if gpus < 1 or strategy not in ("ddp", "fsdp"):
        raise SlmError(
            f"--gpus {gpus} --strategy {strategy}: not a launch", "use --gpus N (N >= 1), --strategy ddp|fsdp"
        )
    kwargs = {**_memory_kwargs(cfg, frozen_fp32=frozen_fp32), "n_gpus": gpus, "strategy": strategy}
    try:
        run_plan = plan_run(
            spec,
            train_tokens=int(train_tokens or 0),
            mean_example_tokens=mean,
            epochs=epochs,
            gpus=table,
            mfu=cfg.plan.mfu,
            **kwargs,
        )
    except ValueError as exc:  # a combination the config schema allows but that cannot train (full over GPTQ …)
        raise SlmError(f"train: {exc}", f"change the train section of {cfg.source_path or 'the config'}") from None
    return spec, size, run_plan


def optimizer_steps(cfg: RunConfig, size: DatasetSize) -> int | None:
    """Optimizer steps of the run (per process): `train.max_steps` when set; else, packed, tokens per epoch × epochs
    ÷ (micro_batch × grad_accum × max_length); unpacked, examples × epochs ÷ (micro_batch × grad_accum).
    None when neither max_steps nor the dataset size is known."""
    train = cfg.train
    if train.max_steps > 0:
        return train.max_steps
    if size.tokens is None:
        return None
    per_step = train.micro_batch_size * train.gradient_accumulation_steps
    if train.packing or not size.examples:
        sequences = size.tokens / train.max_length  # bfd packing fills sequences of max_length tokens
    else:
        sequences = float(size.examples)
    return max(1, math.ceil(sequences * train.epochs / per_step))


def memory_verdict(cfg: RunConfig, gpu_name: str, total_gb: float, layout: Layout | None = None) -> str:
    """The decision `slm train` makes on the GPU it finds: a note when the estimate fits, an SlmError when not.
    `layout`: the GPUs and strategy of the launch (one GPU's share is checked against one card); default one GPU."""
    from fine_tuning.plan.memory import estimate_memory
    from fine_tuning.plan.suggest import suggest_changes

    spec = _model_spec(cfg, None)
    kwargs = _memory_kwargs(cfg)
    if layout is not None:
        kwargs.update(n_gpus=layout.n_gpus, strategy=layout.strategy, sync_each_batch=layout.sync_each_batch)
    try:
        estimate = estimate_memory(spec, **kwargs)
    except ValueError as exc:
        raise SlmError(f"train: {exc}", f"change the train section of {cfg.source_path or 'the config'}") from None
    where = (
        gpu_name if kwargs.get("n_gpus", 1) == 1 else f"each of {kwargs['n_gpus']} x {gpu_name} ({kwargs['strategy']})"
    )
    if estimate.peak_gb > total_gb:
        fixes = suggest_changes(spec, target_gb=total_gb, **kwargs)
        hint = "; ".join(s.description for s in fixes if s.fits)[:300] or "use a larger GPU"
        raise SlmError(
            f"the plan says this run needs ~{estimate.peak_gb:.1f} GiB on {where}, which has {total_gb:.1f} GiB",
            f"{hint} (see `slm plan {cfg.source_path or 'CONFIG'}`; plan.check_before_training: false overrides)",
        )
    return f"memory plan: ~{estimate.peak_gb:.1f} of {total_gb:.1f} GiB on {where}"


def check_memory_before_training(cfg: RunConfig, layout: Layout | None = None) -> str | None:
    """Refuse, before any weights are downloaded, a run whose estimate does not fit the GPU present.

    `layout` defaults to the launch this process is part of (`launch_layout(os.environ)`: WORLD_SIZE,
    ACCELERATE_USE_FSDP), so under `accelerate launch` one GPU's share of the run is checked.
    Returns a one-line note for the log, or None on CPU (no GPU to check against).
    """
    import os

    import torch

    if not cfg.plan.check_before_training or not torch.cuda.is_available():
        return None
    if layout is None:
        try:
            layout = launch_layout(os.environ, cfg.train.gradient_accumulation_steps)
        except ValueError as exc:
            raise SlmError(f"train: {exc}", "launch with torchrun or `accelerate launch`, which set it") from None
    props = torch.cuda.get_device_properties(0)
    return memory_verdict(cfg, props.name, props.total_memory / 2**30, layout)


def plan(
    config: Annotated[Path, typer.Argument(help="the run's YAML config", show_default=False)],
    set_: Annotated[
        list[str] | None, typer.Option("--set", help="override a config key (repeatable)", show_default=False)
    ] = None,
    gpu: Annotated[str | None, typer.Option(help="plan for one GPU of the table, e.g. 'RTX 4090'")] = None,
    model_config: Annotated[
        Path | None, typer.Option(help="a local config.json, for models outside the registry (offline)")
    ] = None,
    tokens: Annotated[int | None, typer.Option(help="training tokens per epoch, instead of the built dataset")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print one JSON object instead of tables")] = False,
    gpus: Annotated[int, typer.Option(help="GPUs of one pod (memory is per GPU, dollars for all of them)")] = 1,
    strategy: Annotated[str, typer.Option(help="with --gpus > 1: ddp (a replica per GPU) or fsdp (sharded)")] = "ddp",
    frozen_fp32: Annotated[
        bool,
        typer.Option(
            help="plan a stack that upcasts frozen non-quantized weights to fp32 (peft's prepare_model_for_kbit_"
            "training); `slm train` keeps them in bf16"
        ),
    ] = False,
) -> None:
    """Estimate peak GPU memory, time and dollars per GPU; list what would make a run fit."""
    from fine_tuning.plan.cost import plan_to_dict

    cfg = load_config(config, set_)
    spec, size, run_plan = plan_for_config(
        cfg, model_config=model_config, tokens=tokens, gpu=gpu, gpus=gpus, strategy=strategy, frozen_fp32=frozen_fp32
    )
    data = plan_to_dict(run_plan)
    data["dataset"] = {"examples": size.examples, "tokens_per_epoch": size.tokens, "source": size.source}
    data["steps"] = optimizer_steps(cfg, size)
    note = planner_optimizer(cfg.train.optim)[1]
    data["plan_notes"] = [note] if note else []
    if data["steps"] is None:
        _without_run_length(cfg, data)
    from fine_tuning.reinforce.plan import stage_plan  # noqa: PLC0415 - the reinforce stage's terms (reinforce.enabled)

    data["reinforce"] = stage_plan(cfg, spec.arch)
    fits_any = any(data["fits"].values())
    if as_json:
        sys.stdout.write(json.dumps(data, ensure_ascii=False, indent=2) + "\n")
    else:
        _print_plan(cfg, spec, data)
    if gpu and not fits_any:
        raise typer.Exit(1)


def time_needs_note(cfg: RunConfig) -> str:
    return (
        "hours and dollars need the run's length: pass --tokens N (training tokens per epoch), build the dataset "
        f"(`slm run {cfg.source_path or 'CONFIG'} --to build`), or set train.max_steps"
    )


def _without_run_length(cfg: RunConfig, data: dict[str, Any]) -> None:
    """No dataset, no --tokens, no max_steps: the memory plan stands (it does not depend on the dataset size); the
    hours and dollars computed for zero tokens would be a fake, so they are removed and the note says what they need."""
    for key in ("hours", "usd", "tokens_per_s"):
        data[key] = {name: None for name in data[key]}
    data["train_tokens"] = data["processed_tokens"] = None
    data["cheapest_fit"] = data["fastest_fit"] = None
    data["plan_notes"].append(time_needs_note(cfg))


def _print_plan(cfg: RunConfig, spec: Any, data: dict[str, Any]) -> None:
    from rich.table import Table

    from slm_forest.progress import console

    settings = data["settings"]
    timed = data["steps"] is not None
    tokens = f"{data['train_tokens']:,} train tokens × {data['epochs']:g} epoch(s)" if timed else "run length unknown"
    console.print(
        f"[bold]{spec.name}[/bold] {cfg.train.method} · seq {settings['seq_len']} · micro-batch "
        f"{settings['micro_batch']} · checkpointing {'on' if settings['gradient_checkpointing'] else 'off'} · "
        f"{tokens} ({data['dataset']['source']})"
    )
    steps_rule = (
        "train.max_steps"
        if cfg.train.max_steps > 0
        else f"micro-batch {cfg.train.micro_batch_size} × accumulation {cfg.train.gradient_accumulation_steps}"
        + (f" × {cfg.train.max_length} packed tokens" if cfg.train.packing else " examples")
    )
    if timed:
        console.print(f"optimizer steps: {data['steps']:,} ({steps_rule}) · optimizer {settings['optimizer']}")
    for note in data.get("plan_notes", []):
        console.print(f"[yellow]note: {note}[/yellow]")
    if data.get("reinforce"):
        from fine_tuning.reinforce.plan import plan_line  # noqa: PLC0415

        console.print(plan_line(data["reinforce"]))
    per_gpu = f" per GPU ({settings['n_gpus']} GPUs, {settings['strategy']})" if settings["n_gpus"] > 1 else ""
    memory = Table(title=f"peak GPU memory ≈ {data['peak_memory_gb']:.1f} GiB{per_gpu}")
    memory.add_column("part")
    memory.add_column("GiB", justify="right")
    memory.add_column("why")
    for name, gb in data["memory"].items():
        memory.add_row(name, f"{gb:.2f}", data["memory_explanations"][name])
    console.print(memory)
    gpus = Table(title="RunPod GPUs (prices: plan.gpus in the config)")
    columns = ("GPU", "fits", "margin GiB", "hours", "USD") if timed else ("GPU", "fits", "margin GiB", "USD/hour")
    for column in columns:
        gpus.add_column(column, justify="right" if column != "GPU" else "left")
    for name, fits in data["fits"].items():
        cells = [name, "[green]yes[/green]" if fits else "[red]no[/red]", f"{data['margin_gb'][name]:+.1f}"]
        if timed:
            cells += [f"{data['hours'][name]:.2f}", f"{data['usd'][name]:.2f}"]
        else:
            cells.append(f"{data['usd_per_hour'][name]:.2f}")
        gpus.add_row(*cells)
    console.print(gpus)
    if data["suggestions"]:
        console.print("[bold]to fit a smaller card:[/bold]")
        for suggestion in data["suggestions"]:
            mark = "fits" if suggestion["fits"] else "not enough alone"
            sets = " ".join(
                f"--set {k}={json.dumps(v) if isinstance(v, bool) else v}"
                for k, v in suggestion.get("config", {}).items()
            )
            console.print(
                f"  - {suggestion['description']}: ≈{suggestion['peak_memory_gb']:.1f} GiB ({mark})"
                + (f" [dim]{sets}[/dim]" if sets else "")
            )
    console.print("[dim]estimates: memory within ~15% of published runs; hours and dollars are rough (±50%)[/dim]")
