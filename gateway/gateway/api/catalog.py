"""API.md "Catalog and stock" and "Deliveries" (inventory service): products and their prices,
warehouses, stock levels, goods receipts and counted adjustments, delivery notes (发货单) and the
goods issue (出库单) against them.

Who may: product managers (and admins) keep the catalog; the warehouse receives, adjusts and
issues goods (a sales rep never issues); the order desk and the sales line raise and cancel
delivery notes; everyone signed in reads products and stock. Rows a caller may not see (another
rep's delivery notes) answer 404, decided by the inventory service on the customer snapshot.
"""
from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from gateway.auth import EVERYONE
from gateway.http import api, created, plain
from gateway.schemas import PageQuery, page_schema, text
from shared.validation import StrictSchema

API = "/api/v1"
CATALOG_MANAGERS = frozenset({"admin", "product_manager"})
STOCK_KEEPERS = frozenset({"admin", "warehouse"})
GOODS_ISSUERS = STOCK_KEEPERS
STOCK_BOOK_READERS = frozenset({"admin", "warehouse", "product_manager", "finance", "general_manager"})
DELIVERY_WRITERS = frozenset({
    "admin", "order_desk", "sales_rep", "sales_manager", "sales_director", "general_manager", "integration",
})
DELIVERY_READERS = EVERYONE

MAX_QUANTITY = 1_000_000_000
MONEY = validate.Regexp(r"^\d{1,16}(\.\d{1,2})?$", error='a decimal string with at most 2 places, e.g. "1234.50"')
RATE = validate.Regexp(r"^0(\.\d{1,4})?$", error='a decimal string from 0 to below 1, e.g. "0.13"')
SKU = validate.Regexp(r"^[A-Za-z0-9][A-Za-z0-9._\-]{0,63}$",
                      error="1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit")
WAREHOUSE = validate.Regexp(r"^[A-Za-z0-9][A-Za-z0-9_\-]{0,31}$",
                            error="1 to 32 letters, digits, '_' or '-', starting with a letter or digit")


def money(description="decimal string, CNY, VAT included", **kwargs):
    return fields.String(validate=MONEY, metadata={"description": description, "example": "1200.00"}, **kwargs)


def quantity():
    return fields.Integer(required=True, strict=True,
                          validate=validate.Range(1, MAX_QUANTITY, error="must be a whole number from 1 to {max}"))


def sku(**kwargs):
    return fields.String(validate=SKU, **kwargs)


def lines(schema):
    return fields.List(fields.Nested(schema), required=True,
                       validate=validate.Length(1, 200, error="between {min} and {max} lines"))


# -- catalog ----------------------------------------------------------------------------------
class ProductCreate(StrictSchema):
    sku = sku(required=True)
    name = text(200, required=True)
    unit = text(20, required=True, metadata={"description": "unit of measure: pcs, set, m, kg, ..."})
    list_price = money(required=True)
    floor_price = money("the HQ guide floor (FR-43), not above the list price", required=True)
    vat_rate = fields.String(validate=RATE, metadata={"description": 'default "0.13"'})
    warranty_months = fields.Integer(strict=True, validate=validate.Range(0, 240),
                                     metadata={"description": "for after-sales; default 12"})
    low_stock_threshold = fields.Integer(strict=True, validate=validate.Range(0, MAX_QUANTITY),
                                         metadata={"description": "stock.low below this availability; 0: none"})
    active = fields.Boolean()

    example = {"sku": "SRV-400W", "name": "AC servo motor 400 W", "unit": "pcs", "list_price": "1280.00",
               "floor_price": "1050.00", "vat_rate": "0.13", "warranty_months": 24, "low_stock_threshold": 20,
               "active": True}


class ProductPatch(StrictSchema):
    name = fields.String(validate=validate.Length(1, 200))
    unit = fields.String(validate=validate.Length(1, 20))
    list_price = money()
    floor_price = money()
    vat_rate = fields.String(validate=RATE)
    warranty_months = fields.Integer(strict=True, validate=validate.Range(0, 240))
    low_stock_threshold = fields.Integer(strict=True, validate=validate.Range(0, MAX_QUANTITY))
    active = fields.Boolean()

    example = {"list_price": "1320.00", "floor_price": "1080.00"}

    @validates_schema
    def something(self, data, **kwargs):
        if not data:
            raise ValidationError("send at least one field to change", "_schema")


