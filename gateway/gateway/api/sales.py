"""API.md "Quotes, contracts, orders", "Returns and loans" and targets ("Org, users, targets"):
the order service's endpoints. Every method only says which RPC to call; the order service
checks again everything these schemas check, and the business rules besides (whose turn to
approve, row-level access, the saga). Quotas (FR-67) have endpoints too, though API.md does not
list them yet."""
from marshmallow import Schema, fields, validate, validates_schema, ValidationError

from gateway.auth import EVERYONE
from gateway.http import api, created, plain
from gateway.schemas import PageQuery, page_schema, text
from shared.validation import StrictSchema

API = "/api/v1"

# -- who may call what (API.md "Roles"); the order service checks turns and rows itself ------------
SELLERS = frozenset({"admin", "general_manager", "sales_director", "marketing_director", "sales_manager",
                     "sales_rep", "order_desk", "integration"})
QUOTE_READERS = SELLERS | {"finance", "product_manager"}
APPROVERS = frozenset({"admin", "general_manager", "sales_director", "marketing_director", "sales_manager",
                       "product_manager"})
ORDER_READERS = EVERYONE
CREDIT_RELEASERS = frozenset({"finance", "sales_director"})
CONTRACT_SIGNERS = SELLERS - {"integration"}
CONTRACT_REGISTRARS = frozenset({"admin", "order_desk", "sales_director", "general_manager"})
DIRECTORS = frozenset({"admin", "general_manager", "sales_director", "marketing_director"})
RETURN_WRITERS = SELLERS | {"service_engineer"}
RETURN_READERS = RETURN_WRITERS | {"product_manager", "warehouse", "finance"}
WAREHOUSE = frozenset({"warehouse"})
LOAN_WRITERS = SELLERS - {"integration"}
LOAN_APPROVERS = frozenset({"admin", "general_manager", "sales_director", "sales_manager"})
LOAN_READERS = LOAN_WRITERS | {"warehouse", "finance"}
TARGET_WRITERS = DIRECTORS | {"sales_manager"}
TARGET_READERS = TARGET_WRITERS | {"sales_rep", "order_desk"}
QUOTA_READERS = DIRECTORS | {"sales_manager", "sales_rep", "order_desk"}

ORDER_STATUSES = ("draft", "confirming", "credit_hold", "confirmed", "partially_shipped", "shipped", "invoiced",
                  "paid", "closed", "cancelled")
QUOTE_STATUSES = ("draft", "pending_approval", "approved", "sent", "accepted", "rejected", "expired", "cancelled")
CONTRACT_STATUSES = ("draft", "in_approval", "approved", "signed", "effective", "completed", "terminated")
RETURN_STATUSES = ("requested", "approved", "received", "rejected")
LOAN_STATUSES = ("pending_approval", "approved", "rejected", "lent", "returned", "converted", "closed")
SCOPES = ("rep", "team", "region", "product", "customer")
ERRORS = (404, 409, 503, 504)


def money(required=False, minimum="0.01", **kwargs):
    """A decimal amount, sent as a string ("1234.50"); VAT included."""
    from decimal import Decimal

    low, high = Decimal(minimum), Decimal("9999999999999999.99")

    def in_range(value):
        if not low <= value <= high:
            raise ValidationError(f"must be between {low} and {high}")

    return fields.Decimal(required=required, places=2, as_string=True, allow_nan=False, validate=in_range,
                          metadata=dict({"type": "string", "pattern": r"^[0-9]+(\.[0-9]{1,2})?$",
                                         "example": "1234.50"}, **kwargs.pop("metadata", {})),
                          **kwargs)


def quantity():
    return fields.Integer(required=True, strict=True, validate=validate.Range(1, 1_000_000))




# -- request schemas ---------------------------------------------------------------------------------
class PricedLineIn(StrictSchema):
    sku = fields.String(required=True, validate=validate.Length(1, 64))
    quantity = quantity()
    unit_price = money(allow_none=True, metadata={"description": "VAT included; default: the list price"})


class SkuLineIn(StrictSchema):
    sku = fields.String(required=True, validate=validate.Length(1, 64))
    quantity = quantity()


class QuoteCreate(StrictSchema):
    customer_id = fields.UUID(required=True)
    lines = fields.List(fields.Nested(PricedLineIn), required=True, validate=validate.Length(1, 200))
    valid_until = fields.Date(required=True)
    notes = text(4000, metadata={"description": "negotiation terms (FR-49)"})

    example = {"customer_id": "0b7d5b8e-2a49-4c1e-9a57-5c4a0f0d9e11", "valid_until": "2026-12-31",
               "lines": [{"sku": "PUMP-200", "quantity": 10, "unit_price": "79.00"}, {"sku": "VALVE-50", "quantity": 2}],
               "notes": "price held for orders placed before year end"}


class QuoteUpdate(StrictSchema):
    lines = fields.List(fields.Nested(PricedLineIn), validate=validate.Length(1, 200))
    valid_until = fields.Date()
    notes = text(4000)

    example = {"lines": [{"sku": "PUMP-200", "quantity": 12, "unit_price": "79.00"}]}

    @validates_schema
    def not_empty(self, data, **kwargs):
        if not data:
            raise ValidationError("name at least one of lines, valid_until, notes", "_schema")


