"""Two runs of one collection at the same moment, outside the run queue, still leave a correct index.

`orca materialize` executes in its own process and bypasses the daemon's queue, so the write path protects
itself: every step holds the collection's lock, the embedding store never overwrites or deletes another
writer's batches, and `orca materialize` waits for a run of the collection already in progress. "Correct"
means identical to the index a lone run builds from the same inbox. (The queue's own per-collection limit,
with a real daemon, is tested on PostgreSQL in tests/system/test_postgres_deployment.py.)
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import threading
import time
import uuid

import dagster as dg
import numpy as np
import pyarrow.parquet as pq
import pytest

from orca.home import project_file
from orca_assets.embedding_store import PARTS_DIR, EmbeddingStore
from orca_core.folder_lock import folder_lock
from orca_core.tags import HOST_TAG, PID_TAG
from orca_resources.hashing_embedder import HashingEmbedderResource
from orca_resources.ollama import OllamaResource
from tests.pipeline_helpers import Pipeline
from tests.processes import ManagedProcess, console_script, orca_env

COLLECTION = "reef"
TEXTS = {f"notes/{n:02d}.txt": f"Coral reef survey {n}: " + " ".join(f"fish{n * 7 + i}" for i in range(60)) for n in range(24)}


def write_inbox(home, collection: str = COLLECTION) -> None:
    for name, text in TEXTS.items():
        path = home / "inbox" / collection / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def lone_run_index(tmp_path, embedder) -> dict[str, tuple[str, list[float]]]:
    """What one run alone publishes for the same inbox: {chunk_id: (text, vector)}."""
    home = tmp_path / "alone"
    write_inbox(home)
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("collections", [COLLECTION])
        assert Pipeline(home=home, collection=COLLECTION, instance=instance).run(embedder).success
    return read_index(home)


def read_index(home) -> dict[str, tuple[str, list[float]]]:
    table = pq.read_table(home / "warehouse" / COLLECTION / "embedding_index.parquet")
    rows = table.select(["chunk_id", "text", "embedding"]).to_pylist()
    assert len({row["chunk_id"] for row in rows}) == len(rows), "duplicate chunks in the index"
    return {row["chunk_id"]: (row["text"], row["embedding"]) for row in rows}


def assert_same_index(found: dict, expected: dict) -> None:
    assert found.keys() == expected.keys()
    for chunk, (text, vector) in expected.items():
        assert found[chunk][0] == text
        np.testing.assert_array_equal(np.asarray(found[chunk][1]), np.asarray(vector))


def test_store_writers_never_overwrite_or_delete_each_others_batches(tmp_path):
    info = HashingEmbedderResource(dimensions=8).model_info()
    # A part per batch (part_seconds=0): each append below is on disk before the next line runs.
    first, second = EmbeddingStore(tmp_path, info, part_seconds=0), EmbeddingStore(tmp_path, info, part_seconds=0)
    vector = np.eye(8, dtype=np.float32)
    first.append_batch(["a"], vector[:1])
    second.append_batch(["b"], vector[1:2])  # numbered from disk, this would have replaced "a"'s part
    assert first.known_keys() == {"a", "b"}
    stored = first.compact({"a", "b", "c"})
    assert sorted(stored["key"].to_pylist()) == ["a", "b"]
    second.append_batch(["c"], vector[2:3])  # written after the compaction listed the parts: kept
    assert second.known_keys() == {"a", "b", "c"}
    assert sorted(second.compact({"a", "b", "c"})["key"].to_pylist()) == ["a", "b", "c"]
    assert not (tmp_path / PARTS_DIR).exists()


HOLD_LOCK = """
import sys
from pathlib import Path
from orca_core.folder_lock import folder_lock
with folder_lock(Path(sys.argv[1])):
    print("held", flush=True)
    sys.stdin.read()
