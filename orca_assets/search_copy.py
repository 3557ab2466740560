"""Keeping the served index's search copy (orca_core/ann) in step, inside the `embedding_index` step.

In the index's own step rather than an asset of its own: the copy is part of serving the index, it costs no
extra process per run, and it is written under the same collection lock. It follows the published index, so
a failed check (nothing published) leaves it as it was; a run whose index is unchanged brings a copy that
lags (a crash between the two) up to date. Off when pgvector answers searches (ORCA_PGVECTOR_URL).
"""

from __future__ import annotations

import dagster as dg

from orca_core.ann.writer import update_search_copy
from orca_resources.warehouse import WarehouseResource


def sync_search_copy(context: dg.AssetExecutionContext, warehouse: WarehouseResource, collection: str) -> dict:
    """Update the copy from the served index; the materialization's metadata about it."""
    if not warehouse.search_copy:
        return {}
    update = update_search_copy(warehouse.index_path(collection), warehouse.search_dir(collection),
                                lambda line: context.log.info(f"{collection}: {line}"))  # fmt: skip
    return {
        "search_copy_rows_written": update.added,
        "search_copy_rows_deleted": update.deleted,
        "search_copy_rewritten": update.rewritten,
        "search_copy_segments": update.segments,
        "search_copy_seconds": round(update.seconds, 3),
        "search_graph_cpu_seconds": round(update.graph_cpu_seconds, 3),
    }
