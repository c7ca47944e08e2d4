#!/bin/sh
# Container entrypoint of every Sales Platform image (POSIX sh: the image's /bin/sh is dash).
#
#   sales-entrypoint [run] [NAMEKO-RUN-OPTIONS]
#       migrate this service's database (unless MIGRATE_ON_START=0), then become
#       `nameko run` (exec: PID 1 is nameko, so SIGTERM reaches it and it stops gracefully)
#   sales-entrypoint migrate
#       only migrate, then exit (a Kubernetes init container, a one-off job)
#
# Environment:
#   SERVICE, SERVICE_DIR  set by the image (e.g. order, services/order)
#   NAMEKO_SERVICE        module:Class to run; default $SERVICE.service:<Service>Service
#   DB_NAME               defaults to sales_$SERVICE (also each config.yaml's default)
#   DB_HOST DB_PORT DB_USER DB_PASSWORD AMQP_URI ...  see the service's config.yaml
#   MIGRATE_ON_START=0    do not migrate before starting (when an init step does it)
#   APP_DIR               where the code is (default /app)
# There is no debug backdoor: nameko's --backdoor-port is refused.
set -eu
: "${SERVICE:?SERVICE is not set}" "${SERVICE_DIR:?SERVICE_DIR is not set}"
cd "${APP_DIR:-/app}"

migrate() {
    if [ -d "$SERVICE_DIR/migrations" ]; then
        python -m shared.migrate --dbname "${DB_NAME:-sales_$SERVICE}" "$SERVICE_DIR/migrations"
    else
        echo "sales-entrypoint: $SERVICE_DIR has no migrations folder; nothing to migrate" >&2
    fi
}

service_class() {
    first=$(printf '%s' "$SERVICE" | cut -c1 | tr '[:lower:]' '[:upper:]')
    printf '%s%sService' "$first" "$(printf '%s' "$SERVICE" | cut -c2-)"
}

command=run
if [ $# -gt 0 ]; then
    case $1 in
        run | migrate) command=$1; shift ;;
        -*) ;;
        *) echo "sales-entrypoint: unknown command '$1' (use: run [nameko run options] | migrate)" >&2; exit 64 ;;
    esac
fi

for arg in "$@"; do
    case $arg in
        --backdoor*) echo "sales-entrypoint: refusing $arg: no debug backdoor in this image" >&2; exit 64 ;;
    esac
done

if [ "$command" = migrate ]; then
    [ $# -eq 0 ] || { echo "sales-entrypoint: migrate takes no arguments" >&2; exit 64; }
    migrate
    exit 0
fi

if [ "${MIGRATE_ON_START:-1}" != 0 ]; then
    migrate
fi

exec nameko run --config "$SERVICE_DIR/config.yaml" "${NAMEKO_SERVICE:-$SERVICE.service:$(service_class)}" "$@"
