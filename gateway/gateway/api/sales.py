"""API.md "Quotes, contracts, orders", "Returns and loans" and targets (order service)."""


class SalesApi:
    pass
