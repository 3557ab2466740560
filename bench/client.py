"""Benchmark 14, client: does Orca's client keep up with a fleet of embedding servers? (`make bench-client`)

CPU time, not wall time, so the 2-core machine's sharing does not blur it: this process's own CPU (all its
threads, plus any child processes), while the servers run in processes of their own.

- Client: a replay server (the benchmark stand-in at no cost per input: pre-encoded vectors of 768 floats as
  JSON numbers, as Ollama sends them, distinct ones with the structure of real embeddings) answers the `embeddings` step of a collection of unique paragraphs;
  inputs per CPU second of the step, storing included. Reference in the same run: the `ollama` Python client's
  `embed` (what LlamaIndex's and LangChain's Ollama integrations call) on the same texts and server, in
  batches of 32, parsing only. Target (issue 17): at least 10,000 inputs per CPU second.
- Pipeline: every asset of `embed_collection_job` on two collection sizes (4,000 and 20,000 unique
  paragraphs; a tenth at smoke size), each asset run alone; the marginal CPU per input between the sizes,
  by asset. Target: at most 200 us per input.
- Client and pipeline figures are each the least of three runs from nothing (`REPEATS`), the reference too:
  the machine's other load only ever adds CPU time.
- Fleet: eight one-slot stand-ins at 2 ms per input on the saturation row's corpus (`en`): each server's
  busy share of the embedding phase, and Orca's CPU per input beside the stand-ins' own.
"""

from __future__ import annotations

import contextlib
import os
import resource
import shutil
from pathlib import Path

import dagster as dg

from bench.common import Row, StandIn, fill_inbox, materialize, metadata, verdict_max, verdict_min, write_synthetic

ASSETS = ("documents", "chunks", "embeddings", "embedding_index")
TARGET_RATE = 10_000
TARGET_MARGINAL_US = 200
PARAGRAPHS_PER_DOC = 20
DISTINCT = 65_536  # more than the inputs of the three collections (about 49,000)
REPEATS = 3  # each figure is the least of this many runs


def _cpu() -> float:
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _process_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _by_asset(home: Path, collection: str, embedder, instance, chunk_tokens: int | None = 48) -> dict:
    """Each asset materialized alone, in order; CPU seconds per asset and the embeddings metadata."""
    from orca_assets.jobs import embedding_assets
    from orca_resources.warehouse import WarehouseResource

    if collection not in instance.get_dynamic_partitions("collections"):
        instance.add_dynamic_partitions("collections", [collection])
    ops = {"chunks": {"config": {"max_tokens": chunk_tokens, "overlap_tokens": 0}}} if chunk_tokens else {}
    cpu: dict[str, float] = {}
    results = {}
    for asset in ASSETS:
        started = _cpu()
        outcome = dg.materialize(
            embedding_assets, selection=[asset], partition_key=collection, instance=instance,
            resources={"embedder": embedder, "warehouse": WarehouseResource(home=str(home))},
            run_config={"ops": {k: v for k, v in ops.items() if k == asset}}, raise_on_error=True,
        )
        cpu[asset] = _cpu() - started
        results[asset] = outcome
    return {"cpu": cpu, "embeddings": metadata(results["embeddings"], "embeddings"),
            "graph_cpu": metadata(results["embedding_index"], "embedding_index").get("search_graph_cpu_seconds", 0.0)}


def _best_of(repeats: int, home: Path, sizes: dict, embedder, instance) -> dict:
    """Each size's pipeline run `repeats` times from nothing; per asset, the least CPU of the runs.

    The least, as timeit reports: this machine's other load only ever adds CPU time (it moved single runs by a
    third), so the least of a few runs is the closest to what the code costs."""
    best: dict[str, dict] = {}
    for _ in range(repeats):
        for name in sizes:
            shutil.rmtree(home / "warehouse" / name, ignore_errors=True)  # every run embeds and indexes it all
            found = _by_asset(home, name, embedder, instance)
            if name not in best:
                best[name] = found
                continue
            kept = best[name]
            kept["cpu"] = {asset: min(kept["cpu"][asset], found["cpu"][asset]) for asset in ASSETS}
            kept["graph_cpu"] = min(kept["graph_cpu"], found["graph_cpu"])
    return best


def _ollama_client(url: str, texts: list[str]) -> float:
    """CPU seconds of the `ollama` package's Client.embed over `texts` in batches of 32."""
    import ollama

    client = ollama.Client(host=url)
    client.embed(model="nomic-embed-text", input=texts[:32])
    started = _cpu()
    for start in range(0, len(texts), 32):
        client.embed(model="nomic-embed-text", input=texts[start:start + 32])
    return _cpu() - started


def _ollama(urls: list[str]):
    from orca_resources.ollama import OllamaResource

    return OllamaResource(host=",".join(urls), model="nomic-embed-text")


