"""Jobs over the embedding assets."""

import dagster as dg

from orca_assets.chunks import chunks
from orca_assets.documents import documents
from orca_assets.embeddings import embeddings
from orca_assets.index import embedding_index
from orca_assets.partitions import EMBEDDING_GROUP
from orca_core.tags import KIND_TAG

embedding_assets = [documents, chunks, embeddings, embedding_index]

embed_collection_job = dg.define_asset_job(
    name="embed_collection_job",
    # The group, resolved against the Definitions: the four assets (their checks with them) and, when
    # ORCA_PGVECTOR_URL adds it to the graph, the pgvector sink. `index_follows_inbox` (where the Definitions
    # have it) runs last, so a run that brings the index up to date also clears the collection's warning.
    selection=dg.AssetSelection.groups(EMBEDDING_GROUP),
    description="Bring one collection's index up to date: read, chunk, embed what changed, publish.",
    tags={KIND_TAG: "embed"},
)
