"""Billing end to end, driven through the gateway's HTTP API with the real processes (customer,
billing, gateway), and by the events billing consumes from the warehouse (goods.issued,
goods.returned) published on the platform's broker as the inventory service publishes them:

FR-66 manual limit (finance only, with a reason) → FR-65 credit reserved for an order (the order
saga's RPC) → goods issued → FR-81 invoice (special needs tax details; goods not issued and double
invoicing refused) → FR-82 certified by the sales manager, issued by finance → credit turned into
a receivable → FR-84 receipt registered by the rep, confirmed by finance → FR-86 allocated (over-
allocation refused) → FR-95 red-letter invoice for returned goods → FR-87 statement, FR-91 aging,
FR-64 recompute — and the books balance at the end."""
import uuid
from datetime import datetime, timezone
from decimal import Decimal

import pytest
from nameko.standalone.events import event_dispatcher

from shared import envelope
from shared.workdays import local_date

pytestmark = pytest.mark.slow
D = Decimal


def test_fr63_to_fr95_finance_over_http(start_platform):
    platform = start_platform("customer", "billing")
    manager_client, manager = platform.user("manager1", "sales_manager", team="East")
    rep, rep_user = platform.user("rep1", "sales_rep", manager=manager["staff_id"], team="East")
    finance, _ = platform.user("fin1", "finance")
    outsider, _ = platform.user("rep9", "sales_rep", team="North")
    dispatch = event_dispatcher(uri=platform.amqp_uri)

    def publish(source, event_type, data):
        dispatch(source, event_type, envelope.build(event_type, data, source=source))

    customer = rep.post("customers", {"name": "Wuxi Precision Parts Co., Ltd.", "industry": "machinery",
                                      "size": "medium", "region": "East", "source": "trade_fair"}, expect=201)
    cid = customer["id"]
    platform.wait_for(lambda: rep.get(f"customers/{cid}/credit").status_code == 200, what="the credit account")

    # FR-66: only finance changes a limit, and only with a reason
    assert rep.put(f"customers/{cid}/credit", {"limit": "100000.00", "reason": "x"}).status_code == 403
    assert finance.put(f"customers/{cid}/credit", {"limit": "100000.00"}).json()["errors"] == {
        "reason": ["Missing data for required field."]}
    credit = finance.put(f"customers/{cid}/credit", {"limit": "100000.00", "reason": "guarantee from the parent"},
                         expect=200)
    assert credit["limit"] == "100000.00" and credit["history"][-1]["reason"] == "guarantee from the parent"

    # FR-65: the order saga reserves credit (RPC, as the order service calls it)
    order_id = str(uuid.uuid4())
    with platform.rpc() as rpc:
        held = rpc.billing.reserve_credit(reservation_id=str(uuid.uuid4()), order_id=order_id, customer_id=cid,
                                          amount="2000.00")
    assert (held["status"], held["exposure"], held["available"]) == ("reserved", "2000.00", "98000.00")

    delivery = {"delivery_id": str(uuid.uuid4()), "delivery_number": "DN-2026-000001", "order_id": order_id,
                "order_number": "SO-2026-000001", "warehouse": "WH-1",
                "issued_at": datetime.now(timezone.utc).isoformat(), "customer_id": cid,
                "owner_id": rep_user["staff_id"], "owner_team": "East", "region": "East",
                "lines": [{"delivery_line_id": str(uuid.uuid4()), "order_line_id": str(uuid.uuid4()), "sku": "SKU-A",
                           "quantity": 10, "unit_price": "113.00", "vat_rate": "0.13"},
                          {"delivery_line_id": str(uuid.uuid4()), "order_line_id": str(uuid.uuid4()), "sku": "SKU-B",
                           "quantity": 1, "unit_price": "870.00", "vat_rate": "0.13"}]}
    assert rep.post("invoices", {"delivery_ids": [delivery["delivery_id"]], "kind": "ordinary"}).json()["code"] \
        == "GOODS_NOT_ISSUED"
    publish("inventory", "goods.issued", delivery)
    body = {"delivery_ids": [delivery["delivery_id"]], "kind": "special"}
    refused = platform.wait_for(lambda: (lambda a: a.json()["code"] != "GOODS_NOT_ISSUED" and [a])(
        rep.post("invoices", body)), what="the goods issued")[0]  # (a Response of a 4xx is falsy)
    assert (refused.status_code, refused.json()["code"]) == (409, "TAX_DETAILS_MISSING")
    assert refused.json()["missing"] == ["tax_id", "bank_account"]
    publish("customer", "customer.updated", {"customer_id": cid, "tax_id": "91320200MA1XY2Z34K",
                                             "bank_account": {"bank_name": "ICBC Wuxi", "account_no": "1103 0000 42"}})
    draft = platform.wait_for(lambda: (lambda a: a.status_code == 201 and a.json())(rep.post("invoices", body)),
                              what="the tax details")
    assert (draft["status"], draft["total"], draft["tax_total"]) == ("draft", "2000.00", "230.09")
    assert rep.post("invoices", body).json()["code"] == "ALREADY_INVOICED"

    # FR-82: the sales manager certifies, finance issues
    assert rep.post(f"invoices/{draft['id']}/certify").status_code == 403
    assert finance.post(f"invoices/{draft['id']}/issue").json()["code"] == "INVALID_STATE"
    manager_client.post(f"invoices/{draft['id']}/certify", expect=200)
    assert manager_client.post(f"invoices/{draft['id']}/issue").status_code == 403
    invoice = finance.post(f"invoices/{draft['id']}/issue", expect=200)
    assert invoice["number"].startswith("INV-") and invoice["payment_status"] == "open"
    outsider.get(f"invoices/{invoice['id']}", expect=404)
    credit = rep.get(f"customers/{cid}/credit", expect=200)
    assert (credit["open_receivables"], credit["reserved"], credit["exposure"]) == ("2000.00", "0.00", "2000.00")

    # FR-84/86: the rep registers the money, finance confirms, the rep allocates
    receipt = rep.post("receipts", {"customer_id": cid, "amount": "1500.00", "method": "bank_transfer",
                                    "reference": "ICBC-0001", "received_at": local_date(datetime.now(timezone.utc))
                                    .isoformat()}, expect=201)
    assert rep.post(f"receipts/{receipt['id']}/confirm").status_code == 403
    finance.post(f"receipts/{receipt['id']}/confirm", expect=200)
    over = rep.post(f"receipts/{receipt['id']}/allocations",
                    {"allocations": [{"invoice_id": invoice["id"], "amount": "1500.01"}]})
    assert (over.status_code, over.json()["code"]) == (409, "OVER_ALLOCATION")
    allocated = rep.post(f"receipts/{receipt['id']}/allocations",
                         {"allocations": [{"invoice_id": invoice["id"], "amount": "1500.00"}]}, expect=200)
    assert allocated["unallocated_amount"] == "0.00"
    assert rep.get(f"invoices/{invoice['id']}", expect=200)["open_amount"] == "500.00"

    # FR-95: 2 units of SKU-A come back: a red-letter invoice for them, linked to the original
    publish("inventory", "goods.returned", {
        "return_id": str(uuid.uuid4()), "delivery_id": delivery["delivery_id"], "order_id": order_id,
        "customer_id": cid, "lines": [{"delivery_line_id": delivery["lines"][0]["delivery_line_id"], "quantity": 2}]})
    reds = platform.wait_for(lambda: rep.get("invoices", params={"red": "true"}, expect=200)["items"],
                             what="the red-letter invoice")
    assert [(r["reverses"], r["total"], r["kind"]) for r in reds] == [(invoice["id"], "226.00", "special")]
    assert rep.get(f"invoices/{invoice['id']}", expect=200)["open_amount"] == "274.00"

    # FR-87 statement, FR-91 aging, FR-64 recompute
    month = local_date(datetime.now(timezone.utc)).strftime("%Y-%m")
    statement = rep.get(f"customers/{cid}/statements/{month}", expect=200)
    assert (statement["invoiced"], statement["red"], statement["received"], statement["closing"]) == (
        "2000.00", "226.00", "1500.00", "274.00")
    assert rep.post(f"customers/{cid}/statements/{month}/confirm", {"outcome": "confirmed"}).json()["code"] \
        == "STATEMENT_PERIOD_OPEN"
    aging = finance.get("reports/receivables-aging", expect=200)
    assert aging["totals"]["current"] == aging["totals"]["total"] == "274.00"
    assert outsider.get("reports/receivables-aging", expect=200)["customers"] == []
    quarter = f"{int(month[:4])}-Q{(int(month[5:]) - 1) // 3 + 1}"
    assert rep.post("credit/recompute", {"quarter": quarter}).status_code == 403
    run = finance.post("credit/recompute", {"quarter": quarter}, expect=200)
    assert run["finished"] and run["accounts"] == 1

    # the books balance: open receivables = issued − red − allocated
    credit = finance.get(f"customers/{cid}/credit", expect=200)
    assert D(credit["open_receivables"]) == D("2000.00") - D("226.00") - D("1500.00")
