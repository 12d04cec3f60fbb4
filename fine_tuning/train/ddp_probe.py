"""`python -m fine_tuning.train.ddp_probe <slm arguments>`: the `slm` CLI, plus a record of what each process did.

For the multi-process tests (tests/test_multigpu.py) and for checking a new launcher setup on a pod:

    SLM_DDP_PROBE_DIR=/tmp/probe accelerate launch --config_file fine_tuning/train/accelerate_configs/ddp.yaml \
        --num_processes 2 -m fine_tuning.train.ddp_probe train configs/smoke.yaml

It runs the real `slm` command unchanged and only observes. Every process appends JSON lines to
`$SLM_DDP_PROBE_DIR/rank<RANK>.jsonl`:

- `start`: RANK / LOCAL_RANK / WORLD_SIZE from the launcher and the pid;
- `train_begin`: the process group as torch.distributed sees it (initialised, world size, rank, backend) and the
  Trainer's view (`args.world_size`, `args.process_index`, `is_world_process_zero`);
- `train_end`: optimizer steps, micro-batches and real tokens this process trained on, and a sha256 of its
  trainable (LoRA) weights: identical on every rank when gradients were really averaged (DDP), different when the
  processes trained independently;
- `save`: every directory `fine_tuning.train.outputs` saved atomically (adapter/, tokenizer/) by this process;
- `manifest`: every stage manifest this process wrote.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path
from typing import Any

PROBE_ENV = "SLM_DDP_PROBE_DIR"


def _record(event: str, **fields: Any) -> None:
    directory = Path(os.environ[PROBE_ENV])
    directory.mkdir(parents=True, exist_ok=True)
    rank = os.environ.get("RANK", "0")
    row = {"event": event, "rank_env": int(rank), "pid": os.getpid(), "time": round(time.time(), 3), **fields}
    with open(directory / f"rank{rank}.jsonl", "a", encoding="utf-8") as handle:
        handle.write(json.dumps(row, ensure_ascii=False) + "\n")


def trainable_digest(model: Any) -> str:
    """sha256 over the names and values of the trainable parameters, in name order."""
    digest = hashlib.sha256()
    for name, param in sorted(model.named_parameters(), key=lambda item: item[0]):
        if param.requires_grad:
            digest.update(name.encode())
            digest.update(param.detach().float().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def _install() -> None:
    from transformers import TrainerCallback

    import fine_tuning.train.outputs as outputs
    import fine_tuning.train.stage as train
    import slm_forest.pipeline as pipeline

    class Recorder(TrainerCallback):
        def __init__(self, trainer: Any) -> None:
            self.trainer = trainer

        def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            import torch.distributed as dist

            initialised = dist.is_available() and dist.is_initialized()
            _record(
                "train_begin",
                dist_initialized=initialised,
                dist_world_size=dist.get_world_size() if initialised else 1,
                dist_rank=dist.get_rank() if initialised else 0,
                dist_backend=str(dist.get_backend()) if initialised else None,
                args_world_size=args.world_size,
                args_process_index=args.process_index,
                is_world_process_zero=state.is_world_process_zero,
                distributed_type=str(self.trainer.accelerator.distributed_type),
            )

        def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            counter = getattr(self.trainer, "token_counter", None)
            _record(
                "train_end",
                global_step=state.global_step,
                micro_batches=counter.batches if counter else None,
                real_tokens=counter.real_tokens if counter else None,
                trainable_sha256=trainable_digest(self.trainer.model),
            )

    original_make_trainer = train.make_trainer
    original_save = outputs.save_dir_atomically
    original_write_manifest = pipeline.write_manifest

    def make_trainer(*args: Any, **kwargs: Any) -> Any:
        trainer = original_make_trainer(*args, **kwargs)
        trainer.add_callback(Recorder(trainer))
        return trainer

    def save_dir_atomically(stage_dir: Path, name: str, save: Any) -> Path:
        _record("save", name=name)
        return original_save(stage_dir, name, save)

    def write_manifest(stage_dir: Path, manifest: Any) -> Any:
        _record("manifest", stage=getattr(manifest, "stage", None))
        return original_write_manifest(stage_dir, manifest)

    train.make_trainer = make_trainer
    outputs.save_dir_atomically = save_dir_atomically
    pipeline.write_manifest = write_manifest


def main() -> None:
    if not os.environ.get(PROBE_ENV):
        raise SystemExit(f"set {PROBE_ENV} to the directory that receives rank<N>.jsonl")
    _record(
        "start",
        local_rank=os.environ.get("LOCAL_RANK"),
        world_size_env=os.environ.get("WORLD_SIZE"),
        master_port=os.environ.get("MASTER_PORT"),
    )
    _install()
    from slm_forest.cli import main as slm_main

    slm_main()


if __name__ == "__main__":
    main()
