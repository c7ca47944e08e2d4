"""Receipts registered by sales and confirmed by finance (FR-84, FR-85), allocated to invoices in
any amounts (核销, FR-86), reversed with a reason; red-letter invoices on paid invoices."""
import uuid
from datetime import date
from decimal import Decimal

import pytest

from shared.errors import BusinessRuleViolation, Forbidden, InvalidState, NotFound, ValidationFailed

D = Decimal


def rid():
    return str(uuid.uuid4())


def invoices(books, customer, *amounts):
    return [books.invoice([books.goods_issued(customer, [("SKU-A", 1, amount, "0.13")])]) for amount in amounts]


def test_fr84_fr86_receipt_registered_confirmed_and_allocated_in_any_amounts(books):
    billing = books.rpc.billing
    customer = books.customer()
    first, second = invoices(books, customer, "300.00", "200.00")
    key = rid()
    body = {"customer_id": customer["customer_id"], "amount": "450.00", "method": "bank_transfer",
            "reference": "BOC-2026-0001", "received_at": date.today().isoformat()}
    receipt = billing.record_receipt(request_id=key, actor=books.rep, receipt=body)
    assert receipt["status"] == "registered" and receipt["number"].startswith("RC-")
    assert receipt["owner_id"] == books.rep["staff_id"] and receipt["unallocated_amount"] == "450.00"
    assert billing.record_receipt(request_id=key, actor=books.rep, receipt=body) == receipt  # idempotent
    with pytest.raises(ValidationFailed) as refused:
        billing.record_receipt(request_id=key, actor=books.rep, receipt=dict(body, amount="451.00"))
    assert refused.value.code == "IDEMPOTENCY_KEY_REUSED"
    with pytest.raises(InvalidState):  # not allocated before finance confirms
        books.allocate(receipt, [(first, "300.00")])
    with pytest.raises(Forbidden):
        billing.confirm_receipt(request_id=rid(), actor=books.rep, receipt_id=receipt["id"])
    confirmed = billing.confirm_receipt(request_id=rid(), actor=books.finance, receipt_id=receipt["id"])
    assert confirmed["status"] == "confirmed" and confirmed["confirmed_by"] == books.finance["staff_id"]
    with pytest.raises(InvalidState):
        billing.confirm_receipt(request_id=rid(), actor=books.finance, receipt_id=receipt["id"])

    after = books.allocate(receipt, [(first, "300.00"), (second, "100.00")])
    assert (after["allocated_amount"], after["unallocated_amount"]) == ("400.00", "50.00")
    assert [(a["invoice_number"], a["amount"]) for a in after["allocations"]] == [
        (first["number"], "300.00"), (second["number"], "100.00")]
    paid = billing.get_invoice(actor=books.rep, invoice_id=first["id"])
    part = billing.get_invoice(actor=books.rep, invoice_id=second["id"])
    assert (paid["payment_status"], paid["open_amount"], paid["settled_at"] is not None) == ("paid", "0.00", True)
    assert (part["payment_status"], part["open_amount"]) == ("partially_paid", "100.00")
    books.allocate(receipt, [(second, "50.00")], by=books.finance)
    assert billing.get_receipt(actor=books.finance, receipt_id=receipt["id"])["unallocated_amount"] == "0.00"
    assert books.account(customer)["open_receivables"] == "50.00"
    assert [e["data"]["invoice_id"] for e in books.outbox("invoice.settled")] == [first["id"]]
    assert len(books.outbox("receipt.allocated")) == 2 and len(books.outbox("receipt.confirmed")) == 1
    assert books.check_contracts() == {"invoice.issued", "receipt.confirmed", "receipt.allocated", "invoice.settled"}

    assert [r["id"] for r in billing.list_receipts(actor=books.rep, filters={"customer_id": customer["customer_id"]})
            ["items"]] == [receipt["id"]]
    stranger = {"staff_id": rid(), "role": "sales_rep", "team": "East-1"}
    with pytest.raises(NotFound):
        billing.get_receipt(actor=stranger, receipt_id=receipt["id"])
    with pytest.raises(NotFound):  # nor may a rep record money for someone else's customer
        billing.record_receipt(request_id=rid(), actor=stranger, receipt=body)


