"""What a training run shows and leaves behind: the progress bar, the JSONL log, step times, token counts, the loss plot.

- `ProgressCallback`: slm_forest's rich bar with step/total, the latest train/eval loss in the description, and ETA.
- `JsonlLogCallback`: appends every `Trainer.log` entry to `trainer_log.jsonl` as it happens (watch it with
  `tail -f`), and measures seconds per optimizer step.
- `TokenCounter`: counts, over the training micro-batches actually fed to the model, the real (non-pad) tokens and
  the trained (label ≠ -100) tokens, so the run reports the share of real tokens.
- `plot_loss(log_history, path)`: train and eval loss against the step, as a PNG.

The trainer callbacks import transformers lazily through `make_callbacks`, so importing this module stays cheap.
"""

from __future__ import annotations

import contextlib
import time
from pathlib import Path
from typing import Any

from slm_forest.files import atomic_path, dumps_line
from slm_forest.progress import progress_bar


class TokenCounter:
    """Counts, over the micro-batches the trainer actually trains on, positions, real (non-pad) and trained tokens.

    Fed from the trainer's `training_step` (evaluation batches never pass there). Padding-free batches (bfd packing)
    are one flattened row without pad tokens (TRL pads them only on Neuron), so every position is real there.
    """

    def __init__(self) -> None:
        self.batches = 0
        self.positions = 0  # every position fed to the model, padding included
        self.real_tokens = 0  # positions that are not padding
        self.trained_tokens = 0  # positions whose label is not -100

    def observe(self, inputs: dict[str, Any]) -> None:
        input_ids = inputs["input_ids"]
        self.batches += 1
        self.positions += int(input_ids.numel())
        mask = inputs.get("attention_mask")
        self.real_tokens += int(mask.sum()) if mask is not None else int(input_ids.numel())
        labels = inputs.get("labels")
        if labels is not None:
            self.trained_tokens += int((labels != -100).sum())

    def stats(self) -> dict[str, Any]:
        return {
            "batches": self.batches,
            "positions": self.positions,
            "real_tokens": self.real_tokens,
            "trained_tokens": self.trained_tokens,
            "real_token_share": round(self.real_tokens / self.positions, 4) if self.positions else None,
            "trained_token_share": round(self.trained_tokens / self.real_tokens, 4) if self.real_tokens else None,
        }


def make_callbacks(log_path: Path, description: str) -> tuple[Any, Any]:
    """(ProgressCallback, JsonlLogCallback) instances; classes are built here so transformers loads lazily."""
    from transformers import TrainerCallback

    class ProgressCallback(TrainerCallback):
        """Drives slm_forest.progress.progress_bar: step/total, latest losses, rate and ETA."""

        def __init__(self) -> None:
            self._stack = contextlib.ExitStack()
            self._task: Any = None
            self._losses: dict[str, float] = {}

        def _describe(self) -> str:
            parts = [description]
            if "loss" in self._losses:
                parts.append(f"loss {self._losses['loss']:.3f}")
            if "eval_loss" in self._losses:
                parts.append(f"eval {self._losses['eval_loss']:.3f}")
            return " · ".join(parts)

        def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            if state.is_world_process_zero and self._task is None:
                self._task = self._stack.enter_context(progress_bar(description, total=state.max_steps))
                self._task.update(completed=state.global_step)

        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            if self._task is not None:
                self._task.update(completed=state.global_step, description=self._describe())

        def on_log(self, args: Any, state: Any, control: Any, logs: Any = None, **kwargs: Any) -> None:
            for key in ("loss", "eval_loss"):
                if logs and key in logs:
                    self._losses[key] = float(logs[key])
            if self._task is not None:
                self._task.update(description=self._describe())

        def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            self._stack.close()
            self._task = None

    class JsonlLogCallback(TrainerCallback):
        """Appends each log entry to trainer_log.jsonl as it happens; measures seconds per optimizer step."""

        def __init__(self) -> None:
            self.step_seconds: list[float] = []
            self._step_started: float | None = None

        def on_step_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            self._step_started = time.perf_counter()

        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            if self._step_started is not None:
                self.step_seconds.append(time.perf_counter() - self._step_started)
                self._step_started = None

        def on_log(self, args: Any, state: Any, control: Any, logs: Any = None, **kwargs: Any) -> None:
            if not state.is_world_process_zero or not logs:
                return
            log_path.parent.mkdir(parents=True, exist_ok=True)
            with open(log_path, "a", encoding="utf-8") as handle:
                handle.write(dumps_line({"step": state.global_step, "epoch": state.epoch, **logs}))

        def timing(self) -> dict[str, Any]:
            seconds = sorted(self.step_seconds)
            if not seconds:
                return {"steps_timed": 0}
            # The first step includes lazy initialisation (kernels, optimizer state): reported apart.
            steady = seconds if len(seconds) < 3 else sorted(self.step_seconds[1:])
            return {
                "steps_timed": len(seconds),
                "first_step_seconds": round(self.step_seconds[0], 4),
                "median_step_seconds": round(steady[len(steady) // 2], 4),
                "mean_step_seconds": round(sum(steady) / len(steady), 4),
            }

    return ProgressCallback(), JsonlLogCallback()


def write_log_history(log_history: list[dict[str, Any]], path: Path) -> None:
    """The whole history (resumed runs included: Trainer restores it from the checkpoint), atomically."""
    with atomic_path(path) as tmp:
        with open(tmp, "w", encoding="utf-8") as handle:
            for entry in log_history:
                handle.write(dumps_line(entry))


def loss_series(log_history: list[dict[str, Any]]) -> dict[str, list[tuple[int, float]]]:
    series: dict[str, list[tuple[int, float]]] = {"loss": [], "eval_loss": []}
    for entry in log_history:
        for key in series:
            if key in entry and "step" in entry:
                series[key].append((int(entry["step"]), float(entry[key])))
    return series


def plot_loss(log_history: list[dict[str, Any]], path: Path, title: str = "") -> None:
    """Train and eval loss against the optimizer step, saved as a PNG (Agg backend, no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series = loss_series(log_history)
    fig, ax = plt.subplots(figsize=(7, 4), dpi=100)
    try:
        for key, label, style in (("loss", "train", "-"), ("eval_loss", "eval", "o-")):
            points = series[key]
            if points:
                ax.plot([s for s, _ in points], [v for _, v in points], style, label=label)
        ax.set_xlabel("step")
        ax.set_ylabel("loss")
        ax.set_title(title or "loss")
        ax.grid(alpha=0.3)
        if any(series.values()):
            ax.legend()
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format="png", bbox_inches="tight")
    finally:
        plt.close(fig)
