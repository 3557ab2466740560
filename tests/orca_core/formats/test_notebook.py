"""Notebooks: markdown as it is, code fenced in the kernel's language, outputs left out."""

from __future__ import annotations

import json

import pytest

from orca_core.formats import DocumentError
from orca_core.formats.notebook import extract_ipynb
from tests.document_makers import make_ipynb


def reason(data: bytes) -> str:
    with pytest.raises(DocumentError) as caught:
        extract_ipynb(data)
    return caught.value.reason


def test_cells_in_order_code_fenced_outputs_skipped() -> None:
    data = make_ipynb([
        ("code", "# not a heading\nimport math"),
        ("markdown", "# Tides\n\nThe moon pulls the sea."),
        ("code", 'print("```")'),
        ("markdown", "  "),
    ])  # fmt: skip
    extracted = extract_ipynb(data)
    assert extracted.text == (
        "```python\n# not a heading\nimport math\n```\n\n# Tides\n\nThe moon pulls the sea.\n\n"
        '````python\nprint("```")\n````'
    )
    assert "OUTPUT-NOT-INDEXED" not in extracted.text
    assert extracted.title == "Tides"  # from a markdown cell, not the code comment
    assert extracted.properties == {"kernel": "python"}


def test_nbformat_3_worksheets() -> None:
    notebook = {"nbformat": 3, "metadata": {}, "worksheets": [{"cells": [
        {"cell_type": "markdown", "source": ["Old ", "notebook"]},
        {"cell_type": "code", "input": "x = 1", "outputs": []},
    ]}]}  # fmt: skip
    assert extract_ipynb(json.dumps(notebook).encode()).text == "Old notebook\n\n```\nx = 1\n```"


def test_bad_inputs_are_explained() -> None:
    assert reason(b'{"cells": [').startswith("invalid notebook: not JSON")
    assert reason(b'{"nbformat": 4}') == "invalid notebook: no list of cells (not nbformat 3 or 4)"
    assert reason(b"[1, 2]") == "invalid notebook: not a JSON object"
