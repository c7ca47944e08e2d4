"""Check what a producer actually sends against the JSON Schema it publishes in
services/<svc>/contracts/events/<type>.v<N>.json."""
import json
from pathlib import Path

from jsonschema import Draft202012Validator, FormatChecker

ROOT = Path(__file__).resolve().parents[2]


def event_schema(service, event_type, version=1):
    path = ROOT / "services" / service / "contracts" / "events" / f"{event_type}.v{version}.json"
    return json.loads(path.read_text())


def assert_matches_contract(service, envelope):
    schema = event_schema(service, envelope["event_type"], envelope.get("event_version", 1))
    validator = Draft202012Validator(schema, format_checker=FormatChecker())
    problems = [f"{'/'.join(map(str, e.path)) or '<root>'}: {e.message}" for e in validator.iter_errors(envelope)]
    assert not problems, f"{envelope['event_type']} breaks its contract: {problems}"
