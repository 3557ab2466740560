"""Walking a collection's inbox: every file that may be a document, and every entry that must fail alone."""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from orca_core.loaders import describe_os_error
from orca_core.names import is_ignored_name


@dataclass(frozen=True)
class InboxFile:
    """One file found in the inbox (or a link that must not be followed)."""

    doc_id: str
    path: Path
    size: int
    mtime_ns: int
    refused: str | None = None


def scan_inbox(root: Path) -> Iterator[InboxFile]:
    """Walk `root` recursively without following links out of it; skip hidden and temporary names.

    An entry that cannot be a document (a link out of the inbox or in a loop, a name that is not UTF-8, a link
    to a FIFO or device) is yielded refused, with the reason, so it fails alone; FIFOs, sockets and devices
    themselves are skipped.
    """
    real_root = root.resolve()
    stack = [root]
    while stack:
        folder = stack.pop()
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError:
            continue  # a folder removed during the walk holds nothing to index
        for entry in entries:
            if is_ignored_name(entry.name):
                continue
            path = Path(entry.path)
            doc_id = path.relative_to(root).as_posix()
            try:
                doc_id.encode("utf-8")
            except UnicodeEncodeError:
                # The table and the index hold UTF-8 strings: show the name with its bad bytes escaped.
                shown = os.fsencode(doc_id).decode("utf-8", "backslashreplace")
                yield InboxFile(shown, path, 0, 0, "file name is not valid UTF-8; rename the file")
                continue
            try:
                if entry.is_symlink():
                    try:
                        target = path.resolve(strict=True)
                    except RuntimeError:  # Python 3.11 reports a loop so; later versions raise OSError
                        raise OSError(errno.ELOOP, "symbolic link loop") from None
                    if not target.is_relative_to(real_root):
                        yield InboxFile(doc_id, path, 0, 0, "symbolic link pointing outside the inbox (not followed)")
                        continue
                    if target.is_dir():
                        continue  # a linked folder inside the inbox is walked where it really is
                    info = target.stat()
                    if not stat.S_ISREG(info.st_mode):
                        yield InboxFile(doc_id, path, 0, 0, "symbolic link to a FIFO, socket or device (not read)")
                        continue
                elif entry.is_dir(follow_symlinks=False):
                    stack.append(path)
                    continue
                elif entry.is_file(follow_symlinks=False):
                    info = entry.stat(follow_symlinks=False)
                else:
                    continue  # sockets, fifos and devices are not documents
            except OSError as error:
                loop = error.errno == errno.ELOOP
                reason = "symbolic link loop (not followed)" if loop else f"unreadable: {describe_os_error(error)}"
                yield InboxFile(doc_id, path, 0, 0, reason)
                continue
            yield InboxFile(doc_id, path, info.st_size, info.st_mtime_ns)
