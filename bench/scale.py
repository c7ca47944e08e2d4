"""Scale: history loaded in bulk into each service's own database, then the reads an integrator or a
manager makes timed through the gateway at each size.

A size is a number of order lines. For L lines: L/10 customers spread over 20 reps (rep 0 is the
bench's own rep, so its list and overview are real), L/2 orders of two lines over the last 24
months; by age and by a fixed share, an order is confirmed (15 %), shipped (10 %), invoiced (15 %)
or paid (60 %) — each stage with its documents in the service that owns them: the delivery note and
its goods issue (inventory), the delivery lines, invoice, receipt and allocation (billing), the
order's shipped / invoiced / paid columns and timestamps (order), the customers and their owners
(customer, order and billing snapshots). Everything is INSERT … SELECT generate_series, one
statement per table, with ids derived from the row number (md5 → uuid) so every database names the
same customer, order and line the same way and a larger size extends a smaller one.

Not loaded (the reads timed here do not read them): stock movements and levels for the historical
goods issues, visits, opportunities, service requests, targets. The check of the bench's own orders
runs before this load.

The read models the services keep in the same transaction as their facts (issue 11: the order
service's order_sales_daily, inventory's shipped_daily) are rebuilt after each load by their
migration's own backfill statement (READ_MODELS), since the bulk load goes around the services.
"""
import time
from datetime import date, timedelta
from pathlib import Path

from bench import stats

ROOT = Path(__file__).resolve().parents[1]

REPS = 20
REGIONS = ("East China", "North China", "South China", "West China")

# Per order o (1-based): its customer, time, stage and quantity — the same expressions in every
# database. %(c1)s is the number of customers at the end of the stage being loaded.
BASE = """
WITH b AS (
    SELECT o, 1 + (o::bigint * 7919) %% %(c1)s AS c,
           now() - interval '1 day' * (730.0 * ((o::bigint * 7919) %% 100003) / 100003.0) AS t,
           1 + o %% 5 AS qty
    FROM generate_series(%(o0)s + 1, %(o1)s) AS o
), s AS (
    SELECT b.*, least(CASE WHEN o %% 20 < 12 THEN 3 WHEN o %% 20 < 15 THEN 2 WHEN o %% 20 < 17 THEN 1 ELSE 0 END,
                      CASE WHEN t < now() - interval '60 days' THEN 3 WHEN t < now() - interval '15 days' THEN 2
                           WHEN t < now() - interval '5 days' THEN 1 ELSE 0 END) AS stage,
           c %% %(reps)s AS r
    FROM b
), x AS (
    SELECT s.*, md5('o' || o)::uuid AS order_id, 'SO-GEN-' || o AS order_number, md5('c' || c)::uuid AS customer_id,
           'Gen Customer ' || lpad(c::text, 7, '0') AS customer_name,
           CASE WHEN r = 0 THEN %(rep)s::uuid ELSE md5('gen-rep-' || r)::uuid END AS owner_id,
           CASE WHEN r = 0 THEN 'east-1' ELSE 'gen-team-' || (r %% 4) END AS owner_team,
           CASE WHEN r = 0 THEN 'East China' ELSE (ARRAY%(regions)s)[1 + r %% 4] END AS region,
           20 * qty AS total
    FROM s
)
"""
LINES = "CROSS JOIN generate_series(1, 2) AS n"
LINE = """md5('ol' || o || '-' || n)::uuid AS line_id, (ARRAY['BENCH-A', 'BENCH-B', 'BENCH-C'])[1 + (o + n) %% 3] AS sku"""

CUSTOMER_BASE = """
WITH k AS (SELECT c, c %% %(reps)s AS r FROM generate_series(%(c0)s + 1, %(c1)s) AS c),
x AS (
    SELECT c, md5('c' || c)::uuid AS customer_id, 'Gen Customer ' || lpad(c::text, 7, '0') AS customer_name,
           'CUS-GEN-' || c AS number,
           CASE WHEN r = 0 THEN %(rep)s::uuid ELSE md5('gen-rep-' || r)::uuid END AS owner_id,
           CASE WHEN r = 0 THEN 'east-1' ELSE 'gen-team-' || (r %% 4) END AS owner_team,
           CASE WHEN r = 0 THEN 'East China' ELSE (ARRAY%(regions)s)[1 + r %% 4] END AS region,
           now() - interval '1 day' * (760.0 * ((c::bigint * 104729) %% 100003) / 100003.0) AS created
    FROM k
)
"""

