"""API.md "Customers (CRM)": customers, and later contacts, reviews, visits and opportunities."""
from marshmallow import Schema, fields, validate

from gateway.auth import EVERYONE
from gateway.http import api, created, plain
from gateway.schemas import PageQuery, page_schema, text
from shared.validation import StrictSchema

API = "/api/v1"
CUSTOMER_READERS = EVERYONE - {"warehouse"}
CUSTOMER_WRITERS = frozenset({
    "admin", "general_manager", "sales_director", "marketing_director", "sales_manager", "sales_rep",
    "order_desk", "integration",
})
FILTERS = ("owner", "status", "region", "industry", "q")

SIZES = ("micro", "small", "medium", "large", "enterprise")
SOURCES = (
    "trade_fair", "trade_press", "internet", "industry_association",
    "mall_listing", "partner_referral", "company_data", "competitor_media",
)
STATUSES = ("potential", "tracking", "progressing", "key", "loi_signed", "signed")


# -- customers -------------------------------------------------------------------------------
class ContactIn(StrictSchema):
    name = text(100, required=True)
    position = text(100)
    phone = text(50)
    email = fields.Email(allow_none=True)
    decision_maker = fields.Boolean(load_default=False)


class BankAccountIn(StrictSchema):
    bank_name = text(200, required=True)
    account_no = fields.String(required=True, validate=validate.Regexp(
        r"^[0-9 \-]{6,40}$", error="6 to 40 digits, spaces or dashes"))


class CustomerCreate(StrictSchema):
    name = text(200, required=True)
    tax_id = fields.String(allow_none=True, validate=validate.Regexp(
        r"^[0-9A-Za-z]{15,20}$", error="15 to 20 letters or digits"),
        metadata={"description": "unified social credit code (18 characters) or older tax id"})
    industry = text(100, required=True)
    size = fields.String(required=True, validate=validate.OneOf(SIZES))
    region = text(100, required=True)
    address = text(500)
    source = fields.String(required=True, validate=validate.OneOf(SOURCES))
    status = fields.String(validate=validate.OneOf(STATUSES), metadata={"description": "default potential"})
    contacts = fields.List(fields.Nested(ContactIn))
    bank_account = fields.Nested(BankAccountIn, allow_none=True)
    needs = text(4000)

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
    region = text(100, load_default=None)
    industry = text(100, load_default=None)
    q = text(200, load_default=None, metadata={"description": "text in the name"})


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



CustomerPage = page_schema("CustomerPage", CustomerOut)


class CustomersApi:
    @api("POST", f"{API}/customers", roles=CUSTOMER_WRITERS, body=CustomerCreate, response=CustomerOut,
         status=201, locates=True, tags=["customers"], errors=(409, 503, 504))
    def create_customer(self, call):
        """Record a customer (FR-01, FR-02); a duplicate name or tax id answers 409 DUPLICATE_CUSTOMER
        naming the owner (FR-06, FR-07)."""
        customer = self.customer.create_customer(request_id=call.request_id, actor=call.actor,
                                                 customer=plain(call.body))
        return created(customer, location=f"{API}/customers/{customer['id']}")

    @api("GET", f"{API}/customers", roles=CUSTOMER_READERS, query=CustomerQuery, response=CustomerPage,
         tags=["customers"], errors=(503, 504))
    def list_customers(self, call):
        """List the customers the caller may see, filtered."""
        query = plain(call.query)
        filters = {name: query[name] for name in FILTERS if query.get(name) is not None}
        return self.customer.list_customers(actor=call.actor, filters=filters, limit=query["limit"],
                                            cursor=query["cursor"])

    @api("GET", f"{API}/customers/<uuid:customer_id>", roles=CUSTOMER_READERS, response=CustomerOut,
         tags=["customers"], errors=(404, 503, 504))
    def get_customer(self, call, customer_id):
        """One customer (someone else's answers 404)."""
        return self.customer.get_customer(actor=call.actor, customer_id=customer_id)
