"""The progress bars of `orca materialize`, `orca pull` and `orca up --pull`: rich on a terminal, plain lines elsewhere.

On a terminal one rich `Progress` redraws in place and vanishes when done (a summary follows). Piped output
(a CI log, a test) gets no redraws: per bar of inputs or bytes, a line when its size is known, a line per
quarter crossed (never two within PLAIN_SECONDS) and a line when it completes; bars that count steps or
collections print nothing (those print lines of their own as each one ends).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

from rich.console import Console
from rich.progress import BarColumn, Progress, ProgressColumn, SpinnerColumn, Task, TaskID, TextColumn
from rich.table import Column
from rich.text import Text

from orca_assets.pull_progress import human_bytes

INPUTS, BYTES, STEPS = "inputs", "bytes", "steps"
MEASURED = (INPUTS, BYTES)  # units with a rate and a time left; any other counts things done (steps, collections)
PLAIN_QUARTERS = (25, 50, 75)
PLAIN_SECONDS = 5.0


def _clock(seconds: float) -> str:
    minutes, seconds = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{seconds:02d}"


def _percent(task: Task) -> int:
    """Rounded down, so 100 % means complete."""
    return int(100 * task.completed // task.total) if task.total else 0


def count_text(task: Task) -> str:
    """`340/1,000 inputs`, `117.7 MiB/261.6 MiB (44%)`, `3/8 steps`."""
    unit = task.fields.get("unit", STEPS)
    if task.total is None:
        return ""
    if unit == BYTES:
        return f"{human_bytes(task.completed)}/{human_bytes(task.total)} ({_percent(task)}%)"
    return f"{int(task.completed):,}/{int(task.total):,} {unit}"


def _rate(task: Task) -> float | None:
    """Per second, from the work's own timestamps when the updates carry them, else from when they came."""
    return task.fields["rate"] if "rate" in task.fields else task.speed


def rate_text(task: Task) -> str:
    """`85.2 inputs/s`, `12.3 MiB/s`; empty for counts of things done, or before two updates."""
    unit, speed = task.fields.get("unit", STEPS), _rate(task)
    if unit not in MEASURED or not speed:
        return ""
    return f"{human_bytes(speed)}/s" if unit == BYTES else f"{speed:,.1f} {unit}/s"


def time_text(task: Task) -> str:
    """Time left for inputs and bytes (elapsed once complete); elapsed for counts of things done."""
    unit = task.fields.get("unit", STEPS)
    if unit not in MEASURED or task.finished or (task.total is not None and task.completed >= task.total):
        return _clock(task.fields.get("took", task.elapsed or 0))
    rate = _rate(task)
    return "" if not rate or task.total is None else f"{_clock((task.total - task.completed) / rate + 0.5)} left"


class _Column(ProgressColumn):
    def __init__(self, render, style: str):
        super().__init__(table_column=Column(no_wrap=True))
        self._render, self._style = render, style

    def render(self, task: Task) -> Text:
        return Text(self._render(task), style=self._style)


@dataclass
class _Plain:
    """What a bar has printed so far in plain mode."""

    growing: bool = False  # its total may still grow: complete only when `complete` says so
    announced: bool = False
    quarter: int = 0
    printed_at: float = float("-inf")
    done: bool = False


def _beside_capture(console: Console) -> tuple[Console, object | None]:
    """`console`, on a copy of its file descriptor taken now. While a step of a run executing in this process
    runs, Dagster points descriptors 1 and 2 at the step's compute log (mirrored late by a `tail`): the bars
    and lines must reach the terminal now, and stay out of the step's log. Also the copy's file, to close."""
    if console.record:  # kept to be read back (tests)
        return console, None
    try:
        fd = console.file.fileno()
    except (AttributeError, OSError, ValueError):  # an in-memory console: nothing redirects it
        return console, None
    file = os.fdopen(os.dup(fd), "w", encoding="utf-8", errors="replace")
    copy = Console(file=file, force_terminal=console.is_terminal, no_color=console.no_color,
                   soft_wrap=console.soft_wrap, width=None if console.is_terminal else console.width)
    return copy, file


