"""SQL of the inventory service (no nameko here).

Every stock change goes through `Stock.apply`: one guarded UPDATE (the new levels must stay valid,
checked by the database while it holds the row) and one ledger row, in the caller's transaction.
Nothing is read, changed in Python and written back.
"""
from zoneinfo import ZoneInfo

import psycopg2
import psycopg2.extras

from inventory import domain
from shared import readmodels

PRODUCT_COLUMNS = """sku, name, unit, list_price, floor_price, vat_rate, warranty_months, low_stock_threshold,
    active, created_by, created_at, updated_at, version"""


def _keyset(where, params, columns, after, descending=False, types=None):
    """Rows after the cursor's values (keyset pagination)."""
    if after is not None:
        types = types or ["text"] * len(columns)
        holders = ", ".join(f"%s::{t}" for t in types)
        where.append(f"({', '.join(columns)}) {'<' if descending else '>'} ({holders})")
        params += list(after)


def _where(where):
    return (" WHERE " + " AND ".join(where)) if where else ""


class Catalog:
    def __init__(self, uow):
        self.uow = uow

    def add(self, product, actor_id):
        """Insert; None when the SKU is taken."""
        try:
            with self.uow.savepoint("product_insert"):
                row = self.uow.one(
                    "INSERT INTO products (sku, name, unit, list_price, floor_price, vat_rate, warranty_months,"
                    " low_stock_threshold, active, created_by)"
                    " VALUES (%(sku)s, %(name)s, %(unit)s, %(list_price)s, %(floor_price)s, %(vat_rate)s,"
                    " %(warranty_months)s, %(low_stock_threshold)s, %(active)s, %(created_by)s)"
                    f" RETURNING {PRODUCT_COLUMNS}",
                    dict(product, created_by=actor_id),
                )
        except psycopg2.errors.UniqueViolation:
            return None
        self.record_price(row, actor_id)
        return row

    def get(self, sku, lock=False):
        return self.uow.one(f"SELECT {PRODUCT_COLUMNS} FROM products WHERE sku = %s"
                            + (" FOR UPDATE" if lock else ""), (sku,))

    def many(self, skus):
        rows = self.uow.all(f"SELECT {PRODUCT_COLUMNS} FROM products WHERE sku = ANY(%s)", (list(skus),))
        return {row["sku"]: row for row in rows}

    def update(self, sku, product):
        return self.uow.one(
            "UPDATE products SET name = %(name)s, unit = %(unit)s, list_price = %(list_price)s,"
            " floor_price = %(floor_price)s, vat_rate = %(vat_rate)s, warranty_months = %(warranty_months)s,"
            " low_stock_threshold = %(low_stock_threshold)s, active = %(active)s, updated_at = now(),"
            f" version = version + 1 WHERE sku = %(sku)s RETURNING {PRODUCT_COLUMNS}",
            dict(product, sku=sku),
        )

    def record_price(self, product, actor_id):
        self.uow.execute(
            "INSERT INTO price_history (sku, list_price, floor_price, vat_rate, changed_by)"
            " VALUES (%s, %s, %s, %s, %s)",
            (product["sku"], product["list_price"], product["floor_price"], product["vat_rate"], actor_id),
        )

    def price_history(self, sku):
        return self.uow.all(
            "SELECT list_price, floor_price, vat_rate, changed_by, changed_at FROM price_history"
            " WHERE sku = %s ORDER BY id", (sku,))

    def list(self, *, active=None, q=None, after=None, limit=50):
        where, params = [], []
        if active is not None:
            where.append("active = %s")
            params.append(active)
        if q:
            like = "%" + q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            where.append("(sku ILIKE %s OR name ILIKE %s)")
            params += [like, like]
        _keyset(where, params, ["sku"], after)
        return self.uow.all(f"SELECT {PRODUCT_COLUMNS} FROM products{_where(where)} ORDER BY sku LIMIT %s",
                            params + [limit + 1])


class Warehouses:
    def __init__(self, uow):
        self.uow = uow

    def add(self, warehouse, actor_id):
        try:
            with self.uow.savepoint("warehouse_insert"):
                if warehouse["is_default"]:
                    self.uow.execute("UPDATE warehouses SET is_default = false WHERE is_default")
                return self.uow.one(
                    "INSERT INTO warehouses (code, name, address, is_default, created_by)"
                    " VALUES (%(code)s, %(name)s, %(address)s, %(is_default)s, %(created_by)s) RETURNING *",
                    dict(warehouse, created_by=actor_id))
        except psycopg2.errors.UniqueViolation:
            return None

    def get(self, code):
        return self.uow.one("SELECT * FROM warehouses WHERE code = %s", (code,))

    def default(self):
        return self.uow.one("SELECT * FROM warehouses WHERE is_default")

    def list(self, *, after=None, limit=50):
        where, params = [], []
        _keyset(where, params, ["code"], after)
        return self.uow.all(f"SELECT * FROM warehouses{_where(where)} ORDER BY code LIMIT %s", params + [limit + 1])


