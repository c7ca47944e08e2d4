"""RPC inputs and outputs of the billing service, and the data of the events it consumes
(validated again here: a service never trusts its caller). Money is a decimal string on the wire."""
import decimal

from marshmallow import EXCLUDE, ValidationError, fields, validate, validates_schema

from billing import domain
from shared.validation import StrictSchema

MAX_MONEY = decimal.Decimal("9999999999999999.99")  # numeric(18, 2)
RECEIPT_METHODS = ("bank_transfer", "cash", "acceptance_bill", "cheque", "other")
GROUP_BY = ("rep", "team", "region", "product", "customer")


class Money(fields.Decimal):
    """A decimal amount with at most 2 places, sent as a string (an integer is accepted; a float
    never: money does not pass through binary floating point)."""

    default_error_messages = {
        "float": "send money as a decimal string, e.g. \"1234.50\", not a JSON number with a fraction",
        "places": "at most 2 decimal places",
    }

    def __init__(self, minimum=decimal.Decimal("0"), exclusive=False, **kwargs):
        kwargs.setdefault("as_string", True)
        kwargs.setdefault("allow_nan", False)
        super().__init__(validate=validate.Range(min=minimum, max=MAX_MONEY, min_inclusive=not exclusive),
                         **kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, (float, bool)):
            raise self.make_error("float")
        number = super()._deserialize(value, attr, data, **kwargs)
        if number is not None and number.as_tuple().exponent < -2:
            raise self.make_error("places")
        return None if number is None else number.quantize(domain.CENT)


def reason(required=True, **kwargs):
    return fields.String(required=required, validate=validate.And(
        validate.Length(1, 1000), validate.Regexp(r"\S", error="must not be blank")), **kwargs)


class EventData(StrictSchema):
    """The fields of an event billing reads; fields it does not read are ignored, not refused."""

    class Meta:
        unknown = EXCLUDE


# -- events consumed ----------------------------------------------------------------------------
class CustomerCreatedData(EventData):
    customer_id = fields.UUID(required=True)
    number = fields.String(load_default=None, allow_none=True)
    name = fields.String(load_default=None, allow_none=True)
    tax_id = fields.String(load_default=None, allow_none=True)
    bank_account = fields.Dict(load_default=None, allow_none=True)
    owner_id = fields.UUID(load_default=None, allow_none=True)
    owner_team = fields.String(load_default=None, allow_none=True)
    region = fields.String(load_default=None, allow_none=True)


class CustomerUpdatedData(EventData):
    """Only the fields present in the event change (an update names what changed)."""

    customer_id = fields.UUID(required=True)
    number = fields.String(allow_none=True)
    name = fields.String(allow_none=True)
    tax_id = fields.String(allow_none=True)
    bank_account = fields.Dict(allow_none=True)
    region = fields.String(allow_none=True)
    owner_id = fields.UUID(allow_none=True)
    owner_team = fields.String(allow_none=True)


class CustomerOwnerChangedData(EventData):
    customer_id = fields.UUID(required=True)
    owner_id = fields.UUID(required=True, allow_none=True)
    owner_team = fields.String(load_default=None, allow_none=True)


class GoodsIssuedLine(EventData):
    delivery_line_id = fields.UUID(required=True)
    order_line_id = fields.UUID(load_default=None, allow_none=True)
    sku = fields.String(required=True, validate=validate.Length(1, 100))
    quantity = fields.Integer(required=True, strict=True, validate=validate.Range(min=1))
    unit_price = Money(required=True)
    vat_rate = fields.Decimal(required=True, validate=validate.Range(0, 1, max_inclusive=False))


class GoodsIssuedData(EventData):
    delivery_id = fields.UUID(required=True)
    delivery_number = fields.String(load_default=None, allow_none=True)
    order_id = fields.UUID(load_default=None, allow_none=True)
    order_number = fields.String(load_default=None, allow_none=True)
    loan_id = fields.UUID(load_default=None, allow_none=True)
    warehouse = fields.String(load_default=None, allow_none=True)
    issued_at = fields.AwareDateTime(required=True)
    customer_id = fields.UUID(required=True)
    owner_id = fields.UUID(load_default=None, allow_none=True)
    owner_team = fields.String(load_default=None, allow_none=True)
    region = fields.String(load_default=None, allow_none=True)
    lines = fields.List(fields.Nested(GoodsIssuedLine), required=True, validate=validate.Length(min=1))


