"""A collection folder's fingerprint: one digest of what the `documents` asset would read, cheap to recompute.

Shared by `inbox_sensor` and `intake_sensor`: both tag their runs with the fingerprint of the inbox state the
run was requested for (`orca/inbox_fingerprint`), which is how the inbox sensor recognises a change that an
intake run already covers.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from orca_resources.inbox import is_ignored_name
from orca_resources.settings import is_valid_collection

DIGEST_CHARS = 16
FINGERPRINT_TAG = "orca/inbox_fingerprint"
SOURCE_TAG = "orca/source"


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


def fingerprint(folder: Path) -> Fingerprint:
    """Walk `folder` like `scan_inbox` does (hidden/temporary names and their folders skipped, folder links
    not followed) and digest what it finds; a missing folder is an empty collection.

    ctime is part of the digest because a file moved or copied in with its old mtime still gets a new ctime,
    and because it makes every state new: a run key derived from (previous, new) digests never repeats.
    """
    hasher = hashlib.blake2b(digest_size=DIGEST_CHARS // 2)
    files = 0
    newest = 0
    stack: list[tuple[str, str]] = [(os.fspath(folder), "")]
    while stack:
        path, prefix = stack.pop()
        try:
            with os.scandir(path) as scan:
                entries = sorted(scan, key=lambda e: e.name)
            newest = max(newest, os.stat(path).st_mtime_ns)  # a deletion only shows in its folder
        except OSError:
            continue  # gone or unreadable: it holds nothing the documents asset could read either
        folders = []
        chunk = []
        for entry in entries:
            name = entry.name
            if is_ignored_name(name):
                continue
            try:
                if entry.is_dir(follow_symlinks=False):
                    folders.append((entry.path, f"{prefix}{name}/"))
                    continue
                if entry.is_symlink():
                    if os.path.isdir(entry.path):
                        continue  # scan_inbox walks a linked folder where it really is, not here
                    info = entry.stat(follow_symlinks=True)
                elif entry.is_file(follow_symlinks=False):
                    info = entry.stat(follow_symlinks=False)
                else:
                    continue  # sockets, fifos and devices are not documents
                mtime, ctime = info.st_mtime_ns, info.st_ctime_ns
                chunk.append(f"{prefix}{name}\0{info.st_size}\0{mtime}\0{ctime}\n")
            except OSError:
                mtime = ctime = 0  # a broken link is still a (failing) document
                chunk.append(f"{prefix}{name}\0-\n")
            files += 1
            newest = max(newest, mtime, ctime)
        if chunk:
            hasher.update("".join(chunk).encode("utf-8", "surrogateescape"))
        # Reversed so the stack pops sub-folders in name order: the digest depends only on the tree.
        stack.extend(reversed(folders))
    return Fingerprint(hasher.hexdigest() if files else EMPTY_DIGEST, files, newest)


def collection_folders(inbox: Path) -> tuple[list[str], list[str]]:
    """(valid collection folder names, invalid visible names) directly under `inbox`, both sorted."""
    valid: list[str] = []
    invalid: list[str] = []
    try:
        with os.scandir(inbox) as scan:
            for entry in scan:
                if is_ignored_name(entry.name) or not entry.is_dir(follow_symlinks=True):
                    continue
                (valid if is_valid_collection(entry.name) else invalid).append(entry.name)
    except FileNotFoundError:
        pass
    return sorted(valid), sorted(invalid)


def change_key(collection: str, previous: str, current: str) -> str:
    """The run key of the change from digest `previous` to `current` of `collection`."""
    return f"{collection}:{text_digest(f'{previous}>{current}')}"
