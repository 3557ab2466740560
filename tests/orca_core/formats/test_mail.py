"""E-mail: the subject as title and heading, the body (plain preferred), attachment names, headers."""

from __future__ import annotations

import pytest

from orca_core.formats import DocumentError
from orca_core.formats.mail import extract_eml
from tests.document_makers import make_eml


def reason(data: bytes) -> str:
    with pytest.raises(DocumentError) as caught:
        extract_eml(data)
    return caught.value.reason


def test_plain_body_is_preferred_and_attachments_are_listed() -> None:
    data = make_eml(plain="Figures attached.\n\nRegards,\nAda\n", html="<p>HTML twin</p>",
                    attachments=[("q1.pdf", b"%PDF-1.4"), ("chart.png", b"\x89PNG")])  # fmt: skip
    extracted = extract_eml(data)
    assert extracted.text == (
        "# Quarterly figures\n\nFigures attached.\n\nRegards,\nAda\n\nAttachments: q1.pdf, chart.png"
    )
    assert "HTML twin" not in extracted.text
    assert extracted.title == "Quarterly figures"


def test_headers_become_properties() -> None:
    properties = extract_eml(make_eml(plain="x")).properties
    assert properties == {
        "from": "Ada Lovelace <ada@example.org>",
        "to": "Charles Babbage <charles@example.org>",
        "cc": "team@example.org",
        "date": "2025-03-04T10:15:00+01:00",
        "message_id": "<figures-1@example.org>",
    }


def test_html_only_body_goes_through_html_to_text() -> None:
    extracted = extract_eml(make_eml(html="<h2>Agenda</h2><table><tr><th>Time</th></tr><tr><td>9:00</td></tr></table>"))
    assert extracted.text == "# Quarterly figures\n\n## Agenda\n\n| Time |\n| --- |\n| 9:00 |"


def test_encoded_subject_and_non_ascii_body() -> None:
    extracted = extract_eml(make_eml(subject="Café på Grünerløkka", plain="Smørbrød til lunsj.\n"))
    assert extracted.title == "Café på Grünerløkka"
    assert "Smørbrød til lunsj." in extracted.text


def test_only_attachments_is_refused_naming_them() -> None:
    data = make_eml(attachments=[("a.pdf", b"%PDF-1.4"), ("b.png", b"\x89PNG")])
    assert reason(data) == ("e-mail without a text body (only attachments: a.pdf, b.png); attachments are not indexed")


def test_a_binary_file_named_eml_is_refused() -> None:
    assert reason(b"PK\x03\x04\x14\x00") == "content does not match '.eml': the file is a ZIP archive"


def test_a_malformed_header_costs_only_that_header() -> None:
    # The standard library's address parser raises IndexError on this To: header.
    data = b"From: Ada <ada@example.org>\r\nTo: Charles Babbage <charles@\r\nSubject: Hi\r\nDate: soon\r\n\r\nBody.\r\n"
    extracted = extract_eml(data)
    assert extracted.text == "# Hi\n\nBody."
    assert extracted.properties == {"from": "Ada <ada@example.org>", "to": "Charles Babbage <charles@", "date": "soon"}
