"""EPUB: chapters in spine order with their headings, Dublin Core metadata, broken and hostile archives."""

from __future__ import annotations

import io
import zipfile

import pytest

from orca_core.formats import DocumentError, Extracted
from orca_core.formats.epub import extract_epub
from tests.document_makers import make_docx, make_epub, make_zip_bomb


def reason(data: bytes) -> str:
    with pytest.raises(DocumentError) as caught:
        extract_epub(data)
    return caught.value.reason


@pytest.fixture(scope="module")
def extracted() -> Extracted:
    cargo = "<h2>Cargo</h2><table><tr><th>Item</th><th>Tons</th></tr><tr><td>Tea</td><td>40</td></tr></table>"
    chapters = [
        ("text/one.xhtml", "<h1>The Voyage</h1><p>The ship left Bristol at night.</p>"),
        ("text/two b.xhtml", "<h2>Storms</h2><ul><li>hail</li><li>fog</li></ul>"),
        ("text/three.xhtml", cargo),
    ]
    return extract_epub(make_epub(chapters, title="Sea Log", author="Mary Read", language="en-GB"))


def test_chapters_come_in_spine_order_with_their_headings(extracted: Extracted) -> None:
    # The manifest lists the chapters in reverse: only the spine gives this order.
    assert extracted.text == (
        "# The Voyage\n\nThe ship left Bristol at night.\n\n## Storms\n\n- hail\n\n- fog\n\n"
        "## Cargo\n\n| Item | Tons |\n| --- | --- |\n| Tea | 40 |"
    )
    assert extracted.pages is None


def test_title_and_properties_from_dublin_core(extracted: Extracted) -> None:
    assert extracted.title == "Sea Log"
    assert extracted.properties == {"author": "Mary Read", "language": "en-GB"}


def test_missing_container_is_corrupt() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("mimetype", "application/epub+zip")
        archive.writestr("OEBPS/content.opf", "<package/>")
    assert reason(buffer.getvalue()) == "corrupt EPUB: META-INF/container.xml is missing or unreadable"


def test_zip_bomb_is_refused() -> None:
    assert reason(make_zip_bomb("OEBPS/chapter.xhtml", size=20 * 1024 * 1024)).startswith(
        "zip bomb? its part 'OEBPS/chapter.xhtml' would expand to 20971520 bytes"
    )


def test_other_zip_files_are_named() -> None:
    assert reason(make_docx([("p", "x")])) == "content does not match '.epub': the file is a Word document (DOCX)"
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("photo.txt", "hello")
    assert reason(buffer.getvalue()) == "content does not match '.epub': the file is a ZIP archive"
