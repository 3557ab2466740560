"""Filtered search at `/v1/search`: metadata values, a doc_id prefix and a page range narrow the rows before
ranking, and every hit carries its page, section, title and metadata."""

from __future__ import annotations

import pytest

from orca_resources.hashing_embedder import HashingEmbedderResource

FILTERED = [  # (text, doc_id, page, section, title, metadata)
    ("Install Orca on Linux with apt.", "guides/install.pdf", 1, "Install > Linux", "Install guide", '{"team": "infra"}'),
    ("Install Orca on a Mac with brew.", "guides/install.pdf", 2, "Install > Mac", "Install guide", '{"team": "infra"}'),
    ("Install the coffee machine in the kitchen.", "office/kitchen.md", None, None, "Kitchen", '{"team": "facilities"}'),
    ("Orca installs in minutes on any Linux host.", "blog/orca.md", None, "News", None, '{"team": "infra", "n": 3}'),
]


@pytest.fixture
def filtered_index(intake_client, write_index):
    index = intake_client.app.state.settings.layout.index_path("docs")
    texts, doc_ids, pages, sections, titles, metadata = map(list, zip(*FILTERED))
    write_index(index, texts, HashingEmbedderResource(), doc_ids=doc_ids, page=pages, section=sections, title=titles,
                metadata=metadata)
    return intake_client


def _search(client, **body):
    response = client.post("/v1/search", json={"collection": "docs", "query": "install on linux", **body})
    assert response.status_code == 200, response.text
    return response.json()["results"]


def test_a_filter_narrows_before_ranking_and_hits_carry_their_provenance(filtered_index):
    infra = _search(filtered_index, k=3, filter={"metadata": {"team": "infra"}})
    assert len(infra) == 3 and {hit["metadata"]["team"] for hit in infra} == {"infra"}  # k of the 3 matching
    assert _search(filtered_index, k=2, filter={"metadata": {"team": "facilities"}})[0]["doc_id"] == "office/kitchen.md"
    guides = _search(filtered_index, k=5, filter={"doc_id_prefix": "guides/"})
    assert [hit["doc_id"] for hit in guides] == ["guides/install.pdf"] * 2
    linux = _search(filtered_index, k=5, filter={"page_min": 1, "page_max": 1})
    assert [(hit["page"], hit["section"], hit["title"]) for hit in linux] == [(1, "Install > Linux", "Install guide")]
    assert _search(filtered_index, filter={"metadata": {"n": 3}})[0]["doc_id"] == "blog/orca.md"
    assert _search(filtered_index, filter={"metadata": {"team": "infra"}, "doc_id_prefix": "blog/"})[0]["section"] == "News"
    assert _search(filtered_index, filter={"metadata": {"team": "nobody"}}) == []


def test_every_match_comes_back_even_when_the_filter_keeps_the_worst_rows(filtered_index):
    unfiltered = _search(filtered_index, k=4)
    worst = unfiltered[-1]["doc_id"]
    assert [hit["doc_id"] for hit in _search(filtered_index, k=4, filter={"doc_id_prefix": worst})] == [worst]


@pytest.mark.parametrize(
    "bad",
    [{"page_min": 3, "page_max": 2}, {"page_min": 0}, {"metadata": {"a": {"nested": 1}}}, {"colour": "red"}],
)
def test_a_bad_filter_is_a_422(filtered_index, bad):
    response = filtered_index.post("/v1/search", json={"collection": "docs", "query": "x", "filter": bad})
    assert response.status_code == 422 and response.json()["error"]["code"] == "validation_error", response.text
