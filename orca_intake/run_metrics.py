"""Prometheus metrics read from the Dagster instance at scrape time: runs by status, last throughput per collection.

Every scrape would otherwise cost a dozen queries against run and event storage (PostgreSQL in production),
and several Prometheus servers or a dashboard refresh may scrape at once: the values are read at most once
per `ttl` seconds, by one thread, under a time limit. A scrape that finds storage slow or down waits at most
`timeout` seconds, then answers with the last values and `orca_dagster_up 0`; it never hangs.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from orca_core.asset_names import EMBEDDINGS_ASSET, INDEX_ASSET, INDEX_FOLLOWS_INBOX

log = logging.getLogger("orca_intake")

MAX_COLLECTIONS = 500  # label values per metric: the collections materialized most recently
DEFAULT_TTL_SECONDS = 5.0
DEFAULT_TIMEOUT_SECONDS = 5.0

# metric name suffix -> (materialization metadata key, help text)
COLLECTION_GAUGES = {
    "inputs_per_second": ("inputs_per_second", "Inputs embedded per second by the last embeddings run of the collection (0 when it had nothing new)."),
    "inputs_sent": ("inputs_sent", "Inputs the last embeddings run of the collection sent to the embedder."),
    "embed_seconds": ("embed_seconds", "Seconds the last embeddings run of the collection spent embedding."),
}


@dataclass
class InstanceReading:
    """One read of the instance: run counts by status and the last embeddings metadata per collection."""

    runs: dict[str, int] = field(default_factory=dict)
    collections: dict[str, dict[str, Any]] = field(default_factory=dict)
    stale: dict[str, bool] = field(default_factory=dict)  # collection -> its index_follows_inbox check warns


def read_instance(instance: Any) -> InstanceReading:
    """Count runs by status and fetch the latest `embeddings` materialization of each collection."""
    import dagster as dg  # the intake imports Dagster only when it reads the instance

    runs = {status.value: instance.get_runs_count(dg.RunsFilter(statuses=[status])) for status in dg.DagsterRunStatus}
    key = dg.AssetKey(EMBEDDINGS_ASSET)
    latest = instance.event_log_storage.get_latest_storage_id_by_partition(
        key, dg.DagsterEventType.ASSET_MATERIALIZATION
    )
    storage_ids = sorted(latest.values(), reverse=True)[:MAX_COLLECTIONS]
    collections: dict[str, dict[str, Any]] = {}
    if storage_ids:
        records = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=key, storage_ids=storage_ids), limit=len(storage_ids)
        ).records
        for record in records:
            materialization = record.asset_materialization
            if materialization is None or materialization.partition is None:
                continue
            values = {name: getattr(value, "value", value) for name, value in materialization.metadata.items()}
            values["timestamp"] = record.timestamp
            collections[materialization.partition] = values
    return InstanceReading(runs=runs, collections=collections, stale=stale_indexes(instance))


def stale_indexes(instance: Any) -> dict[str, bool]:
    """Per collection, whether the latest `index_follows_inbox` result warns (an inbox change waited too long)."""
    import dagster as dg
    from dagster._core.storage.asset_check_execution_record import AssetCheckExecutionRecordStatus

    key = dg.AssetCheckKey(dg.AssetKey(INDEX_ASSET), INDEX_FOLLOWS_INBOX)
    finished = {AssetCheckExecutionRecordStatus.SUCCEEDED: False, AssetCheckExecutionRecordStatus.FAILED: True}
    return {
        info.partition_key: finished[info.latest_execution_status]
        for info in instance.event_log_storage.get_asset_check_partition_info([key])
        if info.partition_key is not None and info.latest_execution_status in finished
    }


class DagsterRunsCollector(Collector):
    """Exports `read_instance` as gauges, cached for `ttl` seconds and bounded by `timeout` per read."""

    def __init__(
        self,
        instance: Callable[[], Any],
        *,
        ttl: float = DEFAULT_TTL_SECONDS,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ):
        self._instance = instance
        self.ttl, self.timeout, self._clock = ttl, timeout, clock
        self._lock = threading.Lock()
        self._reading: InstanceReading | None = None
        self._read_at = float("-inf")
        self._up = False
        self._pending: Future | None = None
        self.reads = 0  # how many times storage was actually read (tests check the cache with it)

    def _read(self) -> InstanceReading | None:
        instance = self._instance()
        if instance is None:
            return None
        self.reads += 1
        return read_instance(instance)

    def _start_read(self) -> Future:
        # A daemon thread rather than an executor: a read stuck on dead storage must not hold up exit.
        future: Future = Future()

        def work() -> None:
            try:
                future.set_result(self._read())
            except BaseException as error:  # handed to the scrape that waits for it
                future.set_exception(error)

        threading.Thread(target=work, name="orca-run-metrics", daemon=True).start()
        return future

    def refresh(self) -> None:
        """Read the instance unless the last read is fresh; keep the last values when it fails or is slow."""
        with self._lock:
            if self._clock() - self._read_at < self.ttl:
                return
            if self._pending is None:
                self._pending = self._start_read()
            pending = self._pending
        try:
            reading = pending.result(timeout=self.timeout)
        except TimeoutError:
            log.warning("Dagster instance did not answer within %ss; serving the last run metrics", self.timeout)
            with self._lock:
                self._up = False
            return
        except Exception as error:  # a scrape must still answer when storage is down
            log.warning("run metrics unavailable: %s", error)
            reading = None
        with self._lock:
            if self._pending is pending:
                self._pending = None
            self._up = reading is not None
            if reading is not None:
                self._reading = reading
            self._read_at = self._clock()

    def collect(self):
        self.refresh()
        with self._lock:
            reading, up = self._reading, self._up
        yield _gauge("orca_dagster_up", "1 when the Dagster instance answered the last read.", [], [([], int(up))])
        if reading is None:
            return
        yield _gauge(
            "orca_dagster_runs",
            "Runs in the Dagster instance, by status.",
            ["status"],
            [([status.lower()], count) for status, count in sorted(reading.runs.items())],
        )
        for suffix, (meta_key, help_text) in COLLECTION_GAUGES.items():
            samples = [
                ([name], float(values[meta_key]))
                for name, values in sorted(reading.collections.items())
                if isinstance(values.get(meta_key), (int, float))
            ]
            yield _gauge(f"orca_collection_last_{suffix}", help_text, ["collection"], samples)
        yield _gauge(
            "orca_collection_last_embedded_timestamp_seconds",
            "When the last embeddings run of the collection finished (Unix time).",
            ["collection"],
            [([name], values["timestamp"]) for name, values in sorted(reading.collections.items())],
        )
        yield _gauge(
            "orca_collection_index_stale",
            "1 while the collection's index_follows_inbox check warns: an inbox change has waited longer than "
            "ORCA_FRESHNESS_MINUTES for its index.",
            ["collection"],
            [([name], int(stale)) for name, stale in sorted(reading.stale.items())],
        )


def _gauge(name: str, help_text: str, labels: list[str], samples: list[tuple[list[str], float]]) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, help_text, labels=labels)
    for values, value in samples:
        family.add_metric(values, value)
    return family


def shared_instance(state: Any, home: Any) -> Any:
    """The app's Dagster instance (the one the readiness probe opens), opened on first use; None before
    DAGSTER_HOME exists, so an intake started before the daemon does not create it."""
    if not home.is_dir():
        return None
    with state.dagster_lock:
        if state.dagster_instance is None:
            import dagster as dg

            state.dagster_instance = dg.DagsterInstance.from_config(str(home))
        return state.dagster_instance
