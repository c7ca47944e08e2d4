"""API.md "Catalog and stock" and "Deliveries" at the gateway, over real HTTP, PostgreSQL and
RabbitMQ with a stand-in `inventory` service: who may call which endpoint (the role table, role by
role), what a request must look like (refused with 422 naming the field before any RPC), what
reaches the service (actor, request id, filters, pagination), and the service's refusals as
problem answers. The real inventory service behind the real gateway: tests/e2e/test_warehouse_*."""
import uuid

import pytest

from shared.entrypoints import rpc
from shared.errors import BusinessRuleViolation, InvalidState, NotFound

ROLES = ("admin", "general_manager", "sales_director", "marketing_director", "sales_manager", "sales_rep",
         "order_desk", "product_manager", "warehouse", "finance", "service_engineer", "integration")
DOC = str(uuid.uuid4())
DELIVERY = str(uuid.uuid4())
PRODUCT = {"sku": "SRV-400W", "name": "Servo", "unit": "pcs", "list_price": "1280.00", "floor_price": "1050.00"}
RECEIPT = {"lines": [{"sku": "SRV-400W", "quantity": 5}], "reason": "purchase"}
NOTE = {"order_id": str(uuid.uuid4()), "lines": [{"sku": "SRV-400W", "quantity": 2}]}
CALLS = []
MODE = {"fail": None}


class FakeInventory:
    """Stands in for the inventory service: same name and RPC signatures; records each call."""

    name = "inventory"

    def _answer(self, method, answer=None, **kwargs):
        CALLS.append(dict(kwargs, method=method))
        if MODE["fail"] is not None:
            raise MODE["fail"]
        return answer if answer is not None else {"echo": method}

    @rpc
    def create_product(self, *, request_id, actor, product):
        return self._answer("create_product", dict(product), request_id=request_id, actor=actor, product=product)

    @rpc
    def list_products(self, *, filters=None, limit=None, cursor=None):
        return self._answer("list_products", {"items": [], "next_cursor": None}, filters=filters, limit=limit,
                            cursor=cursor)

    @rpc
    def get_product(self, *, sku):
        return self._answer("get_product", dict(PRODUCT, sku=sku), sku=sku)

    @rpc
    def update_product(self, *, request_id, actor, sku, changes):
        return self._answer("update_product", request_id=request_id, actor=actor, sku=sku, changes=changes)

    @rpc
    def create_warehouse(self, *, request_id, actor, warehouse):
        return self._answer("create_warehouse", request_id=request_id, actor=actor, warehouse=warehouse)

    @rpc
    def list_warehouses(self, *, limit=None, cursor=None):
        return self._answer("list_warehouses", {"items": [], "next_cursor": None}, limit=limit, cursor=cursor)

    @rpc
    def list_stock(self, *, filters=None, limit=None, cursor=None):
        return self._answer("list_stock", {"items": [], "next_cursor": None}, filters=filters, limit=limit,
                            cursor=cursor)

    @rpc
    def list_movements(self, *, filters=None, limit=None, cursor=None):
        return self._answer("list_movements", {"items": [], "next_cursor": None}, filters=filters, limit=limit,
                            cursor=cursor)

    @rpc
    def post_receipt(self, *, request_id, actor, receipt):
        return self._answer("post_receipt", request_id=request_id, actor=actor, receipt=receipt)

    @rpc
    def adjust_stock(self, *, request_id, actor, adjustment):
        return self._answer("adjust_stock", request_id=request_id, actor=actor, adjustment=adjustment)

    @rpc
    def get_stock_document(self, *, actor, document_id):
        return self._answer("get_stock_document", actor=actor, document_id=document_id)

    @rpc
    def reverse_stock_document(self, *, request_id, actor, document_id, reason):
        return self._answer("reverse_stock_document", request_id=request_id, actor=actor, document_id=document_id,
                            reason=reason)

    @rpc
    def create_delivery(self, *, request_id, actor, order_id, lines):
        return self._answer("create_delivery", {"id": DELIVERY, "status": "pending"}, request_id=request_id,
                            actor=actor, order_id=order_id, lines=lines)

    @rpc
    def issue_goods(self, *, request_id, actor, delivery_id):
        return self._answer("issue_goods", request_id=request_id, actor=actor, delivery_id=delivery_id)

    @rpc
    def cancel_delivery(self, *, request_id, actor, delivery_id, reason):
        return self._answer("cancel_delivery", request_id=request_id, actor=actor, delivery_id=delivery_id,
                            reason=reason)

    @rpc
    def get_delivery(self, *, actor, delivery_id):
        return self._answer("get_delivery", actor=actor, delivery_id=delivery_id)

    @rpc
    def list_deliveries(self, *, actor, filters=None, limit=None, cursor=None):
        return self._answer("list_deliveries", {"items": [], "next_cursor": None}, actor=actor, filters=filters,
                            limit=limit, cursor=cursor)


@pytest.fixture
def api(start_gateway, container_factory):
    CALLS.clear()
    MODE["fail"] = None
    session = start_gateway(customer=False)
    container_factory(FakeInventory, session.config).start()
    return session