"""


def test_a_step_waits_for_the_lock_another_process_holds(tmp_path):
    home = tmp_path / "home"
    write_inbox(home)
    folder = home / "warehouse" / COLLECTION
    folder.mkdir(parents=True)
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(folder)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    results: list[dg.ExecuteInProcessResult] = []
    try:
        assert holder.stdout.readline().strip() == "held"
        with dg.instance_for_test() as instance:
            instance.add_dynamic_partitions("collections", [COLLECTION])
            pipeline = Pipeline(home=home, collection=COLLECTION, instance=instance)
            worker = threading.Thread(target=lambda: results.append(pipeline.run(HashingEmbedderResource())))
            worker.start()
            time.sleep(1.5)
            assert not (folder / "documents.parquet").exists(), "a step wrote while another writer held the lock"
            holder.stdin.close()  # the other writer finishes
            worker.join(120)
            assert results and results[0].success
            logs = [event.message or "" for event in instance.all_logs(results[0].run_id)]
    finally:
        holder.kill()
        holder.wait()
    assert any("another run is writing reef; waiting" in message for message in logs)
    assert_same_index(read_index(home), lone_run_index(tmp_path, HashingEmbedderResource()))


def test_two_materialize_commands_at_once_end_with_a_correct_index(tmp_path, ollama_standin):
    # Each request costs a little, so the embedding steps of the two commands surely overlap in time.
    ollama_standin.cost_fixed_s = 0.02
    home = tmp_path / "home"
    write_inbox(home)
    env = orca_env(home, ORCA_EMBEDDER="ollama", OLLAMA_HOST=ollama_standin.url)
    command = [console_script("orca"), "materialize", COLLECTION]
    commands = [ManagedProcess(command, env=env, log_path=tmp_path / f"orca-{n}.log") for n in (1, 2)]
    try:
        codes = [process.wait(timeout=240) for process in commands]
        outputs = [process.output() for process in commands]
    finally:
        for process in commands:
            process.stop()
    assert codes == [0, 0], "\n".join(outputs)

    expected = lone_run_index(tmp_path, OllamaResource(host=ollama_standin.url, batch_size=32))
    assert_same_index(read_index(home), expected)
    assert not (home / "warehouse" / COLLECTION / PARTS_DIR).exists()
    with dg.DagsterInstance.from_config(str(home / "dagster")) as instance:
        runs = instance.get_runs(dg.RunsFilter(tags={"dagster/partition": COLLECTION}))
        assert sorted(run.status.value for run in runs) == ["SUCCESS", "SUCCESS"]


def add_started_run(dagster_home, **tags: str) -> str:
    """Record a run of the collection as in progress, as a daemon-launched run would be."""
    run_id = str(uuid.uuid4())
    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        instance.add_run(
            dg.DagsterRun(
                job_name="embed_collection_job",
                run_id=run_id,
                status=dg.DagsterRunStatus.STARTED,
                tags={"dagster/partition": COLLECTION, **tags},
            )
        )
    return run_id


def prepared_home(tmp_path):
    home = tmp_path / "home"
    write_inbox(home)
    (home / "dagster").mkdir(parents=True)
    shutil.copy(project_file("dagster.yaml"), home / "dagster" / "dagster.yaml")
    return home


def test_materialize_waits_for_a_run_of_the_collection_in_progress(tmp_path):
    home = prepared_home(tmp_path)
    other = add_started_run(home / "dagster", **{"orca/source": "inbox"})
    with ManagedProcess(
        [console_script("orca"), "materialize", COLLECTION], env=orca_env(home), log_path=tmp_path / "orca.log"
    ) as command:
        command.wait_for_output(f"Waiting for run {other}", timeout=120)
        time.sleep(1.5)
        assert command.alive() and not (home / "warehouse" / COLLECTION / "documents.parquet").exists()
        with dg.DagsterInstance.from_config(str(home / "dagster")) as instance:
            instance.report_run_failed(instance.get_run_by_id(other), "ended by the test")
        assert command.wait(timeout=120) == 0, command.output()
    assert (home / "warehouse" / COLLECTION / "embedding_index.parquet").exists()


def test_materialize_does_not_wait_for_a_run_left_by_a_killed_command(tmp_path):
    home = prepared_home(tmp_path)
    dead = subprocess.Popen(["true"])
    dead.wait()
    left = add_started_run(home / "dagster", **{PID_TAG: str(dead.pid), HOST_TAG: socket.gethostname()})
    result = subprocess.run(
        [console_script("orca"), "materialize", COLLECTION], env=orca_env(home), capture_output=True, text=True,
        timeout=180,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"run {left} of {COLLECTION} was left behind by a killed process" in result.stderr
    with dg.DagsterInstance.from_config(str(home / "dagster")) as instance:
        assert instance.get_run_by_id(left).status == dg.DagsterRunStatus.FAILURE


@pytest.mark.parametrize("holders", [2, 4])
def test_the_lock_admits_one_holder_at_a_time(tmp_path, holders):
    inside, most = [0], [0]
    guard = threading.Lock()

    def hold():
        with folder_lock(tmp_path):
            with guard:
                inside[0] += 1
                most[0] = max(most[0], inside[0])
            time.sleep(0.05)
            with guard:
                inside[0] -= 1

    threads = [threading.Thread(target=hold) for _ in range(holders)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert most[0] == 1
