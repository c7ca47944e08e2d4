"""SQL of the billing service (no nameko here). Every change of an amount is a guarded update or
made under a row lock taken first; nothing is read, changed in Python and written back blind."""
import uuid
from decimal import Decimal
from datetime import datetime, timezone

from shared.db import dumps

SNAPSHOT = ("owner_id", "owner_team", "region")


class Customers:
    """Billing's copy of the customers it bills (customer.created / updated / owner_changed)."""

    def __init__(self, uow):
        self.uow = uow

    def get(self, customer_id):
        return self.uow.one("SELECT * FROM customers WHERE customer_id = %s", (customer_id,))

    def upsert(self, customer_id, fields, occurred_at):
        """Apply an event's profile fields unless a newer event's were applied already, and its
        owner fields unless a newer owner change was. Returns the fields applied."""
        self.uow.execute("INSERT INTO customers (customer_id) VALUES (%s) ON CONFLICT DO NOTHING", (customer_id,))
        row = self.uow.one("SELECT snapshot_at, owner_at FROM customers WHERE customer_id = %s FOR UPDATE",
                           (customer_id,))
        profile = {k: v for k, v in fields.items() if k not in ("owner_id", "owner_team")}
        owner = {k: v for k, v in fields.items() if k in ("owner_id", "owner_team")}
        applied, sets = {}, []
        if profile and row["snapshot_at"] <= occurred_at:
            applied.update(profile)
            sets.append("snapshot_at = %(at)s")
        if owner and row["owner_at"] <= occurred_at:
            applied.update(owner)
            sets.append("owner_at = %(at)s")
        if not applied:
            return {}
        values = {k: dumps(v) if k == "bank_account" and v is not None else v for k, v in applied.items()}
        sets += [f"{k} = %({k})s" for k in values]
        self.uow.execute(f"UPDATE customers SET {', '.join(sets)}, updated_at = now() WHERE customer_id = %(id)s",
                         dict(values, at=occurred_at, id=customer_id))
        return applied

    def move_snapshot(self, customer_id, changes):
        """Move owner/team/region on every document of the customer."""
        changes = {k: v for k, v in changes.items() if k in SNAPSHOT}
        if not changes:
            return
        sets = ", ".join(f"{k} = %({k})s" for k in changes)
        for table in ("delivery_lines", "invoices", "receipts", "statement_confirmations"):
            self.uow.execute(f"UPDATE {table} SET {sets} WHERE customer_id = %(customer_id)s",
                             dict(changes, customer_id=customer_id))


