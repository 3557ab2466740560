"""`inbox_sensor`: folders dropped under `$ORCA_HOME/inbox/` become partitions, and changes become runs.

Each tick fingerprints every collection folder (no file is read) and compares it with the digest in the cursor.
The fingerprints come from `sensors.folder_cache`: per-folder listings kept in this process between ticks, so
an unchanged tick stats each folder and re-lists only folders that changed (new, deleted or renamed entries,
atomic saves), changed recently, or whose turn it is in a rotating sweep. A file rewritten in place, without
a rename, is seen by that sweep within `ORCA_INBOX_SWEEP_TICKS` ticks (default 8) rather than on the next
one; the first tick of a fresh process walks everything.

A collection whose fingerprint moved gets ONE run, keyed by the change (`<collection>:<hash of previous and
new digest>`), once the change has settled:

- nothing in it (file, or folder for deletions) changed during the last `SETTLE_SECONDS`, by the files' own
  mtimes and ctimes (a ctime cannot be set back, so a preserved mtime does not hide a write), and
- an exact re-walk at least `CONFIRM_SECONDS` after the tick's first look finds the same fingerprint, or the
  previous tick already saw it.

A tick that finds a change waits for both within itself (at most `SETTLE_SECONDS`), instead of leaving them to
the next tick 5 s later: a dropped file runs about 3-4 s after it lands. The wait is safe against a file still
being written in place, as long as its writer does not stall for longer than `SETTLE_SECONDS`; a writer that
may stall should write under a temporary name and rename (as the intake, rsync and most tools do), because
temporary and hidden names are never read. Should a stalled file be run anyway, nothing is lost: its next
write is a change, and the next run reads the whole file.

With ORCA_STORAGE_URL=s3://bucket/prefix the inbox is on the object store: the fingerprints come from its
listings instead (`sensors.s3_inbox`, which describes its settle rule); cursor, run keys, tags, the intake
deferral and the limits below are the same.

Hidden and temporary names (`is_ignored_name`) are not part of the fingerprint, so sidecars under `.orca/`
and files still being written under a temporary name never trigger anything.

Runs of the REST intake cover the same folders. A change is not run again when
- the collection has a request still queued in the intake queue (its coming run will read the inbox later), or
- the newest inbox/intake run of the collection was requested for exactly this fingerprint (both sensors tag
  their runs with `orca/inbox_fingerprint`).

Cursor (JSON, a few dozen bytes per collection): `{"v": 2, "c": {name: {"d": digest acted on, "n": files,
"p": digest seen last tick, when different}}, "r": collection to resume a walk cut short, "bad": digest of
the invalid or linked folder names already reported, "over": the same for folders past ORCA_MAX_COLLECTIONS}`. A cursor of another version is read as empty, which costs one
(incremental, idempotent) run per collection.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone

import dagster as dg

from orca_assets.jobs import embed_collection_job
from orca_assets.partitions import collections_partitions
from orca_core.layout import COLLECTION_RULE, Layout
from orca_core.tags import FINGERPRINT_TAG, PARTITION_TAG, SOURCE_INBOX, SOURCE_INTAKE, SOURCE_TAG
from orca_resources.intake_queue_resource import IntakeQueueResource
from orca_resources.warehouse import WarehouseResource
from sensors.cursors import read_versioned
from sensors.fingerprint import EMPTY, EMPTY_DIGEST, Fingerprint, change_key, text_digest
from sensors.folder_cache import InboxCache, inbox_cache

SETTLE_SECONDS = 3.0
CONFIRM_SECONDS = 1.0
MAX_RUNS_PER_TICK = 20
WALK_BUDGET_SECONDS = 30.0  # half the sensor timeout; a cut walk resumes where it stopped next tick
QUEUED_DEFER_SECONDS = 600  # an intake request queued longer is stuck (intake sensor off): stop waiting for it
CURSOR_VERSION = 2  # 2: digests composed per folder (sensors.fingerprint)

clock = time.time  # tests move time instead of sleeping
pause = time.sleep


def _load_cursor(raw: str | None) -> dict:
    state = read_versioned(raw, CURSOR_VERSION)  # an unreadable cursor only costs one extra (incremental, idempotent) run per collection
    entries = dict(state.get("c") or {})
    return {"v": CURSOR_VERSION, "c": entries, "r": state.get("r"), "bad": state.get("bad"), "over": state.get("over")}


def _walk(
    fingerprint: Callable[[str], Fingerprint], names: list[str], resume: str | None
) -> tuple[dict[str, Fingerprint], str | None]:
    """Fingerprints of `names` starting at `resume`, until the time budget runs out; (found, where to resume)."""
    start = names.index(resume) if resume in names else 0
    ordered = names[start:] + names[:start]
    started = time.monotonic()
    found: dict[str, Fingerprint] = {}
    for name in ordered:
        if found and time.monotonic() - started > WALK_BUDGET_SECONDS:
            return found, name  # at least one collection per tick, so a huge one cannot stall the rest
        found[name] = fingerprint(name)
    return found, None


def _covered_by_latest_run(instance: dg.DagsterInstance, collection: str, digest: str) -> bool:
    """True when the newest inbox or intake run of `collection` was requested for the state `digest`."""
    runs = instance.get_runs(
        dg.RunsFilter(
            job_name=embed_collection_job.name,
            tags={PARTITION_TAG: collection, SOURCE_TAG: [SOURCE_INBOX, SOURCE_INTAKE]},
        ),
        limit=1,
    )
    return bool(runs) and runs[0].tags.get(FINGERPRINT_TAG) == digest


def _queued_collections(context: dg.SensorEvaluationContext, intake_queue: IntakeQueueResource) -> set[str]:
    since = datetime.now(timezone.utc) - timedelta(seconds=QUEUED_DEFER_SECONDS)
    try:
        return intake_queue.queue().queued_collections(since)
    except Exception as error:  # noqa: BLE001 - the inbox must keep working when the queue store does not
        context.log.warning(f"could not read the intake queue ({error}); a posted change may run twice")
        return set()


def _confirm(
    cache: InboxCache, layout: Layout, changed: dict[str, Fingerprint], entries: dict[str, dict], queued: set[str]
) -> int:
    """Wait within the tick until the fresh changes are quiet, looking at them exactly before and after; the
    clock after the wait (ns).

    Both looks re-list every folder of the collection (the tick's own look may reuse listings an in-place edit
    has not reached yet). A change found the same by both is marked as seen (`p`), as if by a previous tick; one
    that moved keeps its newest fingerprint in `changed` and waits for a later tick.
    """
    now_ns = int(clock() * 1e9)
    fresh = [name for name, fp in changed.items()
             if name not in queued and entries.get(name, {}).get("p") != fp.digest]
    if not fresh:
        return now_ns
    before = {name: cache.fingerprint(layout.inbox(name), SETTLE_SECONDS, exact=True) for name in fresh}
    quiet_at = max(fp.newest_change_ns for fp in before.values()) + int(SETTLE_SECONDS * 1e9)
    pause(min(max(quiet_at - now_ns, int(CONFIRM_SECONDS * 1e9)), int(SETTLE_SECONDS * 1e9)) / 1e9)
    for name in fresh:
        after = cache.fingerprint(layout.inbox(name), SETTLE_SECONDS, exact=True)
        entry = entries.get(name, {"d": EMPTY_DIGEST})
        if after.digest == entry["d"]:
            del changed[name]  # the tick's look was stale or the change was undone: nothing to run
            continue
        if after.digest == before[name].digest:
            entries.setdefault(name, {"d": EMPTY_DIGEST, "n": 0})["p"] = after.digest
        changed[name] = after
    return int(clock() * 1e9)


@dg.sensor(
    job=embed_collection_job,
    minimum_interval_seconds=4,  # the daemon loops every 5 s; a 5 s minimum would land on every other loop
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Registers new inbox folders as collections and runs a collection once its files changed and settled.",
)
def inbox_sensor(
    context: dg.SensorEvaluationContext, warehouse: WarehouseResource, intake_queue: IntakeQueueResource
) -> dg.SensorResult:
    """One tick: fingerprint every collection folder, register new ones, request a run per settled change."""
    state = _load_cursor(context.cursor)
    entries: dict[str, dict] = state["c"]
    layout = warehouse.layout
    inbox = layout.inbox_root
    remote = None
    if warehouse.storage.remote:
        from sensors.s3_inbox import S3Inbox  # boto3 is imported only where an object store is used

        remote = S3Inbox(warehouse.storage)
        folders = remote.collection_folders()
        if folders is None:  # a wrong bucket or prefix must not read as "every collection was deleted" either
            return dg.SensorResult(skip_reason=f"nothing at all under {remote.where}", cursor=context.cursor)
    elif not inbox.is_dir():
        # An unmounted or misnamed ORCA_HOME must not read as "every collection was deleted".
        return dg.SensorResult(skip_reason=f"no inbox folder at {inbox}", cursor=context.cursor)
    else:
        folders = layout.collection_folders()
    names, invalid = folders.valid, folders.invalid

    bad = text_digest("\n".join(invalid) + "\0" + "\n".join(folders.linked))
    if (invalid or folders.linked) and bad != state["bad"]:  # said once per change, not every tick
        if invalid:
            context.log.warning(
                f"ignoring {len(invalid)} inbox folder(s) that are not valid collection names "
                f"({COLLECTION_RULE}): {', '.join(invalid[:20])}"
            )
        if folders.linked:
            context.log.warning(
                f"ignoring {len(folders.linked)} inbox folder(s) that are symbolic links: "
                f"{', '.join(folders.linked[:20])}; set ORCA_INBOX_FOLLOW_SYMLINKS=1 to index what they point to"
            )
    state["bad"] = bad

    known = set(context.instance.get_dynamic_partitions(collections_partitions.name))
    new_partitions = [name for name in names if name not in known]
    room = max(0, warehouse.max_collections - len(known))
    if over := new_partitions[room:]:
        # Each collection is a partition with runs of its own: folders past ORCA_MAX_COLLECTIONS wait.
        new_partitions = new_partitions[:room]
        names = [name for name in names if name not in over]
        if text_digest("\n".join(over)) != state.get("over"):
            context.log.warning(
                f"not registering {len(over)} inbox folder(s) past ORCA_MAX_COLLECTIONS={warehouse.max_collections}: "
                f"{', '.join(over[:20])}; purge collections or raise the limit"
            )
    state["over"] = text_digest("\n".join(over)) if over else None

    if remote is not None:
        observed, state["r"] = _walk(remote.fingerprint, names, state["r"])
    else:
        cache = inbox_cache(inbox, warehouse.inbox_sweep_ticks)
        cache.begin_tick()
        # Folders changed within the settle time are re-listed every tick: the settle rule judges fresh data.
        observed, state["r"] = _walk(
            lambda name: cache.fingerprint(layout.inbox(name), quiet_seconds=SETTLE_SECONDS), names, state["r"]
        )
        if state["r"] is None:
            cache.retain(layout.inbox(name) for name in names)
    for gone in [name for name in entries if name not in names]:
        if state["r"] is None:  # only a complete walk proves a folder is gone
            observed[gone] = EMPTY

    changed = {name: fp for name, fp in observed.items() if fp.digest != entries.get(name, {}).get("d", EMPTY_DIGEST)}
    queued = _queued_collections(context, intake_queue) if changed else set()
    if remote is not None:  # settled once seen the same twice, or quiet by its objects' times (s3_inbox)
        remote.confirm(changed, entries, queued, clock=clock, pause=pause,
                       settle_seconds=SETTLE_SECONDS, confirm_seconds=CONFIRM_SECONDS)  # fmt: skip
    else:
        now_ns = _confirm(cache, layout, changed, entries, queued)
    run_requests: list[dg.RunRequest] = []
    waiting: list[str] = []
    for name, fp in sorted(changed.items()):
        entry = entries.setdefault(name, {"d": EMPTY_DIGEST, "n": 0})
        stable = entry.get("p") == fp.digest
        entry["p"] = fp.digest
        if not (stable and (remote is not None or fp.settled(now_ns, SETTLE_SECONDS))) or name in queued:
            waiting.append(name)  # still being written, or an intake run is about to read it
            continue
        if name not in known and name not in new_partitions:
            context.log.debug(f"{name}: removed before it became a collection; nothing to clean up")
        elif _covered_by_latest_run(context.instance, name, fp.digest):
            context.log.info(f"{name}: change already covered by the latest intake/inbox run")
        elif len(run_requests) < MAX_RUNS_PER_TICK:
            key = change_key(name, entry["d"], fp.digest)
            run_requests.append(
                dg.RunRequest(
                    run_key=key,
                    partition_key=name,
                    tags={SOURCE_TAG: SOURCE_INBOX, FINGERPRINT_TAG: fp.digest},
                )
            )
            context.log.info(f"{name}: {entry['n']} -> {fp.files} files, requesting run {key}")
        else:
            waiting.append(name)  # over this tick's budget: next tick, with its fingerprint still stable
            continue
        entry.update(d=fp.digest, n=fp.files)
        del entry["p"]

    for name, fp in observed.items():
        entry = entries.get(name)
        if entry is None:
            continue
        if name not in changed:
            entry.pop("p", None)  # changed and changed back between ticks: nothing pending any more
        if fp is EMPTY and entry["d"] == EMPTY_DIGEST:
            del entries[name]  # a removed folder whose emptying has been handled

    summary = f"{len(run_requests)} run(s) requested, {len(waiting)} collection(s) waiting"
    if new_partitions:
        summary += f", {len(new_partitions)} new collection(s): {', '.join(new_partitions[:10])}"
    if state["r"]:
        summary += f"; walk stopped at {state['r']!r} after {WALK_BUDGET_SECONDS:.0f}s, resuming next tick"
    if remote is not None:
        summary += remote.summary()
    else:
        stats = cache.stats
        summary += (
            f"; {stats.folders} folder(s) checked, {stats.listed} re-listed as new or changed, "
            f"{stats.swept} by the sweep, {stats.files} file(s) stat'ed"
        )
    return dg.SensorResult(
        run_requests=run_requests,
        dynamic_partitions_requests=(
            [collections_partitions.build_add_request(new_partitions)] if new_partitions else []
        ),
        cursor=json.dumps(state, separators=(",", ":"), sort_keys=True),
        skip_reason=None if run_requests or new_partitions else summary,
    )
