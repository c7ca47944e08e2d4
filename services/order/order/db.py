"""SQL of the order service (no nameko here). Every state change is a guarded UPDATE (the status
the change starts from is part of the WHERE clause) or runs under a row lock; nothing is read,
changed in Python and written back."""
import uuid
from datetime import datetime, timezone
from zoneinfo import ZoneInfo

import psycopg2
import psycopg2.extras

from shared import readmodels
from shared.db import dumps


def _set_clause(fields):
    return ", ".join(f"{name} = %({name})s" for name in fields)


def _where_scope(scope, alias=""):
    prefix = f"{alias}." if alias else ""
    return scope.sql(f"{prefix}owner_id", f"{prefix}owner_team")


def _listing(uow, table, scope, filters, after, limit, date_column="created_at"):
    """Keyset page of `table` newest first, restricted to the scope and the equality filters;
    `from`/`to` bound `date_column`."""
    condition, params = _where_scope(scope)
    where = [condition]
    for column, value in filters.items():
        if value is None:
            continue
        if column == "from":
            where.append(f"{date_column} >= %s")
        elif column == "to":
            where.append(f"{date_column} < %s")
        else:
            where.append(f"{column} = %s")
        params.append(value)
    if after is not None:
        where.append("(created_at, id) < (%s::timestamptz, %s::uuid)")
        params += after
    sql = f"SELECT * FROM {table} WHERE {' AND '.join(where)} ORDER BY created_at DESC, id DESC LIMIT %s"
    return uow.all(sql, params + [limit + 1])


def guarded_update(uow, table, row_id, statuses, **fields):
    """UPDATE `table` SET fields WHERE id = row_id AND status IN statuses; the row, or None when its
    status was not one of them (someone else moved it first)."""
    fields.setdefault("updated_at", fields.pop("_now", None) or _now_sql())
    params = dict(fields, _id=row_id, _statuses=list(statuses))
    return uow.one(
        f"UPDATE {table} SET {_set_clause(fields)} WHERE id = %(_id)s AND status = ANY(%(_statuses)s) RETURNING *",
        params,
    )


def _local_day(instant):
    """The Asia/Shanghai date of a report bound (a local midnight)."""
    return instant.astimezone(ZoneInfo("Asia/Shanghai")).date()


def _now_sql():
    from datetime import datetime, timezone

    return datetime.now(timezone.utc)


# -- the price list and customer snapshots ----------------------------------------------------------
class PriceList:
    def __init__(self, uow):
        self.uow = uow

    def upsert(self, product, as_of):
        """Keep the product as of the event; an older event than what we hold changes nothing."""
        return self.uow.one(
            "INSERT INTO products (sku, name, unit, list_price, floor_price, vat_rate, active, price_as_of)"
            " VALUES (%(sku)s, %(name)s, %(unit)s, %(list_price)s, %(floor_price)s, %(vat_rate)s, %(active)s, %(as_of)s)"
            " ON CONFLICT (sku) DO UPDATE SET name = EXCLUDED.name, unit = EXCLUDED.unit,"
            " list_price = EXCLUDED.list_price, floor_price = EXCLUDED.floor_price, vat_rate = EXCLUDED.vat_rate,"
            " active = EXCLUDED.active, price_as_of = EXCLUDED.price_as_of, updated_at = now()"
            " WHERE products.price_as_of <= EXCLUDED.price_as_of RETURNING sku",
            dict(product, as_of=as_of),
        )

    def get_many(self, skus):
        rows = self.uow.all("SELECT * FROM products WHERE sku = ANY(%s)", (list(set(skus)),))
        return {row["sku"]: row for row in rows}


SNAPSHOT_TABLES = ("quotes", "contracts", "orders", "returns", "loans")


# -- the sales performance read model (issue 11) -------------------------------------------------------
DAY = "(o.confirmed_at AT TIME ZONE 'Asia/Shanghai')::date"
SALES_COLUMNS = ("orders", "ordered", "returned", "shipped", "invoiced")
SALES_UPSERT = readmodels.upsert("order_sales_daily", SALES_COLUMNS)


class SalesDaily:
    """order_sales_daily (migration 0004): what report_orders sums per group, kept in the same
    transaction as each fact it is made of. An order counts from its confirmation until it is
    cancelled, on the Asia/Shanghai day it was confirmed, under its owner, team, region and
    customer; adding is commutative (ON CONFLICT … + EXCLUDED), so concurrent writers need no lock
    beyond the row's own."""

    def __init__(self, uow):
        self.uow = uow

    def add_order(self, order_id, sign):
        """+1: the order's figures as its lines stand now (confirmed); -1: taken off (cancelled).
        Deferred (sent with the COMMIT): the caller has locked the order already."""
        self.uow.defer(SALES_UPSERT.format(select=(
            f"SELECT {DAY}, o.owner_id, o.owner_team, o.region, o.customer_id, %(s)s, %(s)s * sum(l.amount),"
            " %(s)s * sum(l.returned_quantity * l.unit_price), %(s)s * sum(l.shipped_quantity * l.unit_price),"
            " %(s)s * sum(l.invoiced_amount) FROM orders o JOIN order_lines l ON l.order_id = o.id"
            " WHERE o.id = %(id)s AND o.confirmed_at IS NOT NULL"
            " GROUP BY o.confirmed_at, o.owner_id, o.owner_team, o.region, o.customer_id")), {"s": sign, "id": order_id})

    def add_line(self, order_id, returned=0, shipped=0, invoiced=0):
        """A line of a counted order shipped, returned or invoiced (amounts, signed). The order is
        read FOR UPDATE (the lock its line's change already took, and the one the order's progress
        takes next — no upgrade to deadlock on): a concurrent move of its customer
        (Snapshots.apply) is waited for."""
        self.uow.execute(SALES_UPSERT.format(select=(
            f"SELECT {DAY}, o.owner_id, o.owner_team, o.region, o.customer_id, 0, 0, %(r)s, %(s)s, %(i)s FROM orders o"
            " WHERE o.id = %(id)s AND o.confirmed_at IS NOT NULL AND o.status <> 'cancelled' FOR UPDATE OF o")),
            {"r": returned, "s": shipped, "i": invoiced, "id": order_id})

    def move_customer(self, customer_id, owner=None, region=None):
        """The customer's documents moved to a new owner (owner = (owner_id, owner_team)) and/or
        region: its rows follow, merged with any it already has there."""
        readmodels.move_customer(self.uow, "order_sales_daily", SALES_COLUMNS, customer_id, owner, region)


