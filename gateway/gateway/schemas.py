"""The gateway's HTTP schemas. The same classes validate requests and generate the OpenAPI
document (gateway.openapi), so the two cannot drift. Request schemas refuse unknown fields.

A request schema's `example` is shown in the OpenAPI document (and checked by a test to pass
its own schema).
"""
from marshmallow import Schema, fields, validate

from shared.pagination import DEFAULT_LIMIT, MAX_LIMIT
from shared.validation import StrictSchema

ROLES = (  # API.md "Roles"
    "admin", "general_manager", "sales_director", "marketing_director", "sales_manager", "sales_rep",
    "order_desk", "product_manager", "warehouse", "finance", "service_engineer", "integration",
)
SIZES = ("micro", "small", "medium", "large", "enterprise")
SOURCES = (
    "trade_fair", "trade_press", "internet", "industry_association",
    "mall_listing", "partner_referral", "company_data", "competitor_media",
)
STATUSES = ("potential", "tracking", "progressing", "key", "loi_signed", "signed")


def _text(max_length, required=False, min_length=None, **kwargs):
    length = validate.Length(min=min_length if min_length is not None else (1 if required else None),
                             max=max_length)
    if required:
        return fields.String(required=True, validate=length, **kwargs)
    return fields.String(allow_none=True, validate=length, **kwargs)


# -- problems (RFC 9457) ----------------------------------------------------------------------
class Problem(Schema):
    type = fields.String(required=True, metadata={"description": "URI naming the kind of problem"})
    title = fields.String(required=True)
    status = fields.Integer(required=True)
    detail = fields.String(required=True)
    code = fields.String(required=True, metadata={
        "description": "machine code: VALIDATION_FAILED, NOT_FOUND, DUPLICATE_CUSTOMER, ..."})
    errors = fields.Dict(keys=fields.String(), values=fields.List(fields.String()), metadata={
        "description": "422: field name -> messages"})
    instance = fields.String(metadata={"description": "the request path"})


# -- pagination ------------------------------------------------------------------------------
class PageQuery(StrictSchema):
    limit = fields.Integer(load_default=DEFAULT_LIMIT, validate=validate.Range(1, MAX_LIMIT),
                           metadata={"description": f"page size, 1 to {MAX_LIMIT}"})
    cursor = fields.String(load_default=None, validate=validate.Length(max=1000),
                           metadata={"description": "opaque: the next_cursor of the previous page"})


def page_schema(name, item):
    """`{"items": [item], "next_cursor": str|null}` as a named schema class (for OpenAPI)."""
    return type(name, (Schema,), {
        "items": fields.List(fields.Nested(item), required=True),
        "next_cursor": fields.String(allow_none=True, required=True),
    })


# -- auth ------------------------------------------------------------------------------------
class TokenRequest(StrictSchema):
    username = _text(100, required=True)
    password = _text(1024, required=True)

    example = {"username": "rep1", "password": "correct horse battery staple"}


class TokenOut(Schema):
    access_token = fields.String(required=True)
    token_type = fields.String(required=True, metadata={"example": "bearer"})
    expires_in = fields.Integer(required=True, metadata={"description": "seconds"})


class MeOut(Schema):
    staff_id = fields.UUID(required=True)
    username = fields.String(required=True)
    role = fields.String(required=True, validate=validate.OneOf(ROLES))
    display_name = fields.String(required=True)
    credential = fields.String(required=True, validate=validate.OneOf(("password", "api_key")))


# -- users -----------------------------------------------------------------------------------
class UserCreate(StrictSchema):
    username = fields.String(required=True, validate=validate.Regexp(
        r"^[A-Za-z0-9][A-Za-z0-9._-]{2,63}$", error="3 to 64 letters, digits, '.', '_' or '-'"))
    password = fields.String(required=True, load_only=True, validate=validate.Length(8, 1024))
    role = fields.String(required=True, validate=validate.OneOf(ROLES))
    display_name = _text(200, required=True)
    manager = fields.UUID(allow_none=True, metadata={"description": "staff id of the direct manager"})
    team = _text(100)
    region = _text(100)

    example = {"username": "rep1", "password": "s3cret-enough", "role": "sales_rep",
               "display_name": "Wang Fang", "manager": "6f1c1f0e-6d3b-4b7c-9a55-3d1f0b2a9c10",
               "team": "East-1", "region": "East China"}


class UserOut(Schema):
    staff_id = fields.UUID(required=True)
    username = fields.String(required=True)
    role = fields.String(required=True)
    display_name = fields.String(required=True)
    manager = fields.UUID(allow_none=True)
    team = fields.String(allow_none=True)
    region = fields.String(allow_none=True)


class UserListItem(Schema):
    staff_id = fields.UUID(required=True)
    username = fields.String(required=True)
    role = fields.String(required=True)
    display_name = fields.String(required=True)
    active = fields.Boolean(required=True)
    created_at = fields.DateTime(required=True)


