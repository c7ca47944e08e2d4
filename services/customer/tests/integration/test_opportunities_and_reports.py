"""Opportunities (FR-37–FR-39): identified → qualified → proposal → negotiation → won (linking the
order) | lost (with a reason); and the aggregates the gateway's reports join (visits against the
standard, new customers, the pipeline weighted by probability)."""
import uuid
from datetime import timedelta
from decimal import Decimal

import pytest

from shared import workdays
from shared.errors import Conflict, NotFound, ValidationFailed


def opportunity(crm, actor, customer, **over):
    body = {"customer_id": customer["id"], "title": "CNC retrofit line 2", "expected_amount": "250000.00",
            "probability": 20, "expected_close": (crm.today() + timedelta(days=60)).isoformat(),
            "source": "visit"}
    body.update(over)
    return crm.rpc.create_opportunity(request_id=crm.rid(), actor=actor, opportunity=body)


def move(crm, actor, opp, **changes):
    return crm.rpc.update_opportunity(request_id=crm.rid(), actor=actor, opportunity_id=opp["id"], changes=changes)


def test_fr37_fr38_fr39_an_opportunity_is_scored_followed_up_and_won_with_its_order(crm):
    manager, (rep,) = crm.team(reps=1)
    customer = crm.customer(rep)
    opp = opportunity(crm, rep, customer)
    assert (opp["stage"], opp["owner_id"], opp["weighted_amount"]) == ("identified", rep["staff_id"], "50000.00")
    with pytest.raises(ValidationFailed) as info:  # FR-38: scored before it is qualified
        move(crm, rep, opp, stage="qualified")
    assert "priority" in info.value.errors
    opp = move(crm, rep, opp, stage="qualified", priority="high", probability=40,
               feasibility="budget approved for Q1", follow_up_plan="weekly call with purchasing")  # FR-39
    with pytest.raises(Conflict) as info:
        move(crm, rep, opp, stage="negotiation")  # no skipping the proposal
    assert info.value.code == "INVALID_STATE"
    opp = move(crm, rep, opp, stage="proposal")
    opp = move(crm, rep, opp, stage="negotiation", probability=70)
    order_id = str(uuid.uuid4())
    won = crm.rpc.close_opportunity(request_id=crm.rid(), actor=rep, opportunity_id=opp["id"], outcome="won",
                                    order_id=order_id)
    assert (won["stage"], won["order_id"], won["probability"]) == ("won", order_id, 100)
    [event] = crm.outbox("opportunity.won")
    assert (event["data"]["order_id"], event["data"]["owner_id"], event["data"]["expected_amount"]) == \
        (order_id, rep["staff_id"], "250000.00")
    with pytest.raises(Conflict):  # closed is final
        move(crm, rep, won, probability=10)


def test_fr39_a_lost_opportunity_without_a_reason_is_refused(crm):
    rep = crm.staff()
    opp = opportunity(crm, rep, crm.customer(rep))
    with pytest.raises(ValidationFailed) as info:
        crm.rpc.close_opportunity(request_id=crm.rid(), actor=rep, opportunity_id=opp["id"], outcome="lost")
    assert "reason" in info.value.errors
    with pytest.raises(ValidationFailed) as info:  # won needs its order
        crm.rpc.close_opportunity(request_id=crm.rid(), actor=rep, opportunity_id=opp["id"], outcome="won")
    assert "order_id" in info.value.errors
    assert crm.rpc.get_opportunity(actor=rep, opportunity_id=opp["id"])["stage"] == "identified"
    assert crm.outbox("opportunity.lost") == []
    lost = crm.rpc.close_opportunity(request_id=crm.rid(), actor=rep, opportunity_id=opp["id"], outcome="lost",
                                     reason="competitor 12% cheaper")
    assert (lost["stage"], lost["reason"], lost["probability"]) == ("lost", "competitor 12% cheaper", 0)
    [event] = crm.outbox("opportunity.lost")
    assert event["data"]["reason"] == "competitor 12% cheaper"


def test_fr37_opportunities_are_validated_and_seen_only_within_scope(crm):
    manager, (rep, teammate) = crm.team()
    stranger = crm.staff(team="West-1")
    customer = crm.customer(rep)
    for over, field in (({"probability": 120}, "probability"), ({"expected_amount": "-1.00"}, "expected_amount"),
                        ({"expected_amount": "12.345"}, "expected_amount"), ({"source": "dream"}, "source"),
                        ({"title": ""}, "title")):
        with pytest.raises(ValidationFailed) as info:
            opportunity(crm, rep, customer, **over)
        assert field in info.value.errors
    with pytest.raises(NotFound):  # on a customer the actor cannot see
        opportunity(crm, stranger, customer)
    opp = opportunity(crm, rep, customer)
    assert [o["id"] for o in crm.rpc.list_opportunities(actor=manager, filters={"open": True})["items"]] == [opp["id"]]
    assert crm.rpc.list_opportunities(actor=teammate)["items"] == []
    for actor in (teammate, stranger):
        with pytest.raises(NotFound):
            crm.rpc.get_opportunity(actor=actor, opportunity_id=opp["id"])
    with pytest.raises(ValidationFailed):
        move(crm, rep, opp, stage="won")  # closing is its own command


