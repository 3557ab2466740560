"""`orca purge`: remove a collection's index, data and partition now (its documents only when asked)."""

from __future__ import annotations

import argparse
import sys

from rich.console import Console

from orca.commands import add_command, check_names, usage_error
from orca_core.settings import OrcaSettings


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = add_command(
        commands, "purge",
        help="remove a collection's index, warehouse data and partition (its documents only with --delete-inbox)",
        description="Run purge_collection_job for COLLECTION in this process, recorded in DAGSTER_HOME like any "
        "run: remove its index and warehouse data and its partition, and cancel its intake requests still "
        "waiting. The documents stay unless --delete-inbox, so the collection is rebuilt from them later. "
        "Refuses while an embedding run of the collection is in progress (--wait to wait for it); exits 1 when "
        "the run fails or there is no such collection.",
        examples=("orca purge handbook", "orca purge old-drafts --delete-inbox --yes"),
    )
    parser.add_argument("collection", metavar="COLLECTION")
    parser.add_argument(
        "--delete-inbox", action="store_true",
        help="also delete the collection's documents (its inbox folder); asks for confirmation on a terminal",
    )
    parser.add_argument(
        "-y", "--yes", action="store_true",
        help="do not ask before --delete-inbox deletes the documents (needed when no terminal can be asked)",
    )
    parser.add_argument(
        "--wait", type=int, default=0, metavar="SECONDS",
        help="wait up to SECONDS for an embedding run of the collection in progress (default 0: refuse at once)",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="also print Dagster's log lines")
    parser.set_defaults(run=run, check=check)


def check(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    check_names(parser, [args.collection])
    if args.wait < 0:
        usage_error(parser, "--wait must be 0 or more seconds")
    if args.delete_inbox and not args.yes and not sys.stdin.isatty():
        usage_error(parser, "--delete-inbox deletes the documents and there is no terminal to confirm on: add --yes")


def run(args: argparse.Namespace, settings: OrcaSettings, out: Console, err: Console) -> int:
    from orca.purge import purge

    return purge(
        settings, args.collection, delete_inbox=args.delete_inbox, ask=not args.yes, wait_seconds=args.wait,
        out=out, err=err, verbose=args.verbose,
    )
