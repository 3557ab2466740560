"""Document formats: which files Orca reads, and how each becomes Markdown text with its provenance.

Every format turns a file's bytes into an `Extracted`: Markdown text (headings as `#` lines, lists as `- `,
tables as Markdown tables, so the chunker cuts at headings and not mid-table), where each page starts, a
title and the format's own properties. This module is the one table of formats; each converter lives in a
module of this package, imported only when a file of its type is read (the intake and the CLI load none of
the heavy libraries until they need one).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field

# Plain-text formats: decoded as UTF-8 (orca_core/formats/text.py).
TEXT_SUFFIXES: frozenset[str] = frozenset({".txt", ".md", ".markdown", ".rst", ".html", ".htm", ".json", ".jsonl"})
# Packaged formats: suffix -> "module:function" converting the file's bytes (see each module for its library).
PACKAGED_FORMATS: dict[str, str] = {
    ".pdf": "pdf:extract_pdf",
    ".docx": "docx:extract_docx",
    ".pptx": "pptx:extract_pptx",
    ".xlsx": "xlsx:extract_xlsx",
    ".epub": "epub:extract_epub",
    ".csv": "csv_table:extract_csv",
    ".eml": "mail:extract_eml",
    ".ipynb": "notebook:extract_ipynb",
}
DOCUMENT_SUFFIXES: frozenset[str] = TEXT_SUFFIXES | frozenset(PACKAGED_FORMATS)

MAX_TEXT_BYTES = 10 * 1024 * 1024  # the largest plain-text document read (the intake's limit by default too)
MAX_PACKAGED_BYTES = 100 * 1024 * 1024  # the largest PDF, Office file, e-book or e-mail read
MAX_UNPACKED_BYTES = 256 * 1024 * 1024  # what the members of a zip-based file (DOCX, EPUB...) may expand to
MAX_EXTRACTED_CHARS = 20 * 1024 * 1024  # text extracted from one packaged file; past it: refused, said so


class DocumentError(Exception):
    """A file that cannot become a document; `reason` is short and meant for the user."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass
class Extracted:
    """A document as text: what the chunker cuts, and what the index says about where each chunk came from."""

    text: str  # Markdown
    # pages[i] is the offset in `text` where page i + 1 starts (pages[0] == 0), for PDF pages, slides and
    # sheets; None for formats without pages.
    pages: list[int] | None = None
    title: str | None = None
    # The format's own properties (author, created, modified as ISO 8601, subject, ...), JSON-ready strings.
    properties: dict[str, str] = field(default_factory=dict)


def is_packaged(suffix: str) -> bool:
    return suffix in PACKAGED_FORMATS


def max_bytes_for(suffix: str) -> int:
    return MAX_PACKAGED_BYTES if suffix in PACKAGED_FORMATS else MAX_TEXT_BYTES


def extract(suffix: str, data: bytes) -> Extracted:
    """Convert the bytes of a file of type `suffix` (lower case, with its dot), or raise DocumentError."""
    if suffix in TEXT_SUFFIXES:
        return importlib.import_module("orca_core.formats.text").extract_text(suffix, data)
    target = PACKAGED_FORMATS.get(suffix)
    if target is None:
        raise DocumentError(f"unsupported file type '{suffix}'" if suffix else "unsupported file type (no extension)")
    module, function = target.split(":")
    converter = getattr(importlib.import_module(f"orca_core.formats.{module}"), function)
    extracted = _without_carriage_returns(converter(data))
    if len(extracted.text) > MAX_EXTRACTED_CHARS:
        raise DocumentError(f"more than {MAX_EXTRACTED_CHARS} characters of text once extracted")
    if not extracted.text.strip():
        raise DocumentError("empty document")
    return extracted


def _without_carriage_returns(extracted: Extracted) -> Extracted:
    """The chunker sees `\n` line ends only; page offsets move with the text."""
    text = extracted.text
    if "\r" not in text:
        return extracted
    def normal(part: str) -> str:
        return part.replace("\r\n", "\n").replace("\r", "\n")
    pages = [len(normal(text[:offset])) for offset in extracted.pages] if extracted.pages else extracted.pages
    return Extracted(normal(text), pages, extracted.title, extracted.properties)
