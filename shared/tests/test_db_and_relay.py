"""The pool and the outbox relay against the real database and broker."""
import uuid

import eventlet
import pytest
from kombu import Connection, Queue
from nameko.amqp.publish import Publisher

from shared import db
from shared.errors import ServiceUnavailable
from shared.outbox import Relay, event_exchange, loads
from shared.testing.plugin import pg_settings


@pytest.fixture
def pool_factory(make_database):
    name = make_database()
    pools = []

    def make(size=3, acquire_timeout=1.0, keep=None, idle_timeout=10.0, **more):
        settings = dict({k: v for k, v in pg_settings().items() if v is not None}, **more)
        pool = db.Pool("kit-test", size, acquire_timeout=acquire_timeout, keep=keep, idle_timeout=idle_timeout,
                       dbname=name, **settings)
        pools.append(pool)
        return pool

    yield make
    for pool in pools:
        pool.close()


def test_psycopg2_is_green_under_nameko_test():
    assert db.is_green()


def test_an_exhausted_pool_waits_then_says_so_instead_of_failing_silently(pool_factory):
    pool = pool_factory(size=1, acquire_timeout=0.3)
    with pool.connection():
        with pytest.raises(ServiceUnavailable) as info:
            with pool.connection():
                pass
    assert info.value.code == "DB_POOL_EXHAUSTED" and info.value.status == 503
    with pool.connection():  # the slot came back
        pass


def test_the_pool_reuses_its_connections_and_drops_a_broken_one(pool_factory):
    """A connection goes back to the pool after use (issue 11: each transaction used to open a new
    PostgreSQL session — a backend started, authenticated and torn down per unit of work)."""
    pool = pool_factory(size=2)

    def backend():
        with pool.transaction() as uow:
            return uow.scalar("SELECT pg_backend_pid()")

    first = backend()
    assert backend() == first
    with pool.connection() as one, pool.connection() as two:  # two at once: two sessions
        assert one is not two
    with pytest.raises(db.TRANSIENT_ERRORS[0]):
        with pool.connection() as conn:
            with conn.cursor() as cur:  # the server ends this session: the pool must not keep it
                cur.execute("SELECT pg_terminate_backend(pg_backend_pid())")
    idle = backend()
    with pool.connection() as one, pool.connection() as two:  # both back in the pool, idle
        pids = {one.get_backend_pid(), two.get_backend_pid()}
    assert idle in pids
    with pool_factory(size=1).transaction() as other:  # PostgreSQL restarted, say: the idle sessions end
        other.execute("SELECT pg_terminate_backend(pid) FROM unnest(%s::int[]) AS pid", (list(pids),))
    eventlet.sleep(0.2)
    assert backend() not in pids  # a new session, no error: the dead ones were noticed and dropped


def test_the_pool_keeps_a_bursts_connections_while_busy_and_only_keep_once_idle(pool_factory):
    """A burst may open up to `size` sessions. While work keeps coming they are reused (closing
    each one given back beyond `keep` made every unit of work over that open a new PostgreSQL
    session under load, issue 11); once they have sat idle for `idle_timeout` only `keep` stay
    open, so idle processes do not hold PostgreSQL's connection slots (max_connections is shared)."""
    app = f"kit-keep-{uuid.uuid4().hex[:8]}"
    pool = pool_factory(size=4, keep=1, idle_timeout=0.5, application_name=app)

    def sessions():
        with pool_factory(size=1).transaction() as uow:
            return uow.scalar("SELECT count(*) FROM pg_stat_activity WHERE application_name = %s", (app,))

    with pool.connection() as a, pool.connection() as b, pool.connection() as c:
        assert sessions() == 3
        burst = {a.get_backend_pid(), b.get_backend_pid(), c.get_backend_pid()}
    with pool.connection() as a, pool.connection() as b, pool.connection() as c:  # the same sessions again
        assert {a.get_backend_pid(), b.get_backend_pid(), c.get_backend_pid()} == burst
    assert sessions() == 3
    eventlet.sleep(0.8)  # nothing more comes: the timer closes the extra ones
    assert sessions() == 1
    with pool.transaction() as uow:
        assert uow.scalar("SELECT pg_backend_pid()") in burst


