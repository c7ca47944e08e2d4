"""SQL of the aftersales service (no nameko here). Every state change is a guarded UPDATE (the
status it may start from is in the WHERE clause) on a row the command has locked."""
from shared.db import dumps

UNRESOLVED = ("open", "confirmed", "assigned", "in_progress")
_UNRESOLVED_SQL = ", ".join(f"'{status}'" for status in UNRESOLVED)


class Customers:
    """The customer snapshot kept from the customer service's events."""

    def __init__(self, uow):
        self.uow = uow

    def record(self, customer_id, as_of, number=None, name=None, owner_id=None, owner_team=None, region=None):
        """Insert or refresh; the owner moves only when `as_of` is not older than what is kept.
        Returns the snapshot as it now stands (the row stays locked until commit)."""
        return self.uow.one(
            "INSERT INTO customers (customer_id, number, name, owner_id, owner_team, region, owner_as_of)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s)"
            " ON CONFLICT (customer_id) DO UPDATE SET"
            "  number = coalesce(EXCLUDED.number, customers.number),"
            "  name = coalesce(EXCLUDED.name, customers.name),"
            "  region = coalesce(EXCLUDED.region, customers.region),"
            "  owner_id = CASE WHEN EXCLUDED.owner_as_of >= customers.owner_as_of"
            "                  THEN EXCLUDED.owner_id ELSE customers.owner_id END,"
            "  owner_team = CASE WHEN EXCLUDED.owner_as_of >= customers.owner_as_of"
            "                    THEN EXCLUDED.owner_team ELSE customers.owner_team END,"
            "  owner_as_of = greatest(EXCLUDED.owner_as_of, customers.owner_as_of),"
            "  updated_at = now()"
            " RETURNING *",
            (customer_id, number, name, owner_id, owner_team, region, as_of),
        )

    def change_owner(self, customer_id, owner_id, owner_team, as_of):
        """True when this change is the newest known (then the documents' snapshots move too)."""
        row = self.uow.one(
            "INSERT INTO customers (customer_id, owner_id, owner_team, owner_as_of) VALUES (%s, %s, %s, %s)"
            " ON CONFLICT (customer_id) DO UPDATE SET owner_id = EXCLUDED.owner_id,"
            "  owner_team = EXCLUDED.owner_team, owner_as_of = EXCLUDED.owner_as_of, updated_at = now()"
            " WHERE customers.owner_as_of <= EXCLUDED.owner_as_of"
            " RETURNING customer_id",
            (customer_id, owner_id, owner_team, as_of),
        )
        return row is not None

    def update_profile(self, customer_id, changes):
        if not changes:
            return
        sets = ", ".join(f"{column} = %({column})s" for column in changes)
        self.uow.execute(f"UPDATE customers SET {sets}, updated_at = now() WHERE customer_id = %(customer_id)s",
                         dict(changes, customer_id=customer_id))

    def get(self, customer_id):
        return self.uow.one("SELECT * FROM customers WHERE customer_id = %s", (customer_id,))


class Products:
    def __init__(self, uow):
        self.uow = uow

    def record(self, product, as_of):
        """Insert or refresh from a product event; an older event arriving late changes nothing."""
        self.uow.execute(
            "INSERT INTO products (sku, name, warranty_months, active, as_of) VALUES (%s, %s, %s, %s, %s)"
            " ON CONFLICT (sku) DO UPDATE SET name = coalesce(EXCLUDED.name, products.name),"
            "  warranty_months = EXCLUDED.warranty_months, active = coalesce(EXCLUDED.active, products.active),"
            "  as_of = EXCLUDED.as_of, updated_at = now()"
            " WHERE products.as_of <= EXCLUDED.as_of",
            (product["sku"], product.get("name"), product.get("warranty_months"), product.get("active"), as_of),
        )

    def get(self, sku):
        return self.uow.one("SELECT * FROM products WHERE sku = %s", (sku,))


