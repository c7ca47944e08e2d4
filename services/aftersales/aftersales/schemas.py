"""RPC inputs and outputs of the aftersales service (validated again here: never trust the caller),
and the `<Event>Data` schemas of the events it consumes (exactly the fields it reads; the rest of
a producer's payload is ignored, not refused)."""
from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate, validates_schema

from aftersales import domain
from shared.validation import StrictSchema

TEXT = 4000


def _text(max_length=TEXT, required=False):
    if required:
        return fields.String(required=True, validate=validate.Length(1, max_length))
    return fields.String(load_default=None, allow_none=True, validate=validate.Length(max=max_length))


# -- commands ----------------------------------------------------------------------------------
class ServiceRequestInput(StrictSchema):
    customer_id = fields.UUID(required=True)
    sku = fields.String(required=True, validate=validate.Length(1, 64))
    delivery_id = fields.UUID(load_default=None, allow_none=True)
    type = fields.String(required=True, validate=validate.OneOf(domain.TYPES))
    priority = fields.String(required=True, validate=validate.OneOf(domain.PRIORITIES))
    description = _text(required=True)

    @validates_schema
    def delivery_for_a_unit(self, data, **kwargs):
        if data.get("type") in domain.PRODUCT_BOUND and data.get("delivery_id") is None:
            raise ValidationError(["required for a repair, replacement or return request: the delivery the "
                                   "product came from"], "delivery_id")


class RequestRef(StrictSchema):
    service_request_id = fields.UUID(required=True)


class ConfirmInput(RequestRef):
    note = _text()


class AssignInput(RequestRef):
    engineer_id = fields.UUID(required=True)
    note = _text()


class StartInput(RequestRef):
    note = _text()


class RepairStepInput(RequestRef):
    step = fields.String(required=True, validate=validate.OneOf(domain.REPAIR_STEPS))
    note = _text()
    amount = fields.Decimal(load_default=None, allow_none=True, places=2, as_string=True,
                            validate=validate.Range(min=0, min_inclusive=False))

    @validates_schema
    def step_fields(self, data, **kwargs):
        if data.get("step") == "quote" and data.get("amount") is None:
            raise ValidationError(["required to quote a repair (CNY, VAT included)"], "amount")
        if data.get("step") != "quote" and data.get("amount") is not None:
            raise ValidationError(["only a quote has an amount"], "amount")
        if data.get("step") == "diagnose" and not data.get("note"):
            raise ValidationError(["required: the diagnosis"], "note")


class ResolveInput(RequestRef):
    resolution = _text(required=True)
    action = fields.String(required=True, validate=validate.OneOf(domain.ACTIONS))
    quantity = fields.Integer(load_default=None, allow_none=True, strict=True,
                              validate=validate.Range(min=1, max=100000))

    @validates_schema
    def quantity_for_goods(self, data, **kwargs):
        if data.get("quantity") is not None and data.get("action") not in domain.ACTION_TARGETS:
            raise ValidationError(["only a return or a replacement has a quantity"], "quantity")


class FeedbackInput(RequestRef):
    rating = fields.Integer(required=True, strict=True, validate=validate.Range(
        min=1, max=5, error="must be a whole number from 1 to 5"))
    comment = _text()


class RequestFilters(StrictSchema):
    status = fields.String(load_default=None, allow_none=True, validate=validate.OneOf(domain.STATUSES))
    overdue = fields.Boolean(load_default=None, allow_none=True)
    active = fields.Boolean(load_default=None, allow_none=True)
    escalated = fields.Boolean(load_default=None, allow_none=True)
    customer_id = fields.UUID(load_default=None, allow_none=True)
    type = fields.String(load_default=None, allow_none=True, validate=validate.OneOf(domain.TYPES))
    priority = fields.String(load_default=None, allow_none=True, validate=validate.OneOf(domain.PRIORITIES))
    engineer = fields.UUID(load_default=None, allow_none=True)
    sku = fields.String(load_default=None, allow_none=True, validate=validate.Length(1, 64))


class ReportInput(StrictSchema):
    period_start = fields.Date(required=True)
    period_end = fields.Date(required=True)
    group_by = fields.String(required=True, validate=validate.OneOf(domain.REPORT_GROUPS))

    @validates_schema
    def ordered(self, data, **kwargs):
        if data.get("period_start") and data.get("period_end") and data["period_end"] < data["period_start"]:
            raise ValidationError(["must not be before period_start"], "period_end")


class AsOfInput(StrictSchema):
    as_of = fields.AwareDateTime(load_default=None, allow_none=True)


# -- answers -----------------------------------------------------------------------------------
class RepairOut(Schema):
    status = fields.String()
    in_warranty = fields.Boolean()
    warranty_until = fields.Date(allow_none=True)
    diagnosis = fields.String(allow_none=True)
    quote_amount = fields.Decimal(as_string=True, places=2, allow_none=True)
    repaired = fields.Boolean()
    received_at = fields.DateTime()
    updated_at = fields.DateTime()


class ActionOut(Schema):
    kind = fields.String()
    target = fields.String()
    request_id = fields.String()
    status = fields.String()
    attempts = fields.Integer()
    next_attempt_at = fields.DateTime(allow_none=True)
    last_error = fields.String(allow_none=True)
    result = fields.Dict(allow_none=True)
    done_at = fields.DateTime(allow_none=True)


class StepOut(Schema):
    step = fields.String()
    from_status = fields.String(allow_none=True)
    to_status = fields.String(allow_none=True)
    actor_id = fields.String()
    actor_role = fields.String()
    actor_username = fields.String(allow_none=True)
    note = fields.String(allow_none=True)
    details = fields.Dict()
    occurred_at = fields.DateTime()


