"""FR-05: each week a rep submits the customer records they collected to their sales manager, who
checks them or returns them to be completed; through the service's RPC on a real database."""
from datetime import timedelta

import pytest

from customer import domain
from shared.errors import Conflict, Forbidden, NotFound, ValidationFailed


def submit(crm, actor, week=None):
    return crm.rpc.submit_collection(request_id=crm.rid(), actor=actor, week=week)


def check(crm, actor, collection, outcome, comment=None):
    return crm.rpc.check_collection(request_id=crm.rid(), actor=actor, collection_id=collection["id"],
                                    outcome=outcome, comment=comment)


def test_fr05_the_weeks_records_go_to_the_manager_who_checks_or_returns_them(crm):
    manager, (rep, teammate) = crm.team()
    mine = [crm.customer(rep) for _ in range(2)]
    crm.customer(teammate)  # a teammate's record is not in the rep's week
    week = submit(crm, rep)
    assert (week["week"], week["state"], week["records"], week["rep_id"]) == \
        (domain.iso_week(crm.now()), "submitted", 2, rep["staff_id"])
    assert [c["id"] for c in week["customers"]] == [c["id"] for c in mine]
    to_check = crm.rpc.list_collections(actor=manager, filters={"state": "submitted"})["items"]
    assert [w["id"] for w in to_check] == [week["id"]]
    returned = check(crm, manager, week, "returned", "add the contacts' positions (FR-15)")
    assert (returned["state"], returned["comment"]) == ("returned", "add the contacts' positions (FR-15)")
    crm.customer(rep)  # completed meanwhile
    again = submit(crm, rep)
    assert (again["id"], again["state"], again["records"]) == (week["id"], "submitted", 3)
    checked = check(crm, manager, again, "checked")
    assert (checked["state"], checked["checked_by"]) == ("checked", manager["staff_id"])
    with pytest.raises(Conflict):  # checked is final for that week
        submit(crm, rep)


def test_fr05_bad_submissions_and_checks_are_refused_and_change_nothing(crm):
    manager, (rep, teammate) = crm.team()
    other_manager, _ = crm.team(name="West-1", reps=0, region="West")
    crm.customer(rep)
    next_week = domain.iso_week(crm.now() + timedelta(days=7))
    for bad in ("2026-48", "2026-W54", next_week):
        with pytest.raises(ValidationFailed) as info:
            submit(crm, rep, bad)
        assert "week" in info.value.errors
    week = submit(crm, rep)
    with pytest.raises(Conflict):  # once per week, until returned
        submit(crm, rep)
    with pytest.raises(Forbidden):  # a rep does not check their own
        check(crm, rep, week, "checked")
    with pytest.raises(NotFound):  # a teammate and another team's manager do not see it
        check(crm, teammate, week, "checked")
    with pytest.raises(NotFound):
        check(crm, other_manager, week, "checked")
    with pytest.raises(ValidationFailed) as info:  # returned says what to complete
        check(crm, manager, week, "returned")
    assert "comment" in info.value.errors
    current = crm.rpc.get_collection(actor=rep, collection_id=week["id"])
    assert (current["state"], current["version"]) == ("submitted", week["version"])
    assert crm.scalar("SELECT count(*) FROM collection_weeks") == 1
