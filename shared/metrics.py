"""Prometheus collectors, defined once per process (module level), labelled by service."""
from prometheus_client import Counter, Gauge, Histogram

LABELS = ("service", "type", "method", "outcome")

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