class Snapshots:
    """The order service's copy of each customer it has heard of (customer events): owner, team,
    region and name, each as of the newest event that carried it (events can arrive out of order)."""

    PLACEHOLDER_AS_OF = datetime(1970, 1, 1, tzinfo=timezone.utc)

    def __init__(self, uow):
        self.uow = uow

    def apply(self, customer_id, as_of, **fields):
        """Record the customer's newer owner/team/region/name and move every document's snapshot;
        an event older than what we hold changes nothing (its name only if we have none newer)."""
        has_owner = "owner_id" in fields
        has_region = fields.get("region") is not None
        has_name = fields.get("name") is not None
        newer = "customer_snapshots.as_of <= EXCLUDED.as_of"
        name_newer = "(customer_snapshots.name_as_of IS NULL OR customer_snapshots.name_as_of <= EXCLUDED.as_of)"
        current = self.uow.one(
            "INSERT INTO customer_snapshots (customer_id, owner_id, owner_team, region, owner_known, name, name_as_of,"
            " as_of, revision)"
            " VALUES (%(customer_id)s, %(owner_id)s, %(owner_team)s, %(region)s, %(has_owner)s, %(name)s,"
            "  CASE WHEN %(has_name)s THEN %(as_of)s::timestamptz END, %(as_of)s, 1)"
            " ON CONFLICT (customer_id) DO UPDATE SET"
            f"  owner_id = CASE WHEN %(has_owner)s AND {newer} THEN EXCLUDED.owner_id"
            "   ELSE customer_snapshots.owner_id END,"
            f"  owner_team = CASE WHEN %(has_owner)s AND {newer} THEN EXCLUDED.owner_team"
            "   ELSE customer_snapshots.owner_team END,"
            f"  owner_known = customer_snapshots.owner_known OR (%(has_owner)s AND {newer}),"
            f"  region = CASE WHEN %(has_region)s AND {newer} THEN EXCLUDED.region ELSE customer_snapshots.region END,"
            f"  name = CASE WHEN %(has_name)s AND {name_newer} THEN EXCLUDED.name ELSE customer_snapshots.name END,"
            f"  name_as_of = CASE WHEN %(has_name)s AND {name_newer} THEN EXCLUDED.as_of"
            "   ELSE customer_snapshots.name_as_of END,"
            "  as_of = GREATEST(customer_snapshots.as_of, EXCLUDED.as_of),"
            "  revision = customer_snapshots.revision + 1"
            f" WHERE {newer} OR (%(has_name)s AND {name_newer}) RETURNING *",
            {"customer_id": customer_id, "owner_id": fields.get("owner_id"), "owner_team": fields.get("owner_team"),
             "region": fields.get("region"), "name": fields.get("name"), "as_of": as_of, "has_owner": has_owner,
             "has_region": has_region, "has_name": has_name},
        )
        if current is None or current["as_of"] != as_of:  # older than what we hold: documents stay
            return 0
        moved = 0
        for table in SNAPSHOT_TABLES:
            sets = []
            if has_owner:
                sets.append("owner_id = %(owner_id)s, owner_team = %(owner_team)s")
            if has_region:
                sets.append("region = %(region)s")
            if not sets:
                continue
            self.uow.execute(f"UPDATE {table} SET {', '.join(sets)} WHERE customer_id = %(customer_id)s",
                             {"owner_id": current["owner_id"], "owner_team": current["owner_team"],
                              "region": current["region"], "customer_id": customer_id})
            moved += self.uow.cursor.rowcount
        # after the orders (their rows locked by the UPDATE): a shipment, return or invoice of one of
        # them adds to the read model under the order's owner read FOR SHARE, so it either waits
        # for this move or is moved by it — never left under the old owner
        SalesDaily(self.uow).move_customer(
            customer_id, owner=(current["owner_id"], current["owner_team"]) if "owner_id" in fields else None,
            region=current["region"] if fields.get("region") is not None else None)
        return moved

    def read(self, customer_id):
        """The copy, share-locked until the transaction ends: an event about this customer waits
        for a document made from it, then moves that document too. None when we have no copy."""
        return self.uow.one("SELECT * FROM customer_snapshots WHERE customer_id = %s FOR SHARE", (customer_id,))

    def hold(self, customer_id):
        """As `read`, making an empty row first when there is none (an event that creates the copy
        meanwhile waits for the document and moves it too)."""
        self.uow.execute("INSERT INTO customer_snapshots (customer_id, as_of) VALUES (%s, %s)"
                         " ON CONFLICT (customer_id) DO NOTHING", (customer_id, self.PLACEHOLDER_AS_OF))
        return self.read(customer_id)


# -- approval steps -----------------------------------------------------------------------------------
STEP_COLUMNS = ("seq", "relation", "role", "reason", "status", "approver_id", "approver_name", "approver_role",
                "assigned_at", "decided_by", "decided_at", "comment", "content_hash")


class Steps:
    def __init__(self, uow):
        self.uow = uow

    def load(self, document_type, document_id, round_):
        return self.uow.all(
            "SELECT * FROM approval_steps WHERE document_type = %s AND document_id = %s AND round = %s ORDER BY seq",
            (document_type, document_id, round_),
        )

    def trail(self, document_type, document_id):
        return self.uow.all(
            "SELECT * FROM approval_steps WHERE document_type = %s AND document_id = %s ORDER BY round, seq",
            (document_type, document_id),
        )

    def save(self, document_type, document_id, round_, steps):
        for step in steps:
            data = {name: step[name] for name in STEP_COLUMNS}
            self.uow.execute(
                "INSERT INTO approval_steps (document_type, document_id, round, " + ", ".join(STEP_COLUMNS) + ")"
                " VALUES (%(document_type)s, %(document_id)s, %(round)s, "
                + ", ".join(f"%({c})s" for c in STEP_COLUMNS) + ")"
                " ON CONFLICT (document_type, document_id, round, seq) DO UPDATE SET "
                + ", ".join(f"{c} = EXCLUDED.{c}" for c in STEP_COLUMNS if c != "seq"),
                dict(data, document_type=document_type, document_id=document_id, round=round_),
            )

    def void_open(self, document_type, document_id):
        """Void every step that still counts, in every round (the document was edited)."""
        self.uow.execute(
            "UPDATE approval_steps SET status = 'voided' WHERE document_type = %s AND document_id = %s"
            " AND status IN ('waiting', 'pending', 'approved')",
            (document_type, document_id),
        )
        return self.uow.cursor.rowcount


