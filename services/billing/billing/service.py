"""Entrypoints of the billing service."""
import uuid

from billing import domain
from billing.db import CreditAccounts
from billing.exceptions import CreditAccountNotFound
from billing.schemas import credit_account_out, customer_created_data
from shared.dependencies import Database
from shared.entrypoints import event_handler, rpc
from shared.errors import ValidationFailed
from shared.service import ServiceBase
from shared.validation import load, load_actor


class BillingService(ServiceBase):
    name = "billing"

    db = Database()

    @event_handler("customer", "customer.created")
    def on_customer_created(self, uow, event):
        """A new customer gets a credit account with limit 0 (FR-63): nothing on credit until granted."""
        data = load(customer_created_data, event["data"])
        CreditAccounts(uow).open(
            data["customer_id"], domain.OPENING_LIMIT, domain.CURRENCY,
            reason="account opened for a new customer", source_event=event["event_id"],
        )

    @rpc
    def get_credit_account(self, *, actor, customer_id):
        load_actor(actor)
        try:
            customer_id = uuid.UUID(str(customer_id))
        except ValueError:
            raise ValidationFailed("customer_id is not a UUID", errors={"customer_id": ["not a valid UUID"]})
        with self.db.transaction() as uow:
            accounts = CreditAccounts(uow)
            account = accounts.get(customer_id)
            if account is None:
                raise CreditAccountNotFound(f"no credit account for customer {customer_id}")
            history = accounts.history(customer_id)
        exposure = domain.money(0)  # receivables and credit reservations arrive with invoicing and orders
        return credit_account_out.dump({
            "customer_id": str(account["customer_id"]),
            "limit": account["credit_limit"],
            "currency": account["currency"],
            "grade": account["grade"],
            "exposure": exposure,
            "available": domain.available(account["credit_limit"], exposure),
            "opened_at": account["opened_at"],
            "history": history,
        })
