"""CSV: one Markdown table, the delimiter sniffed, bad bytes explained."""

from __future__ import annotations

import pytest

from orca_core.formats import DocumentError
from orca_core.formats import csv_table as csv_module
from orca_core.formats.csv_table import extract_csv


def reason(data: bytes) -> str:
    with pytest.raises(DocumentError) as caught:
        extract_csv(data)
    return caught.value.reason


def test_comma_separated_with_quoted_cells() -> None:
    data = b'city,note\r\nOslo,"cold, dark"\r\n"Bergen","rain\r\nall year"\r\n,\r\nTromso,"a|b"\r\n'
    assert extract_csv(data).text == (
        "| city | note |\n| --- | --- |\n| Oslo | cold, dark |\n| Bergen | rain all year |\n| Tromso | a\\|b |"
    )


@pytest.mark.parametrize("delimiter", [";", "\t", "|"])
def test_other_delimiters_are_sniffed(delimiter: str) -> None:
    rows = [["name", "amount", "unit"], ["Ada", "1,5", "kg"], ["Alan", "2,25", "kg"]]
    data = "\n".join(delimiter.join(row) for row in rows).encode()
    assert extract_csv(data).text == (
        "| name | amount | unit |\n| --- | --- | --- |\n| Ada | 1,5 | kg |\n| Alan | 2,25 | kg |"
    )


def test_a_single_column_falls_back_to_commas() -> None:
    assert extract_csv(b"word\nalpha\nbeta\n").text == "| word |\n| --- |\n| alpha |\n| beta |"


def test_long_file_is_cut_with_a_note(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(csv_module, "MAX_TABLE_ROWS", 2)
    text = extract_csv(b"n\n1\n2\n3\n4\n").text
    assert text == "| n |\n| --- |\n| 1 |\n| 2 |\n\n(Only the first 2 of 4 rows are indexed.)"


def test_bad_inputs_are_explained() -> None:
    assert reason("ville;prix\ncafé;2\n".encode("latin-1")) == "not valid UTF-8 text (byte 0xe9 at offset 14)"
    assert reason("a,b\n1,2\n".encode("utf-16")) == (
        "not valid UTF-8 text (UTF-16 byte order mark); save the file as UTF-8"
    )
    assert reason(b"%PDF-1.7\n...") == "content does not match '.csv': the file is a PDF"
    assert reason(b"\x89PNG\r\n\x1a\n\x00\x00") == "content does not match '.csv': the file is a PNG image"