# -- documents ----------------------------------------------------------------------------------------
class Documents:
    """What quotes, contracts, orders, returns and loans share: get under the caller's scope,
    list, guarded status moves."""

    table = None

    def __init__(self, uow):
        self.uow = uow

    def get(self, doc_id, scope=None, lock=False, approver_id=None):
        """The row if the scope allows it (or `approver_id` is assigned a step of it)."""
        sql = f"SELECT * FROM {self.table} WHERE id = %s"
        params = [doc_id]
        if scope is not None:
            condition, extra = _where_scope(scope)
            if approver_id is not None:
                condition = (f"({condition} OR EXISTS (SELECT 1 FROM approval_steps s WHERE s.document_id = "
                             f"{self.table}.id AND s.approver_id = %s))")
                extra = extra + [approver_id]
            sql += f" AND {condition}"
            params += extra
        if lock:
            sql += " FOR UPDATE"
        return self.uow.one(sql, params)

    def move(self, doc_id, statuses, **fields):
        return guarded_update(self.uow, self.table, doc_id, statuses, **fields)

    def list(self, scope, filters, after, limit, date_column="created_at"):
        return _listing(self.uow, self.table, scope, filters, after, limit, date_column)


class Quotes(Documents):
    table = "quotes"

    def add(self, quote, lines):
        self.uow.execute(
            "INSERT INTO quotes (id, number, customer_id, customer_name, owner_id, owner_team, region, status,"
            " valid_until, notes, total, content_hash, created_by, created_at, updated_at)"
            " VALUES (%(id)s, %(number)s, %(customer_id)s, %(customer_name)s, %(owner_id)s, %(owner_team)s,"
            " %(region)s, 'draft', %(valid_until)s, %(notes)s, %(total)s, %(content_hash)s, %(created_by)s,"
            " %(created_at)s, %(created_at)s)",
            quote,
        )
        self.replace_lines(quote["id"], lines)

    def replace_lines(self, quote_id, lines):
        self.uow.execute("DELETE FROM quote_lines WHERE quote_id = %s", (quote_id,))
        for line in lines:
            self.uow.execute(
                "INSERT INTO quote_lines (quote_id, line_no, sku, name, quantity, unit_price, list_price,"
                " floor_price, vat_rate, amount) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                (quote_id, line.line_no, line.sku, line.name, line.quantity, line.unit_price, line.list_price,
                 line.floor_price, line.vat_rate, line.amount),
            )

    def lines(self, quote_id):
        return self.uow.all("SELECT * FROM quote_lines WHERE quote_id = %s ORDER BY line_no", (quote_id,))

    def to_expire(self, today):
        return self.uow.all(
            "UPDATE quotes SET status = 'expired', closed_at = now(), updated_at = now()"
            " WHERE id IN (SELECT id FROM quotes WHERE valid_until < %s"
            " AND status IN ('draft', 'pending_approval', 'approved', 'sent') FOR UPDATE SKIP LOCKED)"
            " RETURNING *",
            (today,),
        )


class Contracts(Documents):
    table = "contracts"

    def add(self, contract):
        self.uow.execute(
            "INSERT INTO contracts (id, number, quote_id, order_id, customer_id, customer_name, owner_id, owner_team,"
            " region, status, total, lines, terms, major, content_hash, created_by, created_at, updated_at)"
            " VALUES (%(id)s, %(number)s, %(quote_id)s, %(order_id)s, %(customer_id)s, %(customer_name)s,"
            " %(owner_id)s, %(owner_team)s, %(region)s, 'draft', %(total)s, %(lines)s, %(terms)s, %(major)s,"
            " %(content_hash)s, %(created_by)s, %(created_at)s, %(created_at)s)",
            dict(contract, lines=dumps(contract["lines"]), terms=dumps(contract["terms"])),
        )

    def archive(self, before):
        """FR-57: contracts signed before `before` (the 1st of this month) are filed once."""
        return self.uow.all(
            "UPDATE contracts SET archived_at = now() WHERE id IN (SELECT id FROM contracts"
            " WHERE archived_at IS NULL AND signed_at IS NOT NULL AND signed_at < %s FOR UPDATE SKIP LOCKED)"
            " RETURNING id, number",
            (before,),
        )

    def complete_for_order(self, order_id, now):
        return self.uow.one(
            "UPDATE contracts SET status = 'completed', completed_at = %s, updated_at = %s"
            " WHERE order_id = %s AND status IN ('signed', 'effective') RETURNING *",
            (now, now, order_id),
        )


