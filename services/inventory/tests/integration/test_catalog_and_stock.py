"""The catalog (prices with history, product events), warehouses, goods receipts, adjustments and
their reversals, low stock, and the ledger every level is recomputed from — against the real
PostgreSQL and RabbitMQ."""
import uuid

import psycopg2
import pytest

from shared.errors import BusinessRuleViolation, Conflict, Forbidden, InvalidState, NotFound, ValidationFailed
from shared.testing.contracts import assert_matches_contract


def rid():
    return str(uuid.uuid4())


# -- catalog ----------------------------------------------------------------------------------
def test_fr43_product_has_list_and_floor_price_vat_default_and_opening_price_history(inv):
    product = inv.product(sku="SRV-400", warranty_months=24)
    assert product["sku"] == "SRV-400"
    assert (product["list_price"], product["floor_price"], product["vat_rate"]) == ("1200.00", "1000.00", "0.13")
    assert product["active"] is True and product["warranty_months"] == 24
    assert [(p["list_price"], p["floor_price"]) for p in product["price_history"]] == [("1200.00", "1000.00")]
    assert inv.rpc.get_product(sku="SRV-400") == product
    [created] = inv.events("product.created")
    assert created["data"] == {"sku": "SRV-400", "name": "Servo motor 400W", "unit": "pcs", "list_price": "1200.00",
                               "floor_price": "1000.00", "vat_rate": "0.13", "active": True, "warranty_months": 24,
                               "version": 1, "changed_at": created["data"]["changed_at"]}
    assert_matches_contract("inventory", created)


def test_price_change_is_kept_with_history_and_published_other_changes_as_product_updated(inv, who):
    sku = inv.product()["sku"]
    changed = inv.rpc.update_product(request_id=rid(), actor=who.pm, sku=sku,
                                     changes={"list_price": "1300.00", "floor_price": "1050.50"})
    assert (changed["list_price"], changed["floor_price"], changed["version"]) == ("1300.00", "1050.50", 2)
    assert [p["list_price"] for p in changed["price_history"]] == ["1200.00", "1300.00"]
    [event] = inv.events("product.price_changed")
    assert event["data"]["list_price"] == "1300.00" and event["data"]["previous_list_price"] == "1200.00"
    assert event["data"]["floor_price"] == "1050.50" and event["data"]["previous_floor_price"] == "1000.00"
    assert_matches_contract("inventory", event)

    renamed = inv.rpc.update_product(request_id=rid(), actor=who.pm, sku=sku, changes={"active": False, "name": "Old"})
    assert renamed["active"] is False and len(renamed["price_history"]) == 2  # no price change, no history
    [updated] = inv.events("product.updated")
    assert updated["data"]["changed"] == ["active", "name"] and updated["data"]["active"] is False
    assert_matches_contract("inventory", updated)
    # the same values again change nothing and publish nothing
    inv.rpc.update_product(request_id=rid(), actor=who.pm, sku=sku, changes={"active": False})
    assert len(inv.all_events()) == 3


@pytest.mark.parametrize("field,value", [
    ("list_price", 1200.5),          # money is a decimal string, never a float
    ("list_price", "12.345"),        # at most 2 places: refused, not rounded
    ("floor_price", "-1.00"),
    ("vat_rate", "1.2"),
    ("vat_rate", 0.13),
    ("sku", "has space"),
    ("unit", ""),
    ("warranty_months", "12"),
    ("colour", "red"),               # unknown fields are refused, never stored
])
def test_bad_product_input_is_refused_naming_the_field_and_changes_nothing(inv, who, field, value):
    body = {"sku": "X-1", "name": "Thing", "unit": "pcs", "list_price": "10.00", "floor_price": "8.00", field: value}
    with pytest.raises(ValidationFailed) as info:
        inv.rpc.create_product(request_id=rid(), actor=who.pm, product=body)
    assert field in info.value.errors
    assert inv.count("SELECT count(*) FROM products") + inv.count("SELECT count(*) FROM outbox") == 0


