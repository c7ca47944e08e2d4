"""API.md "Reports" and the aggregated views: the customer 360° overview, the order timeline, sales
performance, the pipeline and the OSB cycle (FR-62, FR-90, FR-112–FR-125).

The gateway holds no business data: each figure comes from the service that owns it, through one
RPC per service per request, all sent at once (gateway.compose); the gateway only joins the
answers. A service that is down or slow costs at most its part's timeout (GATEWAY.VIEW_TIMEOUT,
GATEWAY.REPORT_TIMEOUT): the answer still comes, 200, with that part null, the service named in
`unavailable` and in the `Sales-Partial` header. Row-level access holds: the part that owns the
record asked for (the customer, the order) decides 404 for someone else's, and every other part is
asked as the caller, so each service applies its own scope.

Periods are `YYYY`, `YYYY-Qn` or `YYYY-MM` of Asia/Shanghai business dates (default: this month).
"""
import calendar
import re
from datetime import date, datetime, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal

from marshmallow import Schema, ValidationError, fields, validate

from gateway.api.aftersales import SERVICE_READERS, ServiceRequestOut
from gateway.api.billing import BILLING_READERS, InvoiceOut, ReceiptOut
from gateway.api.catalog import DeliveryOut, StockDocumentOut
from gateway.api.customers import CUSTOMER_READERS, CustomerOut, OpportunityOut, VisitOut
from gateway.api.sales import ORDER_READERS, OrderOut, ReturnOut
from gateway.compose import gather, missing, partial_headers
from gateway.http import Reply, api
from shared import workdays
from shared.errors import NotFound, ServiceUnavailable
from shared.validation import StrictSchema

API = "/api/v1"
TAGS = ["reports"]

# Who reads reports: management and the sales staff (a rep their own figures), the sales secretariat
# (order desk: FR-71, FR-125) and finance (FR-90: collection); BI tools through integration keys.
PERFORMANCE_READERS = frozenset({"admin", "general_manager", "sales_director", "marketing_director", "sales_manager",
                                 "sales_rep", "order_desk", "finance", "integration"})
PIPELINE_READERS = frozenset({"admin", "general_manager", "sales_director", "marketing_director", "sales_manager",
                              "sales_rep", "order_desk", "integration"})
OSB_READERS = PERFORMANCE_READERS | {"warehouse"}  # OSB spans sales, finance and the warehouse (FR-62)
OVERVIEW_READERS = CUSTOMER_READERS
TIMELINE_READERS = ORDER_READERS

GROUPS = ("rep", "team", "region", "product", "customer")
PIPELINE_GROUPS = ("rep", "team", "region", "customer")  # opportunities and orders have no product dimension
OSB_STEPS = ("order_to_ship", "ship_to_invoice", "invoice_to_cash", "order_to_cash")
_PERIOD = re.compile(r"^(?P<year>\d{4})(?:-Q(?P<quarter>[1-4])|-(?P<month>0[1-9]|1[0-2]))?$")
CENT, BASIS = Decimal("0.01"), Decimal("0.0001")


# -- periods ----------------------------------------------------------------------------------------
def _period_ok(text):
    found = _PERIOD.match(text or "")
    if not found or not 2000 <= int(found["year"]) <= 2999:
        raise ValidationError("a year (2026), quarter (2026-Q4) or month (2026-10), years 2000 to 2999")


def period_field(description):
    return fields.String(load_default=None, validate=_period_ok,
                         metadata={"description": description, "example": "2026-Q4"})


def period_bounds(text):
    """(first day, last day) of `YYYY`, `YYYY-Qn` or `YYYY-MM`."""
    found = _PERIOD.match(text)
    year = int(found["year"])
    if found["quarter"]:
        first, last = 3 * int(found["quarter"]) - 2, 3 * int(found["quarter"])
    elif found["month"]:
        first = last = int(found["month"])
    else:
        first, last = 1, 12
    return date(year, first, 1), date(year, last, calendar.monthrange(year, last)[1])


def this_month(now=None):
    today = workdays.local_date(now or datetime.now(timezone.utc))
    return f"{today.year}-{today.month:02d}"


# -- figures ----------------------------------------------------------------------------------------
def _dec(value):
    return None if value is None else Decimal(str(value))


def money(value):
    return None if value is None else str(Decimal(value).quantize(CENT, ROUND_HALF_UP))


def percent(part, whole):
    """part / whole × 100 with 2 places; None when there is nothing to divide by."""
    if part is None or whole is None or Decimal(whole) == 0:
        return None
    return str((Decimal(part) * 100 / Decimal(whole)).quantize(CENT, ROUND_HALF_UP))


def ratio(part, whole):
    if part is None or whole is None or Decimal(whole) == 0:
        return None
    return str((Decimal(part) / Decimal(whole)).quantize(BASIS, ROUND_HALF_UP))


