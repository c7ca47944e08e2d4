"""Ownership and the pool (FR-08–FR-11), the one-week contact deadline (FR-10) and its job."""
from datetime import timedelta

import eventlet
import pytest
from nameko.standalone.rpc import ClusterRpcClient

from shared.errors import BusinessRuleViolation, Forbidden, NotFound, ValidationFailed


def test_fr08_a_manager_overrides_the_owner_with_a_reason_and_the_history_is_kept(crm):
    manager, (rep, other) = crm.team("East-1")
    customer = crm.customer(rep)
    opportunity = crm.rpc.create_opportunity(request_id=crm.rid(), actor=rep, opportunity={
        "customer_id": customer["id"], "title": "CNC retrofit", "expected_amount": "120000.00", "probability": 30})
    request_id = crm.rid()
    moved = crm.rpc.assign_owner(request_id=request_id, actor=manager, customer_id=customer["id"],
                                 owner_id=other["staff_id"], reason="rep moves to key accounts")
    assert (moved["owner_id"], moved["owner_team"]) == (other["staff_id"], "East-1")
    again = crm.rpc.assign_owner(request_id=request_id, actor=manager, customer_id=customer["id"],
                                 owner_id=other["staff_id"], reason="rep moves to key accounts")
    assert again == moved  # a retried command answers the first answer and does nothing again
    assert moved["contact_due_by"] > customer["contact_due_by"]  # a new week to make contact
    history = crm.rpc.list_owner_history(actor=manager, customer_id=customer["id"])["items"]
    assert [(h["kind"], h["owner_id"], h["actor_id"], h["reason"]) for h in history][-1] == \
        ("override", other["staff_id"], manager["staff_id"], "rep moves to key accounts")
    assert history[-1]["previous_owner_id"] == rep["staff_id"]
    [event] = crm.outbox("customer.owner_changed")
    assert {k: event["data"][k] for k in ("owner_id", "owner_team", "previous_owner_id", "kind", "reason",
                                          "changed_by")} == {
        "owner_id": other["staff_id"], "owner_team": "East-1", "previous_owner_id": rep["staff_id"],
        "kind": "override", "reason": "rep moves to key accounts", "changed_by": manager["staff_id"]}
    # the open opportunity follows the customer; the old owner sees neither any more
    assert crm.rpc.get_opportunity(actor=other, opportunity_id=opportunity["id"])["owner_id"] == other["staff_id"]
    for call in (lambda: crm.rpc.get_customer(actor=rep, customer_id=customer["id"]),
                 lambda: crm.rpc.get_opportunity(actor=rep, opportunity_id=opportunity["id"])):
        with pytest.raises(NotFound):
            call()


def test_fr08_a_rep_may_not_reassign_and_nothing_changes(crm):
    manager, (rep, other) = crm.team("East-1")
    customer = crm.customer(rep)
    with pytest.raises(Forbidden) as info:
        crm.rpc.assign_owner(request_id=crm.rid(), actor=rep, customer_id=customer["id"],
                             owner_id=other["staff_id"], reason="I am busy")
    assert info.value.code == "REASSIGNMENT_FORBIDDEN"
    assert crm.rpc.get_customer(actor=rep, customer_id=customer["id"])["owner_id"] == rep["staff_id"]
    assert crm.scalar("SELECT count(*) FROM ownership_events WHERE kind <> 'claim'") == 0
    assert crm.outbox("customer.owner_changed") == []


def test_fr08_a_manager_assigns_within_their_team_with_a_reason(crm):
    east, (rep,) = crm.team("East-1", reps=1)
    west, (stranger,) = crm.team("West-1", reps=1)
    customer = crm.customer(rep)
    with pytest.raises(BusinessRuleViolation) as info:  # a rep of another team: not the manager's to give
        crm.rpc.assign_owner(request_id=crm.rid(), actor=east, customer_id=customer["id"],
                             owner_id=stranger["staff_id"], reason="why not")
    assert info.value.code == "OWNER_NOT_ELIGIBLE" and "owner_id" in info.value.errors
    with pytest.raises(ValidationFailed) as info:
        crm.rpc.assign_owner(request_id=crm.rid(), actor=east, customer_id=customer["id"],
                             owner_id=rep["staff_id"], reason="")
    assert "reason" in info.value.errors
    with pytest.raises(NotFound):  # another team's customer cannot even be seen
        crm.rpc.assign_owner(request_id=crm.rid(), actor=west, customer_id=customer["id"],
                             owner_id=stranger["staff_id"], reason="mine now")
    assert crm.rpc.get_customer(actor=rep, customer_id=customer["id"])["owner_id"] == rep["staff_id"]