class Orders(Documents):
    table = "orders"

    def move(self, doc_id, statuses, **fields):
        """The guarded move; confirming an order adds it to the sales read model, cancelling a
        confirmed one takes it off (issue 11), in the same transaction."""
        order = super().move(doc_id, statuses, **fields)
        if order is not None and order["confirmed_at"] is not None:
            if fields.get("status") == "cancelled":
                SalesDaily(self.uow).add_order(order["id"], -1)
            elif "confirmed_at" in fields:
                SalesDaily(self.uow).add_order(order["id"], 1)
        return order

    def add(self, order, lines):
        """Insert the order and its lines (one statement each); returns both as stored."""
        columns = ("id", "number", "kind", "customer_id", "customer_name", "owner_id", "owner_team", "region",
                   "quote_id", "contract_id", "loan_id", "service_request_id", "source_delivery_id", "warehouse",
                   "status", "total", "created_by", "created_at", "updated_at")
        row = dict({c: None for c in columns}, kind="sale")
        row.update(order)
        row["updated_at"] = row["created_at"]
        stored = self.uow.one(
            f"INSERT INTO orders ({', '.join(columns)}) VALUES ({', '.join(f'%({c})s' for c in columns)})"
            " RETURNING *", row)
        added = []
        if lines:
            added = psycopg2.extras.execute_values(
                self.uow.cursor,
                "INSERT INTO order_lines (id, order_id, line_no, sku, name, quantity, unit_price, vat_rate, amount)"
                " VALUES %s RETURNING *",
                [(uuid.uuid5(order["id"], f"line-{line.line_no}"), order["id"], line.line_no, line.sku, line.name,
                  line.quantity, line.unit_price, line.vat_rate, line.amount) for line in lines],
                fetch=True)
        return stored, sorted(added, key=lambda l: l["line_no"])

    def lines(self, order_id):
        return self.uow.all("SELECT * FROM order_lines WHERE order_id = %s ORDER BY line_no", (order_id,))

    def start_confirming(self, order_id, scope, now):
        """draft → confirming (one more attempt) if the scope allows the order: the row, or None
        (not a draft, or not the caller's to see)."""
        condition, params = _where_scope(scope)
        return self.uow.one(
            f"UPDATE orders SET status = 'confirming', attempts = attempts + 1, updated_at = %s"
            f" WHERE id = %s AND status = 'draft' AND {condition} RETURNING *", [now, order_id] + params)

    def lines_for_quotas(self, order, period):
        """The order's lines, each with `quota`: whether a quota of `period` covers its product for
        this customer or its market (so the quotas are consumed only when one does)."""
        return self.uow.all(
            "SELECT l.*, EXISTS (SELECT 1 FROM quotas q WHERE q.period = %s AND q.sku = l.sku"
            " AND (q.customer_id = %s OR q.market = %s)) AS quota"
            " FROM order_lines l WHERE l.order_id = %s ORDER BY l.line_no",
            (period, order["customer_id"], order["region"], order["id"]))

    def by_quote(self, quote_id):
        return self.uow.one("SELECT * FROM orders WHERE quote_id = %s AND status <> 'cancelled'", (quote_id,))

    def invoices(self, order_id):
        return self.uow.all("SELECT * FROM order_invoices WHERE order_id = %s ORDER BY issued_at", (order_id,))

    def _lock_order_of(self, order_line_id):
        """The line's order locked before the line changes: a confirmation adding the order to the
        sales read model (from its lines as committed) then either waits for this change or is
        seen by it (`SalesDaily.add_line` counts only confirmed orders) — never neither."""
        self.uow.execute("SELECT 1 FROM orders WHERE id = (SELECT order_id FROM order_lines WHERE id = %s) FOR UPDATE",
                         (order_line_id,))

    def add_shipped(self, order_line_id, quantity):
        return self._add_quantity(order_line_id, "shipped", quantity)

    def add_returned(self, order_line_id, quantity):
        return self._add_quantity(order_line_id, "returned", quantity)

    def _add_quantity(self, order_line_id, kind, quantity):
        """`kind` ("shipped" or "returned") quantity added to the line, and its amount to the sales
        read model, under the order's lock."""
        self._lock_order_of(order_line_id)
        row = self.uow.one(
            f"UPDATE order_lines SET {kind}_quantity = {kind}_quantity + %s WHERE id = %s"
            " RETURNING order_id, unit_price", (quantity, order_line_id))
        if row is not None:
            SalesDaily(self.uow).add_line(row["order_id"], **{kind: quantity * row["unit_price"]})
        return row

    def add_invoiced(self, order_line_id, quantity, amount):
        self._lock_order_of(order_line_id)
        row = self.uow.one(
            "UPDATE order_lines SET invoiced_quantity = invoiced_quantity + %s, invoiced_amount = invoiced_amount + %s"
            " WHERE id = %s RETURNING order_id", (quantity, amount, order_line_id))
        if row is not None:
            SalesDaily(self.uow).add_line(row["order_id"], invoiced=amount)
        return row

    def add_amounts(self, order_id, returned=0, invoiced=0):
        self.uow.execute(
            "UPDATE orders SET returned_amount = returned_amount + %s, invoiced_amount = invoiced_amount + %s,"
            " updated_at = now() WHERE id = %s", (returned, invoiced, order_id))

    def set_once(self, order_id, column, value):
        """Fill a timestamp that is written once (the first shipment, ...)."""
        self.uow.execute(f"UPDATE orders SET {column} = %s WHERE id = %s AND {column} IS NULL", (value, order_id))

    def to_close(self, paid_before):
        return self.uow.all(
            "UPDATE orders SET status = 'closed', closed_at = now(), updated_at = now()"
            " WHERE id IN (SELECT id FROM orders WHERE status = 'paid' AND paid_at < %s FOR UPDATE SKIP LOCKED)"
            " RETURNING *", (paid_before,))


class Returns(Documents):
    table = "returns"

    def add(self, ret, lines):
        self.uow.execute(
            "INSERT INTO returns (id, number, delivery_id, order_id, customer_id, owner_id, owner_team, region, status,"
            " reason, service_request_id, content_hash, requested_by, created_at, updated_at)"
            " VALUES (%(id)s, %(number)s, %(delivery_id)s, %(order_id)s, %(customer_id)s, %(owner_id)s,"
            " %(owner_team)s, %(region)s, 'requested', %(reason)s, %(service_request_id)s, %(content_hash)s,"
            " %(requested_by)s, %(created_at)s, %(created_at)s)", ret)
        for line in lines:
            self.uow.execute(
                "INSERT INTO return_lines (return_id, delivery_line_id, order_line_id, sku, quantity, unit_price)"
                " VALUES (%s, %s, %s, %s, %s, %s)",
                (ret["id"], line["delivery_line_id"], line["order_line_id"], line["sku"], line["quantity"],
                 line["unit_price"]))

    def lines(self, return_id):
        return self.uow.all("SELECT * FROM return_lines WHERE return_id = %s ORDER BY sku, delivery_line_id",
                            (return_id,))

    def pending_quantities(self, delivery_id):
        """delivery_line_id → quantity in returns requested or approved and not yet received."""
        rows = self.uow.all(
            "SELECT l.delivery_line_id, sum(l.quantity) AS quantity FROM return_lines l JOIN returns r ON r.id = l.return_id"
            " WHERE r.delivery_id = %s AND r.status IN ('requested', 'approved') GROUP BY l.delivery_line_id",
            (delivery_id,))
        return {str(r["delivery_line_id"]): int(r["quantity"]) for r in rows}