class GoodsReturnedLine(EventData):
    delivery_line_id = fields.UUID(required=True)
    sku = fields.String(load_default=None, allow_none=True)
    quantity = fields.Integer(required=True, strict=True, validate=validate.Range(min=1))


class GoodsReturnedData(EventData):
    return_id = fields.UUID(required=True)
    return_number = fields.String(load_default=None, allow_none=True)
    delivery_id = fields.UUID(required=True)
    order_id = fields.UUID(load_default=None, allow_none=True)
    customer_id = fields.UUID(load_default=None, allow_none=True)
    received_at = fields.AwareDateTime(load_default=None, allow_none=True)
    lines = fields.List(fields.Nested(GoodsReturnedLine), required=True, validate=validate.Length(min=1))


class OrderCancelledData(EventData):
    order_id = fields.UUID(required=True)
    number = fields.String(load_default=None, allow_none=True)
    reason = fields.String(load_default=None, allow_none=True)


# -- RPC inputs ---------------------------------------------------------------------------------
class OverrideInput(StrictSchema):
    actor = fields.Dict(required=True)
    reason = reason()


class ReserveCreditInput(StrictSchema):
    reservation_id = fields.UUID(required=True)
    order_id = fields.UUID(required=True)
    customer_id = fields.UUID(required=True)
    amount = Money(required=True)
    override = fields.Nested(OverrideInput, load_default=None, allow_none=True)


class ReleaseCreditInput(StrictSchema):
    order_id = fields.UUID(required=True)
    reason = reason()


class SetCreditLimitInput(StrictSchema):
    customer_id = fields.UUID(required=True)
    limit = Money(required=True)
    reason = reason()


class RecomputeInput(StrictSchema):
    quarter = fields.String(required=True, validate=validate.Regexp(r"^\d{4}-Q[1-4]$", error="must look like 2026-Q3"))


class CreateInvoiceInput(StrictSchema):
    delivery_ids = fields.List(fields.UUID(), required=True, validate=validate.Length(1, 50))
    kind = fields.String(required=True, validate=validate.OneOf(domain.KINDS))
    remarks = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=500))

    @validates_schema
    def distinct(self, data, **kwargs):
        if len(set(data["delivery_ids"])) != len(data["delivery_ids"]):
            raise ValidationError("a delivery is named twice", "delivery_ids")


class CancelInvoiceInput(StrictSchema):
    invoice_id = fields.UUID(required=True)
    reason = reason()


class ReverseLineInput(StrictSchema):
    delivery_line_id = fields.UUID(required=True)
    quantity = fields.Integer(required=True, strict=True, validate=validate.Range(min=1))


class ReverseInvoiceInput(StrictSchema):
    invoice_id = fields.UUID(required=True)
    reason = reason()
    lines = fields.List(fields.Nested(ReverseLineInput), load_default=None, allow_none=True,
                        validate=validate.Length(min=1))

    @validates_schema
    def distinct(self, data, **kwargs):
        lines = data.get("lines") or []
        if len({line["delivery_line_id"] for line in lines}) != len(lines):
            raise ValidationError("a delivery line is named twice", "lines")


class ReceiptInput(StrictSchema):
    customer_id = fields.UUID(required=True)
    amount = Money(required=True, exclusive=True)
    method = fields.String(required=True, validate=validate.OneOf(RECEIPT_METHODS))
    reference = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=100))
    received_at = fields.Date(required=True)
    note = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=1000))


class AllocationLineInput(StrictSchema):
    invoice_id = fields.UUID(required=True)
    amount = Money(required=True, exclusive=True)


class AllocateInput(StrictSchema):
    receipt_id = fields.UUID(required=True)
    allocations = fields.List(fields.Nested(AllocationLineInput), required=True, validate=validate.Length(1, 100))
    note = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=1000))

    @validates_schema
    def distinct(self, data, **kwargs):
        ids = [a["invoice_id"] for a in data["allocations"]]
        if len(set(ids)) != len(ids):
            raise ValidationError("an invoice is named twice: give one amount per invoice", "allocations")


class ReverseAllocationInput(StrictSchema):
    receipt_id = fields.UUID(required=True)
    allocation_id = fields.UUID(required=True)
    reason = reason()


MONTH = validate.Regexp(r"^\d{4}-(0[1-9]|1[0-2])$", error="must look like 2026-06 (YYYY-MM)")


class StatementInput(StrictSchema):
    customer_id = fields.UUID(required=True)
    month = fields.String(required=True, validate=MONTH)


