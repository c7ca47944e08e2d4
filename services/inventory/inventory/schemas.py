"""RPC inputs and outputs of the inventory service, and the events it consumes (validated again
here: a service never trusts its caller). Money is a decimal string with at most 2 places, a VAT
rate a decimal string below 1, a quantity an integer > 0; anything else is refused naming the
field, never rounded or coerced."""
import re
from decimal import Decimal, InvalidOperation

from marshmallow import EXCLUDE, ValidationError, fields, validate, validates_schema

from inventory import domain
from shared.validation import StrictSchema

MAX_QUANTITY = 1_000_000_000
MAX_LINES = 200
SKU = validate.Regexp(r"^[A-Za-z0-9][A-Za-z0-9._\-]{0,63}$",
                      error="1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit")
WAREHOUSE = validate.Regexp(r"^[A-Za-z0-9][A-Za-z0-9_\-]{0,31}$",
                            error="1 to 32 letters, digits, '_' or '-', starting with a letter or digit")
_MONEY = re.compile(r"^\d{1,16}(\.\d{1,2})?$")
_RATE = re.compile(r"^0(\.\d{1,4})?$")


class Money(fields.Field):
    """A decimal string with at most 2 places (`"1234.50"`); never a float."""

    default_error_messages = {"invalid": "a decimal string with at most 2 decimal places, e.g. \"1234.50\""}

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, str) or not _MONEY.match(value):
            raise self.make_error("invalid")
        return Decimal(value)

    def _serialize(self, value, attr, obj, **kwargs):
        return None if value is None else str(domain.money(value))


class Rate(fields.Field):
    """A VAT rate as a decimal string from 0 to below 1 (`"0.13"`)."""

    default_error_messages = {"invalid": "a decimal string from 0 to below 1 with at most 4 places, e.g. \"0.13\""}

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, str) or not _RATE.match(value):
            raise self.make_error("invalid")
        try:
            return Decimal(value)
        except InvalidOperation:
            raise self.make_error("invalid") from None

    def _serialize(self, value, attr, obj, **kwargs):
        if value is None:
            return None
        return format(Decimal(value).normalize(), "f")


def quantity(**kwargs):
    kwargs.setdefault("required", True)
    return fields.Integer(strict=True, validate=validate.Range(1, MAX_QUANTITY, error="must be a whole number from "
                                                                                      "1 to {max}"), **kwargs)


def sku_field(**kwargs):
    kwargs.setdefault("required", True)
    return fields.String(validate=SKU, **kwargs)


def reason_field(**kwargs):
    kwargs.setdefault("required", True)
    return fields.String(validate=validate.Length(1, 500), **kwargs)


def optional_text(max_length):
    return fields.String(load_default=None, allow_none=True, validate=validate.Length(1, max_length))


def lines_field(schema):
    return fields.List(fields.Nested(schema), required=True,
                       validate=validate.Length(1, MAX_LINES, error="between {min} and {max} lines"))


def refuse_duplicates(lines, key, field):
    """Two lines of one request naming the same thing are refused, naming the later line."""
    errors = {}
    for index in domain.duplicates([key(line) for line in lines]):
        errors[f"lines.{index}.{field}"] = [f"{field} appears on an earlier line"]
    if errors:
        raise ValidationError(errors)


# -- catalog ----------------------------------------------------------------------------------
class ProductInput(StrictSchema):
    sku = sku_field()
    name = fields.String(required=True, validate=validate.Length(1, 200))
    unit = fields.String(required=True, validate=validate.Length(1, 20))
    list_price = Money(required=True)
    floor_price = Money(required=True)
    vat_rate = Rate(load_default=domain.DEFAULT_VAT_RATE)
    warranty_months = fields.Integer(strict=True, load_default=domain.DEFAULT_WARRANTY_MONTHS,
                                     validate=validate.Range(0, 240))
    low_stock_threshold = fields.Integer(strict=True, load_default=0, validate=validate.Range(0, MAX_QUANTITY))
    active = fields.Boolean(load_default=True)


