"""Escalations (FR-28) and the manager's daily guidance (FR-30), through the service's RPC on a real
database: the owner escalates a hard customer, the manager guides (due by the end of the next
working day), the rep feeds back, either closes it with the outcome."""
from datetime import timedelta

import pytest

from shared.errors import Conflict, Forbidden, NotFound, ValidationFailed


def escalate(crm, actor, customer, **over):
    body = dict({"reason": "state-owned buyer, three-step tender committee", "help_wanted": "joint visit"}, **over)
    return crm.rpc.escalate_customer(request_id=crm.rid(), actor=actor, customer_id=customer["id"], escalation=body)


def note(crm, actor, escalation, text):
    return crm.rpc.note_escalation(request_id=crm.rid(), actor=actor, escalation_id=escalation["id"], note=text)


def test_fr28_fr30_an_escalated_customer_is_guided_daily_by_the_owners_manager(crm):
    manager, (rep,) = crm.team(reps=1)
    customer = crm.customer(rep)
    escalation = escalate(crm, rep, customer)
    assert (escalation["state"], escalation["owner_id"], escalation["guidance_overdue"]) == \
        ("open", rep["staff_id"], False)
    assert escalation["guidance_due_by"] > escalation["created_at"]
    waiting = crm.rpc.list_escalations(actor=manager, filters={"state": "open"})["items"]
    assert [e["id"] for e in waiting] == [escalation["id"]]  # the manager's to-do
    escalation = note(crm, manager, escalation, "bring the plant manager; I join on Thursday")
    assert escalation["state"] == "guided"
    escalation = note(crm, rep, escalation, "Thursday confirmed; they want a 2-year service plan")
    assert [(n["kind"], n["author_id"]) for n in escalation["notes"]] == \
        [("guidance", manager["staff_id"]), ("feedback", rep["staff_id"])]
    crm.execute("UPDATE escalations SET guidance_due_by = now() - interval '1 minute' WHERE id = %s",
                (escalation["id"],))
    overdue = crm.rpc.list_escalations(actor=manager, filters={"overdue": True})["items"]
    assert [e["id"] for e in overdue] == [escalation["id"]] and overdue[0]["guidance_overdue"]
    escalation = note(crm, manager, escalation, "offer the service plan at list price")  # the next day's
    assert not escalation["guidance_overdue"]
    closed = crm.rpc.close_escalation(request_id=crm.rid(), actor=rep, escalation_id=escalation["id"],
                                      outcome="won over: LOI signed")
    assert (closed["state"], closed["outcome"], closed["closed_by"]) == ("closed", "won over: LOI signed", rep["staff_id"])
    with pytest.raises(Conflict):  # closed is final
        note(crm, manager, closed, "late advice")
    assert escalate(crm, rep, customer)["state"] == "open"  # a new one once the last is closed


def test_fr28_fr30_bad_escalations_and_guidance_are_refused_and_change_nothing(crm):
    manager, (rep, teammate) = crm.team()
    other_manager, _ = crm.team(name="West-1", reps=0, region="West")
    customer = crm.customer(rep)
    with pytest.raises(Forbidden) as info:  # FR-28: the owner escalates, not a teammate or the manager
        escalate(crm, manager, customer)
    assert info.value.code == "ESCALATION_OWNER_ONLY"
    with pytest.raises(NotFound):  # a teammate does not see the customer at all
        escalate(crm, teammate, customer)
    with pytest.raises(ValidationFailed) as info:
        escalate(crm, rep, customer, reason="")
    assert "reason" in info.value.errors
    escalation = escalate(crm, rep, customer)
    with pytest.raises(Conflict) as info:  # one open escalation per customer
        escalate(crm, rep, customer)
    assert info.value.code == "ESCALATION_OPEN"
    with pytest.raises(NotFound):  # another team's manager cannot guide, nor learn it exists
        note(crm, other_manager, escalation, "advice")
    with pytest.raises(NotFound):
        note(crm, teammate, escalation, "advice")
    with pytest.raises(ValidationFailed) as info:
        note(crm, manager, escalation, "")
    assert "note" in info.value.errors
    with pytest.raises(ValidationFailed) as info:
        crm.rpc.close_escalation(request_id=crm.rid(), actor=rep, escalation_id=escalation["id"], outcome="")
    assert "outcome" in info.value.errors
    current = crm.rpc.get_escalation(actor=rep, escalation_id=escalation["id"])
    assert (current["state"], current["notes"], current["version"]) == ("open", [], escalation["version"])
    assert crm.scalar("SELECT count(*) FROM escalations") == 1


def test_fr28_an_escalation_follows_the_customer_to_its_new_owner(crm):
    manager, (rep, teammate) = crm.team()
    customer = crm.customer(rep)
    escalation = escalate(crm, rep, customer)
    crm.rpc.assign_owner(request_id=crm.rid(), actor=manager, customer_id=customer["id"],
                         owner_id=teammate["staff_id"], reason="rep moved to key accounts")
    assert crm.rpc.get_escalation(actor=teammate, escalation_id=escalation["id"])["owner_id"] == teammate["staff_id"]
    with pytest.raises(NotFound):
        crm.rpc.get_escalation(actor=rep, escalation_id=escalation["id"])