# -- query schemas ----------------------------------------------------------------------------------
class OverviewQuery(StrictSchema):
    items = fields.Integer(load_default=10, validate=validate.Range(1, 50), metadata={
        "description": "how many open opportunities, open orders and open service requests to list (the counts "
                       "and amounts cover all of them)"})
    visits = fields.Integer(load_default=5, validate=validate.Range(1, 50), metadata={
        "description": "how many of the last visits to list"})


class PerformanceQuery(StrictSchema):
    period = period_field("YYYY, YYYY-Qn or YYYY-MM (Asia/Shanghai); default this month")
    group_by = fields.String(load_default="rep", validate=validate.OneOf(GROUPS))


class PipelineQuery(StrictSchema):
    group_by = fields.String(load_default="rep", validate=validate.OneOf(PIPELINE_GROUPS))
    period = period_field("only opportunities expected to close within it (default: all open ones)")


class OsbCycleQuery(StrictSchema):
    period = period_field("orders confirmed within it (default this month)")
    group_by = fields.String(load_default=None, validate=validate.OneOf(PIPELINE_GROUPS), metadata={
        "description": "default: the totals only"})


# -- answer schemas (documentation: the OpenAPI document and the property-based test hold the answers to them)
def amount_field(**kwargs):
    metadata = dict({"type": "string", "pattern": r"^-?\d+\.\d{2}$", "example": "1234.50",
                     "description": "CNY, VAT included"}, **kwargs.pop("metadata", {}))
    return fields.String(metadata=metadata, **kwargs)


def rate_field(description, **kwargs):
    return fields.String(allow_none=True, metadata={"type": "string", "pattern": r"^-?\d+\.\d+$",
                                                    "description": description}, **kwargs)


class Unavailable(Schema):
    service = fields.String(required=True, metadata={"example": "billing"})
    parts = fields.List(fields.String(), required=True, metadata={"example": ["credit"]})
    reason = fields.String(required=True, validate=validate.OneOf(("unavailable", "timeout", "error")), metadata={
        "description": "unavailable: not running; timeout: no answer within the part's timeout; error: it failed"})


def _partial_fields():
    return {
        "partial": fields.Boolean(required=True, metadata={"description": "true when a part is missing"}),
        "unavailable": fields.List(fields.Nested(Unavailable), required=True, metadata={
            "description": "the services whose parts are missing (also in the Sales-Partial header)"}),
    }


class OwnerOut(Schema):
    id = fields.UUID(allow_none=True, required=True, metadata={"description": "null: the customer is in the pool"})
    name = fields.String(allow_none=True, required=True)
    team = fields.String(allow_none=True, required=True)


class OpportunitiesPart(Schema):
    count = fields.Integer(required=True)
    amount = amount_field(required=True)
    weighted_amount = amount_field(required=True, metadata={"description": "Σ expected amount × probability"})
    items = fields.List(fields.Nested(OpportunityOut), required=True, metadata={"description": "the newest"})


class OrdersPart(Schema):
    count = fields.Integer(required=True)
    amount = amount_field(required=True)
    items = fields.List(fields.Nested(OrderOut), required=True, metadata={"description": "the newest, no lines"})


class CreditPart(Schema):
    limit = amount_field(required=True)
    grade = fields.String(allow_none=True, required=True, validate=validate.OneOf(("A", "B", "C", "D")))
    currency = fields.String(required=True, metadata={"example": "CNY"})
    exposure = amount_field(required=True, metadata={"description": "receivable + reserved for confirmed orders"})
    receivable = amount_field(required=True, metadata={"description": "the receivable balance: open invoices"})
    reserved = amount_field(required=True)
    available = amount_field(required=True, metadata={"description": "limit − exposure, never below 0"})


class ServiceRequestsPart(Schema):
    items = fields.List(fields.Nested(ServiceRequestOut), required=True)
    more = fields.Boolean(required=True, metadata={"description": "more open requests than listed"})


CustomerOverview = type("CustomerOverview", (Schema,), dict({
    "customer_id": fields.UUID(required=True),
    "profile": fields.Nested(CustomerOut, allow_none=True, required=True),
    "owner": fields.Nested(OwnerOut, allow_none=True, required=True),
    "open_opportunities": fields.Nested(OpportunitiesPart, allow_none=True, required=True),
    "last_visits": fields.List(fields.Nested(VisitOut), allow_none=True, required=True),
    "open_orders": fields.Nested(OrdersPart, allow_none=True, required=True),
    "credit": fields.Nested(CreditPart, allow_none=True, required=True),
    "open_service_requests": fields.Nested(ServiceRequestsPart, allow_none=True, required=True, metadata={
        "description": "null also when the caller's role does not read service requests"}),
}, **_partial_fields()))