class CreditAccounts:
    def __init__(self, uow):
        self.uow = uow

    def open(self, customer_id, limit, currency, reason, source_event=None):
        """Open the account once; a second call for the same customer changes nothing."""
        row = self.uow.one(
            "INSERT INTO credit_accounts (customer_id, credit_limit, currency) VALUES (%s, %s, %s)"
            " ON CONFLICT (customer_id) DO NOTHING RETURNING customer_id",
            (customer_id, limit, currency),
        )
        if row is not None:
            self.add_history(customer_id, None, limit, reason, kind="opened", source_event=source_event)
        return row is not None

    def get(self, customer_id):
        return self.uow.one("SELECT * FROM credit_accounts WHERE customer_id = %s", (customer_id,))

    def lock(self, customer_id):
        """The account row, locked until commit: every credit decision for the customer queues here."""
        return self.uow.one("SELECT * FROM credit_accounts WHERE customer_id = %s FOR UPDATE", (customer_id,))

    def exposure(self, customer_id):
        """(open receivables, credit reserved and not yet invoiced)."""
        return self.uow.one(
            "SELECT (SELECT COALESCE(sum(total - reversed_amount - allocated_amount), 0) FROM invoices"
            "         WHERE customer_id = %(c)s AND status = 'issued' AND NOT red) AS receivable,"
            "       (SELECT COALESCE(sum(remaining), 0) FROM credit_reservations"
            "         WHERE customer_id = %(c)s AND status = 'reserved') AS reserved",
            {"c": customer_id},
        )

    def summary(self, customer_id):
        """One statement for the credit figures of the customer overview: whether billing knows the
        customer and its owner (for row-level access), the account (None when there is none) and
        the exposure — the open receivables and the credit reserved and not yet invoiced."""
        return self.uow.one(
            "SELECT c.customer_id IS NOT NULL AS known, c.owner_id, c.owner_team,"
            "       a.customer_id IS NOT NULL AS has_account, a.credit_limit, a.currency, a.grade,"
            "       (SELECT COALESCE(sum(total - reversed_amount - allocated_amount), 0) FROM invoices"
            "         WHERE customer_id = k.id AND status = 'issued' AND NOT red) AS receivable,"
            "       (SELECT COALESCE(sum(remaining), 0) FROM credit_reservations"
            "         WHERE customer_id = k.id AND status = 'reserved') AS reserved"
            " FROM (SELECT %s::uuid AS id) k"
            " LEFT JOIN customers c ON c.customer_id = k.id"
            " LEFT JOIN credit_accounts a ON a.customer_id = k.id",
            (customer_id,),
        )

    def history(self, customer_id):
        return self.uow.all(
            "SELECT kind, old_limit, new_limit, grade, quarter, reason, changed_by, inputs, changed_at"
            " FROM credit_limit_history WHERE customer_id = %s ORDER BY id", (customer_id,),
        )

    def add_history(self, customer_id, old, new, reason, kind, changed_by=None, quarter=None, grade=None,
                    inputs=None, source_event=None):
        self.uow.execute(
            "INSERT INTO credit_limit_history (customer_id, old_limit, new_limit, reason, changed_by, source_event,"
            " kind, quarter, grade, inputs) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            (customer_id, old, new, reason, changed_by, source_event, kind, quarter, grade,
             dumps(inputs) if inputs is not None else None),
        )

    def set_manual(self, customer_id, limit, quarter):
        return self.uow.one(
            "UPDATE credit_accounts SET manual_limit = %s, manual_quarter = %s, credit_limit = %s,"
            " updated_at = now(), version = version + 1 WHERE customer_id = %s RETURNING *",
            (limit, quarter, limit, customer_id),
        )

    def set_formula(self, customer_id, formula_limit, quarter, run_id, inputs, grade, limit):
        return self.uow.one(
            "UPDATE credit_accounts SET formula_limit = %s, formula_quarter = %s, formula_run_id = %s,"
            " formula_inputs = %s, grade = %s, credit_limit = %s, updated_at = now(), version = version + 1"
            " WHERE customer_id = %s RETURNING *",
            (formula_limit, quarter, run_id, dumps(inputs), grade, limit, customer_id),
        )

    def claim_batch(self, quarter, run_id, forced, size):
        """Accounts this run still has to compute, locked; other replicas skip them (SKIP LOCKED)."""
        condition = ("(formula_quarter IS NULL OR formula_quarter < %(q)s OR"
                     " (formula_quarter = %(q)s AND formula_run_id IS DISTINCT FROM %(run)s))") if forced else \
            "(formula_quarter IS NULL OR formula_quarter < %(q)s)"
        return self.uow.all(
            f"SELECT * FROM credit_accounts WHERE {condition} ORDER BY customer_id LIMIT %(n)s"
            " FOR UPDATE SKIP LOCKED",
            {"q": quarter, "run": run_id, "n": size},
        )

    def remaining(self, quarter, run_id, forced):
        condition = ("(formula_quarter IS NULL OR formula_quarter < %(q)s OR"
                     " (formula_quarter = %(q)s AND formula_run_id IS DISTINCT FROM %(run)s))") if forced else \
            "(formula_quarter IS NULL OR formula_quarter < %(q)s)"
        return self.uow.scalar(f"SELECT count(*) FROM credit_accounts WHERE {condition}",
                               {"q": quarter, "run": run_id})

    def inputs(self, customer_ids, t, w1, w0, t_date, w1_date):
        """The formula's inputs per customer for a quarter starting at instant `t` (dates: local)."""
        found = {cid: {"sales_12m": 0, "sales_prior_12m": 0, "late_weighted": 0, "late_weight": 0}
                 for cid in customer_ids}
        params = {"ids": list(customer_ids), "t": t, "w1": w1, "w0": w0, "t_date": t_date, "w1_date": w1_date}
        for row in self.uow.all(
            "SELECT customer_id,"
            " COALESCE(sum(CASE WHEN red THEN -total ELSE total END)"
            "          FILTER (WHERE issued_at >= %(w1)s AND issued_at < %(t)s), 0) AS s12,"
            " COALESCE(sum(CASE WHEN red THEN -total ELSE total END)"
            "          FILTER (WHERE issued_at >= %(w0)s AND issued_at < %(w1)s), 0) AS s0"
            " FROM invoices WHERE status = 'issued' AND customer_id = ANY(%(ids)s::uuid[]) AND issued_at < %(t)s"
            " GROUP BY customer_id", params,
        ):
            found[row["customer_id"]].update(sales_12m=row["s12"], sales_prior_12m=row["s0"])
        # payments of the 12 months: each allocation weighs its amount, late by receipt date − due date
        for row in self.uow.all(
            "SELECT a.customer_id, sum(a.amount * GREATEST(r.received_at - i.due_date, 0)) AS weighted,"
            " sum(a.amount) AS weight"
            " FROM allocations a JOIN receipts r ON r.id = a.receipt_id JOIN invoices i ON i.id = a.invoice_id"
            " WHERE a.customer_id = ANY(%(ids)s::uuid[]) AND a.allocated_at < %(t)s"
            " AND (a.reversed_at IS NULL OR a.reversed_at >= %(t)s)"
            " AND r.received_at >= %(w1_date)s AND r.received_at < %(t_date)s GROUP BY a.customer_id", params,
        ):
            found[row["customer_id"]]["late_weighted"] += row["weighted"]
            found[row["customer_id"]]["late_weight"] += row["weight"]
        # what is still unpaid and overdue when the quarter starts weighs in too
        for row in Ledger(self.uow).open_items(t, customer_ids=customer_ids):
            if row["due_date"] < t_date and row["open"] > 0:
                found[row["customer_id"]]["late_weighted"] += row["open"] * (t_date - row["due_date"]).days
                found[row["customer_id"]]["late_weight"] += row["open"]
        return found


class RecomputeRuns:
    def __init__(self, uow):
        self.uow = uow

    def scheduled(self, quarter):
        """The quarterly job's run for `quarter`, made by whichever replica comes first."""
        self.uow.execute(
            "INSERT INTO credit_recompute_runs (id, quarter, trigger) VALUES (%s, %s, 'scheduled')"
            " ON CONFLICT (quarter) WHERE trigger = 'scheduled' DO NOTHING", (uuid.uuid4(), quarter),
        )
        return self.uow.one("SELECT * FROM credit_recompute_runs WHERE quarter = %s AND trigger = 'scheduled'",
                            (quarter,))

    def manual(self, run_id, quarter, requested_by):
        self.uow.execute(
            "INSERT INTO credit_recompute_runs (id, quarter, trigger, requested_by) VALUES (%s, %s, 'manual', %s)"
            " ON CONFLICT DO NOTHING", (run_id, quarter, requested_by),
        )
        return self.uow.one("SELECT * FROM credit_recompute_runs WHERE id = %s", (run_id,))

    def count(self, run_id, accounts, changed):
        self.uow.execute("UPDATE credit_recompute_runs SET accounts = accounts + %s, changed = changed + %s"
                         " WHERE id = %s", (accounts, changed, run_id))

    def finish(self, run_id):
        return self.uow.one("UPDATE credit_recompute_runs SET finished_at = COALESCE(finished_at, now())"
                            " WHERE id = %s RETURNING *", (run_id,))


