"""SQL of the customer service (no nameko here). Every repository works inside a unit of work
(shared.db.UnitOfWork). Changes are guarded updates (`WHERE id = … AND version = …` or a state
guard): a row that changed since it was read matches nothing and the caller answers
CONCURRENT_UPDATE, never overwrites. Row-level access is a `Visibility` ANDed into each query."""
import uuid
from dataclasses import dataclass
from decimal import Decimal

import psycopg2

from shared.access import Scope
from shared.db import dumps

OPEN_STAGES = ("identified", "qualified", "proposal", "negotiation")


@dataclass(frozen=True)
class Visibility:
    """Which rows an actor sees: their scope (shared.access), plus the unowned pool when `pool`."""

    scope: Scope
    pool: bool = False

    def sql(self, owner_column, team_column=None):
        condition, params = self.scope.sql(owner_column, team_column)
        if self.pool and not self.scope.unrestricted:
            condition = f"({condition} OR {owner_column} IS NULL)"
        return condition, list(params)


EVERYTHING = Visibility(Scope())


def _keyset(where, params, after, columns="c.created_at, c.id"):
    if after is not None:
        where.append(f"({columns}) < (%s::timestamptz, %s::uuid)")
        params += list(after)


def _like(text):
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def _set_clause(changes, allowed, json_columns=()):
    sets, params = [], []
    for column, value in changes.items():
        if column not in allowed:
            raise KeyError(column)
        sets.append(f"{column} = %s")
        params.append(dumps(value) if column in json_columns and value is not None else value)
    return sets, params


# -- the org chart ---------------------------------------------------------------------------------
STAFF_COLUMNS = ("display_name", "role", "manager_id", "team", "region", "territory", "capacity",
                 "discount_authority", "price_authority", "active")


class StaffRepository:
    def __init__(self, uow):
        self.uow = uow

    def lock_org_chart(self):
        """Manager changes one at a time, so two concurrent ones cannot make a cycle together."""
        self.uow.execute("SELECT pg_advisory_xact_lock(hashtextextended('customer.org_chart', 0))")

    def add(self, staff):
        """Insert; None when the username or id is taken; LookupError naming a missing reference."""
        staff_id = staff.get("id") or uuid.uuid4()
        try:
            with self.uow.savepoint("staff_insert"):
                return self.uow.one(
                    "INSERT INTO staff (id, username, display_name, role, manager_id, team, region, territory,"
                    " capacity, discount_authority, price_authority)"
                    " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, coalesce(%s, 1), %s, %s) RETURNING *",
                    (staff_id, staff["username"], staff["display_name"], staff["role"], staff.get("manager_id"),
                     staff.get("team"), staff.get("region"), staff.get("territory"), staff.get("capacity"),
                     staff.get("discount_authority"), staff.get("price_authority")),
                )
        except psycopg2.errors.UniqueViolation:
            return None
        except psycopg2.errors.ForeignKeyViolation as exc:
            raise LookupError("territory" if "territory" in str(exc) else "manager_id") from None

    def get(self, staff_id):
        return self.uow.one("SELECT * FROM staff WHERE id = %s", (staff_id,))

    def update(self, staff_id, changes):
        """Apply `changes`; returns the new row with `previous_team`, or None when no such staff."""
        sets, params = _set_clause(changes, STAFF_COLUMNS)
        try:
            with self.uow.savepoint("staff_update"):
                return self.uow.one(
                    f"UPDATE staff s SET {', '.join(sets)}, version = s.version + 1, updated_at = now()"
                    " FROM (SELECT id, team AS previous_team FROM staff WHERE id = %s FOR UPDATE) old"
                    " WHERE s.id = old.id RETURNING s.*, old.previous_team",
                    params + [staff_id],
                )
        except psycopg2.errors.ForeignKeyViolation as exc:
            raise LookupError("territory" if "territory" in str(exc) else "manager_id") from None

    def chain(self, staff_id, depth=20):
        """The managers of `staff_id`, nearest first (cycle-safe, at most `depth` levels)."""
        return self.uow.all(
            "WITH RECURSIVE up (id, level, path) AS ("
            "  SELECT manager_id, 1, ARRAY[id] FROM staff WHERE id = %s AND manager_id IS NOT NULL"
            "  UNION ALL"
            "  SELECT s.manager_id, up.level + 1, up.path || s.id FROM up JOIN staff s ON s.id = up.id"
            "  WHERE s.manager_id IS NOT NULL AND NOT s.id = ANY(up.path) AND up.level < %s)"
            " SELECT s.*, up.level FROM up JOIN staff s ON s.id = up.id ORDER BY up.level",
            (staff_id, depth),
        )

    def holders(self, role):
        return self.uow.all("SELECT * FROM staff WHERE role = %s AND active ORDER BY created_at, id", (role,))

    def page(self, filters, after, limit):
        where, params = ["TRUE"], []
        for column in ("team", "role", "region", "manager_id", "active"):
            if filters.get(column) is not None:
                where.append(f"{column} = %s")
                params.append(filters[column])
        if after is not None:
            where.append("(created_at, id) > (%s::timestamptz, %s::uuid)")
            params += list(after)
        return self.uow.all(
            f"SELECT * FROM staff WHERE {' AND '.join(where)} ORDER BY created_at, id LIMIT %s", params + [limit + 1])

    def candidates(self, team=None):
        """FR-09: active reps (of `team`) with the number of customers each owns and their capacity."""
        where, params = ["s.active", "s.role = 'sales_rep'"], []
        if team is not None:
            where.append("s.team = %s")
            params.append(team)
        return self.uow.all(
            "SELECT s.id AS staff_id, s.display_name, s.team, s.capacity,"
            " (SELECT count(*) FROM customers c WHERE c.owner_id = s.id) AS customers"
            f" FROM staff s WHERE {' AND '.join(where)} ORDER BY s.display_name, s.id", params)


class TerritoryRepository:
    def __init__(self, uow):
        self.uow = uow

    def put(self, territory):
        """Create or replace by code (version + 1); LookupError naming a missing reference."""
        try:
            with self.uow.savepoint("territory_put"):
                return self.uow.one(
                    "INSERT INTO territories (code, name, kind, parent_code, head_id)"
                    " VALUES (%(code)s, %(name)s, %(kind)s, %(parent_code)s, %(head_id)s)"
                    " ON CONFLICT (code) DO UPDATE SET name = EXCLUDED.name, kind = EXCLUDED.kind,"
                    " parent_code = EXCLUDED.parent_code, head_id = EXCLUDED.head_id,"
                    " version = territories.version + 1, updated_at = now() RETURNING *",
                    territory,
                )
        except psycopg2.errors.ForeignKeyViolation as exc:
            raise LookupError("head_id" if "head_id" in str(exc) else "parent_code") from None
        except psycopg2.errors.CheckViolation:
            raise ValueError("parent_code") from None

    def get(self, code):
        return self.uow.one("SELECT * FROM territories WHERE code = %s", (code,))

    def all(self):
        return self.uow.all("SELECT * FROM territories ORDER BY kind DESC, code")


