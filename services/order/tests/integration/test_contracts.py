"""Contracts (FR-50–FR-59): raised by an accepted quote when the amount needs one, completed
terms, the company's approval, both signatures before anything may use it, registration,
completion, termination, the monthly archive."""
import uuid
from datetime import datetime, timedelta, timezone

import pytest

from shared.errors import BusinessRuleViolation, Conflict, Forbidden, ValidationFailed

TERMS = {"service_terms": "two free design changes, then 500 per change (FR-51)",
         "payment_terms": "30 days after invoice", "delivery_terms": "EXW Suzhou within 10 working days"}


def rid():
    return str(uuid.uuid4())


def accepted_quote(desk, org, lines):
    quote = desk.rpc.create_quote(request_id=rid(), actor=org.rep, quote={
        "customer_id": org.customer, "valid_until": "2099-12-31", "lines": lines})
    submitted = desk.rpc.submit_quote(request_id=rid(), actor=org.rep, quote_id=quote["id"])
    for step in submitted["required_approvals"]:
        approver = next(s for s in vars(org).values() if isinstance(s, dict) and s.get("role") == step["role"])
        desk.rpc.approve_quote(request_id=rid(), actor=approver, quote_id=quote["id"])
    return desk.rpc.accept_quote(request_id=rid(), actor=org.rep, quote_id=quote["id"])


def test_fr50_fr53_fr58_a_contract_from_draft_to_effective(desk, books):
    org = desk.org()
    quote = accepted_quote(desk, org, [{"sku": "BIG", "quantity": 1}])  # 60000 ≥ the contract amount 50000
    assert quote["contract_id"] and quote["order_id"]
    contract = desk.rpc.get_contract(actor=org.rep, contract_id=quote["contract_id"])
    assert (contract["status"], contract["total"], contract["order_id"], contract["valid"]) == (
        "draft", "60000.00", quote["order_id"], False)
    order = desk.rpc.get_order(actor=org.rep, order_id=quote["order_id"])
    assert order["contract_id"] == contract["id"]
    # FR-58: an unsigned contract is invalid; its order cannot be confirmed
    with pytest.raises(BusinessRuleViolation) as info:
        desk.confirm(org.rep, order)
    assert info.value.code == "CONTRACT_NOT_SIGNED"
    assert books.of("inventory.reserve_stock") == []
    # FR-51/FR-56: the terms must be complete before it goes for approval
    with pytest.raises(ValidationFailed) as info:
        desk.rpc.submit_contract(request_id=rid(), actor=org.rep, contract_id=contract["id"])
    assert info.value.code == "CONTRACT_INCOMPLETE"
    assert set(info.value.errors) == {"terms.service_terms", "terms.payment_terms", "terms.delivery_terms"}
    desk.rpc.update_contract(request_id=rid(), actor=org.rep, contract_id=contract["id"], terms=TERMS)
    in_approval = desk.rpc.submit_contract(request_id=rid(), actor=org.rep, contract_id=contract["id"])
    assert in_approval["status"] == "in_approval"
    assert [(s["relation"], s["approver_id"]) for s in in_approval["required_approvals"]] == [
        ("division_head", org.director["staff_id"])]
    # FR-53: rejected → back to draft to be modified, then approved
    assert desk.rpc.reject_contract(request_id=rid(), actor=org.director, contract_id=contract["id"],
                                    comment="state the penalty")["status"] == "draft"
    desk.rpc.update_contract(request_id=rid(), actor=org.rep, contract_id=contract["id"],
                             terms={"payment_terms": "30 days after invoice; 0.05 % per day late"})
    desk.rpc.submit_contract(request_id=rid(), actor=org.rep, contract_id=contract["id"])
    approved = desk.rpc.approve_contract(request_id=rid(), actor=org.director, contract_id=contract["id"])
    assert approved["status"] == "approved"
    # FR-58: both signatures; the company's by the general manager or the sales director only
    with pytest.raises(Forbidden):
        desk.rpc.sign_contract(request_id=rid(), actor=org.rep, contract_id=contract["id"], party="company")
    with pytest.raises(ValidationFailed) as info:
        desk.rpc.sign_contract(request_id=rid(), actor=org.rep, contract_id=contract["id"], party="customer")
    assert "signatory" in info.value.errors
    half = desk.rpc.sign_contract(request_id=rid(), actor=org.rep, contract_id=contract["id"], party="customer",
                                  signatory="Li Wei, purchasing head")
    assert half["status"] == "approved" and half["customer_signed_at"] and not half["valid"]
    with pytest.raises(BusinessRuleViolation):
        desk.confirm(org.rep, order)
    signed = desk.rpc.sign_contract(request_id=rid(), actor=org.gm, contract_id=contract["id"], party="company")
    assert signed["status"] == "signed" and signed["valid"] and signed["company_signed_by"] == org.gm["staff_id"]
    assert [e["data"]["contract_id"] for e in desk.outbox("contract.signed")] == [contract["id"]]
    effective = desk.rpc.register_contract(request_id=rid(), actor=org.desk, contract_id=contract["id"])
    assert effective["status"] == "effective" and effective["registered_by"] == org.desk["staff_id"]
    # now the order may be confirmed, and once paid the contract is completed
    confirmed = desk.confirm(org.rep, order)
    assert confirmed["status"] == "confirmed"
    issued = desk.issue(confirmed)
    invoice = desk.invoice(confirmed, issued)
    desk.settle(invoice["invoice_id"], [order["id"]])
    assert desk.rpc.get_contract(actor=org.rep, contract_id=contract["id"])["status"] == "completed"
    trail = desk.rpc.get_contract(actor=org.rep, contract_id=contract["id"])["approvals"]
    assert [(s["round"], s["status"]) for s in trail] == [(1, "rejected"), (2, "approved")]


