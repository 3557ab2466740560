"""`collection_lock` on a real PostgreSQL server: one holder per collection across processes, other collections
free, a killed holder's lock released at once; and the steps of a run on a PostgreSQL instance take it there."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

from orca_core.collection_lock import _dsn, collection_lock, instance_postgres_url, lock_key

HOLDER = """
import sys, time
from pathlib import Path
from orca_core.collection_lock import collection_lock
with collection_lock(Path(sys.argv[1]), sys.argv[2], postgres_url=sys.argv[3]):
    print("held", flush=True)
    time.sleep(600)
"""


def _advisory_locks(postgres_server, database: str) -> int:
    return postgres_server.query(database, "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'")[0][0]


def test_keys_are_stable_and_distinct_per_collection():
    assert lock_key("docs") == lock_key("docs") != lock_key("docs2")
    assert -(2**63) <= lock_key("docs") < 2**63
    assert _dsn("postgresql+psycopg2://u:p@h:5/db") == "postgresql://u:p@h:5/db"


def test_one_holder_per_collection_across_processes_and_a_killed_holder_frees_it(
    postgres_server, postgres_database, tmp_path: Path
):
    url = postgres_server.url(postgres_database)
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(tmp_path / "a"), "docs", url],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        assert _advisory_locks(postgres_server, postgres_database) == 1
        # Another collection is not held up; the same one is, and says why.
        with collection_lock(tmp_path / "b", "notes", postgres_url=url) as waited:
            assert waited < 1
        told: list[str] = []
        acquired = threading.Event()

        def wait_for_docs():
            with collection_lock(tmp_path / "c", "docs", postgres_url=url, on_wait=told.append):
                acquired.set()

        waiter = threading.Thread(target=wait_for_docs)
        waiter.start()
        time.sleep(1.0)
        assert not acquired.is_set() and told == ["another run is writing docs; waiting for its step to finish"]
        holder.kill()  # SIGKILL: no unlock is sent, the server ends the session and its locks
        assert acquired.wait(10), "the lock of a killed holder was not released"
        waiter.join(10)
    finally:
        holder.kill()
        holder.wait()
    assert _advisory_locks(postgres_server, postgres_database) == 0


def test_threads_of_one_process_take_turns(postgres_server, postgres_database, tmp_path: Path):
    """Advisory locks are per session and reentrant within one: two threads must still exclude each other."""
    url = postgres_server.url(postgres_database)
    inside, most = 0, 0
    guard = threading.Lock()

    def step():
        nonlocal inside, most
        with collection_lock(tmp_path, "docs", postgres_url=url):
            with guard:
                inside += 1
                most = max(most, inside)
            time.sleep(0.2)
            with guard:
                inside -= 1

    threads = [threading.Thread(target=step) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert most == 1


def test_without_postgres_the_folder_lock_is_used(tmp_path: Path):
    with collection_lock(tmp_path / "docs", "docs") as waited:
        assert waited < 1 and (tmp_path / "docs" / ".orca.lock").exists()


def test_a_run_on_a_postgres_instance_waits_on_the_advisory_lock(
    postgres_server, postgres_database, tmp_path: Path, monkeypatch
):
    """The steps find the lock from the run's instance: holding the advisory lock of `docs` holds up its run."""
    import shutil

    import dagster as dg

    from orca_assets.jobs import embedding_assets
    from orca_resources.hashing_embedder import HashingEmbedderResource
    from orca_resources.warehouse import WarehouseResource

    with dg.instance_for_test() as sqlite:
        assert instance_postgres_url(sqlite) is None
    for name, value in postgres_server.dagster_env(postgres_database).items():
        monkeypatch.setenv(name, value)
    (tmp_path / "dagster").mkdir()
    shutil.copy(Path(__file__).resolve().parents[2] / "deploy" / "dagster.postgres.yaml", tmp_path / "dagster" / "dagster.yaml")
    (tmp_path / "home" / "inbox" / "docs").mkdir(parents=True)
    (tmp_path / "home" / "inbox" / "docs" / "a.md").write_text("Tides rise twice a day.", encoding="utf-8")
    with dg.DagsterInstance.from_config(str(tmp_path / "dagster")) as instance:
        url = instance_postgres_url(instance)
        assert url and postgres_database in url
        instance.add_dynamic_partitions("collections", ["docs"])
        # Another machine's step, as far as this one can tell: another process, another warehouse folder.
        holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(tmp_path / "elsewhere"), "docs", url],
                                  stdout=subprocess.PIPE, text=True)
        try:
            assert holder.stdout.readline().strip() == "held"
            threading.Timer(1.5, holder.kill).start()
            started = time.monotonic()
            result = dg.materialize(
                embedding_assets, partition_key="docs", instance=instance,
                resources={"embedder": HashingEmbedderResource(),
                           "warehouse": WarehouseResource(home=str(tmp_path / "home"))},
            )
        finally:
            holder.kill()
            holder.wait()
        assert result.success and time.monotonic() - started >= 1.4
        messages = [entry.user_message for entry in instance.all_logs(result.run_id)]
        assert any("another run is writing docs; waiting for its step to finish" in m for m in messages)