class Stock:
    def __init__(self, uow):
        self.uow = uow

    def apply(self, *, sku, warehouse, kind, quantity, document_kind, document_id, document_number=None,
              reason=None, actor_id=None):
        """Move `quantity` of `kind` with one guarded UPDATE and write its ledger row. Returns the
        new levels (with `available_before` and the SKU's `threshold`), or None when the move would
        leave a level invalid (not enough available, on loan or reserved): nothing is changed then."""
        d_hand, d_reserved, d_loan = domain.deltas(kind, quantity)
        self.uow.execute("INSERT INTO stock_levels (sku, warehouse) VALUES (%s, %s) ON CONFLICT DO NOTHING",
                         (sku, warehouse))
        row = self.uow.one(
            "UPDATE stock_levels s SET on_hand = on_hand + %(h)s, reserved = reserved + %(r)s,"
            " on_loan = on_loan + %(l)s, updated_at = now(), version = version + 1"
            " WHERE sku = %(sku)s AND warehouse = %(wh)s"
            " AND on_hand + %(h)s >= reserved + %(r)s AND reserved + %(r)s >= 0 AND on_loan + %(l)s >= 0"
            " RETURNING sku, warehouse, on_hand, reserved, on_loan, available,"
            " (SELECT low_stock_threshold FROM products p WHERE p.sku = s.sku) AS threshold",
            {"h": d_hand, "r": d_reserved, "l": d_loan, "sku": sku, "wh": warehouse},
        )
        if row is None:
            return None
        self.uow.execute(
            "INSERT INTO stock_movements (sku, warehouse, kind, quantity, on_hand_delta, reserved_delta,"
            " on_loan_delta, document_kind, document_id, document_number, reason, actor_id)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            (sku, warehouse, kind, quantity, d_hand, d_reserved, d_loan, document_kind, document_id,
             document_number, reason, actor_id),
        )
        return dict(row, available_before=row["available"] - (d_hand - d_reserved))

    def apply_many(self, moves, *, document_kind, document_id, document_number=None, reason=None, actor_id=None):
        """`Stock.apply` for several levels at once, in two statements: the levels are made where
        missing and locked in the order given (INSERT … ON CONFLICT DO UPDATE … WHERE false locks
        the rows it does not change), then every guarded UPDATE and its ledger row in one
        statement. `moves` = [(warehouse, sku, kind, quantity)], one per level, in lock order.
        Returns the new levels of the moves the levels could take, in the order given; a move
        missing from the answer would have left its level invalid (the caller rolls back)."""
        deltas = [domain.deltas(kind, quantity) for _, _, kind, quantity in moves]
        self.uow.execute(
            "INSERT INTO stock_levels (sku, warehouse) SELECT m.sku, m.warehouse FROM unnest(%s::text[], %s::text[])"
            " WITH ORDINALITY AS m(sku, warehouse, n) ORDER BY n"
            " ON CONFLICT (sku, warehouse) DO UPDATE SET version = stock_levels.version WHERE false",
            ([m[1] for m in moves], [m[0] for m in moves]))
        rows = self.uow.all(
            "WITH m AS (SELECT * FROM unnest(%(sku)s::text[], %(wh)s::text[], %(kind)s::text[], %(q)s::bigint[],"
            "  %(h)s::bigint[], %(r)s::bigint[], %(l)s::bigint[]) WITH ORDINALITY"
            "  AS m(sku, warehouse, kind, quantity, h, r, l, n)),"
            " moved AS (UPDATE stock_levels s SET on_hand = on_hand + m.h, reserved = reserved + m.r,"
            "  on_loan = on_loan + m.l, updated_at = now(), version = version + 1 FROM m"
            "  WHERE s.sku = m.sku AND s.warehouse = m.warehouse"
            "  AND s.on_hand + m.h >= s.reserved + m.r AND s.reserved + m.r >= 0 AND s.on_loan + m.l >= 0"
            "  RETURNING s.sku, s.warehouse, s.on_hand, s.reserved, s.on_loan, s.available, m.kind, m.quantity,"
            "  m.h, m.r, m.l, m.n),"
            " ledger AS (INSERT INTO stock_movements (sku, warehouse, kind, quantity, on_hand_delta, reserved_delta,"
            "  on_loan_delta, document_kind, document_id, document_number, reason, actor_id)"
            "  SELECT sku, warehouse, kind, quantity, h, r, l, %(dk)s, %(di)s, %(dn)s, %(reason)s, %(actor)s"
            "  FROM moved ORDER BY n)"
            " SELECT moved.*, (SELECT low_stock_threshold FROM products p WHERE p.sku = moved.sku) AS threshold"
            " FROM moved ORDER BY n",
            {"sku": [m[1] for m in moves], "wh": [m[0] for m in moves], "kind": [m[2] for m in moves],
             "q": [m[3] for m in moves], "h": [d[0] for d in deltas], "r": [d[1] for d in deltas],
             "l": [d[2] for d in deltas], "dk": document_kind, "di": document_id, "dn": document_number,
             "reason": reason, "actor": actor_id})
        return [dict(row, available_before=row["available"] - (row["h"] - row["r"])) for row in rows]

    def level(self, sku, warehouse):
        return self.uow.one("SELECT * FROM stock_levels WHERE sku = %s AND warehouse = %s", (sku, warehouse))

    def list(self, *, sku=None, warehouse=None, after=None, limit=50):
        where, params = [], []
        for column, value in (("s.sku", sku), ("s.warehouse", warehouse)):
            if value is not None:
                where.append(f"{column} = %s")
                params.append(value)
        _keyset(where, params, ["s.sku", "s.warehouse"], after)
        return self.uow.all(
            "SELECT s.sku, p.name, p.unit, s.warehouse, s.on_hand, s.reserved, s.available, s.on_loan,"
            f" p.low_stock_threshold, s.updated_at FROM stock_levels s JOIN products p ON p.sku = s.sku{_where(where)}"
            " ORDER BY s.sku, s.warehouse LIMIT %s", params + [limit + 1])

    def movements(self, *, sku=None, warehouse=None, kind=None, document_id=None, after=None, limit=50):
        where, params = [], []
        for column, value in (("sku", sku), ("warehouse", warehouse), ("kind", kind), ("document_id", document_id)):
            if value is not None:
                where.append(f"{column} = %s")
                params.append(value)
        _keyset(where, params, ["id"], after, descending=True, types=["bigint"])
        return self.uow.all(f"SELECT * FROM stock_movements{_where(where)} ORDER BY id DESC LIMIT %s",
                            params + [limit + 1])

    # -- the books, read in one snapshot (the caller sets REPEATABLE READ) ------------------------
    def stored_levels(self):
        rows = self.uow.all("SELECT sku, warehouse, on_hand, reserved, on_loan FROM stock_levels")
        return {(r["sku"], r["warehouse"]): (r["on_hand"], r["reserved"], r["on_loan"]) for r in rows}

    def ledger_levels(self):
        rows = self.uow.all(
            "SELECT sku, warehouse, sum(on_hand_delta) AS on_hand, sum(reserved_delta) AS reserved,"
            " sum(on_loan_delta) AS on_loan FROM stock_movements GROUP BY sku, warehouse")
        return {(r["sku"], r["warehouse"]): (int(r["on_hand"]), int(r["reserved"]), int(r["on_loan"]))
                for r in rows}

    def held_for_orders(self):
        rows = self.uow.all(
            "SELECT l.sku, r.warehouse, sum(l.quantity - l.issued) AS held FROM reservation_lines l"
            " JOIN reservations r ON r.id = l.reservation_id WHERE r.status IN ('held', 'committed')"
            " GROUP BY l.sku, r.warehouse")
        return {(r["sku"], r["warehouse"]): int(r["held"]) for r in rows}

    def still_on_loan(self):
        rows = self.uow.all(
            "SELECT l.sku, o.warehouse, sum(l.quantity - l.returned - l.converted) AS out FROM loan_lines l"
            " JOIN loans o ON o.id = l.loan_id GROUP BY l.sku, o.warehouse")
        return {(r["sku"], r["warehouse"]): int(r["out"]) for r in rows}


