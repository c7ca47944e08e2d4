"""billing consumes customer.created through its inbox: once, whatever the broker does."""
import uuid

import eventlet
import pytest
from nameko.standalone.events import event_dispatcher
from nameko.standalone.rpc import ClusterRpcClient

from shared import envelope
from shared.errors import NotFound

ACTOR = {"staff_id": str(uuid.uuid4()), "role": "finance"}


def customer_created(customer_id=None):
    return envelope.build("customer.created", {"customer_id": str(customer_id or uuid.uuid4()),
                                               "name": "Acme", "future_field": 1}, source="customer")


def wait_for(check, timeout=10):
    deadline = eventlet.hubs.get_hub().clock() + timeout
    while eventlet.hubs.get_hub().clock() < deadline:
        value = check()
        if value:
            return value
        eventlet.sleep(0.05)
    raise AssertionError("condition not met in time")


def count(conn, sql, *params):
    cur = conn.cursor()
    cur.execute(sql, params)
    return cur.fetchone()["n"]


def test_customer_created_opens_a_credit_account_with_limit_zero(billing, db_name, db_connect):
    event = customer_created()
    event_dispatcher()("customer", "customer.created", event)
    conn = db_connect(db_name)
    wait_for(lambda: count(conn, "SELECT count(*) AS n FROM credit_accounts") == 1)
    with ClusterRpcClient(timeout=5) as client:
        account = client.billing.get_credit_account(actor=ACTOR, customer_id=event["data"]["customer_id"])
    assert account["limit"] == "0.00" and account["available"] == "0.00"
    assert account["history"][0]["reason"] == "account opened for a new customer"
    with ClusterRpcClient(timeout=5) as client, pytest.raises(NotFound):
        client.billing.get_credit_account(actor=ACTOR, customer_id=str(uuid.uuid4()))


def test_the_same_event_delivered_twice_is_applied_once(billing, db_name, db_connect):
    event = customer_created()
    dispatch = event_dispatcher()
    for _ in range(3):
        dispatch("customer", "customer.created", event)
    conn = db_connect(db_name)
    wait_for(lambda: count(conn, "SELECT count(*) AS n FROM credit_accounts") == 1)
    eventlet.sleep(0.5)  # let the duplicates arrive
    assert count(conn, "SELECT count(*) AS n FROM inbox") == 1
    assert count(conn, "SELECT count(*) AS n FROM credit_limit_history") == 1
    assert count(conn, "SELECT count(*) AS n FROM failed_messages") == 0


def test_a_malformed_event_is_parked_not_lost(billing, db_name, db_connect):
    event_dispatcher()("customer", "customer.created", {"event_id": str(uuid.uuid4()), "oops": True})
    bad_data = customer_created()
    bad_data["data"] = {"customer_id": "not-a-uuid"}
    event_dispatcher()("customer", "customer.created", bad_data)
    conn = db_connect(db_name)
    wait_for(lambda: count(conn, "SELECT count(*) AS n FROM failed_messages") == 2)
    cur = conn.cursor()
    cur.execute("SELECT error, payload FROM failed_messages")
    # both are handled at once by two workers: whichever is parked first comes first
    rows = sorted(cur.fetchall(), key=lambda row: "data" in row["payload"])
    assert "malformed event" in rows[0]["error"]
    assert rows[1]["payload"]["data"]["customer_id"] == "not-a-uuid"
    assert count(conn, "SELECT count(*) AS n FROM credit_accounts") == 0
