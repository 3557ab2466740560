"""Running the embedding assets in-process against a temporary ORCA_HOME, and reading what they published."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from orca_assets.jobs import embedding_assets
from orca_resources.warehouse import WarehouseResource


@dataclass
class Pipeline:
    """One collection under a temporary ORCA_HOME, materialized with `dg.materialize`."""

    home: Path
    collection: str
    instance: dg.DagsterInstance
    storage_url: str | None = None  # an object store (s3://...): `home` is then this machine's copy

    @property
    def warehouse(self) -> WarehouseResource:
        return WarehouseResource(home=str(self.home), storage_url=self.storage_url)

    @property
    def inbox(self) -> Path:
        path = self.home / "inbox" / self.collection
        path.mkdir(parents=True, exist_ok=True)
        return path

    @property
    def index_path(self) -> Path:
        return self.home / "warehouse" / self.collection / "embedding_index.parquet"

    def run(self, embedder, *, force: bool = False, chunk_tokens: int | None = None) -> dg.ExecuteInProcessResult:
        ops: dict = {}
        if force:
            ops["embeddings"] = {"config": {"force": True}}
        if chunk_tokens:
            ops["chunks"] = {"config": {"max_tokens": chunk_tokens, "overlap_tokens": 8}}
        return dg.materialize(
            embedding_assets,
            partition_key=self.collection,
            instance=self.instance,
            resources={"embedder": embedder, "warehouse": self.warehouse},
            run_config={"ops": ops},
            raise_on_error=False,
        )

    def index(self) -> pa.Table:
        return pq.read_table(self.index_path)


def metadata(result: dg.ExecuteInProcessResult, asset: str) -> dict:
    """The materialization metadata of `asset` in `result`, as plain values."""
    for event in result.get_asset_materialization_events():
        if event.asset_key == dg.AssetKey(asset):
            return {key: value.value for key, value in event.materialization.metadata.items()}
    raise AssertionError(f"{asset} was not materialized")


def check_results(result: dg.ExecuteInProcessResult) -> dict[str, bool]:
    """Outcomes of the checks that guard the index (error severity); warnings are in `warning_checks`."""
    return {
        evaluation.check_name: evaluation.passed
        for evaluation in result.get_asset_check_evaluations()
        if evaluation.severity == dg.AssetCheckSeverity.ERROR
    }


def warning_checks(result: dg.ExecuteInProcessResult) -> dict[str, bool]:
    return {
        evaluation.check_name: evaluation.passed
        for evaluation in result.get_asset_check_evaluations()
        if evaluation.severity == dg.AssetCheckSeverity.WARN
    }


def failure_message(result: dg.ExecuteInProcessResult) -> str:
    messages = []
    for event in result.all_events:
        if event.is_step_failure:
            error = event.step_failure_data.error
            messages.append(error.message if error else "")
            if error and error.cause:
                messages.append(error.cause.message)
    return "\n".join(messages)


def index_vectors(table: pa.Table) -> np.ndarray:
    return np.array(table["embedding"].to_pylist(), dtype=np.float32)
