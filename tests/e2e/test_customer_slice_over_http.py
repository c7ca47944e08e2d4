"""The first slice end to end, driven only through the gateway's HTTP API with the real
processes: sign-in, users, customers with the duplicate rule (FR-06, FR-07), idempotent POSTs,
customer.created reaching billing (credit account with limit 0), request ids in every hop."""
import uuid

import pytest
import requests

pytestmark = pytest.mark.slow


def customer_body(**over):
    body = {"name": "Huadong Machinery Co., Ltd.", "tax_id": "91310000MA1FL8XQ3K", "industry": "machinery",
            "size": "large", "region": "East", "source": "trade_fair",
            "contacts": [{"name": "Wang Fang", "position": "CTO", "decision_maker": True}]}
    body.update(over)
    return body


def test_customer_slice_over_http(start_platform):
    platform = start_platform("customer", "billing")
    assert requests.get(platform.api("customers"), timeout=5).status_code == 401

    _, manager = platform.user("manager1", "sales_manager", team="East")
    rep1, _ = platform.user("rep1", "sales_rep", manager=manager["staff_id"], team="East")
    rep2, _ = platform.user("rep2", "sales_rep", manager=manager["staff_id"], team="East")

    request_id = "e2e-" + uuid.uuid4().hex
    key = str(uuid.uuid4())
    first = rep1.post("customers", customer_body(), headers={"X-Request-Id": request_id}, key=key)
    assert first.status_code == 201, first.text
    assert first.headers["X-Request-Id"] == request_id
    created = first.json()
    assert created["owner_name"] == "Rep1" and created["number"].startswith("CUS-")

    replay = rep1.post("customers", customer_body(), key=key)  # a retried POST creates nothing twice
    assert (replay.status_code, replay.json()) == (201, created)
    assert [c["id"] for c in rep1.get("customers", expect=200)["items"]] == [created["id"]]

    duplicate = rep2.post("customers", customer_body(name="HUADONG MACHINERY 有限公司", tax_id=None))
    assert duplicate.status_code == 409
    assert duplicate.headers["Content-Type"].startswith("application/problem+json")
    problem = duplicate.json()
    assert problem["code"] == "DUPLICATE_CUSTOMER" and problem["owner_name"] == "Rep1"

    # rep2 cannot see rep1's customer: 404, not 403
    rep2.get(f"customers/{created['id']}", expect=404)

    # customer.created reached billing through the outbox and its inbox: an account with limit 0
    credit = platform.wait_for(
        lambda: (lambda a: a.status_code == 200 and a.json())(rep1.get(f"customers/{created['id']}/credit")),
        what="the credit account")
    assert credit["limit"] == "0.00"

    # the request id followed the request into the customer service's JSON logs, and through the
    # event hop into billing's
    assert request_id in platform.logs("customer")
    platform.wait_for(lambda: request_id in platform.logs("billing"), what="the request id in billing's logs")


def test_every_process_reports_its_version_and_the_kits(start_platform):
    """Issue 13: SREs see what runs where, in /health and as the sales_build_info metric."""
    import tomllib
    from pathlib import Path

    import shared

    platform = start_platform("customer")
    root = Path(__file__).resolve().parents[2]
    for name, folder in (("customer", "services/customer"), ("gateway", "gateway")):
        expected = tomllib.loads((root / folder / "pyproject.toml").read_text())["project"]["version"]
        health = requests.get(platform.procs[name].url("/health"), timeout=5).json()
        assert (health["service"], health["version"], health["kit_version"]) == (name, expected, shared.__version__)
        metrics = requests.get(platform.procs[name].url("/metrics"), timeout=5).text
        assert f'sales_build_info{{kit_version="{shared.__version__}",service="{name}",version="{expected}"}} 1.0' \
            in metrics
