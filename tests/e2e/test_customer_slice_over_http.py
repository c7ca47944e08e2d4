"""The first slice end to end, driven only through the gateway's HTTP API with the real
processes: sign-in, users, customers with the duplicate rule (FR-06, FR-07), idempotent POSTs,
customer.created reaching billing (credit account with limit 0), request ids in every hop."""
import uuid

import eventlet
import pytest
import requests

pytestmark = pytest.mark.slow

ADMIN_PASSWORD = "admin-" + uuid.uuid4().hex


@pytest.fixture
def platform(make_database, process_factory):
    customer = process_factory("customer", "customer.service:CustomerService", "services/customer/config.yaml",
                               db_name=make_database("services/customer/migrations"))
    billing = process_factory("billing", "billing.service:BillingService", "services/billing/config.yaml",
                              db_name=make_database("services/billing/migrations"))
    gateway = process_factory("gateway", "gateway.service:GatewayService", "gateway/config.yaml",
                              db_name=make_database("gateway/migrations"),
                              GATEWAY_TOKEN_SECRET=uuid.uuid4().hex, GATEWAY_ADMIN_USERNAME="admin",
                              GATEWAY_ADMIN_PASSWORD=ADMIN_PASSWORD)
    for proc in (customer, billing, gateway):
        proc.wait_ready()
    return {"customer": customer, "billing": billing, "gateway": gateway}


def api(platform, path):
    return platform["gateway"].url("/api/v1/" + path.lstrip("/"))


def login(platform, username, password):
    answer = requests.post(api(platform, "auth/token"), json={"username": username, "password": password}, timeout=10)
    assert answer.status_code == 200, answer.text
    return {"Authorization": f"Bearer {answer.json()['access_token']}"}


def post(platform, path, body, headers, key=None):
    headers = dict(headers, **({"Idempotency-Key": key} if key else {}))
    return requests.post(api(platform, path), json=body, headers=headers, timeout=15)


def make_user(platform, admin, username, role, **extra):
    for _ in range(50):  # the admin's own staff record is created in the background at start
        answer = post(platform, "users", dict({"username": username, "password": "pw-" + username * 2,
                                               "role": role, "display_name": username.title()}, **extra), admin)
        if answer.status_code != 503:
            break
        eventlet.sleep(0.2)
    assert answer.status_code == 201, answer.text
    return answer.json()


def customer_body(**over):
    body = {"name": "Huadong Machinery Co., Ltd.", "tax_id": "91310000MA1FL8XQ3K", "industry": "machinery",
            "size": "large", "region": "East", "source": "trade_fair",
            "contacts": [{"name": "Wang Fang", "position": "CTO", "decision_maker": True}]}
    body.update(over)
    return body


def test_customer_slice_over_http(platform):
    assert requests.get(api(platform, "customers"), timeout=5).status_code == 401

    admin = login(platform, "admin", ADMIN_PASSWORD)
    manager = make_user(platform, admin, "manager1", "sales_manager", team="East")
    make_user(platform, admin, "rep1", "sales_rep", manager=manager["staff_id"], team="East")
    make_user(platform, admin, "rep2", "sales_rep", manager=manager["staff_id"], team="East")
    rep1, rep2 = login(platform, "rep1", "pw-rep1rep1"), login(platform, "rep2", "pw-rep2rep2")

    request_id = "e2e-" + uuid.uuid4().hex
    key = str(uuid.uuid4())
    first = post(platform, "customers", customer_body(), dict(rep1, **{"X-Request-Id": request_id}), key)
    assert first.status_code == 201, first.text
    assert first.headers["X-Request-Id"] == request_id
    created = first.json()
    assert created["owner_name"] == "Rep1" and created["number"].startswith("CUS-")

    replay = post(platform, "customers", customer_body(), rep1, key)  # a retried POST creates nothing twice
    assert (replay.status_code, replay.json()) == (201, created)
    listed = requests.get(api(platform, "customers"), headers=rep1, timeout=10).json()
    assert [c["id"] for c in listed["items"]] == [created["id"]]

    duplicate = post(platform, "customers", customer_body(name="HUADONG MACHINERY 有限公司", tax_id=None), rep2,
                     str(uuid.uuid4()))
    assert duplicate.status_code == 409
    assert duplicate.headers["Content-Type"].startswith("application/problem+json")
    problem = duplicate.json()
    assert problem["code"] == "DUPLICATE_CUSTOMER" and problem["owner_name"] == "Rep1"

    # rep2 cannot see rep1's customer: 404, not 403
    assert requests.get(api(platform, f"customers/{created['id']}"), headers=rep2, timeout=10).status_code == 404

    # customer.created reached billing through the outbox and its inbox: an account with limit 0
    credit = None
    for _ in range(100):
        answer = requests.get(api(platform, f"customers/{created['id']}/credit"), headers=rep1, timeout=10)
        if answer.status_code == 200:
            credit = answer.json()
            break
        eventlet.sleep(0.1)
    assert credit is not None and credit["limit"] == "0.00"

    # the request id followed the request into the customer service's JSON logs
    assert request_id in platform["customer"].logs()
    # ... and through the event hop into billing's
    for _ in range(50):
        if request_id in platform["billing"].logs():
            break
        eventlet.sleep(0.1)
    assert request_id in platform["billing"].logs()
