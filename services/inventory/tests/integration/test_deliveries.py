"""Delivery notes (发货单, FR-77) from a confirmed order's reservation, goods issues (出库单,
FR-78) publishing goods.issued, cancellation, posted documents that never change, return receipts
(FR-96) publishing goods.returned, row-level access on the customer snapshot, and the shipped
report — against the real PostgreSQL and RabbitMQ."""
import uuid
from datetime import date, datetime, timedelta

import psycopg2
import pytest

from shared.errors import BusinessRuleViolation, Forbidden, InvalidState, NotFound, ValidationFailed
from shared.testing.contracts import assert_matches_contract


def rid():
    return str(uuid.uuid4())


@pytest.fixture
def team(who):
    """A manager and two reps of team East, and a rep of team West."""
    return {"manager": who.new("sales_manager", "East"), "rep_a": who.new("sales_rep", "East"),
            "rep_b": who.new("sales_rep", "East"), "rep_west": who.new("sales_rep", "West")}


def test_fr77_fr78_delivery_note_then_goods_issue_publishes_goods_issued(inv, who, team):
    motor, cable = inv.stocked(10), inv.stocked(10)
    order = inv.confirmed_order([(motor, 6, "99.50"), (cable, 2, "12.00")], owner=team["rep_a"])
    lines = {line["sku"]: line for line in order["lines"]}

    note = inv.deliver(order["order_id"], [(motor, 4)], who=team["rep_a"])
    assert note["status"] == "pending" and note["number"].startswith("DN-")
    assert note["owner_id"] == team["rep_a"]["staff_id"] and note["owner_team"] == "East"
    assert note["customer_id"] == order["customer_id"] and note["region"] == "East China"
    [line] = note["lines"]
    assert (line["sku"], line["quantity"], line["unit_price"], line["vat_rate"], line["amount"]) == (
        motor, 4, "99.50", "0.13", "398.00")
    assert line["order_line_id"] == lines[motor]["line_id"] and note["total"] == "398.00"
    assert inv.level(motor)["on_hand"] == 10  # a note moves no stock

    issued = inv.issue(note["id"])
    assert issued["status"] == "issued" and issued["goods_issue_number"].startswith("GI-")
    level = inv.level(motor)
    assert (level["on_hand"], level["reserved"], level["available"]) == (6, 2, 4)
    reservation = inv.rpc.get_reservation(actor=who.admin, order_id=order["order_id"])
    assert reservation["status"] == "committed"
    assert {l["sku"]: (l["allocated"], l["issued"]) for l in reservation["lines"]} == {motor: (4, 4), cable: (0, 0)}

    [event] = inv.events("goods.issued")
    assert_matches_contract("inventory", event)
    assert event["data"] == {
        "delivery_id": note["id"], "delivery_number": note["number"], "goods_issue_id": issued["goods_issue_id"],
        "goods_issue_number": issued["goods_issue_number"], "order_id": order["order_id"],
        "order_number": order["order_number"], "loan_id": None, "warehouse": "MAIN",
        "issued_at": event["data"]["issued_at"], "total": "398.00",
        "customer_id": order["customer_id"], "owner_id": team["rep_a"]["staff_id"], "owner_team": "East",
        "region": "East China",
        "lines": [{"delivery_line_id": line["id"], "order_line_id": lines[motor]["line_id"], "sku": motor,
                   "quantity": 4, "unit_price": "99.50", "vat_rate": "0.13"}]}

    rest = inv.deliver(order["order_id"], [(motor, 2), (cable, 2)])
    inv.issue(rest["id"])
    assert inv.rpc.get_reservation(actor=who.admin, order_id=order["order_id"])["status"] == "consumed"
    with pytest.raises(BusinessRuleViolation) as info:  # all delivered: nothing more to deliver
        inv.deliver(order["order_id"], [(motor, 1)])
    assert info.value.code == "OVER_DELIVERY"
    assert inv.level(motor)["reserved"] == 0 and inv.level(cable)["on_hand"] == 8
    assert [m["kind"] for m in inv.rpc.list_movements(filters={"sku": motor})["items"]] == [
        "issue", "issue", "reservation", "receipt"]
    inv.books_balance()


