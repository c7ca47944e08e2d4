"""Service requests against real PostgreSQL and RabbitMQ, with fake customer and order services
(FR-101–FR-107): the life of a request and the refusal of every rule, each changing nothing."""
import uuid

import pytest

from shared.errors import BusinessRuleViolation, Conflict, Forbidden, NotFound, ValidationFailed
from shared.testing.contracts import assert_matches_contract


def new_id():
    return str(uuid.uuid4())


def body(customer_id, sku="PUMP-100", delivery_id=None, type="repair", priority="high", **over):
    data = {"customer_id": customer_id, "sku": sku, "delivery_id": delivery_id, "type": type,
            "priority": priority, "description": "the pump stopped after two weeks"}
    data.update(over)
    return data


def open_request(service, actor, data):
    return service.rpc.open_request(request_id=new_id(), actor=actor, service_request=data)


def nothing_written(service):
    return service.count("SELECT (SELECT count(*) FROM service_requests) + (SELECT count(*) FROM outbox)"
                             " + (SELECT count(*) FROM service_request_steps)") == 0


def test_fr101_to_fr107_a_request_from_opening_to_feedback_keeps_every_step(service, org, world):
    delivery = service.deliver(org.customer, [("PUMP-100", 3)])
    opened = open_request(service, org.rep, body(org.customer, delivery_id=delivery, priority="urgent"))
    assert opened["number"].startswith("SR-") and opened["status"] == "open"
    assert opened["owner_id"] == org.rep["staff_id"] and opened["owner_team"] == "east-1"
    assert opened["delivery_number"].startswith("DN-") and opened["in_warranty"] is True
    assert opened["sla_hours"] == 9 and opened["due_at"] > opened["opened_at"]
    sr = opened["id"]

    confirmed = service.rpc.confirm_request(request_id=new_id(), actor=org.manager, service_request_id=sr,
                                            note="customer called twice")
    assert confirmed["status"] == "confirmed" and confirmed["confirmed_by"] == org.manager["staff_id"]
    assigned = service.rpc.assign_request(request_id=new_id(), actor=org.manager, service_request_id=sr,
                                          engineer_id=org.engineer["staff_id"])
    assert (assigned["status"], assigned["engineer_id"]) == ("assigned", org.engineer["staff_id"])
    assert assigned["engineer_name"] == world.staff[org.engineer["staff_id"]]["display_name"]
    started = service.rpc.start_work(request_id=new_id(), actor=org.engineer, service_request_id=sr)
    assert started["status"] == "in_progress" and started["started_at"]
    resolved = service.rpc.resolve_request(request_id=new_id(), actor=org.engineer, service_request_id=sr,
                                           resolution="explained the reset procedure", action="advice")
    assert resolved["status"] == "resolved" and resolved["sla_met"] is True and resolved["first_time_fix"] is True
    assert resolved["action_status"] is None and world.of("request_return") == []
    closed = service.rpc.record_feedback(request_id=new_id(), actor=org.rep, service_request_id=sr, rating=5,
                                         comment="fast and friendly")
    assert (closed["status"], closed["rating"], closed["feedback_comment"]) == ("closed", 5, "fast and friendly")

    # FR-106: every step, who and when
    history = service.rpc.get_request(actor=org.director, service_request_id=sr)["history"]
    assert [(h["step"], h["from_status"], h["to_status"], h["actor_id"]) for h in history] == [
        ("opened", None, "open", org.rep["staff_id"]),
        ("confirmed", "open", "confirmed", org.manager["staff_id"]),
        ("assigned", "confirmed", "assigned", org.manager["staff_id"]),
        ("started", "assigned", "in_progress", org.engineer["staff_id"]),
        ("resolved", "in_progress", "resolved", org.engineer["staff_id"]),
        ("closed", "resolved", "closed", org.rep["staff_id"]),
    ]
    assert all(h["occurred_at"] and h["actor_role"] for h in history)
    assert history[1]["note"] == "customer called twice" and history[-1]["details"] == {"rating": 5}

    # the events, each through the outbox and each matching its published contract
    sent = service.outbox()
    assert [e["event_type"] for e in sent] == ["service_request.opened", "service_request.assigned",
                                               "service_request.resolved", "service_request.closed"]
    for event in sent:
        assert_matches_contract("aftersales", event)
        assert event["data"]["service_request_id"] == sr and event["data"]["owner_id"] == org.rep["staff_id"]
    assert sent[2]["data"]["action"] == "advice" and sent[3]["data"]["rating"] == 5