def test_fr09_fr11_campaign_leads_go_to_the_pool_and_the_manager_distributes_them_balanced(crm):
    manager, (busy, strong, fresh) = crm.team("East-1", reps=3)
    crm.rpc.update_staff(request_id=crm.rid(), actor=crm.ADMIN, staff_id=strong["staff_id"],
                         changes={"capacity": "3"})
    for _ in range(3):
        crm.customer(busy)
        crm.customer(strong)
    marketing = crm.staff("marketing_director")
    leads = [crm.customer(marketing, source="industry_association") for _ in range(3)]
    assert all(lead["owner_id"] is None and lead["contact_due_by"] is None for lead in leads)
    pool = crm.rpc.list_pool(actor=manager)["items"]
    assert {c["id"] for c in pool} == {lead["id"] for lead in leads}
    suggestion = crm.rpc.suggest_distribution(actor=manager)
    # loads before: busy 3/1, strong 3/3, fresh 0/1 → fresh, fresh, then strong (1.0 < 2.0)
    assert [p["owner_id"] for p in suggestion["plan"]] == [fresh["staff_id"], fresh["staff_id"], strong["staff_id"]]
    assert {c["staff_id"] for c in suggestion["candidates"]} == {busy["staff_id"], strong["staff_id"],
                                                                  fresh["staff_id"]}
    for step in suggestion["plan"]:
        crm.rpc.assign_owner(request_id=crm.rid(), actor=manager, customer_id=step["customer_id"],
                             owner_id=step["owner_id"], reason="campaign lead, balanced")
    assert crm.rpc.list_pool(actor=manager)["items"] == []
    kinds = [e["data"]["kind"] for e in crm.outbox("customer.owner_changed")]
    assert kinds == ["assign"] * 3
    with pytest.raises(Forbidden):
        crm.rpc.suggest_distribution(actor=busy)
    with pytest.raises(ValidationFailed):
        crm.rpc.suggest_distribution(actor=manager, team="West-1")


def test_fr10_not_contacted_within_a_week_becomes_reclaimable_once_even_with_two_replicas(crm, start_customer):
    manager, (rep, other) = crm.team("East-1")
    quiet = [crm.customer(rep) for _ in range(3)]
    contacted = crm.customer(rep)
    crm.rpc.record_follow_up(request_id=crm.rid(), actor=rep, customer_id=contacted["id"], follow_up={
        "channel": "phone", "occurred_at": crm.now().isoformat(), "summary": "introduced our CNC line"})
    start_customer()  # a second replica on the same database and queues
    early = crm.rpc.run_contact_deadline(as_of=(crm.now() + timedelta(days=6)).isoformat())
    assert early["marked"] == 0
    as_of = (crm.now() + timedelta(days=7, minutes=1)).isoformat()
    answers = []

    def run():
        with ClusterRpcClient(timeout=10) as client:
            answers.append(client.customer.run_contact_deadline(as_of=as_of))

    pool = eventlet.GreenPool()
    for _ in range(4):
        pool.spawn(run)
    pool.waitall()
    marked = [cid for answer in answers for cid in answer["customer_ids"]]
    assert sorted(marked) == sorted(c["id"] for c in quiet)  # each exactly once, across all runs
    events = crm.outbox("customer.reclaimable")
    assert sorted(e["data"]["customer_id"] for e in events) == sorted(marked)
    assert all(e["data"]["manager_id"] == manager["staff_id"] for e in events)
    pool_ids = {c["id"] for c in crm.rpc.list_pool(actor=manager, filters={"reason": "reclaimable"})["items"]}
    assert pool_ids == {c["id"] for c in quiet}
    # the manager reassigns one; a contact by the owner takes another out of the pool
    moved = crm.rpc.assign_owner(request_id=crm.rid(), actor=manager, customer_id=quiet[0]["id"],
                                 owner_id=other["staff_id"], reason="not contacted within a week")
    assert moved["reclaimable"] is False and moved["contacted_at"] is None
    assert crm.outbox("customer.owner_changed")[-1]["data"]["kind"] == "reassign"
    crm.rpc.record_follow_up(request_id=crm.rid(), actor=rep, customer_id=quiet[1]["id"], follow_up={
        "channel": "email", "occurred_at": crm.now().isoformat(), "summary": "sent the brochure"})
    assert {c["id"] for c in crm.rpc.list_pool(actor=manager)["items"]} == {quiet[2]["id"]}
    history = crm.rpc.list_owner_history(actor=manager, customer_id=quiet[0]["id"])["items"]
    assert [h["kind"] for h in history] == ["claim", "reclaimable", "reassign"]


