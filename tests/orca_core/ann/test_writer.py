import json
import os

import numpy as np
import pytest

import orca_core.ann.writer as writer_module
from orca_core.ann import open_search_copy, read_manifest
from orca_core.ann.manifest import MANIFEST_FILE
from orca_core.ann.writer import update_search_copy
from tests.orca_core.ann.index_files import clustered, write_index

ROWS = 2000


@pytest.fixture(autouse=True)
def small_graphs(monkeypatch):
    monkeypatch.setattr(writer_module, "ANN_MIN_ROWS", 64)  # graphs even for the tests' small segments


def ids(rows, renamed=()):
    return [f"new{i}" if i in renamed else f"c{i}" for i in range(rows)]


def test_the_first_copy_is_one_segment_with_a_graph(tmp_path):
    index = write_index(tmp_path / "index.parquet", ids(ROWS), clustered(ROWS))
    update = update_search_copy(index, tmp_path / "copy")
    manifest = read_manifest(tmp_path / "copy")
    assert (update.added, update.deleted, update.rewritten) == (ROWS, 0, True)
    assert manifest.rows == ROWS and [s.rows for s in manifest.segments] == [ROWS]
    assert manifest.segments[0].ann and (tmp_path / "copy" / "seg-000001.hnsw.usearch").stat().st_size > 0
    assert (manifest.model, manifest.dimensions) == ("m", 32)
    assert update.graph_cpu_seconds > 0  # reported in the run's metadata as search_graph_cpu_seconds


def test_an_unchanged_index_writes_nothing(tmp_path):
    index = write_index(tmp_path / "index.parquet", ids(ROWS), clustered(ROWS))
    update_search_copy(index, tmp_path / "copy")
    before = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "copy").iterdir()}
    update = update_search_copy(index, tmp_path / "copy")
    assert update.unchanged and update.added == update.deleted == 0 and update.graph_cpu_seconds == 0
    assert {p.name: p.stat().st_mtime_ns for p in (tmp_path / "copy").iterdir()} == before


def test_a_one_percent_change_writes_only_the_changed_rows(tmp_path):
    vectors = clustered(ROWS)
    update_search_copy(write_index(tmp_path / "index.parquet", ids(ROWS), vectors), tmp_path / "copy")
    first = (tmp_path / "copy" / "seg-000001.vectors.npy").stat()
    changed = set(range(0, ROWS, 100))  # 1%: 20 rows get new text, hence new chunk ids
    vectors[list(changed)] = clustered(len(changed), seed=5)
    update = update_search_copy(write_index(tmp_path / "index.parquet", ids(ROWS, changed), vectors), tmp_path / "copy")
    assert (update.added, update.deleted, update.rewritten) == (20, 20, False)
    manifest = read_manifest(tmp_path / "copy")
    assert [s.rows for s in manifest.segments] == [ROWS, 20] and manifest.rows == ROWS
    assert manifest.deleted_rows == 20
    again = (tmp_path / "copy" / "seg-000001.vectors.npy").stat()
    assert (again.st_ino, again.st_mtime_ns) == (first.st_ino, first.st_mtime_ns)  # the big segment is untouched


def test_a_metadata_change_rewrites_that_row(tmp_path):
    vectors = clustered(ROWS)
    update_search_copy(write_index(tmp_path / "index.parquet", ids(ROWS), vectors), tmp_path / "copy")
    index = write_index(tmp_path / "index.parquet", ids(ROWS), vectors, team=lambda i: "ops" if i == 7 else "other")
    update = update_search_copy(index, tmp_path / "copy")
    # The 20 'infra' rows (every 100th) became 'other' and row 7 'ops': those 21 differ, nothing else does.
    assert (update.added, update.deleted) == (21, 21)


def test_a_new_model_rewrites_the_whole_copy(tmp_path):
    vectors = clustered(ROWS)
    update_search_copy(write_index(tmp_path / "index.parquet", ids(ROWS), vectors), tmp_path / "copy")
    update = update_search_copy(write_index(tmp_path / "index.parquet", ids(ROWS), vectors, model="other"),
                                tmp_path / "copy")  # fmt: skip
    manifest = read_manifest(tmp_path / "copy")
    assert update.rewritten and manifest.model == "other" and [s.number for s in manifest.segments] == [2]
    assert manifest.deleted is None


def test_changes_past_the_compaction_share_rewrite_the_copy(tmp_path):
    vectors = clustered(ROWS)
    update_search_copy(write_index(tmp_path / "index.parquet", ids(ROWS), vectors), tmp_path / "copy")
    changed = set(range(0, ROWS, 3))  # a third of the rows
    update = update_search_copy(write_index(tmp_path / "index.parquet", ids(ROWS, changed), vectors), tmp_path / "copy")
    assert update.rewritten and [s.rows for s in read_manifest(tmp_path / "copy").segments] == [ROWS]


