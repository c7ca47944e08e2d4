"""Upgrading one service without downtime (issue 13): under a steady load through the gateway,
the customer service is replaced by its next version — a build with a higher version and an
expand migration (a new nullable column) — and the old process gets SIGTERM. Two ways a team
rolls it out (docs/DEPLOY.md):

  * surge   — Kubernetes (`maxSurge: 1, maxUnavailable: 0`): the new version migrates and starts
              beside the old one, then the old one gets SIGTERM;
  * replace — docker compose `up -d --no-deps customer`: the old one gets SIGTERM, then the new
              one migrates and starts; RPC requests wait in the service's queue meanwhile.

The load client is an integrator that does what the API asks of one: a request answered 5xx or
not answered at all, or 409 IDEMPOTENCY_KEY_IN_USE (its first attempt still in flight), is sent
again with the same Idempotency-Key — safe because every command is idempotent — and counted as
a retry. The gateway itself does not retry. Then:

  * no request failed (every one got its expected answer, after retries);
  * no event was lost: every customer created under load has its credit account in billing
    (customer.created, published by the old or the new process's outbox), every order confirmed
    under load is in the customer's purchase history (order.confirmed, consumed by whichever
    customer process was running); no outbox row left unpublished, nothing parked;
  * the old process exited cleanly on SIGTERM; the new one runs the new schema and reports its
    new version in /health and `sales_build_info`.

Runs in `make test-faults` (RUN_FAULTS=1, or when tests/faults is named on the command line);
`make test` skips it. Its figures go to docs/RELIABILITY.md.
"""
import os
import re
import shutil
import subprocess
import sys
import time
import uuid
from datetime import date, timedelta
from pathlib import Path

import eventlet
import pytest
import requests

from tests.faults.load import Driver, e2e, osb

ROOT = Path(__file__).resolve().parents[2]
STEADY, AFTER = 4.0, 5.0  # seconds of load before the upgrade starts and after it is done
start_platform = e2e.start_platform  # the end-to-end fixture: real processes, fresh databases, own vhost
pytestmark = pytest.mark.usefixtures("fault_suite")  # make test-faults (tests/faults/conftest.py)


# -- the next version of the customer service ----------------------------------------------------------
def next_version(tmp_path):
    """services/customer as its next release would ship it: a higher version in pyproject.toml and
    one more migration, expand-style (a nullable column the current code does not know)."""
    folder = tmp_path / "next" / "customer"
    shutil.copytree(ROOT / "services" / "customer", folder, ignore=shutil.ignore_patterns("tests", "__pycache__"))
    project = folder / "pyproject.toml"
    text = project.read_text()
    current = re.search(r'^version = "(\d+)\.(\d+)\.(\d+)"', text, re.M)
    version = f"{current[1]}.{int(current[2]) + 1}.0"
    project.write_text(text.replace(current[0], f'version = "{version}"', 1))
    numbers = [int(p.name[:4]) for p in (folder / "migrations").glob("*.sql")]
    (folder / "migrations" / f"{max(numbers) + 1:04d}_customer_preferred_channel.sql").write_text(
        "-- expand: a new optional column; the running version neither reads nor writes it\n"
        "ALTER TABLE customers ADD COLUMN preferred_channel text;\n")
    return folder, version