class TimelineEvent(Schema):
    at = fields.DateTime(required=True)
    type = fields.String(required=True, metadata={"example": "goods.issued"})
    service = fields.String(required=True, validate=validate.OneOf(("order", "inventory", "billing")))
    document = fields.String(required=True, metadata={
        "description": "order, quote, contract, reservation, delivery, return, return_receipt, invoice, receipt"})
    document_id = fields.UUID(allow_none=True, required=True)
    number = fields.String(allow_none=True, required=True)
    detail = fields.String(allow_none=True, required=True)


class ApprovalOut(Schema):
    document = fields.String(required=True, validate=validate.OneOf(("quote", "contract", "return")))
    document_id = fields.UUID(required=True)
    number = fields.String(allow_none=True, required=True)
    round = fields.Integer(allow_none=True)
    seq = fields.Integer(allow_none=True)
    relation = fields.String(allow_none=True)
    role = fields.String(allow_none=True)
    status = fields.String(allow_none=True)
    approver_id = fields.UUID(allow_none=True)
    approver_name = fields.String(allow_none=True)
    decided_by = fields.UUID(allow_none=True)
    decided_at = fields.DateTime(allow_none=True)
    comment = fields.String(allow_none=True)


class ReservationLineOut(Schema):
    line_id = fields.UUID()
    sku = fields.String()
    quantity = fields.Integer()
    unit_price = fields.String()
    vat_rate = fields.String()
    allocated = fields.Integer()
    issued = fields.Integer()


class ReservationDocOut(Schema):
    reservation_id = fields.UUID(required=True)
    order_id = fields.UUID(required=True)
    status = fields.String(required=True, validate=validate.OneOf(("held", "committed", "consumed", "released",
                                                                   "expired")))
    warehouse = fields.String()
    hold_until = fields.DateTime(allow_none=True)
    created_at = fields.DateTime()
    committed_at = fields.DateTime(allow_none=True)
    closed_at = fields.DateTime(allow_none=True)
    close_reason = fields.String(allow_none=True)
    lines = fields.List(fields.Nested(ReservationLineOut))


class GoodsIssueOut(Schema):
    id = fields.UUID(required=True)
    number = fields.String(allow_none=True, required=True, metadata={"example": "GI-2026-000042"})
    delivery_id = fields.UUID(required=True)
    delivery_number = fields.String(required=True)
    issued_at = fields.DateTime(allow_none=True, required=True)
    issued_by = fields.UUID(allow_none=True)
    total = fields.String(required=True)


class SagaStepOut(Schema):
    kind = fields.String()
    attempt = fields.Integer()
    state = fields.String()
    step = fields.String(allow_none=True)
    stock_status = fields.String()
    credit_status = fields.String()
    error = fields.Raw(allow_none=True)
    started_at = fields.DateTime()
    finished_at = fields.DateTime(allow_none=True)


OrderTimeline = type("OrderTimeline", (Schema,), dict({
    "order_id": fields.UUID(required=True),
    "order": fields.Nested(OrderOut, allow_none=True, required=True),
    "events": fields.List(fields.Nested(TimelineEvent), required=True, metadata={
        "description": "everything that happened to the order, oldest first, from the parts that answered"}),
    "approvals": fields.List(fields.Nested(ApprovalOut), allow_none=True, required=True),
    "sagas": fields.List(fields.Nested(SagaStepOut), allow_none=True, required=True, metadata={
        "description": "the confirmation attempts: stock and credit reserved, released"}),
    "reservations": fields.List(fields.Nested(ReservationDocOut), allow_none=True, required=True),
    "deliveries": fields.List(fields.Nested(DeliveryOut), allow_none=True, required=True),
    "goods_issues": fields.List(fields.Nested(GoodsIssueOut), allow_none=True, required=True),
    "invoices": fields.List(fields.Nested(InvoiceOut), allow_none=True, required=True, metadata={
        "description": "null also when the caller's role does not read billing"}),
    "receipts": fields.List(fields.Nested(ReceiptOut), allow_none=True, required=True),
    "returns": fields.List(fields.Nested(ReturnOut), allow_none=True, required=True),
    "return_receipts": fields.List(fields.Nested(StockDocumentOut), allow_none=True, required=True),
}, **_partial_fields()))


def figure(description):
    """An amount of a report: null when the service that owns it did not answer."""
    return amount_field(allow_none=True, required=True, metadata={"description": description})


def count(description):
    return fields.Integer(allow_none=True, required=True, metadata={"description": description})


