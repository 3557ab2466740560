"""The intake's op-job kinds as runs: `prepare_model` and `purge` requests become run requests here.

`intake_sensor` groups the queue's rows and calls `op_run_request` for a group of these kinds:

- `prepare_model` (no collection): every queued one shares one run of `prepare_model_job`, with
  `force_pull` when any request asks for it.
- `purge`: one run of `purge_collection_job` per collection, for the purges queued in a row at the head of
  that collection's requests (`delete_inbox` when any asks). The run carries `dagster/partition=<collection>`
  so dagster.yaml's per-partition limit keeps it and the collection's embed runs one at a time; requests
  queued after the purge wait for a later tick, so they run after it, in the order they were made.

Tags as for embed runs (`orca/source`, `orca/request_id`, `orca/request_ids`), so `intake_run_status_sensor`
follows these runs to their end like any other.
"""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from orca_assets.maintenance import PARTITION_TAG, purge_collection_job
from orca_assets.model_ops import prepare_model_job
from orca_resources.intake_queue import IntakeRequest
from orca_resources.settings import is_valid_collection

OP_KINDS = frozenset({"prepare_model", "purge"})
# A purge launched through the queue cannot overlap an embed run of its collection (the tag limit); this
# only covers runs outside the queue, such as `orca materialize` executing in its own process.
PURGE_WAIT_SECONDS = 300


class OpRequestRejected(Exception):
    """A prepare_model or purge request that cannot become a run; the message is for the API user."""


def op_group(members: list[IntakeRequest]) -> list[IntakeRequest]:
    """The requests that share a run with `members[0]` (oldest first), when it is of an op kind."""
    head = members[0]
    if head.kind == "prepare_model":
        return [row for row in members if row.kind == "prepare_model"]
    group = []
    for row in members:  # only the purges in a row: what was asked after the first non-purge runs after it
        if row.kind != head.kind:
            break
        group.append(row)
    return group


def op_run_request(
    group: list[IntakeRequest], tags: dict[str, str], known: set[str], root: Path
) -> dg.RunRequest:
    """The run request for a group of one op kind; OpRequestRejected when it cannot run."""
    key = group[0].request_id
    if group[0].kind == "prepare_model":
        force = any(bool(row.payload.get("force_pull")) for row in group)
        config = {"ops": {"pull_model": {"config": {"force_pull": True}}}} if force else {}
        return dg.RunRequest(run_key=key, job_name=prepare_model_job.name, run_config=config, tags=tags)
    collection = group[0].collection
    if not is_valid_collection(collection):
        raise OpRequestRejected(f"invalid collection name {collection!r}")
    exists = (root / "inbox" / collection).is_dir() or (root / "warehouse" / collection).is_dir()
    if collection not in known and not exists:
        raise OpRequestRejected(f"unknown collection {collection!r}: nothing to purge")
    config = {
        "collection": collection,
        "delete_inbox": any(bool(row.payload.get("delete_inbox")) for row in group),
        "wait_seconds": PURGE_WAIT_SECONDS,
    }
    return dg.RunRequest(
        run_key=key,
        job_name=purge_collection_job.name,
        run_config={"ops": {"wait_until_collection_idle": {"config": config}}},
        tags={**tags, PARTITION_TAG: collection},
    )
