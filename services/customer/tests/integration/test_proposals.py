"""Proposals (FR-40): draft → internal review → approved → submitted → accepted, or rejected and
modified for the next round (revision + 1); tenders (FR-41): the offer is in before the tender
closes. Through the service's RPC on a real database."""
from datetime import timedelta

import pytest

from shared.errors import BusinessRuleViolation, Conflict, Forbidden, NotFound, ValidationFailed


def qualified_opportunity(crm, rep, **over):
    customer = crm.customer(rep)
    body = dict({"customer_id": customer["id"], "title": "Packaging line", "expected_amount": "480000.00",
                 "probability": 40, "priority": "high", "source": "tender"}, **over)
    opp = crm.rpc.create_opportunity(request_id=crm.rid(), actor=rep, opportunity=body)
    return crm.rpc.update_opportunity(request_id=crm.rid(), actor=rep, opportunity_id=opp["id"],
                                      changes={"stage": "qualified"})


def draft(crm, rep, opp, **over):
    body = dict({"opportunity_id": opp["id"], "title": "Line 2 retrofit proposal",
                 "content": "Scope: two CNC cells, installation, training.", "amount": "455000.00"}, **over)
    return crm.rpc.create_proposal(request_id=crm.rid(), actor=rep, proposal=body)


def step(crm, name, actor, proposal, **kwargs):
    return getattr(crm.rpc, name)(request_id=crm.rid(), actor=actor, proposal_id=proposal["id"], **kwargs)


def opportunity_stage(crm, rep, opp):
    return crm.rpc.get_opportunity(actor=rep, opportunity_id=opp["id"])["stage"]


def test_fr40_the_proposal_loop_runs_round_after_round_until_the_customer_accepts(crm):
    manager, (rep,) = crm.team(reps=1)
    opp = qualified_opportunity(crm, rep)
    proposal = draft(crm, rep, opp)
    assert (proposal["state"], proposal["revision"], proposal["owner_id"], proposal["number"][:4]) == \
        ("draft", 1, rep["staff_id"], "PRP-")
    proposal = step(crm, "revise_proposal", rep, proposal, changes={"amount": "449000.00"})
    proposal = step(crm, "submit_proposal", rep, proposal)
    proposal = step(crm, "reject_proposal", manager, proposal, comment="price the training separately")
    assert (proposal["state"], proposal["revision"], proposal["review_comment"]) == \
        ("draft", 1, "price the training separately")  # back to modify; the customer has seen nothing yet
    proposal = step(crm, "revise_proposal", rep, proposal, changes={"content": "Scope: two CNC cells; training priced apart."})
    proposal = step(crm, "submit_proposal", rep, proposal)
    proposal = step(crm, "approve_proposal", manager, proposal, comment="go")
    proposal = step(crm, "send_proposal", rep, proposal)
    assert proposal["state"] == "submitted" and proposal["submitted_at"]
    assert opportunity_stage(crm, rep, opp) == "proposal"  # the pipeline follows the proposal
    proposal = step(crm, "record_proposal_response", rep, proposal, outcome="rejected",
                    comment="needs delivery in 6 weeks")
    assert (proposal["state"], proposal["response"]) == ("rejected", "needs delivery in 6 weeks")
    proposal = step(crm, "revise_proposal", rep, proposal, changes={"content": "Delivery in 6 weeks."})
    assert (proposal["state"], proposal["revision"], proposal["response"], proposal["reviewed_by"]) == \
        ("draft", 2, None, None)  # the next round: a new revision, reviewed again
    with pytest.raises(Conflict) as info:  # FR-40: never to the customer without the internal review
        step(crm, "send_proposal", rep, proposal)
    assert info.value.code == "INVALID_STATE"
    for name, actor, kwargs in (("submit_proposal", rep, {}), ("approve_proposal", manager, {}),
                                ("send_proposal", rep, {})):
        proposal = step(crm, name, actor, proposal, **kwargs)
    proposal = step(crm, "record_proposal_response", rep, proposal, outcome="accepted")
    assert (proposal["state"], proposal["revision"]) == ("accepted", 2)
    assert opportunity_stage(crm, rep, opp) == "negotiation"
    history = [(s["action"], s["from_state"], s["to_state"], s["revision"]) for s in proposal["steps"]]
    assert history == [
        ("create", None, "draft", 1), ("revise", "draft", "draft", 1), ("submit", "draft", "internal_review", 1),
        ("reject", "internal_review", "draft", 1), ("revise", "draft", "draft", 1),
        ("submit", "draft", "internal_review", 1), ("approve", "internal_review", "approved", 1),
        ("send", "approved", "submitted", 1), ("decline", "submitted", "rejected", 1),
        ("revise", "rejected", "draft", 2), ("submit", "draft", "internal_review", 2),
        ("approve", "internal_review", "approved", 2), ("send", "approved", "submitted", 2),
        ("accept", "submitted", "accepted", 2)]
    assert proposal["steps"][3]["actor_id"] == manager["staff_id"]
    with pytest.raises(Conflict):  # accepted is final
        step(crm, "revise_proposal", rep, proposal, changes={"amount": "1.00"})


