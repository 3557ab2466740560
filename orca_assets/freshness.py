"""`index_follows_inbox`: a collection whose inbox changed, but whose index has not followed within the window.

Dagster's own freshness tools judge an asset by the age of its last materialization (any partition), which
cannot tell a quiet collection (old index, nothing to do) from a stuck one (new documents waiting). This check
compares the two times that matter, per collection:

- when the inbox last changed: the newest mtime of its documents and folders (a folder's mtime moves when an
  entry is added, renamed or deleted in it, so deletions count); hidden and temporary names are skipped, as
  the inbox sensor skips them;
- when the run that published the served index started (the index holds what the inbox held then).

It passes when that run started after the change, or when the change is younger than the window
(ORCA_FRESHNESS_MINUTES); otherwise it warns with how long the change has waited. `index_freshness_sensor`
(sensors/index_freshness.py) judges every collection each minute and runs `index_freshness_job` for a
collection whose verdict changed; every `embed_collection_job` run also evaluates it after publishing, and
"Execute" in the webserver runs it for one collection.
"""

import os
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import dagster as dg

from orca_assets.partitions import collection_check_spec
from orca_core.asset_names import INDEX_ASSET, INDEX_FOLLOWS_INBOX
from orca_core.names import is_ignored_name
from orca_core.tags import KIND_TAG
from orca_resources.warehouse import WarehouseResource

clock = time.time  # tests move time instead of waiting out the window

INDEX_FOLLOWS_INBOX_SPEC = collection_check_spec(
    INDEX_FOLLOWS_INBOX,
    INDEX_ASSET,
    "Warns when the collection's inbox changed more than ORCA_FRESHNESS_MINUTES ago and the served index was "
    "built before that change. Evaluated every minute by index_freshness_sensor.",
)


def latest_inbox_change(inbox: Path) -> float | None:
    """Newest mtime (Unix seconds) of the inbox folder, its sub-folders and its documents; None without it.

    Links are not followed (the documents asset reads them, but their own mtime is when they were placed).
    """
    try:
        newest = inbox.stat().st_mtime
    except OSError:
        return None
    stack = [inbox]
    while stack:
        folder = stack.pop()
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue  # removed during the walk: its parent's mtime tells
        for entry in entries:
            if is_ignored_name(entry.name):
                continue
            try:
                newest = max(newest, entry.stat(follow_symlinks=False).st_mtime)
                if entry.is_dir(follow_symlinks=False):
                    stack.append(Path(entry.path))
            except OSError:
                continue
    return newest


@dataclass(frozen=True)
class Freshness:
    """The two times the check compares, and its verdict."""

    collection: str
    inbox_changed: float | None  # None: no inbox folder
    index_built: float | None  # start of the run that published the served index; None: never published
    window_seconds: float
    now: float

    @property
    def waiting_seconds(self) -> float:
        """How long the inbox's last change has waited for an index built after it (0 when none waits)."""
        if self.inbox_changed is None or (self.index_built is not None and self.index_built >= self.inbox_changed):
            return 0.0
        return max(0.0, self.now - self.inbox_changed)

    @property
    def passed(self) -> bool:
        return self.waiting_seconds < self.window_seconds

    def description(self) -> str:
        minutes = self.window_seconds / 60
        if self.inbox_changed is None:
            return "no inbox folder: nothing for the index to follow"
        if not self.waiting_seconds:
            return "the served index was built after the inbox's last change"
        verdict = "within" if self.passed else "more than"
        return (f"the inbox changed {self.waiting_seconds / 60:.0f} min ago and the served index is older: "
                f"{verdict} the {minutes:g} min window")

    def metadata(self) -> dict[str, dg.MetadataValue]:
        values: dict[str, dg.MetadataValue] = {
            "waiting_seconds": dg.MetadataValue.float(round(self.waiting_seconds, 1)),
            "window_minutes": dg.MetadataValue.float(self.window_seconds / 60),
        }
        if self.inbox_changed is not None:
            values["inbox_changed"] = dg.MetadataValue.timestamp(self.inbox_changed)
        if self.index_built is not None:
            values["index_built"] = dg.MetadataValue.timestamp(self.index_built)
        return values


def index_build_times(instance: dg.DagsterInstance, collections: Iterable[str]) -> dict[str, float]:
    """Start time of the run that published each collection's served index (its materialization time when
    the run has none), read in three queries whatever the number of collections."""
    wanted = set(collections)
    key = dg.AssetKey(INDEX_ASSET)
    latest = instance.event_log_storage.get_latest_storage_id_by_partition(key, dg.DagsterEventType.ASSET_MATERIALIZATION)
    storage_ids = [storage_id for partition, storage_id in latest.items() if partition in wanted]
    if not storage_ids:
        return {}
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=key, storage_ids=storage_ids), limit=len(storage_ids)
    ).records
    runs = {
        record.dagster_run.run_id: record.start_time
        for record in instance.get_run_records(dg.RunsFilter(run_ids=list({r.run_id for r in records})))
    }
    built: dict[str, float] = {}
    for record in records:
        partition = record.partition_key
        if partition is not None:
            built[partition] = runs.get(record.run_id) or record.timestamp
    return built


def judge(collection: str, inbox: Path, index_built: float | None, window_minutes: float) -> Freshness:
    return Freshness(collection, latest_inbox_change(inbox), index_built, window_minutes * 60, clock())


CHECK_KEY = dg.AssetCheckKey(dg.AssetKey(INDEX_ASSET), INDEX_FOLLOWS_INBOX)

# The check alone, for one collection: what index_freshness_sensor runs when a collection's verdict changes.
index_freshness_job = dg.define_asset_job(
    "index_freshness_job",
    selection=dg.AssetSelection.checks(CHECK_KEY),
    description="Evaluate index_follows_inbox for one collection (index_freshness_sensor starts it).",
    tags={KIND_TAG: "freshness"},
)


def build_index_follows_inbox(window_minutes: float) -> dg.AssetChecksDefinition:
    """The check as "Execute" in the webserver runs it for one collection, with the window of the settings."""

    @dg.multi_asset_check(specs=[INDEX_FOLLOWS_INBOX_SPEC], name=INDEX_FOLLOWS_INBOX)
    def index_follows_inbox(
        context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource
    ) -> Iterable[dg.AssetCheckResult]:
        collection = context.partition_key
        built = index_build_times(context.instance, [collection]).get(collection)
        verdict = judge(collection, warehouse.layout.inbox(collection), built, window_minutes)
        yield dg.AssetCheckResult(
            check_name=INDEX_FOLLOWS_INBOX,
            asset_key=dg.AssetKey(INDEX_ASSET),
            passed=verdict.passed,
            severity=dg.AssetCheckSeverity.WARN,
            description=verdict.description(),
            metadata=verdict.metadata(),
        )

    return index_follows_inbox