def test_fr10_a_contact_before_the_assignment_does_not_count_and_follow_ups_are_listed(crm):
    manager, (rep, other) = crm.team("East-1")
    customer = crm.customer(rep)
    earlier = (crm.now() - timedelta(days=1)).isoformat()
    with pytest.raises(ValidationFailed) as info:
        crm.rpc.record_follow_up(request_id=crm.rid(), actor=rep, customer_id=customer["id"], follow_up={
            "channel": "phone", "occurred_at": (crm.now() + timedelta(days=1)).isoformat(), "summary": "future"})
    assert "occurred_at" in info.value.errors
    with pytest.raises(ValidationFailed) as info:
        crm.rpc.record_follow_up(request_id=crm.rid(), actor=rep, customer_id=customer["id"], follow_up={
            "channel": "pigeon", "occurred_at": earlier, "summary": "x"})
    assert "channel" in info.value.errors
    crm.rpc.record_follow_up(request_id=crm.rid(), actor=rep, customer_id=customer["id"], follow_up={
        "channel": "phone", "occurred_at": earlier, "summary": "called before it was recorded",
        "feedback": "happy with the samples"})
    got = crm.rpc.get_customer(actor=rep, customer_id=customer["id"])
    assert got["contacted_at"] is None and got["last_contact_at"] is not None  # FR-10 clock still runs
    [follow_up] = crm.rpc.list_follow_ups(actor=rep, customer_id=customer["id"])["items"]
    assert follow_up["feedback"] == "happy with the samples"
    with pytest.raises(NotFound):
        crm.rpc.list_follow_ups(actor=other, customer_id=customer["id"])


def test_fr08_owner_changes_are_guarded_updates_a_stale_read_changes_nothing(crm, db_connect, db_name):
    """Read-modify-write would let two managers' changes overwrite each other; the guarded update
    (WHERE version = the version read) lets only one through — the other gets CONCURRENT_UPDATE."""
    from customer.db import CustomerRepository
    from shared.db import UnitOfWork

    manager, (rep, other) = crm.team()
    customer = crm.customer(rep)
    stale = customer["version"]
    crm.rpc.record_follow_up(request_id=crm.rid(), actor=rep, customer_id=customer["id"], follow_up={
        "channel": "phone", "occurred_at": crm.now().isoformat(), "summary": "a change in between"})
    conn = db_connect(db_name)
    conn.autocommit = False
    repo = CustomerRepository(UnitOfWork(conn, "test"))
    assert repo.change_owner(customer["id"], stale, other["staff_id"], "East-1", crm.now(), crm.now()) is None
    assert repo.change_owner(customer["id"], stale + 1, other["staff_id"], "East-1", crm.now(), crm.now())
    conn.rollback()
    assert crm.rpc.get_customer(actor=rep, customer_id=customer["id"])["owner_id"] == rep["staff_id"]
