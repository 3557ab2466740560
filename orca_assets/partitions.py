"""The `collections` partitions: one dynamic partition per collection folder."""

import dagster as dg

collections_partitions = dg.DynamicPartitionsDefinition(name="collections")

# The group of the assets `embed_collection_job` runs (orca_assets/jobs.py selects it).
EMBEDDING_GROUP = "embedding"
