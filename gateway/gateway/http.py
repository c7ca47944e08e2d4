"""HTTP plumbing of the gateway: the `api` entrypoint and the request pipeline around every
endpoint, and the one table that turns errors into RFC 9457 problem answers.

    @api("POST", "/api/v1/customers", roles=CUSTOMER_WRITERS, body=CustomerCreate,
         response=CustomerOut, status=201, tags=["customers"])
    def create_customer(self, call):
        return created(self.customer.create_customer(request_id=call.request_id, actor=call.actor,
                                                     customer=call.body), location=...)

The entrypoint (`ApiEntrypoint`) takes the request id from `X-Request-Id` (or makes one), runs the
worker with it as the correlation id, and puts it on every answer, errors included. Inside the
worker the pipeline authenticates, applies the credential's rate limit (429 with Retry-After,
gateway.ratelimit), authorizes, parses and validates the body and the query with
the endpoint's marshmallow schemas (the same ones the OpenAPI document is generated from), applies
`Idempotency-Key` to POSTs, and renders the method's result as JSON. Errors are raised, never
returned, and rendered once, by `problem()`.

The service needs two dependencies by these names: `db` (shared.dependencies.Database) and
`security` (gateway.dependencies.Security).
"""
import json
import logging
import re
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import partial
from typing import Optional

from eventlet.event import Event
from nameko.exceptions import BadRequest
from werkzeug.routing import Map, PathConverter, Rule
from werkzeug.wrappers import Response

from gateway import auth, idempotency
from gateway.exceptions import (
    InvalidToken, MethodNotAllowed, PayloadTooLarge, RateLimited, RouteNotFound, UnsupportedMediaType,
)
from gateway.ratelimit import retry_after
from shared import context
from shared.db import json_default
from shared.errors import MalformedRequest, SalesError, ValidationFailed
from shared.outages import as_unavailable
from shared.validation import load
from shared.web import HttpRequestHandler

log = logging.getLogger(__name__)

REQUEST_ID_HEADER = "X-Request-Id"
JSON = "application/json"
PROBLEM_JSON = "application/problem+json"
PROBLEM_TYPE = "urn:sales-platform:problem:"
_SANE_REQUEST_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:\-]{7,127}$")


def request_id_from(headers):
    """The caller's X-Request-Id when it looks like an id (8-128 safe characters), else a new UUID."""
    value = (headers.get(REQUEST_ID_HEADER) or "").strip()
    return value if _SANE_REQUEST_ID.match(value) else str(uuid.uuid4())


# -- what an endpoint declares -----------------------------------------------------------------
@dataclass
class Endpoint:
    """Everything the pipeline enforces and the OpenAPI document shows, declared once."""

    method: str
    url: str
    roles: Optional[frozenset] = None  # None: public
    body: object = None  # request schema class
    query: object = None  # query-string schema class
    response: object = None  # answer schema class (documentation; services' answers pass through)
    status: int = 200
    summary: str = ""
    description: str = ""
    tags: tuple = ()
    errors: tuple = ()  # further problem statuses worth documenting (409, 503, 504, ...)
    secret_fields: tuple = ()  # answer fields never stored for an Idempotency-Key replay
    content_type: str = JSON
    locates: bool = False  # a 201 answer carries Location
    in_schema: bool = True
    fallback: bool = False  # the catch-all that answers 404/405 under /api/v1
    partial: bool = False  # composed from several services: may answer with Sales-Partial (gateway.compose)
    idempotent: bool = field(default=None)
    body_schema: object = field(default=None, repr=False)
    query_schema: object = field(default=None, repr=False)

    def __post_init__(self):
        if self.idempotent is None:
            self.idempotent = self.method == "POST" and self.roles is not None
        self.body_schema = self.body() if self.body is not None else None
        self.query_schema = self.query() if self.query is not None else None