def test_fr48_a_major_contract_also_needs_the_marketing_director(desk):
    org = desk.org()
    quote = accepted_quote(desk, org, [{"sku": "BIG", "quantity": 2}])  # 120000 > 100000: major
    desk.rpc.update_contract(request_id=rid(), actor=org.rep, contract_id=quote["contract_id"], terms=TERMS)
    submitted = desk.rpc.submit_contract(request_id=rid(), actor=org.rep, contract_id=quote["contract_id"])
    assert [s["relation"] for s in submitted["required_approvals"]] == ["division_head", "marketing_director"]
    desk.rpc.approve_contract(request_id=rid(), actor=org.director, contract_id=quote["contract_id"])
    with pytest.raises(Conflict):  # not approved until the marketing director consents
        desk.rpc.sign_contract(request_id=rid(), actor=org.gm, contract_id=quote["contract_id"], party="company")
    assert desk.rpc.approve_contract(request_id=rid(), actor=org.marketing,
                                     contract_id=quote["contract_id"])["status"] == "approved"


def test_an_edit_of_the_terms_voids_the_contracts_approvals(desk):
    org = desk.org()
    quote = accepted_quote(desk, org, [{"sku": "BIG", "quantity": 1}])
    desk.rpc.update_contract(request_id=rid(), actor=org.rep, contract_id=quote["contract_id"], terms=TERMS)
    desk.rpc.submit_contract(request_id=rid(), actor=org.rep, contract_id=quote["contract_id"])
    with pytest.raises(Conflict) as info:  # only a draft is edited
        desk.rpc.update_contract(request_id=rid(), actor=org.rep, contract_id=quote["contract_id"],
                                 terms={"delivery_terms": "DAP"})
    assert info.value.code == "INVALID_STATE"


def test_terminate_cancels_the_draft_order_and_archive_files_last_months_contracts(desk):
    org = desk.org()
    quote = accepted_quote(desk, org, [{"sku": "BIG", "quantity": 1}])
    with pytest.raises(Forbidden):
        desk.rpc.terminate_contract(request_id=rid(), actor=org.rep, contract_id=quote["contract_id"], reason="x")
    ended = desk.rpc.terminate_contract(request_id=rid(), actor=org.director, contract_id=quote["contract_id"],
                                        reason="customer withdrew")
    assert ended["status"] == "terminated" and ended["termination_reason"] == "customer withdrew"
    assert desk.rpc.get_order(actor=org.rep, order_id=quote["order_id"])["status"] == "cancelled"
    # FR-57: contracts signed in a past month are filed once
    other = accepted_quote(desk, org, [{"sku": "BIG", "quantity": 1}])
    desk.rpc.update_contract(request_id=rid(), actor=org.rep, contract_id=other["contract_id"], terms=TERMS)
    desk.rpc.submit_contract(request_id=rid(), actor=org.rep, contract_id=other["contract_id"])
    desk.rpc.approve_contract(request_id=rid(), actor=org.director, contract_id=other["contract_id"])
    desk.rpc.sign_contract(request_id=rid(), actor=org.rep, contract_id=other["contract_id"], party="customer",
                           signatory="Li Wei")
    signed = desk.rpc.sign_contract(request_id=rid(), actor=org.director, contract_id=other["contract_id"],
                                    party="company")
    assert desk.rpc.run_archive_contracts()["archived"] == []  # signed this month: filed next month
    next_month = (datetime.now(timezone.utc) + timedelta(days=35)).isoformat()
    assert desk.rpc.run_archive_contracts(as_of=next_month)["archived"] == [signed["number"]]
    assert desk.rpc.run_archive_contracts(as_of=next_month)["archived"] == []
