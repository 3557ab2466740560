"""The `collections` partitions: one dynamic partition per collection folder."""

import dagster as dg

collections_partitions = dg.DynamicPartitionsDefinition(name="collections")
