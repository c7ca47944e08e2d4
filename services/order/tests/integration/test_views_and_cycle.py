"""What the gateway's aggregated views and the OSB cycle report ask of the order service (issue 8):
a customer's open orders, an order's timeline part, and the cycle's percentiles computed in SQL."""
import statistics
import uuid
from datetime import datetime, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal

import pytest

from shared import workdays
from shared.errors import NotFound, ValidationFailed


def rid():
    return str(uuid.uuid4())


def test_open_orders_of_a_customer_leave_out_paid_and_cancelled_ones_and_keep_to_the_scope(desk):
    org = desk.org()
    first = desk.confirmed(org.rep, org.customer, [{"sku": "P1", "quantity": 2}])
    draft = desk.order(org.rep, org.customer, [{"sku": "P2", "quantity": 1}])
    cancelled = desk.order(org.rep, org.customer, [{"sku": "P1", "quantity": 1}])
    desk.rpc.cancel_order(request_id=rid(), actor=org.rep, order_id=cancelled["id"])
    paid = desk.confirmed(org.rep, org.customer, [{"sku": "P1", "quantity": 1}])
    invoice = desk.invoice(paid, desk.issue(paid))
    desk.settle(invoice["invoice_id"], [paid["id"]])
    desk.confirmed(org.rep, desk.books.add_customer(org.rep), [{"sku": "P1", "quantity": 5}])  # another customer

    answer = desk.rpc.list_open_orders(actor=org.rep, customer_id=org.customer, limit=1)
    expected_total = Decimal(first["total"]) + Decimal(draft["total"])
    assert (answer["count"], answer["amount"]) == (2, str(expected_total))
    [newest] = answer["items"]
    assert newest["id"] == draft["id"] and "lines" not in newest and newest["status"] == "draft"
    assert {o["id"] for o in desk.rpc.list_open_orders(actor=org.manager, customer_id=org.customer)["items"]} == \
        {first["id"], draft["id"]}
    # a rep who does not own the customer sees none of its orders
    assert desk.rpc.list_open_orders(actor=org.other_rep, customer_id=org.customer) == \
        {"count": 0, "amount": "0.00", "items": []}
    for bad in (0, 51, "5"):
        with pytest.raises(ValidationFailed) as info:
            desk.rpc.list_open_orders(actor=org.rep, customer_id=org.customer, limit=bad)
        assert "limit" in info.value.errors


def test_the_timeline_part_gives_the_sagas_returns_and_invoices_of_an_order_its_owner_may_see(desk):
    org = desk.org()
    order = desk.confirmed(org.rep, org.customer, [{"sku": "P1", "quantity": 3}])
    issued = desk.issue(order)
    invoice = desk.invoice(order, issued)
    ret = desk.rpc.request_return(request_id=rid(), actor=org.rep, delivery_id=issued["delivery_id"],
                                  lines=[{"sku": "P1", "quantity": 1}], reason="scratched")
    desk.rpc.approve_return(request_id=rid(), actor=org.product_manager, return_id=ret["id"])

    timeline = desk.rpc.get_order_timeline(actor=org.rep, order_id=order["id"])
    assert timeline["order"]["id"] == order["id"] and timeline["order"]["first_shipped_at"] == issued["issued_at"]
    assert timeline["quote"] is None and timeline["contract"] is None
    [saga] = timeline["sagas"]
    assert (saga["kind"], saga["state"], saga["stock_status"], saga["credit_status"]) == \
        ("confirm", "done", "reserved", "reserved")
    [inv] = timeline["invoices"]
    assert (inv["invoice_id"], inv["amount"], inv["issued_at"]) == (invoice["invoice_id"], invoice["total"],
                                                                    invoice["issued_at"])
    [returned] = timeline["returns"]
    assert (returned["id"], returned["status"]) == (ret["id"], "approved")
    assert returned["approvals"][0]["decided_by"] == org.product_manager["staff_id"]
    with pytest.raises(NotFound):
        desk.rpc.get_order_timeline(actor=org.other_rep, order_id=order["id"])
    with pytest.raises(NotFound):
        desk.rpc.get_order_timeline(actor=org.rep, order_id=str(uuid.uuid4()))