# -- customers -------------------------------------------------------------------------------------
CUSTOMER_COLUMNS = """
    c.id, c.number, c.name, c.tax_id, c.industry, c.size, c.region, c.address, c.source, c.status,
    c.needs, c.problems, c.preferences, c.bank_account, c.owner_id, s.display_name AS owner_name, c.owner_team,
    c.assigned_at, c.contact_due_by, c.contacted_at, c.last_contact_at, c.reclaimable_since, c.first_order_at,
    c.collected_at, c.late_entry, c.created_by, c.created_at, c.updated_at, c.version
"""
CUSTOMER_FROM = "customers c LEFT JOIN staff s ON s.id = c.owner_id"
PROFILE_COLUMNS = ("name", "name_key", "tax_id", "industry", "size", "region", "address", "needs", "problems",
                   "preferences", "bank_account")
POOL = "(c.owner_id IS NULL OR c.reclaimable_since IS NOT NULL)"


class CustomerRepository:
    def __init__(self, uow):
        self.uow = uow

    def add(self, customer):
        """Insert; returns None when the name or tax id is taken (the first record wins)."""
        try:
            with self.uow.savepoint("customer_insert"):
                self.uow.execute(
                    "INSERT INTO customers (id, number, name, name_key, tax_id, industry, size, region, address,"
                    " source, status, needs, problems, preferences, bank_account, owner_id, owner_team, assigned_at,"
                    " contact_due_by, collected_at, late_entry, created_by, created_at, updated_at)"
                    " VALUES (%(id)s, %(number)s, %(name)s, %(name_key)s, %(tax_id)s, %(industry)s, %(size)s,"
                    " %(region)s, %(address)s, %(source)s, %(status)s, %(needs)s, %(problems)s, %(preferences)s,"
                    " %(bank_account)s, %(owner_id)s, %(owner_team)s, %(assigned_at)s, %(contact_due_by)s,"
                    " %(collected_at)s, %(late_entry)s, %(created_by)s, %(created_at)s, %(created_at)s)",
                    dict(customer, bank_account=dumps(customer["bank_account"]) if customer["bank_account"] else None),
                )
        except psycopg2.errors.UniqueViolation:
            return None
        except psycopg2.errors.ForeignKeyViolation:
            raise LookupError("owner_id") from None
        return customer["id"]

    def find_conflict(self, name_key, tax_id, exclude_id=None):
        return self.uow.one(
            f"SELECT {CUSTOMER_COLUMNS} FROM {CUSTOMER_FROM}"
            " WHERE (c.name_key = %s OR (%s::text IS NOT NULL AND c.tax_id = %s)) AND c.id IS DISTINCT FROM %s"
            " ORDER BY c.created_at LIMIT 1",
            (name_key, tax_id, tax_id, exclude_id),
        )

    def get(self, customer_id, visibility=EVERYTHING, contacts=True, lock=False, queue=False):
        """`lock`: FOR UPDATE; `queue`: FOR NO KEY UPDATE, as `lock(customer_id)` takes it."""
        condition, params = visibility.sql("c.owner_id", "c.owner_team")
        row = self.uow.one(
            f"SELECT {CUSTOMER_COLUMNS} FROM {CUSTOMER_FROM} WHERE c.id = %s AND {condition}"
            + (" FOR UPDATE OF c" if lock else " FOR NO KEY UPDATE OF c" if queue else ""),
            [customer_id] + params,
        )
        if row is not None and contacts:
            row["contacts"] = ContactRepository(self.uow).page(customer_id, None, 1000)[:1000]
        return row

    def update_profile(self, customer_id, version, changes):
        """Guarded by version; None when the row changed meanwhile; "duplicate" on a taken name/tax id."""
        sets, params = _set_clause(changes, PROFILE_COLUMNS, json_columns=("bank_account",))
        try:
            with self.uow.savepoint("customer_update"):
                row = self.uow.one(
                    f"UPDATE customers SET {', '.join(sets)}, version = version + 1, updated_at = now()"
                    " WHERE id = %s AND version = %s RETURNING id",
                    params + [customer_id, version],
                )
        except psycopg2.errors.UniqueViolation:
            return "duplicate"
        return row

    def change_owner(self, customer_id, version, owner_id, owner_team, assigned_at, contact_due_by):
        """Guarded by version: the new owner, a new contact deadline, not reclaimable any more."""
        return self.uow.one(
            "UPDATE customers SET owner_id = %s, owner_team = %s, assigned_at = %s, contact_due_by = %s,"
            " contacted_at = NULL, reclaimable_since = NULL, version = version + 1, updated_at = now()"
            " WHERE id = %s AND version = %s RETURNING id",
            (owner_id, owner_team, assigned_at, contact_due_by, customer_id, version),
        )

    def move_team(self, owner_id, team):
        """The owner changed team: their customers' owner_team follows (the row-level scope)."""
        return self.uow.all(
            "UPDATE customers SET owner_team = %s, version = version + 1, updated_at = now()"
            " WHERE owner_id = %s AND owner_team IS DISTINCT FROM %s RETURNING id, number, region, owner_id",
            (team, owner_id, team),
        )

    def set_status(self, customer_id, version, status):
        return self.uow.one(
            "UPDATE customers SET status = %s, version = version + 1, updated_at = now()"
            " WHERE id = %s AND version = %s RETURNING id", (status, customer_id, version))

    def lock(self, customer_id):
        """Queue on the customer row (FOR NO KEY UPDATE: inserts of its contacts, purchases, ...
        elsewhere are not blocked). Taken first by work that will update the row after inserting
        rows that reference it, so two such transactions queue here instead of deadlocking on the
        foreign key's KEY SHARE lock. Returns the id, or None for an unknown customer."""
        return self.uow.scalar("SELECT id FROM customers WHERE id = %s FOR NO KEY UPDATE", (customer_id,))

    def record_first_order(self, customer_id, confirmed_at):
        """Set `signed` on the first confirmed order (FR-13). Returns (previous status, signed now)
        or None when the customer had an order before (or does not exist)."""
        return self.uow.one(
            "UPDATE customers c SET first_order_at = %s, status = 'signed', version = c.version + 1,"
            " updated_at = now()"
            " FROM (SELECT id, status AS previous_status FROM customers WHERE id = %s FOR NO KEY UPDATE) old"
            " WHERE c.id = old.id AND c.first_order_at IS NULL"
            " RETURNING c.id, old.previous_status",
            (confirmed_at, customer_id),
        )

    def mark_contacted(self, customer_id, assigned_at, occurred_at, counts):
        """A contact: the first since the assignment clears the FR-10 clock; guarded on the
        assignment (a reassignment in between matches nothing)."""
        return self.uow.one(
            "UPDATE customers SET"
            " contacted_at = CASE WHEN %(counts)s THEN coalesce(contacted_at, %(at)s) ELSE contacted_at END,"
            " reclaimable_since = CASE WHEN %(counts)s THEN NULL ELSE reclaimable_since END,"
            " last_contact_at = greatest(last_contact_at, %(at)s), version = version + 1, updated_at = now()"
            " WHERE id = %(id)s AND assigned_at IS NOT DISTINCT FROM %(assigned_at)s RETURNING id",
            {"counts": counts, "at": occurred_at, "id": customer_id, "assigned_at": assigned_at},
        )

    def claim_reclaimable(self, as_of, batch):
        """FR-10: mark a batch of owned customers not contacted by their deadline, claiming the
        rows with SKIP LOCKED so replicas running the job at once never take the same one."""
        return self.uow.all(
            "WITH due AS (SELECT id FROM customers WHERE owner_id IS NOT NULL AND contacted_at IS NULL"
            "  AND reclaimable_since IS NULL AND contact_due_by < %(as_of)s"
            "  ORDER BY contact_due_by, id LIMIT %(batch)s FOR UPDATE SKIP LOCKED)"
            " UPDATE customers c SET reclaimable_since = %(as_of)s, version = c.version + 1, updated_at = now()"
            " FROM due WHERE c.id = due.id"
            " RETURNING c.id, c.number, c.owner_id, c.owner_team, c.region, c.assigned_at, c.contact_due_by,"
            " (SELECT manager_id FROM staff WHERE id = c.owner_id) AS manager_id",
            {"as_of": as_of, "batch": batch},
        )

    def list_query(self, visibility, *, owner=None, team=None, status=None, region=None, industry=None,
                   size=None, source=None, late_entry=None, q=None, pool=None, quiet_since=None, after=None,
                   limit=50):
        """(SQL, params) of one keyset page (limit + 1 rows), newest first."""
        condition, params = visibility.sql("c.owner_id", "c.owner_team")
        where = [condition]
        for column, value in (("c.owner_id", owner), ("c.owner_team", team), ("c.status", status),
                              ("c.region", region), ("c.industry", industry), ("c.size", size),
                              ("c.source", source), ("c.late_entry", late_entry)):
            if value is not None:
                where.append(f"{column} = %s")
                params.append(value)
        if pool is not None:
            where.append(POOL)
            if pool == "unassigned":
                where.append("c.owner_id IS NULL")
            elif pool == "reclaimable":
                where.append("c.reclaimable_since IS NOT NULL")
        if quiet_since is not None:  # FR-20, FR-35: no follow-up and no logged visit since then
            where.append("NOT EXISTS (SELECT 1 FROM follow_ups f WHERE f.customer_id = c.id AND f.occurred_at >= %s)"
                         " AND NOT EXISTS (SELECT 1 FROM visits v WHERE v.customer_id = c.id AND v.state = 'logged'"
                         " AND v.visited_at >= %s)")
            params += [quiet_since, quiet_since]
        if q:
            where.append("(c.name || ' ' || c.number || ' ' || coalesce(c.tax_id, '')) ILIKE %s")
            params.append(_like(q))
        _keyset(where, params, after)
        sql = (f"SELECT {CUSTOMER_COLUMNS} FROM {CUSTOMER_FROM} WHERE {' AND '.join(where)}"
               " ORDER BY c.created_at DESC, c.id DESC LIMIT %s")
        return sql, params + [limit + 1]

    def list(self, visibility, **filters):
        sql, params = self.list_query(visibility, **filters)
        return self.uow.all(sql, params)

    def pool_page(self, visibility, limit):
        sql, params = self.list_query(visibility, pool="any", limit=limit)
        return self.uow.all(sql, params)

    def had_logged_visit(self, customer_id):
        return self.uow.scalar(
            "SELECT EXISTS (SELECT 1 FROM visits WHERE customer_id = %s AND state = 'logged')", (customer_id,))


