"""Orders and the order saga against real PostgreSQL and RabbitMQ, with fake inventory and billing
whose books are checked at the end of every scenario (FR-43, FR-60, FR-63, FR-65, FR-67; DESIGN.md §3)."""
import time
import uuid
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest

from shared.errors import (
    BusinessRuleViolation, Conflict, Forbidden, ServiceUnavailable, UpstreamTimeout, ValidationFailed,
)


def rid():
    return str(uuid.uuid4())


def nothing_held(books, order_id):
    return books.active_reservations(order_id) == [] and books.reserved_credit(order_id) == []


# -- placing an order (FR-43, FR-45, FR-60) ---------------------------------------------------------------
def test_fr60_an_order_at_list_price_is_placed_as_a_draft(desk):
    org = desk.org()
    order = desk.order(org.rep, org.customer, [{"sku": "P1", "quantity": 2}, {"sku": "P2", "quantity": 1}],
                       warehouse="WH-1")
    assert (order["status"], order["total"], order["warehouse"], order["kind"]) == ("draft", "450.00", "WH-1", "sale")
    assert order["number"].startswith("SO-") and len(order["lines"]) == 2
    assert order["owner_id"] == org.rep["staff_id"] and order["customer_name"]


def test_fr43_fr46_refusal_below_list_without_a_quote_needs_approval_and_below_floor_is_refused(desk):
    org = desk.org()
    with pytest.raises(BusinessRuleViolation) as info:
        desk.order(org.rep, org.customer, [{"sku": "P1", "quantity": 1, "unit_price": "95.00"}])
    assert info.value.code == "APPROVAL_REQUIRED"
    with pytest.raises(BusinessRuleViolation) as info:
        desk.order(org.rep, org.customer, [{"sku": "P1", "quantity": 1, "unit_price": "79.00"}])
    assert info.value.code == "PRICE_BELOW_FLOOR"
    with pytest.raises(BusinessRuleViolation) as info:  # FR-48: a major amount needs a quote too
        desk.order(org.rep, org.customer, [{"sku": "BIG", "quantity": 2}])
    assert info.value.code == "APPROVAL_REQUIRED"
    with pytest.raises(ValidationFailed) as info:
        desk.order(org.rep, org.customer, [{"sku": "P1", "quantity": 1.5}])
    assert "lines.0.quantity" in info.value.errors
    assert desk.scalar("SELECT count(*) FROM orders") == 0


def test_fr46_an_order_on_an_approved_quote_may_be_below_list(desk):
    org = desk.org()
    quote = desk.rpc.create_quote(request_id=rid(), actor=org.rep, quote={
        "customer_id": org.customer, "valid_until": "2099-12-31", "lines": [{"sku": "P1", "quantity": 5,
                                                                            "unit_price": "90.00"}]})
    desk.rpc.submit_quote(request_id=rid(), actor=org.rep, quote_id=quote["id"])
    desk.rpc.approve_quote(request_id=rid(), actor=org.manager, quote_id=quote["id"])
    order = desk.order(org.rep, org.customer, [{"sku": "P1", "quantity": 5, "unit_price": "90.00"}],
                       quote_id=quote["id"])
    assert order["quote_id"] == quote["id"] and order["total"] == "450.00"
    with pytest.raises(BusinessRuleViolation) as info:  # one order per quote
        desk.order(org.rep, org.customer, [{"sku": "P1", "quantity": 1, "unit_price": "90.00"}], quote_id=quote["id"])
    assert info.value.code == "APPROVAL_REQUIRED"


