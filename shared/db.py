"""PostgreSQL over psycopg2: a bounded green pool and a unit of work.

psycopg2 is green under eventlet's monkey patching (eventlet installs a wait callback); `Pool`
checks that at start so a blocking driver is never used by accident. The pool never fails silently
when exhausted: a caller waits up to `acquire_timeout` and then gets `ServiceUnavailable`.

No nameko here: the service's `Database` dependency provider (shared.dependencies) wraps this.
"""
import collections
import hashlib
import json
import logging
import threading
import time
import uuid
from contextlib import contextmanager
from datetime import date, datetime
from decimal import Decimal

import eventlet
import psycopg2
import psycopg2.extensions
from eventlet.patcher import original
import psycopg2.extras
import psycopg2.sql

from shared import config, context, metrics
from shared.errors import IdempotencyKeyReused, ServiceUnavailable

log = logging.getLogger(__name__)

psycopg2.extras.register_uuid()

TRANSIENT_ERRORS = (
    psycopg2.OperationalError,
    psycopg2.InterfaceError,
    psycopg2.errors.SerializationFailure,
    psycopg2.errors.DeadlockDetected,
    psycopg2.errors.LockNotAvailable,
)
# a server shutting down or starting (admin_shutdown, crash_shutdown, cannot_connect_now); errors
# of the connection itself (refused, reset, closed) carry no SQLSTATE at all
SERVER_GONE = (None, "57P01", "57P02", "57P03")


def connection_lost(exc):
    """True when `exc` means the connection (or the server) is gone, not that a statement failed."""
    return isinstance(exc, (psycopg2.OperationalError, psycopg2.InterfaceError)) and \
        getattr(exc, "pgcode", None) in SERVER_GONE


def json_default(value):
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def dumps(value):
    return json.dumps(value, default=json_default, sort_keys=True, separators=(",", ":"))


def connection_settings(dbname=None):
    """Connection keywords from config (DB.* in config.yaml, else DB_* environment variables)."""
    return {
        "host": config.get("DB.HOST", "127.0.0.1"),
        "port": int(config.get("DB.PORT", 5432)),
        "user": config.get("DB.USER", "postgres"),
        "password": config.get("DB.PASSWORD", "", required=False) or None,
        "dbname": dbname or config.get("DB.NAME"),
        "connect_timeout": int(config.get("DB.CONNECT_TIMEOUT", 5)),
        "keepalives": 1,
        "keepalives_idle": 30,
        "keepalives_interval": 10,
        "keepalives_count": 3,
        # jit off by default (issue 11): the report queries' nested-loop estimates pass jit_above_cost,
        # and compiling them took longer than running them (1.2 s of 1.9 s for the open receivables
        # of 37k invoices); DB.JIT=on gives it back to a deployment that wants it.
        "options": "-c statement_timeout={} -c lock_timeout={} -c idle_in_transaction_session_timeout={} "
                   "-c jit={}".format(
            int(config.get("DB.STATEMENT_TIMEOUT_MS", 15000)),
            int(config.get("DB.LOCK_TIMEOUT_MS", 10000)),
            int(config.get("DB.IDLE_TX_TIMEOUT_MS", 60000)),
            "on" if config.as_bool(config.get("DB.JIT", False)) else "off",
        ),
    }


def is_green():
    return psycopg2.extensions.get_wait_callback() is not None


# the operating system's poll, not eventlet's select: eventlet's green select, even with a timeout
# of 0, registers the socket with the hub, schedules two timers and runs a turn of the hub's loop
# (other green threads included) before answering — on every checkout from the pool (issue 11).
# poll, not select: select refuses a descriptor numbered 1024 or more, which a busy process has.
_poll = original("select").poll
_READABLE = original("select").POLLIN | original("select").POLLHUP | original("select").POLLERR


