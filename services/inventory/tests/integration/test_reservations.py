"""Reservations under the order saga (1.G; DESIGN.md "Concurrency"): all or nothing, guarded
updates that cannot oversell whatever the concurrency and however many replicas, idempotent by
reservation_id, one active per order, committed by order.confirmed, released by order.cancelled,
expired by a replica-safe job — against the real PostgreSQL and RabbitMQ."""
import uuid
from datetime import datetime, timedelta, timezone

import eventlet
import pytest

from shared.errors import BusinessRuleViolation, Conflict, ValidationFailed
from shared.testing.contracts import assert_matches_contract


@pytest.fixture
def two_replicas(inventory, container_factory, inventory_config):
    """A second container of the service on the same database and queues: competing consumers."""
    from inventory.service import InventoryService

    second = container_factory(InventoryService, inventory_config)
    second.start()
    return inventory, second


def test_concurrency_100_reservations_at_once_for_10_units_reserve_exactly_10(inv, two_replicas, concurrently):
    sku = inv.stocked(10)
    results = concurrently(inv.rpc.reserve_stock, [inv.reserve_args([(sku, 1)]) for _ in range(100)])
    won = [r for r in results if isinstance(r, dict)]
    refused = [r for r in results if isinstance(r, BusinessRuleViolation)]
    assert (len(won), len(refused)) == (10, 90), [r for r in results if not isinstance(r, (dict, BusinessRuleViolation))]
    assert {r.code for r in refused} == {"INSUFFICIENT_STOCK"}
    assert all(r.extra["shortages"][0]["available"] == 0 for r in refused)
    level = inv.level(sku)
    assert (level["on_hand"], level["reserved"], level["available"]) == (10, 10, 0)
    assert inv.count("SELECT min(least(on_hand, reserved, available, on_loan)) FROM stock_levels") >= 0
    assert inv.count("SELECT count(*) FROM reservations WHERE status = 'held'") == 10
    inv.books_balance()


def test_concurrent_multi_line_reservations_in_any_line_order_neither_oversell_nor_deadlock(
        inv, two_replicas, concurrently):
    a, b = inv.stocked(30), inv.stocked(30)
    orders = [[(a, 2), (b, 1)] if i % 2 else [(b, 2), (a, 1)] for i in range(40)]
    results = concurrently(inv.rpc.reserve_stock, [inv.reserve_args(lines) for lines in orders])
    unexpected = [r for r in results if not isinstance(r, (dict, BusinessRuleViolation))]
    assert unexpected == []
    won = [r for r in results if isinstance(r, dict)]
    reserved = {sku: sum(line["quantity"] for r in won for line in r["lines"] if line["sku"] == sku) for sku in (a, b)}
    assert reserved == {a: inv.level(a)["reserved"], b: inv.level(b)["reserved"]}
    left = {sku: inv.level(sku)["available"] for sku in (a, b)}
    assert min(left.values()) >= 0 and len(won) >= 15
    # no false refusal: stock only went down, so every refused order still does not fit at the end
    for lines, result in zip(orders, results):
        if isinstance(result, BusinessRuleViolation):
            assert result.code == "INSUFFICIENT_STOCK"
            assert any(quantity > left[sku] for sku, quantity in lines), (lines, left)
    inv.books_balance()


