"""The database or the broker gone for a moment, as callers should see it.

A lost PostgreSQL connection or an unreachable RabbitMQ is not an internal error of the request:
the service is unavailable for a moment (`ServiceUnavailable`: 503 with Retry-After at the
gateway), and a client resends with the same Idempotency-Key. Used by the kit's RPC entrypoint
(what a service answers) and the gateway's error table (what it answers for its own calls).
"""
import kombu.exceptions

from shared.db import connection_lost
from shared.errors import ServiceUnavailable

# the broker gone, or a caller's reply queue gone, while sending: nothing a worker can do about either
BROKER_ERRORS = (kombu.exceptions.KombuError, OSError)


def as_unavailable(exc):
    """`exc` as the caller should see it: ServiceUnavailable (DB_UNAVAILABLE, BROKER_UNAVAILABLE)
    for a lost database connection or an unreachable broker; anything else unchanged."""
    if connection_lost(exc):
        return ServiceUnavailable("the database is unavailable; retry shortly", code="DB_UNAVAILABLE")
    if isinstance(exc, (kombu.exceptions.OperationalError, ConnectionError)):
        return ServiceUnavailable("the message broker is unavailable; retry shortly", code="BROKER_UNAVAILABLE")
    return exc
