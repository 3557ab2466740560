"""Benchmark 4, sensor: is an inbox tick cheap when nothing changed?

An inbox of 100,000 small files in 100 collections (1,000 each; 10 x 20 at smoke size). `inbox_sensor` is
evaluated directly (`dg.build_sensor_context`) on a test instance, tick after tick, until every collection
has been registered and had its run requested; the cursor is carried from tick to tick as the daemon does.
Then: the median time of unchanged ticks over the median time of a bare recursive `os.scandir` walk of the
same tree (names and d_type only, no stat; same warm cache), target at most 3; and the tick right after 100
files in 100 collections were changed by an atomic save (written aside, then renamed over the old file, as
editors and the REST intake do: it must see all of them, and requests their runs once settled).

The sensor keeps per-folder listings between ticks (`sensors.folder_cache`) and finds a file rewritten in
place (no rename, so its folder does not change) with a rotating sweep; the last row rewrites 100 files in
place and counts the ticks until the sensor has seen all of them (at most `ORCA_INBOX_SWEEP_TICKS`).
"""

from __future__ import annotations

import json
import os
import statistics
import time
from pathlib import Path

from bench.common import Row, Timer, verdict_max
from bench.sensor_ticks import inbox_ticks

TARGET = 3.0
REPEATS = 5


def _bare_walk(root: str) -> int:
    count = 0
    stack = [root]
    while stack:
        with os.scandir(stack.pop()) as scan:
            for entry in scan:
                if entry.is_dir(follow_symlinks=False):
                    stack.append(entry.path)
                else:
                    count += 1
    return count


def _stat_walk(root: str) -> int:
    """The bare walk plus one stat per file: what any fingerprint of sizes and times has to pay."""
    count = 0
    stack = [root]
    while stack:
        with os.scandir(stack.pop()) as scan:
            for entry in scan:
                if entry.is_dir(follow_symlinks=False):
                    stack.append(entry.path)
                else:
                    entry.stat(follow_symlinks=False)
                    count += 1
    return count


def _make_tree(inbox: Path, collections: int, files: int) -> None:
    payload = "A small document for the sensor benchmark.\n" * 4
    for c in range(collections):
        folder = inbox / f"c{c:03d}"
        for sub in range(10):
            (folder / f"s{sub}").mkdir(parents=True, exist_ok=True)
        for f in range(files):
            (folder / f"s{f % 10}" / f"f{f:05d}.md").write_text(payload)


