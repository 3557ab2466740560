"""`orca up`: the embedded default deployment — webserver, daemon and REST intake on one ORCA_HOME/DAGSTER_HOME.

Production shape on one machine: `dagster-webserver` plus exactly one `dagster-daemon run`, sharing
DAGSTER_HOME, dagster.yaml and the workspace, and the REST intake (`python -m orca_intake`) writing into the
same inbox and intake queue that the daemon's sensors read. All three get the same environment
(`OrcaSettings.child_environ()`, with the embedder actually chosen at start), and the sample collection is
seeded before they start.

An intake that would refuse to start (a non-loopback ORCA_INTAKE_HOST without ORCA_INTAKE_TOKENS or a JWT
setting) is caught before anything starts: `orca up` prints why and exits 2.
"""

from __future__ import annotations

import shutil
import sys
import time
from pathlib import Path

import httpx
from rich.console import Console
from rich.table import Table

from orca.home import open_instance, prepare_home, project_file, register_collection, seed_samples
from orca.supervisor import ChildSpec, Supervisor
from orca_core.layout import SAMPLE_COLLECTION
from orca_core.settings import OrcaSettings
from orca_resources.errors import EmbedderError
from orca_resources.ollama_client import OllamaClient, OllamaConfig
from orca_resources.ollama_models import model_digest

OLLAMA_PROBE_TIMEOUT_SECONDS = 2.0
READY_TIMEOUT_SECONDS = 180.0
USAGE_ERROR = 2


def _executable(name: str) -> str:
    """A console script of this environment (next to the running Python), else from PATH."""
    beside = Path(sys.executable).parent / name
    return str(beside) if beside.exists() else (shutil.which(name) or name)


def location_args(module: str | None = None) -> list[str]:
    """How the children load the code: `module` when given (a project extending Orca's definitions), else the
    project's workspace.yaml when there is one, else Orca's module."""
    if module:
        return ["-m", module]
    workspace = project_file("workspace.yaml")
    return ["-w", str(workspace)] if workspace else ["-m", "orca.definitions"]


def local_url(host: str, port: int) -> str:
    """A URL on this machine for a server bound to `host`: a wildcard bind is reached on loopback."""
    host = host.strip().strip("[]")
    if host in ("", "0.0.0.0"):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def intake_url(settings: OrcaSettings) -> str:
    return local_url(settings.intake_host, settings.intake_port)


def child_specs(settings: OrcaSettings, *, intake: bool = True, module: str | None = None) -> list[ChildSpec]:
    """The processes `orca up` supervises, in start order (stopped in reverse: intake, daemon, webserver)."""
    location = location_args(module)
    specs = [
        ChildSpec(
            "webserver",
            [_executable("dagster-webserver"), "-h", "127.0.0.1", "-p", str(settings.webserver_port), *location],
            url=local_url("127.0.0.1", settings.webserver_port),
            ready_path="/server_info",
        ),
        ChildSpec("daemon", [_executable("dagster-daemon"), "run", *location]),
    ]
    if intake:
        specs.append(
            ChildSpec(
                "intake",
                [sys.executable, "-m", "orca_intake", "--host", settings.intake_host, "--port", str(settings.intake_port)],
                url=intake_url(settings),
                ready_path="/health/live",
            )
        )
    return specs


def intake_refusal(settings: OrcaSettings) -> str | None:
    """Why the intake would refuse to start with this environment (unsafe bind, invalid setting), else None."""
    from orca_intake.auth import check_bind  # FastAPI and friends only when `orca up` runs

    try:
        check_bind(settings.intake_host, settings)
    except ValueError as error:  # UnsafeBind
        return str(error)
    return None


def probe_ollama(settings: OrcaSettings) -> tuple[list[str], list[str]]:
    """Split OLLAMA_HOST's servers into those that answer GET /api/version and those that do not."""
    answering, silent = [], []
    for host in settings.ollama_hosts:
        try:
            response = httpx.get(f"{host}/api/version", timeout=OLLAMA_PROBE_TIMEOUT_SECONDS)
            response.raise_for_status()
            answering.append(host)
        except (httpx.HTTPError, ValueError):
            silent.append(host)
    return answering, silent


def model_is_pulled(host: str, model: str) -> bool | None:
    """Whether `host` lists `model` in /api/tags (None when it cannot tell)."""
    config = OllamaConfig(host=host, model=model).probe(OLLAMA_PROBE_TIMEOUT_SECONDS)
    try:
        with OllamaClient(config) as probe:
            return model_digest(probe, probe.http.hosts[0]) is not None
    except (EmbedderError, ValueError):  # no answer, a wrong one, or no usable host URL
        return None


