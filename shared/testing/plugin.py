"""pytest plugin of the kit (enabled from the root conftest.py: `pytest_plugins = ["shared.testing.plugin"]`).

Fixtures:
  make_database(*migration_dirs)  a fresh, uniquely named database built by the migrations,
                                  dropped after the test; returns its name
  service_config(db_name, ...)    nameko config for a service container: this test's vhost,
                                  the database, a free web port
  web_session                     requests session on the container's web port (nameko's
                                  fixture imports werkzeug.urls.url_join, gone in werkzeug 3)
  process_factory                 starts real `nameko run` processes (for kill/restart tests)
Tests get their own RabbitMQ vhost from nameko's `rabbit_config` fixture.
"""
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import urljoin

import pytest

ROOT = Path(__file__).resolve().parents[2]


def pg_settings():
    return {
        "host": os.environ.get("DB_HOST", "127.0.0.1"),
        "port": int(os.environ.get("DB_PORT", 5432)),
        "user": os.environ.get("DB_USER", "postgres"),
        "password": os.environ.get("DB_PASSWORD") or None,
    }


@pytest.fixture
def make_database():
    from shared.migrate import drop_database, ensure_database, migrate

    created = []
    settings = {k: v for k, v in pg_settings().items() if v is not None}

    def make(*migration_dirs, prefix="test"):
        name = f"{prefix}_{uuid.uuid4().hex[:12]}"
        ensure_database(settings, name)
        created.append(name)
        migrate(dict(settings, dbname=name), [ROOT / d for d in migration_dirs])
        return name

    yield make
    for name in created:
        drop_database(settings, name)


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


@pytest.fixture
def process_factory(tmp_path, rabbit_config):
    """`process_factory(name, module, config_file, db_name=..., **env)` → a started ServiceProcess."""
    from nameko import config
    from nameko.testing.utils import find_free_port

    procs = []

    def make(name, module, config_file, db_name=None, **extra_env):
        settings = pg_settings()
        env = dict(os.environ)
        env.update({
            "AMQP_URI": config["AMQP_URI"],
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
        proc = ServiceProcess(module, ROOT / config_file, env, name, tmp_path).start()
        procs.append(proc)
        return proc

    yield make
    for proc in reversed(procs):
        proc.stop()