@pytest.fixture
def as_role(api, token_for):
    """`as_role(role)` → auth headers of a new login with that role (cached per test)."""
    tokens = {}

    def headers(role):
        if role not in tokens:
            tokens[role] = token_for(role, session=api)
        return tokens[role]

    return headers


def calls(method):
    return [call for call in CALLS if call["method"] == method]


EVERYONE = set(ROLES)
CATALOG = {"admin", "product_manager"}
KEEPERS = {"admin", "warehouse"}
BOOKS = {"admin", "warehouse", "product_manager", "finance", "general_manager"}
RAISERS = {"admin", "order_desk", "sales_rep", "sales_manager", "sales_director", "general_manager", "integration"}
# API.md "Catalog and stock" and "Deliveries": who may call what (the role table, spelled out here)
ENDPOINTS = [
    ("POST", "products", PRODUCT, CATALOG),
    ("GET", "products", None, EVERYONE),
    ("GET", "products/SRV-400W", None, EVERYONE),
    ("PATCH", "products/SRV-400W", {"list_price": "1300.00"}, CATALOG),
    ("POST", "warehouses", {"code": "SZ-01", "name": "Suzhou"}, KEEPERS),
    ("GET", "warehouses", None, EVERYONE),
    ("GET", "stock", None, EVERYONE),
    ("POST", "stock/receipts", RECEIPT, KEEPERS),
    ("POST", "stock/adjustments", {"lines": [{"sku": "SRV-400W", "delta": -1}], "reason": "count"}, KEEPERS),
    ("GET", "stock/movements", None, BOOKS),
    ("GET", f"stock/documents/{DOC}", None, BOOKS),
    ("POST", f"stock/documents/{DOC}/reverse", {"reason": "wrong SKU"}, KEEPERS),
    ("POST", "deliveries", NOTE, RAISERS),
    ("POST", f"deliveries/{DELIVERY}/issue", None, KEEPERS),
    ("POST", f"deliveries/{DELIVERY}/cancel", {"reason": "later"}, RAISERS | KEEPERS),
    ("GET", f"deliveries/{DELIVERY}", None, EVERYONE),
    ("GET", "deliveries", None, EVERYONE),
]


def test_api_catalog_roles_each_endpoint_role_by_role(api, as_role):
    for method, path, body, allowed in ENDPOINTS:
        assert api.request(method, f"api/v1/{path}", json=body).status_code == 401, path
        for role in ROLES:
            CALLS.clear()
            answer = api.request(method, f"api/v1/{path}", json=body, headers=as_role(role))
            if role in allowed:
                assert answer.status_code in (200, 201), (method, path, role, answer.text)
                assert len(CALLS) == 1, (method, path, role)
            else:
                assert (answer.status_code, answer.json()["code"]) == (403, "FORBIDDEN"), (method, path, role)
                assert CALLS == [], (method, path, role)  # refused before any RPC


def test_api_catalog_a_sales_rep_cannot_issue_goods_but_the_warehouse_can(api, as_role):
    refused = api.post(f"api/v1/deliveries/{DELIVERY}/issue", headers=as_role("sales_rep"))
    assert refused.status_code == 403 and calls("issue_goods") == []
    issued = api.post(f"api/v1/deliveries/{DELIVERY}/issue", headers=as_role("warehouse"))
    assert issued.status_code == 200
    [call] = calls("issue_goods")
    assert call["delivery_id"] == DELIVERY and call["actor"]["role"] == "warehouse"


BAD_INPUT = [
    ("products", dict(PRODUCT, list_price=1280.0), "list_price"),                   # money is never a float
    ("products", dict(PRODUCT, floor_price="10.005"), "floor_price"),
    ("products", dict(PRODUCT, vat_rate="13%"), "vat_rate"),
    ("products", dict(PRODUCT, sku="no spaces please"), "sku"),
    ("products", dict(PRODUCT, colour="red"), "colour"),                            # unknown fields refused
    ("products", {k: v for k, v in PRODUCT.items() if k != "unit"}, "unit"),
    ("stock/receipts", dict(RECEIPT, lines=[{"sku": "A", "quantity": 0}]), "lines.0.quantity"),
    ("stock/receipts", dict(RECEIPT, lines=[{"sku": "A", "quantity": -4}]), "lines.0.quantity"),
    ("stock/receipts", dict(RECEIPT, lines=[{"sku": "A", "quantity": "4"}]), "lines.0.quantity"),
    ("stock/receipts", dict(RECEIPT, lines=[]), "lines"),
    ("stock/receipts", {"lines": RECEIPT["lines"]}, "reason"),
    ("stock/adjustments", {"lines": [{"sku": "A", "delta": 0}], "reason": "r"}, "lines.0.delta"),
    ("deliveries", dict(NOTE, order_id="SO-2026-1"), "order_id"),
    ("deliveries", dict(NOTE, lines=[{"sku": "A", "quantity": 2.5}]), "lines.0.quantity"),
    ("deliveries", dict(NOTE, lines=[{"sku": "A", "quantity": 1, "price": "1.00"}]), "lines.0.price"),
]