class ProductQuery(PageQuery):
    active = fields.Boolean(load_default=None)
    q = text(200, load_default=None, metadata={"description": "text in the SKU or name"})


class PriceOut(Schema):
    list_price = fields.String()
    floor_price = fields.String()
    vat_rate = fields.String()
    changed_by = fields.UUID(allow_none=True)
    changed_at = fields.DateTime()


class ProductOut(Schema):
    sku = fields.String(required=True)
    name = fields.String(required=True)
    unit = fields.String(required=True)
    list_price = fields.String(required=True, metadata={"example": "1280.00"})
    floor_price = fields.String(required=True)
    vat_rate = fields.String(required=True, metadata={"example": "0.13"})
    warranty_months = fields.Integer()
    low_stock_threshold = fields.Integer()
    active = fields.Boolean(required=True)
    created_at = fields.DateTime()
    updated_at = fields.DateTime()
    version = fields.Integer()
    price_history = fields.List(fields.Nested(PriceOut))


# -- warehouses and stock ----------------------------------------------------------------------
class WarehouseCreate(StrictSchema):
    code = fields.String(required=True, validate=WAREHOUSE)
    name = text(200, required=True)
    address = text(500)
    is_default = fields.Boolean(metadata={"description": "becomes the warehouse used when none is named"})

    example = {"code": "SZ-01", "name": "Suzhou distribution centre", "address": "88 Xinghu St, Suzhou",
               "is_default": False}


class WarehouseOut(Schema):
    code = fields.String(required=True)
    name = fields.String(required=True)
    address = fields.String(allow_none=True)
    is_default = fields.Boolean(required=True)
    created_at = fields.DateTime()


class StockQuery(PageQuery):
    sku = fields.String(load_default=None, validate=SKU)
    warehouse = fields.String(load_default=None, validate=WAREHOUSE)


class StockLevelOut(Schema):
    sku = fields.String(required=True)
    name = fields.String()
    unit = fields.String()
    warehouse = fields.String(required=True)
    on_hand = fields.Integer(required=True, metadata={"description": "in the warehouse, reserved included"})
    reserved = fields.Integer(required=True, metadata={"description": "held for orders"})
    available = fields.Integer(required=True, metadata={"description": "on_hand - reserved"})
    on_loan = fields.Integer(required=True, metadata={"description": "out with customers on loan"})
    low_stock_threshold = fields.Integer()
    updated_at = fields.DateTime()


class ReceiptLine(StrictSchema):
    sku = sku(required=True)
    quantity = quantity()


class StockReceiptCreate(StrictSchema):
    warehouse = fields.String(validate=WAREHOUSE, metadata={"description": "default: the default warehouse"})
    lines = lines(ReceiptLine)
    reason = text(500, required=True, metadata={"description": "production batch, purchase order, ..."})

    example = {"warehouse": "MAIN", "lines": [{"sku": "SRV-400W", "quantity": 120}],
               "reason": "purchase order PO-2026-0318"}


class AdjustmentLine(StrictSchema):
    sku = sku(required=True)
    delta = fields.Integer(required=True, strict=True, validate=[
        validate.Range(-MAX_QUANTITY, MAX_QUANTITY), validate.NoneOf([0], error="must not be 0")],
        metadata={"description": "units added (positive) or removed (negative)"})


class AdjustmentCreate(StrictSchema):
    warehouse = fields.String(validate=WAREHOUSE)
    lines = lines(AdjustmentLine)
    reason = text(500, required=True)

    example = {"warehouse": "MAIN", "lines": [{"sku": "SRV-400W", "delta": -2}],
               "reason": "cycle count 2026-03: two units water-damaged"}


class ReverseRequest(StrictSchema):
    reason = text(500, required=True)

    example = {"reason": "received against the wrong SKU"}


class DocumentLineOut(Schema):
    line_no = fields.Integer()
    sku = fields.String()
    quantity = fields.Integer()
    delivery_line_id = fields.UUID(allow_none=True)
    order_line_id = fields.UUID(allow_none=True)
    unit_price = fields.String(allow_none=True)
    vat_rate = fields.String(allow_none=True)