class Loans(Documents):
    table = "loans"

    def add(self, loan, lines):
        self.uow.execute(
            "INSERT INTO loans (id, number, customer_id, customer_name, owner_id, owner_team, region, status, due_date,"
            " warehouse, content_hash, requested_by, created_at, updated_at)"
            " VALUES (%(id)s, %(number)s, %(customer_id)s, %(customer_name)s, %(owner_id)s, %(owner_team)s,"
            " %(region)s, 'pending_approval', %(due_date)s, %(warehouse)s, %(content_hash)s, %(requested_by)s,"
            " %(created_at)s, %(created_at)s)", loan)
        for line in lines:
            self.uow.execute("INSERT INTO loan_lines (loan_id, sku, name, quantity) VALUES (%s, %s, %s, %s)",
                             (loan["id"], line["sku"], line.get("name"), line["quantity"]))

    def lines(self, loan_id, lock=False):
        return self.uow.all("SELECT * FROM loan_lines WHERE loan_id = %s ORDER BY sku" + (" FOR UPDATE" if lock else ""),
                            (loan_id,))

    def issued(self, loan_id):
        self.uow.execute("UPDATE loan_lines SET issued_quantity = quantity WHERE loan_id = %s AND issued_quantity = 0",
                         (loan_id,))

    def add_movement(self, loan_id, column, totals):
        for sku, quantity in totals.items():
            self.uow.execute(
                f"UPDATE loan_lines SET {column} = {column} + %s WHERE loan_id = %s AND sku = %s"
                " AND issued_quantity - returned_quantity - converted_quantity >= %s",
                (quantity, loan_id, sku, quantity))
            if self.uow.cursor.rowcount != 1:
                return False
        return True


# -- sagas --------------------------------------------------------------------------------------------
class Sagas:
    def __init__(self, uow):
        self.uow = uow

    def start(self, saga):
        """Insert a running saga; None when another one is already running on the same subject."""
        columns = ("id", "kind", "subject_id", "order_id", "attempt", "state", "step", "stock_status",
                   "credit_status", "stock_reservation_id", "credit_reservation_id", "payload", "lease_until",
                   "started_at", "updated_at")
        row = dict({"state": "running", "step": None, "stock_status": "pending", "credit_status": "pending",
                    "stock_reservation_id": None, "credit_reservation_id": None, "order_id": None, "attempt": 1},
                   **saga)
        row["payload"] = dumps(row.get("payload") or {})
        row["updated_at"] = row["started_at"]
        # no conflict target: the one-active-saga-per-subject index (and the key) make it None
        return self.uow.one(
            f"INSERT INTO sagas ({', '.join(columns)}) VALUES ({', '.join(f'%({c})s' for c in columns)})"
            " ON CONFLICT DO NOTHING RETURNING *", row)

    def get(self, saga_id):
        return self.uow.one("SELECT * FROM sagas WHERE id = %s", (saga_id,))

    def active_for(self, subject_id):
        return self.uow.one("SELECT * FROM sagas WHERE subject_id = %s AND state IN ('running', 'compensating')",
                            (subject_id,))

    def latest(self, order_id, kinds=None):
        sql = "SELECT * FROM sagas WHERE order_id = %s"
        params = [order_id]
        if kinds:
            sql += " AND kind = ANY(%s)"
            params.append(list(kinds))
        return self.uow.one(sql + " ORDER BY started_at DESC, attempt DESC LIMIT 1", params)

    def update(self, saga_id, now, **fields):
        for key in ("payload", "result", "error"):
            if key in fields and fields[key] is not None:
                fields[key] = dumps(fields[key])
        fields["updated_at"] = now
        return self.uow.one(f"UPDATE sagas SET {_set_clause(fields)} WHERE id = %(_id)s RETURNING *",
                            dict(fields, _id=saga_id))

    def set(self, saga, now, **fields):
        """`update` deferred to the next statement or the COMMIT (a round trip less, issue 11):
        returns the saga as it will be stored. For the saga's last write in a unit of work."""
        row = dict(saga, **fields, updated_at=now)
        for key in ("payload", "result", "error"):
            if key in fields and fields[key] is not None:
                fields[key] = dumps(fields[key])
        fields["updated_at"] = now
        self.uow.defer(f"UPDATE sagas SET {_set_clause(fields)} WHERE id = %(_id)s", dict(fields, _id=saga["id"]))
        return row

    def claim_stale(self, as_of, lease_until):
        """Take over one saga whose lease ran out (its driver crashed): replica-safe."""
        return self.uow.one(
            "UPDATE sagas SET lease_until = %s, recoveries = recoveries + 1 WHERE id = ("
            " SELECT id FROM sagas WHERE state IN ('running', 'compensating') AND lease_until < %s"
            " ORDER BY started_at LIMIT 1 FOR UPDATE SKIP LOCKED) RETURNING *",
            (lease_until, as_of))

    def renew(self, saga_id, lease_until, expected_lease):
        """Take the lease of a running saga whose lease ran out (a retried request)."""
        return self.uow.one(
            "UPDATE sagas SET lease_until = %s WHERE id = %s AND lease_until = %s"
            " AND state IN ('running', 'compensating') RETURNING *", (lease_until, saga_id, expected_lease))


