"""deploy/prometheus.yml, its alert rules and the Grafana dashboard: well-formed, and every Orca metric they
query is one the intake really exports (checked against a live `/metrics` after a run).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import dagster as dg
import yaml
from prometheus_client.parser import text_string_to_metric_families

from orca.definitions import build_definitions
from orca_core.settings import OrcaSettings
from orca_core.tags import PARTITION_TAG
from tests.orca_intake.test_run_metrics import materialize

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
METRIC_NAME = re.compile(r"\b(orca_[a-z_]+)")


def dashboard() -> dict:
    return json.loads((DEPLOY / "grafana" / "orca.json").read_text())


def dashboard_queries() -> list[str]:
    return [target["expr"] for panel in dashboard()["panels"] for target in panel["targets"]]


def rule_queries() -> list[str]:
    rules = yaml.safe_load((DEPLOY / "orca.rules.yml").read_text())
    return [rule["expr"] for group in rules["groups"] for rule in group["rules"]]


def test_prometheus_scrapes_the_intake_metrics_and_loads_the_rules():
    config = yaml.safe_load((DEPLOY / "prometheus.yml").read_text())
    (job,) = [job for job in config["scrape_configs"] if job["job_name"] == "orca-intake"]
    assert job["metrics_path"] == "/metrics"
    assert job["static_configs"][0]["targets"]
    for name in config["rule_files"]:
        assert (DEPLOY / name).is_file(), name
    for group in yaml.safe_load((DEPLOY / "orca.rules.yml").read_text())["groups"]:
        for rule in group["rules"]:
            assert rule["alert"] and rule["expr"] and rule["annotations"]["summary"]


def test_dashboard_is_importable_grafana_json():
    board = dashboard()
    assert board["uid"] and board["title"] == "Orca"
    assert [item["name"] for item in board["__inputs"]] == ["DS_PROMETHEUS"]
    ids = [panel["id"] for panel in board["panels"]]
    assert len(ids) == len(set(ids))
    for panel in board["panels"]:
        assert panel["datasource"]["uid"] == "${DS_PROMETHEUS}"
        assert set(panel["gridPos"]) == {"x", "y", "w", "h"}
        assert panel["targets"] and all(target["expr"] for target in panel["targets"])


def test_every_queried_metric_is_exported_by_the_intake(intake_app_factory, tmp_path):
    home = tmp_path / "home"
    (home / "dagster").mkdir(parents=True)
    with dg.DagsterInstance.from_config(str(home / "dagster")) as instance:
        materialize(home, instance, "whales", ["orcas are dolphins."])
        settings = OrcaSettings.from_env({"ORCA_HOME": str(home), "ORCA_EMBEDDER": "hashing"})
        freshness = build_definitions(settings).resolve_job_def("index_freshness_job")  # the check's verdict
        assert freshness.execute_in_process(instance=instance, tags={PARTITION_TAG: "whales"}).success
    client = intake_app_factory(ORCA_HOME=str(home))
    client.post("/v1/collections/whales/documents", json={"documents": [{"text": "krill"}]})
    client.get("/v1/jobs/unknown")
    exported = {
        sample.name
        for family in text_string_to_metric_families(client.get("/metrics").text)
        for sample in family.samples
    }
    queried = {name for query in dashboard_queries() + rule_queries() for name in METRIC_NAME.findall(query)}
    assert queried, "the configs query no Orca metric"
    assert queried <= exported, f"queried but not exported: {sorted(queried - exported)}"
    # The panels cover runs by status and each collection's last throughput.
    assert {"orca_dagster_runs", "orca_collection_last_inputs_per_second"} <= queried
