"""Runs execute their steps in their own process, and still share the `ollama` pool across runs.

Two runs of two collections are executed as the run worker executes a launched run (`dagster job execute`:
the job's own executor) at the same time, on an instance whose pools allow one slot: the runs overlap, yet
the embedding server sees one collection's inputs, then the other's, never the two interleaved. With two
slots the same runs interleave, which shows the check can fail.
"""

from __future__ import annotations

import json
import time

import dagster as dg
import pytest

from orca.definitions import build_definitions
from orca.home import create_pools
from orca_core.settings import OrcaSettings
from tests.processes import ManagedProcess, console_script, orca_env

COLLECTIONS = ("alpha", "beta")
DOCUMENTS = 200  # seven batches of 32 inputs per collection


def test_every_job_runs_its_steps_in_the_run_process():
    definitions = build_definitions(OrcaSettings.from_env({"ORCA_EMBEDDER": "hashing"}))
    for job in definitions.resolve_all_job_defs():
        assert job.executor_def is dg.in_process_executor, job.name


def run_two_collections(tmp_path, standin, pool_limit: int) -> tuple[list[str], list[tuple[float, float]]]:
    home = tmp_path / f"home-{pool_limit}"
    (home / "dagster").mkdir(parents=True)
    (home / "dagster" / "dagster.yaml").write_text(
        f"concurrency:\n  pools:\n    default_limit: {pool_limit}\ntelemetry:\n  enabled: false\n"
    )
    for collection in COLLECTIONS:
        inbox = home / "inbox" / collection
        inbox.mkdir(parents=True)
        for number in range(DOCUMENTS):
            (inbox / f"{number:02d}.txt").write_text(f"{collection} note {number}: the {collection} lamp {number}.")
    env = orca_env(home, ORCA_EMBEDDER="ollama", OLLAMA_HOST=standin.url)
    with dg.DagsterInstance.from_config(str(home / "dagster")) as instance:
        instance.add_dynamic_partitions("collections", list(COLLECTIONS))
        create_pools(instance)  # as `orca up` does: two runs starting at once on a fresh instance race to create it
    runs = [
        ManagedProcess(
            [console_script("dagster"), "job", "execute", "-m", "orca.definitions", "-j", "embed_collection_job",
             "--tags", json.dumps({"dagster/partition": collection})],
            env=env, log_path=tmp_path / f"{collection}-{pool_limit}.log",
        )  # fmt: skip
        for collection in COLLECTIONS
    ]
    try:
        deadline = time.monotonic() + 300
        while any(run.alive() for run in runs) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not any(run.alive() for run in runs), "the runs did not finish in 300 s"
    finally:
        for run in runs:
            run.stop()
    with dg.DagsterInstance.from_config(str(home / "dagster")) as instance:
        records = instance.get_run_records()
        assert len(records) == 2 and all(r.dagster_run.is_success for r in records), [r.dagster_run.status for r in records]
        spans = [(r.start_time, r.end_time) for r in records]
    return [next(c for c in COLLECTIONS if c in text) for text in standin.stats.inputs], spans


@pytest.mark.timeout(900)
def test_runs_overlap_but_one_pool_slot_embeds_one_collection_at_a_time(tmp_path, ollama_standin_factory):
    standin = ollama_standin_factory(cost_fixed_s=0.02)  # per input: about 4.5 s of embedding per collection
    order, spans = run_two_collections(tmp_path, standin, pool_limit=1)
    (first_start, first_end), (second_start, second_end) = sorted(spans)
    assert second_start < first_end, f"the two runs did not run side by side: {spans}"
    switches = sum(1 for a, b in zip(order, order[1:]) if a != b)
    assert switches == 1 and sorted(set(order)) == sorted(COLLECTIONS), f"interleaved with one slot: {order}"

    standin.reset_stats()
    order, _ = run_two_collections(tmp_path, standin, pool_limit=2)
    assert sum(1 for a, b in zip(order, order[1:]) if a != b) > 1, f"two slots, yet never interleaved: {order}"