# -- deliveries and invoices (from events) -------------------------------------------------------------
class Deliveries:
    def __init__(self, uow):
        self.uow = uow

    def add_line(self, line):
        return self.uow.one(
            "INSERT INTO delivery_lines (delivery_line_id, delivery_id, delivery_number, order_id, order_line_id,"
            " loan_id, sku, quantity, unit_price, vat_rate, issued_at) VALUES (%(delivery_line_id)s, %(delivery_id)s,"
            " %(delivery_number)s, %(order_id)s, %(order_line_id)s, %(loan_id)s, %(sku)s, %(quantity)s,"
            " %(unit_price)s, %(vat_rate)s, %(issued_at)s) ON CONFLICT DO NOTHING RETURNING *", line)

    def lines(self, delivery_id, lock=False):
        return self.uow.all("SELECT * FROM delivery_lines WHERE delivery_id = %s ORDER BY sku, delivery_line_id"
                            + (" FOR UPDATE" if lock else ""), (delivery_id,))

    def add_returned(self, delivery_line_id, quantity):
        return self.uow.one(
            "UPDATE delivery_lines SET returned_quantity = returned_quantity + %s WHERE delivery_line_id = %s"
            " AND returned_quantity + %s <= quantity RETURNING *", (quantity, delivery_line_id, quantity))

    def mark(self, kind, key1, key2):
        """True the first time this movement is applied."""
        return self.uow.one(
            "INSERT INTO applied_movements (kind, key1, key2) VALUES (%s, %s, %s) ON CONFLICT DO NOTHING"
            " RETURNING kind", (kind, key1, str(key2))) is not None


class Invoices:
    def __init__(self, uow):
        self.uow = uow

    def add(self, invoice_id, order_id, number, amount, issued_at):
        self.uow.execute(
            "INSERT INTO order_invoices (invoice_id, order_id, number, amount, issued_at) VALUES (%s, %s, %s, %s, %s)"
            " ON CONFLICT (invoice_id, order_id) DO UPDATE SET amount = order_invoices.amount + EXCLUDED.amount",
            (invoice_id, order_id, number, amount, issued_at))

    def reverse(self, invoice_id, order_id, amount):
        self.uow.execute(
            "UPDATE order_invoices SET reversed_amount = reversed_amount + %s WHERE invoice_id = %s AND order_id = %s",
            (amount, invoice_id, order_id))

    def settle(self, invoice_id, settled_at):
        return self.uow.all(
            "UPDATE order_invoices SET settled_at = %s WHERE invoice_id = %s AND settled_at IS NULL RETURNING order_id",
            (settled_at, invoice_id))

    def known(self, invoice_id):
        return self.uow.scalar("SELECT count(*) FROM order_invoices WHERE invoice_id = %s", (invoice_id,)) > 0

    def settle_later(self, invoice_id, settled_at):
        """invoice.settled came before invoice.issued (each has its own queue): keep the settlement
        until the invoice is heard of (a mark beside the other applied movements)."""
        self.uow.execute(
            "INSERT INTO applied_movements (kind, key1, key2) VALUES ('early_settlement', %s, %s)"
            " ON CONFLICT DO NOTHING", (invoice_id, settled_at.isoformat()))

    def settled_early(self, invoice_id):
        """The settlement kept for an invoice issued just now, if it came first (else None)."""
        value = self.uow.scalar(
            "DELETE FROM applied_movements WHERE kind = 'early_settlement' AND key1 = %s RETURNING key2",
            (invoice_id,))
        return datetime.fromisoformat(value) if value else None


# -- quotas ---------------------------------------------------------------------------------------------
class Quotas:
    def __init__(self, uow):
        self.uow = uow

    def upsert(self, quota):
        return self.uow.one(
            "INSERT INTO quotas (id, period, customer_id, market, sku, quantity, created_by, created_at, updated_at)"
            " VALUES (%(id)s, %(period)s, %(customer_id)s, %(market)s, %(sku)s, %(quantity)s, %(created_by)s,"
            " %(now)s, %(now)s) ON CONFLICT " + ("(period, customer_id, sku) WHERE customer_id IS NOT NULL"
                                                  if quota["customer_id"] else
                                                  "(period, market, sku) WHERE market IS NOT NULL")
            + " DO UPDATE SET quantity = EXCLUDED.quantity, updated_at = EXCLUDED.updated_at"
            " WHERE quotas.consumed <= EXCLUDED.quantity RETURNING *", quota)

    def list(self, filters, after, limit):
        where, params = ["TRUE"], []
        for column in ("period", "customer_id", "market", "sku"):
            if filters.get(column) is not None:
                where.append(f"{column} = %s")
                params.append(filters[column])
        if after is not None:
            where.append("(created_at, id) < (%s::timestamptz, %s::uuid)")
            params += after
        return self.uow.all(f"SELECT * FROM quotas WHERE {' AND '.join(where)} ORDER BY created_at DESC, id DESC"
                            " LIMIT %s", params + [limit + 1])

    def consume(self, order, lines, period):
        """Take the order's quantities from every quota that covers it (the customer's and its
        market's for that month and product), all or none. Returns the first shortfall or None."""
        wanted = {}
        for line in lines:
            wanted[line["sku"]] = wanted.get(line["sku"], 0) + int(line["quantity"])
        covering = {}
        for quota in self.uow.all(  # every product's quotas in one query; taken per product as before
                "SELECT * FROM quotas WHERE period = %s AND sku = ANY(%s) AND (customer_id = %s OR market = %s)"
                " ORDER BY id", (period, sorted(wanted), order["customer_id"], order["region"])):
            covering.setdefault(quota["sku"], []).append(quota)
        for sku, quantity in sorted(wanted.items()):
            for quota in covering.get(sku, []):
                taken = self.uow.one(
                    "UPDATE quotas SET consumed = consumed + %s, updated_at = now() WHERE id = %s"
                    " AND consumed + %s <= quantity RETURNING id", (quantity, quota["id"], quantity))
                if taken is None:
                    fresh = self.uow.one("SELECT quantity, consumed FROM quotas WHERE id = %s", (quota["id"],))
                    return {"quota_id": str(quota["id"]), "period": period, "sku": sku,
                            "customer_id": str(quota["customer_id"]) if quota["customer_id"] else None,
                            "market": quota["market"], "quota": fresh["quantity"], "consumed": fresh["consumed"],
                            "requested": quantity}
                self.uow.execute(
                    "INSERT INTO quota_usage (quota_id, order_id, quantity) VALUES (%s, %s, %s)"
                    " ON CONFLICT (quota_id, order_id) DO UPDATE SET quantity = quota_usage.quantity + EXCLUDED.quantity",
                    (quota["id"], order["id"], quantity))
        return None

    def release(self, order_id, sku=None, quantity=None):
        """Give back what the order took: all of it, or up to `quantity` of one product (a return)."""
        sql = ("SELECT u.quota_id, u.quantity FROM quota_usage u JOIN quotas q ON q.id = u.quota_id"
               " WHERE u.order_id = %s")
        params = [order_id]
        if sku is not None:
            sql += " AND q.sku = %s"
            params.append(sku)
        for usage in self.uow.all(sql + " FOR UPDATE OF u", params):
            give = usage["quantity"] if quantity is None else min(quantity, usage["quantity"])
            if give <= 0:
                continue
            self.uow.execute("UPDATE quota_usage SET quantity = quantity - %s WHERE quota_id = %s AND order_id = %s",
                             (give, usage["quota_id"], order_id))
            self.uow.execute("UPDATE quotas SET consumed = consumed - %s, updated_at = now() WHERE id = %s",
                             (give, usage["quota_id"]))


