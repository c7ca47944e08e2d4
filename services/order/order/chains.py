"""The sales desk's approval chains on the kit's helper (shared.approvals): steps kept in the
`approval_steps` table, approvers found in the org chart (customer.find_approver) when a step
becomes current. No nameko here: the customer RPC proxy is passed in."""
from shared import approvals
from shared.approvals import Requirement, Step
from shared.validation import load

from order.exceptions import ConcurrentChange
from order.schemas import approver_answer


def requirements(needed):
    """domain.Approval → the kit's Requirement."""
    return [Requirement(a.relation, a.role, a.reason) for a in needed]


def to_steps(rows):
    steps = []
    for row in rows:
        data = {name: row[name] for name in Step.__dataclass_fields__}
        for key in ("approver_id", "decided_by"):
            data[key] = None if data[key] is None else str(data[key])
        steps.append(Step(**data))
    return tuple(steps)


def to_rows(steps):
    return [step.as_dict() for step in steps]


class Chains:
    def __init__(self, customer):
        self.customer = customer

    def approver(self, requester_id, relation):
        """Who holds `relation` for the requester now (409 NO_APPROVER from the org chart if no one)."""
        answer = self.customer.find_approver(staff_id=str(requester_id), relation=relation)
        found = load(approver_answer, answer, detail="the org chart answered an approver without an id")
        return dict(found, id=str(found["id"]))

    def first_approver(self, needed, requester_id):
        """The approver of the first step of a new chain (None when nothing is needed)."""
        if not needed:
            return None
        return self.approver(requester_id, needed[0].relation)

    def start(self, needed, first_approver, now):
        steps = approvals.plan(requirements(needed))
        if steps:
            steps = approvals.assign(steps, steps[0].seq, first_approver, now)
        return steps

    def prepare_decision(self, rows, *, actor_id, decision, document_hash, requester_id, now):
        """Before the decision's transaction: if approving makes a next step current, find its
        approver now (an RPC, outside any transaction). Errors of the decision itself are left to
        the transaction, which checks everything again."""
        if decision != approvals.APPROVE:
            return None
        try:
            steps, _ = approvals.decide(to_steps(rows), actor_id=actor_id, decision=decision, comment=None,
                                        document_hash=document_hash, now=now, requester_id=requester_id)
        except Exception:  # refused: the transaction will say why
            return None
        step = approvals.needs_approver(steps)
        if step is None:
            return None
        return {"relation": step.relation, "approver": self.approver(requester_id, step.relation)}

    @staticmethod
    def decide(rows, prepared, *, actor_id, decision, comment, document_hash, requester_id, now):
        """Apply the decision; the next step (if any) gets the approver prepared for it."""
        steps, decided = approvals.decide(to_steps(rows), actor_id=actor_id, decision=decision, comment=comment,
                                          document_hash=document_hash, now=now, requester_id=requester_id)
        step = approvals.needs_approver(steps)
        if step is not None:
            if not prepared or prepared["relation"] != step.relation:
                raise ConcurrentChange("the approval chain moved while this decision was prepared; try again")
            steps = approvals.assign(steps, step.seq, prepared["approver"], now)
        return steps, decided, approvals.outcome(steps)
