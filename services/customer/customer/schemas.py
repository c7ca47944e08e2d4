"""RPC inputs and outputs of the customer service, and the events it consumes (validated again
here: never trust the caller). Inputs refuse unknown fields; consumed events read only what they
need (`<Event>Data`, unknown fields excluded)."""
from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate, validates_schema

from customer import domain
from shared.access import ROLES
from shared.pagination import MAX_LIMIT
from shared.validation import StrictSchema

GROUPS = ("rep", "team", "region", "product", "customer")


def text(max_length, required=False, **kwargs):
    if required:
        return fields.String(required=True, validate=validate.Length(1, max_length), **kwargs)
    kwargs.setdefault("load_default", None)
    return fields.String(allow_none=True, validate=validate.Length(max=max_length), **kwargs)


def moment(required=False, **kwargs):
    """An ISO 8601 date-time with its offset (a naive one is refused)."""
    if required:
        return fields.AwareDateTime(required=True, **kwargs)
    return fields.AwareDateTime(load_default=None, allow_none=True, **kwargs)


def fraction():
    return fields.Decimal(load_default=None, allow_none=True, places=4, as_string=True,
                          validate=validate.Range(0, 1))


# -- the org chart ---------------------------------------------------------------------------------
class StaffInput(StrictSchema):
    id = fields.UUID(load_default=None)
    username = fields.String(required=True, validate=validate.Length(1, 100))
    display_name = fields.String(required=True, validate=validate.Length(1, 200))
    role = fields.String(required=True, validate=validate.OneOf(ROLES))
    manager_id = fields.UUID(load_default=None, allow_none=True)
    team = text(100)
    region = text(100)
    territory = text(50)
    capacity = fields.Decimal(load_default=None, allow_none=True, places=2, validate=validate.Range(0.1, 100))
    discount_authority = fraction()
    price_authority = fraction()


class StaffChanges(StrictSchema):
    """Only the fields given change; `null` clears a nullable one."""

    display_name = fields.String(validate=validate.Length(1, 200))
    role = fields.String(validate=validate.OneOf(ROLES))
    manager_id = fields.UUID(allow_none=True)
    team = fields.String(allow_none=True, validate=validate.Length(max=100))
    region = fields.String(allow_none=True, validate=validate.Length(max=100))
    territory = fields.String(allow_none=True, validate=validate.Length(max=50))
    capacity = fields.Decimal(places=2, validate=validate.Range(0.1, 100))
    discount_authority = fields.Decimal(allow_none=True, places=4, validate=validate.Range(0, 1))
    price_authority = fields.Decimal(allow_none=True, places=4, validate=validate.Range(0, 1))
    active = fields.Boolean()

    @validates_schema
    def not_empty(self, data, **kwargs):
        if not data:
            raise ValidationError("give at least one field to change", "_schema")


class StaffFilters(StrictSchema):
    team = text(100)
    role = fields.String(load_default=None, allow_none=True, validate=validate.OneOf(ROLES))
    region = text(100)
    manager_id = fields.UUID(load_default=None, allow_none=True)
    active = fields.Boolean(load_default=None, allow_none=True)


class TerritoryInput(StrictSchema):
    code = fields.String(required=True, validate=validate.Regexp(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,49}$",
                                                                  error="1 to 50 letters, digits, '_', '.', '-'"))
    name = text(200, required=True)
    kind = fields.String(required=True, validate=validate.OneOf(("market", "area")))
    parent_code = text(50)
    head_id = fields.UUID(load_default=None, allow_none=True)


class StaffOut(Schema):
    id = fields.String()
    username = fields.String()
    display_name = fields.String()
    role = fields.String()
    manager_id = fields.String(allow_none=True)
    team = fields.String(allow_none=True)
    region = fields.String(allow_none=True)
    territory = fields.String(allow_none=True)
    capacity = fields.Decimal(as_string=True)
    discount_authority = fields.Decimal(as_string=True)
    price_authority = fields.Decimal(as_string=True)
    active = fields.Boolean()
    version = fields.Integer()
    created_at = fields.DateTime()
    updated_at = fields.DateTime()


