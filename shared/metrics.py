"""Prometheus collectors, defined once per process (module level), labelled by service."""
import logging

from prometheus_client import Counter, Gauge, Histogram

log = logging.getLogger(__name__)

LABELS = ("service", "type", "method", "outcome")

_CHILDREN = {}


def child(metric, *labels):
    """`metric.labels(*labels)`, looked up once per process: prometheus_client's `labels` checks
    the values, turns each into a string and takes a lock on every call, and the kit asks it
    several times per RPC, event and database connection (issue 11). Label values must already
    be strings, as the kit's are."""
    key = (metric, labels)
    found = _CHILDREN.get(key)
    if found is None:
        found = _CHILDREN[key] = metric.labels(*labels)
    return found


ENTRYPOINT_REQUESTS = Counter(
    "sales_entrypoint_requests_total",
    "Entrypoint calls (RPC, event handler, HTTP, timer) by outcome",
    LABELS,
)
ENTRYPOINT_DURATION = Histogram(
    "sales_entrypoint_duration_seconds",
    "Entrypoint duration",
    LABELS,
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
RPC_CLIENT_DURATION = Histogram(
    "sales_rpc_client_duration_seconds",
    "Outgoing RPC calls as the caller saw them",
    ("service", "target", "method", "outcome"),
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
OUTBOX_BACKLOG = Gauge("sales_outbox_backlog", "Outbox rows not yet published", ("service",))
OUTBOX_OLDEST_AGE = Gauge(
    "sales_outbox_oldest_age_seconds", "Age of the oldest unpublished outbox row", ("service",)
)
OUTBOX_PUBLISHED = Counter("sales_outbox_published_total", "Events published by the relay", ("service",))
OUTBOX_PUBLISH_ERRORS = Counter(
    "sales_outbox_publish_errors_total", "Relay batches that failed to publish", ("service",)
)
FAILED_MESSAGES = Counter(
    "sales_failed_messages_total",
    "Messages parked in failed_messages after retries",
    ("service", "handler", "event_type"),
)
MESSAGE_RETRIES = Counter(
    "sales_message_retries_total", "Transient handler failures retried", ("service", "handler")
)
DUPLICATE_MESSAGES = Counter(
    "sales_duplicate_messages_total", "Events skipped because the inbox had them", ("service", "handler")
)
BUILD_INFO = Gauge(
    "sales_build_info", "1 for the version of the service and of the kit this process runs",
    ("service", "version", "kit_version"),
)
DB_POOL_IN_USE = Gauge("sales_db_pool_connections_in_use", "Connections lent out", ("service",))
DB_POOL_MAX = Gauge("sales_db_pool_connections_max", "Pool size", ("service",))
DB_POOL_WAIT = Histogram(
    "sales_db_pool_wait_seconds", "Time spent waiting for a connection", ("service",),
    buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5),
)
DB_POOL_TIMEOUTS = Counter("sales_db_pool_timeouts_total", "Requests that found no connection in time", ("service",))

# -- Business metrics (dashboards and alerts: deploy/prometheus, deploy/grafana) -----------------
# Counters count a fact once: increment after the commit that made it true
# (`uow.after_commit.append(...)`), never on an idempotent replay of the same request or event.
# Amounts are CNY as float, for dashboards only (money itself stays Decimal).
# Gauges read from a service's own tables hold the same value in every replica: refresh them in
# every replica (a cheap read, no lock) and aggregate with `max by (service)`, never `sum`.
ORDERS = Counter(
    "sales_orders_total",
    "Sales orders reaching an outcome: confirmed, credit_hold (waiting for release), cancelled",
    ("service", "outcome"),
)
SAGAS_IN_PROGRESS = Gauge(
    "sales_sagas_in_progress", "Order sagas started and not yet confirmed or compensated (same in every replica)",
    ("service",),
)
SAGA_OLDEST_AGE = Gauge(
    "sales_saga_oldest_age_seconds", "Age of the oldest saga still in progress, 0 if none (same in every replica)",
    ("service",),
)
CREDIT_HOLDS_WAITING = Gauge(
    "sales_credit_holds_waiting", "Orders on credit hold waiting for release (same in every replica)", ("service",),
)
CREDIT_HOLD_OLDEST_AGE = Gauge(
    "sales_credit_hold_oldest_age_seconds",
    "How long the oldest order on credit hold has waited, 0 if none (same in every replica)", ("service",),
)
INVOICES_ISSUED = Counter(
    "sales_invoices_issued_total", "Invoices issued by kind: special, ordinary, red_letter", ("service", "kind"),
)
INVOICED_AMOUNT = Counter(
    "sales_invoiced_amount_total",
    "Amount invoiced in CNY including VAT, by kind (red_letter counts the reversed amount, positive)",
    ("service", "kind"),
)
RECEIPTS = Counter("sales_receipts_total", "Customer receipts confirmed by finance", ("service",))
RECEIPTS_AMOUNT = Counter("sales_receipts_amount_total", "Amount of the receipts confirmed, in CNY", ("service",))
STOCKOUTS = Counter(
    "sales_stockouts_total", "Stock reservations refused for insufficient stock (INSUFFICIENT_STOCK)", ("service",),
)
SERVICE_REQUESTS_OVERDUE = Gauge(
    "sales_service_requests_overdue", "Open service requests past their SLA deadline (same in every replica)",
    ("service",),
)
FAILED_MESSAGES_UNRESOLVED = Gauge(
    "sales_failed_messages_unresolved",
    "Rows of failed_messages not yet resolved (replayed or dismissed); same in every replica", ("service",),
)

EVENTS_PUBLISHED = Counter(
    "sales_events_total", "Events committed to the outbox, by type (business activity)", ("service", "event_type"),
)

# Business counters that follow committed events: a service registers, for an event type it
# publishes, what to count (`on_event("order.confirmed", lambda data: ORDERS.labels(...).inc())`).
# They run after the commit only, so a rolled-back command or an idempotent replay counts nothing.
_EVENT_METRICS = {}


def on_event(event_type, count):
    _EVENT_METRICS.setdefault(event_type, []).append(count)


def count_events(service, envelopes):
    for envelope in envelopes:
        event_type = envelope["event_type"]
        child(EVENTS_PUBLISHED, service, event_type).inc()
        for count in _EVENT_METRICS.get(event_type, ()):
            try:
                count(envelope["data"])
            except Exception:  # a metric never fails a committed command
                log.exception("business metric for %s failed", event_type)
