"""Entrypoints of the kit: `rpc` and `event_handler`, on quorum queues when configured.

nameko's own `rpc` and `event_handler` declare classic queues and take no queue arguments; these
thin subclasses add them (QUORUM_QUEUES: true → `x-queue-type: quorum`, a delivery limit and a
dead-letter exchange for messages that keep failing). A queue's type cannot change once declared:
switching an existing deployment means new queue names or draining the old ones (see README).

`rpc` sends a kit error back as its registered kind (shared.errors), code and fields intact.

`event_handler` makes a consumer idempotent and loss-free:
  * the handler runs inside a unit of work that first records the event in the inbox, so a
    duplicate delivery is skipped and the effects and the inbox row commit together;
  * transient failures (database unavailable, deadlock, serialisation) are retried with backoff;
  * a message that still fails is parked in `failed_messages` (metric + error log) and acked;
  * if even parking fails the message is requeued after a pause, never acked and lost.
Handlers are written `def on_customer_created(self, uow, event)`; the service must have a
`Database` dependency named `db`.
"""
import functools
import json
import logging

import eventlet
from kombu import Exchange, Queue
from marshmallow import EXCLUDE, ValidationError
from nameko import config as nameko_config
from nameko import events as nameko_events
from nameko import rpc as nameko_rpc
from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from shared import config, envelope as envelopes, metrics
from shared.db import TRANSIENT_ERRORS, dumps
from shared.outages import BROKER_ERRORS, as_unavailable
from shared.errors import SalesError, ServiceUnavailable, transportable

log = logging.getLogger(__name__)

RETRYABLE = TRANSIENT_ERRORS + (ServiceUnavailable,)
DEAD_LETTER_EXCHANGE = "sales.dlx"
PARKED_QUEUE = "sales.parked"
def queue_arguments(dead_letter=True):
    if not config.as_bool(config.get("QUORUM_QUEUES", False)):
        return {}
    args = {"x-queue-type": "quorum"}
    if dead_letter:
        args["x-delivery-limit"] = int(config.get("QUEUE_DELIVERY_LIMIT", 20))
        args["x-dead-letter-exchange"] = DEAD_LETTER_EXCHANGE
    return args


def dead_letter_declarations():
    """The dead-letter exchange and the queue that keeps what it receives (declared by consumers)."""
    exchange = Exchange(DEAD_LETTER_EXCHANGE, type="fanout", durable=True)
    return exchange, Queue(PARKED_QUEUE, exchange=exchange, durable=True,
                           queue_arguments={"x-queue-type": "quorum"})


class RpcConsumer(nameko_rpc.RpcConsumer):
    def setup(self):
        super().setup()
        self.queue.queue_arguments = queue_arguments(dead_letter=False)


class Rpc(nameko_rpc.Rpc):
    rpc_consumer = RpcConsumer()

    def __init__(self, expected_exceptions=(SalesError,), **kwargs):
        super().__init__(expected_exceptions=expected_exceptions, **kwargs)

    def handle_result(self, message, worker_ctx, result, exc_info):
        """Reply — a lost database connection as ServiceUnavailable (DB_UNAVAILABLE, 503 at the
        gateway) rather than an internal error. If the reply cannot be sent (the broker went away),
        log it and go on: nameko would
        otherwise let the error kill the whole container — the process exits on a broker restart.
        The request is not acked, so the broker gives it again once back (the command runs again,
        idempotent by its request_id), and the caller, whose reply never came, resends it."""
        if exc_info is not None and as_unavailable(exc_info[1]) is not exc_info[1]:
            exc_info = (ServiceUnavailable, as_unavailable(exc_info[1]), exc_info[2])
        try:
            if exc_info is not None and isinstance(exc_info[1], SalesError):
                sent = transportable(exc_info[1])
                self.rpc_consumer.handle_result(message, result, (type(sent), sent, exc_info[2]))
                return result, exc_info
            return super().handle_result(message, worker_ctx, result, exc_info)
        except BROKER_ERRORS as exc:
            log.warning("RPC %s: reply not sent (%s: %s); the request will be redelivered",
                        self.method_name, type(exc).__name__, exc)
            return result, exc_info


rpc = Rpc.decorator


class EventHandler(nameko_events.EventHandler):
    """Service-pool, reliable, quorum-capable; requeues (after a pause) only if parking failed."""

    def __init__(self, source_service, event_type, **kwargs):
        kwargs.setdefault("handler_type", nameko_events.SERVICE_POOL)
        kwargs.setdefault("reliable_delivery", True)
        kwargs.setdefault("requeue_on_error", True)
        super().__init__(source_service, event_type, **kwargs)

    def setup(self):
        super().setup()
        args = queue_arguments()
        self.queue.queue_arguments = args
        if args.get("x-dead-letter-exchange"):
            exchange, parked = dead_letter_declarations()
            self._declare_dead_letter(exchange, parked)

    def _declare_dead_letter(self, exchange, parked):
        from nameko.amqp.publish import get_connection

        with get_connection(config.get("AMQP_URI")) as conn:
            channel = conn.default_channel
            exchange(channel).declare()
            parked(channel).declare()

    def handle_message_processed(self, message, result=None, exc_info=None):
        """Ack (or requeue) the message. If the broker went away meanwhile, log it and go on: the
        error would otherwise kill the whole container (the process exited during a RabbitMQ
        restart). Unacked, the message is delivered again once the broker is back, and the
        inbox skips it if it was applied."""
        try:
            if exc_info is not None and self.requeue_on_error:
                eventlet.sleep(float(config.get("EVENT_REQUEUE_DELAY", 2.0)))
                self.consumer.requeue_message(message)
            else:
                self.consumer.ack_message(message)
        except BROKER_ERRORS as exc:
            log.warning("event %s: not acknowledged (%s: %s); the broker will deliver it again",
                        self.method_name, type(exc).__name__, exc)