class Deliveries:
    """Delivered products per customer, from goods.issued."""

    def __init__(self, uow):
        self.uow = uow

    def record(self, issued, source_event):
        for line in issued["lines"]:
            self.uow.execute(
                "INSERT INTO delivered_lines (delivery_line_id, delivery_id, delivery_number, order_id, order_number,"
                " loan_id, customer_id, sku, quantity, issued_at, source_event)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (delivery_line_id) DO NOTHING",
                (line["delivery_line_id"], issued["delivery_id"], issued.get("delivery_number"), issued.get("order_id"),
                 issued.get("order_number"), issued.get("loan_id"), issued["customer_id"], line["sku"],
                 line["quantity"], issued["issued_at"], source_event),
            )

    def lines_for(self, customer_id, sku):
        return self.uow.all(
            "SELECT delivery_id, delivery_number, quantity, issued_at FROM delivered_lines"
            " WHERE customer_id = %s AND sku = %s ORDER BY issued_at, delivery_line_id",
            (customer_id, sku),
        )

    def quantity(self, customer_id, delivery_id, sku):
        return self.uow.scalar(
            "SELECT coalesce(sum(quantity), 0) FROM delivered_lines"
            " WHERE customer_id = %s AND delivery_id = %s AND sku = %s",
            (customer_id, delivery_id, sku),
        )


class ServiceRequests:
    def __init__(self, uow):
        self.uow = uow

    def add(self, record):
        columns = ", ".join(record)
        values = ", ".join(f"%({column})s" for column in record)
        return self.uow.one(f"INSERT INTO service_requests ({columns}) VALUES ({values}) RETURNING *", record)

    def get(self, request_id, scope=("TRUE", []), lock=False):
        condition, params = scope
        return self.uow.one(
            f"SELECT * FROM service_requests WHERE id = %s AND {condition}" + (" FOR UPDATE" if lock else ""),
            [request_id] + list(params),
        )

    def update(self, request_id, from_statuses, changes, increment=()):
        """Apply `changes` if the request is still in one of `from_statuses`; the row, else None."""
        sets = [f"{column} = %({column})s" for column in changes]
        sets += [f"{column} = {column} + 1" for column in increment]
        sets += ["updated_at = now()", "version = version + 1"]
        return self.uow.one(
            f"UPDATE service_requests SET {', '.join(sets)}"
            " WHERE id = %(_id)s AND status = ANY(%(_from)s) RETURNING *",
            dict(changes, _id=request_id, _from=list(from_statuses)),
        )

    def resolved_for(self, customer_id, sku, delivery_id):
        """(id, resolved_at) of earlier requests for the same product on the same delivery."""
        rows = self.uow.all(
            "SELECT id, resolved_at FROM service_requests WHERE customer_id = %s AND sku = %s"
            " AND delivery_id IS NOT DISTINCT FROM %s AND resolved_at IS NOT NULL",
            (customer_id, sku, delivery_id),
        )
        return [(row["id"], row["resolved_at"]) for row in rows]

    def not_first_time_fix(self, request_id):
        self.uow.execute("UPDATE service_requests SET first_time_fix = false, updated_at = now()"
                         " WHERE id = %s AND first_time_fix IS DISTINCT FROM false", (request_id,))

    def move_owner(self, customer_id, owner_id, owner_team):
        self.uow.execute(
            "UPDATE service_requests SET owner_id = %s, owner_team = %s, updated_at = now(), version = version + 1"
            " WHERE customer_id = %s AND (owner_id IS DISTINCT FROM %s OR owner_team IS DISTINCT FROM %s)",
            (owner_id, owner_team, customer_id, owner_id, owner_team),
        )

    def move_profile(self, customer_id, changes):
        mapping = {"name": "customer_name", "region": "region"}
        sets = {mapping[key]: value for key, value in changes.items() if key in mapping}
        if not sets:
            return
        assignments = ", ".join(f"{column} = %({column})s" for column in sets)
        self.uow.execute(f"UPDATE service_requests SET {assignments}, updated_at = now()"
                         " WHERE customer_id = %(_customer_id)s", dict(sets, _customer_id=customer_id))

    def escalation_candidates(self, as_of, limit):
        return self.uow.all(
            "SELECT id, number, owner_id, due_at FROM service_requests"
            " WHERE escalated_at IS NULL AND status = ANY(%s) AND due_at < %s ORDER BY due_at, id LIMIT %s",
            (list(UNRESOLVED), as_of, limit),
        )

    def overdue_count(self, as_of):
        """Unresolved requests past their due time (the sales_service_requests_overdue gauge)."""
        return self.uow.scalar(
            # the literal list (not ANY(%s)) lets PostgreSQL use the partial index service_requests_open_due
            f"SELECT count(*) FROM service_requests WHERE status IN ({_UNRESOLVED_SQL}) AND due_at < %s", (as_of,))

    def mark_escalated(self, request_id, as_of, manager_id, manager_name):
        """The guarded escalation: only one replica's update finds it still unescalated."""
        return self.uow.one(
            "UPDATE service_requests SET escalated_at = %s, escalated_to = %s, escalated_to_name = %s,"
            " updated_at = now(), version = version + 1"
            " WHERE id = %s AND escalated_at IS NULL AND status = ANY(%s) AND due_at < %s RETURNING *",
            (as_of, manager_id, manager_name, request_id, list(UNRESOLVED), as_of),
        )

    def list(self, *, scope, now, after=None, limit=50, status=None, overdue=None, active=None, escalated=None,
             customer_id=None, type=None, priority=None, engineer=None, sku=None):
        condition, params = scope
        where, params = [condition], list(params)
        for column, value in (("status", status), ("customer_id", customer_id), ("type", type),
                              ("priority", priority), ("engineer_id", engineer), ("sku", sku)):
            if value is not None:
                where.append(f"{column} = %s")
                params.append(value)
        overdue_sql = "(status = ANY(%s) AND due_at < %s)"
        if overdue is not None:
            where.append(overdue_sql if overdue else f"NOT {overdue_sql}")
            params += [list(UNRESOLVED), now]
        if active is not None:
            where.append("status = ANY(%s)" if active else "NOT status = ANY(%s)")
            params.append(list(UNRESOLVED))
        if escalated is not None:
            where.append("escalated_at IS NOT NULL" if escalated else "escalated_at IS NULL")
        if after is not None:
            where.append("(opened_at, id) < (%s::timestamptz, %s::uuid)")
            params += after
        return self.uow.all(
            f"SELECT * FROM service_requests WHERE {' AND '.join(where)} ORDER BY opened_at DESC, id DESC LIMIT %s",
            params + [limit + 1],
        )