class Reservations:
    def __init__(self, uow):
        self.uow = uow

    def get(self, reservation_id):
        return self.uow.one("SELECT * FROM credit_reservations WHERE reservation_id = %s", (reservation_id,))

    def active_for_order(self, order_id):
        return self.uow.one("SELECT * FROM credit_reservations WHERE order_id = %s AND status = 'reserved'",
                            (order_id,))

    def by_id_or_active(self, reservation_id, order_id):
        """(the reservation under this id, the order's active one), each None if there is none: `get`
        and `active_for_order` in one query."""
        found, active = None, None
        for row in self.uow.all("SELECT * FROM credit_reservations WHERE reservation_id = %s"
                                " OR (order_id = %s AND status = 'reserved')", (reservation_id, order_id)):
            if row["reservation_id"] == reservation_id:
                found = row
            if row["order_id"] == order_id and row["status"] == "reserved":
                active = row
        return found, active

    def active_for_customer(self, customer_id):
        return self.uow.all("SELECT * FROM credit_reservations WHERE customer_id = %s AND status = 'reserved'"
                            " ORDER BY created_at, reservation_id", (customer_id,))

    def add(self, r):
        return self.uow.one(
            "INSERT INTO credit_reservations (reservation_id, order_id, customer_id, amount, remaining, status,"
            " limit_at, exposure_at, override_by, override_role, override_username, override_reason)"
            " VALUES (%(reservation_id)s, %(order_id)s, %(customer_id)s, %(amount)s, %(amount)s, %(status)s,"
            " %(limit_at)s, %(exposure_at)s, %(override_by)s, %(override_role)s, %(override_username)s,"
            " %(override_reason)s) RETURNING *", r,
        )

    def release(self, order_id, reason):
        return self.uow.all(
            "UPDATE credit_reservations SET status = 'released', released_at = now(), release_reason = %s,"
            " updated_at = now() WHERE order_id = %s AND status = 'reserved' RETURNING *", (reason, order_id),
        )

    def consume(self, order_id, amount):
        """An invoice for the order turns that much of its reservation into a receivable."""
        return self.uow.one(
            "UPDATE credit_reservations SET remaining = GREATEST(remaining - %(a)s, 0),"
            " status = CASE WHEN remaining - %(a)s <= 0 THEN 'consumed' ELSE status END, updated_at = now()"
            " WHERE order_id = %(o)s AND status = 'reserved' RETURNING *", {"a": amount, "o": order_id},
        )

    def hold(self, reservation_id, order_id, customer_id, requested, limit, exposure):
        """Record a refusal once per reservation id; True the first time."""
        return self.uow.one(
            "INSERT INTO credit_holds (reservation_id, order_id, customer_id, requested, credit_limit, exposure)"
            " VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING RETURNING reservation_id",
            (reservation_id, order_id, customer_id, requested, limit, exposure),
        ) is not None


class DeliveryLines:
    def __init__(self, uow):
        self.uow = uow

    def add(self, line):
        return self.uow.one(
            "INSERT INTO delivery_lines (delivery_line_id, delivery_id, delivery_number, line_no, order_id, order_number,"
            " order_line_id, loan_id, customer_id, owner_id, owner_team, region, warehouse, sku, quantity,"
            " unit_price, vat_rate, issued_at, source_event) VALUES (%(delivery_line_id)s, %(delivery_id)s,"
            " %(delivery_number)s, %(line_no)s, %(order_id)s, %(order_number)s, %(order_line_id)s, %(loan_id)s, %(customer_id)s,"
            " %(owner_id)s, %(owner_team)s, %(region)s, %(warehouse)s, %(sku)s, %(quantity)s, %(unit_price)s,"
            " %(vat_rate)s, %(issued_at)s, %(source_event)s) ON CONFLICT DO NOTHING RETURNING delivery_line_id",
            line,
        ) is not None

    def of_deliveries(self, delivery_ids):
        """The deliveries' lines, locked (in a fixed order, so two invoices never deadlock)."""
        return self.uow.all(
            "SELECT * FROM delivery_lines WHERE delivery_id = ANY(%s::uuid[]) ORDER BY delivery_line_id FOR UPDATE",
            (list(delivery_ids),),
        )

    def lock(self, delivery_line_id):
        return self.uow.one("SELECT * FROM delivery_lines WHERE delivery_line_id = %s FOR UPDATE",
                            (delivery_line_id,))

    def claim(self, delivery_line_id, quantity):
        return self.uow.one(
            "UPDATE delivery_lines SET claimed_quantity = claimed_quantity + %(q)s WHERE delivery_line_id = %(id)s"
            " AND quantity - returned_quantity - (claimed_quantity - reversed_quantity) >= %(q)s"
            " RETURNING delivery_line_id", {"q": quantity, "id": delivery_line_id},
        ) is not None

    def unclaim(self, delivery_line_id, quantity):
        self.uow.execute("UPDATE delivery_lines SET claimed_quantity = claimed_quantity - %s"
                         " WHERE delivery_line_id = %s", (quantity, delivery_line_id))

    def add_reversed(self, delivery_line_id, quantity):
        self.uow.execute("UPDATE delivery_lines SET reversed_quantity = reversed_quantity + %s"
                         " WHERE delivery_line_id = %s", (quantity, delivery_line_id))

    def add_returned(self, delivery_line_id, quantity):
        return self.uow.one(
            "UPDATE delivery_lines SET returned_quantity = returned_quantity + %(q)s WHERE delivery_line_id = %(id)s"
            " AND returned_quantity + %(q)s <= quantity RETURNING *", {"q": quantity, "id": delivery_line_id},
        )


INVOICE_FILTERS = {
    "customer_id": "i.customer_id = %s",
    "status": "i.status = %s",
    "kind": "i.kind = %s",
    "red": "i.red = %s",
    "reverses": "i.reverses = %s",
    "order_id": "EXISTS (SELECT 1 FROM invoice_lines l WHERE l.invoice_id = i.id AND l.order_id = %s)",
    "delivery_id": "EXISTS (SELECT 1 FROM invoice_lines l WHERE l.invoice_id = i.id AND l.delivery_id = %s)",
    "issued_from": "i.issued_at >= %s",
    "issued_to": "i.issued_at < %s",
}