class ProductChanges(StrictSchema):
    name = fields.String(validate=validate.Length(1, 200))
    unit = fields.String(validate=validate.Length(1, 20))
    list_price = Money()
    floor_price = Money()
    vat_rate = Rate()
    warranty_months = fields.Integer(strict=True, validate=validate.Range(0, 240))
    low_stock_threshold = fields.Integer(strict=True, validate=validate.Range(0, MAX_QUANTITY))
    active = fields.Boolean()

    @validates_schema
    def something(self, data, **kwargs):
        if not data:
            raise ValidationError("send at least one field to change", "_schema")


class ProductFilters(StrictSchema):
    active = fields.Boolean(load_default=None, allow_none=True)
    q = optional_text(200)


# -- warehouses and stock ---------------------------------------------------------------------
class WarehouseInput(StrictSchema):
    code = fields.String(required=True, validate=WAREHOUSE)
    name = fields.String(required=True, validate=validate.Length(1, 200))
    address = optional_text(500)
    is_default = fields.Boolean(load_default=False)


class StockFilters(StrictSchema):
    sku = fields.String(load_default=None, allow_none=True, validate=SKU)
    warehouse = fields.String(load_default=None, allow_none=True, validate=WAREHOUSE)


class MovementFilters(StockFilters):
    kind = fields.String(load_default=None, allow_none=True, validate=validate.OneOf(sorted(domain.MOVEMENTS)))
    document_id = fields.UUID(load_default=None, allow_none=True)


class ReceiptLine(StrictSchema):
    sku = sku_field()
    quantity = quantity()


class ReceiptInput(StrictSchema):
    warehouse = fields.String(load_default=None, allow_none=True, validate=WAREHOUSE)
    lines = lines_field(ReceiptLine)
    reason = reason_field()

    @validates_schema
    def distinct(self, data, **kwargs):
        refuse_duplicates(data["lines"], lambda line: line["sku"], "sku")


class AdjustmentLine(StrictSchema):
    sku = sku_field()
    delta = fields.Integer(strict=True, required=True, validate=[
        validate.Range(-MAX_QUANTITY, MAX_QUANTITY),
        validate.NoneOf([0], error="must not be 0: an adjustment adds (positive) or removes (negative) units")])


class AdjustmentInput(StrictSchema):
    warehouse = fields.String(load_default=None, allow_none=True, validate=WAREHOUSE)
    lines = lines_field(AdjustmentLine)
    reason = reason_field()

    @validates_schema
    def distinct(self, data, **kwargs):
        refuse_duplicates(data["lines"], lambda line: line["sku"], "sku")


class ReverseInput(StrictSchema):
    document_id = fields.UUID(required=True)
    reason = reason_field()


# -- reservations -----------------------------------------------------------------------------
class Snapshot(StrictSchema):
    """The customer snapshot a customer's documents carry (docs/INTEGRATION.md)."""

    customer_id = fields.UUID(required=True)
    owner_id = fields.UUID(load_default=None, allow_none=True)
    owner_team = optional_text(100)
    region = optional_text(100)


class ReserveLine(StrictSchema):
    line_id = fields.UUID(required=True)
    sku = sku_field()
    quantity = quantity()
    unit_price = Money(required=True)
    vat_rate = Rate(load_default=None, allow_none=True)


class ReserveInput(Snapshot):
    reservation_id = fields.UUID(required=True)
    order_id = fields.UUID(required=True)
    order_number = optional_text(50)
    warehouse = fields.String(load_default=None, allow_none=True, validate=WAREHOUSE)
    lines = lines_field(ReserveLine)

    @validates_schema
    def distinct(self, data, **kwargs):
        refuse_duplicates(data["lines"], lambda line: line["line_id"], "line_id")


