"""Markdown tables, the one way every format writes a table (HTML, DOCX, PPTX, XLSX, CSV).

GitHub-flavoured Markdown: a header row, a `| --- |` delimiter row, then the rows. A table stays one block of
consecutive lines, so the chunker keeps it whole where it fits and never cuts it mid-row.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

# The most rows indexed of one table (a sheet, a CSV file): past them, a note says how many were left out.
MAX_TABLE_ROWS = 100_000


def cell_text(value: object) -> str:
    """One cell on one line: whitespace (line breaks too) collapsed, `|` escaped so it cannot end the cell."""
    if value is None:
        return ""
    return " ".join(str(value).split()).replace("|", "\\|")


def markdown_table(rows: Iterable[Sequence[object]]) -> str:
    """`rows` as a Markdown table, the first row its header; fully empty rows are left out and short rows
    padded, so every line has as many cells as the widest row. An empty string when no row has text."""
    cleaned = [cells for cells in ([cell_text(value) for value in row] for row in rows) if any(cells)]
    if not cleaned:
        return ""
    width = max(len(cells) for cells in cleaned)
    lines = [_line(cleaned[0], width), _line(["---"] * width, width)]
    lines.extend(_line(cells, width) for cells in cleaned[1:])
    return "\n".join(lines)


def _line(cells: Sequence[str], width: int) -> str:
    padded = list(cells) + [""] * (width - len(cells))
    return "| " + " | ".join(padded) + " |"


def rows_cut_note(kept: int, total: int) -> str:
    return f"(Only the first {kept} of {total} rows are indexed.)"