# -- the sales performance read model (issue 11) -------------------------------------------------------
SHIPPED_COLUMNS = ("shipped", "shipped_quantity", "returned", "returned_quantity")
SHIPPED_UPSERT = readmodels.upsert("shipped_daily", SHIPPED_COLUMNS)


class ShippedDaily:
    """shipped_daily (migration 0003): what report_shipped sums per group, kept in the same
    transaction as each fact — a delivery note issued (Deliveries.mark_issued), a return receipt
    posted against one (Documents.add), a customer moved (CustomerSnapshots). Adding is commutative
    (ON CONFLICT … + EXCLUDED): concurrent writers need no lock beyond the row's own."""

    def __init__(self, uow):
        self.uow = uow

    def issued(self, delivery_id):
        self.uow.execute(SHIPPED_UPSERT.format(select=(
            "SELECT (d.issued_at AT TIME ZONE 'Asia/Shanghai')::date, d.owner_id, d.owner_team, d.region, d.customer_id,"
            " sum(l.quantity * l.unit_price), sum(l.quantity), 0, 0"
            " FROM deliveries d JOIN delivery_lines l ON l.delivery_id = d.id WHERE d.id = %s AND d.status = 'issued'"
            " GROUP BY d.issued_at, d.owner_id, d.owner_team, d.region, d.customer_id")), (delivery_id,))

    def returned(self, document_id):
        """A return receipt against a note: the note is read FOR SHARE, so a concurrent move of its
        customer (CustomerSnapshots) is waited for, or waits for this."""
        self.uow.execute(
            "WITH d AS (SELECT id, owner_id, owner_team, region, customer_id FROM deliveries"
            "           WHERE id = (SELECT delivery_id FROM stock_documents WHERE id = %(doc)s) FOR SHARE) "
            + SHIPPED_UPSERT.format(select=(
                "SELECT (s.posted_at AT TIME ZONE 'Asia/Shanghai')::date, d.owner_id, d.owner_team, d.region,"
                " d.customer_id, 0, 0, sum(l.quantity * l.unit_price), sum(l.quantity)"
                " FROM stock_documents s JOIN stock_document_lines l ON l.document_id = s.id"
                " JOIN d ON d.id = s.delivery_id WHERE s.id = %(doc)s AND s.kind = 'return_receipt'"
                " GROUP BY s.posted_at, d.owner_id, d.owner_team, d.region, d.customer_id")), {"doc": document_id})

    def move_customer(self, customer_id, owner=None, region=None):
        """The customer's delivery notes moved to a new owner (owner_id, owner_team) or region: its
        rows follow, merged with any it already has there."""
        readmodels.move_customer(self.uow, "shipped_daily", SHIPPED_COLUMNS, customer_id, owner, region)


