"""The gateway's common HTTP schemas (problems, pagination) and those of auth, users and API keys;
each area's own schemas live beside its endpoints in gateway/api/<area>.py. The same classes
validate requests and generate the OpenAPI document (gateway.openapi), so the two cannot drift.
Request schemas refuse unknown fields.

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


def text(max_length, required=False, min_length=None, **kwargs):
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
    username = text(100, required=True)
    password = text(1024, required=True)

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
    display_name = text(200, required=True)
    manager = fields.UUID(allow_none=True, metadata={"description": "staff id of the direct manager"})
    team = text(100)
    region = text(100)

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
    name = text(100, required=True)
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


UserPage = page_schema("UserPage", UserListItem)
ApiKeyPage = page_schema("ApiKeyPage", ApiKeyOut)
