"""Names of Orca's assets and checks that code outside `orca_assets` reads from the Dagster instance.

The intake may not import the assets (ARCHITECTURE.md: arrows point one way), yet its metrics read their
materializations and check results: both sides take the names from here.
"""

EMBEDDINGS_ASSET = "embeddings"
INDEX_ASSET = "embedding_index"
# The index's PostgreSQL table, in the graph when ORCA_PGVECTOR_URL is set; `orca materialize` asks whether a
# collection's last run also synced it.
PGVECTOR_ASSET = "pgvector_table"
# The freshness check on INDEX_ASSET: warns when an inbox change waited too long for its index.
INDEX_FOLLOWS_INBOX = "index_follows_inbox"
