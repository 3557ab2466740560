"""A run made by `orca materialize` is visible in a real `dagster-webserver` on the same DAGSTER_HOME.

The webserver is queried over HTTP through its GraphQL API, as the UI does: the run is listed as a
success, the `embedding_index` materialization of the partition carries `dagster/row_count`, and the
index's asset checks passed.
"""

from __future__ import annotations

from collections.abc import Iterator

import dagster as dg
import httpx
import pyarrow.parquet as pq
import pytest

from orca.up import location_args
from tests.orca.test_cli import COLLECTION, write_documents
from tests.processes import ManagedProcess, console_script, free_port, orca_env, run_cli, wait_for_url

RUNS_QUERY = """
query Runs($job: String!) {
  runsOrError(filter: {pipelineName: $job}) {
    __typename
    ... on Runs { results { runId status tags { key value } } }
  }
}
"""

MATERIALIZATIONS_QUERY = """
query Materializations($partition: String!) {
  assetOrError(assetKey: {path: ["embedding_index"]}) {
    __typename
    ... on Asset {
      assetMaterializations(partitions: [$partition]) {
        runId
        partition
        metadataEntries {
          label
          ... on IntMetadataEntry { intValue }
          ... on TextMetadataEntry { text }
          ... on PathMetadataEntry { path }
        }
      }
    }
  }
}
"""

CHECKS_QUERY = """
query Checks {
  assetNodeOrError(assetKey: {path: ["embedding_index"]}) {
    __typename
    ... on AssetNode {
      assetChecksOrError {
        __typename
        ... on AssetChecks { checks { name } }
      }
    }
  }
}
"""

CHECK_EXECUTIONS_QUERY = """
query Executions($check: String!) {
  assetCheckExecutions(assetKey: {path: ["embedding_index"]}, checkName: $check, limit: 5) {
    runId
    status
    evaluation { success partition }
  }
}
"""


def graphql(base_url: str, query: str, **variables) -> dict:
    """POST a query to the webserver's GraphQL endpoint and return `data`, failing on any GraphQL error."""
    response = httpx.post(f"{base_url}/graphql", json={"query": query, "variables": variables}, timeout=60)
    response.raise_for_status()
    payload = response.json()
    assert "errors" not in payload, payload
    return payload["data"]


@pytest.fixture(scope="module")
def served(tmp_path_factory) -> Iterator[tuple[str, str, int]]:
    """(webserver URL, run id, index rows) after one CLI materialize, with a webserver on that DAGSTER_HOME."""
    home = tmp_path_factory.mktemp("orca-web")
    write_documents(home)
    env = orca_env(home)
    result = run_cli(["materialize", COLLECTION], env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    rows = pq.read_metadata(home / "warehouse" / COLLECTION / "embedding_index.parquet").num_rows
    with dg.DagsterInstance.from_config(str(home / "dagster")) as instance:
        (run,) = instance.get_runs()
    port = free_port()
    argv = [console_script("dagster-webserver"), "-h", "127.0.0.1", "-p", str(port), *location_args()]
    with ManagedProcess(argv, env=env, log_path=home / "webserver.log") as webserver:
        url = f"http://127.0.0.1:{port}"
        wait_for_url(f"{url}/server_info", timeout=180, process=webserver)
        yield url, run.run_id, rows


@pytest.mark.timeout(400)
def test_the_run_is_listed_as_a_success(served):
    url, run_id, _rows = served
    data = graphql(url, RUNS_QUERY, job="embed_collection_job")["runsOrError"]
    assert data["__typename"] == "Runs", data
    runs = {run["runId"]: run for run in data["results"]}
    assert runs[run_id]["status"] == "SUCCESS"
    assert {"key": "dagster/partition", "value": COLLECTION} in runs[run_id]["tags"]


@pytest.mark.timeout(400)
def test_the_index_materialization_carries_its_row_count(served):
    url, run_id, rows = served
    asset = graphql(url, MATERIALIZATIONS_QUERY, partition=COLLECTION)["assetOrError"]
    assert asset["__typename"] == "Asset", asset
    (materialization,) = asset["assetMaterializations"]
    assert materialization["runId"] == run_id
    assert materialization["partition"] == COLLECTION
    entries = {entry["label"]: entry for entry in materialization["metadataEntries"]}
    assert entries["dagster/row_count"]["intValue"] == rows > 0
    assert entries["path"]["path"].endswith(f"warehouse/{COLLECTION}/embedding_index.parquet")


@pytest.mark.timeout(400)
def test_the_index_checks_passed(served):
    url, run_id, _rows = served
    node = graphql(url, CHECKS_QUERY)["assetNodeOrError"]
    assert node["__typename"] == "AssetNode", node
    names = [check["name"] for check in node["assetChecksOrError"]["checks"]]
    assert names, "embedding_index has no asset checks"
    for name in names:
        executions = graphql(url, CHECK_EXECUTIONS_QUERY, check=name)["assetCheckExecutions"]
        assert [(e["runId"], e["status"], e["evaluation"]["success"]) for e in executions] == [
            (run_id, "SUCCEEDED", True)
        ], (name, executions)
        # Checks declared without partitions_def are recorded without a partition; with it, per collection.
        assert executions[0]["evaluation"]["partition"] in (None, COLLECTION)
