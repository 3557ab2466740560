"""One writer per collection: each asset step holds an exclusive lock on its collection while it runs.

The run queue already keeps two queued runs of one collection apart (the `dagster/partition` tag limit in
dagster.yaml), but `orca materialize` executes in its own process, outside the queue, and nothing stops a
second Orca on another machine from writing the same warehouse. So the write path protects itself: every
step of `embed_collection_job` reads its inputs and publishes its output under the collection's lock
(orca_core/collection_lock.py: an advisory lock in the instance's PostgreSQL database, which works across
machines, or with a SQLite instance the lock of its warehouse folder). Steps of two runs then follow one
another instead of interleaving inside a step, and because each step is a pure function of what it reads,
the last run to finish leaves an index that matches the inbox as it last read it.

Under the lock, a step also pulls its collection from the storage before it reads and pushes what it wrote
after it succeeds (`WarehouseResource.synced`; nothing moves when the storage is ORCA_HOME itself), so a
step on any machine starts from what the last step stored.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
from collections.abc import Callable, Iterator
from typing import Any

from orca_core.collection_lock import collection_lock, instance_postgres_url


def one_writer_per_collection(compute: Callable[..., Any]) -> Callable[..., Any]:
    """Decorate an asset's compute function (below `@dg.asset`) so it runs under its collection's lock.

    The function must take `context` first and a `warehouse: WarehouseResource`; Dagster passes resources by
    name, and `functools.wraps` keeps the signature Dagster reads its parameters from.
    """

    if inspect.isgeneratorfunction(compute):  # an asset that yields (check results, then its result)

        @functools.wraps(compute)
        def locked_events(context, *args: Any, **kwargs: Any) -> Iterator[Any]:
            with _collection_lock(context, kwargs["warehouse"]):
                with kwargs["warehouse"].synced(context.partition_key):
                    yield from compute(context, *args, **kwargs)

        return locked_events

    @functools.wraps(compute)
    def locked(context, *args: Any, **kwargs: Any) -> Any:
        with _collection_lock(context, kwargs["warehouse"]):
            with kwargs["warehouse"].synced(context.partition_key):
                return compute(context, *args, **kwargs)

    return locked


@contextlib.contextmanager
def _collection_lock(context, warehouse) -> Iterator[None]:
    folder = warehouse.collection_dir(context.partition_key)
    postgres_url = instance_postgres_url(context.instance)
    with collection_lock(folder, context.partition_key, postgres_url=postgres_url, on_wait=context.log.info) as waited:
        if waited >= 1:
            context.log.info(f"waited {waited:.1f}s for {context.partition_key}'s lock")
        yield