class ServiceRequestOut(Schema):
    id = fields.String()
    number = fields.String()
    type = fields.String()
    priority = fields.String()
    status = fields.String()
    description = fields.String()
    customer_id = fields.String()
    customer_name = fields.String(allow_none=True)
    owner_id = fields.String(allow_none=True)
    owner_team = fields.String(allow_none=True)
    region = fields.String(allow_none=True)
    sku = fields.String()
    product_name = fields.String(allow_none=True)
    delivery_id = fields.String(allow_none=True)
    delivery_number = fields.String(allow_none=True)
    delivered_at = fields.DateTime(allow_none=True)
    warranty_until = fields.Date(allow_none=True)
    in_warranty = fields.Boolean(allow_none=True)
    repeat_of = fields.String(allow_none=True)
    sla_hours = fields.Float()
    opened_at = fields.DateTime()
    opened_by = fields.String()
    due_at = fields.DateTime()
    overdue = fields.Boolean()
    confirmed_at = fields.DateTime(allow_none=True)
    confirmed_by = fields.String(allow_none=True)
    engineer_id = fields.String(allow_none=True)
    engineer_name = fields.String(allow_none=True)
    assigned_at = fields.DateTime(allow_none=True)
    assignment_count = fields.Integer()
    started_at = fields.DateTime(allow_none=True)
    escalated = fields.Boolean()
    escalated_at = fields.DateTime(allow_none=True)
    escalated_to = fields.String(allow_none=True)
    escalated_to_name = fields.String(allow_none=True)
    resolved_at = fields.DateTime(allow_none=True)
    resolved_by = fields.String(allow_none=True)
    resolution = fields.String(allow_none=True)
    action = fields.String(allow_none=True)
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
    history = fields.List(fields.Nested(StepOut))


# -- consumed events (`<Event>Data`: what this service reads of each) ---------------------------
class _Consumed(Schema):
    class Meta:
        unknown = EXCLUDE


class GoodsIssuedLine(_Consumed):
    delivery_line_id = fields.UUID(required=True)
    sku = fields.String(required=True, validate=validate.Length(1, 64))
    quantity = fields.Integer(required=True, validate=validate.Range(min=1))


class GoodsIssuedData(_Consumed):
    """inventory `goods.issued`: what reached which customer, when (delivered products)."""

    delivery_id = fields.UUID(required=True)
    delivery_number = fields.String(load_default=None, allow_none=True)
    order_id = fields.UUID(load_default=None, allow_none=True)
    order_number = fields.String(load_default=None, allow_none=True)
    loan_id = fields.UUID(load_default=None, allow_none=True)
    issued_at = fields.AwareDateTime(required=True)
    customer_id = fields.UUID(required=True)
    lines = fields.List(fields.Nested(GoodsIssuedLine), required=True, validate=validate.Length(min=1))


class ProductCreatedData(_Consumed):
    """inventory `product.created`: the product's name and warranty period."""

    sku = fields.String(required=True, validate=validate.Length(1, 64))
    name = fields.String(load_default=None, allow_none=True)
    warranty_months = fields.Integer(load_default=None, allow_none=True, validate=validate.Range(min=0))
    active = fields.Boolean(load_default=None, allow_none=True)


class ProductPriceChangedData(ProductCreatedData):
    """inventory `product.price_changed`: carries the whole product, warranty included."""


class CustomerCreatedData(_Consumed):
    """customer `customer.created`: the customer snapshot."""

    customer_id = fields.UUID(required=True)
    number = fields.String(load_default=None, allow_none=True)
    name = fields.String(load_default=None, allow_none=True)
    owner_id = fields.UUID(load_default=None, allow_none=True)
    owner_team = fields.String(load_default=None, allow_none=True)
    region = fields.String(load_default=None, allow_none=True)


class CustomerOwnerChangedData(_Consumed):
    """customer `customer.owner_changed`: the new owner (None: back to the pool) and their team."""

    customer_id = fields.UUID(required=True)
    owner_id = fields.UUID(required=True, allow_none=True)
    owner_team = fields.String(load_default=None, allow_none=True)


class CustomerUpdatedData(_Consumed):
    """customer `customer.updated`: the changed profile fields (absent: unchanged)."""

    customer_id = fields.UUID(required=True)
    name = fields.String(allow_none=True)
    region = fields.String(allow_none=True)


service_request_input = ServiceRequestInput()
confirm_input = ConfirmInput()
assign_input = AssignInput()
start_input = StartInput()
repair_step_input = RepairStepInput()
resolve_input = ResolveInput()
feedback_input = FeedbackInput()
request_ref = RequestRef()
request_filters = RequestFilters()
report_input = ReportInput()
as_of_input = AsOfInput()
service_request_out = ServiceRequestOut()
goods_issued_data = GoodsIssuedData()
product_created_data = ProductCreatedData()
product_price_changed_data = ProductPriceChangedData()
customer_created_data = CustomerCreatedData()
customer_owner_changed_data = CustomerOwnerChangedData()
customer_updated_data = CustomerUpdatedData()


# -- what the collaborators answer (only what we read; declared on the ServiceRpc dependencies) ----
class _Answer(Schema):
    class Meta:
        unknown = EXCLUDE


class CustomerAnswer(_Answer):
    """customer.get_customer: the snapshot a request keeps (service.open_request)."""
    number = fields.String(allow_none=True)
    name = fields.String(allow_none=True)
    owner_id = fields.String(allow_none=True)
    owner_team = fields.String(allow_none=True)
    region = fields.String(allow_none=True)


class ApproverAnswer(_Answer):
    """customer.find_approver: who an overdue request escalates to (service._escalate)."""
    id = fields.String(required=True)
    display_name = fields.String(allow_none=True)