# -- confirm: the saga ----------------------------------------------------------------------------------------
def test_fr63_fr65_confirm_reserves_stock_and_credit_in_parallel(desk, books):
    org = desk.org()
    order = desk.order(org.rep, org.customer, [{"sku": "P1", "quantity": 2}, {"sku": "P2", "quantity": 1}])
    books.modes.update({"inventory.reserve_stock": "slow", "billing.reserve_credit": "slow"})
    books.slow_for = 0.8
    started = time.monotonic()
    confirmed = desk.confirm(org.rep, order)
    elapsed = time.monotonic() - started
    assert confirmed["status"] == "confirmed" and confirmed["confirmed_at"]
    assert elapsed < 1.5, f"the two reservations ran one after the other ({elapsed:.2f}s)"
    [stock] = books.of("inventory.reserve_stock")
    [credit] = books.of("billing.reserve_credit")
    assert stock["order_id"] == order["id"] and stock["order_number"] == order["number"]
    assert (stock["customer_id"], stock["owner_id"], stock["owner_team"]) == (
        org.customer, org.rep["staff_id"], "east-1")
    assert [(l["sku"], l["quantity"], l["unit_price"]) for l in stock["lines"]] == [("P1", 2, "100.00"),
                                                                                  ("P2", 1, "250.00")]
    assert (credit["order_id"], credit["customer_id"], credit["amount"], credit["override"]) == (
        order["id"], org.customer, "450.00", None)
    assert confirmed["saga"]["state"] == "done"
    [event] = desk.outbox("order.confirmed")
    assert event["data"]["order_id"] == order["id"] and event["data"]["total"] == "450.00"
    # confirming again answers the same and calls no one
    again = desk.confirm(org.rep, order)
    assert again["status"] == "confirmed"
    assert len(books.of("inventory.reserve_stock")) == 1 and len(books.of("billing.reserve_credit")) == 1
    assert len(books.active_reservations(order["id"])) == 1 and len(books.reserved_credit(order["id"])) == 1


def test_credit_refused_puts_the_order_on_credit_hold_until_finance_releases_it(desk, books):
    org = desk.org()
    books.credit_limits[org.customer] = Decimal("100.00")
    order = desk.order(org.rep, org.customer, [{"sku": "P1", "quantity": 3}])
    held = desk.confirm(org.rep, order)
    assert held["status"] == "credit_hold" and held["credit_held_at"]
    assert len(books.active_reservations(order["id"])) == 1 and books.reserved_credit(order["id"]) == []
    [event] = desk.outbox("order.credit_held")
    assert (event["data"]["limit"], event["data"]["exposure"]) == ("100.00", "0.00")
    with pytest.raises(Forbidden) as info:  # a rep cannot release it
        desk.rpc.release_credit_hold(request_id=rid(), actor=org.rep, order_id=order["id"], reason="please")
    assert info.value.code == "ROLE_NOT_ALLOWED"
    with pytest.raises(ValidationFailed):
        desk.rpc.release_credit_hold(request_id=rid(), actor=org.finance, order_id=order["id"], reason=" ")
    released = desk.rpc.release_credit_hold(request_id=rid(), actor=org.finance, order_id=order["id"],
                                            reason="customer paid in advance")
    assert released["status"] == "confirmed" and released["credit_released_by"] == org.finance["staff_id"]
    override = books.of("billing.reserve_credit")[-1]["override"]
    assert override["actor"]["staff_id"] == org.finance["staff_id"]
    assert override["reason"] == "customer paid in advance"
    assert len(books.of("inventory.reserve_stock")) == 1  # the held stock was kept, not reserved again
    assert len(books.active_reservations(order["id"])) == 1 and len(books.reserved_credit(order["id"])) == 1


def test_a_credit_hold_whose_stock_expired_reserves_it_again_on_release(desk, books):
    org = desk.org()
    books.credit_limits[org.customer] = Decimal("10.00")
    order = desk.order(org.rep, org.customer, [{"sku": "P1", "quantity": 3}])
    desk.confirm(org.rep, order)
    [reservation] = books.active_reservations(order["id"])
    # inventory's hold time ran out: it released the stock and said so
    reservation["status"] = "released"
    books.stock["P1"] += 3
    desk.deliver("inventory", "stock.reservation_expired",
                 {"order_id": order["id"], "reservation_id": reservation["reservation_id"], "sku": "P1"})
    released = desk.rpc.release_credit_hold(request_id=rid(), actor=org.director, order_id=order["id"],
                                            reason="approved by the sales director")
    assert released["status"] == "confirmed"
    stock_calls = books.of("inventory.reserve_stock")
    assert len(stock_calls) == 2 and stock_calls[0]["reservation_id"] != stock_calls[1]["reservation_id"]
    assert len(books.active_reservations(order["id"])) == 1


