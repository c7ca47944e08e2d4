#!/usr/bin/env python3
"""Load a small demo company through the gateway's HTTP API: its org, catalog, stock, customers and
a first order taken all the way to an issued invoice.

Run by ``make up`` once every process is ready; safe to run again by hand:

    .venv/bin/python deploy/demo_data.py [--gateway URL] [--force]

It logs in as the admin (GATEWAY_ADMIN_USERNAME / GATEWAY_ADMIN_PASSWORD, from
the environment or the root .env) and creates the org: a sales director
``director1``, a sales manager ``manager1`` reporting to them, reps ``rep1`` and
``rep2`` reporting to the manager, and ``pm1`` (product manager), ``finance1``,
``warehouse1``, ``marketing1``, ``engineer1``. Then: three products with opening
stock; a few customers recorded by rep1; the first two reviewed (FR-14) and
given a credit limit; and one order for the first confirmed (stock and credit
reserved), delivered, its goods issued and invoiced (certified, issued). Every POST carries a fixed Idempotency-Key derived from the item,
so a re-run replays the first answers instead of creating anything twice, and a
409 (user exists, DUPLICATE_CUSTOMER) counts as "already there".

The demo users' password is DEMO_USER_PASSWORD (``make up`` puts a random one in
.env); without it, one is derived from the admin password, so it is stable too.

Once done it writes the marker ``.demo-loaded`` at the repository root and skips
on later runs unless ``--force`` is given. Standard library + requests only.
"""

import argparse
import hashlib
import hmac
import os
import sys
import time
import uuid
from base64 import urlsafe_b64encode
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
MARKER = ROOT / ".demo-loaded"
ENV_FILE = ROOT / ".env"
API = "/api/v1"
KEY_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://sales-platform.invalid/demo-data/v1")
RETRY_STATUSES = {502, 503, 504}
REPLAYED = "Idempotent-Replayed"  # set by the gateway on an answer replayed for a repeated key


def outcome(response):
    return "already there (replayed)" if response.headers.get(REPLAYED, "").lower() == "true" else "created"

DIRECTOR = {"username": "director1", "role": "sales_director", "display_name": "Chen Jun (demo sales head)",
            "region": "East China"}
MANAGER = {"username": "manager1", "role": "sales_manager", "display_name": "Li Wei (demo manager)",
           "team": "east-1", "region": "East China"}
REPS = [
    {"username": "rep1", "role": "sales_rep", "display_name": "Zhang Min (demo rep)", "team": "east-1",
     "region": "East China"},
    {"username": "rep2", "role": "sales_rep", "display_name": "Wang Fang (demo rep)", "team": "east-1",
     "region": "East China"},
]
STAFF = [
    {"username": "pm1", "role": "product_manager", "display_name": "Zhou Lan (demo product manager)",
     "region": "East China"},
    {"username": "finance1", "role": "finance", "display_name": "Sun Li (demo finance)"},
    {"username": "warehouse1", "role": "warehouse", "display_name": "Ma Qiang (demo warehouse)"},
    {"username": "marketing1", "role": "marketing_director", "display_name": "Gao Yan (demo marketing director)"},
    {"username": "engineer1", "role": "service_engineer", "display_name": "Hu Bin (demo service engineer)"},
]
PRODUCTS = [
    {"sku": "PUMP-200", "name": "Centrifugal pump 200", "unit": "pc", "list_price": "12800.00",
     "floor_price": "11000.00", "vat_rate": "0.13", "warranty_months": 12},
    {"sku": "VALVE-50", "name": "Control valve DN50", "unit": "pc", "list_price": "2350.00",
     "floor_price": "2000.00", "vat_rate": "0.13", "warranty_months": 24},
    {"sku": "SEAL-KIT", "name": "Mechanical seal kit", "unit": "set", "list_price": "480.00",
     "floor_price": "400.00", "vat_rate": "0.13", "warranty_months": 6},
]
OPENING_STOCK = {"PUMP-200": 40, "VALVE-50": 200, "SEAL-KIT": 500}
CREDIT_LIMIT = "500000.00"
# (name, region code, organisation code body, industry, size, source, address)
CUSTOMERS = [
    ("Huadong Precision Machinery Co., Ltd.", "310115", "MA1K4L2Q", "machinery",
     "medium", "trade_fair", "88 Zhangjiang Road, Pudong, Shanghai"),
    ("Jinling Medical Devices Co., Ltd.", "320106", "MA1N7P3R", "medical devices",
     "large", "internet", "12 Zhongshan North Road, Nanjing"),
    ("Qiantang Food Packaging Co., Ltd.", "330106", "MA2B8C5D", "packaging",
     "small", "partner_referral", "301 Wensan Road, Hangzhou"),
    ("Taihu Logistics Equipment Co., Ltd.", "320214", "MA1D3E6F", "logistics",
     "enterprise", "industry_association", None),
]