def test_fr77_a_note_never_asks_more_than_reserved_less_delivered_and_pending(inv, who):
    sku, other = inv.stocked(10), inv.stocked(10)
    order = inv.confirmed_order([(sku, 6)])
    inv.issue(inv.deliver(order["order_id"], [(sku, 4)])["id"])
    inv.deliver(order["order_id"], [(sku, 2)])  # pending
    for lines, code, field in (([(sku, 1)], "OVER_DELIVERY", None), ([(other, 1)], "OVER_DELIVERY", None),
                               ([("NO-SUCH", 1)], "UNKNOWN_SKU", "lines.0.sku"),
                               ([(sku, 0)], "VALIDATION_FAILED", "lines.0.quantity")):
        with pytest.raises((BusinessRuleViolation, ValidationFailed)) as info:
            inv.deliver(order["order_id"], lines)
        assert info.value.code == code
        if field:
            assert field in info.value.errors
    with pytest.raises(BusinessRuleViolation) as info:
        inv.deliver(order["order_id"], [(sku, 1)])
    assert info.value.extra["lines"] == [{"line": 0, "sku": sku, "requested": 1, "deliverable": 0}]
    assert inv.count("SELECT count(*) FROM deliveries") == 2


def test_fr73_a_delivery_note_needs_a_confirmed_order(inv):
    sku = inv.stocked(5)
    held = inv.reserve([(sku, 1)])
    for order_id in (held["order_id"], rid()):
        with pytest.raises(InvalidState) as info:
            inv.deliver(order_id, [(sku, 1)])
        assert info.value.code == "RESERVATION_NOT_COMMITTED"
    inv.rpc.release_reservation(order_id=held["order_id"], reason="cancelled")
    with pytest.raises(InvalidState) as info:
        inv.deliver(held["order_id"], [(sku, 1)])
    assert info.value.extra["reservation_status"] == "released"


def test_issuing_a_cancelled_note_is_refused_and_a_posted_note_never_changes(inv, who, db_connect, db_name):
    sku = inv.stocked(5)
    order = inv.confirmed_order([(sku, 3)])
    note = inv.deliver(order["order_id"], [(sku, 3)])
    cancelled = inv.rpc.cancel_delivery(request_id=rid(), actor=who.desk, delivery_id=note["id"],
                                        reason="customer asked to wait")
    assert cancelled["status"] == "cancelled" and cancelled["cancel_reason"] == "customer asked to wait"
    with pytest.raises(InvalidState) as info:
        inv.issue(note["id"])
    assert info.value.code == "DELIVERY_CANCELLED"

    again = inv.deliver(order["order_id"], [(sku, 3)])  # cancelling gave the quantity back to the order
    request_id = rid()
    issued = inv.rpc.issue_goods(request_id=request_id, actor=who.keeper, delivery_id=again["id"])
    assert inv.rpc.issue_goods(request_id=request_id, actor=who.keeper, delivery_id=again["id"]) == issued
    for call in (lambda: inv.issue(again["id"]),
                 lambda: inv.rpc.cancel_delivery(request_id=rid(), actor=who.desk, delivery_id=again["id"],
                                                 reason="too late")):
        with pytest.raises(InvalidState) as info:
            call()
        assert info.value.code == "DELIVERY_ALREADY_ISSUED"
    conn = db_connect(db_name)
    for sql in ("UPDATE deliveries SET status = 'pending' WHERE status = 'issued'",
                "UPDATE deliveries SET cancel_reason = 'edited' WHERE status = 'cancelled'",
                "UPDATE delivery_lines SET quantity = 1", "DELETE FROM deliveries"):
        with pytest.raises(psycopg2.errors.RestrictViolation):
            conn.cursor().execute(sql)
    assert len(inv.events("goods.issued")) == 1
    assert inv.level(sku)["on_hand"] == 2
    inv.books_balance()


def test_a_rep_may_raise_a_note_for_their_own_order_but_never_issue_goods(inv, team):
    sku = inv.stocked(5)
    order = inv.confirmed_order([(sku, 2)], owner=team["rep_a"])
    with pytest.raises(NotFound):  # someone else's order answers not found
        inv.deliver(order["order_id"], [(sku, 1)], who=team["rep_west"])
    note = inv.deliver(order["order_id"], [(sku, 1)], who=team["rep_a"])
    with pytest.raises(Forbidden) as info:
        inv.issue(note["id"], who=team["rep_a"])
    assert info.value.code == "FORBIDDEN"
    assert inv.level(sku)["on_hand"] == 5


