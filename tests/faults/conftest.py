"""The fault suite's gate — a slow fault run (`fault_suite` fixture) runs in `make test-faults`
(RUN_FAULTS=1) or when tests/faults is named on the command line; `make test` skips it; the fast
ones (one SIGKILL, every event twice) use no gate and run in `make test` too — and the private
RabbitMQ node and PostgreSQL cluster of the runs that stop them (the shared ones are never
touched)."""
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def fault_suite(request):
    named = any(Path(arg.split("::")[0]).resolve().is_relative_to(ROOT / "tests" / "faults")
                for arg in request.config.args)
    if not (named or os.environ.get("RUN_FAULTS")):
        pytest.skip("fault suite: make test-faults")


# -- private infrastructure: a test that stops the broker or the database owns its own ---------------
def _wait_port(port, timeout=60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), 1).close()
            return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {timeout:g} s")


class PrivateRabbit:
    """A RabbitMQ node of its own (own name, ports and Mnesia directory under a temp dir, loopback
    only, no plugins), so a test may stop and start it."""

    def __init__(self, base):
        from nameko.testing.utils import find_free_port

        self.base = base
        self.port, dist = find_free_port(), find_free_port()
        self.node = f"reliability-{uuid.uuid4().hex[:8]}@localhost"
        (base / "plugins").write_text("[].\n")
        self.env = dict(os.environ, HOME=str(base), RABBITMQ_NODENAME=self.node, RABBITMQ_NODE_IP_ADDRESS="127.0.0.1",
                        RABBITMQ_NODE_PORT=str(self.port), RABBITMQ_DIST_PORT=str(dist),
                        RABBITMQ_MNESIA_BASE=str(base / "mnesia"), RABBITMQ_LOG_BASE=str(base / "log"),
                        RABBITMQ_CONFIG_FILE=str(base / "none"), RABBITMQ_ENABLED_PLUGINS_FILE=str(base / "plugins"),
                        RABBITMQ_PID_FILE=str(base / "pid"), RABBITMQ_CONF_ENV_FILE=str(base / "env.conf"))
        self.uri = f"pyamqp://guest:guest@127.0.0.1:{self.port}/"
        self.proc = None

    def start(self):
        self.proc = subprocess.Popen([RABBITMQ_SERVER], env=self.env, stdout=open(self.base / "server.log", "ab"),
                                     stderr=subprocess.STDOUT, start_new_session=True)
        _wait_port(self.port, 90)
        return self

    def stop(self):
        if self.proc and self.proc.poll() is None:
            subprocess.run([RABBITMQCTL, "-n", self.node, "stop"], env=self.env, capture_output=True, timeout=60)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)


RABBITMQ_SERVER = "/usr/lib/rabbitmq/bin/rabbitmq-server"
RABBITMQCTL = "/usr/lib/rabbitmq/bin/rabbitmqctl"


@pytest.fixture
def private_rabbit():
    if not os.path.exists(RABBITMQ_SERVER):
        pytest.skip("no RabbitMQ server installed to run a private node")
    base = Path(tempfile.mkdtemp(prefix="reliability-rabbit-"))
    rabbit = PrivateRabbit(base).start()
    yield rabbit
    rabbit.stop()
    shutil.rmtree(base, ignore_errors=True)


class PrivatePostgres:
    """A PostgreSQL cluster of its own (initdb under a temp dir, a free port, loopback only), so a
    test may restart it. Run as the `postgres` user when the tests run as root (initdb refuses root)."""

    def __init__(self, base):
        from nameko.testing.utils import find_free_port

        self.data, self.port = base / "data", find_free_port()
        self.base = base
        self.as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if self.as_user:
            shutil.chown(base, "postgres")

    def ctl(self, *args):
        done = subprocess.run(self.as_user + ["pg_ctl", "-D", str(self.data), *args], capture_output=True, text=True,
                              timeout=120)
        assert done.returncode == 0, done.stdout + done.stderr

    def start(self):
        done = subprocess.run(self.as_user + ["initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres"],
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stdout + done.stderr
        self.ctl("-o", f"-p {self.port} -k {self.base} -c listen_addresses=127.0.0.1 -c fsync=off "
                       f"-c max_connections=200", "-l", str(self.base / "pg.log"), "-w", "start")
        return self

    def restart(self):
        self.ctl("-l", str(self.base / "pg.log"), "-m", "fast", "-w", "restart")

    def stop(self):
        subprocess.run(self.as_user + ["pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop"],
                       capture_output=True, timeout=120)


@pytest.fixture
def private_postgres(tmp_path_factory, monkeypatch):
    """Request it before `start_platform`: the databases and processes of the test then use it."""
    if not shutil.which("initdb") or not shutil.which("pg_ctl"):
        pytest.skip("no PostgreSQL server binaries to run a private cluster")
    base = Path(tempfile.mkdtemp(prefix="reliability-pg-"))
    pg = PrivatePostgres(base).start()
    monkeypatch.setenv("DB_HOST", "127.0.0.1")
    monkeypatch.setenv("DB_PORT", str(pg.port))
    yield pg
    pg.stop()
    shutil.rmtree(base, ignore_errors=True)
