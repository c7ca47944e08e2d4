"""Resolution actions reach the order service (docs/INTEGRATION.md): a `return` becomes
order.request_return, a `replacement` order.create_replacement — with a request id derived from
the service request, retried while the order service is down, never lost and never doubled."""
import uuid
from datetime import datetime, timedelta, timezone

import pytest
from prometheus_client import REGISTRY

from aftersales import domain
from shared.errors import BusinessRuleViolation, ValidationFailed


def assigned_request(service, org, type="return", quantity_delivered=2, delivery=True):
    delivery_id = service.deliver(org.customer, [("PUMP-100", quantity_delivered)])
    sr = service.rpc.open_request(request_id=str(uuid.uuid4()), actor=org.rep, service_request={
        "customer_id": org.customer, "sku": "PUMP-100", "delivery_id": delivery_id if delivery else None,
        "type": type, "priority": "normal", "description": "wrong voltage variant delivered"})
    service.rpc.confirm_request(request_id=str(uuid.uuid4()), actor=org.manager, service_request_id=sr["id"])
    service.rpc.assign_request(request_id=str(uuid.uuid4()), actor=org.manager, service_request_id=sr["id"],
                               engineer_id=org.engineer["staff_id"])
    return sr, delivery_id


def resolve(service, org, sr, action="return", quantity=None, request_id=None):
    return service.rpc.resolve_request(request_id=request_id or str(uuid.uuid4()), actor=org.engineer,
                                       service_request_id=sr["id"], resolution="customer takes the goods back",
                                       action=action, quantity=quantity)


def attempts(outcome):
    return REGISTRY.get_sample_value("sales_resolution_action_attempts_total",
                                     {"service": "aftersales", "kind": "return", "outcome": outcome}) or 0


def later(minutes=60):
    return (datetime.now(timezone.utc) + timedelta(minutes=minutes)).isoformat()


def test_a_return_resolution_opens_a_return_request_in_the_order_service_once(service, org, world):
    sr, delivery = assigned_request(service, org)
    request_id = str(uuid.uuid4())
    resolved = resolve(service, org, sr, quantity=2, request_id=request_id)
    assert resolved["status"] == "resolved" and resolved["action_quantity"] == 2
    [call] = world.of("request_return")
    # the engineer who resolved it asks, as a person of the org chart (the return's approver is
    # found relative to them)
    assert (call["actor"]["staff_id"], call["actor"]["role"]) == (org.engineer["staff_id"], "service_engineer")
    assert dict(call, actor=None) == {
        "method": "request_return", "request_id": str(domain.action_request_id(uuid.UUID(sr["id"]), "return")),
        "actor": None, "delivery_id": delivery, "lines": [{"sku": "PUMP-100", "quantity": 2}],
        "reason": f"after-sales {sr['number']} (return): customer takes the goods back",
        "service_request_id": sr["id"]}
    action = resolved["action_status"]
    assert (action["status"], action["attempts"], action["target"]) == ("done", 1, "order.request_return")
    assert action["result"]["number"].startswith("RR-") and action["result"]["service_request_id"] == sr["id"]
    # nothing more happens: not by the job, not by a retried resolve
    assert service.rpc.run_pending_actions(as_of=later(60 * 24))["done"] == 0
    resolve(service, org, sr, quantity=2, request_id=request_id)
    assert len(world.of("request_return")) == 1
    steps = [h["step"] for h in service.rpc.get_request(actor=org.rep, service_request_id=sr["id"])["history"]]
    assert steps[-2:] == ["resolved", "return_requested"]


def test_while_the_order_service_is_down_the_return_waits_and_is_retried_never_lost_never_doubled(
        start_service, org, world):
    service = start_service(replicas=2)
    sr, _ = assigned_request(service, org)
    world.order_mode = "down"
    resolved = resolve(service, org, sr)
    assert resolved["status"] == "resolved"  # the resolution stands; the action waits
    action = resolved["action_status"]
    assert (action["status"], action["attempts"]) == ("pending", 1)
    assert "SERVICE_UNAVAILABLE" in action["last_error"]
    assert service.rpc.run_pending_actions()["done"] == 0  # not due yet: it backs off

    world.order_mode = "crash"  # an unexpected failure there is retried too
    assert service.rpc.run_pending_actions(as_of=later(1)) == {"done": 0, "retrying": 1, "failed": 0}

    world.order_mode = "ok"
    done_before = attempts("done")
    runs = [service.rpc.run_pending_actions.call_async(as_of=later(60)) for _ in range(4)]  # both replicas
    assert sum(run.result()["done"] for run in runs) == 1
    calls = world.of("request_return")
    assert len(calls) == 3 and len({call["request_id"] for call in calls}) == 1
    assert all(call == calls[0] for call in calls)  # the very same request each time
    assert len(world.order_answers) == 1
    assert attempts("done") == done_before + 1  # what SREs see on /metrics
    row = service.rpc.get_request(actor=org.rep, service_request_id=sr["id"])
    assert row["action_status"]["status"] == "done" and row["action_status"]["attempts"] == 3


