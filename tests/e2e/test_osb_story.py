"""Issue 5's OSB stories across the real services (customer, order, inventory, billing), driven
only through the gateway (API.md): the happy path quote below floor → manager approves → sales head
approves → accepted → order → confirm (stock and credit reserved) → delivery → goods issued →
invoiced → paid; and the unhappy ones: an edit after approval voids it, credit hold and release,
stock short, cancel after confirm releases stock and credit exactly."""
from datetime import date, timedelta

import pytest

from tests.e2e.osb import Org

pytestmark = pytest.mark.slow


def test_osb_story_fr46_quote_below_floor_to_cash_across_the_real_services(start_platform):
    org = Org(start_platform("customer", "order", "inventory", "billing"))
    platform, rep, manager, head, finance, warehouse = (org.platform, org.rep, org.manager, org.head, org.finance,
                                                        org.warehouse)
    customer, suffix = org.customer, org.suffix

    # the quote below floor: the direct manager, then the sales head (FR-46)
    body = {"customer_id": customer["id"], "valid_until": str(date.today() + timedelta(days=30)),
            "lines": [{"sku": "PUMP-200", "quantity": 10, "unit_price": "88.00"}]}
    quote = rep.post("quotes", body, expect=201)
    pending = rep.post(f"quotes/{quote['id']}/submit", expect=200)
    assert [s["relation"] for s in pending["required_approvals"]] == ["direct_manager", "division_head"]
    manager.post(f"quotes/{quote['id']}/approve", {"comment": "competitive tender"}, expect=200)
    assert head.post(f"quotes/{quote['id']}/approve", {}, expect=200)["status"] == "approved"
    accepted = rep.post(f"quotes/{quote['id']}/accept", expect=200)

    # the order: stock and credit reserved
    order = rep.post(f"orders/{accepted['order_id']}/confirm", expect=200)
    assert order["status"] == "confirmed"
    assert org.stock() == (100, 10, 90)
    # the business counters SREs watch (issue 10), counted from the committed events
    assert 'sales_orders_total{outcome="confirmed",service="order"} 1.0' in platform.metrics("order")
    assert finance.get(f"customers/{customer['id']}/credit", expect=200)["exposure"] == "880.00"

    # delivery note, goods issue (SP), invoice and cash (BC)
    delivery = rep.post("deliveries", {"order_id": order["id"], "lines": [{"sku": "PUMP-200", "quantity": 10}]},
                        expect=201)
    warehouse.post(f"deliveries/{delivery['id']}/issue", expect=200)
    platform.wait_for(lambda: rep.get(f"orders/{order['id']}", expect=200)["status"] == "shipped",
                      what="order shipped")
    invoice = rep.post("invoices", {"delivery_ids": [delivery["id"]], "kind": "ordinary"}, expect=201)
    manager.post(f"invoices/{invoice['id']}/certify", expect=200)
    finance.post(f"invoices/{invoice['id']}/issue", expect=200)
    platform.wait_for(lambda: rep.get(f"orders/{order['id']}", expect=200)["status"] == "invoiced",
                      what="order invoiced")
    receipt = rep.post("receipts", {"customer_id": customer["id"], "amount": "880.00", "method": "bank_transfer",
                                    "reference": f"TT-{suffix}",
                                    "received_at": str(date.today())}, expect=201)
    finance.post(f"receipts/{receipt['id']}/confirm", expect=200)
    rep.post(f"receipts/{receipt['id']}/allocations",
             {"allocations": [{"invoice_id": invoice["id"], "amount": "880.00"}]}, expect=200)
    paid = platform.wait_for(lambda: (lambda o: o["status"] == "paid" and o)(
        rep.get(f"orders/{order['id']}", expect=200)), what="order paid")
    assert paid["first_shipped_at"] and paid["invoiced_at"] and paid["paid_at"]
    billing_metrics = platform.metrics("billing")
    assert 'sales_invoices_issued_total{kind="ordinary",service="billing"} 1.0' in billing_metrics
    assert 'sales_invoiced_amount_total{kind="ordinary",service="billing"} 880.0' in billing_metrics
    assert 'sales_receipts_amount_total{service="billing"} 880.0' in billing_metrics


def test_osb_unhappy_paths_across_the_real_services(start_platform):
    """An edit after approval voids it; credit hold and its release by finance; stock short; cancel
    after confirm releases stock and credit exactly (FR-46, FR-63–FR-65)."""
    org = Org(start_platform("customer", "order", "inventory", "billing"), stock=20, limit="1000.00")
    rep, manager, head, finance = org.rep, org.manager, org.head, org.finance

    # an edit after approval voids the approvals and returns the quote to draft
    quote = rep.post("quotes", {"customer_id": org.customer["id"], "valid_until": str(date.today() + timedelta(days=30)),
                                "lines": [{"sku": "PUMP-200", "quantity": 2, "unit_price": "88.00"}]}, expect=201)
    rep.post(f"quotes/{quote['id']}/submit", expect=200)
    manager.post(f"quotes/{quote['id']}/approve", {}, expect=200)
    assert head.post(f"quotes/{quote['id']}/approve", {}, expect=200)["status"] == "approved"
    edited = rep.patch(f"quotes/{quote['id']}", {"lines": [{"sku": "PUMP-200", "quantity": 3, "unit_price": "88.00"}]},
                       expect=200)
    assert edited["status"] == "draft"
    assert rep.post(f"quotes/{quote['id']}/accept").json()["code"] == "INVALID_STATE"

    # stock short: 409 INSUFFICIENT_STOCK, nothing held anywhere
    short = rep.post("orders", org.order_body(21), expect=201)
    refused = rep.post(f"orders/{short['id']}/confirm")
    assert (refused.status_code, refused.json()["code"]) == (409, "INSUFFICIENT_STOCK")
    assert org.stock() == (20, 0, 20) and org.exposure() == "0.00"

    # within the limit: confirmed, 5 × 100 = 500 of the 1000 reserved
    first = rep.post("orders", org.order_body(5), expect=201)
    assert rep.post(f"orders/{first['id']}/confirm", expect=200)["status"] == "confirmed"
    assert org.stock() == (20, 5, 15) and org.exposure() == "500.00"

    # over the limit: credit hold, stock still held for it; a rep may not release, finance may
    second = rep.post("orders", org.order_body(6), expect=201)
    assert rep.post(f"orders/{second['id']}/confirm", expect=200)["status"] == "credit_hold"
    assert org.exposure() == "500.00"
    assert rep.post(f"orders/{second['id']}/release-credit-hold", {"reason": "mine"}).status_code == 403
    released = finance.post(f"orders/{second['id']}/release-credit-hold", {"reason": "paid in advance"}, expect=200)
    assert released["status"] == "confirmed"
    assert org.stock() == (20, 11, 9) and org.exposure() == "1100.00"

    # cancel after confirm releases exactly that order's stock and credit
    assert rep.post(f"orders/{second['id']}/cancel", {"reason": "customer withdrew"}, expect=200)["status"] == \
        "cancelled"
    assert org.stock() == (20, 5, 15) and org.exposure() == "500.00"
    rep.post(f"orders/{first['id']}/cancel", {}, expect=200)
    assert org.stock() == (20, 0, 20) and org.exposure() == "0.00"