def test_a_transaction_rolls_back_everything_on_error(pool_factory):
    pool = pool_factory()
    with pytest.raises(RuntimeError):
        with pool.transaction() as uow:
            uow.publish("thing.happened", {"n": 1})
            uow.next_number("SO", 2026)
            raise RuntimeError("business rule said no")
    with pool.transaction() as uow:
        assert uow.scalar("SELECT count(*) FROM outbox") == 0
        # the number was given back: numbers are gap-free
        assert uow.next_number("SO", 2026) == "SO-2026-000001"


@pytest.fixture
def round_trips(monkeypatch):
    """How many commands go to PostgreSQL: under eventlet psycopg2 calls its wait callback once
    for each command it sends (a query, and the BEGIN it sends on its own), then waits for the answer."""
    import psycopg2.extensions

    sent = []
    wait = psycopg2.extensions.get_wait_callback()

    def counting(conn):
        sent.append(conn)
        return wait(conn)

    psycopg2.extensions.set_wait_callback(counting)
    yield sent
    psycopg2.extensions.set_wait_callback(wait)


def test_a_transaction_sends_its_begin_with_its_first_statement(pool_factory, round_trips):
    """Issue 11: psycopg2 sent BEGIN in a round trip of its own before the first statement of
    every unit of work; the unit of work sends it with that statement."""
    pool = pool_factory()
    with pool.transaction() as uow:
        uow.execute("CREATE TABLE things (n int PRIMARY KEY)")
    del round_trips[:]
    with pool.transaction() as uow:
        uow.execute("INSERT INTO things VALUES (1)")
        assert uow.scalar("SELECT count(*) FROM things") == 1
    assert len(round_trips) == 3  # BEGIN;INSERT — SELECT — COMMIT
    del round_trips[:]
    with pool.autocommit() as uow:  # one statement, one round trip
        assert uow.scalar("SELECT count(*) FROM things") == 1
    assert len(round_trips) == 1
    with pool.transaction():  # nothing run, nothing sent
        pass
    assert len(round_trips) == 1
    with pytest.raises(RuntimeError):  # still one transaction: the first statement is undone too
        with pool.transaction() as uow:
            uow.execute("INSERT INTO things VALUES (2)")
            uow.execute("INSERT INTO things VALUES (3)")
            raise RuntimeError("no")
    with pytest.raises(db.psycopg2.errors.UniqueViolation):
        with pool.transaction() as uow:
            uow.execute("INSERT INTO things VALUES (4)")
            uow.execute("INSERT INTO things VALUES (1)")
    with pool.connection() as conn:  # the connection went back as psycopg2 keeps it, outside any transaction
        assert not conn.autocommit
        assert conn.get_transaction_status() == db.psycopg2.extensions.TRANSACTION_STATUS_IDLE
    with pool.autocommit() as uow:
        assert uow.scalar("SELECT array_agg(n ORDER BY n) FROM things") == [1]
    with pool.transaction() as uow:  # a composed statement first, as psycopg2.sql builds them
        from psycopg2 import sql

        uow.execute(sql.SQL("INSERT INTO {} VALUES (%s)").format(sql.Identifier("things")), (5,))
        assert uow.conn.get_transaction_status() == db.psycopg2.extensions.TRANSACTION_STATUS_INTRANS
    with pytest.raises(RuntimeError):  # executemany first: BEGIN on its own, still one transaction
        with pool.transaction() as uow:
            uow.cursor.executemany("INSERT INTO things VALUES (%s)", [(6,), (7,)])
            raise RuntimeError("no")
    with pool.autocommit() as uow:
        assert uow.scalar("SELECT array_agg(n ORDER BY n) FROM things") == [1, 5]


