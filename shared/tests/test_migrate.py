"""The migration runner: forward-only, recorded, safe when replicas start together."""
import uuid

import eventlet
import pytest

from shared import migrate
from shared.testing.plugin import pg_settings


@pytest.fixture
def fresh_db():
    settings = {k: v for k, v in pg_settings().items() if v is not None}
    name = f"test_migrate_{uuid.uuid4().hex[:10]}"
    migrate.ensure_database(settings, name)
    yield dict(settings, dbname=name)
    migrate.drop_database(settings, name)


def write(folder, name, text):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(text)


def test_applies_once_in_order_and_records_each_file(tmp_path, fresh_db):
    folder = tmp_path / "svc" / "migrations"
    write(folder, "0001_things.sql", "CREATE TABLE things (id int PRIMARY KEY);")
    write(folder, "0002_more.sql", "ALTER TABLE things ADD COLUMN name text;")
    first = migrate.migrate(fresh_db, [folder])
    assert first[-2:] == ["svc/0001_things.sql", "svc/0002_more.sql"]
    assert "shared/0001_kit.sql" in first
    assert migrate.migrate(fresh_db, [folder]) == []


def test_an_applied_file_that_changed_is_refused(tmp_path, fresh_db):
    folder = tmp_path / "svc" / "migrations"
    write(folder, "0001_things.sql", "CREATE TABLE things (id int PRIMARY KEY);")
    migrate.migrate(fresh_db, [folder])
    write(folder, "0001_things.sql", "CREATE TABLE things (id bigint PRIMARY KEY);")
    with pytest.raises(migrate.MigrationError, match="changed after it was applied"):
        migrate.migrate(fresh_db, [folder])


def test_a_failing_file_rolls_back_and_stops(tmp_path, fresh_db):
    folder = tmp_path / "svc" / "migrations"
    write(folder, "0001_ok.sql", "CREATE TABLE ok (id int);")
    write(folder, "0002_bad.sql", "CREATE TABLE half (id int); SELECT no_such_column FROM ok;")
    with pytest.raises(Exception):
        migrate.migrate(fresh_db, [folder])
    write(folder, "0002_bad.sql", "CREATE TABLE half (id int);")  # fixed before it was ever applied
    assert migrate.migrate(fresh_db, [folder]) == ["svc/0002_bad.sql"]


def test_badly_named_files_are_refused(tmp_path, fresh_db):
    folder = tmp_path / "svc" / "migrations"
    write(folder, "add_things.sql", "SELECT 1;")
    with pytest.raises(migrate.MigrationError, match="NNNN_description"):
        migrate.migrate(fresh_db, [folder])


def test_replicas_migrating_at_once_apply_each_file_once(tmp_path, fresh_db):
    folder = tmp_path / "svc" / "migrations"
    write(folder, "0001_things.sql", "CREATE TABLE things (id int PRIMARY KEY);")
    pool = eventlet.GreenPool()
    results = list(pool.imap(lambda _: migrate.migrate(fresh_db, [folder]), range(4)))
    applied = [name for result in results for name in result]
    assert applied.count("svc/0001_things.sql") == 1
