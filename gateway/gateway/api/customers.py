"""API.md "Customers (CRM)": customers and their archive (contacts, follow-ups, purchases), owners
and the pool, classification, reviews, visits and opportunities — each endpoint one call to the
customer service, which applies the rules and the row-level scope itself."""
from marshmallow import Schema, fields, validate

from gateway.auth import EVERYONE
from gateway.http import Reply, api, created, plain
from gateway.schemas import PageQuery, page_schema, text
from shared.validation import StrictSchema

API = "/api/v1"
CUSTOMER_READERS = EVERYONE - {"warehouse"}
CUSTOMER_WRITERS = frozenset({
    "admin", "general_manager", "sales_director", "marketing_director", "sales_manager", "sales_rep",
    "order_desk", "integration",
})
SALES_STAFF = frozenset({"admin", "general_manager", "sales_director", "sales_manager", "sales_rep"})
MANAGERS = frozenset({"admin", "general_manager", "sales_director", "sales_manager"})  # FR-08, FR-09
POOL_READERS = MANAGERS | {"marketing_director"}
FOLLOW_UP_WRITERS = SALES_STAFF | {"order_desk"}
REVIEWERS = frozenset({"product_manager"})  # FR-14
VISITORS = frozenset({"sales_rep", "sales_manager", "sales_director"})  # who plans and makes visits
VISIT_APPROVERS = frozenset({"sales_manager", "sales_director", "general_manager"})  # FR-23
OPPORTUNITY_READERS = SALES_STAFF | {"marketing_director", "order_desk"}

SIZES = ("micro", "small", "medium", "large", "enterprise")
SOURCES = (
    "trade_fair", "trade_press", "internet", "industry_association",
    "mall_listing", "partner_referral", "company_data", "competitor_media",
)
STATUSES = ("potential", "tracking", "progressing", "key", "loi_signed", "signed")
CHANNELS = ("phone", "email", "fax", "post", "website", "meeting", "other")
BUSINESS_STATUSES = ("operating", "restricted", "suspended", "deregistered")
VISIT_STATES = ("planned", "approved", "rejected", "cancelled", "in_field", "returned", "logged")
STAGES = ("identified", "qualified", "proposal", "negotiation")
OUTCOMES = ("won", "lost")
PRIORITIES = ("high", "medium", "low")
OPPORTUNITY_SOURCES = ("market_research", "customer_feedback", "visit", "campaign", "referral", "tender", "other")
TAX_ID = validate.Regexp(r"^[0-9A-Za-z]{15,20}$", error="15 to 20 letters or digits")
MONEY = validate.Regexp(r"^[0-9]{1,15}(\.[0-9]{1,2})?$", error="a decimal string with at most 2 places, e.g. 1234.50")


def moment(required=False, **kwargs):
    """ISO 8601 date-time with its offset (`2026-11-24T10:00:00+08:00`)."""
    kwargs.setdefault("metadata", {"description": "ISO 8601 with offset, e.g. 2026-11-24T10:00:00+08:00"})
    if required:
        return fields.AwareDateTime(required=True, **kwargs)
    return fields.AwareDateTime(allow_none=True, **kwargs)


def _filters(query, names):
    return {name: query[name] for name in names if query.get(name) is not None}


# -- customers -------------------------------------------------------------------------------
class ContactIn(StrictSchema):
    name = text(100, required=True)
    position = text(100)
    phone = text(50)
    email = fields.Email(allow_none=True)
    decision_maker = fields.Boolean(load_default=False, metadata={"description": "FR-15: decides on purchases"})

    example = {"name": "Li Wei", "position": "purchasing head", "phone": "+86 512 6666 8888",
               "email": "li.wei@example.cn", "decision_maker": True}


class BankAccountIn(StrictSchema):
    bank_name = text(200, required=True)
    account_no = fields.String(required=True, validate=validate.Regexp(
        r"^[0-9 \-]{6,40}$", error="6 to 40 digits, spaces or dashes"))


class CustomerCreate(StrictSchema):
    name = text(200, required=True)
    tax_id = fields.String(allow_none=True, validate=TAX_ID,
                           metadata={"description": "unified social credit code (18 characters) or older tax id"})
    industry = text(100, required=True)
    size = fields.String(required=True, validate=validate.OneOf(SIZES))
    region = text(100, required=True)
    address = text(500)
    source = fields.String(required=True, validate=validate.OneOf(SOURCES))
    status = fields.String(validate=validate.OneOf(STATUSES), metadata={"description": "default potential"})
    contacts = fields.List(fields.Nested(ContactIn))
    bank_account = fields.Nested(BankAccountIn, allow_none=True)
    needs = text(4000)
    problems = text(4000, metadata={"description": "FR-16: the customer's own view of its problems"})
    preferences = text(4000)
    collected_at = moment(metadata={
        "description": "FR-04: when the data was gathered (default now); entered over 2 working days later is "
                       "flagged late_entry"})

    example = {
        "name": "Suzhou Hengli Precision Machinery Co., Ltd.", "tax_id": "91320500MA1MXX7L2K",
        "industry": "machinery", "size": "medium", "region": "East China",
        "address": "88 Xinghu St, Suzhou Industrial Park", "source": "trade_fair", "status": "potential",
        "contacts": [{"name": "Li Wei", "position": "purchasing head", "phone": "+86 512 6666 8888",
                      "email": "li.wei@example.cn", "decision_maker": True}],
        "bank_account": {"bank_name": "ICBC Suzhou Branch", "account_no": "1102 0206 0900 1234 567"},
        "needs": "CNC spare parts, quarterly", "problems": "long lead times from the current supplier",
    }


class CustomerUpdate(StrictSchema):
    """Only the fields sent change. The class has POST /customers/{id}/classification, the owner
    POST /customers/{id}/owner; the acquisition channel is a fact of the record."""

    name = fields.String(validate=validate.Length(1, 200))
    tax_id = fields.String(allow_none=True, validate=TAX_ID)
    industry = fields.String(validate=validate.Length(1, 100))
    size = fields.String(validate=validate.OneOf(SIZES))
    region = fields.String(validate=validate.Length(1, 100))
    address = text(500)
    needs = text(4000)
    problems = text(4000)
    preferences = text(4000)
    bank_account = fields.Nested(BankAccountIn, allow_none=True)

    example = {"tax_id": "91320500MA1MXX7L2K", "preferences": "framework orders each quarter",
               "bank_account": {"bank_name": "ICBC Suzhou Branch", "account_no": "1102 0206 0900 1234 567"}}


class CustomerQuery(PageQuery):
    owner = fields.UUID(load_default=None, metadata={"description": "owner's staff id"})
    team = text(100, load_default=None, metadata={"description": "owner's team"})
    status = fields.String(load_default=None, validate=validate.OneOf(STATUSES))
    region = text(100, load_default=None)
    industry = text(100, load_default=None)
    size = fields.String(load_default=None, validate=validate.OneOf(SIZES))
    source = fields.String(load_default=None, validate=validate.OneOf(SOURCES))
    late_entry = fields.Boolean(load_default=None, metadata={"description": "entered late (FR-04)"})
    quiet_days = fields.Integer(load_default=None, validate=validate.Range(1, 366), metadata={
        "description": "no follow-up and no logged visit in this many days: regular contact due (FR-20; 7: the "
                       "weekly contact, FR-35)"})
    q = text(200, load_default=None, metadata={"description": "text in the name, number or tax id"})


class PoolQuery(PageQuery):
    reason = fields.String(load_default=None, validate=validate.OneOf(("unassigned", "reclaimable")),
                           metadata={"description": "unassigned (no owner) or reclaimable (not contacted in a week)"})
    region = text(100, load_default=None)
    industry = text(100, load_default=None)


class SuggestionQuery(StrictSchema):
    team = text(100, load_default=None, metadata={"description": "directors: the team to distribute to"})
    limit = fields.Integer(load_default=50, validate=validate.Range(1, 200),
                           metadata={"description": "how many pool customers to plan for"})


