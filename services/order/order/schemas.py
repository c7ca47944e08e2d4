"""RPC inputs and outputs of the order service (validated again here: never trust the caller), and
the consumer schemas of the events it reads (`<Event>Data`: only the fields it needs, the rest
ignored)."""
from decimal import Decimal

from marshmallow import EXCLUDE, Schema, fields, validate, validates_schema, ValidationError

from order import domain
from shared.validation import StrictSchema

SKU = validate.Length(1, 64)


def money_field(required=True, minimum="0.01", **kwargs):
    return fields.Decimal(required=required, places=2, allow_nan=False, as_string=True,
                          validate=validate.Range(min=Decimal(minimum), max=Decimal("9999999999999999.99")),
                          **kwargs)


def quantity_field():
    return fields.Integer(required=True, strict=True, validate=validate.Range(1, 1_000_000))


def comment_field():
    return fields.String(load_default=None, allow_none=True, validate=validate.Length(max=2000))


# -- inputs ---------------------------------------------------------------------------------------------
class PricedLineInput(StrictSchema):
    sku = fields.String(required=True, validate=SKU)
    quantity = quantity_field()
    unit_price = money_field(required=False, load_default=None, allow_none=True)


class SkuLineInput(StrictSchema):
    sku = fields.String(required=True, validate=SKU)
    quantity = quantity_field()


class QuoteInput(StrictSchema):
    customer_id = fields.UUID(required=True)
    lines = fields.List(fields.Nested(PricedLineInput), required=True, validate=validate.Length(1, 200))
    valid_until = fields.Date(required=True)
    notes = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=4000))


class QuoteChanges(StrictSchema):
    lines = fields.List(fields.Nested(PricedLineInput), validate=validate.Length(1, 200))
    valid_until = fields.Date()
    notes = fields.String(allow_none=True, validate=validate.Length(max=4000))

    @validates_schema
    def not_empty(self, data, **kwargs):
        if not data:
            raise ValidationError("name at least one of lines, valid_until, notes", "_schema")


class OrderInput(StrictSchema):
    customer_id = fields.UUID(required=True)
    quote_id = fields.UUID(load_default=None, allow_none=True)
    lines = fields.List(fields.Nested(PricedLineInput), required=True, validate=validate.Length(1, 200))
    warehouse = fields.String(load_default=None, allow_none=True, validate=validate.Length(1, 64))


class TermsInput(StrictSchema):
    service_terms = fields.String(validate=validate.Length(max=4000),
                                  metadata={"description": "free modifications, or how services are charged (FR-51)"})
    payment_terms = fields.String(validate=validate.Length(max=4000))
    delivery_terms = fields.String(validate=validate.Length(max=4000))


class SignatureInput(StrictSchema):
    party = fields.String(required=True, validate=validate.OneOf(("customer", "company")))
    signatory = fields.String(load_default=None, allow_none=True, validate=validate.Length(1, 200))

    @validates_schema
    def customer_names_the_signatory(self, data, **kwargs):
        if data.get("party") == "customer" and not data.get("signatory"):
            raise ValidationError("the customer's signatory must be named (FR-58)", "signatory")


class ReturnInput(StrictSchema):
    delivery_id = fields.UUID(required=True)
    lines = fields.List(fields.Nested(SkuLineInput), required=True, validate=validate.Length(1, 200))
    reason = fields.String(required=True, validate=validate.Length(1, 2000))
    service_request_id = fields.UUID(load_default=None, allow_none=True)


class LoanInput(StrictSchema):
    customer_id = fields.UUID(required=True)
    lines = fields.List(fields.Nested(SkuLineInput), required=True, validate=validate.Length(1, 200))
    due_date = fields.Date(required=True)
    warehouse = fields.String(load_default=None, allow_none=True, validate=validate.Length(1, 64))


class LoanLinesInput(StrictSchema):
    lines = fields.List(fields.Nested(SkuLineInput), required=True, validate=validate.Length(1, 200))


