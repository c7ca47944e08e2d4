"""Listing 50 of 100,000 customers stays on indexes for every scope and filter: the plans of the
very SQL list_customers / list_pool run (CustomerRepository.list_query), on a seeded table."""
import hashlib
import uuid

import pytest

from customer.db import CustomerRepository, Visibility
from customer.domain import sees_pool
from shared.access import scope

CUSTOMERS = 100_000


def staff_id(n):
    return str(uuid.UUID(hashlib.md5(f"s{n}".encode()).hexdigest()))


@pytest.fixture
def seeded(make_database, db_connect):
    conn = db_connect(make_database("services/customer/migrations"))
    cur = conn.cursor()
    # bulk-load first, then build the indexes from their own definitions (as a restore does)
    cur.execute("SELECT indexrelid::regclass::text AS name, pg_get_indexdef(indexrelid) AS ddl FROM pg_index"
                " WHERE indrelid = 'customers'::regclass AND NOT indisunique")
    indexes = cur.fetchall()
    for index in indexes:
        cur.execute(f"DROP INDEX {index['name']}")
    cur.execute(
        "INSERT INTO staff (id, username, display_name, role, team, region)"
        " SELECT md5('s' || i)::uuid, 'rep' || i, 'Rep ' || i, 'sales_rep', 'T' || (i % 20), 'R' || (i % 7)"
        " FROM generate_series(1, 200) i")
    cur.execute(
        "INSERT INTO customers (id, number, name, name_key, tax_id, industry, size, region, source, status,"
        " owner_id, owner_team, created_at, assigned_at, contact_due_by, contacted_at, reclaimable_since)"
        " SELECT md5('c' || i)::uuid, 'CUS-2026-' || lpad(i::text, 6, '0'), 'Customer ' || i || ' Trading',"
        "  'customer' || i || 'trading', '9131' || lpad(i::text, 14, '0'),"
        "  (ARRAY['machinery', 'chemicals', 'textiles', 'food'])[1 + i % 4], 'medium', 'R' || (i % 7), 'internet',"
        "  (ARRAY['potential', 'tracking', 'progressing', 'key', 'loi_signed', 'signed'])[1 + i % 6],"
        "  CASE WHEN i % 50 = 0 THEN NULL ELSE md5('s' || (1 + i % 200))::uuid END,"
        "  CASE WHEN i % 50 = 0 THEN NULL ELSE 'T' || ((1 + i % 200) % 20) END,"
        "  now() - make_interval(mins => i), now(), now() + interval '7 days',"
        "  CASE WHEN i % 3 = 0 THEN NULL ELSE now() END, CASE WHEN i % 97 = 0 THEN now() END"
        f" FROM generate_series(1, {CUSTOMERS}) i")
    for index in indexes:
        cur.execute(index["ddl"])
    cur.execute("ANALYZE")
    return cur


def plan_nodes(plan):
    yield plan
    for child in plan.get("Plans", ()):
        yield from plan_nodes(child)


REP = {"staff_id": staff_id(5), "role": "sales_rep"}
MANAGER = {"staff_id": staff_id(5), "role": "sales_manager", "team": "T5"}
DIRECTOR = {"staff_id": str(uuid.uuid4()), "role": "sales_director"}


CASES = [
    ("rep", REP, {}),
    ("rep by region", REP, {"region": "R3"}),
    ("manager", MANAGER, {}),
    ("manager by status", MANAGER, {"status": "key"}),
    ("manager's pool", MANAGER, {"pool": "any"}),
    ("manager's reclaimable", MANAGER, {"pool": "reclaimable"}),
    ("director", DIRECTOR, {}),
    ("director by status and region", DIRECTOR, {"status": "key", "region": "R2"}),
    ("director by industry", DIRECTOR, {"industry": "food"}),
    ("director searching a name", DIRECTOR, {"q": "Customer 4242 "}),
    ("director searching a tax id", DIRECTOR, {"q": "00000004242"}),
    ("director by owner", DIRECTOR, {"owner": staff_id(9)}),
    ("director by team", DIRECTOR, {"team": "T3"}),
]


def test_listing_50_of_100000_customers_uses_an_index_for_every_scope_and_filter(seeded):
    """One seeded table, every case (seeding once keeps this test a few seconds)."""
    for label, actor, filters in CASES:
        visibility = Visibility(scope(actor), sees_pool(actor))
        sql, params = CustomerRepository(None).list_query(visibility, limit=50, **filters)
        seeded.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + sql, params)
        [explained] = seeded.fetchone()["QUERY PLAN"]
        nodes = list(plan_nodes(explained["Plan"]))
        on_customers = [n for n in nodes if n.get("Relation Name") == "customers" or
                        str(n.get("Index Name", "")).startswith("customers_")]
        assert not [n for n in on_customers if n["Node Type"] == "Seq Scan"], (label, explained)
        assert any("Index" in n["Node Type"] for n in on_customers), (label, explained)
        assert explained["Plan"]["Actual Rows"] <= 51, label