class ApproverOut(Schema):
    id = fields.String()
    username = fields.String()
    display_name = fields.String()
    role = fields.String()
    team = fields.String(allow_none=True)
    region = fields.String(allow_none=True)
    relation = fields.String()


class TerritoryOut(Schema):
    code = fields.String()
    name = fields.String()
    kind = fields.String()
    parent_code = fields.String(allow_none=True)
    head_id = fields.String(allow_none=True)
    version = fields.Integer()
    created_at = fields.DateTime()
    updated_at = fields.DateTime()


# -- customers -------------------------------------------------------------------------------------
class ContactInput(StrictSchema):
    name = fields.String(required=True, validate=validate.Length(1, 100))
    position = text(100)
    phone = text(50)
    email = fields.Email(load_default=None, allow_none=True)
    decision_maker = fields.Boolean(load_default=False)  # FR-15


class BankAccountInput(StrictSchema):
    bank_name = fields.String(required=True, validate=validate.Length(1, 200))
    account_no = fields.String(required=True, validate=validate.Regexp(r"^[0-9 \-]{6,40}$"))


TAX_ID = validate.Regexp(r"^[0-9A-Za-z]{15,20}$", error="15 to 20 letters or digits")


class CustomerInput(StrictSchema):
    name = fields.String(required=True, validate=validate.Length(1, 200))
    tax_id = fields.String(load_default=None, allow_none=True, validate=TAX_ID)
    industry = fields.String(required=True, validate=validate.Length(1, 100))
    size = fields.String(required=True, validate=validate.OneOf(domain.SIZES))
    region = fields.String(required=True, validate=validate.Length(1, 100))
    address = text(500)
    source = fields.String(required=True, validate=validate.OneOf(domain.SOURCES))
    status = fields.String(load_default="potential", validate=validate.OneOf(domain.STATUSES))
    needs = text(4000)
    problems = text(4000)
    preferences = text(4000)
    contacts = fields.List(fields.Nested(ContactInput), load_default=list)
    bank_account = fields.Nested(BankAccountInput, load_default=None, allow_none=True)
    collected_at = moment()  # FR-04: when the data was gathered (default: now)


class CustomerChanges(StrictSchema):
    """PATCH: only the fields given change. The class (status) has its own command with history;
    the owner its own (FR-08); the acquisition channel (source) is a fact of the record."""

    name = fields.String(validate=validate.Length(1, 200))
    tax_id = fields.String(allow_none=True, validate=TAX_ID)
    industry = fields.String(validate=validate.Length(1, 100))
    size = fields.String(validate=validate.OneOf(domain.SIZES))
    region = fields.String(validate=validate.Length(1, 100))
    address = fields.String(allow_none=True, validate=validate.Length(max=500))
    needs = fields.String(allow_none=True, validate=validate.Length(max=4000))
    problems = fields.String(allow_none=True, validate=validate.Length(max=4000))
    preferences = fields.String(allow_none=True, validate=validate.Length(max=4000))
    bank_account = fields.Nested(BankAccountInput, allow_none=True)

    @validates_schema
    def not_empty(self, data, **kwargs):
        if not data:
            raise ValidationError("give at least one field to change", "_schema")


class CustomerFilters(StrictSchema):
    owner = fields.UUID(load_default=None, allow_none=True)
    team = text(100)
    status = fields.String(load_default=None, allow_none=True, validate=validate.OneOf(domain.STATUSES))
    region = text(100)
    industry = text(100)
    size = fields.String(load_default=None, allow_none=True, validate=validate.OneOf(domain.SIZES))
    source = fields.String(load_default=None, allow_none=True, validate=validate.OneOf(domain.SOURCES))
    late_entry = fields.Boolean(load_default=None, allow_none=True)
    quiet_days = fields.Integer(load_default=None, allow_none=True, strict=True, validate=validate.Range(1, 366))
    q = text(200)


class PoolFilters(StrictSchema):
    region = text(100)
    industry = text(100)
    reason = fields.String(load_default=None, allow_none=True, validate=validate.OneOf(("unassigned", "reclaimable")))


class AssignInput(StrictSchema):
    owner_id = fields.UUID(required=True)
    reason = fields.String(required=True, validate=validate.Length(1, 1000))