class ReleaseInput(StrictSchema):
    order_id = fields.UUID(required=True)
    reason = fields.String(load_default="released", validate=validate.Length(1, 500))


class ExpiryInput(StrictSchema):
    as_of = fields.AwareDateTime(load_default=None, allow_none=True)


# -- deliveries -------------------------------------------------------------------------------
class DeliveryLineInput(StrictSchema):
    sku = sku_field()
    quantity = quantity()
    order_line_id = fields.UUID(load_default=None, allow_none=True)


class CreateDeliveryInput(StrictSchema):
    order_id = fields.UUID(required=True)
    lines = lines_field(DeliveryLineInput)


class CancelDeliveryInput(StrictSchema):
    delivery_id = fields.UUID(required=True)
    reason = reason_field()


class DeliveryFilters(StrictSchema):
    order_id = fields.UUID(load_default=None, allow_none=True)
    customer_id = fields.UUID(load_default=None, allow_none=True)
    status = fields.String(load_default=None, allow_none=True,
                           validate=validate.OneOf(("pending", "issued", "cancelled")))


class ReturnLine(StrictSchema):
    sku = sku_field()
    quantity = quantity()
    delivery_line_id = fields.UUID(load_default=None, allow_none=True)


class ReceiveReturnInput(StrictSchema):
    return_id = fields.UUID(required=True)
    return_number = optional_text(50)
    delivery_id = fields.UUID(required=True)
    lines = lines_field(ReturnLine)


# -- loans ------------------------------------------------------------------------------------
class LoanLineInput(StrictSchema):
    sku = sku_field()
    quantity = quantity()


class IssueLoanInput(Snapshot):
    loan_id = fields.UUID(required=True)
    loan_number = optional_text(50)
    warehouse = fields.String(load_default=None, allow_none=True, validate=WAREHOUSE)
    lines = lines_field(LoanLineInput)

    @validates_schema
    def distinct(self, data, **kwargs):
        refuse_duplicates(data["lines"], lambda line: line["sku"], "sku")


class LoanReturnLine(StrictSchema):
    sku = sku_field()
    quantity = quantity()
    counted_quantity = fields.Integer(strict=True, required=True, validate=validate.Range(0, MAX_QUANTITY))


class ReturnLoanInput(StrictSchema):
    loan_id = fields.UUID(required=True)
    lines = lines_field(LoanReturnLine)

    @validates_schema
    def distinct(self, data, **kwargs):
        refuse_duplicates(data["lines"], lambda line: line["sku"], "sku")


class ConvertLine(StrictSchema):
    order_line_id = fields.UUID(required=True)
    sku = sku_field()
    quantity = quantity()
    unit_price = Money(required=True)
    vat_rate = Rate(load_default=None, allow_none=True)


class ConvertLoanInput(StrictSchema):
    loan_id = fields.UUID(required=True)
    order_id = fields.UUID(required=True)
    order_number = optional_text(50)
    lines = lines_field(ConvertLine)

    @validates_schema
    def distinct(self, data, **kwargs):
        refuse_duplicates(data["lines"], lambda line: line["order_line_id"], "order_line_id")


# -- reports ----------------------------------------------------------------------------------
class ReportInput(StrictSchema):
    period_start = fields.Date(required=True)
    period_end = fields.Date(required=True)
    group_by = fields.String(required=True, validate=validate.OneOf(sorted(domain.REPORT_GROUPS)))

    @validates_schema
    def ordered(self, data, **kwargs):
        if data["period_end"] < data["period_start"]:
            raise ValidationError({"period_end": ["must not be before period_start"]})


# -- events consumed (each declares exactly what this service reads) ---------------------------
class OrderConfirmedData(StrictSchema):
    class Meta:
        unknown = EXCLUDE

    order_id = fields.UUID(required=True)


class OrderCancelledData(StrictSchema):
    class Meta:
        unknown = EXCLUDE

    order_id = fields.UUID(required=True)
    reason = fields.String(load_default=None, allow_none=True)


