"""`reindex_schedule`: its cron and time zone come from the settings, each tick asks for one incremental run
per registered collection (keyed by collection and scheduled time), and a scheduled run after the model's
digest changed re-embeds everything by itself while one with nothing changed sends nothing."""

from __future__ import annotations

from datetime import datetime, timezone

import dagster as dg
import pytest

from orca_assets.jobs import embed_collection_job, embedding_assets
from orca_core.settings import OrcaSettings
from orca_resources.hashing_embedder import HashingEmbedderResource
from orca_resources.ollama import OllamaResource
from orca_resources.warehouse import WarehouseResource
from schedules.reindex import build_reindex_schedule
from tests.documents_fixture import write_collection

TONIGHT = datetime(2026, 3, 1, 3, 0, tzinfo=timezone.utc)
TOMORROW = datetime(2026, 3, 2, 3, 0, tzinfo=timezone.utc)


def test_defaults_are_nightly_utc_and_running():
    schedule = build_reindex_schedule(OrcaSettings.from_env({}))
    assert (schedule.cron_schedule, schedule.execution_timezone) == ("0 3 * * *", "UTC")
    assert schedule.default_status == dg.DefaultScheduleStatus.RUNNING
    assert schedule.job_name == "embed_collection_job"
    assert schedule.name == "reindex_schedule"


def test_cron_and_timezone_come_from_settings():
    schedule = build_reindex_schedule(OrcaSettings.from_env({"ORCA_REINDEX_CRON": "30 1 * * 0", "ORCA_TIMEZONE": "Europe/Paris"}))
    assert (schedule.cron_schedule, schedule.execution_timezone) == ("30 1 * * 0", "Europe/Paris")
    with pytest.raises(ValueError, match="ORCA_REINDEX_CRON='every night'"):
        build_reindex_schedule(OrcaSettings.from_env({"ORCA_REINDEX_CRON": "every night"}))
    with pytest.raises(ValueError, match="ORCA_TIMEZONE='Mars/Olympus'"):
        build_reindex_schedule(OrcaSettings.from_env({"ORCA_TIMEZONE": "Mars/Olympus"}))


def tick(instance, when):
    """Evaluate the schedule as the daemon does, which also checks each request's partition exists."""
    reindex_schedule = build_reindex_schedule(OrcaSettings.from_env({}))
    repository = dg.Definitions(
        assets=embedding_assets, jobs=[embed_collection_job], schedules=[reindex_schedule],
        resources={"embedder": HashingEmbedderResource(), "warehouse": WarehouseResource()},
    ).get_repository_def()
    with dg.build_schedule_context(
        instance=instance, scheduled_execution_time=when, repository_def=repository
    ) as context:
        return reindex_schedule.evaluate_tick(context)


def test_one_incremental_run_per_collection_keyed_by_time(sensor_harness):
    instance = sensor_harness.instance
    assert tick(instance, TONIGHT).skip_message == "no collections registered yet"
    instance.add_dynamic_partitions("collections", ["notes", "docs"])

    tonight = tick(instance, TONIGHT).run_requests
    assert [r.partition_key for r in tonight] == ["docs", "notes"]
    assert all(r.run_config == {} and r.tags["orca/source"] == "schedule" for r in tonight)  # incremental
    assert len({r.run_key for r in tonight}) == 2
    assert [r.run_key for r in tick(instance, TONIGHT).run_requests] == [r.run_key for r in tonight]
    assert not {r.run_key for r in tick(instance, TOMORROW).run_requests} & {r.run_key for r in tonight}


def test_scheduled_run_after_a_digest_change_reembeds(sensor_harness, ollama_standin):
    write_collection(sensor_harness.inbox("docs"))
    sensor_harness.instance.add_dynamic_partitions("collections", ["docs"])
    embedder = OllamaResource(host=ollama_standin.url, batch_size=4)

    def scheduled_run(when):
        (request,) = tick(sensor_harness.instance, when).run_requests
        result = sensor_harness.execute(request, embedder=embedder)
        assert result.success
        events = {e.asset_key.path[-1]: e.materialization.metadata for e in result.get_asset_materialization_events()}
        return events["embeddings"]["inputs_sent"].value, events["chunks"]["total"].value

    sent, chunks = scheduled_run(TONIGHT)
    assert sent == chunks > 0
    assert scheduled_run(TOMORROW) == (0, chunks)  # nothing changed: nothing sent

    ollama_standin.set_digest("nomic-embed-text", "sha256:" + "ab" * 32)  # `ollama pull` brought a new build
    ollama_standin.reset_stats()
    assert scheduled_run(datetime(2026, 3, 3, 3, 0, tzinfo=timezone.utc)) == (chunks, chunks)
    assert ollama_standin.stats.inputs_embedded == chunks
