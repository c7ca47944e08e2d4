"""API.md "After-sales" (aftersales service) and `GET /reports/service-sla`.

Service requests (FR-101): opened by the sales side for their customers, confirmed by the sales
manager (FR-102), assigned to and worked by a service engineer (FR-103), repaired step by step
(FR-97), resolved, closed by the customer's feedback (FR-107); every step kept (FR-106). The
aftersales service checks every rule again (roles included): these role sets only keep callers
away from endpoints that are not theirs.
"""
import calendar
from datetime import date, datetime, timezone

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from gateway.auth import EVERYONE
from gateway.http import api, created, plain
from gateway.schemas import PageQuery, page_schema, text
from shared import workdays
from shared.validation import StrictSchema

API = "/api/v1"
TAGS = ["after-sales"]

TYPES = ("repair", "replacement", "return", "complaint", "training", "consultation")
PRODUCT_BOUND = ("repair", "replacement", "return")
PRIORITIES = ("low", "normal", "high", "urgent")
STATUSES = ("open", "confirmed", "assigned", "in_progress", "resolved", "closed")
ACTIONS = ("repair", "replacement", "return", "advice")
REPAIR_STEPS = ("receive", "diagnose", "quote", "approve", "decline", "start", "complete", "return")
REPORT_GROUPS = ("rep", "team", "region", "product", "customer", "engineer")

# Who may call what (the service decides again, row by row).
SERVICE_OPENERS = frozenset({"sales_rep", "sales_manager", "sales_director", "general_manager", "order_desk",
                             "admin", "integration"})
SERVICE_READERS = EVERYONE - {"warehouse", "finance"}
SERVICE_CONFIRMERS = frozenset({"sales_manager"})
SERVICE_ASSIGNERS = frozenset({"sales_manager", "service_engineer"})
SERVICE_WORKERS = frozenset({"service_engineer"})
# the engineer takes the repair steps; the sales side relays the customer's answer to a quote
REPAIR_STEPPERS = frozenset({"service_engineer", "sales_rep", "sales_manager", "sales_director"})
FEEDBACK_RECORDERS = frozenset({"sales_rep", "sales_manager", "sales_director", "general_manager", "order_desk",
                                "admin", "integration"})
REPORT_READERS = frozenset({"admin", "general_manager", "sales_director", "marketing_director", "sales_manager",
                            "sales_rep", "service_engineer", "product_manager"})

EXAMPLE_CUSTOMER = "6f1c1f0e-6d3b-4b7c-9a55-3d1f0b2a9c10"
EXAMPLE_DELIVERY = "0b8e3f4a-2c1d-4e5f-8a9b-1c2d3e4f5a6b"
EXAMPLE_ENGINEER = "3c2b1a09-8f7e-4d6c-b5a4-938271605f4e"


# -- requests ----------------------------------------------------------------------------------
class ServiceRequestCreate(StrictSchema):
    customer_id = fields.UUID(required=True)
    sku = text(64, required=True, metadata={"description": "the product, as delivered to the customer"})
    delivery_id = fields.UUID(allow_none=True, metadata={
        "description": "the delivery the product came from; required for repair, replacement and return"})
    type = fields.String(required=True, validate=validate.OneOf(TYPES))
    priority = fields.String(required=True, validate=validate.OneOf(PRIORITIES))
    description = text(4000, required=True)

    example = {"customer_id": EXAMPLE_CUSTOMER, "sku": "PUMP-100", "delivery_id": EXAMPLE_DELIVERY,
               "type": "repair", "priority": "high",
               "description": "The pump stops after ten minutes; error E4 on the display."}

    @validates_schema
    def delivery_for_a_unit(self, data, **kwargs):
        if data.get("type") in PRODUCT_BOUND and data.get("delivery_id") is None:
            raise ValidationError(["required for a repair, replacement or return request: the delivery the "
                                   "product came from"], "delivery_id")


class NoteIn(StrictSchema):
    note = text(4000)

    example = {"note": "customer confirmed the fault by phone"}


