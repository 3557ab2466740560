"""Prometheus metrics of one intake app: requests, latency, queue depth, accepted documents.

Each app owns a `CollectorRegistry`, so several apps (tests) never clash over metric names. Requests are
labelled by route template (`/v1/jobs/{request_id}`), never by raw path, so the label set stays bounded.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from orca_intake.run_metrics import DagsterRunsCollector
from orca_resources.intake_queue import IntakeQueue

log = logging.getLogger("orca_intake")
UNMATCHED_ROUTE = "<unmatched>"
# Any token is a valid HTTP method: label the unusual ones "other" so clients cannot grow the label set.
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class QueueDepthCollector(Collector):
    """Reads the queue's depth by status when Prometheus scrapes, so the numbers are never stale."""

    def __init__(self, queue: Callable[[], IntakeQueue | None]):
        self._queue = queue

    def collect(self):
        depth = GaugeMetricFamily("orca_intake_queue_depth", "Intake requests by status.", labels=["status"])
        up = GaugeMetricFamily("orca_intake_queue_up", "1 when the queue store answered this scrape.")
        queue = self._queue()
        try:
            counts = queue.depth_by_status() if queue is not None else None
        except Exception as error:  # a scrape must still answer when the store is down
            log.warning("queue depth unavailable: %s", error)
            counts = None
        for status, count in (counts or {}).items():
            depth.add_metric([status], count)
        up.add_metric([], 1 if counts is not None else 0)
        yield depth
        yield up


class IntakeMetrics:
    """The metrics of one app and the registry they live in.

    `instance` returns the Dagster instance (or None while there is none yet); with it, the app also exports
    runs by status and each collection's last throughput (orca_intake/run_metrics.py).
    """

    def __init__(self, queue: Callable[[], IntakeQueue | None], instance: Callable[[], object] | None = None):
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "orca_intake_requests", "HTTP requests answered.", ["method", "route", "status"], registry=self.registry
        )
        self.latency = Histogram(
            "orca_intake_request_duration_seconds",
            "Time to answer an HTTP request.",
            ["method", "route"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
            registry=self.registry,
        )
        self.documents_accepted = Counter(
            "orca_intake_documents_accepted", "Documents written into an inbox.", registry=self.registry
        )
        self.documents_deleted = Counter(
            "orca_intake_documents_deleted", "Documents removed from an inbox.", registry=self.registry
        )
        self.jobs_queued = Counter(
            "orca_intake_jobs_queued", "Requests queued, by kind.", ["kind"], registry=self.registry
        )
        self.internal_errors = Counter(
            "orca_intake_internal_errors", "Requests that failed on a bug (answered 500).", registry=self.registry
        )
        self.registry.register(QueueDepthCollector(queue))
        self.runs = DagsterRunsCollector(instance) if instance is not None else None
        if self.runs is not None:
            self.registry.register(self.runs)


class MetricsMiddleware:
    """Counts every answer by method, route template and status, and observes its latency."""

    def __init__(self, app: ASGIApp, metrics: IntakeMetrics):
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the client gets if the app raises before answering

        async def send_and_record(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_record)
        finally:
            route = getattr(scope.get("route"), "path", UNMATCHED_ROUTE)
            method = scope["method"] if scope["method"] in KNOWN_METHODS else "other"
            self.metrics.requests.labels(method, route, str(status)).inc()
            self.metrics.latency.labels(method, route).observe(time.perf_counter() - started)
