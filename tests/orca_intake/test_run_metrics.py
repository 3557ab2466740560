"""Run metrics of the intake's `/metrics`: runs by status and each collection's last throughput, read from the
Dagster instance at scrape time, cached for a few seconds, and answered even when storage is down or slow.
"""

from __future__ import annotations

import threading
import time

import dagster as dg
import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from orca_intake.run_metrics import DagsterRunsCollector, read_instance
from orca_resources.hashing_embedder import HashingEmbedderResource
from tests.pipeline_helpers import Pipeline, metadata


def samples(text: str) -> dict[tuple[str, tuple], float]:
    """{(sample name, sorted labels): value} of a Prometheus text exposition."""
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def scrape(collector: DagsterRunsCollector) -> dict[tuple[str, tuple], float]:
    registry = CollectorRegistry()
    registry.register(collector)
    return samples(generate_latest(registry).decode())


def materialize(home, instance, collection: str, texts: list[str]) -> dg.ExecuteInProcessResult:
    pipeline = Pipeline(home=home, collection=collection, instance=instance)
    for number, text in enumerate(texts):
        (pipeline.inbox / f"doc{number}.txt").write_text(text)
    instance.add_dynamic_partitions("collections", [collection])
    result = pipeline.run(HashingEmbedderResource())
    assert result.success
    return result


@pytest.fixture
def instance():
    with dg.instance_for_test() as instance:
        yield instance


def test_runs_by_status_and_last_throughput_per_collection(tmp_path, instance):
    first = materialize(tmp_path, instance, "alpha", ["whales eat krill.", "orcas hunt in pods."])
    materialize(tmp_path, instance, "beta", ["tides follow the moon."])
    again = materialize(tmp_path, instance, "alpha", ["whales eat krill.", "orcas hunt in pods."])
    found = scrape(DagsterRunsCollector(lambda: instance))

    assert found[("orca_dagster_up", ())] == 1
    assert found[("orca_dagster_runs", (("status", "success"),))] == 3
    assert found[("orca_dagster_runs", (("status", "failure"),))] == 0
    assert found[("orca_dagster_runs", (("status", "queued"),))] == 0
    # The last run of alpha re-embedded nothing: its throughput is that run's, not the first one's.
    assert metadata(first, "embeddings")["inputs_sent"] == 2
    assert found[("orca_collection_last_inputs_sent", (("collection", "alpha"),))] == 0
    assert found[("orca_collection_last_inputs_per_second", (("collection", "alpha"),))] == 0
    assert found[("orca_collection_last_inputs_sent", (("collection", "beta"),))] == 1
    assert found[("orca_collection_last_inputs_per_second", (("collection", "beta"),))] > 0
    stamp = found[("orca_collection_last_embedded_timestamp_seconds", (("collection", "alpha"),))]
    ended = instance.get_run_record_by_id(again.run_id).end_time
    assert stamp == pytest.approx(ended, abs=30)


def test_reads_are_cached_for_the_ttl(instance):
    now = [100.0]
    collector = DagsterRunsCollector(lambda: instance, ttl=5.0, clock=lambda: now[0])
    scrape(collector)
    now[0] += 4.9
    scrape(collector)
    assert collector.reads == 1
    now[0] += 0.2
    scrape(collector)
    assert collector.reads == 2


def test_storage_down_answers_with_the_last_values_and_up_zero(instance):
    now = [0.0]
    working = [True]

    class Failing:
        def __getattr__(self, name):
            raise ConnectionError("could not connect to server: Connection refused")

    collector = DagsterRunsCollector(lambda: instance if working[0] else Failing(), clock=lambda: now[0])
    assert scrape(collector)[("orca_dagster_up", ())] == 1
    working[0] = False
    now[0] += 10
    found = scrape(collector)
    assert found[("orca_dagster_up", ())] == 0
    assert ("orca_dagster_runs", (("status", "success"),)) in found  # the last values are kept


def test_slow_storage_cannot_hold_up_a_scrape(instance):
    release = threading.Event()

    def stuck():
        release.wait(30)
        return instance

    collector = DagsterRunsCollector(stuck, timeout=0.3)
    started = time.monotonic()
    first = scrape(collector)
    second = scrape(collector)  # the stuck read is waited on again, not started twice
    assert time.monotonic() - started < 3
    assert first[("orca_dagster_up", ())] == 0 and second[("orca_dagster_up", ())] == 0
    release.set()


def test_read_is_bounded_to_the_latest_materialization_per_collection(tmp_path, instance):
    for _ in range(3):
        materialize(tmp_path, instance, "gamma", ["one text"])
    reading = read_instance(instance)
    assert list(reading.collections) == ["gamma"]
    assert reading.runs["SUCCESS"] == 3


def test_the_intake_exports_run_metrics_of_its_dagster_home(intake_app_factory, tmp_path):
    home = tmp_path / "home"
    client = intake_app_factory(ORCA_HOME=str(home))
    # Before any Dagster instance exists, the scrape still answers, and does not create one.
    before = samples(client.get("/metrics").text)
    assert before[("orca_dagster_up", ())] == 0
    assert not (home / "dagster").exists()

    (home / "dagster").mkdir(parents=True)
    with dg.DagsterInstance.from_config(str(home / "dagster")) as instance:
        materialize(home, instance, "delta", ["the intake reads what the daemon recorded"])
    client.app.state.metrics.runs.ttl = 0  # no waiting for the cache in a test
    after = samples(client.get("/metrics").text)
    assert after[("orca_dagster_up", ())] == 1
    assert after[("orca_dagster_runs", (("status", "success"),))] == 1
    assert after[("orca_collection_last_inputs_sent", (("collection", "delta"),))] == 1
