"""The billing service's errors; each class name is its public code (CreditLimitExceeded →
CREDIT_LIMIT_EXCEEDED). They cross RPC as their kit kind (409 business rule, 404, 422, 403) with
code, detail and figures intact."""
from shared.errors import BusinessRuleViolation, Forbidden, InvalidState, NotFound, ValidationFailed

__all__ = [
    "AlreadyInvoiced", "CreditAccountNotFound", "CreditAlreadyReserved", "CreditLimitExceeded",
    "CustomerNotFound", "Forbidden", "GoodsNotIssued", "InvalidState", "InvoiceNotFound", "OverAllocation",
    "ReceiptNotFound", "AllocationNotFound", "ReversalExceedsOriginal", "StatementPeriodOpen", "TaxDetailsMissing",
    "ValidationFailed",
]


class CreditAccountNotFound(NotFound):
    code = "NOT_FOUND"


class CustomerNotFound(NotFound):
    code = "NOT_FOUND"


class InvoiceNotFound(NotFound):
    code = "NOT_FOUND"


class ReceiptNotFound(NotFound):
    code = "NOT_FOUND"


class AllocationNotFound(NotFound):
    code = "NOT_FOUND"


class CreditLimitExceeded(BusinessRuleViolation):
    """Exposure + requested above the limit (FR-65): carries limit, exposure, requested, available."""

    title = "Credit limit exceeded"


class CreditAlreadyReserved(BusinessRuleViolation):
    """The order already holds a reservation under another reservation id."""

    title = "Credit already reserved for this order"


class GoodsNotIssued(BusinessRuleViolation):
    """An invoice names a delivery whose goods billing has not seen issued (FR-81)."""

    title = "Goods not issued"


class AlreadyInvoiced(BusinessRuleViolation):
    """Every issued line of the delivery already stands on an invoice (no double invoicing)."""

    title = "Already invoiced"


class TaxDetailsMissing(BusinessRuleViolation):
    """A special VAT invoice needs the customer's tax id and bank account (FR-81)."""

    title = "Tax details missing for a special VAT invoice"


class OverAllocation(BusinessRuleViolation):
    """More than the receipt's unallocated amount or an invoice's open amount (FR-86)."""

    title = "Allocation exceeds what is open"


class ReversalExceedsOriginal(BusinessRuleViolation):
    """A red-letter invoice may not reverse more than is left of the original (FR-95)."""

    title = "Red-letter invoice above the original"


class StatementPeriodOpen(BusinessRuleViolation):
    title = "The statement's month has not ended"