def test_api_catalog_bad_input_is_422_naming_the_field_and_reaches_nothing(api, as_role):
    for path, body, field in BAD_INPUT:
        answer = api.post(f"api/v1/{path}", json=body, headers=as_role("admin"))
        assert answer.status_code == 422, (path, field, answer.text)
        problem = answer.json()
        assert problem["code"] == "VALIDATION_FAILED" and field in problem["errors"], (field, problem)
    assert CALLS == []


def test_api_catalog_patch_needs_a_change_and_queries_are_checked(api, as_role):
    headers = as_role("product_manager")
    assert api.patch("api/v1/products/SRV-400W", json={}, headers=headers).status_code == 422
    for path, params, field in (("stock", {"sku": "bad sku"}, "sku"), ("deliveries", {"status": "lost"}, "status"),
                                ("deliveries", {"order_id": "7"}, "order_id"), ("products", {"limit": 500}, "limit"),
                                ("stock/movements", {"kind": "theft"}, "kind"), ("warehouses", {"x": 1}, "x")):
        answer = api.get(f"api/v1/{path}", params=params, headers=as_role("admin"))
        assert answer.status_code == 422 and field in answer.json()["errors"], (path, answer.text)
    assert api.get("api/v1/deliveries/not-a-uuid", headers=headers).status_code == 404
    assert CALLS == []


def test_api_catalog_what_reaches_the_service(api, as_role, make_login):
    username, password, staff_id = make_login("order_desk", team=None)
    token = api.post("api/v1/auth/token", json={"username": username, "password": password}).json()["access_token"]
    desk = {"Authorization": f"Bearer {token}", "Idempotency-Key": "dn-1"}
    first = api.post("api/v1/deliveries", json=NOTE, headers=desk)
    assert first.status_code == 201 and first.headers["Location"] == f"/api/v1/deliveries/{DELIVERY}"
    again = api.post("api/v1/deliveries", json=NOTE, headers=desk)  # a retried POST runs once
    assert again.status_code == 201 and again.headers["Idempotent-Replayed"] == "true"
    [call] = calls("create_delivery")
    assert call["actor"] == {"staff_id": staff_id, "role": "order_desk", "username": username, "team": None}
    assert (call["order_id"], call["lines"]) == (NOTE["order_id"], [{"sku": "SRV-400W", "quantity": 2}])

    api.get("api/v1/deliveries", params={"order_id": NOTE["order_id"], "status": "pending", "limit": 5,
                                         "cursor": "abc"}, headers=desk)
    [listed] = calls("list_deliveries")
    assert listed["filters"] == {"order_id": NOTE["order_id"], "status": "pending"}
    assert (listed["limit"], listed["cursor"], listed["actor"]["staff_id"]) == (5, "abc", staff_id)
    api.get("api/v1/stock", params={"sku": "SRV-400W", "warehouse": "MAIN"}, headers=desk)
    assert calls("list_stock")[0]["filters"] == {"sku": "SRV-400W", "warehouse": "MAIN"}
    api.get("api/v1/products", params={"active": "false", "q": "servo"}, headers=desk)
    assert calls("list_products")[0]["filters"] == {"active": False, "q": "servo"}
    created = api.post("api/v1/products", json=PRODUCT, headers=as_role("product_manager"))
    assert created.status_code == 201 and created.headers["Location"] == "/api/v1/products/SRV-400W"


REFUSALS = [
    (BusinessRuleViolation("more than the order has left", code="OVER_DELIVERY",
                           lines=[{"sku": "SRV-400W", "requested": 2, "deliverable": 0}]), 409, "OVER_DELIVERY"),
    (InvalidState("DN-2026-000001 is cancelled", code="DELIVERY_CANCELLED"), 409, "DELIVERY_CANCELLED"),
    (NotFound("order not found"), 404, "NOT_FOUND"),
]


def test_api_catalog_service_refusals_become_problem_answers(api, as_role):
    for error, status, code in REFUSALS:
        MODE["fail"] = error
        answer = api.post("api/v1/deliveries", json=NOTE, headers=as_role("order_desk"))
        assert answer.status_code == status, code
        assert answer.headers["Content-Type"] == "application/problem+json"
        problem = answer.json()
        assert problem["code"] == code and problem["detail"]
        if code == "OVER_DELIVERY":
            assert problem["lines"] == [{"sku": "SRV-400W", "requested": 2, "deliverable": 0}]


def test_api_catalog_endpoints_are_in_the_openapi_document_with_examples(api):
    document = api.get("api/v1/openapi.json").json()
    for method, path, _, allowed in ENDPOINTS:
        template = "/api/v1/" + path.replace("SRV-400W", "{sku}").replace(DOC, "{document_id}").replace(
            DELIVERY, "{delivery_id}")
        operation = document["paths"][template][method.lower()]
        assert set(operation["x-roles"]) == allowed, (method, path)
        if "requestBody" in operation:
            assert operation["requestBody"]["content"]["application/json"]["example"]
    assert document["components"]["schemas"]["ProductCreate"]["additionalProperties"] is False