class AssignIn(StrictSchema):
    engineer = fields.UUID(required=True, metadata={"description": "staff id of a service engineer"})
    note = text(4000)

    example = {"engineer": EXAMPLE_ENGINEER, "note": "nearest engineer to the site"}


class RepairStepIn(StrictSchema):
    step = fields.String(required=True, validate=validate.OneOf(REPAIR_STEPS), metadata={
        "description": "receive → diagnose → quote (out of warranty only) → approve | decline → start → "
                       "complete → return"})
    note = text(4000, metadata={"description": "required for diagnose: the diagnosis"})
    amount = fields.Decimal(allow_none=True, places=2, as_string=True,
                            validate=validate.Range(min=0, min_inclusive=False),
                            metadata={"description": "quote only: decimal string, CNY, VAT included"})

    example = {"step": "quote", "amount": "850.00", "note": "impeller and labour"}

    @validates_schema
    def step_fields(self, data, **kwargs):
        if data.get("step") == "quote" and data.get("amount") is None:
            raise ValidationError(["required to quote a repair (CNY, VAT included)"], "amount")
        if data.get("step") != "quote" and data.get("amount") is not None:
            raise ValidationError(["only a quote has an amount"], "amount")
        if data.get("step") == "diagnose" and not data.get("note"):
            raise ValidationError(["required: the diagnosis"], "note")


class ResolveIn(StrictSchema):
    resolution = text(4000, required=True)
    action = fields.String(required=True, validate=validate.OneOf(ACTIONS), metadata={
        "description": "return: opens a return request in the order service; replacement: a no-charge order "
                       "through the order desk; repair: the repaired unit is back with the customer; advice"})
    quantity = fields.Integer(allow_none=True, strict=True, validate=validate.Range(min=1, max=100000),
                              metadata={"description": "return or replacement only; default 1"})

    example = {"resolution": "Wrong voltage variant delivered; the customer returns it.", "action": "return",
               "quantity": 1}

    @validates_schema
    def quantity_for_goods(self, data, **kwargs):
        if data.get("quantity") is not None and data.get("action") not in ("return", "replacement"):
            raise ValidationError(["only a return or a replacement has a quantity"], "quantity")


class FeedbackIn(StrictSchema):
    rating = fields.Integer(required=True, strict=True, validate=validate.Range(
        min=1, max=5, error="must be a whole number from 1 to 5"))
    comment = text(4000)

    example = {"rating": 5, "comment": "Fixed on the first visit."}


class ServiceRequestQuery(PageQuery):
    status = fields.String(load_default=None, validate=validate.OneOf(STATUSES))
    overdue = fields.Boolean(load_default=None, metadata={"description": "true: unresolved and past due_at"})
    active = fields.Boolean(load_default=None, metadata={"description": "true: not resolved or closed yet"})
    escalated = fields.Boolean(load_default=None, metadata={"description": "true: escalated to a sales manager"})
    customer_id = fields.UUID(load_default=None)
    type = fields.String(load_default=None, validate=validate.OneOf(TYPES))
    priority = fields.String(load_default=None, validate=validate.OneOf(PRIORITIES))
    engineer = fields.UUID(load_default=None, metadata={"description": "the assigned engineer's staff id"})
    sku = text(64, load_default=None)


FILTERS = ("status", "overdue", "active", "escalated", "customer_id", "type", "priority", "engineer", "sku")


class RequestStepOut(Schema):
    step = fields.String(required=True, metadata={"example": "confirmed"})
    from_status = fields.String(allow_none=True)
    to_status = fields.String(allow_none=True)
    actor_id = fields.UUID(required=True)
    actor_role = fields.String(required=True)
    actor_username = fields.String(allow_none=True)
    note = fields.String(allow_none=True)
    details = fields.Dict()
    occurred_at = fields.DateTime(required=True)


class RepairOut(Schema):
    status = fields.String(validate=validate.OneOf(
        ("received", "diagnosing", "quoted", "approved", "declined", "repairing", "repaired", "returned")))
    in_warranty = fields.Boolean()
    warranty_until = fields.Date(allow_none=True)
    diagnosis = fields.String(allow_none=True)
    quote_amount = fields.String(allow_none=True, metadata={"description": "decimal string, CNY"})
    repaired = fields.Boolean()
    received_at = fields.DateTime()
    updated_at = fields.DateTime()


