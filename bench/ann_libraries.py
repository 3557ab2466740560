"""The record of Orca's choice of HNSW library: usearch against faiss-cpu and hnswlib, measured on one machine.

Not part of `make bench` and not run by the project's virtual environment: only usearch is a dependency of
Orca, so this script is run by hand in a throwaway venv that has all three libraries:

    python3.11 -m venv /tmp/annvenv && /tmp/annvenv/bin/pip install numpy usearch faiss-cpu hnswlib
    PYTHONPATH=/work/main /tmp/annvenv/bin/python bench/ann_libraries.py --rows 100000

It exists so that the choice can be checked and redone (a new release, another machine) rather than taken on
trust. For `--rows` vectors of 768 dimensions from bench/search_vectors.py (unit length, so cosine is the
inner product) and each library it measures, printing Markdown tables:

  - build rate (vectors/s) with 2 building threads, M (connectivity) 16, efConstruction (expansion_add) 64
    and 128; storage f32 for all, plus half precision where the library has it (usearch f16, faiss
    IndexHNSWSQ with QT_fp16; hnswlib has only f32). usearch's own default on a CPU with AVX-512 BF16 is
    bf16, so the storage is always set explicitly here;
  - for efSearch (expansion_search) 32, 64, 128: recall@10 over 200 queries against exact top-10 by numpy,
    and single-query latency p50/p95 in ms: one query per call and one search thread, as a search service
    answers them (the Python call's overhead included), and the calling thread's CPU time per query;
  - (for the largest efConstruction) the index's size on disk after save, and the resident memory of a fresh process that opens the saved
    index (memory-mapped where the library can: usearch `Index.restore(path, view=True)`, faiss
    `read_index(path, IO_FLAG_MMAP)` and `IO_FLAG_MMAP_IFC`; hnswlib cannot, it always loads) and answers
    the 200 queries at efSearch 64, read from /proc/self/status (VmRSS, and its anonymous and file-backed
    parts: file-backed pages of a mapping are shared page cache, anonymous ones are the process's own);
  - (likewise) updates of a saved index: load it writable, remove 1% of the keys, add 1% new vectors, time both, save,
    and check recall@10 (efSearch 64) against the exact top-10 of the updated set. faiss's HNSW indexes
    cannot remove (remove_ids raises); the removed keys are then excluded at search time with an IDSelector,
    which is what a caller would have to do.

Timings are wall-clock on a shared machine (other processes may run): compare libraries within one run, and
lean on the CPU-time columns (the build's process CPU seconds, a query's thread CPU time), which other
processes disturb less. At 100,000 rows these vectors are easy (recall@10 is ~1.0 from efSearch 32), so
recall does not separate the libraries here; speed, memory and the update paths do.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.ann_adapters import (
    BUILD_THREADS,
    DIM,
    EF_CONSTRUCTION,
    EF_MEMORY,
    EF_SEARCH,
    LIBS,
    OPEN_MODES,
    QUERIES,
    WARMUP,
    K,
    Lib,
    child,
)
from bench.ann_report import Result, report, versions


def measure_open(lib: str, path: str, mode: str, queries_path: str, rows: int) -> dict:
    # A fresh process, so its memory is only what opening the index adds; it is this script's `--child` mode,
    # which main() hands to ann_adapters.child.
    proc = subprocess.run(
        [sys.executable, __file__, "--child", lib, path, mode, queries_path, str(rows)],
        capture_output=True,
        check=False,
        text=True,
    )
    if proc.returncode != 0:
        return {"error": (proc.stderr.strip().splitlines() or [f"exit {proc.returncode}"])[-1][:160]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


# --- measuring ---------------------------------------------------------------------------------------------


def exact_top(data: np.ndarray, queries: np.ndarray, live: np.ndarray | None = None) -> np.ndarray:
    scores = queries @ data.T
    if live is not None:
        scores[:, ~live] = -np.inf
    top = np.argpartition(-scores, K - 1, axis=1)[:, :K]
    return top


def recall(found: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean([len(set(f.tolist()) & set(t.tolist())) / K for f, t in zip(found, truth)]))


def process_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def timed_search(lib: Lib, index, queries: np.ndarray, ef: int, **kw) -> tuple[np.ndarray, np.ndarray]:
    lib.set_ef(index, ef)
    search = kw.get("search", lib.search_one)
    for q in queries[:WARMUP]:
        search(index, q)
    found, times, cpu = [], [], []
    for q in queries:
        started, started_cpu = time.perf_counter(), time.thread_time()
        found.append(search(index, q))
        times.append(time.perf_counter() - started)
        cpu.append(time.thread_time() - started_cpu)
    timed_search.cpu_ms = np.array(cpu) * 1000  # the calling thread's CPU time per query (search runs in it)
    return np.stack(found), np.array(times) * 1000


def update_check(
    key: str,
    lib: Lib,
    path: str,
    data: np.ndarray,
    extra: np.ndarray,
    queries: np.ndarray,
    before_recall: float,
    workdir: Path,
) -> dict:
    """Load the saved index writable, remove 1% of the keys and add 1% new vectors; recall against the new truth."""
    n, change = len(data), len(extra)
    removed = np.random.default_rng(1).choice(n, change, replace=False).astype(np.int64)
    new_keys = np.arange(n, n + change, dtype=np.int64)
    live = np.ones(n + change, dtype=bool)
    live[removed] = False
    truth = exact_top(np.concatenate([data, extra]), queries, live)
    out: dict = {"before_recall": before_recall}
    search = lib.search_one
    if lib.name == "usearch":
        from usearch.index import Index

        index = Index.restore(path)
        started = time.perf_counter()
        index.remove(removed.astype(np.uint64))
        out["remove_s"] = time.perf_counter() - started
        started = time.perf_counter()
        index.add(new_keys.astype(np.uint64), extra, threads=BUILD_THREADS)
        out["add_s"] = time.perf_counter() - started
        out["remove"] = "yes (tombstones; `compact=True` relinks)"
    elif lib.name == "faiss-cpu":
        import faiss

        index = faiss.read_index(path)
        started = time.perf_counter()
        try:
            index.remove_ids(faiss.IDSelectorBatch(removed))
            out["remove"] = "yes"
        except RuntimeError as error:
            out["remove"] = "no (" + str(error).strip().splitlines()[-1].rsplit(": ", 1)[-1][:60] + ")"
            out["remove_error"] = True
        out["remove_s"] = time.perf_counter() - started
        faiss.omp_set_num_threads(BUILD_THREADS)
        started = time.perf_counter()
        index.add(extra)  # HNSW ids are sequential: the new rows get n .. n+change-1
        out["add_s"] = time.perf_counter() - started
        faiss.omp_set_num_threads(1)
        if out.get("remove_error"):
            selector = faiss.IDSelectorNot(faiss.IDSelectorBatch(removed))

            def search(index, q, selector=selector):
                params = faiss.SearchParametersHNSW(sel=selector, efSearch=index.hnsw.efSearch)
                return index.search(q[None, :], K, params=params)[1][0].astype(np.int64)

            out["remove"] += "; removed keys filtered at search (IDSelectorNot)"
    else:
        import hnswlib

        index = hnswlib.Index(space="cosine", dim=DIM)
        index.load_index(path, max_elements=n, allow_replace_deleted=True)
        started = time.perf_counter()
        for label in removed:
            index.mark_deleted(int(label))
        out["remove_s"] = time.perf_counter() - started
        started = time.perf_counter()
        index.add_items(extra, new_keys, num_threads=BUILD_THREADS, replace_deleted=True)
        out["add_s"] = time.perf_counter() - started
        out["remove"] = "yes (mark_deleted; replace_deleted reuses the slots)"
    found, _ = timed_search(lib, index, queries, EF_MEMORY, search=search)
    out["after_recall"] = recall(found, truth)
    resaved = str(workdir / f"{key}.updated")
    started = time.perf_counter()
    lib.save(index, resaved)
    out["save_s"] = time.perf_counter() - started
    out["add_rate"] = change / out["add_s"]
    return out


def run_config(
    key: str, ef_construction: int, data, queries, truth, workdir: Path, queries_path: str, extra, last: bool
) -> Result:
    lib = LIBS[key]()
    started, started_cpu = time.perf_counter(), process_cpu()
    index = lib.build(data, ef_construction)
    result = Result(
        key, lib.name, lib.storage, ef_construction, time.perf_counter() - started, process_cpu() - started_cpu
    )
    for ef in EF_SEARCH:
        found, ms = timed_search(lib, index, queries, ef)
        result.searches[ef] = (
            recall(found, truth),
            float(np.percentile(ms, 50)),
            float(np.percentile(ms, 95)),
            float(np.percentile(timed_search.cpu_ms, 50)),
        )
    path = str(workdir / f"{key}-efc{ef_construction}.index")
    lib.save(index, path)
    del index
    result.disk_bytes = os.path.getsize(path)
    for mode, _ in OPEN_MODES[lib.name] if last else ():  # what a process opens does not depend on efC
        report = measure_open(lib.name, path, mode, queries_path, len(data))
        if "ids" in report:
            report["recall"] = recall(np.array(report.pop("ids")), truth)
        result.opens[mode] = report
    if last:
        result.update = update_check(key, lib, path, data, extra, queries, result.searches[EF_MEMORY][0], workdir)
    for leftover in workdir.glob(f"{key}-efc{ef_construction}*"):
        leftover.unlink()
    for leftover in workdir.glob(f"{key}.updated"):
        leftover.unlink()
    print(f"  done {key} efC={ef_construction}: build {result.build_s:.1f}s", file=sys.stderr, flush=True)
    return result


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5], int(sys.argv[6]))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--libs", default=",".join(LIBS), help="comma-separated, of: " + ", ".join(LIBS))
    parser.add_argument("--ef-construction", default=",".join(map(str, EF_CONSTRUCTION)))
    args = parser.parse_args()

    from bench.search_vectors import VectorSource

    load_start = os.getloadavg()
    started = time.perf_counter()
    source = VectorSource(dimensions=DIM)
    data = np.ascontiguousarray(np.concatenate(list(source.blocks(args.rows))), dtype=np.float32)
    extra = source.block(max(1, args.rows // 100), seed=424_242)  # the 1% added by the update check
    queries = source.queries(QUERIES)
    truth = exact_top(data, queries)
    results = []
    with tempfile.TemporaryDirectory(prefix="ann-libraries-") as tmp:
        workdir = Path(tmp)
        queries_path = str(workdir / "queries.npy")
        np.save(queries_path, queries)
        efcs = [int(x) for x in args.ef_construction.split(",")]
        for key in args.libs.split(","):
            for efc in efcs:
                try:
                    results.append(
                        run_config(
                            key, efc, data, queries, truth, workdir, queries_path, extra, last=(efc == max(efcs))
                        )
                    )
                except Exception as error:  # noqa: BLE001 - a library that fails must not hide the others' figures
                    print(f"  {key} efC={efc} failed: {error!r}", file=sys.stderr, flush=True)
    notes = [
        (
            f"Machine: {os.cpu_count()} cores, {platform.processor() or platform.machine()}, Python "
            f"{platform.python_version()}; {versions()}."
        ),
        (
            f"Load average {load_start[0]:.2f} at the start, {os.getloadavg()[0]:.2f} at the end: the machine is "
            f"shared, timings are wall-clock; compare within one run. Total {time.perf_counter() - started:.0f} s."
        ),
        (
            f"Latency: one query per call, one search thread, {WARMUP} warm-up queries untimed; recall against "
            "exact top-10 (numpy)."
        ),
    ]
    print(report(results, args.rows, notes))
    return 0


if __name__ == "__main__":
    sys.exit(main())
