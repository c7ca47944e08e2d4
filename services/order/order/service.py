"""The sales desk: quotes, contracts, orders and the order saga (issue 5).

For now the service runs with its own database (kit tables: outbox, inbox, idempotency keys,
document numbers), health, readiness and metrics; its business capabilities come with its issue.
"""
from shared.dependencies import Database
from shared.service import ServiceBase


class OrderService(ServiceBase):
    name = "order"

    db = Database()
