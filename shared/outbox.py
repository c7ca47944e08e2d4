"""The outbox relay: publishes committed outbox rows to the service's event exchange.

The worker that committed events publishes them itself, right after the commit
(`Relay.publish_committed`: with publisher confirms, then one UPDATE marks them sent). The relay
polls for whatever that left pending — the worker died between commit and publish, the broker
was away — once a row is older than `grace` (so it does not race the worker for fresh ones).

The relay runs in every replica at once: each batch is claimed with `FOR UPDATE SKIP LOCKED`,
published with publisher confirms, and marked sent in the same transaction. A crash after
publishing and before the mark publishes the events again (at-least-once; consumers' inboxes
drop duplicates), never zero times.
"""
import json
import logging
import time

import eventlet
from eventlet.event import Event
from kombu import Exchange

from shared import metrics

log = logging.getLogger(__name__)


def event_exchange(service):
    """nameko's exchange for `service`'s events (`<service>.events`, durable topic)."""
    return Exchange(f"{service}.events", type="topic", durable=True, delivery_mode=2)


class Relay:
    def __init__(self, pool, publisher, service, batch_size=100, poll_interval=1.0,
                 stats_interval=5.0, retention_days=7, grace=0.0, at_commit=True, start_delay=0.0):
        self.pool = pool
        self.publisher = publisher
        self.service = service
        self.exchange = event_exchange(service)
        self.batch_size = batch_size
        self.poll_interval = poll_interval
        self.stats_interval = stats_interval
        self.retention_days = retention_days
        self.grace = grace  # rows younger than this are the committing worker's to publish
        self.at_commit = at_commit
        self._wake = Event()
        self._running = False
        self.start_delay = start_delay
        # nothing is published during the start delay, by the relay or by a committing worker
        self._publishing = not start_delay
        self._last_stats = 0.0

    def committed(self, written):
        """After a commit that wrote the rows `written`: publish them from the committing worker,
        or (OUTBOX.PUBLISH_AT_COMMIT off) wake the relay to publish them. During the relay's start
        delay (OUTBOX.START_DELAY: every service declares its queues before any publishes, as when
        switching to quorum queues) they wait for the relay like every other row."""
        if self.at_commit and self._publishing:
            self.publish_committed(written)
        else:
            self.wake()

    def publish_committed(self, written):
        """Publish the events a commit just wrote (`UnitOfWork.outbox`), from the committing
        worker, and mark them sent: the broker's confirm and one UPDATE. Waking the relay for a
        batch of one cost a switch to its green thread and BEGIN, SELECT … FOR UPDATE SKIP LOCKED,
        the publish, UPDATE and COMMIT (issue 11).

        At least once, as the relay: a row is marked only after the broker confirmed its event.
        Should anything fail here (the broker away, the database gone), the rows stay pending and
        the relay publishes them once they are older than `grace`; the request that committed
        them is not failed by it. No retry here: a broker that is away is the relay's business."""
        try:
            for event_id, event_type, payload, headers in written:
                self.publisher.publish(
                    payload, exchange=self.exchange, routing_key=event_type, extra_headers=headers,
                    message_id=event_id, content_type="application/json", content_encoding="utf-8",
                    retry=False,
                )
            with self.pool.autocommit() as uow:
                uow.execute(
                    "UPDATE outbox SET published_at = now(), attempts = attempts + 1 "
                    "WHERE event_id = ANY(%s::uuid[]) AND published_at IS NULL",
                    ([str(row[0]) for row in written],),
                )
        except Exception:  # pending rows: the relay's poll publishes them
            metrics.child(metrics.OUTBOX_PUBLISH_ERRORS, self.service).inc()
            log.warning("%s committed event(s) not published at once; left to the outbox relay", len(written),
                        exc_info=True)
            return
        metrics.child(metrics.OUTBOX_PUBLISHED, self.service).inc(len(written))

    def wake(self):
        """Publish pending rows now rather than at the next poll."""
        if not self._wake.ready():
            self._wake.send(True)

    def stop(self):
        self._running = False
        self.wake()

    def run(self):
        self._running = True
        if self.start_delay:
            eventlet.sleep(self.start_delay)
        self._publishing = True
        failures = 0
        while self._running:
            try:
                published = self.publish_batch()
                self.update_stats()
                failures = 0
            except Exception:  # keep relaying whatever happened; the rows stay pending
                failures += 1
                metrics.OUTBOX_PUBLISH_ERRORS.labels(self.service).inc()
                log.exception("outbox relay batch failed (attempt %s)", failures)
                eventlet.sleep(min(30.0, 0.5 * 2 ** min(failures, 6)))
                continue
            if published >= self.batch_size:
                continue
            with eventlet.Timeout(self.poll_interval, False):
                self._wake.wait()
            if self._wake.ready():
                self._wake.reset()

    def publish_batch(self):
        with self.pool.connection() as conn:
            with conn.cursor() as cur:
                cur.execute(
                    "SELECT id, event_type, payload, headers FROM outbox WHERE published_at IS NULL "
                    "AND created_at <= now() - make_interval(secs => %s) "
                    "ORDER BY id LIMIT %s FOR UPDATE SKIP LOCKED",
                    (self.grace, self.batch_size),
                )
                rows = cur.fetchall()
                if not rows:
                    conn.rollback()
                    return 0
                for _id, event_type, payload, headers in rows:
                    self.publisher.publish(
                        payload,
                        exchange=self.exchange,
                        routing_key=event_type,
                        extra_headers=headers or {},
                        message_id=payload.get("event_id"),
                    )
                cur.execute(
                    "UPDATE outbox SET published_at = now(), attempts = attempts + 1 WHERE id = ANY(%s)",
                    ([row[0] for row in rows],),
                )
            conn.commit()
        metrics.child(metrics.OUTBOX_PUBLISHED, self.service).inc(len(rows))
        log.debug("published %s event(s)", len(rows))
        return len(rows)

    def update_stats(self, force=False):
        now = time.monotonic()
        if not force and now - self._last_stats < self.stats_interval:
            return
        self._last_stats = now
        refresh_stats(self.pool, self.service, self.retention_days)


