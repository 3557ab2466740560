"""`orca up`: the webserver, the daemon and the REST intake on the embedded default instance."""

from __future__ import annotations

import argparse

from rich.console import Console

from orca.commands import add_command
from orca_core.settings import OrcaSettings


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = add_command(
        commands, "up",
        help="start the Dagster webserver, the daemon and the REST intake (and seed the sample collection)",
        description="Start a Dagster code server, dagster-webserver, dagster-daemon and the REST intake on the\n"
        "embedded default instance until Ctrl-C or SIGTERM. The terminal shows where everything is, then one\n"
        "line per finished run; the processes' own output goes to $ORCA_HOME/logs/ (-v shows it here too).",
        examples=("orca up", "orca up -v", "OLLAMA_HOST=http://gpu-box:11434 orca up --pull"),
    )
    parser.add_argument("--no-intake", action="store_true", help="do not start the REST intake")
    parser.add_argument(
        "-v", "--verbose", action="store_true",
        help="also show the output of the webserver, daemon, code server and intake here (it always goes to "
        "$ORCA_HOME/logs/)",
    )
    parser.add_argument(
        "-m",
        "--module",
        metavar="MODULE",
        help="load the Dagster definitions from MODULE instead of orca.definitions: a project that extends Orca's "
        "(dg.Definitions.merge(orca.definitions.build_definitions(), ...)); the benchmarks use bench.floor_location",
    )
    parser.add_argument(
        "--pull",
        action="store_true",
        help="when Ollama answers but lacks ORCA_EMBED_MODEL, pull it first (runs prepare_model_job; may download "
        "gigabytes)",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace, settings: OrcaSettings, out: Console, err: Console) -> int:
    from orca.up import up

    if args.pull:  # the model is pulled before anything starts (orca/prepare.py)
        from orca.prepare import pull_before_up

        if (code := pull_before_up(settings, out, verbose=args.verbose)) is not None:
            return code
    return up(settings, out, intake=not args.no_intake, module=args.module, verbose=args.verbose)