class OwnerChange(StrictSchema):
    owner = fields.UUID(required=True, metadata={"description": "staff id of the new owner"})
    reason = text(1000, required=True)

    example = {"owner": "6f1c1f0e-6d3b-4b7c-9a55-3d1f0b2a9c10", "reason": "not contacted within a week"}


class ClassificationIn(StrictSchema):
    status = fields.String(required=True, validate=validate.OneOf(STATUSES))
    reason = text(1000)

    example = {"status": "key", "reason": "asked for a quote on two lines"}


class FollowUpIn(StrictSchema):
    channel = fields.String(required=True, validate=validate.OneOf(CHANNELS))
    occurred_at = moment(required=True)
    summary = text(4000, required=True)
    next_step = text(1000)
    feedback = text(4000, metadata={"description": "the customer's opinion (FR-17, FR-20)"})

    example = {"channel": "phone", "occurred_at": "2026-11-24T10:30:00+08:00",
               "summary": "confirmed the brochure arrived; meeting booked for Thursday",
               "next_step": "plan the visit", "feedback": "interested in the 5-axis line"}


class ReviewIn(StrictSchema):
    business_status = fields.String(required=True, validate=validate.OneOf(BUSINESS_STATUSES))
    credit_opinion = text(2000, required=True)
    valid_until = fields.Date(required=True)

    example = {"business_status": "operating", "credit_opinion": "pays within 30 days; registered capital 5M CNY",
               "valid_until": "2027-06-30"}


class DecisionIn(StrictSchema):
    comment = text(1000)

    example = {"comment": "checked the business licence"}


class RejectIn(StrictSchema):
    comment = text(1000, required=True)

    example = {"comment": "the business licence is suspended"}


class ContactOut(Schema):
    id = fields.UUID()
    name = fields.String()
    position = fields.String(allow_none=True)
    phone = fields.String(allow_none=True)
    email = fields.String(allow_none=True)
    decision_maker = fields.Boolean()
    created_at = fields.DateTime()


class CustomerOut(Schema):
    id = fields.UUID(required=True)
    number = fields.String(required=True, metadata={"example": "CUS-2026-000123"})
    name = fields.String(required=True)
    tax_id = fields.String(allow_none=True)
    industry = fields.String()
    size = fields.String()
    region = fields.String()
    address = fields.String(allow_none=True)
    source = fields.String()
    status = fields.String(required=True)
    needs = fields.String(allow_none=True)
    problems = fields.String(allow_none=True)
    preferences = fields.String(allow_none=True)
    bank_account = fields.Dict(allow_none=True)
    owner_id = fields.UUID(allow_none=True, required=True, metadata={"description": "null: in the pool"})
    owner_name = fields.String(allow_none=True, required=True)
    owner_team = fields.String(allow_none=True)
    assigned_at = fields.DateTime(allow_none=True)
    contact_due_by = fields.DateTime(allow_none=True, required=True, metadata={
        "description": "FR-10: contact by then, or the customer becomes reclaimable"})
    contacted_at = fields.DateTime(allow_none=True)
    last_contact_at = fields.DateTime(allow_none=True)
    reclaimable = fields.Boolean()
    reclaimable_since = fields.DateTime(allow_none=True)
    first_order_at = fields.DateTime(allow_none=True)
    collected_at = fields.DateTime(allow_none=True)
    late_entry = fields.Boolean(metadata={"description": "FR-04: entered over 2 working days after collection"})
    created_by = fields.UUID(allow_none=True)
    created_at = fields.DateTime(required=True)
    updated_at = fields.DateTime()
    version = fields.Integer()
    contacts = fields.List(fields.Nested(ContactOut))


class OwnerChangeOut(Schema):
    id = fields.Integer()
    kind = fields.String(metadata={"description": "claim, claim_refused, pool, assign, override, reclaimable, reassign"})
    owner_id = fields.UUID(allow_none=True)
    owner_name = fields.String(allow_none=True)
    owner_team = fields.String(allow_none=True)
    previous_owner_id = fields.UUID(allow_none=True)
    actor_id = fields.UUID(allow_none=True)
    actor_name = fields.String(allow_none=True)
    reason = fields.String(allow_none=True)
    source = fields.String(allow_none=True)
    claimed_name = fields.String(allow_none=True)
    occurred_at = fields.DateTime()


class ClassificationOut(Schema):
    id = fields.Integer()
    previous_status = fields.String(allow_none=True)
    status = fields.String()
    source = fields.String(metadata={"description": "recorded, manual or order (the first confirmed order)"})
    order_id = fields.UUID(allow_none=True)
    reason = fields.String(allow_none=True)
    changed_by = fields.UUID(allow_none=True)
    occurred_at = fields.DateTime()


class FollowUpOut(Schema):
    id = fields.UUID()
    customer_id = fields.UUID()
    channel = fields.String()
    occurred_at = fields.DateTime()
    summary = fields.String()
    next_step = fields.String(allow_none=True)
    feedback = fields.String(allow_none=True)
    recorded_by = fields.UUID()
    created_at = fields.DateTime()


class PurchaseOut(Schema):
    order_id = fields.UUID()
    order_number = fields.String()
    total = fields.String(metadata={"example": "11300.00"})
    confirmed_at = fields.DateTime()
    lines = fields.List(fields.Dict())


class ReviewOut(Schema):
    id = fields.UUID()
    customer_id = fields.UUID()
    business_status = fields.String()
    credit_opinion = fields.String()
    valid_until = fields.Date()
    state = fields.String(metadata={"description": "submitted, approved or rejected"})
    submitted_by = fields.UUID()
    submitted_at = fields.DateTime()
    decided_by = fields.UUID(allow_none=True)
    decided_at = fields.DateTime(allow_none=True)
    comment = fields.String(allow_none=True)


class SuggestionStepOut(Schema):
    customer_id = fields.UUID()
    customer_name = fields.String()
    owner_id = fields.UUID()
    owner_name = fields.String()


class CandidateOut(Schema):
    staff_id = fields.UUID()
    display_name = fields.String()
    team = fields.String(allow_none=True)
    capacity = fields.String()
    customers = fields.Integer(metadata={"description": "owned after the plan"})
    load = fields.String(metadata={"description": "customers / capacity after the plan"})


class SuggestionOut(Schema):
    team = fields.String(allow_none=True)
    plan = fields.List(fields.Nested(SuggestionStepOut))
    candidates = fields.List(fields.Nested(CandidateOut))


CustomerPage = page_schema("CustomerPage", CustomerOut)
ContactPage = page_schema("ContactPage", ContactOut)
LedgerPage = page_schema("OwnerHistoryPage", OwnerChangeOut)
ClassificationPage = page_schema("ClassificationPage", ClassificationOut)
FollowUpPage = page_schema("FollowUpPage", FollowUpOut)
PurchasePage = page_schema("PurchasePage", PurchaseOut)
ReviewPage = page_schema("ReviewPage", ReviewOut)


# -- visits ----------------------------------------------------------------------------------
class VisitIn(StrictSchema):
    customer_id = fields.UUID(required=True)
    planned_at = moment(required=True)
    planned_return_at = moment(metadata={"description": "default four hours after planned_at (FR-24)"})
    purpose = text(2000, required=True, metadata={"description": "FR-23: the visit's objectives"})
    expected_issues = text(2000, metadata={"description": "FR-29"})
    tracking_report = text(4000, metadata={"description": "FR-29: required when the customer was visited before"})

    example = {"customer_id": "0b5f8a8e-3f7d-4c1a-8d3e-2a9c6b1d4e5f", "planned_at": "2026-11-26T14:00:00+08:00",
               "purpose": "present the 5-axis line; find out who decides", "expected_issues": "price versus Haas"}


class VisitLogIn(StrictSchema):
    visited_at = moment(required=True)
    summary = text(8000, required=True, metadata={"description": "FR-25: the meeting minutes"})
    next_step = text(2000)

    example = {"visited_at": "2026-11-26T14:10:00+08:00", "summary": "met the CTO and purchasing; demo went well",
               "next_step": "send the quote by Friday"}


