"""The order service's errors; each class name is its public code (shared.errors.code_for)."""
from shared.approvals import ApprovalStale, NothingToApprove, NotYourTurn, SelfApprovalForbidden  # noqa: F401
from shared.errors import BusinessRuleViolation, Conflict, Forbidden, InvalidState, NotFound, ValidationFailed

__all__ = [
    "ApprovalRequired", "ApprovalStale", "ConfirmationInProgress", "ContractIncomplete", "ContractNotSigned",
    "CustomerNotQuotable", "DocumentNotFound", "InsufficientStock", "InvalidState", "LoanQuantityMismatch",
    "NothingToApprove", "NotYourTurn", "PriceBelowFloor", "QuotaExceeded", "QuoteExpired", "ReturnExceedsDelivered",
    "RoleNotAllowed", "SelfApprovalForbidden", "TargetBreakdownMismatch", "TargetExists", "UnknownProduct",
    "CreditLimitExceeded", "ConcurrentChange",
]


class DocumentNotFound(NotFound):
    """No such quote, contract, order, return, loan or target, or not one the caller may see."""

    code = "NOT_FOUND"


class UnknownProduct(ValidationFailed):
    """A line names a SKU the price list does not hold (or no longer sells)."""

    code = "VALIDATION_FAILED"


class ApprovalRequired(BusinessRuleViolation):
    """A price below list (or a major amount) without an approved quote that covers it (FR-45/FR-48)."""

    title = "Approval required"


class PriceBelowFloor(BusinessRuleViolation):
    """A price below the floor without the manager's and the sales head's approval (FR-43, FR-46)."""

    title = "Price below the floor price"


class CustomerNotQuotable(BusinessRuleViolation):
    """The customer has no approved review still valid (FR-14)."""

    title = "Customer not reviewed"


class QuoteExpired(BusinessRuleViolation):
    title = "Quote expired"


class ContractNotSigned(BusinessRuleViolation):
    """The order's contract is not signed by both parties (FR-58)."""

    title = "Contract not signed"


class ContractIncomplete(ValidationFailed):
    """The contract lacks terms it must state (FR-51, FR-56); `errors` names them."""

    title = "Contract incomplete"


class InsufficientStock(BusinessRuleViolation):
    """Inventory refused to reserve; `shortages` as inventory gave them."""

    title = "Insufficient stock"


class CreditLimitExceeded(BusinessRuleViolation):
    title = "Credit limit exceeded"


class QuotaExceeded(BusinessRuleViolation):
    """The order would take more of a product than the customer's or the market's quota (FR-67)."""

    title = "Quota exceeded"


class ConfirmationInProgress(Conflict):
    """The order's confirmation (or another saga on it) is running; retry shortly."""

    title = "Confirmation in progress"


class ConcurrentChange(Conflict):
    """The document changed while this command was being prepared; read it again and retry."""

    title = "Changed concurrently"


class ReturnExceedsDelivered(BusinessRuleViolation):
    """More than delivered less already returned (or requested) on that delivery (FR-93)."""

    title = "Return exceeds what was delivered"


class LoanQuantityMismatch(BusinessRuleViolation):
    """Returned or converted quantities must match what is out on loan (FR-100)."""

    title = "Loan quantities do not match"


class TargetBreakdownMismatch(BusinessRuleViolation):
    """Children of a target do not sum to it (FR-113, FR-118); `mismatches` shows each difference."""

    title = "Targets do not add up"


class TargetExists(Conflict):
    title = "Target already published"


class RoleNotAllowed(Forbidden):
    title = "Not allowed for this role"

