"""pytest plugin of the kit (enabled from the root conftest.py: `pytest_plugins = ["shared.testing.plugin"]`).

Fixtures:
  make_database(*migration_dirs)  a fresh, uniquely named database built by the migrations,
                                  dropped after the test; returns its name
  service_config(db_name, ...)    nameko config for a service container: this test's vhost,
                                  the database, a free web port
  web_session                     requests session on the container's web port (nameko's
                                  fixture imports werkzeug.urls.url_join, gone in werkzeug 3)
  process_factory                 starts real `nameko run` processes (for kill/restart tests)
  module_make_database, module_process_factory, module_rabbit_uri
                                  the same for a whole module: one set of processes shared by
                                  the module's tests (a platform started once)
Tests get their own RabbitMQ vhost from nameko's `rabbit_config` fixture.

Hypothesis runs under the `sales-platform` profile: no per-example deadline. The tests share a
loaded machine, so a timing limit only makes them flaky (a property test of the billing domain
failed with `DeadlineExceeded` at 570 ms against the default 200 ms); set HYPOTHESIS_PROFILE to
use another profile.
"""
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import urljoin

import pytest
from hypothesis import settings as hypothesis_settings

ROOT = Path(__file__).resolve().parents[2]

hypothesis_settings.register_profile("sales-platform", deadline=None)
hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "sales-platform"))


def pg_settings():
    return {
        "host": os.environ.get("DB_HOST", "127.0.0.1"),
        "port": int(os.environ.get("DB_PORT", 5432)),
        "user": os.environ.get("DB_USER", "postgres"),
        "password": os.environ.get("DB_PASSWORD") or None,
    }


@contextlib.contextmanager
def _databases():
    from shared.migrate import drop_database, ensure_database, migrate

    created = []
    settings = {k: v for k, v in pg_settings().items() if v is not None}

    def make(*migration_dirs, prefix="test"):
        name = f"{prefix}_{uuid.uuid4().hex[:12]}"
        ensure_database(settings, name)
        created.append(name)
        migrate(dict(settings, dbname=name), [ROOT / d for d in migration_dirs])
        return name

    try:
        yield make
    finally:
        for name in created:
            drop_database(settings, name)


@pytest.fixture
def make_database():
    with _databases() as make:
        yield make


@pytest.fixture(scope="module")
def module_make_database():
    """`make_database` for a whole module (its databases dropped after the module's last test)."""
    with _databases() as make:
        yield make


@pytest.fixture
def db_connect():
    """Open a plain (blocking-free under eventlet) connection to a test database."""
    import psycopg2
    import psycopg2.extras

    conns = []

    def connect(dbname):
        settings = {k: v for k, v in pg_settings().items() if v is not None}
        conn = psycopg2.connect(dbname=dbname, cursor_factory=psycopg2.extras.RealDictCursor, **settings)
        conn.autocommit = True
        conns.append(conn)
        return conn

    yield connect
    for conn in conns:
        conn.close()


@pytest.fixture
def service_config(rabbit_config):
    """Build the nameko config dict for one service container in this test."""
    from nameko import config
    from nameko.testing.utils import find_free_port

    def build(db_name=None, **overrides):
        settings = pg_settings()
        cfg = {
            "AMQP_URI": config["AMQP_URI"],
            "WEB_SERVER_ADDRESS": f"127.0.0.1:{find_free_port()}",
            "DB": {"HOST": settings["host"], "PORT": settings["port"], "USER": settings["user"],
                   "PASSWORD": settings["password"] or "", "NAME": db_name, "POOL_SIZE": 5},
            "OUTBOX": {"POLL_INTERVAL": 0.2},
            "RPC_TIMEOUT": 5,
            "EVENT_RETRY_BACKOFF": 0.01,
            "EVENT_REQUEUE_DELAY": 0.1,
        }
        for key, value in overrides.items():
            if isinstance(value, dict) and isinstance(cfg.get(key), dict):
                cfg[key] = dict(cfg[key], **value)
            else:
                cfg[key] = value
        return cfg

    return build


@pytest.fixture
def web_session():
    """`web_session(base_url)` → a requests session that joins relative URLs to base_url."""
    from requests import Session

    sessions = []

    class WebSession(Session):
        def __init__(self, base):
            super().__init__()
            self.base = base

        def request(self, method, url, *args, **kwargs):
            return Session.request(self, method, urljoin(self.base, url), *args, **kwargs)

    def make(base):
        session = WebSession(base if base.endswith("/") else base + "/")
        sessions.append(session)
        return session

    yield make
    for session in sessions:
        session.close()


# The six processes of deploy/Procfile: name → (the nameko service class, its folder with config.yaml),
# for whatever starts the whole platform as real processes (tests/e2e, the fault runs, `make bench`).
PLATFORM_PROCESSES = {
    "customer": ("customer.service:CustomerService", "services/customer"),
    "order": ("order.service:OrderService", "services/order"),
    "inventory": ("inventory.service:InventoryService", "services/inventory"),
    "billing": ("billing.service:BillingService", "services/billing"),
    "aftersales": ("aftersales.service:AftersalesService", "services/aftersales"),
    "gateway": ("gateway.service:GatewayService", "gateway"),
}


