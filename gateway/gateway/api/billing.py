"""API.md "Billing" and `GET /reports/receivables-aging` (billing service): credit accounts,
limits and reservations' figures (FR-63–FR-66), invoices and red-letter invoices (FR-81–FR-83,
FR-95), receipts and allocation (FR-84–FR-86), statements and the June / December confirmation
campaign (FR-87–FR-89), receivables aging and DSO (FR-91).

Role sets follow the service's rules (it checks them again): finance issues invoices, reverses
them, confirms receipts, reverses allocations and changes credit limits; the sales manager
certifies; reps, the order desk and finance register receipts and allocate them.
"""
import re
from decimal import Decimal, InvalidOperation

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from gateway.api.customers import CUSTOMER_READERS
from gateway.http import api, created, plain
from gateway.schemas import PageQuery, page_schema, text
from shared.errors import ValidationFailed
from shared.validation import StrictSchema

API = "/api/v1"

BILLING_READERS = frozenset({
    "admin", "general_manager", "sales_director", "marketing_director", "sales_manager", "sales_rep",
    "order_desk", "finance", "integration",
})
INVOICE_CREATORS = frozenset({"sales_rep", "sales_manager", "sales_director", "order_desk", "finance"})
CERTIFIERS = frozenset({"sales_manager"})  # FR-82
FINANCE = frozenset({"finance"})
INVOICE_CANCELLERS = frozenset({"sales_manager", "finance"})
RECEIPT_RECORDERS = frozenset({"sales_rep", "order_desk", "finance"})  # FR-84
ALLOCATORS = frozenset({"sales_rep", "order_desk", "finance"})  # FR-86
STATEMENT_CONFIRMERS = frozenset({"sales_rep", "sales_manager", "order_desk", "finance"})  # FR-87
RECOMPUTERS = frozenset({"finance"})

KINDS = ("special", "ordinary")
METHODS = ("bank_transfer", "cash", "acceptance_bill", "cheque", "other")
GROUP_BY = ("rep", "team", "region", "product", "customer")
_MONTH = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")
_MONEY = re.compile(r"^\d{1,16}(\.\d{1,2})?$")
_MONEY_DOC = {"type": "string", "pattern": _MONEY.pattern, "example": "1234.50",
              "description": "decimal string, CNY, at most 2 places"}


class Money(fields.String):
    """A decimal string with at most 2 places (never a JSON number: money is not a float)."""

    default_error_messages = {
        "invalid": "send money as a decimal string with at most 2 places, e.g. \"1234.50\"",
        "positive": "must be greater than 0",
    }

    def __init__(self, positive=False, **kwargs):
        self.positive = positive
        kwargs.setdefault("metadata", {})
        kwargs["metadata"] = dict(_MONEY_DOC, **kwargs["metadata"])
        super().__init__(**kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, str) or not _MONEY.match(value):
            raise self.make_error("invalid")
        try:
            amount = Decimal(value)
        except InvalidOperation:
            raise self.make_error("invalid") from None
        if self.positive and amount <= 0:
            raise self.make_error("positive")
        return value


def money_out(**kwargs):
    return fields.String(metadata=dict(_MONEY_DOC, **kwargs.pop("metadata", {})), **kwargs)


def reason_field(**kwargs):
    return fields.String(required=True, validate=validate.And(
        validate.Length(1, 1000), validate.Regexp(r"\S", error="must not be blank")), **kwargs)


def month_of(value):
    """A `YYYY-MM` path segment, else a 422 naming `month`."""
    if not _MONTH.match(value):
        raise ValidationFailed("invalid month", errors={"month": ["must look like 2026-06 (YYYY-MM)"]})
    return value


# -- credit ------------------------------------------------------------------------------------
class HistoryOut(Schema):
    kind = fields.String(metadata={"description": "opened | formula | manual"})
    old_limit = money_out(allow_none=True)
    new_limit = money_out()
    grade = fields.String(allow_none=True)
    quarter = fields.String(allow_none=True, metadata={"example": "2026-Q3"})
    reason = fields.String()
    changed_by = fields.UUID(allow_none=True)
    inputs = fields.Dict(allow_none=True, metadata={"description": "the formula's inputs and factors"})
    changed_at = fields.DateTime()