def test_deferred_writes_travel_with_the_next_statement_or_the_commit(pool_factory, round_trips):
    """Issue 11: a write whose answer nothing reads (the outbox row, the idempotent command's
    stored answer, a read model's upsert) is sent in front of the next statement, or with the
    COMMIT, instead of in a round trip of its own. It still takes effect in order, inside the
    transaction; if it fails, the unit of work fails and keeps nothing."""
    pool = pool_factory()
    with pool.transaction() as uow:
        uow.execute("CREATE TABLE things (n int PRIMARY KEY, note text)")
    del round_trips[:]
    with pool.transaction() as uow:
        uow.defer("INSERT INTO things VALUES (%s, %s)", (1, "it's 100% here; really"))
        uow.publish("thing.happened", {"n": 1})
        assert uow.scalar("SELECT count(*) FROM things") == 1  # the deferred insert went first
        uow.defer("INSERT INTO things VALUES (2, NULL)")
        uow.publish("thing.happened", {"n": 2})
    assert len(round_trips) == 2  # BEGIN;INSERT;INSERT;SELECT — INSERT;INSERT;COMMIT
    with pool.autocommit() as uow:
        assert uow.scalar("SELECT string_agg(coalesce(note, '-'), ',' ORDER BY n) FROM things") == "it's 100% here; really,-"
        assert uow.scalar("SELECT count(*) FROM outbox") == 2

    del round_trips[:]
    with pool.transaction() as uow:  # only deferred writes: one round trip, BEGIN to COMMIT
        uow.defer("INSERT INTO things VALUES (3, NULL)")
    assert len(round_trips) == 1

    published = []
    with pytest.raises(db.psycopg2.errors.UniqueViolation):  # fails at the COMMIT it travels with
        with pool.transaction() as uow:
            uow.after_commit.append(lambda: published.append(True))
            uow.publish("thing.happened", {"n": 4})
            uow.defer("INSERT INTO things VALUES (1, 'again')")
    assert uow.outbox and not published
    with pytest.raises(RuntimeError):  # an error before the COMMIT: the deferred writes are never sent
        with pool.transaction() as uow:
            uow.execute("INSERT INTO things VALUES (5, NULL)")
            uow.defer("INSERT INTO things VALUES (6, NULL)")
            raise RuntimeError("no")
    with pool.transaction() as uow:
        with pytest.raises(RuntimeError):
            with uow.savepoint():  # what was deferred inside a savepoint that rolls back is dropped
                uow.defer("INSERT INTO things VALUES (7, NULL)")
                raise RuntimeError("no")
        uow.defer("INSERT INTO things VALUES (8, NULL)")
        with pytest.raises(db.psycopg2.errors.UniqueViolation):
            with uow.savepoint():  # deferred inside a savepoint: sent inside it, so its failure rolls back to it
                uow.publish("thing.happened", {"n": 9})
                uow.defer("INSERT INTO things VALUES (1, 'again')")
        with pytest.raises(KeyError):  # a statement whose parameters do not fit takes nothing deferred with it
            uow.defer("INSERT INTO things VALUES (10, NULL)")
            uow.one("SELECT %(missing)s", {})
    with pool.autocommit() as uow:
        assert uow.scalar("SELECT array_agg(n ORDER BY n) FROM things") == [1, 2, 3, 8, 10]
        assert uow.scalar("SELECT count(*) FROM outbox") == 2
        uow.defer("INSERT INTO things VALUES (9, NULL)")  # outside a transaction: at once
        assert uow.scalar("SELECT count(*) FROM things WHERE n = 9") == 1


def test_document_numbers_never_repeat_under_concurrency(pool_factory):
    pool = pool_factory(size=5)

    def take(_):
        with pool.transaction() as uow:
            return uow.next_number("DN", 2026)

    numbers = list(eventlet.GreenPool(10).imap(take, range(40)))
    assert sorted(numbers) == [f"DN-2026-{n:06d}" for n in range(1, 41)]


def test_business_counters_follow_committed_events_only(pool_factory):
    from shared import metrics
    from shared.dependencies import _WakingTransaction

    pool = pool_factory()
    counted = []
    metrics.on_event("kit_test.happened", lambda data: counted.append(data["n"]))
    with _WakingTransaction(pool.transaction(), None) as uow:
        uow.publish("kit_test.happened", {"n": 1})
    with pytest.raises(RuntimeError):
        with _WakingTransaction(pool.transaction(), None) as uow:
            uow.publish("kit_test.happened", {"n": 2})
            raise RuntimeError("rolled back: counts nothing")
    assert counted == [1]
    assert metrics.EVENTS_PUBLISHED.labels("kit-test", "kit_test.happened")._value.get() >= 1