class Documents:
    """Posted stock documents: written once, never changed (corrections reverse them)."""

    def __init__(self, uow):
        self.uow = uow

    def add(self, document, lines):
        row = self.uow.one(
            "INSERT INTO stock_documents (id, number, kind, warehouse, reason, reverses_id, delivery_id, order_id,"
            " loan_id, return_id, return_number, posted_by)"
            " VALUES (%(id)s, %(number)s, %(kind)s, %(warehouse)s, %(reason)s, %(reverses_id)s, %(delivery_id)s,"
            " %(order_id)s, %(loan_id)s, %(return_id)s, %(return_number)s, %(posted_by)s) RETURNING *",
            dict({"reason": None, "reverses_id": None, "delivery_id": None, "order_id": None, "loan_id": None,
                  "return_id": None, "return_number": None}, **document),
        )
        for line_no, line in enumerate(lines, start=1):
            self.uow.execute(
                "INSERT INTO stock_document_lines (document_id, line_no, sku, quantity, delivery_line_id,"
                " order_line_id, unit_price, vat_rate) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
                (row["id"], line_no, line["sku"], line["quantity"], line.get("delivery_line_id"),
                 line.get("order_line_id"), line.get("unit_price"), line.get("vat_rate")),
            )
        if row["kind"] == "return_receipt" and row["delivery_id"] is not None:
            ShippedDaily(self.uow).returned(row["id"])
        return self.get(row["id"])

    def get(self, document_id):
        row = self.uow.one(
            "SELECT d.*, r.id AS reversed_by FROM stock_documents d"
            " LEFT JOIN stock_documents r ON r.reverses_id = d.id WHERE d.id = %s", (document_id,))
        if row is not None:
            row["lines"] = self.uow.all(
                "SELECT line_no, sku, quantity, delivery_line_id, order_line_id, unit_price, vat_rate"
                " FROM stock_document_lines WHERE document_id = %s ORDER BY line_no", (document_id,))
        return row

    def reversal_of(self, document_id):
        return self.uow.scalar("SELECT id FROM stock_documents WHERE reverses_id = %s", (document_id,))


