"""`orca purge`: run `purge_collection_job` for one collection in this process, on the instance under DAGSTER_HOME.

As with `orca materialize`, the run needs no daemon but is recorded like any other, so it shows in the
webserver; it carries the collection's partition, so once it has started the run queue holds that
collection's queued runs back until it ends. The job itself refuses (or, with `--wait`, waits) while an
embedding run of the collection is in progress, and removes the partition it ran for.

Removing the index needs no confirmation (the documents rebuild it); `--delete-inbox` deletes the documents
themselves, so it is confirmed on a terminal, or by `--yes` (orca/commands/purge.py refuses it without
either).
"""

from __future__ import annotations

import uuid

from rich.console import Console
from rich.filesize import decimal
from rich.text import Text

from orca.home import open_instance, prepare_home, register_collection
from orca_assets.partitions import collections_partitions
from orca_core.catalog import describe_collection, has_collection
from orca_core.settings import OrcaSettings
from orca_core.tags import SOURCE_CLI_PURGE, SOURCE_TAG

JOB_NAME = "purge_collection_job"
YES = ("y", "yes")


def confirm_delete_inbox(settings: OrcaSettings, collection: str, err: Console) -> bool:
    """Ask on the terminal whether the collection's documents may be deleted; True for yes."""
    documents = describe_collection(settings.layout, collection, settings.storage).inbox_documents
    storage = settings.storage
    where = f"{storage.url.rstrip('/')}/inbox/{collection}" if storage.remote else settings.layout.inbox(collection)
    try:
        answer = err.input(Text(
            f"--delete-inbox deletes the {documents} document(s) in {where}; they cannot be recovered. "
            "Delete them? [y/N] "
        ))
    except EOFError:
        answer = ""
    return answer.strip().lower() in YES


def run_config(delete_inbox: bool, wait_seconds: int, verbose: bool, loggers: dict) -> dict:
    """The run config of `purge_collection_job`; Dagster's console lines only with `verbose`."""
    config: dict = {
        "ops": {"wait_until_collection_idle": {"config": {"delete_inbox": delete_inbox, "wait_seconds": wait_seconds}}}
    }
    if not verbose and "console" in loggers:
        config["loggers"] = {"console": {"config": {"log_level": "CRITICAL"}}}
    return config


def render_removed(summary: dict, run_id: str, settings: OrcaSettings, out: Console) -> None:
    """What the run removed, from the outputs of its steps."""
    say = lambda text: out.print(text, markup=False, highlight=False)  # noqa: E731
    files, size = summary["warehouse_files_removed"], summary["warehouse_bytes_removed"]
    say(f"Purged {summary['collection']} (run {run_id}):")
    say(f"  index and warehouse data: {files} file(s), {decimal(size)} removed")
    say(f"  partition: {'deleted' if summary['partition_deleted'] else 'was not registered'}")
    if summary["inbox_deleted"]:
        say(f"  inbox: deleted ({summary['inbox_files']} file(s))")
    else:
        say(f"  inbox: kept ({summary['inbox_files']} file(s)); the collection's next run (a change, the reindex "
            f"schedule, or `orca materialize {summary['collection']}`) rebuilds its index from them")
    say(f"  waiting intake requests canceled: {summary['requests_canceled']}")
    if "pgvector_table_dropped" in summary:
        say(f"  pgvector table: {'dropped' if summary['pgvector_table_dropped'] else 'did not exist'}")
    say(f"The run in the webserver: {settings.run_url(run_id)}")


def purge(
    settings: OrcaSettings, collection: str, *, delete_inbox: bool, ask: bool, wait_seconds: int,
    out: Console, err: Console, verbose: bool = False,
) -> int:
    """Purge `collection` (asking first when `ask` and `delete_inbox`); the process exit code."""
    from orca.definitions import build_definitions  # Dagster's definitions only for the commands that run jobs
    from orca.materialize import failure_message, run_tags

    prepare_home(settings)
    instance = open_instance(settings)
    registered = instance.has_dynamic_partition(collections_partitions.name, collection)
    if not registered and not has_collection(settings.layout, collection, settings.storage):
        err.print(f"error: there is no collection {collection} (no inbox, no index, no partition); nothing was run.",
                  markup=False, highlight=False)
        return 1
    if delete_inbox and ask and not confirm_delete_inbox(settings, collection, err):
        err.print("Nothing purged.")
        return 1
    register_collection(instance, collection)  # a run is for a registered partition; the purge deletes it again

    job = build_definitions(settings).resolve_job_def(JOB_NAME)
    run_id = str(uuid.uuid4())
    err.print(f"Purging {collection}{' and its documents' if delete_inbox else ''}, run {run_id}", highlight=False)
    result = job.execute_in_process(
        partition_key=collection, instance=instance, run_id=run_id, raise_on_error=False,
        run_config=run_config(delete_inbox, wait_seconds, verbose, job.loggers),
        tags={**run_tags(), SOURCE_TAG: SOURCE_CLI_PURGE},
    )
    if not result.success:
        message = failure_message(result)
        if "refusing to purge" in message:
            message += f"\n(`orca purge {collection} --wait SECONDS` waits for them.)"
        err.print(f"error: run {run_id} failed:\n{message}", markup=False, highlight=False)
        return 1
    last = "drop_pgvector_table" if "drop_pgvector_table" in job.graph.node_dict else "purge_collection"
    render_removed(result.output_for_node(last), run_id, settings, out)
    return 0
