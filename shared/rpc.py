"""RPC to other services, always under a timeout.

    customers = ServiceRpc("customer")          # a dependency on the service class
    customers.get_customer(customer_id=...)      # waits at most RPC_TIMEOUT seconds
    reply = customers.get_customer.call_async(...); reply.result()

A call that is not answered in time raises `UpstreamTimeout` (504 at the gateway); a service with
no queue raises `ServiceUnavailable` (503). Kit errors from the callee arrive as their kind.
"""
import time

import eventlet
from kombu import Queue
from nameko import rpc as nameko_rpc
from nameko.exceptions import RemoteError, UnknownService

from shared import config, context, metrics
from shared.errors import SalesError, ServiceUnavailable, UpstreamTimeout


class ServiceRpc(nameko_rpc.ServiceRpc):
    """`reads={"get_customer": CustomerAnswer}`: the fields the caller reads of those answers
    where no `load(schema, answer)` at the call site says it (a declaration only, for
    tests/contract/, which holds the producer's RPC contract to it)."""

    def __init__(self, target_service, timeout=None, reads=None, **kwargs):
        self.timeout = timeout
        self.reads = dict(reads or {})
        super().__init__(target_service, **kwargs)

    def setup(self):
        super().setup()
        reply_queue = self.reply_listener.queue
        self.publisher.declare = [ReplyQueueOncePerConnection.like(q) if q is reply_queue else q
                                  for q in self.publisher.declare]

    def get_dependency(self, worker_ctx):
        context.ensure_correlation_id(worker_ctx)
        client = super().get_dependency(worker_ctx)
        timeout = self.timeout or float(config.get("RPC_TIMEOUT", 10))
        return TimedClient(client, self.target_service, timeout, self.container.service_name)


class ReplyQueueOncePerConnection(Queue):
    """nameko's reply queue, declared once per broker connection instead of before every request.

    nameko declares the reply queue with each request it publishes, so that a reply always finds
    it. The queue expires when unused (`x-expires`), and kombu never caches the declaration of an
    expiring queue: every RPC call paid three more round trips to the broker (exchange, queue and
    binding declared; an eighth of the gateway's CPU, issue 11). The queue is consumed for as long
    as the service runs, so it cannot expire under a live connection; kombu forgets its
    declarations whenever it (re)connects, so after a broker restart the first request on the new
    connection declares it again, as before."""

    @classmethod
    def like(cls, queue):
        return cls(queue.name, exchange=queue.exchange, routing_key=queue.routing_key,
                   queue_arguments=dict(queue.queue_arguments or {}), durable=queue.durable,
                   auto_delete=queue.auto_delete, exclusive=queue.exclusive)

    @property
    def can_cache_declaration(self):
        return True


class TimedClient:
    def __init__(self, client, target, timeout, caller):
        self._client = client
        self._target = target
        self._timeout = timeout
        self._caller = caller

    def __getattr__(self, method):
        if method.startswith("_"):
            raise AttributeError(method)
        return TimedMethod(getattr(self._client, method), self._target, method, self._timeout, self._caller)


class TimedMethod:
    def __init__(self, method, target, name, timeout, caller):
        self._method = method
        self._target = target
        self._name = name
        self._timeout = timeout
        self._caller = caller

    def __call__(self, *args, **kwargs):
        return self.call_async(*args, **kwargs).result()

    def call_async(self, *args, **kwargs):
        started = time.perf_counter()
        try:
            reply = self._method.call_async(*args, **kwargs)
        except UnknownService:
            self._observe(started, "unavailable")
            raise ServiceUnavailable(f"the {self._target} service is not running", service=self._target) from None
        return TimedReply(reply, self, started)

    def _observe(self, started, outcome):
        metrics.child(metrics.RPC_CLIENT_DURATION, self._caller, self._target, self._name, outcome).observe(
            time.perf_counter() - started)


class TimedReply:
    def __init__(self, reply, method, started):
        self._reply = reply
        self._method = method
        self._started = started

    def result(self):
        method = self._method
        remaining = max(0.0, method._timeout - (time.perf_counter() - self._started))
        try:
            with eventlet.Timeout(remaining, False):
                value = self._reply.result()
                method._observe(self._started, "success")
                return value
        except SalesError as exc:
            method._observe(self._started, "rejected" if exc.status < 500 else "error")
            raise
        except RemoteError:
            method._observe(self._started, "error")
            raise
        method._observe(self._started, "timeout")
        raise UpstreamTimeout(
            f"{method._target}.{method._name} did not answer within {method._timeout:g}s",
            service=method._target,
        )
