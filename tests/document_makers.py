"""Test documents of every packaged format, written with the formats' writer libraries (no fixture files).

Each maker returns the file's bytes. The writer libraries are dev-only dependencies: reportlab (PDF), pypdf
(PDF encryption), python-docx, python-pptx, openpyxl; EPUB, e-mail and notebooks use the standard library.
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Sequence
from email.message import EmailMessage
from urllib.parse import quote

# An outline entry: (title, zero-based page index, depth).
Bookmark = tuple[str, int, int]


def make_pdf(
    pages: Sequence[Sequence[str]],
    *,
    outline: Sequence[Bookmark] = (),
    title: str | None = None,
    author: str | None = None,
    subject: str | None = None,
    keywords: str | None = None,
    password: str | None = None,
) -> bytes:
    """A PDF with one page per item of `pages`, each a list of paragraphs wrapped to the page width."""
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.utils import simpleSplit
    from reportlab.pdfgen.canvas import Canvas

    buffer = io.BytesIO()
    canvas = Canvas(buffer, pagesize=A4, encrypt=password, invariant=1)
    for value, setter in ((title, canvas.setTitle), (author, canvas.setAuthor), (subject, canvas.setSubject)):
        if value:
            setter(value)
    if keywords:
        canvas.setKeywords(keywords)
    width, height = A4
    marks = {}
    for number, (mark_title, page, depth) in enumerate(outline):
        marks.setdefault(page, []).append((f"m{number}", mark_title, depth))
    for index, paragraphs in enumerate(pages):
        for key, mark_title, depth in marks.get(index, []):
            canvas.bookmarkPage(key)
            canvas.addOutlineEntry(mark_title, key, level=depth)
        text = canvas.beginText(60, height - 60)
        text.setFont("Helvetica", 11)
        for paragraph in paragraphs:
            for line in simpleSplit(paragraph, "Helvetica", 11, width - 120):
                text.textLine(line)
            text.textLine("")
        canvas.drawText(text)
        canvas.showPage()
    canvas.save()
    return buffer.getvalue()


def make_scanned_pdf(page_count: int = 2) -> bytes:
    """Pages holding only a picture, the way a scanner writes them: no text layer."""
    from PIL import Image, ImageDraw
    from reportlab.lib.utils import ImageReader
    from reportlab.pdfgen.canvas import Canvas

    picture = Image.new("L", (300, 100), 255)
    ImageDraw.Draw(picture).text((10, 40), "scanned words", fill=0)
    buffer = io.BytesIO()
    canvas = Canvas(buffer, invariant=1)
    for _ in range(page_count):
        canvas.drawImage(ImageReader(picture), 50, 500, width=300, height=100)
        canvas.showPage()
    canvas.save()
    return buffer.getvalue()


def encrypt_pdf(data: bytes, password: str) -> bytes:
    """The same PDF protected with a user password, with pypdf's AES-256."""
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(data)))
    writer.encrypt(user_password=password, algorithm="AES-256")
    buffer = io.BytesIO()
    writer.write(buffer)
    return buffer.getvalue()


def add_outline(data: bytes, outline: Sequence[Bookmark]) -> bytes:
    """The same PDF with an outline written by pypdf, whose entries point at GoTo actions, not destinations."""
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(data)))
    parents: list[object] = []
    for title, page, depth in outline:
        del parents[depth:]
        parent = parents[-1] if parents else None
        parents.append(writer.add_outline_item(title=title, page_number=page, parent=parent))
    buffer = io.BytesIO()
    writer.write(buffer)
    return buffer.getvalue()


