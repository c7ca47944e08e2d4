"""Per-worker context: the correlation id that follows a request through every hop.

Stored in nameko's worker context data (which nameko sends as `nameko.*` headers on every RPC
call and event), and mirrored in a (green) thread-local for log lines.
"""
import threading
import uuid

CORRELATION_KEY = "correlation_id"

_local = threading.local()


def new_id():
    return str(uuid.uuid4())


def ensure_correlation_id(worker_ctx):
    """Give the worker a correlation id (the caller's, else a new one) and return it."""
    cid = worker_ctx.data.get(CORRELATION_KEY)
    if not cid:
        cid = new_id()
        worker_ctx.data[CORRELATION_KEY] = cid
    return cid


def set_correlation_id(cid):
    _local.correlation_id = cid


def get_correlation_id():
    return getattr(_local, "correlation_id", None)


def set_service(name):
    """Called once per process at container setup; log lines carry it."""
    global SERVICE
    SERVICE = name


SERVICE = None