USCC_CHARS = "0123456789ABCDEFGHJKLMNPQRTUWXY"
USCC_WEIGHTS = [1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28]
ORG_WEIGHTS = [3, 7, 9, 10, 5, 8, 4, 2]


def tax_id(region_code, org_body):
    """A well-formed unified social credit code (GB 32100-2015), both check characters right."""
    org_sum = sum(int(c, 36) * w for c, w in zip(org_body, ORG_WEIGHTS))
    org_check = {10: "X", 11: "0"}.get(11 - org_sum % 11, str(11 - org_sum % 11))
    body = "91" + region_code + org_body + org_check
    total = sum(USCC_CHARS.index(c) * w for c, w in zip(body, USCC_WEIGHTS))
    return body + USCC_CHARS[(31 - total % 31) % 31]


def read_env_file(path):
    values = {}
    if path.is_file():
        for line in path.read_text().splitlines():
            line = line.strip()
            if not line or line.startswith("#") or "=" not in line:
                continue
            key, _, value = line.removeprefix("export ").partition("=")
            values[key.strip()] = value.strip().strip("'\"")
    return values


def setting(name, file_values, default=None):
    return os.environ.get(name) or file_values.get(name) or default


def idempotency_key(kind, name):
    return str(uuid.uuid5(KEY_NAMESPACE, f"{kind}/{name}"))


class Gateway:
    def __init__(self, base_url):
        self.base = base_url.rstrip("/") + API
        self.http = requests.Session()

    def post(self, path, body, key, token=None):
        headers = {"Idempotency-Key": key}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        for attempt in range(5):
            response = self.http.post(self.base + path, json=body, headers=headers, timeout=15)
            if response.status_code not in RETRY_STATUSES:
                return response
            time.sleep(1 + attempt)
        return response

    def put(self, path, body, token):
        return self.http.put(self.base + path, json=body, headers={"Authorization": f"Bearer {token}"}, timeout=15)

    def get(self, path, token, params=None):
        return self.http.get(
            self.base + path, params=params, headers={"Authorization": f"Bearer {token}"}, timeout=15
        )

    def login(self, username, password):
        # A fresh key: replaying an earlier login would hand back an expired token.
        response = self.post("/auth/token", {"username": username, "password": password}, str(uuid.uuid4()))
        if response.status_code != 200:
            fail(f"login as {username}", response)
        return response.json()["access_token"]


def fail(what, response):
    try:
        detail = response.json()
    except ValueError:
        detail = response.text[:500]
    raise SystemExit(f"demo data: {what} failed: HTTP {response.status_code} {detail}")


def problem_code(response):
    try:
        return response.json().get("code") or "CONFLICT"
    except ValueError:
        return "CONFLICT"


def find_staff_id(gw, token, username):
    """The staff id of an existing user, from GET /users (admin), page by page."""
    cursor = None
    while True:
        params = {"limit": 200}
        if cursor:
            params["cursor"] = cursor
        response = gw.get("/users", token, params)
        if response.status_code != 200:
            fail(f"listing users to find {username}", response)
        page = response.json()
        for user in page.get("items", []):
            if user.get("username") == username:
                return user["staff_id"]
        cursor = page.get("next_cursor")
        if not cursor:
            raise SystemExit(f"demo data: {username} exists but is not in GET /users")