class ActionOut(Schema):
    kind = fields.String(metadata={"example": "return"})
    target = fields.String(metadata={"example": "order.request_return"})
    request_id = fields.UUID(metadata={"description": "the id the order service sees, the same on every attempt"})
    status = fields.String(validate=validate.OneOf(("pending", "done", "failed")))
    attempts = fields.Integer()
    next_attempt_at = fields.DateTime(allow_none=True)
    last_error = fields.String(allow_none=True)
    result = fields.Dict(allow_none=True, metadata={"description": "the order service's answer"})
    done_at = fields.DateTime(allow_none=True)


class ServiceRequestOut(Schema):
    id = fields.UUID(required=True)
    number = fields.String(required=True, metadata={"example": "SR-2026-000123"})
    type = fields.String(required=True)
    priority = fields.String(required=True)
    status = fields.String(required=True, validate=validate.OneOf(STATUSES))
    description = fields.String()
    customer_id = fields.UUID(required=True)
    customer_name = fields.String(allow_none=True)
    owner_id = fields.UUID(allow_none=True)
    owner_team = fields.String(allow_none=True)
    region = fields.String(allow_none=True)
    sku = fields.String(required=True)
    product_name = fields.String(allow_none=True)
    delivery_id = fields.UUID(allow_none=True)
    delivery_number = fields.String(allow_none=True)
    delivered_at = fields.DateTime(allow_none=True)
    warranty_until = fields.Date(allow_none=True)
    in_warranty = fields.Boolean(allow_none=True)
    repeat_of = fields.UUID(allow_none=True)
    sla_hours = fields.Float(metadata={"description": "working hours from opening to resolution"})
    opened_at = fields.DateTime(required=True)
    opened_by = fields.UUID()
    due_at = fields.DateTime(required=True, metadata={"description": "SLA: resolve by (Chinese working hours)"})
    overdue = fields.Boolean(required=True)
    confirmed_at = fields.DateTime(allow_none=True)
    confirmed_by = fields.UUID(allow_none=True)
    engineer_id = fields.UUID(allow_none=True)
    engineer_name = fields.String(allow_none=True)
    assigned_at = fields.DateTime(allow_none=True)
    assignment_count = fields.Integer()
    started_at = fields.DateTime(allow_none=True)
    escalated = fields.Boolean()
    escalated_at = fields.DateTime(allow_none=True)
    escalated_to = fields.UUID(allow_none=True, metadata={"description": "the sales manager escalated to"})
    escalated_to_name = fields.String(allow_none=True)
    resolved_at = fields.DateTime(allow_none=True)
    resolved_by = fields.UUID(allow_none=True)
    resolution = fields.String(allow_none=True)
    action = fields.String(allow_none=True, validate=validate.OneOf(ACTIONS))
    action_quantity = fields.Integer(allow_none=True)
    sla_met = fields.Boolean(allow_none=True)
    first_time_fix = fields.Boolean(allow_none=True)
    rating = fields.Integer(allow_none=True)
    feedback_comment = fields.String(allow_none=True)
    feedback_at = fields.DateTime(allow_none=True)
    closed_at = fields.DateTime(allow_none=True)
    updated_at = fields.DateTime()
    repair = fields.Nested(RepairOut, allow_none=True)
    action_status = fields.Nested(ActionOut, allow_none=True)
    history = fields.List(fields.Nested(RequestStepOut), metadata={"description": "every step (GET of one request)"})


ServiceRequestPage = page_schema("ServiceRequestPage", ServiceRequestOut)


