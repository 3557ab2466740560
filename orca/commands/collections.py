"""`orca collections`: what each collection holds."""

from __future__ import annotations

import argparse

from rich.console import Console

from orca.commands import example
from orca_core.settings import OrcaSettings


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "collections",
        help="list collections with their documents, chunks, model and last materialization",
        description="List collections found under ORCA_HOME with what their served index holds.",
        epilog=example("orca collections"),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.set_defaults(run=run, quiet_dagster=False)


def run(args: argparse.Namespace, settings: OrcaSettings, out: Console, err: Console) -> int:
    from orca.catalog import render_collections
    from orca_core.catalog import list_collections

    render_collections(list_collections(settings.layout, settings.storage), settings, out)
    return 0
