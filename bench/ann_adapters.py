"""The HNSW libraries that bench/ann_libraries.py compares, behind one interface, and the settings it uses.

Also the `--child` side of the memory check: a fresh process (started by `measure_open` in bench/ann_libraries.py)
that opens a saved index the way each library can, answers the queries and reports its memory.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

DIM = 768
M = 16
EF_CONSTRUCTION = (64, 128)
EF_SEARCH = (32, 64, 128)
EF_MEMORY = 64  # efSearch of the memory and update checks
K = 10
QUERIES = 200
BUILD_THREADS = 2
WARMUP = 50  # queries answered before the timed pass at each efSearch


# --- libraries: build, search one query, save -------------------------------------------------------------


class Lib:
    name = ""
    storage = ""

    def build(self, data: np.ndarray, ef_construction: int): ...
    def set_ef(self, index, ef: int) -> None: ...
    def search_one(self, index, query: np.ndarray) -> np.ndarray: ...
    def save(self, index, path: str) -> None: ...


class USearch(Lib):
    name = "usearch"

    def __init__(self, dtype: str) -> None:
        self.storage = dtype
        self.dtype = dtype

    def build(self, data, ef_construction):
        from usearch.index import Index

        index = Index(ndim=DIM, metric="cos", dtype=self.dtype, connectivity=M, expansion_add=ef_construction)
        index.add(np.arange(len(data), dtype=np.uint64), data, threads=BUILD_THREADS)
        return index

    def set_ef(self, index, ef):
        index.expansion_search = ef

    def search_one(self, index, query):
        return np.asarray(index.search(query, K, threads=1).keys, dtype=np.int64)

    def save(self, index, path):
        index.save(path)


class Faiss(Lib):
    name = "faiss-cpu"

    def __init__(self, storage: str) -> None:
        self.storage = storage  # "f32" (IndexHNSWFlat) or "fp16" (IndexHNSWSQ, QT_fp16)

    def build(self, data, ef_construction):
        import faiss

        faiss.omp_set_num_threads(BUILD_THREADS)
        if self.storage == "f32":
            index = faiss.IndexHNSWFlat(DIM, M, faiss.METRIC_INNER_PRODUCT)
        else:
            index = faiss.IndexHNSWSQ(DIM, faiss.ScalarQuantizer.QT_fp16, M, faiss.METRIC_INNER_PRODUCT)
            index.train(data[:1000])  # fp16 needs no training, but the index must be marked trained
        index.hnsw.efConstruction = ef_construction
        index.add(data)
        faiss.omp_set_num_threads(1)  # searching: one thread, one query per call
        return index

    def set_ef(self, index, ef):
        index.hnsw.efSearch = ef

    def search_one(self, index, query):
        return index.search(query[None, :], K)[1][0].astype(np.int64)

    def save(self, index, path):
        import faiss

        faiss.write_index(index, path)


class Hnswlib(Lib):
    name = "hnswlib"
    storage = "f32"

    def build(self, data, ef_construction):
        import hnswlib

        index = hnswlib.Index(space="cosine", dim=DIM)
        index.init_index(max_elements=len(data), ef_construction=ef_construction, M=M, allow_replace_deleted=True)
        index.add_items(data, np.arange(len(data)), num_threads=BUILD_THREADS)
        return index

    def set_ef(self, index, ef):
        index.set_ef(ef)

    def search_one(self, index, query):
        return index.knn_query(query, k=K, num_threads=1)[0][0].astype(np.int64)

    def save(self, index, path):
        index.save_index(path)


LIBS = {
    "usearch-f32": lambda: USearch("f32"),
    "usearch-f16": lambda: USearch("f16"),
    "faiss-f32": lambda: Faiss("f32"),
    "faiss-fp16": lambda: Faiss("fp16"),
    "hnswlib-f32": Hnswlib,
}

# How a fresh process opens a saved index, per library: (mode, what it means)
OPEN_MODES = {
    "usearch": [("view", "restore(view=True): mmap"), ("load", "restore(): read into RAM")],
    "faiss-cpu": [
        ("mmap", "read_index(IO_FLAG_MMAP)"),
        ("mmap_ifc", "read_index(IO_FLAG_MMAP_IFC)"),
        ("load", "read_index(): read into RAM"),
    ],
    "hnswlib": [("load", "load_index(): read into RAM (no mmap)")],
}


# --- the child process: open a saved index, answer the queries, report memory ------------------------------


def status_kib() -> dict[str, int]:
    out = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        name, _, rest = line.partition(":")
        if name in ("VmRSS", "RssAnon", "RssFile", "VmHWM"):
            out[name] = int(rest.split()[0])
    return out


def child(lib: str, path: str, mode: str, queries_path: str, rows: int) -> None:
    queries = np.load(queries_path)
    if lib == "usearch":
        from usearch.index import Index

        before = status_kib()
        started = time.perf_counter()
        index = Index.restore(path, view=(mode == "view"))
        index.expansion_search = EF_MEMORY
        opened = time.perf_counter() - started
        ids = [np.asarray(index.search(q, K, threads=1).keys, dtype=np.int64) for q in queries]
    elif lib == "faiss-cpu":
        import faiss

        faiss.omp_set_num_threads(1)
        flags = {"mmap": faiss.IO_FLAG_MMAP, "mmap_ifc": faiss.IO_FLAG_MMAP_IFC, "load": 0}[mode]
        before = status_kib()
        started = time.perf_counter()
        index = faiss.read_index(path, flags)
        index.hnsw.efSearch = EF_MEMORY
        opened = time.perf_counter() - started
        ids = [index.search(q[None, :], K)[1][0].astype(np.int64) for q in queries]
    else:
        import hnswlib

        before = status_kib()
        started = time.perf_counter()
        index = hnswlib.Index(space="cosine", dim=DIM)
        index.load_index(path, max_elements=rows)
        index.set_ef(EF_MEMORY)
        opened = time.perf_counter() - started
        ids = [index.knn_query(q, k=K, num_threads=1)[0][0].astype(np.int64) for q in queries]
    after = status_kib()
    print(json.dumps({"before": before, "after": after, "open_s": opened, "ids": np.stack(ids).tolist()}))
