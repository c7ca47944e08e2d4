"""The customer service's errors; each class name is its public code."""
from shared.errors import Conflict, NotFound


class DuplicateCustomer(Conflict):
    """Same normalised name or tax id as a customer already recorded (FR-06, FR-07)."""

    title = "Customer already recorded"


class CustomerNotFound(NotFound):
    code = "NOT_FOUND"


class StaffNotFound(NotFound):
    code = "NOT_FOUND"


class StaffExists(Conflict):
    title = "Staff member already recorded"