class CustomerOwnerChangedData(StrictSchema):
    class Meta:
        unknown = EXCLUDE

    customer_id = fields.UUID(required=True)
    owner_id = fields.UUID(required=True, allow_none=True)
    owner_team = fields.String(load_default=None, allow_none=True)


class CustomerUpdatedData(StrictSchema):
    class Meta:
        unknown = EXCLUDE

    customer_id = fields.UUID(required=True)
    region = fields.String(allow_none=True)  # absent: the region did not change


# -- outputs ----------------------------------------------------------------------------------
class Out(StrictSchema):
    class Meta:
        unknown = EXCLUDE


class PriceOut(Out):
    list_price = Money()
    floor_price = Money()
    vat_rate = Rate()
    changed_by = fields.String(allow_none=True)
    changed_at = fields.DateTime()


class ProductOut(Out):
    sku = fields.String()
    name = fields.String()
    unit = fields.String()
    list_price = Money()
    floor_price = Money()
    vat_rate = Rate()
    warranty_months = fields.Integer()
    low_stock_threshold = fields.Integer()
    active = fields.Boolean()
    created_at = fields.DateTime()
    updated_at = fields.DateTime()
    version = fields.Integer()
    price_history = fields.List(fields.Nested(PriceOut))


class WarehouseOut(Out):
    code = fields.String()
    name = fields.String()
    address = fields.String(allow_none=True)
    is_default = fields.Boolean()
    created_at = fields.DateTime()


class StockLevelOut(Out):
    sku = fields.String()
    name = fields.String()
    unit = fields.String()
    warehouse = fields.String()
    on_hand = fields.Integer()
    reserved = fields.Integer()
    available = fields.Integer()
    on_loan = fields.Integer()
    low_stock_threshold = fields.Integer()
    updated_at = fields.DateTime()


class MovementOut(Out):
    id = fields.Integer()
    sku = fields.String()
    warehouse = fields.String()
    kind = fields.String()
    quantity = fields.Integer()
    on_hand_delta = fields.Integer()
    reserved_delta = fields.Integer()
    on_loan_delta = fields.Integer()
    document_kind = fields.String()
    document_id = fields.String()
    document_number = fields.String(allow_none=True)
    reason = fields.String(allow_none=True)
    actor_id = fields.String(allow_none=True)
    occurred_at = fields.DateTime()


class DocumentLineOut(Out):
    line_no = fields.Integer()
    sku = fields.String()
    quantity = fields.Integer()
    delivery_line_id = fields.String(allow_none=True)
    order_line_id = fields.String(allow_none=True)
    unit_price = Money(allow_none=True)
    vat_rate = Rate(allow_none=True)


class DocumentOut(Out):
    id = fields.String()
    number = fields.String()
    kind = fields.String()
    warehouse = fields.String()
    reason = fields.String(allow_none=True)
    reverses_id = fields.String(allow_none=True)
    reversed_by = fields.String(allow_none=True)
    delivery_id = fields.String(allow_none=True)
    order_id = fields.String(allow_none=True)
    loan_id = fields.String(allow_none=True)
    return_id = fields.String(allow_none=True)
    return_number = fields.String(allow_none=True)
    posted_by = fields.String(allow_none=True)
    posted_at = fields.DateTime()
    lines = fields.List(fields.Nested(DocumentLineOut))


class SnapshotOut(Out):
    customer_id = fields.String()
    owner_id = fields.String(allow_none=True)
    owner_team = fields.String(allow_none=True)
    region = fields.String(allow_none=True)


class ReservationLineOut(Out):
    line_id = fields.String()
    sku = fields.String()
    quantity = fields.Integer()
    unit_price = Money()
    vat_rate = Rate()
    allocated = fields.Integer()
    issued = fields.Integer()


