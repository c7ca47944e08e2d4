"""Fixtures of the customer service's integration tests: the service in a container on a fresh
PostgreSQL database (its migrations) and this test's RabbitMQ vhost, an RPC client, and `crm`:
helpers that record staff and customers through the service itself and look behind it (the
outbox, the tables) with a plain connection."""
import uuid
from datetime import datetime, timezone
from zoneinfo import ZoneInfo

import eventlet
import pytest
from nameko.standalone.rpc import ClusterRpcClient

MIGRATIONS = "services/customer/migrations"


def rid():
    return str(uuid.uuid4())


def utcnow():
    return datetime.now(timezone.utc)


def business_today():
    """Today in Asia/Shanghai, where the business dates are (DESIGN.md)."""
    return datetime.now(ZoneInfo("Asia/Shanghai")).date()


@pytest.fixture
def db_name(make_database):
    return make_database(MIGRATIONS)


@pytest.fixture
def start_customer(container_factory, service_config, db_name):
    def start():
        from customer.service import CustomerService

        container = container_factory(CustomerService, service_config(db_name))
        container.start()
        return container

    return start


@pytest.fixture
def rpc(start_customer):
    start_customer()
    with ClusterRpcClient(timeout=10) as client:
        yield client.customer


@pytest.fixture
def db(db_connect, db_name):
    """A cursor (autocommit) on the service's database, to look behind the RPC."""
    return db_connect(db_name).cursor()


class Crm:
    ADMIN = {"staff_id": str(uuid.uuid4()), "role": "admin", "username": "admin"}
    rid = staticmethod(rid)
    now = staticmethod(utcnow)
    today = staticmethod(business_today)

    def __init__(self, rpc, db):
        self.rpc = rpc
        self.db = db

    def staff(self, role="sales_rep", team=None, manager=None, region=None, name=None, **more):
        """Record a staff member (through create_staff) and answer their actor."""
        name = name or f"{role}-{uuid.uuid4().hex[:6]}"
        row = self.rpc.create_staff(request_id=rid(), actor=self.ADMIN, staff=dict({
            "username": name, "display_name": name.title(), "role": role, "team": team, "region": region,
            "manager_id": manager["staff_id"] if manager else None}, **more))
        return {"staff_id": row["id"], "role": role, "username": name, "team": team}

    def team(self, name="East-1", reps=2, region="East"):
        """A manager and their reps: (manager, [reps])."""
        manager = self.staff("sales_manager", team=name, region=region)
        return manager, [self.staff(team=name, manager=manager, region=region) for _ in range(reps)]

    @staticmethod
    def body(**over):
        data = {"name": f"Acme {uuid.uuid4().hex[:8]} Co., Ltd.", "industry": "machinery", "size": "medium",
                "region": "East", "source": "trade_fair",
                "contacts": [{"name": "Li Wei", "position": "purchasing head", "decision_maker": True}]}
        data.update(over)
        return data

    def customer(self, actor, **over):
        return self.rpc.create_customer(request_id=rid(), actor=actor, customer=self.body(**over))

    def outbox(self, event_type=None):
        if event_type:
            self.db.execute("SELECT payload FROM outbox WHERE event_type = %s ORDER BY id", (event_type,))
        else:
            self.db.execute("SELECT payload FROM outbox ORDER BY id")
        return [row["payload"] for row in self.db.fetchall()]

    def scalar(self, sql, params=None):
        self.db.execute(sql, params)
        return next(iter(self.db.fetchone().values()))

    def execute(self, sql, params=None):
        self.db.execute(sql, params)

    @staticmethod
    def wait_until(predicate, timeout=10.0):
        deadline = eventlet.hubs.get_hub().clock() + timeout
        while not predicate():
            if eventlet.hubs.get_hub().clock() > deadline:
                raise AssertionError("condition not met in time")
            eventlet.sleep(0.05)


@pytest.fixture
def crm(rpc, db):
    return Crm(rpc, db)
