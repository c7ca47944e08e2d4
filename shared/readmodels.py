"""Daily read models (issue 11): figures per day × owner × team × region × customer, kept by
commutative upserts in the same transaction as the facts they sum (order_sales_daily in the order
service, shipped_daily in inventory). Each service owns its table; this is the SQL they share."""

KEYS = ("day", "owner_id", "owner_team", "region", "customer_id")


def upsert(table, columns):
    """`INSERT INTO table (keys…, columns…) {select} ON CONFLICT (keys) DO UPDATE` adding each
    column to what is there; `.format(select=…)` gives it its rows (a SELECT or VALUES)."""
    return (f"INSERT INTO {table} ({', '.join(KEYS + tuple(columns))}) {{select}}"
            " ON CONFLICT (day, customer_id, owner_id, owner_team, region) DO UPDATE SET"
            + ",".join(f" {c} = {table}.{c} + EXCLUDED.{c}" for c in columns))


def move_customer(uow, table, columns, customer_id, owner=None, region=None):
    """The customer's documents moved to a new owner (`owner` = (owner_id, owner_team)) and/or
    region: its rows follow, merged with any it already has there."""
    rows = uow.all(f"DELETE FROM {table} WHERE customer_id = %s RETURNING *", (customer_id,))
    merged = {}
    for row in rows:
        owner_id, owner_team = owner if owner is not None else (row["owner_id"], row["owner_team"])
        key = (row["day"], owner_id, owner_team, region if region is not None else row["region"])
        figures = merged.setdefault(key, dict.fromkeys(columns, 0))
        for column in columns:
            figures[column] += row[column]
    values = "VALUES (" + ", ".join(["%s"] * (len(KEYS) + len(columns))) + ")"
    for (day, owner_id, owner_team, region_), figures in merged.items():
        uow.execute(upsert(table, columns).format(select=values),
                    (day, owner_id, owner_team, region_, customer_id, *(figures[c] for c in columns)))