def test_row_level_access_follows_the_customer_snapshot_and_owner_changes(inv, team, publish_event, wait_for):
    sku = inv.stocked(10)
    mine = inv.confirmed_order([(sku, 2)], owner=team["rep_a"])
    west = inv.confirmed_order([(sku, 2)], owner=team["rep_west"])
    note = inv.deliver(mine["order_id"], [(sku, 2)])
    west_note = inv.deliver(west["order_id"], [(sku, 2)])

    def visible(actor):
        return {d["id"] for d in inv.rpc.list_deliveries(actor=actor)["items"]}

    assert visible(team["rep_a"]) == {note["id"]}
    assert visible(team["manager"]) == {note["id"]}  # the manager sees the team's
    assert visible(team["rep_west"]) == {west_note["id"]}
    with pytest.raises(NotFound):
        inv.rpc.get_delivery(actor=team["rep_b"], delivery_id=note["id"])

    older = publish_event("customer", "customer.owner_changed", {
        "customer_id": mine["customer_id"], "owner_id": team["rep_west"]["staff_id"], "owner_team": "West"})
    newer = publish_event("customer", "customer.owner_changed", {
        "customer_id": mine["customer_id"], "owner_id": team["rep_b"]["staff_id"], "owner_team": "East",
        "previous_owner_id": team["rep_a"]["staff_id"], "reason": "rebalanced", "changed_by": rid()})
    wait_for(lambda: inv.count("SELECT count(*) FROM inbox") == 2)
    assert older["occurred_at"] < newer["occurred_at"]
    assert inv.rpc.get_delivery(actor=team["rep_b"], delivery_id=note["id"])["owner_id"] == team["rep_b"]["staff_id"]
    assert visible(team["rep_a"]) == set()
    # an older change delivered late moves nothing back
    publish_event("customer", "customer.owner_changed", {
        "customer_id": mine["customer_id"], "owner_id": team["rep_a"]["staff_id"], "owner_team": "East"},
        occurred_at=datetime.fromisoformat(older["occurred_at"]))
    publish_event("customer", "customer.updated", {"customer_id": mine["customer_id"], "region": "North China",
                                                   "name": "Renamed Ltd"})
    wait_for(lambda: inv.count("SELECT count(*) FROM inbox") == 4)
    moved = inv.rpc.get_delivery(actor=team["rep_b"], delivery_id=note["id"])
    assert (moved["owner_id"], moved["region"]) == (team["rep_b"]["staff_id"], "North China")
    # posted notes follow too, and the reservation with them
    inv.issue(note["id"])
    assert inv.rpc.get_reservation(actor=team["rep_b"], order_id=mine["order_id"])["owner_id"] == \
        team["rep_b"]["staff_id"]
    assert inv.count("SELECT count(*) FROM failed_messages") == 0


def test_releasing_an_order_cancels_its_pending_notes(inv, who):
    sku = inv.stocked(10)
    order = inv.confirmed_order([(sku, 5)])
    inv.issue(inv.deliver(order["order_id"], [(sku, 2)])["id"])
    pending = inv.deliver(order["order_id"], [(sku, 2)])
    inv.rpc.release_reservation(order_id=order["order_id"], reason="order cancelled")
    assert inv.rpc.get_delivery(actor=who.admin, delivery_id=pending["id"])["status"] == "cancelled"
    level = inv.level(sku)
    assert (level["on_hand"], level["reserved"]) == (8, 0)  # what was issued stays issued
    inv.books_balance()


def test_fr96_return_receipt_never_more_than_issued_less_returned_and_publishes_goods_returned(inv, who):
    sku = inv.stocked(10)
    order = inv.confirmed_order([(sku, 4, "250.00")])
    note = inv.issue(inv.deliver(order["order_id"], [(sku, 4)])["id"])
    return_id, request_id = rid(), rid()
    receipt = inv.rpc.receive_return(request_id=request_id, return_id=return_id, return_number="RR-2026-000001",
                                     delivery_id=note["id"], lines=[{"sku": sku, "quantity": 3}])
    assert receipt["number"].startswith("RT-") and receipt["kind"] == "return_receipt"
    assert receipt["lines"][0]["delivery_line_id"] == note["lines"][0]["id"]
    assert inv.rpc.receive_return(request_id=request_id, return_id=return_id, return_number="RR-2026-000001",
                                  delivery_id=note["id"], lines=[{"sku": sku, "quantity": 3}]) == receipt
    assert inv.level(sku)["on_hand"] == 9
    assert inv.rpc.get_delivery(actor=who.admin, delivery_id=note["id"])["lines"][0]["returned"] == 3

    with pytest.raises(BusinessRuleViolation) as info:
        inv.rpc.receive_return(request_id=rid(), return_id=rid(), delivery_id=note["id"],
                               lines=[{"sku": sku, "quantity": 2}])
    assert info.value.code == "OVER_RETURN"
    assert info.value.extra["lines"] == [{"line": 0, "sku": sku, "requested": 2, "returnable": 1}]

    pending = inv.deliver(inv.confirmed_order([(sku, 1)])["order_id"], [(sku, 1)])
    with pytest.raises(InvalidState) as info:
        inv.rpc.receive_return(request_id=rid(), return_id=rid(), delivery_id=pending["id"],
                               lines=[{"sku": sku, "quantity": 1}])
    assert info.value.code == "DELIVERY_NOT_ISSUED"

    [event] = inv.events("goods.returned")
    assert_matches_contract("inventory", event)
    assert event["data"]["lines"] == [{"delivery_line_id": note["lines"][0]["id"],
                                       "order_line_id": order["lines"][0]["line_id"], "sku": sku, "quantity": 3,
                                       "unit_price": "250.00", "vat_rate": "0.13"}]
    assert (event["data"]["return_id"], event["data"]["delivery_id"], event["data"]["order_id"]) == (
        return_id, note["id"], order["order_id"])
    inv.books_balance()


