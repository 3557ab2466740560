"""Settings from a `.env` file in the working directory: read by every command, below the environment.

`.env.example` lists every setting with its default, written from the settings model, so it cannot fall behind.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from orca_core import env_example
from orca_core.settings import OrcaSettings, env_name
from tests.processes import orca_env, run_cli

READ_SETTINGS = "from orca_core.settings import OrcaSettings as S; s = S.from_env(); print(s.home, s.embed_model, s.intake_port)"


def test_dot_env_fills_what_the_environment_leaves_unset(tmp_path):
    (tmp_path / ".env").write_text(
        "# comments and blank lines are fine\n\nORCA_HOME=from-dotenv\nORCA_EMBED_MODEL=mxbai-embed-large\n"
        "ORCA_INTAKE_PORT=8123\n",
        encoding="utf-8",
    )
    env = {k: v for k, v in orca_env(tmp_path).items() if k not in ("ORCA_HOME", "DAGSTER_HOME")}
    env["ORCA_INTAKE_PORT"] = "9001"  # set in the environment too: the environment wins
    result = subprocess.run([sys.executable, "-c", READ_SETTINGS], env=env, cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [str(tmp_path / "from-dotenv"), "mxbai-embed-large", "9001"]


def test_a_given_mapping_ignores_dot_env(tmp_path, monkeypatch):
    (tmp_path / ".env").write_text("ORCA_EMBED_MODEL=from-dotenv\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    assert OrcaSettings.from_env({"ORCA_HOME": str(tmp_path)}).embed_model == "nomic-embed-text"


def test_the_cli_runs_on_dot_env_settings(tmp_path):
    work = tmp_path / "project"
    inbox = work / "state" / "inbox" / "notes"
    inbox.mkdir(parents=True)
    (inbox / "tides.md").write_text("# Tides\n\nThe moon pulls the oceans into tides.\n", encoding="utf-8")
    (work / ".env").write_text("ORCA_HOME=state\nORCA_EMBEDDER=hashing\n", encoding="utf-8")
    env = {k: v for k, v in orca_env(tmp_path).items() if k not in ("ORCA_HOME", "DAGSTER_HOME", "ORCA_EMBEDDER")}
    result = run_cli(["materialize", "notes"], env=env, cwd=work)
    assert result.returncode == 0, result.stdout + result.stderr
    assert (work / "state" / "warehouse" / "notes" / "embedding_index.parquet").is_file()
    assert (work / "state" / "dagster").is_dir() and not (tmp_path / "dagster").exists()


def test_env_example_lists_every_setting_with_its_default():
    text = (Path(__file__).parents[2] / ".env.example").read_text(encoding="utf-8")
    assert text == env_example.render(), "refresh it: python -m orca_core.env_example > .env.example"
    for name in OrcaSettings.model_fields:
        assert f"# {env_name(name)}=" in text
    assert "# ORCA_INTAKE_PORT=8000\n" in text and "# ORCA_INTAKE_TOKENS=\n" in text
