"""FR-97: repairs — received → diagnosing → quoted (out of warranty) → approved → repairing →
repaired → returned; warranty from the delivery date and the product's warranty period (kept from
inventory's product events)."""
import uuid
from datetime import datetime, timedelta, timezone

import pytest

from shared.errors import BusinessRuleViolation, Conflict, Forbidden, ValidationFailed


def repair_request(service, org, delivered_days_ago=10, sku="PUMP-100"):
    delivery = service.deliver(org.customer, [(sku, 1)],
                               issued_at=datetime.now(timezone.utc) - timedelta(days=delivered_days_ago))
    sr = service.rpc.open_request(request_id=str(uuid.uuid4()), actor=org.rep, service_request={
        "customer_id": org.customer, "sku": sku, "delivery_id": delivery, "type": "repair", "priority": "normal",
        "description": "motor hums but does not turn"})
    service.rpc.confirm_request(request_id=str(uuid.uuid4()), actor=org.manager, service_request_id=sr["id"])
    service.rpc.assign_request(request_id=str(uuid.uuid4()), actor=org.manager, service_request_id=sr["id"],
                               engineer_id=org.engineer["staff_id"])
    return sr


def stepper(service, sr, actor):
    def step(name, **kwargs):
        return service.rpc.record_repair_step(request_id=str(uuid.uuid4()), actor=actor, service_request_id=sr["id"],
                                              step=name, **kwargs)
    return step


def resolve(service, org, sr, action="repair"):
    return service.rpc.resolve_request(request_id=str(uuid.uuid4()), actor=org.engineer, service_request_id=sr["id"],
                                       resolution="replaced the motor bearing", action=action)


def test_fr97_a_repair_under_warranty_is_free_and_goes_straight_from_diagnosis_to_repair(service, org):
    service.product("PUMP-100", warranty_months=12)
    sr = repair_request(service, org, delivered_days_ago=300)
    step = stepper(service, sr, org.engineer)
    received = step("receive", note="unit arrived by courier")
    assert received["status"] == "in_progress" and received["started_at"]
    assert received["repair"]["status"] == "received" and received["repair"]["in_warranty"] is True
    step("diagnose", note="bearing worn")
    with pytest.raises(BusinessRuleViolation) as refused:
        step("quote", amount="800.00")
    assert refused.value.code == "IN_WARRANTY"
    with pytest.raises(BusinessRuleViolation) as refused:  # not before the unit is back
        resolve(service, org, sr)
    assert refused.value.code == "REPAIR_NOT_FINISHED"
    for name in ("start", "complete", "return"):
        done = step(name)
    assert done["repair"]["status"] == "returned" and done["repair"]["repaired"] is True
    assert done["repair"]["diagnosis"] == "bearing worn" and done["repair"]["quote_amount"] is None
    assert resolve(service, org, sr)["status"] == "resolved"
    history = service.rpc.get_request(actor=org.manager, service_request_id=sr["id"])["history"]
    assert [h["step"] for h in history if h["step"].startswith("repair_")] == [
        "repair_receive", "repair_diagnose", "repair_start", "repair_complete", "repair_return"]
    assert history[4]["details"] == {"repair_from": "received", "repair_to": "diagnosing"}


def test_fr97_a_repair_out_of_warranty_is_quoted_and_approved_by_the_customer_before_work_starts(service, org):
    service.product("PUMP-100", warranty_months=6)
    sr = repair_request(service, org, delivered_days_ago=250)
    step = stepper(service, sr, org.engineer)
    assert step("receive")["repair"]["in_warranty"] is False
    step("diagnose", note="impeller cracked")
    with pytest.raises(BusinessRuleViolation) as refused:
        step("start")
    assert refused.value.code == "QUOTE_REQUIRED"
    quoted = step("quote", amount="850.00", note="impeller and labour")
    assert quoted["repair"]["status"] == "quoted" and quoted["repair"]["quote_amount"] == "850.00"
    with pytest.raises(Forbidden):  # another engineer may not take the customer's answer either
        stepper(service, sr, org.other_engineer)("approve")
    approved = stepper(service, sr, org.rep)("approve", note="customer agreed by phone")  # the owner's rep relays it
    assert approved["repair"]["status"] == "approved"
    with pytest.raises(Forbidden) as refused:  # but the technical steps are the engineer's
        stepper(service, sr, org.rep)("start")
    assert refused.value.code == "ENGINEER_NOT_ASSIGNED"
    for name in ("start", "complete", "return"):
        step(name)
    assert resolve(service, org, sr)["action"] == "repair"