def event_handler(source_service, event_type, expects=None, **kwargs):
    """Decorate `def handler(self, uow, event)` as an idempotent, retrying, parking consumer.

    `expects` is the consumer's marshmallow schema of the `data` it reads (declare exactly those
    fields; unknown ones are ignored): the handler receives `event["data"]` loaded with it, data
    that does not fit is parked, and `tests/contract/` checks it against the producer's JSON
    Schema, so a producer cannot drop or retype a field this consumer reads without failing the
    build.
    """

    def decorator(fn):
        @functools.wraps(fn)
        def entry(self, body):
            return _handle(self, fn, body, expects)

        entry.sales_consumes = Consumes(source_service, event_type, expects, fn.__name__)
        return EventHandler.decorator(source_service, event_type, **kwargs)(entry)

    return decorator


class Consumes:
    """What a handler declares it consumes (read by the contract tests)."""

    def __init__(self, source, event_type, expects, handler):
        self.source = source
        self.event_type = event_type
        self.expects = expects
        self.handler = handler

    def load(self, data):
        if self.expects is None:
            return data
        return _schema(self.expects).load(data, unknown=EXCLUDE)


_SCHEMAS = {}


def _schema(expects):
    """The consumer's schema, made once per class (a marshmallow schema loads any number of times)."""
    if not isinstance(expects, type):
        return expects
    found = _SCHEMAS.get(expects)
    if found is None:
        found = _SCHEMAS[expects] = expects()
    return found


def _handle(service, fn, body, expects=None):
    handler = f"{service.name}.{fn.__name__}"
    database = service.db
    try:
        event = envelopes.check(body if isinstance(body, dict) else json.loads(body))
    except (ValueError, TypeError) as exc:
        _park(database, handler, body, None, f"malformed event: {exc}", service.name)
        return None
    raw = event
    if expects is not None:
        try:
            event = dict(event, data=Consumes(None, None, expects, None).load(event["data"]))
        except ValidationError as exc:
            _park(database, handler, raw, raw.get("event_type"),
                  f"event data does not fit {getattr(expects, '__name__', expects)}: {exc.messages}", service.name)
            return None
    attempts = int(config.get("EVENT_RETRY_ATTEMPTS", 5))
    backoff = float(config.get("EVENT_RETRY_BACKOFF", 0.2))
    try:
        try:  # the first attempt without building a tenacity Retrying for every event (issue 11)
            return _apply(service, fn, database, handler, event)
        except RETRYABLE:
            if attempts <= 1:
                raise
            metrics.child(metrics.MESSAGE_RETRIES, service.name, handler).inc()
            eventlet.sleep(min(backoff, 5))
        # attempts 2..n, waiting as one Retrying over all n would: backoff × 2^(attempt - 1), at most 5 s
        retrying = Retrying(
            stop=stop_after_attempt(attempts - 1),
            wait=wait_exponential(multiplier=backoff * 2, max=5),
            retry=retry_if_exception_type(RETRYABLE),
            before_sleep=lambda state: metrics.child(metrics.MESSAGE_RETRIES, service.name, handler).inc(),
            reraise=True,
        )
        for attempt in retrying:
            with attempt:
                return _apply(service, fn, database, handler, event)
    except Exception as exc:  # parked below; re-raised (→ requeue) only if parking fails
        _park(database, handler, raw, raw.get("event_type"),
              f"{type(exc).__name__}: {exc}", service.name, attempts=attempts)
    return None


def _apply(service, fn, database, handler, event):
    """One attempt: the inbox claim and the handler's effects in one transaction."""
    with database.transaction() as uow:
        if not uow.claim_event(handler, event):
            metrics.child(metrics.DUPLICATE_MESSAGES, service.name, handler).inc()
            log.info("duplicate event %s skipped", event["event_id"], extra={"handler": handler})
            return None
        return fn(service, uow, event)


def _park(database, handler, payload, event_type, error, service_name, attempts=1):
    event_id = payload.get("event_id") if isinstance(payload, dict) else None
    with database.transaction() as uow:
        uow.execute(
            "INSERT INTO failed_messages (handler, event_type, event_id, payload, error, attempts) "
            "VALUES (%s, %s, %s, %s, %s, %s) "
            "ON CONFLICT (handler, event_id) WHERE event_id IS NOT NULL DO UPDATE SET "
            "attempts = failed_messages.attempts + EXCLUDED.attempts, error = EXCLUDED.error, "
            "last_failed_at = now(), resolved_at = NULL",
            (handler, event_type, event_id, dumps(payload if isinstance(payload, dict) else {"raw": str(payload)}),
             error, attempts),
        )
    metrics.FAILED_MESSAGES.labels(service_name, handler, event_type or "unknown").inc()
    log.error("event parked in failed_messages", extra={"handler": handler, "event_id": event_id, "error": error})