class PerformanceFigures(Schema):
    target = figure("published targets of the period (order)")
    orders = count("orders confirmed in the period (order)")
    ordered = figure("confirmed in the period (order)")
    completion = rate_field("ordered / target × 100, 2 places (%)", required=True)
    shipped = figure("goods issued in the period (inventory)")
    returned = figure("goods received back in the period (inventory)")
    invoiced = figure("issued less red-letter invoices (billing)")
    collected = figure("receipts allocated to invoices in the period (billing)")
    collection_rate = rate_field("collected / invoiced, 0..1 with 4 places (billing, FR-90)", required=True)
    receivable = figure("open at the period's end (billing)")
    dso = rate_field("days sales outstanding: receivable / invoiced × days of the period (billing)", required=True)
    visits = count("logged visits (customer)")
    visit_standard = rate_field("10 a week per rep (FR-26) over the period (customer)", required=True)
    visits_vs_standard = rate_field("visits / standard × 100 (%)", required=True)
    new_customers = count("customers recorded in the period (customer)")


class PerformanceGroup(PerformanceFigures):
    key = fields.String(allow_none=True, required=True, metadata={
        "description": "the rep's staff id, the team, the region, the SKU or the customer id (null: none)"})
    name = fields.String(allow_none=True, required=True)


SalesPerformance = type("SalesPerformance", (Schema,), dict({
    "period": fields.String(required=True, metadata={"example": "2026-Q4"}),
    "period_start": fields.Date(required=True),
    "period_end": fields.Date(required=True, metadata={"description": "included"}),
    "group_by": fields.String(required=True, validate=validate.OneOf(GROUPS)),
    "groups": fields.List(fields.Nested(PerformanceGroup), required=True),
    "totals": fields.Nested(PerformanceFigures, required=True),
}, **_partial_fields()))


class PipelineStage(Schema):
    count = fields.Integer(required=True)
    amount = amount_field(required=True)
    weighted_amount = amount_field(required=True)


class PipelineTotals(Schema):
    open_count = fields.Integer(required=True)
    open_amount = amount_field(required=True)
    weighted_amount = amount_field(required=True, metadata={"description": "Σ expected amount × probability"})


class PipelineGroup(PipelineTotals):
    key = fields.String(allow_none=True, required=True)
    name = fields.String(allow_none=True, required=True)
    stages = fields.Dict(keys=fields.String(), values=fields.Nested(PipelineStage), required=True)


class PipelineReport(Schema):
    group_by = fields.String(required=True, validate=validate.OneOf(PIPELINE_GROUPS))
    period = fields.String(allow_none=True, required=True)
    period_start = fields.Date(allow_none=True, required=True)
    period_end = fields.Date(allow_none=True, required=True)
    groups = fields.List(fields.Nested(PipelineGroup), required=True)
    totals = fields.Nested(PipelineTotals, required=True)


class CycleStep(Schema):
    count = fields.Integer(required=True, metadata={"description": "orders that completed the step"})
    median_days = rate_field("days, 2 places (null: none completed)", required=True)
    p90_days = rate_field("90th percentile, days", required=True)


class CycleFigures(Schema):
    orders = fields.Integer(required=True, metadata={"description": "sale orders confirmed in the period"})
    steps = fields.Dict(keys=fields.String(validate=validate.OneOf(OSB_STEPS)), values=fields.Nested(CycleStep),
                        required=True)


class CycleGroup(CycleFigures):
    key = fields.String(allow_none=True, required=True)


class OsbCycleReport(Schema):
    period = fields.String(required=True)
    period_start = fields.Date(required=True)
    period_end = fields.Date(required=True, metadata={"description": "included"})
    group_by = fields.String(allow_none=True, required=True)
    steps = fields.List(fields.String(), required=True, metadata={
        "description": "order_to_ship (created → all shipped), ship_to_invoice (→ all invoiced), invoice_to_cash "
                       "(→ all paid), order_to_cash"})
    groups = fields.List(fields.Nested(CycleGroup), required=True)
    totals = fields.Nested(CycleFigures, required=True)


# -- joining ------------------------------------------------------------------------------------------
def decide(deciding, others):
    """Row-level access for a composed answer: the part that owns the record decides. NOT_FOUND there
    is the 404 of the whole. When it is missing, the others (each asked as the caller, so scoped by
    their service) decide: one that found something is enough to answer; one that says NOT_FOUND is
    a 404; nothing at all is a 503 — nothing can say whether the record is there."""
    if deciding.ok:
        return
    if deciding.status == "not_found":
        raise NotFound(getattr(deciding.error, "detail", None) or "not found")
    if any(part.status == "not_found" for part in others):
        raise NotFound("not found")
    if not any(part.ok and _has_content(part.value) for part in others):
        raise ServiceUnavailable(f"the {deciding.service} service did not answer and no other part can tell "
                                 "whether this record is there", service=deciding.service)


def _has_content(value):
    if isinstance(value, dict):
        return any(_has_content(v) for k, v in value.items() if k not in ("order_id", "customer_id", "next_cursor"))
    if isinstance(value, list):
        return bool(value)
    return value not in (None, 0, "0.00", False)