class ConversionInput(StrictSchema):
    lines = fields.List(fields.Nested(PricedLineInput), required=True, validate=validate.Length(1, 200))


class ReplacementInput(StrictSchema):
    customer_id = fields.UUID(required=True)
    sku = fields.String(required=True, validate=SKU)
    quantity = quantity_field()
    delivery_id = fields.UUID(required=True)
    service_request_id = fields.UUID(required=True)


class TargetInput(StrictSchema):
    period = fields.String(required=True, validate=validate.Length(4, 7))
    scope = fields.String(required=True, validate=validate.OneOf(domain.TARGET_SCOPES))
    scope_id = fields.String(required=True, validate=validate.Length(1, 100))
    amount = money_field(minimum="0.00")
    parent_id = fields.UUID(load_default=None, allow_none=True)


class QuotaInput(StrictSchema):
    period = fields.String(required=True, validate=validate.Regexp(r"^\d{4}-(0[1-9]|1[0-2])$",
                                                                   error="a month, YYYY-MM"))
    customer_id = fields.UUID(load_default=None, allow_none=True)
    market = fields.String(load_default=None, allow_none=True, validate=validate.Length(1, 100))
    sku = fields.String(required=True, validate=SKU)
    quantity = fields.Integer(required=True, strict=True, validate=validate.Range(0, 100_000_000))

    @validates_schema
    def customer_or_market(self, data, **kwargs):
        if (data.get("customer_id") is None) == (data.get("market") is None):
            raise ValidationError("name either customer_id or market", "customer_id")


class ReportInput(StrictSchema):
    period_start = fields.Date(required=True)
    period_end = fields.Date(required=True)
    group_by = fields.String(load_default=None, allow_none=True,
                             validate=validate.OneOf(("rep", "team", "region", "product", "customer")))

    @validates_schema
    def ordered(self, data, **kwargs):
        if data["period_end"] <= data["period_start"]:
            raise ValidationError("must be after period_start", "period_end")


STATUS = fields.String(load_default=None, allow_none=True, validate=validate.Length(1, 40))


class QuoteFilters(StrictSchema):
    customer_id = fields.UUID(load_default=None, allow_none=True)
    status = STATUS


class OrderFilters(StrictSchema):
    customer_id = fields.UUID(load_default=None, allow_none=True)
    status = fields.String(load_default=None, allow_none=True, validate=validate.OneOf(domain.ORDER_STATUSES))
    quote_id = fields.UUID(load_default=None, allow_none=True)
    from_ = fields.Date(load_default=None, allow_none=True, data_key="from")
    to = fields.Date(load_default=None, allow_none=True)


class ContractFilters(StrictSchema):
    customer_id = fields.UUID(load_default=None, allow_none=True)
    status = STATUS


class ReturnFilters(StrictSchema):
    order_id = fields.UUID(load_default=None, allow_none=True)
    delivery_id = fields.UUID(load_default=None, allow_none=True)
    status = STATUS


class LoanFilters(StrictSchema):
    customer_id = fields.UUID(load_default=None, allow_none=True)
    status = STATUS


class TargetFilters(StrictSchema):
    period = fields.String(load_default=None, allow_none=True, validate=validate.Length(4, 7))
    scope = fields.String(load_default=None, allow_none=True, validate=validate.OneOf(domain.TARGET_SCOPES))
    scope_id = fields.String(load_default=None, allow_none=True, validate=validate.Length(1, 100))
    status = fields.String(load_default=None, allow_none=True, validate=validate.OneOf(("draft", "published")))
    parent_id = fields.UUID(load_default=None, allow_none=True)


class QuotaFilters(StrictSchema):
    period = fields.String(load_default=None, allow_none=True)
    customer_id = fields.UUID(load_default=None, allow_none=True)
    market = fields.String(load_default=None, allow_none=True)
    sku = fields.String(load_default=None, allow_none=True)


