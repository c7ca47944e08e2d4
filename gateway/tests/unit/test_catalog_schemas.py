"""The request schemas of API.md "Catalog and stock" and "Deliveries": their OpenAPI examples pass
them, unknown fields are refused, and money, rates and quantities are never coerced."""
import pytest
from marshmallow import ValidationError

from gateway.api import catalog

REQUESTS = [catalog.ProductCreate, catalog.ProductPatch, catalog.WarehouseCreate, catalog.StockReceiptCreate,
            catalog.AdjustmentCreate, catalog.ReverseRequest, catalog.DeliveryCreate, catalog.DeliveryCancel]


@pytest.mark.parametrize("schema", REQUESTS)
def test_api_openapi_catalog_examples_pass_their_own_schema_and_unknown_fields_are_refused(schema):
    schema().load(schema.example)
    with pytest.raises(ValidationError) as info:
        schema().load(dict(schema.example, colour="red"))
    assert "colour" in info.value.messages


@pytest.mark.parametrize("field,value", [("list_price", "1.234"), ("list_price", 1.5), ("list_price", "-1"),
                                         ("vat_rate", "1.0"), ("vat_rate", "0.13 "), ("warranty_months", "12"),
                                         ("sku", "a/b")])
def test_api_catalog_product_fields_are_not_coerced(field, value):
    with pytest.raises(ValidationError) as info:
        catalog.ProductCreate().load(dict(catalog.ProductCreate.example, **{field: value}))
    assert field in info.value.messages


def test_api_catalog_quantities_are_whole_numbers_above_zero():
    for quantity in (0, -1, 2.5, "3", None):
        with pytest.raises(ValidationError):
            catalog.DeliveryCreate().load(dict(catalog.DeliveryCreate.example,
                                               lines=[{"sku": "A", "quantity": quantity}]))
