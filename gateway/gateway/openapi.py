"""The OpenAPI 3 document, generated with apispec from the endpoints' own declarations and the
marshmallow schemas that validate the requests, and the /docs page (Swagger UI from the
swagger-ui-bundle package, served by the gateway itself: no CDN)."""
import mimetypes
import re

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin, OpenAPIConverter
from apispec.ext.marshmallow.common import resolve_schema_instance
from swagger_ui_bundle import swagger_ui_path

from gateway import schemas
from gateway.compose import PARTIAL_HEADER
from gateway.http import ApiEntrypoint
from shared.validation import StrictSchema
from gateway.idempotency import HEADER as IDEMPOTENCY_HEADER

TITLE = "Sales Platform API"
VERSION = "1.0.0"
OPENAPI_VERSION = "3.0.3"
DOCS_ASSETS = ("swagger-ui.css", "swagger-ui-bundle.js", "swagger-ui-standalone-preset.js",
               "favicon-16x16.png", "favicon-32x32.png")
DOCS_CSP = ("default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
            "script-src 'self'; connect-src 'self'; frame-ancestors 'none'")

_PATH_PARAM = re.compile(r"<(?:(?P<converter>[a-z]+):)?(?P<name>\w+)>")
_PROBLEMS = {
    400: ("MalformedRequest", "The body is not JSON, or a header is malformed (MALFORMED_REQUEST)"),
    401: ("Unauthorized", "No credential, or not a valid one (UNAUTHORIZED, INVALID_TOKEN, INVALID_CREDENTIALS)"),
    403: ("Forbidden", "The caller's role may not do this (FORBIDDEN)"),
    404: ("NotFound", "No such resource, or not one the caller may see (NOT_FOUND)"),
    409: ("Conflict", "A business rule or a concurrent request refused it (e.g. DUPLICATE_CUSTOMER, "
                      "USERNAME_TAKEN, IDEMPOTENCY_KEY_IN_USE)"),
    413: ("PayloadTooLarge", "The body is too large (PAYLOAD_TOO_LARGE)"),
    415: ("UnsupportedMediaType", "The body is not application/json (UNSUPPORTED_MEDIA_TYPE)"),
    422: ("ValidationFailed", "The input breaks the schema; `errors` maps fields to messages "
                             "(VALIDATION_FAILED, IDEMPOTENCY_KEY_REUSED)"),
    429: ("TooManyRequests", "The credential made more requests than its rate limit allows (RATE_LIMITED); "
                             "`Retry-After` says in how many seconds to try again"),
    500: ("InternalError", "Unexpected error; quote the X-Request-Id (INTERNAL_ERROR)"),
    503: ("ServiceUnavailable", "A service behind the gateway is not running (SERVICE_UNAVAILABLE)"),
    504: ("UpstreamTimeout", "A service behind the gateway did not answer in time (UPSTREAM_TIMEOUT)"),
}


class _Converter(OpenAPIConverter):
    """Request schemas (StrictSchema) are closed: an unknown field is refused (422), so the document
    says `additionalProperties: false`. Answer schemas are open: a service may add a field to its
    answers (an additive change, docs/INTEGRATION.md "Evolution") and clients ignore what they do
    not know — so the document lists every field it promises and forbids none. Bounds are numbers."""

    def schema2jsonschema(self, schema):
        jsonschema = super().schema2jsonschema(schema)
        if not isinstance(resolve_schema_instance(schema), StrictSchema):
            jsonschema.pop("additionalProperties", None)
        for prop in jsonschema.get("properties", {}).values():
            for bound in ("minimum", "maximum"):  # a Range over a Decimal field comes out as a string
                if isinstance(prop.get(bound), str):
                    prop[bound] = float(prop[bound])
        return jsonschema


class _Plugin(MarshmallowPlugin):
    Converter = _Converter


def endpoints_of(service_cls):
    """(method name, Endpoint) of every `api` entrypoint of the service class, in path order."""
    found = []
    for name in dir(service_cls):
        for entrypoint in getattr(getattr(service_cls, name, None), "nameko_entrypoints", ()):
            if isinstance(entrypoint, ApiEntrypoint) and entrypoint.endpoint.in_schema:
                found.append((name, entrypoint.endpoint))
    return sorted(found, key=lambda item: (item[1].url, item[1].method))


def openapi_path(url):
    return _PATH_PARAM.sub(lambda m: "{" + m.group("name") + "}", url)


