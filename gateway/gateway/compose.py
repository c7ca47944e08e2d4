"""Asking several services at once and composing one answer that survives a missing part (issue 8).

    parts = gather({
        "customer": ("customer", lambda: self.customer.get_customer_overview.call_async(...)),
        "credit": ("billing", lambda: self.billing.get_credit_summary.call_async(...)),
    }, timeout=settings.view_timeout)
    parts["credit"].ok, parts["credit"].value

Every call is started before any is waited for, so the answer takes as long as the slowest part,
never their sum; and each part is waited for only until `timeout` after the start, so a slow or
stopped service costs at most that long. A part ends as:

- `ok`: its value;
- `not_found`: the service answered NOT_FOUND (for the part that decides — the customer, the order —
  that is the 404 of the whole answer; elsewhere an empty part);
- `unavailable` (no such service running, or it answered 503), `timeout` (no answer in time) or
  `error` (any other failure, logged): the part is missing, the answer says so (`unavailable` in the
  body, `Sales-Partial` in the headers), and the rest is still answered — never a 500 for the whole.
"""
import logging
import time
from dataclasses import dataclass, field
from typing import Optional

import eventlet

from shared.errors import NotFound, SalesError, ServiceUnavailable, UpstreamTimeout

log = logging.getLogger(__name__)

PARTIAL_HEADER = "Sales-Partial"
MISSING = ("unavailable", "timeout", "error")


@dataclass
class Part:
    name: str
    service: str
    status: str = "pending"
    value: object = None
    error: Optional[Exception] = field(default=None, repr=False)

    @property
    def ok(self):
        return self.status == "ok"

    @property
    def missing(self):
        return self.status in MISSING


def gather(calls, timeout, clock=time.monotonic):
    """`calls`: {part name: (service, start)}, where `start()` sends the RPC and returns its reply
    (`call_async`). Returns {part name: Part}, every part settled within `timeout` seconds."""
    started = clock()
    parts, replies = {}, {}
    for name, (service, start) in calls.items():
        parts[name] = Part(name, service)
        try:
            replies[name] = start()
        except Exception as exc:  # e.g. ServiceUnavailable: nobody consumes that service's queue
            _settle(parts[name], exc)
    for name, reply in replies.items():
        part = parts[name]
        timer = eventlet.Timeout(max(0.0, timeout - (clock() - started)))
        try:
            part.value = reply.result()
            part.status = "ok"
        except eventlet.Timeout as exc:
            if exc is not timer:
                raise
            part.status = "timeout"
            part.error = UpstreamTimeout(f"{part.service} did not answer within {timeout:g}s", service=part.service)
        except Exception as exc:
            _settle(part, exc)
        finally:
            timer.cancel()
    for part in parts.values():
        if part.missing:
            log.warning("answering without %s: %s did not answer (%s)", part.name, part.service, part.status,
                        extra={"part": part.name, "service": part.service, "outcome": part.status})
    return parts


def _settle(part, exc):
    part.error = exc
    if isinstance(exc, NotFound):
        part.status = "not_found"
    elif isinstance(exc, UpstreamTimeout):
        part.status = "timeout"
    elif isinstance(exc, ServiceUnavailable) or (isinstance(exc, SalesError) and exc.status == 503):
        part.status = "unavailable"
    else:
        part.status = "error"
        log.error("%s answered an error for %s", part.service, part.name, exc_info=(type(exc), exc, exc.__traceback__))


def missing(parts):
    """[{service, parts, reason}] of the services whose parts are missing, in a stable order."""
    found = {}
    for part in parts.values():
        if part.missing:
            entry = found.setdefault(part.service, {"service": part.service, "parts": [], "reason": part.status})
            entry["parts"].append(part.name)
    return [found[service] for service in sorted(found)]


def partial_headers(unavailable):
    """`Sales-Partial: billing, inventory` when parts are missing; nothing otherwise."""
    return {PARTIAL_HEADER: ", ".join(entry["service"] for entry in unavailable)} if unavailable else {}