class DelayIn(StrictSchema):
    expected_return_at = moment(required=True)
    reason = text(1000, required=True)

    example = {"expected_return_at": "2026-11-26T19:30:00+08:00", "reason": "plant tour runs late"}


class CancelIn(StrictSchema):
    reason = text(1000, required=True)

    example = {"reason": "the customer postponed"}


class VisitQuery(PageQuery):
    owner = fields.UUID(load_default=None, metadata={"description": "the visiting rep's staff id"})
    customer_id = fields.UUID(load_default=None)
    state = fields.String(load_default=None, validate=validate.OneOf(VISIT_STATES))
    late = fields.Boolean(load_default=None, metadata={"description": "logged after the deadline (FR-27)"})
    overdue = fields.Boolean(load_default=None, metadata={"description": "log overdue or rep not back (FR-24/27)"})
    from_ = fields.Date(load_default=None, data_key="from", metadata={"description": "planned on or after"})
    to = fields.Date(load_default=None, metadata={"description": "planned on or before"})


class WeekQuery(StrictSchema):
    week = fields.String(load_default=None, validate=validate.Regexp(r"^\d{4}-W\d{2}$", error="like 2026-W48"),
                         metadata={"description": "ISO week, default this week (Asia/Shanghai)"})
    team = text(100, load_default=None)


class VisitOut(Schema):
    id = fields.UUID()
    number = fields.String(metadata={"example": "VIS-2026-000042"})
    customer_id = fields.UUID()
    customer_name = fields.String()
    rep_id = fields.UUID()
    rep_name = fields.String()
    rep_team = fields.String(allow_none=True)
    planned_at = fields.DateTime()
    planned_return_at = fields.DateTime()
    purpose = fields.String()
    expected_issues = fields.String(allow_none=True)
    tracking_report = fields.String(allow_none=True)
    state = fields.String(metadata={"description": "planned → approved → (in_field → returned) → logged"})
    approved_by = fields.UUID(allow_none=True)
    approved_at = fields.DateTime(allow_none=True)
    decision_comment = fields.String(allow_none=True)
    checked_out_at = fields.DateTime(allow_none=True)
    checked_in_at = fields.DateTime(allow_none=True)
    expected_return_at = fields.DateTime(allow_none=True)
    delay_reason = fields.String(allow_none=True)
    return_overdue = fields.Boolean()
    log_due_by = fields.DateTime(allow_none=True)
    log_overdue = fields.Boolean()
    visited_at = fields.DateTime(allow_none=True)
    logged_at = fields.DateTime(allow_none=True)
    late = fields.Boolean(allow_none=True)
    summary = fields.String(allow_none=True)
    next_step = fields.String(allow_none=True)
    created_at = fields.DateTime()
    updated_at = fields.DateTime()


class WeekRowOut(Schema):
    rep_id = fields.UUID()
    rep_name = fields.String()
    team = fields.String(allow_none=True)
    visits = fields.Integer()
    late_logs = fields.Integer()
    standard = fields.Integer()
    shortfall = fields.Integer()
    met = fields.Boolean()


class WeekOut(Schema):
    week = fields.String()
    standard = fields.Integer(metadata={"description": "FR-26: 10 visits per rep per week"})
    items = fields.List(fields.Nested(WeekRowOut))


VisitPage = page_schema("VisitPage", VisitOut)


# -- opportunities ---------------------------------------------------------------------------
class OpportunityIn(StrictSchema):
    customer_id = fields.UUID(required=True)
    title = text(300, required=True)
    source = fields.String(validate=validate.OneOf(OPPORTUNITY_SOURCES),
                           metadata={"description": "FR-37, default customer_feedback"})
    expected_amount = fields.String(required=True, validate=MONEY)
    probability = fields.Integer(required=True, strict=True, validate=validate.Range(0, 100),
                                 metadata={"description": "percent"})
    expected_close = fields.Date(allow_none=True)
    priority = fields.String(allow_none=True, validate=validate.OneOf(PRIORITIES))
    feasibility = text(4000)
    follow_up_plan = text(4000, metadata={"description": "FR-39"})

    example = {"customer_id": "0b5f8a8e-3f7d-4c1a-8d3e-2a9c6b1d4e5f", "title": "5-axis line for plant 2",
               "source": "visit", "expected_amount": "860000.00", "probability": 30, "expected_close": "2027-03-31",
               "priority": "high"}


class OpportunityUpdate(StrictSchema):
    title = fields.String(validate=validate.Length(1, 300))
    stage = fields.String(validate=validate.OneOf(STAGES),
                          metadata={"description": "one stage forward, or back; close with /close"})
    expected_amount = fields.String(validate=MONEY)
    probability = fields.Integer(strict=True, validate=validate.Range(0, 100))
    expected_close = fields.Date(allow_none=True)
    priority = fields.String(allow_none=True, validate=validate.OneOf(PRIORITIES))
    feasibility = text(4000)
    follow_up_plan = text(4000)

    example = {"stage": "qualified", "priority": "high", "probability": 40,
               "follow_up_plan": "weekly call with purchasing"}


class CloseIn(StrictSchema):
    outcome = fields.String(required=True, validate=validate.OneOf(OUTCOMES))
    reason = text(2000, metadata={"description": "required when lost"})
    order_id = fields.UUID(allow_none=True, metadata={"description": "required when won: the order it became"})

    example = {"outcome": "lost", "reason": "competitor 12% cheaper"}


class OpportunityQuery(PageQuery):
    owner = fields.UUID(load_default=None)
    customer_id = fields.UUID(load_default=None)
    stage = fields.String(load_default=None, validate=validate.OneOf(STAGES + OUTCOMES))
    open = fields.Boolean(load_default=None)


class OpportunityOut(Schema):
    id = fields.UUID()
    number = fields.String(metadata={"example": "OPP-2026-000007"})
    customer_id = fields.UUID()
    customer_name = fields.String()
    owner_id = fields.UUID(allow_none=True)
    owner_name = fields.String(allow_none=True)
    owner_team = fields.String(allow_none=True)
    title = fields.String()
    source = fields.String()
    stage = fields.String()
    priority = fields.String(allow_none=True)
    probability = fields.Integer()
    expected_amount = fields.String()
    weighted_amount = fields.String()
    expected_close = fields.Date(allow_none=True)
    feasibility = fields.String(allow_none=True)
    follow_up_plan = fields.String(allow_none=True)
    reason = fields.String(allow_none=True)
    order_id = fields.UUID(allow_none=True)
    closed_at = fields.DateTime(allow_none=True)
    closed_by = fields.UUID(allow_none=True)
    created_by = fields.UUID()
    created_at = fields.DateTime()
    updated_at = fields.DateTime()
    version = fields.Integer()


OpportunityPage = page_schema("OpportunityPage", OpportunityOut)

# -- proposals and tenders (FR-40, FR-41) -------------------------------------------------------
PROPOSAL_STATES = ("draft", "internal_review", "approved", "submitted", "accepted", "rejected")


class ProposalIn(StrictSchema):
    opportunity_id = fields.UUID(required=True, metadata={"description": "a qualified, open opportunity"})
    kind = fields.String(validate=validate.OneOf(("proposal", "tender")),
                         metadata={"description": "default proposal; a tender (FR-41) needs closes_at"})
    title = text(300, required=True)
    content = text(20000, required=True)
    amount = fields.String(allow_none=True, validate=MONEY, metadata={"description": "the amount offered"})
    closes_at = moment(metadata={"description": "FR-41: when the tender closes (tenders only), ISO 8601 with offset"})

    example = {"opportunity_id": "0b5f8a8e-3f7d-4c1a-8d3e-2a9c6b1d4e5f", "title": "Line 2 retrofit",
               "content": "Scope: two CNC cells, installation, training.", "amount": "455000.00"}


class ProposalUpdate(StrictSchema):
    title = fields.String(validate=validate.Length(1, 300))
    content = fields.String(validate=validate.Length(1, 20000))
    amount = fields.String(allow_none=True, validate=MONEY)
    closes_at = moment()

    example = {"content": "Delivery in 6 weeks; training priced apart."}


