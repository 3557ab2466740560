"""`intake_sensor` and `intake_run_status_sensor` against a real queue file and a temporary Dagster instance:
queued requests become one run per collection with the request id as run key, force and model overrides
become run config (or a clear failure), and each request follows its run to succeeded (with counts),
failed (with the error) or canceled; lost launches are queued again."""

from __future__ import annotations

import dagster as dg

import sensors.intake as intake_module
import sensors.intake_runs as intake_runs
import sensors.run_status as status_module
from orca.definitions import build_definitions
from orca_core.tags import FINGERPRINT_TAG
from orca_resources.hashing_embedder import MODEL_NAME as HASHING_MODEL
from orca_resources.intake_queue_resource import IntakeQueueResource
from orca_resources.ollama import OllamaResource
from sensors.fingerprint import fingerprint
from sensors.intake import intake_sensor
from sensors.run_status import intake_run_status_sensor


def post(harness, collection: str, names: list[str], **payload) -> str:
    """Do what the intake does for posted documents: write them, then queue one `documents` request."""
    folder = harness.inbox(collection)
    for name in names:
        (folder / name).write_text(f"{name}: tides rise twice a day near the harbour.", encoding="utf-8")
    return harness.queue.enqueue("documents", collection, {"doc_ids": names, **payload}).request_id


def statuses(harness, ids) -> list[str]:
    return [harness.queue.get(request_id).status for request_id in ids]


def test_many_requests_become_one_run_per_collection(sensor_harness):
    docs = [post(sensor_harness, "docs", [f"d{i}.md"]) for i in range(30)]
    notes = [post(sensor_harness, "notes", [f"n{i}.md"]) for i in range(4)]
    sensor_harness.queue.set_status([docs[5]], "failed", error="older failure")  # finished rows are left alone

    result = sensor_harness.tick(intake_sensor)
    by_collection = {request.partition_key: request for request in result.run_requests}
    assert set(by_collection) == {"docs", "notes"}
    expected_docs = [i for i in docs if i != docs[5]]
    assert by_collection["docs"].run_key == expected_docs[0]
    assert by_collection["docs"].tags["orca/request_ids"].split(",") == expected_docs
    assert by_collection["docs"].tags["orca/request_id"] == expected_docs[0]
    assert by_collection["docs"].tags["orca/source"] == "intake"
    assert by_collection["docs"].tags[FINGERPRINT_TAG] == fingerprint(sensor_harness.inbox("docs")).digest
    assert by_collection["notes"].run_config == {}
    assert [sorted(r.partition_keys) for r in result.dynamic_partitions_requests] == [["docs", "notes"]]
    assert set(sensor_harness.instance.get_dynamic_partitions("collections")) == {"docs", "notes"}
    assert set(statuses(sensor_harness, expected_docs + notes)) == {"launched"}

    again = sensor_harness.tick(intake_sensor, result.cursor)
    assert again.run_requests == [] and again.skip_reason.skip_message == "no queued intake requests"


def test_groups_are_capped_and_rest_waits(sensor_harness, monkeypatch):
    monkeypatch.setattr(intake_runs, "MAX_REQUESTS_PER_RUN", 10)
    monkeypatch.setattr(intake_module, "MAX_RUNS_PER_TICK", 1)
    ids = [post(sensor_harness, "docs", [f"d{i}.md"]) for i in range(25)]
    post(sensor_harness, "other", ["o.md"])
    keys = []
    for _ in range(4):
        for request in sensor_harness.tick(intake_sensor).run_requests:
            keys.append((request.partition_key, request.run_key, len(request.tags["orca/request_ids"].split(","))))
    assert keys[:3] == [("docs", ids[0], 10), ("docs", ids[10], 10), ("docs", ids[20], 5)]
    assert [k[0] for k in keys[3:]] == ["other"]


def test_force_when_any_request_asks_and_models_do_not_mix(sensor_harness):
    folder = sensor_harness.inbox("docs")
    (folder / "a.md").write_text("a", encoding="utf-8")
    sensor_harness.instance.add_dynamic_partitions("collections", ["docs"])
    plain = sensor_harness.queue.enqueue("embed", "docs", {"force": False, "model": None}).request_id
    forced = sensor_harness.queue.enqueue("reindex", "docs", {"force": True, "model": None}).request_id
    same_model = sensor_harness.queue.enqueue("embed", "docs", {"force": False, "model": HASHING_MODEL}).request_id
    other = sensor_harness.queue.enqueue("embed", "docs", {"force": False, "model": "mxbai-embed-large"}).request_id

    request = sensor_harness.tick(intake_sensor).run_requests[0]
    assert request.run_config == {"ops": {"embeddings": {"config": {"force": True}}}}
    assert request.tags["orca/request_ids"].split(",") == [plain, forced]
    assert statuses(sensor_harness, [same_model, other]) == ["queued", "queued"]

    # The hashing embedder has one model: naming it is fine, naming another fails instead of being ignored.
    assert [r.tags["orca/request_ids"] for r in sensor_harness.tick(intake_sensor).run_requests] == [same_model]
    assert sensor_harness.tick(intake_sensor).run_requests == []
    row = sensor_harness.queue.get(other)
    assert row.status == "failed" and "hashing" in row.error and "mxbai-embed-large" in row.error


