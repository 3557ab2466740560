"""The one wording for a library's unexpected failure: a short reason, never a traceback."""

from __future__ import annotations

from orca_core.formats import DocumentError

_LIMIT = 200


def unreadable(kind: str, error: BaseException) -> DocumentError:
    """`DocumentError("unreadable DOCX: <the library's first words>")` for an error no check foresaw."""
    message = " ".join(str(error).split()) or type(error).__name__
    if isinstance(error, LookupError):  # a KeyError's text is only the missing key: say what it is
        message = f"{type(error).__name__} {message}"
    if len(message) > _LIMIT:
        message = message[: _LIMIT - 1] + "…"
    return DocumentError(f"unreadable {kind}: {message}")
