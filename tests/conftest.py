"""Shared pytest fixtures. Each block belongs to one area; add yours in its own delimited block."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test under tests/system/ `system`, so `-m "not system"` gives a quick loop."""
    for item in items:
        if item.path.parent.name == "system" and item.path.parent.parent.name == "tests":
            item.add_marker(pytest.mark.system)

# ---- Ollama stand-in fixtures (owner: OllamaResource) -------------------------------------------
from tests.ollama_standin import OllamaStandIn


@pytest.fixture
def ollama_standin() -> Iterator[OllamaStandIn]:
    """A started Ollama stand-in with `nomic-embed-text` (64 dims), stopped after the test."""
    with OllamaStandIn() as standin:
        yield standin


@pytest.fixture
def ollama_standin_factory() -> Iterator[Callable[..., OllamaStandIn]]:
    """Start extra stand-ins (same keyword arguments as OllamaStandIn); all are stopped after the test."""
    started: list[OllamaStandIn] = []

    def make(**kwargs) -> OllamaStandIn:
        standin = OllamaStandIn(**kwargs).start()
        started.append(standin)
        return standin

    yield make
    for standin in started:
        standin.stop()


# ---- end of Ollama stand-in fixtures ------------------------------------------------------------


# ---- REST intake fixtures (owner: orca_intake) --------------------------------------------------
# The intake's tests talk to `create_app` through FastAPI's TestClient; imports stay inside the fixtures
# so the rest of the suite does not pay for FastAPI.
LOOPBACK_CLIENT = ("127.0.0.1", 50000)


@pytest.fixture
def intake_settings(tmp_path):
    """Build OrcaSettings for a private ORCA_HOME (offline embedder); keyword arguments set env variables."""
    from orca_core.settings import OrcaSettings

    def make(**env: str):
        values = {"ORCA_HOME": str(tmp_path / "home"), "ORCA_EMBEDDER": "hashing", "ORCA_INTAKE_RATE_LIMIT": "off"}
        values.update(env)
        return OrcaSettings.from_env(values)

    return make


@pytest.fixture
def intake_app_factory(intake_settings):
    """Start intake apps (lifespan included) as TestClients; overrides are cleared and clients closed after."""
    from fastapi.testclient import TestClient

    from orca_intake.app import create_app

    opened = []

    def make(settings=None, *, client=LOOPBACK_CLIENT, raise_server_exceptions=True, **env: str):
        app = create_app(settings or intake_settings(**env))
        # A loopback Host, as a local client sends: a token-less intake refuses other names (DNS rebinding).
        test_client = TestClient(
            app, base_url="http://127.0.0.1:8000", client=client, raise_server_exceptions=raise_server_exceptions
        )
        test_client.__enter__()
        opened.append(test_client)
        return test_client

    yield make
    for test_client in opened:
        test_client.app.dependency_overrides.clear()
        test_client.__exit__(None, None, None)


@pytest.fixture
def intake_client(intake_app_factory):
    """A TestClient on an intake with default settings, the hashing embedder and no auth."""
    return intake_app_factory()