def overview(customer_id, parts):
    """The customer overview from its parts (gateway.compose.Part): customer, orders, credit, service."""
    customer, orders, credit, service = (parts.get(n) for n in ("customer", "orders", "credit", "service"))
    profile = customer.value["customer"] if customer.ok else None
    credit_value = credit.value if credit is not None and credit.ok else None
    service_value = service.value if service is not None and service.ok else None
    unavailable = missing(parts)
    return {
        "customer_id": customer_id,
        "profile": profile,
        "owner": {"id": profile.get("owner_id"), "name": profile.get("owner_name"),
                  "team": profile.get("owner_team")} if profile else None,
        "open_opportunities": customer.value["open_opportunities"] if customer.ok else None,
        "last_visits": customer.value["last_visits"] if customer.ok else None,
        "open_orders": orders.value if orders.ok else None,
        "credit": {"limit": credit_value["limit"], "grade": credit_value.get("grade"),
                   "currency": credit_value.get("currency", "CNY"), "exposure": credit_value["exposure"],
                   "receivable": credit_value["open_receivables"], "reserved": credit_value["reserved"],
                   "available": credit_value["available"]} if credit_value else None,
        "open_service_requests": {"items": service_value["items"], "more": service_value["next_cursor"] is not None}
        if service_value else None,
        "partial": bool(unavailable), "unavailable": unavailable,
    }


def _event(at, type_, service, document, document_id=None, number=None, detail=None):
    return {"at": at, "type": type_, "service": service, "document": document,
            "document_id": document_id, "number": number, "detail": detail}


def timeline(order_id, parts):
    """The order timeline from its parts: order (the order service), warehouse, billing."""
    order_part, warehouse, billing = parts["order"], parts["warehouse"], parts.get("billing")
    events, approvals = [], None
    body = {"order_id": order_id, "order": None, "approvals": None, "sagas": None, "returns": None,
            "reservations": None, "deliveries": None, "goods_issues": None, "return_receipts": None,
            "invoices": None, "receipts": None}
    if order_part.ok:
        value = order_part.value
        order = value["order"]
        body.update(order=order, sagas=value["sagas"], returns=value["returns"])
        for column, kind, detail in (("created_at", "order.created", None), ("confirmed_at", "order.confirmed", None),
                                     ("credit_held_at", "order.credit_held", "waiting for a credit release"),
                                     ("first_shipped_at", "order.first_shipped", None),
                                     ("shipped_at", "order.shipped", None), ("invoiced_at", "order.invoiced", None),
                                     ("paid_at", "order.paid", None), ("closed_at", "order.closed", None),
                                     ("cancelled_at", "order.cancelled", order.get("cancel_reason"))):
            if order.get(column):
                events.append(_event(order[column], kind, "order", "order", order["id"], order["number"], detail))
        approvals = []
        for kind, doc in (("quote", value.get("quote")), ("contract", value.get("contract"))):
            if doc:
                approvals += _approvals(kind, doc)
        for ret in value["returns"]:
            approvals += _approvals("return", ret)
            for column, kind in (("created_at", "return.requested"), ("approved_at", "return.approved"),
                                 ("rejected_at", "return.rejected"), ("received_at", "return.received")):
                if ret.get(column):
                    events.append(_event(ret[column], kind, "order", "return", ret["id"], ret["number"], ret["reason"]
                                         if kind == "return.requested" else None))
        contract = value.get("contract")
        if contract:
            for column, kind in (("signed_at", "contract.signed"), ("effective_at", "contract.effective")):
                if contract.get(column):
                    events.append(_event(contract[column], kind, "order", "contract", contract["id"],
                                         contract["number"]))
        for step in approvals:
            if step.get("decided_at") and step.get("status") in ("approved", "rejected"):
                events.append(_event(step["decided_at"], f"{step['document']}.{step['status']}", "order",
                                     step["document"], step["document_id"], step["number"],
                                     f"{step.get('relation')}: {step.get('approver_name') or step.get('decided_by')}"))
        body["approvals"] = approvals
    if warehouse.ok:
        value = warehouse.value
        body.update(reservations=value["reservations"], deliveries=value["deliveries"],
                    return_receipts=value["return_receipts"])
        body["goods_issues"] = [
            {"id": d["goods_issue_id"], "number": d["goods_issue_number"], "delivery_id": d["id"],
             "delivery_number": d["number"], "issued_at": d["issued_at"], "issued_by": d.get("issued_by"),
             "total": d["total"]} for d in value["deliveries"] if d.get("goods_issue_id")]
        for res in value["reservations"]:
            events.append(_event(res["created_at"], "stock.reserved", "inventory", "reservation",
                                 res["reservation_id"]))
            if res.get("committed_at"):
                events.append(_event(res["committed_at"], "stock.committed", "inventory", "reservation",
                                     res["reservation_id"]))
            if res.get("closed_at"):
                events.append(_event(res["closed_at"], f"stock.{res['status']}", "inventory", "reservation",
                                     res["reservation_id"], detail=res.get("close_reason")))
        for note in value["deliveries"]:
            events.append(_event(note["created_at"], "delivery.created", "inventory", "delivery", note["id"],
                                 note["number"]))
            if note.get("issued_at"):
                events.append(_event(note["issued_at"], "goods.issued", "inventory", "delivery", note["id"],
                                     note.get("goods_issue_number"), f"{note['total']} CNY"))
            if note.get("cancelled_at"):
                events.append(_event(note["cancelled_at"], "delivery.cancelled", "inventory", "delivery", note["id"],
                                     note["number"], note.get("cancel_reason")))
        for doc in value["return_receipts"]:
            events.append(_event(doc["posted_at"], "goods.returned", "inventory", "return_receipt", doc["id"],
                                 doc["number"], doc.get("return_number")))
    if billing is not None and billing.ok:
        value = billing.value
        body.update(invoices=value["invoices"], receipts=value["receipts"])
        invoice_ids = set()
        for inv in value["invoices"]:
            invoice_ids.add(inv["id"])
            events.append(_event(inv["created_at"], "invoice.created", "billing", "invoice", inv["id"],
                                 inv.get("number")))
            if inv.get("issued_at"):
                kind = "invoice.reversed" if inv.get("red") else "invoice.issued"
                events.append(_event(inv["issued_at"], kind, "billing", "invoice", inv["id"], inv.get("number"),
                                     f"{inv['total']} CNY"))
            if inv.get("cancelled_at"):
                events.append(_event(inv["cancelled_at"], "invoice.cancelled", "billing", "invoice", inv["id"]))
        for receipt in value["receipts"]:
            for allocation in receipt.get("allocations") or []:
                if allocation.get("invoice_id") in invoice_ids:
                    detail = f"{allocation['amount']} CNY to {allocation.get('invoice_number')}"
                    events.append(_event(allocation["allocated_at"], "receipt.allocated", "billing", "receipt",
                                         receipt["id"], receipt.get("number"), detail))
                    if allocation.get("reversed_at"):
                        events.append(_event(allocation["reversed_at"], "allocation.reversed", "billing", "receipt",
                                             receipt["id"], receipt.get("number"), detail))
    events.sort(key=lambda e: (datetime.fromisoformat(e["at"]), e["type"]))
    unavailable = missing(parts)
    return dict(body, events=events, partial=bool(unavailable), unavailable=unavailable)


