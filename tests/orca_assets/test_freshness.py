"""`index_follows_inbox` and `index_freshness_sensor`: a collection whose inbox changed warns once its index
has not followed within the window, on that collection's partition only."""

from __future__ import annotations

import os
import time

import dagster as dg
import pytest
from dagster._core.storage.asset_check_execution_record import AssetCheckExecutionRecordStatus

from orca.definitions import build_definitions
from orca_assets import freshness
from orca_assets.freshness import CHECK_KEY, latest_inbox_change
from orca_core.settings import OrcaSettings
from orca_intake.run_metrics import DagsterRunsCollector
from orca_resources.warehouse import WarehouseResource
from sensors.index_freshness import build_index_freshness_sensor
from tests.orca_intake.test_run_metrics import materialize, scrape


def test_latest_change_counts_documents_and_deletions_but_not_hidden_files(tmp_path):
    inbox = tmp_path / "inbox"
    (inbox / "guides").mkdir(parents=True)
    (inbox / "guides" / "a.md").write_text("a")
    for path, stamp in ((inbox, 1000), (inbox / "guides", 1000), (inbox / "guides" / "a.md", 2000)):
        os.utime(path, (stamp, stamp))
    assert latest_inbox_change(inbox) == 2000
    (inbox / ".notes.md.part").write_text("still being written")  # the inbox itself moves: a new entry
    os.utime(inbox, (1000, 1000))
    assert latest_inbox_change(inbox) == 2000
    (inbox / "guides" / "a.md").unlink()  # a deletion moves its folder's mtime
    assert latest_inbox_change(inbox) > 2000
    assert latest_inbox_change(tmp_path / "missing") is None


def test_verdict_waits_for_the_window_then_warns():
    now = 10_000.0
    built_before = freshness.Freshness("c", inbox_changed=now - 600, index_built=now - 900, window_seconds=3600, now=now)
    assert built_before.passed and built_before.waiting_seconds == 600
    late = freshness.Freshness("c", inbox_changed=now - 4000, index_built=now - 5000, window_seconds=3600, now=now)
    assert not late.passed and "67 min ago" in late.description()
    followed = freshness.Freshness("c", inbox_changed=now - 4000, index_built=now - 3000, window_seconds=3600, now=now)
    assert followed.passed and followed.waiting_seconds == 0
    never = freshness.Freshness("c", inbox_changed=now - 4000, index_built=None, window_seconds=3600, now=now)
    assert not never.passed
    assert freshness.Freshness("c", None, None, 3600, now).passed


@pytest.fixture
def instance():
    with dg.instance_for_test() as instance:
        yield instance


def evaluate(sensor, instance, home, cursor=None) -> dg.SensorResult:
    context = dg.build_sensor_context(
        instance=instance, cursor=cursor, resources={"warehouse": WarehouseResource(home=str(home))}
    )
    return sensor(context)


def run_requested(result: dg.SensorResult, instance, home) -> list[str]:
    """Runs what the sensor requested, as the daemon would; the collections it asked for."""
    settings = OrcaSettings.from_env({"ORCA_HOME": str(home), "ORCA_EMBEDDER": "hashing"})
    job = build_definitions(settings).resolve_job_def("index_freshness_job")
    for request in result.run_requests or []:
        assert job.execute_in_process(instance=instance, tags=request.tags).success
    return [request.tags["dagster/partition"] for request in result.run_requests or []]


def history(instance, collection: str) -> list[str]:
    records = instance.event_log_storage.get_asset_check_execution_history(CHECK_KEY, limit=10)
    return [record.status.value for record in records if record.partition == collection]


def test_the_sensor_runs_the_check_of_a_collection_when_its_verdict_changes(tmp_path, instance, monkeypatch):
    materialize(tmp_path, instance, "whales", ["orcas are dolphins."])
    materialize(tmp_path, instance, "tides", ["the moon pulls the sea."])
    sensor = build_index_freshness_sensor(window_minutes=60)

    first = evaluate(sensor, instance, tmp_path)  # fresh collections: their embedding runs recorded the passes
    assert first.skip_reason is not None and not first.run_requests
    before = {name: history(instance, name) for name in ("whales", "tides")}
    quiet = evaluate(sensor, instance, tmp_path, first.cursor)
    assert quiet.skip_reason is not None and not quiet.run_requests

    time.sleep(0.01)
    (tmp_path / "inbox" / "whales" / "new.txt").write_text("killer whales hunt seals.")
    real = time.time
    monkeypatch.setattr(freshness, "clock", lambda: real() + 30 * 60)  # within the window: still passing
    assert not evaluate(sensor, instance, tmp_path, quiet.cursor).run_requests
    monkeypatch.setattr(freshness, "clock", lambda: real() + 2 * 3600)
    late = evaluate(sensor, instance, tmp_path, quiet.cursor)
    assert run_requested(late, instance, tmp_path) == ["whales"]  # the other collection's index is current
    assert history(instance, "whales") == ["FAILED", *before["whales"]]
    assert history(instance, "tides") == before["tides"]
    (record,) = instance.event_log_storage.get_asset_check_execution_history(
        CHECK_KEY, limit=1, status={AssetCheckExecutionRecordStatus.FAILED}
    )
    evaluation = record.event.dagster_event.event_specific_data
    assert evaluation.severity == dg.AssetCheckSeverity.WARN and evaluation.partition == "whales"
    assert evaluation.metadata["waiting_seconds"].value > 3600
    # The intake's /metrics says the same for Prometheus (deploy/orca.rules.yml: OrcaCollectionIndexStale).
    assert scrape(DagsterRunsCollector(lambda: instance))[("orca_collection_index_stale", (("collection", "whales"),))] == 1

    monkeypatch.setattr(freshness, "clock", real)
    materialize(tmp_path, instance, "whales", ["orcas are dolphins."])  # the index follows
    assert run_requested(evaluate(sensor, instance, tmp_path, late.cursor), instance, tmp_path) == ["whales"]
    assert history(instance, "whales")[0] == "SUCCEEDED"
    assert scrape(DagsterRunsCollector(lambda: instance))[("orca_collection_index_stale", (("collection", "whales"),))] == 0
