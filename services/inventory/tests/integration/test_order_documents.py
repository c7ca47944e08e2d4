"""list_order_documents: the warehouse's part of the gateway's order timeline (issue 8) — an order's
reservations, delivery notes with their goods issues and the return receipts against them, in one
call, within the caller's scope."""
import uuid

import pytest

from shared.errors import ValidationFailed


def rid():
    return str(uuid.uuid4())


def test_an_orders_documents_come_together_and_only_for_who_may_see_them(inv, who):
    rep, teammate_manager = who.new("sales_rep", "East"), who.new("sales_manager", "East")
    stranger = who.new("sales_rep", "West")
    sku = inv.stocked(10)
    first = inv.reserve([(sku, 2, "50.00")], owner=rep)
    inv.rpc.release_reservation(order_id=first["order_id"], reason="confirmation abandoned")
    order = inv.confirmed_order([(sku, 4, "50.00")], owner=rep, order_id=first["order_id"])
    issued = inv.issue(inv.deliver(order["order_id"], [(sku, 3)])["id"])
    pending = inv.deliver(order["order_id"], [(sku, 1)])
    receipt = inv.rpc.receive_return(request_id=rid(), return_id=rid(), return_number="RR-2026-000009",
                                     delivery_id=issued["id"], lines=[{"sku": sku, "quantity": 1}])
    inv.confirmed_order([(sku, 1)], owner=rep)  # another order

    documents = inv.rpc.list_order_documents(actor=rep, order_id=order["order_id"])
    assert documents["order_id"] == order["order_id"]
    assert [(r["reservation_id"], r["status"]) for r in documents["reservations"]] == [
        (first["reservation_id"], "released"), (order["reservation_id"], "committed")]
    assert documents["reservations"][1]["lines"][0]["quantity"] == 4
    notes = {d["id"]: d for d in documents["deliveries"]}
    assert set(notes) == {issued["id"], pending["id"]}
    assert (notes[issued["id"]]["status"], notes[issued["id"]]["goods_issue_number"], notes[issued["id"]]["total"]) \
        == ("issued", issued["goods_issue_number"], "150.00")
    assert notes[pending["id"]]["status"] == "pending"
    [returned] = documents["return_receipts"]
    assert (returned["id"], returned["number"], returned["lines"][0]["quantity"]) == (receipt["id"],
                                                                                      receipt["number"], 1)

    assert inv.rpc.list_order_documents(actor=teammate_manager, order_id=order["order_id"])["deliveries"]
    assert inv.rpc.list_order_documents(actor=stranger, order_id=order["order_id"]) == {
        "order_id": order["order_id"], "reservations": [], "deliveries": [], "return_receipts": []}
    with pytest.raises(ValidationFailed) as info:
        inv.rpc.list_order_documents(actor=rep, order_id="SO-1")
    assert "order_id" in info.value.errors