LOAD = {
    "customer": [
        ("staff", """
INSERT INTO staff (id, username, display_name, role, manager_id, team, region)
SELECT md5('gen-rep-' || r)::uuid, 'gen-rep-' || r, 'Gen Rep ' || r, 'sales_rep', %(manager)s::uuid,
       'gen-team-' || (r %% 4), (ARRAY%(regions)s)[1 + r %% 4]
FROM generate_series(1, %(reps)s - 1) AS r ON CONFLICT DO NOTHING"""),
        ("customers", CUSTOMER_BASE + """
INSERT INTO customers (id, number, name, name_key, industry, size, region, source, status, owner_id, owner_team,
                       assigned_at, contacted_at, last_contact_at, created_by, created_at, updated_at)
SELECT customer_id, number, customer_name, lower(customer_name), 'machinery', 'medium', region, 'trade_fair',
       'signed', owner_id, owner_team, created, created, created, owner_id, created, created FROM x"""),
    ],
    "order": [
        ("customer_snapshots", CUSTOMER_BASE + """
INSERT INTO customer_snapshots (customer_id, owner_id, owner_team, region, as_of)
SELECT customer_id, owner_id, owner_team, region, created FROM x"""),
        ("orders", BASE + """
INSERT INTO orders (id, number, customer_id, customer_name, owner_id, owner_team, region, warehouse, status, total,
                    invoiced_amount, created_by, created_at, updated_at, confirmed_at, first_shipped_at, shipped_at,
                    invoiced_at, paid_at)
SELECT order_id, order_number, customer_id, customer_name, owner_id, owner_team, region, 'MAIN',
       (ARRAY['confirmed', 'shipped', 'invoiced', 'paid'])[1 + stage], total,
       CASE WHEN stage >= 2 THEN total ELSE 0 END, owner_id, t, t, t + interval '1 hour',
       CASE WHEN stage >= 1 THEN t + interval '5 days' END, CASE WHEN stage >= 1 THEN t + interval '5 days' END,
       CASE WHEN stage >= 2 THEN t + interval '15 days' END, CASE WHEN stage >= 3 THEN t + interval '60 days' END
FROM x"""),
        ("order_lines", BASE + f"""
INSERT INTO order_lines (id, order_id, line_no, sku, name, quantity, unit_price, vat_rate, amount, shipped_quantity,
                         invoiced_quantity, invoiced_amount)
SELECT line_id, order_id, n, sku, 'Bench ' || sku, qty, 10.00, 0.13, qty * 10,
       CASE WHEN stage >= 1 THEN qty ELSE 0 END, CASE WHEN stage >= 2 THEN qty ELSE 0 END,
       CASE WHEN stage >= 2 THEN qty * 10 ELSE 0 END
FROM (SELECT x.*, n, {LINE} FROM x {LINES}) l"""),
    ],
    "inventory": [
        ("stock_documents", BASE + """
INSERT INTO stock_documents (id, number, kind, warehouse, reason, delivery_id, order_id, posted_by, posted_at)
SELECT md5('gi' || o)::uuid, 'GI-GEN-' || o, 'goods_issue', 'MAIN', 'delivery', md5('d' || o)::uuid, order_id,
       owner_id, t + interval '5 days'
FROM x WHERE stage >= 1"""),
        ("stock_document_lines", BASE + f"""
INSERT INTO stock_document_lines (document_id, line_no, sku, quantity, delivery_line_id, order_line_id, unit_price,
                                  vat_rate)
SELECT md5('gi' || o)::uuid, n, sku, -qty, md5('dl' || o || '-' || n)::uuid, line_id, 10.00, 0.13
FROM (SELECT x.*, n, {LINE} FROM x {LINES}) l WHERE stage >= 1"""),
        ("deliveries", BASE + """
INSERT INTO deliveries (id, number, order_id, order_number, warehouse, status, customer_id, owner_id, owner_team,
                        region, goods_issue_id, goods_issue_number, created_by, created_at, issued_by, issued_at,
                        updated_at)
SELECT md5('d' || o)::uuid, 'DN-GEN-' || o, order_id, order_number, 'MAIN', 'issued', customer_id, owner_id,
       owner_team, region, md5('gi' || o)::uuid, 'GI-GEN-' || o, owner_id, t + interval '4 days', owner_id,
       t + interval '5 days', t + interval '5 days'
FROM x WHERE stage >= 1"""),
        ("delivery_lines", BASE + f"""
INSERT INTO delivery_lines (id, delivery_id, line_no, order_line_id, sku, quantity, unit_price, vat_rate)
SELECT md5('dl' || o || '-' || n)::uuid, md5('d' || o)::uuid, n, line_id, sku, qty, 10.00, 0.13
FROM (SELECT x.*, n, {LINE} FROM x {LINES}) l WHERE stage >= 1"""),
    ],
    "billing": [
        ("customers", CUSTOMER_BASE + """
INSERT INTO customers (customer_id, number, name, owner_id, owner_team, region, snapshot_at, owner_at, created_at,
                       updated_at)
SELECT customer_id, number, customer_name, owner_id, owner_team, region, created, created, created, created FROM x"""),
        ("credit_accounts", CUSTOMER_BASE + """
INSERT INTO credit_accounts (customer_id, credit_limit, grade, opened_at, updated_at)
SELECT customer_id, 1000000.00, 'B', created, created FROM x"""),
        ("delivery_lines", BASE + f"""
INSERT INTO delivery_lines (delivery_line_id, delivery_id, delivery_number, line_no, order_id, order_number,
                            order_line_id, customer_id, owner_id, owner_team, region, warehouse, sku, quantity,
                            unit_price, vat_rate, issued_at, claimed_quantity, created_at)
SELECT md5('dl' || o || '-' || n)::uuid, md5('d' || o)::uuid, 'DN-GEN-' || o, n, order_id, order_number, line_id,
       customer_id, owner_id, owner_team, region, 'MAIN', sku, qty, 10.00, 0.13, t + interval '5 days',
       CASE WHEN stage >= 2 THEN qty ELSE 0 END, t + interval '5 days'
FROM (SELECT x.*, n, {LINE} FROM x {LINES}) l WHERE stage >= 1"""),
        ("invoices", BASE + """
INSERT INTO invoices (id, number, kind, status, customer_id, owner_id, owner_team, region, buyer_name, total,
                      net_total, tax_total, allocated_amount, due_date, created_by, created_at, issued_by, issued_at,
                      settled_at, updated_at)
SELECT md5('inv' || o)::uuid, 'INV-GEN-' || o, 'ordinary', 'issued', customer_id, owner_id, owner_team, region,
       customer_name, total, 2 * round(qty * 10 / 1.13, 2), total - 2 * round(qty * 10 / 1.13, 2),
       CASE WHEN stage >= 3 THEN total ELSE 0 END, (t + interval '45 days')::date, owner_id,
       t + interval '14 days', owner_id, t + interval '15 days',
       CASE WHEN stage >= 3 THEN t + interval '60 days' END, t + interval '15 days'
FROM x WHERE stage >= 2"""),
        ("invoice_lines", BASE + f"""
INSERT INTO invoice_lines (id, invoice_id, line_no, delivery_line_id, delivery_id, delivery_number, order_id,
                           order_number, order_line_id, sku, quantity, unit_price, vat_rate, amount, net, tax)
SELECT md5('il' || o || '-' || n)::uuid, md5('inv' || o)::uuid, n, md5('dl' || o || '-' || n)::uuid,
       md5('d' || o)::uuid, 'DN-GEN-' || o, order_id, order_number, line_id, sku, qty, 10.00, 0.13, qty * 10,
       round(qty * 10 / 1.13, 2), qty * 10 - round(qty * 10 / 1.13, 2)
FROM (SELECT x.*, n, {LINE} FROM x {LINES}) l WHERE stage >= 2"""),
        ("receipts", BASE + """
INSERT INTO receipts (id, number, customer_id, owner_id, owner_team, region, amount, allocated_amount, method,
                      reference, received_at, status, registered_by, registered_at, confirmed_by, confirmed_at,
                      updated_at)
SELECT md5('rc' || o)::uuid, 'RC-GEN-' || o, customer_id, owner_id, owner_team, region, total, total,
       'bank_transfer', 'GEN-' || o, (t + interval '60 days')::date, 'confirmed', owner_id, t + interval '59 days',
       owner_id, t + interval '60 days', t + interval '60 days'
FROM x WHERE stage >= 3"""),
        ("allocations", BASE + """
INSERT INTO allocations (id, receipt_id, invoice_id, customer_id, amount, allocated_by, allocated_at)
SELECT md5('al' || o)::uuid, md5('rc' || o)::uuid, md5('inv' || o)::uuid, customer_id, total, owner_id,
       t + interval '60 days'
FROM x WHERE stage >= 3"""),
    ],
}


