"""The OSB story of issue 5 through the gateway's HTTP API: the real gateway and order service (in
containers, on real PostgreSQL and RabbitMQ) with fake customer, inventory and billing services
(services/order/tests/fakes.py) whose books are checked, and the events inventory and billing
would publish. The same story across the real services is the lead's, once they are merged.

FR-14, FR-43, FR-45, FR-46, FR-60, FR-61, FR-63, FR-65; API.md conventions."""
import importlib.util
import sys
import time
import uuid
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import eventlet
import pytest
from argon2 import PasswordHasher

from shared import envelope

ROOT = Path(__file__).resolve().parents[2]
API = "api/v1"
HASHER = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
CATALOG = [
    {"sku": "PUMP", "name": "Pump", "unit": "pc", "list_price": "100.00", "floor_price": "90.00", "vat_rate": "0.13"},
    {"sku": "VALVE", "name": "Valve", "unit": "pc", "list_price": "250.00", "floor_price": "200.00",
     "vat_rate": "0.13"},
]


def order_fakes():
    if "order_fakes" not in sys.modules:
        spec = importlib.util.spec_from_file_location("order_fakes", ROOT / "services/order/tests/fakes.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules["order_fakes"] = module
        spec.loader.exec_module(module)
    return sys.modules["order_fakes"]


fakes = order_fakes()
BOOKS = fakes.BOOKS


def wait_for(check, timeout=10.0, what="condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not met within {timeout}s")
        eventlet.sleep(0.05)


class Http:
    def __init__(self, session, headers):
        self.session, self.headers = session, headers

    def call(self, method, path, body=None, expect=None, key=None, **kwargs):
        headers = dict(self.headers)
        if method == "POST":
            headers["Idempotency-Key"] = key or str(uuid.uuid4())
        answer = self.session.request(method, f"{API}/{path}", json=body if body is not None or method != "POST"
                                      else {}, headers=headers, **kwargs)
        if expect is not None:
            assert answer.status_code == expect, f"{method} {path}: {answer.status_code} {answer.text}"
            return answer.json()
        return answer

    def get(self, path, **kwargs):
        return self.call("GET", path, **kwargs)

    def post(self, path, body=None, **kwargs):
        return self.call("POST", path, body, **kwargs)

    def patch(self, path, body, **kwargs):
        return self.call("PATCH", path, body, **kwargs)


@pytest.fixture(autouse=True)
def books():
    BOOKS.__init__()
    yield BOOKS
    if not BOOKS.release.ready():
        BOOKS.release.send(True)


@pytest.fixture
def platform(make_database, service_config, container_factory, web_session, db_connect):
    """The gateway and the order service in containers, the fakes beside them; logins for an org chart."""
    from nameko.standalone.events import event_dispatcher

    from gateway.service import GatewayService
    from order.service import OrderService

    gateway_db, order_db = make_database("gateway/migrations"), make_database("services/order/migrations")
    gateway_cfg = service_config(gateway_db, GATEWAY={"TOKEN_SECRET": "e2e-secret-" + "x" * 40, "TOKEN_TTL": 3600,
                                                      "ADMIN_USERNAME": "admin", "ADMIN_PASSWORD": ""})
    order_cfg = service_config(order_db, RPC_TIMEOUT=2, ORDER={"CONTRACT_AMOUNT": "50000.00",
                                                               "MAJOR_CONTRACT_AMOUNT": "100000.00"})
    for cls in (fakes.FakeCustomer, fakes.FakeInventory, fakes.FakeBilling):
        container_factory(cls, order_cfg).start()
    container_factory(OrderService, order_cfg).start()
    container_factory(GatewayService, gateway_cfg).start()
    session = web_session(f"http://{gateway_cfg['WEB_SERVER_ADDRESS']}/")
    gconn, oconn = db_connect(gateway_db), db_connect(order_db)
    dispatch = event_dispatcher()

    def publish(source, event_type, data):
        event = envelope.build(event_type, data, source=source)
        dispatch(source, event_type, event)

        def applied():
            with oconn.cursor() as cur:
                cur.execute("SELECT (SELECT count(*) FROM inbox WHERE event_id = %s) AS done,"
                            " (SELECT min(error) FROM failed_messages WHERE event_id = %s) AS error",
                            (event["event_id"], event["event_id"]))
                row = cur.fetchone()
            assert row["error"] is None, row["error"]
            return row["done"]

        wait_for(applied, what=f"{event_type} applied")
        return data

    for product in CATALOG:
        publish("inventory", "product.created", dict(product, active=True))
    BOOKS.stock.update({"PUMP": 100, "VALVE": 100})

    def login(staff):
        username, password = staff["username"], "pass-word-1"
        with gconn.cursor() as cur:
            cur.execute("INSERT INTO credentials (id, kind, username, secret_hash, staff_id, role, display_name,"
                        " active, team) VALUES (%s, 'password', %s, %s, %s, %s, %s, true, %s)",
                        (uuid.uuid4(), username, HASHER.hash(password), staff["staff_id"], staff["role"],
                         username.title(), staff["team"]))
        answer = session.post(f"{API}/auth/token", json={"username": username, "password": password})
        assert answer.status_code == 200, answer.text
        return Http(session, {"Authorization": f"Bearer {answer.json()['access_token']}"})

    head = BOOKS.add_staff("sales_director", username="head")
    manager = BOOKS.add_staff("sales_manager", manager=head, team="east-1", username="manager")
    rep = BOOKS.add_staff("sales_rep", manager=manager, team="east-1", username="rep")
    staff = {"head": head, "manager": manager, "rep": rep,
             "other_rep": BOOKS.add_staff("sales_rep", manager=manager, team="east-2", username="other"),
             "finance": BOOKS.add_staff("finance", username="finance"),
             "warehouse": BOOKS.add_staff("warehouse", username="warehouse")}
    BOOKS.add_staff("marketing_director", username="marketing")
    clients = {name: login(member) for name, member in staff.items()}

    class Platform:
        pass

    p = Platform()
    p.__dict__.update(clients)
    p.staff, p.publish, p.customer = staff, publish, BOOKS.add_customer(rep)
    return p


def story_quote(p, price="88.00", quantity=10):
    return p.rep.post("quotes", {"customer_id": p.customer, "valid_until": str(date.today() + timedelta(days=30)),
                                 "lines": [{"sku": "PUMP", "quantity": quantity, "unit_price": price}]}, expect=201)


def goods_issued(order):
    return {"delivery_id": str(uuid.uuid4()), "delivery_number": "DN-2026-000001", "order_id": order["id"],
            "order_number": order["number"], "loan_id": None, "warehouse": "WH-1",
            "issued_at": datetime.now(timezone.utc).isoformat(), "customer_id": order["customer_id"],
            "owner_id": order["owner_id"], "owner_team": order["owner_team"], "region": order["region"],
            "lines": [{"delivery_line_id": str(uuid.uuid4()), "order_line_id": l["id"], "sku": l["sku"],
                       "quantity": l["quantity"], "unit_price": l["unit_price"], "vat_rate": l["vat_rate"]}
                      for l in order["lines"]]}


def test_osb_fr46_quote_below_floor_approved_by_manager_and_head_then_ordered_shipped_invoiced_paid(platform, books):
    p = platform
    quote = story_quote(p)
    pending = p.rep.post(f"quotes/{quote['id']}/submit", expect=200)
    assert pending["status"] == "pending_approval"
    assert [s["relation"] for s in pending["required_approvals"]] == ["direct_manager", "division_head"]
    assert p.head.post(f"quotes/{quote['id']}/approve", {}).json()["code"] == "NOT_YOUR_TURN"
    p.manager.post(f"quotes/{quote['id']}/approve", {"comment": "ok"}, expect=200)
    approved = p.head.post(f"quotes/{quote['id']}/approve", {"content_hash": pending["content_hash"]}, expect=200)
    assert approved["status"] == "approved"
    accepted = p.rep.post(f"quotes/{quote['id']}/accept", expect=200)
    order = p.rep.get(f"orders/{accepted['order_id']}", expect=200)
    assert (order["status"], order["total"]) == ("draft", "880.00")
    confirmed = p.rep.post(f"orders/{order['id']}/confirm", expect=200)
    assert confirmed["status"] == "confirmed"
    assert [r["lines"] for r in books.active_reservations(order["id"])] == [{"PUMP": 10}]
    assert [c["amount"] for c in books.reserved_credit(order["id"])] == [Decimal("880.00")]
    # the warehouse issues the goods (inventory publishes goods.issued), billing invoices and is paid
    issued = p.publish("inventory", "goods.issued", goods_issued(confirmed))
    assert p.rep.get(f"orders/{order['id']}", expect=200)["status"] == "shipped"
    line = issued["lines"][0]
    invoice_id = str(uuid.uuid4())
    p.publish("billing", "invoice.issued", {
        "invoice_id": invoice_id, "number": "INV-2026-000001", "kind": "ordinary",
        "issued_at": datetime.now(timezone.utc).isoformat(), "total": "880.00",
        "lines": [{"delivery_line_id": line["delivery_line_id"], "order_id": order["id"],
                   "order_line_id": line["order_line_id"], "sku": "PUMP", "quantity": 10, "amount": "880.00",
                   "net": "778.76", "tax": "101.24"}]})
    assert p.rep.get(f"orders/{order['id']}", expect=200)["status"] == "invoiced"
    p.publish("billing", "invoice.settled", {"invoice_id": invoice_id, "order_ids": [order["id"]],
                                             "settled_at": datetime.now(timezone.utc).isoformat()})
    paid = p.manager.get(f"orders/{order['id']}", expect=200)
    assert paid["status"] == "paid" and paid["first_shipped_at"] and paid["invoiced_at"] and paid["paid_at"]
    assert p.other_rep.get(f"orders/{order['id']}").status_code == 404  # row-level: not theirs


def test_osb_edit_after_approval_voids_it(platform):
    p = platform
    quote = story_quote(p, price="95.00")
    assert p.rep.post(f"quotes/{quote['id']}/submit", expect=200)["status"] == "approved"
    edited = p.rep.patch(f"quotes/{quote['id']}", {"lines": [{"sku": "PUMP", "quantity": 11, "unit_price": "95.00"}]},
                         expect=200)
    assert edited["status"] == "draft" and [s["status"] for s in edited["approvals"]] == []
    pending = story_quote(p)
    p.rep.post(f"quotes/{pending['id']}/submit", expect=200)
    p.manager.post(f"quotes/{pending['id']}/approve", {}, expect=200)
    voided = p.rep.patch(f"quotes/{pending['id']}", {"valid_until": str(date.today() + timedelta(days=10))},
                         expect=200)
    assert voided["status"] == "draft" and [s["status"] for s in voided["approvals"]] == ["voided", "voided"]
    answer = p.rep.post(f"quotes/{pending['id']}/accept")
    assert answer.status_code == 409 and answer.json()["code"] == "INVALID_STATE"


def test_osb_credit_hold_and_release_stock_short_and_cancel_over_http(platform, books):
    p = platform
    books.credit_limits[p.customer] = Decimal("100.00")
    order = p.rep.post("orders", {"customer_id": p.customer, "lines": [{"sku": "PUMP", "quantity": 2}]}, expect=201)
    assert p.rep.post(f"orders/{order['id']}/confirm", expect=200)["status"] == "credit_hold"
    assert p.rep.post(f"orders/{order['id']}/release-credit-hold", {"reason": "x"}).status_code == 403
    released = p.finance.post(f"orders/{order['id']}/release-credit-hold", {"reason": "paid in advance"}, expect=200)
    assert released["status"] == "confirmed"
    # cancel after confirm releases stock and credit exactly once
    cancelled = p.rep.post(f"orders/{order['id']}/cancel", {"reason": "customer withdrew"}, expect=200)
    assert cancelled["status"] == "cancelled"
    assert [c["order_id"] for c in books.of("inventory.release_reservation")] == [order["id"]]
    assert [c["order_id"] for c in books.of("billing.release_credit")] == [order["id"]]
    assert books.active_reservations(order["id"]) == [] and books.reserved_credit(order["id"]) == []
    # stock short: 409 INSUFFICIENT_STOCK naming the shortage, the credit released
    books.credit_limits[p.customer] = Decimal("100000.00")
    short = p.rep.post("orders", {"customer_id": p.customer, "lines": [{"sku": "VALVE", "quantity": 150}]},
                       expect=201)
    answer = p.rep.post(f"orders/{short['id']}/confirm")
    assert answer.status_code == 409 and answer.headers["Content-Type"] == "application/problem+json"
    problem = answer.json()
    assert problem["code"] == "INSUFFICIENT_STOCK"
    assert problem["shortages"] == [{"sku": "VALVE", "requested": 150, "available": 100}]
    assert books.reserved_credit(short["id"]) == [] and books.active_reservations(short["id"]) == []
    assert p.rep.get(f"orders/{short['id']}", expect=200)["status"] == "draft"


def test_api_conventions_on_sales_endpoints(platform):
    p = platform
    bad = p.rep.post("orders", {"customer_id": p.customer, "lines": [{"sku": "PUMP", "quantity": 1,
                                                                      "unit_price": "abc"}], "colour": "red"})
    assert bad.status_code == 422
    assert {"colour", "lines.0.unit_price"} <= set(bad.json()["errors"])
    below = p.rep.post("orders", {"customer_id": p.customer, "lines": [{"sku": "PUMP", "quantity": 1,
                                                                        "unit_price": "95.00"}]})
    assert below.status_code == 409 and below.json()["code"] == "APPROVAL_REQUIRED"
    key = str(uuid.uuid4())
    body = {"customer_id": p.customer, "lines": [{"sku": "PUMP", "quantity": 1}]}
    first = p.rep.post("orders", body, key=key, expect=201)
    again = p.rep.post("orders", body, key=key)
    assert again.status_code == 201 and again.json()["id"] == first["id"]
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert [o["id"] for o in p.rep.get("orders?status=draft", expect=200)["items"]] == [first["id"]]
    assert p.other_rep.get("orders", expect=200)["items"] == []
    assert p.warehouse.post("orders", body).status_code == 403
    assert p.rep.get("orders?status=lost").status_code == 422
    assert p.rep.get(f"orders/{uuid.uuid4()}").status_code == 404
