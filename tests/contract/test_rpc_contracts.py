"""RPC contracts as data (issue 13): every RPC method has a committed JSON Schema
(services/<svc>/contracts/rpc/<method>.v<N>.json) that is exactly what the service declares, and
every caller — the gateway, order → customer/inventory/billing, aftersales → customer/order — is
held to it: the methods it calls, the keyword arguments it sends, the answer fields it reads. A
breaking change fails here naming the caller (file:line) and the method or field; it belongs in a
`<method>_v2` published beside the old method until every caller has moved (docs/CONTRACTS.md).

Each check is also run on a deliberately broken copy, to show it can fail."""
import copy
import dataclasses
import uuid

import pytest
from marshmallow import Schema, fields

from shared.testing import rpc_consumers, rpc_contracts

CONSUMERS = ["gateway", "customer", "order", "inventory", "billing", "aftersales"]


@pytest.fixture(scope="module")
def producers():
    return {service: rpc_contracts.committed(service) for service in rpc_contracts.SERVICES}


def resolution_actions():
    """aftersales → order calls made from stored arguments (`_carry_out`: getattr + **payload),
    which no call site spells out: their arguments are what `domain.action_call` really builds."""
    from aftersales import domain
    from shared.access import SYSTEM_ACTOR

    request = {"id": uuid.uuid4(), "number": "SR-2026-000001", "type": "repair", "delivery_id": uuid.uuid4(),
               "sku": "P-1", "customer_id": uuid.uuid4()}
    found = []
    for kind, target in sorted(domain.ACTION_TARGETS.items()):
        service, method = target.split(".", 1)
        sent = domain.action_call(kind, request, 1, "resolved", SYSTEM_ACTOR)
        found.append(rpc_consumers.Call("aftersales", f"services/aftersales/aftersales/domain.py action_call({kind!r})",
                                        service, method, tuple(sent)))
    return found


@pytest.fixture(scope="module")
def all_calls():
    found = []
    for consumer in CONSUMERS:
        found += rpc_consumers.calls(consumer) + rpc_consumers.declared_reads(consumer)
    return found + resolution_actions()


# -- the producers' side ---------------------------------------------------------------------------
@pytest.mark.parametrize("service", rpc_contracts.SERVICES)
def test_every_rpc_method_has_its_committed_contract_and_it_is_what_the_service_declares(service):
    problems = rpc_contracts.drift(service)
    assert not problems, (
        "RPC contracts out of date (run `make rpc-contracts`, review the diff, commit it; a breaking change "
        "is a new `<method>_v2`, docs/CONTRACTS.md):\n  " + "\n  ".join(problems))


def test_a_changed_output_schema_is_drift(monkeypatch):
    from billing import schemas

    class Fewer(Schema):  # reserve_credit's answer without `available`
        reservation_id = fields.String()
        order_id = fields.String()
        customer_id = fields.String()
        status = fields.String()
        amount = fields.Decimal(as_string=True)
        limit = fields.Decimal(as_string=True)
        exposure = fields.Decimal(as_string=True)
        override = fields.Dict(allow_none=True)

    monkeypatch.setattr(schemas, "reserve_credit_out", Fewer())
    assert rpc_contracts.drift("billing") == [
        "services/billing/contracts/rpc/reserve_credit.v1.json: differs from what billing declares "
        "(its signature or marshmallow schemas)"]


def test_a_changed_signature_or_a_new_method_is_drift(monkeypatch):
    from billing.service import BillingService
    from shared.entrypoints import rpc

    class Changed(BillingService):
        @rpc
        def release_credit(self, *, order_id, why):  # `reason` renamed
            return {}

        @rpc
        def get_credit_account(self, *, actor, customer_id, as_of=None):  # a new argument
            return {}

        @rpc
        def forgive_debt(self, *, customer_id):  # new, no contract yet
            return {}

    monkeypatch.setattr(rpc_contracts, "service_class", lambda service: Changed)
    problems = rpc_contracts.drift("billing")
    assert any("release_credit.v1.json: x-sources names arguments billing.release_credit does not take: "
               "['reason']" in p for p in problems), problems
    assert any("get_credit_account.v1.json: differs" in p for p in problems), problems
    assert any("forgive_debt.v1.json: missing" in p for p in problems), problems
    assert len(problems) == 3, problems


