"""Producer contract test: every event the order service writes to its outbox matches the JSON
Schema it publishes in contracts/events/, and every published schema is exercised."""
import uuid
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

from shared.testing.contracts import assert_matches_contract

CONTRACTS = Path(__file__).resolve().parents[2] / "contracts" / "events"
TERMS = {"service_terms": "two free changes", "payment_terms": "30 days", "delivery_terms": "EXW"}


def rid():
    return str(uuid.uuid4())


def test_every_published_event_matches_its_contract(desk, books):
    org = desk.org()
    rpc = desk.rpc
    # quote.approved, quote.accepted, contract.signed, contract.effective
    quote = rpc.create_quote(request_id=rid(), actor=org.rep, quote={
        "customer_id": org.customer, "valid_until": "2099-01-01", "lines": [{"sku": "BIG", "quantity": 1,
                                                                            "unit_price": "55000.00"}]})
    rpc.submit_quote(request_id=rid(), actor=org.rep, quote_id=quote["id"])
    rpc.approve_quote(request_id=rid(), actor=org.manager, quote_id=quote["id"])
    accepted = rpc.accept_quote(request_id=rid(), actor=org.rep, quote_id=quote["id"])
    contract_id = accepted["contract_id"]
    rpc.update_contract(request_id=rid(), actor=org.rep, contract_id=contract_id, terms=TERMS)
    rpc.submit_contract(request_id=rid(), actor=org.rep, contract_id=contract_id)
    rpc.approve_contract(request_id=rid(), actor=org.director, contract_id=contract_id)
    rpc.sign_contract(request_id=rid(), actor=org.rep, contract_id=contract_id, party="customer", signatory="Li")
    rpc.sign_contract(request_id=rid(), actor=org.gm, contract_id=contract_id, party="company")
    rpc.register_contract(request_id=rid(), actor=org.desk, contract_id=contract_id)
    # order.confirmed, .shipped, .invoiced, .paid, .closed
    order = desk.confirm(org.rep, {"id": accepted["order_id"]})
    issued = desk.issue(order)
    invoice = desk.invoice(order, issued)
    desk.settle(invoice["invoice_id"], [order["id"]])
    rpc.run_close_orders(as_of=(datetime.now(timezone.utc) + timedelta(days=40)).isoformat())
    # order.credit_held, order.cancelled
    books.credit_limits[org.customer] = Decimal("1.00")
    held = desk.confirm(org.rep, desk.order(org.rep, org.customer, [{"sku": "P1", "quantity": 1}]))
    rpc.cancel_order(request_id=rid(), actor=org.rep, order_id=held["id"], reason="no credit")
    books.credit_limits[org.customer] = Decimal("1000000.00")
    # return.approved, return.received
    ret = rpc.request_return(request_id=rid(), actor=org.rep, delivery_id=issued["delivery_id"],
                             lines=[{"sku": "BIG", "quantity": 1}], reason="faulty")
    rpc.approve_return(request_id=rid(), actor=org.product_manager, return_id=ret["id"])
    rpc.receive_return(request_id=rid(), actor=org.warehouse, return_id=ret["id"])
    # loan.approved, .issued, .returned, .converted
    loan = rpc.request_loan(request_id=rid(), actor=org.rep, loan={
        "customer_id": org.customer, "lines": [{"sku": "P1", "quantity": 3}], "due_date": "2099-01-01"})
    rpc.approve_loan(request_id=rid(), actor=org.manager, loan_id=loan["id"])
    rpc.approve_loan(request_id=rid(), actor=org.director, loan_id=loan["id"])
    rpc.issue_loan(request_id=rid(), actor=org.warehouse, loan_id=loan["id"])
    rpc.return_loan(request_id=rid(), actor=org.warehouse, loan_id=loan["id"], lines=[{"sku": "P1", "quantity": 1}])
    rpc.convert_loan(request_id=rid(), actor=org.rep, loan_id=loan["id"], lines=[{"sku": "P1", "quantity": 2}])
    # target.published
    target = rpc.set_target(request_id=rid(), actor=org.director, target={
        "period": "2026-Q1", "scope": "team", "scope_id": "east-1", "amount": "1000.00"})
    rpc.publish_target(request_id=rid(), actor=org.director, target_id=target["id"])

    sent = desk.outbox()
    for event in sent:
        assert_matches_contract("order", event)
    published = {path.name.rsplit(".v", 1)[0] for path in CONTRACTS.glob("*.v1.json")}
    assert {event["event_type"] for event in sent} == published
