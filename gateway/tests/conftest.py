"""Fixtures of the gateway's tests: a gateway container on real PostgreSQL (its migrations) and
RabbitMQ (a vhost per test), logins made straight in its database, and a fake `customer` service
whose behaviour each test chooses."""
import importlib
import sys
import time
import uuid
from datetime import datetime, timezone

import eventlet
import pytest
from eventlet.event import Event
from argon2 import PasswordHasher
from nameko.extensions import DependencyProvider

from shared.entrypoints import rpc
from shared.errors import Conflict, NotFound, ValidationFailed


def _import_the_gateway_package():
    """pytest (--import-mode=importlib) names these files `gateway.tests.*` and puts a placeholder
    module for the folder `gateway/` in sys.modules, which hides the real package `gateway`
    (gateway/gateway/). Swap the real package in, keeping the test modules reachable."""
    placeholder = sys.modules.get("gateway")
    if placeholder is not None and getattr(placeholder, "__file__", None) is None:
        del sys.modules["gateway"]
        real = importlib.import_module("gateway")
        if "gateway.tests" in sys.modules:
            real.tests = sys.modules["gateway.tests"]


_import_the_gateway_package()

MIGRATIONS = "gateway/migrations"
TOKEN_SECRET = "test-token-secret-" + "x" * 40
# cheap argon2 parameters for logins made by the tests; verification reads them from the hash
FAST_HASHER = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)


class Upstream:
    """What the fake customer service does and what it saw; reset for every test."""

    def __init__(self):
        self.mode = "ok"  # ok | slow | duplicate | busy | crash | block
        self.calls = []
        self.slow_for = 0
        self.entered = Event()
        self.release = Event()

    def of(self, method):
        return [call for call in self.calls if call["method"] == method]


UPSTREAM = Upstream()


class WorkerData(DependencyProvider):
    def get_dependency(self, worker_ctx):
        return worker_ctx.data


def _answer_customer(request_id, actor, customer):
    return {
        "id": str(uuid.uuid5(uuid.UUID(request_id), "customer")), "number": "CUS-2026-000001",
        "name": customer["name"], "status": customer.get("status", "potential"),
        "owner_id": actor["staff_id"], "owner_name": actor["username"],
        "contact_due_by": "2026-01-08T00:00:00+00:00",
        "created_at": datetime.now(timezone.utc).isoformat(),
    }


class FakeCustomer:
    """Stands in for the customer service: same name, same RPC signatures."""

    name = "customer"
    data = WorkerData()

    def _record(self, method, **kwargs):
        UPSTREAM.calls.append(dict(kwargs, method=method, correlation_id=self.data.get("correlation_id")))

    def _behave(self):
        if UPSTREAM.mode == "slow":
            eventlet.sleep(UPSTREAM.slow_for)
        elif UPSTREAM.mode == "block":
            UPSTREAM.entered.send(True)
            UPSTREAM.release.wait()
        elif UPSTREAM.mode == "crash":
            raise ZeroDivisionError("secret internal detail")

    @rpc
    def create_customer(self, *, request_id, actor, customer):
        self._record("create_customer", request_id=request_id, actor=actor, customer=customer)
        self._behave()
        if UPSTREAM.mode == "invalid":
            raise ValidationFailed("no such territory", errors={"region": ["not a territory"]})
        if UPSTREAM.mode == "busy":
            raise Conflict("another operation is running on this document; retry shortly",
                           code="CONFIRMATION_IN_PROGRESS")
        if UPSTREAM.mode == "duplicate":
            raise Conflict(f"{customer['name']} is already recorded; owner: Wang Fang",
                           code="DUPLICATE_CUSTOMER", owner_id="6f1c1f0e-6d3b-4b7c-9a55-3d1f0b2a9c10",
                           owner_name="Wang Fang")
        return _answer_customer(request_id, actor, customer)

    @rpc
    def create_staff(self, *, request_id, actor, staff):
        self._record("create_staff", request_id=request_id, actor=actor, staff=staff)
        self._behave()
        return dict(staff, active=True)

    @rpc
    def list_customers(self, *, actor, filters=None, limit=None, cursor=None):
        self._record("list_customers", actor=actor, filters=filters, limit=limit, cursor=cursor)
        return {"items": [], "next_cursor": None}

    @rpc
    def get_customer(self, *, actor, customer_id):
        self._record("get_customer", actor=actor, customer_id=customer_id)
        raise NotFound(f"customer {customer_id} not found")


@pytest.fixture(autouse=True)
def upstream():
    UPSTREAM.__init__()
    yield UPSTREAM
    if not UPSTREAM.release.ready():
        UPSTREAM.release.send(True)


@pytest.fixture
def db_name(make_database):
    return make_database(MIGRATIONS, prefix="test_gateway")


@pytest.fixture
def gateway_config(service_config, db_name):
    def build(**overrides):
        gateway = dict({"TOKEN_SECRET": TOKEN_SECRET, "TOKEN_TTL": 3600, "ADMIN_USERNAME": "admin",
                        "ADMIN_PASSWORD": ""}, **overrides.pop("GATEWAY", {}))
        return service_config(db_name, GATEWAY=gateway, **overrides)

    return build


@pytest.fixture
def start_gateway(container_factory, gateway_config, web_session):
    """Start the gateway (and, with customer=True, the fake customer service); returns an HTTP
    session on the gateway's port."""

    def start(customer=True, **overrides):
        from gateway.service import GatewayService

        cfg = gateway_config(**overrides)
        container = container_factory(GatewayService, cfg)
        container.start()
        if customer:
            container_factory(FakeCustomer, cfg).start()
        session = web_session(f"http://{cfg['WEB_SERVER_ADDRESS']}/")
        session.config = cfg
        return session

    return start


@pytest.fixture
def gateway(start_gateway):
    return start_gateway()


@pytest.fixture
def gateway_db(db_connect, db_name):
    return db_connect(db_name)


@pytest.fixture
def make_login(gateway_db):
    """`make_login(role, username=None, password="...")` → (username, password, staff_id): a
    login made straight in the gateway's database."""

    def make(role, username=None, password="pass-word-1", active=True, team=None):
        username = username or f"{role}-{uuid.uuid4().hex[:6]}"
        staff_id = uuid.uuid4()
        with gateway_db.cursor() as cur:
            cur.execute(
                "INSERT INTO credentials (id, kind, username, secret_hash, staff_id, role, display_name, active, team) "
                "VALUES (%s, 'password', %s, %s, %s, %s, %s, %s, %s)",
                (uuid.uuid4(), username, FAST_HASHER.hash(password), staff_id, role, username.title(), active, team))
        return username, password, str(staff_id)

    return make


@pytest.fixture
def token_for(request, make_login):
    """`token_for(role, session=None)` → headers with a bearer token of a new login with that role,
    logged in through `session` (default: the `gateway` fixture's)."""

    def headers(role, session=None):
        session = session or request.getfixturevalue("gateway")
        username, password, _ = make_login(role)
        answer = session.post("api/v1/auth/token", json={"username": username, "password": password})
        assert answer.status_code == 200, answer.text
        return {"Authorization": f"Bearer {answer.json()['access_token']}"}

    return headers


@pytest.fixture
def wait_for():
    def wait(predicate, timeout=10.0, interval=0.05):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return True
            eventlet.sleep(interval)
        return False

    return wait