def test_a_producer_answer_outside_its_contract_is_caught():
    """What the kit's pytest plugin does to every RPC answer a test receives."""
    answer = {"reservation_id": str(uuid.uuid4()), "order_id": str(uuid.uuid4()), "customer_id": str(uuid.uuid4()),
              "status": "reserved", "amount": "10.00", "limit": "100.00", "exposure": "10.00", "available": "90.00",
              "override": None}
    assert rpc_contracts.answer_problems("billing", "reserve_credit", answer) == []
    broken = dict(answer, amount=10.0)
    del broken["available"]
    problems = rpc_contracts.answer_problems("billing", "reserve_credit", broken)
    assert any("available" in p and "required" in p for p in problems), problems
    assert any(p.startswith("amount:") for p in problems), problems
    with pytest.raises(AssertionError, match="billing.reserve_credit answered what its contract"):
        rpc_contracts.check_answer("billing", "reserve_credit", broken)


def test_versioned_methods_live_beside_the_old_ones():
    assert rpc_contracts.split_version("reserve_credit") == ("reserve_credit", 1)
    assert rpc_contracts.split_version("reserve_credit_v2") == ("reserve_credit", 2)
    assert rpc_contracts.split_version("report_v12") == ("report", 12)
    assert rpc_contracts.contract_path("billing", "reserve_credit_v2").name == "reserve_credit.v2.json"
    assert rpc_contracts.contract_path("billing", "reserve_credit").name == "reserve_credit.v1.json"


@pytest.mark.parametrize("service", rpc_contracts.SERVICES)
def test_a_contract_change_comes_with_a_new_service_version(service):
    """Each pyproject.toml records the sha256 of the service's contracts (events and RPC) for the
    version that published them: changing a contract without a new version fails here."""
    assert rpc_contracts.version_problem(service) is None


def test_a_contract_changed_under_the_same_version_is_refused(monkeypatch, tmp_path):
    project = tmp_path / "pyproject.toml"
    project.write_text((rpc_contracts.ROOT / "services/billing/pyproject.toml").read_text())
    monkeypatch.setattr(rpc_contracts, "pyproject", lambda service: project)
    monkeypatch.setattr(rpc_contracts, "fingerprint", lambda service: "0" * 64)
    current = rpc_contracts.versions("billing")[0]
    major, minor, patch = (int(part) for part in current.split("."))
    following = f"{major}.{minor + 1}.0"
    problem = rpc_contracts.version_problem("billing")
    assert f"changed since billing {current} published them" in problem and "bump [project].version" in problem
    assert rpc_contracts.record("billing") == problem and "0" * 64 not in project.read_text()
    project.write_text(project.read_text().replace(f'version = "{current}"\ndescription',
                                                   f'version = "{following}"\ndescription'))
    assert f"not recorded for billing {following}" in rpc_contracts.version_problem("billing")
    assert rpc_contracts.record("billing") is None
    assert rpc_contracts.versions("billing") == (following, following, "0" * 64)
    assert rpc_contracts.version_problem("billing") is None


# -- the consumers' side -----------------------------------------------------------------------------
def test_every_rpc_caller_sends_and_reads_only_what_its_producer_promises(all_calls, producers):
    problems = rpc_consumers.check(all_calls, producers)
    assert not problems, "breaking RPC changes:\n  " + "\n  ".join(problems)


def test_the_calls_between_services_are_all_found(all_calls):
    """INTEGRATION.md "Who calls whom": if the reader of call sites misses one, this says which."""
    found = {(c.consumer, c.service, c.method) for c in all_calls}
    expected = {
        ("order", "customer", m) for m in ("get_customer", "check_quotable", "find_approver", "get_staff")
    } | {
        ("order", "inventory", m) for m in ("reserve_stock", "release_reservation", "commit_reservation",
                                            "create_delivery", "issue_loan", "return_loan", "convert_loan",
                                            "receive_return")
    } | {
        ("order", "billing", "reserve_credit"), ("order", "billing", "release_credit"),
        ("aftersales", "customer", "get_customer"), ("aftersales", "customer", "get_staff"),
        ("aftersales", "customer", "find_approver"), ("aftersales", "order", "request_return"),
        ("aftersales", "order", "create_replacement"), ("gateway", "customer", "create_staff"),
    }
    assert expected <= found, sorted(expected - found)
    gateway = {(c.service, c.method) for c in all_calls if c.consumer == "gateway"}
    assert len(gateway) > 100 and {s for s, _ in gateway} == set(rpc_contracts.SERVICES)
    assert not [c for c in all_calls if c.consumer in ("customer", "inventory", "billing")], \
        "customer, inventory and billing call no other service (INTEGRATION.md)"


def _call(all_calls, consumer, service, method, **what):
    for call in all_calls:
        if (call.consumer, call.service, call.method) == (consumer, service, method) and \
                all(getattr(call, k) == v if not isinstance(v, str) else v in getattr(call, k)
                    for k, v in what.items()):
            return call
    raise LookupError((consumer, service, method))