@dataclass
class Call:
    """What an endpoint method receives: the request, who calls, and the validated input."""

    request: object
    principal: Optional[auth.Principal]
    body: Optional[dict]
    query: Optional[dict]
    request_id: str
    settings: object

    @property
    def actor(self):
        return self.principal.actor if self.principal else None


@dataclass
class Reply:
    body: object
    status: int = 200
    headers: dict = field(default_factory=dict)
    content_type: str = JSON


def created(body, location=None):
    return Reply(body, status=201, headers={"Location": location} if location else {})


def to_json(value):
    return json.dumps(value, default=json_default, ensure_ascii=False, separators=(",", ":"))


def plain(data):
    """Validated input as JSON-safe values (UUIDs, dates as strings) for an RPC."""
    return json.loads(to_json(data))


# -- the one error table -----------------------------------------------------------------------
def problem(exc, instance=None):
    """(status, headers, body) of the RFC 9457 answer for `exc`. Kit errors (raised here or by a
    service, arriving over RPC as their kind) keep their status, code, detail, field errors and
    extra fields; anything else is a 500 that says nothing about the inside."""
    if isinstance(exc, SalesError):
        status, code, title, detail = exc.status, exc.code, exc.title, exc.detail
        body = {k: v for k, v in (exc.extra or {}).items() if v is not None}
        if exc.errors:
            body["errors"] = exc.errors
    else:
        status, code, title = 500, "INTERNAL_ERROR", "Internal error"
        detail = "an unexpected error occurred; quote the X-Request-Id when reporting it"
        body = {}
    body.update(type=PROBLEM_TYPE + code.lower().replace("_", "-"), title=title, status=status,
                detail=detail, code=code)
    if instance:
        body["instance"] = instance
    headers = {}
    if status == 401:
        error = ', error="invalid_token"' if isinstance(exc, InvalidToken) else ""
        headers["WWW-Authenticate"] = f'Bearer realm="sales-platform"{error}'
    elif status == 405 and body.get("allowed"):
        headers["Allow"] = ", ".join(body["allowed"])
    elif status == 503:
        headers["Retry-After"] = "5"
    elif status == 429:
        headers["Retry-After"] = str(body.get("retry_after") or 1)
    return status, headers, body


def problem_response(exc, instance=None):
    status, headers, body = problem(exc, instance)
    return Response(to_json(body), status=status, headers=headers, content_type=PROBLEM_JSON)


# -- the entrypoint ----------------------------------------------------------------------------
class _AnyPath(PathConverter):
    """werkzeug's `path`, but matching any character: a path with a newline in it (decoded from %0A)
    must still reach the catch-all and get a problem answer, not werkzeug's HTML page."""

    regex = "[^/](?s:.)*?"


class _CatchAllRule(Rule):
    def get_converter(self, variable_name, converter_name, args, kwargs):
        if converter_name == "path":
            return _AnyPath(self.map, *args, **kwargs)
        return super().get_converter(variable_name, converter_name, args, kwargs)


