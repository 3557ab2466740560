"""`orca materialize`: run `embed_collection_job` for one collection on the persistent instance.

The run executes in this process (so it needs no daemon) but is recorded under DAGSTER_HOME like any
other, so it shows in the webserver. A watcher thread (orca/run_watcher.py) follows its events to draw progress.

It bypasses the run queue, so it keeps the queue's promise itself: while another run of the collection is
in progress it waits (saying which run), and once its own run is recorded as started, the queue's
`dagster/partition` limit holds back queued runs of the collection until it ends. Two commands started at
the same instant are kept apart step by step by the collection lock (orca_assets/writer_lock.py).
"""

from __future__ import annotations

import os
import re
import socket
import time
import uuid

import dagster as dg
from rich.console import Console

from orca.home import open_instance, prepare_home, register_collection
from orca.progress_display import INPUTS, STEPS, Board
from orca.report import render_summary, summarize
from orca.run_watcher import Inputs, RunWatcher, embedding_reader
from orca_core.settings import OrcaSettings
from orca_core.tags import HOST_TAG, PARTITION_TAG, PID_TAG, SOURCE_CLI, SOURCE_TAG

JOB_NAME = "embed_collection_job"
WAIT_POLL_SECONDS = 1.0
ACTIVE_STATUSES = [dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.CANCELING]
# Orca's own errors and dg.Failure carry messages written for users; their class path is noise.
_USER_FACING_PREFIX = re.compile(r"^(?:orca\w*\.[\w.]*|dagster\._core\.definitions\.events\.Failure): ")


def failure_message(result: dg.ExecuteInProcessResult) -> str:
    """The most useful sentence about why the run failed: the user-facing failure, else the root cause."""
    messages = []
    for event in result.get_step_failure_events():
        data = event.step_failure_data
        if data.user_failure_data is not None and data.user_failure_data.description:
            messages.append(f"{event.step_key}: {data.user_failure_data.description}")
            continue
        error = data.error
        while error is not None and error.cause is not None:
            error = error.cause
        text = error.message.strip() if error is not None else "failed"
        messages.append(f"{event.step_key}: {_USER_FACING_PREFIX.sub('', text)}")
    if not messages:
        failure = result.get_run_failure_event()
        data = failure.job_failure_data if failure is not None else None
        error = data.error if data is not None else None
        messages.append(error.message.strip() if error is not None else "the run failed")
    return "\n".join(messages)


def active_runs(instance: dg.DagsterInstance, collection: str) -> list[dg.DagsterRun]:
    """Runs of any job writing `collection` that have started and not ended."""
    return list(instance.get_runs(dg.RunsFilter(statuses=ACTIVE_STATUSES, tags={PARTITION_TAG: collection})))


def _dead_local_run(run: dg.DagsterRun) -> bool:
    """True for an in-process run of this machine whose process is gone (killed before it could record its end)."""
    pid, host = run.tags.get(PID_TAG), run.tags.get(HOST_TAG)
    if not pid or host != socket.gethostname():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except (PermissionError, ValueError):
        return False
    return False


def wait_for_collection(
    instance: dg.DagsterInstance, collection: str, err: Console, *, poll: float = WAIT_POLL_SECONDS
) -> float:
    """Wait until no run of `collection` is in progress; return the seconds waited.

    A run left `STARTED` by a killed `orca materialize` of this machine is marked failed instead of waited
    for; a daemon-launched run that crashed is ended by the daemon's run monitoring.
    """
    started = time.monotonic()
    announced: set[str] = set()
    while True:
        waiting = []
        for run in active_runs(instance, collection):
            if _dead_local_run(run):
                instance.report_run_failed(run, f"process {run.tags[PID_TAG]} running it no longer exists")
                err.print(f"[yellow]note:[/] run {run.run_id} of {collection} was left behind by a killed process; marked failed")
            else:
                waiting.append(run)
        if not waiting:
            return time.monotonic() - started
        for run in waiting:
            if run.run_id not in announced:
                announced.add(run.run_id)
                source = run.tags.get(SOURCE_TAG) or (SOURCE_CLI if PID_TAG in run.tags else "the daemon")
                err.print(
                    f"Waiting for run {run.run_id} ({run.job_name}, from {source}, {run.status.value}) to finish "
                    f"writing {collection}; Ctrl-C to stop waiting. (A run whose process is gone can be ended in "
                    "the webserver: Terminate, with force.)"
                )
        time.sleep(poll)