def test_stock_short_is_409_insufficient_stock_and_the_credit_is_released_exactly(desk, books):
    org = desk.org()
    books.stock["P2"] = 1
    order = desk.order(org.rep, org.customer, [{"sku": "P1", "quantity": 2}, {"sku": "P2", "quantity": 3}])
    with pytest.raises(BusinessRuleViolation) as info:
        desk.confirm(org.rep, order)
    assert info.value.code == "INSUFFICIENT_STOCK"
    assert info.value.extra["shortages"] == [{"sku": "P2", "requested": 3, "available": 1}]
    assert [c["order_id"] for c in books.of("billing.release_credit")] == [order["id"]]
    assert books.of("inventory.release_reservation") == []  # nothing was reserved
    assert nothing_held(books, order["id"])
    after = desk.rpc.get_order(actor=org.rep, order_id=order["id"])
    assert after["status"] == "draft" and after["saga"]["state"] == "failed"
    assert desk.outbox("order.confirmed") == []
    books.stock["P2"] = 10  # the goods arrived: a second attempt with new reservation ids
    assert desk.confirm(org.rep, order)["status"] == "confirmed"
    ids = [c["reservation_id"] for c in books.of("inventory.reserve_stock")]
    assert len(set(ids)) == 2


def test_cancel_after_confirm_releases_stock_and_credit_exactly_once(desk, books):
    org = desk.org()
    order = desk.confirmed(org.rep, org.customer, [{"sku": "P1", "quantity": 4}])
    assert books.stock["P1"] == 96
    cancelled = desk.rpc.cancel_order(request_id=rid(), actor=org.rep, order_id=order["id"], reason="customer left")
    assert cancelled["status"] == "cancelled" and cancelled["cancel_reason"] == "customer left"
    assert [c["order_id"] for c in books.of("inventory.release_reservation")] == [order["id"]]
    assert [c["order_id"] for c in books.of("billing.release_credit")] == [order["id"]]
    assert nothing_held(books, order["id"]) and books.stock["P1"] == 100
    [event] = desk.outbox("order.cancelled")
    assert event["data"]["previous_status"] == "confirmed"
    again = desk.rpc.cancel_order(request_id=rid(), actor=org.rep, order_id=order["id"])
    assert again["status"] == "cancelled" and len(books.of("billing.release_credit")) == 1
    with pytest.raises(Conflict):
        desk.confirm(org.rep, order)


def test_refusal_an_order_with_goods_shipped_cannot_be_cancelled(desk, books):
    org = desk.org()
    order = desk.confirmed(org.rep, org.customer, [{"sku": "P1", "quantity": 4}])
    desk.issue(order, {"P1": 1})
    with pytest.raises(Conflict) as info:
        desk.rpc.cancel_order(request_id=rid(), actor=org.rep, order_id=order["id"])
    assert info.value.code == "INVALID_STATE"
    assert books.of("inventory.release_reservation") == []


def test_a_reservation_that_answers_too_late_is_compensated_and_nothing_stays_held(desk, books):
    org = desk.org()
    order = desk.order(org.rep, org.customer, [{"sku": "P1", "quantity": 2}])
    books.modes["inventory.reserve_stock"] = "slow"  # reserves, then answers after the 2 s timeout
    with pytest.raises(UpstreamTimeout):
        desk.confirm(org.rep, order)
    assert [c["order_id"] for c in books.of("inventory.release_reservation")] == [order["id"]]
    assert [c["order_id"] for c in books.of("billing.release_credit")] == [order["id"]]
    assert nothing_held(books, order["id"]) and books.stock["P1"] == 100
    assert desk.rpc.get_order(actor=org.rep, order_id=order["id"])["status"] == "draft"


