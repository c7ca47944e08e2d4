"""Real processes: an event committed to the outbox survives the service being SIGKILLed
before its relay publishes it, and reaches its consumer once the service is back."""
import uuid

import eventlet
import pytest
from nameko.standalone.rpc import ClusterRpcClient

pytestmark = pytest.mark.slow


def one(conn, sql, *params):
    cur = conn.cursor()
    cur.execute(sql, params)
    return cur.fetchone()


def wait_for(check, timeout=30):
    for _ in range(int(timeout / 0.1)):
        value = check()
        if value:
            return value
        eventlet.sleep(0.1)
    raise AssertionError("condition not met in time")


def test_event_survives_sigkill_between_commit_and_publish(make_database, db_connect, process_factory):
    customer_db = make_database("services/customer/migrations")
    billing_db = make_database("services/billing/migrations")
    # the relay is held back, and the committing worker leaves its events to it (they are
    # published at commit otherwise), so the kill lands after the commit and before the publish
    customer = process_factory("customer", "customer.service:CustomerService", "services/customer/config.yaml",
                               db_name=customer_db, OUTBOX_START_DELAY=600,
                               OUTBOX_PUBLISH_AT_COMMIT="false").wait_ready()
    billing = process_factory("billing", "billing.service:BillingService", "services/billing/config.yaml",
                              db_name=billing_db).wait_ready()

    admin = {"staff_id": str(uuid.uuid4()), "role": "admin"}
    with ClusterRpcClient(timeout=15) as client:
        rep = client.customer.create_staff(request_id=str(uuid.uuid4()), actor=admin,
                                           staff={"username": "rep-kill", "display_name": "Rep", "role": "sales_rep"})
        created = client.customer.create_customer(
            request_id=str(uuid.uuid4()), actor={"staff_id": rep["id"], "role": "sales_rep"},
            customer={"name": "Killjoy Ltd", "industry": "retail", "size": "small", "region": "North",
                      "source": "internet"})

    cconn, bconn = db_connect(customer_db), db_connect(billing_db)
    pending = one(cconn, "SELECT count(*) AS n FROM outbox WHERE event_type = 'customer.created'"
                         " AND published_at IS NULL")
    assert pending["n"] == 1
    customer.kill()
    assert one(bconn, "SELECT count(*) AS n FROM credit_accounts")["n"] == 0

    process_factory("customer-restarted", "customer.service:CustomerService", "services/customer/config.yaml",
                    db_name=customer_db).wait_ready()
    account = wait_for(lambda: one(bconn, "SELECT * FROM credit_accounts WHERE customer_id = %s", created["id"]))
    assert str(account["credit_limit"]) == "0.00"
    wait_for(lambda: one(cconn, "SELECT count(*) AS n FROM outbox WHERE published_at IS NULL")["n"] == 0)
    assert one(bconn, "SELECT count(*) AS n FROM inbox")["n"] == 1
    billing.stop()
