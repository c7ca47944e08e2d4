"""Unit tests of the kit's pure parts."""
import pytest

from shared import envelope, pagination
from shared.errors import BusinessRuleViolation, Conflict, SalesError, ValidationFailed, code_for, transportable


class CreditLimitExceeded(BusinessRuleViolation):
    pass


class PriceBelowFloor(BusinessRuleViolation):
    status = 422


def test_error_code_comes_from_the_class_name():
    assert code_for("CreditLimitExceeded") == "CREDIT_LIMIT_EXCEEDED"
    assert code_for("SKUNotFound") == "SKU_NOT_FOUND"
    assert CreditLimitExceeded().code == "CREDIT_LIMIT_EXCEEDED"


def test_a_service_error_travels_as_its_registered_kind_with_everything_intact():
    exc = CreditLimitExceeded("over the limit", limit="100.00", exposure="90.00", requested="20.00")
    sent = transportable(exc)
    assert type(sent) is BusinessRuleViolation
    assert (sent.code, sent.detail, sent.status) == ("CREDIT_LIMIT_EXCEEDED", "over the limit", 409)
    assert sent.extra == {"limit": "100.00", "exposure": "90.00", "requested": "20.00"}
    # what nameko does on the other side: the registered class rebuilt from the args
    rebuilt = type(sent)(*sent.args)
    assert rebuilt.to_dict() == sent.to_dict()
    assert transportable(PriceBelowFloor()).status == 422


def test_registered_kinds_travel_as_themselves():
    exc = ValidationFailed("bad", errors={"name": ["required"]})
    assert transportable(exc) is exc
    assert isinstance(transportable(Conflict()), SalesError)


def test_cursor_round_trip_and_garbage_is_refused_naming_the_field():
    cursor = pagination.encode("2026-11-24T10:00:00+00:00", "abc")
    assert pagination.decode(cursor, 2) == ["2026-11-24T10:00:00+00:00", "abc"]
    for bad in ("garbage", pagination.encode("only-one")):
        with pytest.raises(ValidationFailed) as info:
            pagination.decode(bad, 2)
        assert "cursor" in info.value.errors


@pytest.mark.parametrize("limit", [0, -1, 201, "x"])
def test_limit_outside_1_to_200_is_refused(limit):
    with pytest.raises(ValidationFailed) as info:
        pagination.check_limit(limit)
    assert "limit" in info.value.errors


def test_envelope_has_every_field_and_check_names_a_missing_one():
    env = envelope.build("order.confirmed", {"order_id": "1"}, source="order", correlation_id="c")
    assert set(envelope.REQUIRED) <= set(env) and env["event_version"] == 1
    del env["occurred_at"]
    with pytest.raises(ValueError, match="occurred_at"):
        envelope.check(env)