def refresh_stats(pool, service, retention_days=7):
    """The outbox backlog and age and the unresolved parked messages, as gauges; published rows
    past retention are dropped (any replica may do it)."""
    with pool.connection() as conn:
        with conn.cursor() as cur:
            cur.execute(
                "SELECT count(*), coalesce(extract(epoch FROM now() - min(created_at)), 0) "
                "FROM outbox WHERE published_at IS NULL"
            )
            backlog, age = cur.fetchone()
            cur.execute("SELECT count(*) FROM failed_messages WHERE resolved_at IS NULL")
            (unresolved,) = cur.fetchone()
            cur.execute(
                "DELETE FROM outbox WHERE id IN (SELECT id FROM outbox WHERE published_at < now() - "
                "make_interval(days => %s) LIMIT 1000 FOR UPDATE SKIP LOCKED)",
                (retention_days,),
            )
        conn.commit()
    metrics.OUTBOX_BACKLOG.labels(service).set(backlog)
    metrics.OUTBOX_OLDEST_AGE.labels(service).set(float(age))
    metrics.FAILED_MESSAGES_UNRESOLVED.labels(service).set(unresolved)


def watch_stats(pool, service, interval=5.0, running=lambda: True):
    """The gauges of `refresh_stats` kept fresh in a process that runs no relay (the gateway, a
    service with OUTBOX.ENABLED false): its parked messages must alert too."""
    while running():
        try:
            refresh_stats(pool, service)
        except Exception:  # the database may be away for a while; the next round tries again
            log.warning("could not refresh the outbox and parked-message gauges", exc_info=True)
        eventlet.sleep(interval)


def loads(payload):
    return payload if isinstance(payload, dict) else json.loads(payload)