# Read models the services keep in the same transaction as their facts: after a bulk load (which
# goes around the services) they are rebuilt by the very backfill statement their migration ran —
# the platform's own definition of the figures, never a second way of computing them.
READ_MODELS = {
    "order": [("order_sales_daily", ROOT / "services/order/migrations/0004_order_sales_daily.sql")],
    "inventory": [("shipped_daily", ROOT / "services/inventory/migrations/0003_shipped_daily.sql")],
}


def backfill_statement(path, table):
    """The migration's `INSERT INTO <table>` backfill (its last statement)."""
    text = path.read_text()
    return text[text.index(f"INSERT INTO {table}"):].strip().rstrip(";")


def load(platform, org, lines_from, lines_to):
    """Extend the history from `lines_from` to `lines_to` order lines: seconds per table."""
    params = {"o0": lines_from // 2, "o1": lines_to // 2, "c0": lines_from // 10, "c1": max(lines_to // 10, 1),
              "reps": REPS, "rep": org.rep_user["staff_id"], "manager": org.manager_user["staff_id"],
              "regions": "[" + ", ".join(f"'{r}'" for r in REGIONS) + "]"}
    regions = params.pop("regions")
    took = {}
    for service, statements in LOAD.items():
        conn = platform.db(service)
        with conn.cursor() as cur:
            for table, statement in statements:
                started = time.perf_counter()
                cur.execute(statement.replace("ARRAY%(regions)s", "ARRAY" + regions), params)
                took[f"{service}.{table}"] = round(time.perf_counter() - started, 2)
            for table, path in READ_MODELS.get(service, ()):
                started = time.perf_counter()
                cur.execute(f"TRUNCATE {table}")
                cur.execute(backfill_statement(path, table))
                took[f"{service}.{table} (backfill)"] = round(time.perf_counter() - started, 2)
            # VACUUM as well as ANALYZE: autovacuum does so within a minute or so of a bulk insert
            # (autovacuum_vacuum_insert_threshold), and until then index-only scans still visit the
            # heap; the reads are timed in that steady state, not in the minute after the load
            for table, _ in statements + READ_MODELS.get(service, []):
                cur.execute(f"VACUUM ANALYZE {table}")
    return took


