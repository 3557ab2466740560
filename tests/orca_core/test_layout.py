"""`LocalLayout`: every path under ORCA_HOME, and the one rule for which folders are collections."""

from __future__ import annotations

import os

import pytest

from orca_core.layout import LocalLayout, check_collection, is_valid_collection


def test_paths_under_home(tmp_path):
    layout = LocalLayout(tmp_path)
    assert layout.inbox("docs") == tmp_path / "inbox" / "docs"
    assert layout.warehouse("docs") == tmp_path / "warehouse" / "docs"
    assert layout.index_path("docs") == tmp_path / "warehouse" / "docs" / "embedding_index.parquet"
    assert layout.queue_url == f"sqlite:///{tmp_path}/intake/queue.db"
    assert layout.inbox_source("docs", "a/b.md") == "inbox/docs/a/b.md"


@pytest.mark.parametrize("name", ["../etc", "Docs", "", ".hidden", "a" * 64, "a/b"])
def test_no_path_is_made_for_an_invalid_collection(tmp_path, name):
    assert not is_valid_collection(name)
    with pytest.raises(ValueError, match="invalid collection name"):
        LocalLayout(tmp_path).inbox(name)
    with pytest.raises(ValueError, match="invalid collection name"):
        check_collection(name)


def test_collection_folders_and_collections(tmp_path):
    layout = LocalLayout(tmp_path)
    assert layout.collection_folders().valid == [] and layout.collections() == []  # no inbox yet
    for name in ("docs", "notes", "Bad Name", ".hidden", "draft.tmp"):
        (tmp_path / "inbox" / name).mkdir(parents=True)
    (tmp_path / "inbox" / "file.md").write_text("not a folder")
    (tmp_path / "elsewhere").mkdir()
    os.symlink(tmp_path / "elsewhere", tmp_path / "inbox" / "linked")
    (tmp_path / "warehouse" / "gone").mkdir(parents=True)  # its inbox was deleted; its index remains
    (tmp_path / "warehouse" / ".docs.purge-1234").mkdir()
    folders = layout.collection_folders()
    assert folders.valid == ["docs", "notes"] and folders.invalid == ["Bad Name"] and folders.linked == ["linked"]
    assert layout.collections() == ["docs", "gone", "notes"]
    assert layout.has_collection("gone") and not layout.has_collection("never")
    assert layout.linked_inbox("linked") and not layout.linked_inbox("docs")
    following = LocalLayout(tmp_path, follow_symlinks=True)  # ORCA_INBOX_FOLLOW_SYMLINKS=1
    assert following.collection_folders().valid == ["docs", "linked", "notes"] and not following.linked_inbox("linked")
