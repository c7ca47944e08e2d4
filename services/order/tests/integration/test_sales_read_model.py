"""Issue 11: the sales performance figures (FR-90, FR-120–FR-123: ordered, returned, shipped and
invoiced per rep, team, region and customer) are summed from order_sales_daily, kept by the same
transactions as the facts. After every kind of fact — confirmation, shipment, invoice, red invoice,
return, cancellation, a customer moved to another owner or region, an event delivered twice,
concurrent confirmations — the read model must give exactly what the orders and their lines say."""
import uuid
from datetime import datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

from order.db import Reports
from shared import access

TZ = ZoneInfo("Asia/Shanghai")


def rid():
    return str(uuid.uuid4())


class Uow:
    """Reports' SQL on the test's own connection."""

    def __init__(self, conn):
        self.conn = conn

    def all(self, sql, params):
        cur = self.conn.cursor()
        cur.execute(sql, params)
        return cur.fetchall()


def periods():
    today = datetime.now(TZ).date()
    start = datetime.combine(today, time(), tzinfo=TZ)
    return [(start, start + timedelta(days=1)), (start - timedelta(days=400), start + timedelta(days=400)),
            (start + timedelta(days=1), start + timedelta(days=2))]


def assert_read_model_equals_the_lines(desk, org):
    reports = Reports(Uow(desk.conn))
    everyone = access.scope(org.director)
    checked = 0
    for start, end in periods():
        for group_by in ("rep", "team", "region", "customer"):
            for scope in (everyone, access.scope(org.rep)):
                from_model = [dict(r) for r in reports.ordered(scope, start, end, group_by)]
                from_lines = [dict(r) for r in reports.ordered_from_the_lines(scope, start, end, group_by)]
                assert from_model == from_lines, (group_by, start, from_model, from_lines)
                checked += len(from_lines)
    return checked


def test_fr90_fr120_issue11_the_sales_read_model_equals_the_orders_and_lines_after_every_fact(desk, books):
    org = desk.org()
    second = books.add_customer(org.other_rep, region="West")
    a = desk.confirmed(org.rep, org.customer, [{"sku": "P1", "quantity": 5}, {"sku": "P2", "quantity": 2}])
    b = desk.confirmed(org.rep, org.customer, [{"sku": "P1", "quantity": 1}])
    c = desk.confirmed(org.other_rep, second, [{"sku": "P2", "quantity": 3}])
    desk.order(org.rep, org.customer, [{"sku": "P1", "quantity": 9}])  # placed, never confirmed: not counted
    assert assert_read_model_equals_the_lines(desk, org) > 0
    assert desk.scalar("SELECT sum(orders) FROM order_sales_daily") == 3

    # shipped in part, the same goods.issued delivered twice (once with the very same event id)
    issued = desk.issue(a, {"P1": 3, "P2": 2})
    event = desk.deliver("inventory", "goods.issued", issued)
    desk.publish("inventory", "goods.issued", issued, event_id=event["event_id"])
    desk.deliver("billing", "invoice.settled", {"invoice_id": rid(), "order_ids": [], "settled_at":
                                               "2026-03-01T00:00:00+00:00"})  # a barrier after the dupe
    assert_read_model_equals_the_lines(desk, org)

    # invoiced, then a red invoice takes part of it back
    invoice = desk.invoice(a, issued)
    line = invoice["lines"][0]
    desk.deliver("billing", "invoice.reversed", {
        "red_invoice_id": rid(), "original_invoice_id": invoice["invoice_id"], "total": "-100.00",
        "lines": [dict(line, quantity=-1, amount="-100.00")]})
    assert_read_model_equals_the_lines(desk, org)

    # a return received: the returned amount follows
    requested = desk.rpc.request_return(request_id=rid(), actor=org.rep, delivery_id=issued["delivery_id"],
                                        lines=[{"sku": "P1", "quantity": 2}], reason="damaged in transit")
    desk.rpc.approve_return(request_id=rid(), actor=org.product_manager, return_id=requested["id"])
    desk.rpc.receive_return(request_id=rid(), actor=org.warehouse, return_id=requested["id"])
    call = books.of("inventory.receive_return")[-1]
    desk.deliver("inventory", "goods.returned", {
        "return_id": requested["id"], "delivery_id": issued["delivery_id"], "order_id": a["id"],
        "received_at": datetime.now(timezone.utc).isoformat(),
        "lines": [{"delivery_line_id": call["lines"][0]["delivery_line_id"], "sku": "P1", "quantity": 2,
                   "unit_price": "100.00", "vat_rate": "0.13"}]})
    assert desk.rpc.get_order(actor=org.rep, order_id=a["id"])["lines"][0]["returned_quantity"] == 2
    assert_read_model_equals_the_lines(desk, org)

    # a confirmed order cancelled: taken off
    desk.rpc.cancel_order(request_id=rid(), actor=org.rep, order_id=b["id"], reason="customer withdrew")
    assert_read_model_equals_the_lines(desk, org)
    assert desk.scalar("SELECT sum(orders) FROM order_sales_daily") == 2

    # the customer moves to another owner and team, then to another region: its figures follow
    desk.deliver("customer", "customer.owner_changed", {
        "customer_id": org.customer, "owner_id": org.other_rep["staff_id"], "owner_team": "west-1",
        "previous_owner_id": org.rep["staff_id"], "reason": "rebalanced", "changed_by": org.manager["staff_id"]})
    assert_read_model_equals_the_lines(desk, org)
    desk.deliver("customer", "customer.updated", {"customer_id": org.customer, "region": "North"})
    assert_read_model_equals_the_lines(desk, org)
    assert desk.scalar("SELECT count(*) FROM order_sales_daily WHERE customer_id = %s", org.customer) == 1
    assert c["id"]


