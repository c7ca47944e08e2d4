"""Invoices from issued delivery lines (FR-81), certified by the sales manager and issued by finance
(FR-82), and red-letter invoices (FR-95), on the real PostgreSQL and RabbitMQ."""
import uuid
from datetime import datetime, timezone
from decimal import Decimal

import pytest

from shared.errors import BusinessRuleViolation, Forbidden, InvalidState, NotFound, ValidationFailed

D = Decimal


def rid():
    return str(uuid.uuid4())


def test_fr81_fr82_invoice_from_issued_lines_certified_then_issued_with_vat_per_line(books):
    customer = books.customer()
    delivery = books.goods_issued(customer, [("SKU-A", 3, "33.33", "0.13"), ("SKU-B", 2, "100.00", "0.06"),
                                             ("SKU-C", 1, "0.05", "0.13")])
    billing = books.rpc.billing
    draft = billing.create_invoice(request_id=rid(), actor=books.rep, delivery_ids=[delivery["delivery_id"]],
                                   kind="special")
    assert draft["status"] == "draft" and draft["number"] is None and draft["red"] is False
    assert draft["buyer_tax_id"] == "91310000MA1FL8XQ3K" and draft["buyer_bank"]["bank_name"] == "ICBC Shanghai"
    assert draft["owner_id"] == books.rep["staff_id"] and draft["owner_team"] == "East-1"
    lines = [(l["sku"], l["quantity"], l["amount"], l["net"], l["tax"], l["vat_rate"]) for l in draft["lines"]]
    assert lines == [("SKU-A", 3, "99.99", "88.49", "11.50", "0.13"), ("SKU-B", 2, "200.00", "188.68", "11.32", "0.06"),
                     ("SKU-C", 1, "0.05", "0.04", "0.01", "0.13")]
    assert (draft["total"], draft["net_total"], draft["tax_total"]) == ("300.04", "277.21", "22.83")

    # FR-82: finance cannot issue before the sales manager certifies; only a sales manager certifies
    with pytest.raises(InvalidState):
        billing.issue_invoice(request_id=rid(), actor=books.finance, invoice_id=draft["id"])
    with pytest.raises(Forbidden):
        billing.certify_invoice(request_id=rid(), actor=books.finance, invoice_id=draft["id"])
    certified = billing.certify_invoice(request_id=rid(), actor=books.manager, invoice_id=draft["id"])
    assert certified["status"] == "certified" and certified["certified_by"] == books.manager["staff_id"]
    with pytest.raises(Forbidden):
        billing.issue_invoice(request_id=rid(), actor=books.manager, invoice_id=draft["id"])
    key = rid()
    issued = billing.issue_invoice(request_id=key, actor=books.finance, invoice_id=draft["id"])
    assert issued["status"] == "issued" and issued["number"].startswith("INV-")
    assert issued["open_amount"] == "300.04" and issued["payment_status"] == "open" and issued["due_date"]
    # the same request again answers the same; issued invoices are immutable
    assert billing.issue_invoice(request_id=key, actor=books.finance, invoice_id=draft["id"]) == issued
    for action in ("certify_invoice", "issue_invoice"):
        with pytest.raises(InvalidState):
            getattr(billing, action)(request_id=rid(), actor=books.manager if action == "certify_invoice"
                                     else books.finance, invoice_id=draft["id"])
    with pytest.raises(InvalidState):
        billing.cancel_invoice(request_id=rid(), actor=books.finance, invoice_id=draft["id"], reason="oops")

    [event] = books.outbox("invoice.issued")
    assert event["data"]["invoice_id"] == issued["id"] and event["data"]["total"] == "300.04"
    assert event["data"]["order_ids"] == [delivery["order_id"]] and len(event["data"]["lines"]) == 3
    assert books.check_contracts() == {"invoice.issued"}