def build(service_cls):
    spec = APISpec(
        title=TITLE, version=VERSION, openapi_version=OPENAPI_VERSION,
        plugins=[_Plugin()],
        info={"description": (
            "HTTP API of the Sales Platform. Errors are RFC 9457 `application/problem+json`; every "
            "POST accepts an `Idempotency-Key`; lists take `limit` and an opaque `cursor`; every answer "
            "carries `X-Request-Id`. Each credential has a rate limit (429 with `Retry-After`). Composed "
            "answers (overview, timeline, sales performance) stay 200 when a service is missing: its part is "
            "null, named in `unavailable` and in the `Sales-Partial` header. Authenticate with "
            "`POST /api/v1/auth/token` (a bearer token) or an API key, both sent as `Authorization: Bearer ...`.")},
        servers=[{"url": "/"}],
        security=[{"bearerAuth": []}],
    )
    spec.components.security_scheme("bearerAuth", {
        "type": "http", "scheme": "bearer",
        "description": "an access token from POST /api/v1/auth/token, or an API key (sk_...)"})
    spec.components.schema("Problem", schema=schemas.Problem)
    spec.components.header("RequestId", {"description": "the request's id, also in every service's logs",
                                         "schema": {"type": "string"}})
    spec.components.parameter("RequestId", "header", {
        "name": "X-Request-Id", "required": False, "schema": {"type": "string", "maxLength": 128},
        "description": "your id for this request (8-128 of A-Z a-z 0-9 . _ : -); one is made if absent"})
    spec.components.parameter("IdempotencyKey", "header", {
        "name": IDEMPOTENCY_HEADER, "required": False, "schema": {"type": "string", "maxLength": 255},
        "description": "a repeat with the same key and body within 24 h returns the first answer "
                       "(with `Idempotent-Replayed: true`) and does nothing again; the same key with "
                       "another body answers 422 IDEMPOTENCY_KEY_REUSED"})
    spec.components.header("RetryAfter", {"description": "seconds to wait before trying again",
                                          "schema": {"type": "integer", "minimum": 1}})
    spec.components.header(PARTIAL_HEADER, {
        "description": "present when parts of a composed answer are missing: the services that did not answer "
                       "in time, e.g. `billing, aftersales` (the body's `unavailable` says which parts)",
        "schema": {"type": "string"}})
    for status, (name, description) in _PROBLEMS.items():
        headers = {"X-Request-Id": "RequestId"}
        if status in (429, 503):
            headers["Retry-After"] = "RetryAfter"
        spec.components.response(name, {
            "description": description,
            "headers": headers,
            "content": {"application/problem+json": {"schema": "Problem"}},
        })
    paths = {}
    for method_name, endpoint in endpoints_of(service_cls):
        paths.setdefault(openapi_path(endpoint.url), {})[endpoint.method.lower()] = _operation(
            method_name, endpoint)
    for path, operations in paths.items():
        parameters = _path_parameters(path, service_cls)
        spec.path(path=path, operations=operations, parameters=parameters or None)
    return spec.to_dict()


def _path_parameters(path, service_cls):
    for _, endpoint in endpoints_of(service_cls):
        if openapi_path(endpoint.url) == path:
            return [{"in": "path", "name": m.group("name"), "required": True,
                     "schema": {"type": "string", "format": "uuid"} if m.group("converter") == "uuid"
                     else {"type": "string"}}
                    for m in _PATH_PARAM.finditer(endpoint.url)]
    return []


def _operation(method_name, endpoint):
    parameters = ["RequestId"]
    statuses = set(endpoint.errors) | {500}
    if endpoint.query is not None:
        parameters.append({"in": "query", "schema": endpoint.query})
        statuses.add(422)
    operation = {
        "operationId": method_name,
        "summary": endpoint.summary,
        "tags": list(endpoint.tags),
        "parameters": parameters,
    }
    description = endpoint.description
    if endpoint.roles is None:
        operation["security"] = []
    else:
        roles = ", ".join(sorted(endpoint.roles))
        description = f"{description}\n\nRoles: {roles}.".strip()
        operation["x-roles"] = sorted(endpoint.roles)
        statuses |= {401, 403, 429}
    if description:
        operation["description"] = description
    if endpoint.idempotent:
        parameters.append("IdempotencyKey")
        statuses |= {409, 422}
    if endpoint.body is not None:
        content = {"schema": endpoint.body}
        if getattr(endpoint.body, "example", None) is not None:
            content["example"] = endpoint.body.example
        operation["requestBody"] = {"required": True, "content": {"application/json": content}}
        statuses |= {400, 413, 415, 422}
    success = {"description": "OK" if endpoint.status == 200 else "Created",
               "headers": {"X-Request-Id": "RequestId"}}
    if endpoint.locates:
        success["headers"]["Location"] = {"description": "the new resource", "schema": {"type": "string"}}
    if endpoint.partial:
        success["headers"][PARTIAL_HEADER] = PARTIAL_HEADER
    if endpoint.response is not None:
        success["content"] = {endpoint.content_type: {"schema": endpoint.response}}
    responses = {str(endpoint.status): success}
    for status in sorted(statuses):
        responses[str(status)] = _PROBLEMS[status][0]
    operation["responses"] = responses
    return operation


# -- /docs --------------------------------------------------------------------------------------
DOCS_HTML = """<!DOCTYPE html>
<html lang="en">
  <head>
    <meta charset="UTF-8">
    <title>{title}</title>
    <link rel="stylesheet" type="text/css" href="/docs/swagger-ui.css">
    <link rel="icon" type="image/png" href="/docs/favicon-32x32.png" sizes="32x32">
    <link rel="icon" type="image/png" href="/docs/favicon-16x16.png" sizes="16x16">
  </head>
  <body>
    <div id="swagger-ui"></div>
    <script src="/docs/swagger-ui-bundle.js" charset="UTF-8"></script>
    <script src="/docs/swagger-ui-standalone-preset.js" charset="UTF-8"></script>
    <script src="/docs/swagger-initializer.js" charset="UTF-8"></script>
  </body>
</html>
""".format(title=TITLE)

DOCS_INITIALIZER = """window.onload = function () {
  window.ui = SwaggerUIBundle({
    url: "/api/v1/openapi.json",
    dom_id: "#swagger-ui",
    deepLinking: true,
    persistAuthorization: true,
    presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
    plugins: [SwaggerUIBundle.plugins.DownloadUrl],
    layout: "StandaloneLayout"
  });
};
"""

_assets = {}


def docs_asset(name):
    """(bytes, content type) of a Swagger UI file, or None for a name that is not one."""
    if name == "swagger-initializer.js":
        return DOCS_INITIALIZER.encode(), "application/javascript"
    if name not in DOCS_ASSETS:
        return None
    if name not in _assets:
        data = (swagger_ui_path / name).read_bytes()
        content_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
        if content_type == "text/javascript":
            content_type = "application/javascript"
        _assets[name] = (data, content_type)
    return _assets[name]
