"""Returns (FR-93–FR-96), loans of trial goods (FR-98–FR-100) and after-sales replacements,
with the fake inventory's books checked."""
import uuid
from datetime import date, timedelta

import pytest

from shared.errors import BusinessRuleViolation, Conflict, Forbidden, NotFound, ValidationFailed

DUE = (date.today() + timedelta(days=30)).isoformat()


def rid():
    return str(uuid.uuid4())


def delivered_order(desk, org, lines):
    order = desk.confirmed(org.rep, org.customer, lines)
    issued = desk.issue(order)
    return desk.rpc.get_order(actor=org.rep, order_id=order["id"]), issued


def test_fr93_fr94_fr96_a_return_against_a_delivery_approved_and_received(desk, books):
    org = desk.org()
    order, issued = delivered_order(desk, org, [{"sku": "P1", "quantity": 5}, {"sku": "P2", "quantity": 2}])
    requested = desk.rpc.request_return(request_id=rid(), actor=org.rep, delivery_id=issued["delivery_id"],
                                        lines=[{"sku": "P1", "quantity": 2}], reason="damaged in transit")
    assert requested["status"] == "requested" and requested["number"].startswith("RR-")
    assert [(l["sku"], l["quantity"], l["unit_price"]) for l in requested["lines"]] == [("P1", 2, "100.00")]
    [step] = requested["approvals"]
    assert (step["relation"], step["approver_id"]) == ("product_manager", org.product_manager["staff_id"])
    with pytest.raises(Forbidden):  # FR-94: the product manager approves
        desk.rpc.approve_return(request_id=rid(), actor=org.manager, return_id=requested["id"])
    with pytest.raises(Conflict):  # the warehouse receives only an approved return
        desk.rpc.receive_return(request_id=rid(), actor=org.warehouse, return_id=requested["id"])
    approved = desk.rpc.approve_return(request_id=rid(), actor=org.product_manager, return_id=requested["id"])
    assert approved["status"] == "approved"
    [event] = desk.outbox("return.approved")
    assert event["data"]["return_id"] == requested["id"]
    received = desk.rpc.receive_return(request_id=rid(), actor=org.warehouse, return_id=requested["id"])
    assert received["status"] == "received"
    [call] = books.of("inventory.receive_return")
    assert (call["return_id"], call["return_number"], call["delivery_id"]) == (
        requested["id"], requested["number"], issued["delivery_id"])
    assert [(l["sku"], l["quantity"]) for l in call["lines"]] == [("P1", 2)]
    # inventory tells what came back (goods.returned): the order's quantities and amounts follow
    desk.deliver("inventory", "goods.returned", {
        "return_id": requested["id"], "delivery_id": issued["delivery_id"], "order_id": order["id"],
        "received_at": "2026-03-10T08:00:00+00:00",
        "lines": [{"delivery_line_id": call["lines"][0]["delivery_line_id"], "sku": "P1", "quantity": 2,
                   "unit_price": "100.00", "vat_rate": "0.13"}]})
    after = desk.rpc.get_order(actor=org.rep, order_id=order["id"])
    assert after["returned_amount"] == "200.00" and after["lines"][0]["returned_quantity"] == 2
    assert desk.rpc.get_return(actor=org.rep, return_id=requested["id"])["lines"][0]["received_quantity"] == 2
    assert len(desk.outbox("return.received")) == 1  # once, though the RPC and the event both saw it
    # receiving again changes nothing and calls no one twice
    desk.rpc.receive_return(request_id=rid(), actor=org.warehouse, return_id=requested["id"])
    assert len(books.of("inventory.receive_return")) == 1


def test_fr93_refusal_never_more_than_delivered_less_returned_or_requested(desk):
    org = desk.org()
    order, issued = delivered_order(desk, org, [{"sku": "P1", "quantity": 5}])
    desk.rpc.request_return(request_id=rid(), actor=org.rep, delivery_id=issued["delivery_id"],
                            lines=[{"sku": "P1", "quantity": 4}], reason="wrong size")
    with pytest.raises(BusinessRuleViolation) as info:
        desk.rpc.request_return(request_id=rid(), actor=org.rep, delivery_id=issued["delivery_id"],
                                lines=[{"sku": "P1", "quantity": 2}], reason="more")
    assert info.value.code == "RETURN_EXCEEDS_DELIVERED"
    assert (info.value.extra["requested"], info.value.extra["returnable"]) == (2, 1)
    with pytest.raises(ValidationFailed) as info:
        desk.rpc.request_return(request_id=rid(), actor=org.rep, delivery_id=issued["delivery_id"],
                                lines=[{"sku": "P2", "quantity": 1}], reason="never delivered")
    assert "lines.0.sku" in info.value.errors
    with pytest.raises(NotFound):
        desk.rpc.request_return(request_id=rid(), actor=org.rep, delivery_id=rid(),
                                lines=[{"sku": "P1", "quantity": 1}], reason="no such delivery")
    with pytest.raises(NotFound):  # someone else's delivery
        desk.rpc.request_return(request_id=rid(), actor=org.other_rep, delivery_id=issued["delivery_id"],
                                lines=[{"sku": "P1", "quantity": 1}], reason="not mine")
    assert desk.scalar("SELECT count(*) FROM returns") == 1


