"""`GET /v1/jobs` (newest first, filtered, paged) and `POST /v1/jobs/{id}/cancel`.

A request canceled while queued is never launched by `intake_sensor` (ticked here as the daemon would); a
request whose run waits QUEUED in a real Dagster instance (submitted to its queued run coordinator, with no
daemon to dequeue it) is canceled with its run, and so is every other request that run serves.
"""

from __future__ import annotations

import sys

import dagster as dg
import pytest
from dagster._core.code_pointer import ModuleCodePointer
from dagster._core.origin import JobPythonOrigin, RepositoryPythonOrigin
from dagster._core.remote_origin import InProcessCodeLocationOrigin, RemoteJobOrigin, RemoteRepositoryOrigin
from dagster._core.types.loadable_target_origin import LoadableTargetOrigin

from sensors.intake import intake_sensor

DOCS = "/v1/collections/{}/documents"


def post_document(client, collection: str, text: str = "whales") -> str:
    response = client.post(DOCS.format(collection), json={"documents": [{"text": text}]})
    assert response.status_code == 202, response.text
    return response.json()["request_id"]


def error_code(response, status: int) -> str:
    assert response.status_code == status, response.text
    assert response.json()["error"]["message"]
    return response.json()["error"]["code"]


# ---- listing ----------------------------------------------------------------------------------------------


