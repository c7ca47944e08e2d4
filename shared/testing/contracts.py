"""Check what a producer actually sends against the JSON Schema it publishes in
services/<svc>/contracts/events/<type>.v<N>.json."""
import json
from pathlib import Path

from jsonschema import Draft202012Validator, FormatChecker

from shared.envelope import split_type

ROOT = Path(__file__).resolve().parents[2]


def event_schema(service, event_type, version=1):
    """The JSON Schema of `event_type` (`order.confirmed`, or `order.confirmed.v2`) at `version`."""
    base, found = split_type(event_type)
    version = max(version, found)
    path = ROOT / "services" / service / "contracts" / "events" / f"{base}.v{version}.json"
    return json.loads(path.read_text())


def assert_matches_contract(service, envelope):
    schema = event_schema(service, envelope["event_type"], envelope.get("event_version", 1))
    validator = Draft202012Validator(schema, format_checker=FormatChecker())
    problems = [f"{'/'.join(map(str, e.path)) or '<root>'}: {e.message}" for e in validator.iter_errors(envelope)]
    assert not problems, f"{envelope['event_type']} breaks its contract: {problems}"


# -- consumers against producers ------------------------------------------------------------------
# What a marshmallow field may be fed, as JSON Schema types.
_JSON_TYPES = {
    "String": {"string"}, "Email": {"string"}, "Url": {"string"}, "UUID": {"string"},
    "DateTime": {"string"}, "Date": {"string"}, "Time": {"string"}, "Decimal": {"string", "number", "integer"},
    "Integer": {"integer"}, "Float": {"number", "integer"}, "Number": {"number", "integer"},
    "Boolean": {"boolean"}, "Dict": {"object"}, "Mapping": {"object"}, "List": {"array"}, "Nested": {"object"},
    "Raw": None,
}


def producer_schemas():
    """{(source, event_type, version): JSON Schema} of every event every service publishes
    (`event_type` without its `.vN`: `order.confirmed.v2.json` is ("order", "order.confirmed", 2))."""
    found = {}
    for path in sorted((ROOT / "services").glob("*/contracts/events/*.json")):
        schema = json.loads(path.read_text())
        props = schema.get("properties", {})
        base, file_version = path.name.removesuffix(".json").rsplit(".v", 1)
        event_type = split_type(props.get("event_type", {}).get("const") or base)[0]
        version = props.get("event_version", {}).get("const", int(file_version))
        source = props.get("source", {}).get("const") or path.parts[-4]
        found[(source, event_type, version)] = schema
    return found


def consumers(service_classes):
    """[(consumer name, Consumes)] for every `event_handler(..., expects=...)` of the classes."""
    found = []
    for cls in service_classes:
        for name in dir(cls):
            declared = getattr(getattr(cls, name, None), "sales_consumes", None)
            if declared is not None:
                found.append((f"{cls.name}.{declared.handler}", declared))
    return found


def _types(node):
    kind = node.get("type")
    if kind is None:
        if "const" in node:
            return {_json_type(node["const"])}
        if "enum" in node:
            return {_json_type(value) for value in node["enum"]}
        return None  # anything
    return set(kind) if isinstance(kind, list) else {kind}


def _json_type(value):
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    return {str: "string", list: "array", dict: "object"}.get(type(value), "string")


def compare(consumer, schema, producer_node, path="data"):
    """Every way the producer's JSON Schema node fails what the consumer's marshmallow schema
    reads, as messages naming the consumer and the field."""
    problems = []
    properties = producer_node.get("properties", {})
    required = set(producer_node.get("required", ()))
    for name, field in schema.fields.items():
        key = field.data_key or name
        where = f"{path}.{key}"
        if key not in properties:
            # an optional field is still a field the consumer reads: the producer must define it
            problems.append(f"{consumer} reads {where}, which the producer's schema does not provide")
            continue
        problems += _compare_field(consumer, field, properties[key], where, key in required)
    return problems


def _compare_field(consumer, field, node, where, produced_always):
    problems = []
    if field.required and not produced_always:
        problems.append(f"{consumer} needs {where}, which the producer's schema does not require")
    kind = type(field).__name__
    accepted = next((_JSON_TYPES[k.__name__] for k in type(field).__mro__ if k.__name__ in _JSON_TYPES), None)
    produced = _types(node)
    if accepted is not None and produced is not None:
        if "null" in produced and not field.allow_none:
            problems.append(f"{consumer} reads {where} as a non-null {kind}, but the producer may send null")
        wrong = produced - accepted - {"null"}
        if wrong:
            problems.append(f"{consumer} reads {where} as {kind}, but the producer sends {sorted(wrong)}")
    inner = getattr(field, "inner", None)
    if kind == "List" and inner is not None:
        items = node.get("items", {})
        problems += _compare_field(consumer, inner, items, where + "[]", True) if type(inner).__name__ != "Nested" \
            else compare(consumer, inner.schema, items, where + "[]")
    elif kind == "Nested":
        problems += compare(consumer, field.schema, node, where)
    return problems


def expected_schema(declared):
    """The consumer's schema instance (handlers may declare the class or an instance)."""
    return declared.expects() if isinstance(declared.expects, type) else declared.expects


def check_consumers(service_classes, producers=None):
    """Every problem of every consumer of the classes against the producers' schemas."""
    producers = producer_schemas() if producers is None else producers
    problems = []
    for consumer, declared in consumers(service_classes):
        if declared.expects is None:
            continue
        event_type, version = split_type(declared.event_type)
        producer = producers.get((declared.source, event_type, version))
        if producer is None:
            others = sorted(v for (s, t, v) in producers if s == declared.source and t == event_type)
            hint = (f"; {declared.source} publishes it as v{', v'.join(map(str, others))}: move to it before "
                    f"v{version} goes" if others else "")
            problems.append(f"{consumer} consumes {declared.source}'s {event_type} v{version}, "
                            f"which has no schema in services/{declared.source}/contracts/events/{hint}")
            continue
        schema = expected_schema(declared)
        data = producer.get("properties", {}).get("data", {})
        problems += compare(consumer, schema, data)
    return problems