def test_fr90_issue11_concurrent_confirmations_add_up_in_the_sales_read_model(desk, books):
    """Orders of one rep and one customer confirmed at once: each adds itself to the same day's row
    (ON CONFLICT … + EXCLUDED), none is lost or counted twice."""
    org = desk.org()
    placed = [desk.order(org.rep, org.customer, [{"sku": "P1", "quantity": n + 1}]) for n in range(6)]
    calls = [desk.rpc.confirm_order.call_async(request_id=rid(), actor=org.rep, order_id=o["id"]) for o in placed]
    confirmed = [call.result() for call in calls]
    assert all(o["status"] == "confirmed" for o in confirmed)
    assert_read_model_equals_the_lines(desk, org)
    assert desk.scalar("SELECT sum(orders) FROM order_sales_daily") == 6


class Tx:
    """A unit of work on its own connection, committed by hand (for interleaving two of them)."""

    def __init__(self, conn):
        self.conn = conn
        self.conn.autocommit = False
        self.cursor = conn.cursor()

    def execute(self, sql, params=()):
        self.cursor.execute(sql, params)
        return self.cursor

    defer = execute  # at once: the interleaving is the test's, statement by statement

    def one(self, sql, params=()):
        self.cursor.execute(sql, params)
        return self.cursor.fetchone()

    def all(self, sql, params=()):
        self.cursor.execute(sql, params)
        return self.cursor.fetchall()


def test_fr90_issue11_a_shipment_during_the_customers_move_lands_under_the_new_owner(desk, db_connect, order_db):
    """A shipment's figures added while the customer's move is not yet committed wait for it (the
    order is locked) and land under the new owner, as the orders say."""
    import eventlet

    from order.db import SalesDaily, Snapshots

    org = desk.org()
    order = desk.confirmed(org.rep, org.customer, [{"sku": "P1", "quantity": 2}])
    mover, shipper = Tx(db_connect(order_db)), Tx(db_connect(order_db))
    Snapshots(mover).apply(order["customer_id"], datetime.now(timezone.utc) + timedelta(seconds=1),
                           owner_id=org.other_rep["staff_id"], owner_team="west-1")
    shipped = eventlet.spawn(lambda: (SalesDaily(shipper).add_line(order["id"], shipped=100), shipper.conn.commit()))
    eventlet.sleep(0.3)
    assert not shipped.dead  # waiting for the move
    mover.conn.commit()
    shipped.wait()
    rows = desk.all("SELECT owner_id, shipped FROM order_sales_daily WHERE customer_id = %s", order["customer_id"])
    assert [(str(r["owner_id"]), r["shipped"]) for r in rows] == [(org.other_rep["staff_id"], 100)]


def test_fr90_issue11_a_shipment_racing_the_confirmation_is_counted_once(desk, db_connect, order_db):
    """A loan converted to an order ships (goods.issued) while the order is still confirming: the
    shipment's line change and the confirmation's sum of the lines must not miss each other. The
    line's order is locked before the line changes, so the confirmation waits for the shipment and
    counts it from the committed lines (the shipment itself saw the order unconfirmed)."""
    import eventlet

    from order.db import Orders

    org = desk.org()
    order = desk.order(org.rep, org.customer, [{"sku": "P1", "quantity": 3}])
    line_id = desk.scalar("SELECT id FROM order_lines WHERE order_id = %s", order["id"])
    with desk.conn.cursor() as cur:
        cur.execute("UPDATE orders SET status = 'confirming' WHERE id = %s", (order["id"],))
    desk.conn.commit()
    shipper, confirmer = Tx(db_connect(order_db)), Tx(db_connect(order_db))
    Orders(shipper).add_shipped(line_id, 2)
    now = datetime.now(timezone.utc)

    def confirm():
        Orders(confirmer).move(order["id"], ["confirming"], status="confirmed", confirmed_at=now, _now=now)
        confirmer.conn.commit()

    confirming = eventlet.spawn(confirm)
    eventlet.sleep(0.3)
    shipper.conn.commit()
    confirming.wait()
    assert_read_model_equals_the_lines(desk, org)
    assert desk.scalar("SELECT sum(shipped) FROM order_sales_daily") > 0