class Reservations:
    def __init__(self, uow):
        self.uow = uow

    def add(self, reservation):
        """Insert; None when the order already has an active reservation (or the id is taken)."""
        return self.uow.one(
            "INSERT INTO reservations (id, order_id, order_number, warehouse, status, customer_id, owner_id,"
            " owner_team, region, hold_until) VALUES (%(id)s, %(order_id)s, %(order_number)s, %(warehouse)s,"
            " 'held', %(customer_id)s, %(owner_id)s, %(owner_team)s, %(region)s, %(hold_until)s)"
            " ON CONFLICT DO NOTHING RETURNING *",  # no target: the one-active-per-order index counts too
            reservation)

    def add_lines(self, reservation_id, lines):
        """Insert the lines in one statement; returns them as stored, by line number."""
        if not lines:
            return []
        added = psycopg2.extras.execute_values(
            self.uow.cursor,
            "INSERT INTO reservation_lines (reservation_id, line_id, line_no, sku, quantity, unit_price, vat_rate)"
            " VALUES %s RETURNING *",
            [(reservation_id, line["line_id"], line_no, line["sku"], line["quantity"], line["unit_price"],
              line["vat_rate"]) for line_no, line in enumerate(lines, start=1)],
            fetch=True)
        return sorted(added, key=lambda l: l["line_no"])

    def get(self, reservation_id, lock=False):
        return self.uow.one("SELECT * FROM reservations WHERE id = %s" + (" FOR UPDATE" if lock else ""),
                            (reservation_id,))

    def active_for_order(self, order_id, lock=False):
        return self.uow.one("SELECT * FROM reservations WHERE order_id = %s AND status IN ('held', 'committed')"
                            + (" FOR UPDATE" if lock else ""), (order_id,))

    def latest_for_order(self, order_id):
        return self.uow.one("SELECT * FROM reservations WHERE order_id = %s ORDER BY created_at DESC, id LIMIT 1",
                            (order_id,))

    def lines(self, reservation_id):
        return self.uow.all("SELECT * FROM reservation_lines WHERE reservation_id = %s ORDER BY line_no",
                            (reservation_id,))

    def close(self, reservation_id, status, reason):
        """Guarded: only an active reservation is released or expired; None if it no longer is."""
        return self.uow.one(
            "UPDATE reservations SET status = %s, close_reason = %s, closed_at = now(), updated_at = now(),"
            " version = version + 1 WHERE id = %s AND status IN ('held', 'committed') RETURNING *",
            (status, reason, reservation_id))

    def commit(self, order_id):
        return self.uow.one(
            "UPDATE reservations SET status = 'committed', committed_at = now(), updated_at = now(),"
            " version = version + 1 WHERE order_id = %s AND status = 'held' RETURNING *", (order_id,))

    def set_status(self, reservation_id, status):
        self.uow.execute("UPDATE reservations SET status = %s, closed_at = CASE WHEN %s = 'consumed' THEN now()"
                         " ELSE closed_at END, updated_at = now(), version = version + 1 WHERE id = %s",
                         (status, status, reservation_id))

    def allocate(self, reservation_id, line_id, quantity):
        """Guarded: put `quantity` of a line on a delivery note (negative: take it off again)."""
        return self.uow.one(
            "UPDATE reservation_lines SET allocated = allocated + %s WHERE reservation_id = %s AND line_id = %s"
            " AND allocated + %s BETWEEN issued AND quantity RETURNING *",
            (quantity, reservation_id, line_id, quantity))

    def issue(self, reservation_id, line_id, quantity):
        return self.uow.one(
            "UPDATE reservation_lines SET issued = issued + %s WHERE reservation_id = %s AND line_id = %s"
            " AND issued + %s <= allocated RETURNING *", (quantity, reservation_id, line_id, quantity))

    def expired_batch(self, as_of, limit):
        """Held reservations past their hold time that no other replica is working on."""
        return self.uow.all(
            "SELECT * FROM reservations WHERE status = 'held' AND hold_until <= %s ORDER BY hold_until, id"
            " LIMIT %s FOR UPDATE SKIP LOCKED", (as_of, limit))


