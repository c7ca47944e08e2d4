"""The after-sales rules without any I/O (FR-97, FR-101–FR-108)."""
import uuid
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import given, settings, strategies as st

from aftersales import domain
from aftersales.exceptions import (
    ActionNotAllowed, DeliveryRequired, EngineerNotAssigned, InvalidState, InWarranty, NotARepair,
    ProductNotDelivered, QuantityExceedsDelivered, QuoteRequired, RepairNotFinished,
)
from shared import workdays

ENGINEER = {"staff_id": str(uuid.uuid4()), "role": "service_engineer"}
OTHER_ENGINEER = {"staff_id": str(uuid.uuid4()), "role": "service_engineer"}


def shanghai(*args):
    return datetime(*args, tzinfo=workdays.TZ)


def request(**over):
    row = {"id": uuid.uuid4(), "number": "SR-2026-000001", "type": "repair", "status": "in_progress",
           "engineer_id": ENGINEER["staff_id"], "customer_id": uuid.uuid4(), "sku": "PUMP-1",
           "delivery_id": uuid.uuid4(), "escalated_at": None, "due_at": shanghai(2026, 11, 24, 12)}
    row.update(over)
    return row


# -- the request's life ------------------------------------------------------------------------
@pytest.mark.parametrize("step,status,target", [
    ("confirm", "open", "confirmed"),
    ("assign", "confirmed", "assigned"),
    ("assign", "assigned", "assigned"),          # re-assignment
    ("assign", "in_progress", "in_progress"),    # re-assignment keeps the work going
    ("start", "assigned", "in_progress"),
    ("repair_step", "assigned", "in_progress"),
    ("resolve", "assigned", "resolved"),
    ("resolve", "in_progress", "resolved"),
    ("feedback", "resolved", "closed"),
])
def test_fr101_the_request_moves_only_along_its_state_machine(step, status, target):
    assert domain.next_status(step, status) == target


@pytest.mark.parametrize("step,status", [
    ("assign", "open"),          # FR-102: the sales manager confirms first
    ("confirm", "confirmed"),
    ("resolve", "confirmed"),    # nobody assigned yet
    ("resolve", "resolved"),     # only once
    ("feedback", "in_progress"),  # FR-107: feedback before resolution
    ("feedback", "closed"),
    ("start", "in_progress"),
    ("repair_step", "resolved"),
])
def test_fr102_fr107_steps_out_of_order_are_refused_naming_the_state(step, status):
    with pytest.raises(InvalidState) as refused:
        domain.next_status(step, status)
    assert refused.value.code == "INVALID_STATE"
    assert refused.value.extra["current_status"] == status
    assert status in refused.value.detail


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(["confirm", "assign", "start", "repair_step", "resolve", "feedback"]), max_size=12))
def test_fr106_no_sequence_of_steps_closes_a_request_that_was_never_confirmed_assigned_and_resolved(steps):
    status, seen = "open", ["open"]
    for step in steps:
        try:
            status = domain.next_status(step, status)
        except InvalidState:
            continue
        seen.append(status)
    if status == "closed":
        assert seen.index("confirmed") < seen.index("assigned") < seen.index("resolved") < seen.index("closed")
    assert seen.count("resolved") <= 1 and seen.count("closed") <= 1


def test_fr102_only_a_sales_manager_confirms():
    domain.require_role({"staff_id": "x", "role": "sales_manager"}, domain.CONFIRMERS, "confirming")
    for role in ("sales_rep", "service_engineer", "sales_director", "admin"):
        with pytest.raises(ActionNotAllowed) as refused:
            domain.require_role({"staff_id": "x", "role": role}, domain.CONFIRMERS, "confirming")
        assert refused.value.status == 403 and role in refused.value.detail


def test_fr103_only_the_assigned_engineer_works_the_request():
    domain.require_assigned_engineer(ENGINEER, request(), "resolve it")
    for actor, row in [(OTHER_ENGINEER, request()),
                       ({"staff_id": ENGINEER["staff_id"], "role": "sales_manager"}, request()),
                       (ENGINEER, request(engineer_id=None))]:
        with pytest.raises(EngineerNotAssigned) as refused:
            domain.require_assigned_engineer(actor, row, "resolve it")
        assert refused.value.code == "ENGINEER_NOT_ASSIGNED"


# -- delivered products ------------------------------------------------------------------------
def test_fr101_a_product_never_delivered_to_the_customer_is_refused():
    with pytest.raises(ProductNotDelivered) as refused:
        domain.check_delivered("PUMP-1", None, [])
    assert "sku" in refused.value.errors


def test_fr101_a_delivery_that_did_not_bring_the_product_is_refused():
    delivery, other = uuid.uuid4(), uuid.uuid4()
    lines = [{"delivery_id": delivery, "delivery_number": "DN-1", "quantity": 2, "issued_at": shanghai(2026, 1, 5)},
             {"delivery_id": delivery, "delivery_number": "DN-1", "quantity": 3, "issued_at": shanghai(2026, 1, 5, 1)}]
    with pytest.raises(ProductNotDelivered) as refused:
        domain.check_delivered("PUMP-1", other, lines)
    assert "delivery_id" in refused.value.errors
    found = domain.check_delivered("PUMP-1", delivery, lines)
    assert found == {"delivery_id": delivery, "delivery_number": "DN-1", "delivered_at": shanghai(2026, 1, 5),
                     "quantity": 5}
    assert domain.check_delivered("PUMP-1", None, lines) is None  # a consultation need not name one


