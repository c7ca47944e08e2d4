"""Forward-only SQL migrations, safe with several replicas starting at once.

    python -m shared.migrate [--create] [--dbname NAME] DIR [DIR ...]

Applies the kit's own migrations (shared/migrations) and then each DIR's `NNNN_description.sql`
files in order, each file in its own transaction, under a PostgreSQL advisory lock so that two
replicas never migrate together. Applied files are recorded in `schema_migrations` with a checksum;
an applied file that has since changed is an error (migrations are forward-only: add a new file).
"""
import argparse
import hashlib
import logging
import re
import sys
from pathlib import Path

import psycopg2
from psycopg2 import sql

log = logging.getLogger("shared.migrate")

KIT_MIGRATIONS = Path(__file__).parent / "migrations"
LOCK_KEY = 0x5A1E5  # advisory lock id for migrations
FILE_RE = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")


class MigrationError(RuntimeError):
    pass


def discover(directory, namespace):
    directory = Path(directory)
    files = []
    for path in sorted(directory.glob("*.sql")):
        if not FILE_RE.match(path.name):
            raise MigrationError(f"{path}: migration files are named NNNN_description.sql")
        files.append((namespace, path))
    return files


def ensure_database(connect_kwargs, dbname):
    """Create `dbname` if it does not exist (connecting to the `postgres` database)."""
    kwargs = dict(connect_kwargs, dbname="postgres")
    conn = psycopg2.connect(**kwargs)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (dbname,))
            if cur.fetchone() is None:
                try:
                    cur.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname)))
                    log.info("created database %s", dbname)
                except psycopg2.errors.DuplicateDatabase:
                    pass
    finally:
        conn.close()


def drop_database(connect_kwargs, dbname):
    kwargs = dict(connect_kwargs, dbname="postgres")
    conn = psycopg2.connect(**kwargs)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(dbname)))
    finally:
        conn.close()


def migrate(connect_kwargs, directories):
    """Apply pending migrations; returns the names applied."""
    files = discover(KIT_MIGRATIONS, "shared")
    for directory in directories:
        files += discover(directory, Path(directory).resolve().parent.name)
    conn = psycopg2.connect(**connect_kwargs)
    applied_now = []
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("SELECT pg_advisory_lock(%s)", (LOCK_KEY,))
        try:
            conn.autocommit = False
            with conn.cursor() as cur:
                cur.execute(
                    "CREATE TABLE IF NOT EXISTS schema_migrations ("
                    " namespace text NOT NULL, name text NOT NULL, checksum text NOT NULL,"
                    " applied_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (namespace, name))"
                )
                cur.execute("SELECT namespace, name, checksum FROM schema_migrations")
                done = {(ns, name): checksum for ns, name, checksum in cur.fetchall()}
            conn.commit()
            for namespace, path in files:
                text = path.read_text()
                checksum = hashlib.sha256(text.encode()).hexdigest()
                key = (namespace, path.name)
                if key in done:
                    if done[key] != checksum:
                        raise MigrationError(
                            f"{namespace}/{path.name} changed after it was applied; add a new migration instead"
                        )
                    continue
                with conn.cursor() as cur:
                    cur.execute(text)
                    cur.execute(
                        "INSERT INTO schema_migrations (namespace, name, checksum) VALUES (%s, %s, %s)",
                        (namespace, path.name, checksum),
                    )
                conn.commit()
                applied_now.append(f"{namespace}/{path.name}")
                log.info("applied migration %s/%s", namespace, path.name)
        except BaseException:
            conn.rollback()
            raise
        finally:
            conn.autocommit = True
            with conn.cursor() as cur:
                cur.execute("SELECT pg_advisory_unlock(%s)", (LOCK_KEY,))
    finally:
        conn.close()
    return applied_now


def main(argv=None):
    from shared import db

    parser = argparse.ArgumentParser(prog="python -m shared.migrate", description=__doc__.split("\n\n")[0])
    parser.add_argument("directories", nargs="+", help="migration folders, e.g. services/customer/migrations")
    parser.add_argument("--dbname", help="database name (default: DB_NAME)")
    parser.add_argument("--create", action="store_true", help="create the database if it is missing")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    kwargs = db.connection_settings(args.dbname)
    kwargs.pop("options", None)
    if args.create:
        ensure_database(kwargs, kwargs["dbname"])
    applied = migrate(kwargs, args.directories)
    print(f"{kwargs['dbname']}: {len(applied)} migration(s) applied" + (": " + ", ".join(applied) if applied else ""))


if __name__ == "__main__":
    sys.exit(main())
