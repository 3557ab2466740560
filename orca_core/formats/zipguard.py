"""Opening the ZIP-based formats (DOCX, XLSX, PPTX, EPUB) safely: zip bombs are refused before any library
unpacks a byte, and a ZIP of the wrong kind (an XLSX named `.docx`) is named instead of failing deep inside.

The limits are on the sizes the archive declares. Declared sizes can lie, but every reader used here stops
at the declared size (Python's zipfile and calamine's Rust zip both fail such a member), so a lie cannot
expand past what was checked.
"""

from __future__ import annotations

import io
import zipfile
import zlib

from orca_core import formats
from orca_core.formats import DocumentError
from orca_core.formats.sniff import ZIP, mismatch, require

# A member that expands more than this many times its packed size, and to more than _RATIO_FLOOR bytes, is a
# bomb whatever the total: real XML packs 5-20x, a bomb's runs of one byte pack ~1000x.
MAX_RATIO = 200
_RATIO_FLOOR = 4 * 1024 * 1024
# What zipfile raises on a damaged archive or member (zlib.error from a broken deflate stream,
# NotImplementedError for a compression method or version it does not know).
ZIP_ERRORS = (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, ValueError, EOFError, OSError, NotImplementedError)
_CONTENT_TYPES = "[Content_Types].xml"
_SMALL_PART = 1024 * 1024  # the most read of [Content_Types].xml or mimetype to tell the kind

DOCX, XLSX, PPTX, EPUB, ODF, OTHER = "docx", "xlsx", "pptx", "epub", "odf", "zip"
_KIND_NAMES = {
    DOCX: "a Word document (DOCX)",
    XLSX: "an Excel workbook (XLSX)",
    PPTX: "a PowerPoint presentation (PPTX)",
    EPUB: "an EPUB e-book",
    ODF: "an OpenDocument file (ODT, ODS or ODP)",
    OTHER: "a ZIP archive",
}
# Main-part content types of each OOXML kind, macro-enabled and template variants included.
_OOXML_MARKERS = {
    DOCX: (b"wordprocessingml.document.main", b"wordprocessingml.template.main", b"ms-word.document.macroEnabled"),
    XLSX: (b"spreadsheetml.sheet.main", b"spreadsheetml.template.main", b"ms-excel.sheet.macroEnabled"),
    PPTX: (b"presentationml.presentation.main", b"presentationml.slideshow.main", b"ms-powerpoint.presentation"),
}


def open_zip(data: bytes, suffix: str, kind: str) -> zipfile.ZipFile:
    """`data` as a ZipFile of `kind` (DOCX, XLSX, PPTX, EPUB), its sizes checked; else DocumentError."""
    require(data, suffix, ZIP)
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        infos = archive.infolist()
    except ZIP_ERRORS as error:
        raise DocumentError(f"corrupt {kind.upper()}: not a readable ZIP archive ({error})") from None
    check_expansion(infos)
    found = zip_kind(archive, kind.upper())
    if found != kind:
        raise DocumentError(mismatch(suffix, _KIND_NAMES[found]))
    return archive


def check_expansion(infos: list[zipfile.ZipInfo]) -> None:
    """Raise DocumentError when the members would expand past MAX_UNPACKED_BYTES, or one expands like a bomb."""
    limit = formats.MAX_UNPACKED_BYTES  # read at call time: tests lower it
    total = sum(info.file_size for info in infos)
    if total > limit:
        raise DocumentError(f"zip bomb? its parts would expand to {total} bytes, more than the limit of {limit}")
    for info in infos:
        if info.file_size > _RATIO_FLOOR and info.file_size > MAX_RATIO * max(info.compress_size, 1):
            ratio = info.file_size // max(info.compress_size, 1)
            raise DocumentError(
                f"zip bomb? its part '{info.filename}' would expand to {info.file_size} bytes, "
                f"{ratio} times its packed size (more than the limit of {MAX_RATIO})"
            )


def zip_kind(archive: zipfile.ZipFile, label: str = "ZIP archive") -> str:
    """DOCX, XLSX, PPTX, EPUB, ODF or OTHER, from the archive's content types or mimetype member."""
    names = set(archive.namelist())
    if _CONTENT_TYPES in names:
        content_types = read_small(archive, _CONTENT_TYPES, label)
        for kind, markers in _OOXML_MARKERS.items():
            if any(marker in content_types for marker in markers):
                return kind
    mimetype = read_small(archive, "mimetype", label).strip() if "mimetype" in names else b""
    if mimetype == b"application/epub+zip" or ("META-INF/container.xml" in names and _CONTENT_TYPES not in names):
        return EPUB
    if mimetype.startswith(b"application/vnd.oasis.opendocument"):
        return ODF
    return OTHER


def read_small(archive: zipfile.ZipFile, name: str, label: str, limit: int = _SMALL_PART) -> bytes:
    """Member `name` if it holds at most `limit` bytes, b"" when it is absent or larger; DocumentError naming
    the `label` ("DOCX") when it is damaged."""
    try:
        info = archive.getinfo(name)
    except KeyError:
        return b""
    if info.file_size > limit:
        return b""
    try:
        return archive.read(info)
    except (RuntimeError, *ZIP_ERRORS) as error:  # RuntimeError: an encrypted member
        raise DocumentError(f"corrupt {label}: its part '{name}' cannot be read ({error})") from None


def core_properties(archive: zipfile.ZipFile) -> tuple[str | None, dict[str, str]]:
    """An OOXML file's title and properties from docProps/core.xml (Dublin Core; dates are W3CDTF, which is
    ISO 8601 already). One reading for DOCX, XLSX and PPTX: calamine does not expose these at all."""
    from xml.etree import ElementTree

    try:
        root = ElementTree.fromstring(read_small(archive, "docProps/core.xml", "file"))
    except (DocumentError, ElementTree.ParseError, LookupError):  # LookupError: an unknown XML encoding
        return None, {}  # the properties are a courtesy; the document's text is still worth reading
    values: dict[str, str] = {}
    for element in root:
        local = element.tag.rsplit("}", 1)[-1]
        text = " ".join((element.text or "").split())
        if text and local in _CORE_NAMES:
            values[_CORE_NAMES[local]] = text
    return values.pop("title", None), values


_CORE_NAMES = {
    "title": "title",
    "creator": "author",
    "created": "created",
    "modified": "modified",
    "subject": "subject",
    "keywords": "keywords",
    "language": "language",
    "description": "description",
    "lastModifiedBy": "last_modified_by",
}
