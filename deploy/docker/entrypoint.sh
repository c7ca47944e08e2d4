#!/bin/sh
# Container entrypoint: migrate this service's database, then become the service
# (exec, so SIGTERM from the runtime reaches nameko and it stops gracefully).
#   SERVICE, SERVICE_DIR  set by the image
#   DB_NAME               defaults to sales_$SERVICE (also each config.yaml's default)
#   MIGRATE_ON_START=0    skip migrations (when a separate job runs them)
# Extra arguments are passed to `nameko run`.
set -eu
: "${SERVICE:?SERVICE is not set}" "${SERVICE_DIR:?SERVICE_DIR is not set}"
cd /app

if [ "${MIGRATE_ON_START:-1}" = 1 ] && [ -d "$SERVICE_DIR/migrations" ]; then
    python -m shared.migrate --dbname "${DB_NAME:-sales_$SERVICE}" "$SERVICE_DIR/migrations"
fi

exec nameko run --config "$SERVICE_DIR/config.yaml" "$SERVICE.service:${SERVICE^}Service" "$@"