@pytest.fixture
def write_index():
    """Write a served index (the contract's columns) for `texts` of one document, embedded by `embedder`."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    def write(path, texts, embedder, *, doc_id="doc.txt", model=None, source="inbox/test/doc.txt", **provenance):
        """`provenance`: per-row lists for the columns `doc_ids`, `page`, `section`, `title`, `metadata` (an
        index written before those columns existed has none, and that is what leaving them out writes)."""
        vectors = next(iter(embedder.embed_batches([list(texts)]))).vectors if texts else []
        name = model or embedder.model_info().name
        doc_ids = provenance.pop("doc_ids", [doc_id] * len(texts))
        extra = {"page": pa.array(provenance.pop("page"), pa.int32())} if "page" in provenance else {}
        extra.update({column: pa.array(values, pa.string()) for column, values in provenance.items()})
        table = pa.table(
            {
                "chunk_id": [f"{doc_ids[i]}#{i}" for i in range(len(texts))],
                "doc_id": doc_ids,
                "chunk_index": pa.array(range(len(texts)), pa.int32()),
                "text": list(texts),
                "embedding": pa.array([list(map(float, v)) for v in vectors], pa.list_(pa.float32())),
                "model": [name] * len(texts),
                "source": [source] * len(texts),
                **extra,
            }
        ).replace_schema_metadata({"orca.model": name})
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        pq.write_table(table, tmp)
        tmp.replace(path)  # a rename, as the embedding_index asset publishes it
        return path

    return write


# ---- end of REST intake fixtures ----------------------------------------------------------------


# ---- Sensor and schedule fixtures (owner: sensors/, schedules/) ---------------------------------
from dataclasses import dataclass, field  # noqa: E402
from pathlib import Path  # noqa: E402

import dagster as dg  # noqa: E402

from orca_assets.jobs import embed_collection_job, embedding_assets  # noqa: E402
from orca_resources.hashing_embedder import HashingEmbedderResource  # noqa: E402
from orca_resources.intake_queue_resource import IntakeQueueResource, SensorQueue  # noqa: E402
from orca_resources.warehouse import WarehouseResource  # noqa: E402


@dataclass
class SensorHarness:
    """A temporary ORCA_HOME and Dagster instance; ticks sensors the way the daemon does and runs their requests."""

    home: Path
    instance: dg.DagsterInstance
    embedder: object = field(default_factory=HashingEmbedderResource)
    warehouse_config: dict = field(default_factory=dict)  # WarehouseResource fields a test sets (limits, ...)
    _queue: SensorQueue | None = None

    def inbox(self, collection: str) -> Path:
        path = self.home / "inbox" / collection
        path.mkdir(parents=True, exist_ok=True)
        return path

    @property
    def queue(self) -> SensorQueue:
        """The intake queue, as the REST intake would write it."""
        if self._queue is None:
            self._queue = SensorQueue(self.queue_resource().resolved_url)
        return self._queue

    def queue_resource(self) -> IntakeQueueResource:
        return IntakeQueueResource(home=str(self.home))

    def resources(self) -> dict:
        return {
            "warehouse": WarehouseResource(home=str(self.home), **self.warehouse_config),
            "intake_queue": self.queue_resource(),
            "embedder": self.embedder,
        }

    def tick(self, sensor: dg.SensorDefinition, cursor: str | None = None) -> dg.SensorResult:
        """Evaluate `sensor`, then add the partitions it asked for (the daemon does that before launching runs)."""
        with dg.build_sensor_context(instance=self.instance, cursor=cursor, resources=self.resources()) as context:
            result = sensor(context)
        for request in result.dynamic_partitions_requests or []:
            self.instance.add_dynamic_partitions(request.partitions_def_name, list(request.partition_keys))
        return result

    def job(self, embedder: object | None = None) -> dg.JobDefinition:
        return dg.Definitions(
            assets=embedding_assets,
            jobs=[embed_collection_job],
            resources={"embedder": embedder or self.embedder, "warehouse": WarehouseResource(home=str(self.home))},
        ).resolve_job_def(embed_collection_job.name)

    def execute(self, request: dg.RunRequest, embedder: object | None = None) -> dg.ExecuteInProcessResult:
        """Run `request` in process on the instance, with its partition, run config and tags."""
        return self.job(embedder).execute_in_process(
            partition_key=request.partition_key,
            run_config=request.run_config,
            tags=request.tags,
            instance=self.instance,
            raise_on_error=False,
        )

    def close(self) -> None:
        if self._queue is not None:
            self._queue.close()


@pytest.fixture
def sensor_harness(tmp_path) -> Iterator[SensorHarness]:
    """A `SensorHarness` on a temporary ORCA_HOME and a temporary persistent (SQLite) Dagster instance."""
    with dg.instance_for_test() as instance:
        harness = SensorHarness(home=tmp_path / "orca", instance=instance)
        (harness.home / "inbox").mkdir(parents=True)
        yield harness
        harness.close()


@pytest.fixture
def later(monkeypatch):
    """Let the inbox sensor see the clock a minute ahead, so files written by the test count as settled, and
    skip its confirming wait (nothing changes the files during it unless a test says so)."""
    import time

    import sensors.inbox as inbox_module

    monkeypatch.setattr(inbox_module, "clock", lambda: time.time() + 60)
    monkeypatch.setattr(inbox_module, "pause", lambda seconds: None)


# ---- end of sensor and schedule fixtures --------------------------------------------------------


# ---- PostgreSQL fixtures (owner: production deployment) --------------------------------
# One throwaway cluster per test session (tests/postgres.py); each test gets its own database. Without
# PostgreSQL the tests that use it skip, saying why, except where CI=true or ORCA_REQUIRE_POSTGRES=1.
import itertools  # noqa: E402

_database_numbers = itertools.count(1)


@pytest.fixture(scope="session")
def postgres_server():
    """A running throwaway PostgreSQL server (tests.postgres.PostgresServer), stopped and removed at the end."""
    from tests.postgres import PostgresUnavailable, postgres_required, start_server

    try:
        server = start_server()
    except PostgresUnavailable as error:
        if postgres_required():
            pytest.fail(f"PostgreSQL is required here (CI=true or ORCA_REQUIRE_POSTGRES=1): {error}", pytrace=False)
        pytest.skip(f"PostgreSQL tests need a local PostgreSQL installation: {error}")
    yield server
    server.stop()


@pytest.fixture
def postgres_database(postgres_server) -> str:
    """The name of a fresh, empty database on the session's server."""
    return postgres_server.create_database(f"orca_test_{next(_database_numbers)}")


# ---- end of PostgreSQL fixtures -----------------------------------------------------------------


# ---- Op job fixtures (owner: orca_assets/prepare_model_job.py, orca_assets/purge_collection_job.py) --------------
@pytest.fixture
def op_job() -> Callable[..., dg.JobDefinition]:
    """Resolve `prepare_model_job` or `purge_collection_job` by name, bound to the given resources."""
    from orca_assets.prepare_model_job import prepare_model_job
    from orca_assets.purge_collection_job import purge_collection_job

    jobs = {job.name: job for job in (prepare_model_job, purge_collection_job)}

    def resolve(name: str, **resources: object) -> dg.JobDefinition:
        return dg.Definitions(jobs=[jobs[name]], resources=resources).resolve_job_def(name)

    return resolve


# ---- end of op job fixtures ---------------------------------------------------------------------


# ---- PostgreSQL with pgvector: fixtures in tests/pgvector_server.py ----------------------------------
from tests.pgvector_server import pg_schema, pgvector_server_url  # noqa: E402, F401

# ---- S3 (SeaweedFS): fixtures in tests/s3_server.py ---------------------------------------------------
from tests.s3_server import s3_bucket, s3_server, s3_store  # noqa: E402, F401