class ApiEntrypoint(HttpRequestHandler):
    def __init__(self, method, url, endpoint, **kwargs):
        self.endpoint = endpoint
        kwargs.setdefault("expected_exceptions", (SalesError,))
        super().__init__(method, url, **kwargs)

    def get_url_rule(self):
        if self.endpoint.fallback:
            return _CatchAllRule(self.url, methods=self.method.split(","))
        return super().get_url_rule()

    def handle_request(self, request):
        request_id = request_id_from(request.headers)
        context.set_correlation_id(request_id)
        request.shallow = False
        try:
            if self.endpoint.fallback:
                raise self._unmatched(request)
            args, kwargs = self.get_entrypoint_parameters(request)
            self.check_signature(args, kwargs)
            event = Event()
            self.container.spawn_worker(
                self, args, kwargs, context_data={context.CORRELATION_KEY: request_id},
                handle_result=partial(self.handle_result, event))
            response = self.response_from_result(event.wait())
        except Exception as exc:
            response = self._problem(exc, request)
        response.headers[REQUEST_ID_HEADER] = request_id
        return response

    def response_from_exception(self, exc):
        return self._problem(exc, None)

    def _problem(self, exc, request):
        if isinstance(exc, BadRequest):  # nameko: the arguments do not fit the method
            exc = MalformedRequest(str(exc))
        exc = as_unavailable(exc)  # its database or the broker gone for a moment: 503, not 500
        if not isinstance(exc, SalesError):
            log.error("unhandled error answered as 500", exc_info=(type(exc), exc, exc.__traceback__))
        elif exc.status >= 500:
            log.warning("answered %s %s: %s", exc.status, exc.code, exc.detail)
        return problem_response(exc, request.path if request is not None else None)

    def _unmatched(self, request):
        """404 for a path nothing serves; 405 (with Allow) for a known path and another method."""
        rules = [p.get_url_rule() for p in self.server._providers
                 if p is not self and not getattr(getattr(p, "endpoint", None), "fallback", False)]
        allowed = Map(rules).bind("localhost").allowed_methods(request.path)
        allowed = sorted(m for m in allowed if m not in ("HEAD", "OPTIONS"))
        if allowed:
            return MethodNotAllowed(f"{request.method} is not allowed on {request.path}", allowed=allowed)
        return RouteNotFound(f"nothing at {request.path}")


def api(method, url, **options):
    """Declare an endpoint (see Endpoint) and wrap the method in the request pipeline."""
    def decorator(fn):
        spec = Endpoint(method=method, url=url, **options)
        if not spec.summary and fn.__doc__:
            spec.summary = fn.__doc__.strip().splitlines()[0].rstrip(".")
            spec.description = fn.__doc__.strip()

        def entry(self, request, **path):
            return _pipeline(self, fn, spec, request, path)

        entry.__name__ = fn.__name__
        entry.__qualname__ = fn.__qualname__
        entry.__doc__ = fn.__doc__
        return ApiEntrypoint.decorator(method, url, spec)(entry)

    return decorator


# -- the pipeline, inside the worker -----------------------------------------------------------
def _pipeline(service, fn, spec, request, path):
    settings = service.security
    principal = None
    if spec.roles is not None:
        principal = auth.authenticate(service.db, settings, request.headers.get("Authorization"))
        wait = settings.limiter.take(str(principal.credential_id))
        if wait:
            raise RateLimited(f"too many requests with this credential: try again in {retry_after(wait)} s",
                              retry_after=retry_after(wait))
        auth.authorize(principal, spec.roles)
    raw = read_json(request, settings.max_body_bytes) if spec.body_schema is not None else None
    if raw is not None:
        refuse_nul(raw, "body")
    body = load(spec.body_schema, raw) if spec.body_schema is not None else None
    if spec.query_schema is not None:
        args = request.args.to_dict()
        refuse_nul(args, "query")
        query = load(spec.query_schema, args, detail="query parameters failed validation")
    else:
        query = None
    for schema, data in ((spec.body_schema, body), (spec.query_schema, query)):
        if data is not None:
            refuse_far_dates(schema, data)

    claim = None
    request_id = str(uuid.uuid4())
    if spec.idempotent and principal is not None:
        key = idempotency.read_key(request.headers)
        if key is not None:
            claim = idempotency.Claim(service.db, settings, principal.credential_id, key,
                                      request.method, request.path, raw)
            stored = claim.begin()
            if stored is not None:
                headers = dict(stored.headers, **{idempotency.REPLAYED_HEADER: "true"})
                return Response(stored.body, status=stored.status, headers=headers)
            request_id = claim.request_id

    call = Call(request=request, principal=principal, body=body, query=query, request_id=request_id,
                settings=settings)
    try:
        result = fn(service, call, **{k: str(v) if isinstance(v, uuid.UUID) else v for k, v in path.items()})
    except Exception as exc:
        if claim is not None:
            status, headers, problem_body = problem(exc, request.path)
            claim.finish(status, dict(headers, **{"Content-Type": PROBLEM_JSON}), to_json(problem_body))
        raise
    reply = result if isinstance(result, Reply) else Reply(result, status=spec.status)
    response = render(reply)
    if claim is not None:
        kept = reply.body
        if spec.secret_fields and isinstance(kept, dict):
            kept = dict(kept, **{name: None for name in spec.secret_fields if name in kept})
        claim.finish(response.status_code, dict(response.headers), to_json(kept))
    return response


