"""`Security`: the gateway's settings for every worker, checked at start (no token secret, no
start), and the admin bootstrap from the environment.

At start, when GATEWAY.ADMIN_PASSWORD is set and there is no login named GATEWAY.ADMIN_USERNAME,
the admin login is created (role admin, a staff id every replica derives alike). The org chart is
told about that staff member in a background green thread, retried with backoff until the customer
service answers: start-up never waits on another service.
"""
import logging
import uuid

import eventlet
from nameko.extensions import DependencyProvider
from nameko.standalone.rpc import ClusterRpcClient
from tenacity import Retrying, retry_if_exception_type, stop_after_delay, wait_exponential

from gateway import accounts
from gateway.ratelimit import RateLimiter
from gateway.settings import Settings
from shared import config, context, db
from shared.access import SYSTEM_ACTOR
from shared.dependencies import Database
from shared.errors import Conflict, IdempotencyKeyReused, SalesError

log = logging.getLogger(__name__)


class Security(DependencyProvider):
    """The settings for every worker; readiness waits for the admin bootstrap (nameko starts the
    HTTP server beside this provider, so without it a first login could race the bootstrap)."""

    def setup(self):
        self.settings = Settings.from_config()
        self.limiter = RateLimiter(self.settings.rate_limit_rate, self.settings.rate_limit_burst)
        self.bootstrapped = False

    def start(self):
        if self.settings.admin_password:
            self._bootstrap()
        self.bootstrapped = True

    def check_ready(self):
        if not self.bootstrapped:
            raise RuntimeError("the admin login is not set up yet")

    def _bootstrap(self):
        pool = self._database().pool
        for attempt in Retrying(
            stop=stop_after_delay(float(config.get("DB.STARTUP_WAIT", 60))),
            wait=wait_exponential(multiplier=0.2, max=5), reraise=True,
            retry=retry_if_exception_type(db.TRANSIENT_ERRORS + (SalesError,)),
        ):
            with attempt:
                row = accounts.bootstrap_admin(pool, self.settings)
        if not row["staff_recorded"]:
            self.container.spawn_managed_thread(lambda: self._record_staff(pool, row), identifier="admin-staff")

    def get_dependency(self, worker_ctx):
        return SecurityAccess(self)

    def _database(self):
        for dependency in self.container.dependencies:
            if isinstance(dependency, Database):
                return dependency
        raise RuntimeError("the gateway needs a Database dependency")

    def _record_staff(self, pool, row):
        """customer.create_staff for the bootstrap admin, until it is done."""
        staff = accounts.admin_staff(row)
        timeout = float(config.get("RPC_TIMEOUT", 10))
        delay = 0.5
        while True:
            correlation_id = str(uuid.uuid4())
            context.set_correlation_id(correlation_id)
            try:
                with ClusterRpcClient(timeout=timeout, context_data={context.CORRELATION_KEY: correlation_id}) \
                        as client:
                    client.customer.create_staff(request_id=staff["id"], actor=SYSTEM_ACTOR, staff=staff)
                log.info("the admin is recorded in the org chart", extra={"staff_id": staff["id"]})
            except (Conflict, IdempotencyKeyReused) as exc:
                # recorded before, by an earlier run or another replica
                log.info("the admin was already in the org chart: %s", exc.code)
            except Exception as exc:  # the customer service is not there yet: retry, forever
                log.warning("could not record the admin in the org chart yet (%s: %s); retrying in %.1fs",
                            type(exc).__name__, exc, delay)
                eventlet.sleep(delay)
                delay = min(delay * 2, 30.0)
                continue
            break
        for attempt in Retrying(wait=wait_exponential(multiplier=0.5, max=30), reraise=True,
                                retry=retry_if_exception_type(Exception)):
            with attempt:
                accounts.mark_staff_recorded(pool, row["id"])


class SecurityAccess:
    """What a worker sees as `self.security`: the settings' values, the process's rate limiter,
    and the readiness check."""

    def __init__(self, provider):
        self._provider = provider

    @property
    def limiter(self):
        return self._provider.limiter

    def __getattr__(self, name):
        return getattr(self._provider.settings, name)

    def check_ready(self):
        self._provider.check_ready()
