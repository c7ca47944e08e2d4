"""list_order_documents: billing's part of the gateway's order timeline (issue 8) — the invoices of
an order (red-letter ones too) and the receipts allocated to them, in one call, within the caller's
scope."""
import uuid

import pytest

from shared.errors import ValidationFailed


def test_an_orders_invoices_and_the_receipts_paying_them_come_together_for_who_may_see_them(books):
    customer = books.customer()
    order_id = str(uuid.uuid4())
    first = books.goods_issued(customer, [("SKU-A", 2, "113.00", "0.13")], order_id=order_id)
    second = books.goods_issued(customer, [("SKU-B", 1, "50.00", "0.13")], order_id=order_id)
    elsewhere = books.goods_issued(customer, [("SKU-A", 1, "113.00", "0.13")])  # another order
    invoice = books.invoice([first, second])
    other_invoice = books.invoice([elsewhere])
    receipt = books.receipt(customer, "300.00")
    books.allocate(receipt, [(invoice, "200.00"), (other_invoice, "100.00")])
    books.receipt(customer, "10.00")  # not allocated to the order's invoice
    books.goods_returned(first, [(0, 1)])  # a red-letter invoice reverses one unit

    documents = books.rpc.billing.list_order_documents(actor=books.rep, order_id=order_id)
    assert documents["order_id"] == order_id
    blue, red = documents["invoices"]
    assert (blue["id"], blue["total"], blue["red"]) == (invoice["id"], "276.00", False)
    assert (red["red"], red["reverses"], red["total"]) == (True, invoice["id"], "113.00")
    assert {a["receipt_id"] for a in blue["allocations"]} == {receipt["id"]}
    [paid_by] = documents["receipts"]
    assert (paid_by["id"], paid_by["amount"]) == (receipt["id"], "300.00")

    assert books.rpc.billing.list_order_documents(actor=books.manager, order_id=order_id)["invoices"]
    stranger = {"staff_id": str(uuid.uuid4()), "role": "sales_rep", "username": "west", "team": "West-1"}
    assert books.rpc.billing.list_order_documents(actor=stranger, order_id=order_id) == {
        "order_id": order_id, "invoices": [], "receipts": []}
    with pytest.raises(ValidationFailed) as info:
        books.rpc.billing.list_order_documents(actor=books.rep, order_id="nope")
    assert "order_id" in info.value.errors