# -- what the collaborators answer (only what we read) ---------------------------------------------------
class _Lenient(Schema):
    class Meta:
        unknown = EXCLUDE


class CustomerAnswer(_Lenient):
    id = fields.UUID(required=True)
    name = fields.String(load_default=None, allow_none=True)
    owner_id = fields.UUID(load_default=None, allow_none=True)
    owner_team = fields.String(load_default=None, allow_none=True)
    region = fields.String(load_default=None, allow_none=True)


class StaffAnswer(_Lenient):
    id = fields.UUID(required=True)
    role = fields.String(required=True)
    team = fields.String(load_default=None, allow_none=True)
    discount_authority = fields.Decimal(required=True)
    price_authority = fields.Decimal(required=True)


class ApproverAnswer(_Lenient):
    id = fields.UUID(required=True)
    username = fields.String(load_default=None, allow_none=True)
    display_name = fields.String(load_default=None, allow_none=True)
    role = fields.String(load_default=None, allow_none=True)


class QuotableAnswer(_Lenient):
    quotable = fields.Boolean(required=True)
    reason = fields.String(load_default=None, allow_none=True)


# -- consumed events: `<Event>Data` ----------------------------------------------------------------------
class ProductData(_Lenient):
    """product.created and product.price_changed (inventory)."""

    sku = fields.String(required=True, validate=SKU)
    name = fields.String(required=True)
    unit = fields.String(load_default=None, allow_none=True)
    list_price = fields.Decimal(required=True, places=2)
    floor_price = fields.Decimal(required=True, places=2)
    vat_rate = fields.Decimal(required=True)
    active = fields.Boolean(load_default=True)


ProductCreatedData = ProductData
ProductPriceChangedData = ProductData


class CustomerOwnerChangedData(_Lenient):
    customer_id = fields.UUID(required=True)
    owner_id = fields.UUID(required=True, allow_none=True)
    owner_team = fields.String(load_default=None, allow_none=True)
    region = fields.String(allow_none=True)


class CustomerUpdatedData(_Lenient):
    """Each field but the id is read only when the event carries it (a missing owner moves nothing)."""
    customer_id = fields.UUID(required=True)
    name = fields.String(allow_none=True)
    region = fields.String(allow_none=True)
    owner_id = fields.UUID(allow_none=True)
    owner_team = fields.String(allow_none=True)


class CustomerCreatedData(_Lenient):
    customer_id = fields.UUID(required=True)
    name = fields.String(required=True)
    region = fields.String(load_default=None, allow_none=True)
    owner_id = fields.UUID(required=True, allow_none=True)
    owner_team = fields.String(load_default=None, allow_none=True)


class IssuedLine(_Lenient):
    delivery_line_id = fields.UUID(required=True)
    order_line_id = fields.UUID(load_default=None, allow_none=True)
    sku = fields.String(required=True)
    quantity = fields.Integer(required=True)
    unit_price = fields.Decimal(required=True, places=2)
    vat_rate = fields.Decimal(required=True)


class GoodsIssuedData(_Lenient):
    delivery_id = fields.UUID(required=True)
    delivery_number = fields.String(load_default=None, allow_none=True)
    order_id = fields.UUID(load_default=None, allow_none=True)
    loan_id = fields.UUID(load_default=None, allow_none=True)
    issued_at = fields.AwareDateTime(required=True)
    lines = fields.List(fields.Nested(IssuedLine), required=True)


class ReturnedLine(_Lenient):
    delivery_line_id = fields.UUID(required=True)
    sku = fields.String(required=True)
    quantity = fields.Integer(required=True)


class GoodsReturnedData(_Lenient):
    return_id = fields.UUID(required=True)
    delivery_id = fields.UUID(required=True)
    order_id = fields.UUID(load_default=None, allow_none=True)
    received_at = fields.AwareDateTime(required=True)
    lines = fields.List(fields.Nested(ReturnedLine), required=True)


