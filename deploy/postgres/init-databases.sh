#!/usr/bin/env bash
# PostgreSQL init script for docker compose: one database and one login role per process
# (DESIGN.md: each service owns its database; STYLE.md: one login role per database).
# The postgres image runs it once, when its data volume is empty
# (/docker-entrypoint-initdb.d/10-init-databases.sh, mounted by deploy/compose.yaml).
#
# For each NAME in SALES_DATABASES it creates the role sales_NAME (LOGIN, password from
# NAME_DB_PASSWORD, e.g. CUSTOMER_DB_PASSWORD) and the database sales_NAME owned by it, and
# revokes PUBLIC's right to connect: only its own role (and the superuser) can reach a database.
# The service's migrations then run as that role (the entrypoint, before the service starts).
#
# Environment: POSTGRES_USER (set by the image), <NAME>_DB_PASSWORD for every NAME,
# SALES_DATABASES (default: the six processes), DB_PREFIX (default sales_).
set -euo pipefail

names=${SALES_DATABASES:-customer order inventory billing aftersales gateway}
prefix=${DB_PREFIX:-sales_}

for name in $names; do
    variable="${name^^}_DB_PASSWORD"
    password="${!variable:-}"
    if [[ -z $password ]]; then
        echo "init-databases: $variable is not set" >&2
        exit 1
    fi
    echo "init-databases: role and database ${prefix}${name}"
    psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
        -v name="${prefix}${name}" -v password="$password" <<'SQL'
CREATE ROLE :"name" LOGIN PASSWORD :'password';
CREATE DATABASE :"name" OWNER :"name";
REVOKE ALL ON DATABASE :"name" FROM PUBLIC;
SQL
done