def _usable(conn):
    """A pooled connection the server has not ended while it sat idle (a restart, a terminated
    backend): on an idle session nothing is readable unless the server has said goodbye."""
    if conn.closed:
        return False
    try:
        poller = _poll()
        poller.register(conn, _READABLE)
        ready = poller.poll(0)
    except (OSError, ValueError):
        return False
    return not ready


class Pool:
    """A bounded pool guarded by a semaphore, so exhaustion waits (bounded) instead of raising.

    Connections are opened lazily (none at setup, so a database still starting is waited for in
    `start`) and reused last-in first-out. Up to `keep` idle ones stay open for good; the others a
    burst opened stay open until they have sat idle for `idle_timeout` seconds, so a process under
    steady load reuses its sessions while an idle one (a replica, a test's platform) gives the
    server's connection slots back. Closing them as soon as they were given back (issue 11) made
    every unit of work beyond the `keep`-th open a new PostgreSQL session under load: a backend
    forked, authenticated, its caches cold."""

    def __init__(self, service, size, acquire_timeout=5.0, keep=None, idle_timeout=10.0, **connect_kwargs):
        self.service = service
        self.size = size
        self.keep = size if keep is None else max(0, min(keep, size))
        self.idle_timeout = idle_timeout
        self.acquire_timeout = acquire_timeout
        self.connect_kwargs = {k: v for k, v in connect_kwargs.items() if v is not None}
        self.connect_kwargs.setdefault("application_name", service)
        self._idle = collections.deque()  # (given back at, connection), the most recent on the right
        self._out = set()  # checked out
        self._reaper = None
        self._closed = False
        self._slots = threading.BoundedSemaphore(size)
        self._in_use = 0
        metrics.DB_POOL_MAX.labels(service).set(size)
        self._in_use_gauge = metrics.child(metrics.DB_POOL_IN_USE, service)
        self._wait_histogram = metrics.child(metrics.DB_POOL_WAIT, service)

    @contextmanager
    def connection(self):
        started = time.perf_counter()
        if not self._slots.acquire(timeout=self.acquire_timeout):
            metrics.DB_POOL_TIMEOUTS.labels(self.service).inc()
            raise ServiceUnavailable(
                f"no database connection free within {self.acquire_timeout}s", code="DB_POOL_EXHAUSTED"
            )
        self._wait_histogram.observe(time.perf_counter() - started)
        conn = None
        broken = False
        try:
            conn = self._checkout()
            self._in_use += 1
            self._in_use_gauge.set(self._in_use)
            yield conn
        except TRANSIENT_ERRORS[:2]:
            broken = True
            raise
        finally:
            if conn is not None:
                self._in_use -= 1
                self._in_use_gauge.set(self._in_use)
                close = broken or conn.closed
                if not close and conn.info.transaction_status != psycopg2.extensions.TRANSACTION_STATUS_IDLE:
                    try:
                        conn.rollback()
                    except psycopg2.Error:
                        close = True
                self._give_back(conn, close)
            self._slots.release()

    def _checkout(self):
        while self._idle:
            _, conn = self._idle.pop()
            if _usable(conn):  # not closed by the server while it sat idle (a restart, a terminated backend)
                self._out.add(conn)
                return conn
            _close(conn)
        if self._closed:
            raise psycopg2.InterfaceError("the pool is closed")
        conn = psycopg2.connect(**self.connect_kwargs)
        self._out.add(conn)
        return conn

    def _give_back(self, conn, close):
        self._out.discard(conn)
        if close or self._closed or conn.closed:
            _close(conn)
            return
        now = time.monotonic()
        self._idle.append((now, conn))
        self._close_idle(now)

    def _close_idle(self, now):
        """Close the connections beyond `keep` idle for `idle_timeout`; look again when the next
        of them will have been (a timer, so that a process that went quiet gives them back)."""
        while len(self._idle) > self.keep and self._idle[0][0] <= now - self.idle_timeout:
            _close(self._idle.popleft()[1])
        if len(self._idle) > self.keep and self._reaper is None and not self._closed:
            self._reaper = eventlet.spawn_after(self._idle[0][0] + self.idle_timeout - now, self._on_timer)

    def _on_timer(self):
        self._reaper = None
        self._close_idle(time.monotonic())

    @contextmanager
    def transaction(self, correlation_id=None):
        """A unit of work: commits when the block ends, rolls back on any exception.

        The connection runs in autocommit mode meanwhile, so psycopg2 sends no `BEGIN` of its
        own, in a round trip of its own, before the first statement: the unit of work's cursor
        sends it in front of that statement (`BEGIN;SELECT …`, one round trip), and `COMMIT` or
        `ROLLBACK` ends it (issue 11: a round trip less per transaction, in every process)."""
        with self.connection() as conn:
            conn.autocommit = True
            uow = UnitOfWork(conn, self.service, correlation_id)
            try:
                yield uow
                uow.end("COMMIT")
            except BaseException:
                try:
                    uow.end("ROLLBACK")
                except psycopg2.Error:
                    pass
                raise
            finally:
                _leave_autocommit(conn)
        for hook in uow.after_commit:
            hook()

    @contextmanager
    def autocommit(self, correlation_id=None):
        """A unit of work whose statements each commit on their own, in one round trip each (no
        BEGIN, no COMMIT): for a single statement — a lookup, one guarded UPDATE — or for reads
        (each sees what is committed when it runs, as in a READ COMMITTED transaction); never for
        several writes that must stand or fall together, nor for `publish` (no relay is woken)."""
        with self.connection() as conn:
            conn.autocommit = True
            try:
                yield UnitOfWork(conn, self.service, correlation_id, begins=False)
            finally:
                _leave_autocommit(conn)

    def ping(self):
        with self.connection() as conn:
            with conn.cursor() as cur:
                cur.execute("SELECT 1")
            conn.rollback()

    def close(self):
        self._closed = True
        if self._reaper is not None:
            self._reaper.cancel()
            self._reaper = None
        while self._idle:
            _close(self._idle.pop()[1])
        for conn in list(self._out):
            _close(conn)


