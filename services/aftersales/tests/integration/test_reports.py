"""FR-107, FR-108: satisfaction per rep, product and engineer, SLA compliance and first-time-fix
rate — `report_service(actor, period_start, period_end, group_by)` for the gateway's reports and
the rep's evaluation, under the caller's row-level scope."""
import uuid
from datetime import datetime, timedelta, timezone

import pytest

from shared import workdays
from shared.errors import ValidationFailed


def worked(service, org, actor, customer, sku, delivery, engineers, rating, late=False):
    """A request opened by `actor`, worked by `engineers` in turn, resolved by the last, rated."""
    sr = service.rpc.open_request(request_id=str(uuid.uuid4()), actor=actor, service_request={
        "customer_id": customer, "sku": sku, "delivery_id": delivery, "type": "replacement", "priority": "high",
        "description": "does not start"})
    manager = org.manager if actor is org.rep else org.other_manager
    service.rpc.confirm_request(request_id=str(uuid.uuid4()), actor=manager, service_request_id=sr["id"])
    for engineer in engineers:
        service.rpc.assign_request(request_id=str(uuid.uuid4()), actor=manager, service_request_id=sr["id"],
                                   engineer_id=engineer["staff_id"])
    if late:
        with service.db.cursor() as cur:
            cur.execute("UPDATE service_requests SET due_at = now() - interval '1 hour' WHERE id = %s", (sr["id"],))
    service.rpc.resolve_request(request_id=str(uuid.uuid4()), actor=engineers[-1], service_request_id=sr["id"],
                                resolution="swapped the controller board", action="advice")
    if rating:
        service.rpc.record_feedback(request_id=str(uuid.uuid4()), actor=actor, service_request_id=sr["id"],
                                    rating=rating)
    return sr


def today():
    return workdays.local_date(datetime.now(timezone.utc))


def report(service, actor, group_by, start=None, end=None):
    answer = service.rpc.report_service(actor=actor, period_start=(start or today()).isoformat(),
                                        period_end=(end or today()).isoformat(), group_by=group_by)
    return {group["key"]: group for group in answer["groups"]}


def figures(group, *names):
    return tuple(group[name] for name in names)


def test_fr107_fr108_satisfaction_sla_compliance_and_first_time_fix_per_rep_product_and_engineer(service, org):
    mine = service.deliver(org.customer, [("PUMP-100", 1), ("VALVE-7", 1)])
    theirs_customer = org.add_customer(org.other_rep)
    theirs = service.deliver(theirs_customer, [("PUMP-100", 1)])
    eng, eng2 = org.engineer, org.other_engineer
    worked(service, org, org.rep, org.customer, "PUMP-100", mine, [eng], rating=5)             # on time, 1st fix
    worked(service, org, org.rep, org.customer, "VALVE-7", mine, [eng, eng2], rating=3, late=True)  # reassigned, late
    worked(service, org, org.other_rep, theirs_customer, "PUMP-100", theirs, [eng], rating=4)
    # the same product on the same delivery comes back: the earlier fix was not a first-time fix
    repeat = service.rpc.open_request(request_id=str(uuid.uuid4()), actor=org.other_rep, service_request={
        "customer_id": theirs_customer, "sku": "PUMP-100", "delivery_id": theirs, "type": "repair",
        "priority": "urgent", "description": "same fault again"})
    with service.db.cursor() as cur:  # and it is still open past its due time
        cur.execute("UPDATE service_requests SET due_at = now() - interval '1 minute' WHERE id = %s", (repeat["id"],))

    names = ("opened", "resolved", "sla_compliance", "first_time_fix_rate", "feedback_count", "average_rating",
             "overdue_open")
    by_rep = report(service, org.director, "rep")
    assert set(by_rep) == {org.rep["staff_id"], org.other_rep["staff_id"]}
    assert figures(by_rep[org.rep["staff_id"]], *names) == (2, 2, "0.5000", "0.5000", 2, "4.00", 0)
    assert figures(by_rep[org.other_rep["staff_id"]], *names) == (2, 1, "1.0000", "0.0000", 1, "4.00", 1)

    by_engineer = report(service, org.director, "engineer")
    assert figures(by_engineer[eng["staff_id"]], "resolved", "average_rating", "first_time_fix_rate") == (
        2, "4.50", "0.5000")
    assert by_engineer[eng["staff_id"]]["label"] == org.world.staff[eng["staff_id"]]["display_name"]
    assert figures(by_engineer[eng2["staff_id"]], "resolved", "average_rating", "sla_compliance") == (
        1, "3.00", "0.0000")
    assert by_engineer[None]["opened"] == 1  # the repeat request nobody is assigned to yet

    by_product = report(service, org.director, "product")
    assert figures(by_product["PUMP-100"], "opened", "resolved", "average_rating") == (3, 2, "4.50")
    assert figures(by_product["VALVE-7"], "opened", "average_rating") == (1, "3.00")
    by_team = report(service, org.director, "team")
    assert set(by_team) == {"east-1", "west-2"}

    # the rep's evaluation shows the rep's own figures only; a manager's shows their team
    assert set(report(service, org.rep, "rep")) == {org.rep["staff_id"]}
    assert set(report(service, org.other_manager, "customer")) == {theirs_customer}
    # a period with nothing in it has no groups
    assert report(service, org.director, "rep", today() - timedelta(days=40), today() - timedelta(days=10)) == {}


@pytest.mark.parametrize("args,field", [
    ({"group_by": "colour"}, "group_by"),
    ({"period_start": "2026-13-01"}, "period_start"),
    ({"period_start": "2026-11-30", "period_end": "2026-11-01"}, "period_end"),
])
def test_report_input_is_checked_naming_the_field(service, org, args, field):
    call = dict({"period_start": "2026-11-01", "period_end": "2026-11-30", "group_by": "rep"}, **args)
    with pytest.raises(ValidationFailed) as refused:
        service.rpc.report_service(actor=org.director, **call)
    assert field in refused.value.errors