def run(smoke: bool, workdir: Path) -> list[Row]:
    from orca_resources.intake_queue_resource import IntakeQueueResource
    from orca_resources.warehouse import WarehouseResource
    from sensors.folder_cache import inbox_cache
    from sensors.inbox import SETTLE_SECONDS

    sweep_ticks = WarehouseResource().inbox_sweep_ticks

    collections, files = (10, 20) if smoke else (100, 1000)
    home = workdir / "home"
    inbox = home / "inbox"
    with Timer() as build:
        _make_tree(inbox, collections, files)
    resources = {"warehouse": WarehouseResource(home=str(home)), "intake_queue": IntakeQueueResource(home=str(home))}
    with inbox_ticks(resources) as (tick, waited):
        time.sleep(SETTLE_SECONDS + 0.2)
        requested = 0
        cold_s = None
        for _ in range(collections // 20 + 4):  # first tick sees, then at most 20 runs per tick
            seconds, result = tick()
            cold_s = seconds if cold_s is None else cold_s
            requested += len(result.run_requests or [])
        unchanged = []
        for _ in range(REPEATS):
            seconds, result = tick()
            assert not result.run_requests, "an unchanged inbox requested a run"
            unchanged.append(seconds)
        work = inbox_cache(inbox, sweep_ticks).stats
        walks = []
        for _ in range(REPEATS):
            with Timer() as walk:
                found = _bare_walk(str(inbox))
            walks.append(walk.seconds)
        stat_walks = []
        for _ in range(REPEATS):
            with Timer() as walk:
                _stat_walk(str(inbox))
            stat_walks.append(walk.seconds)
        tick_s, walk_s = statistics.median(unchanged), statistics.median(walks)
        stat_s = statistics.median(stat_walks)
        ratio = tick_s / walk_s
        met, margin = verdict_max(ratio, TARGET)
        rows = [Row(
            "4 sensor: unchanged tick",
            f"{found} files in {collections} collections: tick {tick_s * 1000:.0f} ms, bare scandir walk "
            f"{walk_s * 1000:.0f} ms (medians of {REPEATS}); {requested} runs requested while settling in",
            ratio, "bare os.scandir walk", f"<= {TARGET}", met, margin,
            [f"tree of {found} files written in {build.seconds:.0f} s",
             f"for reference, the same walk with one stat() per file: {stat_s * 1000:.0f} ms (median); "
             f"the tick is {tick_s / stat_s:.2f} x that",
             f"first tick of the process (nothing cached: full walk with a stat per file): {cold_s * 1000:.0f} ms",
             f"an unchanged tick stat'ed {work.folders} folders and re-listed {work.swept} of them for the "
             f"in-place sweep ({work.files} files stat'ed, {inbox_cache(inbox, sweep_ticks).sweep_ticks} ticks per full sweep)"],
        )]

        changed = sorted(inbox.glob("c*/s0/f00000.md"))[:100]
        for path in changed:  # an atomic save: the folder's mtime changes
            aside = path.with_name(f".{path.name}.tmp")
            aside.write_text(path.read_text() + "changed\n")
            os.replace(aside, path)
        seen_s, result = tick()
        wait_s = sum(waited)
        runs = len(result.run_requests or [])
        next_s, result = tick()
        rows.append(Row(
            "4 sensor: tick after 100 files changed",
            f"{len(changed)} files in {len(changed)} collections changed: the tick that finds them works "
            f"{seen_s * 1000:.0f} ms (two exact walks of the changed collections) and waits {wait_s:.1f} s for "
            f"them to settle, then requests {runs} runs (20 per tick max); the next tick {next_s * 1000:.0f} ms "
            f"requests {len(result.run_requests or [])} more",
            seen_s / walk_s, "bare os.scandir walk", "informational", None,
        ))
        rows.append(_in_place_row(inbox, tick, walk_s, inbox_cache(inbox, sweep_ticks).sweep_ticks))
    return rows


def _in_place_row(inbox: Path, tick, walk_s: float, sweep_ticks: int) -> Row:
    """Rewrite one file per collection in place (its folder's mtime does not change); tick until all are seen."""
    for _ in range(10):  # let the runs of the previous change be requested first (20 per tick)
        _, result = tick()
        if not result.run_requests:
            break
    before = json.loads(result.cursor)["c"]
    edited = sorted(inbox.glob("c*"))
    for index, folder in enumerate(edited):
        path = folder / f"s{index % 10}" / f"f{index % 10 + 10:05d}.md"
        with path.open("a", encoding="utf-8") as handle:  # same inode, same folder: only the sweep can see it
            handle.write("edited in place\n")
    seen: set[str] = set()
    times: list[float] = []
    progress: list[int] = []
    while len(seen) < len(edited) and len(times) < sweep_ticks + 4:
        seconds, result = tick()
        times.append(seconds)
        for name, entry in json.loads(result.cursor)["c"].items():
            if "p" in entry or entry.get("d") != before.get(name, {}).get("d"):
                seen.add(name)
        progress.append(len(seen))
    return Row(
        "4 sensor: ticks until in-place edits are seen",
        f"{len(edited)} files rewritten in place (one per collection, folder mtimes unchanged): {len(seen)} seen "
        f"after {len(times)} tick(s) (sweep period {sweep_ticks} ticks, ORCA_INBOX_SWEEP_TICKS); ticks "
        f"{statistics.median(times) * 1000:.0f} ms (median), slowest {max(times) * 1000:.0f} ms",
        statistics.median(times) / walk_s, "bare os.scandir walk", "informational", None,
        notes=[f"in-place edits seen so far after each tick: {', '.join(map(str, progress))} (of {len(edited)})"],
    )