def test_a_periodic_job_lock_is_held_by_one_replica_until_its_transaction_ends(pool_factory):
    pool = pool_factory(size=2)
    with pool.transaction() as first:
        assert first.try_lock("customer.reclaim_overdue")
        with pool.transaction() as second:
            assert not second.try_lock("customer.reclaim_overdue")
            assert second.try_lock("another.job")
    with pool.transaction() as later:
        assert later.try_lock("customer.reclaim_overdue")


def test_relays_in_several_replicas_publish_every_row_and_mark_it_sent(pool_factory, rabbit_config):
    from nameko import config

    pool = pool_factory(size=6)
    service = f"kit{uuid.uuid4().hex[:6]}"
    with Connection(config["AMQP_URI"]) as conn:
        queue = Queue("relay-test", exchange=event_exchange(service), routing_key="#", durable=False)
        queue(conn.default_channel).declare()
    for n in range(120):
        with pool.transaction() as uow:
            uow.publish("thing.happened", {"n": n})
    relays = [Relay(pool, Publisher(config["AMQP_URI"], declare=[event_exchange(service)]), service,
                    batch_size=7, poll_interval=0.05) for _ in range(3)]
    threads = [eventlet.spawn(relay.run) for relay in relays]
    try:
        for _ in range(200):
            with pool.transaction() as uow:
                if uow.scalar("SELECT count(*) FROM outbox WHERE published_at IS NULL") == 0:
                    break
            eventlet.sleep(0.05)
    finally:
        for relay in relays:
            relay.stop()
        for thread in threads:
            thread.wait()
    received = []
    with Connection(config["AMQP_URI"]) as conn:
        simple = conn.SimpleQueue(Queue("relay-test", exchange=event_exchange(service), routing_key="#", durable=False))
        while True:
            try:
                message = simple.get(timeout=0.5)
            except simple.Empty:
                break
            received.append(message.payload["data"]["n"])
            message.ack()
        simple.close()
    # each row was claimed by exactly one replica (SKIP LOCKED): every event once, none twice
    assert sorted(received) == list(range(120))
    relays[0].update_stats(force=True)


def test_a_connection_lost_under_a_request_is_answered_unavailable_and_the_next_one_reconnects(pool_factory):
    """A database restart (issue 9) ends the server process of every open connection: the request
    using one fails — answered DB_UNAVAILABLE (503 with Retry-After at the gateway), not an
    internal error — and the next request gets a working connection."""
    from shared.outages import as_unavailable

    pool = pool_factory(size=3)
    with pytest.raises(Exception) as info:
        with pool.transaction() as uow:
            pid = uow.scalar("SELECT pg_backend_pid()")
            with pool.transaction() as other:  # what the restart does to this connection
                assert other.scalar("SELECT pg_terminate_backend(%s)", (pid,)) is True
            uow.scalar("SELECT 1")
    answered = as_unavailable(info.value)
    assert isinstance(answered, ServiceUnavailable) and answered.code == "DB_UNAVAILABLE", info.value
    assert answered.status == 503
    for _ in range(3):
        with pool.transaction() as uow:
            assert uow.scalar("SELECT 1") == 1


def test_service_sessions_run_without_jit_unless_asked(make_database):
    """Issue 11: JIT compilation of the report queries cost more than running them; a service's
    sessions turn it off, and DB.JIT turns it back on."""
    import psycopg2
    from nameko import config

    name = make_database()
    settings = pg_settings()
    base = {"HOST": settings["host"], "PORT": settings["port"], "USER": settings["user"],
            "PASSWORD": settings["password"] or "", "NAME": name}

    def jit(**more):
        with config.patch({"DB": dict(base, **more)}):
            conn = psycopg2.connect(**{k: v for k, v in db.connection_settings().items() if v is not None})
        try:
            with conn.cursor() as cur:
                cur.execute("SHOW jit")
                return cur.fetchone()[0]
        finally:
            conn.close()

    assert jit() == "off"
    assert jit(JIT="on") == "on"


