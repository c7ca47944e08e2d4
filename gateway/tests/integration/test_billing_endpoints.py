"""API.md "Billing" over real HTTP, PostgreSQL and RabbitMQ, with a stand-in billing service that
records what it is asked: who may call what (403 before any RPC), 422 before any RPC, filters and
pagination passed on, Idempotency-Key as the command's request_id, business errors with their
figures. The real billing service behind the gateway is tested end to end in tests/e2e."""
import uuid

import pytest

from gateway.tests.conftest import UPSTREAM, WorkerData
from shared.entrypoints import rpc
from shared.errors import BusinessRuleViolation

API = "api/v1"
CUSTOMER = "3f2b8c1e-8a9b-4d8e-9c1f-1a2b3c4d5e6f"
INVOICE = "6a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"


class FakeBilling:
    name = "billing"
    data = WorkerData()

    def _record(self, method, **kwargs):
        UPSTREAM.calls.append(dict(kwargs, method=method))

    @rpc
    def create_invoice(self, *, request_id, actor, delivery_ids, kind, remarks=None):
        self._record("create_invoice", request_id=request_id, actor=actor, delivery_ids=delivery_ids, kind=kind)
        if UPSTREAM.mode == "duplicate":
            raise BusinessRuleViolation("delivery already invoiced", code="ALREADY_INVOICED",
                                        delivery_ids=delivery_ids)
        return {"id": str(uuid.uuid5(uuid.UUID(request_id), "invoice")), "status": "draft", "kind": kind}

    @rpc
    def list_invoices(self, *, actor, filters=None, limit=None, cursor=None):
        self._record("list_invoices", actor=actor, filters=filters, limit=limit, cursor=cursor)
        return {"items": [], "next_cursor": None}

    @rpc
    def set_credit_limit(self, *, request_id, actor, customer_id, limit, reason):
        self._record("set_credit_limit", actor=actor, customer_id=customer_id, limit=limit, reason=reason)
        return {"customer_id": customer_id, "limit": limit}

    @rpc
    def allocate_receipt(self, *, request_id, actor, receipt_id, allocations, note=None):
        self._record("allocate_receipt", receipt_id=receipt_id, allocations=allocations)
        raise BusinessRuleViolation("over", code="OVER_ALLOCATION", requested="500.00", unallocated="400.00")

    @rpc
    def get_receivables_aging(self, *, actor, as_of=None, customer_id=None, limit=None, cursor=None):
        self._record("get_receivables_aging", actor=actor, as_of=as_of, customer_id=customer_id, limit=limit,
                     cursor=cursor)
        return {"as_of": as_of, "customers": [], "customer_count": 0, "next_cursor": None}

    @rpc
    def get_statement(self, *, actor, customer_id, month):
        self._record("get_statement", customer_id=customer_id, month=month)
        return {"customer_id": customer_id, "month": month}


@pytest.fixture
def gateway(start_gateway, container_factory):
    session = start_gateway()
    container_factory(FakeBilling, session.config).start()
    return session


def test_fr66_a_credit_limit_is_changed_by_finance_only_and_with_a_reason(gateway, token_for, upstream):
    body = {"limit": "500000.00", "reason": "bank guarantee received"}
    for role in ("sales_manager", "sales_rep", "sales_director", "admin"):
        answer = gateway.put(f"{API}/customers/{CUSTOMER}/credit", json=body, headers=token_for(role))
        assert answer.status_code == 403, role
    finance = token_for("finance")
    answer = gateway.put(f"{API}/customers/{CUSTOMER}/credit", json={"limit": "500000.00"}, headers=finance)
    assert answer.status_code == 422 and list(answer.json()["errors"]) == ["reason"]
    answer = gateway.put(f"{API}/customers/{CUSTOMER}/credit", json=dict(body, limit=500000.5), headers=finance)
    assert answer.status_code == 422 and "decimal string" in answer.json()["errors"]["limit"][0]
    assert upstream.calls == []
    answer = gateway.put(f"{API}/customers/{CUSTOMER}/credit", json=body, headers=finance)
    assert answer.status_code == 200 and answer.json()["limit"] == "500000.00"
    [call] = upstream.of("set_credit_limit")
    assert call["actor"]["role"] == "finance" and call["reason"] == "bank guarantee received"


def test_fr81_invoice_creation_roles_idempotency_and_business_errors(gateway, token_for, upstream):
    body = {"delivery_ids": [str(uuid.uuid4())], "kind": "special"}
    for role in ("warehouse", "service_engineer", "product_manager"):
        assert gateway.post(f"{API}/invoices", json=body, headers=token_for(role)).status_code == 403
    rep = dict(token_for("sales_rep"), **{"Idempotency-Key": "inv-" + uuid.uuid4().hex})
    first = gateway.post(f"{API}/invoices", json=body, headers=rep)
    assert first.status_code == 201 and first.headers["Location"] == f"/api/v1/invoices/{first.json()['id']}"
    again = gateway.post(f"{API}/invoices", json=body, headers=rep)
    assert (again.status_code, again.json()) == (201, first.json()) and len(upstream.of("create_invoice")) == 1
    assert gateway.post(f"{API}/invoices", json=dict(body, kind="proforma"), headers=rep).status_code == 422

    upstream.mode = "duplicate"
    refused = gateway.post(f"{API}/invoices", json=body, headers=token_for("sales_rep"))
    assert refused.status_code == 409 and refused.headers["Content-Type"] == "application/problem+json"
    assert refused.json()["code"] == "ALREADY_INVOICED" and refused.json()["delivery_ids"] == body["delivery_ids"]