def test_report_activity_counts_visits_against_the_standard_and_new_customers(crm):
    manager, (busy, idle) = crm.team("East-1", region="East")
    _, (north,) = crm.team("North-1", reps=1, region="North")
    director = crm.staff("sales_director")
    customers = [crm.customer(busy) for _ in range(2)] + [
        crm.customer(busy, collected_at=(crm.now() - timedelta(days=10)).isoformat()), crm.customer(north)]
    for n in range(5):
        crm.execute(
            "INSERT INTO visits (id, number, customer_id, rep_id, rep_team, planned_at, planned_return_at, purpose,"
            " state, visited_at, logged_at, late) VALUES (%s, %s, %s, %s, 'East-1', now(), now() + interval '1 hour',"
            " 'x', 'logged', now(), now(), %s)",
            (str(uuid.uuid4()), f"VIS-SEED-{n}", customers[0]["id"], busy["staff_id"], n < 2))
    crm.rpc.record_follow_up(request_id=crm.rid(), actor=busy, customer_id=customers[1]["id"], follow_up={
        "channel": "phone", "occurred_at": crm.now().isoformat(), "summary": "call"})
    today = crm.today()
    week = {"period_start": (today - timedelta(days=6)).isoformat(), "period_end": today.isoformat()}
    by_rep = {g["key"]: g for g in crm.rpc.report_activity(actor=director, group_by="rep", **week)["groups"]}
    assert (by_rep[busy["staff_id"]]["visits"], by_rep[busy["staff_id"]]["late_logs"],
            by_rep[busy["staff_id"]]["visit_standard"], by_rep[busy["staff_id"]]["visits_vs_standard"]) == \
        (5, 2, "10.00", "50.00")
    assert (by_rep[busy["staff_id"]]["new_customers"], by_rep[busy["staff_id"]]["follow_ups"]) == (3, 1)
    assert by_rep[busy["staff_id"]]["name"] == busy["username"].title()
    # FR-03: 10 new records per rep per working day of the period (Chinese calendar); FR-04: one late
    working_days = workdays.working_days_between(today - timedelta(days=7), today)
    busy_row = by_rep[busy["staff_id"]]
    assert (busy_row["collection_standard"], busy_row["late_entries"]) == (10 * working_days, 1)
    assert busy_row["collection_vs_standard"] == (
        str((Decimal(300) / (10 * working_days)).quantize(Decimal("0.01"))) if working_days else None)
    assert by_rep[idle["staff_id"]]["visits"] == 0 and by_rep[idle["staff_id"]]["visit_standard"] == "10.00"
    by_team = {g["key"]: g for g in crm.rpc.report_activity(actor=director, group_by="team", **week)["groups"]}
    assert (by_team["East-1"]["visits"], by_team["East-1"]["reps"], by_team["East-1"]["visit_standard"],
            by_team["East-1"]["new_customers"]) == (5, 2, "20.00", 3)
    assert by_team["North-1"]["new_customers"] == 1
    by_region = {g["key"]: g for g in crm.rpc.report_activity(actor=director, group_by="region", **week)["groups"]}
    assert by_region["East"]["visits"] == 5
    # row-level: the rep sees their own figures only
    assert [g["key"] for g in crm.rpc.report_activity(actor=idle, group_by="rep", **week)["groups"]] == \
        [idle["staff_id"]]
    for bad, field in (({"group_by": "product"}, "group_by"), ({"group_by": "planet"}, "group_by"),
                       ({"group_by": "rep", "period_end": "2020-01-01"}, "period_end")):
        with pytest.raises(ValidationFailed) as info:
            crm.rpc.report_activity(actor=director, **dict(week, **bad))
        assert field in info.value.errors


def test_report_pipeline_weighs_open_opportunities_by_probability(crm):
    manager, (rep, teammate) = crm.team("East-1")
    west, (stranger,) = crm.team("West-1", reps=1)
    a, b = crm.customer(rep), crm.customer(teammate)
    opportunity(crm, rep, a, expected_amount="100000.00", probability=30)
    opportunity(crm, rep, a, expected_amount="50000.00", probability=50)
    opportunity(crm, teammate, b, expected_amount="10000.00", probability=90)
    lost = opportunity(crm, rep, a, expected_amount="999999.00", probability=90)
    crm.rpc.close_opportunity(request_id=crm.rid(), actor=rep, opportunity_id=lost["id"], outcome="lost",
                              reason="budget cut")
    opportunity(crm, stranger, crm.customer(stranger), expected_amount="1.00", probability=100)
    report = crm.rpc.report_pipeline(actor=manager, group_by="rep")
    groups = {g["key"]: g for g in report["groups"]}
    assert set(groups) == {rep["staff_id"], teammate["staff_id"]}  # the manager's team only, open ones only
    assert (groups[rep["staff_id"]]["open_count"], groups[rep["staff_id"]]["open_amount"],
            groups[rep["staff_id"]]["weighted_amount"]) == (2, "150000.00", "55000.00")
    assert groups[rep["staff_id"]]["stages"]["identified"]["count"] == 2
    [team] = crm.rpc.report_pipeline(actor=manager, group_by="team")["groups"]
    assert (team["key"], team["weighted_amount"]) == ("East-1", "64000.00")
    far = (crm.today() + timedelta(days=365)).isoformat()
    assert crm.rpc.report_pipeline(actor=manager, group_by="team", period_start=far, period_end=far)["groups"] == []
    with pytest.raises(ValidationFailed):
        crm.rpc.report_pipeline(actor=manager, group_by="product")