class Decision(StrictSchema):
    comment = text(2000)
    content_hash = fields.String(allow_none=True, validate=validate.Regexp(r"^[0-9a-f]{64}$"), metadata={
        "description": "the content_hash of the document as you read it: refused (409 APPROVAL_STALE) if it "
                       "changed since"})

    example = {"comment": "agreed: strategic customer", "content_hash": "9f2c" + "0" * 60}


class Comment(StrictSchema):
    comment = text(2000)

    example = {"comment": "the customer chose another supplier"}


class OptionalReason(StrictSchema):
    reason = text(2000)

    example = {"reason": "customer withdrew the order"}


class RequiredReason(StrictSchema):
    reason = text(2000, required=True)

    example = {"reason": "advance payment received"}


class OrderCreate(StrictSchema):
    customer_id = fields.UUID(required=True)
    quote_id = fields.UUID(allow_none=True, metadata={"description": "an approved quote covering prices below list"})
    lines = fields.List(fields.Nested(PricedLineIn), required=True, validate=validate.Length(1, 200))
    warehouse = text(64)

    example = {"customer_id": "0b7d5b8e-2a49-4c1e-9a57-5c4a0f0d9e11",
               "lines": [{"sku": "PUMP-200", "quantity": 10}], "warehouse": "WH-SZ"}


class ContractTerms(StrictSchema):
    service_terms = text(4000, metadata={"description": "free modifications, or how services are charged (FR-51)"})
    payment_terms = text(4000)
    delivery_terms = text(4000)

    example = {"service_terms": "two free design changes, then CNY 500 each", "payment_terms": "30 days net",
               "delivery_terms": "EXW Suzhou within 10 working days"}


class Signature(StrictSchema):
    party = fields.String(required=True, validate=validate.OneOf(("customer", "company")))
    signatory = text(200, metadata={"description": "the customer's signatory (required for the customer)"})

    example = {"party": "customer", "signatory": "Li Wei, purchasing head"}


class ReturnCreate(StrictSchema):
    delivery_id = fields.UUID(required=True)
    lines = fields.List(fields.Nested(SkuLineIn), required=True, validate=validate.Length(1, 200))
    reason = text(2000, required=True)

    example = {"delivery_id": "5a1d4c33-8f0e-4a4b-9d7e-3b9a2f6c1e22", "lines": [{"sku": "PUMP-200", "quantity": 2}],
               "reason": "damaged in transit"}


class LoanCreate(StrictSchema):
    customer_id = fields.UUID(required=True)
    lines = fields.List(fields.Nested(SkuLineIn), required=True, validate=validate.Length(1, 200))
    due_date = fields.Date(required=True)
    warehouse = text(64)

    example = {"customer_id": "0b7d5b8e-2a49-4c1e-9a57-5c4a0f0d9e11", "lines": [{"sku": "PUMP-200", "quantity": 1}],
               "due_date": "2026-12-31", "warehouse": "WH-SZ"}


class LoanLines(StrictSchema):
    lines = fields.List(fields.Nested(SkuLineIn), required=True, validate=validate.Length(1, 200))

    example = {"lines": [{"sku": "PUMP-200", "quantity": 1}]}


class LoanConversion(StrictSchema):
    lines = fields.List(fields.Nested(PricedLineIn), required=True, validate=validate.Length(1, 200))

    example = {"lines": [{"sku": "PUMP-200", "quantity": 1}]}


class TargetCreate(StrictSchema):
    period = fields.String(required=True, validate=validate.Regexp(
        r"^[0-9]{4}(-Q[1-4]|-(0[1-9]|1[0-2]))?$", error="a year (2026), quarter (2026-Q4) or month (2026-10)"))
    scope = fields.String(required=True, validate=validate.OneOf(SCOPES))
    scope_id = text(100, required=True, metadata={
        "description": "rep: staff id; team: team name; region: region name; product: SKU; customer: id"})
    amount = money(required=True, minimum="0.00")
    parent_id = fields.UUID(allow_none=True, metadata={"description": "the broader target this one breaks down"})

    example = {"period": "2026-Q4", "scope": "team", "scope_id": "east-1", "amount": "3000000.00",
               "parent_id": None}


class QuotaCreate(StrictSchema):
    period = fields.String(required=True, validate=validate.Regexp(r"^[0-9]{4}-(0[1-9]|1[0-2])$",
                                                                   error="a month, YYYY-MM"))
    customer_id = fields.UUID(allow_none=True)
    market = text(100)
    sku = fields.String(required=True, validate=validate.Length(1, 64))
    quantity = fields.Integer(required=True, strict=True, validate=validate.Range(0, 100_000_000))

    example = {"period": "2026-10", "customer_id": "0b7d5b8e-2a49-4c1e-9a57-5c4a0f0d9e11", "sku": "PUMP-200",
               "quantity": 500}

    @validates_schema
    def customer_or_market(self, data, **kwargs):
        if (data.get("customer_id") is None) == (data.get("market") is None):
            raise ValidationError("name either customer_id or market", "customer_id")