class Invoices:
    def __init__(self, uow):
        self.uow = uow

    def add(self, invoice, lines):
        self.uow.execute(
            "INSERT INTO invoices (id, number, kind, red, reverses, status, customer_id, owner_id, owner_team, region,"
            " buyer_name, buyer_tax_id, buyer_bank, total, net_total, tax_total, due_date, reason, return_id,"
            " remarks, created_by, created_at, issued_by, issued_at) VALUES (%(id)s, %(number)s, %(kind)s, %(red)s,"
            " %(reverses)s, %(status)s, %(customer_id)s, %(owner_id)s, %(owner_team)s, %(region)s, %(buyer_name)s,"
            " %(buyer_tax_id)s, %(buyer_bank)s, %(total)s, %(net_total)s, %(tax_total)s, %(due_date)s, %(reason)s,"
            " %(return_id)s, %(remarks)s, %(created_by)s, %(created_at)s, %(issued_by)s, %(issued_at)s)",
            dict(invoice, buyer_bank=dumps(invoice["buyer_bank"]) if invoice.get("buyer_bank") else None),
        )
        for number, line in enumerate(lines, start=1):
            self.uow.execute(
                "INSERT INTO invoice_lines (id, invoice_id, line_no, delivery_line_id, delivery_id, delivery_number,"
                " order_id, order_number, order_line_id, sku, quantity, unit_price, vat_rate, amount, net, tax,"
                " reverses_line) VALUES (%(id)s, %(invoice_id)s, %(line_no)s, %(delivery_line_id)s, %(delivery_id)s,"
                " %(delivery_number)s, %(order_id)s, %(order_number)s, %(order_line_id)s, %(sku)s, %(quantity)s,"
                " %(unit_price)s, %(vat_rate)s, %(amount)s, %(net)s, %(tax)s, %(reverses_line)s)",
                dict(line, id=line.get("id") or uuid.uuid4(), invoice_id=invoice["id"], line_no=number,
                     reverses_line=line.get("reverses_line")),
            )

    def get(self, invoice_id, lock=False):
        return self.uow.one("SELECT * FROM invoices WHERE id = %s" + (" FOR UPDATE" if lock else ""), (invoice_id,))

    def lock_many(self, invoice_ids):
        return self.uow.all("SELECT * FROM invoices WHERE id = ANY(%s::uuid[]) ORDER BY id FOR UPDATE",
                            (list(invoice_ids),))

    def lines(self, invoice_id):
        return self.uow.all("SELECT * FROM invoice_lines WHERE invoice_id = %s ORDER BY line_no", (invoice_id,))

    def lines_of(self, invoice_ids):
        found = {}
        for line in self.uow.all("SELECT * FROM invoice_lines WHERE invoice_id = ANY(%s::uuid[])"
                                 " ORDER BY invoice_id, line_no", (list(invoice_ids),)):
            found.setdefault(line["invoice_id"], []).append(line)
        return found

    def reds_of(self, invoice_id):
        return self.uow.all("SELECT id, number, total, issued_at FROM invoices WHERE reverses = %s"
                            " ORDER BY issued_at, id", (invoice_id,))

    def list(self, scope_sql, scope_params, filters, after, limit):
        where, params = [scope_sql], list(scope_params)
        for name, value in filters.items():
            if value is not None:
                where.append(INVOICE_FILTERS[name])
                params.append(value)
        if after is not None:
            where.append("(i.created_at, i.id) < (%s::timestamptz, %s::uuid)")
            params += after
        return self.uow.all(
            "SELECT i.* FROM invoices i WHERE " + " AND ".join(where)
            + " ORDER BY i.created_at DESC, i.id DESC LIMIT %s", params + [limit + 1],
        )

    def move(self, invoice_id, source, target, actor_column=None, actor_id=None, extra=None):
        """Guarded state change: only from `source`; None when the invoice is not there any more."""
        sets = ["status = %(target)s", "updated_at = now()", "version = version + 1"]
        params = {"id": invoice_id, "source": source, "target": target, "actor": actor_id}
        if actor_column:
            sets += [f"{actor_column}_by = %(actor)s", f"{actor_column}_at = now()"]
        for key, value in (extra or {}).items():
            sets.append(f"{key} = %({key})s")
            params[key] = value
        return self.uow.one(
            f"UPDATE invoices SET {', '.join(sets)} WHERE id = %(id)s AND status = %(source)s RETURNING *", params,
        )

    def issued_claims(self, delivery_line_id):
        """Blue invoice lines on an issued invoice for this delivery line, newest invoice first."""
        return self.uow.all(
            "SELECT l.* FROM invoice_lines l JOIN invoices i ON i.id = l.invoice_id"
            " WHERE l.delivery_line_id = %s AND NOT i.red AND i.status = 'issued'"
            " ORDER BY i.issued_at DESC, i.id DESC FOR UPDATE OF l", (delivery_line_id,),
        )

    def pending_claims(self, delivery_line_id):
        """Drafts and certified invoices holding units of this delivery line."""
        return self.uow.all(
            "SELECT DISTINCT i.id, i.status FROM invoice_lines l JOIN invoices i ON i.id = l.invoice_id"
            " WHERE l.delivery_line_id = %s AND NOT i.red AND i.status IN ('draft', 'certified')",
            (delivery_line_id,),
        )

    def lock_line(self, line_id):
        return self.uow.one("SELECT * FROM invoice_lines WHERE id = %s FOR UPDATE", (line_id,))

    def reverse_line(self, line_id, red):
        return self.uow.one(
            "UPDATE invoice_lines SET reversed_quantity = reversed_quantity + %(quantity)s,"
            " reversed_amount = reversed_amount + %(amount)s, reversed_net = reversed_net + %(net)s,"
            " reversed_tax = reversed_tax + %(tax)s WHERE id = %(id)s"
            " AND reversed_quantity + %(quantity)s <= quantity AND reversed_amount + %(amount)s <= amount"
            " RETURNING id", dict(red, id=line_id),
        ) is not None

    def change_amounts(self, invoice_id, reversed_delta, allocated_delta):
        """Guarded: an invoice's open amount never goes below zero, nor an amount below zero."""
        return self.uow.one(
            "UPDATE invoices SET reversed_amount = reversed_amount + %(r)s, allocated_amount = allocated_amount + %(a)s,"
            " updated_at = now(), version = version + 1 WHERE id = %(id)s AND status = 'issued' AND NOT red"
            " AND reversed_amount + %(r)s >= 0 AND allocated_amount + %(a)s >= 0"
            " AND reversed_amount + %(r)s + allocated_amount + %(a)s <= total RETURNING *",
            {"id": invoice_id, "r": reversed_delta, "a": allocated_delta},
        )

    def set_settled(self, invoice_id, settled_at):
        self.uow.execute("UPDATE invoices SET settled_at = %s WHERE id = %s", (settled_at, invoice_id))


