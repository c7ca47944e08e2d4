"""The CRM endpoints' request schemas (API.md "Customers (CRM)", "Org, users"): each shows an
example that passes it, refuses unknown fields, and names the field and the rule it breaks."""
import pytest
from marshmallow import ValidationError

from gateway.api import accounts, customers
from gateway.http import ApiEntrypoint
from gateway.service import GatewayService

CRM_MODULES = (customers, accounts)


def request_schemas():
    """Every body schema an endpoint of the CRM modules declares."""
    found = {}
    for name in dir(GatewayService):
        for entrypoint in getattr(getattr(GatewayService, name, None), "nameko_entrypoints", ()):
            if isinstance(entrypoint, ApiEntrypoint) and entrypoint.endpoint.body is not None:
                body = entrypoint.endpoint.body
                if any(body.__module__ == module.__name__ for module in CRM_MODULES):
                    found[body.__name__] = body
    return sorted(found.values(), key=lambda cls: cls.__name__)


def test_api_crm_has_the_body_schemas_it_should():
    names = {schema.__name__ for schema in request_schemas()}
    assert {"CustomerCreate", "CustomerUpdate", "OwnerChange", "ClassificationIn", "ContactIn", "FollowUpIn",
            "ReviewIn", "DecisionIn", "RejectIn", "VisitIn", "VisitLogIn", "DelayIn", "CancelIn", "OpportunityIn",
            "OpportunityUpdate", "CloseIn", "UserUpdate", "TerritoryIn"} <= names


@pytest.mark.parametrize("schema", request_schemas(), ids=lambda schema: schema.__name__)
def test_api_crm_examples_pass_their_schema_and_unknown_fields_are_refused(schema):
    assert schema.example, f"{schema.__name__} shows no example"
    schema().load(schema.example)
    with pytest.raises(ValidationError) as info:
        schema().load(dict(schema.example, colour="red"))
    assert "colour" in info.value.messages


@pytest.mark.parametrize("schema,body,field", [
    (customers.VisitIn, {"planned_at": "2026-11-26T14:00:00"}, "planned_at"),  # no offset: ambiguous
    (customers.OpportunityIn, {"expected_amount": "12.345"}, "expected_amount"),
    (customers.OpportunityIn, {"probability": 101}, "probability"),
    (customers.OpportunityIn, {"probability": "50"}, "probability"),
    (customers.CloseIn, {"outcome": "abandoned"}, "outcome"),
    (customers.OwnerChange, {"reason": ""}, "reason"),
    (customers.ReviewIn, {"valid_until": "soon"}, "valid_until"),
    (customers.FollowUpIn, {"channel": "pigeon"}, "channel"),
    (customers.ClassificationIn, {"status": "hot"}, "status"),
    (customers.CustomerUpdate, {"name": None}, "name"),
    (accounts.UserUpdate, {"discount_authority": "1.5"}, "discount_authority"),
    (accounts.UserUpdate, {"role": "king"}, "role"),
    (accounts.TerritoryIn, {"kind": "galaxy"}, "kind"),
])
def test_api_crm_bad_input_names_the_field(schema, body, field):
    with pytest.raises(ValidationError) as info:
        schema().load(dict(schema.example, **body))
    assert field in info.value.messages


def test_api_users_update_needs_a_change():
    with pytest.raises(ValidationError) as info:
        accounts.UserUpdate().load({})
    assert "_schema" in info.value.messages
