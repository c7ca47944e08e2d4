"""Every event the customer service publishes, as it is actually written to the outbox, against
the JSON Schema it publishes in contracts/events/ — and every schema is exercised."""
import uuid
from datetime import timedelta
from pathlib import Path

from shared.testing.contracts import assert_matches_contract

CONTRACTS = Path(__file__).resolve().parents[2] / "contracts" / "events"


def test_every_published_event_matches_its_contract(crm):
    rpc, now = crm.rpc, crm.now
    manager, (rep, other) = crm.team("East-1")
    pm = crm.staff("product_manager")
    crm.rpc.update_staff(request_id=crm.rid(), actor=crm.ADMIN, staff_id=other["staff_id"],
                         changes={"capacity": "1.5", "discount_authority": "0.06"})
    customer = crm.customer(rep, tax_id="91310000MA1FL8XQ3K",
                            bank_account={"bank_name": "ICBC", "account_no": "6222 0000 1111"})
    crm.customer(crm.staff("marketing_director"))  # a pool lead: owner_id null
    rpc.update_customer(request_id=crm.rid(), actor=rep, customer_id=customer["id"], changes={"address": "1 Road"})
    rpc.classify_customer(request_id=crm.rid(), actor=rep, customer_id=customer["id"], status="key")
    review = rpc.submit_review(request_id=crm.rid(), actor=rep, customer_id=customer["id"], review={
        "business_status": "operating", "credit_opinion": "good", "valid_until": crm.today().isoformat()})
    rpc.approve_review(request_id=crm.rid(), actor=pm, customer_id=customer["id"], review_id=review["id"])

    visit = rpc.plan_visit(request_id=crm.rid(), actor=rep, visit={
        "customer_id": customer["id"], "planned_at": (now() + timedelta(minutes=1)).isoformat(), "purpose": "demo"})
    rpc.approve_visit(request_id=crm.rid(), actor=manager, visit_id=visit["id"])
    rpc.check_out_visit(request_id=crm.rid(), actor=rep, visit_id=visit["id"])
    rpc.run_visit_deadlines(as_of=(now() + timedelta(days=1)).isoformat())
    rpc.log_visit(request_id=crm.rid(), actor=rep, visit_id=visit["id"],
                  log={"visited_at": now().isoformat(), "summary": "demo done"})

    for outcome in ("won", "lost"):
        opp = rpc.create_opportunity(request_id=crm.rid(), actor=rep, opportunity={
            "customer_id": customer["id"], "title": outcome, "expected_amount": "1000.00", "probability": 50,
            "priority": "high"})
        for stage in ("qualified", "proposal"):
            rpc.update_opportunity(request_id=crm.rid(), actor=rep, opportunity_id=opp["id"], changes={"stage": stage})
        rpc.close_opportunity(request_id=crm.rid(), actor=rep, opportunity_id=opp["id"], outcome=outcome,
                              reason="price" if outcome == "lost" else None,
                              order_id=str(uuid.uuid4()) if outcome == "won" else None)

    unvisited = crm.customer(other)
    rpc.run_contact_deadline(as_of=(now() + timedelta(days=8)).isoformat())
    rpc.assign_owner(request_id=crm.rid(), actor=manager, customer_id=unvisited["id"], owner_id=rep["staff_id"],
                     reason="not contacted in time")
    rpc.update_staff(request_id=crm.rid(), actor=crm.ADMIN, staff_id=rep["staff_id"], changes={"team": "East-2"})

    sent = crm.outbox()
    published = {event["event_type"] for event in sent}
    contracts = {path.name[: -len(".v1.json")] for path in CONTRACTS.glob("*.v1.json")}
    assert published == contracts, {"without a contract": published - contracts,
                                    "never exercised": contracts - published}
    for event in sent:
        assert_matches_contract("customer", event)
