"""The commands run beside `orca up` use its embedder, read from its record (`$ORCA_HOME/up.json`).

`orca up` falls back to the offline embedder when no Ollama answers and writes that choice in its record; while
the process that wrote the record lives, `orca status` reports that embedder and `orca materialize` runs with it
(one rule, orca/up_record.py's `embedder_of`). A record whose process is gone is ignored. Real processes, no
Ollama: nothing listens at OLLAMA_HOST.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pyarrow.parquet as pq
import pytest

from orca.up_record import embedder_of, following_up, read_record, record_path, write_record
from orca_core.settings import OrcaSettings
from orca_resources.hashing_embedder import MODEL_NAME as HASHING_MODEL
from tests.orca.test_cli import COLLECTION, DOCUMENTS, write_documents
from tests.processes import orca_env, run_cli


def _gone_pid() -> int:
    """The pid of a process that has ended (and been reaped)."""
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def _settings(home, **env: str) -> OrcaSettings:
    return OrcaSettings.from_env({"ORCA_HOME": str(home), **env})


def test_the_running_up_s_embedder_is_the_one_in_use(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    write_record(_settings(home, ORCA_EMBEDDER="hashing"), code_port=4266)  # as `orca up` after its fallback
    assert read_record(_settings(home))["pid"] == os.getpid()
    for environ in ({}, {"ORCA_EMBEDDER": "ollama"}):  # the record wins, in status as in materialize
        settings = _settings(home, **environ)
        assert embedder_of(read_record(settings), settings) == "hashing"
        assert following_up(settings).embedder == "hashing" and settings.embedder == "ollama"


def test_a_record_left_by_a_killed_up_is_ignored(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    record_path(_settings(home)).write_text(json.dumps({"pid": _gone_pid(), "embedder": "hashing",
                                                        "code_server_port": 4266}))  # fmt: skip
    settings = _settings(home)
    assert read_record(settings) is None and following_up(settings).embedder == "ollama"


@pytest.mark.timeout(300)
def test_materialize_runs_with_the_fallback_of_the_running_up(tmp_path):
    """No Ollama and ORCA_EMBEDDER unset, as when `orca up` fell back: materialize must not ask Ollama."""
    write_documents(tmp_path)
    env = orca_env(tmp_path)
    del env["ORCA_EMBEDDER"]  # Ollama is the default, and nothing answers at OLLAMA_HOST
    # This test's process stands for the running `orca up`: the record lives as long as its pid does.
    record_path(_settings(tmp_path)).write_text(json.dumps({"pid": os.getpid(), "embedder": "hashing",
                                                            "code_server_port": 4266}))  # fmt: skip

    result = run_cli(["materialize", COLLECTION], env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "embedding with hashing, the embedder of the `orca up` running on" in result.stderr, result.stderr
    index = pq.read_table(tmp_path / "warehouse" / COLLECTION / "embedding_index.parquet")
    assert set(index["doc_id"].to_pylist()) == set(DOCUMENTS)
    assert set(index["model"].to_pylist()) == {HASHING_MODEL}
