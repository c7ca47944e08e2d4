"""The warehouse: catalog, stock, reservations, deliveries (issue 4).

For now the service runs with its own database (kit tables: outbox, inbox, idempotency keys,
document numbers), health, readiness and metrics; its business capabilities come with its issue.
"""
from shared.dependencies import Database
from shared.service import ServiceBase


class InventoryService(ServiceBase):
    name = "inventory"

    db = Database()