def test_a_rejected_return_frees_its_quantity(desk):
    org = desk.org()
    order, issued = delivered_order(desk, org, [{"sku": "P1", "quantity": 2}])
    first = desk.rpc.request_return(request_id=rid(), actor=org.rep, delivery_id=issued["delivery_id"],
                                    lines=[{"sku": "P1", "quantity": 2}], reason="x")
    rejected = desk.rpc.reject_return(request_id=rid(), actor=org.product_manager, return_id=first["id"],
                                      comment="used goods are not taken back")
    assert rejected["status"] == "rejected" and rejected["approvals"][0]["comment"]
    again = desk.rpc.request_return(request_id=rid(), actor=org.rep, delivery_id=issued["delivery_id"],
                                    lines=[{"sku": "P1", "quantity": 2}], reason="unused after all")
    assert again["status"] == "requested"


def test_aftersales_request_return_rpc_carries_the_service_request(desk):
    org = desk.org()
    engineer = desk.books.add_staff("service_engineer", username="eng")
    order, issued = delivered_order(desk, org, [{"sku": "P1", "quantity": 2}])
    service_request = rid()
    ret = desk.rpc.request_return(request_id=rid(), actor=engineer, delivery_id=issued["delivery_id"],
                                  lines=[{"sku": "P1", "quantity": 1}], reason="faulty", 
                                  service_request_id=service_request)
    assert ret["service_request_id"] == service_request and ret["order_id"] == order["id"]


def test_returns_give_back_the_quota(desk):
    from datetime import datetime, timezone
    from zoneinfo import ZoneInfo

    org = desk.org()
    month = datetime.now(timezone.utc).astimezone(ZoneInfo("Asia/Shanghai")).strftime("%Y-%m")
    desk.rpc.set_quota(request_id=rid(), actor=org.director, quota={"period": month, "customer_id": org.customer,
                                                                    "sku": "P1", "quantity": 5})
    order, issued = delivered_order(desk, org, [{"sku": "P1", "quantity": 5}])
    ret = desk.rpc.request_return(request_id=rid(), actor=org.rep, delivery_id=issued["delivery_id"],
                                  lines=[{"sku": "P1", "quantity": 2}], reason="x")
    desk.rpc.approve_return(request_id=rid(), actor=org.product_manager, return_id=ret["id"])
    desk.deliver("inventory", "goods.returned", {
        "return_id": ret["id"], "delivery_id": issued["delivery_id"], "order_id": order["id"],
        "received_at": "2026-03-10T08:00:00+00:00",
        "lines": [{"delivery_line_id": issued["lines"][0]["delivery_line_id"], "sku": "P1", "quantity": 2}]})
    assert desk.rpc.list_quotas(actor=org.director)["items"][0]["consumed"] == 3


# -- loans (FR-98–FR-100) ------------------------------------------------------------------------------------
def approved_loan(desk, org, lines):
    loan = desk.rpc.request_loan(request_id=rid(), actor=org.rep, loan={"customer_id": org.customer, "lines": lines,
                                                                        "due_date": DUE, "warehouse": "WH-1"})
    desk.rpc.approve_loan(request_id=rid(), actor=org.manager, loan_id=loan["id"])
    return desk.rpc.approve_loan(request_id=rid(), actor=org.director, loan_id=loan["id"])


def test_fr98_a_loan_needs_the_direct_manager_and_the_division_head(desk, books):
    org = desk.org()
    loan = desk.rpc.request_loan(request_id=rid(), actor=org.rep, loan={
        "customer_id": org.customer, "lines": [{"sku": "P1", "quantity": 3}], "due_date": DUE})
    assert loan["status"] == "pending_approval" and loan["number"].startswith("LN-")
    with pytest.raises(Forbidden):  # the head's turn comes second
        desk.rpc.approve_loan(request_id=rid(), actor=org.director, loan_id=loan["id"])
    with pytest.raises(Conflict):  # not approved: the warehouse cannot issue it
        desk.rpc.issue_loan(request_id=rid(), actor=org.warehouse, loan_id=loan["id"])
    desk.rpc.approve_loan(request_id=rid(), actor=org.manager, loan_id=loan["id"])
    approved = desk.rpc.approve_loan(request_id=rid(), actor=org.director, loan_id=loan["id"])
    assert approved["status"] == "approved"
    assert [s["relation"] for s in approved["approvals"]] == ["direct_manager", "division_head"]
    assert len(desk.outbox("loan.approved")) == 1
    lent = desk.rpc.issue_loan(request_id=rid(), actor=org.warehouse, loan_id=loan["id"])
    assert lent["status"] == "lent" and lent["lines"][0]["out"] == 3
    [call] = books.of("inventory.issue_loan")
    assert (call["loan_id"], call["loan_number"], call["customer_id"], call["lines"]) == (
        loan["id"], loan["number"], org.customer, [{"sku": "P1", "quantity": 3}])
    desk.rpc.issue_loan(request_id=rid(), actor=org.warehouse, loan_id=loan["id"])  # again: nothing more
    assert len(books.of("inventory.issue_loan")) == 1