class ServiceProcess:
    """A real `nameko run` process of one service, as `make up` starts it."""

    def __init__(self, module, config_file, env, name, log_dir):
        self.module = module
        self.config_file = config_file
        self.env = env
        self.name = name
        self.log_path = Path(log_dir) / f"{name}.log"
        self.proc = None

    def start(self):
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "nameko", "run", "--config", str(self.config_file), self.module],
            cwd=str(ROOT), env=self.env, stdout=self._log, stderr=subprocess.STDOUT,
        )
        return self

    @property
    def port(self):
        return int(self.env["WEB_ADDRESS"].rsplit(":", 1)[1])

    def url(self, path=""):
        return f"http://127.0.0.1:{self.port}/{path.lstrip('/')}"

    def wait_ready(self, timeout=60):
        import requests

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}:\n{self.logs()}")
            try:
                if requests.get(self.url("/ready"), timeout=2).status_code == 200:
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"{self.name} not ready after {timeout}s:\n{self.logs()}")

    def signal(self, sig):
        self.proc.send_signal(sig)

    def kill(self):
        """SIGKILL: no clean-up at all, as a crash."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self, timeout=20):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        if getattr(self, "_log", None):
            self._log.close()

    def logs(self):
        try:
            return self.log_path.read_text()[-5000:]
        except OSError:
            return ""


@contextlib.contextmanager
def _processes(log_dir, amqp_uri):
    from nameko.testing.utils import find_free_port

    procs = []

    def make(name, module, config_file, db_name=None, **extra_env):
        settings = pg_settings()
        env = dict(os.environ)
        env.update({
            "AMQP_URI": amqp_uri,
            "DB_HOST": settings["host"], "DB_PORT": str(settings["port"]), "DB_USER": settings["user"],
            "DB_PASSWORD": settings["password"] or "",
            "WEB_ADDRESS": f"127.0.0.1:{find_free_port()}",
            "LOG_LEVEL": "INFO",
            "PYTHONWARNINGS": "ignore",
            "PYTHONPATH": os.pathsep.join(
                [str(ROOT), str(ROOT / "gateway")] + [str(p) for p in sorted((ROOT / "services").iterdir())]
            ),
        })
        if db_name:
            env["DB_NAME"] = db_name
        env.update({k: str(v) for k, v in extra_env.items()})
        proc = ServiceProcess(module, ROOT / config_file, env, name, log_dir).start()
        procs.append(proc)
        return proc

    try:
        yield make
    finally:
        for proc in reversed(procs):
            proc.stop()


@pytest.fixture
def process_factory(tmp_path, rabbit_config):
    """`process_factory(name, module, config_file, db_name=..., **env)` → a started ServiceProcess."""
    from nameko import config

    with _processes(tmp_path, config["AMQP_URI"]) as make:
        yield make


@pytest.fixture(scope="module")
def module_rabbit_uri(request, vhost_pipeline):
    """A RabbitMQ vhost for a whole module (nameko's `rabbit_uri` is per test)."""
    from urllib.parse import urlparse

    uri = urlparse(request.config.getoption("RABBIT_AMQP_URI"))
    with vhost_pipeline.get() as vhost:
        yield f"{uri.scheme}://{uri.netloc}/{vhost}"


@pytest.fixture(scope="module")
def module_process_factory(tmp_path_factory, module_rabbit_uri):
    """`process_factory` for a whole module, on the module's vhost (`module_rabbit_uri`)."""
    with _processes(tmp_path_factory.mktemp("processes"), module_rabbit_uri) as make:
        yield make


# -- RPC answers against their contracts ------------------------------------------------------------
class _CheckedClient:
    """nameko's standalone RPC client, unchanged, except that every answer is checked against the
    callee's committed contract (services/<svc>/contracts/rpc/<method>.v<N>.json, `response`):
    a producer's integration tests prove that what it really answers fits what it publishes."""

    def __init__(self, client, service=None):
        self._client = client
        self._service = service

    def __getattr__(self, name):
        inner = getattr(self._client, name)
        if self._service is None:
            return _CheckedClient(inner, name)
        return _CheckedMethod(inner, self._service, name)

    def __getitem__(self, name):
        return self.__getattr__(name)


class _CheckedMethod:
    def __init__(self, method, service, name):
        self._method = method
        self._service = service
        self._name = name

    def __call__(self, *args, **kwargs):
        return self.call_async(*args, **kwargs).result()

    def call_async(self, *args, **kwargs):
        return _CheckedReply(self._method.call_async(*args, **kwargs), self._service, self._name)


class _CheckedReply:
    def __init__(self, reply, service, name):
        self._reply = reply
        self._service = service
        self._name = name

    def result(self):
        from shared.testing import rpc_contracts

        value = self._reply.result()
        if _RECORD:
            with open(_RECORD, "a") as out:
                out.write(json.dumps({"service": self._service, "method": self._name, "answer": value},
                                     default=str) + "\n")
        rpc_contracts.check_answer(self._service, self._name, value)
        return value


_RECORD = os.environ.get("RPC_CONTRACTS_RECORD")


def _started_by_a_test():
    """Whether the code that started the client (past nameko's own frames) is test code."""
    frame = sys._getframe(2)
    while frame is not None and "/nameko/" in frame.f_code.co_filename:
        frame = frame.f_back
    if frame is None:
        return False
    parts = Path(frame.f_code.co_filename).parts
    return "tests" in parts or parts[-1] == "conftest.py"


@pytest.fixture(scope="session", autouse=True)
def rpc_answers_keep_their_contracts():
    """Every test's standalone RPC client checks the answers it gets (cheap: one cached JSON
    Schema validator per method; methods without a contract file are not checked)."""
    from nameko.standalone.rpc import ClusterRpcClient

    original = ClusterRpcClient.start

    def start(self):
        client = original(self)
        if not _started_by_a_test():
            return client  # a process's own client (the gateway's admin bootstrap) is its business
        return _CheckedClient(client, getattr(client, "service_name", None))

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(ClusterRpcClient, "start", start)
        yield