def test_model_override_keeps_the_rest_of_the_embedder_config(sensor_harness, ollama_standin):
    ollama_standin.add_model("other-embed", dimensions=32)
    sensor_harness.embedder = OllamaResource(host=ollama_standin.url, batch_size=3, max_retries=1)
    request_id = post(sensor_harness, "docs", ["a.md", "b.md"], model=None)
    sensor_harness.queue.set_status([request_id], "canceled")
    sensor_harness.queue.enqueue("embed", "docs", {"force": False, "model": "other-embed"})

    request = sensor_harness.tick(intake_sensor).run_requests[0]
    config = request.run_config["resources"]["embedder"]["config"]
    assert (config["model"], config["host"], config["batch_size"], config["max_retries"]) == (
        "other-embed", ollama_standin.url, 3, 1,
    )
    assert request.tags["orca/model"] == "other-embed"
    # Launched as Dagster would: the job's own resource points elsewhere; run config must carry everything.
    result = sensor_harness.execute(request, embedder=OllamaResource(host="http://127.0.0.1:9", batch_size=99))
    assert result.success
    embedded = next(e for e in result.get_asset_materialization_events() if e.asset_key.path[-1] == "embeddings")
    assert embedded.materialization.metadata["model"].value == "other-embed"
    assert embedded.materialization.metadata["dimensions"].value == 32


def test_unknown_or_invalid_collections_fail_with_a_reason(sensor_harness):
    missing = sensor_harness.queue.enqueue("embed", "nowhere", {"force": False, "model": None}).request_id
    invalid = sensor_harness.queue.enqueue("embed", "Not Valid", {"force": False, "model": None}).request_id
    result = sensor_harness.tick(intake_sensor)
    assert result.run_requests == []
    assert "no inbox folder" in sensor_harness.queue.get(missing).error
    assert "invalid collection name" in sensor_harness.queue.get(invalid).error
    assert statuses(sensor_harness, [missing, invalid]) == ["failed", "failed"]


def test_run_request_executed_for_real_ends_succeeded_with_counts(sensor_harness):
    ids = [post(sensor_harness, "docs", ["a.md", "b.md"]), post(sensor_harness, "docs", ["c.md"])]
    request = sensor_harness.tick(intake_sensor).run_requests[0]

    waiting = sensor_harness.tick(intake_run_status_sensor)
    assert waiting.skip_reason.skip_message == "2 active request(s), no change"
    assert statuses(sensor_harness, ids) == ["launched", "launched"]

    result = sensor_harness.execute(request)
    assert result.success
    sensor_harness.tick(intake_run_status_sensor)
    for request_id in ids:
        row = sensor_harness.queue.get(request_id)
        assert (row.status, row.run_id, row.error) == ("succeeded", result.run_id, None)
        assert row.finished_at is not None
        counts = row.counts
        assert counts["documents_added"] == 3 and counts["documents_failed"] == 0 and counts["documents_deleted"] == 0
        assert counts["chunks"] == counts["rows"] == counts["inputs_sent"] == 3
        assert counts["embed_seconds"] >= 0 and counts["model"] == HASHING_MODEL
        assert "failed_checks" not in counts
    idle = sensor_harness.tick(intake_run_status_sensor)
    assert idle.skip_reason.skip_message == "no launched or running intake requests"


def test_the_intake_answers_succeeded_as_soon_as_the_run_ended(sensor_harness, intake_app_factory):
    """`GET /v1/jobs/{id}` reads the run itself: no status sensor tick between the run's end and the answer."""
    ids = [post(sensor_harness, "docs", ["a.md"]), post(sensor_harness, "docs", ["b.md"])]
    request = sensor_harness.tick(intake_sensor).run_requests[0]
    client = intake_app_factory(ORCA_HOME=str(sensor_harness.home), DAGSTER_HOME=sensor_harness.instance.root_directory)
    assert client.get(f"/v1/jobs/{ids[0]}").json()["status"] == "launched"  # no run yet: the stored status

    result = sensor_harness.execute(request)
    answer = client.get(f"/v1/jobs/{ids[1]}").json()
    assert (answer["status"], answer["run_id"]) == ("succeeded", result.run_id)
    assert answer["counts"]["documents_added"] == 2 and answer["counts"]["inputs_sent"] == 2
    # Recorded for every request of the run, as the status sensor would, which then finds nothing left to do.
    assert statuses(sensor_harness, ids) == ["succeeded", "succeeded"]
    assert sensor_harness.tick(intake_run_status_sensor).skip_reason.skip_message == (
        "no launched or running intake requests"
    )