class ContactRepository:
    def __init__(self, uow):
        self.uow = uow

    def add(self, customer_id, contact, created_by=None):
        return self.uow.one(
            "INSERT INTO contacts (id, customer_id, name, position, phone, email, decision_maker, created_by)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s) RETURNING *",
            (uuid.uuid4(), customer_id, contact["name"], contact.get("position"), contact.get("phone"),
             contact.get("email"), contact.get("decision_maker", False), created_by),
        )

    def page(self, customer_id, after, limit):
        where, params = ["customer_id = %s"], [customer_id]
        if after is not None:
            where.append("(created_at, id) > (%s::timestamptz, %s::uuid)")
            params += list(after)
        return self.uow.all(
            "SELECT id, name, position, phone, email, decision_maker, created_at FROM contacts"
            f" WHERE {' AND '.join(where)} ORDER BY created_at, id LIMIT %s", params + [limit + 1])


class LedgerRepository:
    """The append-only ownership ledger (a trigger refuses UPDATE and DELETE)."""

    def __init__(self, uow):
        self.uow = uow

    def record(self, customer_id, kind, owner_id, actor_id, reason, *, owner_team=None, previous_owner_id=None,
               source=None, evidence=None, request_id=None, claimed_name=None, occurred_at=None):
        return self.uow.one(
            "INSERT INTO ownership_events (customer_id, kind, owner_id, owner_team, previous_owner_id, actor_id,"
            " reason, source, evidence, request_id, claimed_name, occurred_at)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, coalesce(%s, now()))"
            " ON CONFLICT (request_id) DO NOTHING RETURNING id",
            (customer_id, kind, owner_id, owner_team, previous_owner_id, actor_id, reason, source, evidence,
             request_id, claimed_name, occurred_at),
        )

    def page(self, customer_id, after, limit):
        where, params = ["e.customer_id = %s"], [customer_id]
        if after is not None:
            where.append("e.id > %s")
            params.append(int(after[0]))
        return self.uow.all(
            "SELECT e.*, o.display_name AS owner_name, a.display_name AS actor_name FROM ownership_events e"
            " LEFT JOIN staff o ON o.id = e.owner_id LEFT JOIN staff a ON a.id = e.actor_id"
            f" WHERE {' AND '.join(where)} ORDER BY e.id LIMIT %s", params + [limit + 1])


class ClassificationRepository:
    def __init__(self, uow):
        self.uow = uow

    def record(self, customer_id, previous_status, status, source, changed_by, reason=None, order_id=None):
        return self.uow.one(
            "INSERT INTO classification_changes (customer_id, previous_status, status, source, order_id, reason,"
            " changed_by) VALUES (%s, %s, %s, %s, %s, %s, %s) RETURNING *",
            (customer_id, previous_status, status, source, order_id, reason, changed_by),
        )

    def page(self, customer_id, after, limit):
        where, params = ["customer_id = %s"], [customer_id]
        if after is not None:
            where.append("id > %s")
            params.append(int(after[0]))
        return self.uow.all(
            f"SELECT * FROM classification_changes WHERE {' AND '.join(where)} ORDER BY id LIMIT %s",
            params + [limit + 1])


class PurchaseRepository:
    def __init__(self, uow):
        self.uow = uow

    def add(self, purchase):
        return self.uow.one(
            "INSERT INTO purchases (order_id, customer_id, order_number, total, confirmed_at, lines)"
            " VALUES (%(order_id)s, %(customer_id)s, %(number)s, %(total)s, %(confirmed_at)s, %(lines)s)"
            " ON CONFLICT (order_id) DO NOTHING RETURNING order_id",
            dict(purchase, lines=dumps(purchase["lines"])),
        )

    def page(self, customer_id, after, limit):
        where, params = ["customer_id = %s"], [customer_id]
        _keyset(where, params, after, columns="confirmed_at, order_id")
        return self.uow.all(
            f"SELECT * FROM purchases WHERE {' AND '.join(where)} ORDER BY confirmed_at DESC, order_id DESC"
            " LIMIT %s", params + [limit + 1])


