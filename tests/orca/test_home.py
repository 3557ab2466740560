"""The Dagster instance as Orca opens it: the `ollama` pool exists before any run claims a slot."""

from __future__ import annotations

import dagster as dg

from orca.home import create_pools
from orca_assets.partitions import OLLAMA_POOL


def _instance(tmp_path, limit: int) -> dg.DagsterInstance:
    (tmp_path / "dagster.yaml").write_text(f"concurrency:\n  pools:\n    default_limit: {limit}\ntelemetry:\n  enabled: false\n")
    return dg.DagsterInstance.from_config(str(tmp_path))


def test_a_fresh_instance_gets_the_pool_at_its_default_limit(tmp_path):
    with _instance(tmp_path, 2) as instance:
        assert OLLAMA_POOL not in instance.event_log_storage.get_concurrency_keys()
        create_pools(instance)
        create_pools(instance)  # a second opener changes nothing
        assert instance.event_log_storage.get_concurrency_info(OLLAMA_POOL).slot_count == 2


def test_a_limit_someone_set_is_kept(tmp_path):
    with _instance(tmp_path, 2) as instance:
        instance.event_log_storage.set_concurrency_slots(OLLAMA_POOL, 5)  # `dagster instance concurrency set`
        create_pools(instance)
        assert instance.event_log_storage.get_concurrency_info(OLLAMA_POOL).slot_count == 5