def ensure_user(gw, token, spec, password, report):
    body = dict(spec, password=password)
    response = gw.post("/users", body, idempotency_key("user", spec["username"]), token)
    if response.status_code in (200, 201):
        report.append(f"  user {spec['username']:<9} {spec['role']:<14} {outcome(response)}")
        return response.json()["staff_id"]
    if response.status_code == 409:
        report.append(f"  user {spec['username']:<9} {spec['role']:<14} already there")
        return find_staff_id(gw, token, spec["username"])
    fail(f"creating user {spec['username']}", response)


def ensure_customer(gw, token, row, report):
    name, region_code, org_body, industry, size, source, address = row
    body = {
        "name": name,
        "tax_id": tax_id(region_code, org_body),
        "industry": industry,
        "size": size,
        "region": "East China",
        "source": source,
    }
    if address:
        body["address"] = address
    response = gw.post("/customers", body, idempotency_key("customer", body["tax_id"]), token)
    if response.status_code in (200, 201):
        number = response.json().get("number", "")
        report.append(f"  customer {number or body['tax_id']}  {name}: {outcome(response)}")
    elif response.status_code == 409:
        report.append(f"  customer {name}: already there ({problem_code(response)})")
    else:
        fail(f"creating customer {name}", response)


def find_customer(gw, token, name):
    response = gw.get("/customers", token, {"q": name, "limit": 5})
    if response.status_code != 200:
        fail(f"looking up customer {name}", response)
    for customer in response.json()["items"]:
        if customer["name"] == name:
            return customer
    raise SystemExit(f"demo data: customer {name} exists but rep1 cannot see it")


def step(gw, what, path, body, token, report, expect=(200, 201), key_name=None):
    """One POST/PUT with a fixed Idempotency-Key; a 409 means the demo got this far before."""
    response = gw.post(path, body, idempotency_key(what, key_name or path), token)
    if response.status_code in expect:
        report.append(f"  {what}: {outcome(response)}")
        return response.json()
    if response.status_code == 409:
        report.append(f"  {what}: already done ({problem_code(response)})")
        return None
    fail(what, response)


def ensure_business(gw, tokens, report):
    """The catalog, stock, reviews, credit and a first order through to its invoice."""
    admin, rep, pm, finance, warehouse, manager = (tokens[name] for name in
                                                     ("admin", "rep1", "pm1", "finance1", "warehouse1", "manager1"))
    for product in PRODUCTS:
        step(gw, f"product {product['sku']}", "/products", product, admin, report, key_name=product["sku"])
    step(gw, "opening stock", "/stock/receipts", {
        "warehouse": "MAIN", "reason": "opening stock (demo)",
        "lines": [{"sku": sku, "quantity": quantity} for sku, quantity in OPENING_STOCK.items()]},
        warehouse, report)
    customers = [find_customer(gw, rep, row[0]) for row in CUSTOMERS[:2]]
    valid_until = time.strftime("%Y-%m-%d", time.gmtime(time.time() + 180 * 86400))
    for customer in customers:
        review = step(gw, f"review of {customer['number']}", f"/customers/{customer['id']}/reviews",
                      {"business_status": "operating", "credit_opinion": "sound", "valid_until": valid_until},
                      rep, report)
        if review:
            step(gw, f"review of {customer['number']} approved",
                 f"/customers/{customer['id']}/reviews/{review['id']}/approve", {}, pm, report)
        for _ in range(30):  # billing opens the account when customer.created reaches it
            response = gw.put(f"/customers/{customer['id']}/credit",
                              {"limit": CREDIT_LIMIT, "reason": "opening limit (demo)"}, finance)
            if response.status_code != 404:
                break
            time.sleep(0.5)
        if response.status_code != 200:
            fail(f"credit limit of {customer['number']}", response)
        report.append(f"  credit limit of {customer['number']}: {CREDIT_LIMIT}")
    first = customers[0]
    order = None
    for _ in range(30):  # the order service learns prices from product.created
        response = gw.post("/orders", {"customer_id": first["id"], "lines": [
            {"sku": "PUMP-200", "quantity": 2}, {"sku": "SEAL-KIT", "quantity": 10}]},
            idempotency_key("order", first["id"]), rep)
        if response.status_code != 422 and response.status_code != 409:
            break
        time.sleep(0.5)
    if response.status_code not in (200, 201):
        fail("the first order", response)
    order = response.json()
    report.append(f"  order {order['number']}: {outcome(response)}")
    if order["status"] == "draft":
        order = step(gw, f"order {order['number']} confirmed", f"/orders/{order['id']}/confirm", {}, rep, report) \
            or order
    delivery = step(gw, f"delivery note for {order['number']}", "/deliveries", {
        "order_id": order["id"], "lines": [{"sku": "PUMP-200", "quantity": 2}, {"sku": "SEAL-KIT", "quantity": 10}]},
        rep, report)
    if delivery:
        step(gw, f"goods issue of {delivery['number']}", f"/deliveries/{delivery['id']}/issue", {}, warehouse,
             report)
        for _ in range(30):  # billing learns the issued lines from goods.issued
            response = gw.post("/invoices", {"delivery_ids": [delivery["id"]], "kind": "ordinary"},
                               idempotency_key("invoice", delivery["id"]), rep)
            if response.status_code not in (409, 422):
                break
            time.sleep(0.5)
        if response.status_code != 201:
            fail("the first invoice", response)
        invoice = response.json()
        step(gw, "invoice certified", f"/invoices/{invoice['id']}/certify", {}, manager, report)
        issued = step(gw, "invoice issued", f"/invoices/{invoice['id']}/issue", {}, finance, report)
        if issued:
            report.append(f"  invoice {issued['number']} for {issued['total']} CNY")


