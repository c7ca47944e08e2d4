"""billing's published event contracts: one valid JSON Schema per event it publishes. (What the
service actually sends is checked against them in the integration tests: Books.check_contracts.)"""
import json
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

CONTRACTS = Path(__file__).resolve().parents[2] / "contracts" / "events"
PUBLISHED = {"invoice.issued", "invoice.reversed", "invoice.settled", "invoice.reopened", "receipt.confirmed",
             "receipt.allocated", "receipt.allocation_reversed", "credit_limit.changed", "credit.held"}


def test_every_published_event_has_a_contract_and_no_contract_is_stale():
    assert {p.name.rsplit(".v", 1)[0] for p in CONTRACTS.glob("*.v1.json")} == PUBLISHED
    published = set()
    for source in (Path(__file__).resolve().parents[2] / "billing").glob("*.py"):
        for event in PUBLISHED:
            if f'"{event}"' in source.read_text():
                published.add(event)
    assert published == PUBLISHED  # each is published somewhere in the service


@pytest.mark.parametrize("event", sorted(PUBLISHED))
def test_contracts_are_valid_json_schemas_with_the_snapshot(event):
    schema = json.loads((CONTRACTS / f"{event}.v1.json").read_text())
    Draft202012Validator.check_schema(schema)
    assert schema["properties"]["event_type"] == {"const": event}
    data = schema["properties"]["data"]
    assert {"customer_id", "owner_id", "owner_team", "region"} <= set(data["required"])