def test_fr81_refusals_change_nothing(books):
    billing = books.rpc.billing
    customer = books.customer(tax=False)
    other = books.customer()
    delivery = books.goods_issued(customer, [("SKU-A", 5, "10.00", "0.13")])
    elsewhere = books.goods_issued(other, [("SKU-A", 1, "10.00", "0.13")])

    # goods not issued: a delivery billing never saw issued
    never = rid()
    with pytest.raises(BusinessRuleViolation) as refused:
        billing.create_invoice(request_id=rid(), actor=books.rep, delivery_ids=[never], kind="ordinary")
    assert refused.value.code == "GOODS_NOT_ISSUED" and refused.value.extra["delivery_ids"] == [never]
    # a special invoice without the customer's tax id and bank details
    with pytest.raises(BusinessRuleViolation) as refused:
        billing.create_invoice(request_id=rid(), actor=books.rep, delivery_ids=[delivery["delivery_id"]],
                               kind="special")
    assert refused.value.code == "TAX_DETAILS_MISSING"
    assert refused.value.extra["missing"] == ["tax_id", "bank_account"]
    # one invoice, one customer
    with pytest.raises(ValidationFailed) as refused:
        billing.create_invoice(request_id=rid(), actor=books.finance,
                               delivery_ids=[delivery["delivery_id"], elsewhere["delivery_id"]], kind="ordinary")
    assert "delivery_ids" in refused.value.errors
    # bad input names the field and the rule
    with pytest.raises(ValidationFailed) as refused:
        billing.create_invoice(request_id=rid(), actor=books.rep, delivery_ids=[], kind="proforma")
    assert set(refused.value.errors) == {"delivery_ids", "kind"}
    assert books.value("SELECT count(*) FROM invoices") == 0
    assert books.value("SELECT sum(claimed_quantity) FROM delivery_lines") == 0

    # double invoicing a delivery line
    first = books.invoice([delivery], issue=False)
    with pytest.raises(BusinessRuleViolation) as refused:
        billing.create_invoice(request_id=rid(), actor=books.rep, delivery_ids=[delivery["delivery_id"]],
                               kind="ordinary")
    assert refused.value.code == "ALREADY_INVOICED"
    # cancelling the draft frees the lines; a second invoice then bills them once
    billing.cancel_invoice(request_id=rid(), actor=books.manager, invoice_id=first["id"], reason="wrong kind")
    second = books.invoice([delivery])
    assert second["total"] == "50.00"
    with pytest.raises(BusinessRuleViolation):
        books.invoice([delivery], issue=False)
    assert books.value("SELECT claimed_quantity FROM delivery_lines WHERE delivery_id = %s",
                       delivery["delivery_id"]) == 5


def test_fr81_concurrent_invoices_for_one_delivery_bill_it_once_and_numbers_are_gap_free(books):
    customer = books.customer()
    deliveries = [books.goods_issued(customer, [("SKU-A", 1, "10.00", "0.13")]) for _ in range(6)]
    billing = books.rpc.billing
    replies = [billing.create_invoice.call_async(request_id=rid(), actor=books.rep,
                                                 delivery_ids=[deliveries[0]["delivery_id"]], kind="ordinary")
               for _ in range(8)]
    outcomes = []
    for reply in replies:
        try:
            outcomes.append(reply.result()["status"])
        except BusinessRuleViolation as exc:
            outcomes.append(exc.code)
    assert sorted(outcomes) == ["ALREADY_INVOICED"] * 7 + ["draft"]

    drafts = [billing.create_invoice(request_id=rid(), actor=books.rep, delivery_ids=[d["delivery_id"]],
                                     kind="ordinary") for d in deliveries[1:]]
    for draft in drafts:
        billing.certify_invoice(request_id=rid(), actor=books.manager, invoice_id=draft["id"])
    issues = [billing.issue_invoice.call_async(request_id=rid(), actor=books.finance, invoice_id=d["id"])
              for d in drafts]
    numbers = sorted(int(r.result()["number"].rsplit("-", 1)[1]) for r in issues)
    assert numbers == list(range(1, 6))


