#!/usr/bin/env bash
# Install or upgrade Orca as systemd services on this machine; safe to run again (docs/production.md).
#
#   sudo deploy/deploy.sh [options]
#
# Steps, each skipped when already done: a virtualenv under PREFIX; Orca installed into it from this
# checkout; workspace.yaml; ORCA_HOME with DAGSTER_HOME and the PostgreSQL dagster.yaml; the environment
# file (written once, never overwritten); the `orca` system user; `dagster instance migrate`; the unit
# files; systemctl daemon-reload, enable and (re)start.
#
# Options:
#   --prefix DIR       install under DIR: venv and workspace in DIR, and unless given otherwise config in
#                      DIR/etc, state (ORCA_HOME) in DIR/var, units in DIR/systemd. Default: /opt/orca,
#                      /etc/orca, /var/lib/orca, /etc/systemd/system
#   --config-dir DIR   where orca.env lives
#   --state-dir DIR    ORCA_HOME (inbox, warehouse, DAGSTER_HOME=DIR/dagster)
#   --unit-dir DIR     where the unit files go
#   --user NAME        the unprivileged service user (default orca)
#   --services LIST    units to enable, e.g. "codeserver webserver intake" on a webserver-only replica: exactly
#                      one machine of the instance runs the daemon (default "codeserver webserver daemon intake")
#   --python PATH      interpreter for the virtualenv, 3.11 or newer (default python3)
#   --no-systemctl     create no user, change no owner, call no systemctl (tests, image builds)
#   --no-migrate       skip `dagster instance migrate` (run it yourself before starting the services)
# Environment: DAGSTER_PG_HOST/PORT/USER/PASSWORD/DB, OLLAMA_HOST and ORCA_INTAKE_TOKENS, when set, go into
# a newly written environment file; ORCA_DEPLOY_PIP_ARGS adds pip options (e.g. --no-index --find-links DIR).
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
SOURCE="$(dirname "$SCRIPT_DIR")"
PREFIX="" CONFIG_DIR="" STATE_DIR="" UNIT_DIR=""
SERVICE_USER=orca PYTHON=python3 SYSTEMCTL=1 MIGRATE=1 SERVICES="codeserver webserver daemon intake"

die() { echo "deploy.sh: error: $*" >&2; exit 1; }
say() { echo "deploy.sh: $*"; }

while [ $# -gt 0 ]; do
    case "$1" in
        --prefix) PREFIX="$2"; shift 2 ;;
        --config-dir) CONFIG_DIR="$2"; shift 2 ;;
        --state-dir) STATE_DIR="$2"; shift 2 ;;
        --unit-dir) UNIT_DIR="$2"; shift 2 ;;
        --user) SERVICE_USER="$2"; shift 2 ;;
        --services) SERVICES="$2"; shift 2 ;;
        --python) PYTHON="$2"; shift 2 ;;
        --no-systemctl) SYSTEMCTL=0; shift ;;
        --no-migrate) MIGRATE=0; shift ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown option $1 (see --help)" ;;
    esac
done

if [ -n "$PREFIX" ]; then
    PREFIX="$(mkdir -p "$PREFIX" && cd "$PREFIX" && pwd)"
    CONFIG_DIR="${CONFIG_DIR:-$PREFIX/etc}" STATE_DIR="${STATE_DIR:-$PREFIX/var}" UNIT_DIR="${UNIT_DIR:-$PREFIX/systemd}"
else
    PREFIX=/opt/orca
    CONFIG_DIR="${CONFIG_DIR:-/etc/orca}" STATE_DIR="${STATE_DIR:-/var/lib/orca}" UNIT_DIR="${UNIT_DIR:-/etc/systemd/system}"
fi
VENV="$PREFIX/venv" ENV_FILE="$CONFIG_DIR/orca.env" DAGSTER_HOME_DIR="$STATE_DIR/dagster"
for service in $SERVICES; do
    [ -f "$SCRIPT_DIR/systemd/orca-$service.service" ] || die "unknown service '$service' (codeserver, webserver, daemon, intake)"
done

