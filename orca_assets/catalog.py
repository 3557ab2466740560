"""What the webserver's catalog shows of each asset: owner, tags, kinds, code version and freshness policy.

Applied in one place to the assets `orca.definitions` assembles, because two of them depend on the settings
the code loads with: which embedder the vectors come from, and how often the reindex schedule runs.

- Owner: `team:orca`, the team that runs the pipeline (Dagster asks for an e-mail or `team:<name>`).
- Tags: `domain=search` on every asset, and `stage` (extract, chunk, embed, publish) for filtering the catalog.
- Kinds: `ollama` on `embeddings` only when Ollama computes the vectors (`numpy` for the offline embedder).
- Code versions, so that the webserver marks an index as stale when the code that made it changed: `documents`
  and `chunks` carry the chunker's version (`CHUNKER_VERSION`, bumped whenever extraction or chunking output
  changes), `embeddings` the embedder's, `embedding_index` both. The embedder's version is what is known when
  the code loads: the offline embedder's algorithm version and dimensions, or the Ollama model's name,
  dimensions and prefix (a new digest of the same model is found at run time and re-embeds by itself).
- Freshness policy on `embedding_index`: every reindex tick republishes each collection, so the asset is
  flagged when nothing was published for one reindex interval plus ORCA_FRESHNESS_MINUTES (daemon or schedule
  stopped). A policy judges an asset's last materialization in any partition, so the per-collection question
  (the inbox changed, the index did not follow) is the `index_follows_inbox` check (orca_assets/freshness.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

import dagster as dg
from dagster._utils.schedules import get_smallest_cron_interval

from orca_assets.text_splitter import CHUNKER_VERSION
from orca_core.settings import OrcaSettings
from orca_resources.hashing_embedder import HashingEmbedderResource
from orca_resources.ollama import OllamaResource

OWNERS = ["team:orca"]
DOMAIN_TAGS = {"domain": "search"}
STAGES = {"documents": "extract", "chunks": "chunk", "embeddings": "embed", "embedding_index": "publish"}
CHUNKER = f"chunker-{CHUNKER_VERSION}"
KIND_PREFIX = "dagster/kind/"  # kinds are stored as tags; `kinds` sets them


def embedder_version(embedder: OllamaResource | HashingEmbedderResource) -> str:
    """The embedder's identity as far as it is known without asking a server."""
    if isinstance(embedder, HashingEmbedderResource):
        info = embedder.embedder().model_info()
        return f"{info.name}-{info.digest.removeprefix('sha256:')[:12]}"
    parts = [f"ollama-{embedder.model}"]
    if embedder.dimensions:
        parts.append(f"d{embedder.dimensions}")
    if embedder.document_prefix is not None:
        parts.append(f"prefix={embedder.document_prefix!r}")
    return "-".join(parts)


def code_versions(embedder: OllamaResource | HashingEmbedderResource) -> dict[str, str]:
    embedding = embedder_version(embedder)
    return {"documents": CHUNKER, "chunks": CHUNKER, "embeddings": embedding, "embedding_index": f"{CHUNKER}+{embedding}"}


def index_freshness_policy(settings: OrcaSettings) -> dg.FreshnessPolicy:
    interval = get_smallest_cron_interval(settings.reindex_cron)
    return dg.FreshnessPolicy.time_window(fail_window=interval + timedelta(minutes=settings.freshness_minutes))


def catalogued(
    assets: Sequence[dg.AssetsDefinition], settings: OrcaSettings, embedder: OllamaResource | HashingEmbedderResource
) -> list[dg.AssetsDefinition]:
    """`assets` with the owner, tags, kinds, code versions and freshness policy described above."""
    versions = code_versions(embedder)
    offline = isinstance(embedder, HashingEmbedderResource)

    def describe(spec: dg.AssetSpec) -> dg.AssetSpec:
        name = spec.key.to_user_string()
        tags = {key: value for key, value in spec.tags.items() if not key.startswith(KIND_PREFIX)}  # kinds stay
        if name not in STAGES:
            return spec.replace_attributes(owners=OWNERS, tags={**tags, **DOMAIN_TAGS})
        extra: dict = {}
        if name == "embeddings" and offline:
            extra["kinds"] = {"numpy", "parquet"}
        if name == "embedding_index":
            extra["freshness_policy"] = index_freshness_policy(settings)
        return spec.replace_attributes(
            owners=OWNERS,
            tags={**tags, **DOMAIN_TAGS, "stage": STAGES[name]},
            code_version=versions[name],
            **extra,
        )

    return [asset.map_asset_specs(describe) for asset in assets]