def test_fr82_row_level_access_reps_see_their_customers_managers_their_team(books):
    billing = books.rpc.billing
    customer = books.customer()
    invoice = books.invoice([books.goods_issued(customer, [("SKU-A", 1, "10.00", "0.13")])], issue=False)
    stranger = {"staff_id": rid(), "role": "sales_rep", "username": "rep2", "team": "East-1"}
    other_manager = {"staff_id": rid(), "role": "sales_manager", "username": "m2", "team": "North-2"}
    for who in (stranger, other_manager):
        with pytest.raises(NotFound):
            billing.get_invoice(actor=who, invoice_id=invoice["id"])
        assert billing.list_invoices(actor=who)["items"] == []
    with pytest.raises(NotFound):  # certifying someone else's team's invoice: not found, not forbidden
        billing.certify_invoice(request_id=rid(), actor=other_manager, invoice_id=invoice["id"])
    assert billing.get_invoice(actor=books.manager, invoice_id=invoice["id"])["id"] == invoice["id"]

    # the customer moves to another rep and team: its documents follow
    moved = books.publish("customer", "customer.owner_changed", {
        "customer_id": customer["customer_id"], "owner_id": stranger["staff_id"], "owner_team": "North-2",
        "previous_owner_id": books.rep["staff_id"], "reason": "territory change", "changed_by": rid()})
    books.applied(moved, "on_customer_owner_changed")
    assert billing.get_invoice(actor=stranger, invoice_id=invoice["id"])["owner_id"] == stranger["staff_id"]
    assert [i["id"] for i in billing.list_invoices(actor=other_manager)["items"]] == [invoice["id"]]
    with pytest.raises(NotFound):
        billing.get_invoice(actor=books.rep, invoice_id=invoice["id"])
    # an older event arriving late does not move it back
    late = books.publish("customer", "customer.owner_changed", {
        "customer_id": customer["customer_id"], "owner_id": books.rep["staff_id"], "owner_team": "East-1"},
        occurred_at=datetime(2020, 1, 1, tzinfo=timezone.utc))
    books.applied(late, "on_customer_owner_changed")
    assert billing.get_invoice(actor=stranger, invoice_id=invoice["id"])["owner_team"] == "North-2"


def test_fr81_lists_filter_and_paginate(books):
    billing = books.rpc.billing
    customer, other = books.customer(), books.customer()
    for _ in range(3):
        books.invoice([books.goods_issued(customer, [("SKU-A", 1, "10.00", "0.13")])])
    books.invoice([books.goods_issued(other, [("SKU-A", 1, "10.00", "0.13")])], issue=False)
    page = billing.list_invoices(actor=books.finance, filters={"customer_id": customer["customer_id"],
                                                               "status": "issued"}, limit=2)
    assert len(page["items"]) == 2 and page["next_cursor"]
    rest = billing.list_invoices(actor=books.finance, filters={"customer_id": customer["customer_id"]},
                                 limit=2, cursor=page["next_cursor"])
    assert len(rest["items"]) == 1 and rest["next_cursor"] is None
    assert [i["status"] for i in billing.list_invoices(actor=books.finance, filters={"status": "draft"})["items"]] \
        == ["draft"]
    with pytest.raises(ValidationFailed) as refused:
        billing.list_invoices(actor=books.finance, filters={"status": "lost", "colour": "red"})
    assert set(refused.value.errors) == {"status", "colour"}