# 1. The virtualenv, and Orca in it (from a clean copy, so the checkout gets no build/ or stale files).
if [ ! -x "$VENV/bin/python" ]; then
    "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' || die "$PYTHON is older than Python 3.11"
    say "creating $VENV"
    "$PYTHON" -m venv "$VENV"
fi
stage="$(mktemp -d)"
trap 'rm -rf "$stage"' EXIT
tar -C "$SOURCE" --exclude=./.venv --exclude=./.git --exclude=./.orca --exclude=./build \
    --exclude='*.egg-info' --exclude=__pycache__ -cf - . | tar -C "$stage" -xf -
say "installing Orca from $SOURCE into $VENV"
# shellcheck disable=SC2086  # ORCA_DEPLOY_PIP_ARGS is a list of options
"$VENV/bin/python" -m pip install --disable-pip-version-check --quiet ${ORCA_DEPLOY_PIP_ARGS:-} "$stage"
install -d -m 0755 "$PREFIX"
install -m 0644 "$SOURCE/workspace.yaml" "$PREFIX/workspace.yaml"
install -m 0644 "$SCRIPT_DIR/systemd/codeserver-workspace.yaml" "$PREFIX/codeserver-workspace.yaml"

# 2. ORCA_HOME and DAGSTER_HOME with the PostgreSQL instance configuration (local edits are kept).
install -d -m 0750 "$STATE_DIR" "$STATE_DIR/inbox" "$DAGSTER_HOME_DIR"
if [ ! -f "$DAGSTER_HOME_DIR/dagster.yaml" ]; then
    install -m 0640 "$SCRIPT_DIR/dagster.postgres.yaml" "$DAGSTER_HOME_DIR/dagster.yaml"
elif ! cmp -s "$SCRIPT_DIR/dagster.postgres.yaml" "$DAGSTER_HOME_DIR/dagster.yaml"; then
    install -m 0640 "$SCRIPT_DIR/dagster.postgres.yaml" "$DAGSTER_HOME_DIR/dagster.yaml.orca-new"
    say "kept your $DAGSTER_HOME_DIR/dagster.yaml; Orca's current one is beside it as dagster.yaml.orca-new"
fi

# 3. The environment file: written once, then it is yours (passwords and tokens live here).
safe() { [[ "$1" =~ ^[A-Za-z0-9._~+/=:@%,-]*$ ]] || die "$2 may only contain letters, digits and ._~+/=:@%,-"; }
if [ ! -f "$ENV_FILE" ]; then
    pg_host="${DAGSTER_PG_HOST:-localhost}" pg_port="${DAGSTER_PG_PORT:-5432}" pg_user="${DAGSTER_PG_USER:-orca}"
    pg_password="${DAGSTER_PG_PASSWORD:-CHANGE_ME}" pg_db="${DAGSTER_PG_DB:-orca}"
    tokens="${ORCA_INTAKE_TOKENS:-$("$VENV/bin/python" -c 'import secrets; print(secrets.token_urlsafe(32))')}"
    ollama="${OLLAMA_HOST:-http://localhost:11434}" model="${ORCA_EMBED_MODEL:-nomic-embed-text}"
    for pair in pg_host:DAGSTER_PG_HOST pg_port:DAGSTER_PG_PORT pg_user:DAGSTER_PG_USER pg_password:DAGSTER_PG_PASSWORD \
                pg_db:DAGSTER_PG_DB tokens:ORCA_INTAKE_TOKENS ollama:OLLAMA_HOST model:ORCA_EMBED_MODEL; do
        name="${pair%%:*}"
        safe "${!name}" "${pair#*:}"
    done
    quoted_password="$("$VENV/bin/python" -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1], safe=""))' "$pg_password")"
    install -d -m 0755 "$CONFIG_DIR"
    ( umask 077; cat > "$ENV_FILE.tmp" <<EOF
# Orca's environment for its systemd units (written by deploy/deploy.sh, never overwritten by it).
# One KEY=value per line, no quotes: systemd reads it (EnvironmentFile=) and so does deploy.sh.
ORCA_HOME=$STATE_DIR
DAGSTER_HOME=$DAGSTER_HOME_DIR
# Dagster's storage (DAGSTER_HOME/dagster.yaml reads these) and the intake queue, on one PostgreSQL server.
DAGSTER_PG_HOST=$pg_host
DAGSTER_PG_PORT=$pg_port
DAGSTER_PG_USER=$pg_user
DAGSTER_PG_PASSWORD=$pg_password
DAGSTER_PG_DB=$pg_db
ORCA_INTAKE_DB_URL=postgresql+psycopg2://$pg_user:$quoted_password@$pg_host:$pg_port/$pg_db
OLLAMA_HOST=$ollama
ORCA_EMBED_MODEL=$model
ORCA_EMBEDDER=ollama
# The webserver stays on loopback behind your reverse proxy; the intake needs a token off loopback.
ORCA_WEBSERVER_HOST=127.0.0.1
ORCA_WEBSERVER_PORT=3000
ORCA_WEBSERVER_URL=http://127.0.0.1:3000
ORCA_INTAKE_HOST=0.0.0.0
ORCA_INTAKE_PORT=8000
ORCA_INTAKE_TOKENS=$tokens
EOF
    )
    mv "$ENV_FILE.tmp" "$ENV_FILE"
    say "wrote $ENV_FILE (review it: PostgreSQL credentials, OLLAMA_HOST, intake token)"