# -- the report --------------------------------------------------------------------------------
class ServiceSlaQuery(StrictSchema):
    period = fields.String(load_default=None, validate=validate.Regexp(
        r"^2[0-9]{3}(-Q[1-4]|-(0[1-9]|1[0-2]))?$", error="YYYY, YYYY-Qn or YYYY-MM, years 2000 to 2999"),
        metadata={"description": "2026, 2026-Q4 or 2026-11 (default: this month)"})
    date_from = fields.Date(data_key="from", load_default=None, metadata={"description": "instead of period"})
    date_to = fields.Date(data_key="to", load_default=None)
    group_by = fields.String(load_default="rep", validate=validate.OneOf(REPORT_GROUPS))

    @validates_schema
    def one_period(self, data, **kwargs):
        dates = (data.get("date_from"), data.get("date_to"))
        if data.get("period") and any(dates):
            raise ValidationError(["give either period or from and to"], "period")
        if any(dates) and not all(dates):
            raise ValidationError(["from and to go together"], "to" if dates[0] else "from")
        if all(dates) and dates[1] < dates[0]:
            raise ValidationError(["must not be before from"], "to")


class ServiceSlaGroup(Schema):
    key = fields.String(allow_none=True, metadata={"description": "the rep's, engineer's or customer's id, the "
                                                                  "team, region or sku; null: none"})
    label = fields.String(allow_none=True)
    opened = fields.Integer()
    resolved = fields.Integer()
    resolved_within_sla = fields.Integer()
    sla_compliance = fields.String(allow_none=True, metadata={"description": "0..1, 4 places"})
    first_time_fixed = fields.Integer()
    first_time_fix_rate = fields.String(allow_none=True)
    escalated = fields.Integer()
    overdue_open = fields.Integer()
    feedback_count = fields.Integer()
    average_rating = fields.String(allow_none=True, metadata={"description": "1..5, 2 places"})


class ServiceSlaReport(Schema):
    period_start = fields.Date(required=True)
    period_end = fields.Date(required=True)
    group_by = fields.String(required=True)
    groups = fields.List(fields.Nested(ServiceSlaGroup), required=True)


def period_dates(query, today):
    """(first day, last day) of the report's period."""
    if query.get("date_from"):
        return query["date_from"], query["date_to"]
    period = query.get("period") or f"{today.year}-{today.month:02d}"
    year = int(period[:4])
    if len(period) == 4:
        first, last = 1, 12
    elif period[5] == "Q":
        first, last = 3 * int(period[6]) - 2, 3 * int(period[6])
    else:
        first = last = int(period[5:7])
    return date(year, first, 1), date(year, last, calendar.monthrange(year, last)[1])


