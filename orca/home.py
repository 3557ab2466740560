"""Orca's local state on disk: DAGSTER_HOME with Orca's dagster.yaml, the sample collection, the instance.

Every command that touches Dagster calls `prepare_home` first; the processes `orca up` starts get the
settings' `child_environ()`, so the CLI, the webserver, the daemon and their runs agree on the same paths.
"""

from __future__ import annotations

import os
import shutil
from importlib import resources
from pathlib import Path

import dagster as dg

from orca_assets.partitions import OLLAMA_POOL, collections_partitions
from orca_core.folder_lock import folder_lock
from orca_core.layout import SAMPLE_COLLECTION
from orca_core.settings import OrcaSettings

# Used only when Orca runs from an installed wheel, where the project's dagster.yaml is not on disk;
# tests/orca/test_cli.py checks that it says the same as the project's file.
FALLBACK_DAGSTER_YAML = """\
run_coordinator:
  module: dagster.core.run_coordinator
  class: QueuedRunCoordinator
  config:
    # The default 5 s between dequeues is most of the wait from an API call to a started run.
    dequeue_interval_seconds: 1
sensors:
  use_threads: true
  num_workers: 4
concurrency:
  runs:
    max_concurrent_runs: 4
    tag_concurrency_limits:
      - key: dagster/partition
        value:
          applyLimitPerUniqueValue: true
        limit: 1
  pools:
    default_limit: 2
run_monitoring:
  enabled: true
  start_timeout_seconds: 180
  cancel_timeout_seconds: 180
  max_runtime_seconds: 21600
  poll_interval_seconds: 60
  free_slots_after_run_end_seconds: 300
telemetry:
  enabled: false
"""


def project_root() -> Path | None:
    """The source checkout Orca runs from (editable install), or None for an installed wheel."""
    root = Path(__file__).resolve().parent.parent
    return root if (root / "pyproject.toml").is_file() else None


def project_file(name: str) -> Path | None:
    """A top-level file of the checkout (dagster.yaml, workspace.yaml) when there is one."""
    root = project_root()
    path = root / name if root else None
    return path if path is not None and path.is_file() else None


def ensure_dagster_home(settings: OrcaSettings) -> Path:
    """Create DAGSTER_HOME and give it Orca's dagster.yaml unless it already has one (a user's edits win)."""
    settings.dagster_home.mkdir(parents=True, exist_ok=True)
    target = settings.dagster_home / "dagster.yaml"
    if not target.exists():
        source = project_file("dagster.yaml")
        text = source.read_text(encoding="utf-8") if source else FALLBACK_DAGSTER_YAML
        tmp = target.with_name(f".dagster.yaml.{os.getpid()}.tmp")
        tmp.write_text(text, encoding="utf-8")
        # Two `orca` commands starting together must not leave a half-written file for the other.
        os.replace(tmp, target)
    return target


def prepare_home(settings: OrcaSettings) -> None:
    """Make DAGSTER_HOME (with Orca's dagster.yaml) and the inbox ready."""
    ensure_dagster_home(settings)
    settings.layout.inbox_root.mkdir(parents=True, exist_ok=True)


def open_instance(settings: OrcaSettings) -> dg.DagsterInstance:
    """The persistent instance under the settings' DAGSTER_HOME (call `prepare_home` first).

    A fresh SQLite instance creates its tables when first opened; two commands doing that at once fail with
    "table ... already exists", so openers take turns on a file lock in DAGSTER_HOME.
    """
    with folder_lock(settings.dagster_home):
        instance = dg.DagsterInstance.from_config(str(settings.dagster_home))
        create_pools(instance)
        return instance


def create_pools(instance: dg.DagsterInstance) -> None:
    """Give a fresh instance its `ollama` pool at the configured default limit before any run claims a slot.

    Dagster creates a pool lazily, at the first claim; two runs starting together on a fresh SQLite instance
    can both create it, and get a slot each whatever the limit. A pool that exists (perhaps with a limit set
    by `dagster instance concurrency set`) is left as it is.
    """
    storage = instance.event_log_storage
    if instance.global_op_concurrency_default_limit is None or OLLAMA_POOL in storage.get_concurrency_keys():
        return
    storage.initialize_concurrency_limit_to_default(OLLAMA_POOL)


def register_collection(instance: dg.DagsterInstance, collection: str) -> bool:
    """Add `collection` to the `collections` dynamic partitions; return True when it was new."""
    if instance.has_dynamic_partition(collections_partitions.name, collection):
        return False
    instance.add_dynamic_partitions(collections_partitions.name, [collection])
    return True


def seed_samples(settings: OrcaSettings) -> Path | None:
    """Copy the shipped sample documents to `inbox/samples/` unless that folder exists; return it if copied.

    Not with an object store (ORCA_STORAGE_URL): its inbox is the team's, and the local folder only a copy."""
    if settings.storage.remote:
        return None
    target = settings.layout.inbox(SAMPLE_COLLECTION)
    if target.exists():
        return None
    samples = resources.files("orca") / "samples"
    staging = settings.layout.inbox_root / f".{SAMPLE_COLLECTION}.{os.getpid()}.tmp"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    for entry in samples.iterdir():
        if entry.is_file() and not entry.name.startswith((".", "_")):
            (staging / entry.name).write_bytes(entry.read_bytes())
    # Appears complete or not at all, so an inbox sensor never picks up half of the samples.
    staging.rename(target)
    return target
