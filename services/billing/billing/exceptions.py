"""The billing service's errors; each class name is its public code."""
from shared.errors import NotFound


class CreditAccountNotFound(NotFound):
    code = "NOT_FOUND"
