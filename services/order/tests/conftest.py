"""Fixtures of the order service's tests: the service in a container on real PostgreSQL and
RabbitMQ (a vhost per test), the fake customer, inventory and billing services beside it
(tests/fakes.py), the price list fed by product events as inventory publishes them, and an org
chart to route approvals through."""
import importlib.util
import sys
import time
import uuid
from pathlib import Path
from types import SimpleNamespace

import eventlet
import pytest

from shared import envelope

MIGRATIONS = "services/order/migrations"


def load_fakes():
    """tests/fakes.py as the module `order_fakes` (one BOOKS per process, whoever loads it)."""
    if "order_fakes" not in sys.modules:
        spec = importlib.util.spec_from_file_location("order_fakes", Path(__file__).with_name("fakes.py"))
        module = importlib.util.module_from_spec(spec)
        sys.modules["order_fakes"] = module
        spec.loader.exec_module(module)
    return sys.modules["order_fakes"]


fakes = load_fakes()
BOOKS = fakes.BOOKS

CATALOG = [  # prices include VAT
    {"sku": "P1", "name": "Pump P1", "unit": "pc", "list_price": "100.00", "floor_price": "80.00", "vat_rate": "0.13"},
    {"sku": "P2", "name": "Valve P2", "unit": "pc", "list_price": "250.00", "floor_price": "200.00",
     "vat_rate": "0.13"},
    {"sku": "BIG", "name": "Press BIG", "unit": "set", "list_price": "60000.00", "floor_price": "50000.00",
     "vat_rate": "0.13"},
]
SETTINGS = {"MAJOR_CONTRACT_AMOUNT": "100000.00", "CONTRACT_AMOUNT": "50000.00", "SAGA_LEASE_SECONDS": 30,
            "SAGA_RESUME_WINDOW_SECONDS": 300, "CLOSE_AFTER_DAYS": 30}


@pytest.fixture(autouse=True)
def books():
    BOOKS.__init__()
    yield BOOKS
    if not BOOKS.release.ready():
        BOOKS.release.send(True)


@pytest.fixture(scope="session")
def _order_database():
    """One migrated database for the session (creating and dropping one per test costs ~1.5 s);
    every test starts from empty tables (order_db)."""
    from shared.migrate import drop_database, ensure_database, migrate
    from shared.testing.plugin import ROOT, pg_settings

    settings = {k: v for k, v in pg_settings().items() if v is not None}
    name = f"test_order_{uuid.uuid4().hex[:12]}"
    ensure_database(settings, name)
    migrate(dict(settings, dbname=name), [ROOT / MIGRATIONS])
    yield name
    drop_database(settings, name)


@pytest.fixture
def order_db(_order_database, db_connect):
    conn = db_connect(_order_database)
    with conn.cursor() as cur:
        cur.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'schema_migrations'")
        tables = ", ".join(row["tablename"] for row in cur.fetchall())
        cur.execute(f"TRUNCATE {tables} RESTART IDENTITY CASCADE")
    return _order_database


@pytest.fixture
def order_config(service_config, order_db):
    def build(**overrides):
        return service_config(order_db, **dict({"RPC_TIMEOUT": 2, "ORDER": dict(SETTINGS)}, **overrides))

    return build


def _now():
    from datetime import datetime, timezone

    return datetime.now(timezone.utc).isoformat()


def wait_for(check, timeout=10.0, interval=0.05, what="condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not met within {timeout}s")
        eventlet.sleep(interval)


