"""After-sales: service requests under SLA, repairs, feedback (issue 7).

For now the service runs with its own database (kit tables: outbox, inbox, idempotency keys,
document numbers), health, readiness and metrics; its business capabilities come with its issue.
"""
from shared.dependencies import Database
from shared.service import ServiceBase


class AftersalesService(ServiceBase):
    name = "aftersales"

    db = Database()