class QuoteQuery(PageQuery):
    customer_id = fields.UUID(load_default=None)
    status = fields.String(load_default=None, validate=validate.OneOf(QUOTE_STATUSES))


class OrderQuery(PageQuery):
    customer_id = fields.UUID(load_default=None)
    status = fields.String(load_default=None, validate=validate.OneOf(ORDER_STATUSES))
    quote_id = fields.UUID(load_default=None)
    from_ = fields.Date(load_default=None, data_key="from", metadata={"description": "created on or after"})
    to = fields.Date(load_default=None, metadata={"description": "created on or before"})


class ContractQuery(PageQuery):
    customer_id = fields.UUID(load_default=None)
    status = fields.String(load_default=None, validate=validate.OneOf(CONTRACT_STATUSES))


class ReturnQuery(PageQuery):
    order_id = fields.UUID(load_default=None)
    delivery_id = fields.UUID(load_default=None)
    status = fields.String(load_default=None, validate=validate.OneOf(RETURN_STATUSES))


class LoanQuery(PageQuery):
    customer_id = fields.UUID(load_default=None)
    status = fields.String(load_default=None, validate=validate.OneOf(LOAN_STATUSES))


class TargetQuery(PageQuery):
    period = fields.String(load_default=None, validate=validate.Regexp(
        r"^[0-9]{4}(-Q[1-4]|-(0[1-9]|1[0-2]))?$", error="a year (2026), quarter (2026-Q4) or month (2026-10)"))
    scope = fields.String(load_default=None, validate=validate.OneOf(SCOPES))
    scope_id = text(100, load_default=None)
    status = fields.String(load_default=None, validate=validate.OneOf(("draft", "published")))
    parent_id = fields.UUID(load_default=None)


class QuotaQuery(PageQuery):
    period = fields.String(load_default=None, validate=validate.Regexp(r"^[0-9]{4}-(0[1-9]|1[0-2])$",
                                                                      error="a month, YYYY-MM"))
    customer_id = fields.UUID(load_default=None)
    market = text(100, load_default=None)
    sku = text(64, load_default=None)


# -- answer schemas (documentation: the services' answers pass through) -------------------------------
class ApprovalStepOut(Schema):
    round = fields.Integer()
    seq = fields.Integer()
    relation = fields.String(metadata={"description": "direct_manager, division_head, marketing_director, "
                                                      "product_manager"})
    role = fields.String()
    reason = fields.String()
    status = fields.String(metadata={"description": "waiting, pending (its turn), approved, rejected, voided"})
    approver_id = fields.UUID(allow_none=True)
    approver_name = fields.String(allow_none=True)
    approver_role = fields.String(allow_none=True)
    assigned_at = fields.DateTime(allow_none=True)
    decided_by = fields.UUID(allow_none=True)
    decided_at = fields.DateTime(allow_none=True)
    comment = fields.String(allow_none=True)
    content_hash = fields.String(allow_none=True)


class Snapshot(Schema):
    customer_id = fields.UUID(required=True)
    customer_name = fields.String(allow_none=True)
    owner_id = fields.UUID(allow_none=True)
    owner_team = fields.String(allow_none=True)
    region = fields.String(allow_none=True)


class QuoteLineOut(Schema):
    line_no = fields.Integer()
    sku = fields.String()
    name = fields.String()
    quantity = fields.Integer()
    unit_price = fields.String(metadata={"example": "79.00"})
    list_price = fields.String()
    floor_price = fields.String()
    vat_rate = fields.String(metadata={"example": "0.13"})
    amount = fields.String()


class QuoteOut(Snapshot):
    id = fields.UUID(required=True)
    number = fields.String(required=True, metadata={"example": "QT-2026-000042"})
    status = fields.String(required=True, validate=validate.OneOf(QUOTE_STATUSES))
    valid_until = fields.Date()
    notes = fields.String(allow_none=True)
    total = fields.String()
    major = fields.Boolean()
    content_hash = fields.String(metadata={"description": "what the approvals are bound to"})
    lines = fields.List(fields.Nested(QuoteLineOut))
    required_approvals = fields.List(fields.Nested(ApprovalStepOut), metadata={"description": "the current chain"})
    approvals = fields.List(fields.Nested(ApprovalStepOut), metadata={"description": "every step ever, voided included"})
    order_id = fields.UUID(allow_none=True)
    contract_id = fields.UUID(allow_none=True)
    created_at = fields.DateTime()
    submitted_at = fields.DateTime(allow_none=True)
    approved_at = fields.DateTime(allow_none=True)
    sent_at = fields.DateTime(allow_none=True)
    accepted_at = fields.DateTime(allow_none=True)


