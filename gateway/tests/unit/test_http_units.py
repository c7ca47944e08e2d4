"""The pieces of the gateway's HTTP plumbing that need no broker or database."""
import pytest
from marshmallow import ValidationError

from gateway import schemas
from gateway.api import customers
from gateway.exceptions import InvalidToken, MethodNotAllowed
from gateway.http import problem, request_id_from
from gateway.idempotency import read_key, request_hash, request_id_for
from shared.errors import Conflict, IdempotencyKeyReused, MalformedRequest, ServiceUnavailable, ValidationFailed


def test_api_errors_one_table_keeps_kit_error_fields():
    status, headers, body = problem(Conflict("Acme is recorded", code="DUPLICATE_CUSTOMER", owner_name="Wang"),
                                    "/api/v1/customers")
    assert status == 409 and headers == {}
    assert body == {"type": "urn:sales-platform:problem:duplicate-customer", "title": "Conflict", "status": 409,
                    "detail": "Acme is recorded", "code": "DUPLICATE_CUSTOMER", "owner_name": "Wang",
                    "instance": "/api/v1/customers"}
    status, _, body = problem(ValidationFailed("bad", errors={"name": ["required"]}))
    assert status == 422 and body["errors"] == {"name": ["required"]}
    assert problem(IdempotencyKeyReused("again"))[0] == 422
    assert problem(MalformedRequest("x"))[0] == 400
    assert problem(ServiceUnavailable("down"))[1]["Retry-After"]
    assert problem(InvalidToken("x"))[1]["WWW-Authenticate"].endswith('error="invalid_token"')
    assert problem(MethodNotAllowed("no", allowed=["GET", "POST"]))[1]["Allow"] == "GET, POST"


def test_api_errors_anything_else_is_a_500_that_leaks_nothing():
    status, _, body = problem(KeyError("password_hash of user 7"))
    assert status == 500 and body["code"] == "INTERNAL_ERROR"
    assert "password" not in str(body) and "KeyError" not in str(body)


def test_api_errors_extra_fields_cannot_override_the_standard_ones():
    _, _, body = problem(Conflict("x", code="C", status_override=1, extra={"status": 200, "code": "OK"}))
    assert body["status"] == 409 and body["code"] == "C"


@pytest.mark.parametrize("value,kept", [
    ("req-0123456789", True), ("3f2b8c1e-8a9b-4d8e-9c1f-1a2b3c4d5e6f", True),
    ("", False), ("short", False), ("has space in it", False), ("x" * 200, False), ("<script>alert</script>", False),
])
def test_api_request_id_accepts_only_sane_values(value, kept):
    got = request_id_from({"X-Request-Id": value})
    assert (got == value) is kept


def test_api_idempotency_request_id_is_stable_per_credential_and_key():
    assert request_id_for("c1", "k") == request_id_for("c1", "k")
    assert request_id_for("c1", "k") != request_id_for("c2", "k")
    assert request_hash("POST", "/a", {"x": 1, "y": 2}) == request_hash("POST", "/a", {"y": 2, "x": 1})
    assert request_hash("POST", "/a", {"x": 1}) != request_hash("POST", "/b", {"x": 1})
    with pytest.raises(MalformedRequest):
        read_key({"Idempotency-Key": "has a space"})
    assert read_key({}) is None


@pytest.mark.parametrize("schema", [schemas.TokenRequest, schemas.UserCreate, schemas.ApiKeyCreate,
                                    customers.CustomerCreate])
def test_api_openapi_examples_pass_their_own_schema(schema):
    schema().load(schema.example)


def test_api_errors_request_schemas_refuse_unknown_fields():
    with pytest.raises(ValidationError) as info:
        customers.CustomerCreate().load(dict(customers.CustomerCreate.example, colour="red"))
    assert "colour" in info.value.messages


def test_api_openapi_every_schema_has_its_own_name():
    """Two schemas of one name would be renamed silently by apispec (`StepOut1`): integrators'
    generated clients would get names that change with the order the modules load in."""
    import warnings

    from gateway import openapi
    from gateway.service import GatewayService

    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        document = openapi.build(GatewayService)
    assert not [name for name in document["components"]["schemas"] if name[-1].isdigit()]
