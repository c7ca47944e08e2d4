"""The order service's business metrics (shared.metrics): outcomes counted from the events it
commits, and gauges of what waits (sagas in progress, credit holds) refreshed by its timer."""
from shared import metrics

SERVICE = "order"
OUTCOMES = {"order.confirmed": "confirmed", "order.credit_held": "credit_hold", "order.cancelled": "cancelled"}

for _event_type, _outcome in OUTCOMES.items():
    metrics.ORDERS.labels(SERVICE, _outcome)  # every series exists from the start (increase() sees the first)
    metrics.on_event(_event_type, lambda data, outcome=_outcome: metrics.ORDERS.labels(SERVICE, outcome).inc())


def set_gauges(row):
    metrics.SAGAS_IN_PROGRESS.labels(SERVICE).set(row["sagas"])
    metrics.SAGA_OLDEST_AGE.labels(SERVICE).set(float(row["saga_age"]))
    metrics.CREDIT_HOLDS_WAITING.labels(SERVICE).set(row["holds"])
    metrics.CREDIT_HOLD_OLDEST_AGE.labels(SERVICE).set(float(row["hold_age"]))