def test_jobs_are_listed_newest_first_filtered_and_paged(intake_client):
    queue = intake_client.app.state.queue
    first = post_document(intake_client, "alpha")
    second = post_document(intake_client, "beta")
    # Three requests committed together share one time stamp: paging must still see each exactly once.
    group = [row.request_id for row in queue.enqueue_many([("embed", "alpha", {}, None)] * 3)]
    queue.set_status([second], "failed", error="boom")

    listed = intake_client.get("/v1/jobs").json()
    ids = [job["request_id"] for job in listed["data"]]
    assert ids == sorted(group, reverse=True) + [second, first] and listed["next_cursor"] is None
    assert listed["data"][-2]["status"] == "failed" and listed["data"][-2]["error"] == "boom"

    alpha = intake_client.get("/v1/jobs", params={"collection": "alpha"}).json()["data"]
    assert {job["request_id"] for job in alpha} == {first, *group}
    failed = intake_client.get("/v1/jobs", params={"status": "failed"}).json()["data"]
    assert [job["request_id"] for job in failed] == [second]
    both = intake_client.get("/v1/jobs", params={"status": ["failed", "queued"], "collection": "beta"}).json()
    assert [job["request_id"] for job in both["data"]] == [second]

    paged, cursor = [], None
    while True:
        page = intake_client.get("/v1/jobs", params={"limit": 2, **({"cursor": cursor} if cursor else {})}).json()
        assert len(page["data"]) <= 2
        paged += [job["request_id"] for job in page["data"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert paged == ids


@pytest.mark.parametrize(
    "params, code, fragment",
    [
        ({"status": "done"}, "validation_error", "status"),
        ({"collection": "Not A Name"}, "invalid_collection", "collection"),
        ({"cursor": "not-a-cursor"}, "invalid_cursor", "cursor"),
        ({"limit": 0}, "validation_error", "limit"),
        ({"limit": 501}, "validation_error", "limit"),
    ],
)
def test_invalid_filters_are_422_saying_what_is_wrong(intake_client, params, code, fragment):
    response = intake_client.get("/v1/jobs", params=params)
    assert error_code(response, 422) == code
    assert fragment in response.json()["error"]["message"]


# ---- canceling without Dagster ------------------------------------------------------------------------------


def test_unknown_is_404_and_finished_is_409(intake_client):
    assert error_code(intake_client.post("/v1/jobs/nope/cancel"), 404) == "job_not_found"
    request_id = post_document(intake_client, "demo")
    queue = intake_client.app.state.queue
    queue.mark_launched([request_id], "run-1")
    queue.set_status([request_id], "succeeded", counts={})
    response = intake_client.post(f"/v1/jobs/{request_id}/cancel")
    assert error_code(response, 409) == "job_finished" and "succeeded" in response.json()["error"]["message"]
    canceled = post_document(intake_client, "demo")
    assert intake_client.post(f"/v1/jobs/{canceled}/cancel").status_code == 200
    assert error_code(intake_client.post(f"/v1/jobs/{canceled}/cancel"), 409) == "job_finished"


# ---- canceling with the intake sensor and a real Dagster instance ------------------------------------------


@pytest.fixture
def client(sensor_harness, intake_app_factory):
    """The intake on the harness's ORCA_HOME and Dagster instance, as `orca up` shares them."""
    return intake_app_factory(ORCA_HOME=str(sensor_harness.home), DAGSTER_HOME=sensor_harness.instance.root_directory)


def test_a_request_canceled_while_queued_is_never_launched(client, sensor_harness):
    canceled = post_document(client, "demo", "first")
    kept = post_document(client, "demo", "second")
    response = client.post(f"/v1/jobs/{canceled}/cancel")
    assert response.status_code == 200, response.text
    assert response.json() == {
        "request_id": canceled, "status": "canceled", "run_id": None, "canceled_requests": [canceled],
        "message": response.json()["message"],
    }
    (request,) = sensor_harness.tick(intake_sensor).run_requests
    assert request.tags["orca/request_ids"] == kept  # the other request of the collection still runs
    assert sensor_harness.tick(intake_sensor).run_requests == []  # and the canceled one never does
    status = client.get(f"/v1/jobs/{canceled}").json()
    assert status["status"] == "canceled" and status["run_id"] is None and status["finished_at"]
    assert client.get(f"/v1/jobs/{kept}").json()["status"] == "launched"


def submit_as_the_daemon(harness, request: dg.RunRequest) -> dg.DagsterRun:
    """Record the run of `request` (its job, tags, partition and code origin) and submit it to the instance's
    run coordinator, as the sensor daemon does; the job itself is never loaded, as no run worker starts."""
    location = InProcessCodeLocationOrigin(LoadableTargetOrigin(module_name="orca.definitions", attribute="defs"))
    origin = RemoteJobOrigin(RemoteRepositoryOrigin(location, "__repository__"), request.job_name)
    code = JobPythonOrigin(
        request.job_name, RepositoryPythonOrigin(sys.executable, ModuleCodePointer("orca.definitions", "defs", None))
    )
    run = harness.instance.add_run(
        dg.DagsterRun(
            job_name=request.job_name, run_config=request.run_config, status=dg.DagsterRunStatus.NOT_STARTED,
            tags={**request.tags, "dagster/partition": request.partition_key},
            remote_job_origin=origin, job_code_origin=code,
        )
    )
    return harness.instance.submit_run(run.run_id, workspace=None)


def test_a_request_whose_run_is_queued_in_dagster_is_canceled_with_its_run(client, sensor_harness):
    first = post_document(client, "demo", "first")
    second = post_document(client, "demo", "second")
    (request,) = sensor_harness.tick(intake_sensor).run_requests
    # Marked launched, but the daemon has not created the run yet: nothing to cancel right now.
    response = client.post(f"/v1/jobs/{second}/cancel")
    assert error_code(response, 409) == "job_launching" and response.headers["Retry-After"] == "5"

    run = submit_as_the_daemon(sensor_harness, request)
    assert run.status == dg.DagsterRunStatus.QUEUED  # no daemon here dequeues it
    response = client.post(f"/v1/jobs/{second}/cancel")
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["status"] == "canceled" and answer["run_id"] == run.run_id
    assert answer["canceled_requests"] == sorted([first, second])  # the run served both

    assert sensor_harness.instance.get_run_by_id(run.run_id).status == dg.DagsterRunStatus.CANCELED
    for request_id in (first, second):
        status = client.get(f"/v1/jobs/{request_id}").json()
        assert status["status"] == "canceled" and status["run_id"] == run.run_id
    again = client.post(f"/v1/jobs/{first}/cancel")
    assert error_code(again, 409) == "job_finished"
    listed = client.get("/v1/jobs", params={"status": "canceled"}).json()["data"]
    assert {job["request_id"] for job in listed} == {first, second}
