#!/bin/sh
# Writes deploy/.env (git-ignored) for docker compose with a random password for every role and
# secret that deploy/compose.yaml needs; keeps the values of an existing file, adds missing ones.
#     sh deploy/compose-env.sh && docker compose -f deploy/compose.yaml up -d --build
set -eu
cd "$(dirname "$0")"
env_file=.env

random() { head -c 48 /dev/urandom | base64 | tr -d '/+=\n' | cut -c "1-$1"; }

has() { [ -f "$env_file" ] && grep -q "^$1=" "$env_file"; }

add() {
    if ! has "$1"; then
        printf '%s=%s\n' "$1" "$2" >>"$env_file"
        echo "compose-env: $1 set in deploy/$env_file"
    fi
}

umask 077
if [ ! -f "$env_file" ]; then
    printf '# docker compose secrets for deploy/compose.yaml, written by deploy/compose-env.sh. Never commit.\n' >"$env_file"
fi
add POSTGRES_PASSWORD "$(random 32)"
for name in CUSTOMER ORDER INVENTORY BILLING AFTERSALES GATEWAY; do
    add "${name}_DB_PASSWORD" "$(random 32)"
done
add RABBITMQ_USER sales
add RABBITMQ_PASSWORD "$(random 32)"
add GATEWAY_TOKEN_SECRET "$(random 64)"
add GATEWAY_ADMIN_USERNAME admin
add GATEWAY_ADMIN_PASSWORD "$(random 24)"
add GRAFANA_ADMIN_PASSWORD "$(random 24)"
chmod 600 "$env_file"