class ContractOut(Snapshot):
    id = fields.UUID(required=True)
    number = fields.String(required=True, metadata={"example": "CT-2026-000007"})
    quote_id = fields.UUID()
    order_id = fields.UUID(allow_none=True)
    status = fields.String(required=True, validate=validate.OneOf(CONTRACT_STATUSES))
    total = fields.String()
    lines = fields.List(fields.Dict())
    terms = fields.Dict()
    major = fields.Boolean()
    valid = fields.Boolean(metadata={"description": "FR-58: signed by both parties"})
    required_approvals = fields.List(fields.Nested(ApprovalStepOut))
    approvals = fields.List(fields.Nested(ApprovalStepOut))
    customer_signatory = fields.String(allow_none=True)
    customer_signed_at = fields.DateTime(allow_none=True)
    company_signed_by = fields.UUID(allow_none=True)
    company_signed_at = fields.DateTime(allow_none=True)
    signed_at = fields.DateTime(allow_none=True)
    effective_at = fields.DateTime(allow_none=True)


class OrderLineOut(Schema):
    id = fields.UUID()
    line_no = fields.Integer()
    sku = fields.String()
    quantity = fields.Integer()
    unit_price = fields.String()
    vat_rate = fields.String()
    amount = fields.String()
    shipped_quantity = fields.Integer()
    returned_quantity = fields.Integer()
    invoiced_quantity = fields.Integer()
    invoiced_amount = fields.String()


class SagaOut(Schema):
    kind = fields.String()
    state = fields.String()
    stock_status = fields.String()
    credit_status = fields.String()


class OrderOut(Snapshot):
    id = fields.UUID(required=True)
    number = fields.String(required=True, metadata={"example": "SO-2026-000123"})
    kind = fields.String(validate=validate.OneOf(("sale", "replacement", "loan_conversion")))
    status = fields.String(required=True, validate=validate.OneOf(ORDER_STATUSES))
    quote_id = fields.UUID(allow_none=True)
    contract_id = fields.UUID(allow_none=True)
    loan_id = fields.UUID(allow_none=True)
    warehouse = fields.String(allow_none=True)
    total = fields.String()
    returned_amount = fields.String()
    invoiced_amount = fields.String()
    lines = fields.List(fields.Nested(OrderLineOut))
    saga = fields.Nested(SagaOut, allow_none=True)
    created_at = fields.DateTime()
    confirmed_at = fields.DateTime(allow_none=True)
    credit_held_at = fields.DateTime(allow_none=True)
    first_shipped_at = fields.DateTime(allow_none=True)
    shipped_at = fields.DateTime(allow_none=True)
    invoiced_at = fields.DateTime(allow_none=True)
    paid_at = fields.DateTime(allow_none=True)
    cancelled_at = fields.DateTime(allow_none=True)


class ReturnOut(Schema):
    id = fields.UUID(required=True)
    number = fields.String(required=True, metadata={"example": "RR-2026-000003"})
    delivery_id = fields.UUID()
    order_id = fields.UUID()
    customer_id = fields.UUID()
    status = fields.String(validate=validate.OneOf(RETURN_STATUSES))
    reason = fields.String()
    lines = fields.List(fields.Dict())
    approvals = fields.List(fields.Nested(ApprovalStepOut))
    received_at = fields.DateTime(allow_none=True)


class LoanOut(Snapshot):
    id = fields.UUID(required=True)
    number = fields.String(required=True, metadata={"example": "LN-2026-000011"})
    status = fields.String(validate=validate.OneOf(LOAN_STATUSES))
    due_date = fields.Date()
    overdue = fields.Boolean()
    lines = fields.List(fields.Dict(), metadata={"description": "quantity, issued, returned, converted, out"})
    approvals = fields.List(fields.Nested(ApprovalStepOut))
    orders = fields.List(fields.UUID(), metadata={"description": "orders raised by conversions (FR-99)"})


class TargetOut(Schema):
    id = fields.UUID(required=True)
    period = fields.String()
    scope = fields.String(validate=validate.OneOf(SCOPES))
    scope_id = fields.String()
    amount = fields.String()
    parent_id = fields.UUID(allow_none=True)
    status = fields.String(validate=validate.OneOf(("draft", "published")))
    children_total = fields.String(allow_none=True)


class QuotaOut(Schema):
    id = fields.UUID(required=True)
    period = fields.String()
    customer_id = fields.UUID(allow_none=True)
    market = fields.String(allow_none=True)
    sku = fields.String()
    quantity = fields.Integer()
    consumed = fields.Integer()
    available = fields.Integer()


QuotePage = page_schema("QuotePage", QuoteOut)
ContractPage = page_schema("ContractPage", ContractOut)
OrderPage = page_schema("OrderPage", OrderOut)
ReturnPage = page_schema("ReturnPage", ReturnOut)
LoanPage = page_schema("LoanPage", LoanOut)
TargetPage = page_schema("TargetPage", TargetOut)
QuotaPage = page_schema("QuotaPage", QuotaOut)
REQUEST_SCHEMAS = (QuoteCreate, QuoteUpdate, Decision, Comment, OptionalReason, RequiredReason, OrderCreate,
                   ContractTerms, Signature, ReturnCreate, LoanCreate, LoanLines, LoanConversion, TargetCreate,
                   QuotaCreate)


