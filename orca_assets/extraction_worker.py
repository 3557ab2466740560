"""`python -m orca_assets.extraction_worker FD`: converts documents for the run's extraction pool.

Requests come on stdin and answers go to the pipe FD, each a length-prefixed pickle: (path, max_bytes) in,
an Extracted document or a DocumentError out. The answers have a pipe of their own, so whatever a native
library prints cannot corrupt them. The worker runs at a lower CPU priority (see extraction_pool.py).
"""

from __future__ import annotations

import os
import pickle
import sys
from pathlib import Path

from orca_core.loaders import DocumentError, read_document

WORKER_NICENESS = 10


def read_exactly(fd: int, size: int) -> bytes:
    """`size` bytes from `fd`, or fewer at end of file."""
    chunks, left = [], size
    while left:
        chunk = os.read(fd, left)
        if not chunk:
            break
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def send(fd: int, value: object) -> None:
    data = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    view = memoryview(len(data).to_bytes(8, "little") + data)
    while view:
        view = view[os.write(fd, view) :]


def main(answers: int) -> None:
    try:
        os.nice(WORKER_NICENESS)
    except OSError:
        pass  # not allowed here: run at the same priority
    requests = sys.stdin.fileno()
    while len(head := read_exactly(requests, 8)) == 8:
        path, max_bytes = pickle.loads(read_exactly(requests, int.from_bytes(head, "little")))
        try:
            outcome: object = read_document(Path(path), max_bytes=max_bytes)
        except DocumentError as error:
            outcome = error
        send(answers, outcome)


if __name__ == "__main__":
    main(int(sys.argv[1]))