class FollowUpRepository:
    def __init__(self, uow):
        self.uow = uow

    def add(self, follow_up):
        return self.uow.one(
            "INSERT INTO follow_ups (id, customer_id, channel, occurred_at, summary, next_step, feedback,"
            " recorded_by) VALUES (%(id)s, %(customer_id)s, %(channel)s, %(occurred_at)s, %(summary)s,"
            " %(next_step)s, %(feedback)s, %(recorded_by)s) RETURNING *", follow_up)

    def page(self, customer_id, after, limit):
        where, params = ["customer_id = %s"], [customer_id]
        _keyset(where, params, after, columns="occurred_at, id")
        return self.uow.all(
            f"SELECT * FROM follow_ups WHERE {' AND '.join(where)} ORDER BY occurred_at DESC, id DESC LIMIT %s",
            params + [limit + 1])


class ReviewRepository:
    def __init__(self, uow):
        self.uow = uow

    def add(self, review):
        """Insert a submitted review; None when one is already waiting for a decision."""
        try:
            with self.uow.savepoint("review_insert"):
                return self.uow.one(
                    "INSERT INTO reviews (id, customer_id, business_status, credit_opinion, valid_until, state,"
                    " submitted_by) VALUES (%(id)s, %(customer_id)s, %(business_status)s, %(credit_opinion)s,"
                    " %(valid_until)s, 'submitted', %(submitted_by)s) RETURNING *", review)
        except psycopg2.errors.UniqueViolation:
            return None

    def get(self, review_id, visibility=EVERYTHING):
        condition, params = visibility.sql("c.owner_id", "c.owner_team")
        return self.uow.one(
            "SELECT r.*, c.owner_id, c.owner_team, c.region, c.number AS customer_number FROM reviews r"
            f" JOIN customers c ON c.id = r.customer_id WHERE r.id = %s AND {condition}", [review_id] + params)

    def decide(self, review_id, state, decided_by, comment):
        """Guarded: only a review still waiting is decided."""
        return self.uow.one(
            "UPDATE reviews SET state = %s, decided_by = %s, decided_at = now(), comment = %s,"
            " version = version + 1 WHERE id = %s AND state = 'submitted' RETURNING *",
            (state, decided_by, comment, review_id))

    def approved(self, customer_id):
        return self.uow.all(
            "SELECT * FROM reviews WHERE customer_id = %s AND state = 'approved' ORDER BY valid_until DESC LIMIT 20",
            (customer_id,))

    def page(self, customer_id, after, limit):
        where, params = ["customer_id = %s"], [customer_id]
        _keyset(where, params, after, columns="submitted_at, id")
        return self.uow.all(
            f"SELECT * FROM reviews WHERE {' AND '.join(where)} ORDER BY submitted_at DESC, id DESC LIMIT %s",
            params + [limit + 1])


# -- visits ----------------------------------------------------------------------------------------
VISIT_COLUMNS = "v.*, c.name AS customer_name, c.region AS customer_region, s.display_name AS rep_name"
VISIT_FROM = "visits v JOIN customers c ON c.id = v.customer_id JOIN staff s ON s.id = v.rep_id"
VISIT_SETTABLE = ("approved_by", "approved_at", "decision_comment", "checked_out_at", "checked_in_at",
                  "expected_return_at", "delay_reason", "return_overdue_at", "log_due_by", "log_overdue_at",
                  "visited_at", "logged_at", "late", "summary", "next_step")


class VisitRepository:
    def __init__(self, uow):
        self.uow = uow

    def add(self, visit):
        self.uow.execute(
            "INSERT INTO visits (id, number, customer_id, rep_id, rep_team, planned_at, planned_return_at, purpose,"
            " expected_issues, tracking_report, state) VALUES (%(id)s, %(number)s, %(customer_id)s, %(rep_id)s,"
            " %(rep_team)s, %(planned_at)s, %(planned_return_at)s, %(purpose)s, %(expected_issues)s,"
            " %(tracking_report)s, 'planned')", visit)
        return self.get(visit["id"])

    def get(self, visit_id, visibility=EVERYTHING):
        condition, params = visibility.sql("v.rep_id", "v.rep_team")
        return self.uow.one(f"SELECT {VISIT_COLUMNS} FROM {VISIT_FROM} WHERE v.id = %s AND {condition}",
                            [visit_id] + params)

    def move(self, visit_id, from_state, to_state, **values):
        """Guarded state change: matches only while the visit is still `from_state`."""
        sets, params = _set_clause(values, VISIT_SETTABLE)
        sets = ["state = %s"] + sets
        return self.uow.one(
            f"UPDATE visits SET {', '.join(sets)}, version = version + 1, updated_at = now()"
            " WHERE id = %s AND state = %s RETURNING id", [to_state] + params + [visit_id, from_state])

    def move_team(self, rep_id, team):
        self.uow.execute("UPDATE visits SET rep_team = %s WHERE rep_id = %s AND rep_team IS DISTINCT FROM %s",
                         (team, rep_id, team))

    def page(self, visibility, filters, after, limit, bounds=None):
        condition, params = visibility.sql("v.rep_id", "v.rep_team")
        where = [condition]
        for column, key in (("v.rep_id", "owner"), ("v.customer_id", "customer_id"), ("v.state", "state"),
                            ("v.late", "late")):
            if filters.get(key) is not None:
                where.append(f"{column} = %s")
                params.append(filters[key])
        if filters.get("overdue") is not None:
            where.append("(v.log_overdue_at IS NOT NULL OR v.return_overdue_at IS NOT NULL) = %s")
            params.append(filters["overdue"])
        if bounds is not None:
            if bounds[0] is not None:
                where.append("v.planned_at >= %s")
                params.append(bounds[0])
            if bounds[1] is not None:
                where.append("v.planned_at < %s")
                params.append(bounds[1])
        _keyset(where, params, after, columns="v.planned_at, v.id")
        return self.uow.all(
            f"SELECT {VISIT_COLUMNS} FROM {VISIT_FROM} WHERE {' AND '.join(where)}"
            " ORDER BY v.planned_at DESC, v.id DESC LIMIT %s", params + [limit + 1])

    def week(self, visibility, start, end, team=None):
        """FR-26: logged visits per rep in [start, end) — every active rep in view, zero included."""
        condition, params = visibility.sql("s.id", "s.team")
        where = [condition, "s.active", "s.role = 'sales_rep'"]
        if team is not None:
            where.append("s.team = %s")
            params.append(team)
        return self.uow.all(
            "SELECT s.id AS rep_id, s.display_name AS rep_name, s.team,"
            " count(v.id) AS visits, count(v.id) FILTER (WHERE v.late) AS late_logs FROM staff s"
            " LEFT JOIN visits v ON v.rep_id = s.id AND v.state = 'logged'"
            "  AND v.visited_at >= %s AND v.visited_at < %s"
            f" WHERE {' AND '.join(where)} GROUP BY s.id ORDER BY s.display_name, s.id",
            [start, end] + params)

    def claim_log_overdue(self, as_of, batch):
        return self.uow.all(
            "WITH due AS (SELECT id FROM visits WHERE state IN ('approved', 'in_field', 'returned')"
            "  AND log_overdue_at IS NULL AND log_due_by < %(as_of)s"
            "  ORDER BY log_due_by, id LIMIT %(batch)s FOR UPDATE SKIP LOCKED)"
            " UPDATE visits v SET log_overdue_at = %(as_of)s, version = v.version + 1, updated_at = now()"
            " FROM due WHERE v.id = due.id RETURNING v.id", {"as_of": as_of, "batch": batch})

    def claim_return_overdue(self, as_of, batch):
        """FR-24: in the field past the (reported) return time with no check-in."""
        return self.uow.all(
            "WITH due AS (SELECT id FROM visits WHERE state = 'in_field' AND return_overdue_at IS NULL"
            "  AND coalesce(expected_return_at, planned_return_at) < %(as_of)s"
            "  ORDER BY coalesce(expected_return_at, planned_return_at), id LIMIT %(batch)s FOR UPDATE SKIP LOCKED)"
            " UPDATE visits v SET return_overdue_at = %(as_of)s, version = v.version + 1, updated_at = now()"
            " FROM due WHERE v.id = due.id RETURNING v.id, v.number, v.customer_id, v.rep_id, v.rep_team,"
            " v.planned_return_at, v.expected_return_at, (SELECT manager_id FROM staff WHERE id = v.rep_id) AS manager_id",
            {"as_of": as_of, "batch": batch})


