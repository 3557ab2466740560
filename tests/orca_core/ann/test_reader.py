import numpy as np
import pytest

import orca_core.ann.segment as segment_module
import orca_core.ann.writer as writer_module
from orca_core.ann import open_search_copy, search_copy
from orca_core.ann.writer import update_search_copy
from orca_core.search import ModelMismatch, check_model
from orca_core.search_filter import SearchFilter
from tests.orca_core.ann.index_files import clustered, exact, write_index

ROWS = 3000


@pytest.fixture(autouse=True)
def small_graphs(monkeypatch):
    monkeypatch.setattr(writer_module, "ANN_MIN_ROWS", 64)


@pytest.fixture
def vectors():
    return clustered(ROWS)


@pytest.fixture
def copy_dir(tmp_path, vectors):
    update_search_copy(write_index(tmp_path / "index.parquet", [f"c{i}" for i in range(ROWS)], vectors), tmp_path / "copy")
    return tmp_path / "copy"


def found(rows):
    return [int(row["chunk_id"].removeprefix("c").removeprefix("new")) for row in rows]


def recall(copy, vectors, queries, keep=None, where=None):
    hits = [len(set(found(copy.search(q, 10, where))) & set(exact(vectors, q, 10, keep))) for q in queries]
    return sum(hits) / (10 * len(queries))


def test_hits_match_exact_search_with_exact_scores(copy_dir, vectors):
    copy = open_search_copy(copy_dir)
    assert copy.segments[0].graph is not None  # the graph answered, not a scan
    queries = clustered(40, seed=3)
    assert recall(copy, vectors, queries) >= 0.95
    rows = copy.search(queries[0], 5)
    scores = [row["score"] for row in rows]
    assert scores == sorted(scores, reverse=True)
    for row, score in zip(found(rows), scores, strict=True):
        assert score == pytest.approx(float(vectors[row] @ queries[0] / np.linalg.norm(queries[0])), abs=1e-5)


def test_a_hit_carries_every_column_of_the_index(copy_dir, vectors):
    (row,) = open_search_copy(copy_dir).search(vectors[11], 1)
    assert row["chunk_id"] == "c11" and row["doc_id"] == "guides/1" and row["chunk_index"] == 1
    assert (row["text"], row["source"], row["page"]) == ("text of c11", "inbox/c/1", 5)
    assert (row["section"], row["title"], row["metadata"]) == ("Intro", "A title", {"team": "other"})


@pytest.mark.parametrize("exact_rows", [0, 10**9], ids=["graph-would-walk-most", "few-rows"])
def test_a_filter_keeping_one_percent_is_ranked_exactly(copy_dir, vectors, monkeypatch, exact_rows):
    monkeypatch.setattr(segment_module, "EXACT_ROWS", exact_rows)
    copy = open_search_copy(copy_dir)
    keep = np.arange(ROWS) % 100 == 0
    where = SearchFilter(metadata={"team": "infra"})
    for query in clustered(10, seed=4):
        rows = copy.search(query, 10, where)
        assert len(rows) == 10 and all(row["metadata"] == {"team": "infra"} for row in rows)
        assert found(rows) == exact(vectors, query, 10, keep)  # 30 rows match: ranked exactly


def test_a_broad_filter_walks_the_graph_and_still_returns_k(copy_dir, vectors, monkeypatch):
    monkeypatch.setattr(segment_module, "EXACT_ROWS", 0)
    copy = open_search_copy(copy_dir)
    keep = np.arange(ROWS) % 2 == 1  # doc ids starting with guides/: half the rows
    queries = clustered(20, seed=6)
    for query in queries:
        rows = copy.search(query, 10, SearchFilter(doc_id_prefix="guides/"))
        assert len(rows) == 10 and all(row["doc_id"].startswith("guides/") for row in rows)
    assert recall(copy, vectors, queries, keep, SearchFilter(doc_id_prefix="guides/")) >= 0.9


def test_a_filter_with_fewer_matches_than_k_returns_them_all(copy_dir, vectors):
    where = SearchFilter(doc_id_prefix="notes/1", page_min=2, page_max=3)
    keep = np.array([i % 2 == 0 and str(i // 10).startswith("1") and 2 <= i % 7 + 1 <= 3 for i in range(ROWS)])
    rows = open_search_copy(copy_dir).search(vectors[0], 1000, where)
    assert sorted(found(rows)) == sorted(np.flatnonzero(keep).tolist())


def test_deleted_rows_are_never_answered_and_the_old_segment_stays_mapped(tmp_path, copy_dir, vectors):
    before = open_search_copy(copy_dir)
    changed = set(range(0, ROWS, 100))
    edited = vectors.copy()
    edited[list(changed)] = clustered(len(changed), seed=8)
    ids = [f"new{i}" if i in changed else f"c{i}" for i in range(ROWS)]
    update_search_copy(write_index(tmp_path / "index.parquet", ids, edited), copy_dir)
    after = open_search_copy(copy_dir)
    assert after is not before and len(after.segments) == 2
    assert after.segments[0].vectors is before.segments[0].vectors  # mapped once: only the new segment was opened
    for i in sorted(changed)[:5]:
        rows = after.search(vectors[i], 10)  # the old vector of a changed row
        assert f"c{i}" not in [row["chunk_id"] for row in rows]
        assert after.search(edited[i], 1)[0]["chunk_id"] == f"new{i}"
    assert recall(after, edited, clustered(40, seed=3)) >= 0.95


def test_an_unchanged_manifest_is_not_opened_again(copy_dir):
    assert open_search_copy(copy_dir) is open_search_copy(copy_dir)


def test_no_copy_is_none(tmp_path):
    assert open_search_copy(tmp_path / "none") is None


def test_the_model_is_checked_before_the_query_is_embedded(copy_dir):
    class Other:
        def model_info(self):
            return type("Info", (), {"name": "other"})()

        def embed_query(self, text):
            raise AssertionError("embedded a query the index cannot rank")

    copy = open_search_copy(copy_dir)
    with pytest.raises(ModelMismatch, match="built with 'm'"):
        search_copy(copy, Other(), "q", 3, collection="c")
    check_model(copy, "m", "c")
    with pytest.raises(ModelMismatch, match="dimensions"):
        copy.search(np.ones(8, np.float32), 3)