class Receipts:
    def __init__(self, uow):
        self.uow = uow

    def add(self, r):
        return self.uow.one(
            "INSERT INTO receipts (id, number, customer_id, owner_id, owner_team, region, amount, currency, method,"
            " reference, received_at, note, status, registered_by, registered_at) VALUES (%(id)s, %(number)s,"
            " %(customer_id)s, %(owner_id)s, %(owner_team)s, %(region)s, %(amount)s, %(currency)s, %(method)s,"
            " %(reference)s, %(received_at)s, %(note)s, 'registered', %(registered_by)s, %(registered_at)s)"
            " RETURNING *", r,
        )

    def get(self, receipt_id, lock=False):
        return self.uow.one("SELECT * FROM receipts WHERE id = %s" + (" FOR UPDATE" if lock else ""), (receipt_id,))

    def list(self, scope_sql, scope_params, filters, after, limit):
        where, params = [scope_sql], list(scope_params)
        for name, column in (("customer_id", "customer_id"), ("status", "status")):
            if filters.get(name) is not None:
                where.append(f"{column} = %s")
                params.append(filters[name])
        if filters.get("unallocated"):
            where.append("status = 'confirmed' AND allocated_amount < amount")
        if after is not None:
            where.append("(registered_at, id) < (%s::timestamptz, %s::uuid)")
            params += after
        return self.uow.all(
            "SELECT * FROM receipts WHERE " + " AND ".join(where) + " ORDER BY registered_at DESC, id DESC LIMIT %s",
            params + [limit + 1],
        )

    def confirm(self, receipt_id, actor_id, at):
        return self.uow.one(
            "UPDATE receipts SET status = 'confirmed', confirmed_by = %s, confirmed_at = %s, updated_at = now(),"
            " version = version + 1 WHERE id = %s AND status = 'registered' RETURNING *", (actor_id, at, receipt_id),
        )

    def change_allocated(self, receipt_id, delta):
        """Guarded: never more allocated than the receipt, never below zero."""
        return self.uow.one(
            "UPDATE receipts SET allocated_amount = allocated_amount + %(d)s, updated_at = now(), version = version + 1"
            " WHERE id = %(id)s AND status = 'confirmed' AND allocated_amount + %(d)s BETWEEN 0 AND amount"
            " RETURNING *", {"id": receipt_id, "d": delta},
        )


class Allocations:
    def __init__(self, uow):
        self.uow = uow

    def add(self, allocation):
        return self.uow.one(
            "INSERT INTO allocations (id, receipt_id, invoice_id, customer_id, amount, allocated_by, allocated_at, note)"
            " VALUES (%(id)s, %(receipt_id)s, %(invoice_id)s, %(customer_id)s, %(amount)s, %(allocated_by)s,"
            " %(allocated_at)s, %(note)s) RETURNING *", allocation,
        )

    def get(self, allocation_id):
        return self.uow.one("SELECT * FROM allocations WHERE id = %s", (allocation_id,))

    def of_receipt(self, receipt_id):
        return self.uow.all(
            "SELECT a.*, i.number AS invoice_number FROM allocations a JOIN invoices i ON i.id = a.invoice_id"
            " WHERE a.receipt_id = %s ORDER BY a.seq", (receipt_id,))

    def of_invoice(self, invoice_id):
        return self.uow.all(
            "SELECT a.*, r.number AS receipt_number FROM allocations a JOIN receipts r ON r.id = a.receipt_id"
            " WHERE a.invoice_id = %s ORDER BY a.seq", (invoice_id,))

    def active_for_invoice(self, invoice_id):
        """Newest first: a red invoice's excess takes back the latest payments first."""
        return self.uow.all(
            "SELECT * FROM allocations WHERE invoice_id = %s AND reversed_at IS NULL"
            " ORDER BY seq DESC FOR UPDATE", (invoice_id,))

    def reverse(self, allocation_id, actor_id, reason, at):
        return self.uow.one(
            "UPDATE allocations SET reversed_by = %s, reversed_at = %s, reversal_reason = %s"
            " WHERE id = %s AND reversed_at IS NULL RETURNING *", (actor_id, at, reason, allocation_id),
        )