def run(smoke: bool, workdir: Path) -> list[Row]:
    from orca_resources.warehouse import WarehouseResource

    scale = 10 if smoke else 1
    repeats = 1 if smoke else REPEATS
    sizes = {"small": 4_000 // scale, "large": 20_000 // scale}
    home = workdir / "client"
    for name, paragraphs in {"warm": 200, **sizes}.items():
        write_synthetic(home / "inbox" / name, docs=paragraphs // PARAGRAPHS_PER_DOC, paragraphs=PARAGRAPHS_PER_DOC,
                        seed=len(name), words=24)
    rows: list[Row] = []
    # Distinct vectors with the structure of real embeddings for every input of the three collections: the index
    # step's HNSW graph costs what it costs on real embeddings (a few repeated vectors made it several times dearer).
    with StandIn(cost_fixed=0.0, distinct=DISTINCT) as replay, dg.instance_for_test() as instance:
        embedder = _ollama([replay.url])
        _by_asset(home, "warm", embedder, instance)  # first use of every code path, outside the figures
        measured = _best_of(repeats, home, sizes, embedder, instance)
        large = measured["large"]
        inputs = large["embeddings"]["inputs_sent"]
        rate = inputs / large["cpu"]["embeddings"]
        prefix = embedder.model_info().document_prefix
        texts = [prefix + t for t in WarehouseResource(home=str(home)).read("large", "chunks.parquet", columns=["text"])
                 ["text"].to_pylist()]
        reference = len(texts) / min(_ollama_client(replay.url, texts) for _ in range(repeats))
    met, margin = verdict_min(rate, TARGET_RATE)
    rows.append(Row(
        "14 client: embedding phase against a replay server, 768 dimensions",
        f"{inputs} inputs: {rate:,.0f} inputs per CPU second (step CPU {large['cpu']['embeddings']:.2f} s, vectors "
        f"validated and stored); the `ollama` client {reference:,.0f}", rate / reference,
        f"`ollama` Python client's embed, same server and texts: {reference:,.0f} inputs per CPU second",
        f">= {TARGET_RATE:,} inputs per CPU second", met, margin))
    small = measured["small"]
    extra = inputs - small["embeddings"]["inputs_sent"]
    per_asset = {asset: (large["cpu"][asset] - small["cpu"][asset]) / extra * 1e6 for asset in ASSETS}
    marginal = sum(per_asset.values())
    graph = (large["graph_cpu"] - small["graph_cpu"]) / extra * 1e6  # inside embedding_index: the search copy's graph
    met, margin = verdict_max(marginal, TARGET_MARGINAL_US)
    rows.append(Row(
        "14 client: the whole pipeline's CPU per extra input",
        f"{marginal:.0f} us per input between {small['embeddings']['inputs_sent']} and {inputs} inputs: "
        + ", ".join(f"{asset} {us:.0f} us" for asset, us in per_asset.items())
        + f" (of which the search copy's HNSW graph {graph:.0f} us; everything else {marginal - graph:.0f} us)",
        marginal / TARGET_MARGINAL_US, f"target {TARGET_MARGINAL_US} us", f"<= {TARGET_MARGINAL_US} us per input",
        met, margin, why="see the per-asset figures: the largest is where the time goes"))
    rows.append(_fleet_row(workdir, smoke))
    return rows


def _fleet_row(workdir: Path, smoke: bool) -> Row:
    home = workdir / "fleet8"
    source = fill_inbox(home, "en", smoke)
    with dg.instance_for_test() as instance, contextlib.ExitStack() as stack:
        servers = [stack.enter_context(StandIn(cost_fixed=0.002)) for _ in range(8)]
        embedder = _ollama([server.url for server in servers])
        _by_asset(home, "en", embedder, instance, chunk_tokens=None)  # first pass: documents, chunks, vectors
        for server in servers:
            server.reset()
        before = [_process_cpu(server.proc.pid) for server in servers]
        started = _cpu()
        result = materialize(home, "en", embedder, instance, force=True)
        orca_cpu = _cpu() - started
        standin_cpu = sum(_process_cpu(server.proc.pid) - cpu for server, cpu in zip(servers, before, strict=True))
        stats = [server.stats() for server in servers]
    embeddings = metadata(result, "embeddings")
    seconds, inputs = embeddings["embed_seconds"], embeddings["inputs_sent"]
    shares = [s["busy_seconds"] / seconds for s in stats]
    return Row(
        "14 client: eight one-slot servers at 2 ms per input",
        f"{inputs} inputs in {seconds:.2f} s ({inputs / seconds:,.0f} inputs/s; eight servers could do 4,000); busy "
        + ", ".join(f"{share:.0%}" for share in shares)
        + f"; CPU per input: Orca {orca_cpu / inputs * 1e6:.0f} us (whole run), the eight stand-ins "
        f"{standin_cpu / inputs * 1e6:.0f} us", min(shares), "each server's busy share (least)", "informational",
        None, notes=[source, "2 cores run Orca and eight servers here: where Orca's CPU per input plus the stand-ins' "
                     "exceeds 500 us (2 cores / 4,000 inputs/s), the machine, not either side, is the limit"])
