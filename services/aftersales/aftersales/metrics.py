"""The aftersales service's own Prometheus collectors (module level, labelled by service, as the
kit's are): what SREs watch besides the kit's entrypoint, outbox and inbox metrics."""
from prometheus_client import Counter

ESCALATIONS = Counter(
    "sales_service_request_escalations_total",
    "Overdue service requests escalated to a sales manager (FR-104), by whether one was found",
    ("service", "manager_found"),
)
RESOLUTION_ACTIONS = Counter(
    "sales_resolution_action_attempts_total",
    "Attempts at resolution actions in other departments (order.request_return, order.create_replacement)",
    ("service", "kind", "outcome"),  # outcome: done | retrying | failed
)