class ProposalResponseIn(StrictSchema):
    outcome = fields.String(required=True, validate=validate.OneOf(("accepted", "rejected")))
    comment = text(2000, metadata={"description": "required when rejected: the customer's reason"})

    example = {"outcome": "rejected", "comment": "needs delivery in 6 weeks"}


class ProposalQuery(PageQuery):
    owner = fields.UUID(load_default=None)
    opportunity_id = fields.UUID(load_default=None)
    customer_id = fields.UUID(load_default=None)
    state = fields.String(load_default=None, validate=validate.OneOf(PROPOSAL_STATES))


class ProposalStepOut(Schema):
    action = fields.String()
    from_state = fields.String(allow_none=True)
    to_state = fields.String()
    revision = fields.Integer()
    comment = fields.String(allow_none=True)
    actor_id = fields.UUID()
    at = fields.DateTime()


class ProposalOut(Schema):
    id = fields.UUID()
    number = fields.String(metadata={"example": "PRP-2026-000003"})
    opportunity_id = fields.UUID()
    opportunity_number = fields.String()
    customer_id = fields.UUID()
    customer_name = fields.String()
    owner_id = fields.UUID(allow_none=True)
    owner_name = fields.String(allow_none=True)
    owner_team = fields.String(allow_none=True)
    kind = fields.String()
    title = fields.String()
    content = fields.String()
    amount = fields.String(allow_none=True)
    closes_at = fields.DateTime(allow_none=True)
    state = fields.String()
    revision = fields.Integer(metadata={"description": "the round: + 1 each time a turned-down proposal is modified"})
    reviewed_by = fields.UUID(allow_none=True)
    reviewed_at = fields.DateTime(allow_none=True)
    review_comment = fields.String(allow_none=True)
    submitted_at = fields.DateTime(allow_none=True)
    responded_at = fields.DateTime(allow_none=True)
    response = fields.String(allow_none=True)
    created_by = fields.UUID()
    created_at = fields.DateTime()
    updated_at = fields.DateTime()
    version = fields.Integer()


class ProposalDetailOut(ProposalOut):
    steps = fields.List(fields.Nested(ProposalStepOut), metadata={"description": "every step of every round"})


ProposalPage = page_schema("ProposalPage", ProposalOut)

# -- escalations and guidance (FR-28, FR-30) ---------------------------------------------------
class EscalationIn(StrictSchema):
    reason = text(2000, required=True, metadata={"description": "why the customer is hard to win alone"})
    help_wanted = text(2000, metadata={"description": "what the rep asks of the manager, e.g. a joint visit"})

    example = {"reason": "state-owned buyer, three-step tender committee", "help_wanted": "joint visit"}


class EscalationNoteIn(StrictSchema):
    note = text(4000, required=True)

    example = {"note": "bring the plant manager; I join on Thursday"}


class EscalationOutcomeIn(StrictSchema):
    outcome = text(2000, required=True)

    example = {"outcome": "won over: LOI signed"}


class EscalationQuery(PageQuery):
    owner = fields.UUID(load_default=None)
    customer_id = fields.UUID(load_default=None)
    state = fields.String(load_default=None, validate=validate.OneOf(("open", "guided", "closed")))
    overdue = fields.Boolean(load_default=None, metadata={"description": "no guidance by the end of the next working day"})


class EscalationNoteOut(Schema):
    author_id = fields.UUID()
    kind = fields.String(metadata={"description": "feedback (the owner) or guidance (the manager)"})
    note = fields.String()
    at = fields.DateTime()


class EscalationOut(Schema):
    id = fields.UUID()
    number = fields.String(metadata={"example": "ESC-2026-000002"})
    customer_id = fields.UUID()
    customer_name = fields.String()
    owner_id = fields.UUID(allow_none=True)
    owner_name = fields.String(allow_none=True)
    owner_team = fields.String(allow_none=True)
    raised_by = fields.UUID()
    reason = fields.String()
    help_wanted = fields.String(allow_none=True)
    state = fields.String(metadata={"description": "open → guided → closed"})
    guidance_due_by = fields.DateTime()
    guidance_overdue = fields.Boolean()
    outcome = fields.String(allow_none=True)
    closed_by = fields.UUID(allow_none=True)
    closed_at = fields.DateTime(allow_none=True)
    created_at = fields.DateTime()
    updated_at = fields.DateTime()
    version = fields.Integer()


class EscalationDetailOut(EscalationOut):
    notes = fields.List(fields.Nested(EscalationNoteOut))


EscalationPage = page_schema("EscalationPage", EscalationOut)

# -- the weekly check of collected records (FR-05) ---------------------------------------------
WEEK = validate.Regexp(r"^\d{4}-W\d{2}$", error="an ISO week like 2026-W48")


class CollectionSubmitIn(StrictSchema):
    week = fields.String(allow_none=True, validate=WEEK, metadata={"description": "ISO week, default this week"})

    example = {"week": "2026-W48"}


class CollectionCheckIn(StrictSchema):
    outcome = fields.String(required=True, validate=validate.OneOf(("checked", "returned")))
    comment = text(2000, metadata={"description": "required when returned: what to complete"})

    example = {"outcome": "returned", "comment": "add the contacts' positions"}


class CollectionQuery(PageQuery):
    owner = fields.UUID(load_default=None, metadata={"description": "the rep's staff id"})
    week = fields.String(load_default=None, validate=WEEK)
    state = fields.String(load_default=None, validate=validate.OneOf(("submitted", "checked", "returned")))


class CollectedRecordOut(Schema):
    id = fields.UUID()
    number = fields.String()
    name = fields.String()
    source = fields.String()
    late_entry = fields.Boolean(metadata={"description": "FR-04: entered more than 2 working days after collection"})


class CollectionOut(Schema):
    id = fields.UUID()
    rep_id = fields.UUID()
    rep_name = fields.String(allow_none=True)
    rep_team = fields.String(allow_none=True)
    week = fields.String()
    state = fields.String(metadata={"description": "submitted → checked | returned → submitted"})
    records = fields.Integer()
    submitted_at = fields.DateTime()
    checked_by = fields.UUID(allow_none=True)
    checked_at = fields.DateTime(allow_none=True)
    comment = fields.String(allow_none=True)
    version = fields.Integer()


class CollectionDetailOut(CollectionOut):
    customers = fields.List(fields.Nested(CollectedRecordOut))


CollectionPage = page_schema("CollectionPage", CollectionOut)

# -- market intelligence (FR-33) ---------------------------------------------------------------
INTELLIGENCE_KINDS = ("trend", "demand", "competitor", "dealer_request", "problem")
INTELLIGENCE_READERS = SALES_STAFF | {"marketing_director"}
INTELLIGENCE_ANSWERERS = VISIT_APPROVERS | {"marketing_director"}


class IntelligenceIn(StrictSchema):
    kind = fields.String(required=True, validate=validate.OneOf(INTELLIGENCE_KINDS),
                         metadata={"description": "problem: a problem of the sales work, always escalated"})
    customer_id = fields.UUID(allow_none=True)
    region = text(100, metadata={"description": "default: the customer's, else the reporter's"})
    summary = text(300, required=True)
    details = text(8000)
    urgent = fields.Boolean(metadata={"description": "escalate it: answered by the next working day"})

    example = {"kind": "competitor", "summary": "Competitor X cut pump prices 12% in Jiangsu", "urgent": True}


class AcknowledgeIn(StrictSchema):
    response = text(4000, required=True)

    example = {"response": "pricing review on Friday"}


class IntelligenceQuery(PageQuery):
    owner = fields.UUID(load_default=None, metadata={"description": "the reporter's staff id"})
    kind = fields.String(load_default=None, validate=validate.OneOf(INTELLIGENCE_KINDS))
    customer_id = fields.UUID(load_default=None)
    region = fields.String(load_default=None, validate=validate.Length(1, 100))
    state = fields.String(load_default=None, validate=validate.OneOf(("reported", "acknowledged")))
    urgent = fields.Boolean(load_default=None)


