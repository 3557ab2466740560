"""PPTX: slides as `## ` sections with their pages, bullets, tables, notes and properties."""

from __future__ import annotations

import io

import pytest

from orca_core.formats import DocumentError, Extracted
from orca_core.formats.pptx import extract_pptx
from tests.document_makers import make_docx, make_ole2, make_pptx, make_zip_bomb


def reason(data: bytes) -> str:
    with pytest.raises(DocumentError) as caught:
        extract_pptx(data)
    return caught.value.reason


def slide_of(extracted: Extracted, phrase: str) -> int:
    assert extracted.pages is not None
    offset = extracted.text.index(phrase)
    return max(number for number, start in enumerate(extracted.pages, start=1) if start <= offset)


@pytest.fixture(scope="module")
def extracted() -> Extracted:
    slides = [
        ("Roadmap", ["Ship the river barge", "Hire two pilots"]),
        ("Budget", ["Fuel costs rise in winter"]),
    ]
    return extract_pptx(make_pptx(slides, table=[["Quarter", "Spend"], ["Q1", "40 | 50"]], title="Plan 2025"))


def test_each_slide_is_a_page_and_its_title_a_heading(extracted: Extracted) -> None:
    assert extracted.pages is not None and len(extracted.pages) == 3 and extracted.pages[0] == 0
    assert slide_of(extracted, "Ship the river barge") == 1
    assert slide_of(extracted, "Fuel costs rise in winter") == 2
    assert slide_of(extracted, "| Q1 |") == 3
    for page, title in zip(extracted.pages, ("## Roadmap", "## Budget", "## Figures")):
        assert extracted.text[page:].startswith(title + "\n\n")


def test_body_text_is_a_bullet_list(extracted: Extracted) -> None:
    assert "## Roadmap\n\n- Ship the river barge\n- Hire two pilots\n\n## Budget" in extracted.text


def test_tables_are_markdown_tables(extracted: Extracted) -> None:
    assert extracted.text.endswith("## Figures\n\n| Quarter | Spend |\n| --- | --- |\n| Q1 | 40 \\| 50 |")


def test_title_from_properties_else_the_first_slide_title(extracted: Extracted) -> None:
    assert extracted.title == "Plan 2025"
    assert extract_pptx(make_pptx([("Opening", ["x"])])).title == "Opening"


def test_speaker_notes_and_text_boxes_are_read() -> None:
    from pptx import Presentation
    from pptx.util import Inches

    deck = Presentation()
    slide = deck.slides.add_slide(deck.slide_layouts[6])  # blank: no placeholders
    slide.shapes.add_textbox(Inches(1), Inches(1), Inches(4), Inches(1)).text_frame.text = "A loose caption"
    slide.notes_slide.notes_text_frame.text = "Mention the storm"
    buffer = io.BytesIO()
    deck.save(buffer)
    extracted = extract_pptx(buffer.getvalue())
    assert extracted.text == "A loose caption\n\nNotes: Mention the storm"
    assert extracted.pages == [0]


def test_bad_inputs_are_explained() -> None:
    assert reason(make_ole2()).startswith("password-protected (encrypted) Office file")
    assert reason(make_docx([("p", "x")])) == "content does not match '.pptx': the file is a Word document (DOCX)"
    assert reason(make_zip_bomb("ppt/presentation.xml", size=20 * 1024 * 1024)).startswith("zip bomb? ")
