"""`inbox_sensor`'s fingerprints when the inbox is on an object store (ORCA_STORAGE_URL=s3://bucket/prefix).

The collections are the "folders" of one delimited listing of `inbox/` (`Objects.folders`); names that are not
valid collection names are reported like the local invalid folders, hidden and temporary ones are left out.
Each collection's fingerprint comes from one paginated listing of `inbox/<collection>/` and reads no object:
a digest of the sorted (key, size, ETag, LastModified) of every object whose key a run would pull
(`local_name`) and read (not `is_ignored_name`), so `.orca/sources/` records, temporary names and folder
markers never trigger anything. ETag and size say whether the content changed (LastModified has a resolution
of one second, too coarse to tell two writes apart); LastModified is in the digest too, as ctime is in the
local one, so that every new write makes a new state: a collection that goes A -> B -> A -> B by deleting and
re-uploading the same file gets a new run key for each change instead of one Dagster already used.

Settle rule. An object appears whole in one PUT (the intake writes each document that way, as do the usual
upload tools), so nothing is ever half-written; what still needs settling is a batch of uploads, which should
become one run rather than one per object. A change is requested once it is

- quiet: its newest LastModified (plus the one second of resolution) is at least `SETTLE_SECONDS` old by the
  sensor's clock, and it has no fewer objects than the state last acted on (a deletion carries no time, so a
  change that removed objects is never called quiet by times), or
- confirmed: a second listing at least `CONFIRM_SECONDS` after the tick's first look (within the same tick,
  through the sensor's patchable `pause`), or the previous tick, found the same fingerprint.

As locally, a tick that finds a fresh change settles it within itself instead of leaving it to the next tick,
but it only waits `CONFIRM_SECONDS` (not until the change is quiet): with no partial object to fear, a listing
that did not move for a second means the batch paused, and a batch cut by a longer pause costs one extra
(incremental) run, never a lost change. A confirming listing that moved keeps its newest fingerprint for the
next tick, which runs it if it is still the same. The object store's clock stamps LastModified: a store
clock behind the sensor's can only make a change look quiet early (one extra run), one ahead only sends it
through the confirming listing.

Bounded work: collections are listed one after the other until `WALK_BUDGET_SECONDS` is spent (at least one per
tick), and the next tick resumes at the first one not listed (`r` in the cursor), as the local walk does. Each
tick lists every object, one request per 1,000, and keeps nothing between ticks: the listing is the cost (an
unchanged tick over 100,000 objects costs about 1.1 times a bare paginated listing of them, benchmark "4 sensor
on S3"), and most of the listing's own time is botocore parsing each object's LastModified.

A store with nothing at all under the prefix (a wrong bucket or prefix, rather than every collection removed)
is reported and skipped, so that it does not read as every collection having been deleted.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass

from orca_core.layout import INBOX_DIR, CollectionFolders, is_valid_collection
from orca_core.names import is_ignored_name
from orca_core.s3_objects import local_name
from orca_core.s3_storage import S3Storage
from sensors.fingerprint import DIGEST_CHARS, EMPTY, EMPTY_DIGEST, Fingerprint

LAST_MODIFIED_RESOLUTION_NS = 1_000_000_000  # S3 gives LastModified in whole seconds


@dataclass
class ListStats:
    """What the last tick listed, for the sensor's summary and the benchmark."""

    collections: int = 0  # collection listings, confirming ones included
    objects: int = 0  # objects listed
    skipped: int = 0  # of which not documents: ignored or unsafe names, folder markers


class S3Inbox:
    """The inbox under one `S3Storage`'s prefix, listed for one tick."""

    def __init__(self, storage: S3Storage):
        self.storage = storage
        self.objects = storage.objects
        self.root = self.objects.key(INBOX_DIR)
        self.stats = ListStats()

    @property
    def where(self) -> str:
        return f"s3://{self.objects.bucket}/{self.root}/"

    def collection_folders(self) -> CollectionFolders | None:
        """The inbox's collections (and invalid names) from one delimited listing; None when the store holds
        nothing at all under its prefix."""
        names = self.objects.folders(self.root)
        if not names and not self.objects.has_any(self.objects.key()):
            return None
        valid = sorted(name for name in names if is_valid_collection(name))
        invalid = sorted(name for name in names if not is_valid_collection(name) and not is_ignored_name(name))
        return CollectionFolders(valid, invalid)

    def fingerprint(self, collection: str) -> Fingerprint:
        """List `inbox/<collection>/` now and digest its documents' keys, sizes, ETags and times (exact)."""
        lines: list[str] = []
        newest = 0.0
        listed = 0
        for item in self.objects.list(self.storage.inbox_folder(collection)):
            listed += 1
            name = item.name
            if is_ignored_name(name) or local_name(name) is None:
                continue
            lines.append(f"{name}\0{item.size}\0{item.etag}\0{int(item.modified)}\n")
            if item.modified > newest:
                newest = item.modified
        self.stats.collections += 1
        self.stats.objects += listed
        self.stats.skipped += listed - len(lines)
        if not lines:
            return EMPTY  # a "folder" is only ever its objects' keys: with none left, the collection is gone
        # Listings come in key (UTF-8 byte) order already; sorting the lines makes the digest independent of it.
        lines.sort()
        hasher = hashlib.blake2b(digest_size=DIGEST_CHARS // 2)
        for line in lines:
            hasher.update(line.encode("utf-8", "surrogateescape"))
        return Fingerprint(hasher.hexdigest(), len(lines), int(newest * 1e9) + LAST_MODIFIED_RESOLUTION_NS)

    def confirm(
        self,
        changed: dict[str, Fingerprint],
        entries: dict[str, dict],
        queued: set[str],
        *,
        clock: Callable[[], float],
        pause: Callable[[float], None],
        settle_seconds: float,
        confirm_seconds: float,
    ) -> None:
        """Settle the fresh changes within the tick (see the module docstring): mark each one found quiet, or
        the same by a second listing `confirm_seconds` later, as seen (`p`), as if by a previous tick. One that
        moved keeps its newest fingerprint in `changed` and waits for a later tick; one back at the state
        last acted on is dropped."""
        now_ns = int(clock() * 1e9)
        waiting: list[str] = []
        for name, fp in changed.items():
            entry = entries.get(name, {})
            if name in queued or entry.get("p") == fp.digest:
                continue  # an intake run is coming, or the previous tick saw it already
            if fp.settled(now_ns, settle_seconds) and fp.files >= entry.get("n", 0):
                entries.setdefault(name, {"d": EMPTY_DIGEST, "n": 0})["p"] = fp.digest
            else:
                waiting.append(name)
        if not waiting:
            return
        pause(confirm_seconds)
        for name in waiting:
            after = self.fingerprint(name)
            entry = entries.get(name, {"d": EMPTY_DIGEST})
            if after.digest == entry["d"]:
                del changed[name]  # undone during the wait: nothing to run
                continue
            if after.digest == changed[name].digest:
                entries.setdefault(name, {"d": EMPTY_DIGEST, "n": 0})["p"] = after.digest
            changed[name] = after

    def summary(self) -> str:
        stats = self.stats
        return (
            f"; {stats.collections} collection listing(s) of {self.where}, {stats.objects} object(s) listed, "
            f"{stats.skipped} of them not documents"
        )