def _approvals(kind, doc):
    return [{"document": kind, "document_id": doc["id"], "number": doc.get("number"),
             **{k: step.get(k) for k in ("round", "seq", "relation", "role", "status", "approver_id", "approver_name",
                                         "decided_by", "decided_at", "comment")}}
            for step in doc.get("approvals") or []]


ORDER_FIGURES = {"target": None, "orders": 0, "ordered": "0.00"}
INVENTORY_FIGURES = {"shipped": "0.00", "returned": "0.00"}
BILLING_FIGURES = {"invoiced": "0.00", "collected": "0.00", "collection_rate": None, "receivable": "0.00",
                   "dso": None}
ACTIVITY_FIGURES = {"visits": 0, "visit_standard": None, "visits_vs_standard": None, "new_customers": 0}


def performance(parts, group_by):
    """Join the owners' aggregates per group key: order (target, ordered), inventory (shipped),
    billing (invoiced, collected, collection rate, receivable, DSO) and customer (visits, new
    customers; none per product). A missing service's figures are null in every group."""
    sources = (("orders", ORDER_FIGURES, _order_figures), ("shipped", INVENTORY_FIGURES, _inventory_figures),
               ("billing", BILLING_FIGURES, _billing_figures), ("activity", ACTIVITY_FIGURES, _activity_figures))
    groups, names = {}, {}
    for name, _, pick in sources:
        part = parts.get(name)
        if part is None or not part.ok:
            continue
        for row in part.value["groups"]:
            groups.setdefault(row["key"], {}).update(pick(row))
            if row.get("name"):
                names[row["key"]] = row["name"]
    result = []
    for key in sorted(groups, key=lambda k: (k is None, str(k))):
        figures = _fill(groups[key], parts, sources)
        result.append(dict(figures, key=key, name=names.get(key)))
    totals = _totals(result, parts, sources)
    unavailable = missing(parts)
    return result, totals, unavailable


def _order_figures(row):
    return {"target": money(_dec(row.get("target"))), "orders": row.get("orders", 0),
            "ordered": money(_dec(row["ordered"]))}


