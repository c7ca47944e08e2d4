"""The billing service's business metrics (shared.metrics), counted from the events it commits:
invoices issued and their amount by kind (red-letter invoices count the reversed amount), receipts
confirmed and their amount."""
from decimal import Decimal

from shared import metrics

SERVICE = "billing"

for _kind in ("special", "ordinary", "red_letter"):
    metrics.INVOICES_ISSUED.labels(SERVICE, _kind)
    metrics.INVOICED_AMOUNT.labels(SERVICE, _kind)
metrics.RECEIPTS.labels(SERVICE)
metrics.RECEIPTS_AMOUNT.labels(SERVICE)


def _invoice(kind, total):
    metrics.INVOICES_ISSUED.labels(SERVICE, kind).inc()
    metrics.INVOICED_AMOUNT.labels(SERVICE, kind).inc(float(abs(Decimal(total))))


def _receipt(amount):
    metrics.RECEIPTS.labels(SERVICE).inc()
    metrics.RECEIPTS_AMOUNT.labels(SERVICE).inc(float(Decimal(amount)))


metrics.on_event("invoice.issued", lambda data: _invoice(data["kind"], data["total"]))
metrics.on_event("invoice.reversed", lambda data: _invoice("red_letter", data["total"]))
metrics.on_event("receipt.confirmed", lambda data: _receipt(data["amount"]))
