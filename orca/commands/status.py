"""`orca status`: is the running `orca up` healthy, and what are its runs doing."""

from __future__ import annotations

import argparse
import json

from rich.console import Console

from orca.commands import add_command, usage_error
from orca_core.settings import OrcaSettings

DEFAULT_RUNS = 5


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = add_command(
        commands, "status",
        help="whether the webserver, daemon, intake and embedder of `orca up` work; the run queue and last runs",
        description="Ask the services of a running `orca up` (the webserver and the intake at their URLs, the "
        "daemon through its heartbeats in DAGSTER_HOME), the embedder (each Ollama host: answering, model "
        "present), and the instance's runs (counts by status, the last ones). Every probe has a deadline of a "
        "few seconds. Exits 0 when healthy, 1 when a service or the embedder is down (the offline hashing "
        "embedder always counts as working; failed runs do not count).",
        examples=("orca status", "orca status --json | jq .healthy"),
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of tables (see the README)")
    parser.add_argument(
        "-n", "--runs", type=int, default=DEFAULT_RUNS, metavar="N",
        help=f"how many of the last runs to list (default {DEFAULT_RUNS})",
    )
    parser.set_defaults(run=run, check=check)


def check(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    if args.runs < 0:
        usage_error(parser, "--runs must be 0 or more")


def run(args: argparse.Namespace, settings: OrcaSettings, out: Console, err: Console) -> int:
    from orca.status import gather

    status = gather(settings, recent=args.runs)
    if args.json:
        print(json.dumps(status, ensure_ascii=False))
    else:
        from orca.status_view import render_status

        render_status(status, out)
    return 0 if status["healthy"] else 1
