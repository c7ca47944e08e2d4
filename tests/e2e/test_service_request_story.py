"""After-sales end to end (issue 7) across the real services, driven only through the gateway's
HTTP API: goods delivered through the OSB flow (order, confirm, delivery note, goods issue) → the
product fails → service request → the sales manager confirms and assigns an engineer → the SLA
passes (time injected through `run_escalations(as_of=...)`, not slept) and the request escalates to
the rep's manager → the engineer resolves it by a return → the return request appears in the order
service → the customer's feedback closes it."""
from datetime import datetime

import pytest

from shared import workdays
from tests.e2e.osb import Org

pytestmark = pytest.mark.slow


def test_fr97_fr101_to_fr108_a_failed_product_from_request_to_escalation_return_and_feedback_over_http(
        start_platform):
    platform = start_platform("customer", "order", "inventory", "billing", "aftersales")
    org = Org(platform, warranty_months=12)
    rep, manager_client = org.rep, org.manager
    rep_user = rep.get("me", expect=200)
    manager = manager_client.get("me", expect=200)
    engineer, engineer_user = platform.user(f"eng-{org.suffix}", "service_engineer")
    customer = org.customer
    _, delivery = org.delivered(2)
    delivery_id = delivery["id"]

    # the pump fails: the rep opens a repair request (once goods.issued has reached aftersales)
    request_body = {"customer_id": customer["id"], "sku": "PUMP-200", "delivery_id": delivery_id, "type": "repair",
                    "priority": "urgent", "description": "pump stops after ten minutes, error E4"}
    opened = platform.wait_for(lambda: (lambda a: a.status_code == 201 and a.json())(
        rep.post("service-requests", request_body)), what="the request accepted against the delivery")
    sr = f"service-requests/{opened['id']}"
    assert opened["status"] == "open" and opened["in_warranty"] is True and opened["number"].startswith("SR-")
    # a product the customer never received is refused, naming the field
    refused = rep.post("service-requests", dict(request_body, sku="VALVE-7"), expect=409)
    assert refused["code"] == "PRODUCT_NOT_DELIVERED" and "sku" in refused["errors"]

    # FR-102: the sales manager confirms (the rep may not), then assigns the engineer
    rep.post(f"{sr}/confirm", {}, expect=403)
    engineer.post(f"{sr}/resolve", {"resolution": "x", "action": "advice"}, expect=403)  # not assigned to them
    manager_client.post(f"{sr}/confirm", {"note": "customer's line is down"}, expect=200)
    assigned = manager_client.post(f"{sr}/assign", {"engineer": engineer_user["staff_id"]}, expect=200)
    assert assigned["status"] == "assigned" and assigned["engineer_id"] == engineer_user["staff_id"]
    rep.post(f"{sr}/feedback", {"rating": 4}, expect=409)  # FR-107: not before the resolution

    # FR-104: two working hours past due, the escalation job (time injected) escalates to manager1
    as_of = workdays.add_working_hours(datetime.fromisoformat(opened["due_at"]), 2)
    with platform.rpc() as client:
        assert client.aftersales.run_escalations(as_of=as_of.isoformat())["escalated"] == [opened["number"]]
    escalated = manager_client.get("service-requests?escalated=true", expect=200)["items"]
    assert [item["id"] for item in escalated] == [opened["id"]]
    assert escalated[0]["escalated_to"] == manager["staff_id"]

    # FR-97: the unit comes in and is diagnosed; it cannot be fixed, so the customer returns it
    engineer.post(f"{sr}/repair-steps", {"step": "receive"}, expect=200)
    engineer.post(f"{sr}/repair-steps", {"step": "diagnose", "note": "cracked housing, not repairable"}, expect=200)
    resolved = engineer.post(f"{sr}/resolve", {"resolution": "unit not repairable; customer returns it",
                                               "action": "return", "quantity": 1}, expect=200)
    assert resolved["status"] == "resolved" and resolved["action_status"]["status"] == "done", str(resolved["action_status"])

    # the return request reached the order service, once, naming the delivery and the request
    [return_request] = manager_client.get(f"returns?delivery_id={delivery_id}", expect=200)["items"]
    assert return_request["status"] == "requested" and return_request["service_request_id"] == opened["id"]
    assert [(line["sku"], line["quantity"]) for line in return_request["lines"]] == [("PUMP-200", 1)]
    assert resolved["action_status"]["result"]["number"] == return_request["number"]

    # FR-107: a rating of 6 is refused; the customer's 4 closes it
    assert rep.post(f"{sr}/feedback", {"rating": 6}, expect=422)["errors"]["rating"]
    closed = rep.post(f"{sr}/feedback", {"rating": 4, "comment": "quick, but we lost a day"}, expect=200)
    assert closed["status"] == "closed"

    # FR-106: every step, who and when
    history = rep.get(sr, expect=200)["history"]
    assert [step["step"] for step in history] == [
        "opened", "confirmed", "assigned", "escalated", "repair_receive", "repair_diagnose", "resolved",
        "return_requested", "closed"]
    assert {step["actor_id"] for step in history[:3]} == {rep_user["staff_id"], manager["staff_id"]}

    # FR-108: the rep's service quality in the manager's report
    report = manager_client.get("reports/service-sla?group_by=rep", expect=200)
    [group] = report["groups"]
    assert group["key"] == rep_user["staff_id"]
    assert (group["resolved"], group["escalated"], group["feedback_count"], group["average_rating"]) == (
        1, 1, 1, "4.00")


def test_a_replacement_resolution_raises_a_no_charge_order_and_its_delivery_across_the_real_services(
        start_platform):
    """Issue 7: a `replacement` raises a no-charge delivery through the order desk."""
    platform = start_platform("customer", "order", "inventory", "billing", "aftersales")
    org = Org(platform, stock=10)
    engineer, engineer_user = platform.user(f"eng-{org.suffix}", "service_engineer")
    _, delivery = org.delivered(2)
    opened = platform.wait_for(lambda: (lambda a: a.status_code == 201 and a.json())(org.rep.post(
        "service-requests", {"customer_id": org.customer["id"], "sku": "PUMP-200", "delivery_id": delivery["id"],
                             "type": "replacement", "priority": "normal", "description": "dead on arrival"})),
        what="the request accepted against the delivery")
    sr = f"service-requests/{opened['id']}"
    org.manager.post(f"{sr}/confirm", {}, expect=200)
    org.manager.post(f"{sr}/assign", {"engineer": engineer_user["staff_id"]}, expect=200)
    resolved = engineer.post(f"{sr}/resolve", {"resolution": "swap the unit", "action": "replacement", "quantity": 1},
                             expect=200)
    assert resolved["action_status"]["status"] == "done", str(resolved["action_status"])
    replacement = org.rep.get(f"orders/{resolved['action_status']['result']['id']}", expect=200)
    assert replacement["status"] == "confirmed" and replacement["total"] == "0.00"
    # one more unit reserved for the replacement's delivery note, none charged to the customer's credit
    assert org.stock() == (8, 1, 7) and org.exposure() == "200.00"
    [note] = org.warehouse.get(f"deliveries?order_id={replacement['id']}", expect=200)["items"]
    assert note["status"] == "pending" and [(line["sku"], line["quantity"]) for line in note["lines"]] == [
        ("PUMP-200", 1)]
