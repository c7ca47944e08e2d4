"""Fixtures of the aftersales tests: the service on real PostgreSQL (its migrations) and RabbitMQ (a
vhost per test), with in-process fakes of its collaborators — `customer` and `order` containers
whose RPC methods have the signatures, answers and errors of docs/INTEGRATION.md, which a test can
make refuse or fail — and the events it consumes published into the test's vhost as their
producers would (inventory's goods.issued and product.*, customer's customer.*)."""
import time
import uuid
from datetime import datetime, timezone

import eventlet
import pytest
from nameko.standalone.events import event_dispatcher
from nameko.standalone.rpc import ClusterRpcClient

from shared import access, envelope
from shared.entrypoints import rpc
from shared.errors import Conflict, NotFound, ServiceUnavailable

MIGRATIONS = "services/aftersales/migrations"


class World:
    """The other services' state and behaviour, reset for every test."""

    def __init__(self):
        self.staff = {}
        self.customers = {}
        self.calls = []
        self.customer_mode = "ok"  # ok | down
        self.order_mode = "ok"  # ok | down | refuse | crash | slow
        self.order_delay = 0
        self.order_answers = {}

    def of(self, method):
        return [call for call in self.calls if call["method"] == method]


WORLD = World()


class FakeCustomer:
    """customer: get_customer, get_staff, find_approver as docs/INTEGRATION.md describes them."""

    name = "customer"

    def _down(self):
        if WORLD.customer_mode == "down":
            raise ServiceUnavailable("the customer service is down (test)")

    @rpc
    def get_customer(self, *, actor, customer_id):
        WORLD.calls.append({"method": "get_customer", "actor": actor, "customer_id": customer_id})
        self._down()
        customer = WORLD.customers.get(customer_id)
        if customer is None or not access.scope(actor).allows(customer["owner_id"], customer["owner_team"]):
            raise NotFound(f"customer {customer_id} not found")
        return dict(customer)

    @rpc
    def get_staff(self, *, staff_id):
        WORLD.calls.append({"method": "get_staff", "staff_id": staff_id})
        self._down()
        if staff_id not in WORLD.staff:
            raise NotFound(f"staff member {staff_id} not found")
        return dict(WORLD.staff[staff_id])

    @rpc
    def find_approver(self, *, staff_id, relation):
        WORLD.calls.append({"method": "find_approver", "staff_id": staff_id, "relation": relation})
        self._down()
        manager_id = (WORLD.staff.get(staff_id) or {}).get("manager_id") if relation == "direct_manager" else None
        if manager_id is None:
            raise Conflict(f"nobody holds {relation} for {staff_id}", code="NO_APPROVER")
        manager = WORLD.staff[manager_id]
        return {k: manager[k] for k in ("id", "username", "display_name", "role", "team", "region")}


class FakeOrder:
    """order: request_return and create_replacement, idempotent by request_id."""

    name = "order"

    def _behave(self, method, kwargs):
        WORLD.calls.append(dict(kwargs, method=method))
        if WORLD.order_mode == "down":
            raise ServiceUnavailable("the order service is down (test)")
        if WORLD.order_mode == "slow":  # answers after the caller has given up waiting
            eventlet.sleep(WORLD.order_delay)
        if WORLD.order_mode == "crash":
            raise ZeroDivisionError("order crashed (test)")
        if WORLD.order_mode == "refuse":
            raise Conflict("cannot return more than was delivered less returned", code="RETURN_EXCEEDS_DELIVERED")

    @rpc
    def request_return(self, *, request_id, actor, delivery_id, lines, reason, service_request_id=None):
        kwargs = {"request_id": request_id, "actor": actor, "delivery_id": delivery_id, "lines": lines,
                  "reason": reason, "service_request_id": service_request_id}
        self._behave("request_return", kwargs)
        return WORLD.order_answers.setdefault(request_id, {
            "id": str(uuid.uuid4()), "number": f"RR-2026-{len(WORLD.order_answers) + 1:06d}", "status": "requested",
            "delivery_id": delivery_id, "lines": lines, "service_request_id": service_request_id})

    @rpc
    def create_replacement(self, *, request_id, actor, customer_id, sku, quantity, delivery_id, service_request_id):
        kwargs = {"request_id": request_id, "actor": actor, "customer_id": customer_id, "sku": sku,
                  "quantity": quantity, "delivery_id": delivery_id, "service_request_id": service_request_id}
        self._behave("create_replacement", kwargs)
        return WORLD.order_answers.setdefault(request_id, {
            "id": str(uuid.uuid4()), "number": f"SO-2026-{len(WORLD.order_answers) + 1:06d}", "status": "confirmed",
            "customer_id": customer_id, "lines": [{"sku": sku, "quantity": quantity, "unit_price": "0.00"}],
            "service_request_id": service_request_id})


@pytest.fixture(autouse=True)
def world():
    WORLD.__init__()
    return WORLD


@pytest.fixture
def db_name(make_database):
    return make_database(MIGRATIONS, prefix="test_aftersales")


@pytest.fixture
def db(db_connect, db_name):
    return db_connect(db_name)


def actor_of(staff):
    return {"staff_id": staff["id"], "role": staff["role"], "username": staff["username"], "team": staff["team"]}


