"""The aftersales service's errors; each class name is its public code (shared.errors)."""
from shared import errors


class ServiceRequestNotFound(errors.NotFound):
    """No such request, or not one the caller may see (404, never 403: ids cannot be probed)."""

    code = "NOT_FOUND"


class InvalidState(errors.InvalidState):
    """The request (or its repair) is not in a state this step may start from (409)."""


class ActionNotAllowed(errors.Forbidden):
    """The caller's role may not take this step (FR-102: only the sales manager confirms)."""


class EngineerNotAssigned(errors.Forbidden):
    """Only the service engineer the request is assigned to works and resolves it (FR-103)."""


class AlreadyAssigned(errors.Conflict):
    """The request is already assigned to that engineer."""


class ProductNotDelivered(errors.BusinessRuleViolation):
    """The customer never received this product (on this delivery) according to goods.issued."""

    title = "Product not delivered to this customer"


class DeliveryRequired(errors.BusinessRuleViolation):
    """A return or a replacement needs the delivery the product came from."""


class QuantityExceedsDelivered(errors.BusinessRuleViolation):
    """More units to return or replace than that delivery brought the customer."""


class NotARepair(errors.BusinessRuleViolation):
    """Repair steps, and the `repair` resolution, belong to repair requests only (FR-97)."""


class InWarranty(errors.BusinessRuleViolation):
    """A repair under warranty is not quoted: the customer pays nothing (FR-97)."""


class QuoteRequired(errors.BusinessRuleViolation):
    """A repair out of warranty starts only once the customer approved the quote (FR-97)."""


class RepairNotFinished(errors.BusinessRuleViolation):
    """A request is resolved as repaired only once the repaired unit is back with the customer."""
