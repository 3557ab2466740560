"""PDF: text, pages, outline headings, metadata, and every way a PDF can be unreadable."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from orca_core.formats import DocumentError, Extracted
from orca_core.formats.pdf import ENCRYPTED, NO_TEXT, PDFIUM_LOCK, extract_pdf, pdf_date
from tests.document_makers import add_outline, encrypt_pdf, make_pdf, make_scanned_pdf

REPO = Path(__file__).resolve().parents[3]
WORDS = [
    "harbour",
    "tide",
    "freighter",
    "lantern",
    "cobalt",
    "meridian",
    "quorum",
    "zephyr",
    "basalt",
    "glacier",
    "orchard",
    "vector",
]


def reason(data: bytes) -> str:
    with pytest.raises(DocumentError) as caught:
        extract_pdf(data)
    return caught.value.reason


def page_of(extracted: Extracted, phrase: str) -> int:
    """The 1-based page whose text holds `phrase`, from `pages` alone."""
    assert extracted.pages is not None
    offset = extracted.text.index(phrase)
    return max(number for number, start in enumerate(extracted.pages, start=1) if start <= offset)


@pytest.fixture(scope="module")
def report() -> bytes:
    pages = [
        ["The harbour opens at dawn.", "Second paragraph on the first page."],
        ["Cobalt blue paint covers the lighthouse.", " ".join(WORDS * 12)],
        ["Glacier melt feeds the river in spring."],
    ]
    outline = [("Opening", 0, 0), ("Colours", 1, 0), ("Lighthouse", 1, 1), ("Ice", 2, 0)]
    return make_pdf(pages, outline=outline, title="Coastal Survey", author="Ada Lovelace", subject="Harbours",
                    keywords="coast, survey")  # fmt: skip


@pytest.fixture(scope="module")
def extracted(report: bytes) -> Extracted:
    return extract_pdf(report)


def test_known_phrases_are_on_their_pages(extracted: Extracted) -> None:
    assert extracted.pages is not None and len(extracted.pages) == 3 and extracted.pages[0] == 0
    assert page_of(extracted, "The harbour opens at dawn.") == 1
    assert page_of(extracted, "Cobalt blue paint covers the lighthouse.") == 2
    assert page_of(extracted, "Glacier melt feeds the river in spring.") == 3


def test_outline_entries_become_headings_at_the_start_of_their_page(extracted: Extracted) -> None:
    text, pages = extracted.text, extracted.pages
    assert pages is not None
    assert text.startswith("# Opening\n\nThe harbour opens at dawn.")
    assert text[pages[1] :].startswith("# Colours\n\n## Lighthouse\n\nCobalt blue paint")
    assert text[pages[2] :].startswith("# Ice\n\nGlacier melt")


def test_outline_of_goto_actions_and_deep_levels() -> None:
    data = make_pdf([["Alpha."], ["Beta."]])
    outline = [
        ("Book", 0, 0),
        ("Part", 1, 1),
        ("Chapter", 1, 2),
        ("S4", 1, 3),
        ("S5", 1, 4),
        ("S6", 1, 5),
        ("S7", 1, 6),
    ]
    text = extract_pdf(add_outline(data, outline)).text
    assert (
        text == "# Book\n\nAlpha.\n\n## Part\n\n### Chapter\n\n#### S4\n\n##### S5\n\n###### S6\n\n###### S7\n\nBeta."
    )


def test_paragraphs_are_a_blank_line_apart_and_lines_of_one_stay_together(extracted: Extracted) -> None:
    assert "The harbour opens at dawn.\n\nSecond paragraph on the first page." in extracted.text
    long_paragraph = next(block for block in extracted.text.split("\n\n") if block.startswith("harbour tide"))
    assert long_paragraph.count("\n") >= 2  # one paragraph of several wrapped lines
    assert long_paragraph.split() == WORDS * 12


def test_title_and_properties_come_from_the_document_information(extracted: Extracted) -> None:
    assert extracted.title == "Coastal Survey"
    props = extracted.properties
    assert props["author"] == "Ada Lovelace" and props["subject"] == "Harbours" and props["keywords"] == "coast, survey"
    assert props["created"] == "2000-01-01T00:00:00+00:00"  # reportlab's invariant mode fixes the date
    assert all(isinstance(value, str) and value for value in props.values())


def test_title_falls_back_to_the_first_outline_entry() -> None:
    extracted = extract_pdf(make_pdf([["Body."]], outline=[("Preface", 0, 0)]))
    assert extracted.title == "Preface"
    # reportlab writes "untitled" and "anonymous" where nothing was set: placeholders, not values.
    assert "author" not in extracted.properties and "subject" not in extracted.properties


def test_pages_without_text_start_where_the_next_text_starts() -> None:
    extracted = extract_pdf(make_pdf([["First."], [], ["Third."], []]))
    assert extracted.text == "First.\n\nThird."
    assert extracted.pages == [0, 8, 8, len(extracted.text)]


def test_nearly_all_words_of_a_long_document_are_recovered() -> None:
    source = [[" ".join(WORDS[(page + n) % len(WORDS)] for n in range(300))] for page in range(5)]
    text = extract_pdf(make_pdf(source)).text
    expected = [word for page in source for paragraph in page for word in paragraph.split()]
    found = re.findall(r"[a-z]+", text)
    assert len(found) >= 0.98 * len(expected)
    assert sorted(found) == sorted(expected)


def test_encrypted_pdf_is_refused_with_what_to_do(report: bytes) -> None:
    assert reason(encrypt_pdf(report, "secret")) == ENCRYPTED
    assert reason(make_pdf([["x"]], password="secret")) == ENCRYPTED  # reportlab's RC4 handler too
    assert ENCRYPTED == "encrypted PDF (password-protected); remove the password"


@pytest.mark.parametrize("keep", [0.9, 0.5, 0.1])
def test_truncated_pdf_is_corrupt(report: bytes, keep: float) -> None:
    assert reason(report[: int(len(report) * keep)]).startswith("corrupt PDF: ")


def test_pdf_that_is_an_html_page_says_so() -> None:
    page = b"<!DOCTYPE html><html><head><title>Login</title></head><body>Sign in</body></html>"
    assert reason(page) == "content does not match '.pdf': the file is an HTML page"


def test_scanned_pdf_has_no_text_layer() -> None:
    assert reason(make_scanned_pdf(page_count=2)) == NO_TEXT
    assert NO_TEXT == "no text layer (scanned?); OCR is not supported"


def test_extraction_stops_at_the_text_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    from orca_core import formats

    monkeypatch.setattr(formats, "MAX_EXTRACTED_CHARS", 100)
    assert reason(make_pdf([[" ".join(WORDS * 3)]] * 3)) == "more than 100 characters of text once extracted"


def test_pdf_dates_become_iso_8601() -> None:
    assert pdf_date("D:20240131120509+01'00'") == "2024-01-31T12:05:09+01:00"
    assert pdf_date("D:20240131120509Z") == "2024-01-31T12:05:09Z"
    assert pdf_date("D:20240131") == "2024-01-31"
    assert pdf_date("yesterday") is None


@pytest.fixture(scope="module")
def thousands_of_pages(tmp_path_factory: pytest.TempPathFactory) -> Path:
    paragraph = " ".join(WORDS * 8)
    path = tmp_path_factory.mktemp("pdf") / "long.pdf"
    path.write_bytes(make_pdf([[paragraph, f"Page marker {n}."] for n in range(2000)]))
    return path


def test_a_2000_page_pdf_is_read_one_page_at_a_time(thousands_of_pages: Path, monkeypatch) -> None:
    import pypdfium2

    open_pages: list[int] = [0]
    most_open = [0]
    get_page, close_page = pypdfium2.PdfDocument.get_page, pypdfium2.PdfPage.close

    def counted_get_page(self, index):
        assert PDFIUM_LOCK.locked(), "PDFium is not thread-safe: every call must hold the lock"
        open_pages[0] += 1
        most_open[0] = max(most_open[0], open_pages[0])
        return get_page(self, index)

    def counted_close(self, *args, **kwargs):
        if self.raw:
            open_pages[0] -= 1
        return close_page(self, *args, **kwargs)

    monkeypatch.setattr(pypdfium2.PdfDocument, "get_page", counted_get_page)
    monkeypatch.setattr(pypdfium2.PdfPage, "close", counted_close)
    extracted = extract_pdf(thousands_of_pages.read_bytes())
    assert len(extracted.pages or []) == 2000
    assert page_of(extracted, "Page marker 1999.") == 2000
    assert most_open[0] == 1 and open_pages[0] == 0


def test_a_2000_page_pdf_stays_in_bounded_memory(thousands_of_pages: Path) -> None:
    # A fresh process: this one's peak RSS is whatever earlier tests made it. Keeping every page open
    # grows it by ~280 MB on this file; reading page by page by ~10 MB.
    script = (
        "import resource, sys\n"
        "from orca_core.formats.pdf import extract_pdf\n"
        "data = open(sys.argv[1], 'rb').read()\n"
        "import pypdfium2\n"
        "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "pages = len(extract_pdf(data).pages)\n"
        "print(pages, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before)\n"
    )
    result = subprocess.run([sys.executable, "-c", script, str(thousands_of_pages)], cwd=REPO, capture_output=True,
                            text=True, timeout=120, check=True)  # fmt: skip
    pages, growth_kib = map(int, result.stdout.split())
    assert pages == 2000
    assert growth_kib < 80 * 1024, f"peak RSS grew by {growth_kib // 1024} MiB"
