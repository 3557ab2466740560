"""Text built page by page (PDF pages, slides, sheets), remembering where each page starts.

A page without text starts where the next text starts (or at the end), so every page has an entry and a
chunk is attributed to the page its first character came from.
"""

from __future__ import annotations

from orca_core import formats
from orca_core.formats import DocumentError


class PagedText:
    def __init__(self) -> None:
        self._parts: list[str] = []
        self._pending: list[int] = []  # pages without text so far
        self.pages: list[int] = []
        self.length = 0

    def add(self, block: str) -> None:
        """Add the next page's Markdown (may be empty); pages are a blank line apart."""
        self._pending.append(len(self.pages))
        self.pages.append(self.length)
        if not block:
            return
        if self._parts:
            self._parts.append("\n\n")
            self.length += 2
        for index in self._pending:
            self.pages[index] = self.length
        self._pending.clear()
        self._parts.append(block)
        self.length += len(block)
        if self.length > formats.MAX_EXTRACTED_CHARS:  # stop reading: the document is refused anyway
            raise DocumentError(f"more than {formats.MAX_EXTRACTED_CHARS} characters of text once extracted")

    def text(self) -> str:
        for index in self._pending:
            self.pages[index] = self.length
        self._pending.clear()
        return "".join(self._parts)
