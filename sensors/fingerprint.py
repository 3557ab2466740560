"""A collection folder's fingerprint: one digest of what the `documents` asset would read, cheap to recompute.

Shared by `inbox_sensor` and `intake_sensor`: both tag their runs with the fingerprint of the inbox state the
run was requested for (`FINGERPRINT_TAG`), which is how the inbox sensor recognises a change that an
intake run already covers.

The digest is composed per folder: each folder's listing (its visible files' names, sizes, mtimes and ctimes)
has its own digest (`scan_folder`), and the collection's digest is a digest of (relative folder path, file
count, folder digest) for every folder holding files, in walk order (`compose`). `fingerprint` computes it with
a full walk, exact at the moment it is called; `sensors.folder_cache` computes the same digest from per-folder
listings it keeps between ticks. Both go through `scan_folder`, `walk_tree` and `compose`, so the same tree
state gives the same digest either way.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from orca_core.names import is_ignored_name

DIGEST_CHARS = 16


def text_digest(text: str) -> str:
    """A short digest of `text` (the length of a fingerprint digest)."""
    return hashlib.blake2b(text.encode("utf-8", "surrogateescape"), digest_size=DIGEST_CHARS // 2).hexdigest()


EMPTY_DIGEST = text_digest("")


@dataclass(frozen=True)
class Fingerprint:
    """Digest of every document file (relative path, size, mtime and ctime), with what the settle rule needs."""

    digest: str
    files: int
    newest_change_ns: int  # latest mtime/ctime of any document file or folder; 0 when there is none

    def settled(self, now_ns: int, settle_seconds: float) -> bool:
        """True when nothing in the collection changed during the last `settle_seconds`."""
        return self.newest_change_ns <= now_ns - int(settle_seconds * 1e9)


EMPTY = Fingerprint(EMPTY_DIGEST, 0, 0)


@dataclass(frozen=True, slots=True)
class FolderScan:
    """One folder's listing as of `scanned_at_ns`: its part of the fingerprint, and what a cache compares."""

    key: tuple[int, int, int]  # (inode, mtime_ns, ctime_ns) of the folder, taken before listing it
    digest: str  # of its visible files' lines; "" when it holds none
    files: int
    newest_ns: int  # latest of the folder's mtime and its files' mtimes and ctimes
    subfolders: tuple[str, ...]  # visible real sub-folders (links not followed), sorted by name
    scanned_at_ns: int  # wall clock (time.time_ns) at or before the folder's stat


def folder_key(info: os.stat_result) -> tuple[int, int, int]:
    """What changes when entries are created, deleted or renamed in a folder (or the folder is replaced)."""
    return info.st_ino, info.st_mtime_ns, info.st_ctime_ns


def _list_folder(path: str, newest: int) -> tuple[list[str], list[str], int] | None:
    """(sorted lines of the visible files, visible real sub-folders, newest change) of `path`, or None."""
    try:
        with os.scandir(path) as scan:
            entries = list(scan)
    except OSError:
        return None  # gone or unreadable: it holds nothing the documents asset could read either
    lines: list[str] = []
    folders: list[str] = []
    for entry in entries:
        name = entry.name
        if is_ignored_name(name):
            continue
        try:
            if entry.is_dir(follow_symlinks=False):
                folders.append(name)
                continue
            if entry.is_symlink():
                if os.path.isdir(entry.path):
                    continue  # scan_inbox walks a linked folder where it really is, not here
                stat = entry.stat(follow_symlinks=True)
            elif entry.is_file(follow_symlinks=False):
                stat = entry.stat(follow_symlinks=False)
            else:
                continue  # sockets, fifos and devices are not documents
        except OSError:
            lines.append(f"{name}\0-\n")  # a broken link is still a (failing) document
            continue
        mtime, ctime = stat.st_mtime_ns, stat.st_ctime_ns
        lines.append(f"{name}\0{stat.st_size}\0{mtime}\0{ctime}\n")
        if mtime > newest:
            newest = mtime
        if ctime > newest:
            newest = ctime
    # Sorting lines sorts by name: a name ends at "\0", which sorts before any character a name can hold.
    lines.sort()
    folders.sort()
    return lines, folders, newest


def scan_folder(path: str, info: os.stat_result, scanned_at_ns: int) -> FolderScan | None:
    """List `path` (whose `os.stat` is `info`) and stat its visible files; None when it cannot be listed.

    Names are filtered like `scan_inbox` does (hidden/temporary names and their folders skipped), folder links
    are not followed, and a broken link is still a (failing) document.
    """
    listed = _list_folder(path, info.st_mtime_ns)  # a deletion only shows in its folder's mtime
    if listed is None:
        return None
    lines, folders, newest = listed
    digest = text_digest("".join(lines)) if lines else ""
    return FolderScan(folder_key(info), digest, len(lines), newest, tuple(folders), scanned_at_ns)


Scanner = Callable[[str, str], "FolderScan | None"]


def walk_tree(root: str, scan: Scanner) -> list[tuple[str, FolderScan]]:
    """(relative folder path ending in "/", or "" for `root`; its scan) for every folder `scan` could list,
    depth first with sub-folders in name order: the order `compose` digests them in."""
    found: list[tuple[str, FolderScan]] = []
    stack: list[tuple[str, str]] = [(root, "")]
    while stack:
        path, prefix = stack.pop()
        listing = scan(path, prefix)
        if listing is None:
            continue
        found.append((prefix, listing))
        # Reversed so the stack pops sub-folders in name order: the digest depends only on the tree.
        stack.extend((os.path.join(path, name), f"{prefix}{name}/") for name in reversed(listing.subfolders))
    return found


def compose(folders: list[tuple[str, FolderScan]]) -> Fingerprint:
    """The collection's fingerprint from its folders' scans, in `walk_tree` order."""
    hasher = hashlib.blake2b(digest_size=DIGEST_CHARS // 2)
    files = newest = 0
    for prefix, listing in folders:
        newest = max(newest, listing.newest_ns)
        if listing.files:  # an empty folder gives the documents asset nothing to read
            files += listing.files
            hasher.update(f"{prefix}\0{listing.files}\0{listing.digest}\n".encode("utf-8", "surrogateescape"))
    return Fingerprint(hasher.hexdigest() if files else EMPTY_DIGEST, files, newest)


def _scan_now(path: str, prefix: str) -> FolderScan | None:
    try:
        info = os.stat(path)
    except OSError:
        return None
    return scan_folder(path, info, 0)


def fingerprint(folder: Path) -> Fingerprint:
    """Walk all of `folder` now and digest what it finds (exact; no cache); a missing folder is empty.

    ctime is part of the digest because a file moved or copied in with its old mtime still gets a new ctime,
    and because it makes every state new: a run key derived from (previous, new) digests never repeats.
    """
    return compose(walk_tree(os.fspath(folder), _scan_now))


def change_key(collection: str, previous: str, current: str) -> str:
    """The run key of the change from digest `previous` to `current` of `collection`."""
    return f"{collection}:{text_digest(f'{previous}>{current}')}"