def test_fr43_floor_above_list_duplicate_sku_and_wrong_role_are_refused(inv, who):
    with pytest.raises(ValidationFailed) as info:
        inv.product(list_price="100.00", floor_price="120.00")
    assert info.value.code == "FLOOR_ABOVE_LIST_PRICE" and "floor_price" in info.value.errors
    sku = inv.product()["sku"]
    with pytest.raises(Conflict) as info:
        inv.product(sku=sku)
    assert info.value.code == "PRODUCT_EXISTS"
    with pytest.raises(ValidationFailed) as info:  # a change may not break the rule either
        inv.rpc.update_product(request_id=rid(), actor=who.pm, sku=sku, changes={"floor_price": "5000.00"})
    assert info.value.code == "FLOOR_ABOVE_LIST_PRICE"
    with pytest.raises(Forbidden):
        inv.rpc.create_product(request_id=rid(), actor=who.new("sales_rep"),
                               product={"sku": "R-1", "name": "n", "unit": "u", "list_price": "1.00",
                                        "floor_price": "1.00"})
    with pytest.raises(NotFound):
        inv.rpc.get_product(sku="NOPE")
    assert inv.count("SELECT count(*) FROM price_history") == 1


def test_create_product_is_idempotent_by_request_id(inv, who):
    request_id = rid()
    body = {"sku": "IDEM-1", "name": "n", "unit": "pcs", "list_price": "1.00", "floor_price": "1.00"}
    one = inv.rpc.create_product(request_id=request_id, actor=who.pm, product=body)
    assert inv.rpc.create_product(request_id=request_id, actor=who.pm, product=body) == one
    assert len(inv.events("product.created")) == 1
    with pytest.raises(ValidationFailed) as info:
        inv.rpc.create_product(request_id=request_id, actor=who.pm, product=dict(body, name="other"))
    assert info.value.code == "IDEMPOTENCY_KEY_REUSED"