class ReservationOut(Schema):
    reservation_id = fields.UUID()
    order_id = fields.UUID()
    status = fields.String()
    amount = money_out()
    remaining = money_out(metadata={"description": "reserved and not yet invoiced"})
    override = fields.Dict(allow_none=True, metadata={"description": "who released the credit hold, and why"})
    created_at = fields.DateTime()


class CreditAccountOut(Schema):
    customer_id = fields.UUID(required=True)
    limit = money_out()
    currency = fields.String()
    grade = fields.String(allow_none=True, validate=validate.OneOf(("A", "B", "C", "D")))
    exposure = money_out(metadata={"description": "open receivables + reserved"})
    open_receivables = money_out()
    reserved = money_out()
    available = money_out()
    formula_limit = money_out(allow_none=True)
    formula_quarter = fields.String(allow_none=True)
    formula_inputs = fields.Dict(allow_none=True)
    manual_limit = money_out(allow_none=True)
    manual_quarter = fields.String(allow_none=True)
    opened_at = fields.DateTime()
    reservations = fields.List(fields.Nested(ReservationOut))
    history = fields.List(fields.Nested(HistoryOut))


class CreditLimitUpdate(StrictSchema):
    limit = Money(required=True)
    reason = reason_field()

    example = {"limit": "500000.00", "reason": "bank guarantee of 500 000 received (ICBC, valid to 2027-06-30)"}


class RecomputeRequest(StrictSchema):
    quarter = fields.String(required=True, validate=validate.Regexp(r"^\d{4}-Q[1-4]$", error="must look like 2026-Q3"))

    example = {"quarter": "2026-Q4"}


class RecomputeOut(Schema):
    run_id = fields.UUID()
    quarter = fields.String()
    trigger = fields.String()
    accounts = fields.Integer()
    changed = fields.Integer()
    finished = fields.Boolean()


# -- invoices ------------------------------------------------------------------------------------
class InvoiceCreate(StrictSchema):
    delivery_ids = fields.List(fields.UUID(), required=True, validate=validate.Length(1, 50))
    kind = fields.String(required=True, validate=validate.OneOf(KINDS),
                         metadata={"description": "special: 专票, needs the customer's tax id and bank account; "
                                                  "ordinary: 普票"})
    remarks = text(500)

    example = {"delivery_ids": ["0b7c8f9e-1d2a-4c3b-8e5f-6a7b8c9d0e1f"], "kind": "special",
               "remarks": "contract HT-2026-0042"}

    @validates_schema
    def distinct(self, data, **kwargs):
        if len(set(data["delivery_ids"])) != len(data["delivery_ids"]):
            raise ValidationError("a delivery is named twice", "delivery_ids")


class Cancel(StrictSchema):
    reason = reason_field()

    example = {"reason": "raised as ordinary, the customer needs a special VAT invoice"}


class ReverseLine(StrictSchema):
    delivery_line_id = fields.UUID(required=True)
    quantity = fields.Integer(required=True, strict=True, validate=validate.Range(min=1))


class InvoiceReverse(StrictSchema):
    reason = reason_field()
    lines = fields.List(fields.Nested(ReverseLine), validate=validate.Length(min=1),
                        metadata={"description": "what to reverse; absent: everything still unreversed"})

    example = {"reason": "3 units damaged in transit, price allowance agreed",
               "lines": [{"delivery_line_id": "5d0f3b1e-2c4a-4e6b-9a8c-7d6e5f4a3b2c", "quantity": 3}]}


class InvoiceLineOut(Schema):
    id = fields.UUID()
    line_no = fields.Integer()
    delivery_line_id = fields.UUID()
    delivery_id = fields.UUID()
    delivery_number = fields.String(allow_none=True)
    order_id = fields.UUID(allow_none=True)
    order_number = fields.String(allow_none=True)
    order_line_id = fields.UUID(allow_none=True)
    sku = fields.String()
    quantity = fields.Integer()
    unit_price = money_out()
    vat_rate = fields.String(metadata={"example": "0.13"})
    amount = money_out(metadata={"description": "quantity × unit price (VAT included)"})
    net = money_out(metadata={"description": "round(amount / (1 + vat_rate), 2), half up"})
    tax = money_out(metadata={"description": "amount − net"})
    reverses_line = fields.UUID(allow_none=True)
    reversed_quantity = fields.Integer()
    reversed_amount = money_out()