# -- opportunities ---------------------------------------------------------------------------------
OPPORTUNITY_COLUMNS = ("o.*, c.name AS customer_name, c.region AS customer_region, c.number AS customer_number,"
                       " s.display_name AS owner_name")
OPPORTUNITY_FROM = "opportunities o JOIN customers c ON c.id = o.customer_id LEFT JOIN staff s ON s.id = o.owner_id"
OPPORTUNITY_SETTABLE = ("title", "stage", "expected_amount", "probability", "expected_close", "priority",
                        "feasibility", "follow_up_plan", "reason", "order_id", "closed_at", "closed_by")


class OpportunityRepository:
    def __init__(self, uow):
        self.uow = uow

    def add(self, opportunity):
        self.uow.execute(
            "INSERT INTO opportunities (id, number, customer_id, owner_id, owner_team, title, source, stage, priority,"
            " probability, expected_amount, expected_close, feasibility, follow_up_plan, created_by)"
            " VALUES (%(id)s, %(number)s, %(customer_id)s, %(owner_id)s, %(owner_team)s, %(title)s, %(source)s,"
            " 'identified', %(priority)s, %(probability)s, %(expected_amount)s, %(expected_close)s, %(feasibility)s,"
            " %(follow_up_plan)s, %(created_by)s)", opportunity)
        return self.get(opportunity["id"])

    def get(self, opportunity_id, visibility=EVERYTHING):
        condition, params = visibility.sql("o.owner_id", "o.owner_team")
        return self.uow.one(
            f"SELECT {OPPORTUNITY_COLUMNS} FROM {OPPORTUNITY_FROM} WHERE o.id = %s AND {condition}",
            [opportunity_id] + params)

    def update(self, opportunity_id, version, changes):
        sets, params = _set_clause(changes, OPPORTUNITY_SETTABLE)
        return self.uow.one(
            f"UPDATE opportunities SET {', '.join(sets)}, version = version + 1, updated_at = now()"
            " WHERE id = %s AND version = %s RETURNING id", params + [opportunity_id, version])

    def follow_owner(self, customer_id, owner_id, owner_team):
        """Open opportunities move with their customer's owner (closed ones keep who won or lost them)."""
        self.uow.execute(
            "UPDATE opportunities SET owner_id = %s, owner_team = %s, version = version + 1, updated_at = now()"
            " WHERE customer_id = %s AND stage = ANY(%s)", (owner_id, owner_team, customer_id, list(OPEN_STAGES)))

    def move_team(self, owner_id, team):
        self.uow.execute(
            "UPDATE opportunities SET owner_team = %s WHERE owner_id = %s AND owner_team IS DISTINCT FROM %s",
            (team, owner_id, team))

    def page(self, visibility, filters, after, limit):
        condition, params = visibility.sql("o.owner_id", "o.owner_team")
        where = [condition]
        for column, key in (("o.owner_id", "owner"), ("o.customer_id", "customer_id"), ("o.stage", "stage")):
            if filters.get(key) is not None:
                where.append(f"{column} = %s")
                params.append(filters[key])
        if filters.get("open") is not None:
            where.append("(o.stage = ANY(%s)) = %s")
            params += [list(OPEN_STAGES), filters["open"]]
        _keyset(where, params, after, columns="o.created_at, o.id")
        return self.uow.all(
            f"SELECT {OPPORTUNITY_COLUMNS} FROM {OPPORTUNITY_FROM} WHERE {' AND '.join(where)}"
            " ORDER BY o.created_at DESC, o.id DESC LIMIT %s", params + [limit + 1])


# -- proposals and tenders (FR-40, FR-41) ----------------------------------------------------------
PROPOSAL_COLUMNS = ("p.*, o.number AS opportunity_number, c.name AS customer_name, s.display_name AS owner_name")
PROPOSAL_FROM = ("proposals p JOIN opportunities o ON o.id = p.opportunity_id JOIN customers c ON c.id = p.customer_id"
                 " LEFT JOIN staff s ON s.id = p.owner_id")
PROPOSAL_SETTABLE = ("title", "content", "amount", "closes_at", "revision", "reviewed_by", "reviewed_at",
                     "review_comment", "submitted_at", "responded_at", "response")