class Ledger:
    """The customer's account (view customer_ledger), open items, statements and reports."""

    def __init__(self, uow):
        self.uow = uow

    def balance_before(self, customer_id, instant):
        return self.uow.scalar(
            "SELECT COALESCE(sum(amount), 0) FROM customer_ledger WHERE customer_id = %s AND posted_at < %s",
            (customer_id, instant))

    def entries(self, customer_id, start, end):
        return self.uow.all(
            "SELECT posted_at, kind, document_id, number, amount FROM customer_ledger"
            " WHERE customer_id = %s AND posted_at >= %s AND posted_at < %s ORDER BY posted_at, number",
            (customer_id, start, end))

    def unallocated_at(self, customer_id, instant):
        return self.uow.scalar(
            "SELECT (SELECT COALESCE(sum(amount), 0) FROM receipts WHERE customer_id = %(c)s AND status = 'confirmed'"
            "         AND confirmed_at < %(t)s)"
            "     - (SELECT COALESCE(sum(amount), 0) FROM allocations WHERE customer_id = %(c)s"
            "         AND allocated_at < %(t)s AND (reversed_at IS NULL OR reversed_at >= %(t)s))",
            {"c": customer_id, "t": instant})

    def open_items(self, instant, customer_ids=None, scope_sql="TRUE", scope_params=(), customer_id=None):
        """Blue invoices issued before `instant` with what was open on them at that instant (reds
        issued and allocations standing then). `scope_sql` filters on the columns i.owner_id and
        i.owner_team."""
        sql, params = self.open_items_sql(instant, customer_ids, scope_sql, scope_params, customer_id)
        return self.uow.all(sql + " ORDER BY customer_id, due_date, id", params)

    @staticmethod
    def open_items_sql(instant, customer_ids=None, scope_sql="TRUE", scope_params=(), customer_id=None):
        """(sql, params) of the open items at `instant` (columns id, number, customer_id, owner_id,
        owner_team, region, due_date, total, open), for open_items and the aggregates over them.

        Issue 11, the per-invoice open balance: an invoice's running totals (reversed_amount,
        allocated_amount) and its settled_at are kept by the same guarded UPDATEs as its reds and
        allocations, each stamped with the same `now` (operations.raise_red, allocate_receipt,
        reverse_allocation, _settlement). So:
        - as of now or later, every red and allocation so far counts, and the open amount *is*
          total − reversed − allocated: read off the invoices open now (index invoices_open_now),
          nothing summed;
        - as of a past instant T, an invoice settled now with settled_at < T has been settled ever
          since (a reopening clears settled_at), so it was settled at T too: only the invoices open
          now and those settled at or after T (index invoices_settled_at) can have been open at T;
          and what was open on those at T is what is open now plus the changes since T (reds and
          allocations made since, allocations reversed since), read through the indexes on those
          times — never the whole history of allocations."""
        where, params = [scope_sql], list(scope_params)
        customers, customer_params = ["TRUE"], []  # only those customers' changes (past instants)
        if customer_ids is not None:
            where.append("i.customer_id = ANY(%s::uuid[])")
            params.append(list(customer_ids))
            customers.append("{t}.customer_id = ANY(%s::uuid[])")
            customer_params.append(list(customer_ids))
        if customer_id is not None:
            where.append("i.customer_id = %s")
            params.append(customer_id)
            customers.append("{t}.customer_id = %s")
            customer_params.append(customer_id)
        of_customers = " AND ".join(customers)
        columns = "i.id, i.number, i.customer_id, i.owner_id, i.owner_team, i.region, i.due_date, i.total"
        base = "i.status = 'issued' AND NOT i.red AND i.issued_at < %s AND " + " AND ".join(where)
        if instant >= datetime.now(timezone.utc):
            return (f"SELECT {columns}, i.total - i.reversed_amount - i.allocated_amount AS open FROM invoices i"
                    f" WHERE {base} AND i.allocated_amount + i.reversed_amount < i.total", [instant] + params)
        # open then = open now + what changed it since: reds issued and allocations made at or after
        # the instant (and standing now) are given back, allocations standing then but reversed since
        # are taken off again — only the events since the instant are read, not the whole history
        return (
            f"SELECT {columns}, i.total - i.reversed_amount - i.allocated_amount + COALESCE(d.since, 0) AS open"
            f" FROM (SELECT {columns}, i.reversed_amount, i.allocated_amount FROM invoices i"
            f"       WHERE {base} AND i.allocated_amount + i.reversed_amount < i.total"
            "       UNION ALL"
            f"       SELECT {columns}, i.reversed_amount, i.allocated_amount FROM invoices i"
            f"       WHERE {base} AND i.allocated_amount + i.reversed_amount >= i.total AND i.settled_at >= %s) i"
            " LEFT JOIN (SELECT invoice_id, sum(amount) AS since FROM ("
            "   SELECT a.invoice_id, a.amount FROM allocations a WHERE a.allocated_at >= %s AND a.reversed_at IS NULL"
            f"            AND {of_customers.format(t='a')}"
            "   UNION ALL SELECT a.invoice_id, -a.amount FROM allocations a"
            f"            WHERE a.reversed_at >= %s AND a.allocated_at < %s AND {of_customers.format(t='a')}"
            "   UNION ALL SELECT r.reverses, r.total FROM invoices r WHERE r.red AND r.status = 'issued'"
            f"            AND r.issued_at >= %s AND {of_customers.format(t='r')}) changes GROUP BY invoice_id) d"
            " ON d.invoice_id = i.id",
            [instant] + params + [instant] + params + [instant] + [instant] + customer_params + [instant, instant]
            + customer_params + [instant] + customer_params)

    def aging(self, instant, as_of, scope_sql="TRUE", scope_params=(), customer_id=None, limit=None, after=None):
        """The receivables aging at `instant` (the end of the day `as_of`), computed in SQL over the
        open items (FR-91): (totals over all of them, how many customers have one, the page of
        customers by total descending — customer_id ascending among equals — after the keyset
        `after` = (total, customer_id)). Each customer's owner, team and region are those of its
        open item due first, as before."""
        items, params = self.open_items_sql(instant, None, scope_sql, scope_params, customer_id)
        days = "(%s::date - due_date)"
        buckets = (f"COALESCE(sum(open) FILTER (WHERE {days} <= 0), 0) AS current,"
                   f" COALESCE(sum(open) FILTER (WHERE {days} BETWEEN 1 AND 30), 0) AS days_1_30,"
                   f" COALESCE(sum(open) FILTER (WHERE {days} BETWEEN 31 AND 60), 0) AS days_31_60,"
                   f" COALESCE(sum(open) FILTER (WHERE {days} BETWEEN 61 AND 90), 0) AS days_61_90,"
                   f" COALESCE(sum(open) FILTER (WHERE {days} > 90), 0) AS days_over_90,"
                   " COALESCE(sum(open), 0) AS total")
        bucket_params = [as_of] * 5
        per_customer = (f"WITH items AS ({items}), open_items AS (SELECT * FROM items WHERE open > 0),"
                        f" per_customer AS (SELECT customer_id, {buckets}, min(due_date) AS oldest_due_date"
                        "  FROM open_items GROUP BY customer_id)")
        page, page_params = "", []
        if after is not None:
            page = " WHERE (p.total < %s OR (p.total = %s AND p.customer_id > %s::uuid))"
            page_params = [after[0], after[0], after[1]]
        sums = ", ".join(f"sum({name}) AS {name}" for name in ("current", "days_1_30", "days_31_60", "days_61_90", "days_over_90",
                                                     "total"))
        # one statement (the open items are found once): the totals row first, then the page
        rows = self.uow.all(
            f"{per_customer}, page AS (SELECT p.* FROM per_customer p{page}"
            " ORDER BY p.total DESC, p.customer_id" + (" LIMIT %s" if limit is not None else "") + ")"
            f" SELECT 0 AS part, NULL::uuid AS customer_id, {sums}, NULL::date AS oldest_due_date, NULL::uuid AS owner_id,"
            " NULL::text AS owner_team, NULL::text AS region, NULL::text AS name, count(*) AS customers"
            " FROM per_customer"
            " UNION ALL SELECT 1, p.customer_id, p.current, p.days_1_30, p.days_31_60, p.days_61_90, p.days_over_90,"
            " p.total, p.oldest_due_date, NULL, NULL, NULL, c.name, NULL"
            " FROM page p LEFT JOIN customers c ON c.customer_id = p.customer_id"
            " ORDER BY part, total DESC, customer_id",
            params + bucket_params + page_params + ([limit] if limit is not None else []))
        totals, rows = rows[0], rows[1:]
        # each page customer's owner, team and region: those of its open item due first
        first = {}
        for item in self.open_items(instant, customer_ids=[row["customer_id"] for row in rows], scope_sql=scope_sql,
                                    scope_params=scope_params):
            if item["open"] > 0:
                first.setdefault(item["customer_id"], item)
        for row in rows:
            item = first.get(row["customer_id"], {})
            row.update(owner_id=item.get("owner_id"), owner_team=item.get("owner_team"), region=item.get("region"))
        zero = {k: totals[k] or Decimal(0) for k in ("current", "days_1_30", "days_31_60", "days_61_90", "days_over_90", "total")}
        totals = dict(zero, customers=totals["customers"])
        return totals, rows

    def sales_between(self, start, end, scope_sql="TRUE", scope_params=()):
        """Invoiced (blue − red) in [start, end), visible rows only."""
        return self.uow.scalar(
            "SELECT COALESCE(sum(CASE WHEN red THEN -total ELSE total END), 0) FROM invoices"
            f" WHERE status = 'issued' AND issued_at >= %s AND issued_at < %s AND {scope_sql}",
            [start, end] + list(scope_params))

    def campaign(self, month, half_start, end, scope_sql, scope_params):
        return self.uow.all(
            "SELECT l.customer_id, c.name, c.number, c.owner_id, c.owner_team, c.region,"
            " COALESCE(sum(l.amount), 0) AS closing,"
            " count(*) FILTER (WHERE l.posted_at >= %s) AS movements, sc.status, sc.recorded_at"
            " FROM customer_ledger l LEFT JOIN customers c ON c.customer_id = l.customer_id"
            " LEFT JOIN statement_confirmations sc ON sc.customer_id = l.customer_id AND sc.month = %s"
            f" WHERE l.posted_at < %s AND {scope_sql}"
            " GROUP BY l.customer_id, c.name, c.number, c.owner_id, c.owner_team, c.region, sc.status, sc.recorded_at"
            " HAVING COALESCE(sum(l.amount), 0) <> 0 OR count(*) FILTER (WHERE l.posted_at >= %s) > 0"
            " ORDER BY c.owner_id NULLS LAST, c.name, l.customer_id",
            [half_start, month, end] + list(scope_params) + [half_start])

    def confirmation(self, customer_id, month):
        return self.uow.one("SELECT * FROM statement_confirmations WHERE customer_id = %s AND month = %s FOR UPDATE",
                            (customer_id, month))

    def record_confirmation(self, row):
        self.uow.execute(
            "INSERT INTO statement_confirmations (customer_id, month, status, opening, closing, contact, note,"
            " recorded_by, recorded_at, owner_id, owner_team, region) VALUES (%(customer_id)s, %(month)s, %(status)s,"
            " %(opening)s, %(closing)s, %(contact)s, %(note)s, %(recorded_by)s, %(recorded_at)s, %(owner_id)s,"
            " %(owner_team)s, %(region)s) ON CONFLICT (customer_id, month) DO UPDATE SET status = EXCLUDED.status,"
            " opening = EXCLUDED.opening, closing = EXCLUDED.closing, contact = EXCLUDED.contact, note = EXCLUDED.note,"
            " recorded_by = EXCLUDED.recorded_by, recorded_at = EXCLUDED.recorded_at,"
            " version = statement_confirmations.version + 1", row)
        self.uow.execute(
            "INSERT INTO statement_confirmation_history (customer_id, month, status, contact, note, recorded_by,"
            " recorded_at) VALUES (%(customer_id)s, %(month)s, %(status)s, %(contact)s, %(note)s, %(recorded_by)s,"
            " %(recorded_at)s)", row)

    def confirmation_history(self, customer_id, month):
        return self.uow.all("SELECT status, contact, note, recorded_by, recorded_at FROM statement_confirmation_history"
                            " WHERE customer_id = %s AND month = %s ORDER BY id", (customer_id, month))