class StockDocumentOut(Schema):
    id = fields.UUID(required=True)
    number = fields.String(required=True, metadata={"example": "GR-2026-000001"})
    kind = fields.String(required=True, validate=validate.OneOf((
        "goods_receipt", "adjustment", "goods_issue", "return_receipt", "loan_issue", "loan_return")))
    warehouse = fields.String(required=True)
    reason = fields.String(allow_none=True)
    reverses_id = fields.UUID(allow_none=True)
    reversed_by = fields.UUID(allow_none=True)
    delivery_id = fields.UUID(allow_none=True)
    order_id = fields.UUID(allow_none=True)
    loan_id = fields.UUID(allow_none=True)
    return_id = fields.UUID(allow_none=True)
    posted_by = fields.UUID(allow_none=True)
    posted_at = fields.DateTime(required=True)
    lines = fields.List(fields.Nested(DocumentLineOut))


class MovementQuery(StockQuery):
    kind = fields.String(load_default=None, validate=validate.OneOf((
        "receipt", "reservation", "release", "issue", "return_receipt", "loan_issue", "loan_return",
        "loan_conversion", "adjustment")))
    document_id = fields.UUID(load_default=None)


class MovementOut(Schema):
    id = fields.Integer()
    sku = fields.String()
    warehouse = fields.String()
    kind = fields.String()
    quantity = fields.Integer()
    on_hand_delta = fields.Integer()
    reserved_delta = fields.Integer()
    on_loan_delta = fields.Integer()
    document_kind = fields.String()
    document_id = fields.UUID()
    document_number = fields.String(allow_none=True)
    reason = fields.String(allow_none=True)
    occurred_at = fields.DateTime()


# -- deliveries -------------------------------------------------------------------------------
class DeliveryLineIn(StrictSchema):
    sku = sku(required=True)
    quantity = quantity()
    order_line_id = fields.UUID(metadata={"description": "which order line, when the order has the SKU twice"})


class DeliveryCreate(StrictSchema):
    order_id = fields.UUID(required=True)
    lines = lines(DeliveryLineIn)

    example = {"order_id": "3b0f7c1e-9a54-4c1d-8f0e-5b7f2d6a9c11", "lines": [{"sku": "SRV-400W", "quantity": 10}]}


class DeliveryCancel(StrictSchema):
    reason = text(500, required=True)

    example = {"reason": "customer asked to ship next month"}


class DeliveryQuery(PageQuery):
    order_id = fields.UUID(load_default=None)
    customer_id = fields.UUID(load_default=None)
    status = fields.String(load_default=None, validate=validate.OneOf(("pending", "issued", "cancelled")))


class DeliveryLineOut(Schema):
    id = fields.UUID(required=True)
    line_no = fields.Integer()
    order_line_id = fields.UUID(allow_none=True)
    sku = fields.String(required=True)
    quantity = fields.Integer(required=True)
    unit_price = fields.String(required=True)
    vat_rate = fields.String(required=True)
    amount = fields.String(required=True, metadata={"description": "quantity × unit_price, VAT included"})
    returned = fields.Integer()


class DeliveryOut(Schema):
    id = fields.UUID(required=True)
    number = fields.String(required=True, metadata={"example": "DN-2026-000042"})
    order_id = fields.UUID(required=True)
    order_number = fields.String(allow_none=True)
    reservation_id = fields.UUID(allow_none=True)
    loan_id = fields.UUID(allow_none=True, metadata={"description": "set when raised by a loan conversion"})
    warehouse = fields.String(required=True)
    status = fields.String(required=True, validate=validate.OneOf(("pending", "issued", "cancelled")))
    total = fields.String(required=True)
    customer_id = fields.UUID(required=True)
    owner_id = fields.UUID(allow_none=True)
    owner_team = fields.String(allow_none=True)
    region = fields.String(allow_none=True)
    goods_issue_id = fields.UUID(allow_none=True)
    goods_issue_number = fields.String(allow_none=True, metadata={"example": "GI-2026-000042"})
    created_by = fields.UUID(allow_none=True)
    created_at = fields.DateTime(required=True)
    issued_by = fields.UUID(allow_none=True)
    issued_at = fields.DateTime(allow_none=True)
    cancelled_at = fields.DateTime(allow_none=True)
    cancel_reason = fields.String(allow_none=True)
    lines = fields.List(fields.Nested(DeliveryLineOut), required=True)