class ProposalRepository:
    def __init__(self, uow):
        self.uow = uow

    def add(self, proposal):
        self.uow.execute(
            "INSERT INTO proposals (id, number, opportunity_id, customer_id, owner_id, owner_team, kind, title,"
            " content, amount, closes_at, state, created_by)"
            " VALUES (%(id)s, %(number)s, %(opportunity_id)s, %(customer_id)s, %(owner_id)s, %(owner_team)s,"
            " %(kind)s, %(title)s, %(content)s, %(amount)s, %(closes_at)s, 'draft', %(created_by)s)", proposal)
        self.step(proposal["id"], "create", None, "draft", 1, None, proposal["created_by"])
        return self.get(proposal["id"])

    def get(self, proposal_id, visibility=EVERYTHING):
        condition, params = visibility.sql("p.owner_id", "p.owner_team")
        return self.uow.one(
            f"SELECT {PROPOSAL_COLUMNS} FROM {PROPOSAL_FROM} WHERE p.id = %s AND {condition}",
            [proposal_id] + params)

    def move(self, proposal, to_state, action, actor_id, comment=None, **values):
        """Guarded step: matches only while the proposal is unchanged since it was read (its
        version), so an approval is bound to the content the reviewer saw; the step is kept."""
        sets, params = _set_clause(values, PROPOSAL_SETTABLE)
        done = self.uow.one(
            f"UPDATE proposals SET {', '.join(['state = %s'] + sets)}, version = version + 1, updated_at = now()"
            " WHERE id = %s AND version = %s RETURNING revision",
            [to_state] + params + [proposal["id"], proposal["version"]])
        if done is not None:
            self.step(proposal["id"], action, proposal["state"], to_state, done["revision"], comment, actor_id)
        return done is not None

    def step(self, proposal_id, action, from_state, to_state, revision, comment, actor_id):
        self.uow.execute(
            "INSERT INTO proposal_steps (proposal_id, action, from_state, to_state, revision, comment, actor_id)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s)",
            (proposal_id, action, from_state, to_state, revision, comment, actor_id))

    def steps(self, proposal_id):
        return self.uow.all(
            "SELECT action, from_state, to_state, revision, comment, actor_id, at FROM proposal_steps"
            " WHERE proposal_id = %s ORDER BY id", (proposal_id,))

    def follow_owner(self, customer_id, owner_id, owner_team):
        """Proposals still in play move with their customer's owner, as the opportunities do."""
        self.uow.execute(
            "UPDATE proposals SET owner_id = %s, owner_team = %s, version = version + 1, updated_at = now()"
            " WHERE customer_id = %s AND state NOT IN ('accepted')", (owner_id, owner_team, customer_id))

    def move_team(self, owner_id, team):
        self.uow.execute(
            "UPDATE proposals SET owner_team = %s WHERE owner_id = %s AND owner_team IS DISTINCT FROM %s",
            (team, owner_id, team))

    def page(self, visibility, filters, after, limit):
        condition, params = visibility.sql("p.owner_id", "p.owner_team")
        where = [condition]
        for column, key in (("p.owner_id", "owner"), ("p.opportunity_id", "opportunity_id"),
                            ("p.customer_id", "customer_id"), ("p.state", "state")):
            if filters.get(key) is not None:
                where.append(f"{column} = %s")
                params.append(filters[key])
        _keyset(where, params, after, columns="p.created_at, p.id")
        return self.uow.all(
            f"SELECT {PROPOSAL_COLUMNS} FROM {PROPOSAL_FROM} WHERE {' AND '.join(where)}"
            " ORDER BY p.created_at DESC, p.id DESC LIMIT %s", params + [limit + 1])


# -- escalations and guidance (FR-28, FR-30) -------------------------------------------------------
ESCALATION_COLUMNS = "e.*, c.name AS customer_name, s.display_name AS owner_name"
ESCALATION_FROM = "escalations e JOIN customers c ON c.id = e.customer_id LEFT JOIN staff s ON s.id = e.owner_id"


class EscalationRepository:
    def __init__(self, uow):
        self.uow = uow

    def add(self, escalation):
        """Insert an open escalation; None when the customer already has one open."""
        try:
            with self.uow.savepoint("escalation_insert"):
                self.uow.execute(
                    "INSERT INTO escalations (id, number, customer_id, owner_id, owner_team, raised_by, reason,"
                    " help_wanted, state, guidance_due_by) VALUES (%(id)s, %(number)s, %(customer_id)s,"
                    " %(owner_id)s, %(owner_team)s, %(raised_by)s, %(reason)s, %(help_wanted)s, 'open',"
                    " %(guidance_due_by)s)", escalation)
        except psycopg2.errors.UniqueViolation:
            return None
        return self.get(escalation["id"])

    def get(self, escalation_id, visibility=EVERYTHING):
        condition, params = visibility.sql("e.owner_id", "e.owner_team")
        return self.uow.one(
            f"SELECT {ESCALATION_COLUMNS} FROM {ESCALATION_FROM} WHERE e.id = %s AND {condition}",
            [escalation_id] + params)

    def open_for(self, customer_id):
        return self.uow.one("SELECT id, number FROM escalations WHERE customer_id = %s AND state <> 'closed'",
                            (customer_id,))

    def note(self, escalation_id, author_id, kind, note):
        self.uow.execute("INSERT INTO escalation_notes (escalation_id, author_id, kind, note) VALUES (%s, %s, %s, %s)",
                         (escalation_id, author_id, kind, note))

    def notes(self, escalation_id):
        return self.uow.all(
            "SELECT author_id, kind, note, at FROM escalation_notes WHERE escalation_id = %s ORDER BY id",
            (escalation_id,))

    def move(self, escalation, to_state, **values):
        sets, params = _set_clause(values, ("outcome", "closed_by", "closed_at", "guidance_due_by"))
        return self.uow.one(
            f"UPDATE escalations SET {', '.join(['state = %s'] + sets)}, version = version + 1, updated_at = now()"
            " WHERE id = %s AND version = %s RETURNING id", [to_state] + params + [escalation["id"], escalation["version"]])

    def follow_owner(self, customer_id, owner_id, owner_team):
        self.uow.execute(
            "UPDATE escalations SET owner_id = %s, owner_team = %s, version = version + 1, updated_at = now()"
            " WHERE customer_id = %s AND state <> 'closed'", (owner_id, owner_team, customer_id))

    def move_team(self, owner_id, team):
        self.uow.execute(
            "UPDATE escalations SET owner_team = %s WHERE owner_id = %s AND owner_team IS DISTINCT FROM %s",
            (team, owner_id, team))

    def page(self, visibility, filters, after, limit, now):
        condition, params = visibility.sql("e.owner_id", "e.owner_team")
        where = [condition]
        for column, key in (("e.owner_id", "owner"), ("e.customer_id", "customer_id"), ("e.state", "state")):
            if filters.get(key) is not None:
                where.append(f"{column} = %s")
                params.append(filters[key])
        if filters.get("overdue") is not None:
            where.append("(e.state <> 'closed' AND e.guidance_due_by < %s) = %s")
            params += [now, filters["overdue"]]
        _keyset(where, params, after, columns="e.created_at, e.id")
        return self.uow.all(
            f"SELECT {ESCALATION_COLUMNS} FROM {ESCALATION_FROM} WHERE {' AND '.join(where)}"
            " ORDER BY e.created_at DESC, e.id DESC LIMIT %s", params + [limit + 1])


# -- the weekly check of collected records (FR-05) -------------------------------------------------
COLLECTION_COLUMNS = "w.*, cardinality(w.customer_ids) AS records, s.display_name AS rep_name"
COLLECTION_FROM = "collection_weeks w LEFT JOIN staff s ON s.id = w.rep_id"


