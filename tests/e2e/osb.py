"""A small sales org and its first business, set up through the gateway for the cross-service
end-to-end stories (OSB, after-sales)."""
import uuid
from datetime import date, timedelta


class Org:
    """A sales org behind the gateway: head → manager → rep, a product manager, finance, a
    warehouse operator, a marketing director; a product with stock; a reviewed customer with
    credit."""

    def __init__(self, platform, stock=100, limit="100000.00", warranty_months=12):
        self.platform = platform
        self.suffix = suffix = uuid.uuid4().hex[:6]
        self.admin = platform.admin()
        self.head, head_user = platform.user(f"head-{suffix}", "sales_director", region="East China")
        self.manager, manager_user = platform.user(f"manager-{suffix}", "sales_manager",
                                                   manager=head_user["staff_id"], team="east-1", region="East China")
        self.rep, _ = platform.user(f"rep-{suffix}", "sales_rep", manager=manager_user["staff_id"], team="east-1",
                                    region="East China")
        self.pm, _ = platform.user(f"pm-{suffix}", "product_manager", region="East China")
        self.finance, _ = platform.user(f"finance-{suffix}", "finance")
        self.warehouse, _ = platform.user(f"wh-{suffix}", "warehouse")
        platform.user(f"marketing-{suffix}", "marketing_director")

        # the catalog and the stock (inventory); the order service learns prices from product.created
        self.admin.post("products", {"sku": "PUMP-200", "name": "Pump 200", "unit": "pc", "list_price": "100.00",
                                     "floor_price": "90.00", "vat_rate": "0.13",
                                     "warranty_months": warranty_months}, expect=201)
        self.warehouse.post("stock/receipts", {"warehouse": "MAIN", "lines": [{"sku": "PUMP-200", "quantity": stock}],
                                               "reason": "opening stock"}, expect=201)
        # the customer, its review (FR-14) and its credit limit
        self.customer = self.rep.post("customers", {
            "name": f"Story Machinery {suffix} Co., Ltd.", "industry": "machinery", "size": "medium",
            "region": "East China", "source": "trade_fair"}, expect=201)
        review = self.rep.post(f"customers/{self.customer['id']}/reviews", {
            "business_status": "operating", "credit_opinion": "sound",
            "valid_until": str(date.today() + timedelta(days=180))}, expect=201)
        self.pm.post(f"customers/{self.customer['id']}/reviews/{review['id']}/approve", expect=200)
        platform.wait_for(lambda: self.finance.put(f"customers/{self.customer['id']}/credit",
                                                   {"limit": limit, "reason": "opening limit"}).status_code == 200,
                          what="credit account opened")
        platform.wait_for(lambda: self.rep.post("orders", self.order_body(1)).status_code == 201,
                          what="the order service's price list has PUMP-200")

    def order_body(self, quantity, **more):
        return dict({"customer_id": self.customer["id"], "lines": [{"sku": "PUMP-200", "quantity": quantity}]}, **more)

    def stock(self):
        [level] = self.warehouse.get("stock?sku=PUMP-200", expect=200)["items"]
        return level["on_hand"], level["reserved"], level["available"]

    def exposure(self):
        return self.finance.get(f"customers/{self.customer['id']}/credit", expect=200)["exposure"]



    def delivered(self, quantity):
        """An order of `quantity` confirmed, delivered and its goods issued: (order, delivery)."""
        order = self.rep.post("orders", self.order_body(quantity), expect=201)
        assert self.rep.post(f"orders/{order['id']}/confirm", expect=200)["status"] == "confirmed"
        delivery = self.rep.post("deliveries", {"order_id": order["id"],
                                                "lines": [{"sku": "PUMP-200", "quantity": quantity}]}, expect=201)
        self.warehouse.post(f"deliveries/{delivery['id']}/issue", expect=200)
        return order, delivery
