"""Issue 12, the sales console in a real browser (headless Chromium through Playwright) against the
real processes: a rep's day; a below-floor quote approved from the approvals inbox by the manager, the
sales head (FR-46) and the marketing director (FR-48), and a credit hold released from the head's inbox
(FR-65); the target-vs-achieved charts against a known data set (FR-112, FR-118); the customer and order
pages with the billing service stopped (the partial-failure marker).

Throughout, the console makes no request the signed-in role could not make through the API: every
request goes to the gateway (no CDN), every API call is one the role's x-roles allow, and a rep's
session shows nothing of another rep's (FR-06: a rep owns their customers; API.md row-level access) —
the other rep's customer and order are "not found" even by their addresses."""
import re
from datetime import date, datetime, timedelta, timezone
from urllib.parse import urlsplit

import pytest
import requests

from shared import workdays
from tests.e2e.osb import Org
from tests.e2e.reports_data import logged_visit, published_target, reviewed_customer

pytestmark = pytest.mark.slow
# each dashboard chart and the report it draws
CHARTS = {"by_rep": "reports/sales-performance", "by_region": "reports/sales-performance",
          "by_month": "reports/sales-performance", "pipeline": "reports/pipeline",
          "aging": "reports/receivables-aging", "osb": "reports/osb-cycle", "sla": "reports/service-sla"}


def confirmed(client, customer_id, quantity, expect_status="confirmed"):
    order = client.post("orders", {"customer_id": customer_id, "lines": [{"sku": "PUMP-200", "quantity": quantity}]},
                        expect=201)
    assert client.post(f"orders/{order['id']}/confirm", expect=200)["status"] == expect_status
    return order


def may(document, role, method, url):
    """Whether `role` may call `method url` according to the API's own OpenAPI document (x-roles)."""
    path = urlsplit(url).path
    for template, operations in document["paths"].items():
        pattern = "^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template)) + "$"
        if re.match(pattern, path) and method.lower() in operations:
            return role in operations[method.lower()].get("x-roles", [])
    return False


