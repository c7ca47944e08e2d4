"""Issue 5's OSB story across the real services, driven only through the gateway (API.md):
quote below floor → manager approves → sales head approves → accepted → order → confirm (stock and
credit reserved) → delivery → goods issued → invoiced → paid.

It needs the customer, inventory and billing services of their own issues (find_approver,
check_quotable and reviews; products, stock, reservations and deliveries; credit, invoices and
receipts). Until they are merged it is skipped, naming what is missing; the same story runs
against fakes in test_osb_sales_api.py. Request bodies are API.md's; where API.md does not give
one (a warehouse), the body is marked as an assumption."""
import uuid
from datetime import date, datetime, timedelta, timezone

import pytest

pytestmark = pytest.mark.slow

NEEDED = {
    ("customer.service", "CustomerService"): ("find_approver", "check_quotable", "get_staff", "get_customer"),
    ("inventory.service", "InventoryService"): ("reserve_stock", "release_reservation", "create_delivery",
                                                 "issue_goods"),
    ("billing.service", "BillingService"): ("reserve_credit", "release_credit"),
}


def missing_collaborators():
    import importlib

    missing = []
    for (module, cls), methods in NEEDED.items():
        service = getattr(importlib.import_module(module), cls)
        missing += [f"{service.name}.{m}" for m in methods if not hasattr(service, m)]
    return missing


MISSING = missing_collaborators()


@pytest.mark.skipif(bool(MISSING), reason=f"collaborating services not merged yet: {', '.join(MISSING)}")
def test_osb_story_fr46_quote_below_floor_to_cash_across_the_real_services(start_platform):
    platform = start_platform("customer", "order", "inventory", "billing")
    admin = platform.admin()
    suffix = uuid.uuid4().hex[:6]
    head, head_user = platform.user(f"head-{suffix}", "sales_director", region="East China")
    manager, manager_user = platform.user(f"manager-{suffix}", "sales_manager", manager=head_user["staff_id"],
                                          team="east-1", region="East China")
    rep, _ = platform.user(f"rep-{suffix}", "sales_rep", manager=manager_user["staff_id"], team="east-1",
                           region="East China")
    pm, _ = platform.user(f"pm-{suffix}", "product_manager", region="East China")
    finance, _ = platform.user(f"finance-{suffix}", "finance")
    warehouse, _ = platform.user(f"wh-{suffix}", "warehouse")
    platform.user(f"marketing-{suffix}", "marketing_director")

    # the catalog and the stock (inventory); the order service learns prices from product.created
    admin.post("products", {"sku": "PUMP-200", "name": "Pump 200", "unit": "pc", "list_price": "100.00",
                            "floor_price": "90.00", "vat_rate": "0.13"}, expect=201)
    admin.post("warehouses", {"code": "WH-1", "name": "Main warehouse"}, expect=201)  # assumption: body
    warehouse.post("stock/receipts", {"warehouse": "WH-1", "lines": [{"sku": "PUMP-200", "quantity": 100}],
                                      "reason": "opening stock"}, expect=201)
    # the customer, its review (FR-14) and its credit limit
    customer = rep.post("customers", {"name": f"Story Machinery {suffix} Co., Ltd.", "industry": "machinery",
                                      "size": "medium", "region": "East China", "source": "trade_fair"}, expect=201)
    review = rep.post(f"customers/{customer['id']}/reviews", {
        "business_status": "operating", "credit_opinion": "sound",
        "valid_until": str(date.today() + timedelta(days=180))}, expect=201)
    pm.post(f"customers/{customer['id']}/reviews/{review['id']}/approve", expect=200)
    platform.wait_for(lambda: finance.put(f"customers/{customer['id']}/credit",
                                          {"limit": "100000.00", "reason": "opening limit"}).status_code == 200,
                      what="credit account opened")

    # the quote below floor: the direct manager, then the sales head (FR-46)
    body = {"customer_id": customer["id"], "valid_until": str(date.today() + timedelta(days=30)),
            "lines": [{"sku": "PUMP-200", "quantity": 10, "unit_price": "88.00"}]}
    quote = platform.wait_for(lambda: (lambda r: r.status_code == 201 and r.json())(rep.post("quotes", body)),
                              what="the price list has PUMP-200")
    pending = rep.post(f"quotes/{quote['id']}/submit", expect=200)
    assert [s["relation"] for s in pending["required_approvals"]] == ["direct_manager", "division_head"]
    manager.post(f"quotes/{quote['id']}/approve", {"comment": "competitive tender"}, expect=200)
    assert head.post(f"quotes/{quote['id']}/approve", {}, expect=200)["status"] == "approved"
    accepted = rep.post(f"quotes/{quote['id']}/accept", expect=200)

    # the order: stock and credit reserved
    order = rep.post(f"orders/{accepted['order_id']}/confirm", expect=200)
    assert order["status"] == "confirmed"
    assert warehouse.get("stock?sku=PUMP-200", expect=200)  # on hand 100, reserved 10 (API.md "Catalog and stock")
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
                                    "received_at": datetime.now(timezone.utc).isoformat()}, expect=201)
    finance.post(f"receipts/{receipt['id']}/confirm", expect=200)
    rep.post(f"receipts/{receipt['id']}/allocations",
             {"allocations": [{"invoice_id": invoice["id"], "amount": "880.00"}]}, expect=201)
    paid = platform.wait_for(lambda: (lambda o: o["status"] == "paid" and o)(
        rep.get(f"orders/{order['id']}", expect=200)), what="order paid")
    assert paid["first_shipped_at"] and paid["invoiced_at"] and paid["paid_at"]