class ClassifyInput(StrictSchema):
    status = fields.String(required=True, validate=validate.OneOf(domain.STATUSES))
    reason = text(1000)


class FollowUpInput(StrictSchema):
    channel = fields.String(required=True, validate=validate.OneOf(
        ("phone", "email", "fax", "post", "website", "meeting", "other")))  # FR-22
    occurred_at = moment(required=True)
    summary = fields.String(required=True, validate=validate.Length(1, 4000))
    next_step = text(1000)
    feedback = text(4000)  # FR-17, FR-20: the customer's opinion


class ReviewInput(StrictSchema):
    business_status = fields.String(required=True, validate=validate.OneOf(domain.BUSINESS_STATUSES))
    credit_opinion = fields.String(required=True, validate=validate.Length(1, 2000))
    valid_until = fields.Date(required=True)


class DecisionInput(StrictSchema):
    comment = text(1000)


class RejectInput(StrictSchema):
    comment = fields.String(required=True, validate=validate.Length(1, 1000))


class ContactOut(Schema):
    id = fields.String()
    name = fields.String()
    position = fields.String(allow_none=True)
    phone = fields.String(allow_none=True)
    email = fields.String(allow_none=True)
    decision_maker = fields.Boolean()
    created_at = fields.DateTime()


class CustomerOut(Schema):
    id = fields.String()
    number = fields.String()
    name = fields.String()
    tax_id = fields.String(allow_none=True)
    industry = fields.String()
    size = fields.String()
    region = fields.String()
    address = fields.String(allow_none=True)
    source = fields.String()
    status = fields.String()
    needs = fields.String(allow_none=True)
    problems = fields.String(allow_none=True)
    preferences = fields.String(allow_none=True)
    bank_account = fields.Dict(allow_none=True)
    owner_id = fields.String(allow_none=True)
    owner_name = fields.String(allow_none=True)
    owner_team = fields.String(allow_none=True)
    assigned_at = fields.DateTime(allow_none=True)
    contact_due_by = fields.DateTime(allow_none=True)
    contacted_at = fields.DateTime(allow_none=True)
    last_contact_at = fields.DateTime(allow_none=True)
    reclaimable = fields.Function(lambda row: row.get("reclaimable_since") is not None)
    reclaimable_since = fields.DateTime(allow_none=True)
    first_order_at = fields.DateTime(allow_none=True)
    collected_at = fields.DateTime(allow_none=True)
    late_entry = fields.Boolean()
    created_by = fields.String(allow_none=True)
    created_at = fields.DateTime()
    updated_at = fields.DateTime()
    version = fields.Integer()
    contacts = fields.List(fields.Nested(ContactOut))


class LedgerOut(Schema):
    id = fields.Integer()
    kind = fields.String()
    owner_id = fields.String(allow_none=True)
    owner_name = fields.String(allow_none=True)
    owner_team = fields.String(allow_none=True)
    previous_owner_id = fields.String(allow_none=True)
    actor_id = fields.String(allow_none=True)
    actor_name = fields.String(allow_none=True)
    reason = fields.String(allow_none=True)
    source = fields.String(allow_none=True)
    claimed_name = fields.String(allow_none=True)
    occurred_at = fields.DateTime()


class ClassificationOut(Schema):
    id = fields.Integer()
    previous_status = fields.String(allow_none=True)
    status = fields.String()
    source = fields.String()
    order_id = fields.String(allow_none=True)
    reason = fields.String(allow_none=True)
    changed_by = fields.String(allow_none=True)
    occurred_at = fields.DateTime()


class FollowUpOut(Schema):
    id = fields.String()
    customer_id = fields.String()
    channel = fields.String()
    occurred_at = fields.DateTime()
    summary = fields.String()
    next_step = fields.String(allow_none=True)
    feedback = fields.String(allow_none=True)
    recorded_by = fields.String()
    created_at = fields.DateTime()


class PurchaseOut(Schema):
    order_id = fields.String()
    order_number = fields.String()
    total = fields.Decimal(as_string=True)
    confirmed_at = fields.DateTime()
    lines = fields.List(fields.Dict())