class InvoiceLine(_Lenient):
    order_id = fields.UUID(load_default=None, allow_none=True)
    order_line_id = fields.UUID(load_default=None, allow_none=True)
    delivery_line_id = fields.UUID(load_default=None, allow_none=True)
    sku = fields.String(load_default=None, allow_none=True)
    quantity = fields.Integer(required=True)
    amount = fields.Decimal(required=True, places=2)


class InvoiceIssuedData(_Lenient):
    invoice_id = fields.UUID(required=True)
    number = fields.String(load_default=None, allow_none=True)
    issued_at = fields.AwareDateTime(required=True)
    lines = fields.List(fields.Nested(InvoiceLine), required=True)


class InvoiceReversedData(_Lenient):
    red_invoice_id = fields.UUID(required=True)
    original_invoice_id = fields.UUID(required=True)
    lines = fields.List(fields.Nested(InvoiceLine), required=True)


class InvoiceSettledData(_Lenient):
    invoice_id = fields.UUID(required=True)
    order_ids = fields.List(fields.UUID(), load_default=list)
    settled_at = fields.AwareDateTime(required=True)


class StockReservationExpiredData(_Lenient):
    order_id = fields.UUID(required=True)
    reservation_id = fields.UUID(required=True)


# -- outputs -----------------------------------------------------------------------------------------------
class Out(Schema):
    """Output schemas dump rows (Decimal as strings, UTC ISO datetimes, UUIDs as strings)."""


def _money(**kwargs):
    return fields.Decimal(places=2, as_string=True, **kwargs)


class StepOut(Out):
    round = fields.Integer()
    seq = fields.Integer()
    relation = fields.String()
    role = fields.String()
    reason = fields.String()
    status = fields.String()
    approver_id = fields.String(allow_none=True)
    approver_name = fields.String(allow_none=True)
    approver_role = fields.String(allow_none=True)
    assigned_at = fields.DateTime(allow_none=True)
    decided_by = fields.String(allow_none=True)
    decided_at = fields.DateTime(allow_none=True)
    comment = fields.String(allow_none=True)
    content_hash = fields.String(allow_none=True)


class SnapshotOut(Out):
    customer_id = fields.String()
    customer_name = fields.String(allow_none=True)
    owner_id = fields.String(allow_none=True)
    owner_team = fields.String(allow_none=True)
    region = fields.String(allow_none=True)


class QuoteLineOut(Out):
    line_no = fields.Integer()
    sku = fields.String()
    name = fields.String(allow_none=True)
    quantity = fields.Integer()
    unit_price = _money()
    list_price = _money()
    floor_price = _money()
    vat_rate = fields.Decimal(as_string=True)
    amount = _money()


class QuoteOut(SnapshotOut):
    id = fields.String()
    number = fields.String()
    status = fields.String()
    valid_until = fields.Date()
    notes = fields.String(allow_none=True)
    total = _money()
    major = fields.Boolean()
    content_hash = fields.String()
    lines = fields.List(fields.Nested(QuoteLineOut))
    required_approvals = fields.List(fields.Nested(StepOut))
    approvals = fields.List(fields.Nested(StepOut))
    requested_by = fields.String(allow_none=True)
    created_by = fields.String()
    created_at = fields.DateTime()
    updated_at = fields.DateTime()
    submitted_at = fields.DateTime(allow_none=True)
    approved_at = fields.DateTime(allow_none=True)
    sent_at = fields.DateTime(allow_none=True)
    accepted_at = fields.DateTime(allow_none=True)
    closed_at = fields.DateTime(allow_none=True)
    order_id = fields.String(allow_none=True)
    contract_id = fields.String(allow_none=True)


class ContractLineOut(Out):
    sku = fields.String()
    quantity = fields.Integer()
    unit_price = fields.String()
    amount = fields.String()


