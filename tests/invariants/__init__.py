"""The invariant checker (issue 9): asks every service for its books over RPC (`get_books`, read
only) and checks them across services — stock, reservations, credit, invoices, balances, document
numbers, sagas, outboxes, parked messages (tests/invariants/rules.py).

    python -m tests.invariants            # against the `make up` platform (AMQP_URI from env/.env)
    make verify                           # the same

    from tests.invariants import collect, check
    violations = check(collect(rpc))      # in a test, with its own ClusterRpcClient
"""
from tests.invariants.rules import RULES, Violation, check  # noqa: F401

SERVICES = ("customer", "order", "inventory", "billing", "aftersales")


def collect(rpc, services=SERVICES):
    """{service: its books} from a nameko ClusterRpcClient; a service that does not answer
    (not started) is left out, and the rules that need it are skipped."""
    from nameko.exceptions import UnknownService

    books = {}
    for name in services:
        try:
            books[name] = getattr(rpc, name).get_books()
        except UnknownService:
            continue
    return books


def verify(rpc, services=SERVICES, strict=False):
    """The violations found in the books of `services` (an empty list when they agree)."""
    return check(collect(rpc, services), strict=strict)
