"""SQL over the gateway's own tables (credentials, idempotency_records); no nameko here.

Every function takes a unit of work (shared.db.UnitOfWork) and runs plain SQL in it.
"""
from shared.db import dumps

_CREDENTIAL = ("id, kind, username, name, key_prefix, staff_id, role, display_name, team, active, "
               "staff_recorded, created_at")


class Credentials:
    def __init__(self, uow):
        self.uow = uow

    def get(self, credential_id):
        return self.uow.one(f"SELECT {_CREDENTIAL} FROM credentials WHERE id = %s", (credential_id,))

    def password_login(self, username):
        return self.uow.one(
            f"SELECT {_CREDENTIAL}, secret_hash FROM credentials "
            "WHERE kind = 'password' AND lower(username) = lower(%s)", (username,))

    def by_key_hash(self, key_hash):
        return self.uow.one(
            f"SELECT {_CREDENTIAL} FROM credentials WHERE kind = 'api_key' AND secret_hash = %s", (key_hash,))

    def username_taken(self, username):
        return self.uow.scalar(
            "SELECT EXISTS (SELECT 1 FROM credentials WHERE kind = 'password' AND lower(username) = lower(%s))",
            (username,))

    def add(self, *, id, kind, secret_hash, staff_id, role, display_name, username=None, name=None,
            key_prefix=None, created_by=None, staff_recorded=True, team=None):
        """Insert; None when the id, the username or the key is already there."""
        return self.uow.one(
            "INSERT INTO credentials (id, kind, username, name, secret_hash, key_prefix, staff_id, role, "
            " display_name, created_by, staff_recorded, team) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) "
            f"ON CONFLICT DO NOTHING RETURNING {_CREDENTIAL}",
            (id, kind, username, name, secret_hash, key_prefix, staff_id, role, display_name, created_by,
             staff_recorded, team))

    def follow_staff(self, staff_id, role, team, display_name, active, version):
        """Apply a staff member's change from the org chart to every credential of theirs, unless a
        newer version was applied already (guarded: events may arrive late or twice)."""
        return self.uow.all(
            "UPDATE credentials SET role = %s, team = %s, display_name = %s, active = %s, staff_version = %s,"
            " updated_at = now() WHERE staff_id = %s AND staff_version < %s RETURNING id",
            (role, team, display_name, active, version, staff_id, version))

    def mark_staff_recorded(self, credential_id):
        self.uow.execute("UPDATE credentials SET staff_recorded = true, updated_at = now() WHERE id = %s",
                         (credential_id,))

    def page(self, kind, after, limit):
        """Keyset page ordered by (created_at, id); fetches limit + 1 rows (shared.pagination.page)."""
        params = [kind]
        where = "kind = %s"
        if after:
            where += " AND (created_at, id) > (%s::timestamptz, %s::uuid)"
            params += after
        return self.uow.all(
            f"SELECT {_CREDENTIAL} FROM credentials WHERE {where} ORDER BY created_at, id LIMIT %s",
            params + [limit + 1])


class IdempotencyRecords:
    def __init__(self, uow):
        self.uow = uow

    def claim(self, credential_id, key, method, path, request_hash, ttl, lock_timeout):
        """Insert the record "in progress". Returns None when this request holds it now, else the
        existing row (finished, or still in progress). An expired record, or one left in progress
        longer than `lock_timeout` seconds (a crashed worker), is replaced.

        One statement (issue 11: it was a DELETE of a stale record, then the INSERT, in a
        transaction — four round trips): the stale record is replaced by the INSERT's conflict
        clause. Each statement stands alone, so this runs in autocommit mode too. Should the other
        holder give the key up between the INSERT and the look at its row, the INSERT is tried again."""
        for _ in range(3):
            inserted = self.uow.one(
                "INSERT INTO idempotency_records AS r (credential_id, key, method, path, request_hash, expires_at) "
                "VALUES (%s, %s, %s, %s, %s, now() + make_interval(secs => %s)) "
                "ON CONFLICT (credential_id, key) DO UPDATE SET method = EXCLUDED.method, path = EXCLUDED.path, "
                " request_hash = EXCLUDED.request_hash, expires_at = EXCLUDED.expires_at, status = NULL, "
                " response_headers = NULL, response_body = NULL, created_at = now(), completed_at = NULL "
                "WHERE r.expires_at < now() OR (r.status IS NULL AND r.created_at < now() - make_interval(secs => %s)) "
                "RETURNING key",
                (credential_id, key, method, path, request_hash, ttl, lock_timeout))
            if inserted is not None:
                return None
            row = self.uow.one(
                "SELECT method, path, request_hash, status, response_headers, response_body "
                "FROM idempotency_records WHERE credential_id = %s AND key = %s", (credential_id, key))
            if row is not None:
                return row
        raise RuntimeError("the Idempotency-Key record kept changing hands")

    def complete(self, credential_id, key, status, headers, body):
        self.uow.execute(
            "UPDATE idempotency_records SET status = %s, response_headers = %s, response_body = %s, "
            "completed_at = now() WHERE credential_id = %s AND key = %s",
            (status, dumps(headers), body, credential_id, key))

    def release(self, credential_id, key):
        self.uow.execute("DELETE FROM idempotency_records WHERE credential_id = %s AND key = %s",
                         (credential_id, key))

    def purge_expired(self, batch=1000):
        cur = self.uow.execute(
            "DELETE FROM idempotency_records WHERE ctid IN (SELECT ctid FROM idempotency_records "
            "WHERE expires_at < now() LIMIT %s FOR UPDATE SKIP LOCKED)", (batch,))
        return cur.rowcount