def test_failed_run_records_the_users_error(sensor_harness, ollama_standin):
    ollama_standin.remove_model("nomic-embed-text")
    request_id = post(sensor_harness, "docs", ["a.md"])
    request = sensor_harness.tick(intake_sensor).run_requests[0]
    result = sensor_harness.execute(request, embedder=OllamaResource(host=ollama_standin.url, max_retries=0))
    assert not result.success
    sensor_harness.tick(intake_run_status_sensor)
    row = sensor_harness.queue.get(request_id)
    assert (row.status, row.run_id, row.counts) == ("failed", result.run_id, None)
    assert row.error.startswith("chunks: model 'nomic-embed-text' is not available")
    assert "ollama pull nomic-embed-text" in row.error and "Traceback" not in row.error


def test_status_follows_queued_started_and_canceled_runs(sensor_harness):
    request_id = post(sensor_harness, "docs", ["a.md"])
    request = sensor_harness.tick(intake_sensor).run_requests[0]
    job = sensor_harness.job()
    instance = sensor_harness.instance
    run = instance.create_run_for_job(
        job, run_config=request.run_config, tags={**request.tags, "dagster/partition": "docs"},
        status=dg.DagsterRunStatus.NOT_STARTED,
    )
    sensor_harness.tick(intake_run_status_sensor)
    row = sensor_harness.queue.get(request_id)
    assert (row.status, row.run_id) == ("launched", run.run_id)

    instance.handle_run_event(run.run_id, dg.DagsterEvent(
        event_type_value=dg.DagsterEventType.RUN_START.value, job_name=job.name, message="started",
    ))
    sensor_harness.tick(intake_run_status_sensor)
    assert statuses(sensor_harness, [request_id]) == ["running"]

    instance.report_run_canceled(instance.get_run_by_id(run.run_id))
    sensor_harness.tick(intake_run_status_sensor)
    row = sensor_harness.queue.get(request_id)
    assert (row.status, row.error) == ("canceled", f"run {run.run_id} was canceled")


def test_launch_without_run_is_queued_again_and_relaunched(sensor_harness, monkeypatch):
    request_id = post(sensor_harness, "docs", ["a.md"])
    first = sensor_harness.tick(intake_sensor).run_requests[0]  # ... and the daemon never creates the run
    sensor_harness.tick(intake_run_status_sensor)
    assert statuses(sensor_harness, [request_id]) == ["launched"]  # not yet: the run may still be coming

    monkeypatch.setattr(status_module, "ORPHAN_SECONDS", -1)
    sensor_harness.tick(intake_run_status_sensor)
    assert statuses(sensor_harness, [request_id]) == ["queued"]
    again = sensor_harness.tick(intake_sensor).run_requests[0]
    assert again.run_key == first.run_key == request_id  # no run exists with that key, so it is not deduped


def test_status_pages_through_many_active_requests(sensor_harness, monkeypatch):
    monkeypatch.setattr(status_module, "PAGE_SIZE", 2)
    ids = []
    for collection in ("a", "b", "c", "d", "e"):
        ids.append(post(sensor_harness, collection, ["x.md"]))
    requests = sensor_harness.tick(intake_sensor).run_requests
    for request in requests:
        assert sensor_harness.execute(request).success
    cursor, seen = None, []
    for _ in range(3):
        result = sensor_harness.tick(intake_run_status_sensor, cursor)
        cursor = result.cursor
        seen.append(sum(status == "succeeded" for status in statuses(sensor_harness, ids)))
    assert seen == [2, 4, 5] and cursor is None


def test_definitions_wire_sensors_and_schedule_without_opening_the_queue(tmp_path, monkeypatch):
    monkeypatch.setenv("ORCA_HOME", str(tmp_path))
    monkeypatch.setenv("ORCA_EMBEDDER", "hashing")
    repository = build_definitions().get_repository_def()
    sensors = {sensor.name: sensor for sensor in repository.sensor_defs}
    assert set(sensors) == {"inbox_sensor", "intake_sensor", "intake_run_status_sensor", "index_freshness_sensor"}
    assert all(s.default_status == dg.DefaultSensorStatus.RUNNING for s in sensors.values())
    assert sensors["intake_sensor"].minimum_interval_seconds <= 5
    assert [s.name for s in repository.schedule_defs] == ["reindex_schedule"]
    assert not (tmp_path / "intake").exists()  # the queue is opened by the sensors, not by loading code
    resource = repository.get_top_level_resources()["intake_queue"]
    assert resource is not None and IntakeQueueResource(home=str(tmp_path)).resolved_url.endswith("intake/queue.db")
