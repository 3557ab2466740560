"""The op-job kinds from the REST intake to a finished run: `POST /v1/jobs` with kind `prepare_model` and
`purge` through the FastAPI app, `intake_sensor` turns them into runs of `prepare_model_job` and
`purge_collection_job` (run key = request id, `orca/request_id(s)` tags, the purge for its collection's
partition), the runs execute in process on the sensors' instance, and
`intake_run_status_sensor` brings both requests to `succeeded`. Also: a purge is a barrier in the queue
(requests made after it run after it), bad purges fail before launch, and each kind takes only its options.
"""

from __future__ import annotations

import dagster as dg
import pytest

from orca.definitions import build_definitions
from orca_assets.jobs import embed_collection_job, embedding_assets
from orca_assets.prepare_model_job import prepare_model_job
from orca_assets.purge_collection_job import purge_collection_job
from orca_resources.ollama import OllamaResource
from orca_resources.warehouse import WarehouseResource
from sensors.intake import intake_sensor
from sensors.run_status import intake_run_status_sensor


def execute(harness, request: dg.RunRequest, ollama_url: str = "http://127.0.0.1:9") -> dg.ExecuteInProcessResult:
    """Run `request` in process on the harness's instance, as the daemon would launch it."""
    definitions = dg.Definitions(
        assets=embedding_assets,
        jobs=[embed_collection_job, prepare_model_job, purge_collection_job],
        resources={
            **harness.resources(),
            "warehouse": WarehouseResource(home=str(harness.home)),
            "ollama": OllamaResource(host=ollama_url, max_retries=0),
        },
    )
    return definitions.resolve_job_def(request.job_name).execute_in_process(
        partition_key=request.partition_key, run_config=request.run_config, tags=request.tags,
        instance=harness.instance, raise_on_error=False,
    )


@pytest.fixture
def client(sensor_harness, intake_app_factory):
    """The intake app on the harness's ORCA_HOME, so it writes the queue and inbox the sensors read."""
    return intake_app_factory(ORCA_HOME=str(sensor_harness.home))


def test_prepare_model_and_purge_from_the_api_end_succeeded(sensor_harness, client, ollama_standin):
    ollama_standin.remove_model("nomic-embed-text")
    posted = client.post("/v1/collections/docs/documents", json={"documents": [{"id": "a.md", "text": "Tides."}]})
    embed = sensor_harness.tick(intake_sensor).run_requests
    assert posted.status_code == 202 and [r.job_name for r in embed] == ["embed_collection_job"]
    assert execute(sensor_harness, embed[0]).success
    assert (sensor_harness.home / "warehouse" / "docs" / "embedding_index.parquet").is_file()

    prepare = client.post("/v1/jobs", json={"kind": "prepare_model", "force_pull": True})
    purge = client.post("/v1/jobs", json={"kind": "purge", "collection": "docs", "delete_inbox": True})
    assert (prepare.status_code, purge.status_code) == (202, 202), (prepare.text, purge.text)
    assert prepare.json()["collection"] is None and purge.json()["kind"] == "purge"
    ids = {"prepare_model_job": prepare.json()["request_id"], "purge_collection_job": purge.json()["request_id"]}

    requests = {r.job_name: r for r in sensor_harness.tick(intake_sensor).run_requests}
    assert set(requests) == set(ids)
    for job_name, request in requests.items():
        assert request.run_key == ids[job_name] == request.tags["orca/request_id"] == request.tags["orca/request_ids"]
    assert requests["prepare_model_job"].partition_key is None
    assert requests["prepare_model_job"].run_config == {"ops": {"pull_model": {"config": {"force_pull": True}}}}
    assert requests["purge_collection_job"].partition_key == "docs"
    purge_config = requests["purge_collection_job"].run_config["ops"]["wait_until_collection_idle"]["config"]
    assert purge_config["delete_inbox"] is True and "collection" not in purge_config
    assert {client.get(f"/v1/jobs/{i}").json()["status"] for i in ids.values()} == {"launched"}

    results = {name: execute(sensor_harness, r, ollama_standin.url) for name, r in requests.items()}
    assert all(result.success for result in results.values())
    assert results["purge_collection_job"].dagster_run.tags["dagster/partition"] == "docs"
    sensor_harness.tick(intake_run_status_sensor)
    for job_name, request_id in ids.items():
        status = client.get(f"/v1/jobs/{request_id}").json()
        assert (status["status"], status["run_id"], status["error"]) == ("succeeded", results[job_name].run_id, None)
    assert ollama_standin.has_model("nomic-embed-text")
    assert not (sensor_harness.home / "inbox" / "docs").exists()
    assert not (sensor_harness.home / "warehouse" / "docs").exists()
    assert "docs" not in sensor_harness.instance.get_dynamic_partitions("collections")