def migrate(folder, db_name, env):
    """What the image's entrypoint does before `nameko run`: python -m shared.migrate."""
    done = subprocess.run([sys.executable, "-m", "shared.migrate", "--dbname", db_name, str(folder / "migrations")],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout.strip()


# -- the load ------------------------------------------------------------------------------------------
class Load(Driver):
    """Integrators recording customers, selling and reading until stopped."""

    def __init__(self, platform, org):
        super().__init__(platform, org)
        self.customers, self.confirmed = [], []

    def capture(self):
        rep = self.org.rep
        while self.running:
            created = self.send(rep, "POST", "customers", {
                "name": f"Rolling {uuid.uuid4().hex[:10]} Trading Co., Ltd.", "industry": "wholesale", "size": "small",
                "region": "East China", "source": "internet"}, expect=201)
            if created:
                self.customers.append(created["id"])
                self.send(rep, "GET", f"customers/{created['id']}")
            eventlet.sleep(0.05)

    def sell(self, customer_id):
        rep = self.org.rep
        body = {"customer_id": customer_id, "lines": [{"sku": "PUMP-200", "quantity": 1}]}
        while self.running:
            order = self.send(rep, "POST", "orders", body, expect=201)
            if order:
                confirmed = self.send(rep, "POST", f"orders/{order['id']}/confirm")
                if confirmed and confirmed["status"] == "confirmed":
                    self.confirmed.append(order["id"])
                elif confirmed:
                    self.failures.append(f"order {order['number']} ended {confirmed['status']}")
            eventlet.sleep(0.05)

    def read(self):
        manager = self.org.manager
        while self.running:
            self.send(manager, "GET", "customers?limit=20")
            self.send(manager, "GET", f"customers/{self.org.customer['id']}")
            eventlet.sleep(0.05)

    def start(self, buyers):
        """Two integrators recording customers, one selling to each buyer, one reading. (One
        seller per buyer: concurrent order.confirmed events for one customer can deadlock in the
        customer service's purchase history — see docs/RELIABILITY.md — which is not what this
        test is about.)"""
        return self.spawn(*[(self.capture, ()), (self.capture, ())] + [(self.sell, (b,)) for b in buyers]
                          + [(self.read, ())])


def reviewed_customer(org, limit):
    """One more customer as osb.Org makes its own: reviewed (FR-14) and with credit."""
    customer = org.rep.post("customers", {
        "name": f"Second Buyer {uuid.uuid4().hex[:6]} Co., Ltd.", "industry": "machinery", "size": "medium",
        "region": "East China", "source": "trade_fair"}, expect=201)
    review = org.rep.post(f"customers/{customer['id']}/reviews", {
        "business_status": "operating", "credit_opinion": "sound",
        "valid_until": str(date.today() + timedelta(days=180))}, expect=201)
    org.pm.post(f"customers/{customer['id']}/reviews/{review['id']}/approve", expect=200)
    org.platform.wait_for(lambda: org.finance.put(f"customers/{customer['id']}/credit",
                                                  {"limit": limit, "reason": "opening limit"}).status_code == 200,
                          what="credit account opened")
    return customer["id"]


def figures_line(mode, load, lost, began, ended):
    during, slowest = load.during(began, ended)
    return (f"rolling upgrade ({mode}): {load.requests} requests, {load.retries} retries, "
            f"{len(load.failures)} failed, {lost} events lost; {len(load.customers)} customers created and "
            f"{len(load.confirmed)} orders confirmed under load; the switch took {ended - began:.1f} s with "
            f"{during} requests in flight during it, the slowest {slowest:.2f} s")


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["surge", "replace"])
def test_a_service_is_upgraded_under_load_without_a_failed_request_or_a_lost_event(
        mode, start_platform, process_factory, db_connect, tmp_path, capsys):
    platform = start_platform("customer", "order", "inventory", "billing")
    org = osb.Org(platform, stock=100000, limit="100000000.00")
    buyers = [org.customer["id"], reviewed_customer(org, "100000000.00")]
    old = platform.procs["customer"]
    customer_db = old.env["DB_NAME"]
    folder, version = next_version(tmp_path)
    env = dict(old.env, PYTHONPATH=os.pathsep.join([str(ROOT), str(folder)]))

    load = Load(platform, org).start(buyers)
    eventlet.sleep(STEADY)
    began = time.monotonic()
    if mode == "replace":
        old.stop(timeout=40)  # SIGTERM; SIGKILL only if it did not stop in 40 s (and the test fails)
        exited = old.proc.returncode
    applied = migrate(folder, customer_db, env)
    new = process_factory("customer-next", "customer.service:CustomerService", folder / "config.yaml",
                          db_name=customer_db, PYTHONPATH=env["PYTHONPATH"]).wait_ready()
    if mode == "surge":
        old.stop(timeout=40)
        exited = old.proc.returncode
    ended = time.monotonic()
    eventlet.sleep(AFTER)
    load.stop()

    assert "customer_preferred_channel" in applied, applied
    assert exited == 0, f"the old process did not stop cleanly on SIGTERM ({exited}):\n{old.logs()}"
    health = requests.get(new.url("/health"), timeout=5).json()
    assert health["version"] == version, health
    assert re.search(rf'sales_build_info{{[^}}]*version="{re.escape(version)}"[^}}]*}} 1\.0',
                     requests.get(new.url("/metrics"), timeout=5).text)

    # no event lost: what the customer service published, and what it consumed, across the switch
    customer_conn = db_connect(customer_db)
    billing_conn = db_connect(platform.procs["billing"].env["DB_NAME"])

    def rows(conn, sql, *params):
        with conn.cursor() as cur:
            cur.execute(sql, params)
            return cur.fetchall()

    def missing():
        accounts = {str(r["customer_id"]) for r in rows(billing_conn, "SELECT customer_id FROM credit_accounts")}
        purchases = {str(r["order_id"]) for r in rows(customer_conn, "SELECT order_id FROM purchases")}
        return set(load.customers) - accounts, set(load.confirmed) - purchases

    try:
        platform.wait_for(lambda: missing() == (set(), set()), timeout=30, what="every event applied")
    except AssertionError:
        pass
    lost_accounts, lost_purchases = missing()
    lost = len(lost_accounts) + len(lost_purchases)
    with capsys.disabled():
        print("\n" + figures_line(mode, load, lost, began, ended))

    assert not load.failures, load.failures
    assert load.customers and load.confirmed and load.during(began, ended)[0], "the load did nothing"
    assert not lost_accounts, f"customer.created lost for {sorted(lost_accounts)}"
    assert not lost_purchases, f"order.confirmed lost for {sorted(lost_purchases)}"
    assert rows(customer_conn, "SELECT count(*) AS n FROM outbox WHERE published_at IS NULL")[0]["n"] == 0
    for name in ("customer", "billing"):
        conn = customer_conn if name == "customer" else billing_conn
        assert rows(conn, "SELECT count(*) AS n FROM failed_messages")[0]["n"] == 0, f"{name} parked messages"
    assert rows(customer_conn, "SELECT count(*) AS n FROM information_schema.columns WHERE table_name = 'customers'"
                               " AND column_name = 'preferred_channel'")[0]["n"] == 1
