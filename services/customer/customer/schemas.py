"""RPC inputs and outputs of the customer service (validated again here: never trust the caller)."""
from marshmallow import fields, validate

from customer import domain
from shared.access import ROLES
from shared.validation import StrictSchema


class StaffInput(StrictSchema):
    id = fields.UUID(load_default=None)
    username = fields.String(required=True, validate=validate.Length(1, 100))
    display_name = fields.String(required=True, validate=validate.Length(1, 200))
    role = fields.String(required=True, validate=validate.OneOf(ROLES))
    manager_id = fields.UUID(load_default=None, allow_none=True)
    team = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=100))
    region = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=100))


class ContactInput(StrictSchema):
    name = fields.String(required=True, validate=validate.Length(1, 100))
    position = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=100))
    phone = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=50))
    email = fields.Email(load_default=None, allow_none=True)
    decision_maker = fields.Boolean(load_default=False)  # FR-15


class BankAccountInput(StrictSchema):
    bank_name = fields.String(required=True, validate=validate.Length(1, 200))
    account_no = fields.String(required=True, validate=validate.Regexp(r"^[0-9 \-]{6,40}$"))


class CustomerInput(StrictSchema):
    name = fields.String(required=True, validate=validate.Length(1, 200))
    tax_id = fields.String(load_default=None, allow_none=True,
                           validate=validate.Regexp(r"^[0-9A-Za-z]{15,20}$", error="15 to 20 letters or digits"))
    industry = fields.String(required=True, validate=validate.Length(1, 100))
    size = fields.String(required=True, validate=validate.OneOf(domain.SIZES))
    region = fields.String(required=True, validate=validate.Length(1, 100))
    address = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=500))
    source = fields.String(required=True, validate=validate.OneOf(domain.SOURCES))
    status = fields.String(load_default="potential", validate=validate.OneOf(domain.STATUSES))
    needs = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=4000))
    contacts = fields.List(fields.Nested(ContactInput), load_default=list)
    bank_account = fields.Nested(BankAccountInput, load_default=None, allow_none=True)


class CustomerFilters(StrictSchema):
    owner = fields.UUID(load_default=None, allow_none=True)
    status = fields.String(load_default=None, allow_none=True, validate=validate.OneOf(domain.STATUSES))
    region = fields.String(load_default=None, allow_none=True)
    industry = fields.String(load_default=None, allow_none=True)
    q = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=200))


class StaffOut(StrictSchema):
    id = fields.String()
    username = fields.String()
    display_name = fields.String()
    role = fields.String()
    manager_id = fields.String(allow_none=True)
    team = fields.String(allow_none=True)
    region = fields.String(allow_none=True)
    active = fields.Boolean()
    created_at = fields.DateTime()


class ContactOut(StrictSchema):
    id = fields.String()
    name = fields.String()
    position = fields.String(allow_none=True)
    phone = fields.String(allow_none=True)
    email = fields.String(allow_none=True)
    decision_maker = fields.Boolean()


class CustomerOut(StrictSchema):
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
    bank_account = fields.Dict(allow_none=True)
    owner_id = fields.String(allow_none=True)
    owner_name = fields.String(allow_none=True)
    contact_due_by = fields.DateTime(allow_none=True)
    created_by = fields.String(allow_none=True)
    created_at = fields.DateTime()
    updated_at = fields.DateTime()
    contacts = fields.List(fields.Nested(ContactOut))


staff_input = StaffInput()
customer_input = CustomerInput()
customer_filters = CustomerFilters()
staff_out = StaffOut()
customer_out = CustomerOut()
