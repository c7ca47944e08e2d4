"""Fixtures of billing's integration tests: the billing service in a container on a fresh
database built by its migrations and on this test's RabbitMQ vhost, driven through its RPC and by
publishing the events it consumes (as the customer, inventory and order services would).

    def test_x(books):
        customer = books.customer()                        # customer.created, account opened
        delivery = books.goods_issued(customer, [("SKU-1", 10, "113.00", "0.13")])
        invoice = books.invoice(customer, [delivery])      # draft → certified → issued
        books.rpc.billing.get_invoice(actor=books.finance, invoice_id=invoice["id"])
"""
import uuid
from datetime import datetime, timezone

import eventlet
import pytest
from nameko.standalone.events import event_dispatcher
from nameko.standalone.rpc import ClusterRpcClient

from shared import envelope
from shared.testing.contracts import assert_matches_contract


def actor(role, team=None, staff_id=None):
    return {"staff_id": str(staff_id or uuid.uuid4()), "role": role, "username": role, "team": team}


@pytest.fixture
def db_name(make_database):
    return make_database("services/billing/migrations")


@pytest.fixture
def billing_config(service_config, db_name):
    """The quarterly timer is off here: tests run the job themselves with an injected time."""
    return service_config(db_name, CREDIT={"RECOMPUTE_SCHEDULE": False})


@pytest.fixture
def billing(billing_config, container_factory):
    """(The database is made before the containers, so they are stopped before it is dropped.)"""
    from billing.service import BillingService

    container = container_factory(BillingService, billing_config)
    container.start()
    return container


@pytest.fixture
def rpc(billing):
    with ClusterRpcClient(timeout=15) as client:
        yield client


def wait_for(check, timeout=10, what="condition"):
    deadline = eventlet.hubs.get_hub().clock() + timeout
    while eventlet.hubs.get_hub().clock() < deadline:
        value = check()
        if value:
            return value
        eventlet.sleep(0.02)
    raise AssertionError(f"{what} not met in time")


@pytest.fixture(name="wait_for")
def wait_for_fixture():
    return wait_for


