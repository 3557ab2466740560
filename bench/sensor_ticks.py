"""Evaluating `inbox_sensor` the way the daemon does, for the sensor benchmarks (bench/sensor.py, bench/s3_inbox.py)."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator

import dagster as dg

Tick = Callable[[], tuple[float, dg.SensorResult]]


@contextlib.contextmanager
def inbox_ticks(resources: dict) -> Iterator[tuple[Tick, list[float]]]:
    """`(tick, waited)` on a throwaway instance: `tick()` evaluates the sensor with the previous tick's cursor,
    registers the partitions it asks for, and returns its seconds of work (the settle rule's waits, listed in
    `waited` for the last tick, left out) with its result."""
    import sensors.inbox as inbox_module
    from sensors.inbox import inbox_sensor

    waited: list[float] = []

    def pause(seconds: float) -> None:
        waited.append(seconds)
        time.sleep(seconds)

    original_pause, inbox_module.pause = inbox_module.pause, pause
    try:
        with dg.instance_for_test() as instance:
            cursor = None

            def tick() -> tuple[float, dg.SensorResult]:
                nonlocal cursor
                waited.clear()
                with dg.build_sensor_context(instance=instance, cursor=cursor, resources=resources) as context:
                    started = time.perf_counter()
                    result = inbox_sensor(context)
                    seconds = time.perf_counter() - started - sum(waited)
                cursor = result.cursor
                for request in result.dynamic_partitions_requests or []:
                    instance.add_dynamic_partitions("collections", list(request.partition_keys))
                return seconds, result

            yield tick, waited
    finally:
        inbox_module.pause = original_pause