def choose_embedder(settings: OrcaSettings, console: Console) -> OrcaSettings:
    """Keep Ollama when a server answers; otherwise say so plainly and fall back to the offline embedder."""
    if settings.embedder == "hashing":
        console.print("Embedder: offline hashing embedder (ORCA_EMBEDDER=hashing).")
        return settings
    answering, silent = probe_ollama(settings)
    for host in silent:
        console.print(f"No Ollama answered at {host} (GET /api/version).", markup=False)
    if not answering:
        console.print(
            "Orca runs with the offline embedder for now (ORCA_EMBEDDER=hashing): fine to try things out, "
            "but its vectors only count shared words.\n"
            f"To switch to Ollama: start it (`ollama serve`), run `ollama pull {settings.embed_model}`, "
            "then restart `orca up` (set OLLAMA_HOST if it is not on localhost:11434).",
            markup=False,
        )
        return settings.model_copy(update={"embedder": "hashing"})
    for host in answering:
        pulled = model_is_pulled(host, settings.embed_model)
        note = "" if pulled is not False else f"; model missing: run `ollama pull {settings.embed_model}`"
        console.print(f"Embedder: Ollama at {host}, model {settings.embed_model}{note}", markup=False)
    return settings


def wait_until_ready(supervisor: Supervisor, spec: ChildSpec, timeout: float = READY_TIMEOUT_SECONDS) -> bool:
    """Poll the child's ready URL; False when it died, a stop was requested, or time ran out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not supervisor.stop_requested.is_set():
        if supervisor.dead_child() is not None:
            return False
        try:
            if httpx.get(f"{spec.url}{spec.ready_path}", timeout=2.0).status_code == 200:
                return True
        except httpx.HTTPError:
            pass
        supervisor.stop_requested.wait(0.5)
    return False


def up(settings: OrcaSettings, console: Console, *, intake: bool = True, module: str | None = None) -> int:
    """Run the deployment until Ctrl-C/SIGTERM or until a child dies; the exit code.

    0: stopped on request and every child stopped cleanly (0, or ended by our SIGTERM); 1: a child died on its
    own, or did not stop cleanly; 2: the intake would refuse its settings (checked before anything starts).
    """
    if intake and (refusal := intake_refusal(settings)):
        Console(stderr=True, soft_wrap=True).print(f"orca up: error: {refusal}", markup=False, highlight=False)
        return USAGE_ERROR
    settings = choose_embedder(settings, console)
    prepare_home(settings)
    seeded = seed_samples(settings)
    # Creating the SQLite storage here, before two children race to create it, also registers the samples.
    register_collection(open_instance(settings), SAMPLE_COLLECTION)
    if seeded:
        console.print(f"Seeded the sample collection into {seeded}", markup=False)

    supervisor = Supervisor(settings.child_environ(), log=lambda line: console.print(line, markup=False))
    supervisor.install_signal_handlers()
    console.print(f"ORCA_HOME {settings.home}\nDAGSTER_HOME {settings.dagster_home}", markup=False, highlight=False)
    table = Table(title="Orca processes", title_justify="left")
    for column in ("process", "pid", "url"):
        table.add_column(column)
    for spec in child_specs(settings, intake=intake, module=module):
        child = supervisor.start(spec)
        table.add_row(spec.name, str(child.pid), spec.url or "")
        if spec.name == "intake":
            table.add_row("", "", f"{spec.url}/docs (API docs)")
    console.print(table)

    for child in supervisor.children:
        if child.spec.ready_path and wait_until_ready(supervisor, child.spec):
            console.print(f"{child.spec.name} ready at {child.spec.url}", markup=False)
    if not supervisor.stop_requested.is_set() and supervisor.dead_child() is None:
        console.print(f"Dagster webserver: {local_url('127.0.0.1', settings.webserver_port)}", markup=False)
        if intake:
            console.print(
                f"REST intake:       {intake_url(settings)}  (API docs: {intake_url(settings)}/docs)", markup=False
            )
        posted = f" or POST them to {intake_url(settings)}/v1/collections/<collection>/documents" if intake else ""
        console.print(
            f"Drop files into {inbox_url(settings)}/<collection>/{posted}: the sensors start a run within seconds. "
            "Press Ctrl-C to stop.",
            markup=False,
        )

    dead = supervisor.wait()
    if dead is not None:
        console.print(
            f"error: {dead.spec.name} (pid {dead.pid}) exited unexpectedly with code {dead.process.returncode}; "
            "stopping the others",
            markup=False,
        )
    else:
        console.print(f"Received {supervisor.stop_reason or 'stop'}: shutting down.", markup=False)
    outcomes = supervisor.stop()
    unclean = []
    for child, how in outcomes:
        if child is not dead:
            console.print(f"{child.spec.name} (pid {child.pid}) {how}", markup=False)
            if how != "stopped":
                unclean.append(child.spec.name)
    console.print("All Orca processes stopped.", markup=False)
    if unclean:
        console.print(f"error: not a clean stop: {', '.join(unclean)} (see above)", markup=False)
    return 1 if dead is not None or unclean else 0


def inbox_url(settings: OrcaSettings) -> str:
    """Where documents are dropped: the local inbox folder, or its prefix on the object store."""
    storage = settings.storage
    return f"{storage.url.rstrip('/')}/inbox" if storage.remote else str(settings.layout.inbox_root)
