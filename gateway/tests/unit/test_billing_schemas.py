"""API.md "Billing": the request schemas of gateway/api/billing.py alone (no broker, no database)."""
import pytest
from marshmallow import ValidationError

from gateway.api import billing
from shared.errors import ValidationFailed

REQUESTS = [billing.CreditLimitUpdate, billing.RecomputeRequest, billing.InvoiceCreate, billing.Cancel,
            billing.InvoiceReverse, billing.ReceiptCreate, billing.AllocationCreate, billing.AllocationReverse,
            billing.StatementConfirm]


@pytest.mark.parametrize("schema", REQUESTS)
def test_api_billing_examples_pass_their_own_schema_and_unknown_fields_are_refused(schema):
    schema().load(schema.example)
    with pytest.raises(ValidationError) as refused:
        schema().load(dict(schema.example, colour="red"))
    assert "colour" in refused.value.messages


@pytest.mark.parametrize("value", [1234.5, 100, "12.345", "-1.00", "1e3", " 1.00", "", "abc", True])
def test_api_money_is_a_decimal_string_with_two_places_at_most(value):
    with pytest.raises(ValidationError) as refused:
        billing.CreditLimitUpdate().load({"limit": value, "reason": "x"})
    assert "decimal string" in refused.value.messages["limit"][0]


def test_api_money_rules_name_the_field():
    assert billing.CreditLimitUpdate().load({"limit": "0", "reason": "stop"})["limit"] == "0"
    with pytest.raises(ValidationError) as refused:
        billing.ReceiptCreate().load(dict(billing.ReceiptCreate.example, amount="0.00"))
    assert refused.value.messages == {"amount": ["must be greater than 0"]}
    with pytest.raises(ValidationError) as refused:
        billing.AllocationCreate().load({"allocations": [{"invoice_id": "6a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d",
                                                          "amount": 5}]})
    assert list(refused.value.messages["allocations"][0]) == ["amount"]


def test_fr66_a_limit_change_needs_a_reason():
    for reason in (None, "", "   "):
        with pytest.raises(ValidationError) as refused:
            billing.CreditLimitUpdate().load({"limit": "1000.00", "reason": reason})
        assert list(refused.value.messages) == ["reason"]
    with pytest.raises(ValidationError) as refused:
        billing.CreditLimitUpdate().load({"limit": "1000.00"})
    assert list(refused.value.messages) == ["reason"]


def test_api_billing_request_rules():
    with pytest.raises(ValidationError) as refused:
        billing.InvoiceCreate().load({"delivery_ids": [], "kind": "proforma"})
    assert set(refused.value.messages) == {"delivery_ids", "kind"}
    same = "0b7c8f9e-1d2a-4c3b-8e5f-6a7b8c9d0e1f"
    with pytest.raises(ValidationError) as refused:
        billing.InvoiceCreate().load({"delivery_ids": [same, same], "kind": "ordinary"})
    assert "delivery_ids" in refused.value.messages
    with pytest.raises(ValidationError) as refused:
        billing.StatementConfirm().load({"outcome": "disputed"})
    assert list(refused.value.messages) == ["note"]
    with pytest.raises(ValidationError):
        billing.RecomputeRequest().load({"quarter": "2026-Q5"})
    with pytest.raises(ValidationError):
        billing.InvoiceReverse().load({"reason": "x", "lines": [{"delivery_line_id": same, "quantity": 0}]})
    assert billing.month_of("2026-06") == "2026-06"
    with pytest.raises(ValidationFailed) as refused:
        billing.month_of("2026-6")
    assert list(refused.value.errors) == ["month"]


def test_api_billing_role_sets():
    assert billing.FINANCE == {"finance"} and billing.CERTIFIERS == {"sales_manager"}
    assert billing.RECEIPT_RECORDERS == billing.ALLOCATORS == {"sales_rep", "order_desk", "finance"}
    assert "warehouse" not in billing.BILLING_READERS and "service_engineer" not in billing.BILLING_READERS