def _inventory_figures(row):
    return {"shipped": money(_dec(row["shipped"])), "returned": money(_dec(row["returned"]))}


def _billing_figures(row):
    return {name: row.get(name) for name in BILLING_FIGURES}


def _activity_figures(row):
    return {"visits": row.get("visits", 0), "visit_standard": row.get("visit_standard"),
            "visits_vs_standard": row.get("visits_vs_standard"), "new_customers": row.get("new_customers", 0)}


def _fill(found, parts, sources):
    figures = {}
    for name, defaults, _ in sources:
        part = parts.get(name)
        available = part is not None and part.ok
        for field_name, default in defaults.items():
            figures[field_name] = found.get(field_name, default) if available else None
    figures["completion"] = percent(figures["ordered"], figures["target"])
    return figures


def _totals(groups, parts, sources):
    def total(field_name, integer=False):
        values = [g[field_name] for g in groups if g[field_name] is not None]
        if integer:
            return sum(values)
        return money(sum((Decimal(v) for v in values), Decimal(0)))

    figures = {}
    for name, defaults, _ in sources:
        part = parts.get(name)
        available = part is not None and part.ok
        for field_name in defaults:
            figures[field_name] = None
        if not available:
            continue
        if name == "orders":
            targets = [g["target"] for g in groups if g["target"] is not None]
            figures.update(target=money(sum(Decimal(t) for t in targets)) if targets else None,
                           orders=total("orders", True), ordered=total("ordered"))
        elif name == "shipped":
            figures.update(shipped=total("shipped"), returned=total("returned"))
        elif name == "billing":
            billed = part.value.get("totals") or {}
            figures.update(invoiced=total("invoiced"), collected=total("collected"), receivable=total("receivable"))
            rate = billed.get("collection_rate", ratio(figures["collected"], figures["invoiced"]))
            figures.update(collection_rate=rate, dso=billed.get("dso"))
        elif name == "activity":
            standards = [Decimal(g["visit_standard"]) for g in groups if g["visit_standard"] is not None]
            standard = sum(standards) if standards else None
            figures.update(visits=total("visits", True), new_customers=total("new_customers", True),
                           visit_standard=str(standard) if standard is not None else None)
            figures["visits_vs_standard"] = percent(figures["visits"], standard)
    figures["completion"] = percent(figures["ordered"], figures["target"])
    return figures


def pipeline_totals(groups):
    return {"open_count": sum(g["open_count"] for g in groups),
            "open_amount": money(sum((Decimal(g["open_amount"]) for g in groups), Decimal(0))),
            "weighted_amount": money(sum((Decimal(g["weighted_amount"]) for g in groups), Decimal(0)))}