class ReviewOut(Schema):
    id = fields.String()
    customer_id = fields.String()
    business_status = fields.String()
    credit_opinion = fields.String()
    valid_until = fields.Date()
    state = fields.String()
    submitted_by = fields.String()
    submitted_at = fields.DateTime()
    decided_by = fields.String(allow_none=True)
    decided_at = fields.DateTime(allow_none=True)
    comment = fields.String(allow_none=True)


class SuggestionCandidateOut(Schema):
    staff_id = fields.String()
    display_name = fields.String()
    team = fields.String(allow_none=True)
    capacity = fields.Decimal(as_string=True)
    customers = fields.Integer()
    load = fields.Decimal(as_string=True)


class SuggestionOut(Schema):
    customer_id = fields.String()
    customer_name = fields.String()
    owner_id = fields.String()
    owner_name = fields.String()


# -- visits ----------------------------------------------------------------------------------------
class VisitInput(StrictSchema):
    customer_id = fields.UUID(required=True)
    planned_at = moment(required=True)
    planned_return_at = moment()
    purpose = fields.String(required=True, validate=validate.Length(1, 2000))  # FR-23 objectives
    expected_issues = text(2000)  # FR-29
    tracking_report = text(4000)  # FR-29: required for a re-visit


class VisitLogInput(StrictSchema):
    visited_at = moment(required=True)
    summary = fields.String(required=True, validate=validate.Length(1, 8000))  # FR-25 minutes
    next_step = text(2000)


class DelayInput(StrictSchema):
    expected_return_at = moment(required=True)
    reason = fields.String(required=True, validate=validate.Length(1, 1000))


class CancelInput(StrictSchema):
    reason = fields.String(required=True, validate=validate.Length(1, 1000))


class VisitFilters(StrictSchema):
    owner = fields.UUID(load_default=None, allow_none=True)
    customer_id = fields.UUID(load_default=None, allow_none=True)
    state = fields.String(load_default=None, allow_none=True, validate=validate.OneOf(
        ("planned", "approved", "rejected", "cancelled", "in_field", "returned", "logged")))
    late = fields.Boolean(load_default=None, allow_none=True)
    overdue = fields.Boolean(load_default=None, allow_none=True)
    from_ = fields.Date(load_default=None, allow_none=True, data_key="from")
    to = fields.Date(load_default=None, allow_none=True)


class VisitOut(Schema):
    id = fields.String()
    number = fields.String()
    customer_id = fields.String()
    customer_name = fields.String()
    rep_id = fields.String()
    rep_name = fields.String()
    rep_team = fields.String(allow_none=True)
    planned_at = fields.DateTime()
    planned_return_at = fields.DateTime()
    purpose = fields.String()
    expected_issues = fields.String(allow_none=True)
    tracking_report = fields.String(allow_none=True)
    state = fields.String()
    approved_by = fields.String(allow_none=True)
    approved_at = fields.DateTime(allow_none=True)
    decision_comment = fields.String(allow_none=True)
    checked_out_at = fields.DateTime(allow_none=True)
    checked_in_at = fields.DateTime(allow_none=True)
    expected_return_at = fields.DateTime(allow_none=True)
    delay_reason = fields.String(allow_none=True)
    return_overdue = fields.Function(lambda row: row.get("return_overdue_at") is not None)
    log_due_by = fields.DateTime(allow_none=True)
    log_overdue = fields.Function(lambda row: row.get("log_overdue_at") is not None)
    visited_at = fields.DateTime(allow_none=True)
    logged_at = fields.DateTime(allow_none=True)
    late = fields.Boolean(allow_none=True)
    summary = fields.String(allow_none=True)
    next_step = fields.String(allow_none=True)
    created_at = fields.DateTime()
    updated_at = fields.DateTime()


class WeekRowOut(Schema):
    rep_id = fields.String()
    rep_name = fields.String()
    team = fields.String(allow_none=True)
    visits = fields.Integer()
    late_logs = fields.Integer()
    standard = fields.Integer()
    shortfall = fields.Integer()
    met = fields.Boolean()


