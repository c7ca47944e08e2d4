"""Every consumer's expectations (the `expects` schema of its event handlers: the fields it reads)
against every producer's published JSON Schema. A producer that drops, retypes or stops requiring
a field some consumer reads fails here, with a message naming the consumer and the field; the
change belongs in a new version of the event (`<type>.v2`) published beside the old one."""
import copy
import importlib

import pytest

from shared.testing import contracts

SERVICES = ["customer", "order", "inventory", "billing", "aftersales", "gateway"]


def service_classes():
    found = []
    for name in SERVICES:
        module = importlib.import_module(f"{name}.service")
        found += [obj for obj in vars(module).values()
                  if isinstance(obj, type) and getattr(obj, "name", None) == name]
    return found


def test_every_consumer_reads_only_what_its_producer_promises():
    problems = contracts.check_consumers(service_classes())
    assert not problems, "breaking event changes:\n  " + "\n  ".join(problems)


def test_every_consumer_declares_what_it_reads():
    silent = [consumer for consumer, declared in contracts.consumers(service_classes()) if declared.expects is None]
    assert not silent, f"handlers without expects= (their reads cannot be checked): {silent}"


def test_dropping_a_field_a_consumer_reads_names_the_consumer_and_the_field():
    consumed = [(c, d) for c, d in contracts.consumers(service_classes()) if d.expects is not None]
    if not consumed:
        pytest.skip("no consumer declares its expectations yet")
    producers = contracts.producer_schemas()
    consumer, declared = consumed[0]
    schema = contracts.expected_schema(declared)
    field = next(name for name, f in schema.fields.items() if f.required)
    broken = copy.deepcopy(producers)
    data = broken[(declared.source, declared.event_type, 1)]["properties"]["data"]
    del data["properties"][field]
    data["required"] = [name for name in data.get("required", []) if name != field]
    problems = contracts.check_consumers(service_classes(), broken)
    assert any(consumer in p and f"data.{field}" in p for p in problems), problems


def test_retyping_a_field_is_caught_too():
    class Reader:
        name = "reader"

    from marshmallow import Schema, fields

    class Expects(Schema):
        amount = fields.Decimal(required=True, as_string=True)
        lines = fields.List(fields.Nested(type("Line", (Schema,), {"sku": fields.String(required=True)})),
                            required=True)

    producer = {"properties": {"data": {"type": "object", "required": ["amount", "lines"], "properties": {
        "amount": {"type": "boolean"},
        "lines": {"type": "array", "items": {"type": "object", "properties": {"sku": {"type": ["string", "null"]}}}},
    }}}}
    problems = contracts.compare("reader.on_x", Expects(), producer["properties"]["data"])
    assert any("data.amount" in p and "boolean" in p for p in problems)
    assert any("data.lines[].sku" in p and "null" in p for p in problems)
    assert any("data.lines[].sku" in p and "does not require" in p for p in problems)


# -- versions: a breaking change is `<type>.v2`, published beside v1 until every consumer has moved --
def test_a_consumer_left_on_v1_when_only_v2_is_published_is_told_to_move_first():
    producers = contracts.producer_schemas()
    broken = dict(producers)
    broken[("order", "order.cancelled", 2)] = broken.pop(("order", "order.cancelled", 1))
    problems = contracts.check_consumers(service_classes(), broken)
    assert any(p.startswith("billing.on_order_cancelled consumes order's order.cancelled v1") and
               "publishes it as v2: move to it before v1 goes" in p for p in problems), problems


def test_a_v2_consumer_is_held_to_the_v2_schema():
    from marshmallow import Schema, fields

    from shared.entrypoints import event_handler

    class CancelledV2(Schema):
        order_id = fields.String(required=True)
        cancelled_by = fields.String(required=True)  # only v2 has it

    class Reader:
        name = "reader"

        @event_handler("order", "order.cancelled.v2", expects=CancelledV2)
        def on_order_cancelled_v2(self, uow, event):
            pass

    producers = contracts.producer_schemas()
    v1 = producers[("order", "order.cancelled", 1)]
    assert contracts.check_consumers([Reader], producers) == [
        "reader.on_order_cancelled_v2 consumes order's order.cancelled v2, which has no schema in "
        "services/order/contracts/events/; order publishes it as v1: move to it before v2 goes"]
    v2 = copy.deepcopy(v1)
    v2["properties"]["event_type"] = {"const": "order.cancelled.v2"}
    v2["properties"]["event_version"] = {"const": 2}
    v2["properties"]["data"]["properties"]["cancelled_by"] = {"type": "string", "format": "uuid"}
    v2["properties"]["data"]["required"].append("cancelled_by")
    both = {**producers, ("order", "order.cancelled", 2): v2}
    assert contracts.check_consumers([Reader], both) == []
    del v2["properties"]["data"]["properties"]["cancelled_by"]
    assert any("reader.on_order_cancelled_v2 reads data.cancelled_by" in p
               for p in contracts.check_consumers([Reader], both))