GROUP_COLUMNS = {"rep": "i.owner_id", "team": "i.owner_team", "region": "i.region", "customer": "i.customer_id",
                 "product": "l.sku"}


class Reports:
    def __init__(self, uow):
        self.uow = uow

    def billing(self, group_by, start, end, scope_sql, scope_params):
        """Per group: invoiced (blue − red issued in [start, end)), collected (allocations made in the
        period and still standing at its end), receivable (open at `end`). By product the invoice
        figures come from its lines; collections and receivables are shared out by line amount."""
        key = GROUP_COLUMNS[group_by]
        scope = list(scope_params)
        if group_by == "product":
            invoiced = self.uow.all(
                f"SELECT {key} AS key, sum(CASE WHEN i.red THEN -l.amount ELSE l.amount END) AS amount"
                " FROM invoices i JOIN invoice_lines l ON l.invoice_id = i.id"
                f" WHERE i.status = 'issued' AND i.issued_at >= %s AND i.issued_at < %s AND {scope_sql}"
                " GROUP BY 1", [start, end] + scope)
            collected = self.uow.all(
                f"SELECT {key} AS key, sum(a.amount * l.amount / NULLIF(i.total, 0)) AS amount"
                " FROM allocations a JOIN invoices i ON i.id = a.invoice_id JOIN invoice_lines l ON l.invoice_id = i.id"
                " WHERE a.allocated_at >= %s AND a.allocated_at < %s AND (a.reversed_at IS NULL OR a.reversed_at >= %s)"
                f" AND {scope_sql} GROUP BY 1", [start, end, end] + scope)
        else:
            invoiced = self.uow.all(
                f"SELECT {key} AS key, sum(CASE WHEN i.red THEN -i.total ELSE i.total END) AS amount FROM invoices i"
                f" WHERE i.status = 'issued' AND i.issued_at >= %s AND i.issued_at < %s AND {scope_sql} GROUP BY 1",
                [start, end] + scope)
            collected = self.uow.all(
                f"SELECT {key} AS key, sum(a.amount) AS amount FROM allocations a JOIN invoices i ON i.id = a.invoice_id"
                " WHERE a.allocated_at >= %s AND a.allocated_at < %s AND (a.reversed_at IS NULL OR a.reversed_at >= %s)"
                f" AND {scope_sql} GROUP BY 1", [start, end, end] + scope)
        return invoiced, collected

    def receivable_by(self, group_by, instant, scope_sql, scope_params):
        """Open amounts at `instant` (the period's end) per group, summed by PostgreSQL (issue 11:
        not tens of thousands of open items fetched to be added up here); by product shared out by
        line amount, in Python as before (Decimal division)."""
        items, params = Ledger.open_items_sql(instant, scope_sql=scope_sql, scope_params=scope_params)
        if group_by != "product":
            column = {"rep": "owner_id", "team": "owner_team", "region": "region", "customer": "customer_id"}[group_by]
            return [(row["key"], row["amount"]) for row in self.uow.all(
                f"SELECT {column} AS key, sum(open) AS amount FROM ({items}) o GROUP BY 1", params)]
        opens = {item["id"]: item["open"] for item in self.uow.all(
            f"SELECT id, open FROM ({items}) o WHERE open > 0", params)}
        if not opens:
            return []
        rows = self.uow.all("SELECT l.invoice_id, l.sku, l.amount, i.total FROM invoice_lines l"
                            " JOIN invoices i ON i.id = l.invoice_id WHERE l.invoice_id = ANY(%s::uuid[])", (list(opens),))
        result = {}
        for row in rows:
            if row["total"]:
                result[row["sku"]] = result.get(row["sku"], 0) + opens[row["invoice_id"]] * row["amount"] / row["total"]
        return list(result.items())


