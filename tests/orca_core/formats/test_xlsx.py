"""XLSX: a `## sheet` heading and a Markdown table per sheet, each sheet a page."""

from __future__ import annotations

import datetime

import pytest

from orca_core.formats import DocumentError, Extracted
from orca_core.formats import xlsx as xlsx_module
from orca_core.formats.xlsx import extract_xlsx
from tests.document_makers import damage_member, make_ole2, make_pptx, make_xlsx, make_zip_bomb


def reason(data: bytes) -> str:
    with pytest.raises(DocumentError) as caught:
        extract_xlsx(data)
    return caught.value.reason


@pytest.fixture(scope="module")
def extracted() -> Extracted:
    sheets = {
        "Ships": [
            [None, None, None],
            ["Name", "Tonnage", "Launched"],
            ["Aurora", 1200, datetime.date(1999, 5, 1)],
            [None, None, None],
            ["Pipe | Dream", 3.5, None],
            ["Boolean", True, None],
        ],
        "Crew": [["Sailor", "Rank"], ["Ada", "Captain"]],
    }
    return extract_xlsx(make_xlsx(sheets, title="Fleet"))


def test_each_sheet_is_a_heading_and_a_table_on_its_own_page(extracted: Extracted) -> None:
    ships = (
        "## Ships\n\n| Name | Tonnage | Launched |\n| --- | --- | --- |\n| Aurora | 1200 | 1999-05-01 |\n"
        "| Pipe \\| Dream | 3.5 |  |\n| Boolean | TRUE |  |"
    )
    crew = "## Crew\n\n| Sailor | Rank |\n| --- | --- |\n| Ada | Captain |"
    assert extracted.text == f"{ships}\n\n{crew}"
    assert extracted.pages == [0, len(ships) + 2]


def test_title_and_properties(extracted: Extracted) -> None:
    assert extracted.title == "Fleet"
    assert extracted.properties["created"].startswith("20")


def test_empty_sheet_still_has_its_page() -> None:
    extracted = extract_xlsx(make_xlsx({"Empty": [], "Data": [["k"], ["v"]]}))
    assert extracted.text.startswith("## Empty\n\n## Data\n\n| k |")
    assert extracted.pages == [0, len("## Empty\n\n")]


def test_workbook_without_values_is_empty() -> None:
    from orca_core.formats import extract

    assert extract_xlsx(make_xlsx({"A": [], "B": [[None]]})).text == ""
    with pytest.raises(DocumentError, match="^empty document$"):
        extract(".xlsx", make_xlsx({"A": []}))
    assert extract_xlsx(make_xlsx({"Tides": [["x"]]})).title == "Tides"  # no title set: the first heading


def test_long_sheet_is_cut_with_a_note(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(xlsx_module, "MAX_TABLE_ROWS", 3)
    rows = [["n"]] + [[number] for number in range(10)]
    text = extract_xlsx(make_xlsx({"Numbers": rows})).text
    assert "| 2 |" in text and "| 3 |" not in text
    assert text.endswith("(Only the first 3 of 10 rows are indexed.)")


def test_bad_inputs_are_explained() -> None:
    assert reason(make_ole2()).startswith("password-protected (encrypted) Office file")
    assert reason(make_pptx([("T", ["x"])])) == (
        "content does not match '.xlsx': the file is a PowerPoint presentation (PPTX)"
    )
    assert reason(b"name,amount\n1,2\n") == "content does not match '.xlsx': the file is plain text"
    assert reason(make_zip_bomb("xl/workbook.xml", size=20 * 1024 * 1024)).startswith("zip bomb? ")
    damaged = damage_member(make_xlsx({"S": [["a", "b"], [1, 2]]}), "xl/worksheets/sheet1.xml")
    assert reason(damaged).startswith("unreadable XLSX: ")