def test_fr101_a_product_the_customer_never_received_is_refused_and_nothing_is_written(service, org):
    delivery = service.deliver(org.customer, [("PUMP-100", 1)])
    someone_else = org.add_customer(org.rep)
    their_delivery = service.deliver(someone_else, [("VALVE-7", 1)])
    cases = [
        (body(org.customer, sku="VALVE-7", delivery_id=delivery), "sku"),          # never delivered to them
        (body(org.customer, sku="VALVE-7", delivery_id=their_delivery), "sku"),    # delivered to another customer
        (body(org.customer, sku="PUMP-100", delivery_id=new_id()), "delivery_id"),  # no such delivery of theirs
        (body(org.customer, sku="GEAR-1", type="consultation"), "sku"),
    ]
    for data, field in cases:
        with pytest.raises(BusinessRuleViolation) as refused:
            open_request(service, org.rep, data)
        assert refused.value.code == "PRODUCT_NOT_DELIVERED" and field in refused.value.errors, data
    assert nothing_written(service)
    # the same product on the right delivery is accepted; a consultation needs no delivery
    assert open_request(service, org.rep, body(org.customer, delivery_id=delivery))["status"] == "open"
    assert open_request(service, org.rep, body(org.customer, type="consultation"))["delivery_id"] is None


@pytest.mark.parametrize("change,field", [
    ({"type": "warranty"}, "type"),
    ({"priority": "asap"}, "priority"),
    ({"description": ""}, "description"),
    ({"customer_id": "not-a-uuid"}, "customer_id"),
    ({"delivery_id": None}, "delivery_id"),          # a repair names the delivery it came from
    ({"colour": "red"}, "colour"),                   # unknown fields are refused, never stored
])
def test_bad_input_is_refused_naming_the_field_and_changes_nothing(service, org, change, field):
    data = body(org.customer, delivery_id=new_id())
    data.update(change)
    with pytest.raises(ValidationFailed) as refused:
        open_request(service, org.rep, data)
    assert field in refused.value.errors
    assert nothing_written(service)


def test_rep_may_only_open_for_their_own_customers(service, org, world):
    theirs = org.add_customer(org.other_rep)
    service.deliver(theirs, [("PUMP-100", 1)])
    with pytest.raises(ValidationFailed) as refused:
        open_request(service, org.rep, body(theirs, type="complaint"))
    assert "customer_id" in refused.value.errors
    with pytest.raises(Forbidden) as refused:  # engineers do not open requests
        open_request(service, org.engineer, body(theirs, type="complaint"))
    assert refused.value.code == "ACTION_NOT_ALLOWED"
    assert nothing_written(service)


def test_commands_are_idempotent_by_request_id(service, org, world):
    delivery = service.deliver(org.customer, [("PUMP-100", 1)])
    request_id, data = new_id(), body(org.customer, delivery_id=delivery)
    first = service.rpc.open_request(request_id=request_id, actor=org.rep, service_request=data)
    again = service.rpc.open_request(request_id=request_id, actor=org.rep, service_request=data)
    assert first == again
    assert len(world.of("get_customer")) == 1  # the replay did not even ask the customer service again
    assert service.count("SELECT count(*) FROM service_requests") == 1
    assert service.count("SELECT count(*) FROM outbox") == 1
    with pytest.raises(ValidationFailed) as refused:
        service.rpc.open_request(request_id=request_id, actor=org.rep, service_request=dict(data, priority="low"))
    assert refused.value.code == "IDEMPOTENCY_KEY_REUSED"
    confirm_id = new_id()
    one = service.rpc.confirm_request(request_id=confirm_id, actor=org.manager, service_request_id=first["id"])
    assert service.rpc.confirm_request(request_id=confirm_id, actor=org.manager,
                                       service_request_id=first["id"]) == one
    assert service.count("SELECT count(*) FROM service_request_steps WHERE step = 'confirmed'") == 1


def confirmed_request(service, org, **over):
    delivery = service.deliver(org.customer, [(over.pop("sku", "PUMP-100"), 2)],
                               issued_at=over.pop("issued_at", None))
    sr = open_request(service, org.rep, body(org.customer, delivery_id=delivery, **over))
    service.rpc.confirm_request(request_id=new_id(), actor=org.manager, service_request_id=sr["id"])
    return sr