def test_the_same_reservation_repeated_reserves_once_and_answers_the_same(inv, concurrently):
    sku = inv.stocked(10)
    order_id, reservation_id, customer_id = str(uuid.uuid4()), str(uuid.uuid4()), str(uuid.uuid4())
    line_id = str(uuid.uuid4())
    args = dict(reservation_id=reservation_id, order_id=order_id, order_number="SO-2026-000001",
                customer_id=customer_id, owner_id=None, region="East",
                lines=[{"line_id": line_id, "sku": sku, "quantity": 4, "unit_price": "99.50"}])
    first = inv.rpc.reserve_stock(**args)
    assert first["status"] == "held" and first["warehouse"] == "MAIN"
    assert first["lines"][0]["vat_rate"] == "0.13"  # from the catalog when the order gives none
    # as after a broker bounce: again, and several at once
    again = concurrently(inv.rpc.reserve_stock, [args] * 5) + [inv.rpc.reserve_stock(**args)]
    assert all(answer == first for answer in again)
    assert inv.level(sku)["reserved"] == 4
    assert inv.count("SELECT count(*) FROM stock_movements WHERE kind = 'reservation'") == 1
    with pytest.raises(ValidationFailed) as info:  # the same id for another request
        inv.rpc.reserve_stock(**dict(args, lines=[dict(args["lines"][0], quantity=5)]))
    assert info.value.code == "IDEMPOTENCY_KEY_REUSED"

    released = inv.rpc.release_reservation(order_id=order_id, reason="order edited")
    assert released == {"order_id": order_id, "reservation_id": reservation_id, "status": "released"}
    after = inv.rpc.reserve_stock(**args)  # after a release: answers released, reserves nothing
    assert after["status"] == "released" and after["close_reason"] == "order edited"
    assert inv.level(sku)["reserved"] == 0
    assert inv.rpc.release_reservation(order_id=order_id)["status"] == "released"  # again: a no-op
    assert inv.count("SELECT count(*) FROM stock_movements WHERE kind = 'release'") == 1
    inv.books_balance()


def test_a_reservation_is_all_or_nothing_across_the_orders_lines(inv):
    plenty, scarce = inv.stocked(10), inv.stocked(2)
    with pytest.raises(BusinessRuleViolation) as info:
        inv.reserve([(plenty, 5), (scarce, 5)])
    assert info.value.code == "INSUFFICIENT_STOCK"
    assert info.value.extra["shortages"] == [{"sku": scarce, "warehouse": "MAIN", "requested": 5, "available": 2,
                                              "on_hand": 2, "on_loan": 0}]
    assert inv.level(plenty)["reserved"] == 0 and inv.level(scarce)["reserved"] == 0
    assert inv.count("SELECT count(*) FROM reservations") == 0
    # nothing is remembered: a retry may succeed once stock arrives
    assert inv.count("SELECT count(*) FROM idempotency_keys WHERE command = 'reserve_stock'") == 0


@pytest.mark.parametrize("line,code,field", [
    ({"quantity": 0}, "VALIDATION_FAILED", "lines.0.quantity"),
    ({"quantity": -3}, "VALIDATION_FAILED", "lines.0.quantity"),
    ({"quantity": "2"}, "VALIDATION_FAILED", "lines.0.quantity"),
    ({"sku": "NOT-IN-CATALOG"}, "UNKNOWN_SKU", "lines.0.sku"),
    ({"unit_price": 12.5}, "VALIDATION_FAILED", "lines.0.unit_price"),
    ({"line_id": "7"}, "VALIDATION_FAILED", "lines.0.line_id"),
])
def test_bad_reservation_lines_are_refused_with_a_clear_code_and_change_nothing(inv, line, code, field):
    sku = inv.stocked(10)
    args = dict(reservation_id=str(uuid.uuid4()), order_id=str(uuid.uuid4()), customer_id=str(uuid.uuid4()),
                lines=[dict({"line_id": str(uuid.uuid4()), "sku": sku, "quantity": 1, "unit_price": "1.00"}, **line)])
    with pytest.raises(ValidationFailed) as info:
        inv.rpc.reserve_stock(**args)
    assert info.value.code == code and field in info.value.errors
    assert inv.count("SELECT count(*) FROM reservations") + inv.level(sku)["reserved"] == 0


def test_inactive_products_and_unknown_warehouses_cannot_be_reserved(inv, who):
    sku = inv.stocked(5)
    inv.rpc.update_product(request_id=str(uuid.uuid4()), actor=who.pm, sku=sku, changes={"active": False})
    with pytest.raises(BusinessRuleViolation) as info:
        inv.reserve([(sku, 1)])
    assert info.value.code == "PRODUCT_INACTIVE"
    with pytest.raises(ValidationFailed) as info:
        inv.reserve([(sku, 1)], warehouse="NOWHERE")
    assert info.value.code == "UNKNOWN_WAREHOUSE" and "warehouse" in info.value.errors


