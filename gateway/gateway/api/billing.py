"""API.md "Billing": credit accounts, and later invoices, receipts, statements, receivables."""
from marshmallow import Schema, fields

from gateway.api.customers import CUSTOMER_READERS
from gateway.http import api

API = "/api/v1"


class CreditAccountOut(Schema):
    customer_id = fields.UUID(required=True)
    limit = fields.String(metadata={"description": "decimal string, CNY"})
    grade = fields.String(allow_none=True)
    exposure = fields.String(metadata={"description": "decimal string, CNY"})
    available = fields.String(metadata={"description": "decimal string, CNY"})
    history = fields.List(fields.Dict())




class BillingApi:
    @api("GET", f"{API}/customers/<uuid:customer_id>/credit", roles=CUSTOMER_READERS,
         response=CreditAccountOut, tags=["customers", "billing"], errors=(404, 503, 504))
    def get_customer_credit(self, call, customer_id):
        """The customer's credit account: limit, grade, exposure, available, history."""
        return self.billing.get_credit_account(actor=call.actor, customer_id=customer_id)