# -- opportunities ---------------------------------------------------------------------------------
def _cents(value):
    if value.as_tuple().exponent < -2:
        raise ValidationError("at most 2 decimal places")


MONEY = dict(as_string=True, validate=[validate.Range(0, 10 ** 15), _cents])


class OpportunityInput(StrictSchema):
    customer_id = fields.UUID(required=True)
    title = fields.String(required=True, validate=validate.Length(1, 300))
    source = fields.String(load_default="customer_feedback", validate=validate.OneOf(domain.OPPORTUNITY_SOURCES))
    expected_amount = fields.Decimal(required=True, **MONEY)
    probability = fields.Integer(required=True, strict=True, validate=validate.Range(0, 100))
    expected_close = fields.Date(load_default=None, allow_none=True)
    priority = fields.String(load_default=None, allow_none=True, validate=validate.OneOf(domain.PRIORITIES))
    feasibility = text(4000)
    follow_up_plan = text(4000)


class OpportunityChanges(StrictSchema):
    title = fields.String(validate=validate.Length(1, 300))
    stage = fields.String(validate=validate.OneOf(domain.STAGES + domain.CLOSED_STAGES))
    expected_amount = fields.Decimal(**MONEY)
    probability = fields.Integer(strict=True, validate=validate.Range(0, 100))
    expected_close = fields.Date(allow_none=True)
    priority = fields.String(allow_none=True, validate=validate.OneOf(domain.PRIORITIES))
    feasibility = fields.String(allow_none=True, validate=validate.Length(max=4000))
    follow_up_plan = fields.String(allow_none=True, validate=validate.Length(max=4000))

    @validates_schema
    def not_empty(self, data, **kwargs):
        if not data:
            raise ValidationError("give at least one field to change", "_schema")


class CloseInput(StrictSchema):
    outcome = fields.String(required=True, validate=validate.OneOf(domain.CLOSED_STAGES))
    reason = text(2000)
    order_id = fields.UUID(load_default=None, allow_none=True)


class OpportunityFilters(StrictSchema):
    owner = fields.UUID(load_default=None, allow_none=True)
    customer_id = fields.UUID(load_default=None, allow_none=True)
    stage = fields.String(load_default=None, allow_none=True, validate=validate.OneOf(domain.STAGES + domain.CLOSED_STAGES))
    open = fields.Boolean(load_default=None, allow_none=True)


class OpportunityOut(Schema):
    id = fields.String()
    number = fields.String()
    customer_id = fields.String()
    customer_name = fields.String()
    owner_id = fields.String(allow_none=True)
    owner_name = fields.String(allow_none=True)
    owner_team = fields.String(allow_none=True)
    title = fields.String()
    source = fields.String()
    stage = fields.String()
    priority = fields.String(allow_none=True)
    probability = fields.Integer()
    expected_amount = fields.Decimal(as_string=True)
    weighted_amount = fields.Function(lambda row: str(domain.weighted(row["expected_amount"], row["probability"])))
    expected_close = fields.Date(allow_none=True)
    feasibility = fields.String(allow_none=True)
    follow_up_plan = fields.String(allow_none=True)
    reason = fields.String(allow_none=True)
    order_id = fields.String(allow_none=True)
    closed_at = fields.DateTime(allow_none=True)
    closed_by = fields.String(allow_none=True)
    created_by = fields.String()
    created_at = fields.DateTime()
    updated_at = fields.DateTime()
    version = fields.Integer()


# -- reports ----------------------------------------------------------------------------------------
class ReportInput(StrictSchema):
    period_start = fields.Date(required=True)
    period_end = fields.Date(required=True)
    group_by = fields.String(required=True, validate=validate.OneOf(GROUPS))


class PipelineInput(StrictSchema):
    group_by = fields.String(required=True, validate=validate.OneOf(GROUPS))
    period_start = fields.Date(load_default=None, allow_none=True)
    period_end = fields.Date(load_default=None, allow_none=True)


# -- consumed events -------------------------------------------------------------------------------
class OrderConfirmedLine(Schema):
    class Meta:
        unknown = EXCLUDE

    sku = fields.String(required=True)
    quantity = fields.Integer(required=True)
    unit_price = fields.Decimal(required=True, as_string=True)


