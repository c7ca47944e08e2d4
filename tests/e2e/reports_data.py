"""Business through the gateway for the reports' end-to-end tests (issue 8): on top of tests/e2e/osb.py's
Org, an order taken all the way to cash, a logged visit, a published target."""
from datetime import date, datetime, timedelta, timezone


def at(moment):
    return moment.isoformat()


def invoiced(org, delivery, client=None):
    """An ordinary invoice for the delivery: raised by the rep (or `client`), certified by the
    manager, issued by finance."""
    invoice = (client or org.rep).post("invoices", {"delivery_ids": [delivery["id"]], "kind": "ordinary"},
                                       expect=201)
    org.manager.post(f"invoices/{invoice['id']}/certify", expect=200)
    return org.finance.post(f"invoices/{invoice['id']}/issue", expect=200)


def collected(org, invoice, amount, reference, client=None):
    """A receipt of `amount` registered by the rep (or `client`: the customer's owner), confirmed by
    finance, allocated to the invoice by the same."""
    client = client or org.rep
    receipt = client.post("receipts", {"customer_id": invoice["customer_id"], "amount": amount,
                                        "method": "bank_transfer", "reference": reference,
                                        "received_at": str(datetime.now(timezone.utc).date())}, expect=201)
    org.finance.post(f"receipts/{receipt['id']}/confirm", expect=200)
    return client.post(f"receipts/{receipt['id']}/allocations",
                        {"allocations": [{"invoice_id": invoice["id"], "amount": amount}]}, expect=200)


def logged_visit(rep, manager, customer_id, tracking_report=None):
    """A visit planned by the rep, approved by the manager and logged now (FR-23, FR-27)."""
    body = {"customer_id": customer_id, "purpose": "review the installation",
            "planned_at": at(datetime.now(timezone.utc) + timedelta(minutes=1))}
    if tracking_report:
        body["tracking_report"] = tracking_report
    visit = rep.post("visits", body, expect=201)
    manager.post(f"visits/{visit['id']}/approve", {"comment": "go"}, expect=200)
    return rep.post(f"visits/{visit['id']}/log", {"summary": "met purchasing", "visited_at": at(
        datetime.now(timezone.utc))}, expect=200)


def published_target(director, period, scope, scope_id, amount):
    target = director.post("targets", {"period": period, "scope": scope, "scope_id": scope_id, "amount": amount},
                           expect=201)
    return director.post(f"targets/{target['id']}/publish", expect=200)


def reviewed_customer(org, rep, name, region, limit="100000.00"):
    """A customer recorded by `rep`, reviewed (FR-14) and given a credit limit, ready for orders."""
    customer = rep.post("customers", {"name": name, "industry": "machinery", "size": "medium", "region": region,
                                      "source": "trade_fair"}, expect=201)
    review = rep.post(f"customers/{customer['id']}/reviews", {
        "business_status": "operating", "credit_opinion": "sound",
        "valid_until": str(date.today() + timedelta(days=180))}, expect=201)
    org.pm.post(f"customers/{customer['id']}/reviews/{review['id']}/approve", expect=200)
    org.platform.wait_for(lambda: org.finance.put(f"customers/{customer['id']}/credit",
                                                  {"limit": limit, "reason": "opening limit"}).status_code == 200,
                          what="credit account opened")
    return customer


def delivered(org, rep, customer_id, lines, deliver=None):
    """An order of `lines` [(sku, quantity)] confirmed by `rep`, and a delivery of `deliver` (default:
    everything) issued by the warehouse: (order, delivery or None)."""
    order = rep.post("orders", {"customer_id": customer_id,
                                "lines": [{"sku": sku, "quantity": q} for sku, q in lines]}, expect=201)
    assert rep.post(f"orders/{order['id']}/confirm", expect=200)["status"] == "confirmed"
    deliver = lines if deliver is None else deliver
    if not deliver:
        return order, None
    delivery = rep.post("deliveries", {"order_id": order["id"],
                                       "lines": [{"sku": sku, "quantity": q} for sku, q in deliver]}, expect=201)
    org.warehouse.post(f"deliveries/{delivery['id']}/issue", expect=200)
    return order, delivery
