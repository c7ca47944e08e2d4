"""RPC inputs and outputs of the billing service."""
from marshmallow import fields

from shared.validation import StrictSchema


class CustomerCreatedData(StrictSchema):
    """The fields of `customer.created` billing reads; the rest are ignored, not refused."""

    class Meta:
        unknown = "exclude"

    customer_id = fields.UUID(required=True)


class HistoryOut(StrictSchema):
    old_limit = fields.Decimal(as_string=True, allow_none=True)
    new_limit = fields.Decimal(as_string=True)
    reason = fields.String()
    changed_by = fields.String(allow_none=True)
    changed_at = fields.DateTime()


class CreditAccountOut(StrictSchema):
    customer_id = fields.String()
    limit = fields.Decimal(as_string=True)
    currency = fields.String()
    grade = fields.String(allow_none=True)
    exposure = fields.Decimal(as_string=True)
    available = fields.Decimal(as_string=True)
    opened_at = fields.DateTime()
    history = fields.List(fields.Nested(HistoryOut))


customer_created_data = CustomerCreatedData()
credit_account_out = CreditAccountOut()
