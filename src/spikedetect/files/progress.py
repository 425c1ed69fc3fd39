"""A rich progress bar on stderr for the offline commands: %, count, rate and time left."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    ProgressColumn,
    Task,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.progress import Progress as RichProgress
from rich.text import Text

Update = Callable[[int, "int | None", int], None]


class _Rate(ProgressColumn):
    """Items (the ``n`` field, not the bar's units) per second."""

    def __init__(self, unit: str) -> None:
        super().__init__()
        self.unit = unit

    def render(self, task: Task) -> Text:
        n, elapsed = task.fields.get("n", 0), task.elapsed or 0.0
        return Text(f"{n / elapsed:,.0f} {self.unit}/s" if elapsed > 0 else "", style="progress.data.speed")


class Progress:
    """``with Progress(enabled, label, unit) as update: update(done, total, n)``.

    ``done``/``total`` drive the bar, the % and the time left (bytes of a file, records of a
    topic); ``n`` is the count shown with its rate (events). A no-op when disabled.
    """

    def __init__(self, enabled: bool, label: str, unit: str = "events") -> None:
        self.enabled = enabled
        self.label = label
        self.unit = unit

    def __enter__(self) -> Update:
        if not self.enabled:
            return lambda *_: None
        self.bar = RichProgress(
            TextColumn(f"[bold]{self.label}[/]"), BarColumn(), TaskProgressColumn(),
            TextColumn("{task.fields[n]:,} " + self.unit), _Rate(self.unit), TimeElapsedColumn(),
            TextColumn("left"), TimeRemainingColumn(), console=Console(stderr=True), transient=True,
        )  # fmt: skip
        self.bar.__enter__()
        task = self.bar.add_task(self.label, total=None, n=0)

        def update(done: int, total: int | None, n: int) -> None:
            self.bar.update(task, completed=done, total=total, n=n)

        return update

    def __exit__(self, *exc: Any) -> None:
        if self.enabled:
            self.bar.__exit__(*exc)


__all__ = ["Progress", "Update"]
