"""SIGKILL of the order service in the middle of confirming an order (issue 5, "Done when"): the
order service runs as a real process; inventory and billing are the fakes of
services/order/tests/fakes.py on the same vhost, so their books can be read. Inventory reserves
and then holds its answer; billing reserves at once; the order process is killed while waiting.
After a restart the recovery job (its timer, nobody calls it) resumes the saga — or, past the
resume window, compensates it — and then no order is stuck in an intermediate state and nothing
is reserved for an order that is not confirmed."""
import importlib.util
import sys
import uuid
from pathlib import Path

import eventlet
import pytest
from nameko.standalone.events import event_dispatcher
from nameko.standalone.rpc import ClusterRpcClient

from shared import envelope

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]


def order_fakes():
    if "order_fakes" not in sys.modules:
        spec = importlib.util.spec_from_file_location("order_fakes", ROOT / "services/order/tests/fakes.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules["order_fakes"] = module
        spec.loader.exec_module(module)
    return sys.modules["order_fakes"]


BOOKS = order_fakes().BOOKS


def wait_for(check, timeout=30.0, what="condition"):
    for _ in range(int(timeout / 0.1)):
        value = check()
        if value:
            return value
        eventlet.sleep(0.1)
    raise AssertionError(f"{what} not met within {timeout}s")


def one(conn, sql, *params):
    cur = conn.cursor()
    cur.execute(sql, params)
    return cur.fetchone()


@pytest.fixture(autouse=True)
def books():
    BOOKS.__init__()
    yield BOOKS
    if not BOOKS.release.ready():
        BOOKS.release.send(True)


@pytest.mark.parametrize("window,outcome", [("300", "confirmed"), ("0", "draft")], ids=["resumed", "compensated"])
def test_sigkill_while_confirming_leaves_nothing_stuck_and_nothing_held(
        window, outcome, books, make_database, db_connect, process_factory, container_factory, service_config):
    fakes = order_fakes()
    order_db = make_database("services/order/migrations")
    cfg = service_config(None)
    for cls in (fakes.FakeCustomer, fakes.FakeInventory, fakes.FakeBilling):
        container_factory(cls, cfg).start()
    env = {"ORDER_SAGA_LEASE_SECONDS": 3, "RPC_TIMEOUT": 30}
    order = process_factory("order", "order.service:OrderService", "services/order/config.yaml", db_name=order_db,
                            **env).wait_ready()
    conn = db_connect(order_db)

    event_dispatcher()("inventory", "product.created", envelope.build("product.created", {
        "sku": "P1", "name": "Pump", "unit": "pc", "list_price": "100.00", "floor_price": "80.00", "vat_rate": "0.13",
        "active": True}, source="inventory"))
    wait_for(lambda: one(conn, "SELECT count(*) AS n FROM products")["n"] == 1, what="price list")
    books.stock["P1"] = 10
    manager = books.add_staff("sales_manager", team="east-1")
    rep = books.add_staff("sales_rep", manager=manager, team="east-1")
    customer = books.add_customer(rep)
    with ClusterRpcClient(timeout=15) as client:
        placed = client.order.place_order(request_id=str(uuid.uuid4()), actor=rep, order={
            "customer_id": customer, "lines": [{"sku": "P1", "quantity": 4}]})

    # inventory reserves, then holds its answer: the order process is waiting when it dies
    books.modes["inventory.reserve_stock"] = "block"

    def confirm():
        try:
            with ClusterRpcClient(timeout=60) as client:
                client.order.confirm_order(request_id=str(uuid.uuid4()), actor=rep, order_id=placed["id"])
        except Exception:  # the process it was talking to is gone
            pass

    caller = eventlet.spawn(confirm)
    books.entered.wait()
    wait_for(lambda: books.reserved_credit(placed["id"]), what="credit reserved")
    assert one(conn, "SELECT status FROM orders WHERE id = %s", placed["id"])["status"] == "confirming"
    assert one(conn, "SELECT state FROM sagas WHERE order_id = %s", placed["id"])["state"] == "running"
    order.kill()
    caller.kill()
    books.release.send(True)
    books.modes.clear()
    assert len(books.active_reservations(placed["id"])) == 1 and len(books.reserved_credit(placed["id"])) == 1

    process_factory("order-restarted", "order.service:OrderService", "services/order/config.yaml",
                    db_name=order_db, ORDER_SAGA_RESUME_WINDOW_SECONDS=window, **env).wait_ready()
    # nobody calls the job: its timer finds the saga once the dead process's lease has run out
    wait_for(lambda: one(conn, "SELECT status FROM orders WHERE id = %s", placed["id"])["status"] == outcome,
             timeout=90, what=f"order {outcome}")  # a wait, not a timing: generous under load

    assert one(conn, "SELECT count(*) AS n FROM orders WHERE status = 'confirming'")["n"] == 0
    assert one(conn, "SELECT count(*) AS n FROM sagas WHERE state IN ('running', 'compensating')")["n"] == 0
    held, credit = books.active_reservations(placed["id"]), books.reserved_credit(placed["id"])
    if outcome == "confirmed":
        # resumed with the same reservation ids: held once, not twice
        assert len(held) == 1 and len(credit) == 1 and books.stock["P1"] == 6
        assert len({c["reservation_id"] for c in books.of("inventory.reserve_stock")}) == 1
        assert one(conn, "SELECT count(*) AS n FROM outbox WHERE event_type = 'order.confirmed'")["n"] == 1
    else:
        assert held == [] and credit == [] and books.stock["P1"] == 10
        assert [c["order_id"] for c in books.of("inventory.release_reservation")] == [placed["id"]]
        assert [c["order_id"] for c in books.of("billing.release_credit")] == [placed["id"]]