def test_fr81_invoice_list_passes_filters_and_pagination(gateway, token_for, upstream):
    answer = gateway.get(f"{API}/invoices", params={"customer_id": CUSTOMER, "status": "issued", "red": "true",
                                                    "issued_from": "2026-06-01", "limit": 20},
                         headers=token_for("finance"))
    assert answer.status_code == 200 and answer.json() == {"items": [], "next_cursor": None}
    [call] = upstream.of("list_invoices")
    assert call["filters"] == {"customer_id": CUSTOMER, "status": "issued", "red": True,
                               "issued_from": "2026-06-01"}
    assert (call["limit"], call["cursor"]) == (20, None)
    bad = gateway.get(f"{API}/invoices", params={"status": "paid", "colour": "red", "limit": 500},
                      headers=token_for("finance"))
    assert bad.status_code == 422 and set(bad.json()["errors"]) == {"status", "colour", "limit"}


def test_fr86_over_allocation_is_a_409_with_the_figures(gateway, token_for, upstream):
    body = {"allocations": [{"invoice_id": INVOICE, "amount": "500.00"}]}
    receipt = str(uuid.uuid4())
    assert gateway.post(f"{API}/receipts/{receipt}/allocations", json=body,
                        headers=token_for("warehouse")).status_code == 403
    answer = gateway.post(f"{API}/receipts/{receipt}/allocations", json=body, headers=token_for("sales_rep"))
    assert answer.status_code == 409
    assert {k: answer.json()[k] for k in ("code", "requested", "unallocated")} == {
        "code": "OVER_ALLOCATION", "requested": "500.00", "unallocated": "400.00"}
    assert upstream.of("allocate_receipt")[0]["allocations"] == body["allocations"]


def test_fr91_aging_and_statement_paths_are_validated_before_the_call(gateway, token_for, upstream):
    finance = token_for("finance")
    answer = gateway.get(f"{API}/reports/receivables-aging", params={"as_of": "2026-06-30"}, headers=finance)
    assert answer.status_code == 200 and upstream.of("get_receivables_aging")[0]["as_of"] == "2026-06-30"
    assert gateway.get(f"{API}/reports/receivables-aging", params={"as_of": "June"}, headers=finance).status_code \
        == 422
    bad = gateway.get(f"{API}/customers/{CUSTOMER}/statements/2026-6", headers=finance)
    assert bad.status_code == 422 and list(bad.json()["errors"]) == ["month"]
    good = gateway.get(f"{API}/customers/{CUSTOMER}/statements/2026-06", headers=finance)
    assert good.status_code == 200 and good.json()["month"] == "2026-06"
    assert gateway.get(f"{API}/reports/receivables-aging", headers=token_for("warehouse")).status_code == 403
    assert len(upstream.of("get_statement")) == 1


def test_fr91_issue11_the_aging_is_a_page_of_customers(gateway, token_for, upstream):
    """The aging's customers come as a page (limit 1–200, default 50, and the cursor it gave out);
    a limit out of range is a 422 naming `limit`, before any call."""
    finance = token_for("finance")
    assert gateway.get(f"{API}/reports/receivables-aging", headers=finance).status_code == 200
    assert upstream.of("get_receivables_aging")[-1]["limit"] == 50
    answer = gateway.get(f"{API}/reports/receivables-aging", params={"limit": 3, "cursor": "abc"}, headers=finance)
    assert answer.status_code == 200
    assert {k: upstream.of("get_receivables_aging")[-1][k] for k in ("limit", "cursor")} == {"limit": 3,
                                                                                             "cursor": "abc"}
    assert answer.json()["customer_count"] == 0 and answer.json()["next_cursor"] is None
    calls = len(upstream.of("get_receivables_aging"))
    refused = gateway.get(f"{API}/reports/receivables-aging", params={"limit": 0}, headers=finance)
    assert refused.status_code == 422 and list(refused.json()["errors"]) == ["limit"]
    assert len(upstream.of("get_receivables_aging")) == calls


def test_api_openapi_documents_the_billing_endpoints(gateway):
    paths = gateway.get(f"{API}/openapi.json").json()["paths"]
    expected = {
        "/api/v1/invoices": {"get", "post"}, "/api/v1/invoices/{invoice_id}": {"get"},
        "/api/v1/invoices/{invoice_id}/certify": {"post"}, "/api/v1/invoices/{invoice_id}/issue": {"post"},
        "/api/v1/invoices/{invoice_id}/reverse": {"post"}, "/api/v1/receipts": {"get", "post"},
        "/api/v1/receipts/{receipt_id}/confirm": {"post"}, "/api/v1/receipts/{receipt_id}/allocations": {"post"},
        "/api/v1/customers/{customer_id}/credit": {"get", "put"}, "/api/v1/credit/recompute": {"post"},
        "/api/v1/customers/{customer_id}/statements/{month}": {"get"},
        "/api/v1/customers/{customer_id}/statements/{month}/confirm": {"post"},
        "/api/v1/reports/receivables-aging": {"get"},
    }
    for path, methods in expected.items():
        assert methods <= set(paths[path]), path
    put = paths["/api/v1/customers/{customer_id}/credit"]["put"]
    assert put["x-roles"] == ["finance"] and put["requestBody"]["content"]["application/json"]["example"]