class InvoiceOut(Schema):
    id = fields.UUID(required=True)
    number = fields.String(allow_none=True, metadata={"example": "INV-2026-000123",
                                                      "description": "given when issued (gap-free per year)"})
    kind = fields.String(validate=validate.OneOf(KINDS))
    red = fields.Boolean(metadata={"description": "a red-letter invoice"})
    reverses = fields.UUID(allow_none=True, metadata={"description": "the invoice a red-letter invoice reverses"})
    status = fields.String(validate=validate.OneOf(("draft", "certified", "issued", "cancelled")))
    payment_status = fields.String(allow_none=True, validate=validate.OneOf(
        ("open", "partially_paid", "paid", "reversed")))
    customer_id = fields.UUID()
    owner_id = fields.UUID(allow_none=True)
    owner_team = fields.String(allow_none=True)
    region = fields.String(allow_none=True)
    buyer_name = fields.String(allow_none=True)
    buyer_tax_id = fields.String(allow_none=True)
    buyer_bank = fields.Dict(allow_none=True)
    currency = fields.String()
    total = money_out()
    net_total = money_out()
    tax_total = money_out()
    reversed_amount = money_out()
    allocated_amount = money_out()
    open_amount = money_out(allow_none=True)
    due_date = fields.Date(allow_none=True)
    reason = fields.String(allow_none=True)
    return_id = fields.UUID(allow_none=True)
    remarks = fields.String(allow_none=True)
    created_by = fields.UUID(allow_none=True)
    created_at = fields.DateTime()
    certified_by = fields.UUID(allow_none=True)
    certified_at = fields.DateTime(allow_none=True)
    issued_by = fields.UUID(allow_none=True)
    issued_at = fields.DateTime(allow_none=True)
    cancelled_by = fields.UUID(allow_none=True)
    cancelled_at = fields.DateTime(allow_none=True)
    cancel_reason = fields.String(allow_none=True)
    settled_at = fields.DateTime(allow_none=True)
    lines = fields.List(fields.Nested(InvoiceLineOut))
    red_invoices = fields.List(fields.Dict())
    allocations = fields.List(fields.Dict())


class InvoiceQuery(PageQuery):
    customer_id = fields.UUID(load_default=None)
    status = fields.String(load_default=None, validate=validate.OneOf(("draft", "certified", "issued", "cancelled")))
    kind = fields.String(load_default=None, validate=validate.OneOf(KINDS))
    red = fields.Boolean(load_default=None)
    reverses = fields.UUID(load_default=None, metadata={"description": "red-letter invoices of this invoice"})
    order_id = fields.UUID(load_default=None)
    delivery_id = fields.UUID(load_default=None)
    issued_from = fields.Date(load_default=None)
    issued_to = fields.Date(load_default=None)


InvoicePage = page_schema("InvoicePage", InvoiceOut)
INVOICE_FILTERS = ("customer_id", "status", "kind", "red", "reverses", "order_id", "delivery_id", "issued_from",
                   "issued_to")


# -- receipts --------------------------------------------------------------------------------------
class ReceiptCreate(StrictSchema):
    customer_id = fields.UUID(required=True)
    amount = Money(required=True, positive=True)
    method = fields.String(required=True, validate=validate.OneOf(METHODS))
    reference = text(100, metadata={"description": "bank reference, bill number"})
    received_at = fields.Date(required=True, metadata={"description": "the day the money arrived (not in the future)"})
    note = text(1000)

    example = {"customer_id": "3f2b8c1e-8a9b-4d8e-9c1f-1a2b3c4d5e6f", "amount": "113000.00",
               "method": "bank_transfer", "reference": "ICBC 2026112500123", "received_at": "2026-11-25"}


class AllocationIn(StrictSchema):
    invoice_id = fields.UUID(required=True)
    amount = Money(required=True, positive=True)