class Desk:
    """What a test drives: the order service's RPC, the fakes' books, events as the others publish
    them, and the order database for assertions."""

    def __init__(self, rpc, conn, books):
        self.rpc = rpc
        self.conn = conn
        self.books = books
        from nameko.standalone.events import event_dispatcher

        self._dispatch = event_dispatcher()

    # -- events as inventory / billing / customer publish them ---------------------------------
    def publish(self, source, event_type, data, **envelope_fields):
        event = envelope.build(event_type, data, source=source, **envelope_fields)
        self._dispatch(source, event_type, event)
        return event

    def deliver(self, source, event_type, data, timeout=10.0, **envelope_fields):
        """Publish and wait until the order service has applied the event (its inbox has it)."""
        event = self.publish(source, event_type, data, **envelope_fields)

        def applied():
            failed = self.one("SELECT error FROM failed_messages WHERE event_id = %s", event["event_id"])
            if failed:
                raise AssertionError(f"{event_type} was parked: {failed['error']}")
            return self.scalar("SELECT count(*) FROM inbox WHERE event_id = %s", event["event_id"])

        wait_for(applied, timeout=timeout, what=f"{event_type} applied")
        return event

    def catalog(self, products=CATALOG):
        for product in products:
            self.publish("inventory", "product.created", dict(product, active=True, warranty_months=12))
        wait_for(lambda: self.scalar("SELECT count(*) FROM products WHERE sku = ANY(%s)",
                                     [p["sku"] for p in products]) == len(products), what="price list loaded")

    # -- the database ---------------------------------------------------------------------------
    def one(self, sql, *params):
        cur = self.conn.cursor()
        cur.execute(sql, params)
        return cur.fetchone()

    def all(self, sql, *params):
        cur = self.conn.cursor()
        cur.execute(sql, params)
        return cur.fetchall()

    def scalar(self, sql, *params):
        row = self.one(sql, *params)
        return None if row is None else next(iter(row.values()))

    def outbox(self, event_type=None):
        rows = self.all("SELECT payload FROM outbox ORDER BY id")
        return [r["payload"] for r in rows if event_type is None or r["payload"]["event_type"] == event_type]

    def wait(self, check, timeout=10.0, what="condition"):
        return wait_for(check, timeout=timeout, what=what)

    # -- flows every test needs -------------------------------------------------------------------
    def order(self, actor, customer, lines, **extra):
        return self.rpc.place_order(request_id=str(uuid.uuid4()), actor=actor,
                                    order=dict({"customer_id": customer, "lines": lines}, **extra))

    def confirm(self, actor, order):
        return self.rpc.confirm_order(request_id=str(uuid.uuid4()), actor=actor, order_id=order["id"])

    def confirmed(self, actor, customer, lines):
        order = self.confirm(actor, self.order(actor, customer, lines))
        assert order["status"] == "confirmed", order
        return order

    def issue(self, order, quantities=None, delivery_id=None):
        """goods.issued as inventory publishes it for (part of) the order; answers the event data."""
        delivery_id = delivery_id or str(uuid.uuid4())
        lines = [{"delivery_line_id": str(uuid.uuid4()), "order_line_id": l["id"], "sku": l["sku"],
                  "quantity": (quantities or {}).get(l["sku"], l["quantity"]), "unit_price": l["unit_price"],
                  "vat_rate": l["vat_rate"]} for l in order["lines"]]
        lines = [l for l in lines if l["quantity"] > 0]
        data = {"delivery_id": delivery_id, "delivery_number": "DN-2026-000001", "order_id": order["id"],
                "order_number": order["number"], "loan_id": None, "warehouse": "WH-1",
                "issued_at": _now(), "customer_id": order["customer_id"],
                "owner_id": order["owner_id"], "owner_team": order["owner_team"], "region": order["region"],
                "lines": lines}
        self.deliver("inventory", "goods.issued", data)
        return data

    def invoice(self, order, issued, invoice_id=None):
        """invoice.issued as billing publishes it for the delivered lines."""
        from decimal import Decimal

        invoice_id = invoice_id or str(uuid.uuid4())
        lines = []
        for line in issued["lines"]:
            amount = (Decimal(line["unit_price"]) * line["quantity"]).quantize(Decimal("0.01"))
            net = (amount / (1 + Decimal(line["vat_rate"]))).quantize(Decimal("0.01"))
            lines.append({"delivery_line_id": line["delivery_line_id"], "order_id": order["id"],
                          "order_line_id": line["order_line_id"], "sku": line["sku"], "quantity": line["quantity"],
                          "amount": str(amount), "net": str(net), "tax": str(amount - net)})
        data = {"invoice_id": invoice_id, "number": "INV-2026-000001", "kind": "ordinary",
                "issued_at": _now(), "customer_id": order["customer_id"],
                "total": str(sum(Decimal(l["amount"]) for l in lines)), "lines": lines}
        self.deliver("billing", "invoice.issued", data)
        return data

    def settle(self, invoice_id, order_ids):
        data = {"invoice_id": invoice_id, "order_ids": list(order_ids), "settled_at": _now()}
        self.deliver("billing", "invoice.settled", data)
        return data

    # -- an org chart (INTEGRATION.md find_approver relations) -----------------------------------
    def org(self):
        b = self.books
        director = b.add_staff("sales_director", team=None, username="head")
        manager = b.add_staff("sales_manager", manager=director, team="east-1", username="manager")
        rep = b.add_staff("sales_rep", manager=manager, team="east-1", username="rep")
        other_rep = b.add_staff("sales_rep", manager=manager, team="east-1", username="rep2")
        west_manager = b.add_staff("sales_manager", manager=director, team="west-1", username="west")
        marketing = b.add_staff("marketing_director", username="marketing")
        product_manager = b.add_staff("product_manager", username="pm")
        finance = b.add_staff("finance", username="finance")
        warehouse = b.add_staff("warehouse", username="warehouse")
        desk = b.add_staff("order_desk", username="desk")
        gm = b.add_staff("general_manager", username="gm")
        customer = b.add_customer(rep)
        return SimpleNamespace(director=director, manager=manager, rep=rep, other_rep=other_rep,
                               west_manager=west_manager, marketing=marketing, product_manager=product_manager,
                               finance=finance, warehouse=warehouse, desk=desk, gm=gm, customer=customer)


@pytest.fixture
def start_desk(container_factory, order_config, db_connect, order_db):
    """Start the fakes and the order service; returns a Desk."""
    from nameko.standalone.rpc import ClusterRpcClient

    from order.service import OrderService

    clients = []

    def start(fake=True, **overrides):
        cfg = order_config(**overrides)
        if fake:
            for cls in (fakes.FakeCustomer, fakes.FakeInventory, fakes.FakeBilling):
                container_factory(cls, cfg).start()
        container_factory(OrderService, cfg).start()
        client = ClusterRpcClient(timeout=20)
        clients.append(client)
        proxy = client.start()
        desk = Desk(proxy.order, db_connect(order_db), BOOKS)
        desk.config = cfg
        return desk

    yield start
    for client in clients:
        client.stop()


@pytest.fixture
def desk(start_desk):
    d = start_desk()
    d.catalog()
    d.books.stock.update({"P1": 100, "P2": 100, "BIG": 10})
    return d