class OrderConfirmedData(Schema):
    """What the customer service reads of `order.confirmed` (FR-13 `signed`, FR-17 history)."""

    class Meta:
        unknown = EXCLUDE

    order_id = fields.UUID(required=True)
    customer_id = fields.UUID(required=True)
    number = fields.String(required=True)
    total = fields.Decimal(required=True, as_string=True)
    confirmed_at = fields.AwareDateTime(required=True)
    lines = fields.List(fields.Nested(OrderConfirmedLine), load_default=list)


# -- proposals and tenders (FR-40, FR-41) -----------------------------------------------------------
class ProposalInput(StrictSchema):
    opportunity_id = fields.UUID(required=True)
    kind = fields.String(load_default="proposal", validate=validate.OneOf(domain.PROPOSAL_KINDS))
    title = fields.String(required=True, validate=validate.Length(1, 300))
    content = fields.String(required=True, validate=validate.Length(1, 20000))
    amount = fields.Decimal(load_default=None, allow_none=True, **MONEY)
    closes_at = moment()


class ProposalChanges(StrictSchema):
    title = fields.String(validate=validate.Length(1, 300))
    content = fields.String(validate=validate.Length(1, 20000))
    amount = fields.Decimal(allow_none=True, **MONEY)
    closes_at = fields.AwareDateTime(allow_none=True)

    @validates_schema
    def not_empty(self, data, **kwargs):
        if not data:
            raise ValidationError("give at least one field to change", "_schema")


class ProposalResponseInput(StrictSchema):
    outcome = fields.String(required=True, validate=validate.OneOf(("accepted", "rejected")))
    comment = text(2000)

    @validates_schema
    def reason_for_no(self, data, **kwargs):
        if data["outcome"] == "rejected" and not (data.get("comment") or "").strip():
            raise ValidationError("say why the customer turned the proposal down (FR-40)", "comment")


class ProposalFilters(StrictSchema):
    owner = fields.UUID(load_default=None, allow_none=True)
    opportunity_id = fields.UUID(load_default=None, allow_none=True)
    customer_id = fields.UUID(load_default=None, allow_none=True)
    state = fields.String(load_default=None, allow_none=True, validate=validate.OneOf(domain.PROPOSAL_STATES))


class ProposalStepOut(Schema):
    action = fields.String()
    from_state = fields.String(allow_none=True)
    to_state = fields.String()
    revision = fields.Integer()
    comment = fields.String(allow_none=True)
    actor_id = fields.String()
    at = fields.DateTime()


class ProposalOut(Schema):
    id = fields.String()
    number = fields.String()
    opportunity_id = fields.String()
    opportunity_number = fields.String()
    customer_id = fields.String()
    customer_name = fields.String()
    owner_id = fields.String(allow_none=True)
    owner_name = fields.String(allow_none=True)
    owner_team = fields.String(allow_none=True)
    kind = fields.String()
    title = fields.String()
    content = fields.String()
    amount = fields.Decimal(as_string=True, allow_none=True)
    closes_at = fields.DateTime(allow_none=True)
    state = fields.String()
    revision = fields.Integer()
    reviewed_by = fields.String(allow_none=True)
    reviewed_at = fields.DateTime(allow_none=True)
    review_comment = fields.String(allow_none=True)
    submitted_at = fields.DateTime(allow_none=True)
    responded_at = fields.DateTime(allow_none=True)
    response = fields.String(allow_none=True)
    created_by = fields.String()
    created_at = fields.DateTime()
    updated_at = fields.DateTime()
    version = fields.Integer()


class ProposalDetailOut(ProposalOut):
    steps = fields.List(fields.Nested(ProposalStepOut))


# -- escalations and guidance (FR-28, FR-30) --------------------------------------------------------
class EscalationInput(StrictSchema):
    reason = fields.String(required=True, validate=validate.Length(1, 2000))
    help_wanted = text(2000)


class NoteInput(StrictSchema):
    note = fields.String(required=True, validate=validate.Length(1, 4000))


class OutcomeInput(StrictSchema):
    outcome = fields.String(required=True, validate=validate.Length(1, 2000))


