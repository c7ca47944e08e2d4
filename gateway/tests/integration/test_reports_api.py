"""Issue 8 at the gateway over real HTTP, PostgreSQL and RabbitMQ, with stand-ins for the services:
a part whose service never answers is left out after its timeout (the rest of the answer comes,
`Sales-Partial` names it), its owner's 404 decides, and each credential has its rate limit (429
with Retry-After) while health, metrics and the docs are never limited. The real services behind
the gateway: tests/e2e/test_reports_*.py."""
import uuid

import pytest

from gateway.tests.conftest import UPSTREAM, WorkerData
from shared.entrypoints import rpc
from shared.errors import NotFound

API = "api/v1"
CUSTOMER = "3f2b8c1e-8a9b-4d8e-9c1f-1a2b3c4d5e6f"
MISSING = "9a2b8c1e-8a9b-4d8e-9c1f-1a2b3c4d5e6f"


class FakeCustomer:
    name = "customer"
    data = WorkerData()

    @rpc
    def get_customer_overview(self, *, actor, customer_id, visits=5, opportunities=10):
        UPSTREAM.calls.append({"method": "get_customer_overview", "visits": visits, "opportunities": opportunities})
        if customer_id == MISSING:
            raise NotFound(f"customer {customer_id} not found")
        return {"customer": {"id": customer_id, "number": "CUS-2026-000001", "name": "Acme", "status": "key",
                             "owner_id": actor["staff_id"], "owner_name": "Wang Fang", "owner_team": "east-1",
                             "contact_due_by": None, "created_at": "2026-01-05T02:00:00+00:00"},
                "open_opportunities": {"count": 0, "amount": "0.00", "weighted_amount": "0.00", "items": []},
                "last_visits": []}


class FakeOrder:
    name = "order"

    @rpc
    def list_open_orders(self, *, actor, customer_id, limit=10):
        return {"count": 1, "amount": "113.00", "items": [{"id": str(uuid.uuid4()), "number": "SO-2026-000001",
                                                           "status": "confirmed", "customer_id": customer_id}]}


class SilentBilling:
    """Takes the call and never answers (until the test ends)."""

    name = "billing"

    @rpc
    def get_credit_summary(self, *, actor, customer_id):
        UPSTREAM.release.wait()


class FakeAftersales:
    name = "aftersales"

    @rpc
    def list_requests(self, *, actor, filters=None, limit=None, cursor=None):
        return {"items": [], "next_cursor": None}


@pytest.fixture
def composed(start_gateway, container_factory):
    session = start_gateway(customer=False, GATEWAY={"VIEW_TIMEOUT": 0.5})
    for fake in (FakeCustomer, FakeOrder, SilentBilling, FakeAftersales):
        container_factory(fake, session.config).start()
    return session


def test_a_part_whose_service_never_answers_is_left_out_and_named(composed, token_for):
    rep = token_for("sales_rep", composed)
    # the client would give up after 10 s; billing never answers; the gateway answers anyway
    answer = composed.get(f"{API}/customers/{CUSTOMER}/overview?items=3&visits=2", headers=rep, timeout=10)
    assert answer.status_code == 200 and answer.headers["Sales-Partial"] == "billing"
    body = answer.json()
    assert body["credit"] is None and body["open_orders"]["count"] == 1 and body["profile"]["name"] == "Acme"
    assert body["unavailable"] == [{"service": "billing", "parts": ["credit"], "reason": "timeout"}]
    assert body["owner"] == {"id": body["profile"]["owner_id"], "name": "Wang Fang", "team": "east-1"}
    assert UPSTREAM.of("get_customer_overview")[0]["opportunities"] == 3
    # the owner of the record decides: someone else's customer is 404 whatever the other parts say
    assert composed.get(f"{API}/customers/{MISSING}/overview", headers=rep, timeout=10).status_code == 404
    refused = composed.get(f"{API}/customers/{CUSTOMER}/overview?items=0", headers=rep)
    assert refused.status_code == 422 and "items" in refused.json()["errors"]
    # finance reads credit but not service requests: that part is left out by role, not as missing
    finance = composed.get(f"{API}/customers/{CUSTOMER}/overview", headers=token_for("finance", composed),
                           timeout=10).json()
    assert finance["open_service_requests"] is None and finance["unavailable"][0]["service"] == "billing"


def test_each_credential_has_its_rate_limit_and_health_and_docs_have_none(start_gateway, token_for):
    gateway = start_gateway(GATEWAY={"RATE_LIMIT_RATE": 0.2, "RATE_LIMIT_BURST": 3})
    first, second = token_for("admin", gateway), token_for("admin", gateway)
    assert [gateway.get(f"{API}/me", headers=first).status_code for _ in range(3)] == [200, 200, 200]
    limited = gateway.get(f"{API}/me", headers=first)
    assert limited.status_code == 429 and limited.headers["Content-Type"] == "application/problem+json"
    assert limited.json()["code"] == "RATE_LIMITED" and int(limited.headers["Retry-After"]) >= 1
    assert limited.json()["retry_after"] == int(limited.headers["Retry-After"]) and limited.headers["X-Request-Id"]
    assert gateway.get(f"{API}/me", headers=second).status_code == 200  # another credential is not touched
    for path in ("health", "ready", "metrics", "docs", f"{API}/openapi.json"):
        assert {gateway.get(path).status_code for _ in range(5)} == {200}, path