def prepare_job(settings: OrcaSettings, force: bool, verbose: bool) -> tuple[dg.JobDefinition, dict]:
    """`embed_collection_job` with the resources of `settings`, and its run config."""
    from orca.definitions import build_definitions  # Dagster's definitions only for the commands that run jobs

    job = build_definitions(settings).resolve_job_def(JOB_NAME)
    run_config: dict = {"ops": {"embeddings": {"config": {"force": True}}}} if force else {}
    if not verbose and "console" in job.loggers:
        # Dagster's console logger would scroll over the progress display; the events still reach the
        # instance, and `--verbose` brings the log lines back.
        run_config["loggers"] = {"console": {"config": {"log_level": "CRITICAL"}}}
    return job, run_config


def execute_watched(job, instance: dg.DagsterInstance, collection: str | None, run_config: dict, run_id: str,
                    watcher: RunWatcher) -> dg.ExecuteInProcessResult:
    """Run `job` (for partition `collection`, if any) in this process under `run_id`, `watcher` following its events."""
    watcher.start()
    try:
        return job.execute_in_process(
            partition_key=collection, instance=instance, run_config=run_config, run_id=run_id, tags=run_tags(),
            raise_on_error=False,
        )
    finally:
        watcher.stop()


def watch(board: Board, instance: dg.DagsterInstance, run_id: str, job: dg.JobDefinition, collection: str) -> RunWatcher:
    """A watcher drawing the run on `board`: a bar of steps, and a bar of inputs while `embeddings` runs."""
    steps = board.add(collection, unit=STEPS, total=len(job.graph.nodes), description="starting")
    inputs: list = []  # the inputs bar, once the plan is known

    def embedding(progress: Inputs) -> None:
        if progress.reused is not None and progress.total == 0:
            board.print(f"  nothing to embed: all {progress.reused:,} distinct chunks are already embedded")
        elif not inputs:
            inputs.append(board.add("embedding", unit=INPUTS, total=progress.total, at=progress.at, description=(
                f"{progress.reused:,} reused" if progress.reused else "")))
        else:
            board.update(inputs[0], completed=progress.done, total=progress.total, at=progress.at)

    def step_done(line: str) -> None:
        board.advance(steps)
        board.print(line)

    return RunWatcher(instance, run_id, lambda text: board.describe(steps, text), step_done,
                      on_log=embedding_reader(embedding))


def run_tags() -> dict[str, str]:
    """Tags of a run executed in this process (see PID_TAG)."""
    return {PID_TAG: str(os.getpid()), HOST_TAG: socket.gethostname(), SOURCE_TAG: SOURCE_CLI}


def missing_inbox_message(settings: OrcaSettings, collections: list[str]) -> str | None:
    """What to tell the user when some of `collections` have no inbox folder; None when all have one."""
    layout, storage = settings.layout, settings.storage
    if storage.remote:  # the run pulls the inbox from the store: ask the store what it holds
        stored = set(storage.collection_names())
        missing = [name for name in collections if name not in stored]
        return None if not missing else (
            f"[red]error:[/] {storage.url} has no documents for {', '.join(missing)}: put them under "
            f"inbox/<collection>/ there, then run the command again; nothing was run.")
    missing = [name for name in collections if not layout.inbox(name).is_dir()]
    if not missing:
        return None
    if len(collections) == 1:
        inbox, name = layout.inbox(missing[0]), missing[0]
        return (
            f"[red]error:[/] there is no folder {inbox}\n"
            f"Create it and put documents in it (sub-folders are fine), then run `orca materialize {name}` again."
        )
    folders = "\n".join(f"  {layout.inbox(name)}" for name in missing)
    return (
        f"[red]error:[/] these collections have no inbox folder:\n{folders}\n"
        "Create them and put documents in them (sub-folders are fine), then run the command again; nothing was run."
    )


def materialize(
    settings: OrcaSettings, collection: str, *, force: bool, out: Console, err: Console, verbose: bool = False
) -> int:
    """Run the job for `collection`, print a summary, and return the process exit code."""
    prepare_home(settings)
    if (message := missing_inbox_message(settings, [collection])) is not None:
        err.print(message)
        return 1

    job, run_config = prepare_job(settings, force, verbose)
    instance = open_instance(settings)
    new = register_collection(instance, collection)
    if new:
        out.print(f"New collection [bold]{collection}[/] registered.")

    wait_for_collection(instance, collection, err)
    run_id = str(uuid.uuid4())
    out.print(f"Materializing [bold]{collection}[/]{' (force: re-embedding everything)' if force else ''}, run {run_id}")
    with Board(err, live=False if verbose else None) as board:
        result = execute_watched(job, instance, collection, run_config, run_id, watch(board, instance, run_id, job, collection))

    summary = summarize(result, collection)
    render_summary(summary, out)
    if not result.success:
        err.print(f"[red]error:[/] run {run_id} failed:")
        err.print(failure_message(result), markup=False, highlight=False)
        return 1
    out.print(f"[green]Done.[/] Search it with `orca search {collection} \"your question\"`.")
    return 0
