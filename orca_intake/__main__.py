"""`python -m orca_intake [--host HOST] [--port PORT]`: serve the intake with uvicorn.

Host and port default to ORCA_INTAKE_HOST and ORCA_INTAKE_PORT. Without tokens (ORCA_INTAKE_TOKENS or a
JWT setting) it refuses any host but loopback and exits with status 2.
"""

from __future__ import annotations

import argparse
import sys

import uvicorn

from orca_core.settings import OrcaSettings
from orca_intake.app import create_app
from orca_intake.auth import UnsafeBind, check_bind
from orca_intake.header_deadline import header_deadline_protocol

USAGE_ERROR = 2


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m orca_intake", description="Serve Orca's REST intake.")
    parser.add_argument("--host", help="address to listen on (default: ORCA_INTAKE_HOST, 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port to listen on (default: ORCA_INTAKE_PORT, 8000)")
    parser.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"])
    args = parser.parse_args(argv)
    try:
        settings = OrcaSettings.from_env()
    except ValueError as error:
        parser.exit(USAGE_ERROR, f"orca-intake: error: {error}\n")
    host = args.host or settings.intake_host
    port = settings.intake_port if args.port is None else args.port
    try:
        check_bind(host, settings)
    except UnsafeBind as error:
        parser.exit(USAGE_ERROR, f"orca-intake: error: {error}\n")
    auth = "bearer tokens required" if settings.intake_auth_enabled else "no token needed, loopback only"
    shown = f"[{host}]" if ":" in host else host  # an IPv6 address needs brackets in a URL
    print(f"Orca intake on http://{shown}:{port} ({auth}); API docs at /docs", flush=True)
    uvicorn.run(
        create_app(settings),
        host=host,
        port=port,
        log_level=args.log_level,
        timeout_graceful_shutdown=10,
        server_header=False,
        # A slow or idle client holds one of a bounded number of slots (then 503) for a bounded time: an idle
        # connection goes after a few seconds, slow headers after ORCA_INTAKE_HEADER_TIMEOUT, and a slow body
        # after the body limit's deadline (orca_intake/limits.py).
        http=header_deadline_protocol(settings.intake_header_timeout),
        limit_concurrency=settings.intake_max_connections,
        timeout_keep_alive=5,
        # X-Forwarded-For would let a caller on this machine claim any address: believed only from the
        # proxies ORCA_INTAKE_FORWARDED_ALLOW_IPS names.
        proxy_headers=settings.intake_forwarded_allow_ips is not None,
        forwarded_allow_ips=settings.intake_forwarded_allow_ips,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
