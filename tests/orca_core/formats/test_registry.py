"""Every packaged format in PACKAGED_FORMATS converts through `extract`, with the heavy libraries loaded late."""

from __future__ import annotations

import random
import subprocess
import sys
from pathlib import Path

import pytest

from orca_core.formats import PACKAGED_FORMATS, DocumentError, extract
from tests import document_makers as make

REPO = Path(__file__).resolve().parents[3]

SAMPLES = {
    ".pdf": lambda: make.make_pdf([["Lighthouse keepers log the weather."]]),
    ".docx": lambda: make.make_docx([("p", "Lighthouse keepers log the weather.")]),
    ".pptx": lambda: make.make_pptx([("Log", ["Lighthouse keepers log the weather."])]),
    ".xlsx": lambda: make.make_xlsx({"Log": [["Note"], ["Lighthouse keepers log the weather."]]}),
    ".epub": lambda: make.make_epub([("a.xhtml", "<p>Lighthouse keepers log the weather.</p>")]),
    ".csv": lambda: b"note\nLighthouse keepers log the weather.\n",
    ".eml": lambda: make.make_eml(plain="Lighthouse keepers log the weather."),
    ".ipynb": lambda: make.make_ipynb([("markdown", "Lighthouse keepers log the weather.")]),
}


def test_every_packaged_format_has_a_sample() -> None:
    assert set(SAMPLES) == set(PACKAGED_FORMATS)


@pytest.mark.parametrize("suffix", sorted(PACKAGED_FORMATS))
def test_extract_converts_each_packaged_format(suffix: str) -> None:
    extracted = extract(suffix, SAMPLES[suffix]())
    assert "Lighthouse keepers log the weather." in extracted.text
    assert all(isinstance(value, str) and value for value in extracted.properties.values())


def test_importing_the_formats_loads_no_heavy_library() -> None:
    script = (
        "import sys, orca_core.formats, orca_core.formats.text\n"
        "heavy = {'pypdfium2', 'docx', 'pptx', 'python_calamine', 'lxml'}\n"
        "print(sorted(heavy & set(sys.modules)))\n"
    )
    result = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


@pytest.mark.parametrize("suffix", sorted(PACKAGED_FORMATS))
def test_damaged_files_raise_only_document_errors(suffix: str) -> None:
    # Truncations, flipped bytes and cut-out runs: every library's own exceptions must become a reason.
    rng = random.Random(suffix)
    original = SAMPLES[suffix]()
    for attempt in range(60):
        data = bytearray(original)
        if attempt % 3 == 0:
            data = data[: rng.randrange(len(data))]
        elif attempt % 3 == 1:
            for _ in range(rng.randint(1, 20)):
                data[rng.randrange(len(data))] = rng.randrange(256)
        else:
            start = rng.randrange(len(data))
            del data[start : start + rng.randint(1, 200)]
        try:
            extract(suffix, bytes(data))
        except DocumentError as error:
            assert error.reason and "\n" not in error.reason
