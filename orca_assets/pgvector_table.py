"""The `pgvector_table` asset: each collection's served index kept as a PostgreSQL table (pgvector).

Only part of the graph when ORCA_PGVECTOR_URL is set (orca/definitions.py). The index Parquet is the truth;
the table follows it incrementally (orca_resources/pgvector_sync.py says how), and `pgvector_sync_check`
reports, after the sync, whether the table's row count and chunk-id checksum match the index.

It is in the `embedding` group, so `embed_collection_job` (which selects that group) runs it after the index
in every run once the setting puts it in the graph.
"""

# No `from __future__ import annotations`: Dagster reads the compute function's resource annotations.
import time

import dagster as dg

from orca_assets.index import embedding_index
from orca_assets.partitions import EMBEDDING_GROUP, collections_partitions
from orca_assets.writer_lock import one_writer_per_collection
from orca_core.asset_names import PGVECTOR_ASSET
from orca_resources.pgvector import PgVectorResource
from orca_resources.warehouse import WarehouseResource

CHECK_NAME = "pgvector_sync_check"

PGVECTOR_CHECK_SPECS = [
    dg.AssetCheckSpec(
        CHECK_NAME,
        asset=PGVECTOR_ASSET,
        description="After the sync, the table holds exactly the index's chunk ids: same row count and same md5 "
        "of the sorted ids.",
        partitions_def=collections_partitions,
    )
]


def drift_check_result(drift) -> dg.AssetCheckResult:
    """The check's verdict on a `Drift` (orca_resources/pgvector_sync.py)."""
    why = "row count and chunk-id checksum match the index" if drift.matches else (
        f"the table holds {drift.rows} rows, the index {drift.index_rows}; "
        f"checksums {'match' if drift.checksum == drift.index_checksum else 'differ'}"
    )
    return dg.AssetCheckResult(
        check_name=CHECK_NAME,
        passed=drift.matches,
        description=why,
        metadata={
            "rows": drift.rows,
            "index_rows": drift.index_rows,
            "checksum_match": drift.checksum == drift.index_checksum,
            "checksum": drift.checksum,
        },
    )


@dg.asset(
    partitions_def=collections_partitions,
    deps=[embedding_index],
    group_name=EMBEDDING_GROUP,
    kinds={"postgres"},
    check_specs=PGVECTOR_CHECK_SPECS,
    description="The served index as a PostgreSQL table `<schema>.<collection>` with an HNSW (cosine) index, "
    "kept in sync incrementally: only changed rows are written, a model change swaps in a rebuilt table.",
)
@one_writer_per_collection
def pgvector_table(context: dg.AssetExecutionContext, warehouse: WarehouseResource, pgvector: PgVectorResource):
    collection = context.partition_key
    started = time.perf_counter()
    index_path = warehouse.index_path(collection)
    if not index_path.exists():
        raise dg.Failure(f"{collection!r} has no served index yet: materialize embedding_index first")
    client = pgvector.client()
    before = client.drift(collection, index_path)
    if not before.matches:
        # Rows edited by hand are found by the sync's comparison; this only tells the log how far it drifted.
        context.log.warning(
            f"{collection}: the table holds {before.rows} rows, the index {before.index_rows} (checksum "
            f"{'matches' if before.checksum == before.index_checksum else 'differs'}); this sync repairs it"
        )
    result = client.sync(collection, index_path, log=lambda message: context.log.info(f"{collection}: {message}"))
    after = client.drift(collection, index_path)
    context.log.info(
        f"{collection}: {result.table} has {result.rows} rows; {result.upserted} upserted, {result.deleted} deleted"
        + (", rebuilt for another model" if result.rebuilt else "")
    )
    yield drift_check_result(after)
    yield dg.MaterializeResult(
        metadata={
            "dagster/row_count": result.rows,
            "table": result.table,
            "rows": result.rows,
            "upserted": result.upserted,
            "deleted": result.deleted,
            "rebuilt": result.rebuilt,
            "created": result.created,
            "drift_repaired": not before.matches,
            "seconds": round(time.perf_counter() - started, 3),
        }
    )
