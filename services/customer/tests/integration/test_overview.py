"""get_customer_overview: the customer service's part of the gateway's customer 360° overview
(issue 8) — the customer, its open opportunities with their totals and its last logged visits, in
one call, as the caller may see them."""
from datetime import timedelta

import pytest

from shared.errors import NotFound, ValidationFailed


def logged_visit(crm, rep, manager, customer, summary):
    visit = crm.rpc.plan_visit(request_id=crm.rid(), actor=rep, visit={
        "customer_id": customer["id"], "planned_at": (crm.now() + timedelta(hours=1)).isoformat(),
        "purpose": "review the retrofit plan", "tracking_report": "quote sent, waiting on purchasing"})
    crm.rpc.approve_visit(request_id=crm.rid(), actor=manager, visit_id=visit["id"])
    return crm.rpc.log_visit(request_id=crm.rid(), actor=rep, visit_id=visit["id"],
                             log={"visited_at": crm.now().isoformat(), "summary": summary})


def opportunity(crm, rep, customer, amount, probability):
    return crm.rpc.create_opportunity(request_id=crm.rid(), actor=rep, opportunity={
        "customer_id": customer["id"], "title": f"line for {amount}", "expected_amount": amount,
        "probability": probability})


def test_the_overview_part_gives_the_customer_its_open_opportunities_and_last_visits(crm):
    manager, (rep, teammate) = crm.team()
    customer = crm.customer(rep)
    other = crm.customer(rep)
    opportunity(crm, rep, customer, "1000.00", 30)
    second = opportunity(crm, rep, customer, "333.33", 50)
    lost = opportunity(crm, rep, customer, "9999.00", 90)
    crm.rpc.close_opportunity(request_id=crm.rid(), actor=rep, opportunity_id=lost["id"], outcome="lost",
                              reason="budget cut")
    opportunity(crm, rep, other, "5000.00", 10)  # another customer's
    first_visit = logged_visit(crm, rep, manager, customer, "first meeting")
    last_visit = logged_visit(crm, rep, manager, customer, "second meeting")
    logged_visit(crm, rep, manager, other, "elsewhere")

    overview = crm.rpc.get_customer_overview(actor=rep, customer_id=customer["id"], visits=5, opportunities=1)
    assert overview["customer"]["id"] == customer["id"] and overview["customer"]["owner_id"] == rep["staff_id"]
    opportunities = overview["open_opportunities"]
    # 1000 × 30 % + 333.33 × 50 % (166.665 → 166.67 per opportunity, as the pipeline rounds)
    assert (opportunities["count"], opportunities["amount"], opportunities["weighted_amount"]) == \
        (2, "1333.33", "466.67")
    assert [o["id"] for o in opportunities["items"]] == [second["id"]]  # the newest one asked for
    assert [v["id"] for v in overview["last_visits"]] == [last_visit["id"], first_visit["id"]]

    manager_view = crm.rpc.get_customer_overview(actor=manager, customer_id=customer["id"])
    assert manager_view["open_opportunities"]["count"] == 2 and len(manager_view["last_visits"]) == 2


def test_the_overview_part_of_someone_elses_customer_is_not_found_and_counts_are_checked(crm):
    manager, (rep, teammate) = crm.team()
    customer = crm.customer(rep)
    with pytest.raises(NotFound):
        crm.rpc.get_customer_overview(actor=teammate, customer_id=customer["id"])
    stranger = crm.staff(team="West-1")
    with pytest.raises(NotFound):
        crm.rpc.get_customer_overview(actor=stranger, customer_id=customer["id"])
    for field, value in (("visits", 0), ("visits", 51), ("opportunities", "3")):
        with pytest.raises(ValidationFailed) as info:
            crm.rpc.get_customer_overview(actor=rep, customer_id=customer["id"], **{field: value})
        assert field in info.value.errors
    empty = crm.rpc.get_customer_overview(actor=rep, customer_id=customer["id"])
    assert empty["open_opportunities"] == {"count": 0, "amount": "0.00", "weighted_amount": "0.00", "items": []}
    assert empty["last_visits"] == []