class CollectionRepository:
    def __init__(self, uow):
        self.uow = uow

    def collected(self, rep_id, start, end):
        """The ids of the customer records the rep collected in [start, end), by collection time."""
        return [row["id"] for row in self.uow.all(
            "SELECT id FROM customers WHERE created_by = %s AND coalesce(collected_at, created_at) >= %s"
            " AND coalesce(collected_at, created_at) < %s ORDER BY created_at, id", (rep_id, start, end))]

    def for_week(self, rep_id, week):
        return self.uow.one(f"SELECT {COLLECTION_COLUMNS} FROM {COLLECTION_FROM} WHERE w.rep_id = %s AND w.week = %s"
                            " FOR UPDATE OF w", (rep_id, week))

    def submit(self, current, values):
        """First submission (None when another got in first), or a returned week submitted again."""
        if current is None:
            return self.uow.one(
                "INSERT INTO collection_weeks (id, rep_id, rep_team, week, state, customer_ids, submitted_at)"
                " VALUES (%(id)s, %(rep_id)s, %(rep_team)s, %(week)s, 'submitted', %(customer_ids)s, %(submitted_at)s)"
                " ON CONFLICT (rep_id, week) DO NOTHING RETURNING id", values)
        return self.uow.one(
            "UPDATE collection_weeks SET state = 'submitted', customer_ids = %(customer_ids)s,"
            " submitted_at = %(submitted_at)s, checked_by = NULL, checked_at = NULL, version = version + 1,"
            " updated_at = now() WHERE id = %(current_id)s AND version = %(version)s RETURNING id",
            dict(values, current_id=current["id"], version=current["version"]))

    def get(self, collection_id, visibility=EVERYTHING):
        condition, params = visibility.sql("w.rep_id", "w.rep_team")
        return self.uow.one(f"SELECT {COLLECTION_COLUMNS} FROM {COLLECTION_FROM} WHERE w.id = %s AND {condition}",
                            [collection_id] + params)

    def records(self, customer_ids):
        return self.uow.all("SELECT id, number, name, source, late_entry FROM customers WHERE id = ANY(%s)"
                            " ORDER BY created_at, id", (list(customer_ids),))

    def check(self, collection, state, checked_by, checked_at, comment):
        return self.uow.one(
            "UPDATE collection_weeks SET state = %s, checked_by = %s, checked_at = %s, comment = %s,"
            " version = version + 1, updated_at = now() WHERE id = %s AND version = %s RETURNING id",
            (state, checked_by, checked_at, comment, collection["id"], collection["version"]))

    def page(self, visibility, filters, after, limit):
        condition, params = visibility.sql("w.rep_id", "w.rep_team")
        where = [condition]
        for column, key in (("w.rep_id", "owner"), ("w.week", "week"), ("w.state", "state")):
            if filters.get(key) is not None:
                where.append(f"{column} = %s")
                params.append(filters[key])
        _keyset(where, params, after, columns="w.created_at, w.id")
        return self.uow.all(
            f"SELECT {COLLECTION_COLUMNS} FROM {COLLECTION_FROM} WHERE {' AND '.join(where)}"
            " ORDER BY w.created_at DESC, w.id DESC LIMIT %s", params + [limit + 1])


# -- market intelligence (FR-33) -------------------------------------------------------------------
INTELLIGENCE_COLUMNS = "i.*, c.name AS customer_name, s.display_name AS reporter_name"
INTELLIGENCE_FROM = ("intelligence i LEFT JOIN customers c ON c.id = i.customer_id"
                     " LEFT JOIN staff s ON s.id = i.reported_by")


class IntelligenceRepository:
    def __init__(self, uow):
        self.uow = uow

    def add(self, report):
        self.uow.execute(
            "INSERT INTO intelligence (id, number, kind, customer_id, region, summary, details, urgent, reported_by,"
            " reporter_team, state, response_due_by) VALUES (%(id)s, %(number)s, %(kind)s, %(customer_id)s,"
            " %(region)s, %(summary)s, %(details)s, %(urgent)s, %(reported_by)s, %(reporter_team)s, 'reported',"
            " %(response_due_by)s)", report)
        return self.get(report["id"])

    def get(self, report_id, visibility=EVERYTHING):
        condition, params = visibility.sql("i.reported_by", "i.reporter_team")
        return self.uow.one(f"SELECT {INTELLIGENCE_COLUMNS} FROM {INTELLIGENCE_FROM} WHERE i.id = %s AND {condition}",
                            [report_id] + params)

    def acknowledge(self, report, actor_id, at, response):
        return self.uow.one(
            "UPDATE intelligence SET state = 'acknowledged', acknowledged_by = %s, acknowledged_at = %s,"
            " response = %s, version = version + 1, updated_at = now() WHERE id = %s AND version = %s"
            " AND state = 'reported' RETURNING id", (actor_id, at, response, report["id"], report["version"]))

    def move_team(self, staff_id, team):
        self.uow.execute(
            "UPDATE intelligence SET reporter_team = %s WHERE reported_by = %s AND reporter_team IS DISTINCT FROM %s",
            (team, staff_id, team))

    def page(self, visibility, filters, after, limit):
        condition, params = visibility.sql("i.reported_by", "i.reporter_team")
        where = [condition]
        for column, key in (("i.reported_by", "owner"), ("i.kind", "kind"), ("i.customer_id", "customer_id"),
                            ("i.region", "region"), ("i.state", "state"), ("i.urgent", "urgent")):
            if filters.get(key) is not None:
                where.append(f"{column} = %s")
                params.append(filters[key])
        _keyset(where, params, after, columns="i.created_at, i.id")
        return self.uow.all(
            f"SELECT {INTELLIGENCE_COLUMNS} FROM {INTELLIGENCE_FROM} WHERE {' AND '.join(where)}"
            " ORDER BY i.created_at DESC, i.id DESC LIMIT %s", params + [limit + 1])


# -- the logistics information sheet (FR-18) ----------------------------------------------------------
class LogisticsRepository:
    def __init__(self, uow):
        self.uow = uow

    def save(self, customer_id, sheet, reviewed_by, reviewed_at):
        return self.uow.one(
            "INSERT INTO logistics_sheets (customer_id, consignee, address, phone, carrier, delivery_notes,"
            " reviewed_by, reviewed_at) VALUES (%(customer_id)s, %(consignee)s, %(address)s, %(phone)s, %(carrier)s,"
            " %(delivery_notes)s, %(reviewed_by)s, %(reviewed_at)s) ON CONFLICT (customer_id) DO UPDATE SET"
            " consignee = EXCLUDED.consignee, address = EXCLUDED.address, phone = EXCLUDED.phone,"
            " carrier = EXCLUDED.carrier, delivery_notes = EXCLUDED.delivery_notes, reviewed_by = EXCLUDED.reviewed_by,"
            " reviewed_at = EXCLUDED.reviewed_at, version = logistics_sheets.version + 1 RETURNING *",
            dict(sheet, customer_id=customer_id, reviewed_by=reviewed_by, reviewed_at=reviewed_at))

    def get(self, customer_id):
        return self.uow.one("SELECT * FROM logistics_sheets WHERE customer_id = %s", (customer_id,))

    def due(self, visibility, reviewed_before, after, limit):
        """Customers in scope whose sheet is missing or was last reviewed before `reviewed_before`."""
        condition, params = visibility.sql("c.owner_id", "c.owner_team")
        where = [condition, "(l.customer_id IS NULL OR l.reviewed_at < %s)"]
        params.append(reviewed_before)
        _keyset(where, params, after)
        return self.uow.all(
            "SELECT c.id, c.created_at, c.id AS customer_id, c.name AS customer_name, l.consignee, l.address, l.phone,"
            " l.carrier, l.delivery_notes, l.reviewed_by, l.reviewed_at FROM customers c"
            f" LEFT JOIN logistics_sheets l ON l.customer_id = c.id WHERE {' AND '.join(where)}"
            " ORDER BY c.created_at DESC, c.id DESC LIMIT %s", params + [limit + 1])