def make_docx(blocks: Sequence[tuple[str, object]], *, title: str | None = None, author: str | None = None) -> bytes:
    """A DOCX from (kind, value) blocks: ("title", s), ("h1".."h6", s), ("p", s), ("bullet", s),
    ("number", s), ("table", rows)."""
    import docx

    document = docx.Document()
    for kind, value in blocks:
        if kind == "title":
            document.add_heading(str(value), level=0)
        elif kind.startswith("h"):
            document.add_heading(str(value), level=int(kind[1:]))
        elif kind == "p":
            document.add_paragraph(str(value))
        elif kind == "bullet":
            document.add_paragraph(str(value), style="List Bullet")
        elif kind == "number":
            document.add_paragraph(str(value), style="List Number")
        elif kind == "table":
            rows = list(value)  # type: ignore[call-overload]
            table = document.add_table(rows=len(rows), cols=len(rows[0]))
            for row, cells in zip(table.rows, rows):
                for cell, text in zip(row.cells, cells):
                    cell.text = str(text)
    if title:
        document.core_properties.title = title
    if author:
        document.core_properties.author = author
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


def make_pptx(slides: Sequence[tuple[str, Sequence[str]]], *, table: Sequence[Sequence[str]] = (),
              title: str | None = None) -> bytes:  # fmt: skip
    """A PPTX with one "Title and Content" slide per (title, bullets); `table` goes on a last slide."""
    from pptx import Presentation
    from pptx.util import Inches

    deck = Presentation()
    for slide_title, bullets in slides:
        slide = deck.slides.add_slide(deck.slide_layouts[1])
        slide.shapes.title.text = slide_title
        frame = slide.placeholders[1].text_frame
        for number, bullet in enumerate(bullets):
            paragraph = frame.paragraphs[0] if number == 0 else frame.add_paragraph()
            paragraph.text = bullet
    if table:
        slide = deck.slides.add_slide(deck.slide_layouts[5])
        slide.shapes.title.text = "Figures"
        shape = slide.shapes.add_table(len(table), len(table[0]), Inches(1), Inches(2), Inches(6), Inches(2))
        for r, cells in enumerate(table):
            for c, text in enumerate(cells):
                shape.table.cell(r, c).text = text
    if title:
        deck.core_properties.title = title
    buffer = io.BytesIO()
    deck.save(buffer)
    return buffer.getvalue()


def make_xlsx(sheets: dict[str, Sequence[Sequence[object]]], *, title: str | None = None) -> bytes:
    """An XLSX with one sheet per item (name -> rows); None cells stay empty."""
    from openpyxl import Workbook

    book = Workbook()
    book.remove(book.active)
    for name, rows in sheets.items():
        sheet = book.create_sheet(name)
        for row in rows:
            sheet.append(list(row))
    if title:
        book.properties.title = title
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def make_epub(chapters: Sequence[tuple[str, str]], *, title: str = "A Book", author: str = "An Author",
              language: str = "en", reverse_manifest: bool = True) -> bytes:  # fmt: skip
    """An EPUB 3 of (file name, XHTML body) chapters. The manifest lists them in reverse so that a reader
    following the manifest instead of the spine gets the order wrong; its hrefs are URL-encoded, as the
    format requires ("my chapter.xhtml" is "my%20chapter.xhtml")."""
    items = list(enumerate(chapters))
    manifest = "".join(
        f'<item id="c{n}" href="{quote(name)}" media-type="application/xhtml+xml"/>'
        for n, (name, _) in (reversed(items) if reverse_manifest else items)
    )
    spine = "".join(f'<itemref idref="c{n}"/>' for n, _ in items)
    opf = f"""<?xml version="1.0" encoding="utf-8"?>
<package xmlns="http://www.idpf.org/2007/opf" version="3.0" unique-identifier="id">
<metadata xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:identifier id="id">urn:uuid:1</dc:identifier>
<dc:title>{title}</dc:title><dc:creator>{author}</dc:creator><dc:language>{language}</dc:language></metadata>
<manifest>{manifest}<item id="nav" href="nav.xhtml" media-type="application/xhtml+xml" properties="nav"/></manifest>
<spine>{spine}</spine></package>"""
    container = """<?xml version="1.0"?>
<container version="1.0" xmlns="urn:oasis:names:tc:opendocument:xmlns:container">
<rootfiles><rootfile full-path="OEBPS/content.opf" media-type="application/oebps-package+xml"/></rootfiles>
</container>"""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(zipfile.ZipInfo("mimetype"), "application/epub+zip")  # stored, first: the EPUB rule
        archive.writestr("META-INF/container.xml", container, zipfile.ZIP_DEFLATED)
        archive.writestr("OEBPS/content.opf", opf, zipfile.ZIP_DEFLATED)
        archive.writestr("OEBPS/nav.xhtml", _xhtml("<nav><ol><li>Contents</li></ol></nav>"), zipfile.ZIP_DEFLATED)
        for name, body in chapters:
            archive.writestr(f"OEBPS/{name}", _xhtml(body), zipfile.ZIP_DEFLATED)
    return buffer.getvalue()