class Steps:
    """FR-106: the append-only trail of every request."""

    def __init__(self, uow):
        self.uow = uow

    def add(self, request_id, step, actor, from_status, to_status, note=None, details=None, at=None):
        self.uow.execute(
            "INSERT INTO service_request_steps (service_request_id, step, from_status, to_status, actor_id,"
            " actor_role, actor_username, note, details, occurred_at)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, coalesce(%s, now()))",
            (request_id, step, from_status, to_status, actor["staff_id"], actor["role"], actor.get("username"),
             note, dumps(details or {}), at),
        )

    def of(self, request_id):
        return self.uow.all(
            "SELECT step, from_status, to_status, actor_id::text, actor_role, actor_username, note, details,"
            " occurred_at FROM service_request_steps WHERE service_request_id = %s ORDER BY id",
            (request_id,),
        )


class Repairs:
    def __init__(self, uow):
        self.uow = uow

    def get(self, request_id, lock=False):
        return self.uow.one("SELECT * FROM repairs WHERE service_request_id = %s" + (" FOR UPDATE" if lock else ""),
                            (request_id,))

    def of(self, request_ids):
        rows = self.uow.all("SELECT * FROM repairs WHERE service_request_id = ANY(%s)", (list(request_ids),))
        return {row["service_request_id"]: row for row in rows}

    def add(self, request_id, in_warranty, warranty_until, received_at):
        return self.uow.one(
            "INSERT INTO repairs (service_request_id, status, in_warranty, warranty_until, received_at)"
            " VALUES (%s, 'received', %s, %s, %s) RETURNING *",
            (request_id, in_warranty, warranty_until, received_at),
        )

    def advance(self, request_id, from_status, changes):
        sets = ", ".join(f"{column} = %({column})s" for column in changes)
        return self.uow.one(
            f"UPDATE repairs SET {sets}, updated_at = now(), version = version + 1"
            " WHERE service_request_id = %(_id)s AND status = %(_from)s RETURNING *",
            dict(changes, _id=request_id, _from=from_status),
        )


