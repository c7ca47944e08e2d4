"""Issue 11: the bench's generator loads history around the services, so the read models the
services keep with their facts are rebuilt after the load by the very statement their migration
backfills them with — never by a second way of computing the figures."""
from bench import scale


def test_issue11_the_generator_rebuilds_each_read_model_with_its_migrations_backfill():
    assert {table for models in scale.READ_MODELS.values() for table, _ in models} == {
        "order_sales_daily", "shipped_daily"}
    for service, models in scale.READ_MODELS.items():
        for table, migration in models:
            text = migration.read_text()
            statement = scale.backfill_statement(migration, table)
            assert migration.parent.name == "migrations" and migration.parent.parent.name == service
            assert statement.startswith(f"INSERT INTO {table} (") and statement in text
            # the backfill is the migration's last statement: nothing after it but its semicolon
            assert text.rstrip().endswith(statement + ";")
