"""A throwaway PostgreSQL server for the tests, started from the installed binaries.

`initdb` and `postgres` refuse to run as root, and CI runs as root: then the cluster belongs to the
`postgres` system user (Debian's package creates it) and every server command runs through
`runuser -u postgres --`. The cluster lives in its own temporary folder (outside pytest's root-only
tmp tree, which that user could not enter), listens on a free loopback port and a private socket folder,
and requires a password over TCP, as a production server would.

Where PostgreSQL is not installed, the tests that need it are skipped with the reason, except when
`CI=true` or `ORCA_REQUIRE_POSTGRES=1`: there a missing server is a failure, never a silent skip.
"""

from __future__ import annotations

import glob
import os
import pwd
import secrets
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from tests.processes import free_port

SERVER_USER = "postgres"  # the system account that owns the cluster when the tests run as root
ROLE = "orca"
INSTALL_HINT = "install PostgreSQL (Debian/Ubuntu: apt-get install postgresql) to run them"


class PostgresUnavailable(Exception):
    """PostgreSQL cannot be started here; the message says why and what to install."""


def postgres_required() -> bool:
    """True where a missing PostgreSQL must fail the tests (CI) instead of skipping them."""
    return os.environ.get("CI", "").lower() == "true" or os.environ.get("ORCA_REQUIRE_POSTGRES") == "1"


def find_bindir() -> Path:
    """The folder holding initdb and pg_ctl: PATH first, then Debian's /usr/lib/postgresql/<version>/bin."""
    on_path = shutil.which("initdb")
    if on_path and shutil.which("pg_ctl"):
        return Path(on_path).resolve().parent
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]))
    if versions:
        return Path(versions[-1]).parent
    raise PostgresUnavailable(f"PostgreSQL's initdb was not found on PATH or under /usr/lib/postgresql; {INSTALL_HINT}")


@dataclass
class PostgresServer:
    """A running cluster: connect as `user`/`password` to 127.0.0.1:`port`."""

    root: Path
    bindir: Path
    port: int
    as_user: list[str]
    user: str = ROLE
    password: str = field(default_factory=lambda: secrets.token_hex(12))
    host: str = "127.0.0.1"

    @property
    def data(self) -> Path:
        return self.root / "data"

    def _run(self, *argv: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [*self.as_user, *argv], capture_output=True, text=True, timeout=timeout, cwd=self.root
        )
        if result.returncode != 0:
            log = self.root / "server.log"
            tail = log.read_text(errors="replace")[-3000:] if log.exists() else ""
            raise PostgresUnavailable(f"{' '.join(argv)} failed ({result.returncode}): {result.stderr}{result.stdout}\n{tail}")
        return result

    def start(self) -> PostgresServer:
        """initdb, then pg_ctl start; waits until the server accepts connections."""
        pwfile = self.root / "pwfile"
        pwfile.write_text(self.password + "\n")
        self._chown(pwfile)
        self._run(
            str(self.bindir / "initdb"), "-D", str(self.data), "-U", self.user, f"--pwfile={pwfile}",
            "--auth-host=scram-sha-256", "--auth-local=peer", "-E", "UTF8", "--no-sync",
        )
        pwfile.unlink()
        # fsync off: a test cluster needs no durability, and it makes DDL-heavy migrations much faster.
        options = (
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
        )
        self._run(
            str(self.bindir / "pg_ctl"), "-D", str(self.data), "-l", str(self.root / "server.log"),
            "-o", options, "-w", "-t", "60", "start",
        )
        return self

    def stop(self) -> None:
        """Stop the server (fast: disconnect clients) and remove its folder."""
        if (self.data / "postmaster.pid").exists():
            subprocess.run(
                [*self.as_user, str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop"],
                capture_output=True, timeout=60, cwd=self.root,
            )
        shutil.rmtree(self.root, ignore_errors=True)

    def _chown(self, path: Path) -> None:
        if self.as_user:
            entry = pwd.getpwnam(SERVER_USER)
            os.chown(path, entry.pw_uid, entry.pw_gid)

    def url(self, database: str, driver: str = "postgresql+psycopg2") -> str:
        """A SQLAlchemy URL for `database` (the intake queue's ORCA_INTAKE_DB_URL)."""
        return f"{driver}://{self.user}:{self.password}@{self.host}:{self.port}/{database}"

    def connect(self, database: str = "postgres"):
        """A psycopg2 connection (autocommit) to `database`."""
        import psycopg2

        conn = psycopg2.connect(
            host=self.host, port=self.port, user=self.user, password=self.password, dbname=database
        )
        conn.autocommit = True
        return conn

    def create_database(self, name: str) -> str:
        """Create an empty database and return its name."""
        conn = self.connect()
        try:
            with conn.cursor() as cursor:
                cursor.execute(f'CREATE DATABASE "{name}"')
        finally:
            conn.close()
        return name

    def query(self, database: str, sql: str, params: tuple = ()) -> list[tuple]:
        """Rows of one SELECT, run in `database`."""
        conn = self.connect(database)
        try:
            with conn.cursor() as cursor:
                cursor.execute(sql, params)
                return cursor.fetchall()
        finally:
            conn.close()

    def dagster_env(self, database: str) -> dict[str, str]:
        """The variables deploy/dagster.postgres.yaml reads, pointing at `database` on this server."""
        return {
            "DAGSTER_PG_HOST": self.host,
            "DAGSTER_PG_PORT": str(self.port),
            "DAGSTER_PG_USER": self.user,
            "DAGSTER_PG_PASSWORD": self.password,
            "DAGSTER_PG_DB": database,
        }


def start_server() -> PostgresServer:
    """Start a throwaway cluster, or raise PostgresUnavailable saying what is missing."""
    bindir = find_bindir()
    as_user: list[str] = []
    if os.geteuid() == 0:
        try:
            pwd.getpwnam(SERVER_USER)
        except KeyError:
            raise PostgresUnavailable(
                f"running as root and there is no '{SERVER_USER}' user to own the cluster; {INSTALL_HINT}"
            ) from None
        runuser = shutil.which("runuser")
        if runuser is None:
            raise PostgresUnavailable("running as root without `runuser` to start PostgreSQL as its own user")
        as_user = [runuser, "-u", SERVER_USER, "--"]
    root = Path(tempfile.mkdtemp(prefix="orca-pg-"))
    server = PostgresServer(root=root, bindir=bindir, port=free_port(), as_user=as_user)
    server._chown(root)
    try:
        return server.start()
    except BaseException:
        server.stop()
        raise
