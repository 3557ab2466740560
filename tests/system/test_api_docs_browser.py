"""The intake's `/docs` and `/redoc` render in a real headless Chromium with no network.

The intake runs as `python -m orca_intake` on a free loopback port; Debian's Chromium loads each page with
every host name but 127.0.0.1 unresolvable, so a page that needed a CDN would stay empty. The operations'
paths appear in the dumped DOM only once Swagger UI's (or ReDoc's) JavaScript ran, since the served HTML
holds none of them; a screenshot of `/docs` must not be a blank page (the white page the CDN-loading docs
gave offline). Without Chromium the test fails (CI installs it in .ci/run), it does not skip.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from PIL import Image

from orca_intake.auth import is_loopback
from tests.processes import ManagedProcess, free_port, orca_env, wait_for_url

CHROMIUM = "/usr/bin/chromium"
EXPECTED_PATHS = [
    "/v1/collections/{collection}/documents",
    "/v1/jobs",
    "/v1/jobs/{request_id}/cancel",
    "/v1/search",
    "/v1/models",
    "/health/ready",
]
# src/href of <script> and <link> elements: what a page loads before anything else.
LOADED = re.compile(r"""<(?:script|link)\b[^>]*?\b(?:src|href)\s*=\s*["']([^"']+)["']""", re.IGNORECASE)


def chromium() -> str:
    found = shutil.which("chromium") or (CHROMIUM if Path(CHROMIUM).exists() else None)
    if found is None:
        pytest.fail(
            "Chromium is required for this test: install Debian's `chromium` package (.ci/run does)", pytrace=False
        )
    return found


@pytest.fixture(scope="module")
def intake_url(tmp_path_factory) -> Iterator[str]:
    tmp = tmp_path_factory.mktemp("docs-browser")
    port = free_port()
    process = ManagedProcess(
        [sys.executable, "-m", "orca_intake", "--host", "127.0.0.1", "--port", str(port)],
        env=orca_env(tmp / "home"),
        log_path=tmp / "intake.log",
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_url(f"{url}/health/live", timeout=60, process=process)
        yield url
    finally:
        process.stop()


def headless(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Chromium, headless, offline: every host name but 127.0.0.1 fails to resolve."""
    argv = [
        chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
        f"--user-data-dir={tmp_path / 'chromium-profile'}", "--virtual-time-budget=15000", *args,
    ]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=180, cwd=tmp_path)
    assert result.returncode == 0, f"chromium exited {result.returncode}:\n{result.stderr[-3000:]}"
    return result


def external(html: str) -> list[str]:
    """Scripts and stylesheets the page loads from anywhere but this machine."""
    urls = LOADED.findall(html)
    return [url for url in urls if urlsplit(url).scheme and not is_loopback(urlsplit(url).hostname or "")]


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_docs_pages_render_every_operation_offline(intake_url, tmp_path, page):
    served = httpx.get(f"{intake_url}{page}", timeout=10).text
    assert LOADED.findall(served) and external(served) == []
    assert not [path for path in EXPECTED_PATHS if path in served]  # only the JavaScript can put them there

    dom = headless(tmp_path, "--dump-dom", f"{intake_url}{page}").stdout
    missing = [path for path in EXPECTED_PATHS if path not in dom]
    assert not missing, f"{page} rendered without {missing}:\n{dom[:2000]}"
    assert external(dom) == []
    marker = 'class="opblock-summary-path"' if page == "/docs" else "Cancel a request, or terminate its run"
    assert marker in dom


def test_docs_screenshot_is_not_blank(intake_url, tmp_path):
    shot = tmp_path / "docs.png"
    headless(tmp_path, f"--screenshot={shot}", "--window-size=1280,900", f"{intake_url}/docs")
    with Image.open(shot) as image:
        pixels = image.convert("RGB")
        assert pixels.size == (1280, 900)
        colors = pixels.getcolors(maxcolors=1 << 20) or []
    inked = sum(count for count, color in colors if color != (255, 255, 255))
    # Swagger UI draws the title, coloured method badges and text: many colours, a fair share of the page.
    assert len(colors) > 50, f"{len(colors)} colours: the page is (nearly) blank"
    assert inked > 0.05 * 1280 * 900, f"only {inked} non-white pixels"