def test_fr102_only_the_owners_sales_manager_confirms_and_only_a_confirmed_request_is_assigned(service, org):
    delivery = service.deliver(org.customer, [("PUMP-100", 1)])
    sr = open_request(service, org.rep, body(org.customer, delivery_id=delivery))["id"]
    with pytest.raises(Conflict) as refused:
        service.rpc.assign_request(request_id=new_id(), actor=org.manager, service_request_id=sr,
                                   engineer_id=org.engineer["staff_id"])
    assert refused.value.code == "INVALID_STATE" and refused.value.extra["current_status"] == "open"
    for actor in (org.rep, org.engineer, org.director):
        with pytest.raises(Forbidden) as refused:
            service.rpc.confirm_request(request_id=new_id(), actor=actor, service_request_id=sr)
        assert refused.value.code == "ACTION_NOT_ALLOWED"
    with pytest.raises(NotFound):  # another team's manager does not even see it
        service.rpc.confirm_request(request_id=new_id(), actor=org.other_manager, service_request_id=sr)
    assert service.rpc.get_request(actor=org.rep, service_request_id=sr)["status"] == "open"


def test_fr103_assignment_goes_to_an_active_service_engineer_only(service, org, world):
    sr = confirmed_request(service, org)["id"]
    retired = org.add("old", "service_engineer", active=False)
    for engineer, message in ((org.rep["staff_id"], "not a service engineer"), (new_id(), "no such staff member"),
                              (retired["staff_id"], "no longer active")):
        with pytest.raises(ValidationFailed) as refused:
            service.rpc.assign_request(request_id=new_id(), actor=org.manager, service_request_id=sr,
                                       engineer_id=engineer)
        assert message in refused.value.errors["engineer_id"][0]
    with pytest.raises(Forbidden):  # a rep does not dispatch engineers
        service.rpc.assign_request(request_id=new_id(), actor=org.rep, service_request_id=sr,
                                   engineer_id=org.engineer["staff_id"])
    assert service.rpc.get_request(actor=org.manager, service_request_id=sr)["engineer_id"] is None
    # a service engineer may dispatch (a desk lead); a re-assignment is counted and kept
    service.rpc.assign_request(request_id=new_id(), actor=org.engineer, service_request_id=sr,
                               engineer_id=org.engineer["staff_id"])
    with pytest.raises(Conflict) as refused:
        service.rpc.assign_request(request_id=new_id(), actor=org.manager, service_request_id=sr,
                                   engineer_id=org.engineer["staff_id"])
    assert refused.value.code == "ALREADY_ASSIGNED"
    moved = service.rpc.assign_request(request_id=new_id(), actor=org.manager, service_request_id=sr,
                                       engineer_id=org.other_engineer["staff_id"])
    assert moved["engineer_id"] == org.other_engineer["staff_id"] and moved["assignment_count"] == 2
    events = service.outbox("service_request.assigned")
    assert [e["data"]["previous_engineer_id"] for e in events] == [None, org.engineer["staff_id"]]


def test_fr103_an_engineer_may_not_work_or_resolve_a_request_not_assigned_to_them(service, org):
    sr = confirmed_request(service, org)["id"]
    with pytest.raises(Forbidden) as refused:  # not assigned to anybody yet
        service.rpc.resolve_request(request_id=new_id(), actor=org.engineer, service_request_id=sr,
                                    resolution="fixed", action="advice")
    assert refused.value.code == "ENGINEER_NOT_ASSIGNED"
    service.rpc.assign_request(request_id=new_id(), actor=org.manager, service_request_id=sr,
                               engineer_id=org.engineer["staff_id"])
    for call in (lambda: service.rpc.resolve_request(request_id=new_id(), actor=org.other_engineer,
                                                     service_request_id=sr, resolution="fixed", action="advice"),
                 lambda: service.rpc.start_work(request_id=new_id(), actor=org.other_engineer, service_request_id=sr),
                 lambda: service.rpc.resolve_request(request_id=new_id(), actor=org.manager, service_request_id=sr,
                                                     resolution="fixed", action="advice")):
        with pytest.raises(Forbidden) as refused:
            call()
        assert refused.value.code == "ENGINEER_NOT_ASSIGNED"
    row = service.rpc.get_request(actor=org.manager, service_request_id=sr)
    assert row["status"] == "assigned" and row["resolved_at"] is None