class AftersalesApi:
    @api("POST", f"{API}/service-requests", roles=SERVICE_OPENERS, body=ServiceRequestCreate,
         response=ServiceRequestOut, status=201, locates=True, tags=TAGS, errors=(403, 409, 503, 504))
    def open_service_request(self, call):
        """Open a service request for a product the customer received (FR-101); `due_at` by SLA.

        409 PRODUCT_NOT_DELIVERED when the customer never received that product (on that delivery);
        422 naming `customer_id` for a customer the caller may not see."""
        request = self.aftersales.open_request(request_id=call.request_id, actor=call.actor,
                                               service_request=plain(call.body))
        return created(request, location=f"{API}/service-requests/{request['id']}")

    @api("GET", f"{API}/service-requests", roles=SERVICE_READERS, query=ServiceRequestQuery,
         response=ServiceRequestPage, tags=TAGS, errors=(503, 504))
    def list_service_requests(self, call):
        """List the service requests the caller may see, newest first (`overdue=true`: past due)."""
        query = plain(call.query)
        filters = {name: query[name] for name in FILTERS if query.get(name) is not None}
        return self.aftersales.list_requests(actor=call.actor, filters=filters, limit=query["limit"],
                                             cursor=query["cursor"])

    @api("GET", f"{API}/service-requests/<uuid:service_request_id>", roles=SERVICE_READERS,
         response=ServiceRequestOut, tags=TAGS, errors=(404, 503, 504))
    def get_service_request(self, call, service_request_id):
        """One service request with its repair, its action and every step, who and when (FR-106)."""
        return self.aftersales.get_request(actor=call.actor, service_request_id=service_request_id)

    @api("POST", f"{API}/service-requests/<uuid:service_request_id>/confirm", roles=SERVICE_CONFIRMERS,
         body=NoteIn, response=ServiceRequestOut, tags=TAGS, errors=(403, 404, 409, 503, 504))
    def confirm_service_request(self, call, service_request_id):
        """The sales manager confirms an open request of their team's customers (FR-102)."""
        return self.aftersales.confirm_request(request_id=call.request_id, actor=call.actor,
                                               service_request_id=service_request_id, note=call.body.get("note"))

    @api("POST", f"{API}/service-requests/<uuid:service_request_id>/assign", roles=SERVICE_ASSIGNERS,
         body=AssignIn, response=ServiceRequestOut, tags=TAGS, errors=(403, 404, 409, 503, 504))
    def assign_service_request(self, call, service_request_id):
        """Assign (or re-assign) a confirmed request to a service engineer."""
        body = plain(call.body)
        return self.aftersales.assign_request(request_id=call.request_id, actor=call.actor,
                                              service_request_id=service_request_id, engineer_id=body["engineer"],
                                              note=body.get("note"))

    @api("POST", f"{API}/service-requests/<uuid:service_request_id>/start", roles=SERVICE_WORKERS, body=NoteIn,
         response=ServiceRequestOut, tags=TAGS, errors=(403, 404, 409, 503, 504))
    def start_service_request(self, call, service_request_id):
        """The assigned engineer starts work (FR-103)."""
        return self.aftersales.start_work(request_id=call.request_id, actor=call.actor,
                                          service_request_id=service_request_id, note=call.body.get("note"))

    @api("POST", f"{API}/service-requests/<uuid:service_request_id>/repair-steps", roles=REPAIR_STEPPERS,
         body=RepairStepIn, response=ServiceRequestOut, tags=TAGS, errors=(403, 404, 409, 503, 504))
    def record_repair_step(self, call, service_request_id):
        """A step of the repair (FR-97); warranty is decided when the unit is received. 409 IN_WARRANTY,
        QUOTE_REQUIRED, NOT_A_REPAIR, INVALID_STATE."""
        body = plain(call.body)
        return self.aftersales.record_repair_step(request_id=call.request_id, actor=call.actor,
                                                  service_request_id=service_request_id, step=body["step"],
                                                  note=body.get("note"), amount=body.get("amount"))

    @api("POST", f"{API}/service-requests/<uuid:service_request_id>/resolve", roles=SERVICE_WORKERS,
         body=ResolveIn, response=ServiceRequestOut, tags=TAGS, errors=(403, 404, 409, 503, 504))
    def resolve_service_request(self, call, service_request_id):
        """The assigned engineer resolves the request; a return or a replacement reaches the order
        service (see `action_status`). 403 ENGINEER_NOT_ASSIGNED; 409 REPAIR_NOT_FINISHED,
        DELIVERY_REQUIRED, QUANTITY_EXCEEDS_DELIVERED."""
        body = call.body
        return self.aftersales.resolve_request(request_id=call.request_id, actor=call.actor,
                                               service_request_id=service_request_id,
                                               resolution=body["resolution"], action=body["action"],
                                               quantity=body.get("quantity"))

    @api("POST", f"{API}/service-requests/<uuid:service_request_id>/feedback", roles=FEEDBACK_RECORDERS,
         body=FeedbackIn, response=ServiceRequestOut, tags=TAGS, errors=(403, 404, 409, 503, 504))
    def record_service_feedback(self, call, service_request_id):
        """The customer's rating (1-5) and comment close a resolved request (FR-107)."""
        return self.aftersales.record_feedback(request_id=call.request_id, actor=call.actor,
                                               service_request_id=service_request_id, rating=call.body["rating"],
                                               comment=call.body.get("comment"))

    @api("GET", f"{API}/reports/service-sla", roles=REPORT_READERS, query=ServiceSlaQuery,
         response=ServiceSlaReport, tags=["reports", "after-sales"], errors=(503, 504))
    def service_sla_report(self, call):
        """SLA compliance, first-time-fix rate and satisfaction per rep, team, region, product,
        customer or engineer (FR-107, FR-108), within the caller's scope."""
        start, end = period_dates(call.query, workdays.local_date(datetime.now(timezone.utc)))
        return self.aftersales.report_service(actor=call.actor, period_start=start.isoformat(),
                                              period_end=end.isoformat(), group_by=call.query["group_by"])
