"""HTML to Markdown-ish text: visible text as paragraphs, headings as `#` lines, lists as `- ` items, tables as
Markdown tables, `<pre>` as fences.

Used for `.html` documents and by the formats that carry HTML inside (EPUB chapters, HTML e-mail bodies).
Only the standard library's `html.parser`: it never fails on broken markup and never fetches anything.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from html.parser import HTMLParser

from orca_core.formats.tables import markdown_table

_SKIP_TAGS = frozenset(
    {"script", "style", "head", "title", "nav", "noscript", "template", "svg", "iframe", "footer", "aside"}
    | {"object", "canvas"}
)
_BLOCK_TAGS = frozenset(
    {
        "p", "div", "section", "article", "main", "header", "li", "ul", "ol", "dl", "dt", "dd", "tr",
        "thead", "tbody", "tfoot", "caption", "blockquote", "figure", "figcaption", "address", "details",
        "summary", "form", "fieldset", "hr", "body", "html",
    }
)  # fmt: skip
_LISTS = frozenset({"ul", "ol"})
_CELLS = frozenset({"td", "th"})
_HEADINGS = {f"h{level}": level for level in range(1, 7)}
_SPACES = re.compile(r"\s+")


@dataclass
class _Table:
    rows: list[list[list[str]]] = field(default_factory=list)  # rows of cells, each cell its blocks
    in_cell: bool = False
    # A table used for page layout (headings, code or other tables in its cells) is not data: its cells come
    # out as ordinary blocks, or a whole page would become one Markdown table cell.
    layout: bool = False


class _TextExtractor(HTMLParser):
    """Collects visible text as blocks: paragraphs, '#' headings, '- ' list items, tables, code fences."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.blocks: list[str] = []
        self._targets: list[list[str]] = [self.blocks]  # where blocks go: the page, or the open table cell
        self._tables: list[_Table] = []
        self._inline: list[str] = []
        self._prefix = ""  # a list item's "- ", written before its first text
        self._skip_depth = 0
        self._pre_depth = 0
        self._list_depth = 0
        self._heading = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIP_TAGS:
            self._skip_depth += 1
        elif self._skip_depth:
            return
        elif tag == "br":
            self._inline.append("\n")
        elif tag == "pre":
            self._flush()
            self._pre_depth += 1
        elif tag in _HEADINGS:
            self._flush()
            self._heading = _HEADINGS[tag]
        elif tag == "table":
            self._flush()
            self._tables.append(_Table())
        elif tag in _CELLS and self._tables:
            self._end_cell()
            table = self._tables[-1]
            if not table.rows:
                table.rows.append([])
            table.in_cell = True
            self._targets.append([])
        elif tag == "tr" and self._tables:
            self._end_cell()
            self._tables[-1].rows.append([])
        elif tag in _BLOCK_TAGS:
            self._flush()
            if tag in _LISTS:
                self._list_depth += 1
            elif tag == "li":
                self._prefix = "  " * max(0, self._list_depth - 1) + "- "

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIP_TAGS:
            self._skip_depth = max(0, self._skip_depth - 1)
        elif self._skip_depth:
            return
        elif tag == "pre" and self._pre_depth:
            code = "".join(self._inline).strip("\n").rstrip()
            self._inline.clear()
            self._pre_depth -= 1
            if code.strip():
                self._emit(f"```\n{code}\n```", structural=True)
        elif tag == "table" and self._tables:
            self._end_cell()
            self._end_table()
        elif tag in _CELLS and self._tables:
            self._end_cell()
        elif tag in _HEADINGS or tag in _BLOCK_TAGS:
            self._flush()
            if tag in _LISTS:
                self._list_depth = max(0, self._list_depth - 1)
            elif tag == "li":
                self._prefix = ""

    def handle_data(self, data: str) -> None:
        if self._skip_depth:
            return
        self._inline.append(data if self._pre_depth else _SPACES.sub(" ", data))

    def close(self) -> None:
        super().close()
        if self._pre_depth:  # an unclosed <pre> still holds text that must not be lost
            self._pre_depth = 1
            self.handle_endtag("pre")
        while self._tables:  # so do unclosed tables
            self._end_cell()
            self._end_table()
        self._flush()

    def _flush(self) -> None:
        if self._pre_depth:
            return
        lines = (" ".join(line.split()) for line in "".join(self._inline).split("\n"))
        text = "\n".join(line for line in lines if line)
        self._inline.clear()
        if self._heading:
            if text:
                text = "#" * self._heading + " " + " ".join(text.split())
            heading, self._heading = True, 0
        else:
            heading = False
        if text:
            if self._prefix and not heading:
                text, self._prefix = self._prefix + text, ""
            self._emit(text, structural=heading)

    def _emit(self, block: str, *, structural: bool = False) -> None:
        if structural and self._tables and self._tables[-1].in_cell:
            self._tables[-1].layout = True
        self._targets[-1].append(block)

    def _end_cell(self) -> None:
        self._flush()
        if self._tables and self._tables[-1].in_cell:
            table = self._tables[-1]
            table.rows[-1].append(self._targets.pop())
            table.in_cell = False

    def _end_table(self) -> None:
        table = self._tables.pop()
        cells = [cell for row in table.rows for cell in row]
        if table.layout or len(cells) == 1:
            for cell in cells:
                self._targets[-1].extend(cell)
            return
        rendered = markdown_table([" ".join(cell) for cell in row] for row in table.rows)
        if rendered:
            self._emit(rendered, structural=True)


def html_to_text(markup: str) -> str:
    """Visible text of an HTML page: blank-line separated blocks; headings as '# ' lines, list items as
    '- ' lines, tables as Markdown tables, `<pre>` as fences."""
    parser = _TextExtractor()
    parser.feed(markup)
    parser.close()
    return "\n\n".join(parser.blocks)


class _TitleFinder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.inside = False
        self.parts: list[str] = []
        self.done = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.inside = tag == "title" and not self.done

    def handle_endtag(self, tag: str) -> None:
        if tag == "title" and self.inside:
            self.inside, self.done = False, True

    def handle_data(self, data: str) -> None:
        if self.inside:
            self.parts.append(data)


def html_title(markup: str) -> str | None:
    """The page's `<title>`, whitespace collapsed, or None."""
    finder = _TitleFinder()
    finder.feed(markup)
    title = " ".join("".join(finder.parts).split())
    return title or None
