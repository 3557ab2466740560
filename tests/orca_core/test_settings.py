"""`OrcaSettings`: every variable read once, with its default, its validation and a message naming it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from orca_core.settings import OrcaSettings, SettingsError, env_name

README = Path(__file__).resolve().parents[2] / "README.md"


def test_defaults_are_absolute_and_derived(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    settings = OrcaSettings.from_env({})
    assert settings.home == tmp_path / ".orca"
    assert settings.dagster_home == tmp_path / ".orca" / "dagster"
    assert settings.intake_db_url == f"sqlite:///{tmp_path}/.orca/intake/queue.db"
    assert settings.webserver_url == "http://127.0.0.1:3000"
    assert (settings.embedder, settings.embed_model, settings.ollama_hosts) == (
        "ollama", "nomic-embed-text", ["http://localhost:11434"]
    )
    assert not settings.intake_auth_enabled


def test_values_come_from_the_mapping_given_or_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("ORCA_HOME", str(tmp_path / "from-env"))
    assert OrcaSettings.from_env().home == tmp_path / "from-env"
    given = OrcaSettings.from_env(
        {"ORCA_HOME": str(tmp_path / "given"), "DAGSTER_HOME": str(tmp_path / "d"), "OLLAMA_HOST": "a:1, http://b:2/",
         "ORCA_EMBEDDER": " Hashing ", "ORCA_INTAKE_TOKENS": "token-one-0123456789, ,token-two-0123456789", "ORCA_WEBSERVER_PORT": "3100",
         "ORCA_INTAKE_PORT": ""}
    )
    assert given.home == tmp_path / "given" and given.dagster_home == tmp_path / "d"
    assert given.ollama_hosts == ["http://a:1", "http://b:2"] and given.embedder == "hashing"
    assert given.intake_tokens == ("token-one-0123456789", "token-two-0123456789") and given.intake_auth_enabled
    assert given.webserver_url == "http://127.0.0.1:3100" and given.intake_port == 8000  # empty means unset
    assert given.run_url("r1") == "http://127.0.0.1:3100/runs/r1" and given.run_url(None) is None


@pytest.mark.parametrize(
    ("name", "value"),
    [("ORCA_EMBEDDER", "openai"), ("ORCA_INTAKE_PORT", "http"), ("ORCA_INTAKE_MAX_DOCUMENTS", "0"),
     ("ORCA_TIMEZONE", "Mars/Olympus"), ("ORCA_INBOX_SWEEP_TICKS", "-1")],
)
def test_an_invalid_value_names_its_variable(name, value):
    with pytest.raises(SettingsError, match=re.escape(f"{name}={value!r}")):
        OrcaSettings.from_env({name: value})


def test_child_processes_get_the_same_settings(tmp_path):
    settings = OrcaSettings.from_env({"ORCA_HOME": str(tmp_path), "ORCA_INTAKE_TOKENS": "aaaaaaaaaaaaaaaa,bbbbbbbbbbbbbbbb"})
    environ = settings.child_environ()
    assert OrcaSettings.from_env(environ) == settings
    assert environ["DAGSTER_HOME"] == str(tmp_path / "dagster") and environ["ORCA_INTAKE_TOKENS"] == "aaaaaaaaaaaaaaaa,bbbbbbbbbbbbbbbb"


def test_settings_survive_pickling_into_worker_processes(tmp_path):
    import pickle

    settings = OrcaSettings.from_env({"ORCA_HOME": str(tmp_path)})
    assert pickle.loads(pickle.dumps(settings)) == settings


def test_the_readme_documents_every_variable():
    text = README.read_text(encoding="utf-8")
    missing = [env_name(field) for field in OrcaSettings.model_fields if f"`{env_name(field)}`" not in text]
    assert not missing, f"README's configuration table lacks {missing}"
