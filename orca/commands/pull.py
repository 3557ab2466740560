"""`orca pull`: make the embedding model ready on every Ollama host now, as the intake's prepare_model job does."""

from __future__ import annotations

import argparse

from rich.console import Console

from orca.commands import add_command
from orca_core.settings import OrcaSettings


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = add_command(
        commands, "pull",
        help="pull (where missing) and load ORCA_EMBED_MODEL on every Ollama host",
        description="Run prepare_model_job in the foreground: check that every host of OLLAMA_HOST answers, pull "
        "ORCA_EMBED_MODEL where it is missing (may download gigabytes), confirm its shape and load it. The run is "
        "recorded under DAGSTER_HOME. Exits 0 when the model is ready everywhere, 1 when a host does not answer "
        "or the pull fails.",
        examples=("orca pull", "OLLAMA_HOST=http://gpu-1:11434,http://gpu-2:11434 orca pull --force"),
    )
    parser.add_argument("--force", action="store_true", help="pull even where the model is present (fetches a newer build)")
    parser.add_argument("-v", "--verbose", action="store_true", help="also print Dagster's log lines")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace, settings: OrcaSettings, out: Console, err: Console) -> int:
    if settings.embedder == "hashing":
        out.print("Nothing to pull: the offline hashing embedder (ORCA_EMBEDDER=hashing) needs no model. "
                  f"Set ORCA_EMBEDDER=ollama to use {settings.embed_model} from Ollama.", highlight=False)
        return 0
    from orca.materialize import failure_message
    from orca.prepare import JOB_NAME, host_lines, run_prepare_model

    hosts = settings.ollama_hosts
    out.print(f"Preparing [bold]{settings.embed_model}[/] on {', '.join(hosts)}{' (force: pulling again)' if args.force else ''}",
              highlight=False)
    result = run_prepare_model(settings, err, force=args.force, verbose=args.verbose)
    for line in host_lines(result, settings.embed_model):
        out.print(f"  {line}", markup=False, highlight=False)
    if not result.success:
        err.print(f"[red]error:[/] {JOB_NAME} run {result.run_id} failed:")
        err.print(failure_message(result), markup=False, highlight=False)
        return 1
    out.print(f"[green]Ready.[/] {settings.embed_model} is loaded on {len(hosts)} host(s) (run {result.run_id}).",
              highlight=False)
    return 0