class AllocationCreate(StrictSchema):
    allocations = fields.List(fields.Nested(AllocationIn), required=True, validate=validate.Length(1, 100))
    note = text(1000)

    example = {"allocations": [{"invoice_id": "6a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d", "amount": "100000.00"},
                               {"invoice_id": "7b2c3d4e-5f6a-4b7c-9d8e-0f1a2b3c4d5e", "amount": "13000.00"}]}

    @validates_schema
    def distinct(self, data, **kwargs):
        ids = [a["invoice_id"] for a in data["allocations"]]
        if len(set(ids)) != len(ids):
            raise ValidationError("an invoice is named twice: give one amount per invoice", "allocations")


class AllocationReverse(StrictSchema):
    reason = reason_field()

    example = {"reason": "applied to the wrong invoice"}


class AllocationOut(Schema):
    id = fields.UUID()
    receipt_id = fields.UUID()
    invoice_id = fields.UUID()
    invoice_number = fields.String(allow_none=True)
    amount = money_out()
    allocated_by = fields.UUID()
    allocated_at = fields.DateTime()
    note = fields.String(allow_none=True)
    reversed_by = fields.UUID(allow_none=True)
    reversed_at = fields.DateTime(allow_none=True)
    reversal_reason = fields.String(allow_none=True)


class ReceiptOut(Schema):
    id = fields.UUID(required=True)
    number = fields.String(metadata={"example": "RC-2026-000042"})
    customer_id = fields.UUID()
    owner_id = fields.UUID(allow_none=True)
    owner_team = fields.String(allow_none=True)
    region = fields.String(allow_none=True)
    amount = money_out()
    allocated_amount = money_out()
    unallocated_amount = money_out(metadata={"description": "the customer's credit until allocated"})
    currency = fields.String()
    method = fields.String()
    reference = fields.String(allow_none=True)
    received_at = fields.Date()
    note = fields.String(allow_none=True)
    status = fields.String(validate=validate.OneOf(("registered", "confirmed")))
    registered_by = fields.UUID()
    registered_at = fields.DateTime()
    confirmed_by = fields.UUID(allow_none=True)
    confirmed_at = fields.DateTime(allow_none=True)
    allocations = fields.List(fields.Nested(AllocationOut))


class ReceiptQuery(PageQuery):
    customer_id = fields.UUID(load_default=None)
    status = fields.String(load_default=None, validate=validate.OneOf(("registered", "confirmed")))
    unallocated = fields.Boolean(load_default=None, metadata={"description": "confirmed with money left"})


ReceiptPage = page_schema("ReceiptPage", ReceiptOut)


# -- statements, campaign, aging ---------------------------------------------------------------------
class StatementConfirm(StrictSchema):
    outcome = fields.String(required=True, validate=validate.OneOf(("confirmed", "disputed")))
    contact = text(200, metadata={"description": "who confirmed at the customer"})
    note = text(2000, metadata={"description": "required for a dispute: what is disputed"})

    example = {"outcome": "confirmed", "contact": "Li Wei, finance manager"}

    @validates_schema
    def disputes_say_why(self, data, **kwargs):
        if data["outcome"] == "disputed" and not (data.get("note") or "").strip():
            raise ValidationError("a dispute needs a note saying what the customer disputes", "note")


class StatementEntryOut(Schema):
    posted_at = fields.DateTime()
    kind = fields.String(validate=validate.OneOf(("invoice", "red_invoice", "receipt")))
    document_id = fields.UUID()
    number = fields.String(allow_none=True)
    amount = fields.String(metadata={"description": "signed: + invoice, − red invoice, − receipt"})


class StatementOut(Schema):
    customer_id = fields.UUID()
    customer_name = fields.String(allow_none=True)
    month = fields.String(metadata={"example": "2026-06"})
    period_start = fields.Date()
    period_end = fields.Date()
    final = fields.Boolean(metadata={"description": "the month has ended"})
    opening = fields.String()
    invoiced = money_out()
    red = money_out()
    received = money_out()
    closing = fields.String(metadata={"description": "opening + invoiced − red − received; the next opening"})
    receivable = fields.String(metadata={"description": "open invoices at the month's end"})
    unallocated = money_out(metadata={"description": "receipts not yet allocated at the month's end"})
    entries = fields.List(fields.Nested(StatementEntryOut))
    confirmation = fields.Dict(allow_none=True)
    confirmation_history = fields.List(fields.Dict())


