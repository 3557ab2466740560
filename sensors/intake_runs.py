"""How each kind of intake request becomes a run: one table from request kind to job, grouping and run request.

- `documents`, `delete`, `embed`, `reindex`: one run of `embed_collection_job` per collection, for its oldest
  request and the following ones that ask for the same embedding model, with `force` when any asks for it.
  A `model` override is applied as complete resource config for the embedder, because Dagster replaces a
  Pythonic resource's whole config at launch (a partial `{"model": ...}` would silently reset host, batch
  size, ... to their class defaults). When the configured embedder has no such field (the hashing embedder)
  or a field cannot be carried over safely, the requests fail with the reason instead of running with
  another model than asked for.
- `purge`: one run of `purge_collection_job` for the purges queued in a row at the head of the collection's
  requests (`delete_inbox` when any asks), for the collection's partition (registered first if the folder
  has none yet), so dagster.yaml's per-partition limit keeps it and the collection's embed runs one at a time.
- `prepare_model` (no collection): every queued one shares one run of `prepare_model_job`, with
  `force_pull` when any asks for it.

Requests of a collection queued after one of another job wait for a later tick, so they run after it, in
the order they were made.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from itertools import takewhile
from typing import Any

import dagster as dg

from orca_assets.jobs import embed_collection_job
from orca_assets.prepare_model_job import prepare_model_job
from orca_assets.purge_collection_job import purge_collection_job
from orca_core.layout import Layout, is_valid_collection
from orca_core.model_names import same_model
from orca_core.storage import Storage
from orca_core.tags import FINGERPRINT_TAG, MODEL_TAG
from orca_resources.hashing_embedder import MODEL_NAME as HASHING_MODEL
from orca_resources.hashing_embedder import HashingEmbedderResource
from orca_resources.intake_queue import IntakeRequest
from sensors.fingerprint import EMPTY, fingerprint

MAX_REQUESTS_PER_RUN = 64  # keeps the `orca/request_ids` tag within PostgreSQL's index-row limit
# A purge launched through the queue cannot overlap an embed run of its collection (the tag limit); this
# only covers runs outside the queue, such as `orca materialize` executing in its own process.
PURGE_WAIT_SECONDS = 300
_SECRET_FIELD = re.compile(r"token|secret|password|api_?key|auth", re.IGNORECASE)


class RequestRejected(Exception):
    """A request that cannot become a run (bad collection, inapplicable model); the message is for the API user."""


@dataclass(frozen=True)
class Launch:
    """What a run request may depend on besides its requests: registered collections, storage, the embedder."""

    known: set[str]
    layout: Layout
    embedder: Any
    storage: Storage | None = None  # an object store's inbox, when ORCA_STORAGE_URL names one

    def inbox_digest(self, collection: str) -> str | None:
        """The fingerprint digest of the collection's inbox as it is now; None when it has no inbox."""
        if self.storage is not None and self.storage.remote:
            from sensors.s3_inbox import S3Inbox  # boto3 only with an object store

            found = S3Inbox(self.storage).fingerprint(collection)
            return None if found is EMPTY else found.digest
        folder = self.layout.inbox(collection)
        return fingerprint(folder).digest if folder.is_dir() else None

    def has_collection(self, collection: str) -> bool:
        if self.storage is not None and self.storage.remote:
            return collection in self.storage.collection_names()
        return self.layout.has_collection(collection)


@dataclass(frozen=True)
class RequestKind:
    """A kind of request: the job that serves it, which requests share a run, and the run request."""

    job: dg.JobDefinition
    select: Callable[[list[IntakeRequest]], list[IntakeRequest]]  # of the head's run of requests of this job
    run_request: Callable[[list[IntakeRequest], dict[str, str], Launch], dg.RunRequest]


