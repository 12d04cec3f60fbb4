"""Progress, logs, token counts and the loss plot, driven the way Trainer drives them (no training needed)."""

from __future__ import annotations

import contextlib
import json
from types import SimpleNamespace

import pytest


class RecordingTask:
    def __init__(self) -> None:
        self.updates: list[dict] = []

    def update(self, **fields) -> None:
        self.updates.append(fields)

    def advance(self, n=1, **fields) -> None:
        self.updates.append({"advance": n, **fields})


def test_progress_callback_shows_step_total_and_losses(monkeypatch, tmp_path):
    import fine_tuning.train.callbacks as callbacks

    opened: list[tuple[str, int]] = []
    task = RecordingTask()

    @contextlib.contextmanager
    def fake_bar(description, total, **kwargs):
        opened.append((description, total))
        yield task

    monkeypatch.setattr(callbacks, "progress_bar", fake_bar)
    progress, log = callbacks.make_callbacks(tmp_path / "trainer_log.jsonl", "train tiny (lora)")
    state = SimpleNamespace(is_world_process_zero=True, max_steps=20, global_step=8, epoch=0.5)  # resumed at step 8
    progress.on_train_begin(None, state, None)
    assert opened == [("train tiny (lora)", 20)] and task.updates[-1] == {"completed": 8}
    state.global_step = 9
    progress.on_log(None, state, None, logs={"loss": 1.23456})
    progress.on_step_end(None, state, None)
    assert task.updates[-1] == {"completed": 9, "description": "train tiny (lora) · loss 1.235"}
    progress.on_log(None, state, None, logs={"eval_loss": 2.5})
    assert task.updates[-1]["description"].endswith("loss 1.235 · eval 2.500")
    progress.on_train_end(None, state, None)

    log.on_step_begin(None, state, None)
    log.on_step_end(None, state, None)
    log.on_log(None, state, None, logs={"loss": 1.5, "learning_rate": 0.001})
    rows = [json.loads(line) for line in (tmp_path / "trainer_log.jsonl").read_text().splitlines()]
    assert rows == [{"step": 9, "epoch": 0.5, "loss": 1.5, "learning_rate": 0.001}]
    assert log.timing()["steps_timed"] == 1


def test_token_counter_measures_padding():
    import torch

    from fine_tuning.train.callbacks import TokenCounter

    counter = TokenCounter()
    # a padded batch: 2 rows of 4 positions, 5 real tokens, 3 of them trained
    counter.observe(
        {
            "input_ids": torch.tensor([[5, 6, 7, 0], [8, 9, 0, 0]]),
            "attention_mask": torch.tensor([[1, 1, 1, 0], [1, 1, 0, 0]]),
            "labels": torch.tensor([[-100, 6, 7, -100], [-100, 9, -100, -100]]),
        }
    )
    assert counter.stats()["real_token_share"] == 0.625 and counter.stats()["trained_token_share"] == 0.6
    # a padding-free batch (bfd packing): one flattened row, no attention mask, every position real
    counter.observe(
        {"input_ids": torch.tensor([[5, 6, 7, 8, 9, 10]]), "labels": torch.tensor([[-100, 6, 7, -100, 9, 10]])}
    )
    stats = counter.stats()
    assert (
        stats["batches"] == 2
        and stats["positions"] == 14
        and stats["real_tokens"] == 11
        and stats["trained_tokens"] == 7
    )


def test_loss_plot_and_history_files(tmp_path):
    from fine_tuning.train.callbacks import loss_series, plot_loss, write_log_history

    history = [{"step": s, "loss": 3.0 - 0.1 * s} for s in range(1, 11)] + [
        {"step": 5, "eval_loss": 2.7},
        {"step": 10, "eval_loss": 2.4},
    ]
    assert loss_series(history)["eval_loss"] == [(5, 2.7), (10, 2.4)]
    plot_loss(history, tmp_path / "loss.png", title="t")
    assert (tmp_path / "loss.png").read_bytes()[:4] == b"\x89PNG"
    write_log_history(history, tmp_path / "trainer_log.jsonl")
    assert len((tmp_path / "trainer_log.jsonl").read_text().splitlines()) == len(history)
    assert not list(tmp_path.glob(".*.tmp"))


@pytest.mark.parametrize("parameters, device, expected", [(150_000, "cpu", 1), (2_700_000_000, "cuda", None)])
def test_cpu_threads_rule(parameters, device, expected):
    import torch

    from fine_tuning.train.trainer import cpu_threads

    assert cpu_threads(device, parameters) == (expected or torch.get_num_threads())