# -- report aggregates -----------------------------------------------------------------------------
class ReportRepository:
    """Figures per group for the gateway's reports (issue 8 joins them with the other services')."""

    VISIT_KEYS = {"rep": "v.rep_id::text", "team": "v.rep_team", "region": "s.region", "customer": "v.customer_id::text"}
    CUSTOMER_KEYS = {"rep": "c.created_by::text", "team": "cs.team", "region": "c.region", "customer": "c.id::text"}
    FOLLOW_UP_KEYS = {"rep": "f.recorded_by::text", "team": "fs.team", "region": "c.region",
                      "customer": "f.customer_id::text"}
    PIPELINE_KEYS = {"rep": "o.owner_id::text", "team": "o.owner_team", "region": "c.region",
                     "customer": "o.customer_id::text"}
    REP_KEYS = {"rep": "s.id::text", "team": "s.team", "region": "s.region"}

    def __init__(self, uow):
        self.uow = uow

    def visits(self, visibility, group_by, start, end):
        condition, params = visibility.sql("v.rep_id", "v.rep_team")
        key = self.VISIT_KEYS[group_by]
        return self.uow.all(
            f"SELECT {key} AS key, count(*) AS visits, count(*) FILTER (WHERE v.late) AS late_logs"
            " FROM visits v JOIN staff s ON s.id = v.rep_id"
            f" WHERE v.state = 'logged' AND v.visited_at >= %s AND v.visited_at < %s AND {condition}"
            " GROUP BY 1", [start, end] + params)

    def follow_ups(self, visibility, group_by, start, end):
        condition, params = visibility.sql("c.owner_id", "c.owner_team")
        key = self.FOLLOW_UP_KEYS[group_by]
        return self.uow.all(
            f"SELECT {key} AS key, count(*) AS follow_ups FROM follow_ups f"
            " JOIN customers c ON c.id = f.customer_id LEFT JOIN staff fs ON fs.id = f.recorded_by"
            f" WHERE f.occurred_at >= %s AND f.occurred_at < %s AND {condition} GROUP BY 1",
            [start, end] + params)

    def new_customers(self, visibility, group_by, start, end):
        condition, params = visibility.sql("c.owner_id", "c.owner_team")
        key = self.CUSTOMER_KEYS[group_by]
        return self.uow.all(
            f"SELECT {key} AS key, count(*) AS new_customers, count(*) FILTER (WHERE c.late_entry) AS late_entries"
            " FROM customers c"
            " LEFT JOIN staff cs ON cs.id = c.created_by"
            f" WHERE c.created_at >= %s AND c.created_at < %s AND {condition} GROUP BY 1",
            [start, end] + params)

    def reps(self, visibility, group_by):
        """Active reps per rep/team/region group (the weekly standard applies to each)."""
        if group_by not in self.REP_KEYS:
            return []
        condition, params = visibility.sql("s.id", "s.team")
        return self.uow.all(
            f"SELECT {self.REP_KEYS[group_by]} AS key, count(*) AS reps FROM staff s"
            f" WHERE s.active AND s.role = 'sales_rep' AND {condition} GROUP BY 1", params)

    def names(self, group_by, keys):
        if not keys:
            return {}
        if group_by == "rep":
            rows = self.uow.all("SELECT id::text AS key, display_name AS name FROM staff WHERE id::text = ANY(%s)",
                                (list(keys),))
        elif group_by == "customer":
            rows = self.uow.all("SELECT id::text AS key, name FROM customers WHERE id::text = ANY(%s)", (list(keys),))
        else:
            return {}
        return {row["key"]: row["name"] for row in rows}

    def pipeline(self, visibility, group_by, close_from=None, close_to=None):
        condition, params = visibility.sql("o.owner_id", "o.owner_team")
        where = ["o.stage = ANY(%s)", condition]
        params = [list(OPEN_STAGES)] + params
        if close_from is not None:
            where.append("o.expected_close >= %s")
            params.append(close_from)
        if close_to is not None:
            where.append("o.expected_close <= %s")
            params.append(close_to)
        key = self.PIPELINE_KEYS[group_by]
        return self.uow.all(
            f"SELECT {key} AS key, o.stage, count(*) AS count, sum(o.expected_amount) AS amount,"
            " sum(round(o.expected_amount * o.probability / 100.0, 2)) AS weighted"
            " FROM opportunities o JOIN customers c ON c.id = o.customer_id"
            f" WHERE {' AND '.join(where)} GROUP BY 1, 2", params)


# -- the customer 360° overview (the gateway asks once per service, issue 8) -------------------------
class OverviewRepository:
    """The customer service's part of the overview: open opportunities and last logged visits of
    one customer, as the caller may see them (visits by the visiting rep, opportunities by owner)."""

    def __init__(self, uow):
        self.uow = uow

    def open_opportunities(self, visibility, customer_id, limit):
        """(totals {count, amount, weighted_amount}, the newest `limit` open opportunities)."""
        condition, params = visibility.sql("o.owner_id", "o.owner_team")
        where = f"o.customer_id = %s AND o.stage = ANY(%s) AND {condition}"
        params = [customer_id, list(OPEN_STAGES)] + params
        # one statement: the window's totals run over every matching opportunity, before the LIMIT
        rows = self.uow.all(
            f"SELECT {OPPORTUNITY_COLUMNS}, count(*) OVER () AS open_count,"
            " coalesce(sum(o.expected_amount) OVER (), 0) AS open_amount,"
            " coalesce(sum(round(o.expected_amount * o.probability / 100.0, 2)) OVER (), 0) AS open_weighted"
            f" FROM {OPPORTUNITY_FROM} WHERE {where} ORDER BY o.created_at DESC, o.id DESC LIMIT %s",
            params + [limit])
        first = rows[0] if rows else {"open_count": 0, "open_amount": Decimal(0), "open_weighted": Decimal(0)}
        totals = {"count": first["open_count"], "amount": first["open_amount"],
                  "weighted_amount": first["open_weighted"]}
        for row in rows:
            del row["open_count"], row["open_amount"], row["open_weighted"]
        return totals, rows

    def last_visits(self, visibility, customer_id, limit):
        """The customer's logged visits, latest visit first."""
        condition, params = visibility.sql("v.rep_id", "v.rep_team")
        return self.uow.all(
            f"SELECT {VISIT_COLUMNS} FROM {VISIT_FROM} WHERE v.customer_id = %s AND v.state = 'logged'"
            f" AND {condition} ORDER BY v.visited_at DESC, v.id DESC LIMIT %s", [customer_id] + params + [limit])