def _relay_queue(service):
    from nameko import config

    queue = Queue(f"direct-{service}", exchange=event_exchange(service), routing_key="#", durable=False)
    with Connection(config["AMQP_URI"]) as conn:
        queue(conn.default_channel).declare()
    return queue


def _received(queue, timeout=0.5):
    from nameko import config

    got = []
    with Connection(config["AMQP_URI"]) as conn:
        simple = conn.SimpleQueue(queue)
        while True:
            try:
                message = simple.get(timeout=timeout)
            except simple.Empty:
                return got
            got.append(message.payload)
            message.ack()


def test_the_committing_worker_publishes_its_events_and_marks_them_sent(pool_factory, rabbit_config):
    """Issue 11: a commit that wrote events woke the relay for a batch of one (BEGIN, SELECT … FOR
    UPDATE SKIP LOCKED, publish, UPDATE, COMMIT); the worker publishes them itself after its commit,
    then marks them sent — without any relay running."""
    from decimal import Decimal

    from nameko import config

    from shared.dependencies import _WakingTransaction

    pool = pool_factory()
    service = f"kit{uuid.uuid4().hex[:6]}"
    queue = _relay_queue(service)
    relay = Relay(pool, Publisher(config["AMQP_URI"], declare=[event_exchange(service)]), service, grace=60)
    with _WakingTransaction(pool.transaction("cid-direct"), relay) as uow:
        sent = uow.publish("thing.happened", {"n": 1, "amount": Decimal("12.50")})
    with pool.autocommit() as uow:
        row = uow.one("SELECT published_at, attempts FROM outbox WHERE event_id = %s", (sent["event_id"],))
    assert row["published_at"] is not None and row["attempts"] == 1
    [message] = _received(queue)
    assert message["event_id"] == sent["event_id"] and message["data"] == {"n": 1, "amount": "12.50"}
    assert message["correlation_id"] == "cid-direct"


class _Recorder:
    """A publisher that keeps what it is given."""

    def __init__(self):
        self.sent = []

    def publish(self, payload, **kwargs):
        self.sent.append(payload)


def test_a_worker_publishes_no_event_its_transaction_did_not_keep(pool_factory):
    """The committing worker publishes from what the unit of work wrote: an event written in a
    savepoint that was rolled back, or in a transaction an error aborted (its COMMIT is answered
    ROLLBACK), is not published — its row does not exist."""
    import psycopg2

    from shared.dependencies import _WakingTransaction

    pool = pool_factory()
    publisher = _Recorder()
    relay = Relay(pool, publisher, f"kit{uuid.uuid4().hex[:6]}", grace=60)
    with _WakingTransaction(pool.transaction(), relay) as uow:
        kept = uow.publish("thing.happened", {"n": 6})
        with pytest.raises(RuntimeError):
            with uow.savepoint():
                uow.publish("thing.happened", {"n": 7})
                raise RuntimeError("undone")
    assert [loads(sent)["event_id"] for sent in publisher.sent] == [kept["event_id"]]
    with _WakingTransaction(pool.transaction(), relay) as uow:
        uow.publish("thing.happened", {"n": 8})
        try:
            uow.execute("SELECT 1 / 0")
        except psycopg2.Error:
            pass  # swallowed: the transaction is aborted, and its COMMIT rolls it back
    assert len(publisher.sent) == 1
    with pool.autocommit() as uow:
        assert uow.scalar("SELECT count(*) FROM outbox") == 1


def test_a_checkout_works_when_the_process_has_more_than_1024_descriptors(pool_factory):
    """The pool's liveness check polls the connection: select() refuses a descriptor numbered 1024
    or more, and a check that failed on every new connection would open and close sessions forever."""
    import os
    import resource

    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 1200:
        pytest.skip("the soft limit on open files is below 1200")
    pool = pool_factory()
    filler = []
    try:
        while True:
            fd = os.dup(0)
            filler.append(fd)
            if fd >= 1100:
                break
        with eventlet.Timeout(20):
            with pool.connection() as conn:
                assert conn.fileno() >= 1024
                with conn.cursor() as cur:
                    cur.execute("SELECT 1")
                conn.rollback()
            with pool.connection() as again:  # the kept one, checked
                assert again is conn
    finally:
        for fd in filler:
            os.close(fd)


