"""`sensors.folder_cache.InboxCache` against the exact walk `sensors.fingerprint.fingerprint`.

The cache must give the same digest, file count and newest change as a full walk of the same tree, after
creations, deletions, renames, nested folders and ignored names, while re-listing only the folders that
changed; an in-place edit (which leaves its folder untouched) must be found by the rotating sweep within
`sweep_ticks` ticks; a folder still being written is re-listed on every tick; memory stays bounded.

Most tests run the cache's clock a minute ahead: a listing then counts as old enough to trust at once, so the
tests exercise the cached path instead of the "changed recently" rule. A short sleep after each tick makes
sure the next change lands in a later timestamp granule than the listing (what that rule guards against).
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest

import sensors.folder_cache as folder_cache
from orca_core.settings import OrcaSettings
from sensors.fingerprint import EMPTY_DIGEST, fingerprint
from sensors.folder_cache import InboxCache, inbox_cache


def ahead() -> int:
    return time.time_ns() + 60_000_000_000


def tick(cache: InboxCache, *folders: Path):
    """One sensor tick over `folders`; the fingerprints, and a pause so later changes get new timestamps."""
    cache.begin_tick()
    found = [cache.fingerprint(folder) for folder in folders]
    time.sleep(0.03)
    return found[0] if len(found) == 1 else found


def write(path: Path, text: str = "text") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def make_tree(root: Path) -> None:
    write(root / "a.md", "a")
    write(root / "b.txt", "b")
    write(root / "sub" / "c.md", "c")
    write(root / "sub" / "deep" / "d.md", "d")
    write(root / "sub" / "deep" / "deeper" / "e.md", "e")
    write(root / "other" / "f.md", "f")
    (root / "empty").mkdir()
    for hidden in (".orca/sources/a.md.json", ".a.md.123.tmp", "upload.part", "draft.md~", "sub/#auto#"):
        write(root / hidden, "ignored")
    os.symlink(root / "a.md", root / "link.md")
    os.symlink(root / "missing.md", root / "broken.md")
    os.symlink(root / "sub", root / "linked-folder")


@pytest.fixture
def root(tmp_path) -> Path:
    folder = tmp_path / "inbox" / "docs"
    make_tree(folder)
    return folder


def test_fresh_cache_equals_full_walk(root):
    cached = tick(InboxCache(clock=ahead), root)
    assert cached == fingerprint(root)
    assert cached.files == 8  # six documents, a link, a broken link; ignored names and folder links excluded
    assert cached.digest != EMPTY_DIGEST and cached.newest_change_ns > 0


def test_missing_and_empty_folders_are_empty(tmp_path):
    (tmp_path / "empty" / "nested").mkdir(parents=True)
    cache = InboxCache(clock=ahead)
    assert tick(cache, tmp_path / "missing") == fingerprint(tmp_path / "missing")
    assert tick(cache, tmp_path / "missing").digest == EMPTY_DIGEST
    assert tick(cache, tmp_path / "empty").digest == EMPTY_DIGEST == fingerprint(tmp_path / "empty").digest


CHANGES = {
    "create": lambda r: write(r / "sub" / "deep" / "new.md", "new"),
    "create in new folder": lambda r: write(r / "other" / "fresh" / "x.md", "x"),
    "delete": lambda r: (r / "sub" / "c.md").unlink(),
    "delete folder": lambda r: shutil.rmtree(r / "sub" / "deep"),
    "rename file": lambda r: (r / "a.md").rename(r / "renamed.md"),
    "move between folders": lambda r: (r / "other" / "f.md").rename(r / "sub" / "deep" / "deeper" / "f.md"),
    "rename folder": lambda r: (r / "sub").rename(r / "bus"),
    "atomic save": lambda r: (write(r / "sub" / ".c.md.tmp", "c, saved"), os.replace(r / "sub" / ".c.md.tmp",
                                                                                    r / "sub" / "c.md")),
    "temporary file appears": lambda r: write(r / "sub" / "deep" / "half.md.part", "half"),
    "temporary file is renamed into place": lambda r: os.replace(r / "upload.part", r / "upload.md"),
    "hidden folder appears": lambda r: write(r / "other" / ".cache" / "x.md", "x"),
    "broken link is repaired": lambda r: write(r / "missing.md", "found"),
}


UNSEEN = {"temporary file appears", "hidden folder appears"}  # ignored names: the digest must not move


@pytest.mark.parametrize("change", list(CHANGES))
def test_cached_fingerprint_follows_folder_changes(root, change):
    cache = InboxCache(sweep_ticks=10_000, min_sweep_files=0, clock=ahead)
    before = tick(cache, root)
    CHANGES[change](root)
    after = tick(cache, root)
    assert after == fingerprint(root)
    assert (after.digest == before.digest) == (change in UNSEEN)
    # Only the changed folders and new ones (at most 4 here) were listed again, plus one folder of the sweep.
    assert cache.stats.listed <= 4 and cache.stats.swept <= 1 and cache.stats.folders <= 7


def test_unchanged_tick_lists_nothing_but_its_sweep_share(root):
    cache = InboxCache(sweep_ticks=10_000, min_sweep_files=0, clock=ahead)
    first = tick(cache, root)
    assert cache.stats.listed == 6  # every visible folder on the first tick: docs, sub, deep, deeper, other, empty
    second = tick(cache, root)
    assert second == first == fingerprint(root)
    assert cache.stats.folders == 6 and cache.stats.listed == 0 and cache.stats.swept == 1


def test_small_inbox_is_restatted_in_full_every_tick(root):
    cache = InboxCache(clock=ahead)  # default MIN_SWEEP_FILES: far more than this tree holds
    tick(cache, root)
    with (root / "sub" / "deep" / "d.md").open("a", encoding="utf-8") as handle:
        handle.write(" edited in place")
    assert tick(cache, root) == fingerprint(root)


def folder_state(path: Path) -> tuple[int, int, int]:
    info = os.stat(path)
    return info.st_ino, info.st_mtime_ns, info.st_ctime_ns


def test_in_place_edit_is_found_within_sweep_ticks(tmp_path):
    """Every folder of every collection: an in-place edit there is seen within `sweep_ticks` ticks."""
    sweep_ticks = 3
    collections = [tmp_path / name for name in ("alpha", "beta")]
    for collection in collections:
        for index in range(4):
            for number in range(index + 1):  # folders of different sizes
                write(collection / f"s{index}" / f"f{number}.md", "x")
    targets = [path for collection in collections for path in sorted(collection.glob("s*/f0.md"))]
    cache = InboxCache(sweep_ticks=sweep_ticks, min_sweep_files=0, clock=ahead)
    tick(cache, *collections)
    ticks_to_see = []
    for target in targets:
        folder = folder_state(target.parent)
        with target.open("a", encoding="utf-8") as handle:
            handle.write(" edited")
        assert folder_state(target.parent) == folder  # its folder did not change: only the sweep can see it
        collection = collections[0] if collections[0] in target.parents else collections[1]
        expected = fingerprint(collection)
        seen_after = None
        for number in range(1, sweep_ticks + 1):
            if tick(cache, *collections)[collections.index(collection)] == expected:
                seen_after = number
                break
        assert seen_after is not None, f"{target} not seen within {sweep_ticks} ticks"
        ticks_to_see.append(seen_after)
        assert tick(cache, *collections) == [fingerprint(c) for c in collections]
    assert max(ticks_to_see) > 1  # a tick re-stats only a share of the files: some edits wait for their turn


def test_folder_mtime_set_back_is_still_noticed(root):
    cache = InboxCache(sweep_ticks=10_000, min_sweep_files=0, clock=ahead)
    tick(cache, root)
    folder = root / "sub" / "deep"
    info = os.stat(folder)
    write(folder / "sneaky.md", "added, then the folder's mtime restored")
    os.utime(folder, ns=(info.st_atime_ns, info.st_mtime_ns))
    assert os.stat(folder).st_mtime_ns == info.st_mtime_ns  # only its ctime tells
    assert tick(cache, root) == fingerprint(root)


def test_folder_being_written_is_relisted_every_tick(tmp_path):
    """With the real clock: a file growing in place keeps its folder "hot", so the settle rule sees it grow."""
    root = tmp_path / "docs"
    write(root / "quiet" / "old.md", "old")
    growing = write(root / "busy" / "big.txt", "first part")
    cache = InboxCache(sweep_ticks=10_000, min_sweep_files=0)
    tick(cache, root)
    for part in range(3):
        with growing.open("a", encoding="utf-8") as handle:
            handle.write(f" part {part}")
        found = tick(cache, root)
        assert found == fingerprint(root)
        assert cache.stats.listed >= 1  # re-listed as recently changed, not by the sweep's turn
        assert found.newest_change_ns >= growing.stat().st_mtime_ns


def test_cache_is_bounded(tmp_path):
    cache = InboxCache(max_folders=25, clock=ahead)
    collections = []
    for number in range(5):
        collection = tmp_path / f"c{number}"
        for index in range(10):
            write(collection / f"s{index}" / "a.md", "x")
        collections.append(collection)
    huge = tmp_path / "huge"
    for index in range(30):
        write(huge / f"s{index:02d}" / "a.md", "x")
    for _ in range(2):
        assert tick(cache, *collections, huge) == [fingerprint(c) for c in [*collections, huge]]
        assert len(cache) <= 25
    assert len(cache) == 22  # the two most recently used collections (11 folders each); "huge" alone is over
    cache.retain(collections[-1:])
    assert len(cache) == 11
    assert tick(cache, *collections, huge) == [fingerprint(c) for c in [*collections, huge]]


def test_one_cache_per_inbox_and_a_bounded_number_of_them(tmp_path):
    assert inbox_cache(tmp_path / "a", 8) is inbox_cache(tmp_path / "a", 8)
    for number in range(folder_cache.MAX_INBOXES + 3):
        inbox_cache(tmp_path / f"inbox{number}", 8)
    assert len(folder_cache._caches) <= folder_cache.MAX_INBOXES


def test_sweep_ticks_knob():
    assert OrcaSettings.from_env({"ORCA_INBOX_SWEEP_TICKS": "12"}).inbox_sweep_ticks == 12
    assert OrcaSettings.from_env({}).inbox_sweep_ticks == 8
    with pytest.raises(ValueError, match="ORCA_INBOX_SWEEP_TICKS"):
        OrcaSettings.from_env({"ORCA_INBOX_SWEEP_TICKS": "not a number"})
    assert InboxCache(12).sweep_ticks == 12
