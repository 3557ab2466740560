"""The `orca` command line: `up`, `materialize`, `search` and `collections`.

Exit codes: 0 success, 1 the work failed (a failed run, any of several collections failed, no index yet, a
model mismatch), 2 bad usage
(unknown option, invalid collection name, invalid setting), 130 interrupted.
"""

from __future__ import annotations

import argparse
import sys
from importlib.metadata import PackageNotFoundError, version

from rich.console import Console

from orca.dagster_warnings import quiet_dagster_warnings
from orca_core.layout import check_collection
from orca_core.settings import OrcaSettings

USAGE_ERROR = 2
DEFAULT_PARALLEL = 2


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
        "ORCA_EMBEDDER, DAGSTER_HOME, ORCA_WEBSERVER_PORT, ...); see the README.",
    )
    parser.add_argument("--version", action="version", version=f"orca {_version()}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    up_command = commands.add_parser(
        "up",
        help="start the Dagster webserver, the daemon and the REST intake (and seed the sample collection)",
        description="Start dagster-webserver, dagster-daemon and the REST intake on the embedded default instance "
        "until Ctrl-C or SIGTERM.",
    )
    up_command.add_argument("--no-intake", action="store_true", help="do not start the REST intake")
    up_command.add_argument(
        "-m",
        "--module",
        metavar="MODULE",
        help="load the Dagster definitions from MODULE instead of orca.definitions: a project that extends Orca's "
        "(dg.Definitions.merge(orca.definitions.build_definitions(), ...)); the benchmarks use bench.floor_location",
    )
    up_command.add_argument(
        "--pull",
        action="store_true",
        help="when Ollama answers but lacks ORCA_EMBED_MODEL, pull it first (runs prepare_model_job; may download "
        "gigabytes)",
    )

    materialize = commands.add_parser(
        "materialize",
        help="bring collections' indexes up to date now",
        description="Run embed_collection_job for each COLLECTION: read its inbox, chunk, embed what changed, "
        "publish. Several collections run side by side (--parallel), so the embedding server never waits; "
        "exits 1 when any of them failed, after the others finished.",
    )
    materialize.add_argument("collections", nargs="*", metavar="COLLECTION")
    materialize.add_argument("--all", action="store_true", help="every collection that has a folder in the inbox")
    materialize.add_argument(
        "--parallel", type=int, default=DEFAULT_PARALLEL, metavar="N",
        help=f"with several collections, run at most N at a time (default {DEFAULT_PARALLEL}: one embeds while "
        "the next one starts; more mostly add waiting on a one-slot server)",
    )
    materialize.add_argument("--force", action="store_true", help="forget stored vectors and embed every chunk again")
    materialize.add_argument("-v", "--verbose", action="store_true", help="also print Dagster's log lines")

    search = commands.add_parser(
        "search",
        help="find the chunks of a collection closest to a query",
        description="Embed QUERY with the configured embedder and rank COLLECTION's index by cosine similarity.",
    )
    search.add_argument("collection", metavar="COLLECTION")
    search.add_argument("query", metavar="QUERY")
    search.add_argument("-k", type=int, default=5, metavar="N", help="how many results (default 5)")
    search.add_argument(
        "--where", action="append", default=[], metavar="KEY=VALUE",
        help="only chunks whose document metadata has KEY equal to VALUE (repeat for several keys)",
    )
    search.add_argument("--doc-prefix", metavar="PREFIX", help="only documents whose id starts with PREFIX")
    search.add_argument("--pages", metavar="N[-M]", help="only chunks starting on page N (to M), 1-based")

    commands.add_parser(
        "collections",
        help="list collections with their documents, chunks, model and last materialization",
        description="List collections found under ORCA_HOME with what their served index holds.",
    )
    return parser


def _run(args: argparse.Namespace, settings: OrcaSettings, out: Console, err: Console) -> int:
    if args.command == "up":
        from orca.up import up

        if args.pull:  # the model is pulled before anything starts (orca/prepare.py)
            from orca.prepare import pull_before_up

            if (code := pull_before_up(settings, out)) is not None:
                return code
        return up(settings, out, intake=not args.no_intake, module=args.module)
    if args.command == "materialize":
        return _materialize(args, settings, out, err)
    if args.command == "search":
        from orca.search import SearchError, render_hits, search
        from orca_core.search_filter import FilterError, SearchFilter

        try:
            where = SearchFilter.parse_cli(args.where, args.doc_prefix, args.pages)
        except FilterError as error:
            err.print(f"orca search: error: {error}", markup=False, highlight=False)
            return 2
        try:
            hits = search(settings, args.collection, args.query, args.k, where)
        except SearchError as error:
            err.print(f"error: {error}", markup=False, highlight=False)
            return 1
        render_hits(hits, args.collection, args.query, out)
        return 0
    if args.command == "collections":
        from orca.catalog import render_collections
        from orca_core.catalog import list_collections

        render_collections(list_collections(settings.layout, settings.storage), settings, out)
        return 0
    raise AssertionError(f"unhandled command {args.command!r}")


def _materialize(args: argparse.Namespace, settings: OrcaSettings, out: Console, err: Console) -> int:
    collections = list(dict.fromkeys(args.collections))  # a name given twice runs once
    if args.all:
        storage = settings.storage
        folders = settings.layout.collection_folders()  # the inbox sensor's rule for what is a collection
        collections = storage.collection_names() if storage.remote else folders.valid
        for name in folders.invalid:
            err.print(f"[yellow]note:[/] skipping inbox folder {name!r}: not a valid collection name", highlight=False)
        if not collections:
            err.print(f"[red]error:[/] no collections: put documents in {settings.layout.inbox_root}/<collection>/ first")
            return 1
    if len(collections) == 1:  # one collection runs in this process; several in worker processes
        from orca.materialize import materialize

        return materialize(settings, collections[0], force=args.force, out=out, err=err, verbose=args.verbose)
    from orca.materialize_many import materialize_many

    return materialize_many(
        settings, collections, parallel=args.parallel, force=args.force, out=out, err=err, verbose=args.verbose
    )


def _check_usage(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Bad names and options end here with exit code 2, before anything touches ORCA_HOME."""
    names = [args.collection] if getattr(args, "collection", None) is not None else getattr(args, "collections", [])
    for name in names:
        try:
            check_collection(name)
        except ValueError as error:
            parser.exit(USAGE_ERROR, f"orca: error: {error}\n")
    if args.command == "materialize":
        if args.all and args.collections:
            parser.exit(USAGE_ERROR, "orca: error: give COLLECTION names or --all, not both\n")
        if not args.all and not args.collections:
            parser.exit(USAGE_ERROR, "orca: error: materialize needs at least one COLLECTION (or --all)\n")
        if args.parallel < 1:
            parser.exit(USAGE_ERROR, "orca: error: --parallel must be at least 1\n")
    if getattr(args, "k", 1) < 1:
        parser.exit(USAGE_ERROR, "orca: error: -k must be at least 1\n")


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `orca` console script; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    # soft_wrap: messages hold paths and commands to copy, which must not be broken across lines.
    out, err = Console(soft_wrap=True), Console(stderr=True, soft_wrap=True)
    _check_usage(parser, args)
    try:
        settings = OrcaSettings.from_env()
    except ValueError as error:
        parser.exit(USAGE_ERROR, f"orca: error: {error}\n")
    if args.command != "collections" and not getattr(args, "verbose", False):
        quiet_dagster_warnings()
    try:
        return _run(args, settings, out, err)
    except KeyboardInterrupt:
        err.print("interrupted")
        return 130


if __name__ == "__main__":
    sys.exit(main())
