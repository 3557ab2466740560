"""Jupyter notebooks (`.ipynb`, nbformat 4 and 3): markdown cells as they are, code cells as fenced code in
the kernel's language, raw cells as text. Outputs are left out: they are results (tables of numbers, images,
tracebacks), not what the author wrote, and often far larger than the notebook's own text.
"""

from __future__ import annotations

import json
import re
from typing import Any

from orca_core.formats import DocumentError, Extracted
from orca_core.formats.sniff import TEXT, require
from orca_core.formats.text import decode_utf8, first_heading

_BACKTICKS = re.compile(r"`{3,}")
_LANGUAGE = re.compile(r"[A-Za-z0-9_+#.-]+")


def extract_ipynb(data: bytes) -> Extracted:
    require(data, ".ipynb", TEXT)
    try:
        notebook = json.loads(decode_utf8(data))
    except json.JSONDecodeError as error:
        raise DocumentError(f"invalid notebook: not JSON ({error.msg} at line {error.lineno})") from None
    except RecursionError:
        raise DocumentError("invalid notebook: nested too deeply") from None
    if not isinstance(notebook, dict):
        raise DocumentError("invalid notebook: not a JSON object")
    cells = _cells(notebook)
    if cells is None:
        raise DocumentError("invalid notebook: no list of cells (not nbformat 3 or 4)")
    metadata = notebook.get("metadata") if isinstance(notebook.get("metadata"), dict) else {}
    language = _language(metadata)
    blocks: list[str] = []
    markdown: list[str] = []
    for cell in cells:
        if not isinstance(cell, dict):
            continue
        source = _source(cell.get("source", cell.get("input", "")))
        if not source.strip():
            continue
        if cell.get("cell_type") == "code":
            blocks.append(_fence(source.strip("\n"), language))
        else:
            blocks.append(source.strip())
            if cell.get("cell_type") == "markdown":
                markdown.append(source)
    properties = {"kernel": language} if language else {}
    # The title from markdown cells only: a `# comment` in a code cell is no heading.
    return Extracted(text="\n\n".join(blocks), title=first_heading("\n\n".join(markdown)), properties=properties)


def _cells(notebook: dict[str, Any]) -> list[Any] | None:
    cells = notebook.get("cells")
    if isinstance(cells, list):
        return cells
    worksheets = notebook.get("worksheets")  # nbformat 3
    if isinstance(worksheets, list):
        return [cell for sheet in worksheets if isinstance(sheet, dict) for cell in sheet.get("cells") or []]
    return None


def _source(source: object) -> str:
    if isinstance(source, list):
        return "".join(part for part in source if isinstance(part, str))
    return source if isinstance(source, str) else ""


def _language(metadata: dict[str, Any]) -> str:
    for key, field in (("kernelspec", "language"), ("language_info", "name")):
        section = metadata.get(key)
        value = section.get(field) if isinstance(section, dict) else None
        if isinstance(value, str) and _LANGUAGE.fullmatch(value.strip()):
            return value.strip()
    return ""


def _fence(code: str, language: str) -> str:
    # A fence longer than any run of backticks inside, so code holding ``` cannot close it early.
    longest = max((len(run) for run in _BACKTICKS.findall(code)), default=2)
    fence = "`" * max(3, longest + 1)
    return f"{fence}{language}\n{code}\n{fence}"