def _filters(query, names):
    query = plain(query)
    if "from_" in query:
        query["from"] = query.pop("from_")
    return {name: query[name] for name in names if query.get(name) is not None}, query["limit"], query["cursor"]


class SalesApi:
    # -- quotes ------------------------------------------------------------------------------------
    @api("POST", f"{API}/quotes", roles=SELLERS, body=QuoteCreate, response=QuoteOut, status=201, locates=True,
         tags=["quotes"], errors=ERRORS)
    def create_quote(self, call):
        """Draft a quote priced from the price list (FR-42, FR-43); lines without unit_price are at list."""
        quote = self.order.create_quote(request_id=call.request_id, actor=call.actor, quote=plain(call.body))
        return created(quote, location=f"{API}/quotes/{quote['id']}")

    @api("GET", f"{API}/quotes", roles=QUOTE_READERS, query=QuoteQuery, response=QuotePage, tags=["quotes"],
         errors=(503, 504))
    def list_quotes(self, call):
        """List the quotes the caller may see."""
        filters, limit, cursor = _filters(call.query, ("customer_id", "status"))
        return self.order.list_quotes(actor=call.actor, filters=filters, limit=limit, cursor=cursor)

    @api("GET", f"{API}/quotes/<uuid:quote_id>", roles=QUOTE_READERS, response=QuoteOut, tags=["quotes"],
         errors=(404, 503, 504))
    def get_quote(self, call, quote_id):
        """One quote with its lines and its whole approval trail."""
        return self.order.get_quote(actor=call.actor, quote_id=quote_id)

    @api("PATCH", f"{API}/quotes/<uuid:quote_id>", roles=SELLERS, body=QuoteUpdate, response=QuoteOut,
         tags=["quotes"], errors=ERRORS)
    def update_quote(self, call, quote_id):
        """Edit a quote: any change of its content voids its approvals and returns it to draft."""
        return self.order.update_quote(request_id=call.request_id, actor=call.actor, quote_id=quote_id,
                                       changes=plain(call.body))

    @api("POST", f"{API}/quotes/<uuid:quote_id>/submit", roles=SELLERS, response=QuoteOut, tags=["quotes"],
         errors=ERRORS)
    def submit_quote(self, call, quote_id):
        """Submit: approved at once within the requester's authority, else pending_approval with the
        approvals it needs (FR-45-FR-48); the customer needs a valid review (FR-14)."""
        return self.order.submit_quote(request_id=call.request_id, actor=call.actor, quote_id=quote_id)

    @api("POST", f"{API}/quotes/<uuid:quote_id>/approve", roles=APPROVERS, body=Decision, response=QuoteOut,
         tags=["quotes"], errors=ERRORS)
    def approve_quote(self, call, quote_id):
        """Approve the current step (only its approver: 403 NOT_YOUR_TURN otherwise)."""
        return self.order.approve_quote(request_id=call.request_id, actor=call.actor, quote_id=quote_id,
                                        **plain(call.body))

    @api("POST", f"{API}/quotes/<uuid:quote_id>/reject", roles=APPROVERS, body=Decision, response=QuoteOut,
         tags=["quotes"], errors=ERRORS)
    def reject_quote(self, call, quote_id):
        """Reject the current step: the quote returns to draft, the trail keeps who and why."""
        return self.order.reject_quote(request_id=call.request_id, actor=call.actor, quote_id=quote_id,
                                       **plain(call.body))

    @api("POST", f"{API}/quotes/<uuid:quote_id>/send", roles=SELLERS, response=QuoteOut, tags=["quotes"],
         errors=ERRORS)
    def send_quote(self, call, quote_id):
        """Mark the approved quote as sent to the customer."""
        return self.order.send_quote(request_id=call.request_id, actor=call.actor, quote_id=quote_id)

    @api("POST", f"{API}/quotes/<uuid:quote_id>/accept", roles=SELLERS, response=QuoteOut, tags=["quotes"],
         errors=ERRORS)
    def accept_quote(self, call, quote_id):
        """The customer accepts: creates the order (and a contract when the amount needs one)."""
        return self.order.accept_quote(request_id=call.request_id, actor=call.actor, quote_id=quote_id)

    @api("POST", f"{API}/quotes/<uuid:quote_id>/decline", roles=SELLERS, body=Comment, response=QuoteOut,
         tags=["quotes"], errors=ERRORS)
    def decline_quote(self, call, quote_id):
        """The customer declines: the quote is rejected."""
        return self.order.decline_quote(request_id=call.request_id, actor=call.actor, quote_id=quote_id,
                                        comment=call.body.get("comment"))

    @api("POST", f"{API}/quotes/<uuid:quote_id>/cancel", roles=SELLERS, body=OptionalReason, response=QuoteOut,
         tags=["quotes"], errors=ERRORS)
    def cancel_quote(self, call, quote_id):
        """Cancel an open quote."""
        return self.order.cancel_quote(request_id=call.request_id, actor=call.actor, quote_id=quote_id,
                                       reason=call.body.get("reason"))

    # -- contracts ----------------------------------------------------------------------------------
    @api("GET", f"{API}/contracts", roles=QUOTE_READERS, query=ContractQuery, response=ContractPage,
         tags=["contracts"], errors=(503, 504))
    def list_contracts(self, call):
        """List the contracts the caller may see."""
        filters, limit, cursor = _filters(call.query, ("customer_id", "status"))
        return self.order.list_contracts(actor=call.actor, filters=filters, limit=limit, cursor=cursor)

    @api("GET", f"{API}/contracts/<uuid:contract_id>", roles=QUOTE_READERS, response=ContractOut,
         tags=["contracts"], errors=(404, 503, 504))
    def get_contract(self, call, contract_id):
        """One contract with its terms, approvals and signatures."""
        return self.order.get_contract(actor=call.actor, contract_id=contract_id)

    @api("PATCH", f"{API}/contracts/<uuid:contract_id>", roles=SELLERS, body=ContractTerms, response=ContractOut,
         tags=["contracts"], errors=ERRORS)
    def update_contract(self, call, contract_id):
        """Fill in a draft contract's terms (FR-51)."""
        return self.order.update_contract(request_id=call.request_id, actor=call.actor, contract_id=contract_id,
                                          terms=plain(call.body))

    @api("POST", f"{API}/contracts/<uuid:contract_id>/submit", roles=SELLERS, response=ContractOut,
         tags=["contracts"], errors=ERRORS + (422,))
    def submit_contract(self, call, contract_id):
        """Submit for the company's approval; incomplete terms answer 422 CONTRACT_INCOMPLETE (FR-56)."""
        return self.order.submit_contract(request_id=call.request_id, actor=call.actor, contract_id=contract_id)

    @api("POST", f"{API}/contracts/<uuid:contract_id>/approve", roles=APPROVERS, body=Decision,
         response=ContractOut, tags=["contracts"], errors=ERRORS)
    def approve_contract(self, call, contract_id):
        """Approve the current step (the sales head; the marketing director for a major contract)."""
        return self.order.approve_contract(request_id=call.request_id, actor=call.actor, contract_id=contract_id,
                                           **plain(call.body))

    @api("POST", f"{API}/contracts/<uuid:contract_id>/reject", roles=APPROVERS, body=Decision,
         response=ContractOut, tags=["contracts"], errors=ERRORS)
    def reject_contract(self, call, contract_id):
        """Reject: back to draft to be modified (FR-53)."""
        return self.order.reject_contract(request_id=call.request_id, actor=call.actor, contract_id=contract_id,
                                          **plain(call.body))

    @api("POST", f"{API}/contracts/<uuid:contract_id>/sign", roles=CONTRACT_SIGNERS, body=Signature,
         response=ContractOut, tags=["contracts"], errors=ERRORS)
    def sign_contract(self, call, contract_id):
        """Record a signature: the customer's, or the company's (general manager, sales director).
        Signed only with both (FR-58)."""
        return self.order.sign_contract(request_id=call.request_id, actor=call.actor, contract_id=contract_id,
                                        **plain(call.body))

    @api("POST", f"{API}/contracts/<uuid:contract_id>/register", roles=CONTRACT_REGISTRARS, response=ContractOut,
         tags=["contracts"], errors=ERRORS)
    def register_contract(self, call, contract_id):
        """Register the signed contract as effective (FR-55, FR-56)."""
        return self.order.register_contract(request_id=call.request_id, actor=call.actor, contract_id=contract_id)

    @api("POST", f"{API}/contracts/<uuid:contract_id>/terminate", roles=DIRECTORS, body=RequiredReason,
         response=ContractOut, tags=["contracts"], errors=ERRORS)
    def terminate_contract(self, call, contract_id):
        """Terminate a contract whose order is not confirmed (its draft order is cancelled)."""
        return self.order.terminate_contract(request_id=call.request_id, actor=call.actor, contract_id=contract_id,
                                             reason=call.body["reason"])

    # -- orders -------------------------------------------------------------------------------------
    @api("POST", f"{API}/orders", roles=SELLERS, body=OrderCreate, response=OrderOut, status=201, locates=True,
         tags=["orders"], errors=ERRORS)
    def place_order(self, call):
        """Place a draft order; prices below list need an approved quote (409 APPROVAL_REQUIRED)."""
        order = self.order.place_order(request_id=call.request_id, actor=call.actor, order=plain(call.body))
        return created(order, location=f"{API}/orders/{order['id']}")

    @api("GET", f"{API}/orders", roles=ORDER_READERS, query=OrderQuery, response=OrderPage, tags=["orders"],
         errors=(503, 504))
    def list_orders(self, call):
        """List the orders the caller may see, filtered."""
        filters, limit, cursor = _filters(call.query, ("customer_id", "status", "quote_id", "from", "to"))
        return self.order.list_orders(actor=call.actor, filters=filters, limit=limit, cursor=cursor)

    @api("GET", f"{API}/orders/<uuid:order_id>", roles=ORDER_READERS, response=OrderOut, tags=["orders"],
         errors=(404, 503, 504))
    def get_order(self, call, order_id):
        """One order with its lines, quantities shipped/returned/invoiced and its saga."""
        return self.order.get_order(actor=call.actor, order_id=order_id)

    @api("POST", f"{API}/orders/<uuid:order_id>/confirm", roles=SELLERS, response=OrderOut, tags=["orders"],
         errors=ERRORS)
    def confirm_order(self, call, order_id):
        """Confirm: stock and credit reserved → confirmed; credit refused → credit_hold; 409
        INSUFFICIENT_STOCK / QUOTA_EXCEEDED / CONTRACT_NOT_SIGNED."""
        return self.order.confirm_order(request_id=call.request_id, actor=call.actor, order_id=order_id)

    @api("POST", f"{API}/orders/<uuid:order_id>/release-credit-hold", roles=CREDIT_RELEASERS, body=RequiredReason,
         response=OrderOut, tags=["orders"], errors=ERRORS)
    def release_credit_hold(self, call, order_id):
        """Release a credit hold (finance, sales director): credit reserved beyond the limit, recorded."""
        return self.order.release_credit_hold(request_id=call.request_id, actor=call.actor, order_id=order_id,
                                              reason=call.body["reason"])

    @api("POST", f"{API}/orders/<uuid:order_id>/cancel", roles=SELLERS, body=OptionalReason, response=OrderOut,
         tags=["orders"], errors=ERRORS)
    def cancel_order(self, call, order_id):
        """Cancel (draft, credit_hold, or confirmed with nothing shipped): releases stock, credit and quota."""
        return self.order.cancel_order(request_id=call.request_id, actor=call.actor, order_id=order_id,
                                       reason=call.body.get("reason"))

    # -- returns ------------------------------------------------------------------------------------
    @api("POST", f"{API}/returns", roles=RETURN_WRITERS, body=ReturnCreate, response=ReturnOut, status=201,
         locates=True, tags=["returns"], errors=ERRORS)
    def request_return(self, call):
        """Request a return against a delivery's lines (FR-93); 409 RETURN_EXCEEDS_DELIVERED beyond
        what was delivered less returned."""
        body = plain(call.body)
        ret = self.order.request_return(request_id=call.request_id, actor=call.actor, delivery_id=body["delivery_id"],
                                        lines=body["lines"], reason=body["reason"])
        return created(ret, location=f"{API}/returns/{ret['id']}")

    @api("GET", f"{API}/returns", roles=RETURN_READERS, query=ReturnQuery, response=ReturnPage, tags=["returns"],
         errors=(503, 504))
    def list_returns(self, call):
        """List return requests."""
        filters, limit, cursor = _filters(call.query, ("order_id", "delivery_id", "status"))
        return self.order.list_returns(actor=call.actor, filters=filters, limit=limit, cursor=cursor)

    @api("GET", f"{API}/returns/<uuid:return_id>", roles=RETURN_READERS, response=ReturnOut, tags=["returns"],
         errors=(404, 503, 504))
    def get_return(self, call, return_id):
        """One return request."""
        return self.order.get_return(actor=call.actor, return_id=return_id)

    @api("POST", f"{API}/returns/<uuid:return_id>/approve", roles=frozenset({"product_manager"}), body=Comment,
         response=ReturnOut, tags=["returns"], errors=ERRORS)
    def approve_return(self, call, return_id):
        """The product manager approves the return (FR-94)."""
        return self.order.approve_return(request_id=call.request_id, actor=call.actor, return_id=return_id,
                                         comment=call.body.get("comment"))

    @api("POST", f"{API}/returns/<uuid:return_id>/reject", roles=frozenset({"product_manager"}), body=Comment,
         response=ReturnOut, tags=["returns"], errors=ERRORS)
    def reject_return(self, call, return_id):
        """The product manager rejects the return."""
        return self.order.reject_return(request_id=call.request_id, actor=call.actor, return_id=return_id,
                                        comment=call.body.get("comment"))

    @api("POST", f"{API}/returns/<uuid:return_id>/receive", roles=WAREHOUSE, response=ReturnOut, tags=["returns"],
         errors=ERRORS)
    def receive_return(self, call, return_id):
        """The warehouse receives the goods; billing raises the red-letter invoice (FR-95, FR-96)."""
        return self.order.receive_return(request_id=call.request_id, actor=call.actor, return_id=return_id)

    # -- loans --------------------------------------------------------------------------------------
    @api("POST", f"{API}/loans", roles=LOAN_WRITERS, body=LoanCreate, response=LoanOut, status=201, locates=True,
         tags=["loans"], errors=ERRORS)
    def request_loan(self, call):
        """Request a loan of trial goods: the direct manager and the division head approve (FR-98)."""
        loan = self.order.request_loan(request_id=call.request_id, actor=call.actor, loan=plain(call.body))
        return created(loan, location=f"{API}/loans/{loan['id']}")

    @api("GET", f"{API}/loans", roles=LOAN_READERS, query=LoanQuery, response=LoanPage, tags=["loans"],
         errors=(503, 504))
    def list_loans(self, call):
        """List loans."""
        filters, limit, cursor = _filters(call.query, ("customer_id", "status"))
        return self.order.list_loans(actor=call.actor, filters=filters, limit=limit, cursor=cursor)

    @api("GET", f"{API}/loans/<uuid:loan_id>", roles=LOAN_READERS, response=LoanOut, tags=["loans"],
         errors=(404, 503, 504))
    def get_loan(self, call, loan_id):
        """One loan: what is out, returned and converted."""
        return self.order.get_loan(actor=call.actor, loan_id=loan_id)

    @api("POST", f"{API}/loans/<uuid:loan_id>/approve", roles=LOAN_APPROVERS, body=Comment, response=LoanOut,
         tags=["loans"], errors=ERRORS)
    def approve_loan(self, call, loan_id):
        """Approve the current step of the loan."""
        return self.order.approve_loan(request_id=call.request_id, actor=call.actor, loan_id=loan_id,
                                       comment=call.body.get("comment"))

    @api("POST", f"{API}/loans/<uuid:loan_id>/reject", roles=LOAN_APPROVERS, body=Comment, response=LoanOut,
         tags=["loans"], errors=ERRORS)
    def reject_loan(self, call, loan_id):
        """Reject the loan."""
        return self.order.reject_loan(request_id=call.request_id, actor=call.actor, loan_id=loan_id,
                                      comment=call.body.get("comment"))

    @api("POST", f"{API}/loans/<uuid:loan_id>/issue", roles=WAREHOUSE, response=LoanOut, tags=["loans"],
         errors=ERRORS)
    def issue_loan(self, call, loan_id):
        """The warehouse issues the approved loan."""
        return self.order.issue_loan(request_id=call.request_id, actor=call.actor, loan_id=loan_id)

    @api("POST", f"{API}/loans/<uuid:loan_id>/returns", roles=WAREHOUSE, body=LoanLines, response=LoanOut,
         tags=["loans"], errors=ERRORS)
    def return_loan(self, call, loan_id):
        """Loaned goods come back; never more than is out (409 LOAN_QUANTITY_MISMATCH, FR-100)."""
        return self.order.return_loan(request_id=call.request_id, actor=call.actor, loan_id=loan_id,
                                      lines=plain(call.body)["lines"])

    @api("POST", f"{API}/loans/<uuid:loan_id>/convert", roles=LOAN_WRITERS, body=LoanConversion, response=OrderOut,
         status=201, locates=True, tags=["loans"], errors=ERRORS)
    def convert_loan(self, call, loan_id):
        """Convert loaned goods to a sale: the order, confirmed, with its delivery raised without moving
        the goods again (FR-99)."""
        order = self.order.convert_loan(request_id=call.request_id, actor=call.actor, loan_id=loan_id,
                                        lines=plain(call.body)["lines"])
        return created(order, location=f"{API}/orders/{order['id']}")

    # -- targets and quotas ---------------------------------------------------------------------------
    @api("POST", f"{API}/targets", roles=TARGET_WRITERS, body=TargetCreate, response=TargetOut, status=201,
         tags=["targets"], errors=ERRORS)
    def set_target(self, call):
        """Set a draft target (directors; managers for their team and its reps); again while a draft
        changes its amount (FR-112-FR-118)."""
        return created(self.order.set_target(request_id=call.request_id, actor=call.actor, target=plain(call.body)))

    @api("GET", f"{API}/targets", roles=TARGET_READERS, query=TargetQuery, response=TargetPage, tags=["targets"],
         errors=(503, 504))
    def list_targets(self, call):
        """List targets (a rep sees their own, a manager their team's)."""
        filters, limit, cursor = _filters(call.query, ("period", "scope", "scope_id", "status", "parent_id"))
        return self.order.list_targets(actor=call.actor, filters=filters, limit=limit, cursor=cursor)

    @api("POST", f"{API}/targets/<uuid:target_id>/publish", roles=TARGET_WRITERS, response=TargetOut,
         tags=["targets"], errors=ERRORS)
    def publish_target(self, call, target_id):
        """Publish a target and its breakdown; 409 TARGET_BREAKDOWN_MISMATCH shows each difference."""
        return self.order.publish_target(request_id=call.request_id, actor=call.actor, target_id=target_id)

    @api("POST", f"{API}/quotas", roles=DIRECTORS, body=QuotaCreate, response=QuotaOut, status=201,
         tags=["quotas"], errors=ERRORS)
    def set_quota(self, call):
        """Set a quota per month × customer or market × product (FR-67), checked when orders are confirmed."""
        return created(self.order.set_quota(request_id=call.request_id, actor=call.actor, quota=plain(call.body)))

    @api("GET", f"{API}/quotas", roles=QUOTA_READERS, query=QuotaQuery, response=QuotaPage, tags=["quotas"],
         errors=(503, 504))
    def list_quotas(self, call):
        """List quotas with what is consumed and available."""
        filters, limit, cursor = _filters(call.query, ("period", "customer_id", "market", "sku"))
        return self.order.list_quotas(actor=call.actor, filters=filters, limit=limit, cursor=cursor)