def test_products_list_with_filters_and_an_opaque_cursor(inv, who):
    skus = sorted(inv.product(sku=f"LST-{i}")["sku"] for i in range(5))
    inv.rpc.update_product(request_id=rid(), actor=who.pm, sku="LST-3", changes={"active": False})
    seen, cursor = [], None
    while True:
        page = inv.rpc.list_products(limit=2, cursor=cursor)
        seen += [p["sku"] for p in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == skus
    assert [p["sku"] for p in inv.rpc.list_products(filters={"active": False})["items"]] == ["LST-3"]
    assert len(inv.rpc.list_products(filters={"q": "lst-"})["items"]) == 5
    with pytest.raises(ValidationFailed) as info:
        inv.rpc.list_products(cursor="garbage")
    assert "cursor" in info.value.errors


# -- warehouses -------------------------------------------------------------------------------
def test_there_is_a_default_warehouse_and_new_ones_can_be_added(inv, who):
    assert inv.rpc.list_warehouses()["items"][0]["code"] == "MAIN"
    made = inv.rpc.create_warehouse(request_id=rid(), actor=who.keeper,
                                    warehouse={"code": "SZ-01", "name": "Suzhou DC", "address": "Suzhou"})
    assert made["is_default"] is False
    assert [w["code"] for w in inv.rpc.list_warehouses()["items"]] == ["MAIN", "SZ-01"]
    with pytest.raises(Conflict) as info:
        inv.rpc.create_warehouse(request_id=rid(), actor=who.keeper, warehouse={"code": "SZ-01", "name": "again"})
    assert info.value.code == "WAREHOUSE_EXISTS"


# -- receipts, adjustments, reversals ---------------------------------------------------------
def test_receipts_and_adjustments_move_on_hand_with_documents_and_ledger(inv, who):
    sku = inv.product()["sku"]
    receipt = inv.receive(sku, 10)
    assert receipt["number"].startswith("GR-") and receipt["kind"] == "goods_receipt"
    assert receipt["lines"] == [dict(receipt["lines"][0], sku=sku, quantity=10)]
    adjustment = inv.rpc.adjust_stock(request_id=rid(), actor=who.keeper, adjustment={
        "lines": [{"sku": sku, "delta": -3}], "reason": "cycle count: 3 damaged"})
    assert adjustment["number"].startswith("ADJ-") and adjustment["lines"][0]["quantity"] == -3
    level = inv.level(sku)
    assert (level["on_hand"], level["reserved"], level["available"], level["on_loan"]) == (7, 0, 7, 0)
    kinds = [m["kind"] for m in inv.rpc.list_movements(filters={"sku": sku})["items"]]
    assert kinds == ["adjustment", "receipt"]
    inv.books_balance()


def test_bad_lines_are_refused_with_a_clear_code_and_change_nothing(inv, who):
    sku = inv.product()["sku"]
    cases = [
        ({"lines": [{"sku": sku, "quantity": 0}], "reason": "r"}, "VALIDATION_FAILED", "lines.0.quantity"),
        ({"lines": [{"sku": sku, "quantity": -5}], "reason": "r"}, "VALIDATION_FAILED", "lines.0.quantity"),
        ({"lines": [{"sku": sku, "quantity": 1.5}], "reason": "r"}, "VALIDATION_FAILED", "lines.0.quantity"),
        ({"lines": [{"sku": "NO-SUCH", "quantity": 1}], "reason": "r"}, "UNKNOWN_SKU", "lines.0.sku"),
        ({"lines": [{"sku": sku, "quantity": 1}, {"sku": sku, "quantity": 2}], "reason": "r"},
         "VALIDATION_FAILED", "lines.1.sku"),
        ({"lines": [], "reason": "r"}, "VALIDATION_FAILED", "lines"),
        ({"lines": [{"sku": sku, "quantity": 1}]}, "VALIDATION_FAILED", "reason"),
        ({"warehouse": "NOWHERE", "lines": [{"sku": sku, "quantity": 1}], "reason": "r"},
         "UNKNOWN_WAREHOUSE", "warehouse"),
    ]
    for receipt, code, field in cases:
        with pytest.raises(ValidationFailed) as info:
            inv.rpc.post_receipt(request_id=rid(), actor=who.keeper, receipt=receipt)
        assert (info.value.code, field in info.value.errors) == (code, True), (receipt, info.value.errors)
    with pytest.raises(ValidationFailed) as info:
        inv.rpc.adjust_stock(request_id=rid(), actor=who.keeper,
                             adjustment={"lines": [{"sku": sku, "delta": 0}], "reason": "r"})
    assert "lines.0.delta" in info.value.errors
    assert inv.count("SELECT count(*) FROM stock_movements") + inv.count("SELECT count(*) FROM stock_documents") == 0
    assert inv.count("SELECT count(*) FROM document_sequences") == 0


def test_adjustment_below_what_is_reserved_is_refused(inv, who):
    sku = inv.stocked(5)
    inv.reserve([(sku, 4)])
    with pytest.raises(BusinessRuleViolation) as info:
        inv.rpc.adjust_stock(request_id=rid(), actor=who.keeper,
                             adjustment={"lines": [{"sku": sku, "delta": -2}], "reason": "count"})
    assert info.value.code == "INSUFFICIENT_STOCK"
    assert info.value.extra["shortages"][0]["available"] == 1
    assert inv.level(sku)["on_hand"] == 5
    inv.books_balance()


def test_posted_documents_are_immutable_and_corrected_by_a_reversal_once(inv, who, db_connect, db_name):
    sku = inv.product()["sku"]
    receipt = inv.receive(sku, 8)
    conn = db_connect(db_name)
    for sql in ("UPDATE stock_documents SET reason = 'edited'", "DELETE FROM stock_document_lines",
                "UPDATE stock_movements SET quantity = 80", "DELETE FROM stock_movements",
                "UPDATE price_history SET list_price = 1"):
        with pytest.raises(psycopg2.errors.RestrictViolation):
            conn.cursor().execute(sql)
    reversal = inv.rpc.reverse_stock_document(request_id=rid(), actor=who.keeper, document_id=receipt["id"],
                                              reason="booked to the wrong SKU")
    assert reversal["reverses_id"] == receipt["id"] and reversal["lines"][0]["quantity"] == -8
    assert reversal["number"].startswith("GR-")
    assert inv.rpc.get_stock_document(actor=who.keeper, document_id=receipt["id"])["reversed_by"] == reversal["id"]
    assert inv.level(sku)["on_hand"] == 0
    with pytest.raises(Conflict) as info:
        inv.rpc.reverse_stock_document(request_id=rid(), actor=who.keeper, document_id=receipt["id"], reason="again")
    assert info.value.code == "DOCUMENT_ALREADY_REVERSED"
    with pytest.raises(InvalidState) as info:
        inv.rpc.reverse_stock_document(request_id=rid(), actor=who.keeper, document_id=reversal["id"], reason="x")
    assert info.value.code == "DOCUMENT_NOT_REVERSIBLE"
    inv.books_balance()


def test_a_receipt_whose_goods_are_reserved_cannot_be_reversed(inv, who):
    sku = inv.product()["sku"]
    receipt = inv.receive(sku, 3)
    inv.reserve([(sku, 2)])
    with pytest.raises(BusinessRuleViolation) as info:
        inv.rpc.reverse_stock_document(request_id=rid(), actor=who.keeper, document_id=receipt["id"], reason="x")
    assert info.value.code == "INSUFFICIENT_STOCK"
    assert inv.level(sku)["on_hand"] == 3


def test_document_numbers_are_gap_free_per_year_even_when_a_command_fails(inv, who):
    sku = inv.stocked(1)
    inv.reserve([(sku, 1)])
    with pytest.raises(BusinessRuleViolation):  # fails after taking a number: rolled back with it
        inv.rpc.adjust_stock(request_id=rid(), actor=who.keeper,
                             adjustment={"lines": [{"sku": sku, "delta": -1}], "reason": "count"})
    numbers = [inv.receive(sku, 1)["number"] for _ in range(2)]
    year = numbers[0].split("-")[1]
    assert numbers == [f"GR-{year}-000002", f"GR-{year}-000003"]
    adjustment = inv.rpc.adjust_stock(request_id=rid(), actor=who.keeper,
                                      adjustment={"lines": [{"sku": sku, "delta": 1}], "reason": "found"})
    assert adjustment["number"] == f"ADJ-{year}-000001"


# -- low stock ----------------------------------------------------------------------------------
def test_stock_low_fires_once_when_available_falls_below_the_threshold(inv, who):
    sku = inv.stocked(10, low_stock_threshold=5)
    inv.reserve([(sku, 5)])            # 5 available: not below
    assert inv.events("stock.low") == []
    inv.reserve([(sku, 1)])            # 4: below, fires
    inv.reserve([(sku, 1)])            # 3: still below, no repeat
    [low] = inv.events("stock.low")
    assert low["data"] == {"sku": sku, "warehouse": "MAIN", "available": 4, "on_hand": 10, "reserved": 6,
                           "threshold": 5}
    assert_matches_contract("inventory", low)
    inv.receive(sku, 10)               # back above
    inv.rpc.adjust_stock(request_id=rid(), actor=who.keeper,
                         adjustment={"lines": [{"sku": sku, "delta": -10}], "reason": "damaged"})
    assert len(inv.events("stock.low")) == 2


# -- the books ----------------------------------------------------------------------------------
def test_the_ledger_check_finds_a_level_changed_behind_the_books(inv, db_connect, db_name):
    sku = inv.stocked(5)
    assert inv.books_balance()["items_checked"] == 1
    db_connect(db_name).cursor().execute("UPDATE stock_levels SET on_hand = on_hand + 1 WHERE sku = %s", (sku,))
    check = inv.rpc.check_stock_ledger()
    assert check["ok"] is False
    [problem] = check["mismatches"]
    assert problem["sku"] == sku and problem["stored"]["on_hand"] == 6 and problem["ledger"]["on_hand"] == 5
