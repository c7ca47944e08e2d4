"""Event versions (docs/CONTRACTS.md): v2 of a type travels as `<type>.v2`, its own routing key,
so v1 consumers never receive it and both can be published side by side."""
from shared import envelope


def test_v1_keeps_its_type_and_v2_gets_its_own():
    assert envelope.versioned_type("order.confirmed") == "order.confirmed"
    assert envelope.versioned_type("order.confirmed", 2) == "order.confirmed.v2"
    assert envelope.versioned_type("order.confirmed.v2") == "order.confirmed.v2"
    assert envelope.split_type("order.confirmed.v2") == ("order.confirmed", 2)
    assert envelope.split_type("order.confirmed") == ("order.confirmed", 1)
    assert envelope.split_type("visit.return_overdue") == ("visit.return_overdue", 1)


def test_an_envelope_says_its_version_and_travels_as_its_versioned_type():
    v1 = envelope.build("order.confirmed", {}, source="order")
    v2 = envelope.build("order.confirmed", {}, source="order", version=2)
    assert (v1["event_type"], v1["event_version"]) == ("order.confirmed", 1)
    assert (v2["event_type"], v2["event_version"]) == ("order.confirmed.v2", 2)
    assert envelope.build("order.confirmed.v2", {}, source="order")["event_version"] == 2