def test_deliveries_list_by_order_and_status_with_a_cursor(inv, who):
    sku = inv.stocked(20)
    order = inv.confirmed_order([(sku, 10)])
    made = [inv.deliver(order["order_id"], [(sku, 1)])["id"] for _ in range(5)]
    inv.issue(made[0])
    inv.deliver(inv.confirmed_order([(sku, 1)])["order_id"], [(sku, 1)])
    seen, cursor = [], None
    while True:
        page = inv.rpc.list_deliveries(actor=who.desk, filters={"order_id": order["order_id"]}, limit=2,
                                       cursor=cursor)
        seen += [d["id"] for d in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == list(reversed(made))
    issued = inv.rpc.list_deliveries(actor=who.desk, filters={"status": "issued"})["items"]
    assert [d["id"] for d in issued] == [made[0]]


def test_report_shipped_per_rep_product_and_customer_within_the_period(inv, team):
    motor, cable = inv.stocked(20), inv.stocked(20)
    a = inv.confirmed_order([(motor, 3, "100.00"), (cable, 2, "10.00")], owner=team["rep_a"])
    b = inv.confirmed_order([(motor, 1, "100.00")], owner=team["rep_west"])
    note_a = inv.issue(inv.deliver(a["order_id"], [(motor, 3), (cable, 2)])["id"])
    inv.issue(inv.deliver(b["order_id"], [(motor, 1)])["id"])
    inv.deliver(inv.confirmed_order([(motor, 5)], owner=team["rep_a"])["order_id"], [(motor, 5)])  # not shipped
    inv.rpc.receive_return(request_id=rid(), return_id=rid(), delivery_id=note_a["id"],
                           lines=[{"sku": motor, "quantity": 1}])
    today = date.today()
    period = {"period_start": (today - timedelta(days=1)).isoformat(), "period_end": (today + timedelta(days=1)).isoformat()}

    by_rep = inv.rpc.report_shipped(actor=team["manager"], group_by="rep", **period)
    assert by_rep["groups"] == [{"key": team["rep_a"]["staff_id"], "shipped": "320.00", "shipped_quantity": 5,
                                 "returned": "100.00", "returned_quantity": 1, "net_shipped": "220.00"}]
    by_product = {g["key"]: g["shipped"] for g in
                  inv.rpc.report_shipped(actor=dict(team["manager"], role="sales_director"), group_by="product",
                                         **period)["groups"]}
    assert by_product == {motor: "400.00", cable: "20.00"}
    by_team = inv.rpc.report_shipped(actor=dict(team["manager"], role="general_manager"), group_by="team", **period)
    assert {g["key"]: g["net_shipped"] for g in by_team["groups"]} == {"East": "220.00", "West": "100.00"}
    assert inv.rpc.report_shipped(actor=team["rep_west"], group_by="customer", **period)["groups"][0]["key"] == \
        b["customer_id"]
    earlier = {"period_start": (today - timedelta(days=9)).isoformat(),
               "period_end": (today - timedelta(days=2)).isoformat()}
    assert inv.rpc.report_shipped(actor=team["manager"], group_by="region", **earlier)["groups"] == []
    with pytest.raises(ValidationFailed) as info:
        inv.rpc.report_shipped(actor=team["manager"], group_by="planet", **period)
    assert "group_by" in info.value.errors
    with pytest.raises(ValidationFailed) as info:
        inv.rpc.report_shipped(actor=team["manager"], group_by="rep", period_start=period["period_end"],
                               period_end=period["period_start"])
    assert "period_end" in info.value.errors