ProductPage = page_schema("ProductPage", ProductOut)
WarehousePage = page_schema("WarehousePage", WarehouseOut)
StockPage = page_schema("StockPage", StockLevelOut)
MovementPage = page_schema("MovementPage", MovementOut)
DeliveryPage = page_schema("DeliveryPage", DeliveryOut)


def _filters(query, names):
    query = plain(query)
    return {name: query[name] for name in names if query.get(name) is not None}, query["limit"], query["cursor"]


class CatalogApi:
    # -- products -------------------------------------------------------------------------------
    @api("POST", f"{API}/products", roles=CATALOG_MANAGERS, body=ProductCreate, response=ProductOut, status=201,
         locates=True, tags=["catalog"], errors=(409, 503, 504))
    def create_product(self, call):
        """Add a product to the catalog (FR-43: list and floor price); 409 PRODUCT_EXISTS for a SKU taken."""
        product = self.inventory.create_product(request_id=call.request_id, actor=call.actor,
                                                product=plain(call.body))
        return created(product, location=f"{API}/products/{product['sku']}")

    @api("GET", f"{API}/products", roles=EVERYONE, query=ProductQuery, response=ProductPage, tags=["catalog"],
         errors=(503, 504))
    def list_products(self, call):
        """List the catalog, by SKU."""
        filters, limit, cursor = _filters(call.query, ("active", "q"))
        return self.inventory.list_products(filters=filters, limit=limit, cursor=cursor)

    @api("GET", f"{API}/products/<sku>", roles=EVERYONE, response=ProductOut, tags=["catalog"],
         errors=(404, 503, 504))
    def get_product(self, call, sku):
        """One product with its price history."""
        return self.inventory.get_product(sku=sku)

    @api("PATCH", f"{API}/products/<sku>", roles=CATALOG_MANAGERS, body=ProductPatch, response=ProductOut,
         tags=["catalog"], errors=(404, 503, 504))
    def update_product(self, call, sku):
        """Change a product; a price change is kept in its history and published to the order service."""
        return self.inventory.update_product(request_id=call.request_id, actor=call.actor, sku=sku,
                                             changes=plain(call.body))

    # -- warehouses -----------------------------------------------------------------------------
    @api("POST", f"{API}/warehouses", roles=STOCK_KEEPERS, body=WarehouseCreate, response=WarehouseOut,
         status=201, tags=["stock"], errors=(409, 503, 504))
    def create_warehouse(self, call):
        """Add a warehouse (409 WAREHOUSE_EXISTS for a code taken)."""
        return created(self.inventory.create_warehouse(request_id=call.request_id, actor=call.actor,
                                                       warehouse=plain(call.body)))

    @api("GET", f"{API}/warehouses", roles=EVERYONE, query=PageQuery, response=WarehousePage, tags=["stock"],
         errors=(503, 504))
    def list_warehouses(self, call):
        """List the warehouses."""
        _, limit, cursor = _filters(call.query, ())
        return self.inventory.list_warehouses(limit=limit, cursor=cursor)

    # -- stock ----------------------------------------------------------------------------------
    @api("GET", f"{API}/stock", roles=EVERYONE, query=StockQuery, response=StockPage, tags=["stock"],
         errors=(503, 504))
    def list_stock(self, call):
        """Stock per SKU and warehouse: on hand, reserved, available, on loan."""
        filters, limit, cursor = _filters(call.query, ("sku", "warehouse"))
        return self.inventory.list_stock(filters=filters, limit=limit, cursor=cursor)

    @api("POST", f"{API}/stock/receipts", roles=STOCK_KEEPERS, body=StockReceiptCreate, response=StockDocumentOut,
         status=201, tags=["stock"], errors=(503, 504))
    def post_receipt(self, call):
        """Goods in from production or purchase (入库单); 422 UNKNOWN_SKU / UNKNOWN_WAREHOUSE."""
        return created(self.inventory.post_receipt(request_id=call.request_id, actor=call.actor,
                                                   receipt=plain(call.body)))

    @api("POST", f"{API}/stock/adjustments", roles=STOCK_KEEPERS, body=AdjustmentCreate, response=StockDocumentOut,
         status=201, tags=["stock"], errors=(503, 504))
    def adjust_stock(self, call):
        """A counted correction of what is on hand, with a reason; 409 INSUFFICIENT_STOCK below what is reserved."""
        return created(self.inventory.adjust_stock(request_id=call.request_id, actor=call.actor,
                                                   adjustment=plain(call.body)))

    @api("GET", f"{API}/stock/movements", roles=STOCK_BOOK_READERS, query=MovementQuery, response=MovementPage,
         tags=["stock"], errors=(503, 504))
    def list_movements(self, call):
        """The stock ledger, newest first: every movement of every level."""
        filters, limit, cursor = _filters(call.query, ("sku", "warehouse", "kind", "document_id"))
        return self.inventory.list_movements(filters=filters, limit=limit, cursor=cursor)

    @api("GET", f"{API}/stock/documents/<uuid:document_id>", roles=STOCK_BOOK_READERS, response=StockDocumentOut,
         tags=["stock"], errors=(404, 503, 504))
    def get_stock_document(self, call, document_id):
        """A posted stock document (receipt, adjustment, goods issue, return receipt, loan issue or return)."""
        return self.inventory.get_stock_document(actor=call.actor, document_id=document_id)

    @api("POST", f"{API}/stock/documents/<uuid:document_id>/reverse", roles=STOCK_KEEPERS, body=ReverseRequest,
         response=StockDocumentOut, status=201, tags=["stock"], errors=(404, 503, 504))
    def reverse_stock_document(self, call, document_id):
        """Correct a goods receipt or adjustment by a reversing document (posted documents never change)."""
        return created(self.inventory.reverse_stock_document(request_id=call.request_id, actor=call.actor,
                                                             document_id=document_id, reason=call.body["reason"]))

    # -- deliveries -----------------------------------------------------------------------------
    @api("POST", f"{API}/deliveries", roles=DELIVERY_WRITERS, body=DeliveryCreate, response=DeliveryOut,
         status=201, locates=True, tags=["deliveries"], errors=(404, 409, 503, 504))
    def create_delivery(self, call):
        """Raise a delivery note (发货单, FR-77) from a confirmed order: `pending`; never more than the order
        has left to deliver (409 OVER_DELIVERY), only for a confirmed order (409 RESERVATION_NOT_COMMITTED)."""
        body = plain(call.body)
        delivery = self.inventory.create_delivery(request_id=call.request_id, actor=call.actor,
                                                  order_id=body["order_id"], lines=body["lines"])
        return created(delivery, location=f"{API}/deliveries/{delivery['id']}")

    @api("POST", f"{API}/deliveries/<uuid:delivery_id>/issue", roles=GOODS_ISSUERS, response=DeliveryOut,
         tags=["deliveries"], errors=(404, 503, 504))
    def issue_goods(self, call, delivery_id):
        """Issue the goods (出库单, FR-78): `issued`, stock leaves, the order moves on; 409 DELIVERY_CANCELLED,
        DELIVERY_ALREADY_ISSUED."""
        return self.inventory.issue_goods(request_id=call.request_id, actor=call.actor, delivery_id=delivery_id)

    @api("POST", f"{API}/deliveries/<uuid:delivery_id>/cancel", roles=DELIVERY_WRITERS | STOCK_KEEPERS,
         body=DeliveryCancel, response=DeliveryOut, tags=["deliveries"], errors=(404, 503, 504))
    def cancel_delivery(self, call, delivery_id):
        """Cancel a pending delivery note; its quantities stay reserved for the order. An issued note is posted
        and cannot be cancelled (409 DELIVERY_ALREADY_ISSUED)."""
        return self.inventory.cancel_delivery(request_id=call.request_id, actor=call.actor, delivery_id=delivery_id,
                                              reason=call.body["reason"])

    @api("GET", f"{API}/deliveries/<uuid:delivery_id>", roles=DELIVERY_READERS, response=DeliveryOut,
         tags=["deliveries"], errors=(404, 503, 504))
    def get_delivery(self, call, delivery_id):
        """One delivery note (someone else's answers 404)."""
        return self.inventory.get_delivery(actor=call.actor, delivery_id=delivery_id)

    @api("GET", f"{API}/deliveries", roles=DELIVERY_READERS, query=DeliveryQuery, response=DeliveryPage,
         tags=["deliveries"], errors=(503, 504))
    def list_deliveries(self, call):
        """The delivery notes the caller may see, newest first, by order, customer or status."""
        filters, limit, cursor = _filters(call.query, ("order_id", "customer_id", "status"))
        return self.inventory.list_deliveries(actor=call.actor, filters=filters, limit=limit, cursor=cursor)
