"""Rich progress bars shared by every long-running stage: counts, rate, ETA and, for teachers, dollars spent."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    SpinnerColumn,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

console = Console(stderr=True)


class RateColumn(ProgressColumn):
    """Items per second (rich's own speed column is for bytes)."""

    def render(self, task: Any) -> Text:
        speed = task.finished_speed or task.speed
        return Text(f"{speed:.1f}/s" if speed else "", style="cyan")


# Without a terminal (nohup on RunPod, CI logs) a live bar cannot redraw, so a plain line is printed this often.
LOG_EVERY_S = 30.0


class ProgressTask:
    """A handle on one bar; `advance(n, cost_usd=…)` moves it and updates the extra fields shown after it.

    In a terminal it drives a rich bar; otherwise it prints `description: done/total (rate/s, ETA …, $…)` at most
    every LOG_EVERY_S seconds and once at the end, so long jobs still show progress in a log file.
    """

    def __init__(self, progress: Progress, task_id: Any, *, log_lines: bool, show_cost: bool) -> None:
        self._progress = progress
        self._task_id = task_id
        self._log_lines = log_lines
        self._show_cost = show_cost
        self._last_log = time.monotonic()

    def advance(self, n: float = 1, **fields: Any) -> None:
        self._progress.update(self._task_id, advance=n, **fields)
        self._maybe_log()

    def update(self, **fields: Any) -> None:
        self._progress.update(self._task_id, **fields)
        self._maybe_log()

    def _maybe_log(self, force: bool = False) -> None:
        if not self._log_lines:
            return
        now = time.monotonic()
        if not force and now - self._last_log < LOG_EVERY_S:
            return
        self._last_log = now
        console.print(self.status_line(), highlight=False, soft_wrap=True)

    def status_line(self) -> str:
        task = self._progress.tasks[self._task_id]
        total = f"/{int(task.total)}" if task.total else ""
        parts = [f"{task.description}: {int(task.completed)}{total}"]
        speed = task.finished_speed or task.speed
        if speed:
            parts.append(f"{speed:.1f}/s")
        remaining = task.time_remaining
        if remaining is not None and task.total and not task.finished:
            parts.append(f"ETA {int(remaining // 60)}m{int(remaining % 60):02d}s")
        if self._show_cost:
            parts.append(f"${task.fields.get('cost_usd', 0.0):.4f}")
        return ", ".join(parts)


@contextlib.contextmanager
def progress_bar(description: str, total: int | None, *, show_cost: bool = False) -> Iterator[ProgressTask]:
    columns = [
        SpinnerColumn(),
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TaskProgressColumn(),
        RateColumn(),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
    ]
    if show_cost:
        columns.append(TextColumn("[green]${task.fields[cost_usd]:.4f}"))
    # transient: the bar disappears when done; each stage prints its own summary line instead.
    live = console.is_terminal
    with Progress(*columns, console=console, transient=True, disable=not live) as progress:
        task_id = progress.add_task(description, total=total, cost_usd=0.0)
        task = ProgressTask(progress, task_id, log_lines=not live, show_cost=show_cost)
        yield task
        task._maybe_log(force=True)
