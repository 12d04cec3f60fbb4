"""Rich progress bars shared by every long-running stage: counts, rate, ETA and, for teachers, dollars spent."""

from __future__ import annotations

import contextlib
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


class ProgressTask:
    """A handle on one bar; `advance(n, cost_usd=…)` moves it and updates the extra fields shown after it."""

    def __init__(self, progress: Progress | None, task_id: Any) -> None:
        self._progress = progress
        self._task_id = task_id

    def advance(self, n: float = 1, **fields: Any) -> None:
        if self._progress is not None:
            self._progress.update(self._task_id, advance=n, **fields)

    def update(self, **fields: Any) -> None:
        if self._progress is not None:
            self._progress.update(self._task_id, **fields)


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
    with Progress(*columns, console=console, transient=True, disable=not console.is_terminal) as progress:
        task_id = progress.add_task(description, total=total, cost_usd=0.0)
        yield ProgressTask(progress, task_id)
