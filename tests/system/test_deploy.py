"""deploy/: the systemd units and deploy.sh, run for real against a temporary prefix (never the system).

deploy.sh runs twice in a row with `--prefix TMP --no-systemctl`: both succeed, the second changes nothing
the first wrote (environment file, token, units, dagster.yaml), and both migrate a real PostgreSQL database.
`systemd-analyze verify` then checks the units deploy.sh rendered, whose paths (venv, workspace, environment
file, ORCA_HOME) all exist; any warning it prints fails the test, since it only warns on unknown keys.

So that no package is downloaded, the test creates the prefix's virtualenv before deploy.sh runs (which
then reuses it, as on any redeploy): it sees this project's dependencies through a .pth file and holds
the console scripts pip would have installed; deploy.sh still installs Orca itself into it.
"""

from __future__ import annotations

import configparser
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from orca.code_server import code_location
from tests.postgres import postgres_required
from tests.processes import VENV_BIN

ROOT = Path(__file__).resolve().parents[2]
UNITS = ("orca-codeserver.service", "orca-webserver.service", "orca-daemon.service", "orca-intake.service")
HARDENING = {
    "NoNewPrivileges": "yes", "ProtectSystem": "strict", "ReadWritePaths": "/var/lib/orca", "ProtectHome": "yes",
    "PrivateTmp": "yes", "PrivateDevices": "yes", "RestrictSUIDSGID": "yes", "CapabilityBoundingSet": "",
}


def unit(path: Path) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None, strict=True)
    parser.optionxform = str  # systemd keys are case-sensitive
    parser.read_string(path.read_text())
    return parser


@pytest.mark.parametrize("name", UNITS)
def test_units_run_unprivileged_hardened_and_restart_on_failure(name):
    service = unit(ROOT / "deploy" / "systemd" / name)["Service"]
    assert service["User"] == "orca" and service["Group"] == "orca"
    assert service["EnvironmentFile"] == "/etc/orca/orca.env"
    assert service["Restart"] == "on-failure"
    assert service["ExecStart"].startswith("/opt/orca/venv/bin/")
    for key, value in HARDENING.items():
        assert service[key] == value, key
    assert unit(ROOT / "deploy" / "systemd" / name)["Install"]["WantedBy"] == "multi-user.target"


def test_the_daemon_unit_says_exactly_one():
    assert "EXACTLY ONE" in (ROOT / "deploy" / "systemd" / "orca-daemon.service").read_text()


def test_webserver_and_daemon_load_the_code_from_the_one_code_server():
    """Both connect to the code server unit through its workspace file, which keeps the location's name."""
    server = unit(ROOT / "deploy" / "systemd" / "orca-codeserver.service")["Service"]
    argv = server["ExecStart"].split()
    assert argv[:3] == ["/opt/orca/venv/bin/dagster", "code-server", "start"]
    assert argv[argv.index("-h") + 1] == "127.0.0.1" and argv[argv.index("-p") + 1] == "${ORCA_CODE_SERVER_PORT}"
    location = code_location(None, ROOT / "workspace.yaml")  # what `orca up` serves from the checkout
    assert argv[argv.index("-p") + 2:] == [*location.args, "--location-name", location.name]
    assert "orca.code_server ${ORCA_CODE_SERVER_PORT}" in server["ExecStartPost"]
    for name in ("orca-codeserver.service", "orca-webserver.service", "orca-daemon.service"):
        # The same default port everywhere; the environment file, read after, may set another.
        assert "ORCA_CODE_SERVER_PORT=4266" in unit(ROOT / "deploy" / "systemd" / name)["Service"]["Environment"].split()

    (entry,) = yaml.safe_load((ROOT / "deploy" / "systemd" / "codeserver-workspace.yaml").read_text())["load_from"]
    assert entry == {"grpc_server": {"host": "127.0.0.1", "port": {"env": "ORCA_CODE_SERVER_PORT"},
                                     "location_name": location.name}}
    for name in ("orca-webserver.service", "orca-daemon.service"):
        parsed = unit(ROOT / "deploy" / "systemd" / name)
        assert parsed["Service"]["ExecStart"].endswith("-w /opt/orca/codeserver-workspace.yaml"), name
        assert parsed["Unit"]["Requires"] == "orca-codeserver.service"
        assert "orca-codeserver.service" in parsed["Unit"]["After"].split()