def _xhtml(body: str) -> str:
    return (
        '<?xml version="1.0" encoding="utf-8"?><html xmlns="http://www.w3.org/1999/xhtml">'
        f"<head><title>t</title></head><body>{body}</body></html>"
    )


def make_eml(*, subject: str = "Quarterly figures", plain: str | None = None, html: str | None = None,
             attachments: Sequence[tuple[str, bytes]] = ()) -> bytes:  # fmt: skip
    message = EmailMessage()
    message["From"] = "Ada Lovelace <ada@example.org>"
    message["To"] = "Charles Babbage <charles@example.org>"
    message["Cc"] = "team@example.org"
    message["Subject"] = subject
    message["Date"] = "Tue, 04 Mar 2025 10:15:00 +0100"
    message["Message-ID"] = "<figures-1@example.org>"
    if plain is not None:
        message.set_content(plain)
    if html is not None:
        if plain is None:
            message.set_content(html, subtype="html")
        else:
            message.add_alternative(html, subtype="html")
    for name, payload in attachments:
        maintype, subtype = ("image", "png") if name.endswith(".png") else ("application", "octet-stream")
        message.add_attachment(payload, maintype=maintype, subtype=subtype, filename=name)
    return message.as_bytes()


def make_ipynb(cells: Sequence[tuple[str, str]]) -> bytes:
    """A notebook of (cell type, source) cells; code cells get an output that must not be indexed."""
    notebook_cells = []
    for kind, source in cells:
        cell: dict[str, object] = {"cell_type": kind, "metadata": {}, "source": source.splitlines(keepends=True)}
        if kind == "code":
            cell["outputs"] = [{"output_type": "stream", "name": "stdout", "text": ["OUTPUT-NOT-INDEXED\n"]}]
            cell["execution_count"] = 1
        notebook_cells.append(cell)
    notebook = {
        "cells": notebook_cells,
        "metadata": {"kernelspec": {"name": "python3", "language": "python", "display_name": "Python 3"}},
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    return json.dumps(notebook).encode("utf-8")


def make_zip_bomb(member: str = "word/document.xml", size: int = 300 * 1024 * 1024) -> bytes:
    """A ZIP holding `[Content_Types].xml` and one member of `size` zero bytes (deflate packs it ~1000:1)."""
    buffer = io.BytesIO()
    chunk = bytes(1024 * 1024)
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        with archive.open(member, "w", force_zip64=True) as handle:
            written = 0
            while written < size:
                handle.write(chunk[: size - written])
                written += len(chunk)
    return buffer.getvalue()


def make_ole2() -> bytes:
    """The first bytes of an OLE2 compound file: what an encrypted OOXML file or a pre-2007 .doc looks like."""
    return bytes.fromhex("D0CF11E0A1B11AE1") + bytes(504)


def damage_member(data: bytes, member: str) -> bytes:
    """The same ZIP with `member` cut in half: a package whose XML no longer parses."""
    source = zipfile.ZipFile(io.BytesIO(data))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as damaged:
        for info in source.infolist():
            body = source.read(info)
            damaged.writestr(info, body[: len(body) // 2] if info.filename == member else body)
    return buffer.getvalue()