class Deliveries:
    def __init__(self, uow):
        self.uow = uow

    def add(self, delivery, lines):
        self.uow.execute(
            "INSERT INTO deliveries (id, number, order_id, order_number, reservation_id, loan_id, warehouse, status,"
            " customer_id, owner_id, owner_team, region, created_by)"
            " VALUES (%(id)s, %(number)s, %(order_id)s, %(order_number)s, %(reservation_id)s, %(loan_id)s,"
            " %(warehouse)s, 'pending', %(customer_id)s, %(owner_id)s, %(owner_team)s, %(region)s, %(created_by)s)",
            delivery)
        for line_no, line in enumerate(lines, start=1):
            self.uow.execute(
                "INSERT INTO delivery_lines (id, delivery_id, line_no, order_line_id, sku, quantity, unit_price,"
                " vat_rate) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
                (line["id"], delivery["id"], line_no, line.get("order_line_id"), line["sku"], line["quantity"],
                 line["unit_price"], line["vat_rate"]))

    def get(self, delivery_id, lock=False):
        row = self.uow.one("SELECT * FROM deliveries WHERE id = %s" + (" FOR UPDATE" if lock else ""),
                           (delivery_id,))
        if row is not None:
            row["lines"] = self.lines(delivery_id)
        return row

    def lines(self, delivery_id):
        return self.uow.all("SELECT * FROM delivery_lines WHERE delivery_id = %s ORDER BY line_no", (delivery_id,))

    def pending_for_reservation(self, reservation_id):
        rows = self.uow.all("SELECT * FROM deliveries WHERE reservation_id = %s AND status = 'pending'"
                            " ORDER BY created_at, id FOR UPDATE", (reservation_id,))
        for row in rows:
            row["lines"] = self.lines(row["id"])
        return rows

    def mark_issued(self, delivery_id, goods_issue, actor_id):
        row = self.uow.one(
            "UPDATE deliveries SET status = 'issued', goods_issue_id = %s, goods_issue_number = %s, issued_by = %s,"
            " issued_at = %s, updated_at = now(), version = version + 1 WHERE id = %s AND status = 'pending'"
            " RETURNING *", (goods_issue["id"], goods_issue["number"], actor_id, goods_issue["posted_at"], delivery_id))
        if row is not None:
            ShippedDaily(self.uow).issued(row["id"])
        return row

    def mark_cancelled(self, delivery_id, actor_id, reason):
        return self.uow.one(
            "UPDATE deliveries SET status = 'cancelled', cancelled_by = %s, cancelled_at = now(), cancel_reason = %s,"
            " updated_at = now(), version = version + 1 WHERE id = %s AND status = 'pending' RETURNING *",
            (actor_id, reason, delivery_id))

    def take_back(self, delivery_line_id, quantity):
        """Guarded: record `quantity` returned on a line, never more than was issued on it."""
        return self.uow.one(
            "UPDATE delivery_lines SET returned = returned + %s WHERE id = %s AND returned + %s <= quantity"
            " RETURNING *", (quantity, delivery_line_id, quantity))

    def list(self, *, scope_sql, scope_params, order_id=None, status=None, customer_id=None, after=None, limit=50):
        where, params = [scope_sql], list(scope_params)
        for column, value in (("order_id", order_id), ("status", status), ("customer_id", customer_id)):
            if value is not None:
                where.append(f"{column} = %s")
                params.append(value)
        _keyset(where, params, ["created_at", "id"], after, descending=True, types=["timestamptz", "uuid"])
        rows = self.uow.all(f"SELECT * FROM deliveries{_where(where)} ORDER BY created_at DESC, id DESC LIMIT %s",
                            params + [limit + 1])
        lines = {}
        for line in self.uow.all("SELECT * FROM delivery_lines WHERE delivery_id = ANY(%s) ORDER BY line_no",
                                 ([row["id"] for row in rows],)):
            lines.setdefault(line["delivery_id"], []).append(line)
        for row in rows:
            row["lines"] = lines.get(row["id"], [])
        return rows


class Loans:
    def __init__(self, uow):
        self.uow = uow

    def add(self, loan, lines):
        try:
            with self.uow.savepoint("loan_insert"):
                self.uow.execute(
                    "INSERT INTO loans (id, number, warehouse, status, customer_id, owner_id, owner_team, region,"
                    " issue_document_id, created_by) VALUES (%(id)s, %(number)s, %(warehouse)s, 'out',"
                    " %(customer_id)s, %(owner_id)s, %(owner_team)s, %(region)s, %(issue_document_id)s,"
                    " %(created_by)s)", loan)
        except psycopg2.errors.UniqueViolation:
            return False
        for line in lines:
            self.uow.execute("INSERT INTO loan_lines (loan_id, sku, quantity) VALUES (%s, %s, %s)",
                             (loan["id"], line["sku"], line["quantity"]))
        return True

    def get(self, loan_id, lock=False):
        row = self.uow.one("SELECT * FROM loans WHERE id = %s" + (" FOR UPDATE" if lock else ""), (loan_id,))
        if row is not None:
            row["lines"] = self.uow.all("SELECT * FROM loan_lines WHERE loan_id = %s ORDER BY sku", (loan_id,))
        return row

    def take_back(self, loan_id, sku, quantity):
        """Guarded: never more back than is still out."""
        return self.uow.one(
            "UPDATE loan_lines SET returned = returned + %s WHERE loan_id = %s AND sku = %s"
            " AND returned + converted + %s <= quantity RETURNING *", (quantity, loan_id, sku, quantity))

    def convert(self, loan_id, sku, quantity):
        return self.uow.one(
            "UPDATE loan_lines SET converted = converted + %s WHERE loan_id = %s AND sku = %s"
            " AND returned + converted + %s <= quantity RETURNING *", (quantity, loan_id, sku, quantity))

    def set_status(self, loan_id, status):
        self.uow.execute(
            "UPDATE loans SET status = %s, closed_at = CASE WHEN %s = 'closed' THEN now() END, updated_at = now(),"
            " version = version + 1 WHERE id = %s", (status, status, loan_id))