def test_fr86_over_allocation_and_bad_allocations_are_refused_and_change_nothing(books):
    billing = books.rpc.billing
    customer, other = books.customer(), books.customer()
    eighty, fifty = invoices(books, customer, "80.00", "50.00")
    [elsewhere] = invoices(books, other, "10.00")
    draft = books.invoice([books.goods_issued(customer, [("SKU-A", 1, "10.00", "0.13")])], issue=False)
    receipt = books.receipt(customer, "100.00")

    with pytest.raises(BusinessRuleViolation) as refused:  # above the invoice's open amount
        books.allocate(receipt, [(eighty, "80.01")])
    assert refused.value.code == "OVER_ALLOCATION"
    assert refused.value.extra["invoices"] == [{"invoice_id": eighty["id"], "requested": "80.01", "open": "80.00"}]
    with pytest.raises(BusinessRuleViolation) as refused:  # above the receipt's unallocated amount
        books.allocate(receipt, [(eighty, "60.00"), (fifty, "40.01")])
    assert refused.value.code == "OVER_ALLOCATION" and refused.value.extra["unallocated"] == "100.00"
    with pytest.raises(ValidationFailed) as refused:
        books.allocate(receipt, [(eighty, "10.00"), (eighty, "10.00")])
    assert "allocations" in refused.value.errors
    with pytest.raises(ValidationFailed) as refused:
        books.allocate(receipt, [(fifty, "1.00"), (elsewhere, "1.00"), (draft, "1.00")])
    assert set(refused.value.errors) == {"allocations.1.invoice_id", "allocations.2.invoice_id"}
    with pytest.raises(ValidationFailed) as refused:
        books.allocate(receipt, [(eighty, "0"), (fifty, "1.005")])
    assert set(refused.value.errors) == {"allocations.0.amount", "allocations.1.amount"}
    with pytest.raises(ValidationFailed) as refused:
        books.allocate(receipt, [(eighty, 1.5)])
    assert "decimal string" in refused.value.errors["allocations.0.amount"][0]
    assert books.value("SELECT count(*) FROM allocations") == 0
    assert books.value("SELECT sum(allocated_amount) FROM invoices") == 0
    assert books.value("SELECT allocated_amount FROM receipts") == 0

    # many allocations of one receipt at once: never more than the receipt
    big = invoices(books, customer, "1000.00")[0]
    replies = [billing.allocate_receipt.call_async(request_id=rid(), actor=books.rep, receipt_id=receipt["id"],
                                                   allocations=[{"invoice_id": big["id"], "amount": "30.00"}])
               for _ in range(8)]
    done = 0
    for reply in replies:
        try:
            reply.result()
            done += 1
        except BusinessRuleViolation as exc:
            assert exc.code == "OVER_ALLOCATION"
    assert done == 3
    assert books.value("SELECT allocated_amount FROM receipts WHERE id = %s", receipt["id"]) == D("90.00")
    assert books.value("SELECT sum(amount) FROM allocations") == D("90.00")


def test_fr86_an_allocation_is_reversed_with_a_reason_and_the_money_stays_as_credit(books):
    billing = books.rpc.billing
    customer = books.customer()
    [invoice] = invoices(books, customer, "500.00")
    receipt = books.receipt(customer, "800.00")
    allocated = books.allocate(receipt, [(invoice, "500.00")])
    allocation = allocated["allocations"][0]
    call = dict(receipt_id=receipt["id"], allocation_id=allocation["id"])
    with pytest.raises(Forbidden):
        billing.reverse_allocation(request_id=rid(), actor=books.rep, reason="wrong invoice", **call)
    with pytest.raises(ValidationFailed) as refused:
        billing.reverse_allocation(request_id=rid(), actor=books.finance, reason="", **call)
    assert list(refused.value.errors) == ["reason"]
    with pytest.raises(NotFound):
        billing.reverse_allocation(request_id=rid(), actor=books.finance, reason="x",
                                   receipt_id=receipt["id"], allocation_id=rid())
    after = billing.reverse_allocation(request_id=rid(), actor=books.finance, reason="applied to the wrong invoice",
                                       **call)
    assert after["unallocated_amount"] == "800.00"
    assert after["allocations"][0]["reversal_reason"] == "applied to the wrong invoice"
    with pytest.raises(InvalidState):
        billing.reverse_allocation(request_id=rid(), actor=books.finance, reason="again", **call)
    reopened = billing.get_invoice(actor=books.finance, invoice_id=invoice["id"])
    assert (reopened["open_amount"], reopened["payment_status"], reopened["settled_at"]) == ("500.00", "open", None)
    [event] = books.outbox("invoice.reopened")
    assert event["data"]["open_amount"] == "500.00"
    assert books.outbox("receipt.allocation_reversed")[0]["data"]["reason"] == "applied to the wrong invoice"
    # the unallocated 800 stays the customer's: found by the unallocated filter, allocatable again
    assert [r["id"] for r in billing.list_receipts(actor=books.finance, filters={"unallocated": True})["items"]] \
        == [receipt["id"]]
    books.allocate(receipt, [(invoice, "500.00")])
    assert books.check_contracts() >= {"invoice.reopened", "receipt.allocation_reversed", "invoice.settled"}


def test_fr95_a_red_letter_invoice_on_a_paid_invoice_gives_the_paid_part_back_as_credit(books):
    billing = books.rpc.billing
    customer = books.customer()
    delivery = books.goods_issued(customer, [("SKU-A", 10, "100.00", "0.13")])
    invoice = books.invoice([delivery])
    older, newer = books.receipt(customer, "600.00"), books.receipt(customer, "400.00")
    books.allocate(older, [(invoice, "600.00")])
    books.allocate(newer, [(invoice, "400.00")])
    books.goods_returned(delivery, [(0, 5)])  # half comes back: a red invoice of 500 on a paid invoice

    after = billing.get_invoice(actor=books.finance, invoice_id=invoice["id"])
    assert (after["reversed_amount"], after["allocated_amount"], after["open_amount"]) == ("500.00", "500.00", "0.00")
    assert after["payment_status"] == "paid"
    older_now = billing.get_receipt(actor=books.finance, receipt_id=older["id"])
    newer_now = billing.get_receipt(actor=books.finance, receipt_id=newer["id"])
    assert (older_now["unallocated_amount"], newer_now["unallocated_amount"]) == ("100.00", "400.00")
    assert books.account(customer)["open_receivables"] == "0.00"
    assert len(books.outbox("receipt.allocation_reversed")) == 2
    assert books.outbox("invoice.settled")[0]["data"]["invoice_id"] == invoice["id"]
    assert books.outbox("invoice.reopened") == []  # it never stopped being paid
    # the money is the customer's credit: it pays the next invoice
    [later] = invoices(books, customer, "450.00")
    books.allocate(newer_now, [(later, "400.00")])
    books.allocate(older_now, [(later, "50.00")])
    assert billing.get_invoice(actor=books.finance, invoice_id=later["id"])["payment_status"] == "paid"