class EscalationFilters(StrictSchema):
    owner = fields.UUID(load_default=None, allow_none=True)
    customer_id = fields.UUID(load_default=None, allow_none=True)
    state = fields.String(load_default=None, allow_none=True, validate=validate.OneOf(("open", "guided", "closed")))
    overdue = fields.Boolean(load_default=None, allow_none=True)


class EscalationNoteOut(Schema):
    author_id = fields.String()
    kind = fields.String()
    note = fields.String()
    at = fields.DateTime()


class EscalationOut(Schema):
    id = fields.String()
    number = fields.String()
    customer_id = fields.String()
    customer_name = fields.String()
    owner_id = fields.String(allow_none=True)
    owner_name = fields.String(allow_none=True)
    owner_team = fields.String(allow_none=True)
    raised_by = fields.String()
    reason = fields.String()
    help_wanted = fields.String(allow_none=True)
    state = fields.String()
    guidance_due_by = fields.DateTime()
    guidance_overdue = fields.Boolean()
    outcome = fields.String(allow_none=True)
    closed_by = fields.String(allow_none=True)
    closed_at = fields.DateTime(allow_none=True)
    created_at = fields.DateTime()
    updated_at = fields.DateTime()
    version = fields.Integer()


class EscalationDetailOut(EscalationOut):
    notes = fields.List(fields.Nested(EscalationNoteOut))


# -- the weekly check of collected records (FR-05) ---------------------------------------------------
class CollectionCheckInput(StrictSchema):
    outcome = fields.String(required=True, validate=validate.OneOf(("checked", "returned")))
    comment = text(2000)

    @validates_schema
    def say_what_to_fix(self, data, **kwargs):
        if data["outcome"] == "returned" and not (data.get("comment") or "").strip():
            raise ValidationError("say what to complete before it comes back (FR-05)", "comment")


class CollectionFilters(StrictSchema):
    owner = fields.UUID(load_default=None, allow_none=True)
    week = fields.String(load_default=None, allow_none=True, validate=validate.Regexp(r"^\d{4}-W\d{2}$"))
    state = fields.String(load_default=None, allow_none=True,
                          validate=validate.OneOf(("submitted", "checked", "returned")))


class CollectedRecordOut(Schema):
    id = fields.String()
    number = fields.String()
    name = fields.String()
    source = fields.String()
    late_entry = fields.Boolean()


class CollectionOut(Schema):
    id = fields.String()
    rep_id = fields.String()
    rep_name = fields.String(allow_none=True)
    rep_team = fields.String(allow_none=True)
    week = fields.String()
    state = fields.String()
    records = fields.Integer()
    submitted_at = fields.DateTime()
    checked_by = fields.String(allow_none=True)
    checked_at = fields.DateTime(allow_none=True)
    comment = fields.String(allow_none=True)
    version = fields.Integer()


class CollectionDetailOut(CollectionOut):
    customers = fields.List(fields.Nested(CollectedRecordOut))


# -- market intelligence (FR-33) --------------------------------------------------------------------
class IntelligenceInput(StrictSchema):
    kind = fields.String(required=True, validate=validate.OneOf(domain.INTELLIGENCE_KINDS))
    customer_id = fields.UUID(load_default=None, allow_none=True)
    region = text(100)
    summary = fields.String(required=True, validate=validate.Length(1, 300))
    details = text(8000)
    urgent = fields.Boolean(load_default=False)


class AcknowledgeInput(StrictSchema):
    response = fields.String(required=True, validate=validate.Length(1, 4000))


class IntelligenceFilters(StrictSchema):
    owner = fields.UUID(load_default=None, allow_none=True)
    kind = fields.String(load_default=None, allow_none=True, validate=validate.OneOf(domain.INTELLIGENCE_KINDS))
    customer_id = fields.UUID(load_default=None, allow_none=True)
    region = fields.String(load_default=None, allow_none=True)
    state = fields.String(load_default=None, allow_none=True, validate=validate.OneOf(("reported", "acknowledged")))
    urgent = fields.Boolean(load_default=None, allow_none=True)