# -- API keys --------------------------------------------------------------------------------
class ApiKeyCreate(StrictSchema):
    name = _text(100, required=True)
    role = fields.String(required=True, validate=validate.OneOf(ROLES))

    example = {"name": "ERP sync", "role": "integration"}


class ApiKeyOut(Schema):
    id = fields.UUID(required=True)
    name = fields.String(required=True)
    role = fields.String(required=True)
    staff_id = fields.UUID(required=True)
    key_prefix = fields.String(required=True, metadata={"description": "the key's first characters"})
    active = fields.Boolean(required=True)
    created_at = fields.DateTime(required=True)


class ApiKeyCreated(ApiKeyOut):
    key = fields.String(allow_none=True, required=True, metadata={
        "description": "the key itself, shown only in this answer (null in an Idempotency-Key replay); "
                       "send it as `Authorization: Bearer <key>`"})


# -- customers -------------------------------------------------------------------------------
class ContactIn(StrictSchema):
    name = _text(100, required=True)
    position = _text(100)
    phone = _text(50)
    email = fields.Email(allow_none=True)
    decision_maker = fields.Boolean(load_default=False)


class BankAccountIn(StrictSchema):
    bank_name = _text(200, required=True)
    account_no = fields.String(required=True, validate=validate.Regexp(
        r"^[0-9 \-]{6,40}$", error="6 to 40 digits, spaces or dashes"))


class CustomerCreate(StrictSchema):
    name = _text(200, required=True)
    tax_id = fields.String(allow_none=True, validate=validate.Regexp(
        r"^[0-9A-Za-z]{15,20}$", error="15 to 20 letters or digits"),
        metadata={"description": "unified social credit code (18 characters) or older tax id"})
    industry = _text(100, required=True)
    size = fields.String(required=True, validate=validate.OneOf(SIZES))
    region = _text(100, required=True)
    address = _text(500)
    source = fields.String(required=True, validate=validate.OneOf(SOURCES))
    status = fields.String(validate=validate.OneOf(STATUSES), metadata={"description": "default potential"})
    contacts = fields.List(fields.Nested(ContactIn))
    bank_account = fields.Nested(BankAccountIn, allow_none=True)
    needs = _text(4000)

    example = {
        "name": "Suzhou Hengli Precision Machinery Co., Ltd.", "tax_id": "91320500MA1MXX7L2K",
        "industry": "machinery", "size": "medium", "region": "East China",
        "address": "88 Xinghu St, Suzhou Industrial Park", "source": "trade_fair", "status": "potential",
        "contacts": [{"name": "Li Wei", "position": "purchasing head", "phone": "+86 512 6666 8888",
                      "email": "li.wei@example.cn", "decision_maker": True}],
        "bank_account": {"bank_name": "ICBC Suzhou Branch", "account_no": "1102 0206 0900 1234 567"},
        "needs": "CNC spare parts, quarterly",
    }


class CustomerQuery(PageQuery):
    owner = fields.UUID(load_default=None, metadata={"description": "owner's staff id"})
    status = fields.String(load_default=None, validate=validate.OneOf(STATUSES))
    region = _text(100, load_default=None)
    industry = _text(100, load_default=None)
    q = _text(200, load_default=None, metadata={"description": "text in the name"})


class ContactOut(Schema):
    id = fields.UUID()
    name = fields.String()
    position = fields.String(allow_none=True)
    phone = fields.String(allow_none=True)
    email = fields.String(allow_none=True)
    decision_maker = fields.Boolean()


class CustomerOut(Schema):
    id = fields.UUID(required=True)
    number = fields.String(required=True, metadata={"example": "CUS-2026-000123"})
    name = fields.String(required=True)
    tax_id = fields.String(allow_none=True)
    industry = fields.String()
    size = fields.String()
    region = fields.String()
    address = fields.String(allow_none=True)
    source = fields.String()
    status = fields.String(required=True)
    needs = fields.String(allow_none=True)
    bank_account = fields.Dict(allow_none=True)
    owner_id = fields.UUID(allow_none=True, required=True, metadata={"description": "null: in the pool"})
    owner_name = fields.String(allow_none=True, required=True)
    contact_due_by = fields.DateTime(allow_none=True, required=True)
    created_by = fields.UUID(allow_none=True)
    created_at = fields.DateTime(required=True)
    updated_at = fields.DateTime()
    contacts = fields.List(fields.Nested(ContactOut))


class CreditAccountOut(Schema):
    customer_id = fields.UUID(required=True)
    limit = fields.String(metadata={"description": "decimal string, CNY"})
    grade = fields.String(allow_none=True)
    exposure = fields.String(metadata={"description": "decimal string, CNY"})
    available = fields.String(metadata={"description": "decimal string, CNY"})
    history = fields.List(fields.Dict())


CustomerPage = page_schema("CustomerPage", CustomerOut)
UserPage = page_schema("UserPage", UserListItem)
ApiKeyPage = page_schema("ApiKeyPage", ApiKeyOut)
