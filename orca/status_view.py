"""`orca status` for people: the status document of orca/status.py as a few tables."""

from __future__ import annotations

from datetime import datetime

from rich.console import Console
from rich.table import Table
from rich.text import Text

# Statuses of runs waiting or going on, then of runs that ended, in the order a person reads a queue.
WAITING = ("QUEUED", "NOT_STARTED", "STARTING", "STARTED", "CANCELING", "SUSPENDED", "MANAGED")
ENDED = ("SUCCESS", "FAILURE", "CANCELED")
STATE_STYLE = {True: "green", False: "red"}
WORDS = {"SUCCESS": "succeeded", "FAILURE": "failed", "NOT_STARTED": "not started"}


def _state(up: bool, words: tuple[str, str] = ("up", "down")) -> Text:
    return Text(words[0] if up else words[1], style=STATE_STYLE[up])


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    minutes, rest = divmod(int(round(seconds)), 60)
    return f"{minutes}m{rest:02d}s" if minutes else f"{seconds:.1f}s"


def _when(iso: str | None) -> str:
    return "–" if iso is None else datetime.fromisoformat(iso).astimezone().strftime("%Y-%m-%d %H:%M:%S")


def _counts(by_status: dict[str, int], statuses: tuple[str, ...]) -> str:
    return ", ".join(f"{by_status[s]} {WORDS.get(s, s.lower())}" for s in statuses if by_status.get(s)) or "none"


def render_status(status: dict, console: Console) -> None:
    """Print the services, the embedder and its hosts, the run counts and the last runs, then the verdict."""
    table = Table(title=Text(f"Orca status (ORCA_HOME {status['orca_home']})"), title_justify="left")
    for column in ("service", "state", "where", "detail"):
        table.add_column(column)
    for name, service in status["services"].items():
        where = service["url"] or f"DAGSTER_HOME {status['dagster_home']}"
        table.add_row(name, _state(service["up"]), Text(where), Text(service["detail"]))
    embedder = status["embedder"]
    table.add_row("embedder", _state(embedder["healthy"], ("ok", "not ok")),
                  Text(f"{embedder['name']}: {embedder['model']}"), Text(embedder["detail"]))
    counted = embedder["name"] == "ollama"
    for host in embedder["hosts"]:
        model = {True: "model present", False: "model missing", None: "–"}[host["model_present"]]
        state = _state(host["up"]) if counted else Text("up" if host["up"] else "down", style="dim")
        table.add_row("  ollama", state, Text(host["url"]), Text(model if counted else f"{model} (not used)"))
    console.print(table)

    runs = status["runs"]
    if runs["error"]:
        console.print(f"Runs: unknown ({runs['error']})", markup=False, highlight=False)
    else:
        by_status = runs["by_status"]
        console.print(f"Run queue: {_counts(by_status, WAITING)}. Finished runs: {_counts(by_status, ENDED)}.",
                      markup=False, highlight=False)
    if runs["recent"]:
        recent = Table(title="Last runs", title_justify="left")
        for column in ("run", "job", "collection", "status", "source", "started", "duration"):
            recent.add_column(column)
        for run in runs["recent"]:
            ok = {"SUCCESS": True, "FAILURE": False}.get(run["status"])
            recent.add_row(
                Text(run["run_id"][:8]), Text(run["job"]), Text(run["collection"] or "–"),
                Text(run["status"].lower(), style=STATE_STYLE.get(ok, "")), Text(run["source"] or "–"),
                _when(run["started_at"] or run["created_at"]), _duration(run["duration_seconds"]),
            )
        console.print(recent)
    if status["healthy"]:
        console.print("[green]Healthy.[/]")
    else:
        console.print("[red]Not healthy:[/]")
        for problem in status["problems"]:
            console.print(f"  {problem}", markup=False, highlight=False)
