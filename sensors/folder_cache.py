"""Collection fingerprints from per-folder listings kept between sensor ticks, so an unchanged tick stats folders,
not files.

`sensors.fingerprint.fingerprint` walks a whole collection and stats every file: exact, but on 100,000 files it
costs 6x a bare `os.scandir` walk. An `InboxCache` lives in the process that evaluates `inbox_sensor` (the code
server; module-level, one per inbox root, guarded by a lock) and keeps each folder's `FolderScan`: its key
(inode, mtime, ctime), the digest of its files, their count and newest change. Each tick stats every cached
folder and re-lists a folder (scandir + one stat per file) only when

- its key changed: creating, deleting or renaming an entry in a folder changes its mtime, which covers
  new files, deletions, atomic saves (write aside, then rename: editors, `mv`, the REST intake) and new or
  removed sub-folders;
- it changed recently: its newest change was less than `max(quiet_seconds, RACY_SECONDS)` before it was
  listed. This covers both the coarse timestamp granularity (a file created in the same clock tick as the
  listing leaves the mtime as it was) and files still being written in place: while a folder is "hot" it is
  re-listed on every tick, so the settle rule always judges fresh sizes and times;
- it is not cached (a fresh process does one full walk on its first tick), or
- the rotating sweep picks it (below).

Trade-off: a file rewritten in place long after its folder went quiet (`cp` over an existing file, an editor
that truncates and rewrites, `touch`) does not touch its folder, so only the sweep finds it. Each tick the
sweep re-lists the next folders of the whole inbox (in rotation over collections and their folders) until it
covered `max(MIN_SWEEP_FILES, total files / sweep_ticks)` files. So every file is stat'ed again at least once
every `sweep_ticks` ticks (`ORCA_INBOX_SWEEP_TICKS`, default 8: about 40 s at the daemon's 5 s loop), and an
inbox of at most `MIN_SWEEP_FILES` files is re-stat'ed completely on every tick (exact). An
in-place edit is therefore seen within `sweep_ticks` ticks instead of on the next tick; a lower setting finds
it sooner and costs more per tick (about `1/sweep_ticks` of a full stat walk, plus one stat per folder).
The same holds for a linked file whose target changes. A collection the walk did not reach in a tick cut
short by the time budget keeps its share of the sweep for the next tick.

The fingerprint computed here equals `fingerprint(folder)` for the same tree state (both compose the same
`FolderScan`s). Memory is bounded: at most `MAX_FOLDERS` folder listings per inbox (least recently used
collections are dropped first; a collection larger than that is walked in full every tick) and at most
`MAX_INBOXES` inbox roots per process.
"""

from __future__ import annotations

import bisect
import math
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from orca_core.settings import OrcaSettings
from sensors.fingerprint import Fingerprint, FolderScan, compose, folder_key, scan_folder, walk_tree

MIN_SWEEP_FILES = 5_000  # about 20 ms of stat calls: an inbox this small is re-stat'ed in full on every tick
RACY_SECONDS = 2.0  # folder mtimes are coarse (and network file systems' clocks drift): trust older ones only
MAX_FOLDERS = 100_000  # per inbox; a few hundred bytes each
MAX_INBOXES = 4


def _order_key(prefix: str) -> list[str]:
    # `walk_tree` order (depth first, sub-folders by name) is the order of the path components.
    return prefix.split("/")


@dataclass
class TickStats:
    """What the last tick did, for the sensor's summary and the benchmark."""

    folders: int = 0  # folders stat'ed
    listed: int = 0  # re-listed because new, changed or recently changed
    swept: int = 0  # re-listed by the rotating sweep
    files: int = 0  # files stat'ed by those listings


@dataclass
class _Collection:
    folders: dict[str, FolderScan]  # relative folder path -> listing, in walk order
    files: int
    sweep: set[str] = field(default_factory=set)  # folders the sweep picked and the walk has not re-listed yet


