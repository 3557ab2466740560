"""Turning one inbox file into an `Extracted` document, or a `DocumentError` whose reason a user can act on.

Shared by the `documents` asset, which reads the inbox, and the REST intake, which converts a posted document
the same way before it answers, so a document that would come out empty is refused at once (422), not
minutes later in a run. The formats themselves are in orca_core/formats/.
"""

from __future__ import annotations

import stat
from pathlib import Path

from orca_core.formats import DOCUMENT_SUFFIXES as SUPPORTED_SUFFIXES
from orca_core.formats import DocumentError, Extracted, extract, max_bytes_for

__all__ = ["SUPPORTED_SUFFIXES", "DocumentError", "Extracted", "describe_os_error", "read_document"]


def read_document(path: Path, *, max_bytes: int | None = None) -> Extracted:
    """Read `path` and convert it by its suffix, or raise `DocumentError`.

    `max_bytes` caps the file's size (default: the limit of its kind, orca_core/formats).
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        raise DocumentError(f"unsupported file type '{suffix}'" if suffix else "unsupported file type (no extension)")
    max_bytes = max_bytes_for(suffix) if max_bytes is None else max_bytes
    try:
        info = path.stat()
        if not stat.S_ISREG(info.st_mode):
            # Opening a FIFO or device would block or never end; a directory is no document either.
            raise DocumentError("unreadable: not a regular file")
        size = info.st_size
        if size > max_bytes:
            raise DocumentError(f"larger than {max_bytes} bytes ({size} bytes)")
        with path.open("rb") as handle:
            # Read one byte more than allowed: a file that grew after stat() must not slip through.
            data = handle.read(max_bytes + 1)
    except OSError as error:
        raise DocumentError(f"unreadable: {describe_os_error(error)}") from error
    if len(data) > max_bytes:
        raise DocumentError(f"larger than {max_bytes} bytes (still growing)")
    return extract(suffix, data)


def describe_os_error(error: OSError) -> str:
    # The caller already knows the path; repeating it makes the reason long and leaks absolute paths.
    if error.errno is not None and error.strerror:
        return f"[Errno {error.errno}] {error.strerror}"
    return str(error) or type(error).__name__
