"""What `orca up` shows on its terminal: a banner, then a line per finished run and what goes wrong.

The children's own output goes to `$ORCA_HOME/logs/<child>.log` (orca/child_output.py); `orca up -v` also
echoes it here. Lines from several threads (run feed, output echo, supervisor) are printed one at a time.
"""

from __future__ import annotations

import threading
from pathlib import Path

from rich.console import Console
from rich.table import Table

from orca.supervisor import Child
from orca_core.settings import OrcaSettings

LOGS_DIR = "logs"


def logs_dir(settings: OrcaSettings) -> Path:
    """Where the children's logs go: $ORCA_HOME/logs."""
    return settings.home / LOGS_DIR


def log_path(settings: OrcaSettings, child: str) -> Path:
    return logs_dir(settings) / f"{child}.log"


class Terminal:
    """`orca up`'s console, shared by its threads."""

    def __init__(self, console: Console):
        self.console = console
        self.lock = threading.Lock()

    def say(self, text: str) -> None:
        """A plain line (no markup)."""
        with self.lock:
            self.console.print(text, markup=False, highlight=False)

    def markup(self, text: str) -> None:
        """A line with rich markup (escape what came from outside)."""
        with self.lock:
            self.console.print(text, highlight=False)

    def echo(self, line: str) -> None:
        """A child's line as it wrote it (`-v`)."""
        with self.lock:
            self.console.file.write(line + "\n")
            self.console.file.flush()

    def table(self, table: Table) -> None:
        with self.lock:
            self.console.print(table)


def process_table(children: list[Child]) -> Table:
    table = Table(title="Orca processes", title_justify="left")
    for column in ("process", "pid", "url", "log"):
        table.add_column(column, overflow="fold")
    for child in children:
        log = str(child.output.path) if child.output is not None else ""
        table.add_row(child.spec.name, str(child.pid), child.spec.url or "", log)
        if child.spec.name == "intake":
            table.add_row("", "", f"{child.spec.url}/docs (API docs)", "")
    return table


def banner(terminal: Terminal, settings: OrcaSettings, *, webserver: str, intake: str | None, inbox: str,
           verbose: bool) -> None:
    """What a user needs once everything serves: where to look, where the logs are, how to feed it."""
    lines = [
        f"Dagster webserver: {webserver}",
        *([f"REST intake:       {intake}  (API docs: {intake}/docs)"] if intake else []),
        f"ORCA_HOME:         {settings.home}",
        f"DAGSTER_HOME:      {settings.dagster_home}",
        f"Logs:              {logs_dir(settings)}/ (one per process"
        + ("; shown here too, -v)" if verbose else "; `orca up -v` shows them here)"),
    ]
    posted = f" or POST them to {intake}/v1/collections/<collection>/documents" if intake else ""
    lines.append(
        f"Drop files into {inbox}/<collection>/{posted}: the sensors start a run within seconds, "
        "and each finished run gets a line below. Press Ctrl-C to stop."
    )
    for line in lines:
        terminal.say(line)


def report_death(terminal: Terminal, dead: Child, describe: str) -> None:
    """Why `orca up` stops: which child died, and the end of what it wrote."""
    terminal.say(f"error: {dead.spec.name} (pid {dead.pid}) exited unexpectedly with {describe}; stopping the others")
    if dead.output is None:
        return
    dead.output.finish(timeout=2.0)
    tail = dead.output.tail()
    if tail:
        terminal.say(f"last lines of {dead.output.path}:")
        for line in tail:
            terminal.say(f"  {line}")
    else:
        terminal.say(f"it wrote nothing (log: {dead.output.path})")
