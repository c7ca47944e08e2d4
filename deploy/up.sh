#!/usr/bin/env bash
# Local orchestration for the Sales Platform; the Makefile calls it.
#
#   deploy/up.sh up          PostgreSQL + RabbitMQ up, migrate, .env, then all six
#                            processes under honcho in the foreground (Ctrl-C stops
#                            them); a watcher waits for /ready, loads the demo data
#                            once and prints the URLs and the admin login
#   deploy/up.sh migrate     create (if missing) and migrate the six databases
#   deploy/up.sh run NAME    migrate NAME's database and run NAME alone
#   deploy/up.sh infra       only make sure PostgreSQL and RabbitMQ are up (.ci/run)
#
# Environment (all optional): DB_HOST DB_PORT DB_USER DB_PASSWORD AMQP_URI,
# READY_TIMEOUT (seconds, default 120), GATEWAY_URL (default http://127.0.0.1:8000).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

VENV_BIN="$ROOT/.venv/bin"
ENV_FILE="$ROOT/.env"
SERVICES=(customer order inventory billing aftersales)
PROCESSES=("${SERVICES[@]}" gateway)
declare -A HTTP_PORT=(
    [gateway]=8000 [customer]=8101 [order]=8102 [inventory]=8103
    [billing]=8104 [aftersales]=8105
)

DB_HOST="${DB_HOST:-127.0.0.1}"
DB_PORT="${DB_PORT:-5432}"
AMQP_URI="${AMQP_URI:-pyamqp://guest:guest@127.0.0.1:5672/}"
READY_TIMEOUT="${READY_TIMEOUT:-120}"
GATEWAY_URL="${GATEWAY_URL:-http://127.0.0.1:8000}"

# host:port of the broker, from AMQP_URI (scheme://user:pass@host:port/vhost).
amqp_hostport="${AMQP_URI#*://}"
amqp_hostport="${amqp_hostport##*@}"
amqp_hostport="${amqp_hostport%%/*}"
AMQP_HOST="${amqp_hostport%%:*}"
AMQP_PORT=5672
[[ $amqp_hostport == *:* ]] && AMQP_PORT="${amqp_hostport##*:}"

# `shared` lives at the root; each process imports its own package.
PYTHONPATH="$ROOT"
for s in "${SERVICES[@]}"; do PYTHONPATH="$PYTHONPATH:$ROOT/services/$s"; done
PYTHONPATH="$PYTHONPATH:$ROOT/gateway"
export PYTHONPATH

log()  { printf '==> %s\n' "$*"; }
warn() { printf 'warning: %s\n' "$*" >&2; }
die()  { printf 'error: %s\n' "$*" >&2; exit 1; }

proc_dir() { if [[ $1 == gateway ]]; then echo gateway; else echo "services/$1"; fi; }

is_process() {
    local p
    for p in "${PROCESSES[@]}"; do [[ $p == "$1" ]] && return 0; done
    return 1
}

# A process can run once its package has a `service` module.
is_present() {
    local pkg
    pkg="$(proc_dir "$1")/$1"
    [[ -f $pkg/service.py || -f $pkg/service/__init__.py ]]
}

is_local() { [[ $1 == 127.0.0.1 || $1 == localhost || $1 == ::1 ]]; }

# shellcheck disable=SC2016  # $0/$1 expand in the inner bash
tcp_open() { timeout 2 bash -c 'exec 3<>"/dev/tcp/$0/$1"' "$1" "$2" 2>/dev/null; }

# wait_for SECONDS COMMAND...: true once COMMAND succeeds, false at the deadline.
wait_for() {
    local deadline=$((SECONDS + $1))
    shift
    until "$@"; do
        ((SECONDS >= deadline)) && return 1
        sleep 1
    done
}

as_root_hint() { if [[ $(id -u) -eq 0 ]]; then echo "$*"; else echo "sudo $*"; fi; }

ensure_venv() {
    [[ -x $VENV_BIN/nameko && -x $VENV_BIN/honcho ]] || die "no virtualenv: run 'make venv' first"
}

# --- PostgreSQL and RabbitMQ --------------------------------------------------

pg_ready() {
    if command -v pg_isready >/dev/null; then
        pg_isready -q -h "$DB_HOST" -p "$DB_PORT" -t 2
    else
        tcp_open "$DB_HOST" "$DB_PORT"
    fi
}