def test_fr97_a_declined_quote_returns_the_unit_unrepaired(service, org):
    service.product("PUMP-100", warranty_months=6)
    sr = repair_request(service, org, delivered_days_ago=400)
    step = stepper(service, sr, org.engineer)
    step("receive")
    step("diagnose", note="housing cracked")
    step("quote", amount="2400.00")
    stepper(service, sr, org.manager)("decline", note="too expensive")
    with pytest.raises(Conflict) as refused:
        step("start")
    assert refused.value.code == "INVALID_STATE" and refused.value.extra["repair_status"] == "declined"
    returned = step("return")["repair"]
    assert (returned["status"], returned["repaired"]) == ("returned", False)
    with pytest.raises(BusinessRuleViolation) as refused:  # not repaired: not resolved as a repair
        resolve(service, org, sr)
    assert refused.value.code == "REPAIR_NOT_FINISHED"
    assert resolve(service, org, sr, action="advice")["status"] == "resolved"


def test_fr97_the_warranty_period_comes_from_product_events_else_the_configured_default(service, org):
    # no product event yet: the default 12 months apply
    assert stepper(service, repair_request(service, org, 200, sku="NEW-1"), org.engineer)(
        "receive")["repair"]["in_warranty"] is True
    # a later product.price_changed carries a shorter warranty; an older event arriving late changes nothing
    now = datetime.now(timezone.utc)
    service.product("NEW-1", warranty_months=3, occurred_at=now, event_type="product.price_changed")
    service.product("NEW-1", warranty_months=24, occurred_at=now - timedelta(hours=1))
    later = stepper(service, repair_request(service, org, 200, sku="NEW-1"), org.engineer)("receive")
    assert later["repair"]["in_warranty"] is False and later["in_warranty"] is False


def test_fr97_repair_steps_are_refused_where_they_do_not_belong(service, org):
    service.deliver(org.customer, [("PUMP-100", 1)])
    complaint = service.rpc.open_request(request_id=str(uuid.uuid4()), actor=org.rep, service_request={
        "customer_id": org.customer, "sku": "PUMP-100", "type": "complaint", "priority": "low",
        "description": "late delivery"})
    service.rpc.confirm_request(request_id=str(uuid.uuid4()), actor=org.manager, service_request_id=complaint["id"])
    service.rpc.assign_request(request_id=str(uuid.uuid4()), actor=org.manager, service_request_id=complaint["id"],
                               engineer_id=org.engineer["staff_id"])
    with pytest.raises(BusinessRuleViolation) as refused:
        stepper(service, complaint, org.engineer)("receive")
    assert refused.value.code == "NOT_A_REPAIR"
    sr = repair_request(service, org)
    step = stepper(service, sr, org.engineer)
    with pytest.raises(Conflict):  # nothing received yet
        step("diagnose", note="?")
    step("receive")
    for kwargs, field in (({"step": "diagnose"}, "note"), ({"step": "quote"}, "amount"),
                          ({"step": "quote", "amount": "-5"}, "amount"), ({"step": "start", "amount": "5"}, "amount"),
                          ({"step": "polish"}, "step")):
        with pytest.raises(ValidationFailed) as refused:
            service.rpc.record_repair_step(request_id=str(uuid.uuid4()), actor=org.engineer,
                                           service_request_id=sr["id"], **kwargs)
        assert field in refused.value.errors
    assert service.rpc.get_request(actor=org.manager, service_request_id=sr["id"])["repair"]["status"] == "received"