class CampaignOut(Schema):
    month = fields.String()
    final = fields.Boolean()
    customers = fields.Integer()
    confirmed = fields.Integer()
    disputed = fields.Integer()
    pending = fields.Integer()
    completion = fields.String(metadata={"example": "0.8500"})
    by_owner = fields.List(fields.Dict())
    items = fields.List(fields.Dict())


class AgingQuery(PageQuery):
    """A page of the customers (the largest totals first); totals and DSO are over all of them."""
    as_of = fields.Date(load_default=None, metadata={"description": "default: today (Asia/Shanghai)"})
    customer_id = fields.UUID(load_default=None)


class AgingBuckets(Schema):
    current = money_out()
    days_1_30 = money_out()
    days_31_60 = money_out()
    days_61_90 = money_out()
    days_over_90 = money_out()
    total = money_out()


class AgingCustomer(AgingBuckets):
    customer_id = fields.UUID()
    name = fields.String(allow_none=True)
    owner_id = fields.UUID(allow_none=True)
    owner_team = fields.String(allow_none=True)
    region = fields.String(allow_none=True)
    oldest_due_date = fields.Date(allow_none=True)


class AgingOut(Schema):
    as_of = fields.Date()
    totals = fields.Nested(AgingBuckets)
    dso = fields.String(allow_none=True, metadata={"description": "days sales outstanding over dso_days"})
    dso_days = fields.Integer()
    customer_count = fields.Integer(metadata={"description": "customers with an open item (all pages)"})
    customers = fields.List(fields.Nested(AgingCustomer), metadata={
        "description": "a page: the customers with the largest totals (then by id), `limit` of them"})
    next_cursor = fields.String(allow_none=True, metadata={"description": "the next page's `cursor`, or null"})