def prefix_venv(prefix: Path) -> None:
    """A virtualenv where deploy.sh will find it, seeing this project's dependencies (no download)."""
    base = getattr(sys, "_base_executable", sys.executable)
    subprocess.run([base, "-m", "venv", "--without-pip", str(prefix / "venv")], check=True, timeout=120)
    site = next((prefix / "venv" / "lib").glob("python3*/site-packages"))
    project_site = next((VENV_BIN.parent / "lib").glob("python3*/site-packages"))
    (site / "orca-test-deps.pth").write_text(f"{project_site}\n")
    for script in ("dagster", "dagster-webserver", "dagster-daemon"):
        (prefix / "venv" / "bin" / script).symlink_to(VENV_BIN / script)


def snapshot(prefix: Path) -> dict[str, str]:
    files = [prefix / "etc" / "orca.env", prefix / "var" / "dagster" / "dagster.yaml", prefix / "workspace.yaml",
             prefix / "codeserver-workspace.yaml"]
    files += [prefix / "systemd" / name for name in UNITS]
    return {str(path.relative_to(prefix)): path.read_text() for path in files}


@pytest.mark.postgres
def test_deploy_twice_into_a_prefix_then_systemd_accepts_the_units(tmp_path, postgres_server, postgres_database):
    prefix = tmp_path / "orca"
    prefix_venv(prefix)
    env = {key: value for key, value in os.environ.items() if not key.startswith(("ORCA_", "DAGSTER_", "OLLAMA_"))}
    env.update(postgres_server.dagster_env(postgres_database))
    env["ORCA_DEPLOY_PIP_ARGS"] = "--no-index --no-deps --no-build-isolation"
    command = ["bash", str(ROOT / "deploy" / "deploy.sh"), "--prefix", str(prefix), "--no-systemctl"]

    first = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "wrote" in first.stdout and "dagster instance migrate" in first.stdout
    written = snapshot(prefix)
    second = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert second.returncode == 0, second.stdout + second.stderr
    assert snapshot(prefix) == written, "the second deploy changed what the first wrote"
    assert "wrote" not in second.stdout and "installed" not in second.stdout

    environment = dict(
        line.split("=", 1) for line in written["etc/orca.env"].splitlines() if line and not line.startswith("#")
    )
    assert environment["DAGSTER_HOME"] == str(prefix / "var" / "dagster")
    assert environment["DAGSTER_PG_PORT"] == str(postgres_server.port)
    assert environment["ORCA_INTAKE_DB_URL"].startswith(f"postgresql+psycopg2://{postgres_server.user}:")
    assert len(environment["ORCA_INTAKE_TOKENS"]) >= 32
    assert (prefix / "etc" / "orca.env").stat().st_mode & 0o077 == 0, "the environment file holds secrets"
    tables = {row[0] for row in postgres_server.query(postgres_database, "SELECT tablename FROM pg_tables")}
    assert {"runs", "event_logs", "job_ticks"} <= tables
    # Orca itself was installed into the prefix's venv, not borrowed from the checkout.
    located = subprocess.run(
        [str(prefix / "venv" / "bin" / "python"), "-c", "import orca_intake; print(orca_intake.__file__)"],
        capture_output=True, text=True, timeout=60, cwd=tmp_path,
    )
    assert located.stdout.startswith(str(prefix / "venv")), located.stdout + located.stderr

    for name in UNITS:
        text = written[f"systemd/{name}"]
        assert "/opt/orca" not in text and "/etc/orca/" not in text and "/var/lib/orca" not in text
        assert f"EnvironmentFile={prefix}/etc/orca.env" in text
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        if postgres_required():
            pytest.fail("systemd-analyze is required here (.ci/run installs systemd)")
        pytest.skip("systemd-analyze is not installed (no systemd here); the units were rendered but not verified")
    verify = subprocess.run(
        [analyze, "verify", "--man=no", *(str(prefix / "systemd" / name) for name in UNITS)],
        capture_output=True, text=True, timeout=120,
    )
    assert verify.returncode == 0 and not (verify.stdout + verify.stderr).strip(), verify.stdout + verify.stderr
