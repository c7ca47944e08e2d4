"""FR-104: overdue requests escalate to the owning rep's sales manager, with time injected (`as_of`),
once, whatever the number of replicas running the job."""
import uuid
from datetime import datetime, timedelta

import pytest

from shared import workdays
from shared.access import SYSTEM_ACTOR
from shared.errors import NotFound
from shared.testing.contracts import assert_matches_contract


def overdue_request(service, org, customer=None, actor=None, priority="urgent"):
    customer = customer or org.customer
    delivery = service.deliver(customer, [("PUMP-100", 1)])
    opened = service.rpc.open_request(request_id=str(uuid.uuid4()), actor=actor or org.rep, service_request={
        "customer_id": customer, "sku": "PUMP-100", "delivery_id": delivery, "type": "repair",
        "priority": priority, "description": "leaking"})
    return opened, datetime.fromisoformat(opened["due_at"])


def test_fr104_an_overdue_request_escalates_once_to_the_owning_reps_sales_manager(service, org, world):
    opened, due = overdue_request(service, org)
    service.rpc.confirm_request(request_id=str(uuid.uuid4()), actor=org.manager, service_request_id=opened["id"])

    assert service.rpc.run_escalations(as_of=(due - timedelta(minutes=1)).isoformat())["escalated"] == []
    assert world.of("find_approver") == []
    as_of = workdays.add_working_hours(due, 2)  # two working hours past due
    run = service.rpc.run_escalations(as_of=as_of.isoformat())
    assert run["escalated"] == [opened["number"]] and run["deferred"] == 0
    assert world.of("find_approver") == [{"method": "find_approver", "staff_id": org.rep["staff_id"],
                                          "relation": "direct_manager"}]
    assert service.rpc.run_escalations(as_of=(as_of + timedelta(days=3)).isoformat())["escalated"] == []

    row = service.rpc.get_request(actor=org.manager, service_request_id=opened["id"])
    assert row["escalated"] is True and row["escalated_to"] == org.manager["staff_id"]
    assert datetime.fromisoformat(row["escalated_at"]) == as_of
    assert row["status"] == "confirmed"  # escalation marks the request; the work goes on
    step = row["history"][-1]
    assert (step["step"], step["actor_id"], step["actor_role"]) == ("escalated", SYSTEM_ACTOR["staff_id"], "admin")
    events = service.outbox("service_request.escalated")
    assert len(events) == 1
    assert_matches_contract("aftersales", events[0])
    assert events[0]["data"]["escalated_to"] == org.manager["staff_id"]
    assert events[0]["data"]["overdue_working_hours"] == 2
    # the manager finds it among the escalated requests of their team
    escalated = service.rpc.list_requests(actor=org.manager, filters={"escalated": True})["items"]
    assert [item["id"] for item in escalated] == [opened["id"]]
    assert service.rpc.list_requests(actor=org.manager, filters={"escalated": False})["items"] == []


def test_fr104_resolved_requests_do_not_escalate(service, org):
    opened, due = overdue_request(service, org, priority="low")
    service.rpc.confirm_request(request_id=str(uuid.uuid4()), actor=org.manager, service_request_id=opened["id"])
    service.rpc.assign_request(request_id=str(uuid.uuid4()), actor=org.manager, service_request_id=opened["id"],
                               engineer_id=org.engineer["staff_id"])
    service.rpc.resolve_request(request_id=str(uuid.uuid4()), actor=org.engineer, service_request_id=opened["id"],
                                resolution="advised a firmware reset", action="advice")
    assert service.rpc.run_escalations(as_of=(due + timedelta(days=30)).isoformat())["escalated"] == []
    assert service.outbox("service_request.escalated") == []


def test_fr104_two_replicas_running_the_job_at_once_escalate_each_request_once(start_service, org):
    service = start_service(replicas=2)
    dues = [overdue_request(service, org)[1] for _ in range(8)]
    as_of = (max(dues) + timedelta(hours=1)).isoformat()
    runs = [service.rpc.run_escalations.call_async(as_of=as_of) for _ in range(4)]
    escalated = [number for run in runs for number in run.result()["escalated"]]
    assert len(escalated) == len(set(escalated)) == 8
    assert len(service.outbox("service_request.escalated")) == 8
    assert service.count("SELECT count(*) FROM service_request_steps WHERE step = 'escalated'") == 8


def test_fr104_the_owner_moves_with_customer_owner_changed_and_so_does_the_escalation(service, org, world):
    opened, due = overdue_request(service, org)
    moved_at = datetime.fromisoformat(opened["opened_at"]) + timedelta(minutes=5)
    event = service.publish("customer", "customer.owner_changed", {
        "customer_id": org.customer, "owner_id": org.other_rep["staff_id"], "owner_team": "west-2",
        "previous_owner_id": org.rep["staff_id"], "reason": "rep left the region",
        "changed_by": org.director["staff_id"]}, occurred_at=moved_at)
    service.applied(event, "on_customer_owner_changed")
    # a late, older change of owner does not win over the newer one
    stale = service.publish("customer", "customer.owner_changed", {
        "customer_id": org.customer, "owner_id": org.rep["staff_id"], "owner_team": "east-1"},
        occurred_at=moved_at - timedelta(minutes=1))
    service.applied(stale, "on_customer_owner_changed")

    with pytest.raises(NotFound):  # the old owner's rep no longer sees it; the new one does
        service.rpc.get_request(actor=org.rep, service_request_id=opened["id"])
    assert service.rpc.get_request(actor=org.other_rep, service_request_id=opened["id"])["owner_team"] == "west-2"

    service.rpc.run_escalations(as_of=(due + timedelta(hours=1)).isoformat())
    assert [call["staff_id"] for call in world.of("find_approver")] == [org.other_rep["staff_id"]]
    row = service.rpc.get_request(actor=org.other_manager, service_request_id=opened["id"])
    assert row["escalated_to"] == org.other_manager["staff_id"]


def test_fr104_with_the_org_chart_down_escalation_waits_and_with_no_manager_it_is_still_recorded(service, org, world):
    orphan_rep = org.add("lonely", "sales_rep", team="north")
    customer = org.add_customer(orphan_rep)
    opened, due = overdue_request(service, org, customer=customer, actor=orphan_rep)
    as_of = (due + timedelta(hours=1)).isoformat()

    world.customer_mode = "down"
    run = service.rpc.run_escalations(as_of=as_of)
    assert run["escalated"] == [] and run["deferred"] == 1
    assert service.rpc.get_request(actor=org.director, service_request_id=opened["id"])["escalated"] is False

    world.customer_mode = "ok"
    assert service.rpc.run_escalations(as_of=as_of)["escalated"] == [opened["number"]]
    row = service.rpc.get_request(actor=org.director, service_request_id=opened["id"])
    assert row["escalated"] is True and row["escalated_to"] is None
    assert "no sales manager" in row["history"][-1]["note"]