def _percentile(values, q):
    """percentile_cont: linear interpolation between the closest ranks."""
    ordered = sorted(values)
    position = (len(ordered) - 1) * q
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def _two_places(value):
    return str(Decimal(str(value)).quantize(Decimal("0.01"), ROUND_HALF_UP))


def test_the_osb_cycle_percentiles_per_step_are_computed_in_sql(desk):
    org = desk.org()
    today = datetime.now(workdays.TZ).date()
    start = datetime.now(timezone.utc) - timedelta(days=40)
    # (days to ship, days to invoice, days to cash) per order; None: the step is not done yet
    plans = {org.rep["staff_id"]: [(1, 2, 10), (3, 1, 20), (2, 4, None), (5, None, None)],
             org.other_rep["staff_id"]: [(0.5, 0.25, 30)]}
    other_customer = desk.books.add_customer(org.other_rep)
    for owner, spans in plans.items():
        actor = org.rep if owner == org.rep["staff_id"] else org.other_rep
        customer = org.customer if owner == org.rep["staff_id"] else other_customer
        for ship, invoice, cash in spans:
            order = desk.confirmed(actor, customer, [{"sku": "P1", "quantity": 1}])
            shipped = start + timedelta(days=ship)
            invoiced = shipped + timedelta(days=invoice) if invoice is not None else None
            paid = invoiced + timedelta(days=cash) if cash is not None else None
            desk.one("UPDATE orders SET created_at = %s, shipped_at = %s, invoiced_at = %s, paid_at = %s"
                     " WHERE id = %s RETURNING id", start, shipped, invoiced, paid, order["id"])
    desk.order(org.rep, org.customer, [{"sku": "P1", "quantity": 1}])  # a draft is not in the cohort

    report = desk.rpc.report_osb_cycle_stats(actor=org.director, period_start=str(today),
                                             period_end=str(today + timedelta(days=1)), group_by="rep")
    assert report["steps"] == ["order_to_ship", "ship_to_invoice", "invoice_to_cash", "order_to_cash"]
    groups = {g["key"]: g for g in report["groups"]}
    mine = groups[org.rep["staff_id"]]
    assert mine["orders"] == 4
    spans = plans[org.rep["staff_id"]]
    expected = {"order_to_ship": [s for s, _, _ in spans],
                "ship_to_invoice": [i for _, i, _ in spans if i is not None],
                "invoice_to_cash": [c for _, _, c in spans if c is not None],
                "order_to_cash": [s + i + c for s, i, c in spans if c is not None]}
    for step, values in expected.items():
        figures = mine["steps"][step]
        assert figures == {"count": len(values), "median_days": _two_places(statistics.median(values)),
                           "p90_days": _two_places(_percentile(values, 0.9))}, step
    everything = [s for spans in plans.values() for s, _, _ in spans]
    assert report["totals"]["orders"] == 5
    assert report["totals"]["steps"]["order_to_ship"]["median_days"] == _two_places(statistics.median(everything))

    # a rep sees their own orders only; no grouping gives the total alone; nothing confirmed: no figures
    own = desk.rpc.report_osb_cycle_stats(actor=org.rep, period_start=str(today),
                                          period_end=str(today + timedelta(days=1)))
    assert own["groups"] == [] and own["totals"]["orders"] == 4
    empty = desk.rpc.report_osb_cycle_stats(actor=org.director, period_start=str(today - timedelta(days=9)),
                                            period_end=str(today - timedelta(days=8)), group_by="team")
    assert empty["groups"] == [] and empty["totals"]["steps"]["order_to_cash"] == \
        {"count": 0, "median_days": None, "p90_days": None}
    with pytest.raises(ValidationFailed) as info:
        desk.rpc.report_osb_cycle_stats(actor=org.director, period_start=str(today),
                                        period_end=str(today + timedelta(days=1)), group_by="product")
    assert "group_by" in info.value.errors