ensure_postgres() {
    pg_ready && return 0
    if ! is_local "$DB_HOST"; then
        die "PostgreSQL is not reachable at $DB_HOST:$DB_PORT (DB_HOST is remote: start it there)"
    fi
    local version cmd
    # shellcheck disable=SC2012  # version folder names are plain
    if command -v pg_ctlcluster >/dev/null && [[ -d /etc/postgresql ]] \
        && version="$(ls /etc/postgresql | sort -V | tail -n 1)" && [[ -n $version ]]; then
        cmd=(pg_ctlcluster --skip-systemctl-redirect "$version" main start)
        [[ $(id -u) -eq 0 ]] || die "PostgreSQL is stopped. Start it with:
    $(as_root_hint "${cmd[*]}")"
        log "PostgreSQL is stopped; starting it: ${cmd[*]}"
        "${cmd[@]}" || die "could not start PostgreSQL with: ${cmd[*]}"
        wait_for 60 pg_ready || die "PostgreSQL did not become ready within 60 s"
        log "PostgreSQL is up"
        return 0
    fi
    # shellcheck disable=SC2016  # printed for the user to run, unexpanded
    die "PostgreSQL is not installed. Install and start it with:
    $(as_root_hint "apt-get install -y postgresql") && $(as_root_hint 'pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start')"
}

rabbit_ready() { tcp_open "$AMQP_HOST" "$AMQP_PORT"; }

ensure_rabbitmq() {
    rabbit_ready && return 0
    if ! is_local "$AMQP_HOST"; then
        die "RabbitMQ is not reachable at $AMQP_HOST:$AMQP_PORT (AMQP_URI is remote: start it there)"
    fi
    local cmd=(rabbitmq-server -detached)
    if command -v rabbitmq-server >/dev/null; then
        [[ $(id -u) -eq 0 ]] || die "RabbitMQ is stopped. Start it with:
    $(as_root_hint "${cmd[*]}")"
        log "RabbitMQ is stopped; starting it: ${cmd[*]}"
        "${cmd[@]}" || die "could not start RabbitMQ with: ${cmd[*]}"
        # The AMQP listener opens last in the boot sequence.
        wait_for 120 rabbit_ready || die "RabbitMQ did not open $AMQP_HOST:$AMQP_PORT within 120 s"
        log "RabbitMQ is up"
        return 0
    fi
    die "RabbitMQ is not installed. Install and start it with:
    $(as_root_hint "apt-get install -y rabbitmq-server") && $(as_root_hint "${cmd[*]}")"
}

# --- databases ----------------------------------------------------------------

# migrate_one NAME [DBNAME]: create the database if missing, apply migrations.
migrate_one() {
    local name=$1 db=${2:-sales_$1} dir
    dir="$(proc_dir "$name")/migrations"
    if [[ ! -d $dir ]]; then
        warn "$name: no $dir yet, database $db not migrated"
        return 0
    fi
    log "migrating $db from $dir"
    "$VENV_BIN/python" -m shared.migrate --create --dbname "$db" "$dir"
}

# --- local secrets (.env, git-ignored) ------------------------------------------

random_token() { "$VENV_BIN/python" -c 'import secrets, sys; print(secrets.token_urlsafe(int(sys.argv[1])))' "$1"; }

has_key() { grep -Eq "^[[:space:]]*(export[[:space:]]+)?$1=" "$ENV_FILE"; }

# Generated once with random values, then kept: the gateway creates the admin
# with this password on its first start against an empty sales_gateway.
ensure_env_file() {
    if [[ ! -f $ENV_FILE ]]; then
        (umask 077 && cat >"$ENV_FILE" <<'EOF'
# Local secrets for `make up`, generated by deploy/up.sh. Git-ignored: never commit.
# Kept across runs. The admin is created with this password when sales_gateway
# is first set up; changing the password here later does not change it there.
EOF
        )
        log "generated $ENV_FILE with random secrets"
    fi
    has_key GATEWAY_TOKEN_SECRET || echo "GATEWAY_TOKEN_SECRET=$(random_token 48)" >>"$ENV_FILE"
    has_key GATEWAY_ADMIN_USERNAME || echo "GATEWAY_ADMIN_USERNAME=admin" >>"$ENV_FILE"
    has_key GATEWAY_ADMIN_PASSWORD || echo "GATEWAY_ADMIN_PASSWORD=$(random_token 18)" >>"$ENV_FILE"
    has_key DEMO_USER_PASSWORD || echo "DEMO_USER_PASSWORD=$(random_token 12)" >>"$ENV_FILE"
    chmod 600 "$ENV_FILE"
}

load_env_file() {
    [[ -f $ENV_FILE ]] || return 0
    set -a
    # shellcheck disable=SC1090
    . "$ENV_FILE"
    set +a
}

# --- readiness, demo data, summary ----------------------------------------------

http_ok() {
    "$VENV_BIN/python" -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=2)' "$1" 2>/dev/null
}