def test_a_removed_method_names_its_callers(all_calls, producers):
    broken = copy.deepcopy(producers)
    del broken["billing"]["reserve_credit"]
    problems = rpc_consumers.check(all_calls, broken)
    assert any(p.startswith("order (services/order/order/saga.py:") and "billing.reserve_credit" in p
               and "does not offer" in p for p in problems), problems


def test_a_method_replaced_by_its_v2_tells_the_callers_to_move(all_calls, producers):
    broken = copy.deepcopy(producers)
    broken["billing"]["reserve_credit_v2"] = broken["billing"].pop("reserve_credit")
    problems = rpc_consumers.check(all_calls, broken)
    assert any("billing.reserve_credit," in p and "reserve_credit_v2: move to it" in p for p in problems), problems
    moved = [dataclasses.replace(c, method="reserve_credit_v2") if c.method == "reserve_credit" else c for c in all_calls]
    assert rpc_consumers.check(moved, broken) == []


def test_a_renamed_required_argument_names_the_caller_and_both_names(all_calls, producers):
    broken = copy.deepcopy(producers)
    request = broken["inventory"]["reserve_stock"]["request"]
    request["properties"]["stock_reservation_id"] = request["properties"].pop("reservation_id")
    request["required"] = ["stock_reservation_id" if n == "reservation_id" else n for n in request["required"]]
    problems = rpc_consumers.check(all_calls, broken)
    assert any(p.startswith("order (services/order/order/saga.py:") and "reserve_stock(reservation_id=…)" in p
               for p in problems), problems
    assert any("does not send inventory.reserve_stock's required argument stock_reservation_id" in p
               for p in problems), problems


def test_a_new_required_argument_names_every_caller_that_does_not_send_it(all_calls, producers):
    broken = copy.deepcopy(producers)
    broken["billing"]["create_invoice"]["request"]["required"].append("currency")
    broken["billing"]["create_invoice"]["request"]["properties"]["currency"] = {"type": "string"}
    problems = rpc_consumers.check(all_calls, broken)
    assert problems == [f"gateway ({_call(all_calls, 'gateway', 'billing', 'create_invoice').where}) does not send "
                        "billing.create_invoice's required argument currency"]


def test_a_removed_answer_field_a_caller_reads_names_the_caller_and_the_field(all_calls, producers):
    broken = copy.deepcopy(producers)
    del broken["billing"]["create_invoice"]["response"]["properties"]["id"]
    problems = rpc_consumers.check(all_calls, broken)
    where = _call(all_calls, "gateway", "billing", "create_invoice").where
    assert problems == [f"gateway ({where}) reads billing.create_invoice().id, which billing's answer does not "
                        "provide"]


def test_a_retyped_or_nullable_field_read_through_a_schema_names_the_caller_and_the_field(all_calls, producers):
    broken = copy.deepcopy(producers)
    props = broken["customer"]["get_staff"]["response"]["properties"]
    props["discount_authority"] = {"type": "boolean"}
    props["role"] = {"type": ["string", "null"]}
    problems = rpc_consumers.check(all_calls, broken)
    assert any(p.startswith("order (services/order/order/service.py:") and
               "customer.get_staff().discount_authority as Decimal" in p and "boolean" in p for p in problems), problems
    assert any("customer.get_staff().role as a non-null String" in p for p in problems), problems


def test_a_field_read_through_a_declared_dependency_is_held_too(all_calls, producers):
    broken = copy.deepcopy(producers)
    del broken["customer"]["find_approver"]["response"]["properties"]["id"]
    problems = rpc_consumers.check(all_calls, broken)
    assert any(p.startswith("aftersales (services/aftersales/aftersales/service.py (AftersalesService.customer "
                            "reads=)") and "find_approver().id" in p for p in problems), problems
    assert any(p.startswith("order (services/order/order/chains.py:") and "find_approver().id" in p
               for p in problems), problems


def test_the_resolution_actions_arguments_are_held_too(all_calls, producers):
    broken = copy.deepcopy(producers)
    request = broken["order"]["create_replacement"]["request"]
    del request["properties"]["service_request_id"]
    request["required"].remove("service_request_id")
    problems = rpc_consumers.check(all_calls, broken)
    assert problems == ["aftersales (services/aftersales/aftersales/domain.py action_call('replacement')) sends "
                        "order.create_replacement(service_request_id=…), an argument order does not take"]


def test_what_the_gateway_spreads_from_a_request_body_is_held_too(all_calls, producers):
    """`**plain(call.body)`: the fields of the endpoint's body schema are arguments sent."""
    broken = copy.deepcopy(producers)
    del broken["order"]["sign_contract"]["request"]["properties"]["signatory"]
    problems = rpc_consumers.check(all_calls, broken)
    where = _call(all_calls, "gateway", "order", "sign_contract").where
    assert problems == [f"gateway ({where}) sends order.sign_contract(signatory=…), an argument order does not take"]