class InboxCache:
    """Per-folder listings of one inbox's collections, kept between ticks (see the module docstring)."""

    def __init__(
        self,
        sweep_ticks: int = OrcaSettings.model_fields["inbox_sweep_ticks"].default,
        min_sweep_files: int = MIN_SWEEP_FILES,
        max_folders: int = MAX_FOLDERS,
        clock: Callable[[], int] = time.time_ns,
    ) -> None:
        self.sweep_ticks = max(1, sweep_ticks)
        self.min_sweep_files = min_sweep_files
        self.max_folders = max_folders
        self.clock = clock  # wall clock in ns, comparable with file times; tests move it
        self.stats = TickStats()
        self._collections: OrderedDict[str, _Collection] = OrderedDict()  # least recently used first
        self._folders = 0
        self._sweep_all = True  # a small inbox is re-stat'ed in full on every tick
        self._sweep_after: tuple[str, str] | None = None  # (collection, folder) the sweep re-listed last
        self._lock = threading.Lock()

    def __len__(self) -> int:
        """Folder listings held."""
        return self._folders

    def begin_tick(self) -> None:
        """Start a tick: pick the folders the sweep re-lists (the next share of the whole inbox, in rotation
        over collections and their folders) and reset `stats`."""
        with self._lock:
            self.stats = TickStats()
            total = sum(state.files for state in self._collections.values())
            per_tick = max(self.min_sweep_files, math.ceil(total / self.sweep_ticks))
            self._sweep_all = total <= per_tick
            if self._sweep_all:
                return
            covered = 0
            for root, prefix in self._rotation():
                if covered >= per_tick:
                    break
                state = self._collections[root]
                state.sweep.add(prefix)
                covered += state.folders[prefix].files
                self._sweep_after = (root, prefix)

    def _rotation(self) -> Iterator[tuple[str, str]]:
        """Every cached folder holding files (empty ones have nothing to re-stat) once, in (collection, walk)
        order, starting after the last one swept."""
        roots = sorted(self._collections)
        if not roots:
            return
        after_root, after_prefix = self._sweep_after or (roots[0], None)
        first = bisect.bisect_left(roots, after_root) % len(roots)

        def folders(root: str) -> list[str]:
            return [prefix for prefix, listing in self._collections[root].folders.items() if listing.files]

        head = folders(roots[first])
        split = 0
        if roots[first] == after_root and after_prefix is not None:
            split = bisect.bisect_right(head, _order_key(after_prefix), key=_order_key)
        yield from ((roots[first], prefix) for prefix in head[split:])
        for root in roots[first + 1 :] + roots[:first]:
            yield from ((root, prefix) for prefix in folders(root))
        yield from ((roots[first], prefix) for prefix in head[:split])

    def fingerprint(self, folder: Path, quiet_seconds: float = RACY_SECONDS, exact: bool = False) -> Fingerprint:
        """The fingerprint of collection `folder`, re-listing only what the rules above ask for (`exact`: every
        folder, as `fingerprint(folder)` would, refreshing the cache)."""
        root = os.fspath(folder)
        with self._lock:
            state = self._collections.pop(root, None)
            if state is not None:
                self._folders -= len(state.folders)
            cached = state.folders if state is not None else {}
            sweep = state.sweep if state is not None else set()
            sweep_all = self._sweep_all
            window = int(max(quiet_seconds, RACY_SECONDS) * 1e9)
            started = self.clock()  # before any stat: a listing is trusted only for changes older than this
            stats = self.stats

            def scan(path: str, prefix: str) -> FolderScan | None:
                try:
                    info = os.stat(path)
                except OSError:
                    return None
                stats.folders += 1
                old = cached.get(prefix)
                swept = old is not None and (sweep_all or prefix in sweep)
                if old is not None and not swept and not exact:
                    if old.key == folder_key(info) and old.newest_ns < old.scanned_at_ns - window:
                        return old
                listing = scan_folder(path, info, started)
                if listing is not None:
                    if swept:
                        stats.swept += 1
                    else:
                        stats.listed += 1
                    stats.files += listing.files
                return listing

            folders = walk_tree(root, scan)
            result = compose(folders)
            if folders and len(folders) <= self.max_folders:
                self._collections[root] = _Collection(dict(folders), result.files)
                self._folders += len(folders)
                while self._folders > self.max_folders:
                    _, evicted = self._collections.popitem(last=False)
                    self._folders -= len(evicted.folders)
            return result

    def retain(self, folders: Iterable[Path]) -> None:
        """Forget the collections not in `folders` (call after a complete walk of the inbox)."""
        keep = {os.fspath(folder) for folder in folders}
        with self._lock:
            for root in [root for root in self._collections if root not in keep]:
                self._folders -= len(self._collections.pop(root).folders)


_caches: OrderedDict[str, InboxCache] = OrderedDict()
_caches_lock = threading.Lock()


def inbox_cache(inbox: Path, sweep_ticks: int) -> InboxCache:
    """The process's cache for the inbox at `inbox` (created on first use; the least recently used of more than
    `MAX_INBOXES` is dropped); `sweep_ticks` applies to a new one."""
    key = os.path.abspath(inbox)
    with _caches_lock:
        cache = _caches.pop(key, None)
        _caches[key] = cache = InboxCache(sweep_ticks) if cache is None else cache
        while len(_caches) > MAX_INBOXES:
            _caches.popitem(last=False)
        return cache