def test_fr107_feedback_before_resolution_and_a_rating_of_6_are_refused(service, org):
    sr = confirmed_request(service, org)["id"]
    with pytest.raises(Conflict) as refused:
        service.rpc.record_feedback(request_id=new_id(), actor=org.rep, service_request_id=sr, rating=4)
    assert refused.value.code == "INVALID_STATE" and "resolved" in refused.value.detail
    service.rpc.assign_request(request_id=new_id(), actor=org.manager, service_request_id=sr,
                               engineer_id=org.engineer["staff_id"])
    service.rpc.resolve_request(request_id=new_id(), actor=org.engineer, service_request_id=sr,
                                resolution="replaced the seal on site", action="advice")
    for rating in (6, 0, 4.5, "5"):
        with pytest.raises(ValidationFailed) as refused:
            service.rpc.record_feedback(request_id=new_id(), actor=org.rep, service_request_id=sr, rating=rating)
        assert "rating" in refused.value.errors
    with pytest.raises(Forbidden):  # the engineer does not rate their own work
        service.rpc.record_feedback(request_id=new_id(), actor=org.engineer, service_request_id=sr, rating=5)
    assert service.rpc.get_request(actor=org.rep, service_request_id=sr)["status"] == "resolved"
    assert service.outbox("service_request.closed") == []
    closed = service.rpc.record_feedback(request_id=new_id(), actor=org.manager, service_request_id=sr, rating=2,
                                         comment="took too long")
    assert closed["status"] == "closed"
    with pytest.raises(Conflict):  # feedback is recorded once
        service.rpc.record_feedback(request_id=new_id(), actor=org.rep, service_request_id=sr, rating=5)


def test_row_level_access_reps_see_their_own_managers_their_team_engineers_all(service, org):
    service.deliver(org.customer, [("PUMP-100", 1)])
    theirs = org.add_customer(org.other_rep)
    service.deliver(theirs, [("PUMP-100", 1)])
    mine = open_request(service, org.rep, body(org.customer, type="training"))["id"]
    other = open_request(service, org.other_rep, body(theirs, type="training"))["id"]

    def listed(actor, **filters):
        return {item["id"] for item in service.rpc.list_requests(actor=actor, filters=filters)["items"]}

    assert listed(org.rep) == {mine} and listed(org.other_rep) == {other}
    assert listed(org.manager) == {mine} and listed(org.other_manager) == {other}
    assert listed(org.engineer) == listed(org.director) == {mine, other}
    with pytest.raises(NotFound):
        service.rpc.get_request(actor=org.rep, service_request_id=other)
    with pytest.raises(NotFound):
        service.rpc.get_request(actor=org.rep, service_request_id=new_id())
    with pytest.raises(ValidationFailed):
        service.rpc.get_request(actor=org.rep, service_request_id="SR-1")


def test_lists_filter_by_status_and_overdue_and_page_with_a_cursor(service, org, db):
    service.deliver(org.customer, [("PUMP-100", 5)])
    made = [open_request(service, org.rep, body(org.customer, type="consultation"))["id"] for _ in range(5)]
    service.rpc.confirm_request(request_id=new_id(), actor=org.manager, service_request_id=made[0])
    with db.cursor() as cur:  # two of them ran past their due time
        cur.execute("UPDATE service_requests SET due_at = now() - interval '1 hour' WHERE id = ANY(%s::uuid[])",
                    (made[1:3],))

    def ids(**filters):
        seen, cursor = [], None
        while True:
            page = service.rpc.list_requests(actor=org.manager, filters=filters, limit=2, cursor=cursor)
            assert len(page["items"]) <= 2
            seen += [item["id"] for item in page["items"]]
            cursor = page["next_cursor"]
            if cursor is None:
                return seen

    assert ids() == made[::-1]
    assert ids(status="confirmed") == [made[0]]
    assert set(ids(overdue=True)) == set(made[1:3])
    assert set(ids(overdue=False)) == {made[0], made[3], made[4]}
    assert all(item["overdue"] for item in service.rpc.list_requests(
        actor=org.manager, filters={"overdue": True})["items"])
    assert ids(type="repair") == []
    for bad in ({"status": "lost"}, {"overdue": "perhaps"}, {"colour": "red"}):
        with pytest.raises(ValidationFailed) as refused:
            service.rpc.list_requests(actor=org.manager, filters=bad)
        assert set(bad) <= set(refused.value.errors)
    with pytest.raises(ValidationFailed):
        service.rpc.list_requests(actor=org.manager, cursor="garbage")
    with pytest.raises(ValidationFailed):
        service.rpc.list_requests(actor=org.manager, limit=500)
