"""The inventory service's errors; each class name is its public code (`InsufficientStock` →
`INSUFFICIENT_STOCK`). They cross RPC as their kit kind (shared.errors) with code, detail, field
errors and extra fields intact."""
from shared.errors import BusinessRuleViolation, Conflict, Forbidden, InvalidState, NotFound, ValidationFailed


# -- the input names something that does not exist (422: the input itself is wrong) --------------
class UnknownSku(ValidationFailed):
    """A line names a SKU the catalog does not have; `errors` names the line's field."""

    title = "Unknown SKU"


class UnknownWarehouse(ValidationFailed):
    title = "Unknown warehouse"


# -- not found (someone else's document answers the same) -----------------------------------------
class ProductNotFound(NotFound):
    code = "NOT_FOUND"


class DeliveryNotFound(NotFound):
    code = "NOT_FOUND"


class ReservationNotFound(NotFound):
    code = "NOT_FOUND"


class LoanNotFound(NotFound):
    code = "NOT_FOUND"


class DocumentNotFound(NotFound):
    code = "NOT_FOUND"


# -- who may -----------------------------------------------------------------------------------
class ActionNotAllowed(Forbidden):
    code = "FORBIDDEN"


# -- conflicts with what is recorded ---------------------------------------------------------------
class ProductExists(Conflict):
    title = "SKU already in the catalog"


class WarehouseExists(Conflict):
    title = "Warehouse code already in use"


class ReservationExists(Conflict):
    """The order already has an active reservation under another reservation_id."""

    title = "The order already has an active reservation"


class LoanExists(Conflict):
    title = "Loan already issued"


class DocumentAlreadyReversed(Conflict):
    title = "Document already reversed"


# -- state machines ----------------------------------------------------------------------------
class ReservationNotCommitted(InvalidState):
    """A delivery note needs the order's committed reservation (FR-73: a confirmed order)."""

    title = "The order has no committed reservation"


class DeliveryCancelled(InvalidState):
    title = "The delivery note is cancelled"


class DeliveryAlreadyIssued(InvalidState):
    title = "The delivery note is already issued (posted documents are immutable)"


class DeliveryNotIssued(InvalidState):
    title = "Nothing was issued on this delivery note"


class DocumentNotReversible(InvalidState):
    title = "This kind of document is not corrected by a reversal"


class ProductInactive(BusinessRuleViolation):
    title = "Product is not active"


# -- the quantities --------------------------------------------------------------------------------
class InsufficientStock(BusinessRuleViolation):
    """`shortages: [{"sku", "warehouse", "requested", "available"}]`."""

    title = "Insufficient stock"


class OverDelivery(BusinessRuleViolation):
    """More than reserved for the order less already delivered and pending (FR-77)."""

    title = "More than the order has left to deliver"


class OverReturn(BusinessRuleViolation):
    """More than issued on the delivery less already returned (FR-96)."""

    title = "More than was issued and not yet returned"


class LoanReturnMismatch(BusinessRuleViolation):
    """FR-100: the stated quantity must equal the counted goods, and the goods must be on the loan."""

    title = "Loan return does not match the goods"


class LoanOverReturn(BusinessRuleViolation):
    title = "More than is still out on the loan"


class LoanOverConversion(BusinessRuleViolation):
    title = "More than is still out on the loan"


class FloorAboveListPrice(ValidationFailed):
    """The floor price (the HQ guide floor, FR-43) cannot be above the list price."""

    title = "Floor price above list price"