class Board:
    """Bars named `name`, in units of INPUTS, BYTES or STEPS; use as a context manager around the work.

    `live=False` asks for plain lines on a terminal too: with `--verbose`, Dagster's log lines reach the
    terminal behind rich's back, and a redrawn display would tear them.
    """

    def __init__(self, console: Console, *, live: bool | None = None):
        console, self._file = _beside_capture(console)
        self.live = console.is_terminal and not console.is_dumb_terminal if live is None else live
        columns = (
            SpinnerColumn(), TextColumn("{task.fields[name]}", style="bold"), BarColumn(bar_width=30),
            _Column(count_text, "progress.download"), _Column(rate_text, "progress.data.speed"),
            _Column(time_text, "progress.remaining"),
            TextColumn("{task.description}", table_column=Column(no_wrap=True, overflow="ellipsis")),
        )
        # transient: the bars give way to the summary that follows them.
        self.progress = Progress(*columns, console=console, transient=True, disable=not self.live, refresh_per_second=8)
        self._plain: dict[TaskID, _Plain] = {}
        self._since: dict[TaskID, tuple[float, int]] = {}  # (timestamp, completed) of a bar's first timed update

    def __enter__(self) -> Board:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()
        if self._file is not None:
            self._file.close()

    @property
    def console(self) -> Console:
        return self.progress.console

    def print(self, text: str) -> None:
        """A line above the bars (or just a line, in plain mode)."""
        self.progress.console.print(text, highlight=False)

    def add(self, name: str, *, unit: str = STEPS, total: int | None = None, description: str = "",
            start: bool = True, at: float | None = None, growing: bool = False) -> TaskID:
        """A new bar; `growing` when its total may still grow (a pull announces its layers one by one)."""
        task = self.progress.add_task(description, name=name, unit=unit, total=total, start=start)
        self._plain[task] = _Plain(growing=growing)
        if at is not None:
            self._since[task] = (at, 0)
        if total is not None:
            self._plain_line(task)
        return task

    def update(self, task: TaskID, *, completed: int | None = None, total: int | None = None,
               unit: str | None = None, description: str | None = None, at: float | None = None) -> None:
        """Move a bar. `at`: when the work reached `completed` (a timestamp), for its rate and time left.
        Switching its unit starts it afresh (its rate counts only the new unit)."""
        fields = {} if unit is None else {"unit": unit}
        known = self._task(task).fields
        if unit is not None and unit != known.get("unit"):
            kept = {key: value for key, value in known.items() if key not in ("rate", "took")}
            self.progress.reset(task, total=total, completed=completed or 0, **{**kept, **fields})
            self._plain[task] = _Plain()
            self._since.pop(task, None)
        if at is not None and completed is not None:
            first_at, first_done = self._since.setdefault(task, (at, completed))
            if at > first_at:
                fields.update(took=at - first_at, rate=(completed - first_done) / (at - first_at))
        self.progress.update(task, completed=completed, total=total, **fields)
        if description is not None:
            self.progress.update(task, description=description)
        self._plain_line(task)

    def complete(self, task: TaskID) -> None:
        """A growing bar's total is final now."""
        self._plain[task].growing = False
        self._plain_line(task)

    def advance(self, task: TaskID, steps: int = 1) -> None:
        self.progress.advance(task, steps)

    def describe(self, task: TaskID, description: str) -> None:
        self.progress.update(task, description=description)

    def start(self, task: TaskID, description: str = "") -> None:
        self.progress.start_task(task)
        self.progress.update(task, description=description)

    def stop(self, task: TaskID, description: str) -> None:
        self.progress.update(task, description=description)
        self.progress.stop_task(task)

    def _task(self, task_id: TaskID) -> Task:
        return next(task for task in self.progress.tasks if task.id == task_id)

    def _plain_line(self, task_id: TaskID) -> None:
        """In plain mode, print this bar's line when it is due (see the module's docstring)."""
        task = self._task(task_id)
        state = self._plain[task_id]
        if self.live or task.total is None or task.fields.get("unit") not in MEASURED or state.done:
            return
        percent, now = _percent(task), time.monotonic()
        quarter = max((q for q in PLAIN_QUARTERS if percent >= q), default=0)
        if task.completed >= task.total and not state.growing:
            state.done = True
        elif state.announced and not (quarter > state.quarter and now - state.printed_at >= PLAIN_SECONDS):
            return
        state.announced, state.quarter, state.printed_at = True, quarter, now
        rate, when = rate_text(task), time_text(task)
        if state.done:
            line = f"{count_text(task)} in {when}" + (f" ({rate})" if rate else "")
        else:
            line = count_text(task) + (f" ({', '.join(text for text in (rate, when) if text)})" if rate else "")
        self.print(f"{task.fields['name']}: {line}")
