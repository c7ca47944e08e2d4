"""Issue 8, partial failure: the customer overview, the order timeline and sales performance over
the real processes, first whole, then with the billing service's process stopped — a partial
answer (200, the part null, `Sales-Partial: billing`), never a failure — and with the customer
service stopped as well. Row-level access holds throughout: someone else's record stays 404."""
import pytest

from tests.e2e.osb import Org
from tests.e2e.reports_data import invoiced

pytestmark = pytest.mark.slow

SHORT = {"gateway": {"GATEWAY_VIEW_TIMEOUT": "1", "GATEWAY_REPORT_TIMEOUT": "1.5"}}


def test_issue8_a_stopped_service_leaves_its_part_out_and_the_rest_is_answered(start_platform):
    platform = start_platform("customer", "order", "inventory", "billing", "aftersales", env=SHORT)
    org = Org(platform)
    rep, manager = org.rep, org.manager
    outsider, _ = platform.user(f"west-{org.suffix}", "sales_rep", team="west-1", region="West China")
    customer_id = org.customer["id"]
    order, delivery = org.delivered(2)
    invoice = invoiced(org, delivery)
    platform.wait_for(lambda: rep.get(f"orders/{order['id']}", expect=200)["status"] == "invoiced",
                      what="order invoiced")

    # everything up: whole answers, no Sales-Partial
    whole = rep.get(f"customers/{customer_id}/overview")
    assert whole.status_code == 200 and "Sales-Partial" not in whole.headers
    body = whole.json()
    assert (body["partial"], body["unavailable"]) == (False, [])
    assert body["profile"]["id"] == customer_id and body["owner"]["team"] == "east-1"
    assert body["credit"]["receivable"] == invoice["total"] == "200.00"
    assert order["id"] in {o["id"] for o in body["open_orders"]["items"]}
    timeline = rep.get(f"orders/{order['id']}/timeline", expect=200)
    assert [i["id"] for i in timeline["invoices"]] == [invoice["id"]]
    types = [e["type"] for e in timeline["events"]]
    assert types.index("order.created") < types.index("stock.reserved") < types.index("goods.issued") \
        < types.index("invoice.issued")
    assert timeline["goods_issues"][0]["delivery_id"] == delivery["id"]

    # billing stops: the credit part and the invoices are missing, the rest is there
    platform.procs["billing"].stop()
    partial = rep.get(f"customers/{customer_id}/overview")
    assert partial.status_code == 200 and partial.headers["Sales-Partial"] == "billing"
    body = partial.json()
    assert body["partial"] is True and body["credit"] is None
    [missing] = body["unavailable"]
    assert (missing["service"], missing["parts"]) == ("billing", ["credit"])
    assert missing["reason"] in ("unavailable", "timeout")
    assert body["profile"]["id"] == customer_id and body["open_orders"]["count"] >= 1
    assert body["open_service_requests"] == {"items": [], "more": False}

    timeline = rep.get(f"orders/{order['id']}/timeline")
    assert timeline.status_code == 200 and timeline.headers["Sales-Partial"] == "billing"
    timeline = timeline.json()
    assert timeline["invoices"] is None and timeline["receipts"] is None
    assert timeline["order"]["status"] == "invoiced" and timeline["deliveries"][0]["id"] == delivery["id"]
    assert "invoice.issued" not in [e["type"] for e in timeline["events"]]

    performance = manager.get("reports/sales-performance?group_by=rep")
    assert performance.status_code == 200 and performance.headers["Sales-Partial"] == "billing"
    performance = performance.json()
    [row] = [g for g in performance["groups"] if g["ordered"] not in (None, "0.00")]
    assert (row["ordered"], row["shipped"], row["invoiced"], row["collected"]) == ("200.00", "200.00", None, None)
    assert performance["totals"]["invoiced"] is None and performance["totals"]["ordered"] == "200.00"

    # row-level access is decided by the owner of the record, whatever else is down
    assert outsider.get(f"customers/{customer_id}/overview").status_code == 404
    assert outsider.get(f"orders/{order['id']}/timeline").status_code == 404

    # the customer service stops too: the orders still answer for the customer; for someone else's
    # customer no part can tell whether it is there (503), and nothing of it is shown
    platform.procs["customer"].stop()
    partial = rep.get(f"customers/{customer_id}/overview")
    assert partial.status_code == 200 and partial.headers["Sales-Partial"] == "billing, customer"
    body = partial.json()
    assert body["profile"] is None and body["last_visits"] is None and body["open_orders"]["count"] >= 1
    refused = outsider.get(f"customers/{customer_id}/overview")
    assert refused.status_code == 503 and refused.json()["code"] == "SERVICE_UNAVAILABLE"
