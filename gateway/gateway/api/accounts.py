"""API.md "Conventions" (auth) and "Org, users, targets" (users; API keys for integrations; the
org chart the customer service keeps: staff, their authorities, and the territories)."""
from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from gateway import accounts, auth
from gateway.auth import ADMIN, EVERYONE
from gateway.http import Reply, api, plain
from gateway.schemas import (
    ROLES, ApiKeyCreate, ApiKeyCreated, ApiKeyPage, MeOut, PageQuery, TokenOut, TokenRequest, UserCreate, UserOut,
    UserPage, page_schema, text,
)
from shared.validation import StrictSchema

API = "/api/v1"
FRACTION = dict(places=4, as_string=True, validate=validate.Range(0, 1))


class UserUpdate(StrictSchema):
    """Only the fields sent change; the login follows the org chart (role, team, name, active)."""

    display_name = fields.String(validate=validate.Length(1, 200))
    role = fields.String(validate=validate.OneOf(ROLES))
    manager = fields.UUID(allow_none=True, metadata={"description": "staff id of the direct manager"})
    team = text(100)
    region = text(100)
    territory = text(50, metadata={"description": "code of a market or area (PUT /territories/{code})"})
    capacity = fields.Decimal(places=2, as_string=True, validate=validate.Range(0.1, 100), metadata={
        "description": "FR-09: weight when the pool is distributed (1 = a standard rep)"})
    discount_authority = fields.Decimal(allow_none=True, metadata={
        "description": "fraction below list price this person may grant alone; null: the role's default"},
        **FRACTION)
    price_authority = fields.Decimal(allow_none=True, metadata={
        "description": "lowest price ratio of list this person signs without a major contract; null: the role's"},
        **FRACTION)
    active = fields.Boolean(metadata={"description": "false: the person left; their login stops working"})

    @validates_schema
    def not_empty(self, data, **kwargs):
        if not data:
            raise ValidationError("give at least one field to change", "_schema")

    example = {"team": "East-2", "manager": "6f1c1f0e-6d3b-4b7c-9a55-3d1f0b2a9c10", "capacity": "1.50",
               "discount_authority": "0.07"}


class StaffOut(Schema):
    id = fields.UUID(required=True)
    username = fields.String(required=True)
    display_name = fields.String(required=True)
    role = fields.String(required=True)
    manager_id = fields.UUID(allow_none=True)
    team = fields.String(allow_none=True)
    region = fields.String(allow_none=True)
    territory = fields.String(allow_none=True)
    capacity = fields.String()
    discount_authority = fields.String(metadata={"description": "effective (own, else the role's)"})
    price_authority = fields.String(metadata={"description": "effective (own, else the role's)"})
    active = fields.Boolean()
    version = fields.Integer()
    created_at = fields.DateTime()
    updated_at = fields.DateTime()


class StaffQuery(PageQuery):
    team = text(100, load_default=None)
    role = fields.String(load_default=None, validate=validate.OneOf(ROLES))
    region = text(100, load_default=None)
    manager = fields.UUID(load_default=None)
    active = fields.Boolean(load_default=None)


class TerritoryIn(StrictSchema):
    name = text(200, required=True)
    kind = fields.String(required=True, validate=validate.OneOf(("market", "area")))
    parent_code = text(50, metadata={"description": "an area's market"})
    head_id = fields.UUID(allow_none=True, metadata={"description": "staff id of the person heading it"})

    example = {"name": "Shandong", "kind": "area", "parent_code": "EAST"}


class TerritoryOut(Schema):
    code = fields.String()
    name = fields.String()
    kind = fields.String()
    parent_code = fields.String(allow_none=True)
    head_id = fields.UUID(allow_none=True)
    version = fields.Integer()
    created_at = fields.DateTime()
    updated_at = fields.DateTime()


StaffPage = page_schema("StaffPage", StaffOut)
TerritoryPage = page_schema("TerritoryPage", TerritoryOut)


class AccountsApi:
    @api("POST", f"{API}/auth/token", body=TokenRequest, response=TokenOut, tags=["auth"], errors=(401,))
    def issue_token(self, call):
        """Log in: a bearer token for a username and password."""
        return auth.login(self.db, self.security, call.body["username"], call.body["password"])

    @api("GET", f"{API}/me", roles=EVERYONE, response=MeOut, tags=["auth"])
    def me(self, call):
        """Who the credential belongs to."""
        return accounts.me(call.principal)

    @api("POST", f"{API}/users", roles=ADMIN, body=UserCreate, response=UserOut, status=201, tags=["users"],
         errors=(503, 504))
    def create_user(self, call):
        """Create a user: a staff member in the org chart and their login."""
        return Reply(accounts.create_user(self.db, self.customer, call, plain(call.body)), status=201)

    @api("GET", f"{API}/users", roles=ADMIN, query=PageQuery, response=UserPage, tags=["users"])
    def list_users(self, call):
        """List the users (logins)."""
        return accounts.list_credentials(self.db, "password", call.query, accounts.user_out)

    @api("POST", f"{API}/api-keys", roles=ADMIN, body=ApiKeyCreate, response=ApiKeyCreated, status=201,
         tags=["users"], errors=(503, 504), secret_fields=("key",))
    def create_api_key(self, call):
        """Create an API key for an integration; the key is shown in this answer only."""
        return Reply(accounts.create_api_key(self.db, self.customer, call, call.body), status=201)

    @api("GET", f"{API}/api-keys", roles=ADMIN, query=PageQuery, response=ApiKeyPage, tags=["users"])
    def list_api_keys(self, call):
        """List the API keys (never the keys themselves)."""
        return accounts.list_credentials(self.db, "api_key", call.query, accounts.api_key_out)

    @api("PATCH", f"{API}/users/<uuid:staff_id>", roles=ADMIN, body=UserUpdate, response=StaffOut, tags=["users"],
         errors=(404, 409, 503, 504))
    def update_user(self, call, staff_id):
        """Change a user in the org chart (role, manager, team, region, territory, capacity,
        authorities, active); their login follows within moments (staff.updated)."""
        return accounts.update_user(self.customer, call, staff_id, plain(call.body))

    @api("GET", f"{API}/staff", roles=EVERYONE, query=StaffQuery, response=StaffPage, tags=["users"],
         errors=(503, 504))
    def list_staff(self, call):
        """The org chart (FR-119): staff with role, manager, team, region and authorities."""
        query = plain(call.query)
        filters = {("manager_id" if k == "manager" else k): query[k]
                   for k in ("team", "role", "region", "manager", "active") if query.get(k) is not None}
        return self.customer.list_staff(actor=call.actor, filters=filters, limit=query["limit"],
                                        cursor=query["cursor"])

    @api("GET", f"{API}/staff/<uuid:staff_id>", roles=EVERYONE, response=StaffOut, tags=["users"],
         errors=(404, 503, 504))
    def get_staff(self, call, staff_id):
        """One staff member with their effective discount and price authority."""
        return self.customer.get_staff(staff_id=staff_id)

    @api("PUT", f"{API}/territories/<code>", roles=ADMIN, body=TerritoryIn, response=TerritoryOut,
         tags=["users"], errors=(409, 503, 504))
    def put_territory(self, call, code):
        """Create or change a market or one of its areas (FR-119: configurable territories)."""
        return self.customer.put_territory(request_id=call.request_id, actor=call.actor,
                                           territory=dict(plain(call.body), code=code))

    @api("GET", f"{API}/territories", roles=EVERYONE, response=TerritoryPage, tags=["users"], errors=(503, 504))
    def list_territories(self, call):
        """The markets and their areas."""
        return self.customer.list_territories(actor=call.actor)