fi
if grep -q '^DAGSTER_PG_PASSWORD=CHANGE_ME$' "$ENV_FILE"; then
    say "set DAGSTER_PG_* in $ENV_FILE (and the password in ORCA_INTAKE_DB_URL), then run deploy.sh again"
    MIGRATE=0 STARTABLE=0
else
    STARTABLE=1
fi

# 4. The service user owns ORCA_HOME and may read the environment file.
if [ "$SYSTEMCTL" = 1 ]; then
    if ! id -u "$SERVICE_USER" >/dev/null 2>&1; then
        say "creating system user $SERVICE_USER"
        useradd --system --user-group --home-dir "$STATE_DIR" --shell /usr/sbin/nologin "$SERVICE_USER"
    fi
    chown -R "$SERVICE_USER:$SERVICE_USER" "$STATE_DIR"
    chown "root:$SERVICE_USER" "$ENV_FILE"
    chmod 0640 "$ENV_FILE"
fi

# 5. Create or upgrade Dagster's tables (a no-op when they are current).
if [ "$MIGRATE" = 1 ]; then
    say "dagster instance migrate"
    ( set -a; . "$ENV_FILE"; set +a; DAGSTER_HOME="$DAGSTER_HOME_DIR" "$VENV/bin/dagster" instance migrate ) \
        || die "dagster instance migrate failed: check DAGSTER_PG_* in $ENV_FILE and that PostgreSQL accepts them"
fi

# 6. The unit files, with this installation's paths and user.
install -d -m 0755 "$UNIT_DIR"
changed=0
for unit in "$SCRIPT_DIR"/systemd/orca-*.service; do
    target="$UNIT_DIR/$(basename "$unit")"
    sed -e "s#/opt/orca#$PREFIX#g" -e "s#/etc/orca#$CONFIG_DIR#g" -e "s#/var/lib/orca#$STATE_DIR#g" \
        -e "s#^User=orca\$#User=$SERVICE_USER#" -e "s#^Group=orca\$#Group=$SERVICE_USER#" "$unit" > "$stage/unit"
    if ! cmp -s "$stage/unit" "$target"; then
        install -m 0644 "$stage/unit" "$target"
        changed=1
        say "installed $target"
    fi
done

# 7. Enable and (re)start: a redeploy restarts the services on the new code.
if [ "$SYSTEMCTL" = 1 ]; then
    [ "$changed" = 1 ] && systemctl daemon-reload
    units=""
    for service in $SERVICES; do units="$units orca-$service.service"; done
    # shellcheck disable=SC2086
    systemctl enable $units
    if [ "$STARTABLE" = 1 ]; then
        # shellcheck disable=SC2086
        systemctl restart $units
        say "started:$units"
    fi
else
    say "--no-systemctl: units are in $UNIT_DIR; enable them with systemctl yourself"
fi
say "done"