# -- targets ---------------------------------------------------------------------------------------------
class Targets:
    def __init__(self, uow):
        self.uow = uow

    def get(self, target_id, lock=False):
        return self.uow.one("SELECT * FROM targets WHERE id = %s" + (" FOR UPDATE" if lock else ""), (target_id,))

    def upsert(self, target):
        """A draft target (period × scope × scope_id), or its new amount/parent while still draft;
        None when that target is already published."""
        return self.uow.one(
            "INSERT INTO targets (id, period, period_start, period_end, scope, scope_id, amount, parent_id, owner_team,"
            " created_by, created_at, updated_at) VALUES (%(id)s, %(period)s, %(period_start)s, %(period_end)s,"
            " %(scope)s, %(scope_id)s, %(amount)s, %(parent_id)s, %(owner_team)s, %(created_by)s, %(now)s, %(now)s)"
            " ON CONFLICT (period, scope, scope_id) DO UPDATE SET amount = EXCLUDED.amount,"
            " parent_id = EXCLUDED.parent_id, updated_at = EXCLUDED.updated_at WHERE targets.status = 'draft'"
            " RETURNING *", target)

    def subtree(self, target_id):
        return self.uow.all(
            "WITH RECURSIVE tree AS (SELECT * FROM targets WHERE id = %s UNION ALL"
            " SELECT t.* FROM targets t JOIN tree ON t.parent_id = tree.id) SELECT * FROM tree FOR UPDATE",
            (target_id,))

    def publish(self, ids, now):
        return self.uow.all("UPDATE targets SET status = 'published', published_at = %s, updated_at = %s"
                            " WHERE id = ANY(%s) AND status = 'draft' RETURNING *", (now, now, list(ids)))

    def list(self, filters, after, limit, team=None, rep=None):
        where, params = ["TRUE"], []
        for column in ("period", "scope", "scope_id", "status", "parent_id"):
            if filters.get(column) is not None:
                where.append(f"{column} = %s")
                params.append(filters[column])
        if rep is not None:
            where.append("scope = 'rep' AND scope_id = %s")
            params.append(rep)
        elif team is not None:
            where.append("owner_team = %s")
            params.append(team)
        if after is not None:
            where.append("(created_at, id) < (%s::timestamptz, %s::uuid)")
            params += after
        return self.uow.all(f"SELECT * FROM targets WHERE {' AND '.join(where)} ORDER BY created_at DESC, id DESC"
                            " LIMIT %s", params + [limit + 1])


# -- reports ---------------------------------------------------------------------------------------------
GROUP_COLUMNS = {"rep": "o.owner_id::text", "team": "o.owner_team", "region": "o.region",
                 "customer": "o.customer_id::text", "product": "l.sku"}


class Reports:
    def __init__(self, uow):
        self.uow = uow

    def ordered(self, scope, start, end, group_by):
        key = GROUP_COLUMNS[group_by]
        condition, params = _where_scope(scope, "o")
        if group_by == "product":
            return self.ordered_from_the_lines(scope, start, end, group_by)
        # Issue 11: a key of the order's own (rep, team, region, customer) is summed from the read
        # model kept with the facts (SalesDaily), per Asia/Shanghai day of confirmation — the period's
        # bounds are local midnights — instead of joining every order line of the period
        return self.uow.all(
            f"SELECT {key} AS key, sum(o.orders) AS orders, sum(o.ordered) AS ordered, sum(o.returned) AS returned,"
            " sum(o.shipped) AS shipped, sum(o.invoiced) AS invoiced FROM order_sales_daily o"
            f" WHERE o.day >= %s AND o.day < %s AND {condition} GROUP BY {key} HAVING sum(o.orders) > 0"
            f" ORDER BY {key} NULLS LAST", [_local_day(start), _local_day(end)] + params)

    def ordered_from_the_lines(self, scope, start, end, group_by):
        """The same figures summed from the orders and their lines (what the read model must equal)."""
        key = GROUP_COLUMNS[group_by]
        condition, params = _where_scope(scope, "o")
        return self.uow.all(
            f"SELECT {key} AS key, count(DISTINCT o.id) AS orders, coalesce(sum(l.amount), 0) AS ordered,"
            " coalesce(sum(l.returned_quantity * l.unit_price), 0) AS returned,"
            " coalesce(sum(l.shipped_quantity * l.unit_price), 0) AS shipped,"
            " coalesce(sum(l.invoiced_amount), 0) AS invoiced"
            " FROM orders o JOIN order_lines l ON l.order_id = o.id"
            f" WHERE o.confirmed_at >= %s AND o.confirmed_at < %s AND o.status <> 'cancelled' AND {condition}"
            f" GROUP BY {key} ORDER BY {key} NULLS LAST", [start, end] + params)

    def targets(self, scope_kind, start, end):
        return self.uow.all(
            "SELECT scope_id AS key, sum(amount) AS target FROM targets WHERE status = 'published' AND scope = %s"
            " AND period_start >= %s AND period_end <= %s"
            # only the finest published breakdown counts: a target whose children are published is not added again
            " AND NOT EXISTS (SELECT 1 FROM targets c WHERE c.parent_id = targets.id AND c.status = 'published'"
            " AND c.scope = targets.scope AND c.scope_id = targets.scope_id)"
            " GROUP BY scope_id", (scope_kind, start, end))

    def cycle(self, scope, start, end, group_by):
        key = GROUP_COLUMNS[group_by] if group_by and group_by != "product" else "'all'"
        condition, params = _where_scope(scope, "o")
        return self.uow.all(
            f"SELECT {key} AS key, o.id, o.number, o.customer_id, o.owner_id, o.total, o.created_at, o.confirmed_at,"
            " o.first_shipped_at, o.shipped_at, o.invoiced_at, o.paid_at, o.status FROM orders o"
            f" WHERE o.confirmed_at >= %s AND o.confirmed_at < %s AND o.kind = 'sale' AND {condition}"
            " ORDER BY key, o.confirmed_at", [start, end] + params)


