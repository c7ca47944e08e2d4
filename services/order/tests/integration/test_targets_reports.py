"""Sales plans and targets (FR-112–FR-118) and the order service's report aggregates."""
import uuid
from datetime import datetime, timedelta

import pytest

from shared import workdays
from shared.errors import BusinessRuleViolation, Conflict, Forbidden, ValidationFailed


def rid():
    return str(uuid.uuid4())


def target(desk, actor, period, scope, scope_id, amount, parent=None):
    return desk.rpc.set_target(request_id=rid(), actor=actor, target={
        "period": period, "scope": scope, "scope_id": scope_id, "amount": amount,
        "parent_id": parent["id"] if parent else None})


def test_fr112_fr118_a_plan_broken_down_must_add_up_before_it_is_published(desk):
    org = desk.org()
    region = target(desk, org.director, "2026", "region", "East", "1000000.00")
    team = target(desk, org.director, "2026-Q1", "team", "east-1", "300000.00", parent=region)
    rest = target(desk, org.director, "2026-Q2", "team", "east-1", "600000.00", parent=region)
    with pytest.raises(BusinessRuleViolation) as info:
        desk.rpc.publish_target(request_id=rid(), actor=org.director, target_id=region["id"])
    assert info.value.code == "TARGET_BREAKDOWN_MISMATCH"
    [mismatch] = info.value.extra["mismatches"]
    assert (mismatch["target_id"], mismatch["children_total"], mismatch["difference"]) == (
        region["id"], "900000.00", "100000.00")
    assert "difference 100000.00" in info.value.detail
    target(desk, org.director, "2026-Q2", "team", "east-1", "700000.00", parent=region)  # a draft is corrected
    published = desk.rpc.publish_target(request_id=rid(), actor=org.director, target_id=region["id"])
    assert published["status"] == "published"
    listed = desk.rpc.list_targets(actor=org.director, filters={"status": "published"})["items"]
    assert {t["id"] for t in listed} == {region["id"], team["id"], rest["id"]}
    assert next(t for t in listed if t["id"] == region["id"])["children_total"] == "1000000.00"
    assert len(desk.outbox("target.published")) == 3
    with pytest.raises(Conflict) as info:  # published: no longer changed by setting it again
        target(desk, org.director, "2026", "region", "East", "1.00")
    assert info.value.code == "TARGET_EXISTS"


def test_fr118_a_manager_breaks_the_team_target_down_to_reps_which_must_sum_to_it(desk):
    org = desk.org()
    team = target(desk, org.director, "2026-Q1", "team", "east-1", "300000.00")
    desk.rpc.publish_target(request_id=rid(), actor=org.director, target_id=team["id"])
    a = target(desk, org.manager, "2026-01", "rep", org.rep["staff_id"], "100000.00", parent=team)
    with pytest.raises(BusinessRuleViolation) as info:  # a's siblings do not cover the team's target yet
        desk.rpc.publish_target(request_id=rid(), actor=org.manager, target_id=a["id"])
    assert info.value.extra["mismatches"][0]["difference"] == "200000.00"
    target(desk, org.manager, "2026-Q1", "rep", org.other_rep["staff_id"], "200000.00", parent=team)
    assert desk.rpc.publish_target(request_id=rid(), actor=org.manager, target_id=a["id"])["status"] == "published"
    # FR-115: a rep sees their own targets, a manager their team's
    assert [t["id"] for t in desk.rpc.list_targets(actor=org.rep)["items"]] == [a["id"]]
    assert len(desk.rpc.list_targets(actor=org.manager)["items"]) == 3


