"""SQL of the customer service (no nameko here)."""
import uuid

import psycopg2

from shared.db import dumps

CUSTOMER_COLUMNS = """
    c.id, c.number, c.name, c.tax_id, c.industry, c.size, c.region, c.address, c.source, c.status,
    c.needs, c.bank_account, c.owner_id, s.display_name AS owner_name, c.contact_due_by, c.created_by,
    c.created_at, c.updated_at
"""


class StaffRepository:
    def __init__(self, uow):
        self.uow = uow

    def add(self, staff):
        staff_id = staff.get("id") or uuid.uuid4()
        try:
            with self.uow.savepoint("staff_insert"):
                return self.uow.one(
                    "INSERT INTO staff (id, username, display_name, role, manager_id, team, region) "
                    "VALUES (%s, %s, %s, %s, %s, %s, %s) RETURNING *",
                    (staff_id, staff["username"], staff["display_name"], staff["role"],
                     staff.get("manager_id"), staff.get("team"), staff.get("region")),
                )
        except psycopg2.errors.UniqueViolation:
            return None
        except psycopg2.errors.ForeignKeyViolation:
            raise LookupError("manager_id")

    def get(self, staff_id):
        return self.uow.one("SELECT * FROM staff WHERE id = %s", (staff_id,))

    def by_username(self, username):
        return self.uow.one("SELECT * FROM staff WHERE username = %s", (username,))


class CustomerRepository:
    def __init__(self, uow):
        self.uow = uow

    def add(self, customer):
        """Insert; returns None when the name or tax id is taken (the first record wins)."""
        try:
            with self.uow.savepoint("customer_insert"):
                self.uow.execute(
                    "INSERT INTO customers (id, number, name, name_key, tax_id, industry, size, region, address,"
                    " source, status, needs, bank_account, owner_id, assigned_at, contact_due_by, created_by,"
                    " created_at, updated_at)"
                    " VALUES (%(id)s, %(number)s, %(name)s, %(name_key)s, %(tax_id)s, %(industry)s, %(size)s,"
                    " %(region)s, %(address)s, %(source)s, %(status)s, %(needs)s, %(bank_account)s, %(owner_id)s,"
                    " %(assigned_at)s, %(contact_due_by)s, %(created_by)s, %(created_at)s, %(created_at)s)",
                    dict(customer, bank_account=dumps(customer["bank_account"]) if customer["bank_account"] else None),
                )
        except psycopg2.errors.UniqueViolation:
            return None
        except psycopg2.errors.ForeignKeyViolation:
            raise LookupError("owner_id")
        return customer["id"]

    def add_contacts(self, customer_id, contacts):
        for contact in contacts:
            self.uow.execute(
                "INSERT INTO contacts (id, customer_id, name, position, phone, email, decision_maker)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s)",
                (uuid.uuid4(), customer_id, contact["name"], contact.get("position"), contact.get("phone"),
                 contact.get("email"), contact.get("decision_maker", False)),
            )

    def record_ownership(self, customer_id, kind, owner_id, actor_id, reason, previous_owner_id=None):
        self.uow.execute(
            "INSERT INTO ownership_events (customer_id, kind, owner_id, previous_owner_id, actor_id, reason)"
            " VALUES (%s, %s, %s, %s, %s, %s)",
            (customer_id, kind, owner_id, previous_owner_id, actor_id, reason),
        )

    def find_conflict(self, name_key, tax_id):
        return self.uow.one(
            f"SELECT {CUSTOMER_COLUMNS} FROM customers c LEFT JOIN staff s ON s.id = c.owner_id"
            " WHERE c.name_key = %s OR (%s::text IS NOT NULL AND c.tax_id = %s) ORDER BY c.created_at LIMIT 1",
            (name_key, tax_id, tax_id),
        )

    def get(self, customer_id):
        row = self.uow.one(
            f"SELECT {CUSTOMER_COLUMNS} FROM customers c LEFT JOIN staff s ON s.id = c.owner_id WHERE c.id = %s",
            (customer_id,),
        )
        if row is not None:
            row["contacts"] = self.uow.all(
                "SELECT id, name, position, phone, email, decision_maker FROM contacts"
                " WHERE customer_id = %s ORDER BY created_at, id", (customer_id,),
            )
        return row

    def list(self, *, owner=None, status=None, region=None, industry=None, q=None, after=None, limit=50):
        where, params = [], []
        for column, value in (("c.owner_id", owner), ("c.status", status), ("c.region", region),
                              ("c.industry", industry)):
            if value is not None:
                where.append(f"{column} = %s")
                params.append(value)
        if q:
            where.append("(c.name ILIKE %s OR c.number ILIKE %s OR c.tax_id ILIKE %s)")
            like = "%" + q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            params += [like, like, like]
        if after is not None:
            where.append("(c.created_at, c.id) < (%s::timestamptz, %s::uuid)")
            params += after
        sql = f"SELECT {CUSTOMER_COLUMNS} FROM customers c LEFT JOIN staff s ON s.id = c.owner_id"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY c.created_at DESC, c.id DESC LIMIT %s"
        return self.uow.all(sql, params + [limit + 1])