class BillingApi:
    # -- credit (FR-63–FR-66) ------------------------------------------------------------------
    @api("GET", f"{API}/customers/<uuid:customer_id>/credit", roles=CUSTOMER_READERS,
         response=CreditAccountOut, tags=["customers", "billing"], errors=(404, 503, 504))
    def get_customer_credit(self, call, customer_id):
        """The customer's credit account: limit, grade, exposure, available, reservations, history."""
        return self.billing.get_credit_account(actor=call.actor, customer_id=customer_id)

    @api("PUT", f"{API}/customers/<uuid:customer_id>/credit", roles=FINANCE, body=CreditLimitUpdate,
         response=CreditAccountOut, tags=["customers", "billing"], errors=(404, 503, 504))
    def set_customer_credit(self, call, customer_id):
        """Set the credit limit by hand, with a reason (finance, FR-66): it holds for the current
        quarter, then the quarterly formula's limit does again. The same limit again changes nothing."""
        return self.billing.set_credit_limit(request_id=call.request_id, actor=call.actor, customer_id=customer_id,
                                             limit=call.body["limit"], reason=call.body["reason"])

    @api("POST", f"{API}/credit/recompute", roles=RECOMPUTERS, body=RecomputeRequest, response=RecomputeOut,
         tags=["billing"], errors=(503, 504))
    def recompute_credit(self, call):
        """Recompute every customer's formula limit and grade for a quarter that has started (FR-64, FR-66)."""
        return self.billing.recompute_credit(request_id=call.request_id, actor=call.actor,
                                             quarter=call.body["quarter"])

    # -- invoices (FR-81–FR-83, FR-95) ---------------------------------------------------------
    @api("POST", f"{API}/invoices", roles=INVOICE_CREATORS, body=InvoiceCreate, response=InvoiceOut, status=201,
         locates=True, tags=["billing"], errors=(409, 503, 504))
    def create_invoice(self, call):
        """A draft invoice for the issued, not yet invoiced lines of the deliveries (FR-81); 409
        GOODS_NOT_ISSUED, ALREADY_INVOICED, TAX_DETAILS_MISSING."""
        body = plain(call.body)
        invoice = self.billing.create_invoice(request_id=call.request_id, actor=call.actor,
                                              delivery_ids=body["delivery_ids"], kind=body["kind"],
                                              remarks=body.get("remarks"))
        return created(invoice, location=f"{API}/invoices/{invoice['id']}")

    @api("GET", f"{API}/invoices", roles=BILLING_READERS, query=InvoiceQuery, response=InvoicePage,
         tags=["billing"], errors=(503, 504))
    def list_invoices(self, call):
        """List invoices (red-letter ones too), filtered, newest first."""
        query = plain(call.query)
        filters = {name: query[name] for name in INVOICE_FILTERS if query.get(name) is not None}
        return self.billing.list_invoices(actor=call.actor, filters=filters, limit=query["limit"],
                                          cursor=query["cursor"])

    @api("GET", f"{API}/invoices/<uuid:invoice_id>", roles=BILLING_READERS, response=InvoiceOut, tags=["billing"],
         errors=(404, 503, 504))
    def get_invoice(self, call, invoice_id):
        """One invoice with its lines, red-letter invoices and allocations."""
        return self.billing.get_invoice(actor=call.actor, invoice_id=invoice_id)

    @api("POST", f"{API}/invoices/<uuid:invoice_id>/certify", roles=CERTIFIERS, response=InvoiceOut,
         tags=["billing"], errors=(404, 503, 504))
    def certify_invoice(self, call, invoice_id):
        """The sales manager certifies a draft invoice (FR-82)."""
        return self.billing.certify_invoice(request_id=call.request_id, actor=call.actor, invoice_id=invoice_id)

    @api("POST", f"{API}/invoices/<uuid:invoice_id>/issue", roles=FINANCE, response=InvoiceOut, tags=["billing"],
         errors=(404, 503, 504))
    def issue_invoice(self, call, invoice_id):
        """Finance issues a certified invoice: number, due date; it is immutable from then on."""
        return self.billing.issue_invoice(request_id=call.request_id, actor=call.actor, invoice_id=invoice_id)

    @api("POST", f"{API}/invoices/<uuid:invoice_id>/cancel", roles=INVOICE_CANCELLERS, body=Cancel,
         response=InvoiceOut, tags=["billing"], errors=(404, 503, 504))
    def cancel_invoice(self, call, invoice_id):
        """Withdraw a draft or certified invoice (never an issued one); its lines can be invoiced again."""
        return self.billing.cancel_invoice(request_id=call.request_id, actor=call.actor, invoice_id=invoice_id,
                                           reason=call.body["reason"])

    @api("POST", f"{API}/invoices/<uuid:invoice_id>/reverse", roles=FINANCE, body=InvoiceReverse,
         response=InvoiceOut, status=201, locates=True, tags=["billing"], errors=(404, 503, 504))
    def reverse_invoice(self, call, invoice_id):
        """A red-letter invoice reversing all or part of an issued invoice, linked to it (FR-95);
        never above what is left of it (409 REVERSAL_EXCEEDS_ORIGINAL)."""
        body = plain(call.body)
        red = self.billing.reverse_invoice(request_id=call.request_id, actor=call.actor, invoice_id=invoice_id,
                                           reason=body["reason"], lines=body.get("lines"))
        return created(red, location=f"{API}/invoices/{red['id']}")

    # -- receipts and allocation (FR-84–FR-86) ---------------------------------------------------
    @api("POST", f"{API}/receipts", roles=RECEIPT_RECORDERS, body=ReceiptCreate, response=ReceiptOut, status=201,
         locates=True, tags=["billing"], errors=(404, 503, 504))
    def record_receipt(self, call):
        """Register money received from a customer (FR-84, FR-85): `registered` until finance confirms."""
        receipt = self.billing.record_receipt(request_id=call.request_id, actor=call.actor,
                                              receipt=plain(call.body))
        return created(receipt, location=f"{API}/receipts/{receipt['id']}")

    @api("GET", f"{API}/receipts", roles=BILLING_READERS, query=ReceiptQuery, response=ReceiptPage,
         tags=["billing"], errors=(503, 504))
    def list_receipts(self, call):
        """List receipts, filtered, newest first."""
        query = plain(call.query)
        filters = {name: query[name] for name in ("customer_id", "status", "unallocated")
                   if query.get(name) is not None}
        return self.billing.list_receipts(actor=call.actor, filters=filters, limit=query["limit"],
                                          cursor=query["cursor"])

    @api("GET", f"{API}/receipts/<uuid:receipt_id>", roles=BILLING_READERS, response=ReceiptOut, tags=["billing"],
         errors=(404, 503, 504))
    def get_receipt(self, call, receipt_id):
        """One receipt with its allocations."""
        return self.billing.get_receipt(actor=call.actor, receipt_id=receipt_id)

    @api("POST", f"{API}/receipts/<uuid:receipt_id>/confirm", roles=FINANCE, response=ReceiptOut,
         tags=["billing"], errors=(404, 503, 504))
    def confirm_receipt(self, call, receipt_id):
        """Finance confirms a registered receipt (FR-84)."""
        return self.billing.confirm_receipt(request_id=call.request_id, actor=call.actor, receipt_id=receipt_id)

    @api("POST", f"{API}/receipts/<uuid:receipt_id>/allocations", roles=ALLOCATORS, body=AllocationCreate,
         response=ReceiptOut, tags=["billing"], errors=(404, 503, 504))
    def allocate_receipt(self, call, receipt_id):
        """Allocate (核销) a confirmed receipt to invoices in any amounts (FR-86): never more than the
        receipt's unallocated amount nor an invoice's open amount (409 OVER_ALLOCATION)."""
        body = plain(call.body)
        return self.billing.allocate_receipt(request_id=call.request_id, actor=call.actor, receipt_id=receipt_id,
                                             allocations=body["allocations"], note=body.get("note"))

    @api("POST", f"{API}/receipts/<uuid:receipt_id>/allocations/<uuid:allocation_id>/reverse", roles=FINANCE,
         body=AllocationReverse, response=ReceiptOut, tags=["billing"], errors=(404, 503, 504))
    def reverse_allocation(self, call, receipt_id, allocation_id):
        """Undo an allocation, with a reason; the amount is the customer's unallocated credit again."""
        return self.billing.reverse_allocation(request_id=call.request_id, actor=call.actor, receipt_id=receipt_id,
                                               allocation_id=allocation_id, reason=call.body["reason"])

    # -- statements (FR-87–FR-89) ------------------------------------------------------------------
    @api("GET", f"{API}/customers/<uuid:customer_id>/statements/<month>", roles=BILLING_READERS,
         response=StatementOut, tags=["customers", "billing"], errors=(404, 422, 503, 504))
    def get_statement(self, call, customer_id, month):
        """The customer's statement for a month (YYYY-MM, Asia/Shanghai): opening, invoices, red
        invoices, receipts, closing (= the next month's opening), and its confirmation."""
        return self.billing.get_statement(actor=call.actor, customer_id=customer_id, month=month_of(month))

    @api("POST", f"{API}/customers/<uuid:customer_id>/statements/<month>/confirm", roles=STATEMENT_CONFIRMERS,
         body=StatementConfirm, response=StatementOut, tags=["customers", "billing"], errors=(404, 503, 504))
    def confirm_statement(self, call, customer_id, month):
        """Record the customer's confirmation (or dispute, with a note) of an ended month's statement."""
        body = plain(call.body)
        return self.billing.confirm_statement(request_id=call.request_id, actor=call.actor, customer_id=customer_id,
                                              month=month_of(month), outcome=body["outcome"],
                                              contact=body.get("contact"), note=body.get("note"))

    @api("GET", f"{API}/statements/campaigns/<month>", roles=BILLING_READERS, response=CampaignOut,
         tags=["billing"], errors=(422, 503, 504))
    def get_confirmation_campaign(self, call, month):
        """The end-of-June / end-of-December balance confirmation (FR-89): per customer and per owner."""
        return self.billing.get_confirmation_campaign(actor=call.actor, month=month_of(month))

    # -- receivables (FR-91) ---------------------------------------------------------------------------
    @api("GET", f"{API}/reports/receivables-aging", roles=BILLING_READERS, query=AgingQuery, response=AgingOut,
         tags=["reports", "billing"], errors=(503, 504))
    def receivables_aging(self, call):
        """Open receivables by days past due (current, 1–30, 31–60, 61–90, over 90) and DSO, in total;
        and per customer, a page of them — the largest totals first — with `customer_count` and
        `next_cursor` (issue 11: at scale there are tens of thousands)."""
        query = plain(call.query)
        return self.billing.get_receivables_aging(actor=call.actor, as_of=query.get("as_of"),
                                                  customer_id=query.get("customer_id"), limit=query["limit"],
                                                  cursor=query.get("cursor"))