def model_override(embedder: Any, model: str | None) -> dict | None:
    """The embedder resource config that runs with `model`, None when no override is needed, or
    RequestRejected saying why it cannot be applied."""
    if not model:
        return None
    fields = getattr(type(embedder), "model_fields", {})
    if "model" not in fields:
        if isinstance(embedder, HashingEmbedderResource) and model == HASHING_MODEL:
            return None
        raise RequestRejected(
            f"model override {model!r} is not supported: this Orca runs the offline hashing embedder "
            "(ORCA_EMBEDDER=hashing), which has a single model; switch to ORCA_EMBEDDER=ollama to choose models"
        )
    if same_model(model, embedder.model):
        return None
    config: dict[str, Any] = {}
    for name in fields:
        value = getattr(embedder, name)
        if value is None:
            continue
        if _SECRET_FIELD.search(name) or not isinstance(value, (str, int, float, bool)):
            # Carrying it over would copy a secret into run config (shown in the UI) or a value config
            # cannot express; leaving it out would reset it. Neither is a safe override.
            raise RequestRejected(
                f"model override {model!r} cannot be applied safely to the configured embedder (field {name!r}); "
                "change ORCA_EMBED_MODEL instead"
            )
        config[name] = value
    config["model"] = model
    return {"embedder": {"config": config}}


def _any(group: list[IntakeRequest], option: str) -> bool:
    return any(bool(row.payload.get(option)) for row in group)


def _same_model(rows: list[IntakeRequest]) -> list[IntakeRequest]:
    model = rows[0].payload.get("model") or None
    return [row for row in rows if (row.payload.get("model") or None) == model]


def _embed_run(group: list[IntakeRequest], tags: dict[str, str], launch: Launch) -> dg.RunRequest:
    collection, model = group[0].collection, group[0].payload.get("model") or None
    if not is_valid_collection(collection):
        raise RequestRejected(f"invalid collection name {collection!r}")
    digest = launch.inbox_digest(collection)
    if collection not in launch.known and digest is None:
        raise RequestRejected(f"unknown collection {collection!r}: it has no inbox folder")
    resources = model_override(launch.embedder, model)
    # What the run will read at the least, so the inbox sensor does not run the same files again.
    tags = {**tags, FINGERPRINT_TAG: digest or EMPTY.digest, **({MODEL_TAG: model} if resources else {})}
    config: dict[str, Any] = {"ops": {"embeddings": {"config": {"force": True}}}} if _any(group, "force") else {}
    if resources:
        config["resources"] = resources
    return dg.RunRequest(
        run_key=group[0].request_id, job_name=embed_collection_job.name, partition_key=collection,
        run_config=config, tags=tags,
    )


def _purge_run(group: list[IntakeRequest], tags: dict[str, str], launch: Launch) -> dg.RunRequest:
    collection = group[0].collection
    if not is_valid_collection(collection):
        raise RequestRejected(f"invalid collection name {collection!r}")
    if collection not in launch.known and not launch.has_collection(collection):
        raise RequestRejected(f"unknown collection {collection!r}: nothing to purge")
    config = {"delete_inbox": _any(group, "delete_inbox"), "wait_seconds": PURGE_WAIT_SECONDS}
    return dg.RunRequest(
        run_key=group[0].request_id, job_name=purge_collection_job.name, partition_key=collection,
        run_config={"ops": {"wait_until_collection_idle": {"config": config}}}, tags=tags,
    )


def _prepare_model_run(group: list[IntakeRequest], tags: dict[str, str], launch: Launch) -> dg.RunRequest:
    config = {"ops": {"pull_model": {"config": {"force_pull": True}}}} if _any(group, "force_pull") else {}
    return dg.RunRequest(run_key=group[0].request_id, job_name=prepare_model_job.name, run_config=config, tags=tags)


EMBED = RequestKind(embed_collection_job, _same_model, _embed_run)
KINDS: dict[str, RequestKind] = {
    "documents": EMBED,
    "delete": EMBED,
    "embed": EMBED,
    "reindex": EMBED,
    "purge": RequestKind(purge_collection_job, lambda rows: rows, _purge_run),
    "prepare_model": RequestKind(prepare_model_job, lambda rows: rows, _prepare_model_run),
}


def kind_of(row: IntakeRequest) -> RequestKind:
    return KINDS.get(row.kind, EMBED)


def group_requests(rows: list[IntakeRequest]) -> list[list[IntakeRequest]]:
    """Queued requests (oldest first) grouped into runs: per collection, its oldest request and those that
    share its run; requests after one of another job wait for a later tick."""
    by_collection: dict[str, list[IntakeRequest]] = {}
    for row in rows:
        by_collection.setdefault(row.collection, []).append(row)
    groups = []
    for members in by_collection.values():
        kind = kind_of(members[0])
        in_a_row = list(takewhile(lambda row: kind_of(row).job is kind.job, members))
        groups.append(kind.select(in_a_row)[:MAX_REQUESTS_PER_RUN])
    return groups