class ContractOut(SnapshotOut):
    id = fields.String()
    number = fields.String()
    quote_id = fields.String()
    order_id = fields.String(allow_none=True)
    status = fields.String()
    total = _money()
    lines = fields.List(fields.Nested(ContractLineOut))
    terms = fields.Dict()
    major = fields.Boolean()
    content_hash = fields.String()
    required_approvals = fields.List(fields.Nested(StepOut))
    approvals = fields.List(fields.Nested(StepOut))
    approved_at = fields.DateTime(allow_none=True)
    customer_signatory = fields.String(allow_none=True)
    customer_signed_at = fields.DateTime(allow_none=True)
    company_signed_by = fields.String(allow_none=True)
    company_signed_at = fields.DateTime(allow_none=True)
    signed_at = fields.DateTime(allow_none=True)
    registered_by = fields.String(allow_none=True)
    effective_at = fields.DateTime(allow_none=True)
    completed_at = fields.DateTime(allow_none=True)
    terminated_at = fields.DateTime(allow_none=True)
    termination_reason = fields.String(allow_none=True)
    archived_at = fields.DateTime(allow_none=True)
    valid = fields.Boolean(metadata={"description": "FR-58: signed by both parties"})
    created_by = fields.String()
    created_at = fields.DateTime()
    updated_at = fields.DateTime()


class OrderLineOut(Out):
    id = fields.String()
    line_no = fields.Integer()
    sku = fields.String()
    name = fields.String(allow_none=True)
    quantity = fields.Integer()
    unit_price = _money()
    vat_rate = fields.Decimal(as_string=True)
    amount = _money()
    shipped_quantity = fields.Integer()
    returned_quantity = fields.Integer()
    invoiced_quantity = fields.Integer()
    invoiced_amount = _money()


class SagaOut(Out):
    kind = fields.String()
    attempt = fields.Integer()
    state = fields.String()
    step = fields.String(allow_none=True)
    stock_status = fields.String()
    credit_status = fields.String()
    error = fields.Raw(allow_none=True)
    started_at = fields.DateTime()
    finished_at = fields.DateTime(allow_none=True)


class OrderOut(SnapshotOut):
    id = fields.String()
    number = fields.String()
    kind = fields.String()
    status = fields.String()
    quote_id = fields.String(allow_none=True)
    contract_id = fields.String(allow_none=True)
    loan_id = fields.String(allow_none=True)
    service_request_id = fields.String(allow_none=True)
    delivery_id = fields.String(allow_none=True)
    warehouse = fields.String(allow_none=True)
    total = _money()
    returned_amount = _money()
    invoiced_amount = _money()
    lines = fields.List(fields.Nested(OrderLineOut))
    saga = fields.Nested(SagaOut, allow_none=True)
    created_by = fields.String()
    created_at = fields.DateTime()
    updated_at = fields.DateTime()
    confirmed_at = fields.DateTime(allow_none=True)
    credit_held_at = fields.DateTime(allow_none=True)
    credit_released_by = fields.String(allow_none=True)
    first_shipped_at = fields.DateTime(allow_none=True)
    shipped_at = fields.DateTime(allow_none=True)
    invoiced_at = fields.DateTime(allow_none=True)
    paid_at = fields.DateTime(allow_none=True)
    closed_at = fields.DateTime(allow_none=True)
    cancelled_at = fields.DateTime(allow_none=True)
    cancel_reason = fields.String(allow_none=True)


class ReturnLineOut(Out):
    delivery_line_id = fields.String()
    order_line_id = fields.String(allow_none=True)
    sku = fields.String()
    quantity = fields.Integer()
    received_quantity = fields.Integer()
    unit_price = _money()


