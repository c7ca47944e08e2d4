"""Approval chains: the approval-step helper of the kit (STYLE.md). Pure: it owns no table and does
no I/O; a service keeps the steps in its own tables and resolves approvers from the org chart.

A document that needs approval gets an ordered chain of steps, planned from the service's own
rules (`plan`). A step names the org-chart *relation* that must approve (`direct_manager`,
`division_head`, `marketing_director`, `product_manager`, ...), not a person: the person is found
when the step becomes current (`needs_approver` → the service asks the org chart → `assign`), so
an approval always goes to whoever holds the relation at that moment.

    steps = approvals.plan([Requirement("direct_manager", "sales_manager", "below list price")])
    step = approvals.needs_approver(steps)                  # the first step, still unassigned
    steps = approvals.assign(steps, step.seq, approver, now)
    steps, decided = approvals.decide(steps, actor_id=..., decision="approve", comment="ok",
                                      document_hash=approvals.content_hash(content), now=now)
    approvals.outcome(steps)                                # "pending" | "approved" | "rejected" | ...

Each decision is bound to the hash of the document's content (`content_hash`): a decision on
content that differs from what earlier steps approved is refused (`ApprovalStale`), and
`valid_for(steps, hash)` tells whether a finished chain still covers the document as it is now.
A service voids the chain (`void`) when the document is edited. Every step is kept, decided or
not: who, in which role, when, the decision and the comment.
"""
import hashlib
import json
from dataclasses import dataclass, replace
from datetime import date, datetime
from decimal import Decimal
from typing import Optional
from uuid import UUID

from shared.errors import Conflict, Forbidden

WAITING = "waiting"    # not its turn yet: no approver assigned
PENDING = "pending"    # its turn: an approver is assigned and must decide
APPROVED = "approved"
REJECTED = "rejected"
VOIDED = "voided"      # no longer counts: the document changed, or an earlier step rejected it
STATUSES = (WAITING, PENDING, APPROVED, REJECTED, VOIDED)

APPROVE = "approve"
REJECT = "reject"


class NotYourTurn(Forbidden):
    """The current step is assigned to someone else."""

    title = "Not your turn to approve"


class SelfApprovalForbidden(Forbidden):
    title = "No one approves their own request"


class NothingToApprove(Conflict):
    """No step is waiting for a decision (finished, rejected, voided, or no approver yet)."""

    title = "Nothing to approve"


class ApprovalStale(Conflict):
    """The document's content is not what the earlier steps approved."""

    title = "The approvals no longer match the document"


@dataclass(frozen=True)
class Requirement:
    """One approval a document needs: the org-chart relation that gives it, the role expected of
    that person (for display and checks) and why it is needed."""

    relation: str
    role: str
    reason: str


@dataclass(frozen=True)
class Step:
    seq: int
    relation: str
    role: str
    reason: str
    status: str = WAITING
    approver_id: Optional[str] = None
    approver_name: Optional[str] = None
    approver_role: Optional[str] = None
    assigned_at: Optional[datetime] = None
    decided_by: Optional[str] = None
    decided_at: Optional[datetime] = None
    comment: Optional[str] = None
    content_hash: Optional[str] = None

    def as_dict(self):
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