class Gauges:
    """What the business gauges read: sagas in progress and orders waiting on credit hold."""

    def __init__(self, uow):
        self.uow = uow

    def read(self):
        return self.uow.one(
            "SELECT (SELECT count(*) FROM sagas WHERE state IN ('running', 'compensating')) AS sagas,"
            " (SELECT coalesce(extract(epoch FROM now() - min(started_at)), 0) FROM sagas"
            "   WHERE state IN ('running', 'compensating')) AS saga_age,"
            " (SELECT count(*) FROM orders WHERE status = 'credit_hold') AS holds,"
            " (SELECT coalesce(extract(epoch FROM now() - min(credit_held_at)), 0) FROM orders"
            "   WHERE status = 'credit_hold') AS hold_age")


# -- the gateway's aggregated views and the OSB cycle report (issue 8) -------------------------------
OPEN_ORDER_STATUSES = ("draft", "confirming", "credit_hold", "confirmed", "partially_shipped", "shipped", "invoiced")
OSB_STEPS = {  # step -> (from, to): each step ends when the order completes it
    "order_to_ship": ("created_at", "shipped_at"),
    "ship_to_invoice": ("shipped_at", "invoiced_at"),
    "invoice_to_cash": ("invoiced_at", "paid_at"),
    "order_to_cash": ("created_at", "paid_at"),
}


class Views:
    """What the gateway's customer overview and order timeline ask of the order service."""

    def __init__(self, uow):
        self.uow = uow

    def open_orders(self, scope, customer_id, limit):
        """(totals {count, amount}, the newest `limit` open orders) of a customer, within the scope."""
        condition, params = _where_scope(scope)
        where = f"customer_id = %s AND status = ANY(%s) AND {condition}"
        params = [customer_id, list(OPEN_ORDER_STATUSES)] + params
        # one statement: the window's count and sum run over every matching order, before the LIMIT
        rows = self.uow.all(
            "SELECT *, count(*) OVER () AS open_count, coalesce(sum(total) OVER (), 0) AS open_amount"
            f" FROM orders WHERE {where} ORDER BY created_at DESC, id DESC LIMIT %s", params + [limit])
        totals = {"count": rows[0]["open_count"] if rows else 0, "amount": rows[0]["open_amount"] if rows else 0}
        for row in rows:
            del row["open_count"], row["open_amount"]
        return totals, rows

    def returns_of(self, order_id):
        return self.uow.all("SELECT * FROM returns WHERE order_id = %s ORDER BY created_at, id", (order_id,))

    def sagas_of(self, order_id):
        return self.uow.all("SELECT * FROM sagas WHERE order_id = %s ORDER BY started_at, id", (order_id,))

    def cycle_percentiles(self, scope, start, end, group_by):
        """Per group and in total, for the sale orders confirmed in [start, end): how many, and per
        OSB step how many completed it with the median and 90th percentile of its days — computed
        by PostgreSQL (percentile_cont), so the answer is one row per group however many orders."""
        key = GROUP_COLUMNS[group_by] if group_by else "NULL::text"
        condition, params = _where_scope(scope, "o")
        spans = ", ".join(f"extract(epoch FROM o.{end_column} - o.{start_column}) / 86400.0 AS {step}"
                          for step, (start_column, end_column) in OSB_STEPS.items())
        figures = ", ".join(
            f"count({step}) AS {step}_count,"
            f" percentile_cont(0.5) WITHIN GROUP (ORDER BY {step}) AS {step}_median,"
            f" percentile_cont(0.9) WITHIN GROUP (ORDER BY {step}) AS {step}_p90"
            for step in OSB_STEPS)
        grouping = ("GROUPING(key) = 1 AS total", "GROUP BY GROUPING SETS ((key), ()) ORDER BY total, key NULLS LAST") \
            if group_by else ("TRUE AS total", "")
        return self.uow.all(
            f"WITH spans AS (SELECT {key} AS key, {spans} FROM orders o"
            f"   WHERE o.confirmed_at >= %s AND o.confirmed_at < %s AND o.kind = 'sale' AND {condition})"
            f" SELECT {'key' if group_by else 'NULL::text AS key'}, {grouping[0]}, count(*) AS orders, {figures}"
            f" FROM spans {grouping[1]}", [start, end] + params)


class Books:
    """What the invariant checker reads (get_books): every order with its lines, every saga."""

    def __init__(self, uow):
        self.uow = uow

    def read(self):
        return {"orders": self.orders(), "sagas": self.sagas()}

    def orders(self):
        return self.uow.all(
            "SELECT o.id, o.number, o.kind, o.status, o.customer_id, o.total, o.loan_id,"
            "       extract(epoch FROM now() - o.updated_at)::float AS idle_seconds,"
            "       jsonb_agg(jsonb_build_object('id', l.id, 'sku', l.sku, 'quantity', l.quantity,"
            "                 'shipped', l.shipped_quantity, 'returned', l.returned_quantity) ORDER BY l.line_no)"
            "         FILTER (WHERE l.id IS NOT NULL) AS lines"
            "  FROM orders o LEFT JOIN order_lines l ON l.order_id = o.id GROUP BY o.id ORDER BY o.created_at, o.id")

    def sagas(self):
        return self.uow.all(
            "SELECT id, kind, subject_id, order_id, attempt, state, step, stock_status, credit_status,"
            "       stock_reservation_id, credit_reservation_id, recoveries, lease_until < now() AS lease_expired,"
            "       extract(epoch FROM now() - updated_at)::float AS idle_seconds"
            "  FROM sagas ORDER BY started_at, attempt")