def test_an_order_service_too_slow_to_answer_does_the_return_once_and_the_job_picks_up_its_answer(service, org,
                                                                                                    world):
    from aftersales.service import FIRST_ATTEMPT_TIMEOUT

    sr, _ = assigned_request(service, org)
    world.order_mode, world.order_delay = "slow", FIRST_ATTEMPT_TIMEOUT + 0.5
    action = resolve(service, org, sr)["action_status"]  # answered without waiting for the order service
    assert action["status"] == "pending" and "UPSTREAM_TIMEOUT" in action["last_error"]
    service.wait_for(lambda: world.order_answers, what="the slow return request done over there")
    world.order_mode = "ok"
    assert service.rpc.run_pending_actions(as_of=later())["done"] == 1
    calls = world.of("request_return")
    assert len(calls) == 2 and calls[0] == calls[1]  # asked twice, the same request: one return request
    [answer] = world.order_answers.values()
    row = service.rpc.get_request(actor=org.rep, service_request_id=sr["id"])
    assert row["action_status"]["result"] == answer


def test_with_no_order_service_running_the_action_is_kept_until_it_comes(start_service, org, world):
    service = start_service(order=False)
    sr, _ = assigned_request(service, org)
    resolved = resolve(service, org, sr)
    assert resolved["action_status"]["status"] == "pending"
    service.start_order()
    assert service.rpc.run_pending_actions(as_of=later())["done"] == 1
    assert len(world.of("request_return")) == 1


def test_a_return_the_order_service_refuses_is_marked_failed_and_not_retried(service, org, world):
    sr, _ = assigned_request(service, org)
    world.order_mode = "refuse"
    action = resolve(service, org, sr)["action_status"]
    assert action["status"] == "failed" and action["last_error"].startswith("RETURN_EXCEEDS_DELIVERED")
    world.order_mode = "ok"
    assert service.rpc.run_pending_actions(as_of=later(60 * 24)) == {"done": 0, "retrying": 0, "failed": 0}
    assert len(world.of("request_return")) == 1
    history = service.rpc.get_request(actor=org.rep, service_request_id=sr["id"])["history"]
    assert history[-1]["step"] == "return_refused" and history[-1]["details"]["code"] == "RETURN_EXCEEDS_DELIVERED"


def test_a_replacement_raises_a_no_charge_order_through_the_order_desk(service, org, world):
    sr, delivery = assigned_request(service, org, type="replacement")
    resolved = resolve(service, org, sr, action="replacement")
    [call] = world.of("create_replacement")
    assert call["actor"]["staff_id"] == org.engineer["staff_id"]
    assert dict(call, actor=None) == {
        "method": "create_replacement", "request_id": str(domain.action_request_id(uuid.UUID(sr["id"]), "replacement")),
        "actor": None, "customer_id": org.customer, "sku": "PUMP-100", "quantity": 1,
        "delivery_id": delivery, "service_request_id": sr["id"]}
    assert resolved["action_status"]["result"]["number"].startswith("SO-")
    assert world.of("request_return") == []


def test_returns_and_replacements_are_checked_against_the_delivery_and_change_nothing_when_refused(
        service, org, world):
    sr, _ = assigned_request(service, org, quantity_delivered=2)
    with pytest.raises(BusinessRuleViolation) as refused:
        resolve(service, org, sr, quantity=3)
    assert refused.value.code == "QUANTITY_EXCEEDS_DELIVERED" and "quantity" in refused.value.errors
    with pytest.raises(ValidationFailed) as refused:
        resolve(service, org, sr, action="advice", quantity=1)
    assert "quantity" in refused.value.errors
    with pytest.raises(ValidationFailed) as refused:
        resolve(service, org, sr, action="refund")
    assert "action" in refused.value.errors
    complaint, _ = assigned_request(service, org, type="complaint", delivery=False)
    with pytest.raises(BusinessRuleViolation) as refused:
        resolve(service, org, complaint)
    assert refused.value.code == "DELIVERY_REQUIRED"
    assert service.count("SELECT count(*) FROM pending_actions") == 0
    assert service.count("SELECT count(*) FROM service_requests WHERE status = 'resolved'") == 0
    assert service.outbox("service_request.resolved") == [] and world.of("request_return") == []