def test_issue12_console_rep_and_manager_in_a_real_browser(start_platform, browse):
    platform = start_platform("customer", "order", "inventory", "billing", "aftersales")
    base = platform.procs["gateway"].url("").rstrip("/")
    year = workdays.local_date(datetime.now(timezone.utc)).year
    org = Org(platform, stock=100)
    suffix = org.suffix
    manager_id = org.manager.get("me", expect=200)["staff_id"]
    rep_id = org.rep.get("me", expect=200)["staff_id"]
    # the second rep of the same team, with a customer and an order of their own
    rep2, rep2_user = platform.user(f"rep2-{suffix}", "sales_rep", manager=manager_id, team="east-1",
                                    region="East China")
    other = reviewed_customer(org, rep2, f"Other Rep's Pumps {suffix} Co., Ltd.", "East China")

    # the known data set: rep orders 3 × 100.00, rep2 orders 2 × 100.00; targets 1000.00 and 400.00
    rep_order = confirmed(org.rep, org.customer["id"], 3)
    other_order = confirmed(rep2, other["id"], 2)
    head_id = org.head.get("me", expect=200)["staff_id"]
    published_target(org.head, str(year), "rep", rep_id, "1000.00")
    published_target(org.head, str(year), "rep", rep2_user["staff_id"], "400.00")
    # rep's work: an open opportunity, a visit to log, an order on credit hold
    org.rep.post("opportunities", {"customer_id": org.customer["id"], "title": f"Line 3 {suffix}",
                                   "expected_amount": "10000.00", "probability": 30}, expect=201)
    visit = org.rep.post("visits", {"customer_id": org.customer["id"], "purpose": f"install check {suffix}",
                                    "planned_at": (datetime.now(timezone.utc) + timedelta(minutes=1)).isoformat()},
                         expect=201)
    org.manager.post(f"visits/{visit['id']}/approve", {"comment": "go"}, expect=200)
    tight = reviewed_customer(org, org.rep, f"Tight Credit {suffix} Co., Ltd.", "East China", limit="100.00")
    held = confirmed(org.rep, tight["id"], 5, expect_status="credit_hold")
    logged_visit(rep2, org.manager, other["id"])
    plan = rep2.post("visits", {"customer_id": other["id"], "purpose": f"demo the new pump {suffix}",
                                "planned_at": (datetime.now(timezone.utc) + timedelta(days=2)).isoformat(),
                                "tracking_report": "installed, asking for a second pump"},  # a re-visit: FR-29
                     expect=201)  # a visit plan waiting for the manager (FR-23)
    # the below-floor quote (80.00 < floor 90.00): the direct manager, then the sales head (FR-46)
    quote = org.rep.post("quotes", {"customer_id": org.customer["id"],
                                    "valid_until": str(date.today() + timedelta(days=30)),
                                    "lines": [{"sku": "PUMP-200", "quantity": 10, "unit_price": "80.00"}]}, expect=201)
    submitted = org.rep.post(f"quotes/{quote['id']}/submit", expect=200)
    assert submitted["status"] == "pending_approval"
    for order in (rep_order, other_order):
        platform.wait_for(lambda: org.head.get(f"orders/{order['id']}", expect=200)["status"] == "confirmed")
    rep_login = _credentials(org, "rep")

    # -- the rep's day in the browser -----------------------------------------------------------
    day = browse("rep_day", base=base, prefix="rep", **rep_login, customer_id=org.customer["id"],
                 order_id=rep_order["id"], other_customer_id=other["id"], other_order_id=other_order["id"])
    assert not day["errors"] and not day["failures"], (day["errors"], day["failures"])
    # the only refusals: the other rep's customer and order, asked for by address (404, not 403)
    assert sorted((urlsplit(r["url"]).path, r["status"]) for r in day["refused"]) == [
        (f"/api/v1/customers/{other['id']}/overview", 404), (f"/api/v1/orders/{other_order['id']}/timeline", 404)]
    work = day["work"]
    assert work["inbox"] == []  # a rep decides nothing: the inbox is not offered (403 for the role)
    assert any(org.customer["name"] in text for text in work["due-contact"]), work["due-contact"]
    assert any(visit["number"] in text for text in work["visits-to-log"]), work["visits-to-log"]
    assert any(f"Line 3 {suffix}" in text for text in work["open-opportunities"])
    assert any(held["number"] in text for text in work["credit-hold"]), work["credit-hold"]
    assert org.customer["name"] in day["customers"] and tight["name"] in day["customers"]
    assert org.customer["name"] in day["customer"] and rep_order["number"] in day["customer"]
    assert rep_order["number"] in day["order"]
    assert {"order.created", "order.confirmed"} <= set(day["events"]), day["events"]
    # nothing of the other rep's: not listed, and not found by address either
    everything = " ".join([*sum(work.values(), []), *day["customers"], day["customer"], day["order"]])
    assert other["name"] not in everything and other_order["number"] not in everything
    assert other["name"] not in day["other_customer"] and other_order["number"] not in day["other_order"]
    assert "未找到" in day["other_customer"] and "未找到" in day["other_order"]  # 未找到，或无权查看
    # the charts offered are exactly those whose report a rep may read; the by-rep chart shows the rep alone
    document = requests.get(platform.api("openapi.json"), timeout=30).json()
    assert day["charts"] == sorted(chart for chart, path in CHARTS.items()
                                   if may(document, "sales_rep", "GET", f"/api/v1/{path}")), day["charts"]
    assert day["by_rep"]["categories"] == [_name(org, "rep")]
    # every request went to the gateway, and every API call is one a rep may make
    api_calls = only_allowed(document, "sales_rep", day, base)
    assert not [r for r in api_calls if rep2_user["staff_id"] in r["url"]]

    # -- the approvals inbox: the manager, the sales head, the marketing director (FR-46, FR-48) --
    assert org.rep.get("me/approvals").status_code == 403  # a rep decides nothing
    head_login = _credentials(org, "head")
    before = browse("decide_in_inbox", base=base, prefix="head-before", **head_login, decisions=[])
    assert quote["number"] not in before["listed"]  # not the head's turn yet
    manager = browse("decide_in_inbox", base=base, prefix="manager", **_credentials(org, "manager"), decisions=[
        {"number": quote["number"], "action": "approve", "comment": "同意：大客户首单"},
        {"number": plan["number"], "action": "approve", "comment": "带上样机"}])
    assert {quote["number"], plan["number"]} <= set(manager["listed"]), manager["listed"]
    # the quote: the sales head's turn now; the visit plan: approved, the rep may go
    assert manager["decided"] == {quote["number"]: "pending_approval", plan["number"]: "approved"}
    assert rep2.get(f"visits/{plan['id']}", expect=200)["decision_comment"] == "带上样机"
    head = browse("decide_in_inbox", base=base, prefix="head", **head_login, decisions=[
        {"number": quote["number"], "action": "approve", "comment": "同意"},
        {"number": held["number"], "action": "release", "comment": "预付款已到账"}])  # FR-65: the head releases
    # 80% of the list price is below the rep's price authority: the marketing director too (FR-48)
    assert head["decided"] == {quote["number"]: "pending_approval", held["number"]: "confirmed"}, head["decided"]
    marketing = browse("decide_in_inbox", base=base, prefix="marketing", **_credentials(org, "marketing"),
                       decisions=[{"number": quote["number"], "action": "approve",
                                   "comment": "approved for the first order"}], language="en")
    assert marketing["decided"] == {quote["number"]: "approved"}
    assert held["number"] not in marketing["listed"]  # a marketing director releases no credit hold
    for role, session in (("sales_director", before), ("sales_manager", manager), ("sales_director", head),
                          ("marketing_director", marketing)):
        only_allowed(document, role, session, base)
        assert not session["refused"] and not session["errors"], session
    approved = org.rep.get(f"quotes/{quote['id']}", expect=200)
    assert approved["status"] == "approved"
    decided = {s["relation"]: (s["status"], s["decided_by"], s["comment"]) for s in approved["approvals"]}
    assert decided["direct_manager"] == ("approved", manager_id, "同意：大客户首单")
    assert decided["division_head"] == ("approved", head_id, "同意")
    assert decided["marketing_director"][::2] == ("approved", "approved for the first order")
    released = org.rep.get(f"orders/{held['id']}", expect=200)
    assert released["status"] == "confirmed"

    # -- the manager's dashboard: target vs achieved by rep, from the known data set ------------
    # (rep: 3 × 100.00 and the released 5 × 100.00; rep2: 2 × 100.00)
    board = browse("dashboards", base=base, prefix="manager-dashboards", **_credentials(org, "manager"),
                   charts=["by_rep", "by_region", "pipeline"])
    assert board["offered"] == sorted(chart for chart, path in CHARTS.items()
                                      if may(document, "sales_manager", "GET", f"/api/v1/{path}"))
    only_allowed(document, "sales_manager", board, base)
    by_rep = board["figures"]["by_rep"]
    expected = {_name(org, "rep"): (1000.0, 800.0), rep2_user["display_name"]: (400.0, 200.0)}
    drawn = dict(zip(by_rep["categories"], zip(by_rep["series"]["bar:0"], by_rep["series"]["bar:1"])))
    assert drawn == expected, drawn
    by_region = board["figures"]["by_region"]
    assert dict(zip(by_region["categories"], by_region["series"]["bar:1"])) == {"East China": 1000.0}
    funnel = board["figures"]["pipeline"]["series"]["funnel:0"]
    assert [point["value"] for point in funnel] == [10000.0, 0, 0, 0]

    # -- the billing service stops: the customer and order pages say what is missing -------------
    platform.procs["billing"].stop()
    partial = browse("partial_pages", base=base, prefix="rep-billing-down", **rep_login,
                     customer_id=org.customer["id"], order_id=rep_order["id"])
    assert partial["customers"] and "billing" in partial["customers"], partial
    assert partial["orders"] and "billing" in partial["orders"], partial
    assert org.customer["name"] in partial["customers_page"] and rep_order["number"] in partial["orders_page"]
    # ... and the customer service too: the manager's inbox still answers, without the visit plans
    platform.procs["customer"].stop()
    work = browse("my_work", base=base, prefix="manager-customer-down", **_credentials(org, "manager"))
    assert len(work["markers"]) == 1 and "customer (visit, proposal)" in work["markers"][0], work["markers"]


# -- helpers ---------------------------------------------------------------------------------------
def only_allowed(document, role, session, base):
    """Every request of the session went to the gateway, and every API call is one `role` may make
    (the sign-in and the OpenAPI document are public). Returns the API calls."""
    assert {urlsplit(r["url"]).netloc for r in session["requests"]} == {urlsplit(base).netloc}, session["requests"]
    calls = [r for r in session["requests"] if urlsplit(r["url"]).path.startswith("/api/v1/")
             and urlsplit(r["url"]).path not in ("/api/v1/openapi.json", "/api/v1/auth/token")]
    assert calls and all(may(document, role, r["method"], r["url"]) for r in calls), (role, calls)
    return calls


def _name(org, who):
    return f"{who}-{org.suffix}".title()


def _credentials(org, who):
    """The username and password Org made for `who` (tests/e2e/conftest.py Platform.user keeps them)."""
    username = f"{who}-{org.suffix}"
    return {"username": username, "password": org.platform.passwords[username]}
