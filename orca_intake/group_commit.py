"""Group commit: the documents of all in-flight requests become durable with one flush and one queue commit.

Each request hands its documents to the `DocumentWriter`'s thread and awaits its reply; it is never
answered before its group's flush and queue commit have completed. While the thread stores one group, the
requests arriving meanwhile wait together and form the next group, so under load a flush serves many
requests and with a single client a group is just that client's request (no timer, no added latency).

One group, in this order:

1. stage: every request's documents and source records are written to hidden temporary names beside their
   targets (no fsync); a request whose ids are unsafe or collide with a folder fails alone (4xx) and
   leaves nothing behind;
2. flush: one `syncfs` of the inbox's file system (or an fdatasync of every file: orca_intake/flush.py).
   If it fails, every request of the group fails with 503 and all temporary files are removed: nothing of
   the group is visible, nothing is queued;
3. publish: renames into place (each source record before its document), then one fsync per folder
   touched by the group, which makes the renames durable. Data is durable before it gets its name, so
   after a crash the inbox holds whole documents only;
4. queue: one transaction inserts the queue rows of every published request (`IntakeQueue.enqueue_many`);
5. reply: each request's future is resolved, and only then the endpoint answers 202.

Steps 1-3 run in one thread and steps 4-5 in another, so a group's queue commit overlaps the next group's
file work; the queue thread commits all the groups that reached it meanwhile in one transaction.

A failure after step 3 (a folder fsync or the queue commit) answers 503 to the requests concerned while
their documents may already be in the inbox: the inbox sensor indexes them anyway, the client retries,
and a retry replaces them (same id) — as when a single request failed there before group commit.

With an object store (ORCA_STORAGE_URL=s3://...) steps 1-3 are a group's PUTs instead, made by a few
threads at once (orca_intake/s3_documents.py): an answered PUT is durable and visible, so there is nothing
to stage, flush or rename. Steps 4-5 are the same.
"""

from __future__ import annotations

import asyncio
import logging
import queue as queues
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from orca_intake.errors import InvalidInput, ServiceUnavailable
from orca_intake.flush import Flusher
from orca_intake.s3_documents import RemoteInbox, store_requests
from orca_resources import inbox_staging as staging
from orca_resources.inbox import InboxConflict
from orca_resources.intake_queue import IntakeQueue
from orca_resources.warehouse import fsync_dir

log = logging.getLogger("orca_intake")


@dataclass(eq=False)
class StoreJob:
    """One request's documents and the queue row to commit once they are durable."""

    queue: IntakeQueue
    inbox: Path | RemoteInbox  # a local inbox folder, or a collection's inbox on an object store
    documents: list[staging.NewDocument]
    row: tuple[str, str, dict[str, Any], str]  # kind, collection, payload, request_id
    future: Future = field(default_factory=Future)
    staged: staging.StagedDocuments | None = None


# Concurrent PUTs of a group: at most botocore's default connection pool (10), so no connection is discarded.
S3_THREADS = 8


def _storage_error(error: OSError, what: str) -> ServiceUnavailable:
    return ServiceUnavailable(f"could not {what}: {error.strerror or error}", code="storage_unavailable")