class IntelligenceOut(Schema):
    id = fields.String()
    number = fields.String()
    kind = fields.String()
    customer_id = fields.String(allow_none=True)
    customer_name = fields.String(allow_none=True)
    region = fields.String(allow_none=True)
    summary = fields.String()
    details = fields.String(allow_none=True)
    urgent = fields.Boolean()
    reported_by = fields.String()
    reporter_name = fields.String(allow_none=True)
    reporter_team = fields.String(allow_none=True)
    state = fields.String()
    response_due_by = fields.DateTime(allow_none=True)
    response_overdue = fields.Boolean()
    acknowledged_by = fields.String(allow_none=True)
    acknowledged_at = fields.DateTime(allow_none=True)
    response = fields.String(allow_none=True)
    created_at = fields.DateTime()
    version = fields.Integer()


# -- the logistics information sheet (FR-18) --------------------------------------------------------
class LogisticsInput(StrictSchema):
    consignee = fields.String(required=True, validate=validate.Length(1, 200))
    address = fields.String(required=True, validate=validate.Length(1, 500))
    phone = text(50)
    carrier = text(200)
    delivery_notes = text(2000)


class LogisticsOut(Schema):
    customer_id = fields.String()
    customer_name = fields.String()
    consignee = fields.String(allow_none=True)
    address = fields.String(allow_none=True)
    phone = fields.String(allow_none=True)
    carrier = fields.String(allow_none=True)
    delivery_notes = fields.String(allow_none=True)
    reviewed_by = fields.String(allow_none=True)
    reviewed_at = fields.DateTime(allow_none=True)
    review_due_by = fields.DateTime(allow_none=True)
    due = fields.Boolean()


class PageInput(StrictSchema):
    limit = fields.Integer(load_default=None, allow_none=True, validate=validate.Range(1, MAX_LIMIT))


staff_input = StaffInput()
staff_changes = StaffChanges()
staff_filters = StaffFilters()
territory_input = TerritoryInput()
staff_out = StaffOut()
approver_out = ApproverOut()
territory_out = TerritoryOut()
contact_input = ContactInput()
contact_out = ContactOut()
customer_input = CustomerInput()
customer_changes = CustomerChanges()
customer_filters = CustomerFilters()
pool_filters = PoolFilters()
assign_input = AssignInput()
classify_input = ClassifyInput()
follow_up_input = FollowUpInput()
review_input = ReviewInput()
decision_input = DecisionInput()
reject_input = RejectInput()
customer_out = CustomerOut()
ledger_out = LedgerOut()
classification_out = ClassificationOut()
follow_up_out = FollowUpOut()
purchase_out = PurchaseOut()
review_out = ReviewOut()
candidate_out = SuggestionCandidateOut()
suggestion_out = SuggestionOut()
visit_input = VisitInput()
visit_log_input = VisitLogInput()
delay_input = DelayInput()
cancel_input = CancelInput()
visit_filters = VisitFilters()
visit_out = VisitOut()
week_row_out = WeekRowOut()
opportunity_input = OpportunityInput()
opportunity_changes = OpportunityChanges()
close_input = CloseInput()
opportunity_filters = OpportunityFilters()
opportunity_out = OpportunityOut()
proposal_input = ProposalInput()
proposal_changes = ProposalChanges()
proposal_response_input = ProposalResponseInput()
proposal_filters = ProposalFilters()
proposal_out = ProposalOut()
proposal_detail_out = ProposalDetailOut()
escalation_input = EscalationInput()
note_input = NoteInput()
outcome_input = OutcomeInput()
escalation_filters = EscalationFilters()
escalation_out = EscalationOut()
escalation_detail_out = EscalationDetailOut()
collection_check_input = CollectionCheckInput()
collection_filters = CollectionFilters()
collection_out = CollectionOut()
collection_detail_out = CollectionDetailOut()
intelligence_input = IntelligenceInput()
acknowledge_input = AcknowledgeInput()
intelligence_filters = IntelligenceFilters()
intelligence_out = IntelligenceOut()
logistics_input = LogisticsInput()
logistics_out = LogisticsOut()
report_input = ReportInput()
pipeline_input = PipelineInput()
order_confirmed_data = OrderConfirmedData()
