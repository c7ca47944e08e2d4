"""nameko dependency providers of the kit: the database (with its outbox relay) and the
instrumentation every entrypoint gets (metrics, JSON log line, correlation id)."""
import logging
import time
import weakref

from nameko.amqp.publish import Publisher
from nameko.extensions import DependencyProvider
from tenacity import Retrying, retry_if_exception_type, stop_after_delay, wait_exponential

from shared import config, context, db, metrics, versions
from shared.errors import SalesError
from shared.outbox import Relay, event_exchange, watch_stats

log = logging.getLogger(__name__)


def entrypoint_type(entrypoint):
    name = type(entrypoint).__name__.lower()
    for kind in ("rpc", "event", "http", "timer", "consumer"):
        if kind in name:
            return kind
    return name


class Database(DependencyProvider):
    """`self.db.transaction()` gives a unit of work; the outbox relay runs beside it.

    Config: DB.{HOST,PORT,USER,PASSWORD,NAME,POOL_SIZE,POOL_KEEP,POOL_IDLE_SECONDS,ACQUIRE_TIMEOUT,...}; OUTBOX.{ENABLED,
    POLL_INTERVAL,START_DELAY,BATCH_SIZE,PUBLISH_AT_COMMIT,GRACE}. Start-up waits (bounded) for the database.
    With PUBLISH_AT_COMMIT (the default) the worker that commits events publishes them and the relay
    takes only rows older than GRACE seconds; without it each such commit wakes the relay.
    """

    def __init__(self, relay=True):
        self.relay_enabled = relay
        self.pool = None
        self.relay = None
        self._running = False

    def setup(self):
        service = self.container.service_name
        context.set_service(service)
        if not db.is_green():
            raise RuntimeError("psycopg2 has no wait callback: run under eventlet's monkey patching")
        settings = db.connection_settings()
        size = int(config.get("DB.POOL_SIZE", 10))
        self.pool = db.Pool(
            service, size, acquire_timeout=float(config.get("DB.ACQUIRE_TIMEOUT", 5)),
            keep=int(config.get("DB.POOL_KEEP", 4)), idle_timeout=float(config.get("DB.POOL_IDLE_SECONDS", 10)),
            **settings
        )
        if self.relay_enabled and config.as_bool(config.get("OUTBOX.ENABLED", True)):
            publisher = Publisher(config.get("AMQP_URI"), use_confirms=True, declare=[event_exchange(service)])
            at_commit = config.as_bool(config.get("OUTBOX.PUBLISH_AT_COMMIT", True))
            self.relay = Relay(
                self.pool, publisher, service,
                batch_size=int(config.get("OUTBOX.BATCH_SIZE", 100)),
                poll_interval=float(config.get("OUTBOX.POLL_INTERVAL", 1.0)),
                at_commit=at_commit, grace=float(config.get("OUTBOX.GRACE", 2.0)) if at_commit else 0.0,
                start_delay=float(config.get("OUTBOX.START_DELAY", 0)),
            )

    def start(self):
        wait = float(config.get("DB.STARTUP_WAIT", 60))
        for attempt in Retrying(
            stop=stop_after_delay(wait), wait=wait_exponential(multiplier=0.2, max=5),
            retry=retry_if_exception_type(db.TRANSIENT_ERRORS + (SalesError,)), reraise=True,
            before_sleep=lambda state: log.warning("waiting for the database: %s", state.outcome.exception()),
        ):
            with attempt:
                self.pool.ping()
        self._running = True
        if self.relay is not None:
            self.container.spawn_managed_thread(self.relay.run, identifier="outbox-relay")
        else:  # no relay to refresh the gauges: parked messages must still show (and alert)
            interval = float(config.get("OUTBOX.STATS_INTERVAL", 5.0))
            self.container.spawn_managed_thread(
                lambda: watch_stats(self.pool, self.container.service_name, interval, lambda: self._running),
                identifier="outbox-stats")

    def stop(self):
        self._running = False
        if self.relay is not None:
            self.relay.stop()

    def kill(self):
        self.stop()

    def get_dependency(self, worker_ctx):
        return DatabaseAccess(self, context.ensure_correlation_id(worker_ctx))


class DatabaseAccess:
    def __init__(self, provider, correlation_id):
        self._provider = provider
        self.correlation_id = correlation_id

    @property
    def pool(self):
        return self._provider.pool

    def transaction(self):
        tx = self._provider.pool.transaction(self.correlation_id)
        return _WakingTransaction(tx, self._provider.relay)

    def autocommit(self):
        """One statement, committed on its own in one round trip (shared.db.Pool.autocommit)."""
        return self._provider.pool.autocommit(self.correlation_id)

    def ping(self):
        self._provider.pool.ping()


class _WakingTransaction:
    """Wraps the pool's transaction so the events a commit wrote are published at once, by the
    committing worker (shared.outbox.Relay.committed); the relay's poll takes any it could not
    publish."""

    def __init__(self, tx, relay):
        self._tx = tx
        self._relay = relay

    def __enter__(self):
        uow = self._tx.__enter__()
        uow.after_commit.append(lambda: uow.events and metrics.count_events(uow.service, uow.events))
        if self._relay is not None:
            uow.after_commit.append(lambda: uow.outbox and self._relay.committed(uow.outbox))
        return uow

    def __exit__(self, *exc):
        return self._tx.__exit__(*exc)


class Instrumentation(DependencyProvider):
    """Metrics and a JSON log line for every entrypoint; sets the correlation id for logs."""

    def setup(self):
        self.service = self.container.service_name
        context.set_service(self.service)
        self._started = weakref.WeakKeyDictionary()
        self._entrypoints = {}
        version = versions.service_version(self.container.service_cls)
        metrics.BUILD_INFO.labels(self.service, version, versions.KIT_VERSION).set(1)

    def get_dependency(self, worker_ctx):
        context.ensure_correlation_id(worker_ctx)
        return None

    def worker_setup(self, worker_ctx):
        context.set_correlation_id(context.ensure_correlation_id(worker_ctx))
        self._started[worker_ctx] = time.perf_counter()

    def worker_result(self, worker_ctx, result=None, exc_info=None):
        started = self._started.pop(worker_ctx, None)
        if started is None:
            return
        elapsed = time.perf_counter() - started
        kind, method, message = self._describe(worker_ctx.entrypoint)
        if exc_info is None:
            outcome = "success"
        elif isinstance(exc_info[1], SalesError) and exc_info[1].status < 500:
            outcome = "rejected"
        else:
            outcome = "error"
        metrics.child(metrics.ENTRYPOINT_REQUESTS, self.service, kind, method, outcome).inc()
        metrics.child(metrics.ENTRYPOINT_DURATION, self.service, kind, method, outcome).observe(elapsed)
        if message is not None:
            extra = {"entrypoint": kind, "method": method, "outcome": outcome,
                     "duration_ms": round(elapsed * 1000, 2)}
            if exc_info is not None:
                extra["error"] = str(exc_info[1])
            log.log(logging.WARNING if outcome == "error" else logging.INFO, message, extra=extra)

    def _describe(self, entrypoint):
        """(type, method, log message or None) of an entrypoint, worked out once per entrypoint."""
        found = self._entrypoints.get(entrypoint)
        if found is None:
            kind = entrypoint_type(entrypoint)
            method = entrypoint.method_name
            quiet = kind == "http" and method in ("metrics", "health", "ready")
            found = self._entrypoints[entrypoint] = (kind, method, None if quiet else f"{kind} {method}")
        return found
