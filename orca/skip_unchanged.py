"""`orca materialize` leaves out the collections a run would not change (orca_assets/up_to_date.py says which).

A reindex of an unchanged corpus then costs a look per collection (milliseconds) instead of a run per collection
(Dagster's fixed cost, about half a second each even when every step finds nothing to do). `--rerun` runs them
anyway; `--force` always runs. When the look itself cannot be made (the embedder's server does not answer), every
collection runs and the run reports the problem as it would have.
"""

from __future__ import annotations

import dagster as dg
from rich.console import Console

from orca_core.asset_names import PGVECTOR_ASSET
from orca_core.settings import OrcaSettings


def up_to_date(settings: OrcaSettings, instance: dg.DagsterInstance, collections: list[str]) -> dict[str, str | None]:
    """Each collection -> why it needs a run, or None when a run would change nothing."""
    from orca_assets.up_to_date import stale_reason
    from orca_resources.embedders import build_embedder
    from orca_resources.errors import EmbedderError
    from orca_resources.warehouse import WarehouseResource

    warehouse = WarehouseResource.from_settings(settings)
    if warehouse.storage_url:
        return dict.fromkeys(collections, "its inbox is in object storage, which only a run lists")
    embedder = build_embedder(settings)
    try:
        info = embedder.model_info()
    except EmbedderError as error:
        return dict.fromkeys(collections, f"the embedder's model could not be asked: {error}")
    finally:
        close = getattr(embedder, "close", None)
        if close is not None:
            close()
    followers = (PGVECTOR_ASSET,) if settings.pgvector_url else ()
    return {name: stale_reason(name, warehouse, info, instance, followers=followers) for name in collections}


def drop_up_to_date(
    settings: OrcaSettings, instance: dg.DagsterInstance, collections: list[str], out: Console
) -> list[str]:
    """The collections that need a run; says which were left out."""
    reasons = up_to_date(settings, instance, collections)
    current = [name for name in collections if reasons[name] is None]
    if current:
        names = ", ".join(current)
        out.print(f"Up to date, not run: {names} (nothing changed since their last successful run; "
                  "--rerun runs them anyway).", highlight=False)
    return [name for name in collections if reasons[name] is not None]