# -- warranty (FR-97) --------------------------------------------------------------------------
@pytest.mark.parametrize("day,months,expected", [
    (date(2026, 1, 31), 1, date(2026, 2, 28)),
    (date(2024, 1, 31), 1, date(2024, 2, 29)),
    (date(2025, 11, 15), 3, date(2026, 2, 15)),
    (date(2025, 12, 1), 12, date(2026, 12, 1)),
    (date(2025, 12, 1), 0, date(2025, 12, 1)),
])
def test_add_months_clamps_to_the_end_of_the_month(day, months, expected):
    assert domain.add_months(day, months) == expected


def test_fr97_warranty_runs_from_the_delivery_date_for_the_products_months():
    delivered = date(2025, 11, 25)
    assert domain.warranty_until(delivered, 12) == date(2026, 11, 24)
    assert domain.in_warranty(date(2026, 11, 24), delivered, 12)
    assert not domain.in_warranty(date(2026, 11, 25), delivered, 12)
    assert not domain.in_warranty(date(2025, 11, 26), delivered, 0)  # no warranty at all
    assert not domain.in_warranty(date(2026, 1, 1), None, 12)  # nothing delivered: nothing covered


# -- SLA (FR-104) ------------------------------------------------------------------------------
def test_fr104_due_at_counts_working_hours_on_the_chinese_calendar_only():
    table = domain.DEFAULT_SLA_HOURS
    # an urgent complaint (4 working hours) opened on Friday at 17:00 is due on Monday at 12:00
    friday = shanghai(2026, 11, 20, 17)
    due = domain.due_at(friday, "complaint", "urgent", table, workdays.add_working_hours)
    assert due.astimezone(workdays.TZ) == shanghai(2026, 11, 23, 12)
    # on the eve of National Day 2026 a day's SLA (9 h) ends after the holiday week
    due = domain.due_at(shanghai(2026, 9, 30, 17), "consultation", "normal", table, workdays.add_working_hours)
    assert due.astimezone(workdays.TZ) == shanghai(2026, 10, 8, 17)  # 1 h on 30 Sep, 8 h on 8 Oct
    assert workdays.working_hours_between(shanghai(2026, 9, 30, 17), due) == pytest.approx(9)


def test_fr104_overdue_only_while_unresolved_and_escalation_only_once():
    due = shanghai(2026, 11, 24, 12)
    later = due + timedelta(minutes=1)
    assert domain.is_overdue("in_progress", due, later) and not domain.is_overdue("in_progress", due, due)
    assert not domain.is_overdue("resolved", due, later) and not domain.is_overdue("closed", due, later)
    assert domain.needs_escalation(request(due_at=due), later)
    assert not domain.needs_escalation(request(due_at=due, escalated_at=later), later)
    assert not domain.needs_escalation(request(due_at=due, status="resolved"), later)
    assert domain.sla_met(due, due) and not domain.sla_met(later, due)


def test_the_sla_table_must_cover_every_type_and_priority():
    assert domain.check_sla_table(domain.DEFAULT_SLA_HOURS) == domain.DEFAULT_SLA_HOURS
    broken = {t: dict(row) for t, row in domain.DEFAULT_SLA_HOURS.items()}
    del broken["repair"]["urgent"]
    with pytest.raises(ValueError, match="repair.urgent"):
        domain.check_sla_table(broken)
    with pytest.raises(ValueError, match="training"):
        domain.check_sla_table({t: row for t, row in domain.DEFAULT_SLA_HOURS.items() if t != "training"})
    with pytest.raises(ValueError, match="complaint.low"):
        domain.check_sla_table(dict(domain.DEFAULT_SLA_HOURS, complaint=dict(
            domain.DEFAULT_SLA_HOURS["complaint"], low=0)))
    with pytest.raises(ValueError, match="unknown"):
        domain.check_sla_table(dict(domain.DEFAULT_SLA_HOURS, warranty={p: 1 for p in domain.PRIORITIES}))


def test_the_sla_table_in_config_yaml_is_the_documented_default():
    from nameko.cli.utils.config import load_config

    path = Path(__file__).resolve().parents[2] / "config.yaml"
    with path.open() as config_file:
        table = load_config(config_file)["AFTERSALES"]["SLA_HOURS"]
    assert domain.check_sla_table(table) == domain.DEFAULT_SLA_HOURS


# -- repairs (FR-97) ---------------------------------------------------------------------------
def walk(steps, under_warranty):
    status = None
    for step in steps:
        status = domain.next_repair_status(step, status, under_warranty)
    return status


def test_fr97_a_repair_under_warranty_goes_from_diagnosis_straight_to_repairing():
    assert walk(["receive", "diagnose", "start", "complete", "return"], True) == "returned"
    with pytest.raises(InWarranty):
        walk(["receive", "diagnose", "quote"], True)


