"""The warehouse's catalog and stock end to end, driven only through the gateway's HTTP API with
the real processes: products and their price history kept by product managers (FR-43), goods
received and adjusted by the warehouse, stock per SKU and warehouse for everyone, each role
held to its endpoints, bad input refused naming the field, and the books balancing at the end."""
import uuid

import pytest
import requests

pytestmark = pytest.mark.slow


def test_warehouse_catalog_and_stock_over_http(start_platform):
    platform = start_platform("customer", "inventory")
    assert requests.get(platform.api("products"), timeout=5).status_code == 401
    pm, _ = platform.user("pm1", "product_manager")
    keeper, _ = platform.user("keeper1", "warehouse")
    rep, _ = platform.user("rep1", "sales_rep", team="East")
    product = {"sku": "SRV-400W", "name": "AC servo motor 400 W", "unit": "pcs", "list_price": "1280.00",
               "floor_price": "1050.00", "low_stock_threshold": 3}

    # the catalog is the product managers' (FR-43): a rep reads it but cannot change it
    assert rep.post("products", product).status_code == 403
    answer = pm.post("products", product)
    assert answer.status_code == 201 and answer.headers["Location"] == "/api/v1/products/SRV-400W"
    assert answer.json()["vat_rate"] == "0.13"
    assert pm.post("products", product).json()["code"] == "PRODUCT_EXISTS"
    bad = pm.post("products", dict(product, sku="SRV-2", list_price=1280.5))
    assert bad.status_code == 422 and "list_price" in bad.json()["errors"]
    floor = pm.post("products", dict(product, sku="SRV-3", floor_price="2000.00"))
    assert (floor.status_code, floor.json()["code"]) == (422, "FLOOR_ABOVE_LIST_PRICE")
    assert rep.patch("products/SRV-400W", {"list_price": "1.00"}).status_code == 403
    changed = pm.patch("products/SRV-400W", {"list_price": "1320.00"}, expect=200)
    assert [p["list_price"] for p in changed["price_history"]] == ["1280.00", "1320.00"]
    assert rep.get("products/SRV-400W", expect=200)["list_price"] == "1320.00"
    assert [p["sku"] for p in rep.get("products", params={"q": "servo"}, expect=200)["items"]] == ["SRV-400W"]
    rep.get("products/NO-SUCH", expect=404)

    # warehouses and goods in are the warehouse's
    assert rep.post("warehouses", {"code": "SZ-01", "name": "Suzhou"}).status_code == 403
    keeper.post("warehouses", {"code": "SZ-01", "name": "Suzhou DC"}, expect=201)
    assert [w["code"] for w in rep.get("warehouses", expect=200)["items"]] == ["MAIN", "SZ-01"]
    receipt = {"lines": [{"sku": "SRV-400W", "quantity": 10}], "reason": "purchase order PO-1"}
    assert rep.post("stock/receipts", receipt).status_code == 403
    key = str(uuid.uuid4())
    first = keeper.post("stock/receipts", receipt, key=key, expect=201)
    assert keeper.post("stock/receipts", receipt, key=key, expect=201) == first  # a retried POST counts once
    assert first["number"].startswith("GR-")
    keeper.post("stock/receipts", dict(receipt, warehouse="SZ-01"), expect=201)
    for body, code, field in (
            (dict(receipt, lines=[{"sku": "NO-SUCH", "quantity": 1}]), "UNKNOWN_SKU", "lines.0.sku"),
            (dict(receipt, lines=[{"sku": "SRV-400W", "quantity": 0}]), "VALIDATION_FAILED", "lines.0.quantity"),
            (dict(receipt, warehouse="NOWHERE"), "UNKNOWN_WAREHOUSE", "warehouse")):
        refused = keeper.post("stock/receipts", body)
        assert refused.status_code == 422 and refused.json()["code"] == code and field in refused.json()["errors"]

    adjusted = keeper.post("stock/adjustments", {"lines": [{"sku": "SRV-400W", "delta": -8}],
                                                 "reason": "cycle count: water damage"}, expect=201)
    assert adjusted["number"].startswith("ADJ-")
    stock = rep.get("stock", params={"sku": "SRV-400W"}, expect=200)["items"]
    assert [(s["warehouse"], s["on_hand"], s["reserved"], s["available"], s["on_loan"]) for s in stock] == [
        ("MAIN", 2, 0, 2, 0), ("SZ-01", 10, 0, 10, 0)]
    movements = keeper.get("stock/movements", params={"sku": "SRV-400W", "warehouse": "MAIN"}, expect=200)
    assert [m["kind"] for m in movements["items"]] == ["adjustment", "receipt"]
    assert rep.get("stock/movements").status_code == 403

    # a wrong receipt is corrected by a reversing document, never edited
    reversal = keeper.post(f"stock/documents/{first['id']}/reverse", {"reason": "wrong SKU"})
    assert reversal.status_code == 409 and reversal.json()["code"] == "INSUFFICIENT_STOCK"  # 8 already written off
    keeper.post("stock/receipts", dict(receipt, reason="found in aisle 4"), expect=201)
    reversed_ = keeper.post(f"stock/documents/{first['id']}/reverse", {"reason": "wrong SKU"}, expect=201)
    assert reversed_["reverses_id"] == first["id"]
    assert keeper.get(f"stock/documents/{first['id']}", expect=200)["reversed_by"] == reversed_["id"]
    assert rep.get("stock", params={"sku": "SRV-400W", "warehouse": "MAIN"}, expect=200)["items"][0]["on_hand"] == 2

    with platform.rpc() as rpc:
        books = rpc.inventory.check_stock_ledger()
    assert books["ok"], books["mismatches"]