def test_fr98_refusal_a_rejected_loan_is_closed(desk):
    org = desk.org()
    loan = desk.rpc.request_loan(request_id=rid(), actor=org.rep, loan={
        "customer_id": org.customer, "lines": [{"sku": "P1", "quantity": 1}], "due_date": DUE})
    rejected = desk.rpc.reject_loan(request_id=rid(), actor=org.manager, loan_id=loan["id"], comment="no")
    assert rejected["status"] == "rejected"
    with pytest.raises(ValidationFailed) as info:
        desk.rpc.request_loan(request_id=rid(), actor=org.rep, loan={
            "customer_id": org.customer, "lines": [{"sku": "P1", "quantity": 1}], "due_date": "2000-01-01"})
    assert "due_date" in info.value.errors


def test_fr100_loaned_goods_come_back_never_more_than_is_out(desk, books):
    org = desk.org()
    loan = approved_loan(desk, org, [{"sku": "P1", "quantity": 3}])
    desk.rpc.issue_loan(request_id=rid(), actor=org.warehouse, loan_id=loan["id"])
    with pytest.raises(BusinessRuleViolation) as info:
        desk.rpc.return_loan(request_id=rid(), actor=org.warehouse, loan_id=loan["id"],
                             lines=[{"sku": "P1", "quantity": 4}])
    assert info.value.code == "LOAN_QUANTITY_MISMATCH" and info.value.extra["out"] == 3
    assert books.of("inventory.return_loan") == []
    key = rid()
    partial = desk.rpc.return_loan(request_id=key, actor=org.warehouse, loan_id=loan["id"],
                                   lines=[{"sku": "P1", "quantity": 1}])
    assert partial["status"] == "lent" and partial["lines"][0]["returned_quantity"] == 1
    desk.rpc.return_loan(request_id=key, actor=org.warehouse, loan_id=loan["id"], lines=[{"sku": "P1", "quantity": 1}])
    assert len(books.of("inventory.return_loan")) == 1  # the same request once
    back = desk.rpc.return_loan(request_id=rid(), actor=org.warehouse, loan_id=loan["id"],
                                lines=[{"sku": "P1", "quantity": 2}])
    assert back["status"] == "returned" and back["lines"][0]["out"] == 0
    assert books.loans[loan["id"]]["out"] == {"P1": 0}


def test_fr99_a_loan_converted_to_a_sale_raises_a_confirmed_order_without_moving_goods(desk, books):
    org = desk.org()
    loan = approved_loan(desk, org, [{"sku": "P1", "quantity": 3}, {"sku": "P2", "quantity": 1}])
    desk.rpc.issue_loan(request_id=rid(), actor=org.warehouse, loan_id=loan["id"])
    with pytest.raises(BusinessRuleViolation) as info:
        desk.rpc.convert_loan(request_id=rid(), actor=org.rep, loan_id=loan["id"], lines=[{"sku": "P2", "quantity": 2}])
    assert info.value.code == "LOAN_QUANTITY_MISMATCH"
    key = rid()
    order = desk.rpc.convert_loan(request_id=key, actor=org.rep, loan_id=loan["id"],
                                  lines=[{"sku": "P1", "quantity": 2}])
    assert (order["status"], order["kind"], order["loan_id"], order["total"]) == (
        "confirmed", "loan_conversion", loan["id"], "200.00")
    [credit] = books.of("billing.reserve_credit")
    assert credit["amount"] == "200.00" and credit["order_id"] == order["id"]
    [call] = books.of("inventory.convert_loan")
    assert (call["loan_id"], call["order_id"], call["order_number"]) == (loan["id"], order["id"], order["number"])
    assert [(l["sku"], l["quantity"], l["unit_price"]) for l in call["lines"]] == [("P1", 2, "100.00")]
    assert books.of("inventory.reserve_stock") == []  # no goods move again
    again = desk.rpc.convert_loan(request_id=key, actor=org.rep, loan_id=loan["id"],
                                  lines=[{"sku": "P1", "quantity": 2}])
    assert again["id"] == order["id"] and len(books.of("inventory.convert_loan")) == 1
    after = desk.rpc.get_loan(actor=org.rep, loan_id=loan["id"])
    assert [(l["sku"], l["converted_quantity"], l["out"]) for l in after["lines"]] == [("P1", 2, 1), ("P2", 0, 1)]
    assert after["orders"] == [order["id"]]
    [event] = desk.outbox("loan.converted")
    assert event["data"]["order_id"] == order["id"]
    # inventory's goods.issued for the conversion ships the order
    desk.issue(order)
    assert desk.rpc.get_order(actor=org.rep, order_id=order["id"])["status"] == "shipped"


