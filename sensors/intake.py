"""`intake_sensor`: requests the REST intake queued become runs of `embed_collection_job`, one per collection.

Each tick reads the oldest queued requests (at most `MAX_QUEUED_ROWS`) and groups them by collection, so a
burst of posts becomes one run per collection, not one per document. A group is the collection's oldest
request plus the following ones that ask for the same embedding model (at most `MAX_REQUESTS_PER_RUN`, so
the `orca/request_ids` tag stays within PostgreSQL's index-row limit); the rest wait for a later tick.

The run key is the oldest request's id, so a request never runs twice; its tags name every request of
the group, which is how `intake_run_status_sensor` finds the run of each request. Rows are marked
`launched` in the same evaluation; one whose run was never created is put back in the queue by the status
sensor. The queue's `status` column is the real cursor; the sensor cursor only shows the last request seen.

Run config: `force` when any request of the group asks for it. A `model` override is applied as complete
resource config for the embedder, because Dagster replaces a Pythonic resource's whole config at launch
(a partial `{"model": ...}` would silently reset host, batch size, ... to their class defaults). When the
configured embedder has no such field (the hashing embedder) or a field cannot be carried over safely, the
requests are marked failed with the reason instead of running with another model than asked for.

Op-job kinds (`prepare_model`, `purge`) become runs of `prepare_model_job` and `purge_collection_job`; how
they are grouped and configured is in `sensors.intake_ops`. A collection's embed requests made after a
purge do not join a run ahead of it: they wait until the purge has been launched.
"""

from __future__ import annotations

import json
import re
from typing import Any

import dagster as dg

from orca_assets.jobs import embed_collection_job
from orca_assets.maintenance import purge_collection_job  # op-job kinds (issue 7)
from orca_assets.model_ops import prepare_model_job  # op-job kinds (issue 7)
from orca_assets.partitions import collections_partitions
from orca_resources.embedder import Embedder
from orca_resources.hashing_embedder import MODEL_NAME as HASHING_MODEL
from orca_resources.hashing_embedder import HashingEmbedderResource
from orca_resources.intake_queue import IntakeRequest
from orca_resources.intake_queue_resource import IntakeQueueResource
from orca_resources.ollama import same_model
from orca_resources.settings import is_valid_collection
from orca_resources.warehouse import WarehouseResource
from sensors.fingerprint import FINGERPRINT_TAG, SOURCE_TAG, fingerprint
from sensors.intake_ops import OP_KINDS, OpRequestRejected, op_group, op_run_request  # op-job kinds (issue 7)

MAX_QUEUED_ROWS = 500
MAX_RUNS_PER_TICK = 20
MAX_REQUESTS_PER_RUN = 64
REQUEST_TAG = "orca/request_id"
REQUEST_IDS_TAG = "orca/request_ids"
MODEL_TAG = "orca/model"
_SECRET_FIELD = re.compile(r"token|secret|password|api_?key|auth", re.IGNORECASE)


class RequestRejected(Exception):
    """A request that cannot become a run (bad collection, inapplicable model); the message is for the API user."""


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


def _groups(rows: list[IntakeRequest]) -> list[list[IntakeRequest]]:
    """Per collection (oldest first): its oldest request and the later ones asking for the same model."""
    by_collection: dict[str, list[IntakeRequest]] = {}
    for row in rows:
        by_collection.setdefault(row.collection, []).append(row)
    groups = []
    for members in by_collection.values():
        # ---- op-job kinds (issue 7): a purge is a barrier; requests after it wait until it is launched
        if members[0].kind in OP_KINDS:
            groups.append(op_group(members)[:MAX_REQUESTS_PER_RUN])
            continue
        members = members[: next((i for i, row in enumerate(members) if row.kind == "purge"), None)]
        # ---- end of op-job kinds
        model = members[0].payload.get("model") or None
        same = [row for row in members if (row.payload.get("model") or None) == model]
        groups.append(same[:MAX_REQUESTS_PER_RUN])
    return groups


