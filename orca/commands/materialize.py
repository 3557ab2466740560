"""`orca materialize`: bring collections' indexes up to date now, in the foreground."""

from __future__ import annotations

import argparse

from rich.console import Console

from orca.commands import add_command, check_names, usage_error
from orca_core.settings import OrcaSettings

DEFAULT_PARALLEL = 2


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = add_command(
        commands, "materialize",
        help="bring collections' indexes up to date now",
        description="Run embed_collection_job for each COLLECTION: read its inbox, chunk, embed what changed, "
        "publish. A collection with nothing changed since its last successful run is left out (--rerun runs it "
        "anyway). Several collections run side by side (--parallel), so the embedding server never waits; "
        "exits 1 when any of them failed, after the others finished.",
        examples=("orca materialize samples", "orca materialize --all --parallel 2", "orca materialize docs --rerun"),
    )
    parser.add_argument("collections", nargs="*", metavar="COLLECTION")
    parser.add_argument("--all", action="store_true", help="every collection that has a folder in the inbox")
    parser.add_argument(
        "--parallel", type=int, default=DEFAULT_PARALLEL, metavar="N",
        help=f"with several collections, run at most N at a time (default {DEFAULT_PARALLEL}: one embeds while "
        "the next one starts; more mostly add waiting on a one-slot server)",
    )
    parser.add_argument("--force", action="store_true", help="forget stored vectors and embed every chunk again")
    parser.add_argument(
        "--rerun", action="store_true",
        help="also run the collections found up to date (by default they are left out: nothing changed in their "
        "inbox, chunker settings or model since their last successful run, so a run would change nothing)",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="also print Dagster's log lines")
    parser.set_defaults(run=run, check=check)


def check(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    check_names(parser, args.collections)
    if args.all and args.collections:
        usage_error(parser, "give COLLECTION names or --all, not both")
    if not args.all and not args.collections:
        usage_error(parser, "materialize needs at least one COLLECTION (or --all)")
    if args.parallel < 1:
        usage_error(parser, "--parallel must be at least 1")


def run(args: argparse.Namespace, settings: OrcaSettings, out: Console, err: Console) -> int:
    from orca.up_record import following_up

    # The runs write the indexes the running `orca up` serves: with its embedder, which may be its fallback.
    configured, settings = settings.embedder, following_up(settings)
    if settings.embedder != configured:
        err.print(f"[yellow]note:[/] embedding with {settings.embedder}, the embedder of the `orca up` running on "
                  f"{settings.home} (ORCA_EMBEDDER gives {configured})", highlight=False)
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
    if not (args.force or args.rerun):
        from orca.home import open_instance, prepare_home
        from orca.skip_unchanged import drop_up_to_date

        prepare_home(settings)
        collections = drop_up_to_date(settings, open_instance(settings), collections, out)
        if not collections:
            return 0
    if len(collections) == 1:  # one collection runs in this process; several in worker processes
        from orca.materialize import materialize

        return materialize(settings, collections[0], force=args.force, out=out, err=err, verbose=args.verbose)
    from orca.materialize_many import materialize_many

    return materialize_many(
        settings, collections, parallel=args.parallel, force=args.force, out=out, err=err, verbose=args.verbose
    )
