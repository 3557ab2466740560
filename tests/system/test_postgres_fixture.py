"""When PostgreSQL is missing, its tests skip with the reason on a user's machine and fail in CI.

Checked on the fixture's own decisions (tests/postgres.py and the `postgres_server` fixture), with the
binaries hidden, so it runs the same with or without PostgreSQL installed.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests import postgres

ROOT = Path(__file__).resolve().parents[2]
MISSING_PG_TEST = """
def test_needs_postgres(postgres_server):
    pass
"""


@pytest.mark.parametrize(
    ("env", "required"),
    [({}, False), ({"CI": "true"}, True), ({"ORCA_REQUIRE_POSTGRES": "1"}, True), ({"CI": "false"}, False)],
)
def test_postgres_is_required_in_ci_only(monkeypatch, env, required):
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.delenv("ORCA_REQUIRE_POSTGRES", raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert postgres.postgres_required() is required


def test_missing_binaries_say_what_to_install(monkeypatch):
    monkeypatch.setattr(postgres.shutil, "which", lambda name: None)
    monkeypatch.setattr(postgres.glob, "glob", lambda pattern: [])
    with pytest.raises(postgres.PostgresUnavailable, match="apt-get install postgresql"):
        postgres.find_bindir()


@pytest.mark.parametrize(("required", "outcome"), [(False, "1 skipped"), (True, "1 error")])
def test_a_missing_server_skips_or_fails(tmp_path, required, outcome):
    (tmp_path / "conftest.py").write_text(
        f"import sys\nsys.path.insert(0, {str(ROOT)!r})\n"
        "import tests.postgres as pg\n"
        "def _missing():\n"
        "    raise pg.PostgresUnavailable('initdb was not found; install PostgreSQL')\n"
        "pg.start_server = _missing\n"
        "from tests.conftest import postgres_server  # noqa: F401\n"
    )
    (tmp_path / "test_needs_postgres.py").write_text(MISSING_PG_TEST)
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "ORCA_REQUIRE_POSTGRES")}
    if required:
        env["ORCA_REQUIRE_POSTGRES"] = "1"
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-rs", "-p", "no:cacheprovider", str(tmp_path)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=180,
    )
    assert outcome in result.stdout, result.stdout + result.stderr
    expected = "need a local PostgreSQL installation" if not required else "PostgreSQL is required here"
    assert expected in result.stdout
