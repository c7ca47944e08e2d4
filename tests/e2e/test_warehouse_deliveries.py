"""Shipment (SP) end to end with the real processes: a delivery note (发货单, FR-77) raised through
the gateway from a confirmed order's reservation, the goods issue (出库单, FR-78) by the warehouse
(never by a rep), cancellation, every refusal with its code, row-level access on delivery notes.
The order saga's two steps are played behind the gateway, as the order service does them: its
`reserve_stock` RPC and its `order.confirmed` event (which commits the reservation)."""
import uuid

import pytest


pytestmark = pytest.mark.slow


def test_fr77_fr78_deliveries_over_http(start_platform):
    platform = start_platform("customer", "inventory")
    pm, _ = platform.user("pm1", "product_manager")
    keeper, _ = platform.user("keeper1", "warehouse")
    desk, _ = platform.user("desk1", "order_desk")
    rep1, rep1_user = platform.user("rep1", "sales_rep", team="East")
    rep2, _ = platform.user("rep2", "sales_rep", team="West")
    pm.post("products", {"sku": "SRV-400W", "name": "Servo", "unit": "pcs", "list_price": "1280.00",
                         "floor_price": "1050.00"}, expect=201)
    keeper.post("stock/receipts", {"lines": [{"sku": "SRV-400W", "quantity": 10}], "reason": "production"},
                expect=201)

    # the order saga reserves (idempotent by reservation_id), as the order service does
    order_id, reservation_id, line_id = (str(uuid.uuid4()) for _ in range(3))
    reserve = dict(reservation_id=reservation_id, order_id=order_id, order_number="SO-2026-000001",
                   customer_id=str(uuid.uuid4()), owner_id=rep1_user["staff_id"], owner_team="East",
                   region="East China",
                   lines=[{"line_id": line_id, "sku": "SRV-400W", "quantity": 6, "unit_price": "1200.00"}])
    with platform.rpc() as rpc:
        assert rpc.inventory.reserve_stock(**reserve)["status"] == "held"
        assert rpc.inventory.reserve_stock(**reserve)["status"] == "held"  # after a broker bounce: once
    stock = rep1.get("stock", params={"sku": "SRV-400W"}, expect=200)["items"][0]
    assert (stock["on_hand"], stock["reserved"], stock["available"]) == (10, 6, 4)

    note = {"order_id": order_id, "lines": [{"sku": "SRV-400W", "quantity": 4}]}
    early = rep1.post("deliveries", note)  # FR-73: not before the order is confirmed
    assert (early.status_code, early.json()["code"]) == (409, "RESERVATION_NOT_COMMITTED")
    platform.publish("order", "order.confirmed",
                     {"order_id": order_id, "number": "SO-2026-000001", "total": "7200.00"})

    def committed():
        with platform.rpc() as rpc:
            return rpc.inventory.get_reservation(actor={"staff_id": str(uuid.uuid4()), "role": "admin"},
                                                 order_id=order_id)["status"] == "committed"

    platform.wait_for(committed, what="order.confirmed committing the reservation")

    # raised by the order's rep or the order desk; someone else's order is not found
    assert rep2.post("deliveries", note).status_code == 404
    assert keeper.post("deliveries", note).status_code == 403
    first = rep1.post("deliveries", note)
    assert first.status_code == 201 and first.headers["Location"] == f"/api/v1/deliveries/{first.json()['id']}"
    first = first.json()
    assert first["status"] == "pending" and first["number"].startswith("DN-") and first["total"] == "4800.00"
    over = desk.post("deliveries", {"order_id": order_id, "lines": [{"sku": "SRV-400W", "quantity": 3}]})
    assert (over.status_code, over.json()["code"]) == (409, "OVER_DELIVERY")
    assert over.json()["lines"] == [{"line": 0, "sku": "SRV-400W", "requested": 3, "deliverable": 2}]
    for lines, code, field in (([{"sku": "SRV-400W", "quantity": 0}], "VALIDATION_FAILED", "lines.0.quantity"),
                               ([{"sku": "SRV-400W", "quantity": -1}], "VALIDATION_FAILED", "lines.0.quantity"),
                               ([{"sku": "NO-SUCH", "quantity": 1}], "UNKNOWN_SKU", "lines.0.sku")):
        refused = desk.post("deliveries", {"order_id": order_id, "lines": lines})
        assert (refused.status_code, refused.json()["code"]) == (422, code) and field in refused.json()["errors"]
    second = desk.post("deliveries", {"order_id": order_id, "lines": [{"sku": "SRV-400W", "quantity": 2}]},
                       expect=201)

    # the warehouse issues the goods; a rep cannot
    assert rep1.post(f"deliveries/{first['id']}/issue").status_code == 403
    issued = keeper.post(f"deliveries/{first['id']}/issue", expect=200)
    assert issued["status"] == "issued" and issued["goods_issue_number"].startswith("GI-")
    again = keeper.post(f"deliveries/{first['id']}/issue")
    assert (again.status_code, again.json()["code"]) == (409, "DELIVERY_ALREADY_ISSUED")
    stock = keeper.get("stock", params={"sku": "SRV-400W", "warehouse": "MAIN"}, expect=200)["items"][0]
    assert (stock["on_hand"], stock["reserved"], stock["available"]) == (6, 2, 4)

    # a pending note can be cancelled; a cancelled one is never issued
    cancelled = desk.post(f"deliveries/{second['id']}/cancel", {"reason": "customer asked to wait"}, expect=200)
    assert cancelled["status"] == "cancelled"
    refused = keeper.post(f"deliveries/{second['id']}/issue")
    assert (refused.status_code, refused.json()["code"]) == (409, "DELIVERY_CANCELLED")
    late = desk.post(f"deliveries/{first['id']}/cancel", {"reason": "too late"})
    assert (late.status_code, late.json()["code"]) == (409, "DELIVERY_ALREADY_ISSUED")

    # row-level access: the owner sees the order's notes, another rep none (404 for one of them)
    mine = rep1.get("deliveries", params={"order_id": order_id}, expect=200)["items"]
    assert [d["id"] for d in mine] == [second["id"], first["id"]]
    assert rep2.get("deliveries", params={"order_id": order_id}, expect=200)["items"] == []
    rep2.get(f"deliveries/{first['id']}", expect=404)
    assert desk.get(f"deliveries/{first['id']}", expect=200)["status"] == "issued"
    assert [d["id"] for d in keeper.get("deliveries", params={"status": "issued"}, expect=200)["items"]] == [
        first["id"]]

    with platform.rpc() as rpc:
        books = rpc.inventory.check_stock_ledger()
    assert books["ok"], books["mismatches"]