def test_fr97_a_repair_out_of_warranty_is_quoted_and_approved_before_it_starts():
    assert walk(["receive", "diagnose", "quote", "approve", "start", "complete", "return"], False) == "returned"
    with pytest.raises(QuoteRequired):
        walk(["receive", "diagnose", "start"], False)
    assert walk(["receive", "diagnose", "quote", "decline", "return"], False) == "returned"


@pytest.mark.parametrize("steps", [
    ["diagnose"],                      # not received yet
    ["receive", "receive"],
    ["receive", "complete"],
    ["receive", "diagnose", "quote", "approve", "return"],  # approved, never repaired
    ["receive", "diagnose", "quote", "decline", "start"],
])
def test_fr97_repair_steps_out_of_order_are_refused(steps):
    with pytest.raises(InvalidState):
        walk(steps, False)


def test_fr97_the_customers_answer_to_a_quote_may_be_relayed_by_the_sales_side():
    row = request()
    rep = {"staff_id": str(uuid.uuid4()), "role": "sales_rep"}
    domain.check_repair_actor("approve", rep, row)
    domain.check_repair_actor("decline", ENGINEER, row)
    with pytest.raises(EngineerNotAssigned):
        domain.check_repair_actor("diagnose", rep, row)
    with pytest.raises(EngineerNotAssigned):
        domain.check_repair_actor("start", OTHER_ENGINEER, row)
    with pytest.raises(NotARepair):
        domain.require_repair(request(type="complaint"))


# -- resolution --------------------------------------------------------------------------------
def test_resolving_as_repaired_needs_the_repaired_unit_back_with_the_customer():
    returned = {"status": "returned", "repaired": True}
    domain.check_resolution(request(), "repair", None, returned, None)
    for repair in (None, {"status": "repaired", "repaired": True}, {"status": "returned", "repaired": False}):
        with pytest.raises(RepairNotFinished):
            domain.check_resolution(request(), "repair", None, repair, None)
    with pytest.raises(NotARepair):
        domain.check_resolution(request(type="complaint"), "repair", None, returned, None)


def test_returns_and_replacements_need_a_delivery_and_no_more_than_it_brought():
    domain.check_resolution(request(type="return"), "return", 2, None, 2)
    with pytest.raises(QuantityExceedsDelivered) as refused:
        domain.check_resolution(request(type="return"), "replacement", 3, None, 2)
    assert "quantity" in refused.value.errors
    with pytest.raises(DeliveryRequired):
        domain.check_resolution(request(type="complaint", delivery_id=None), "return", 1, None, None)
    domain.check_resolution(request(type="complaint", delivery_id=None), "advice", None, None, None)


def test_the_action_reaches_the_order_service_with_the_same_request_id_every_time():
    row, actor = request(type="return"), {"staff_id": "s", "role": "admin"}
    first = domain.action_call("return", row, 2, "pump seal leaks", actor)
    again = domain.action_call("return", row, 2, "pump seal leaks", actor)
    assert first == again
    assert first == {"request_id": str(domain.action_request_id(row["id"], "return")), "actor": actor,
                     "delivery_id": str(row["delivery_id"]), "lines": [{"sku": "PUMP-1", "quantity": 2}],
                     "reason": "after-sales SR-2026-000001 (return): pump seal leaks",
                     "service_request_id": str(row["id"])}
    replacement = domain.action_call("replacement", row, 1, "dead on arrival", actor)
    assert set(replacement) == {"request_id", "actor", "customer_id", "sku", "quantity", "delivery_id",
                                "service_request_id"}
    assert replacement["request_id"] != first["request_id"]
    assert domain.action_request_id(uuid.uuid4(), "return") != domain.action_request_id(uuid.uuid4(), "return")


def test_retries_back_off_up_to_a_ceiling():
    delays = [domain.retry_delay(n, 10, 300).total_seconds() for n in range(1, 8)]
    assert delays == [10, 20, 40, 80, 160, 300, 300]


# -- quality (FR-107, FR-108) ------------------------------------------------------------------
def test_fr108_first_time_fix_and_repeats_within_the_window():
    assert domain.first_time_fix(1) and not domain.first_time_fix(2)
    opened = datetime(2026, 11, 24, tzinfo=timezone.utc)
    old, recent, unresolved = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    previous = [(old, opened - timedelta(days=31)), (recent, opened - timedelta(days=3)), (unresolved, None)]
    assert domain.repeat_of(previous, opened, 30) == recent
    assert domain.repeat_of(previous[:1], opened, 30) is None


def test_reports_ratios_averages_and_business_periods():
    assert domain.ratio(2, 3) == "0.6667" and domain.ratio(0, 0) is None
    assert domain.average(9, 2) == "4.50" and domain.average(0, 0) is None
    start, end = domain.period_bounds(date(2026, 11, 1), date(2026, 11, 30), workdays.TZ)
    assert start == shanghai(2026, 11, 1) and end == shanghai(2026, 12, 1)
    with pytest.raises(ValueError):
        domain.period_bounds(date(2026, 11, 2), date(2026, 11, 1), workdays.TZ)