def main(argv=None):
    file_values = read_env_file(ENV_FILE)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gateway", default=setting("GATEWAY_URL", file_values, "http://127.0.0.1:8000"),
                        help="gateway base URL (default: $GATEWAY_URL or http://127.0.0.1:8000)")
    parser.add_argument("--force", action="store_true", help=f"run even if {MARKER.name} exists")
    args = parser.parse_args(argv)

    if MARKER.exists() and not args.force:
        print(f"demo data: already loaded ({MARKER.name} exists; --force to run again)")
        return 0

    admin_user = setting("GATEWAY_ADMIN_USERNAME", file_values, "admin")
    admin_password = setting("GATEWAY_ADMIN_PASSWORD", file_values)
    if not admin_password:
        raise SystemExit("demo data: GATEWAY_ADMIN_PASSWORD is not set (environment or .env)")
    demo_password = setting("DEMO_USER_PASSWORD", file_values)
    if not demo_password:
        digest = hmac.new(admin_password.encode(), b"sales-platform demo users", hashlib.sha256).digest()
        demo_password = urlsafe_b64encode(digest[:18]).decode()

    gw = Gateway(args.gateway)
    report = []
    try:
        admin_token = gw.login(admin_user, admin_password)
        director_id = ensure_user(gw, admin_token, DIRECTOR, demo_password, report)
        manager_id = ensure_user(gw, admin_token, dict(MANAGER, manager=director_id), demo_password, report)
        for rep in REPS:
            ensure_user(gw, admin_token, dict(rep, manager=manager_id), demo_password, report)
        for person in STAFF:
            ensure_user(gw, admin_token, person, demo_password, report)
        tokens = {"admin": admin_token}
        for name in ("rep1", "pm1", "finance1", "warehouse1", "manager1"):
            tokens[name] = gw.login(name, demo_password)
        for row in CUSTOMERS:
            ensure_customer(gw, tokens["rep1"], row, report)
        ensure_business(gw, tokens, report)
    except requests.RequestException as exc:
        raise SystemExit(f"demo data: gateway {args.gateway} unreachable: {exc}")

    MARKER.write_text(time.strftime("%Y-%m-%dT%H:%M:%SZ\n", time.gmtime()))
    print(f"demo data loaded through {args.gateway}{API}:")
    print("\n".join(report))
    users = ", ".join(person["username"] for person in [DIRECTOR, MANAGER, *REPS, *STAFF])
    print(f"  demo users {users} log in with password {demo_password}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
