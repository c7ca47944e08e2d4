"""FR-33: field market intelligence (trends, demands, competitor moves, dealer requests) and problems
of the sales work, escalated quickly to the reporter's manager; through the service's RPC."""
import pytest

from shared.errors import Conflict, Forbidden, NotFound, ValidationFailed


def report(crm, actor, **over):
    body = dict({"kind": "competitor", "summary": "Competitor X cut pump prices 12% in Jiangsu"}, **over)
    return crm.rpc.report_intelligence(request_id=crm.rid(), actor=actor, report=body)


def acknowledge(crm, actor, item, response="noted; pricing review on Friday"):
    return crm.rpc.acknowledge_intelligence(request_id=crm.rid(), actor=actor, report_id=item["id"], response=response)


def test_fr33_field_reports_reach_the_manager_and_problems_are_escalated(crm):
    manager, (rep,) = crm.team(reps=1)
    marketing = crm.staff("marketing_director")
    customer = crm.customer(rep)
    news = report(crm, rep, customer_id=customer["id"])
    assert (news["kind"], news["urgent"], news["response_due_by"], news["region"], news["customer_name"]) == \
        ("competitor", False, None, "East", customer["name"])
    problem = report(crm, rep, kind="problem", summary="deliveries to Suzhou late three weeks running")
    assert problem["urgent"] and problem["response_due_by"] > problem["created_at"]  # always escalated
    waiting = crm.rpc.list_intelligence(actor=manager, filters={"state": "reported", "urgent": True})["items"]
    assert [r["id"] for r in waiting] == [problem["id"]]
    seen_by_marketing = crm.rpc.list_intelligence(actor=marketing, filters={"kind": "competitor"})["items"]
    assert [r["id"] for r in seen_by_marketing] == [news["id"]]  # marketing sees every region's intelligence
    answered = acknowledge(crm, manager, problem, "warehouse lead time raised with logistics today")
    assert (answered["state"], answered["acknowledged_by"], answered["response_overdue"]) == \
        ("acknowledged", manager["staff_id"], False)
    assert acknowledge(crm, marketing, news)["state"] == "acknowledged"
    crm.execute("UPDATE intelligence SET response_due_by = now() - interval '1 minute', state = 'reported',"
                " response = NULL, acknowledged_by = NULL WHERE id = %s", (problem["id"],))
    assert crm.rpc.get_intelligence(actor=manager, report_id=problem["id"])["response_overdue"]


def test_fr33_bad_reports_and_answers_are_refused_and_change_nothing(crm):
    manager, (rep, teammate) = crm.team()
    other_manager, _ = crm.team(name="West-1", reps=0, region="West")
    for over, field in (({"kind": "gossip"}, "kind"), ({"summary": ""}, "summary"),
                        ({"customer_id": "not-a-uuid"}, "customer_id")):
        with pytest.raises(ValidationFailed) as info:
            report(crm, rep, **over)
        assert field in info.value.errors
    with pytest.raises(NotFound):  # about a customer the reporter cannot see
        report(crm, teammate, customer_id=crm.customer(rep)["id"])
    item = report(crm, rep, kind="dealer_request", summary="dealer asks for consignment stock")
    with pytest.raises(Forbidden):  # not one's own
        acknowledge(crm, rep, item)
    with pytest.raises(NotFound):  # another team's manager does not see it
        acknowledge(crm, other_manager, item)
    with pytest.raises(ValidationFailed) as info:
        acknowledge(crm, manager, item, response="")
    assert "response" in info.value.errors
    assert crm.rpc.get_intelligence(actor=rep, report_id=item["id"])["state"] == "reported"
    acknowledge(crm, manager, item)
    with pytest.raises(Conflict):  # answered once
        acknowledge(crm, manager, item)
    assert crm.scalar("SELECT count(*) FROM intelligence") == 1
