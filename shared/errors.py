"""Error base classes shared by every service and the gateway.

A service defines its own errors as subclasses (`class DuplicateCustomer(Conflict)`); the class
name gives the public machine code (`DUPLICATE_CUSTOMER`). Only the kinds below are registered with
nameko, so an error crosses RPC as the kind it belongs to with its code, detail, field errors and
extra fields intact: the caller catches `Conflict` and reads `.code`, never a `RemoteError`.
"""
import json
import re

from nameko.exceptions import deserialize_to_instance

_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")


def code_for(name):
    """`CreditLimitExceeded` -> `CREDIT_LIMIT_EXCEEDED`."""
    return _CAMEL.sub("_", name).upper()


class SalesError(Exception):
    """Base of every error the platform raises on purpose."""

    status = 500
    title = "Internal error"
    code = "INTERNAL_ERROR"

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "code" not in cls.__dict__:
            cls.code = code_for(cls.__name__)

    def __init__(self, detail=None, code=None, errors=None, extra=None, status=None, **more):
        self.detail = detail or self.title
        self.code = code or type(self).code
        self.errors = _from_wire(errors)
        self.extra = dict(_from_wire(extra) or {}, **more)
        if status is not None:
            self.status = int(status)
        # Positional args are what nameko serialises (it turns every scalar into a string) and what
        # the receiver's constructor gets back: structured parts travel as JSON text.
        super().__init__(self.detail, self.code, _to_wire(self.errors), _to_wire(self.extra), str(self.status))

    def __str__(self):
        return f"{self.code}: {self.detail}"

    def to_dict(self):
        body = {"code": self.code, "detail": self.detail}
        if self.errors:
            body["errors"] = self.errors
        body.update(self.extra)
        return body


def _to_wire(value):
    return None if value is None else json.dumps(value, default=str, ensure_ascii=False)


def _from_wire(value):
    if isinstance(value, str):
        return None if value == "None" else json.loads(value)
    return value


@deserialize_to_instance
class NotFound(SalesError):
    status = 404
    title = "Not found"


@deserialize_to_instance
class ValidationFailed(SalesError):
    """The input is well-formed but breaks a schema rule; `errors` maps fields to messages."""

    status = 422
    title = "Validation failed"


@deserialize_to_instance
class MalformedRequest(SalesError):
    status = 400
    title = "Malformed request"


@deserialize_to_instance
class Unauthorized(SalesError):
    status = 401
    title = "Authentication required"


@deserialize_to_instance
class Forbidden(SalesError):
    status = 403
    title = "Forbidden"


@deserialize_to_instance
class Conflict(SalesError):
    status = 409
    title = "Conflict"


@deserialize_to_instance
class InvalidState(Conflict):
    title = "Invalid state for this action"


@deserialize_to_instance
class BusinessRuleViolation(SalesError):
    """A business rule refused the command; subclasses name the rule (`INSUFFICIENT_STOCK`)."""

    status = 409
    title = "Business rule violated"


@deserialize_to_instance
class IdempotencyKeyReused(ValidationFailed):
    title = "Idempotency key reused with a different request"


@deserialize_to_instance
class ServiceUnavailable(SalesError):
    status = 503
    title = "Service unavailable"


@deserialize_to_instance
class UpstreamTimeout(SalesError):
    status = 504
    title = "Upstream timeout"


@deserialize_to_instance
class TooManyRequests(SalesError):
    status = 429
    title = "Too many requests"


def transportable(exc):
    """The registered kind `exc` travels as over RPC (itself when it is a registered kind)."""
    from nameko.exceptions import get_module_path, registry

    for cls in type(exc).__mro__:
        if get_module_path(cls) in registry and issubclass(cls, SalesError):
            if cls is type(exc):
                return exc
            return cls(exc.detail, exc.code, exc.errors, exc.extra, exc.status)
    return exc