def test_a_crashing_collaborator_is_compensated_and_answers_503(desk, books):
    org = desk.org()
    order = desk.order(org.rep, org.customer, [{"sku": "P1", "quantity": 2}])
    books.modes["billing.reserve_credit"] = "crash"
    with pytest.raises(ServiceUnavailable):
        desk.confirm(org.rep, order)
    assert nothing_held(books, order["id"])
    assert desk.rpc.get_order(actor=org.rep, order_id=order["id"])["status"] == "draft"


def test_when_a_release_fails_the_recovery_job_finishes_the_compensation(desk, books):
    org = desk.org()
    order = desk.order(org.rep, org.customer, [{"sku": "P1", "quantity": 2}])
    books.modes.update({"billing.reserve_credit": "crash", "inventory.release_reservation": "crash"})
    with pytest.raises(ServiceUnavailable) as info:
        desk.confirm(org.rep, order)
    assert info.value.code == "COMPENSATION_PENDING"
    stuck = desk.rpc.get_order(actor=org.rep, order_id=order["id"])
    assert stuck["status"] == "confirming" and stuck["saga"]["state"] == "compensating"
    assert len(books.active_reservations(order["id"])) == 1
    with pytest.raises(Conflict) as info:  # the lease is the running request's: no one else touches it
        desk.rpc.cancel_order(request_id=rid(), actor=org.rep, order_id=order["id"])
    assert info.value.code == "CONFIRMATION_IN_PROGRESS"
    books.modes.clear()  # inventory is back
    assert desk.rpc.run_recover_sagas()["claimed"] == 0  # the lease has not run out yet
    later = (datetime.now(timezone.utc) + timedelta(seconds=31)).isoformat()
    report = desk.rpc.run_recover_sagas(as_of=later)
    assert (report["claimed"], report["finished"], report["pending"]) == (1, 1, 0)
    assert desk.rpc.get_order(actor=org.rep, order_id=order["id"])["status"] == "draft"
    assert nothing_held(books, order["id"])


def crashed_confirmation(desk, books, order, reserved_before_crash):
    """The state a SIGKILL in the middle of confirming leaves: the order confirming, the saga
    running with its lease, and (maybe) reservations the dead process never heard about."""
    started = datetime.now(timezone.utc)
    stock_id, credit_id = str(uuid.uuid5(uuid.UUID(order["id"]), "stock-1")), str(
        uuid.uuid5(uuid.UUID(order["id"]), "credit-1"))
    desk.conn.cursor().execute("UPDATE orders SET status = 'confirming', attempts = 1 WHERE id = %s", (order["id"],))
    desk.conn.cursor().execute(
        "INSERT INTO sagas (id, kind, subject_id, order_id, attempt, state, stock_reservation_id, credit_reservation_id,"
        " lease_until, started_at, updated_at) VALUES (%s, 'confirm', %s, %s, 1, 'running', %s, %s, %s, %s, %s)",
        (str(uuid.uuid4()), order["id"], order["id"], stock_id, credit_id, started + timedelta(seconds=30), started,
         started))
    if reserved_before_crash:
        books.reservations[stock_id] = {"reservation_id": stock_id, "order_id": order["id"], "lines": {"P1": 2},
                                        "status": "held", "warehouse": "WH-1"}
        books.stock["P1"] -= 2
        books.credit[credit_id] = {"reservation_id": credit_id, "order_id": order["id"], "customer_id": order[
            "customer_id"], "amount": Decimal("200.00"), "status": "reserved", "override": None}
    return started


def test_recovery_resumes_a_young_confirmation_left_by_a_crash(desk, books):
    org = desk.org()
    order = desk.order(org.rep, org.customer, [{"sku": "P1", "quantity": 2}])
    started = crashed_confirmation(desk, books, order, reserved_before_crash=True)
    report = desk.rpc.run_recover_sagas(as_of=(started + timedelta(seconds=31)).isoformat())
    assert (report["resumed"], report["finished"]) == (1, 1)
    after = desk.rpc.get_order(actor=org.rep, order_id=order["id"])
    assert after["status"] == "confirmed"
    # the same reservation ids again: the effect of once
    assert len(books.active_reservations(order["id"])) == 1 and len(books.reserved_credit(order["id"])) == 1
    assert books.stock["P1"] == 98


