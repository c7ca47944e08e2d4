"""The platform as `make up` runs it (the six `nameko run` processes of deploy/Procfile, each with its
own config.yaml), on databases, a vhost and ports of its own so a bench never touches `make up`'s
data nor another run's, and without demo data. Everything it made is removed on exit.

    with BenchPlatform(env={"GATEWAY_RATE_LIMIT_RATE": "0"}) as platform:
        platform.url("/api/v1/...")    platform.pids()    platform.db("order")
"""
import os
import subprocess
import uuid
from pathlib import Path

import psycopg2
import psycopg2.extras

from shared.migrate import drop_database, ensure_database, migrate
from shared.testing.plugin import PLATFORM_PROCESSES, ServiceProcess, pg_settings

ROOT = Path(__file__).resolve().parents[1]
PROCESSES = PLATFORM_PROCESSES  # name: (module, folder) — as deploy/Procfile
RABBIT_API = os.environ.get("RABBIT_API_URI", "http://guest:guest@127.0.0.1:15672")
AMQP_BASE = os.environ.get("BENCH_AMQP_URI", "pyamqp://guest:guest@127.0.0.1:5672")
ADMIN = "admin"


class Broker:
    """Vhosts and queue depths: through the management API, or rabbitmqctl where the management
    plugin is not enabled (both are the broker's own admin tools; nothing is reconfigured)."""

    def __init__(self):
        try:
            from nameko.testing.rabbit import Client

            self.api = Client(RABBIT_API)
        except Exception:  # noqa: BLE001 — no management plugin: rabbitmqctl
            self.api = None

    @staticmethod
    def _ctl(*args):
        return subprocess.run(["rabbitmqctl", "-q", *args], check=True, capture_output=True, text=True,
                              timeout=60).stdout

    def create_vhost(self, vhost):
        if self.api:
            self.api.create_vhost(vhost)
            self.api.set_vhost_permissions(vhost, "guest", ".*", ".*", ".*")
        else:
            self._ctl("add_vhost", vhost)
            self._ctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")

    def delete_vhost(self, vhost):
        if self.api:
            self.api.delete_vhost(vhost)
        else:
            self._ctl("delete_vhost", vhost)

    def queued_messages(self, vhost):
        if self.api:
            return sum(q.get("messages", 0) or 0 for q in self.api.get_queues(vhost))
        out = self._ctl("list_queues", "-p", vhost, "--no-table-headers", "messages")
        return sum(int(n) for n in out.split() if n.isdigit())


def free_port():
    from nameko.testing.utils import find_free_port

    return find_free_port()


class BenchPlatform:
    def __init__(self, env=None, log_dir=None, tag=None):
        self.tag = tag or "bench_" + uuid.uuid4().hex[:8]
        self.env = dict(env or {})
        self.log_dir = Path(log_dir or f"/tmp/perf-{self.tag}")
        self.settings = {k: v for k, v in pg_settings().items() if v is not None}
        self.vhost = self.tag
        self.amqp_uri = f"{AMQP_BASE}/{self.vhost}"
        self.databases = {name: f"{self.tag}_{name}" for name in PROCESSES}
        self.admin_password = "admin-" + uuid.uuid4().hex
        self.procs = {}
        self._rabbit = None
        self._conns = {}

    # -- life -------------------------------------------------------------------------------------
    def __enter__(self):
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc):
        self.stop()

    def start(self):
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self._rabbit = Broker()
        self._rabbit.create_vhost(self.vhost)
        for name, (_, folder) in PROCESSES.items():
            ensure_database(self.settings, self.databases[name])
            migrate(dict(self.settings, dbname=self.databases[name]), [ROOT / folder / "migrations"])
        secret = uuid.uuid4().hex + uuid.uuid4().hex
        for name, (module, folder) in PROCESSES.items():
            env = dict(os.environ)
            env.update({
                "AMQP_URI": self.amqp_uri,
                "DB_HOST": self.settings["host"], "DB_PORT": str(self.settings["port"]),
                "DB_USER": self.settings["user"], "DB_PASSWORD": self.settings.get("password", ""),
                "DB_NAME": self.databases[name],
                "WEB_ADDRESS": f"127.0.0.1:{free_port()}",
                "PYTHONWARNINGS": "ignore",
                "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "gateway")]
                                              + [str(ROOT / "services" / s) for s in PROCESSES if s != "gateway"]),
            })
            if name == "gateway":
                env.update(GATEWAY_TOKEN_SECRET=secret, GATEWAY_ADMIN_USERNAME=ADMIN,
                           GATEWAY_ADMIN_PASSWORD=self.admin_password)
            env.update(self.env)
            self.procs[name] = ServiceProcess(module, ROOT / folder / "config.yaml", env, name,
                                              self.log_dir).start()
        for proc in self.procs.values():
            proc.wait_ready(timeout=180)

    def stop(self):
        for conn in self._conns.values():
            conn.close()
        self._conns.clear()
        for proc in reversed(list(self.procs.values())):
            proc.stop()
        for name in self.databases.values():
            try:
                drop_database(self.settings, name)
            except psycopg2.Error:
                pass
        if self._rabbit is not None:
            try:
                self._rabbit.delete_vhost(self.vhost)
            except Exception:  # noqa: BLE001 — already gone
                pass

    # -- access -----------------------------------------------------------------------------------
    def url(self, path, process="gateway"):
        return self.procs[process].url(path)

    def api(self, path):
        return self.url("/api/v1/" + path.lstrip("/"))

    def pids(self):
        return {name: proc.proc.pid for name, proc in self.procs.items()}

    def db(self, name):
        """An autocommit connection to a process's own database (dict rows), for checks and loads."""
        if name not in self._conns:
            conn = psycopg2.connect(dbname=self.databases[name], cursor_factory=psycopg2.extras.RealDictCursor,
                                    **self.settings)
            conn.autocommit = True
            self._conns[name] = conn
        return self._conns[name]

    def queued_messages(self):
        """Messages waiting in this platform's queues (0 once every event has been handled)."""
        return self._rabbit.queued_messages(self.vhost)
