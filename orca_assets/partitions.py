"""The `collections` partitions: one dynamic partition per collection folder, and checks partitioned by them."""

import warnings

import dagster as dg

collections_partitions = dg.DynamicPartitionsDefinition(name="collections")

# The group of the assets `embed_collection_job` runs (orca_assets/jobs.py selects it).
EMBEDDING_GROUP = "embedding"
# The pool of the steps that call the embedding servers: the instance caps how many run at once (dagster.yaml).
OLLAMA_POOL = "ollama"


def collection_check_spec(name: str, asset: str, description: str, *, blocking: bool = False) -> dg.AssetCheckSpec:
    """A check of `asset` with one result per collection, as the webserver shows it on each partition.

    Partitioned checks are a preview feature in Dagster 1.13, relied on knowingly: Dagster is pinned, and
    tests/test_definitions.py checks that every Orca check is partitioned by collection, so an upgrade that
    changes the feature fails there. The notice is silenced here only, not for the rest of the process.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", message="Specifying a partitions_def on an AssetCheckSpec", category=dg.PreviewWarning
        )
        return dg.AssetCheckSpec(
            name, asset=asset, description=description, blocking=blocking, partitions_def=collections_partitions
        )
