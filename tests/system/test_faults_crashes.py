"""Crashes staged with SIGKILL on real processes. Marked slow; `make test` still runs them.

- The intake killed right after answering 202: after a restart every accepted request is still queued, its
  documents are whole in the inbox, and the intake sensor turns it into a run that indexes them.
- A process publishing the served index killed at random points while this process reads the index in a
  loop: every read sees a complete old or new index, never a torn file.
- A run process killed during embedding: the rerun pays again for at most one batch of work that had finished.
"""

from __future__ import annotations

import os
import random
import signal
import sys
import textwrap
import threading
import time
from pathlib import Path

import dagster as dg
import httpx
import pyarrow.parquet as pq
import pytest

from orca_resources.ollama import OllamaResource
from sensors.intake import intake_sensor
from sensors.run_status import intake_run_status_sensor
from tests.pipeline_helpers import Pipeline, failure_message, metadata
from tests.processes import ManagedProcess, free_port, orca_env, wait_for_url, wait_until

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def start_intake(home: Path, log_dir: Path) -> tuple[ManagedProcess, str]:
    port = free_port()
    process = ManagedProcess(
        [sys.executable, "-m", "orca_intake", "--port", str(port)],
        env=orca_env(home),
        log_path=log_dir / f"intake-{port}.log",
    )
    url = f"http://127.0.0.1:{port}"
    wait_for_url(f"{url}/health/live", timeout=60, process=process)
    return process, url


def kill_group(process: ManagedProcess) -> None:
    """SIGKILL the process and everything it started: no handler, no cleanup, no flush."""
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=10)


def test_intake_killed_right_after_a_202_keeps_every_accepted_request(sensor_harness, tmp_path):
    home = sensor_harness.home
    process, url = start_intake(home, tmp_path)
    accepted: dict[str, list[str]] = {}
    try:
        for number in range(3):
            body = {"documents": [{"id": f"r{number}-{i}.txt", "text": f"request {number} document {i} about gulls"}
                                  for i in range(4)]}
            response = httpx.post(f"{url}/v1/collections/birds/documents", json=body, timeout=30)
            assert response.status_code == 202, response.text
            accepted[response.json()["request_id"]] = response.json()["documents"]
        kill_group(process)  # at once after the last 202: no graceful shutdown, nothing flushed on exit
    finally:
        process.stop()

    restarted, url = start_intake(home, tmp_path)
    try:
        for request_id in accepted:
            job = httpx.get(f"{url}/v1/jobs/{request_id}", timeout=10).json()
            assert job["status"] == "queued", job
        inbox = home / "inbox" / "birds"
        for number, docs in enumerate(accepted.values()):
            for doc_id in docs:
                assert (inbox / doc_id).read_text(encoding="utf-8").startswith(f"request {number} document")

        # The sensors pick the requests up as if nothing had happened, and the run indexes every document.
        run_requests = sensor_harness.tick(intake_sensor).run_requests
        assert len(run_requests) == 1
        result = sensor_harness.execute(run_requests[0])
        assert result.success, failure_message(result)
        sensor_harness.tick(intake_run_status_sensor)
        for request_id in accepted:
            assert httpx.get(f"{url}/v1/jobs/{request_id}", timeout=10).json()["status"] == "succeeded"
        index = pq.read_table(home / "warehouse" / "birds" / "embedding_index.parquet")
        expected = sorted(doc for docs in accepted.values() for doc in docs)
        assert sorted(index["doc_id"].to_pylist()) == expected  # each accepted document, exactly once
    finally:
        restarted.stop()


