"""Reading many documents on every core: PDF and Office extraction is CPU work, one file per process.

Plain text is read in the step's own process (decoding is cheap). Packaged formats go to worker processes
(orca_assets/extraction_worker.py), one per core, when there are enough of them to pay for starting those.
The workers are fresh interpreters that import only the converters (a multiprocessing pool would import the
run's whole `__main__`, Dagster's command line, in every worker), and they run at a lower CPU priority, so
extraction of one collection never starves the embedding client of another running beside it. A converter
that crashes or hangs its process (a native library's fault on a hostile file) fails that document alone,
and its worker is replaced.
"""

from __future__ import annotations

import os
import pickle
import select
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from orca_assets.extraction_worker import read_exactly
from orca_core.formats import is_packaged
from orca_core.loaders import DocumentError, Extracted, read_document

Outcome = Extracted | DocumentError
MIN_POOLED_FILES = 4  # fewer packaged files than this are read in-process: workers cost more than they save
FILE_SECONDS = 120.0  # one file's conversion; past it the worker is killed and the file fails alone


def workers() -> int:
    """Extraction processes: every core this process may use."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def read_one(path: Path, max_bytes: int | None) -> Outcome:
    """One document, in this process."""
    try:
        return read_document(path, max_bytes=max_bytes)
    except DocumentError as error:
        return error


class Worker:
    """One extraction process and the pipes to it."""

    def __init__(self) -> None:
        self.answers, answers_w = os.pipe()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "orca_assets.extraction_worker", str(answers_w)],
            stdin=subprocess.PIPE, pass_fds=(answers_w,), stdout=subprocess.DEVNULL,
        )  # fmt: skip
        os.close(answers_w)

    def read(self, path: Path, max_bytes: int | None, seconds: float = FILE_SECONDS) -> Outcome:
        request = pickle.dumps((str(path), max_bytes))
        try:
            self.process.stdin.write(len(request).to_bytes(8, "little") + request)
            self.process.stdin.flush()
            if not select.select([self.answers], [], [], seconds)[0]:
                raise TimeoutError
            head = read_exactly(self.answers, 8)
            if len(head) < 8:
                raise EOFError
            return pickle.loads(read_exactly(self.answers, int.from_bytes(head, "little")))
        except TimeoutError:
            self.process.kill()  # hung: this worker is done; the pool makes a fresh one for the next file
            return DocumentError(f"converting took longer than {seconds:g} s (stopped; a damaged or hostile file?)")
        except (EOFError, OSError, pickle.UnpicklingError):
            return DocumentError("the converter crashed on this file (a damaged or hostile file?)")

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def close(self) -> None:
        if self.process.stdin:
            self.process.stdin.close()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        os.close(self.answers)


class WorkerPool:
    """A worker per thread; a worker that crashed or hung is replaced before its next file."""

    def __init__(self) -> None:
        self.local = threading.local()
        self.all: list[Worker] = []
        self.lock = threading.Lock()

    def read(self, path: Path, max_bytes: int | None) -> Outcome:
        worker = getattr(self.local, "worker", None)
        if worker is None or not worker.alive:
            worker = self.local.worker = Worker()
            with self.lock:
                self.all.append(worker)
        return worker.read(path, max_bytes)

    def close(self) -> None:
        for worker in self.all:
            if worker.alive:
                worker.close()
            else:
                worker.process.wait()
                os.close(worker.answers)


def read_documents(paths: Sequence[Path], max_bytes: Callable[[Path], int | None]) -> Iterator[Outcome]:
    """The Extracted document or the DocumentError of each path, in order."""
    pooled = [path for path in paths if is_packaged(path.suffix.lower())]
    if len(pooled) < MIN_POOLED_FILES or workers() < 2:
        for path in paths:
            yield read_one(path, max_bytes(path))
        return
    pool = WorkerPool()
    try:
        with ThreadPoolExecutor(min(workers(), len(pooled))) as threads:
            futures = {path: threads.submit(pool.read, path, max_bytes(path)) for path in pooled}
            for path in paths:
                future = futures.get(path)
                yield future.result() if future is not None else read_one(path, max_bytes(path))
    finally:
        pool.close()
