"""Fixtures of the inventory service's tests: the service on a fresh PostgreSQL database (its
migrations) and this test's RabbitMQ vhost, called over real RPC, and a small driver (`inv`) for
the steps most tests share."""
import uuid

import eventlet
import pytest
from nameko.standalone.events import event_dispatcher
from nameko.standalone.rpc import ClusterRpcClient

from shared import envelope

MIGRATIONS = "services/inventory/migrations"


def actor(role, team=None):
    return {"staff_id": str(uuid.uuid4()), "role": role, "username": f"{role}-{uuid.uuid4().hex[:4]}", "team": team}


PM = actor("product_manager")
KEEPER = actor("warehouse")
DESK = actor("order_desk")
ADMIN = actor("admin")


def new_id():
    return str(uuid.uuid4())


class Inventory:
    """Drives the service the way its callers do (the gateway, the order saga)."""

    def __init__(self, rpc, conn):
        self.rpc = rpc
        self.conn = conn

    # -- catalog and stock ----------------------------------------------------------------------
    def product(self, sku=None, **over):
        body = {"sku": sku or f"SKU-{uuid.uuid4().hex[:8]}", "name": "Servo motor 400W", "unit": "pcs",
                "list_price": "1200.00", "floor_price": "1000.00"}
        body.update(over)
        return self.rpc.create_product(request_id=new_id(), actor=PM, product=body)

    def receive(self, sku, quantity, warehouse=None):
        return self.rpc.post_receipt(request_id=new_id(), actor=KEEPER, receipt={
            "warehouse": warehouse, "lines": [{"sku": sku, "quantity": quantity}], "reason": "purchase"})

    def stocked(self, quantity, **over):
        sku = self.product(**over)["sku"]
        if quantity:
            self.receive(sku, quantity)
        return sku

    def level(self, sku, warehouse="MAIN"):
        items = self.rpc.list_stock(filters={"sku": sku, "warehouse": warehouse})["items"]
        return items[0] if items else None

    # -- the order saga -------------------------------------------------------------------------
    def reserve(self, lines, **over):
        return self.rpc.reserve_stock(**self.reserve_args(lines, **over))

    def reserve_args(self, lines, order_id=None, reservation_id=None, owner=None, customer_id=None, **over):
        """reserve_stock's arguments as the order saga sends them; `lines` = [(sku, qty[, unit_price])]."""
        owner = owner or DESK
        args = dict(reservation_id=reservation_id or new_id(), order_id=order_id or new_id(),
                    order_number=f"SO-2026-{uuid.uuid4().int % 10**6:06d}",
                    customer_id=customer_id or new_id(), owner_id=owner["staff_id"], owner_team=owner.get("team"),
                    region="East China",
                    lines=[{"line_id": new_id(), "sku": sku, "quantity": qty, "unit_price": price}
                           for sku, qty, price in ((line + ("1200.00",))[:3] for line in lines)])
        args.update(over)
        return args

    def confirmed_order(self, lines, owner=None, **over):
        reservation = self.reserve(lines, owner=owner, **over)
        self.rpc.commit_reservation(order_id=reservation["order_id"])
        return reservation

    def deliver(self, order_id, lines, who=DESK):
        return self.rpc.create_delivery(request_id=new_id(), actor=who, order_id=order_id,
                                        lines=[{"sku": sku, "quantity": qty} for sku, qty in lines])

    def issue(self, delivery_id, who=KEEPER):
        return self.rpc.issue_goods(request_id=new_id(), actor=who, delivery_id=delivery_id)

    # -- the books ------------------------------------------------------------------------------
    def books_balance(self):
        check = self.rpc.check_stock_ledger()
        assert check["ok"], check["mismatches"]
        return check

    def count(self, sql, *params):
        cur = self.conn.cursor()
        cur.execute(sql, params)
        return next(iter(cur.fetchone().values()))

    def events(self, event_type):
        cur = self.conn.cursor()
        cur.execute("SELECT payload FROM outbox WHERE event_type = %s ORDER BY id", (event_type,))
        return [row["payload"] for row in cur.fetchall()]

    def all_events(self):
        cur = self.conn.cursor()
        cur.execute("SELECT payload FROM outbox ORDER BY id")
        return [row["payload"] for row in cur.fetchall()]


@pytest.fixture
def db_name(make_database):
    return make_database(MIGRATIONS, prefix="test_inventory")


@pytest.fixture
def inventory_config(service_config, db_name):
    return service_config(db_name, DB={"POOL_SIZE": 10})


@pytest.fixture
def inventory(inventory_config, container_factory):
    from inventory.service import InventoryService

    container = container_factory(InventoryService, inventory_config)
    container.start()
    return container


@pytest.fixture
def rpc(inventory):
    with ClusterRpcClient(timeout=15) as client:
        yield client.inventory


@pytest.fixture
def inv(rpc, db_connect, db_name):
    return Inventory(rpc, db_connect(db_name))


def fire(method, calls):
    """Send every call of `method` (a list of kwargs) before waiting for any answer, so they all
    reach the service at once; each result is the answer or the error raised."""
    replies = [method.call_async(**kwargs) for kwargs in calls]
    results = []
    for reply in replies:
        try:
            results.append(reply.result())
        except Exception as exc:  # collected and checked by the test
            results.append(exc)
    return results


@pytest.fixture
def concurrently():
    """`concurrently(method, [kwargs, ...])`: see `fire`."""
    return fire


@pytest.fixture
def publish_event(rabbit_config):
    """`publish_event(source, event_type, data)` → the envelope sent (as the producer's relay does)."""
    dispatch = event_dispatcher()

    def publish(source, event_type, data, **envelope_fields):
        event = envelope.build(event_type, data, source=source, **envelope_fields)
        dispatch(source, event_type, event)
        return event

    return publish


@pytest.fixture
def wait_for():
    def wait(predicate, timeout=10.0, what="condition"):
        deadline = eventlet.hubs.get_hub().clock() + timeout
        while True:
            value = predicate()
            if value:
                return value
            if eventlet.hubs.get_hub().clock() > deadline:
                raise AssertionError(f"{what} not met within {timeout}s")
            eventlet.sleep(0.05)

    return wait


class Actors:
    pm = PM
    keeper = KEEPER
    desk = DESK
    admin = ADMIN

    @staticmethod
    def new(role, team=None):
        return actor(role, team)


@pytest.fixture
def who():
    """The actors tests act as: `who.pm`, `who.keeper`, `who.desk`, `who.admin`, `who.new(role, team)`."""
    return Actors