def test_during_the_relays_start_delay_a_committing_worker_publishes_nothing(pool_factory):
    """OUTBOX.START_DELAY holds every publish back while the services declare their queues (the
    switch to quorum queues, docs/DEPLOY.md §5): an event published at commit before the other
    services' queues exist would be lost. The worker leaves its rows to the relay until the delay
    has passed; after it, it publishes them itself again."""
    from shared.dependencies import _WakingTransaction

    pool = pool_factory()
    publisher = _Recorder()
    relay = Relay(pool, publisher, f"kit{uuid.uuid4().hex[:6]}", grace=0.0, start_delay=0.3)
    with _WakingTransaction(pool.transaction(), relay) as uow:
        held = uow.publish("thing.happened", {"n": 4})
    assert publisher.sent == []
    with pool.autocommit() as uow:
        assert uow.one("SELECT published_at FROM outbox WHERE event_id = %s", (held["event_id"],))["published_at"] is None
    runner = eventlet.spawn(relay.run)
    try:
        for _ in range(100):
            if publisher.sent:
                break
            eventlet.sleep(0.05)
        assert [event["event_id"] for event in publisher.sent] == [held["event_id"]]  # by the relay, after the delay
        with _WakingTransaction(pool.transaction(), relay) as uow:
            later = uow.publish("thing.happened", {"n": 5})
        assert loads(publisher.sent[-1])["event_id"] == later["event_id"]  # by the committing worker again
    finally:
        relay.stop()
        runner.wait()


def test_events_the_worker_could_not_publish_are_left_to_the_relay(pool_factory, rabbit_config):
    """The broker away at commit: the request is not failed, the rows stay pending, and the relay
    takes them once they are older than its grace — not before (the worker may be publishing them)."""
    from nameko import config

    from shared.dependencies import _WakingTransaction

    class Away:
        def publish(self, *args, **kwargs):
            raise ConnectionRefusedError("the broker is away")

    pool = pool_factory()
    service = f"kit{uuid.uuid4().hex[:6]}"
    queue = _relay_queue(service)
    with _WakingTransaction(pool.transaction(), Relay(pool, Away(), service)) as uow:
        sent = uow.publish("thing.happened", {"n": 2})
    relay = Relay(pool, Publisher(config["AMQP_URI"], declare=[event_exchange(service)]), service, grace=1.0)
    assert relay.publish_batch() == 0  # too fresh: the worker's to publish
    eventlet.sleep(1.1)
    assert relay.publish_batch() == 1
    assert [message["event_id"] for message in _received(queue)] == [sent["event_id"]]


def test_without_publish_at_commit_a_commit_wakes_the_relay_instead(pool_factory):
    """OUTBOX.PUBLISH_AT_COMMIT off: the worker publishes nothing itself; the relay is woken and,
    with no grace, takes the fresh row at once (the way every commit worked before issue 11)."""
    from shared.dependencies import _WakingTransaction

    pool = pool_factory()
    publisher = _Recorder()
    relay = Relay(pool, publisher, f"kit{uuid.uuid4().hex[:6]}", at_commit=False)
    with _WakingTransaction(pool.transaction(), relay) as uow:
        sent = uow.publish("thing.happened", {"n": 3})
    assert publisher.sent == [] and relay._wake.ready()
    assert relay.publish_batch() == 1 and publisher.sent[0]["event_id"] == sent["event_id"]


def test_taking_a_pooled_connection_does_not_yield_to_the_hub(pool_factory):
    """Issue 11: the check that a pooled connection is still alive used eventlet's green select,
    which, even with a timeout of 0, runs a turn of the hub (and any green thread ready to run)
    on every checkout; it is the operating system's select now."""
    pool = pool_factory()
    with pool.connection():  # opened, and kept in the pool
        pass
    ran = []
    eventlet.spawn_n(ran.append, "other green thread")
    with pool.connection() as conn:
        assert ran == [] and not conn.closed
    eventlet.sleep(0)
    assert ran == ["other green thread"]
