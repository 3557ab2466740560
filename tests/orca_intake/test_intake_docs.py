"""`/docs` and `/redoc` load their JavaScript and CSS from the intake itself (no CDN), open to a browser on
this machine without a token as the rest of the docs are, and every router's tag is described.

tests/system/test_api_docs_browser.py renders them in a real headless Chromium."""

from __future__ import annotations

import re

import pytest

ASSET = re.compile(r"""(?:src|href)\s*=\s*["']([^"']+)["']""")


def references(html: str) -> list[str]:
    return ASSET.findall(html)


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_pages_reference_only_their_own_assets_and_those_are_served(intake_client, page):
    response = intake_client.get(page)
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/html")
    found = references(response.text)
    assert found and all(url.startswith("/docs/assets/") for url in found), found
    assert "://" not in response.text  # nothing from another host: no CDN, no web fonts
    for url in found:
        asset = intake_client.get(url)
        assert asset.status_code == 200 and len(asset.content) > 1000, url
    script = next(url for url in found if url.endswith(".js"))
    assert "javascript" in intake_client.get(script).headers["content-type"]


def test_swagger_ui_is_version_5_and_redoc_version_2(intake_client):
    swagger = intake_client.get("/docs/assets/swagger-ui-bundle.js").text
    assert "SwaggerUIBundle" in swagger
    redoc = intake_client.get("/docs/assets/redoc.standalone.js").text
    assert "Redoc" in redoc
    html = intake_client.get("/docs").text
    assert "SwaggerUIBundle(" in html and "/openapi.json" in html


def test_docs_need_no_token_but_v1_does(intake_app_factory):
    client = intake_app_factory(ORCA_INTAKE_TOKENS="a-token-0123456789abcdef")
    for path in ("/docs", "/redoc", "/docs/assets/swagger-ui.css", "/openapi.json"):
        assert client.get(path).status_code == 200, path
    assert client.get("/v1/jobs").status_code == 401


def test_without_tokens_docs_are_for_this_machine_only(intake_client):
    foreign = intake_client.get("/docs/assets/swagger-ui-bundle.js", headers={"Host": "evil.example"})
    assert foreign.status_code == 403 and foreign.json()["error"]["code"] == "cross_site_refused"
    cross = intake_client.get("/docs", headers={"Sec-Fetch-Site": "cross-site"})
    assert cross.status_code == 403


def test_every_tag_of_an_operation_has_a_description(intake_client):
    spec = intake_client.get("/openapi.json").json()
    described = {tag["name"]: tag["description"] for tag in spec["tags"]}
    used = {tag for operations in spec["paths"].values() for op in operations.values() for tag in op["tags"]}
    assert used == set(described), (used, set(described))
    assert all(len(text) > 30 for text in described.values())
