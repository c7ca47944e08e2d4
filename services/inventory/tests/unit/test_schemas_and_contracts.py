"""The RPC boundary's schemas (money never a float, quantities whole and positive, unknown fields
refused) and the event contracts: every event the service publishes has its JSON Schema, and
every consumed event is read with a schema that ignores what it does not know."""
import ast
import json
import uuid
from decimal import Decimal
from pathlib import Path

import pytest
from marshmallow import ValidationError

from inventory import schemas

SERVICE = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("value,ok", [
    ("0", True), ("1234.5", True), ("1234.50", True), ("9999999999999999.99", True),
    ("12.345", False), ("-1.00", False), ("1e3", False), ("NaN", False), (" 1.00", False), (12.5, False), (12, False),
    (None, False),
])
def test_money_is_a_decimal_string_with_at_most_two_places(value, ok):
    body = {"sku": "A", "name": "n", "unit": "u", "list_price": value, "floor_price": "0"}
    if ok:
        assert schemas.product_input.load(body)["list_price"] == Decimal(value)
    else:
        with pytest.raises(ValidationError) as info:
            schemas.product_input.load(body)
        assert "list_price" in info.value.messages


@pytest.mark.parametrize("value,ok", [("0.13", True), ("0", True), ("0.0900", True), ("1", False), ("0.12345", False),
                                      ("-0.1", False), (0.13, False)])
def test_a_vat_rate_is_a_decimal_string_below_one(value, ok):
    body = {"sku": "A", "name": "n", "unit": "u", "list_price": "1", "floor_price": "0", "vat_rate": value}
    if ok:
        schemas.product_input.load(body)
    else:
        with pytest.raises(ValidationError):
            schemas.product_input.load(body)


@pytest.mark.parametrize("quantity", [0, -1, 1.0, "1", True, 1_000_000_001])
def test_a_quantity_is_a_whole_number_above_zero(quantity):
    with pytest.raises(ValidationError) as info:
        schemas.receipt_input.load({"lines": [{"sku": "A", "quantity": quantity}], "reason": "r"})
    assert "quantity" in info.value.messages["lines"][0]


def test_outputs_dump_money_with_cents_and_rates_without_trailing_zeros():
    out = schemas.product_out.dump({"sku": "A", "list_price": Decimal("12.5"), "floor_price": Decimal("10"),
                                    "vat_rate": Decimal("0.1300")})
    assert (out["list_price"], out["floor_price"], out["vat_rate"]) == ("12.50", "10.00", "0.13")


def test_consumed_events_ignore_unknown_fields_but_require_the_ids():
    order_id = uuid.uuid4()
    assert schemas.order_confirmed_data.load({"order_id": str(order_id), "total": "1.00", "lines": []}) == \
        {"order_id": order_id}
    with pytest.raises(ValidationError):
        schemas.order_cancelled_data.load({"reason": "x"})
    assert "region" not in schemas.customer_updated_data.load({"customer_id": str(order_id), "name": "n"})


def published_event_types():
    """Every event type the service's code writes to its outbox (`uow.publish("<type>", ...)`)."""
    found = set()
    for path in (SERVICE / "inventory").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "publish" and node.args \
                    and isinstance(node.args[0], ast.Constant):
                found.add(node.args[0].value)
    return found


def test_every_published_event_has_a_json_schema_and_every_schema_an_event():
    contracts = {p.name.rsplit(".v", 1)[0] for p in (SERVICE / "contracts" / "events").glob("*.json")}
    assert published_event_types() == contracts
    for path in (SERVICE / "contracts" / "events").glob("*.json"):
        schema = json.loads(path.read_text())
        assert schema["properties"]["source"] == {"const": "inventory"}
        assert schema["$id"] == path.name[:-len(".json")]
