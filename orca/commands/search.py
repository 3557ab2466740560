"""`orca search`: the chunks of a collection closest to a query."""

from __future__ import annotations

import argparse
import json

from rich.console import Console

from orca.commands import USAGE_ERROR, add_command, check_names, usage_error
from orca_core.settings import OrcaSettings


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = add_command(
        commands, "search",
        help="find the chunks of a collection closest to a query",
        description="Embed QUERY with the embedder that built COLLECTION's index (the configured one otherwise) "
        "and rank the index by cosine similarity.",
        examples=('orca search samples "how do I start from scratch?" -k 3',
                  "orca search handbook 'vpn setup' --where team=infra --json | jq '.results[0].doc_id'"),
    )
    parser.add_argument("collection", metavar="COLLECTION")
    parser.add_argument("query", metavar="QUERY")
    parser.add_argument("-k", type=int, default=5, metavar="N", help="how many results (default 5)")
    parser.add_argument(
        "--where", action="append", default=[], metavar="KEY=VALUE",
        help="only chunks whose document metadata has KEY equal to VALUE (repeat for several keys)",
    )
    parser.add_argument("--doc-prefix", metavar="PREFIX", help="only documents whose id starts with PREFIX")
    parser.add_argument("--pages", metavar="N[-M]", help="only chunks starting on page N (to M), 1-based")
    parser.add_argument(
        "--json", action="store_true",
        help="print one JSON object (collection, query, model, embedder, results) instead of a table",
    )
    parser.set_defaults(run=run, check=check)


def check(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    check_names(parser, [args.collection])
    if args.k < 1:
        usage_error(parser, "-k must be at least 1")


def run(args: argparse.Namespace, settings: OrcaSettings, out: Console, err: Console) -> int:
    from orca.search import SearchError, as_json, embedder_note, render_hits, search
    from orca_core.search_filter import FilterError, SearchFilter

    try:
        where = SearchFilter.parse_cli(args.where, args.doc_prefix, args.pages)
    except FilterError as error:
        err.print(f"orca search: error: {error}", markup=False, highlight=False)
        return USAGE_ERROR
    try:
        found = search(settings, args.collection, args.query, args.k, where)
    except SearchError as error:
        err.print(f"error: {error}", markup=False, highlight=False)
        return 1
    if args.json:
        print(json.dumps(as_json(found, args.collection, args.query), ensure_ascii=False))
        return 0
    if note := embedder_note(found, settings):
        err.print(note, markup=False, highlight=False)
    render_hits(found.results, args.collection, args.query, out)
    return 0