class OrderDocuments:
    """Billing's documents of one order, for the gateway's order timeline (issue 8): the invoices
    (blue and red) with a line of the order, and the receipts allocated to them, within the
    caller's scope (`scope_sql` over the documents' customer snapshot)."""

    def __init__(self, uow):
        self.uow = uow

    def invoices(self, order_id, scope_sql, scope_params):
        return self.uow.all(
            "SELECT i.* FROM invoices i WHERE i.id IN (SELECT l.invoice_id FROM invoice_lines l WHERE l.order_id = %s)"
            f" AND {scope_sql} ORDER BY i.created_at, i.id", [order_id] + list(scope_params))

    def receipts(self, invoice_ids, scope_sql, scope_params):
        if not invoice_ids:  # nothing allocated to no invoice: no statement
            return []
        return self.uow.all(
            "SELECT r.* FROM receipts r WHERE r.id IN (SELECT a.receipt_id FROM allocations a"
            f" WHERE a.invoice_id = ANY(%s)) AND {scope_sql} ORDER BY r.registered_at, r.id",
            [list(invoice_ids)] + list(scope_params))


class Books:
    """What the invariant checker reads (get_books): credit reservations, invoices and their
    lines, delivery lines, allocations, and each customer's balance as this service computes it."""

    def __init__(self, uow):
        self.uow = uow

    def read(self):
        return {"credit_reservations": self.credit_reservations(), "invoices": self.invoices(),
                "delivery_lines": self.delivery_lines(), "allocations": self.allocations(),
                "balances": self.balances()}

    def credit_reservations(self):
        return self.uow.all(
            "SELECT reservation_id, order_id, customer_id, status, amount, remaining FROM credit_reservations"
            " ORDER BY created_at, reservation_id")

    def invoices(self):
        return self.uow.all(
            "SELECT i.id, i.number, i.red, i.reverses, i.status, i.customer_id, i.total, i.reversed_amount,"
            "       i.allocated_amount,"
            "       jsonb_agg(jsonb_build_object('id', l.id, 'delivery_line_id', l.delivery_line_id,"
            "                 'quantity', l.quantity, 'reversed_quantity', l.reversed_quantity,"
            "                 'reverses_line', l.reverses_line, 'amount', l.amount::text) ORDER BY l.line_no)"
            "         FILTER (WHERE l.id IS NOT NULL) AS lines"
            "  FROM invoices i LEFT JOIN invoice_lines l ON l.invoice_id = i.id GROUP BY i.id"
            " ORDER BY i.created_at, i.id")

    def delivery_lines(self):
        return self.uow.all(
            "SELECT delivery_line_id, delivery_id, delivery_number, order_id, quantity, claimed_quantity,"
            "       reversed_quantity, returned_quantity FROM delivery_lines ORDER BY created_at, delivery_line_id")

    def allocations(self):
        return self.uow.all(
            "SELECT id, receipt_id, invoice_id, customer_id, amount, reversed_at IS NOT NULL AS reversed"
            "  FROM allocations ORDER BY seq")

    def balances(self):
        """Per customer: open receivables as credit control counts them (exposure) and the
        statement's balance (the customer ledger)."""
        return self.uow.all(
            "SELECT a.customer_id,"
            "       (SELECT COALESCE(sum(total - reversed_amount - allocated_amount), 0) FROM invoices"
            "         WHERE customer_id = a.customer_id AND status = 'issued' AND NOT red) AS open_receivables,"
            "       (SELECT COALESCE(sum(amount), 0) FROM customer_ledger"
            "         WHERE customer_id = a.customer_id) AS ledger_balance"
            "  FROM credit_accounts a ORDER BY a.customer_id")