class ConfirmStatementInput(StrictSchema):
    customer_id = fields.UUID(required=True)
    month = fields.String(required=True, validate=MONTH)
    outcome = fields.String(required=True, validate=validate.OneOf(domain.STATEMENT_OUTCOMES))
    contact = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=200))
    note = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=2000))

    @validates_schema
    def disputes_say_why(self, data, **kwargs):
        if data["outcome"] == "disputed" and not (data.get("note") or "").strip():
            raise ValidationError("a dispute needs a note saying what the customer disputes", "note")


class CampaignInput(StrictSchema):
    month = fields.String(required=True, validate=MONTH)


class InvoiceFilters(StrictSchema):
    customer_id = fields.UUID(load_default=None, allow_none=True)
    status = fields.String(load_default=None, allow_none=True,
                           validate=validate.OneOf(("draft", "certified", "issued", "cancelled")))
    kind = fields.String(load_default=None, allow_none=True, validate=validate.OneOf(domain.KINDS))
    red = fields.Boolean(load_default=None, allow_none=True)
    reverses = fields.UUID(load_default=None, allow_none=True)
    order_id = fields.UUID(load_default=None, allow_none=True)
    delivery_id = fields.UUID(load_default=None, allow_none=True)
    issued_from = fields.Date(load_default=None, allow_none=True)
    issued_to = fields.Date(load_default=None, allow_none=True)


class ReceiptFilters(StrictSchema):
    customer_id = fields.UUID(load_default=None, allow_none=True)
    status = fields.String(load_default=None, allow_none=True, validate=validate.OneOf(("registered", "confirmed")))
    unallocated = fields.Boolean(load_default=None, allow_none=True)


class AgingInput(StrictSchema):
    as_of = fields.Date(load_default=None, allow_none=True)
    customer_id = fields.UUID(load_default=None, allow_none=True)


class ReportInput(StrictSchema):
    period_start = fields.Date(required=True)
    period_end = fields.Date(required=True)
    group_by = fields.String(required=True, validate=validate.OneOf(GROUP_BY))

    @validates_schema
    def ordered(self, data, **kwargs):
        if data["period_end"] < data["period_start"]:
            raise ValidationError("must not be before period_start", "period_end")
        if (data["period_end"] - data["period_start"]).days > 366 * 3:
            raise ValidationError("a report covers at most three years", "period_end")


# -- RPC outputs --------------------------------------------------------------------------------
def _money(**kwargs):
    return fields.Decimal(as_string=True, **kwargs)


class HistoryOut(StrictSchema):
    kind = fields.String()
    old_limit = _money(allow_none=True)
    new_limit = _money()
    grade = fields.String(allow_none=True)
    quarter = fields.String(allow_none=True)
    reason = fields.String()
    changed_by = fields.String(allow_none=True)
    inputs = fields.Dict(allow_none=True)
    changed_at = fields.DateTime()


class ReservationOut(StrictSchema):
    reservation_id = fields.String()
    order_id = fields.String()
    customer_id = fields.String()
    status = fields.String()
    amount = _money()
    remaining = _money()
    override = fields.Dict(allow_none=True)
    created_at = fields.DateTime()


class CreditSummaryOut(StrictSchema):
    """The credit figures without the account's reservations and history (get_credit_summary)."""
    customer_id = fields.String()
    limit = _money()
    currency = fields.String()
    grade = fields.String(allow_none=True)
    exposure = _money()
    open_receivables = _money()
    reserved = _money()
    available = _money()


class CreditAccountOut(CreditSummaryOut):
    """The credit account: the summary's figures, the formula and manual limits, the active
    reservations and the limit history."""
    formula_limit = _money(allow_none=True)
    formula_quarter = fields.String(allow_none=True)
    formula_inputs = fields.Dict(allow_none=True)
    manual_limit = _money(allow_none=True)
    manual_quarter = fields.String(allow_none=True)
    opened_at = fields.DateTime()
    reservations = fields.List(fields.Nested(ReservationOut))
    history = fields.List(fields.Nested(HistoryOut))


class ReserveCreditOut(StrictSchema):
    reservation_id = fields.String()
    order_id = fields.String()
    customer_id = fields.String()
    status = fields.String()
    amount = _money()
    limit = _money()
    exposure = _money()
    available = _money()
    override = fields.Dict(allow_none=True)


class ReleaseCreditOut(StrictSchema):
    order_id = fields.String()
    status = fields.String()
    released = _money()
    reservations = fields.List(fields.String())