def test_fr40_the_review_belongs_to_the_owners_line_and_the_acts_to_the_owner(crm):
    manager, (rep, teammate) = crm.team()
    other_manager, _ = crm.team(name="West-1", reps=0, region="West")
    director = crm.staff("sales_director")
    opp = qualified_opportunity(crm, rep)
    proposal = step(crm, "submit_proposal", rep, draft(crm, rep, opp))
    with pytest.raises(Forbidden):  # the author does not review their own proposal
        step(crm, "approve_proposal", rep, proposal)
    with pytest.raises(NotFound):  # another team's manager does not even see it
        step(crm, "approve_proposal", other_manager, proposal)
    with pytest.raises(ValidationFailed) as info:  # a refusal says why
        step(crm, "reject_proposal", manager, proposal, comment="")
    assert "comment" in info.value.errors
    with pytest.raises(NotFound):  # a teammate sees only their own customers' proposals
        crm.rpc.get_proposal(actor=teammate, proposal_id=proposal["id"])
    assert crm.rpc.list_proposals(actor=teammate)["items"] == []
    assert crm.rpc.get_proposal(actor=rep, proposal_id=proposal["id"])["state"] == "internal_review"
    proposal = step(crm, "approve_proposal", director, proposal)
    with pytest.raises(Forbidden):  # sending is the owner's act, even for their manager
        step(crm, "send_proposal", manager, proposal)
    assert crm.rpc.get_proposal(actor=rep, proposal_id=proposal["id"])["state"] == "approved"
    in_review = crm.rpc.list_proposals(actor=manager, filters={"state": "approved"})["items"]
    assert [p["id"] for p in in_review] == [proposal["id"]]


def test_fr40_bad_proposals_are_refused_and_change_nothing(crm):
    rep = crm.staff()
    customer = crm.customer(rep)
    identified = crm.rpc.create_opportunity(request_id=crm.rid(), actor=rep, opportunity={
        "customer_id": customer["id"], "title": "Maybe", "expected_amount": "1000.00", "probability": 10})
    with pytest.raises(Conflict) as info:  # FR-38: qualify the opportunity first
        draft(crm, rep, identified)
    assert "qualified" in info.value.detail
    opp = qualified_opportunity(crm, rep)
    for over, field in (({"content": ""}, "content"), ({"amount": "-5.00"}, "amount"),
                        ({"amount": "1.234"}, "amount"), ({"kind": "auction"}, "kind"),
                        ({"closes_at": (crm.now() + timedelta(days=3)).isoformat()}, "closes_at")):
        with pytest.raises(ValidationFailed) as info:
            draft(crm, rep, opp, **over)
        assert field in info.value.errors
    proposal = draft(crm, rep, opp)
    proposal = step(crm, "submit_proposal", rep, proposal)
    with pytest.raises(Conflict):  # nothing under review is edited in place: an approval binds its content
        step(crm, "revise_proposal", rep, proposal, changes={"amount": "1.00"})
    with pytest.raises(ValidationFailed) as info:  # a customer's no needs its reason
        crm.rpc.record_proposal_response(request_id=crm.rid(), actor=rep, proposal_id=proposal["id"],
                                         outcome="rejected")
    assert "comment" in info.value.errors
    assert crm.rpc.get_proposal(actor=rep, proposal_id=proposal["id"])["amount"] == "455000.00"
    assert crm.scalar("SELECT count(*) FROM proposals") == 1


def test_fr41_a_tender_offer_goes_in_before_the_tender_closes(crm):
    manager, (rep,) = crm.team(reps=1)
    opp = qualified_opportunity(crm, rep)
    with pytest.raises(ValidationFailed) as info:
        draft(crm, rep, opp, kind="tender")
    assert "closes_at" in info.value.errors
    with pytest.raises(ValidationFailed) as info:
        draft(crm, rep, opp, kind="tender", closes_at=(crm.now() - timedelta(hours=1)).isoformat())
    assert "closes_at" in info.value.errors
    tender = draft(crm, rep, opp, kind="tender", closes_at=(crm.now() + timedelta(days=2)).isoformat())
    tender = step(crm, "submit_proposal", rep, tender)
    tender = step(crm, "approve_proposal", manager, tender)
    crm.execute("UPDATE proposals SET closes_at = now() - interval '1 minute' WHERE id = %s", (tender["id"],))
    with pytest.raises(BusinessRuleViolation) as info:  # the tender closed while it was in review
        step(crm, "send_proposal", rep, tender)
    assert info.value.code == "TENDER_CLOSED"
    assert crm.rpc.get_proposal(actor=rep, proposal_id=tender["id"])["state"] == "approved"


def test_fr40_a_repeated_request_is_answered_once(crm):
    manager, (rep,) = crm.team(reps=1)
    proposal = draft(crm, rep, qualified_opportunity(crm, rep))
    request_id = crm.rid()
    first = crm.rpc.submit_proposal(request_id=request_id, actor=rep, proposal_id=proposal["id"])
    again = crm.rpc.submit_proposal(request_id=request_id, actor=rep, proposal_id=proposal["id"])
    assert first == again
    assert crm.scalar("SELECT count(*) FROM proposal_steps WHERE action = 'submit'") == 1