class PendingActions:
    """Resolution actions for other departments: claimed with a lease (no transaction is held
    while the other service is called), then marked done, retried later, or failed."""

    def __init__(self, uow):
        self.uow = uow

    def add(self, action):
        return self.uow.one(
            "INSERT INTO pending_actions (id, service_request_id, kind, target, request_id, payload, next_attempt_at)"
            " VALUES (%(id)s, %(service_request_id)s, %(kind)s, %(target)s, %(request_id)s, %(payload)s,"
            " %(next_attempt_at)s) RETURNING *",
            dict(action, payload=dumps(action["payload"])),
        )

    def of(self, request_ids):
        rows = self.uow.all("SELECT * FROM pending_actions WHERE service_request_id = ANY(%s)", (list(request_ids),))
        return {row["service_request_id"]: row for row in rows}

    def claim(self, as_of, lease_until, limit, action_id=None):
        """Take up to `limit` due actions (or the one named) for this worker until `lease_until`."""
        only = "AND id = %(id)s" if action_id is not None else ""
        return self.uow.all(
            "UPDATE pending_actions SET lease_until = %(lease)s, attempts = attempts + 1 WHERE id IN ("
            " SELECT id FROM pending_actions WHERE status = 'pending' AND next_attempt_at <= %(as_of)s"
            f" AND (lease_until IS NULL OR lease_until <= %(as_of)s) {only}"
            " ORDER BY next_attempt_at, id LIMIT %(limit)s FOR UPDATE SKIP LOCKED) RETURNING *",
            {"lease": lease_until, "as_of": as_of, "limit": limit, "id": action_id},
        )

    def done(self, action_id, result):
        return self.uow.one(
            "UPDATE pending_actions SET status = 'done', result = %s, done_at = now(), lease_until = NULL,"
            " last_error = NULL WHERE id = %s AND status = 'pending' RETURNING *",
            (dumps(result), action_id),
        )

    def retry_later(self, action_id, error, next_attempt_at):
        return self.uow.one(
            "UPDATE pending_actions SET lease_until = NULL, last_error = %s, next_attempt_at = %s"
            " WHERE id = %s AND status = 'pending' RETURNING *",
            (error, next_attempt_at, action_id),
        )

    def failed(self, action_id, error):
        return self.uow.one(
            "UPDATE pending_actions SET status = 'failed', lease_until = NULL, last_error = %s"
            " WHERE id = %s AND status = 'pending' RETURNING *",
            (error, action_id),
        )


GROUP_KEYS = {  # report group -> (key expression, label expression)
    "rep": ("owner_id::text", "NULL"),
    "team": ("owner_team", "NULL"),
    "region": ("region", "NULL"),
    "product": ("sku", "max(product_name)"),
    "customer": ("customer_id::text", "max(customer_name)"),
    "engineer": ("engineer_id::text", "max(engineer_name)"),
}


class Reports:
    def __init__(self, uow):
        self.uow = uow

    def service(self, *, scope, start, end, now, group_by):
        """Per group: opened, resolved (within SLA, first-time fixes), escalated, still overdue,
        feedback count and rating total, each counted by the date of its own event in [start, end)."""
        key, label = GROUP_KEYS[group_by]
        condition, params = scope
        # the row-level condition comes with positional parameters: bind them here (quoted by
        # psycopg2), so the rest of the query can use named ones
        scoped = self.uow.cursor.mogrify(condition, params).decode().replace("%", "%%")
        within = "{0} >= %(start)s AND {0} < %(end)s"
        sql = f"""
            SELECT {key} AS key, {label} AS label,
              count(*) FILTER (WHERE {within.format('opened_at')}) AS opened,
              count(*) FILTER (WHERE {within.format('resolved_at')}) AS resolved,
              count(*) FILTER (WHERE {within.format('resolved_at')} AND sla_met) AS resolved_within_sla,
              count(*) FILTER (WHERE {within.format('resolved_at')} AND first_time_fix) AS first_time_fixed,
              count(*) FILTER (WHERE {within.format('escalated_at')}) AS escalated,
              count(*) FILTER (WHERE status = ANY(%(unresolved)s) AND opened_at < %(end)s
                               AND due_at < least(%(end)s, %(now)s)) AS overdue_open,
              count(*) FILTER (WHERE {within.format('feedback_at')}) AS feedback_count,
              coalesce(sum(rating) FILTER (WHERE {within.format('feedback_at')}), 0) AS rating_total
            FROM service_requests
            WHERE {scoped} AND opened_at < %(end)s
            GROUP BY 1
            ORDER BY 1 NULLS LAST
        """
        values = {"start": start, "end": end, "now": now, "unresolved": list(UNRESOLVED)}
        rows = self.uow.all(sql, values)
        figures = ("opened", "resolved", "escalated", "overdue_open", "feedback_count")
        return [row for row in rows if any(row[name] for name in figures)]
