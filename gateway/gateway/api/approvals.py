"""The approvals inbox: what waits for the caller's decision, across documents and services (issue 12,
the console's "My work"; FR-23, FR-45–FR-48, FR-53, FR-65, FR-93–FR-96, FR-98).

Nothing new is stored: the owners are asked, as the caller, for the documents in the state that waits
for a decision — quotes and contracts in approval, returns requested, loans pending approval (order),
visit plans and proposals in internal review (customer, FR-40), orders on credit hold (order) — each list only when the caller's role
may decide that kind (the same role sets as the approve endpoints), all at once (gateway.compose). A
document with approval steps is the caller's when its step whose turn it is (`pending`) names them, or
names no one and their role; a visit plan is the caller's when they may approve visits and it is not
their own; an order on credit hold when they may release it. A service that is down leaves its kinds
out, named in `unavailable` and `Sales-Partial` (200).
"""
from marshmallow import Schema, fields, validate

from gateway.api.customers import VISIT_APPROVERS
from gateway.api.sales import APPROVERS, CREDIT_RELEASERS, LOAN_APPROVERS
from gateway.compose import gather, missing, partial_headers
from gateway.http import Reply, api
from gateway.api.reports import Unavailable

API = "/api/v1"
RETURN_APPROVERS = frozenset({"product_manager"})
INBOX_READERS = APPROVERS | VISIT_APPROVERS | LOAN_APPROVERS | CREDIT_RELEASERS | RETURN_APPROVERS
PAGE = 200  # the most one list answers: an inbox longer than this says `more`

# kind: (the service that owns it, who may decide it, the path a decision is posted under)
KINDS = {
    "quote": ("order", APPROVERS, "quotes"),
    "contract": ("order", APPROVERS, "contracts"),
    "return": ("order", RETURN_APPROVERS, "returns"),
    "loan": ("order", LOAN_APPROVERS, "loans"),
    "visit": ("customer", VISIT_APPROVERS, "visits"),
    "proposal": ("customer", VISIT_APPROVERS, "proposals"),
    "credit_release": ("order", CREDIT_RELEASERS, "orders"),
}


class InboxItem(Schema):
    kind = fields.String(required=True, validate=validate.OneOf(tuple(KINDS)))
    id = fields.UUID(required=True)
    number = fields.String(allow_none=True, required=True)
    customer_id = fields.UUID(allow_none=True, required=True)
    customer_name = fields.String(allow_none=True, required=True)
    owner_id = fields.UUID(allow_none=True, required=True, metadata={"description": "who asks (the document's rep)"})
    amount = fields.String(allow_none=True, required=True, metadata={"description": "CNY, VAT included, if any"})
    reason = fields.String(allow_none=True, required=True, metadata={
        "description": "why it needs this decision (the step's reason, the visit's purpose, the hold)"})
    step = fields.String(allow_none=True, required=True, metadata={
        "description": "the step whose turn it is: direct_manager, division_head, ..."})
    since = fields.DateTime(allow_none=True, required=True, metadata={"description": "waiting since"})
    decide = fields.String(required=True, metadata={
        "description": "the path (under /api/v1) to post the decision to: <path>/approve, /reject, or "
                       "release-credit-hold", "example": "quotes/7f1c.../"})


class Inbox(Schema):
    items = fields.List(fields.Nested(InboxItem), required=True, metadata={"description": "oldest first"})
    more = fields.Boolean(required=True, metadata={"description": "a kind had more waiting than one list holds"})
    partial = fields.Boolean(required=True)
    unavailable = fields.List(fields.Nested(Unavailable), required=True)


def _mine(step, actor):
    if step.get("status") != "pending":
        return False
    if step.get("approver_id"):
        return str(step["approver_id"]) == actor["staff_id"]
    return step.get("role") == actor["role"] or step.get("approver_role") == actor["role"]


def inbox_items(kind, docs, actor):
    """The caller's items among `docs` of `kind` (pure: unit-tested)."""
    path = KINDS[kind][2]
    items = []
    for doc in docs:
        base = {"kind": kind, "id": doc["id"], "number": doc.get("number"), "customer_id": doc.get("customer_id"),
                "customer_name": doc.get("customer_name"), "decide": f"{path}/{doc['id']}"}
        if kind == "visit":
            if doc.get("rep_id") == actor["staff_id"]:
                continue
            items.append(dict(base, owner_id=doc.get("rep_id"), amount=None, reason=doc.get("purpose"),
                              step="manager", since=doc.get("created_at")))
        elif kind == "proposal":  # FR-40: in internal review, not one's own
            if doc.get("owner_id") == actor["staff_id"]:
                continue
            items.append(dict(base, owner_id=doc.get("owner_id"), amount=doc.get("amount"), reason=doc.get("title"),
                              step="manager", since=doc.get("updated_at")))
        elif kind == "credit_release":
            items.append(dict(base, owner_id=doc.get("owner_id"), amount=doc.get("total"),
                              reason="credit_hold", step="credit",
                              since=doc.get("credit_held_at") or doc.get("created_at")))
        else:
            step = next((s for s in doc.get("approvals") or [] if _mine(s, actor)), None)
            if step is None:
                continue
            items.append(dict(base, owner_id=doc.get("owner_id"), amount=doc.get("total"), reason=step.get("reason"),
                              step=step.get("relation"),
                              since=step.get("assigned_at") or doc.get("submitted_at") or doc.get("created_at")))
    return items


class ApprovalsApi:
    @api("GET", f"{API}/me/approvals", roles=INBOX_READERS, response=Inbox, tags=["auth", "reports"],
         errors=(503,), partial=True)
    def my_approvals(self, call):
        """The approvals inbox: quotes, contracts, visit plans, proposals, returns, loans and credit
        releases waiting for the caller's decision, oldest first.

        Only the kinds the caller's role may decide are asked for; each owner is asked as the caller, so
        row-level access holds. A service that is down leaves its kinds out (`unavailable`,
        `Sales-Partial`)."""
        actor = call.actor
        waiting = {  # each kind in the state that waits for a decision
            "quote": lambda: self.order.list_quotes.call_async(
                actor=actor, filters={"status": "pending_approval"}, limit=PAGE),
            "contract": lambda: self.order.list_contracts.call_async(
                actor=actor, filters={"status": "in_approval"}, limit=PAGE),
            "return": lambda: self.order.list_returns.call_async(
                actor=actor, filters={"status": "requested"}, limit=PAGE),
            "loan": lambda: self.order.list_loans.call_async(
                actor=actor, filters={"status": "pending_approval"}, limit=PAGE),
            "visit": lambda: self.customer.list_visits.call_async(
                actor=actor, filters={"state": "planned"}, limit=PAGE),
            "proposal": lambda: self.customer.list_proposals.call_async(
                actor=actor, filters={"state": "internal_review"}, limit=PAGE),
            "credit_release": lambda: self.order.list_orders.call_async(
                actor=actor, filters={"status": "credit_hold"}, limit=PAGE),
        }
        calls = {kind: (KINDS[kind][0], start) for kind, start in waiting.items() if actor["role"] in KINDS[kind][1]}
        parts = gather(calls, call.settings.view_timeout)
        items, more = [], False
        for kind, part in parts.items():
            if part.ok:
                items.extend(inbox_items(kind, part.value["items"], actor))
                more = more or bool(part.value.get("next_cursor"))
        items.sort(key=lambda item: (item["since"] is None, str(item["since"] or "")))
        unavailable = missing(parts)
        body = {"items": items, "more": more, "partial": bool(unavailable), "unavailable": unavailable}
        return Reply(body, headers=partial_headers(unavailable))