# wait_ready NAME...: poll each process's /ready until all answer 200.
wait_ready() {
    local deadline=$((SECONDS + READY_TIMEOUT)) pending=("$@") still p
    while ((${#pending[@]})); do
        still=()
        for p in "${pending[@]}"; do
            http_ok "http://127.0.0.1:${HTTP_PORT[$p]}/ready" || still+=("$p")
        done
        pending=("${still[@]+"${still[@]}"}")
        ((${#pending[@]})) || break
        if ((SECONDS >= deadline)); then
            for p in "${pending[@]}"; do
                warn "$p is not ready after ${READY_TIMEOUT} s: http://127.0.0.1:${HTTP_PORT[$p]}/ready (see its log lines above)"
            done
            return 1
        fi
        sleep 2
    done
}

print_summary() {
    local p
    cat <<EOF

================================ Sales Platform is up ================================
  API        $GATEWAY_URL/api/v1
  API docs   $GATEWAY_URL/docs
  Console    $GATEWAY_URL/console   (the sales console: sign in as rep1, manager1, ... with DEMO_USER_PASSWORD)
  OpenAPI    $GATEWAY_URL/api/v1/openapi.json
  Metrics    gateway    $GATEWAY_URL/metrics
EOF
    for p in "$@"; do
        [[ $p == gateway ]] && continue
        printf '             %-10s http://127.0.0.1:%s/metrics\n' "$p" "${HTTP_PORT[$p]}"
    done
    cat <<EOF
  Admin      username: ${GATEWAY_ADMIN_USERNAME:-admin}
             password: ${GATEWAY_ADMIN_PASSWORD:-?}   (kept in .env)
  Stop       Ctrl-C
======================================================================================

EOF
}

# Runs in the background beside honcho.
watch_and_report() {
    log "waiting up to ${READY_TIMEOUT} s for: $*"
    if ! wait_ready "$@"; then
        warn "start-up incomplete; the processes keep running (Ctrl-C to stop them)"
        return 1
    fi
    if [[ " $* " == *" gateway "* ]]; then
        "$VENV_BIN/python" deploy/demo_data.py --gateway "$GATEWAY_URL" \
            || warn "demo data not loaded (see above); the platform is running anyway"
    fi
    print_summary "$@"
}

# --- commands -------------------------------------------------------------------

cmd_infra() {
    ensure_postgres
    ensure_rabbitmq
}

cmd_migrate() {
    ensure_venv
    ensure_postgres
    local p
    for p in "${PROCESSES[@]}"; do migrate_one "$p"; done
}

cmd_run() {
    local name=${1:-}
    is_process "$name" || die "usage: deploy/up.sh run {${PROCESSES[*]}}"
    ensure_venv
    is_present "$name" || die "$name has no $(proc_dir "$name")/$name/service.py yet"
    cmd_infra
    migrate_one "$name" "${DB_NAME:-sales_$name}"
    [[ $name == gateway ]] && ensure_env_file
    load_env_file
    log "starting $name alone on http://127.0.0.1:${HTTP_PORT[$name]} (Ctrl-C to stop)"
    exec "$VENV_BIN/nameko" run --config "$(proc_dir "$name")/config.yaml" "$name.service:${name^}Service"
}

cmd_up() {
    ensure_venv
    if [[ -n ${DB_NAME:-} ]]; then
        warn "ignoring DB_NAME=$DB_NAME: each process uses its own database (config.yaml default)"
        unset DB_NAME
    fi
    cmd_infra

    local p present=()
    for p in "${PROCESSES[@]}"; do
        if is_present "$p"; then present+=("$p"); else warn "skipping $p: $(proc_dir "$p")/$p/service.py not found"; fi
    done
    ((${#present[@]})) || die "no process to start"
    for p in "${present[@]}"; do
        if tcp_open 127.0.0.1 "${HTTP_PORT[$p]}"; then
            die "port ${HTTP_PORT[$p]} ($p) is already in use: is another 'make up' running?"
        fi
    done

    for p in "${present[@]}"; do migrate_one "$p"; done
    ensure_env_file
    load_env_file

    watch_and_report "${present[@]}" &
    WATCHER_PID=$!
    trap 'kill "$WATCHER_PID" 2>/dev/null || true' EXIT

    log "starting ${present[*]} (honcho, deploy/Procfile); Ctrl-C stops them all"
    local status=0
    "$VENV_BIN/honcho" -f deploy/Procfile -d . -e .env start "${present[@]}" || status=$?
    return "$status"
}

main() {
    local sub=${1:-up}
    shift || true
    case $sub in
        up) cmd_up ;;
        migrate) cmd_migrate ;;
        run) cmd_run "$@" ;;
        infra) cmd_infra ;;
        *) die "usage: deploy/up.sh {up|migrate|run NAME|infra}" ;;
    esac
}

main "$@"