class Org:
    """A small org chart and a customer, known to the fake customer service."""

    def __init__(self, world):
        self.world = world
        self.manager = self.add("mgr", "sales_manager", team="east-1")
        self.rep = self.add("rep", "sales_rep", manager=self.manager, team="east-1")
        self.other_manager = self.add("mgr2", "sales_manager", team="west-2")
        self.other_rep = self.add("rep2", "sales_rep", manager=self.other_manager, team="west-2")
        self.engineer = self.add("eng", "service_engineer")
        self.other_engineer = self.add("eng2", "service_engineer")
        self.director = self.add("dir", "sales_director")
        self.customer = self.add_customer(self.rep)

    def add(self, name, role, manager=None, team=None, active=True):
        staff_id = str(uuid.uuid4())
        username = f"{name}-{staff_id[:6]}"
        self.world.staff[staff_id] = {
            "id": staff_id, "username": username, "display_name": username.title(), "role": role,
            "manager_id": manager["staff_id"] if manager else None, "team": team, "region": "East",
            "active": active}
        return actor_of(self.world.staff[staff_id])

    def add_customer(self, owner, name=None):
        customer_id = str(uuid.uuid4())
        self.world.customers[customer_id] = {
            "id": customer_id, "number": f"CUS-2026-{len(self.world.customers) + 1:06d}",
            "name": name or f"Huadong {customer_id[:4]} Co., Ltd.", "owner_id": owner["staff_id"] if owner else None,
            "owner_team": owner["team"] if owner else None, "owner_name": owner["username"] if owner else None,
            "region": "East", "status": "signed"}
        return customer_id


@pytest.fixture
def org(world):
    return Org(world)


def wait_for(check, timeout=10.0, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        eventlet.sleep(0.05)
    raise AssertionError(f"{what} not met within {timeout}s")


def count(conn, sql, *params):
    with conn.cursor() as cur:
        cur.execute(sql, params)
        return next(iter(cur.fetchone().values()))


class Harness:
    """The running service, its database, and ways to feed it events."""

    def __init__(self, client, db, config):
        self.rpc = client.aftersales
        self.db = db
        self.config = config
        self._dispatch = event_dispatcher()

    def publish(self, source, event_type, data, occurred_at=None, times=1):
        """Publish an event as its producer does (`times` > 1: the broker delivering it again)."""
        event = envelope.build(event_type, data, source=source, occurred_at=occurred_at)
        for _ in range(times):
            self._dispatch(source, event_type, event)
        return event

    wait_for = staticmethod(wait_for)

    def applied(self, event, handler):
        wait_for(lambda: count(self.db, "SELECT count(*) FROM inbox WHERE event_id = %s AND handler = %s",
                               event["event_id"], f"aftersales.{handler}"), what=f"{handler} applied")

    def deliver(self, customer_id, lines, issued_at=None, delivery_id=None, wait=True):
        """goods.issued, as inventory publishes it; lines are (sku, quantity)."""
        delivery_id = delivery_id or str(uuid.uuid4())
        issued_at = issued_at or datetime.now(timezone.utc)
        event = self.publish("inventory", "goods.issued", {
            "delivery_id": delivery_id, "delivery_number": f"DN-2026-{delivery_id[:6]}",
            "order_id": str(uuid.uuid4()), "order_number": "SO-2026-000001", "loan_id": None,
            "warehouse": "main", "issued_at": issued_at.isoformat(), "customer_id": customer_id,
            "owner_id": None, "owner_team": None, "region": "East",
            "lines": [{"delivery_line_id": str(uuid.uuid4()), "order_line_id": str(uuid.uuid4()), "sku": sku,
                       "quantity": quantity, "unit_price": "1200.00", "vat_rate": "0.13"}
                      for sku, quantity in lines]})
        if wait:
            self.applied(event, "on_goods_issued")
        return delivery_id

    def product(self, sku, warranty_months, occurred_at=None, event_type="product.created"):
        event = self.publish("inventory", event_type, {
            "sku": sku, "name": f"Product {sku}", "unit": "pcs", "list_price": "1200.00", "floor_price": "1000.00",
            "vat_rate": "0.13", "active": True, "warranty_months": warranty_months}, occurred_at=occurred_at)
        self.applied(event, "on_" + event_type.replace(".", "_"))
        return event

    def count(self, sql, *params):
        return count(self.db, sql, *params)

    def outbox(self, event_type=None):
        with self.db.cursor() as cur:
            cur.execute("SELECT payload FROM outbox WHERE %s::text IS NULL OR event_type = %s ORDER BY id",
                        (event_type, event_type))
            return [row["payload"] for row in cur.fetchall()]


@pytest.fixture
def start_service(db_name, db, service_config, container_factory):
    """`start_service(order=True, customer=True, **config)`: the service and the chosen fakes.
    (The database and the vhost are requested first: they go only after the containers are killed.)"""
    clients = []

    def start(order=True, customer=True, replicas=1, **overrides):
        from aftersales.service import AftersalesService

        cfg = service_config(db_name, **overrides)
        for _ in range(replicas):
            container_factory(AftersalesService, dict(cfg, WEB_SERVER_ADDRESS=service_config()["WEB_SERVER_ADDRESS"])
                              ).start()
        if customer:
            container_factory(FakeCustomer, cfg).start()
        if order:
            container_factory(FakeOrder, cfg).start()
        client = ClusterRpcClient(timeout=15)
        clients.append(client)
        harness = Harness(client.start(), db, cfg)
        harness.start_order = lambda: container_factory(FakeOrder, cfg).start()
        return harness

    yield start
    for client in clients:
        client.stop()


@pytest.fixture
def service(start_service):
    return start_service()
