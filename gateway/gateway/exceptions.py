"""The gateway's own errors; each class name is its public code (shared.errors.code_for).

They never cross RPC, so they are not registered with nameko: they only become problem answers.
"""
from shared.errors import Conflict, MalformedRequest, NotFound, SalesError, TooManyRequests, Unauthorized


class InvalidCredentials(Unauthorized):
    """Unknown username or wrong password: one answer for both."""

    title = "Invalid credentials"


class InvalidToken(Unauthorized):
    title = "Invalid or expired credential"


class UsernameTaken(Conflict):
    title = "Username already taken"


class IdempotencyKeyInUse(Conflict):
    title = "A request with this Idempotency-Key is still in progress"


class RouteNotFound(NotFound):
    code = "NOT_FOUND"


class MethodNotAllowed(SalesError):
    status = 405
    title = "Method not allowed"


class PayloadTooLarge(SalesError):
    status = 413
    title = "Request body too large"


class UnsupportedMediaType(SalesError):
    status = 415
    title = "Unsupported media type"


class InvalidHeader(MalformedRequest):
    title = "Invalid header"


class RateLimited(TooManyRequests):
    """The credential used up its requests for now (gateway/ratelimit.py); `retry_after` says
    in how many seconds to try again (also the `Retry-After` header)."""

    title = "Rate limit exceeded"
