"""Shared pieces of the benchmarks: result rows, the stand-in process, corpus/synthetic documents, pipeline runs."""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
CORPUS = Path(os.environ.get("ORCA_BENCH_CORPUS", ROOT.parent / "shared" / "corpus" / "fastapi-docs"))
PYTHON = sys.executable


@dataclass
class Row:
    """One line of the results table. `ratio` is against `baseline`, measured in the same run."""

    bench: str
    figure: str
    ratio: float | None
    baseline: str
    target: str
    met: bool | None  # None: informational, no target
    margin: str = ""
    notes: list[str] = field(default_factory=list)
    why: str = ""  # shown when the target is missed: the reason, from figures of the same run

    def cells(self) -> list[str]:
        verdict = "—" if self.met is None else ("met" if self.met else "**NOT met**")
        if self.margin:
            verdict += f" ({self.margin})"
        if self.met is False and self.why:
            verdict += f": {self.why}"
        ratio = "—" if self.ratio is None else f"{self.ratio:.3f}"
        return [self.bench, self.figure, ratio, self.baseline, self.target, verdict]


def verdict_max(value: float, target: float) -> tuple[bool, str]:
    """Met when value <= target; the margin in percent of the target."""
    delta = (value - target) / target * 100
    return value <= target, f"{abs(delta):.1f}% {'under' if delta <= 0 else 'over'}"


def verdict_min(value: float, target: float) -> tuple[bool, str]:
    delta = (value - target) / target * 100
    return value >= target, f"{abs(delta):.1f}% {'above' if delta >= 0 else 'below'}"


class StandIn:
    """`bench/standin.py` in its own process (so its threads never compete with the client for the GIL)."""

    def __init__(self, cost_fixed: float = 0.002, cost_per_char: float = 0.0, dimensions: int = 768, distinct: int = 0):
        self.args = ["--cost-fixed", str(cost_fixed), "--cost-per-char", str(cost_per_char),
                     "--dimensions", str(dimensions), "--distinct", str(distinct)]
        self.url = ""
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> StandIn:
        self.proc = subprocess.Popen(
            [PYTHON, str(ROOT / "bench" / "standin.py"), *self.args],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )
        self.url = self.proc.stdout.readline().strip()
        if not self.url.startswith("http"):
            raise RuntimeError("the benchmark stand-in did not start")
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc:
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def stats(self) -> dict:
        return httpx.get(f"{self.url}/bench/stats", timeout=10).json()

    def reset(self) -> None:
        httpx.post(f"{self.url}/bench/reset", timeout=10)


WORDS = (
    "tide moon orbit river basin harbor signal vector index chunk server request window valley anchor lantern "
    "granite meadow copper falcon beacon cipher ledger summit quarry harvest glacier canyon prairie compass "
    "voyage thunder ember willow saddle marble timber velvet orchard meadowlark comet nebula quartz"
).split()


def synthetic_text(rng: random.Random, paragraphs: int, words: int = 60) -> str:
    """Markdown with a heading and `paragraphs` paragraphs of `words` random words."""
    body = [f"# Note {rng.randrange(10**6)}"]
    for _ in range(paragraphs):
        body.append(" ".join(rng.choice(WORDS) for _ in range(words)) + ".")
    return "\n\n".join(body) + "\n"


def write_synthetic(folder: Path, docs: int, paragraphs: int, seed: int = 1, words: int = 60) -> None:
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(docs):
        (folder / f"doc-{i:06d}.md").write_text(synthetic_text(rng, paragraphs, words), encoding="utf-8")


def languages(smoke: bool) -> list[str]:
    """The corpus's language folders (each one collection); two synthetic ones at smoke size or without it."""
    if not smoke and CORPUS.is_dir():
        return sorted(p.name for p in CORPUS.iterdir() if p.is_dir())
    return ["en", "de"]


def fill_inbox(home: Path, collection: str, smoke: bool, language: str = "en") -> str:
    """The corpus language folder copied into the inbox, or (smoke, or no corpus) synthetic documents."""
    inbox = home / "inbox" / collection
    source = CORPUS / language
    if not smoke and source.is_dir():
        shutil.copytree(source, inbox)
        return f"corpus {language} ({sum(1 for p in inbox.rglob('*') if p.is_file())} files)"
    write_synthetic(inbox, docs=12 if smoke else 150, paragraphs=8, seed=sum(map(ord, language)))
    return "synthetic documents (corpus absent or smoke size)"


def materialize(home: Path, collection: str, embedder, instance, chunk_tokens: int | None = None,
                force: bool = False):
    """Run documents -> chunks -> embeddings -> embedding_index for one collection, in this process."""
    import dagster as dg

    from orca_assets.jobs import embedding_assets
    from orca_resources.warehouse import WarehouseResource

    if collection not in instance.get_dynamic_partitions("collections"):
        instance.add_dynamic_partitions("collections", [collection])
    ops: dict = {"chunks": {"config": {"max_tokens": chunk_tokens, "overlap_tokens": 8}}} if chunk_tokens else {}
    if force:
        ops["embeddings"] = {"config": {"force": True}}
    result = dg.materialize(
        embedding_assets, partition_key=collection, instance=instance,
        resources={"embedder": embedder, "warehouse": WarehouseResource(home=str(home))},
        run_config={"ops": ops}, raise_on_error=True,
    )
    return result


def metadata(result, asset: str) -> dict:
    import dagster as dg

    for event in result.get_asset_materialization_events():
        if event.asset_key == dg.AssetKey(asset):
            return {key: value.value for key, value in event.materialization.metadata.items()}
    raise KeyError(asset)


def step_seconds(instance, result) -> dict[str, float]:
    """Seconds from STEP_START to STEP_SUCCESS/FAILURE of each step of a finished in-process run."""
    import dagster as dg

    started: dict[str, float] = {}
    took: dict[str, float] = {}
    for entry in instance.all_logs(result.run_id):
        event = entry.dagster_event
        if event is None or not entry.step_key:
            continue
        if event.event_type == dg.DagsterEventType.STEP_START:
            started[entry.step_key] = entry.timestamp
        elif event.event_type in (dg.DagsterEventType.STEP_SUCCESS, dg.DagsterEventType.STEP_FAILURE):
            took[entry.step_key] = entry.timestamp - started.get(entry.step_key, entry.timestamp)
    return took


class Timer:
    def __enter__(self) -> Timer:
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self.start
