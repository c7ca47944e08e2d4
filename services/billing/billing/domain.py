"""Credit rules, free of any framework (FR-63–FR-66)."""
from decimal import Decimal

CURRENCY = "CNY"
OPENING_LIMIT = Decimal("0.00")  # a new customer has no credit until finance or the formula grants it
CENT = Decimal("0.01")


def money(value):
    return Decimal(value).quantize(CENT)


def available(limit, exposure):
    """What the customer may still owe: never shown below zero."""
    return max(money(limit) - money(exposure), Decimal("0.00"))