def test_failed_prepare_model_run_reports_the_servers_message(sensor_harness, client, ollama_standin):
    ollama_standin.remove_model("nomic-embed-text")
    ollama_standin.fail_pull_after(3, "pull model manifest: 500 registry unavailable")
    request_id = client.post("/v1/jobs", json={"kind": "prepare_model"}).json()["request_id"]
    (request,) = sensor_harness.tick(intake_sensor).run_requests
    assert request.run_config == {}
    assert not execute(sensor_harness, request, ollama_standin.url).success
    sensor_harness.tick(intake_run_status_sensor)
    status = client.get(f"/v1/jobs/{request_id}").json()
    assert status["status"] == "failed"
    assert status["error"].startswith("pull_model: pulling nomic-embed-text on ")
    assert status["error"].endswith("pull model manifest: 500 registry unavailable")


def test_a_purge_is_a_barrier_between_the_requests_of_its_collection(sensor_harness):
    queue = sensor_harness.queue
    (sensor_harness.inbox("docs") / "a.md").write_text("a", encoding="utf-8")
    before = queue.enqueue("documents", "docs", {"doc_ids": ["a.md"]}).request_id
    purge = queue.enqueue("purge", "docs", {"delete_inbox": False}).request_id
    second_purge = queue.enqueue("purge", "docs", {"delete_inbox": True}).request_id
    after = queue.enqueue("embed", "docs", {"force": False, "model": None}).request_id

    ticks = [[(r.job_name, r.tags["orca/request_ids"]) for r in sensor_harness.tick(intake_sensor).run_requests]
             for _ in range(4)]
    assert ticks == [
        [("embed_collection_job", before)],
        [("purge_collection_job", f"{purge},{second_purge}")],
        [("embed_collection_job", after)],
        [],
    ]


def test_bad_purges_fail_before_launch_and_options_must_fit_the_kind(sensor_harness, client):
    unknown = sensor_harness.queue.enqueue("purge", "nowhere", {"delete_inbox": False}).request_id
    assert sensor_harness.tick(intake_sensor).run_requests == []
    row = sensor_harness.queue.get(unknown)
    assert (row.status, row.error) == ("failed", "unknown collection 'nowhere': nothing to purge")

    refused = {
        "`prepare_model` takes no collection": {"kind": "prepare_model", "collection": "docs"},
        "`purge` needs a collection": {"kind": "purge"},
        "not an option of kind `embed`: delete_inbox": {"kind": "embed", "collection": "docs", "delete_inbox": True},
        "not an option of kind `purge`: force_pull": {"kind": "purge", "collection": "docs", "force_pull": True},
    }
    for message, body in refused.items():
        response = client.post("/v1/jobs", json=body)
        assert response.status_code == 422 and message in response.json()["error"]["message"], response.text
    missing = client.post("/v1/jobs", json={"kind": "purge", "collection": "nowhere"})
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "collection_not_found"


def test_definitions_offer_both_op_jobs_with_their_own_ollama_resource(tmp_path, monkeypatch):
    monkeypatch.setenv("ORCA_HOME", str(tmp_path))
    monkeypatch.setenv("ORCA_EMBEDDER", "hashing")
    definitions = build_definitions()
    repository = definitions.get_repository_def()
    assert {"prepare_model_job", "purge_collection_job"} <= {job.name for job in repository.get_all_jobs()}
    resources = definitions.resources
    assert isinstance(resources["ollama"], OllamaResource) and not isinstance(resources["embedder"], OllamaResource)
    purge = repository.get_job("purge_collection_job")
    assert purge.partitions_def.name == "collections"  # the launchpad asks for the collection
    config = purge.run_config_schema.config_type.fields["ops"]
    op_fields = config.config_type.fields["wait_until_collection_idle"].config_type.fields["config"].config_type.fields
    assert set(op_fields) == {"delete_inbox", "wait_seconds"} and not any(f.is_required for f in op_fields.values())