def _close(conn):
    try:
        conn.close()
    except psycopg2.Error:
        pass


def _leave_autocommit(conn):
    """Give a connection back to the pool as psycopg2 keeps it (autocommit off), or close it when
    its transaction could not be ended (the server gone mid-statement): never a session left in a
    transaction for the next borrower."""
    if conn.closed:
        return
    if conn.get_transaction_status() != psycopg2.extensions.TRANSACTION_STATUS_IDLE:
        conn.close()
        return
    conn.autocommit = False


class _Cursor(psycopg2.extras.RealDictCursor):
    """The unit of work's cursor: on a connection in autocommit mode, a statement run outside a
    transaction is sent with the `BEGIN` that starts one (psycopg2 would send it on its own, in a
    round trip of its own), and the statements deferred meanwhile (`defer`) go in front of the next
    one, in the same round trip. Whatever runs SQL through this cursor (execute, psycopg2.extras'
    execute_values, …) is inside the unit of work's transaction."""

    begins = True

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.pending = []  # deferred statements, interpolated, in order

    def _outside(self):
        conn = self.connection
        return self.begins and conn.autocommit and \
            conn.get_transaction_status() == psycopg2.extensions.TRANSACTION_STATUS_IDLE

    def defer(self, query, vars=None):
        self.pending.append(self.mogrify(query, vars))

    def _ahead(self):
        """What must be sent before the next statement: BEGIN outside a transaction, then the
        deferred statements (taken)."""
        ahead = [b"BEGIN"] if self._outside() else []
        ahead += self.pending
        self.pending = []
        return ahead

    def execute(self, query, vars=None):
        if self.pending or self._outside():
            if isinstance(query, psycopg2.sql.Composable):
                query = query.as_string(self.connection)
            current = self.mogrify(query, vars)  # a bad parameter raises here, before anything is taken
            # one simple query of several statements: PostgreSQL runs them in order and stops at the
            # first error; the answer (rows, rowcount) is the last one's
            query, vars = b";".join(self._ahead() + [current]), None
        return super().execute(query, vars)

    def flush(self):
        """BEGIN (outside a transaction) and the deferred statements, in a round trip of their own."""
        ahead = self._ahead()
        if ahead:
            super().execute(b";".join(ahead))

    # the rest cannot carry them: flushed first
    def executemany(self, query, vars_list):
        self.flush()
        return super().executemany(query, vars_list)

    def callproc(self, procname, *args):
        self.flush()
        return super().callproc(procname, *args)

    def copy_expert(self, *args, **kwargs):
        self.flush()
        return super().copy_expert(*args, **kwargs)

    def copy_from(self, *args, **kwargs):
        self.flush()
        return super().copy_from(*args, **kwargs)

    def copy_to(self, *args, **kwargs):
        self.flush()
        return super().copy_to(*args, **kwargs)


