"""PPTX: each slide's title as a `## ` heading, then its text frames, tables and speaker notes, with
python-pptx (MIT), the one maintained PPTX reader for Python. `pages` holds where each slide starts.

Text in a body placeholder is the slide's bullet list and comes out as `- ` items (indented by level); other
text boxes come out as paragraphs. Shapes are read in the slide's order, groups opened.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Iterator
from typing import Any

from orca_core.formats import DocumentError, Extracted
from orca_core.formats.failures import unreadable
from orca_core.formats.pages import PagedText
from orca_core.formats.tables import markdown_table
from orca_core.formats.zipguard import PPTX, core_properties, open_zip

_BULLET_PLACEHOLDERS = frozenset({"BODY", "OBJECT", "VERTICAL_BODY", "VERTICAL_OBJECT"})
_TITLE_PLACEHOLDERS = frozenset({"TITLE", "CENTER_TITLE", "VERTICAL_TITLE"})
_SKIPPED_PLACEHOLDERS = frozenset({"DATE", "FOOTER", "SLIDE_NUMBER", "HEADER"})


def extract_pptx(data: bytes) -> Extracted:
    archive = open_zip(data, ".pptx", PPTX)
    title, properties = core_properties(archive)
    from pptx import Presentation

    paged = PagedText()
    first_title = None
    try:
        for slide in Presentation(io.BytesIO(data)).slides:
            heading, blocks = _slide(slide)
            first_title = first_title or heading
            paged.add("\n\n".join(([f"## {heading}"] if heading else []) + blocks))
    except DocumentError:
        raise
    except Exception as error:  # noqa: BLE001 - python-pptx and lxml raise many kinds; one short reason
        raise unreadable("PPTX", error) from None
    return Extracted(text=paged.text(), pages=paged.pages, title=title or first_title, properties=properties)


def _slide(slide: Any) -> tuple[str | None, list[str]]:
    """The slide's title and its other blocks."""
    heading = None
    blocks: list[str] = []
    for shape in _shapes(slide.shapes):
        kind = _placeholder_kind(shape)
        if kind in _SKIPPED_PLACEHOLDERS:
            continue
        if kind in _TITLE_PLACEHOLDERS and heading is None and shape.has_text_frame:
            heading = " ".join(shape.text_frame.text.split()) or None
            if heading:
                continue
        if shape.has_text_frame:
            blocks.extend(_text_frame(shape.text_frame, bullets=kind in _BULLET_PLACEHOLDERS))
        elif getattr(shape, "has_table", False) and shape.has_table:
            rows = [[cell.text for cell in row.cells] for row in shape.table.rows]
            table = markdown_table(rows)
            if table:
                blocks.append(table)
    if slide.has_notes_slide:
        notes = slide.notes_slide.notes_text_frame
        text = "\n".join(" ".join(p.text.split()) for p in notes.paragraphs) if notes is not None else ""
        if text.strip():
            blocks.append("Notes: " + text.strip())
    return heading, blocks


def _shapes(shapes: Iterable[Any]) -> Iterator[Any]:
    for shape in shapes:
        if hasattr(shape, "shapes"):  # a group: its members, in order
            yield from _shapes(shape.shapes)
        else:
            yield shape


def _placeholder_kind(shape: Any) -> str | None:
    if not shape.is_placeholder:
        return None
    kind = shape.placeholder_format.type
    return kind.name if kind is not None else None


def _text_frame(frame: Any, *, bullets: bool) -> list[str]:
    lines = []
    for paragraph in frame.paragraphs:
        text = " ".join(paragraph.text.split())
        if text:
            lines.append("  " * paragraph.level + "- " + text if bullets else text)
    if not lines:
        return []
    # Bullets stay one tight list; a text box's lines are one paragraph of lines.
    return ["\n".join(lines)]
