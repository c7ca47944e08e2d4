"""The events aftersales consumes, published into the test's vhost as their producers publish them
(docs/INTEGRATION.md): applied once through the inbox, unknown fields ignored, bad ones parked."""
import uuid
from datetime import datetime, timedelta, timezone

import pytest

from aftersales.service import AftersalesService
from shared.config import ConfigError


def test_goods_issued_records_the_delivered_products_once_whatever_the_broker_does(service, org):
    issued_at = datetime(2026, 3, 2, 8, 30, tzinfo=timezone.utc)
    delivery = str(uuid.uuid4())
    event = service.publish("inventory", "goods.issued", {
        "delivery_id": delivery, "delivery_number": "DN-2026-000007", "order_id": str(uuid.uuid4()),
        "issued_at": issued_at.isoformat(), "customer_id": org.customer, "warehouse": "main",
        "lines": [{"delivery_line_id": str(uuid.uuid4()), "sku": "PUMP-100", "quantity": 2, "unit_price": "9.00",
                   "some_future_field": True},
                  {"delivery_line_id": str(uuid.uuid4()), "sku": "VALVE-7", "quantity": 5, "unit_price": "1.00"}],
        "another_future_field": {"x": 1}}, times=3)  # delivered three times, as at-least-once allows
    service.applied(event, "on_goods_issued")
    service.wait_for(lambda: service.count("SELECT count(*) FROM inbox") == 1)
    with service.db.cursor() as cur:
        cur.execute("SELECT sku, quantity, issued_at, delivery_number, delivery_id::text FROM delivered_lines"
                    " ORDER BY sku")
        lines = cur.fetchall()
    assert [(r["sku"], r["quantity"], r["issued_at"], r["delivery_number"], r["delivery_id"]) for r in lines] == [
        ("PUMP-100", 2, issued_at, "DN-2026-000007", delivery), ("VALVE-7", 5, issued_at, "DN-2026-000007", delivery)]
    assert service.count("SELECT count(*) FROM failed_messages") == 0


def test_events_missing_what_aftersales_needs_are_parked_not_lost(service, org):
    service.publish("inventory", "goods.issued", {"delivery_id": str(uuid.uuid4()), "customer_id": org.customer,
                                                  "lines": []})  # no issued_at, no lines
    service.publish("inventory", "product.created", {"name": "no sku"})
    service.publish("customer", "customer.owner_changed", {"customer_id": "nope", "owner_id": None})
    service.wait_for(lambda: service.count("SELECT count(*) FROM failed_messages") == 3, what="three parked messages")
    with service.db.cursor() as cur:
        cur.execute("SELECT handler, error FROM failed_messages ORDER BY handler")
        parked = {row["handler"]: row["error"] for row in cur.fetchall()}
    assert set(parked) == {"aftersales.on_goods_issued", "aftersales.on_product_created",
                           "aftersales.on_customer_owner_changed"}
    assert "issued_at" in parked["aftersales.on_goods_issued"]
    assert service.count("SELECT count(*) FROM delivered_lines") + service.count("SELECT count(*) FROM products") == 0


def test_customer_events_keep_the_snapshot_and_move_it_on_requests(service, org):
    created_at = datetime.now(timezone.utc) - timedelta(days=1)
    customer_id = str(uuid.uuid4())
    event = service.publish("customer", "customer.created", {
        "customer_id": customer_id, "number": "CUS-2026-000042", "name": "Xinhua Tools", "tax_id": None,
        "industry": "tools", "size": "small", "region": "North", "source": "internet", "status": "potential",
        "owner_id": org.rep["staff_id"], "owner_team": "east-1", "created_at": created_at.isoformat()},
        occurred_at=created_at)
    service.applied(event, "on_customer_created")
    with service.db.cursor() as cur:
        cur.execute("SELECT number, name, owner_id::text, owner_team, region FROM customers WHERE customer_id = %s",
                    (customer_id,))
        assert cur.fetchone() == {"number": "CUS-2026-000042", "name": "Xinhua Tools",
                                  "owner_id": org.rep["staff_id"], "owner_team": "east-1", "region": "North"}
    # a request of another customer is not touched by this customer's updates
    service.deliver(org.customer, [("PUMP-100", 1)])
    other = service.rpc.open_request(request_id=str(uuid.uuid4()), actor=org.rep, service_request={
        "customer_id": org.customer, "sku": "PUMP-100", "type": "training", "priority": "low",
        "description": "operator training"})
    updated = service.publish("customer", "customer.updated", {"customer_id": org.customer, "region": "South"})
    service.applied(updated, "on_customer_updated")
    assert service.rpc.get_request(actor=org.rep, service_request_id=other["id"])["region"] == "South"
    assert service.rpc.get_request(actor=org.rep, service_request_id=other["id"])["customer_name"]


def test_a_bad_sla_table_stops_the_service_from_starting(container_factory, service_config, db_name):
    container = container_factory(AftersalesService, service_config(
        db_name, AFTERSALES={"SLA_HOURS": {"repair": {"urgent": 9}}}))
    with pytest.raises(ConfigError, match="SLA_HOURS"):
        container.start()


def test_the_sla_table_comes_from_config(start_service, org):
    table = {t: {p: 100 for p in ("low", "normal", "high", "urgent")} for t in
             ("repair", "replacement", "return", "complaint", "training", "consultation")}
    table["complaint"]["urgent"] = 1
    service = start_service(AFTERSALES={"SLA_HOURS": table})
    service.deliver(org.customer, [("PUMP-100", 1)])
    opened = service.rpc.open_request(request_id=str(uuid.uuid4()), actor=org.rep, service_request={
        "customer_id": org.customer, "sku": "PUMP-100", "type": "complaint", "priority": "urgent",
        "description": "rude driver"})
    assert opened["sla_hours"] == 1


def test_a_request_takes_the_newest_owner_of_the_customer_whichever_source_told_it_first(service, org):
    # the customer service's answer can be older than a change of owner its event already brought
    moved = service.publish("customer", "customer.owner_changed", {
        "customer_id": org.customer, "owner_id": org.other_rep["staff_id"], "owner_team": "west-2"},
        occurred_at=datetime.now(timezone.utc) + timedelta(seconds=30))
    service.applied(moved, "on_customer_owner_changed")
    service.deliver(org.customer, [("PUMP-100", 1)])
    opened = service.rpc.open_request(request_id=str(uuid.uuid4()), actor=org.rep, service_request={
        "customer_id": org.customer, "sku": "PUMP-100", "type": "consultation", "priority": "low",
        "description": "how to descale"})
    assert (opened["owner_id"], opened["owner_team"]) == (org.other_rep["staff_id"], "west-2")
