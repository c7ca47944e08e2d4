"""End-to-end fixtures: the real processes, started as `make up` starts them, each on a fresh
database and all on this test's vhost, driven only through the gateway's HTTP API.

    def test_something(start_platform):
        platform = start_platform("customer", "billing")      # + the gateway, always
        admin = platform.admin()                               # a Client logged in as the admin
        rep = platform.user("rep1", "sales_rep", manager=..., team="east-1")   # made and logged in
        created = rep.post("customers", {...}, expect=201)     # every POST with an Idempotency-Key
        rep.get(f"customers/{created['id']}", expect=404)
        platform.wait_for(lambda: rep.get(...).status_code == 200)

`platform.rpc()` gives a ClusterRpcClient on the same vhost, for what a test must do behind
the gateway (run a periodic job at a given time, read the books for an invariant).
"""
import uuid

import eventlet
import pytest
import requests

from shared.testing.plugin import PLATFORM_PROCESSES

ADMIN = "admin"


class Client:
    """An HTTP client of the gateway holding one credential."""

    def __init__(self, platform, headers):
        self.platform = platform
        self.headers = headers

    def request(self, method, path, expect=None, key=True, headers=None, **kwargs):
        headers = dict(self.headers, **(headers or {}))
        if method == "POST" and key and "Idempotency-Key" not in headers:
            headers["Idempotency-Key"] = str(uuid.uuid4()) if key is True else key
        answer = requests.request(method, self.platform.api(path), headers=headers, timeout=30, **kwargs)
        if expect is not None:
            assert answer.status_code == expect, f"{method} {path}: {answer.status_code} {answer.text}"
            return answer.json() if answer.content else None
        return answer

    def get(self, path, expect=None, **kwargs):
        return self.request("GET", path, expect=expect, **kwargs)

    def post(self, path, body=None, expect=None, **kwargs):
        return self.request("POST", path, expect=expect, json=body if body is not None else {}, **kwargs)

    def patch(self, path, body, expect=None, **kwargs):
        return self.request("PATCH", path, expect=expect, json=body, **kwargs)

    def put(self, path, body, expect=None, **kwargs):
        return self.request("PUT", path, expect=expect, json=body, **kwargs)


class Platform:
    def __init__(self, procs, admin_password, amqp_uri):
        self.procs = procs
        self.admin_password = admin_password
        self.amqp_uri = amqp_uri
        self._admin = None
        self.passwords = {}  # username -> password of the users made here (a browser signs in with them)

    def api(self, path):
        return self.procs["gateway"].url("/api/v1/" + path.lstrip("/"))

    def login(self, username, password):
        answer = requests.post(self.api("auth/token"), json={"username": username, "password": password},
                               timeout=15)
        assert answer.status_code == 200, answer.text
        return Client(self, {"Authorization": f"Bearer {answer.json()['access_token']}"})

    def admin(self):
        if self._admin is None:
            self._admin = self.login(ADMIN, self.admin_password)
        return self._admin

    def user(self, username, role, **fields):
        """Create a user through POST /users (admin) and return (Client, user)."""
        password = "pw-" + username + "-" + uuid.uuid4().hex[:8]
        body = dict({"username": username, "password": password, "role": role,
                     "display_name": username.title()}, **fields)
        for _ in range(100):  # the admin's own staff record is made in the background at start
            answer = self.admin().post("users", body)
            if answer.status_code != 503:
                break
            eventlet.sleep(0.1)
        assert answer.status_code == 201, answer.text
        self.passwords[username] = password
        return self.login(username, password), answer.json()

    def wait_for(self, predicate, timeout=30.0, interval=0.1, what="condition"):
        deadline = eventlet.hubs.get_hub().clock() + timeout
        while True:
            value = predicate()
            if value:
                return value
            if eventlet.hubs.get_hub().clock() > deadline:
                raise AssertionError(f"{what} not met within {timeout}s")
            eventlet.sleep(interval)

    def rpc(self, timeout=15):
        from nameko.standalone.rpc import ClusterRpcClient

        return ClusterRpcClient(timeout=timeout, uri=self.amqp_uri)

    def publish(self, source, event_type, data):
        """Publish an event as `source` would (its envelope, on its exchange, in this test's vhost),
        for a scenario whose producer is not among the started processes. Returns the envelope."""
        from nameko.standalone.events import event_dispatcher

        from shared import envelope

        event = envelope.build(event_type, data, source=source)
        event_dispatcher(uri=self.amqp_uri)(source, event_type, event)
        return event

    def metrics(self, name):
        """The Prometheus text of a process's /metrics."""
        return requests.get(self.procs[name].url("/metrics"), timeout=10).text

    def logs(self, name):
        return self.procs[name].logs()


def platform_starter(make_database, process_factory, rabbit_uri):
    """`start(*services, env=None)`: those services and the gateway as real processes;
    `env` maps a process name to extra environment variables for it."""

    def start(*names, env=None):
        env = env or {}
        admin_password = "admin-" + uuid.uuid4().hex
        procs = {}
        for name in list(dict.fromkeys(names)) + ["gateway"]:
            module, folder = PLATFORM_PROCESSES[name]
            extra = dict(env.get(name, {}))
            if name == "gateway":
                extra.update(GATEWAY_TOKEN_SECRET=uuid.uuid4().hex + uuid.uuid4().hex,
                             GATEWAY_ADMIN_USERNAME=ADMIN, GATEWAY_ADMIN_PASSWORD=admin_password)
            procs[name] = process_factory(name, module, f"{folder}/config.yaml",
                                          db_name=make_database(f"{folder}/migrations"), **extra)
        for proc in procs.values():
            proc.wait_ready()
        return Platform(procs, admin_password, rabbit_uri)

    return start


@pytest.fixture
def start_platform(make_database, process_factory, rabbit_uri, rabbit_config):
    """`start_platform(*services, env=None)`: a platform for this test (see platform_starter)."""
    return platform_starter(make_database, process_factory, rabbit_uri)


@pytest.fixture(scope="module")
def start_module_platform(module_make_database, module_process_factory, module_rabbit_uri):
    """`start_platform` once for a whole module, its tests sharing the processes (import it into
    the module: `from tests.e2e.conftest import start_module_platform`)."""
    return platform_starter(module_make_database, module_process_factory, module_rabbit_uri)
