"""`orca collections`: what each collection holds."""

from __future__ import annotations

import argparse
import json

from rich.console import Console

from orca.commands import add_command
from orca_core.settings import OrcaSettings


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = add_command(
        commands, "collections",
        help="list collections with their documents, chunks, model and last materialization",
        description="List collections found under ORCA_HOME with what their served index holds.",
        examples=("orca collections", "orca collections --json | jq -r '.collections[].name'"),
    )
    parser.add_argument(
        "--json", action="store_true",
        help="print one JSON object (location, collections with their inbox documents and index) instead of a table",
    )
    parser.set_defaults(run=run, quiet_dagster=False)


def run(args: argparse.Namespace, settings: OrcaSettings, out: Console, err: Console) -> int:
    from orca.catalog import collections_json, render_collections
    from orca_core.catalog import list_collections

    infos = list_collections(settings.layout, settings.storage)
    if args.json:
        print(json.dumps(collections_json(infos, settings), ensure_ascii=False))
    else:
        render_collections(infos, settings, out)
    return 0