class IntelligenceOut(Schema):
    id = fields.UUID()
    number = fields.String(metadata={"example": "INT-2026-000012"})
    kind = fields.String()
    customer_id = fields.UUID(allow_none=True)
    customer_name = fields.String(allow_none=True)
    region = fields.String(allow_none=True)
    summary = fields.String()
    details = fields.String(allow_none=True)
    urgent = fields.Boolean()
    reported_by = fields.UUID()
    reporter_name = fields.String(allow_none=True)
    reporter_team = fields.String(allow_none=True)
    state = fields.String()
    response_due_by = fields.DateTime(allow_none=True)
    response_overdue = fields.Boolean()
    acknowledged_by = fields.UUID(allow_none=True)
    acknowledged_at = fields.DateTime(allow_none=True)
    response = fields.String(allow_none=True)
    created_at = fields.DateTime()
    version = fields.Integer()


IntelligencePage = page_schema("IntelligencePage", IntelligenceOut)

# -- the logistics information sheet (FR-18) -------------------------------------------------
LOGISTICS_KEEPERS = SALES_STAFF | {"order_desk"}  # the sales secretary group keeps it (FR-18)


class LogisticsIn(StrictSchema):
    consignee = text(200, required=True)
    address = text(500, required=True)
    phone = text(50)
    carrier = text(200)
    delivery_notes = text(2000)

    example = {"consignee": "Zhang Min, receiving dock 3", "address": "88 Gongye Rd, Suzhou",
               "carrier": "SF Freight", "delivery_notes": "forklift on site; 08:00-16:00 only"}


class LogisticsOut(Schema):
    customer_id = fields.UUID()
    customer_name = fields.String()
    consignee = fields.String(allow_none=True)
    address = fields.String(allow_none=True)
    phone = fields.String(allow_none=True)
    carrier = fields.String(allow_none=True)
    delivery_notes = fields.String(allow_none=True)
    reviewed_by = fields.UUID(allow_none=True)
    reviewed_at = fields.DateTime(allow_none=True)
    review_due_by = fields.DateTime(allow_none=True, metadata={"description": "a calendar month after the review"})
    due = fields.Boolean(metadata={"description": "missing, or its monthly review is due"})


LogisticsPage = page_schema("LogisticsPage", LogisticsOut)


class LogisticsDueQuery(PageQuery):
    as_of = moment()


CUSTOMER = f"{API}/customers/<uuid:customer_id>"
VISIT = f"{API}/visits/<uuid:visit_id>"
OPPORTUNITY = f"{API}/opportunities/<uuid:opportunity_id>"
PROPOSAL = f"{API}/proposals/<uuid:proposal_id>"
ESCALATION = f"{API}/escalations/<uuid:escalation_id>"
COLLECTION = f"{API}/collections/<uuid:collection_id>"
INTELLIGENCE = f"{API}/intelligence/<uuid:report_id>"
READ_ERRORS = (404, 503, 504)
WRITE_ERRORS = (404, 409, 503, 504)


