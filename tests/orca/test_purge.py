"""`orca purge` as a user runs it: a real `orca` process on a temporary ORCA_HOME.

It runs purge_collection_job for the collection's partition in its own process, recorded in DAGSTER_HOME
(tagged as from `orca purge`), removes the index and the partition, keeps the documents, and prints what
it removed. `--delete-inbox` deletes the documents only once confirmed: `--yes`, or `y` on a terminal (a
pseudo-terminal here); without either and no terminal it is refused (exit 2). An unknown collection, or an
embedding run of it in progress, exits 1 with nothing touched.
"""

from __future__ import annotations

import os
import pty
import subprocess

import dagster as dg
import pytest

from tests.orca.test_cli import COLLECTION, DOCUMENTS, write_documents
from tests.processes import console_script, orca_env, run_cli


@pytest.fixture
def materialized(tmp_path) -> tuple:
    """A home whose collection has documents and an index built by `orca materialize`."""
    write_documents(tmp_path)
    env = orca_env(tmp_path)
    built = run_cli(["materialize", COLLECTION], env=env)
    assert built.returncode == 0, built.stdout + built.stderr
    return tmp_path, env


def runs_of(home, job: str) -> list[dg.DagsterRun]:
    with dg.DagsterInstance.from_config(str(home / "dagster")) as instance:
        return list(instance.get_runs(dg.RunsFilter(job_name=job)))


def partitions(home) -> list[str]:
    with dg.DagsterInstance.from_config(str(home / "dagster")) as instance:
        return instance.get_dynamic_partitions("collections")


def on_a_terminal(args: list[str], env: dict, answer: str) -> tuple[int, str]:
    """Run `orca args` with a pseudo-terminal as stdin, answer its question; (exit code, stderr)."""
    controller, terminal = pty.openpty()
    try:
        process = subprocess.Popen([console_script("orca"), *args], env={**env, "COLUMNS": "200"}, stdin=terminal,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        os.write(controller, f"{answer}\n".encode())
        stdout, stderr = process.communicate(timeout=180)
    finally:
        os.close(controller)
        os.close(terminal)
    return process.returncode, stdout + stderr


@pytest.mark.timeout(300)
def test_purge_removes_the_index_and_partition_keeps_the_documents_and_records_the_run(materialized):
    home, env = materialized
    result = run_cli(["purge", COLLECTION], env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"Purged {COLLECTION}" in result.stdout and "partition: deleted" in result.stdout
    assert f"inbox: kept ({len(DOCUMENTS)} file(s))" in result.stdout
    assert not (home / "warehouse" / COLLECTION).exists()
    assert sorted(p.name for p in (home / "inbox" / COLLECTION).iterdir()) == sorted({"baking", "volcanoes.txt",
                                                                                      "chess.md"})
    assert COLLECTION not in partitions(home)
    (run,) = runs_of(home, "purge_collection_job")
    assert run.status == dg.DagsterRunStatus.SUCCESS and run.run_id in result.stdout
    assert (run.tags["dagster/partition"], run.tags["orca/source"]) == (COLLECTION, "orca purge")

    # The collection comes back from its documents; a second purge of a collection already gone exits 1.
    assert run_cli(["materialize", COLLECTION], env=env).returncode == 0
    assert run_cli(["purge", COLLECTION, "--delete-inbox", "--yes"], env=env).returncode == 0
    assert not (home / "inbox" / COLLECTION).exists()
    again = run_cli(["purge", COLLECTION], env=env)
    assert again.returncode == 1 and f"there is no collection {COLLECTION}" in again.stderr


@pytest.mark.timeout(300)
def test_delete_inbox_asks_on_a_terminal_and_is_refused_without_one(materialized):
    home, env = materialized
    refused = run_cli(["purge", COLLECTION, "--delete-inbox"], env=env)  # stdin is not a terminal here
    assert refused.returncode == 2 and "add --yes" in refused.stderr
    assert runs_of(home, "purge_collection_job") == []

    code, output = on_a_terminal(["purge", COLLECTION, "--delete-inbox"], env, "n")
    assert code == 1 and f"deletes the {len(DOCUMENTS)} document(s)" in output and "Nothing purged." in output
    assert (home / "warehouse" / COLLECTION / "embedding_index.parquet").is_file()
    assert runs_of(home, "purge_collection_job") == []

    code, output = on_a_terminal(["purge", COLLECTION, "--delete-inbox"], env, "y")
    assert code == 0, output
    assert "inbox: deleted" in output and not (home / "inbox" / COLLECTION).exists()


@pytest.mark.timeout(300)
def test_an_embedding_run_in_progress_fails_the_purge_with_what_to_do(materialized):
    home, env = materialized
    with dg.DagsterInstance.from_config(str(home / "dagster")) as instance:
        # As the daemon's run worker would record it: started, no `orca materialize` pid to check.
        run = instance.add_run(dg.DagsterRun(job_name="embed_collection_job", status=dg.DagsterRunStatus.STARTED,
                                             tags={"dagster/partition": COLLECTION}))
    result = run_cli(["purge", COLLECTION], env=env)
    assert result.returncode == 1
    assert f"refusing to purge {COLLECTION}" in result.stderr and run.run_id in result.stderr
    assert "--wait SECONDS" in result.stderr and "Traceback" not in result.stderr
    assert (home / "warehouse" / COLLECTION / "embedding_index.parquet").is_file()
    assert COLLECTION in partitions(home)