def test_fr95_red_letter_invoices_reverse_part_then_the_rest_never_above_the_original(books):
    billing = books.rpc.billing
    customer = books.customer()
    delivery = books.goods_issued(customer, [("SKU-A", 10, "11.30", "0.13"), ("SKU-B", 1, "50.00", "0.13")])
    invoice = books.invoice([delivery], kind="special")
    line_a = delivery["lines"][0]["delivery_line_id"]

    with pytest.raises(Forbidden):
        billing.reverse_invoice(request_id=rid(), actor=books.manager, invoice_id=invoice["id"], reason="price")
    red = billing.reverse_invoice(request_id=rid(), actor=books.finance, invoice_id=invoice["id"],
                                  reason="3 units damaged in transit",
                                  lines=[{"delivery_line_id": line_a, "quantity": 3}])
    assert red["red"] is True and red["reverses"] == invoice["id"] and red["kind"] == "special"
    assert red["status"] == "issued" and red["number"].startswith("INV-") and red["total"] == "33.90"
    with pytest.raises(BusinessRuleViolation) as refused:  # 7 left of line A: 8 is above the original
        billing.reverse_invoice(request_id=rid(), actor=books.finance, invoice_id=invoice["id"],
                                reason="too much", lines=[{"delivery_line_id": line_a, "quantity": 8}])
    assert refused.value.code == "REVERSAL_EXCEEDS_ORIGINAL" and refused.value.extra["reversible"] == 7
    with pytest.raises(ValidationFailed) as refused:
        billing.reverse_invoice(request_id=rid(), actor=books.finance, invoice_id=invoice["id"], reason="x",
                                lines=[{"delivery_line_id": rid(), "quantity": 1}])
    assert "lines.0.delivery_line_id" in refused.value.errors
    with pytest.raises(InvalidState):  # a red invoice is not reversed again
        billing.reverse_invoice(request_id=rid(), actor=books.finance, invoice_id=red["id"], reason="x")

    rest = billing.reverse_invoice(request_id=rid(), actor=books.finance, invoice_id=invoice["id"],
                                   reason="customer returned the invoice")
    assert rest["total"] == "129.10"  # 7 × 11.30 + 50.00
    original = billing.get_invoice(actor=books.finance, invoice_id=invoice["id"])
    assert original["reversed_amount"] == original["total"] == "163.00"
    assert original["open_amount"] == "0.00" and original["payment_status"] == "reversed"
    assert [r["id"] for r in original["red_invoices"]] == [red["id"], rest["id"]]
    # every red line nets to the original's: net and tax reverse to exactly zero
    net = books.value("SELECT sum(CASE WHEN i.red THEN -l.net ELSE l.net END) FROM invoice_lines l"
                      " JOIN invoices i ON i.id = l.invoice_id")
    tax = books.value("SELECT sum(CASE WHEN i.red THEN -l.tax ELSE l.tax END) FROM invoice_lines l"
                      " JOIN invoices i ON i.id = l.invoice_id")
    assert (net, tax) == (D("0.00"), D("0.00"))
    with pytest.raises(BusinessRuleViolation) as refused:
        billing.reverse_invoice(request_id=rid(), actor=books.finance, invoice_id=invoice["id"], reason="again")
    assert refused.value.code == "REVERSAL_EXCEEDS_ORIGINAL"
    # the reversed goods may be invoiced again (红冲后重开)
    again = books.invoice([delivery])
    assert again["total"] == "163.00"
    assert {e["data"]["red_invoice_id"] for e in books.outbox("invoice.reversed")} == {red["id"], rest["id"]}
    assert books.check_contracts() >= {"invoice.issued", "invoice.reversed", "invoice.settled"}


def test_fr95_goods_returned_reverse_only_the_invoiced_part(books):
    billing = books.rpc.billing
    customer = books.customer()
    invoiced = books.goods_issued(customer, [("SKU-A", 10, "20.00", "0.13"), ("SKU-B", 4, "5.00", "0.13")])
    not_invoiced = books.goods_issued(customer, [("SKU-A", 6, "20.00", "0.13")])
    pending = books.goods_issued(customer, [("SKU-C", 2, "30.00", "0.13")])
    invoice = books.invoice([invoiced])
    draft = books.invoice([pending], issue=False)

    books.goods_returned(invoiced, [(0, 3)])
    [red] = billing.list_invoices(actor=books.finance, filters={"red": True})["items"]
    assert red["reverses"] == invoice["id"] and red["total"] == "60.00" and red["return_id"]
    assert [(l["sku"], l["quantity"]) for l in red["lines"]] == [("SKU-A", 3)]
    assert red["reason"].startswith("goods returned")

    books.goods_returned(not_invoiced, [(0, 6)])  # nothing of it was invoiced: no red invoice
    assert len(billing.list_invoices(actor=books.finance, filters={"red": True})["items"]) == 1
    with pytest.raises(BusinessRuleViolation) as refused:  # and nothing is left to invoice there
        books.invoice([not_invoiced], issue=False)
    assert refused.value.code == "ALREADY_INVOICED"

    books.goods_returned(pending, [(0, 1)])  # goods back before the invoice was issued: the draft goes
    assert billing.get_invoice(actor=books.finance, invoice_id=draft["id"])["status"] == "cancelled"
    redo = books.invoice([pending])
    assert redo["total"] == "30.00" and [l["quantity"] for l in redo["lines"]] == [1]

    # a return is applied once, however often it is delivered; more back than issued is parked
    assert books.value("SELECT returned_quantity FROM delivery_lines WHERE delivery_line_id = %s",
                       invoiced["lines"][0]["delivery_line_id"]) == 3
    too_many = books.publish("inventory", "goods.returned", {
        "return_id": rid(), "delivery_id": invoiced["delivery_id"],
        "lines": [{"delivery_line_id": invoiced["lines"][1]["delivery_line_id"], "quantity": 5}]})
    error = books.parked(too_many)
    assert "5 of 4 units" in error
    assert books.value("SELECT returned_quantity FROM delivery_lines WHERE delivery_line_id = %s",
                       invoiced["lines"][1]["delivery_line_id"]) == 0
