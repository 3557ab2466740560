"""Whether a run of a collection would change anything, asked without a run.

A run over an unchanged collection reads nothing: each step finds its verified record (orca_assets/unchanged.py)
under the key it computes, and the index step finds the served file it judged. What such a run costs is
Dagster's own: starting the run and recording its events (about 0.5-0.7 s here), which for a 13-collection corpus
is most of a reindex with nothing to do. `stale_reason` asks the steps' own questions, with the steps' own key
functions, in a few milliseconds; `orca materialize` runs only the collections it finds a reason for.

Up to date means all of:
- the newest materialization of `embedding_index` for the collection belongs to a run that succeeded, and the
  served file is still the one that run left (its inode, size and mtime, recorded with the materialization), so
  the search copy and the checks that run evaluated still hold; every other asset that must follow the index
  (`pgvector_table` when configured) was materialized by that same run;
- no run of the collection is in progress;
- `documents`, `chunks` and `embeddings` would each recall their verified record: the same inbox listing, chunker
  settings for this model, model identity, files; no failed document or chunk waiting for a retry;
- the index was built from the current chunks and vectors.
Anything it cannot tell cheaply (an inbox in object storage: its listing is the run's to pull) counts as a reason.
"""

from __future__ import annotations

import dagster as dg

from orca_assets.chunks import ChunksConfig, chunk_settings, chunks_key
from orca_assets.documents import documents_key, inbox_listing
from orca_assets.embeddings import embeddings_key
from orca_assets.index import FILE_IDENTITY, index_inputs, published_identity
from orca_assets.unchanged import recall
from orca_core.asset_names import INDEX_ASSET
from orca_core.embedder import ModelInfo
from orca_core.layout import CHUNKS_FILE, PARTS_DIR, STORE_FILE
from orca_core.tags import PARTITION_TAG
from orca_resources.warehouse import WarehouseResource, read_footer

IN_PROGRESS = [dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.STARTING,
               dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.CANCELING]


def _latest(instance: dg.DagsterInstance, asset: str, collection: str) -> dg.EventLogRecord | None:
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey(asset), asset_partitions=[collection]), limit=1
    ).records
    return records[0] if records else None


def _run_reason(instance: dg.DagsterInstance, collection: str, path, followers: tuple[str, ...]) -> str | None:
    """Why the last run's end state does not stand (or None): what Dagster recorded against the served file."""
    latest = _latest(instance, INDEX_ASSET, collection)
    if latest is None or latest.asset_materialization is None:
        return "never materialized on this instance"
    run = instance.get_run_by_id(latest.run_id)
    if run is None or run.status != dg.DagsterRunStatus.SUCCESS:
        return f"its last run {latest.run_id} did not succeed"
    recorded = latest.asset_materialization.metadata.get(FILE_IDENTITY)
    if recorded is None or recorded.value != published_identity(path):
        return "the served index is not the one its last run left"
    for asset in followers:
        follower = _latest(instance, asset, collection)
        if follower is None or follower.run_id != latest.run_id:
            return f"{asset} was not materialized by its last run"
    if instance.get_runs(dg.RunsFilter(statuses=IN_PROGRESS, tags={PARTITION_TAG: collection}), limit=1):
        return "a run of it is in progress"
    return None


def stale_reason(
    collection: str,
    warehouse: WarehouseResource,
    info: ModelInfo,
    instance: dg.DagsterInstance,
    *,
    followers: tuple[str, ...] = (),
    chunks_config: ChunksConfig | None = None,
) -> str | None:
    """Why a run of `collection` would change something, or None when it would change nothing.

    `info` is the embedder's model as a run would see it; `followers` the assets after the index the job also
    materializes; `chunks_config` the chunker's run configuration (the default when None).
    """
    if warehouse.storage_url:
        return "its inbox is in object storage, which only a run lists"
    layout = warehouse.layout
    if layout.linked_inbox(collection):
        return "its inbox folder is a symbolic link"
    folder, path = layout.warehouse(collection), layout.index_path(collection)  # a look creates no folder
    if (reason := _run_reason(instance, collection, path, followers)) is not None:
        return reason
    _, listing = inbox_listing(layout.inbox(collection))
    if recall(folder, "documents", documents_key(listing, folder)) is None:
        return "its inbox changed (or a document failed and is retried)"
    _, _, signature = chunk_settings(chunks_config or ChunksConfig(), info)
    if recall(folder, "chunks", chunks_key(signature, folder)) is None:
        return "its chunks are not verified for these documents and chunker settings"
    if (folder / PARTS_DIR).exists() or recall(folder, "embeddings", embeddings_key(info.identity, folder)) is None:
        return f"its vectors are not verified for these chunks and {info.name}"
    inputs = index_inputs(read_footer(folder / CHUNKS_FILE), read_footer(folder / STORE_FILE))
    published = read_footer(path)
    if inputs is None or published is None or published.metadata.get("orca.inputs") != inputs:
        return "its index was built from other chunks or vectors"
    return None