def test_fr118_refusal_a_manager_plans_only_their_team_and_periods_nest(desk):
    org = desk.org()
    with pytest.raises(Forbidden):
        target(desk, org.manager, "2026", "team", "west-1", "1.00")
    with pytest.raises(Forbidden):
        target(desk, org.manager, "2026", "region", "East", "1.00")
    with pytest.raises(Forbidden):
        target(desk, org.rep, "2026", "rep", org.rep["staff_id"], "1.00")
    year = target(desk, org.director, "2026-Q1", "team", "east-1", "10.00")
    with pytest.raises(ValidationFailed) as info:
        target(desk, org.director, "2026-05", "team", "east-1", "10.00", parent=year)
    assert "period" in info.value.errors
    for bad, field in (({"period": "2026-13"}, "period"), ({"scope": "planet"}, "scope"),
                       ({"amount": "-1"}, "amount"), ({"scope": "rep", "scope_id": "bob"}, "scope_id")):
        body = dict({"period": "2026", "scope": "team", "scope_id": "east-1", "amount": "1.00"}, **bad)
        with pytest.raises(ValidationFailed) as info:
            desk.rpc.set_target(request_id=rid(), actor=org.director, target=body)
        assert field in info.value.errors, (bad, info.value.errors)


def test_report_orders_gives_ordered_amounts_and_targets_per_group(desk):
    org = desk.org()
    today = datetime.now(workdays.TZ).date()  # business dates are Asia/Shanghai
    desk.confirmed(org.rep, org.customer, [{"sku": "P1", "quantity": 2}])
    other_customer = desk.books.add_customer(org.other_rep)
    desk.confirmed(org.other_rep, other_customer, [{"sku": "P2", "quantity": 1}])
    desk.order(org.rep, org.customer, [{"sku": "P1", "quantity": 9}])  # a draft is not ordered
    period = today.strftime("%Y-%m")
    rep_target = target(desk, org.director, period, "rep", org.rep["staff_id"], "500.00")
    desk.rpc.publish_target(request_id=rid(), actor=org.director, target_id=rep_target["id"])
    first, last = today.replace(day=1), (today.replace(day=28) + timedelta(days=4)).replace(day=1)
    report = desk.rpc.report_orders(actor=org.director, period_start=str(first), period_end=str(last), group_by="rep")
    groups = {g["key"]: g for g in report["groups"]}
    assert groups[org.rep["staff_id"]]["ordered"] == "200.00" and groups[org.rep["staff_id"]]["target"] == "500.00"
    assert groups[org.other_rep["staff_id"]]["ordered"] == "250.00"
    by_product = desk.rpc.report_orders(actor=org.director, period_start=str(first), period_end=str(last),
                                        group_by="product")
    assert {g["key"]: g["ordered"] for g in by_product["groups"]} == {"P1": "200.00", "P2": "250.00"}
    mine = desk.rpc.report_orders(actor=org.rep, period_start=str(first), period_end=str(last), group_by="rep")
    assert [g["key"] for g in mine["groups"]] == [org.rep["staff_id"]]  # row-level: a rep sees their own
    with pytest.raises(ValidationFailed) as info:
        desk.rpc.report_orders(actor=org.director, period_start=str(last), period_end=str(first), group_by="rep")
    assert "period_end" in info.value.errors


def test_report_osb_cycle_gives_the_raw_timestamps_of_each_order(desk):
    org = desk.org()
    order = desk.confirmed(org.rep, org.customer, [{"sku": "P1", "quantity": 2}])
    issued = desk.issue(order)
    invoice = desk.invoice(order, issued)
    settled = desk.settle(invoice["invoice_id"], [order["id"]])
    today = datetime.now(workdays.TZ).date()  # business dates are Asia/Shanghai
    report = desk.rpc.report_osb_cycle(actor=org.director, period_start=str(today),
                                       period_end=str(today + timedelta(days=1)), group_by="team")
    [group] = report["groups"]
    [row] = group["orders"]
    assert group["key"] == "east-1" and row["order_id"] == order["id"]
    assert row["confirmed_at"] and row["first_shipped_at"] == issued["issued_at"]
    assert (row["shipped_at"], row["invoiced_at"], row["paid_at"]) == (
        issued["issued_at"], invoice["issued_at"], settled["settled_at"])
