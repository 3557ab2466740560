"""The search copy's manifest: which segment files and which deleted keys make the current version."""

from __future__ import annotations

import json
import os
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path

MANIFEST_FILE = "manifest.json"
FORMAT = 2  # 2: segments say what their graph holds (graph.py); 1 (half-precision graphs) is still read
ANN_MIN_ROWS = 4096  # below this a segment is searched exactly: a graph would cost more to build than it saves
COMPACT_SHARE = 0.25  # deleted rows plus rows in later segments, over the live rows, that trigger a rewrite
MAX_SEGMENTS = 12
ROW_BITS = 32  # a row's key: its segment's number in the high bits, its row in the segment in the low ones
ROW_MASK = (1 << ROW_BITS) - 1
SEGMENT_PREFIX = "seg-"  # a segment's files are named SEGMENT_PREFIX, its six-digit number, then their kind
BITS, FLOAT = "bits", "float"  # what a segment's graph compares: bits with a centre file (graph.py), or format 1's


@dataclass(frozen=True)
class SegmentEntry:
    number: int
    rows: int
    ann: bool  # has an HNSW graph
    graph: str = BITS  # BITS or FLOAT

    @property
    def stem(self) -> str:
        return f"{SEGMENT_PREFIX}{self.number:06d}"

    @property
    def rows_file(self) -> str:
        return f"{self.stem}.rows.arrow"

    @property
    def vectors_file(self) -> str:
        return f"{self.stem}.vectors.npy"

    @property
    def graph_file(self) -> str:
        return f"{self.stem}.hnsw.usearch"

    @property
    def centre_file(self) -> str:
        return f"{self.stem}.centre.npy"

    def files(self) -> list[str]:
        names = [self.rows_file, self.vectors_file]
        if self.ann:
            names.append(self.graph_file)
        if self.ann and self.graph == BITS:
            names.append(self.centre_file)
        return names


def segment_number(name: str) -> int | None:
    """The number of the segment a file `name` belongs to, or None for any other file."""
    digits = name[len(SEGMENT_PREFIX) : len(SEGMENT_PREFIX) + 6]
    return int(digits) if name.startswith(SEGMENT_PREFIX) and digits.isdigit() else None


@dataclass(frozen=True)
class Manifest:
    """One version of the search copy. `source` names the index version it mirrors (see writer.index_source)."""

    version: int
    model: str
    dimensions: int
    source: str
    segments: list[SegmentEntry] = field(default_factory=list)
    deleted: str | None = None  # file of sorted uint64 keys, or None
    deleted_rows: int = 0
    format: int = FORMAT

    @property
    def rows(self) -> int:
        """Live rows: every segment's rows less the deleted ones."""
        return sum(segment.rows for segment in self.segments) - self.deleted_rows

    def files(self) -> set[str]:
        names = {name for segment in self.segments for name in segment.files()}
        return names | {self.deleted} if self.deleted else names

    def next_number(self) -> int:
        return max((segment.number for segment in self.segments), default=0) + 1


def read_manifest(folder: Path) -> Manifest | None:
    """The current manifest, or None when there is no search copy (or one this code does not know)."""
    try:
        raw = json.loads((folder / MANIFEST_FILE).read_text())
    except FileNotFoundError:
        return None
    except ValueError:
        return None  # a damaged manifest: the copy is rebuilt by the next run, the Parquet index answers meanwhile
    return manifest_from_json(raw)


def manifest_from_json(raw: dict) -> Manifest | None:
    """The manifest a parsed manifest.json holds, or None when it is one this code does not know."""
    if not isinstance(raw, dict) or raw.get("format") not in (1, FORMAT):
        return None
    raw = dict(raw)
    older = {"graph": FLOAT} if raw["format"] == 1 else {}
    segments = [SegmentEntry(**{**entry, **older}) for entry in raw.pop("segments")]
    return Manifest(segments=segments, **raw)


def write_manifest(folder: Path, manifest: Manifest) -> None:
    """Replace the manifest in one durable rename; every file it names must be durable already."""
    tmp = folder / f".{MANIFEST_FILE}.{uuid.uuid4().hex[:8]}.tmp"
    with open(tmp, "w") as handle:
        json.dump(asdict(manifest), handle)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, folder / MANIFEST_FILE)
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def collect_garbage(folder: Path, keep: set[str]) -> int:
    """Remove files no manifest in `keep` names (a reader that mapped them keeps its mapping); returns the count."""
    removed = 0
    for path in folder.iterdir():
        if path.name != MANIFEST_FILE and path.name not in keep:
            path.unlink(missing_ok=True)
            removed += 1
    return removed