def test_at_most_one_active_reservation_per_order(inv):
    sku = inv.stocked(10)
    first = inv.reserve([(sku, 2)])
    with pytest.raises(Conflict) as info:
        inv.reserve([(sku, 3)], order_id=first["order_id"])
    assert info.value.code == "RESERVATION_EXISTS"
    assert info.value.extra["reservation_id"] == first["reservation_id"]
    inv.rpc.release_reservation(order_id=first["order_id"], reason="order edited")
    second = inv.reserve([(sku, 3)], order_id=first["order_id"])
    assert second["status"] == "held" and inv.level(sku)["reserved"] == 3


def test_order_confirmed_commits_and_order_cancelled_releases_each_applied_once(inv, publish_event, wait_for):
    sku = inv.stocked(10)
    reservation = inv.reserve([(sku, 6)])
    order_id = reservation["order_id"]

    def status():
        return inv.rpc.get_reservation(actor={"staff_id": str(uuid.uuid4()), "role": "admin"},
                                       order_id=order_id)["status"]

    confirmed = {"order_id": order_id, "number": "SO-2026-000007", "total": "7200.00", "some_new_field": [1, 2]}
    event = publish_event("order", "order.confirmed", confirmed)
    publish_event("order", "order.confirmed", confirmed, event_id=event["event_id"])  # redelivered
    wait_for(lambda: status() == "committed", what="the reservation committed")
    far = (datetime.now(timezone.utc) + timedelta(days=30)).isoformat()
    assert inv.rpc.run_expire_reservations(as_of=far)["expired"] == 0  # a committed one never expires

    cancelled = publish_event("order", "order.cancelled", {"order_id": order_id, "reason": "customer withdrew"})
    publish_event("order", "order.cancelled", {"order_id": order_id}, event_id=cancelled["event_id"])
    wait_for(lambda: status() == "released", what="the reservation released")
    eventlet.sleep(0.3)
    assert inv.level(sku)["reserved"] == 0
    assert inv.count("SELECT count(*) FROM inbox") == 2
    assert inv.count("SELECT count(*) FROM failed_messages") == 0
    inv.books_balance()


def test_expiry_job_releases_stale_holds_once_across_replicas(inv, two_replicas, who, concurrently):
    sku = inv.stocked(20)
    held = [inv.reserve([(sku, 2)]) for _ in range(6)]
    committed = inv.confirmed_order([(sku, 3)])
    now = datetime.now(timezone.utc)
    assert inv.rpc.run_expire_reservations(as_of=(now + timedelta(minutes=30)).isoformat())["expired"] == 0

    later = (now + timedelta(hours=2)).isoformat()
    runs = concurrently(inv.rpc.run_expire_reservations, [{"as_of": later}] * 4)
    expired = [rid for run in runs for rid in run["reservation_ids"]]
    assert sorted(expired) == sorted(r["reservation_id"] for r in held)  # each exactly once
    events = inv.events("stock.reservation_expired")
    assert sorted(e["data"]["reservation_id"] for e in events) == sorted(expired)
    for event in events:
        assert_matches_contract("inventory", event)
    assert {e["data"]["order_id"] for e in events} == {r["order_id"] for r in held}
    assert inv.level(sku)["reserved"] == 3
    assert inv.rpc.get_reservation(actor=who.admin, order_id=committed["order_id"])["status"] == "committed"
    assert inv.rpc.get_reservation(actor=who.admin, order_id=held[0]["order_id"])["status"] == "expired"
    inv.books_balance()


def test_expiry_job_refuses_a_time_without_zone(inv):
    with pytest.raises(ValidationFailed) as info:
        inv.rpc.run_expire_reservations(as_of="2026-01-01T00:00:00")
    assert "as_of" in info.value.errors