class CustomerSnapshots:
    """Moves the customer snapshot on every document of a customer (customer.owner_changed,
    customer.updated), applying only events newer than the last one applied."""

    TABLES = ("reservations", "deliveries", "loans")

    def __init__(self, uow):
        self.uow = uow

    def _newer(self, customer_id, column, occurred_at):
        row = self.uow.one(
            f"INSERT INTO customer_snapshot_versions (customer_id, {column}) VALUES (%s, %s)"
            f" ON CONFLICT (customer_id) DO UPDATE SET {column} = EXCLUDED.{column}"
            f" WHERE customer_snapshot_versions.{column} IS NULL OR customer_snapshot_versions.{column} < EXCLUDED.{column}"
            " RETURNING customer_id", (customer_id, occurred_at))
        return row is not None

    def move_owner(self, customer_id, owner_id, owner_team, occurred_at):
        if not self._newer(customer_id, "owner_changed_at", occurred_at):
            return None
        moved = 0
        for table in self.TABLES:
            moved += self.uow.execute(
                f"UPDATE {table} SET owner_id = %s, owner_team = %s, updated_at = now(), version = version + 1"
                " WHERE customer_id = %s AND (owner_id IS DISTINCT FROM %s OR owner_team IS DISTINCT FROM %s)",
                (owner_id, owner_team, customer_id, owner_id, owner_team)).rowcount
        # after the delivery notes (locked by the UPDATE): an issue or a return adds to the read model
        # under the note's snapshot read with the note locked, so it waits for this move or is moved by it
        ShippedDaily(self.uow).move_customer(customer_id, owner=(owner_id, owner_team))
        return moved

    def move_region(self, customer_id, region, occurred_at):
        if not self._newer(customer_id, "region_changed_at", occurred_at):
            return None
        moved = 0
        for table in self.TABLES:
            moved += self.uow.execute(
                f"UPDATE {table} SET region = %s, updated_at = now(), version = version + 1"
                " WHERE customer_id = %s AND region IS DISTINCT FROM %s", (region, customer_id, region)).rowcount
        ShippedDaily(self.uow).move_customer(customer_id, region=region)  # after the notes: see move_owner
        return moved


def _local_day(instant):
    """The Asia/Shanghai date of a report bound (a local midnight)."""
    return instant.astimezone(ZoneInfo("Asia/Shanghai")).date()


class Reports:
    def __init__(self, uow):
        self.uow = uow

    def shipped(self, *, column, begin, end, scope_sql, scope_params):
        """Per group: amount and quantity issued in [begin, end), and returned in it. Issue 11: by a
        column of the delivery note's snapshot (rep, team, region, customer) summed from the read
        model kept with the facts (ShippedDaily), per Asia/Shanghai day — the bounds are local
        midnights; by product from the lines."""
        if column == "sku":
            return self.shipped_from_the_lines(column=column, begin=begin, end=end, scope_sql=scope_sql,
                                               scope_params=scope_params)
        days = [_local_day(begin), _local_day(end)]
        rows = self.uow.all(
            f"SELECT d.{column}::text AS key, sum(d.shipped) AS shipped, sum(d.shipped_quantity) AS shipped_quantity,"
            " sum(d.returned) AS returned, sum(d.returned_quantity) AS returned_quantity FROM shipped_daily d"
            f" WHERE d.day >= %s AND d.day < %s AND {scope_sql} GROUP BY 1", days + list(scope_params))
        issued = [{"key": r["key"], "amount": r["shipped"], "quantity": r["shipped_quantity"]}
                  for r in rows if r["shipped_quantity"]]
        returned = [{"key": r["key"], "amount": r["returned"], "quantity": r["returned_quantity"]}
                    for r in rows if r["returned_quantity"]]
        return issued, returned

    def shipped_from_the_lines(self, *, column, begin, end, scope_sql, scope_params):
        """The same figures from the delivery notes, return receipts and their lines."""
        issued = self.uow.all(
            f"SELECT {'l.sku' if column == 'sku' else 'd.' + column}::text AS key,"
            " sum(l.quantity * l.unit_price) AS amount, sum(l.quantity) AS quantity"
            " FROM deliveries d JOIN delivery_lines l ON l.delivery_id = d.id"
            f" WHERE d.status = 'issued' AND d.issued_at >= %s AND d.issued_at < %s AND {scope_sql}"
            " GROUP BY 1", [begin, end] + list(scope_params))
        returned = self.uow.all(
            f"SELECT {'l.sku' if column == 'sku' else 'd.' + column}::text AS key,"
            " sum(l.quantity * l.unit_price) AS amount, sum(l.quantity) AS quantity"
            " FROM stock_documents s JOIN stock_document_lines l ON l.document_id = s.id"
            " JOIN deliveries d ON d.id = s.delivery_id"
            f" WHERE s.kind = 'return_receipt' AND s.posted_at >= %s AND s.posted_at < %s AND {scope_sql}"
            " GROUP BY 1", [begin, end] + list(scope_params))
        return issued, returned


