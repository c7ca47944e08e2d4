"""The customer service's errors; each class name is its public code (unless it says otherwise)."""
from shared.errors import BusinessRuleViolation, Conflict, Forbidden, InvalidState, NotFound, ValidationFailed

__all__ = [
    "DuplicateCustomer", "CustomerNotFound", "StaffNotFound", "VisitNotFound", "OpportunityNotFound",
    "ReviewNotFound", "TerritoryNotFound", "StaffExists", "NoApprover", "FieldInvalid", "InvalidState",
    "ConcurrentUpdate", "ReassignmentForbidden", "ClassificationForbidden", "ReviewApprovalForbidden",
    "VisitApprovalForbidden", "VisitRepOnly", "StaffChangeForbidden", "OwnerNotEligible",
    "VisitNotApproved", "ReviewPending", "ReviewExpired", "ProposalNotFound", "ProposalApprovalForbidden",
    "ProposalOwnerOnly", "TenderClosed", "EscalationNotFound", "EscalationOpen", "GuidanceForbidden",
    "EscalationOwnerOnly", "CollectionNotFound", "CollectionCheckForbidden", "IntelligenceNotFound",
    "AcknowledgeForbidden",
]


class DuplicateCustomer(Conflict):
    """Same normalised name or tax id as a customer already recorded (FR-06, FR-07)."""

    title = "Customer already recorded"


# -- not found (someone else's record answers the same: ids cannot be probed) -------------------
class CustomerNotFound(NotFound):
    code = "NOT_FOUND"


class StaffNotFound(NotFound):
    code = "NOT_FOUND"


class VisitNotFound(NotFound):
    code = "NOT_FOUND"


class OpportunityNotFound(NotFound):
    code = "NOT_FOUND"


class ProposalNotFound(NotFound):
    code = "NOT_FOUND"


class EscalationNotFound(NotFound):
    code = "NOT_FOUND"


class CollectionNotFound(NotFound):
    code = "NOT_FOUND"


class IntelligenceNotFound(NotFound):
    code = "NOT_FOUND"


class ReviewNotFound(NotFound):
    code = "NOT_FOUND"


class TerritoryNotFound(NotFound):
    code = "NOT_FOUND"


# -- input ------------------------------------------------------------------------------------
class FieldInvalid(ValidationFailed):
    """A rule on one field of the input (422 naming the field)."""

    code = "VALIDATION_FAILED"

    def __init__(self, field, message, detail=None):
        # crosses RPC as its registered kind (ValidationFailed), so this is never rebuilt from the wire
        super().__init__(detail or f"{field}: {message}", errors={field: [message]})


# -- conflicts and business rules -----------------------------------------------------------
class StaffExists(Conflict):
    title = "Staff member already recorded"


class NoApprover(Conflict):
    """Nobody in the org chart holds the approval relation asked for."""

    title = "No approver in the org chart"


class ConcurrentUpdate(Conflict):
    """The record changed between reading and writing it; read it again and retry."""

    title = "Changed concurrently"


class OwnerNotEligible(BusinessRuleViolation):
    """The new owner is not an active salesperson the assigning manager may give customers to."""

    title = "Owner not eligible"


class VisitNotApproved(BusinessRuleViolation):
    """FR-23: a visit is logged only against a plan the manager approved."""

    title = "Visit plan not approved"


class ReviewPending(Conflict):
    title = "A review of this customer is already waiting for approval"


class ReviewExpired(BusinessRuleViolation):
    title = "Review validity already over"


# -- who may do what ----------------------------------------------------------------------------
class ReassignmentForbidden(Forbidden):
    """FR-08: only a manager (sales manager, director, general manager) changes an owner."""

    title = "Only a manager may change a customer's owner"


class ClassificationForbidden(Forbidden):
    title = "This class change needs a manager"


class ReviewApprovalForbidden(Forbidden):
    """FR-14: a customer review is approved by a product manager."""

    title = "Only a product manager decides a customer review"


class VisitApprovalForbidden(Forbidden):
    """FR-23: the rep's own manager (or a director) approves a visit plan, never the rep."""

    title = "Not this visit's approver"


class VisitRepOnly(Forbidden):
    """Check-out, check-in, delay notice, log and cancel are the visiting rep's own acts."""

    title = "Only the rep of this visit does this"


class StaffChangeForbidden(Forbidden):
    title = "Only an administrator or the general manager changes the org chart"


class ProposalApprovalForbidden(Forbidden):
    """FR-40: the internal review of a proposal is decided by the owner's manager or a director."""

    title = "Not this proposal's reviewer"


class ProposalOwnerOnly(Forbidden):
    """Drafting, sending and recording the customer's answer are the owning rep's acts (FR-40)."""

    title = "Only the owner of this proposal does this"


class TenderClosed(BusinessRuleViolation):
    """FR-41: a tender's offer is submitted before the tender closes."""

    title = "The tender has closed"


class EscalationOpen(Conflict):
    """FR-28: one open escalation per customer; add to it rather than raising another."""

    title = "This customer is already escalated"


class GuidanceForbidden(Forbidden):
    """FR-30: guidance on an escalated customer is the owner's manager's (or a director's)."""

    title = "Not this escalation's manager"


class EscalationOwnerOnly(Forbidden):
    """FR-28: the rep who owns the customer escalates it."""

    title = "Only the customer's owner escalates it"


class CollectionCheckForbidden(Forbidden):
    """FR-05: a rep's weekly records are checked by their sales manager (or a director)."""

    title = "Not this rep's manager"


class AcknowledgeForbidden(Forbidden):
    """FR-33: a field report is answered by the reporter's manager, a director or marketing."""

    title = "Not this report's manager"