class DocumentWriter:
    """Two threads that store the documents of concurrent requests in groups (see the module docstring).

    The file thread stages, flushes and publishes a group, then hands it to the queue thread, which commits
    the rows of every group handed to it meanwhile in one transaction and replies; so the queue commit of
    one group overlaps the file work of the next.
    """

    def __init__(self, flusher: Flusher | None = None):
        self.flusher = flusher or Flusher()
        self._s3_pool: ThreadPoolExecutor | None = None  # made for the first group bound for an object store
        self._pending: queues.SimpleQueue[StoreJob | None] = queues.SimpleQueue()
        self._published: queues.SimpleQueue[list[StoreJob] | None] = queues.SimpleQueue()
        self._threads = [
            threading.Thread(target=self._loop, args=(self._pending, self._files), name="orca-intake-files"),
            threading.Thread(target=self._loop, args=(self._published, self._rows), name="orca-intake-queue"),
        ]
        for thread in self._threads:
            thread.daemon = True
            thread.start()

    async def store(self, job: StoreJob) -> None:
        """Queue `job` and return once its documents are durable and its row committed; raises its failure."""
        self._pending.put(job)
        # If the client goes away before the group starts, the job is cancelled and never written.
        await asyncio.wrap_future(job.future)

    def close(self, timeout: float = 30) -> None:
        """Store what is pending, then stop the threads."""
        self._pending.put(None)
        for thread in self._threads:
            thread.join(timeout)
        self.flusher.close()
        if self._s3_pool is not None:
            self._s3_pool.shutdown()

    def _loop(self, pending: queues.SimpleQueue, handle) -> None:
        """Take everything `pending` holds as one group and `handle` it, until the None that says stop."""
        stopping = False
        while not stopping:
            first = pending.get()
            group, stopping = ([first] if first is not None else []), first is None
            while not stopping:
                try:
                    item = pending.get_nowait()
                except queues.Empty:
                    break
                if item is None:
                    stopping = True
                else:
                    group.append(item)
            try:
                handle(group)
            except BaseException as error:  # a bug: fail the group, keep the thread alive
                log.exception("storing a group of %d requests failed", len(group))
                for job in (job for item in group for job in (item if isinstance(item, list) else [item])):
                    if job.staged is not None:
                        staging.discard(job.staged)
                    if not job.future.done():
                        job.future.set_exception(error)
        if handle == self._files:
            self._published.put(None)  # the queue thread stops after the last group

    def _files(self, group: list[StoreJob]) -> None:
        # A cancelled job (its client left) is dropped; the others cannot be cancelled from now on.
        group = [job for job in group if job.future.set_running_or_notify_cancel()]
        remote = [job for job in group if isinstance(job.inbox, RemoteInbox)]
        published = self._put_remote(remote) if remote else []
        published += self._write_local([job for job in group if not isinstance(job.inbox, RemoteInbox)])
        if published:
            self._published.put(published)

    def _put_remote(self, jobs: list[StoreJob]) -> list[StoreJob]:
        if self._s3_pool is None:
            self._s3_pool = ThreadPoolExecutor(S3_THREADS, thread_name_prefix="orca-intake-s3")
        outcomes = store_requests(self._s3_pool, [(job.inbox, job.documents) for job in jobs])
        for job, error in zip(jobs, outcomes):
            if error is not None:
                job.future.set_exception(error)
        return [job for job, error in zip(jobs, outcomes) if error is None]

    def _write_local(self, group: list[StoreJob]) -> list[StoreJob]:
        if not group:
            return []
        staged = [job for job in group if self._stage(job)]
        try:
            self.flusher.flush([tmp for job in staged for tmp in job.staged.tmp_files])
        except OSError as error:
            for job in staged:
                staging.discard(job.staged)
                job.future.set_exception(_storage_error(error, "make the documents durable"))
            return []
        published = [job for job in staged if self._publish(job)]
        try:
            for folder in set().union(*(job.staged.folders for job in published)):
                fsync_dir(folder)
        except OSError as error:
            for job in published:
                job.future.set_exception(_storage_error(error, "make the documents durable"))
            return []
        return published

    def _rows(self, groups: list[list[StoreJob]]) -> None:
        by_queue: dict[int, list[StoreJob]] = {}
        for job in (job for group in groups for job in group):
            by_queue.setdefault(id(job.queue), []).append(job)
        for jobs in by_queue.values():
            try:
                jobs[0].queue.enqueue_many([job.row for job in jobs])
            except SQLAlchemyError as error:  # the documents are in the inbox, but the requests are not queued
                for job in jobs:
                    job.future.set_exception(ServiceUnavailable(
                        f"the documents were written but the request could not be queued ({type(error).__name__}); "
                        "the inbox sensor will still index them",
                        code="queue_unavailable",
                    ))
                continue
            for job in jobs:
                job.future.set_result(None)

    def _stage(self, job: StoreJob) -> bool:
        try:
            job.staged = staging.stage_documents(job.inbox, job.documents, watch=self.flusher.watch)
            return True
        except ValueError as error:  # a symbolic link in the inbox leading elsewhere
            job.future.set_exception(InvalidInput(str(error), code="invalid_doc_id"))
        except InboxConflict as error:
            job.future.set_exception(error)
        except OSError as error:
            job.future.set_exception(_storage_error(error, "write the documents into the inbox"))
        return False

    def _publish(self, job: StoreJob) -> bool:
        try:
            staging.publish(job.staged)
            return True
        except InboxConflict as error:
            job.future.set_exception(error)
        except OSError as error:
            job.future.set_exception(_storage_error(error, "write the documents into the inbox"))
        staging.discard(job.staged)
        return False