class Books:
    """Drives billing like the rest of the platform would, and reads its books for assertions."""

    def __init__(self, rpc, conn):
        self.rpc = rpc
        self.conn = conn
        self.dispatch = event_dispatcher()
        self.team = "East-1"
        self.rep = actor("sales_rep", self.team)
        self.manager = actor("sales_manager", self.team)
        self.finance = actor("finance")
        self.order_desk = actor("order_desk")

    # -- reading the books ------------------------------------------------------------------------
    def sql(self, query, *params):
        with self.conn.cursor() as cur:
            cur.execute(query, params)
            return cur.fetchall() if cur.description else None

    def value(self, query, *params):
        rows = self.sql(query, *params)
        return next(iter(rows[0].values())) if rows else None

    def outbox(self, event_type=None):
        rows = self.sql("SELECT payload FROM outbox ORDER BY id")
        return [r["payload"] for r in rows if event_type is None or r["payload"]["event_type"] == event_type]

    def check_contracts(self):
        """Every event billing has published matches its JSON Schema (producer contract test)."""
        published = self.outbox()
        for event in published:
            assert_matches_contract("billing", event)
        return {event["event_type"] for event in published}

    # -- events billing consumes -------------------------------------------------------------------
    def publish(self, source, event_type, data, occurred_at=None):
        event = envelope.build(event_type, data, source=source, occurred_at=occurred_at)
        self.dispatch(source, event_type, event)
        return event

    def applied(self, event, handler):
        wait_for(lambda: self.value("SELECT count(*) FROM inbox WHERE event_id = %s", event["event_id"]) == 1,
                 what=f"{handler} applied")
        failed = self.sql("SELECT error FROM failed_messages WHERE event_id = %s", event["event_id"])
        assert not failed, failed

    def parked(self, event):
        """The error of an event the handler refused (parked in failed_messages, not lost)."""
        rows = wait_for(lambda: self.sql("SELECT error FROM failed_messages WHERE event_id = %s", event["event_id"]),
                        what="the event parked")
        return rows[0]["error"]

    def customer(self, owner=None, team=None, tax=True, region="East China", name=None):
        customer_id = str(uuid.uuid4())
        owner = owner or self.rep
        data = {"customer_id": customer_id, "number": f"CUS-2026-{uuid.uuid4().int % 10 ** 6:06d}",
                "name": name or f"Customer {customer_id[:8]} Co., Ltd.", "region": region,
                "owner_id": owner["staff_id"], "owner_team": team if team is not None else owner.get("team"),
                "tax_id": "91310000MA1FL8XQ3K" if tax else None,
                "bank_account": {"bank_name": "ICBC Shanghai", "account_no": "6222 0000 1111 2222"} if tax else None,
                "industry": "machinery", "size": "medium", "source": "trade_fair", "status": "potential"}
        self.applied(self.publish("customer", "customer.created", data), "on_customer_created")
        return data

    def goods_issued(self, customer, lines, order_id=None, issued_at=None):
        """lines: [(sku, quantity, unit_price, vat_rate)] → the delivery as billing saw it."""
        order_id = order_id or str(uuid.uuid4())
        delivery = {
            "delivery_id": str(uuid.uuid4()), "delivery_number": f"DN-2026-{uuid.uuid4().int % 10 ** 6:06d}",
            "order_id": order_id, "order_number": "SO-2026-000001", "warehouse": "WH-SH",
            "issued_at": (issued_at or datetime.now(timezone.utc)).isoformat(),
            "customer_id": customer["customer_id"], "owner_id": customer["owner_id"],
            "owner_team": customer["owner_team"], "region": customer["region"],
            "lines": [{"delivery_line_id": str(uuid.uuid4()), "order_line_id": str(uuid.uuid4()), "sku": sku,
                       "quantity": quantity, "unit_price": price, "vat_rate": rate}
                      for sku, quantity, price, rate in lines],
        }
        self.applied(self.publish("inventory", "goods.issued", delivery), "on_goods_issued")
        return delivery

    def goods_returned(self, delivery, lines):
        """lines: [(delivery line index, quantity)]."""
        data = {"return_id": str(uuid.uuid4()), "return_number": "RR-2026-000001",
                "delivery_id": delivery["delivery_id"], "order_id": delivery["order_id"],
                "customer_id": delivery["customer_id"], "received_at": datetime.now(timezone.utc).isoformat(),
                "lines": [{"delivery_line_id": delivery["lines"][i]["delivery_line_id"],
                           "sku": delivery["lines"][i]["sku"], "quantity": q} for i, q in lines]}
        event = self.publish("inventory", "goods.returned", data)
        self.applied(event, "on_goods_returned")
        return data

    # -- commands ------------------------------------------------------------------------------------
    def invoice(self, deliveries, kind="ordinary", issue=True, by=None):
        """Raised by the owner (default: the rep), certified by a manager of the owner's team,
        issued by finance."""
        billing = self.rpc.billing
        team = deliveries[0]["owner_team"]
        by = by or (self.rep if team == self.team else self.finance)
        invoice = billing.create_invoice(request_id=str(uuid.uuid4()), actor=by,
                                         delivery_ids=[d["delivery_id"] for d in deliveries], kind=kind)
        if issue:
            manager = self.manager if team == self.team else actor("sales_manager", team)
            billing.certify_invoice(request_id=str(uuid.uuid4()), actor=manager, invoice_id=invoice["id"])
            invoice = billing.issue_invoice(request_id=str(uuid.uuid4()), actor=self.finance,
                                            invoice_id=invoice["id"])
        return invoice

    def receipt(self, customer, amount, confirm=True, received_at=None, by=None):
        billing = self.rpc.billing
        receipt = billing.record_receipt(request_id=str(uuid.uuid4()), actor=by or self.rep, receipt={
            "customer_id": customer["customer_id"], "amount": amount, "method": "bank_transfer",
            "reference": "BOC-" + uuid.uuid4().hex[:10],
            "received_at": received_at or datetime.now(timezone.utc).date().isoformat()})
        if confirm:
            receipt = billing.confirm_receipt(request_id=str(uuid.uuid4()), actor=self.finance,
                                              receipt_id=receipt["id"])
        return receipt

    def allocate(self, receipt, pairs, by=None):
        return self.rpc.billing.allocate_receipt(
            request_id=str(uuid.uuid4()), actor=by or self.rep, receipt_id=receipt["id"],
            allocations=[{"invoice_id": invoice["id"], "amount": amount} for invoice, amount in pairs])

    def set_limit(self, customer, limit, reason="opening limit agreed with the customer"):
        return self.rpc.billing.set_credit_limit(request_id=str(uuid.uuid4()), actor=self.finance,
                                                 customer_id=customer["customer_id"], limit=limit, reason=reason)

    def account(self, customer):
        return self.rpc.billing.get_credit_account(actor=self.finance, customer_id=customer["customer_id"])

    def backdate(self, table, row_id, days, *columns):
        """Move a document's dates into the past, as if it had been posted `days` ago (the books
        are dated by posting time; tests need months of history in seconds)."""
        sets = ", ".join(f"{c} = {c} - make_interval(days => %s)" for c in columns)
        self.sql(f"UPDATE {table} SET {sets} WHERE id = %s RETURNING id", *([days] * len(columns)), row_id)


@pytest.fixture
def books(rpc, db_connect, db_name):
    return Books(rpc, db_connect(db_name))