class CustomersApi:
    # -- customers ---------------------------------------------------------------------------
    @api("POST", f"{API}/customers", roles=CUSTOMER_WRITERS, body=CustomerCreate, response=CustomerOut,
         status=201, locates=True, tags=["customers"], errors=(409, 503, 504))
    def create_customer(self, call):
        """Record a customer (FR-01, FR-02); a duplicate name or tax id answers 409 DUPLICATE_CUSTOMER
        naming the owner (FR-06, FR-07)."""
        customer = self.customer.create_customer(request_id=call.request_id, actor=call.actor,
                                                 customer=plain(call.body))
        return created(customer, location=f"{API}/customers/{customer['id']}")

    @api("GET", f"{API}/customers", roles=CUSTOMER_READERS, query=CustomerQuery, response=CustomerPage,
         tags=["customers"], errors=(503, 504))
    def list_customers(self, call):
        """List the customers the caller may see, filtered."""
        query = plain(call.query)
        filters = _filters(query, ("owner", "team", "status", "region", "industry", "size", "source", "late_entry",
                                   "quiet_days", "q"))
        return self.customer.list_customers(actor=call.actor, filters=filters, limit=query["limit"],
                                            cursor=query["cursor"])

    @api("GET", f"{API}/customers/pool", roles=POOL_READERS, query=PoolQuery, response=CustomerPage,
         tags=["customers"], errors=(503, 504))
    def list_pool(self, call):
        """The pool: customers without an owner, and new ones not contacted within a week (FR-09–FR-11)."""
        query = plain(call.query)
        return self.customer.list_pool(actor=call.actor, filters=_filters(query, ("reason", "region", "industry")),
                                       limit=query["limit"], cursor=query["cursor"])

    @api("GET", f"{API}/customers/pool/suggestion", roles=MANAGERS, query=SuggestionQuery, response=SuggestionOut,
         tags=["customers"], errors=(503, 504))
    def suggest_distribution(self, call):
        """A balanced plan for the pool: each customer to the rep with the fewest customers for their
        capacity (FR-09). A suggestion: assign with POST /customers/{id}/owner."""
        query = plain(call.query)
        return self.customer.suggest_distribution(actor=call.actor, team=query["team"], limit=query["limit"])

    @api("GET", CUSTOMER, roles=CUSTOMER_READERS, response=CustomerOut, tags=["customers"], errors=READ_ERRORS)
    def get_customer(self, call, customer_id):
        """One customer (someone else's answers 404)."""
        return self.customer.get_customer(actor=call.actor, customer_id=customer_id)

    @api("PATCH", CUSTOMER, roles=CUSTOMER_WRITERS, body=CustomerUpdate, response=CustomerOut, tags=["customers"],
         errors=WRITE_ERRORS)
    def update_customer(self, call, customer_id):
        """Change the profile: needs, problems, tax id and bank details, ... (FR-01, FR-16, FR-17)."""
        return self.customer.update_customer(request_id=call.request_id, actor=call.actor, customer_id=customer_id,
                                             changes=plain(call.body))

    @api("POST", f"{CUSTOMER}/owner", roles=MANAGERS, body=OwnerChange, response=CustomerOut, tags=["customers"],
         errors=WRITE_ERRORS)
    def assign_owner(self, call, customer_id):
        """Give the customer to another salesperson, with the reason (FR-08–FR-11; managers)."""
        body = plain(call.body)
        return self.customer.assign_owner(request_id=call.request_id, actor=call.actor, customer_id=customer_id,
                                          owner_id=body["owner"], reason=body["reason"])

    @api("GET", f"{CUSTOMER}/owner-history", roles=CUSTOMER_READERS, query=PageQuery, response=LedgerPage,
         tags=["customers"], errors=READ_ERRORS)
    def owner_history(self, call, customer_id):
        """Every claim and change of owner, oldest first: who, when, why (FR-07)."""
        return self.customer.list_owner_history(actor=call.actor, customer_id=customer_id, **_page(call))

    @api("POST", f"{CUSTOMER}/classification", roles=SALES_STAFF, body=ClassificationIn, response=CustomerOut,
         tags=["customers"], errors=WRITE_ERRORS)
    def classify_customer(self, call, customer_id):
        """Move the customer's class (FR-13); `signed` comes from the first confirmed order (or a manager)."""
        body = plain(call.body)
        return self.customer.classify_customer(request_id=call.request_id, actor=call.actor,
                                               customer_id=customer_id, status=body["status"],
                                               reason=body.get("reason"))

    @api("GET", f"{CUSTOMER}/classification-history", roles=CUSTOMER_READERS, query=PageQuery,
         response=ClassificationPage, tags=["customers"], errors=READ_ERRORS)
    def classification_history(self, call, customer_id):
        """Every change of class, oldest first (FR-13)."""
        return self.customer.list_classifications(actor=call.actor, customer_id=customer_id, **_page(call))

    @api("POST", f"{CUSTOMER}/contacts", roles=CUSTOMER_WRITERS, body=ContactIn, response=ContactOut, status=201,
         tags=["customers"], errors=WRITE_ERRORS)
    def add_contact(self, call, customer_id):
        """Add a contact person with position and decision authority (FR-15)."""
        return Reply(self.customer.add_contact(request_id=call.request_id, actor=call.actor,
                                               customer_id=customer_id, contact=plain(call.body)), status=201)

    @api("GET", f"{CUSTOMER}/contacts", roles=CUSTOMER_READERS, query=PageQuery, response=ContactPage,
         tags=["customers"], errors=READ_ERRORS)
    def list_contacts(self, call, customer_id):
        """The customer's contact persons."""
        return self.customer.list_contacts(actor=call.actor, customer_id=customer_id, **_page(call))

    @api("POST", f"{CUSTOMER}/follow-ups", roles=FOLLOW_UP_WRITERS, body=FollowUpIn, response=FollowUpOut,
         status=201, tags=["customers"], errors=WRITE_ERRORS)
    def record_follow_up(self, call, customer_id):
        """Record a phone call, e-mail, ... on the archive (FR-22, FR-27, FR-32); it counts as contact (FR-10)."""
        return Reply(self.customer.record_follow_up(request_id=call.request_id, actor=call.actor,
                                                    customer_id=customer_id, follow_up=plain(call.body)), status=201)

    @api("GET", f"{CUSTOMER}/follow-ups", roles=CUSTOMER_READERS, query=PageQuery, response=FollowUpPage,
         tags=["customers"], errors=READ_ERRORS)
    def list_follow_ups(self, call, customer_id):
        """The customer's follow-ups, newest first."""
        return self.customer.list_follow_ups(actor=call.actor, customer_id=customer_id, **_page(call))

    @api("GET", f"{CUSTOMER}/purchases", roles=CUSTOMER_READERS, query=PageQuery, response=PurchasePage,
         tags=["customers"], errors=READ_ERRORS)
    def list_purchases(self, call, customer_id):
        """Purchase history: the customer's confirmed orders, newest first (FR-17)."""
        return self.customer.list_purchases(actor=call.actor, customer_id=customer_id, **_page(call))

    # -- reviews (FR-14) ---------------------------------------------------------------------
    @api("POST", f"{CUSTOMER}/reviews", roles=SALES_STAFF, body=ReviewIn, response=ReviewOut, status=201,
         tags=["customers"], errors=WRITE_ERRORS)
    def submit_review(self, call, customer_id):
        """Submit the customer's review (status and creditworthiness) to the product manager (FR-14)."""
        return Reply(self.customer.submit_review(request_id=call.request_id, actor=call.actor,
                                                 customer_id=customer_id, review=plain(call.body)), status=201)

    @api("GET", f"{CUSTOMER}/reviews", roles=CUSTOMER_READERS, query=PageQuery, response=ReviewPage,
         tags=["customers"], errors=READ_ERRORS)
    def list_reviews(self, call, customer_id):
        """The customer's reviews, newest first."""
        return self.customer.list_reviews(actor=call.actor, customer_id=customer_id, **_page(call))

    @api("POST", f"{CUSTOMER}/reviews/<uuid:review_id>/approve", roles=REVIEWERS, body=DecisionIn,
         response=ReviewOut, tags=["customers"], errors=WRITE_ERRORS)
    def approve_review(self, call, customer_id, review_id):
        """Approve a review: the customer may be quoted until its valid_until (FR-14; product manager)."""
        return self.customer.approve_review(request_id=call.request_id, actor=call.actor, customer_id=customer_id,
                                            review_id=review_id, comment=call.body.get("comment"))

    @api("POST", f"{CUSTOMER}/reviews/<uuid:review_id>/reject", roles=REVIEWERS, body=RejectIn,
         response=ReviewOut, tags=["customers"], errors=WRITE_ERRORS)
    def reject_review(self, call, customer_id, review_id):
        """Reject a review, saying why (FR-14; product manager)."""
        return self.customer.reject_review(request_id=call.request_id, actor=call.actor, customer_id=customer_id,
                                           review_id=review_id, comment=call.body["comment"])

    # -- visits (FR-23–FR-29) ------------------------------------------------------------------
    @api("POST", f"{API}/visits", roles=VISITORS, body=VisitIn, response=VisitOut, status=201, locates=True,
         tags=["visits"], errors=WRITE_ERRORS)
    def plan_visit(self, call):
        """Plan a visit with its objectives; it waits for the manager's approval (`planned`, FR-23, FR-29)."""
        visit = self.customer.plan_visit(request_id=call.request_id, actor=call.actor, visit=plain(call.body))
        return created(visit, location=f"{API}/visits/{visit['id']}")

    @api("GET", f"{API}/visits", roles=SALES_STAFF, query=VisitQuery, response=VisitPage, tags=["visits"],
         errors=(503, 504))
    def list_visits(self, call):
        """Visits the caller may see, newest planned first."""
        query = plain(call.query)
        filters = _filters(query, ("owner", "customer_id", "state", "late", "overdue", "to"))
        if query.get("from_") is not None:
            filters["from"] = query["from_"]
        return self.customer.list_visits(actor=call.actor, filters=filters, limit=query["limit"],
                                         cursor=query["cursor"])

    @api("GET", f"{API}/visits/weekly", roles=SALES_STAFF, query=WeekQuery, response=WeekOut, tags=["visits"],
         errors=(503, 504))
    def visit_week(self, call):
        """Logged visits per rep in a week against the standard of 10 (FR-26)."""
        query = plain(call.query)
        return self.customer.visit_week(actor=call.actor, week=query["week"], team=query["team"])

    @api("GET", VISIT, roles=SALES_STAFF, response=VisitOut, tags=["visits"], errors=READ_ERRORS)
    def get_visit(self, call, visit_id):
        """One visit."""
        return self.customer.get_visit(actor=call.actor, visit_id=visit_id)

    @api("POST", f"{VISIT}/approve", roles=VISIT_APPROVERS, body=DecisionIn, response=VisitOut, tags=["visits"],
         errors=WRITE_ERRORS)
    def approve_visit(self, call, visit_id):
        """Approve the plan (the rep's manager or a director, FR-23)."""
        return self.customer.approve_visit(request_id=call.request_id, actor=call.actor, visit_id=visit_id,
                                           comment=call.body.get("comment"))

    @api("POST", f"{VISIT}/reject", roles=VISIT_APPROVERS, body=RejectIn, response=VisitOut, tags=["visits"],
         errors=WRITE_ERRORS)
    def reject_visit(self, call, visit_id):
        """Reject the plan, saying why."""
        return self.customer.reject_visit(request_id=call.request_id, actor=call.actor, visit_id=visit_id,
                                          comment=call.body["comment"])

    @api("POST", f"{VISIT}/cancel", roles=VISITORS, body=CancelIn, response=VisitOut, tags=["visits"],
         errors=WRITE_ERRORS)
    def cancel_visit(self, call, visit_id):
        """Cancel a planned or approved visit (the rep)."""
        return self.customer.cancel_visit(request_id=call.request_id, actor=call.actor, visit_id=visit_id,
                                          reason=call.body["reason"])

    @api("POST", f"{VISIT}/check-out", roles=VISITORS, response=VisitOut, tags=["visits"], errors=WRITE_ERRORS)
    def check_out_visit(self, call, visit_id):
        """Leave for an approved visit (FR-23)."""
        return self.customer.check_out_visit(request_id=call.request_id, actor=call.actor, visit_id=visit_id)

    @api("POST", f"{VISIT}/check-in", roles=VISITORS, response=VisitOut, tags=["visits"], errors=WRITE_ERRORS)
    def check_in_visit(self, call, visit_id):
        """Back from the visit (FR-24)."""
        return self.customer.check_in_visit(request_id=call.request_id, actor=call.actor, visit_id=visit_id)

    @api("POST", f"{VISIT}/delay", roles=VISITORS, body=DelayIn, response=VisitOut, tags=["visits"],
         errors=WRITE_ERRORS)
    def report_visit_delay(self, call, visit_id):
        """Tell the manager you will be back later than planned (FR-24)."""
        body = plain(call.body)
        return self.customer.report_visit_delay(request_id=call.request_id, actor=call.actor, visit_id=visit_id,
                                                expected_return_at=body["expected_return_at"], reason=body["reason"])

    @api("POST", f"{VISIT}/log", roles=VISITORS, body=VisitLogIn, response=VisitOut, tags=["visits"],
         errors=WRITE_ERRORS)
    def log_visit(self, call, visit_id):
        """Log the visit: `logged`, late when after the end of the second working day (FR-25, FR-27)."""
        return self.customer.log_visit(request_id=call.request_id, actor=call.actor, visit_id=visit_id,
                                       log=plain(call.body))

    # -- opportunities (FR-37–FR-39) -------------------------------------------------------------
    @api("POST", f"{API}/opportunities", roles=SALES_STAFF, body=OpportunityIn, response=OpportunityOut,
         status=201, locates=True, tags=["opportunities"], errors=WRITE_ERRORS)
    def create_opportunity(self, call):
        """Record an opportunity on a customer (`identified`, FR-37)."""
        opportunity = self.customer.create_opportunity(request_id=call.request_id, actor=call.actor,
                                                       opportunity=plain(call.body))
        return created(opportunity, location=f"{API}/opportunities/{opportunity['id']}")

    @api("GET", f"{API}/opportunities", roles=OPPORTUNITY_READERS, query=OpportunityQuery,
         response=OpportunityPage, tags=["opportunities"], errors=(503, 504))
    def list_opportunities(self, call):
        """Opportunities the caller may see, newest first."""
        query = plain(call.query)
        return self.customer.list_opportunities(
            actor=call.actor, filters=_filters(query, ("owner", "customer_id", "stage", "open")),
            limit=query["limit"], cursor=query["cursor"])

    @api("GET", OPPORTUNITY, roles=OPPORTUNITY_READERS, response=OpportunityOut, tags=["opportunities"],
         errors=READ_ERRORS)
    def get_opportunity(self, call, opportunity_id):
        """One opportunity."""
        return self.customer.get_opportunity(actor=call.actor, opportunity_id=opportunity_id)

    @api("PATCH", OPPORTUNITY, roles=SALES_STAFF, body=OpportunityUpdate, response=OpportunityOut,
         tags=["opportunities"], errors=WRITE_ERRORS)
    def update_opportunity(self, call, opportunity_id):
        """Move the stage (one forward, or back) and score it: probability, amount, priority (FR-38, FR-39)."""
        return self.customer.update_opportunity(request_id=call.request_id, actor=call.actor,
                                                opportunity_id=opportunity_id, changes=plain(call.body))

    @api("POST", f"{OPPORTUNITY}/close", roles=SALES_STAFF, body=CloseIn, response=OpportunityOut,
         tags=["opportunities"], errors=WRITE_ERRORS)
    def close_opportunity(self, call, opportunity_id):
        """Won (with the order it became) or lost (with the reason)."""
        body = plain(call.body)
        return self.customer.close_opportunity(request_id=call.request_id, actor=call.actor,
                                               opportunity_id=opportunity_id, outcome=body["outcome"],
                                               reason=body.get("reason"), order_id=body.get("order_id"))

    # -- proposals and tenders (FR-40, FR-41) ----------------------------------------------------
    @api("POST", f"{API}/proposals", roles=SALES_STAFF, body=ProposalIn, response=ProposalDetailOut, status=201,
         locates=True, tags=["proposals"], errors=WRITE_ERRORS)
    def create_proposal(self, call):
        """Draft a proposal, or a tender offer with the tender's closing time (`draft`, FR-40, FR-41).

        Only for a qualified, open opportunity; the proposal belongs to the opportunity's owner."""
        proposal = self.customer.create_proposal(request_id=call.request_id, actor=call.actor,
                                                 proposal=plain(call.body))
        return created(proposal, location=f"{API}/proposals/{proposal['id']}")

    @api("GET", f"{API}/proposals", roles=OPPORTUNITY_READERS, query=ProposalQuery, response=ProposalPage,
         tags=["proposals"], errors=(503, 504))
    def list_proposals(self, call):
        """Proposals the caller may see, newest first (`state=internal_review`: waiting for a review)."""
        query = plain(call.query)
        return self.customer.list_proposals(
            actor=call.actor, filters=_filters(query, ("owner", "opportunity_id", "customer_id", "state")),
            limit=query["limit"], cursor=query["cursor"])

    @api("GET", PROPOSAL, roles=OPPORTUNITY_READERS, response=ProposalDetailOut, tags=["proposals"], errors=READ_ERRORS)
    def get_proposal(self, call, proposal_id):
        """One proposal with every step of every round."""
        return self.customer.get_proposal(actor=call.actor, proposal_id=proposal_id)

    @api("PATCH", PROPOSAL, roles=SALES_STAFF, body=ProposalUpdate, response=ProposalDetailOut, tags=["proposals"],
         errors=WRITE_ERRORS)
    def revise_proposal(self, call, proposal_id):
        """Modify a draft, or start the next round (revision + 1) of one the customer turned down (FR-40)."""
        return self.customer.revise_proposal(request_id=call.request_id, actor=call.actor, proposal_id=proposal_id,
                                             changes=plain(call.body))

    @api("POST", f"{PROPOSAL}/submit", roles=SALES_STAFF, response=ProposalDetailOut, tags=["proposals"],
         errors=WRITE_ERRORS)
    def submit_proposal(self, call, proposal_id):
        """To the internal proposal review (`internal_review`, FR-40)."""
        return self.customer.submit_proposal(request_id=call.request_id, actor=call.actor, proposal_id=proposal_id)

    @api("POST", f"{PROPOSAL}/approve", roles=VISIT_APPROVERS, body=DecisionIn, response=ProposalDetailOut,
         tags=["proposals"], errors=WRITE_ERRORS)
    def approve_proposal(self, call, proposal_id):
        """The owner's manager or a director approves the proposal for the customer (FR-40)."""
        return self.customer.approve_proposal(request_id=call.request_id, actor=call.actor,
                                              proposal_id=proposal_id, comment=call.body.get("comment"))

    @api("POST", f"{PROPOSAL}/reject", roles=VISIT_APPROVERS, body=RejectIn, response=ProposalDetailOut,
         tags=["proposals"], errors=WRITE_ERRORS)
    def reject_proposal(self, call, proposal_id):
        """Back to draft with the reviewer's comment (FR-40)."""
        return self.customer.reject_proposal(request_id=call.request_id, actor=call.actor,
                                             proposal_id=proposal_id, comment=call.body["comment"])

    @api("POST", f"{PROPOSAL}/send", roles=SALES_STAFF, response=ProposalDetailOut, tags=["proposals"],
         errors=WRITE_ERRORS + (422,))
    def send_proposal(self, call, proposal_id):
        """Send the approved proposal to the customer (`submitted`, FR-40).

        A tender's offer goes only before the tender closes (422 `TENDER_CLOSED`, FR-41)."""
        return self.customer.send_proposal(request_id=call.request_id, actor=call.actor, proposal_id=proposal_id)

    @api("POST", f"{PROPOSAL}/response", roles=SALES_STAFF, body=ProposalResponseIn, response=ProposalDetailOut,
         tags=["proposals"], errors=WRITE_ERRORS)
    def record_proposal_response(self, call, proposal_id):
        """Record the customer's answer to the proposal (FR-40).

        Accepted: the opportunity moves on to negotiation. Rejected, with the customer's reason: the
        owner modifies it for the next round."""
        body = plain(call.body)
        return self.customer.record_proposal_response(request_id=call.request_id, actor=call.actor,
                                                      proposal_id=proposal_id, outcome=body["outcome"],
                                                      comment=body.get("comment"))

    # -- escalations and guidance (FR-28, FR-30) -------------------------------------------------
    @api("POST", f"{CUSTOMER}/escalations", roles=SALES_STAFF, body=EscalationIn, response=EscalationDetailOut,
         status=201, locates=True, tags=["escalations"], errors=WRITE_ERRORS)
    def escalate_customer(self, call, customer_id):
        """Escalate a customer hard to win alone to the owner's manager (`open`, FR-28).

        Only the owner escalates; one open escalation per customer (409 `ESCALATION_OPEN`)."""
        escalation = self.customer.escalate_customer(request_id=call.request_id, actor=call.actor,
                                                     customer_id=customer_id, escalation=plain(call.body))
        return created(escalation, location=f"{API}/escalations/{escalation['id']}")

    @api("GET", f"{API}/escalations", roles=SALES_STAFF, query=EscalationQuery, response=EscalationPage,
         tags=["escalations"], errors=(503, 504))
    def list_escalations(self, call):
        """Escalations the caller may see, newest first (`overdue=true`: guidance late, FR-30)."""
        query = plain(call.query)
        return self.customer.list_escalations(
            actor=call.actor, filters=_filters(query, ("owner", "customer_id", "state", "overdue")),
            limit=query["limit"], cursor=query["cursor"])

    @api("GET", ESCALATION, roles=SALES_STAFF, response=EscalationDetailOut, tags=["escalations"],
         errors=READ_ERRORS)
    def get_escalation(self, call, escalation_id):
        """One escalation with its feedback and guidance notes."""
        return self.customer.get_escalation(actor=call.actor, escalation_id=escalation_id)

    @api("POST", f"{ESCALATION}/notes", roles=SALES_STAFF, body=EscalationNoteIn, response=EscalationDetailOut,
         tags=["escalations"], errors=WRITE_ERRORS)
    def note_escalation(self, call, escalation_id):
        """Add the owner's feedback, or the manager's guidance (`guided`; next due in a working day, FR-30)."""
        return self.customer.note_escalation(request_id=call.request_id, actor=call.actor,
                                             escalation_id=escalation_id, note=call.body["note"])

    @api("POST", f"{ESCALATION}/close", roles=SALES_STAFF, body=EscalationOutcomeIn, response=EscalationDetailOut,
         tags=["escalations"], errors=WRITE_ERRORS)
    def close_escalation(self, call, escalation_id):
        """Close the escalation with its outcome (the owner or their manager)."""
        return self.customer.close_escalation(request_id=call.request_id, actor=call.actor,
                                              escalation_id=escalation_id, outcome=call.body["outcome"])

    # -- the weekly check of collected records (FR-05) -------------------------------------------
    @api("POST", f"{API}/collections", roles=SALES_STAFF, body=CollectionSubmitIn, response=CollectionDetailOut,
         status=201, locates=True, tags=["customers"], errors=(409, 503, 504))
    def submit_collection(self, call):
        """Submit the customer records collected in a week to the manager for checking (FR-05).

        A week returned for completion is submitted again; a submitted or checked week answers 409."""
        week = self.customer.submit_collection(request_id=call.request_id, actor=call.actor,
                                               week=call.body.get("week"))
        return created(week, location=f"{API}/collections/{week['id']}")

    @api("GET", f"{API}/collections", roles=SALES_STAFF, query=CollectionQuery, response=CollectionPage,
         tags=["customers"], errors=(503, 504))
    def list_collections(self, call):
        """Weekly submissions the caller may see (`state=submitted`: waiting for the manager's check)."""
        query = plain(call.query)
        return self.customer.list_collections(actor=call.actor, filters=_filters(query, ("owner", "week", "state")),
                                              limit=query["limit"], cursor=query["cursor"])

    @api("GET", COLLECTION, roles=SALES_STAFF, response=CollectionDetailOut, tags=["customers"], errors=READ_ERRORS)
    def get_collection(self, call, collection_id):
        """One week's submission with its records."""
        return self.customer.get_collection(actor=call.actor, collection_id=collection_id)

    @api("POST", f"{COLLECTION}/check", roles=VISIT_APPROVERS, body=CollectionCheckIn,
         response=CollectionDetailOut, tags=["customers"], errors=WRITE_ERRORS)
    def check_collection(self, call, collection_id):
        """The rep's manager checks the week's records, or returns them with what to complete (FR-05)."""
        body = plain(call.body)
        return self.customer.check_collection(request_id=call.request_id, actor=call.actor,
                                              collection_id=collection_id, outcome=body["outcome"],
                                              comment=body.get("comment"))

    # -- market intelligence (FR-33) -------------------------------------------------------------
    @api("POST", f"{API}/intelligence", roles=INTELLIGENCE_READERS, body=IntelligenceIn, response=IntelligenceOut,
         status=201, locates=True, tags=["customers"], errors=WRITE_ERRORS)
    def report_intelligence(self, call):
        """Report market intelligence or a problem from the field (FR-33).

        A problem, or a report marked urgent, is escalated: the reporter's manager answers it by the
        end of the next working day (`response_due_by`)."""
        item = self.customer.report_intelligence(request_id=call.request_id, actor=call.actor,
                                                 report=plain(call.body))
        return created(item, location=f"{API}/intelligence/{item['id']}")

    @api("GET", f"{API}/intelligence", roles=INTELLIGENCE_READERS, query=IntelligenceQuery,
         response=IntelligencePage, tags=["customers"], errors=(503, 504))
    def list_intelligence(self, call):
        """Field reports the caller may see (`state=reported&urgent=true`: escalated, unanswered)."""
        query = plain(call.query)
        return self.customer.list_intelligence(
            actor=call.actor, filters=_filters(query, ("owner", "kind", "customer_id", "region", "state", "urgent")),
            limit=query["limit"], cursor=query["cursor"])

    @api("GET", INTELLIGENCE, roles=INTELLIGENCE_READERS, response=IntelligenceOut, tags=["customers"],
         errors=READ_ERRORS)
    def get_intelligence(self, call, report_id):
        """One field report."""
        return self.customer.get_intelligence(actor=call.actor, report_id=report_id)

    @api("POST", f"{INTELLIGENCE}/acknowledge", roles=INTELLIGENCE_ANSWERERS, body=AcknowledgeIn,
         response=IntelligenceOut, tags=["customers"], errors=WRITE_ERRORS)
    def acknowledge_intelligence(self, call, report_id):
        """Answer a field report: the reporter's manager, a director or marketing (FR-33)."""
        return self.customer.acknowledge_intelligence(request_id=call.request_id, actor=call.actor,
                                                      report_id=report_id, response=call.body["response"])

    # -- the logistics information sheet (FR-18) -------------------------------------------------
    @api("PUT", f"{CUSTOMER}/logistics", roles=LOGISTICS_KEEPERS, body=LogisticsIn, response=LogisticsOut,
         tags=["customers"], errors=WRITE_ERRORS)
    def save_logistics(self, call, customer_id):
        """Record the customer's shipping sheet, or confirm it unchanged: the month's review (FR-18)."""
        return self.customer.save_logistics(request_id=call.request_id, actor=call.actor, customer_id=customer_id,
                                            sheet=plain(call.body))

    @api("GET", f"{CUSTOMER}/logistics", roles=LOGISTICS_KEEPERS, response=LogisticsOut, tags=["customers"],
         errors=READ_ERRORS)
    def get_logistics(self, call, customer_id):
        """The customer's shipping sheet and when its monthly review is due (FR-18)."""
        return self.customer.get_logistics(actor=call.actor, customer_id=customer_id)

    @api("GET", f"{API}/logistics/due", roles=LOGISTICS_KEEPERS, query=LogisticsDueQuery, response=LogisticsPage,
         tags=["customers"], errors=(503, 504))
    def list_logistics_due(self, call):
        """Customers whose shipping sheet is missing or not reviewed this month (FR-18)."""
        query = plain(call.query)
        return self.customer.list_logistics_due(actor=call.actor, as_of=query.get("as_of"), limit=query["limit"],
                                                cursor=query["cursor"])


def _page(call):
    return {"limit": call.query["limit"], "cursor": call.query["cursor"]}