def test_fr99_refusal_a_conversion_the_credit_does_not_cover_raises_no_sale(desk, books):
    from decimal import Decimal

    org = desk.org()
    books.credit_limits[org.customer] = Decimal("50.00")
    loan = approved_loan(desk, org, [{"sku": "P1", "quantity": 3}])
    desk.rpc.issue_loan(request_id=rid(), actor=org.warehouse, loan_id=loan["id"])
    with pytest.raises(BusinessRuleViolation) as info:
        desk.rpc.convert_loan(request_id=rid(), actor=org.rep, loan_id=loan["id"],
                              lines=[{"sku": "P1", "quantity": 1}])
    assert info.value.code == "CREDIT_LIMIT_EXCEEDED"
    assert books.of("inventory.convert_loan") == []
    assert desk.rpc.get_loan(actor=org.rep, loan_id=loan["id"])["lines"][0]["out"] == 3
    with pytest.raises(BusinessRuleViolation) as info:  # below list price needs a quote
        desk.rpc.convert_loan(request_id=rid(), actor=org.rep, loan_id=loan["id"],
                              lines=[{"sku": "P1", "quantity": 1, "unit_price": "90.00"}])
    assert info.value.code == "APPROVAL_REQUIRED"


# -- after-sales replacements ----------------------------------------------------------------------------------
def test_create_replacement_is_a_confirmed_no_charge_order_with_its_delivery(desk, books):
    org = desk.org()
    engineer = books.add_staff("service_engineer", username="eng")
    service_request, key = rid(), rid()
    args = dict(customer_id=org.customer, sku="P2", quantity=1, delivery_id=rid(), service_request_id=service_request)
    order = desk.rpc.create_replacement(request_id=key, actor=engineer, **args)
    assert (order["status"], order["kind"], order["total"], order["service_request_id"]) == (
        "confirmed", "replacement", "0.00", service_request)
    assert order["lines"][0]["unit_price"] == "0.00" and order["delivery_id"]
    assert books.of("billing.reserve_credit") == []  # no credit needed
    [stock] = books.of("inventory.reserve_stock")
    [delivery] = books.of("inventory.create_delivery")
    assert stock["order_id"] == delivery["order_id"] == order["id"]
    assert delivery["lines"] == [{"sku": "P2", "quantity": 1}]
    assert desk.rpc.create_replacement(request_id=key, actor=engineer, **args)["id"] == order["id"]
    assert len(books.of("inventory.reserve_stock")) == 1
    books.stock["P1"] = 0
    with pytest.raises(BusinessRuleViolation) as info:
        desk.rpc.create_replacement(request_id=rid(), actor=engineer, **dict(args, sku="P1"))
    assert info.value.code == "INSUFFICIENT_STOCK"
    assert books.of("inventory.create_delivery") == [delivery]


def test_a_replacement_whose_delivery_could_not_be_raised_is_finished_by_the_recovery_job(desk, books):
    from datetime import datetime, timedelta, timezone

    from shared.errors import ServiceUnavailable

    org = desk.org()
    engineer = books.add_staff("service_engineer", username="eng")
    books.modes["inventory.create_delivery"] = "crash"
    key = rid()
    with pytest.raises(ServiceUnavailable):
        desk.rpc.create_replacement(request_id=key, actor=engineer, customer_id=org.customer, sku="P2", quantity=1,
                                    delivery_id=rid(), service_request_id=rid())
    order_id = desk.scalar("SELECT id::text FROM orders")
    stuck = desk.rpc.get_order(actor=engineer, order_id=order_id)
    assert stuck["status"] == "confirmed" and stuck["delivery_id"] is None and stuck["saga"]["state"] == "running"
    books.modes.clear()
    later = (datetime.now(timezone.utc) + timedelta(seconds=31)).isoformat()
    assert desk.rpc.run_recover_sagas(as_of=later)["finished"] == 1
    done = desk.rpc.get_order(actor=engineer, order_id=order_id)
    assert done["delivery_id"] and done["saga"]["state"] == "done"
    assert len({c["request_id"] for c in books.of("inventory.create_delivery")}) == 1  # the same request again
    assert len(books.of("inventory.reserve_stock")) == 1
