"""After-sales end to end (issue 7), driven only through the gateway's HTTP API with the real gateway
and aftersales processes: a delivered product fails → service request → the sales manager confirms
and assigns an engineer → the SLA passes (time injected through `run_escalations(as_of=...)`, not
slept) and the request escalates to the rep's manager → the engineer resolves it by a return →
the return request reaches the order service → the customer's feedback closes it.

Until the customer, order and inventory services are merged, they are stood in for here: the
customer and order services by in-process fakes on this test's vhost with the RPC signatures of
docs/INTEGRATION.md (customer.create_staff/get_staff/create_customer/get_customer/find_approver,
order.request_return), inventory by publishing `goods.issued` and `product.created` as it does.
With the real services, start them in `start_platform` instead, drop the fakes, and deliver the
goods through POST /products, /stock/receipts, /orders, /orders/{id}/confirm, /deliveries and
/deliveries/{id}/issue; the assertions on the return request then read GET /returns."""
import uuid
from datetime import datetime, timedelta, timezone

import pytest
from nameko.standalone.events import event_dispatcher

from shared import access, envelope, workdays
from shared.entrypoints import rpc
from shared.errors import Conflict, NotFound

pytestmark = pytest.mark.slow


class Others:
    """What the stand-in customer and order services know and were asked."""

    def __init__(self):
        self.staff, self.customers, self.returns = {}, {}, {}


OTHERS = Others()


class FakeCustomer:
    name = "customer"

    @rpc
    def create_staff(self, *, request_id, actor, staff):
        OTHERS.staff[staff["id"]] = dict(staff, active=True)
        return dict(staff, active=True)

    @rpc
    def get_staff(self, *, staff_id):
        if staff_id not in OTHERS.staff:
            raise NotFound(f"staff member {staff_id} not found")
        return OTHERS.staff[staff_id]

    @rpc
    def create_customer(self, *, request_id, actor, customer):
        customer_id = str(uuid.uuid5(uuid.UUID(request_id), "customer"))
        OTHERS.customers[customer_id] = dict(
            customer, id=customer_id, number=f"CUS-2026-{len(OTHERS.customers) + 1:06d}", owner_id=actor["staff_id"],
            owner_team=actor.get("team"), owner_name=actor.get("username"), status="signed")
        return OTHERS.customers[customer_id]

    @rpc
    def get_customer(self, *, actor, customer_id):
        customer = OTHERS.customers.get(customer_id)
        if customer is None or not access.scope(actor).allows(customer["owner_id"], customer["owner_team"]):
            raise NotFound(f"customer {customer_id} not found")
        return customer

    @rpc
    def find_approver(self, *, staff_id, relation):
        manager_id = OTHERS.staff.get(staff_id, {}).get("manager_id")
        if relation != "direct_manager" or manager_id not in OTHERS.staff:
            raise Conflict(f"nobody holds {relation} for {staff_id}", code="NO_APPROVER")
        return OTHERS.staff[manager_id]


class FakeOrder:
    name = "order"

    @rpc
    def request_return(self, *, request_id, actor, delivery_id, lines, reason, service_request_id=None):
        return OTHERS.returns.setdefault(request_id, {
            "id": str(uuid.uuid4()), "number": f"RR-2026-{len(OTHERS.returns) + 1:06d}", "status": "requested",
            "delivery_id": delivery_id, "lines": lines, "reason": reason, "service_request_id": service_request_id,
            "requested_by": actor["username"]})


def goods_issued(customer_id, delivery_id, sku, quantity, issued_at):
    """inventory's goods.issued (docs/INTEGRATION.md "Events")."""
    return envelope.build("goods.issued", {
        "delivery_id": delivery_id, "delivery_number": "DN-2026-000001", "order_id": str(uuid.uuid4()),
        "order_number": "SO-2026-000001", "loan_id": None, "warehouse": "main", "issued_at": issued_at.isoformat(),
        "customer_id": customer_id, "owner_id": None, "owner_team": None, "region": "East China",
        "lines": [{"delivery_line_id": str(uuid.uuid4()), "order_line_id": str(uuid.uuid4()), "sku": sku,
                   "quantity": quantity, "unit_price": "12800.00", "vat_rate": "0.13"}]}, source="inventory")


def test_fr97_fr101_to_fr108_a_failed_product_from_request_to_escalation_return_and_feedback_over_http(
        start_platform, container_factory, service_config):
    OTHERS.__init__()
    for fake in (FakeCustomer, FakeOrder):
        container_factory(fake, service_config()).start()
    platform = start_platform("aftersales")

    manager_client, manager = platform.user("manager1", "sales_manager", team="East")
    rep, rep_user = platform.user("rep1", "sales_rep", manager=manager["staff_id"], team="East")
    engineer, engineer_user = platform.user("eng1", "service_engineer")
    customer = rep.post("customers", {"name": "Suzhou Hengli Precision Machinery Co., Ltd.", "industry": "machinery",
                                      "size": "medium", "region": "East China", "source": "trade_fair"}, expect=201)

    # inventory issued a pump to the customer 20 days ago; its product carries a 12-month warranty
    delivery_id = str(uuid.uuid4())
    dispatch = event_dispatcher()
    dispatch("inventory", "product.created", envelope.build("product.created", {
        "sku": "PUMP-100", "name": "Centrifugal pump 100", "unit": "pcs", "list_price": "12800.00",
        "floor_price": "11000.00", "vat_rate": "0.13", "active": True, "warranty_months": 12}, source="inventory"))
    dispatch("inventory", "goods.issued", goods_issued(customer["id"], delivery_id, "PUMP-100", 2,
                                                       datetime.now(timezone.utc) - timedelta(days=20)))

    # the pump fails: the rep opens a repair request (once goods.issued has reached aftersales)
    request_body = {"customer_id": customer["id"], "sku": "PUMP-100", "delivery_id": delivery_id, "type": "repair",
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
    assert resolved["status"] == "resolved" and resolved["action_status"]["status"] == "done"

    # the return request reached the order service, once, naming the delivery and the request
    [return_request] = OTHERS.returns.values()
    assert return_request["delivery_id"] == delivery_id and return_request["service_request_id"] == opened["id"]
    assert return_request["lines"] == [{"sku": "PUMP-100", "quantity": 1}]
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