PUBLISHER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    import pyarrow as pa
    from orca_assets.index import INDEX_SCHEMA
    from orca_resources.warehouse import write_parquet_atomic

    def index(model, rows):
        return pa.Table.from_pydict(
            {
                "chunk_id": [f"{model}-{i}" for i in range(rows)],
                "doc_id": [f"doc-{i // 10}.txt" for i in range(rows)],
                "chunk_index": [i % 10 for i in range(rows)],
                "text": [f"text {i}" for i in range(rows)],
                "embedding": [[1.0, float(i % 7), 0.5, 0.25] for i in range(rows)],
                "model": [model] * rows,
                "source": ["inbox"] * rows,
                "page": [None] * rows,
                "section": [None] * rows,
                "title": [None] * rows,
                "metadata": ["{}"] * rows,
            },
            schema=INDEX_SCHEMA,
        )

    target = Path(sys.argv[1])
    tables = [index("old-model", 20000), index("new-model", 30000)]
    print("publishing", flush=True)
    count = 0
    while True:
        write_parquet_atomic(tables[count % 2], target)
        count += 1
    """
)
ROWS = {"old-model": 20000, "new-model": 30000}


class IndexReaders(threading.Thread):
    """Reads the served index in a loop the way the intake does (search and collection summary) and records
    any read that is not a whole old or new index."""

    def __init__(self, target: Path):
        super().__init__(daemon=True)
        self.target = target
        self.stop_event = threading.Event()
        self.seen: dict[str, int] = dict.fromkeys(ROWS, 0)
        self.torn: list[str] = []

    def run(self) -> None:
        from orca_core.catalog import index_summary
        from orca_core.search import IndexNotFound, load_index

        while not self.stop_event.is_set():
            try:
                loaded = load_index(self.target)
            except IndexNotFound:
                continue  # before the first publication
            except Exception as error:  # noqa: BLE001 - a torn file shows up as any read error
                self.torn.append(f"search: {type(error).__name__}: {error}")
                continue
            if loaded.models not in ((m,) for m in ROWS) or loaded.rows != ROWS[loaded.models[0]]:
                self.torn.append(f"search: {loaded.rows} rows of {loaded.models}")
                continue
            self.seen[loaded.models[0]] += 1
            summary = index_summary(self.target)
            if summary is None or summary.model not in ROWS or summary.chunks != ROWS[summary.model]:
                self.torn.append(f"catalog: {summary}")


def test_killing_the_publisher_mid_replace_never_exposes_a_torn_index(tmp_path):
    target = tmp_path / "warehouse" / "docs" / "embedding_index.parquet"
    script = tmp_path / "publisher.py"
    script.write_text(PUBLISHER, encoding="utf-8")
    reader = IndexReaders(target)
    reader.start()
    rng = random.Random(5)
    kills = 0
    try:
        for round_number in range(4):
            publisher = ManagedProcess(
                [sys.executable, str(script), str(target)],
                env=orca_env(tmp_path / "home", PYTHONPATH=str(REPO)),
                log_path=tmp_path / f"publisher-{round_number}.log",
            )
            try:
                publisher.wait_for_output("publishing", timeout=60)
                time.sleep(rng.uniform(0.2, 0.6))  # somewhere inside a write, an fsync or a rename
                kill_group(publisher)
                kills += 1
            finally:
                publisher.stop()
            # Right after the kill the served file is whole.
            table = pq.read_table(target)
            assert table.num_rows == ROWS[table["model"][0].as_py()]
    finally:
        reader.stop_event.set()
        reader.join(10)
    assert kills == 4
    assert reader.torn == [], reader.torn[:5]
    assert all(count > 0 for count in reader.seen.values()), reader.seen  # the reader raced real replacements
    # Only hidden temporary files may be left by a kill; the scanners and readers never look at them.
    assert all(p.name.startswith(".") for p in target.parent.iterdir() if p != target)


RUNNER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    import dagster as dg
    from orca_resources.ollama import OllamaResource
    from tests.pipeline_helpers import Pipeline

    home, url = sys.argv[1:3]
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("collections", ["docs"])
    pipeline = Pipeline(home=Path(home), collection="docs", instance=instance)
    print("running", flush=True)
    result = pipeline.run(OllamaResource(host=url, batch_size=2, max_in_flight_per_host=1))
    print("finished", result.success, flush=True)
    """
)


def test_run_process_killed_during_embedding_resumes_paying_at_most_one_batch(tmp_path, ollama_standin_factory):
    standin = ollama_standin_factory(cost_fixed_s=0.03)
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("collections", ["docs"])
    pipeline = Pipeline(home=tmp_path / "orca", collection="docs", instance=instance)
    total = 20
    for number in range(total):
        (pipeline.inbox / f"note-{number:02d}.txt").write_text(
            f"Note {number}: lighthouse {number} keeps its lamp lit for {number * 3} ships.", encoding="utf-8"
        )
    script = tmp_path / "runner.py"
    script.write_text(RUNNER, encoding="utf-8")
    runner = ManagedProcess(
        [sys.executable, str(script), str(pipeline.home), standin.url],
        env=orca_env(tmp_path / "home", PYTHONPATH=str(REPO)),
        log_path=tmp_path / "runner.log",
        cwd=REPO,
    )
    try:
        wait_until(lambda: standin.stats.embed_requests >= 4 or not runner.alive(), timeout=120, interval=0.001)
        assert runner.alive(), runner.output()
        kill_group(runner)
    finally:
        runner.stop()
    finished = standin.stats.inputs_embedded
    assert 8 <= finished < total, runner.output()
    assert not pipeline.index_path.exists()

    rerun = pipeline.run(OllamaResource(host=standin.url, batch_size=2, backoff_initial=0.01, backoff_max=0.05))
    assert rerun.success, failure_message(rerun)
    paid_again = standin.stats.inputs_embedded - total
    assert paid_again <= 2, f"the rerun re-embedded {paid_again} inputs that had been computed before the kill"
    assert metadata(rerun, "embeddings")["reused"] >= finished - 2
    assert pipeline.index().num_rows == total
