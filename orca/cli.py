"""The `orca` command line; each subcommand lives in its own module under `orca/commands/`.

Exit codes: 0 success, 1 the work failed (a failed run, any of several collections failed, no index yet, a
model mismatch), 2 bad usage (unknown option, invalid collection name, invalid setting), 130 interrupted.
"""

from __future__ import annotations

import argparse
import sys
from importlib.metadata import PackageNotFoundError, version

from rich.console import Console

from orca.commands import USAGE_ERROR, collections, materialize, pull, purge, search, status, up
from orca.dagster_warnings import quiet_dagster_warnings
from orca_core.settings import OrcaSettings

COMMANDS = (up, status, materialize, pull, search, collections, purge)  # in the order `orca --help` lists them


def _version() -> str:
    try:
        return version("orca")
    except PackageNotFoundError:
        return "unknown"


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (also what `orca --help` prints)."""
    parser = argparse.ArgumentParser(
        prog="orca",
        description="Keep embedding indexes fresh: documents to Parquet embedding indexes on Dagster with Ollama.",
        epilog="Configuration comes from the environment (ORCA_HOME, OLLAMA_HOST, ORCA_EMBED_MODEL, "
        "ORCA_EMBEDDER, DAGSTER_HOME, ORCA_WEBSERVER_PORT, ...); see the README.\n\n"
        "Example:\n  orca up\n  orca search samples \"how do I start from scratch?\"",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"orca {_version()}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        command.add_parser(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `orca` console script; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    # soft_wrap: messages hold paths and commands to copy, which must not be broken across lines.
    out, err = Console(soft_wrap=True), Console(stderr=True, soft_wrap=True)
    if check := getattr(args, "check", None):
        check(parser, args)
    try:
        settings = OrcaSettings.from_env()
    except ValueError as error:
        parser.exit(USAGE_ERROR, f"orca: error: {error}\n")
    if getattr(args, "quiet_dagster", True) and not getattr(args, "verbose", False):
        quiet_dagster_warnings()
    try:
        return args.run(args, settings, out, err)
    except KeyboardInterrupt:
        err.print("interrupted")
        return 130


if __name__ == "__main__":
    sys.exit(main())
