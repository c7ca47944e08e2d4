"""SQL of the billing service (no nameko here)."""


class CreditAccounts:
    def __init__(self, uow):
        self.uow = uow

    def open(self, customer_id, limit, currency, reason, source_event=None):
        """Open the account once; a second call for the same customer changes nothing."""
        row = self.uow.one(
            "INSERT INTO credit_accounts (customer_id, credit_limit, currency) VALUES (%s, %s, %s)"
            " ON CONFLICT (customer_id) DO NOTHING RETURNING customer_id",
            (customer_id, limit, currency),
        )
        if row is not None:
            self.uow.execute(
                "INSERT INTO credit_limit_history (customer_id, old_limit, new_limit, reason, source_event)"
                " VALUES (%s, NULL, %s, %s, %s)",
                (customer_id, limit, reason, source_event),
            )
        return row is not None

    def get(self, customer_id):
        return self.uow.one("SELECT * FROM credit_accounts WHERE customer_id = %s", (customer_id,))

    def history(self, customer_id):
        return self.uow.all(
            "SELECT old_limit, new_limit, reason, changed_by, changed_at FROM credit_limit_history"
            " WHERE customer_id = %s ORDER BY id", (customer_id,),
        )