# -- content binding ---------------------------------------------------------------------------
def _canonical(value):
    if isinstance(value, Decimal):
        # 1.5 and 1.50 are the same price
        text = format(value.normalize(), "f")
        return text if "." not in text else text.rstrip("0").rstrip(".")
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, dict):
        return {str(k): _canonical(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_canonical(v) for v in value]
    return value


def content_hash(content):
    """sha256 of the content as canonical JSON: key order, Decimal scale, UUID/date objects vs
    their strings do not change it; any change of a value does."""
    text = json.dumps(_canonical(content), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


# -- the chain ---------------------------------------------------------------------------------
def plan(requirements):
    """The steps for these requirements, in order; a relation asked twice is kept once."""
    steps, seen = [], set()
    for requirement in requirements:
        if requirement.relation in seen:
            continue
        seen.add(requirement.relation)
        steps.append(Step(seq=len(steps) + 1, relation=requirement.relation, role=requirement.role,
                          reason=requirement.reason))
    return tuple(steps)


def current(steps):
    """The step whose turn it is (waiting for an approver or for a decision), or None when the
    chain is finished (all approved), rejected or voided."""
    for step in sorted(steps, key=lambda s: s.seq):
        if step.status == APPROVED:
            continue
        if step.status in (WAITING, PENDING):
            return step
        return None
    return None


def needs_approver(steps):
    """The current step when no approver is assigned to it yet (resolve it from the org chart)."""
    step = current(steps)
    return step if step is not None and step.status == WAITING else None


def assign(steps, seq, approver, now):
    """Give step `seq` (which must be current and unassigned) its approver:
    `{"id", "display_name"|"username", "role"}` as the org chart answers."""
    step = needs_approver(steps)
    if step is None or step.seq != seq:
        raise NothingToApprove(f"step {seq} is not waiting for an approver")
    assigned = replace(step, status=PENDING, approver_id=str(approver["id"]),
                       approver_name=approver.get("display_name") or approver.get("username"),
                       approver_role=approver.get("role"), assigned_at=now)
    return _put(steps, assigned)


def outcome(steps):
    """`approved` (no steps, or all approved), `rejected`, `voided` or `pending`."""
    if not steps:
        return APPROVED
    statuses = {s.status for s in steps}
    if REJECTED in statuses:
        return REJECTED
    if statuses == {APPROVED}:
        return APPROVED
    if statuses <= {VOIDED, APPROVED}:
        return VOIDED
    return "pending"


def decide(steps, *, actor_id, decision, comment, document_hash, now, requester_id=None):
    """Record the decision of the current step's approver. Returns (steps, the decided step).

    Refused: no step waiting for a decision (`NothingToApprove`); someone other than the assigned
    approver (`NotYourTurn`); the requester deciding their own request (`SelfApprovalForbidden`);
    content that differs from what earlier steps approved (`ApprovalStale`). A rejection voids
    the steps after it."""
    if decision not in (APPROVE, REJECT):
        raise ValueError(f"decision must be {APPROVE!r} or {REJECT!r}")
    step = current(steps)
    if step is None or step.status != PENDING:
        raise NothingToApprove("no approval step is waiting for a decision")
    actor_id = str(actor_id)
    if requester_id is not None and actor_id == str(requester_id):
        raise SelfApprovalForbidden("the requester cannot approve their own request")
    if actor_id != step.approver_id:
        raise NotYourTurn(
            f"step {step.seq} ({step.relation}) is for {step.approver_name or step.approver_id}",
            step=step.seq, relation=step.relation, approver_id=step.approver_id,
        )
    earlier = {s.content_hash for s in steps if s.status == APPROVED}
    if earlier and earlier != {document_hash}:
        raise ApprovalStale("the document changed after earlier steps approved it")
    decided = replace(step, status=APPROVED if decision == APPROVE else REJECTED, decided_by=actor_id,
                      decided_at=now, comment=comment, content_hash=document_hash)
    steps = _put(steps, decided)
    if decision == REJECT:
        steps = tuple(replace(s, status=VOIDED) if s.seq > step.seq and s.status in (WAITING, PENDING) else s
                      for s in steps)
    return steps, decided


def void(steps):
    """Void every step that still counts (the document was edited); decided steps keep who
    decided what and when, so the trail stays complete."""
    return tuple(replace(s, status=VOIDED) if s.status in (WAITING, PENDING, APPROVED) else s for s in steps)


def valid_for(steps, document_hash):
    """True when the chain is fully approved and every approval was given to this content."""
    if outcome(steps) != APPROVED:
        return False
    return all(s.content_hash == document_hash for s in steps)


def _put(steps, new):
    return tuple(new if s.seq == new.seq else s for s in steps)