def test_recovery_compensates_an_old_confirmation_left_by_a_crash(desk, books):
    org = desk.org()
    order = desk.order(org.rep, org.customer, [{"sku": "P1", "quantity": 2}])
    started = crashed_confirmation(desk, books, order, reserved_before_crash=True)
    report = desk.rpc.run_recover_sagas(as_of=(started + timedelta(seconds=301)).isoformat())
    assert (report["compensated"], report["finished"]) == (1, 1)
    assert desk.rpc.get_order(actor=org.rep, order_id=order["id"])["status"] == "draft"
    assert nothing_held(books, order["id"]) and books.stock["P1"] == 100
    assert desk.rpc.run_recover_sagas(as_of=(started + timedelta(seconds=400)).isoformat())["claimed"] == 0


# -- quotas (FR-67) ------------------------------------------------------------------------------------------
def test_fr67_quotas_are_checked_at_confirm_consumed_and_released_by_cancellation(desk, books):
    org = desk.org()
    month = datetime.now(timezone.utc).astimezone(__import__("zoneinfo").ZoneInfo("Asia/Shanghai")).strftime("%Y-%m")
    with pytest.raises(Forbidden):
        desk.rpc.set_quota(request_id=rid(), actor=org.rep, quota={"period": month, "customer_id": org.customer,
                                                                   "sku": "P1", "quantity": 5})
    quota = desk.rpc.set_quota(request_id=rid(), actor=org.director, quota={
        "period": month, "customer_id": org.customer, "sku": "P1", "quantity": 5})
    assert (quota["quantity"], quota["consumed"], quota["available"]) == (5, 0, 5)
    first = desk.confirmed(org.rep, org.customer, [{"sku": "P1", "quantity": 3}])
    second = desk.order(org.rep, org.customer, [{"sku": "P1", "quantity": 3}])
    with pytest.raises(BusinessRuleViolation) as info:
        desk.confirm(org.rep, second)
    assert info.value.code == "QUOTA_EXCEEDED"
    assert (info.value.extra["quota"], info.value.extra["consumed"], info.value.extra["requested"]) == (5, 3, 3)
    assert len(books.of("inventory.reserve_stock")) == 1  # refused before anything was reserved
    assert desk.rpc.get_order(actor=org.rep, order_id=second["id"])["status"] == "draft"
    with pytest.raises(BusinessRuleViolation):  # not below what is consumed
        desk.rpc.set_quota(request_id=rid(), actor=org.director, quota={
            "period": month, "customer_id": org.customer, "sku": "P1", "quantity": 2})
    desk.rpc.cancel_order(request_id=rid(), actor=org.rep, order_id=first["id"])
    assert desk.rpc.list_quotas(actor=org.director)["items"][0]["consumed"] == 0
    assert desk.confirm(org.rep, second)["status"] == "confirmed"


def test_fr67_a_market_quota_caps_every_customer_of_the_region(desk, books):
    org = desk.org()
    month = datetime.now(timezone.utc).astimezone(__import__("zoneinfo").ZoneInfo("Asia/Shanghai")).strftime("%Y-%m")
    other = books.add_customer(org.rep, region="East")
    desk.rpc.set_quota(request_id=rid(), actor=org.director, quota={"period": month, "market": "East", "sku": "P2",
                                                                    "quantity": 4})
    with pytest.raises(ValidationFailed) as info:
        desk.rpc.set_quota(request_id=rid(), actor=org.director, quota={"period": month, "sku": "P2", "quantity": 4})
    assert "customer_id" in info.value.errors
    desk.confirmed(org.rep, org.customer, [{"sku": "P2", "quantity": 3}])
    with pytest.raises(BusinessRuleViolation) as info:
        desk.confirm(org.rep, desk.order(org.rep, other, [{"sku": "P2", "quantity": 2}]))
    assert info.value.code == "QUOTA_EXCEEDED" and info.value.extra["market"] == "East"
