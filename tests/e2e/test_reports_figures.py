"""Issue 8, the report figures checked against a small known data set over the real processes:
three reps in two teams, two products, four orders (delivered in full, in part or not at all),
invoices, receipts, visits, targets and opportunities — every right answer computed here from the
data set itself, independently of the services (FR-62, FR-90, FR-112–FR-125)."""
import statistics
from datetime import datetime, timezone
from decimal import ROUND_HALF_UP, Decimal

import pytest

from shared import workdays
from tests.e2e.osb import Org
from tests.e2e.reports_data import collected, delivered, invoiced, logged_visit, published_target, reviewed_customer

pytestmark = pytest.mark.slow
D = Decimal
PRICES = {"PUMP-200": D("100.00"), "VALVE-50": D("50.00")}


def cents(value):
    return str(D(value).quantize(D("0.01"), ROUND_HALF_UP))


def share(part, whole, places="0.01", scale=100):
    return None if not whole else str((D(part) * scale / D(whole)).quantize(D(places), ROUND_HALF_UP))


def amount(lines):
    return sum((PRICES[sku] * quantity for sku, quantity in lines), D(0))


def percentile(values, q):
    ordered = sorted(values)
    position = (len(ordered) - 1) * D(str(q))
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def test_issue8_report_figures_match_a_known_data_set(start_platform):
    platform = start_platform("customer", "order", "inventory", "billing")
    year = workdays.local_date(datetime.now(timezone.utc)).year
    org = Org(platform, stock=100)
    rep, manager, head, suffix = org.rep, org.manager, org.head, org.suffix
    reps = {"rep": org.rep}
    reps["rep2"], rep2_user = platform.user(f"rep2-{suffix}", "sales_rep", manager=manager_id(org), team="east-1",
                                            region="East China")
    reps["rep3"], rep3_user = platform.user(f"rep3-{suffix}", "sales_rep", team="west-1", region="West China")
    ids = {"rep": org.rep.get("me", expect=200)["staff_id"], "rep2": rep2_user["staff_id"],
           "rep3": rep3_user["staff_id"]}
    org.admin.post("products", {"sku": "VALVE-50", "name": "Valve 50", "unit": "pc", "list_price": "50.00",
                                "floor_price": "45.00", "vat_rate": "0.13"}, expect=201)
    org.warehouse.post("stock/receipts", {"warehouse": "MAIN", "lines": [{"sku": "VALVE-50", "quantity": 100}],
                                          "reason": "opening stock"}, expect=201)
    customers = {"rep": org.customer,
                 "rep2": reviewed_customer(org, reps["rep2"], f"Beta Pumps {suffix} Co., Ltd.", "East China"),
                 "rep3": reviewed_customer(org, reps["rep3"], f"Gamma Works {suffix} Co., Ltd.", "West China")}
    platform.wait_for(lambda: reps["rep"].post("orders", {"customer_id": customers["rep"]["id"], "lines": [
        {"sku": "VALVE-50", "quantity": 1}]}).status_code == 201, what="the price list has VALVE-50")

    # the data set: per order its owner, lines, what is delivered, whether invoiced and what is paid
    plan = [
        {"who": "rep", "lines": [("PUMP-200", 3)], "deliver": [("PUMP-200", 3)], "invoice": True, "paid": "200.00"},
        {"who": "rep", "lines": [("VALVE-50", 4)], "deliver": [("VALVE-50", 2)], "invoice": False, "paid": None},
        {"who": "rep2", "lines": [("PUMP-200", 5), ("VALVE-50", 2)], "deliver": None, "invoice": True,
         "paid": "600.00"},
        {"who": "rep3", "lines": [("PUMP-200", 1)], "deliver": [], "invoice": False, "paid": None},
    ]
    orders = []
    for n, step in enumerate(plan):
        client = reps[step["who"]]
        order, delivery = delivered(org, client, customers[step["who"]]["id"], step["lines"], step["deliver"])
        step["delivered"] = step["lines"] if step["deliver"] is None else step["deliver"]
        if step["invoice"]:
            invoice = invoiced(org, delivery, client=client)
            if step["paid"]:
                collected(org, invoice, step["paid"], f"TT-{suffix}-{n}", client=client)
        orders.append(order)
    for who, visits in (("rep", 2), ("rep2", 1)):
        for n in range(visits):
            logged_visit(reps[who], manager, customers[who]["id"],
                         tracking_report="quoted, waiting on purchasing" if n else None)
    targets = {"rep": D("1000.00"), "rep2": D("400.00")}
    for who, value in targets.items():
        published_target(head, str(year), "rep", ids[who], str(value))
    for who, title, value, probability, close in (("rep", "line 3", "10000.00", 30, None),
                                                  ("rep2", "plant 2", "5000.00", 50, None),
                                                  ("rep2", "spares", "800.00", 25, "lost")):
        opportunity = reps[who].post("opportunities", {"customer_id": customers[who]["id"], "title": title,
                                                       "expected_amount": value, "probability": probability},
                                     expect=201)
        if close:
            reps[who].post(f"opportunities/{opportunity['id']}/close", {"outcome": "lost", "reason": "budget"},
                           expect=200)
    for order, status in zip(orders, ("invoiced", "partially_shipped", "paid", "confirmed")):
        platform.wait_for(lambda: head.get(f"orders/{order['id']}", expect=200)["status"] == status,
                          what=f"{order['number']} {status}")

    # the right answers, from the data set alone
    expected = {}
    days = (datetime(year + 1, 1, 1) - datetime(year, 1, 1)).days
    for who in ("rep", "rep2", "rep3"):
        mine = [step for step in plan if step["who"] == who]
        ordered = sum((amount(s["lines"]) for s in mine), D(0))
        invoiced_amount = sum((amount(s["delivered"]) for s in mine if s["invoice"]), D(0))
        paid = sum((D(s["paid"]) for s in mine if s["paid"]), D(0))
        target = targets.get(who)
        visits = {"rep": 2, "rep2": 1, "rep3": 0}[who]
        standard = (D(10) * D(days) / 7).quantize(D("0.01"), ROUND_HALF_UP)
        expected[ids[who]] = {
            "target": cents(target) if target else None, "orders": len(mine), "ordered": cents(ordered),
            "completion": share(ordered, target), "shipped": cents(sum((amount(s["delivered"]) for s in mine), D(0))),
            "returned": "0.00", "invoiced": cents(invoiced_amount), "collected": cents(paid),
            "collection_rate": share(paid, invoiced_amount, "0.0001", 1),
            "receivable": cents(invoiced_amount - paid),
            "dso": share((invoiced_amount - paid) * days, invoiced_amount, "0.1", 1),
            "visits": visits, "visit_standard": str(standard), "visits_vs_standard": share(visits, standard),
            "new_customers": 1}

    by_rep = head.get(f"reports/sales-performance?period={year}&group_by=rep")
    assert by_rep.status_code == 200 and "Sales-Partial" not in by_rep.headers
    by_rep = by_rep.json()
    assert (by_rep["period_start"], by_rep["period_end"]) == (f"{year}-01-01", f"{year}-12-31")
    got = {g["key"]: g for g in by_rep["groups"]}
    for staff_id, figures in expected.items():
        assert {k: got[staff_id][k] for k in figures} == figures, staff_id
    totals = by_rep["totals"]
    assert totals["ordered"] == cents(sum(amount(s["lines"]) for s in plan))
    assert totals["collected"] == "800.00" and totals["invoiced"] == "900.00"
    assert totals["target"] == "1400.00" and totals["completion"] == share(amount(
        [line for s in plan for line in s["lines"]]), D("1400.00"))

    # a rep sees only their own figures
    mine = reps["rep2"].get(f"reports/sales-performance?period={year}&group_by=rep", expect=200)
    assert [g["key"] for g in mine["groups"] if g["ordered"] not in (None, "0.00")] == [ids["rep2"]]

    by_team = {g["key"]: g for g in head.get(f"reports/sales-performance?period={year}&group_by=team",
                                             expect=200)["groups"]}
    east = [expected[ids["rep"]], expected[ids["rep2"]]]
    assert by_team["east-1"]["ordered"] == cents(sum(D(e["ordered"]) for e in east))
    assert by_team["east-1"]["visits"] == 3 and by_team["west-1"]["ordered"] == "100.00"

    by_product = {g["key"]: g for g in head.get(f"reports/sales-performance?period={year}&group_by=product",
                                                expect=200)["groups"]}
    for sku in PRICES:
        ordered = sum((PRICES[sku] * q for s in plan for k, q in s["lines"] if k == sku), D(0))
        shipped = sum((PRICES[sku] * q for s in plan for k, q in s["delivered"] if k == sku), D(0))
        billed = sum((PRICES[sku] * q for s in plan if s["invoice"] for k, q in s["delivered"] if k == sku), D(0))
        assert (by_product[sku]["ordered"], by_product[sku]["shipped"], by_product[sku]["invoiced"]) == \
            (cents(ordered), cents(shipped), cents(billed)), sku
        assert by_product[sku]["visits"] is None  # visits have no product
    # collections are shared out by line amount: rep's 200 of 300 (all pumps), rep2's 600 of 600
    assert (by_product["PUMP-200"]["collected"], by_product["VALVE-50"]["collected"]) == ("700.00", "100.00")

    by_customer = {g["key"]: g for g in head.get(f"reports/sales-performance?period={year}&group_by=customer",
                                                 expect=200)["groups"]}
    assert by_customer[customers["rep2"]["id"]]["collected"] == "600.00"
    assert by_customer[customers["rep2"]["id"]]["name"] == customers["rep2"]["name"]

    # the pipeline: open opportunities weighted by probability
    pipeline = head.get("reports/pipeline?group_by=rep", expect=200)
    rows = {g["key"]: g for g in pipeline["groups"]}
    assert (rows[ids["rep"]]["open_amount"], rows[ids["rep"]]["weighted_amount"]) == ("10000.00", "3000.00")
    assert (rows[ids["rep2"]]["open_count"], rows[ids["rep2"]]["weighted_amount"]) == (1, "2500.00")
    assert pipeline["totals"] == {"open_count": 2, "open_amount": "15000.00", "weighted_amount": "5500.00"}

    # the OSB cycle, from the orders' own timestamps
    spans = {step: [] for step in ("order_to_ship", "ship_to_invoice", "invoice_to_cash", "order_to_cash")}
    for order in orders:
        o = head.get(f"orders/{order['id']}", expect=200)
        t = {k: datetime.fromisoformat(o[k]) if o[k] else None for k in ("created_at", "shipped_at", "invoiced_at",
                                                                          "paid_at")}
        for step, (a, b) in (("order_to_ship", ("created_at", "shipped_at")),
                             ("ship_to_invoice", ("shipped_at", "invoiced_at")),
                             ("invoice_to_cash", ("invoiced_at", "paid_at")),
                             ("order_to_cash", ("created_at", "paid_at"))):
            if t[a] and t[b]:
                spans[step].append(D(str((t[b] - t[a]).total_seconds())) / 86400)
    cycle = head.get(f"reports/osb-cycle?period={year}&group_by=team", expect=200)
    assert cycle["totals"]["orders"] == len(plan)
    for step, values in spans.items():
        assert cycle["totals"]["steps"][step] == {
            "count": len(values), "median_days": cents(statistics.median(values)) if values else None,
            "p90_days": cents(percentile(values, 0.9)) if values else None}, step
    assert [s["count"] for s in cycle["totals"]["steps"].values()] == [2, 2, 1, 1]
    assert {g["key"]: g["orders"] for g in cycle["groups"]} == {"east-1": 3, "west-1": 1}

    # receivables aging fits: what is invoiced and not collected is open, not yet due
    aging = org.finance.get("reports/receivables-aging", expect=200)
    assert (aging["totals"]["total"], aging["totals"]["current"]) == ("100.00", "100.00")


def manager_id(org):
    return org.manager.get("me", expect=200)["staff_id"]