class OrderDocuments:
    """The warehouse's documents of one order, for the gateway's order timeline (issue 8): its
    reservations, delivery notes (with their goods issues) and the return receipts against them,
    within the caller's scope (`scope_sql` over the documents' customer snapshot)."""

    def __init__(self, uow):
        self.uow = uow

    def reservations(self, order_id, scope_sql, scope_params):
        rows = self.uow.all(f"SELECT * FROM reservations WHERE order_id = %s AND {scope_sql}"
                            " ORDER BY created_at, id", [order_id] + list(scope_params))
        lines = self._lines("reservation_lines", "reservation_id", [r["id"] for r in rows])
        return [dict(row, lines=lines.get(row["id"], [])) for row in rows]

    def deliveries(self, order_id, scope_sql, scope_params):
        rows = self.uow.all(f"SELECT * FROM deliveries WHERE order_id = %s AND {scope_sql}"
                            " ORDER BY created_at, id", [order_id] + list(scope_params))
        lines = self._lines("delivery_lines", "delivery_id", [r["id"] for r in rows])
        return [dict(row, lines=lines.get(row["id"], [])) for row in rows]

    def return_receipts(self, delivery_ids):
        if not delivery_ids:  # nothing returned against no delivery: no statement
            return []
        rows = self.uow.all(
            "SELECT d.*, NULL::uuid AS reversed_by FROM stock_documents d"
            " WHERE d.kind = 'return_receipt' AND d.delivery_id = ANY(%s) ORDER BY d.posted_at, d.id",
            (list(delivery_ids),))
        lines = {}
        if rows:
            for line in self.uow.all(
                    "SELECT document_id, line_no, sku, quantity, delivery_line_id, order_line_id, unit_price, vat_rate"
                    " FROM stock_document_lines WHERE document_id = ANY(%s) ORDER BY document_id, line_no",
                    ([r["id"] for r in rows],)):
                lines.setdefault(line.pop("document_id"), []).append(line)
        return [dict(row, lines=lines.get(row["id"], [])) for row in rows]

    def _lines(self, table, column, ids):
        found = {}
        if ids:
            for line in self.uow.all(f"SELECT * FROM {table} WHERE {column} = ANY(%s) ORDER BY {column}, line_no",
                                     (list(ids),)):
                found.setdefault(line[column], []).append(line)
        return found


class Books:
    """What the invariant checker reads (get_books): levels with their ledger by movement kind,
    every reservation and every issued delivery with their lines. Read in one snapshot."""

    def __init__(self, uow):
        self.uow = uow

    def read(self):
        return {"levels": self.levels(), "reservations": self.reservations(), "deliveries": self.issued_deliveries()}

    def levels(self):
        return self.uow.all(
            "SELECT s.sku, s.warehouse, s.on_hand, s.reserved, s.on_loan,"
            "       COALESCE((SELECT jsonb_object_agg(kind, delta) FROM (SELECT kind, sum(on_hand_delta) AS delta"
            "           FROM stock_movements m WHERE m.sku = s.sku AND m.warehouse = s.warehouse"
            "           GROUP BY kind) k), '{}') AS on_hand_by_kind,"
            "       COALESCE((SELECT sum(reserved_delta) FROM stock_movements m"
            "           WHERE m.sku = s.sku AND m.warehouse = s.warehouse), 0)::bigint AS reserved_ledger,"
            "       COALESCE((SELECT sum(on_loan_delta) FROM stock_movements m"
            "           WHERE m.sku = s.sku AND m.warehouse = s.warehouse), 0)::bigint AS on_loan_ledger"
            "  FROM stock_levels s ORDER BY s.sku, s.warehouse")

    def reservations(self):
        return self.uow.all(
            "SELECT r.id, r.order_id, r.order_number, r.warehouse, r.status,"
            "       jsonb_agg(jsonb_build_object('line_id', l.line_id, 'sku', l.sku, 'quantity', l.quantity,"
            "                 'issued', l.issued) ORDER BY l.line_no) AS lines"
            "  FROM reservations r JOIN reservation_lines l ON l.reservation_id = r.id"
            " GROUP BY r.id ORDER BY r.created_at, r.id")

    def issued_deliveries(self):
        return self.uow.all(
            "SELECT d.id, d.number, d.order_id, d.loan_id,"
            "       jsonb_agg(jsonb_build_object('id', l.id, 'sku', l.sku, 'quantity', l.quantity,"
            "                 'returned', l.returned) ORDER BY l.line_no) AS lines"
            "  FROM deliveries d JOIN delivery_lines l ON l.delivery_id = d.id WHERE d.status = 'issued'"
            " GROUP BY d.id ORDER BY d.issued_at, d.id")
