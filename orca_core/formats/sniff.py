"""What a file's bytes really are, so a file whose suffix lies gets a reason instead of a library's error.

A web page saved as `report.pdf`, a PDF renamed `.docx`, an encrypted Word file (an OLE2 container, not a
ZIP): each library fails on them with its own words; the converters call `require` first and say what the
file is. Only the first bytes are looked at.
"""

from __future__ import annotations

import codecs

from orca_core.formats import DocumentError

PDF, ZIP, OLE2, HTML, TEXT, BINARY, EMPTY = "pdf", "zip", "ole2", "html", "text", "binary", "empty"

_HEAD = 1024  # PDF readers accept `%PDF-` anywhere in the first KiB (some files start with junk)
_OLE2_MAGIC = bytes.fromhex("D0CF11E0A1B11AE1")
_ZIP_MAGIC = b"PK\x03\x04"
_OOXML = frozenset({".docx", ".xlsx", ".pptx"})
# Other common binaries, named so that the reason says what the file is.
_MAGIC = {
    b"\x89PNG": "a PNG image",
    b"\xff\xd8\xff": "a JPEG image",
    b"GIF8": "a GIF image",
    b"\x1f\x8b": "a gzip archive",
    b"{\\rtf": "an RTF document",
    b"Rar!": "a RAR archive",
    b"7z\xbc\xaf": "a 7-Zip archive",
}
_DESCRIPTIONS = {
    PDF: "a PDF",
    ZIP: "a ZIP archive",
    OLE2: "an OLE2 compound file (a pre-2007 Office file, an Outlook .msg, or an encrypted Office file)",
    HTML: "an HTML page",
    TEXT: "plain text",
    BINARY: "binary data",
    EMPTY: "empty",
}
ENCRYPTED_OFFICE = (
    "password-protected (encrypted) Office file, or a pre-2007 .doc/.xls/.ppt; "
    "save it as an unprotected .docx/.xlsx/.pptx"
)


def sniff(data: bytes) -> str:
    """One of PDF, ZIP, OLE2, HTML, TEXT, BINARY, EMPTY, from the first bytes of `data`."""
    if not data:
        return EMPTY
    head = data[:_HEAD]
    # Magic at the start first: a ZIP whose first part is a stored PDF holds `%PDF-` in its first KiB too.
    if head.startswith(_ZIP_MAGIC):
        return ZIP
    if head.startswith(_OLE2_MAGIC):
        return OLE2
    if b"%PDF-" in head:
        return PDF
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return TEXT  # text all the same: its reader says it must be UTF-8, better than "binary data"
    if b"\x00" in head or any(head.startswith(magic) for magic in _MAGIC):
        return BINARY
    start = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if start.startswith((b"<!doctype html", b"<html")):
        return HTML
    return TEXT


def describe(data: bytes) -> str:
    """What `data` is, for a reason: "an HTML page", "a PNG image", ..."""
    head = data[:_HEAD]
    for magic, name in _MAGIC.items():
        if head.startswith(magic):
            return name
    return _DESCRIPTIONS[sniff(data)]


def require(data: bytes, suffix: str, *kinds: str) -> str:
    """Raise DocumentError unless `data` is one of `kinds`; return the kind it is."""
    kind = sniff(data)
    if kind in kinds:
        return kind
    if kind == EMPTY:
        raise DocumentError("empty document")
    if kind == OLE2 and suffix in _OOXML:
        raise DocumentError(ENCRYPTED_OFFICE)
    raise DocumentError(mismatch(suffix, describe(data)))


def mismatch(suffix: str, what: str) -> str:
    return f"content does not match '{suffix}': the file is {what}"