class RecomputeOut(StrictSchema):
    run_id = fields.String()
    quarter = fields.String()
    trigger = fields.String()
    accounts = fields.Integer()
    changed = fields.Integer()
    finished = fields.Boolean()


class InvoiceLineOut(StrictSchema):
    id = fields.String()
    line_no = fields.Integer()
    delivery_line_id = fields.String()
    delivery_id = fields.String()
    delivery_number = fields.String(allow_none=True)
    order_id = fields.String(allow_none=True)
    order_number = fields.String(allow_none=True)
    order_line_id = fields.String(allow_none=True)
    sku = fields.String()
    quantity = fields.Integer()
    unit_price = _money()
    vat_rate = fields.Decimal(as_string=True)
    amount = _money()
    net = _money()
    tax = _money()
    reverses_line = fields.String(allow_none=True)
    reversed_quantity = fields.Integer()
    reversed_amount = _money()


class RedRefOut(StrictSchema):
    id = fields.String()
    number = fields.String()
    total = _money()
    issued_at = fields.DateTime()


class InvoiceOut(StrictSchema):
    id = fields.String()
    number = fields.String(allow_none=True)
    kind = fields.String()
    red = fields.Boolean()
    reverses = fields.String(allow_none=True)
    status = fields.String()
    payment_status = fields.String(allow_none=True)
    customer_id = fields.String()
    owner_id = fields.String(allow_none=True)
    owner_team = fields.String(allow_none=True)
    region = fields.String(allow_none=True)
    buyer_name = fields.String(allow_none=True)
    buyer_tax_id = fields.String(allow_none=True)
    buyer_bank = fields.Dict(allow_none=True)
    currency = fields.String()
    total = _money()
    net_total = _money()
    tax_total = _money()
    reversed_amount = _money()
    allocated_amount = _money()
    open_amount = _money(allow_none=True)
    due_date = fields.Date(allow_none=True)
    reason = fields.String(allow_none=True)
    return_id = fields.String(allow_none=True)
    remarks = fields.String(allow_none=True)
    created_by = fields.String(allow_none=True)
    created_at = fields.DateTime()
    certified_by = fields.String(allow_none=True)
    certified_at = fields.DateTime(allow_none=True)
    issued_by = fields.String(allow_none=True)
    issued_at = fields.DateTime(allow_none=True)
    cancelled_by = fields.String(allow_none=True)
    cancelled_at = fields.DateTime(allow_none=True)
    cancel_reason = fields.String(allow_none=True)
    settled_at = fields.DateTime(allow_none=True)
    lines = fields.List(fields.Nested(InvoiceLineOut))
    red_invoices = fields.List(fields.Nested(RedRefOut))
    allocations = fields.List(fields.Nested(lambda: AllocationOut()))


class AllocationOut(StrictSchema):
    id = fields.String()
    receipt_id = fields.String()
    invoice_id = fields.String()
    invoice_number = fields.String(allow_none=True)
    receipt_number = fields.String(allow_none=True)
    amount = _money()
    allocated_by = fields.String()
    allocated_at = fields.DateTime()
    note = fields.String(allow_none=True)
    reversed_by = fields.String(allow_none=True)
    reversed_at = fields.DateTime(allow_none=True)
    reversal_reason = fields.String(allow_none=True)


class ReceiptOut(StrictSchema):
    id = fields.String()
    number = fields.String()
    customer_id = fields.String()
    owner_id = fields.String(allow_none=True)
    owner_team = fields.String(allow_none=True)
    region = fields.String(allow_none=True)
    amount = _money()
    allocated_amount = _money()
    unallocated_amount = _money()
    currency = fields.String()
    method = fields.String()
    reference = fields.String(allow_none=True)
    received_at = fields.Date()
    note = fields.String(allow_none=True)
    status = fields.String()
    registered_by = fields.String()
    registered_at = fields.DateTime()
    confirmed_by = fields.String(allow_none=True)
    confirmed_at = fields.DateTime(allow_none=True)
    allocations = fields.List(fields.Nested(AllocationOut))


class LedgerEntryOut(StrictSchema):
    posted_at = fields.DateTime()
    kind = fields.String()
    document_id = fields.String()
    number = fields.String(allow_none=True)
    amount = _money()


class ConfirmationOut(StrictSchema):
    status = fields.String()
    contact = fields.String(allow_none=True)
    note = fields.String(allow_none=True)
    recorded_by = fields.String()
    recorded_at = fields.DateTime()