def test_files_of_older_versions_are_collected(tmp_path):
    vectors = clustered(ROWS)
    for model in ("a", "b", "c"):
        update_search_copy(write_index(tmp_path / "index.parquet", ids(ROWS), vectors, model=model), tmp_path / "copy")
    names = {p.name for p in (tmp_path / "copy").iterdir()}
    # The current version's files and the previous one's (a reader may be opening them), nothing older.
    assert not any(name.startswith("seg-000001") for name in names)
    assert any(name.startswith("seg-000002") for name in names) and any(name.startswith("seg-000003") for name in names)


def test_a_crash_before_the_manifest_leaves_the_last_version_whole(tmp_path, monkeypatch):
    vectors = clustered(ROWS)
    update_search_copy(write_index(tmp_path / "index.parquet", ids(ROWS), vectors), tmp_path / "copy")
    before = (tmp_path / "copy" / MANIFEST_FILE).read_bytes()

    def crash(*_):
        raise OSError("killed")

    monkeypatch.setattr(writer_module, "write_manifest", crash)
    index = write_index(tmp_path / "index.parquet", ids(ROWS, {1, 2}), vectors)
    with pytest.raises(OSError):
        update_search_copy(index, tmp_path / "copy")
    assert (tmp_path / "copy" / MANIFEST_FILE).read_bytes() == before
    monkeypatch.undo()
    monkeypatch.setattr(writer_module, "ANN_MIN_ROWS", 64)
    update = update_search_copy(index, tmp_path / "copy")
    assert (update.added, update.deleted) == (2, 2)
    assert read_manifest(tmp_path / "copy").files() >= {n for n in os.listdir(tmp_path / "copy") if n.startswith("seg-000003")}


def test_an_empty_index_makes_an_empty_copy(tmp_path):
    index = write_index(tmp_path / "index.parquet", [], np.zeros((0, 32), np.float32))
    update_search_copy(index, tmp_path / "copy")
    assert read_manifest(tmp_path / "copy").rows == 0



def as_format_1(folder):
    """Turn the copy in `folder` into one the code before issue 17 wrote: half-precision graphs, no centres."""
    from usearch.index import Index

    raw = json.loads((folder / MANIFEST_FILE).read_text())
    for entry in raw["segments"]:
        del entry["graph"]
        vectors = np.load(folder / f"seg-{entry['number']:06d}.vectors.npy")
        graph = Index(ndim=vectors.shape[1], metric="cos", dtype="f16", connectivity=16, expansion_add=64)
        graph.add((entry["number"] << 32) + np.arange(len(vectors), dtype=np.uint64), vectors)
        graph.save(str(folder / f"seg-{entry['number']:06d}.hnsw.usearch"))
        (folder / f"seg-{entry['number']:06d}.centre.npy").unlink()
    (folder / MANIFEST_FILE).write_text(json.dumps({**raw, "format": 1}))


def test_a_copy_of_format_1_is_still_searched_and_updated(tmp_path):
    vectors = clustered(ROWS)
    update_search_copy(write_index(tmp_path / "index.parquet", ids(ROWS), vectors), tmp_path / "copy")
    as_format_1(tmp_path / "copy")
    (old,) = read_manifest(tmp_path / "copy").segments
    assert old.graph == "float"
    assert old.files() == [f"seg-000001.{name}" for name in ("rows.arrow", "vectors.npy", "hnsw.usearch")]
    assert [int(r["chunk_id"][1:]) for r in open_search_copy(tmp_path / "copy").search(vectors[7], 1)] == [7]
    changed = set(range(0, ROWS, 100))
    vectors[list(changed)] = clustered(len(changed), seed=5)
    update = update_search_copy(write_index(tmp_path / "index.parquet", ids(ROWS, changed), vectors), tmp_path / "copy")
    assert (update.added, update.rewritten) == (len(changed), False)  # not rebuilt for the format alone
    manifest = read_manifest(tmp_path / "copy")
    assert manifest.format == 2 and [s.graph for s in manifest.segments] == ["float", "bits"]
    copy = open_search_copy(tmp_path / "copy")
    for row in (7, 100):  # a row of the old segment, and one of the new
        assert copy.search(vectors[row], 1)[0]["chunk_id"] == ids(ROWS, changed)[row]


def test_a_damaged_manifest_makes_a_new_copy_under_new_names(tmp_path):
    index = write_index(tmp_path / "index.parquet", ids(ROWS), clustered(ROWS))
    update_search_copy(index, tmp_path / "copy")
    (tmp_path / "copy" / MANIFEST_FILE).write_text("{not json")
    assert read_manifest(tmp_path / "copy") is None  # readers answer from the Parquet index meanwhile
    update = update_search_copy(index, tmp_path / "copy")
    (segment,) = read_manifest(tmp_path / "copy").segments
    assert update.rewritten and segment.number == 2  # seg-000001's files may still be mapped: never rewritten
    assert sorted(p.name for p in (tmp_path / "copy").iterdir()) == sorted([MANIFEST_FILE, *segment.files()])