def render(reply):
    payload = reply.body if isinstance(reply.body, (str, bytes)) else to_json(reply.body)
    return Response(payload, status=reply.status, headers=reply.headers, content_type=reply.content_type)


def read_json(request, max_bytes):
    """The body as JSON (sent with a length or in chunks): 413 when too large, 415 when declared as
    something else, 400 when it is not JSON at all. Whether it fits the schema is the schema's business (422)."""
    if request.content_length is not None and request.content_length > max_bytes:
        raise PayloadTooLarge(f"the body is larger than {max_bytes} bytes")
    mimetype = request.mimetype
    if mimetype and mimetype != JSON and not mimetype.endswith("+json"):
        raise UnsupportedMediaType(f"send the body as {JSON}, not {mimetype}")
    if request.content_length is None and "chunked" in request.headers.get("Transfer-Encoding", "").lower():
        # eventlet's server decodes the chunks but does not say the input ends (werkzeug would then read
        # nothing, and a chunked body would be taken for none): it does, and the cap below applies
        request.environ["wsgi.input_terminated"] = True
    data = request.stream.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise PayloadTooLarge(f"the body is larger than {max_bytes} bytes")
    if not data.strip():
        raise MalformedRequest("a JSON body is required")
    try:
        return json.loads(data.decode("utf-8"), parse_constant=_refuse_constant)
    except (UnicodeDecodeError, ValueError) as exc:
        raise MalformedRequest(f"the body is not valid JSON: {exc}") from None


def refuse_nul(value, where, path=()):
    """422 naming the field for a NUL character anywhere in the input: no text the platform keeps
    may hold one (PostgreSQL text cannot), so it is refused here rather than failing deep inside."""
    if isinstance(value, str):
        if "\x00" in value:
            name = ".".join(str(p) for p in path) or where
            raise ValidationFailed(f"{where} holds a NUL character", errors={name: ["must not contain NUL characters"]})
    elif isinstance(value, dict):
        for key, item in value.items():
            refuse_nul(key, where, path + (key,))
            refuse_nul(item, where, path + (key,))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            refuse_nul(item, where, path + (index,))


EARLIEST, LATEST = date(1900, 1, 1), date(2999, 12, 31)


def refuse_far_dates(schema, data, path=()):
    """422 naming the field for a date (or date-time) before 1900 or after 2999: business dates are
    never there, and a year 9999 would overflow the day after it somewhere down the line."""
    if isinstance(data, dict):
        for key, value in data.items():
            field_ = schema.fields.get(key) if schema is not None else None
            name = (field_.data_key or key) if field_ is not None else key
            inner = getattr(field_, "schema", None) or getattr(getattr(field_, "inner", None), "schema", None)
            refuse_far_dates(inner, value, path + (name,))
    elif isinstance(data, list):
        for index, value in enumerate(data):
            refuse_far_dates(schema, value, path + (index,))
    elif isinstance(data, (date, datetime)):
        day = data.date() if isinstance(data, datetime) else data
        if not EARLIEST <= day <= LATEST:
            name = ".".join(str(p) for p in path)
            raise ValidationFailed(f"{name} is out of range", errors={name: ["must be between 1900 and 2999"]})


def _refuse_constant(name):
    raise ValueError(f"{name} is not JSON")