class StatementOut(StrictSchema):
    customer_id = fields.String()
    customer_name = fields.String(allow_none=True)
    month = fields.String()
    period_start = fields.Date()
    period_end = fields.Date()
    final = fields.Boolean()
    opening = _money()
    invoiced = _money()
    red = _money()
    received = _money()
    closing = _money()
    receivable = _money()
    unallocated = _money()
    entries = fields.List(fields.Nested(LedgerEntryOut))
    confirmation = fields.Nested(ConfirmationOut, allow_none=True)
    confirmation_history = fields.List(fields.Nested(ConfirmationOut))


class CampaignCustomerOut(StrictSchema):
    customer_id = fields.String()
    name = fields.String(allow_none=True)
    number = fields.String(allow_none=True)
    owner_id = fields.String(allow_none=True)
    owner_team = fields.String(allow_none=True)
    closing = _money()
    status = fields.String()


class CampaignOwnerOut(StrictSchema):
    owner_id = fields.String(allow_none=True)
    customers = fields.Integer()
    confirmed = fields.Integer()
    disputed = fields.Integer()
    pending = fields.Integer()
    completion = fields.Decimal(as_string=True)


class CampaignOut(StrictSchema):
    month = fields.String()
    final = fields.Boolean()
    customers = fields.Integer()
    confirmed = fields.Integer()
    disputed = fields.Integer()
    pending = fields.Integer()
    completion = fields.Decimal(as_string=True)
    by_owner = fields.List(fields.Nested(CampaignOwnerOut))
    items = fields.List(fields.Nested(CampaignCustomerOut))


class AgingBucketsOut(StrictSchema):
    current = _money()
    days_1_30 = _money()
    days_31_60 = _money()
    days_61_90 = _money()
    days_over_90 = _money()
    total = _money()


class AgingCustomerOut(AgingBucketsOut):
    customer_id = fields.String()
    name = fields.String(allow_none=True)
    owner_id = fields.String(allow_none=True)
    owner_team = fields.String(allow_none=True)
    region = fields.String(allow_none=True)
    oldest_due_date = fields.Date(allow_none=True)


class AgingOut(StrictSchema):
    as_of = fields.Date()
    totals = fields.Nested(AgingBucketsOut)
    dso = fields.Decimal(as_string=True, allow_none=True)
    dso_days = fields.Integer()
    customer_count = fields.Integer()
    customers = fields.List(fields.Nested(AgingCustomerOut))
    next_cursor = fields.String(allow_none=True)


class ReportGroupOut(StrictSchema):
    key = fields.String(allow_none=True)
    invoiced = _money()
    collected = _money()
    collection_rate = fields.Decimal(as_string=True, allow_none=True)
    receivable = _money()
    dso = fields.Decimal(as_string=True, allow_none=True)


class ReportOut(StrictSchema):
    period_start = fields.Date()
    period_end = fields.Date()
    group_by = fields.String()
    groups = fields.List(fields.Nested(ReportGroupOut))
    totals = fields.Nested(ReportGroupOut)


customer_created_data = CustomerCreatedData()
customer_updated_data = CustomerUpdatedData()
customer_owner_changed_data = CustomerOwnerChangedData()
goods_issued_data = GoodsIssuedData()
goods_returned_data = GoodsReturnedData()
order_cancelled_data = OrderCancelledData()

reserve_credit_input = ReserveCreditInput()
release_credit_input = ReleaseCreditInput()
set_credit_limit_input = SetCreditLimitInput()
recompute_input = RecomputeInput()
create_invoice_input = CreateInvoiceInput()
cancel_invoice_input = CancelInvoiceInput()
reverse_invoice_input = ReverseInvoiceInput()
receipt_input = ReceiptInput()
allocate_input = AllocateInput()
reverse_allocation_input = ReverseAllocationInput()
statement_input = StatementInput()
confirm_statement_input = ConfirmStatementInput()
campaign_input = CampaignInput()
invoice_filters = InvoiceFilters()
receipt_filters = ReceiptFilters()
aging_input = AgingInput()
report_input = ReportInput()

credit_account_out = CreditAccountOut()
credit_summary_out = CreditSummaryOut()
reserve_credit_out = ReserveCreditOut()
release_credit_out = ReleaseCreditOut()
recompute_out = RecomputeOut()
invoice_out = InvoiceOut()
receipt_out = ReceiptOut()
statement_out = StatementOut()
campaign_out = CampaignOut()
aging_out = AgingOut()
report_out = ReportOut()