class UnitOfWork:
    """One database transaction, with the kit's tables (outbox, inbox, idempotency, numbers)."""

    def __init__(self, conn, service, correlation_id=None, begins=True):
        self.conn = conn
        self.service = service
        self.correlation_id = correlation_id or context.get_correlation_id() or context.new_id()
        self.causation_id = None
        self.cursor = conn.cursor(cursor_factory=_Cursor)
        self.cursor.begins = begins
        self.after_commit = []
        self.events = []
        self.outbox = []  # (event_id, event_type, payload as JSON, headers) of each row written
        self._command = None

    def end(self, sql):
        """COMMIT or ROLLBACK the transaction the first statement began, if one did. A COMMIT of a
        transaction an error had aborted is answered ROLLBACK: then nothing it wrote exists, and
        none of its events may be published by the committing worker."""
        if sql == "COMMIT" and self.cursor.pending:  # the deferred statements go with the COMMIT
            self.cursor.execute(sql)
            if self.cursor.statusmessage != sql:
                self.outbox.clear()
            return
        self.cursor.pending.clear()
        if self.conn.get_transaction_status() != psycopg2.extensions.TRANSACTION_STATUS_IDLE:
            with self.conn.cursor() as cur:
                cur.execute(sql)
                if cur.statusmessage != sql:
                    self.outbox.clear()

    # -- plain SQL -----------------------------------------------------------------------------
    def execute(self, sql, params=None):
        self.cursor.execute(sql, params)
        return self.cursor

    def defer(self, sql, params=None):
        """A write sent later, in front of the unit of work's next statement or with its COMMIT: a
        round trip less (issue 11). Only for a statement whose answer (rows, rowcount) nothing reads,
        whose failure nothing catches (it fails the statement it travels with, and so the unit of
        work), and whose row locks may wait until then. Outside a transaction (`autocommit()`) it
        runs at once."""
        if self.cursor.begins:
            self.cursor.defer(sql, params)
        else:
            self.execute(sql, params)

    def one(self, sql, params=None):
        self.cursor.execute(sql, params)
        return self.cursor.fetchone()

    def all(self, sql, params=None):
        self.cursor.execute(sql, params)
        return self.cursor.fetchall()

    def scalar(self, sql, params=None):
        row = self.one(sql, params)
        return None if row is None else next(iter(row.values()))

    @contextmanager
    def savepoint(self, name="sp"):
        self.cursor.execute(f"SAVEPOINT {name}")  # with what was deferred before it
        written = len(self.outbox)
        try:
            yield
            if self.cursor.pending:  # sent inside: a failure among them rolls back to the savepoint too
                self.cursor.flush()
        except BaseException:
            self.cursor.pending.clear()  # deferred inside it: rolled back unsent
            self.cursor.execute(f"ROLLBACK TO SAVEPOINT {name}")
            del self.outbox[written:]  # their rows are gone with the savepoint
            raise
        else:
            self.cursor.execute(f"RELEASE SAVEPOINT {name}")

    # -- outbox --------------------------------------------------------------------------------
    def publish(self, event_type, data, version=1):
        """Record an event in the outbox, in this transaction; the relay publishes it after commit.
        `version=2` publishes it as `<type>.v2` (its own routing key), e.g. beside v1 in the same
        transaction while consumers move."""
        from shared.envelope import build

        envelope = build(
            event_type, data, source=self.service, version=version,
            correlation_id=self.correlation_id, causation_id=self.causation_id,
        )
        payload = dumps(envelope)
        headers = {"nameko.correlation_id": self.correlation_id}
        self.defer(
            "INSERT INTO outbox (event_id, event_type, payload, headers) VALUES (%s, %s, %s, %s)",
            (envelope["event_id"], envelope["event_type"], payload, dumps(headers)),
        )
        self.events.append(envelope)
        self.outbox.append((envelope["event_id"], envelope["event_type"], payload, headers))
        return envelope

    # -- inbox ---------------------------------------------------------------------------------
    def claim_event(self, handler, envelope):
        """True the first time `handler` sees this event; False for a duplicate delivery."""
        row = self.one(
            "INSERT INTO inbox (handler, event_id, event_type) VALUES (%s, %s, %s) "
            "ON CONFLICT DO NOTHING RETURNING event_id",
            (handler, envelope["event_id"], envelope.get("event_type")),
        )
        self.causation_id = envelope["event_id"]
        return row is not None

    # -- idempotent commands ------------------------------------------------------------------
    def begin_command(self, command, request_id, request):
        """Start an idempotent command. Returns the stored answer of an earlier identical call,
        or None when this call is the first (then `finish_command` must store the answer).

        A concurrent duplicate waits on the first one's row lock and then sees its answer.
        """
        digest = hashlib.sha256(dumps(request).encode()).hexdigest()
        inserted = self.one(
            "INSERT INTO idempotency_keys (command, request_id, request_hash) VALUES (%s, %s, %s) "
            "ON CONFLICT DO NOTHING RETURNING request_id",
            (command, str(request_id), digest),
        )
        if inserted is not None:
            self._command = (command, str(request_id))
            return None
        row = self.one(
            "SELECT request_hash, response FROM idempotency_keys WHERE command = %s AND request_id = %s",
            (command, str(request_id)),
        )
        if row["request_hash"] != digest:
            raise IdempotencyKeyReused(
                f"request_id {request_id} was already used for a different {command} request",
                errors={"request_id": ["already used with a different request"]},
            )
        return Replay(row["response"])

    def finish_command(self, response):
        command, request_id = self._command
        self.defer(
            "UPDATE idempotency_keys SET response = %s WHERE command = %s AND request_id = %s",
            (dumps(response), command, request_id),
        )
        self._command = None
        return response

    # -- periodic jobs -------------------------------------------------------------------------
    def try_lock(self, name):
        """Take the transaction-scoped advisory lock `name` if free: True for the one replica that
        gets it (the job runs there), False elsewhere. Released at commit or rollback."""
        return bool(self.scalar("SELECT pg_try_advisory_xact_lock(hashtextextended(%s, 0))", (name,)))

    # -- document numbers ----------------------------------------------------------------------
    def next_number(self, prefix, year, width=6):
        """Gap-free per-year number (`SO-2026-000123`): the counter row is locked until commit,
        so a rolled-back transaction gives its number back."""
        value = self.scalar(
            "INSERT INTO document_sequences (prefix, year, last_value) VALUES (%s, %s, 1) "
            "ON CONFLICT (prefix, year) DO UPDATE SET last_value = document_sequences.last_value + 1 "
            "RETURNING last_value",
            (prefix, year),
        )
        return f"{prefix}-{year}-{value:0{width}d}"


class Replay:
    """The stored answer of an idempotent command called again."""

    def __init__(self, response):
        self.response = response