class ReservationOut(SnapshotOut):
    reservation_id = fields.String(attribute="id")
    order_id = fields.String()
    order_number = fields.String(allow_none=True)
    status = fields.String()
    warehouse = fields.String()
    hold_until = fields.DateTime()
    created_at = fields.DateTime()
    committed_at = fields.DateTime(allow_none=True)
    closed_at = fields.DateTime(allow_none=True)
    close_reason = fields.String(allow_none=True)
    lines = fields.List(fields.Nested(ReservationLineOut))


class DeliveryLineOut(Out):
    id = fields.String()
    line_no = fields.Integer()
    order_line_id = fields.String(allow_none=True)
    sku = fields.String()
    quantity = fields.Integer()
    unit_price = Money()
    vat_rate = Rate()
    amount = fields.Method("line_amount")
    returned = fields.Integer()

    def line_amount(self, line):
        return str(domain.line_amount(line["quantity"], line["unit_price"]))


class DeliveryOut(SnapshotOut):
    id = fields.String()
    number = fields.String()
    order_id = fields.String()
    order_number = fields.String(allow_none=True)
    reservation_id = fields.String(allow_none=True)
    loan_id = fields.String(allow_none=True)
    warehouse = fields.String()
    status = fields.String()
    total = fields.Method("delivery_total")
    goods_issue_id = fields.String(allow_none=True)
    goods_issue_number = fields.String(allow_none=True)
    created_by = fields.String(allow_none=True)
    created_at = fields.DateTime()
    issued_by = fields.String(allow_none=True)
    issued_at = fields.DateTime(allow_none=True)
    cancelled_by = fields.String(allow_none=True)
    cancelled_at = fields.DateTime(allow_none=True)
    cancel_reason = fields.String(allow_none=True)
    lines = fields.List(fields.Nested(DeliveryLineOut))

    def delivery_total(self, delivery):
        return str(domain.money(sum((domain.line_amount(line["quantity"], line["unit_price"])
                                     for line in delivery["lines"]), Decimal(0))))


class LoanLineOut(Out):
    sku = fields.String()
    lent = fields.Integer(attribute="quantity")
    returned = fields.Integer()
    converted = fields.Integer()
    still_out = fields.Method("out")

    def out(self, line):
        return line["quantity"] - line["returned"] - line["converted"]


class LoanOut(SnapshotOut):
    loan_id = fields.String(attribute="id")
    loan_number = fields.String(attribute="number", allow_none=True)
    warehouse = fields.String()
    status = fields.String()
    issue_document_id = fields.String()
    created_at = fields.DateTime()
    closed_at = fields.DateTime(allow_none=True)
    lines = fields.List(fields.Nested(LoanLineOut))


product_input = ProductInput()
product_changes = ProductChanges()
product_filters = ProductFilters()
warehouse_input = WarehouseInput()
stock_filters = StockFilters()
movement_filters = MovementFilters()
receipt_input = ReceiptInput()
adjustment_input = AdjustmentInput()
reverse_input = ReverseInput()
reserve_input = ReserveInput()
release_input = ReleaseInput()
expiry_input = ExpiryInput()
create_delivery_input = CreateDeliveryInput()
cancel_delivery_input = CancelDeliveryInput()
delivery_filters = DeliveryFilters()
receive_return_input = ReceiveReturnInput()
issue_loan_input = IssueLoanInput()
return_loan_input = ReturnLoanInput()
convert_loan_input = ConvertLoanInput()
report_input = ReportInput()
order_confirmed_data = OrderConfirmedData()
order_cancelled_data = OrderCancelledData()
customer_owner_changed_data = CustomerOwnerChangedData()
customer_updated_data = CustomerUpdatedData()
product_out = ProductOut()
warehouse_out = WarehouseOut()
stock_level_out = StockLevelOut()
movement_out = MovementOut()
document_out = DocumentOut()
reservation_out = ReservationOut()
delivery_out = DeliveryOut()
loan_out = LoanOut()
