"""CSV: one Markdown table, the first row its header, with the standard library's `csv`.

The delimiter is sniffed from the start of the file (comma, semicolon, tab or pipe); when the sniffer cannot
tell, it is a comma. The file must be UTF-8 like every plain-text document. At most MAX_TABLE_ROWS rows.
"""

from __future__ import annotations

import csv
import io

from orca_core.formats import DocumentError, Extracted
from orca_core.formats.sniff import TEXT, require
from orca_core.formats.tables import MAX_TABLE_ROWS, markdown_table, rows_cut_note
from orca_core.formats.text import decode_utf8

_SAMPLE = 32 * 1024  # what the sniffer reads: its regular expressions slow down on long samples
_DELIMITERS = ",;\t|"


def extract_csv(data: bytes) -> Extracted:
    require(data, ".csv", TEXT)
    text = decode_utf8(data)
    reader = csv.reader(io.StringIO(text, newline=""), _dialect(text))
    rows: list[list[str]] = []
    total = 0
    try:
        for row in reader:
            if not any(cell.strip() for cell in row):
                continue
            total += 1
            if len(rows) <= MAX_TABLE_ROWS:  # the header and MAX_TABLE_ROWS rows below it
                rows.append(row)
    except csv.Error as error:
        raise DocumentError(f"invalid CSV on line {reader.line_num}: {error}") from None
    blocks = [markdown_table(rows)]
    if total > len(rows):
        blocks.append(rows_cut_note(len(rows) - 1, total - 1))
    return Extracted(text="\n\n".join(block for block in blocks if block))


def _dialect(text: str) -> type[csv.Dialect] | csv.Dialect:
    sample = text[:_SAMPLE]
    if len(text) > _SAMPLE and "\n" in sample:
        sample = sample[: sample.rindex("\n")]  # whole lines only: a cut line misleads the sniffer
    try:
        return csv.Sniffer().sniff(sample, delimiters=_DELIMITERS)
    except csv.Error:
        return csv.excel
