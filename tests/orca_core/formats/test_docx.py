"""DOCX: headings from styles, lists, tables, properties, and the ways a .docx can be something else."""

from __future__ import annotations

import io

import pytest

from orca_core.formats import DocumentError, Extracted
from orca_core.formats.docx import extract_docx
from tests.document_makers import damage_member, make_docx, make_ole2, make_pdf, make_xlsx, make_zip_bomb


def reason(data: bytes) -> str:
    with pytest.raises(DocumentError) as caught:
        extract_docx(data)
    return caught.value.reason


@pytest.fixture(scope="module")
def extracted() -> Extracted:
    blocks = [
        ("title", "Field Guide"),
        ("p", "Birds of the northern coast."),
        ("h1", "Seabirds"),
        ("p", "Puffins nest in burrows."),
        ("bullet", "Atlantic puffin"),
        ("bullet", "Razorbill"),
        ("h2", "Counts"),
        ("table", [["Species", "Pairs"], ["Puffin | Atlantic", "1200"], ["Gannet\nnorthern", "800"]]),
        ("h3", "Method"),
        ("number", "Count at dawn"),
        ("number", "Count at dusk"),
        ("p", "Done."),
    ]
    return extract_docx(make_docx(blocks, title="Coastal Birds", author="Grace Hopper"))


def test_heading_styles_become_markdown_headings(extracted: Extracted) -> None:
    lines = extracted.text.split("\n")
    assert "# Field Guide" in lines  # the Title style
    assert "# Seabirds" in lines and "## Counts" in lines and "### Method" in lines
    assert extracted.text.index("# Seabirds") < extracted.text.index("Puffins nest") < extracted.text.index("## Counts")


def test_list_paragraphs_become_a_tight_list(extracted: Extracted) -> None:
    assert "Puffins nest in burrows.\n\n- Atlantic puffin\n- Razorbill\n\n## Counts" in extracted.text
    assert "- Count at dawn\n- Count at dusk" in extracted.text


def test_tables_become_markdown_tables_in_body_order(extracted: Extracted) -> None:
    table = "| Species | Pairs |\n| --- | --- |\n| Puffin \\| Atlantic | 1200 |\n| Gannet northern | 800 |"
    assert f"## Counts\n\n{table}\n\n### Method" in extracted.text


def test_title_and_properties(extracted: Extracted) -> None:
    assert extracted.title == "Coastal Birds"
    assert extracted.properties["author"] == "Grace Hopper"
    assert extracted.properties["created"].startswith("20")  # W3CDTF from docProps/core.xml, ISO 8601
    assert "title" not in extracted.properties


def test_title_falls_back_to_the_first_heading() -> None:
    extracted = extract_docx(make_docx([("p", "Intro."), ("h2", "Findings"), ("p", "More.")]))
    assert extracted.title == "Findings"


def test_nested_list_levels_are_indented() -> None:
    import docx

    document = docx.Document()
    document.add_paragraph("Top", style="List Bullet")
    document.add_paragraph("Inner", style="List Bullet 2")
    buffer = io.BytesIO()
    document.save(buffer)
    assert extract_docx(buffer.getvalue()).text == "- Top\n  - Inner"


def test_zip_bomb_is_refused_before_python_docx_opens_it(monkeypatch: pytest.MonkeyPatch) -> None:
    import docx

    def must_not_open(*args, **kwargs):
        raise AssertionError("a zip bomb must be refused before the library opens it")

    monkeypatch.setattr(docx, "Document", must_not_open)
    assert reason(make_zip_bomb(size=300 * 1024 * 1024)) == (
        "zip bomb? its parts would expand to 314572808 bytes, more than the limit of 268435456"
    )
    ratio = reason(make_zip_bomb(size=20 * 1024 * 1024))
    assert ratio.startswith("zip bomb? its part 'word/document.xml' would expand to 20971520 bytes")


def test_ole2_file_is_an_encrypted_or_legacy_office_file() -> None:
    assert reason(make_ole2()) == (
        "password-protected (encrypted) Office file, or a pre-2007 .doc/.xls/.ppt; "
        "save it as an unprotected .docx/.xlsx/.pptx"
    )


def test_a_pdf_or_a_workbook_named_docx_says_what_it_is() -> None:
    assert reason(make_pdf([["x"]])) == "content does not match '.docx': the file is a PDF"
    assert reason(make_xlsx({"S": [["a"]]})) == ("content does not match '.docx': the file is an Excel workbook (XLSX)")


def test_truncated_docx_is_corrupt() -> None:
    data = make_docx([("p", "Hello.")])
    assert reason(data[: len(data) // 2]).startswith("corrupt DOCX: not a readable ZIP archive")


def test_a_broken_package_is_unreadable_not_a_traceback() -> None:
    damaged = damage_member(make_docx([("p", "Hello.")]), "word/document.xml")
    assert reason(damaged).startswith("unreadable DOCX: ")