def timed(call, repeat):
    """`call` once to warm up, then `repeat` times: p50 and max in ms; a read that fails (a 504
    when a report outgrows the gateway's RPC timeout) is recorded with its error, not timed."""
    latencies = []
    for attempt in range(repeat + 1):
        started = time.perf_counter()
        try:
            call()
        except RuntimeError as exc:
            return {"calls": 0, "p50_ms": None, "max_ms": None, "error": str(exc)[:300],
                    "failed_after_ms": round((time.perf_counter() - started) * 1000, 2)}
        if attempt:
            latencies.append(time.perf_counter() - started)
    row = stats.summary(latencies, sum(latencies), 0)
    return {"calls": row["calls"], "p50_ms": row["p50_ms"], "max_ms": round(max(latencies) * 1000, 2)}


def reads(org, repeat):
    today = date.today()
    quarter = f"{today.year}-Q{(today.month - 1) // 3 + 1}"
    year = str(today.year)
    overview_customer = "c20"  # customer 20 belongs to rep 0, the bench's rep

    def uuid_of(key):
        import hashlib
        import uuid

        return str(uuid.UUID(hashlib.md5(key.encode()).hexdigest()))

    calls = {
        "customer list page (rep)": lambda: org.rep.get("customers?limit=50"),
        "customer list page (all)": lambda: org.admin.get("customers?limit=50"),
        "customer overview": lambda: org.rep.get(f"customers/{uuid_of(overview_customer)}/overview"),
        f"sales performance by rep, quarter {quarter}": lambda: org.admin.get(
            f"reports/sales-performance?period={quarter}&group_by=rep"),
        f"sales performance by rep, year {year}": lambda: org.admin.get(
            f"reports/sales-performance?period={year}&group_by=rep"),
        # as of today (the default: the Asia/Shanghai date), and as of a month ago (history: every
        # invoice issued by then is read, not only the ones open now)
        "receivables aging": lambda: org.finance.get("reports/receivables-aging"),
        "receivables aging as of 30 days ago": lambda: org.finance.get(
            f"reports/receivables-aging?as_of={(today - timedelta(days=30)).isoformat()}"),
        f"OSB cycle report, year {year}": lambda: org.admin.get(f"reports/osb-cycle?period={year}&group_by=rep"),
    }
    return {name: timed(call, repeat) for name, call in calls.items()}


def run(platform, org, sizes, repeat=5):
    """Load up to each size in turn (smallest first) and time the reads there."""
    results, loaded = {}, 0
    for size in sorted(sizes):
        started = time.perf_counter()
        try:
            took = load(platform, org, loaded, size)
        except Exception as exc:  # noqa: BLE001 — a size that does not fit (disk, time) ends the scale part
            results[str(size)] = {"order_lines": size, "error": f"{type(exc).__name__}: {exc}"}
            print(f"  scale {size:,}: load failed: {exc}", flush=True)
            break
        seconds = round(time.perf_counter() - started, 1)
        loaded = size
        print(f"  scale {size:,} order lines loaded in {seconds} s; timing the reads …", flush=True)
        results[str(size)] = {"order_lines": size, "customers": size // 10, "orders": size // 2,
                              "load_seconds": seconds, "load_tables": took,
                              "timings": reads(org, repeat if size < 1_000_000 else min(repeat, 3))}
        for name, row in results[str(size)]["timings"].items():
            print(f"    {name:<45} p50 {row['p50_ms']} ms  max {row['max_ms']} ms  {row.get('error', '')[:120]}",
                  flush=True)
    return results