def _run_config(group: list[IntakeRequest], resources: dict | None) -> dict:
    config: dict[str, Any] = {}
    if any(bool(row.payload.get("force")) for row in group):
        config["ops"] = {"embeddings": {"config": {"force": True}}}
    if resources:
        config["resources"] = resources
    return config


@dg.sensor(
    jobs=[embed_collection_job, prepare_model_job, purge_collection_job],
    minimum_interval_seconds=3,  # below the daemon's 5 s loop, so every loop picks up new requests
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Launches one run per collection for the requests the REST intake queued.",
)
def intake_sensor(
    context: dg.SensorEvaluationContext,
    intake_queue: IntakeQueueResource,
    warehouse: WarehouseResource,
    embedder: dg.ResourceParam[Embedder],
) -> dg.SensorResult:
    """One tick: group queued requests, reject what cannot run, request one run per group, mark them launched."""
    queue = intake_queue.queue()
    rows = queue.with_status(["queued"], limit=MAX_QUEUED_ROWS)
    if not rows:
        return dg.SensorResult(skip_reason="no queued intake requests", cursor=context.cursor)
    known = set(context.instance.get_dynamic_partitions(collections_partitions.name))
    new_partitions: list[str] = []
    run_requests: list[dg.RunRequest] = []
    launched: list[str] = []
    failed = 0
    for group in _groups(rows):
        if len(run_requests) >= MAX_RUNS_PER_TICK:
            break
        collection, ids = group[0].collection, [row.request_id for row in group]
        # ---- op-job kinds (issue 7)
        if group[0].kind in OP_KINDS:
            op_tags = {SOURCE_TAG: "intake", REQUEST_TAG: ids[0], REQUEST_IDS_TAG: ",".join(ids)}
            try:
                run_requests.append(op_run_request(group, op_tags, known, warehouse.root))
            except OpRequestRejected as error:
                queue.set_status(ids, "failed", error=str(error))
                context.log.warning(f"{len(ids)} {group[0].kind} request(s) failed: {error}")
                failed += len(ids)
                continue
            launched.extend(ids)
            context.log.info(f"{group[0].kind} {collection}: one run for {len(ids)} request(s), key {ids[0]}")
            continue
        # ---- end of op-job kinds
        model = group[0].payload.get("model") or None
        folder = warehouse.root / "inbox" / collection
        try:
            if not is_valid_collection(collection):
                raise RequestRejected(f"invalid collection name {collection!r}")
            if collection not in known and not folder.is_dir():
                raise RequestRejected(f"unknown collection {collection!r}: it has no inbox folder")
            resources = model_override(embedder, model)
        except RequestRejected as error:
            queue.set_status(ids, "failed", error=str(error))
            context.log.warning(f"{len(ids)} request(s) for {collection} failed: {error}")
            failed += len(ids)
            continue
        if collection not in known:
            new_partitions.append(collection)
            known.add(collection)
        tags = {
            SOURCE_TAG: "intake",
            REQUEST_TAG: ids[0],
            REQUEST_IDS_TAG: ",".join(ids),
            # What the run will read at the least, so the inbox sensor does not run the same files again.
            FINGERPRINT_TAG: fingerprint(folder).digest,
        }
        if resources:
            tags[MODEL_TAG] = model
        run_requests.append(
            dg.RunRequest(
                run_key=ids[0], job_name=embed_collection_job.name, partition_key=collection,
                run_config=_run_config(group, resources), tags=tags,
            )
        )
        launched.extend(ids)
        context.log.info(f"{collection}: one run for {len(ids)} request(s), key {ids[0]}")
    if launched:
        # Marked before the daemon creates the runs: a crash in between leaves them launched without a run,
        # which the status sensor notices and requeues.
        queue.mark_launched(launched, None)
    cursor = json.dumps({"last_request": rows[-1].request_id, "launched": len(launched), "failed": failed})
    return dg.SensorResult(
        run_requests=run_requests,
        dynamic_partitions_requests=(
            [collections_partitions.build_add_request(new_partitions)] if new_partitions else []
        ),
        cursor=cursor,
        skip_reason=None if run_requests else f"{failed} request(s) failed before launch",
    )
