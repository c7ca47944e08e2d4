"""The sales endpoints' declarations (gateway/api/sales.py), without a broker: request schemas and
their examples, money as strings, the role sets API.md names, every path in the OpenAPI document."""
import pytest
from marshmallow import ValidationError

from gateway import openapi
from gateway.api import sales


@pytest.mark.parametrize("schema", sales.REQUEST_SCHEMAS, ids=lambda s: s.__name__)
def test_api_openapi_sales_examples_pass_their_own_schema(schema):
    schema().load(schema.example)


@pytest.mark.parametrize("schema", sales.REQUEST_SCHEMAS, ids=lambda s: s.__name__)
def test_api_errors_sales_request_schemas_refuse_unknown_fields(schema):
    with pytest.raises(ValidationError) as info:
        schema().load(dict(schema.example, colour="red"))
    assert "colour" in info.value.messages


@pytest.mark.parametrize("body,field", [
    ({"lines": [{"sku": "A", "quantity": 0}]}, "lines"),
    ({"lines": [{"sku": "A", "quantity": 1, "unit_price": "0"}]}, "lines"),
    ({"lines": [{"sku": "A", "quantity": 1, "unit_price": "NaN"}]}, "lines"),
    ({"lines": []}, "lines"),
    ({"valid_until": "31/12/2026"}, "valid_until"),
    ({"customer_id": "not-a-uuid"}, "customer_id"),
])
def test_api_errors_quote_input_is_checked_field_by_field(body, field):
    data = dict(sales.QuoteCreate.example, **body)
    with pytest.raises(ValidationError) as info:
        sales.QuoteCreate().load(data)
    assert field in info.value.messages


def test_money_travels_as_a_two_place_string():
    loaded = sales.OrderCreate().load({"customer_id": "0b7d5b8e-2a49-4c1e-9a57-5c4a0f0d9e11",
                                       "lines": [{"sku": "A", "quantity": 2, "unit_price": "95.5"}]})
    from gateway.http import plain

    assert plain(loaded)["lines"][0]["unit_price"] == "95.50"


def test_quota_and_target_inputs():
    with pytest.raises(ValidationError) as info:
        sales.QuotaCreate().load({"period": "2026-10", "sku": "A", "quantity": 5})
    assert "customer_id" in info.value.messages
    with pytest.raises(ValidationError) as info:
        sales.TargetCreate().load(dict(sales.TargetCreate.example, period="2026-Q5"))
    assert "period" in info.value.messages
    with pytest.raises(ValidationError):
        sales.Signature().load({"party": "notary"})


def test_roles_who_may_call_what():
    assert sales.CREDIT_RELEASERS == {"finance", "sales_director"}  # API.md
    assert sales.WAREHOUSE == {"warehouse"}
    assert "sales_rep" not in sales.APPROVERS and "sales_rep" not in sales.DIRECTORS
    assert "warehouse" not in sales.SELLERS and "finance" not in sales.SELLERS
    endpoints = dict((name, spec) for name, spec in openapi.endpoints_of(sales.SalesApi))
    assert endpoints["approve_return"].roles == {"product_manager"}
    assert endpoints["receive_return"].roles == endpoints["issue_loan"].roles == {"warehouse"}
    assert endpoints["release_credit_hold"].roles == sales.CREDIT_RELEASERS


def test_api_openapi_every_sales_path_of_api_md_is_served():
    paths = {(spec.method, openapi.openapi_path(spec.url)) for _, spec in openapi.endpoints_of(sales.SalesApi)}
    for method, path in [
        ("POST", "/quotes"), ("GET", "/quotes"), ("GET", "/quotes/{quote_id}"), ("PATCH", "/quotes/{quote_id}"),
        ("POST", "/quotes/{quote_id}/submit"), ("POST", "/quotes/{quote_id}/approve"),
        ("POST", "/quotes/{quote_id}/reject"), ("POST", "/quotes/{quote_id}/accept"),
        ("GET", "/contracts/{contract_id}"), ("POST", "/contracts/{contract_id}/approve"),
        ("POST", "/contracts/{contract_id}/sign"),
        ("POST", "/orders"), ("GET", "/orders"), ("GET", "/orders/{order_id}"), ("POST", "/orders/{order_id}/confirm"),
        ("POST", "/orders/{order_id}/release-credit-hold"), ("POST", "/orders/{order_id}/cancel"),
        ("POST", "/returns"), ("POST", "/returns/{return_id}/approve"), ("POST", "/returns/{return_id}/reject"),
        ("POST", "/returns/{return_id}/receive"),
        ("POST", "/loans"), ("POST", "/loans/{loan_id}/approve"), ("POST", "/loans/{loan_id}/issue"),
        ("POST", "/loans/{loan_id}/returns"), ("POST", "/loans/{loan_id}/convert"),
        ("POST", "/targets"), ("GET", "/targets"),
    ]:
        assert (method, "/api/v1" + path) in paths, (method, path)
    assert ("GET", "/api/v1/orders/{order_id}/timeline") not in paths  # issue 8
