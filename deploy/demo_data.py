#!/usr/bin/env python3
"""Load a small demo org and a few customers through the gateway's HTTP API.

Run by ``make up`` once every process is ready; safe to run again by hand:

    .venv/bin/python deploy/demo_data.py [--gateway URL] [--force]

It logs in as the admin (GATEWAY_ADMIN_USERNAME / GATEWAY_ADMIN_PASSWORD, from
the environment or the root .env), creates a sales manager ``manager1`` and two
reps ``rep1`` and ``rep2`` reporting to them, then logs in as rep1 and records a
few customers. Every POST carries a fixed Idempotency-Key derived from the item,
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

MANAGER = {
    "username": "manager1",
    "role": "sales_manager",
    "display_name": "Li Wei (demo manager)",
    "team": "east-1",
    "region": "East China",
}
REPS = [
    {
        "username": "rep1",
        "role": "sales_rep",
        "display_name": "Zhang Min (demo rep)",
        "team": "east-1",
        "region": "East China",
    },
    {
        "username": "rep2",
        "role": "sales_rep",
        "display_name": "Wang Fang (demo rep)",
        "team": "east-1",
        "region": "East China",
    },
]
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
        manager_id = ensure_user(gw, admin_token, MANAGER, demo_password, report)
        for rep in REPS:
            ensure_user(gw, admin_token, dict(rep, manager=manager_id), demo_password, report)
        rep_token = gw.login(REPS[0]["username"], demo_password)
        for row in CUSTOMERS:
            ensure_customer(gw, rep_token, row, report)
    except requests.RequestException as exc:
        raise SystemExit(f"demo data: gateway {args.gateway} unreachable: {exc}")

    MARKER.write_text(time.strftime("%Y-%m-%dT%H:%M:%SZ\n", time.gmtime()))
    print(f"demo data loaded through {args.gateway}{API}:")
    print("\n".join(report))
    print(f"  demo users manager1, rep1, rep2 log in with password {demo_password}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