class ReturnOut(Out):
    id = fields.String()
    number = fields.String()
    delivery_id = fields.String()
    order_id = fields.String()
    customer_id = fields.String()
    owner_id = fields.String(allow_none=True)
    owner_team = fields.String(allow_none=True)
    region = fields.String(allow_none=True)
    status = fields.String()
    reason = fields.String()
    service_request_id = fields.String(allow_none=True)
    lines = fields.List(fields.Nested(ReturnLineOut))
    approvals = fields.List(fields.Nested(StepOut))
    requested_by = fields.String()
    created_at = fields.DateTime()
    approved_at = fields.DateTime(allow_none=True)
    received_at = fields.DateTime(allow_none=True)
    rejected_at = fields.DateTime(allow_none=True)


class LoanLineOut(Out):
    sku = fields.String()
    name = fields.String(allow_none=True)
    quantity = fields.Integer()
    issued_quantity = fields.Integer()
    returned_quantity = fields.Integer()
    converted_quantity = fields.Integer()
    out = fields.Integer()


class LoanOut(SnapshotOut):
    id = fields.String()
    number = fields.String()
    status = fields.String()
    due_date = fields.Date()
    overdue = fields.Boolean()
    warehouse = fields.String(allow_none=True)
    lines = fields.List(fields.Nested(LoanLineOut))
    approvals = fields.List(fields.Nested(StepOut))
    orders = fields.List(fields.String())
    requested_by = fields.String()
    created_at = fields.DateTime()
    approved_at = fields.DateTime(allow_none=True)
    issued_at = fields.DateTime(allow_none=True)
    closed_at = fields.DateTime(allow_none=True)


class TargetOut(Out):
    id = fields.String()
    period = fields.String()
    period_start = fields.Date()
    period_end = fields.Date()
    scope = fields.String()
    scope_id = fields.String()
    amount = _money()
    parent_id = fields.String(allow_none=True)
    status = fields.String()
    children_total = _money(allow_none=True)
    created_by = fields.String()
    created_at = fields.DateTime()
    published_at = fields.DateTime(allow_none=True)


class QuotaOut(Out):
    id = fields.String()
    period = fields.String()
    customer_id = fields.String(allow_none=True)
    market = fields.String(allow_none=True)
    sku = fields.String()
    quantity = fields.Integer()
    consumed = fields.Integer()
    available = fields.Integer()
    created_at = fields.DateTime()


quote_input, quote_changes, order_input = QuoteInput(), QuoteChanges(), OrderInput()
terms_input, signature_input = TermsInput(), SignatureInput()
return_input, loan_input, loan_lines_input, conversion_input = (ReturnInput(), LoanInput(), LoanLinesInput(),
                                                                ConversionInput())
replacement_input, target_input, quota_input, report_input = (ReplacementInput(), TargetInput(), QuotaInput(),
                                                              ReportInput())
quote_filters, order_filters, contract_filters = QuoteFilters(), OrderFilters(), ContractFilters()
return_filters, loan_filters, target_filters, quota_filters = (ReturnFilters(), LoanFilters(), TargetFilters(),
                                                               QuotaFilters())
customer_answer, staff_answer, approver_answer, quotable_answer = (CustomerAnswer(), StaffAnswer(), ApproverAnswer(),
                                                                   QuotableAnswer())
product_data = ProductData()
customer_owner_changed_data, customer_updated_data = CustomerOwnerChangedData(), CustomerUpdatedData()
customer_created_data = CustomerCreatedData()
goods_issued_data, goods_returned_data = GoodsIssuedData(), GoodsReturnedData()
invoice_issued_data, invoice_reversed_data, invoice_settled_data = (InvoiceIssuedData(), InvoiceReversedData(),
                                                                    InvoiceSettledData())
stock_reservation_expired_data = StockReservationExpiredData()
quote_out, contract_out, order_out = QuoteOut(), ContractOut(), OrderOut()
return_out, loan_out, target_out, quota_out = ReturnOut(), LoanOut(), TargetOut(), QuotaOut()
step_out = StepOut()