# -- the endpoints ------------------------------------------------------------------------------------
class ReportsApi:
    @api("GET", f"{API}/customers/<uuid:customer_id>/overview", roles=OVERVIEW_READERS, query=OverviewQuery,
         response=CustomerOverview, tags=["customers", "reports"], errors=(404, 503), partial=True)
    def customer_overview(self, call, customer_id):
        """The customer 360° overview: profile, owner, open opportunities, open orders, receivable
        balance, credit limit and available credit, open service requests and the last visits.

        The customer, order, billing and after-sales services are asked at once; one that is down or
        slow leaves its part null, named in `unavailable` and in the `Sales-Partial` header (200). The
        customer service decides 404 for a customer the caller may not see."""
        query = call.query
        actor = call.actor
        calls = {
            "customer": ("customer", lambda: self.customer.get_customer_overview.call_async(
                actor=actor, customer_id=customer_id, visits=query["visits"], opportunities=query["items"])),
            "orders": ("order", lambda: self.order.list_open_orders.call_async(
                actor=actor, customer_id=customer_id, limit=query["items"])),
        }
        if actor["role"] in BILLING_READERS:
            calls["credit"] = ("billing", lambda: self.billing.get_credit_summary.call_async(
                actor=actor, customer_id=customer_id))
        if actor["role"] in SERVICE_READERS:
            calls["service"] = ("aftersales", lambda: self.aftersales.list_requests.call_async(
                actor=actor, filters={"customer_id": customer_id, "active": True}, limit=query["items"]))
        parts = gather(calls, call.settings.view_timeout)
        decide(parts["customer"], [p for name, p in parts.items() if name != "customer"])
        body = overview(customer_id, parts)
        return Reply(body, headers=partial_headers(body["unavailable"]))

    @api("GET", f"{API}/orders/<uuid:order_id>/timeline", roles=TIMELINE_READERS, response=OrderTimeline,
         tags=["orders", "reports"], errors=(404, 503), partial=True)
    def order_timeline(self, call, order_id):
        """The order's timeline: approvals, reservations, deliveries, goods issues, invoices, receipts
        and returns, with every event in time order.

        The order, inventory and billing services are asked at once; one that is down or slow leaves
        its parts null, named in `unavailable` and in the `Sales-Partial` header (200). The order
        service decides 404 for an order the caller may not see."""
        actor = call.actor
        calls = {
            "order": ("order", lambda: self.order.get_order_timeline.call_async(actor=actor, order_id=order_id)),
            "warehouse": ("inventory", lambda: self.inventory.list_order_documents.call_async(
                actor=actor, order_id=order_id)),
        }
        if actor["role"] in BILLING_READERS:
            calls["billing"] = ("billing", lambda: self.billing.list_order_documents.call_async(
                actor=actor, order_id=order_id))
        parts = gather(calls, call.settings.view_timeout)
        decide(parts["order"], [p for name, p in parts.items() if name != "order"])
        body = timeline(order_id, parts)
        return Reply(body, headers=partial_headers(body["unavailable"]))

    @api("GET", f"{API}/reports/sales-performance", roles=PERFORMANCE_READERS, query=PerformanceQuery,
         response=SalesPerformance, tags=TAGS, partial=True)
    def sales_performance(self, call):
        """Sales performance per rep, team, region, product or customer for a month, quarter or year
        (FR-90, FR-120–FR-123): target; ordered, shipped, invoiced and collected amounts; completion %;
        visits against the weekly standard; new customers; collection rate; DSO.

        Each figure comes from the service that owns it (order, inventory, billing, customer), asked
        at once; a missing service's figures are null and it is named in `unavailable` and the
        `Sales-Partial` header. Visits and new customers have no product dimension (null by product).
        Within the caller's scope: a rep sees their own figures."""
        period = call.query["period"] or this_month()
        group_by = call.query["group_by"]
        first, last = period_bounds(period)
        actor, start, end = call.actor, first.isoformat(), last.isoformat()
        after = (last + timedelta(days=1)).isoformat()  # the order service's reports exclude their end
        calls = {
            "orders": ("order", lambda: self.order.report_orders.call_async(
                actor=actor, period_start=start, period_end=after, group_by=group_by)),
            "shipped": ("inventory", lambda: self.inventory.report_shipped.call_async(
                actor=actor, period_start=start, period_end=end, group_by=group_by)),
            "billing": ("billing", lambda: self.billing.report_billing.call_async(
                actor=actor, period_start=start, period_end=end, group_by=group_by)),
        }
        if group_by != "product":
            calls["activity"] = ("customer", lambda: self.customer.report_activity.call_async(
                actor=actor, period_start=start, period_end=end, group_by=group_by))
        parts = gather(calls, call.settings.report_timeout)
        groups, totals, unavailable = performance(parts, group_by)
        body = {"period": period, "period_start": start, "period_end": end, "group_by": group_by,
                "groups": groups, "totals": totals, "partial": bool(unavailable), "unavailable": unavailable}
        return Reply(body, headers=partial_headers(unavailable))

    @api("GET", f"{API}/reports/pipeline", roles=PIPELINE_READERS, query=PipelineQuery, response=PipelineReport,
         tags=TAGS, errors=(503, 504))
    def pipeline_report(self, call):
        """The pipeline: open opportunities per rep, team, region or customer — count, amount and
        amount weighted by probability, per stage too; with a period, those expected to close in it."""
        period = call.query["period"]
        first, last = period_bounds(period) if period else (None, None)
        answer = self.customer.report_pipeline(
            actor=call.actor, group_by=call.query["group_by"], period_start=first.isoformat() if first else None,
            period_end=last.isoformat() if last else None)
        groups = answer["groups"]
        return {"group_by": answer["group_by"], "period": period, "period_start": first, "period_end": last,
                "groups": groups, "totals": pipeline_totals(groups)}

    @api("GET", f"{API}/reports/osb-cycle", roles=OSB_READERS, query=OsbCycleQuery, response=OsbCycleReport,
         tags=TAGS, errors=(503, 504))
    def osb_cycle_report(self, call):
        """The OSB (order-to-remittance) cycle of the sale orders confirmed in the period (FR-62): per
        step — order → ship, ship → invoice, invoice → cash, and order → cash — the median and 90th
        percentile in days and how many orders completed it; per rep, team, region or customer, and
        in total. The order service computes the percentiles in SQL."""
        period = call.query["period"] or this_month()
        first, last = period_bounds(period)
        answer = self.order.report_osb_cycle_stats(
            actor=call.actor, period_start=first.isoformat(), period_end=(last + timedelta(days=1)).isoformat(),
            group_by=call.query["group_by"])
        return {"period": period, "period_start": first, "period_end": last, "group_by": answer["group_by"],
                "steps": answer["steps"], "groups": answer["groups"], "totals": answer["totals"]}
