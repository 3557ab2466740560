"""Names in an inbox: which document ids are safe, and which file names the scanners ignore.

A document's id is its POSIX path relative to `inbox/<collection>/`. Ids come from users (the REST intake),
so `validate_doc_id` makes sure no id can name a file outside the inbox or one the inbox scanners ignore.
The inbox scanners (the documents asset, the sensors' fingerprints, the catalogs) and the intake share
these rules; this module is their one definition.
"""

from __future__ import annotations

import unicodedata

MAX_DOC_ID_BYTES = 1024
MAX_COMPONENT_BYTES = 255  # NAME_MAX of common file systems
# Names editors and copy tools use while writing; the inbox scanners skip them, so a document must not use them.
_PARTIAL_SUFFIXES = (".tmp", ".temp", ".part", ".partial", ".swp", ".swo", ".crdownload", ".download", ".filepart")
_NOT_DOCUMENTS = frozenset({"thumbs.db", "desktop.ini"})
_PARTIAL_EXTENSIONS = frozenset(_PARTIAL_SUFFIXES)  # each is "." + letters: matched against a name's last "."


def _ignored_component(part: str) -> bool:
    """The rule for one non-empty path component (see `is_ignored_name`)."""
    first, last = part[0], part[-1]
    if first == "." or last == "~":
        return True
    if first == "~" and part[:2] == "~$":  # Office lock files
        return True
    if first == "#" and last == "#" and len(part) > 1:  # Emacs autosave
        return True
    lower = part.lower()
    # Same as lower.endswith(_PARTIAL_SUFFIXES), as the suffixes hold one dot each, at a third of the cost.
    return lower[lower.rfind("."):] in _PARTIAL_EXTENSIONS or lower in _NOT_DOCUMENTS


def is_ignored_name(name: str) -> bool:
    """True when any component of `name` is hidden, temporary, partial or an editor file.

    The inbox scanners skip such names (a file still being written, sidecars under `.orca/`), so a posted
    document must not use them either. This is the one definition of the rule.
    """
    # Fast path: the scanners call this once per directory entry, and a scandir name is a single component.
    if "/" not in name and "\\" not in name:
        return bool(name) and _ignored_component(name)
    return any(_ignored_component(part) for part in name.replace("\\", "/").split("/") if part)


def normalize_doc_id(doc_id: str) -> str:
    """A new document's id in NFC, so `café.md` typed two ways (one code point, or `e` + a combining accent)
    names one document, not two that look the same."""
    return unicodedata.normalize("NFC", doc_id) if isinstance(doc_id, str) else doc_id


def validate_doc_id(doc_id: str) -> str:
    """Return `doc_id` if it is a safe relative POSIX path inside an inbox, else raise ValueError saying why."""
    if not isinstance(doc_id, str) or not doc_id:
        raise ValueError("document id must be a non-empty string")
    if any(unicodedata.category(ch) == "Cc" for ch in doc_id):
        raise ValueError("document id must not contain NUL or other control characters")
    if any(unicodedata.category(ch) == "Cf" for ch in doc_id):
        # Bidi overrides and zero-width characters make one name look like another.
        raise ValueError("document id must not contain invisible or bidirectional formatting characters")
    if "\\" in doc_id:
        raise ValueError("document id must use '/' as separator, not '\\'")
    try:
        size = len(doc_id.encode("utf-8"))
    except UnicodeEncodeError:
        raise ValueError("document id is not valid Unicode (lone surrogate)") from None
    if size > MAX_DOC_ID_BYTES:
        raise ValueError(f"document id is longer than {MAX_DOC_ID_BYTES} bytes")
    if doc_id.startswith("/"):
        raise ValueError("document id must be a relative path, not an absolute one")
    for part in doc_id.split("/"):
        if part in ("", ".", ".."):
            raise ValueError("document id must not contain empty, '.' or '..' path components")
        if len(part.encode("utf-8")) > MAX_COMPONENT_BYTES:
            raise ValueError(f"each path component of a document id must be at most {MAX_COMPONENT_BYTES} bytes")
        if part != part.strip():
            raise ValueError("path components of a document id must not start or end with spaces")
    if is_ignored_name(doc_id):
        raise ValueError(
            "document id must not have hidden or temporary components (leading '.', trailing '~', "
            "'.tmp', '.part', ...): the inbox ignores such files"
        )
    return doc_id


