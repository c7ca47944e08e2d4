"""The CRM story end to end, driven through the gateway's HTTP API with the real processes, three
sales people (a rep, their manager, another rep of the team) and marketing: capture (FR-01, FR-06),
a duplicate refused (FR-07), a campaign lead in the pool distributed balanced (FR-09), not
contacted within a week so reclaimable and reassigned (FR-10, FR-08), a visit planned → approved →
logged (FR-23, FR-27, refused without approval), classification (FR-13, signed by the first
confirmed order), an opportunity won (FR-37–FR-39) — and the other rep sees none of it."""
import uuid
from datetime import datetime, timedelta, timezone

import pytest
from nameko.standalone.events import event_dispatcher

from shared import envelope

pytestmark = pytest.mark.slow


def at(moment):
    return moment.astimezone(timezone.utc).isoformat()


def test_crm_story_fr06_fr07_fr08_fr09_fr10_fr13_fr23_fr27_fr37(start_platform):
    platform = start_platform("customer")
    manager, manager_user = platform.user("manager1", "sales_manager", team="East-1", region="East")
    rep, rep_user = platform.user("rep1", "sales_rep", team="East-1", region="East",
                                  manager=manager_user["staff_id"])
    other, other_user = platform.user("rep2", "sales_rep", team="East-1", region="East",
                                      manager=manager_user["staff_id"])
    marketing, _ = platform.user("mkt1", "marketing_director")

    # capture: the rep who records a customer owns it, with a week to make contact (FR-06, FR-10)
    acme = rep.post("customers", {
        "name": "Huadong Machinery Co., Ltd.", "tax_id": "91310000MA1FL8XQ3K", "industry": "machinery",
        "size": "large", "region": "East", "source": "trade_fair", "needs": "5-axis machining centres",
        "contacts": [{"name": "Wang Fang", "position": "CTO", "decision_maker": True}]}, expect=201)
    assert (acme["owner_name"], acme["owner_team"], acme["reclaimable"]) == ("Rep1", "East-1", False)

    # a duplicate is refused and names the owner (FR-07)
    duplicate = other.post("customers", {"name": "HUADONG MACHINERY 有限公司", "industry": "machinery",
                                         "size": "large", "region": "East", "source": "internet"})
    assert duplicate.status_code == 409
    assert (duplicate.json()["code"], duplicate.json()["owner_name"]) == ("DUPLICATE_CUSTOMER", "Rep1")

    # a campaign lead goes to the pool; the manager takes the balanced suggestion (FR-09)
    lead = marketing.post("customers", {"name": "Jiangnan Textiles", "industry": "textiles", "size": "medium",
                                        "region": "East", "source": "industry_association"}, expect=201)
    assert lead["owner_id"] is None
    assert [c["id"] for c in manager.get("customers/pool", expect=200)["items"]] == [lead["id"]]
    [step] = manager.get("customers/pool/suggestion", expect=200)["plan"]
    assert step["owner_id"] == other_user["staff_id"]  # rep2 owns fewer customers than rep1
    manager.post(f"customers/{lead['id']}/owner", {"owner": step["owner_id"], "reason": "campaign lead"},
                 expect=200)

    # rep2 does not contact it within a week: reclaimable, in the pool, reassigned by the manager (FR-10)
    with platform.rpc() as rpc:
        marked = rpc.customer.run_contact_deadline(as_of=at(datetime.now(timezone.utc) + timedelta(days=8)))
    assert lead["id"] in marked["customer_ids"]
    pool = manager.get("customers/pool", params={"reason": "reclaimable"}, expect=200)["items"]
    assert lead["id"] in [c["id"] for c in pool]
    assert rep.post(f"customers/{lead['id']}/owner", {"owner": rep_user["staff_id"], "reason": "mine"}) \
        .status_code == 403  # a rep may not reassign (FR-08)
    manager.post(f"customers/{lead['id']}/owner", {"owner": rep_user["staff_id"],
                                                   "reason": "not contacted within a week"}, expect=200)
    history = manager.get(f"customers/{lead['id']}/owner-history", expect=200)["items"]
    assert [h["kind"] for h in history] == ["pool", "assign", "reclaimable", "reassign"]

    # a visit: planned with objectives, refused before approval, approved by the manager, logged (FR-23, FR-27)
    visit = rep.post("visits", {"customer_id": acme["id"], "purpose": "demo the 5-axis line; meet purchasing",
                                "planned_at": at(datetime.now(timezone.utc) + timedelta(minutes=1))}, expect=201)
    log = {"summary": "demo went well; purchasing wants 90-day terms", "next_step": "quote by Friday"}
    refused = rep.post(f"visits/{visit['id']}/log", dict(log, visited_at=at(datetime.now(timezone.utc))))
    assert (refused.status_code, refused.json()["code"]) == (409, "VISIT_NOT_APPROVED")
    assert rep.post(f"visits/{visit['id']}/approve", {}).status_code == 403
    manager.post(f"visits/{visit['id']}/approve", {"comment": "go"}, expect=200)
    logged = rep.post(f"visits/{visit['id']}/log", dict(log, visited_at=at(datetime.now(timezone.utc))),
                      expect=200)
    assert (logged["state"], logged["late"]) == ("logged", False)
    week = {row["rep_id"]: row for row in manager.get("visits/weekly", expect=200)["items"]}
    assert (week[rep_user["staff_id"]]["visits"], week[rep_user["staff_id"]]["standard"]) == (1, 10)

    # classification with history (FR-13)
    rep.post(f"customers/{acme['id']}/classification", {"status": "key", "reason": "budget approved"}, expect=200)

    # an opportunity, scored and followed up, won with its order (FR-37–FR-39)
    opportunity = rep.post("opportunities", {"customer_id": acme["id"], "title": "5-axis line, plant 2",
                                             "expected_amount": "860000.00", "probability": 30,
                                             "source": "visit"}, expect=201)
    rep.patch(f"opportunities/{opportunity['id']}", {"stage": "qualified", "priority": "high"}, expect=200)
    rep.patch(f"opportunities/{opportunity['id']}", {"stage": "proposal", "probability": 60}, expect=200)
    rep.patch(f"opportunities/{opportunity['id']}", {"stage": "negotiation"}, expect=200)
    order_id = str(uuid.uuid4())
    won = rep.post(f"opportunities/{opportunity['id']}/close", {"outcome": "won", "order_id": order_id},
                   expect=200)
    assert (won["stage"], won["order_id"]) == ("won", order_id)

    # the order service confirms that order: the customer is signed, the purchase is in its history
    event_dispatcher(uri=platform.amqp_uri)("order", "order.confirmed", envelope.build("order.confirmed", {
        "order_id": order_id, "number": "SO-2026-000001", "customer_id": acme["id"], "total": "860000.00",
        "confirmed_at": at(datetime.now(timezone.utc)), "owner_id": rep_user["staff_id"], "owner_team": "East-1",
        "region": "East", "lines": [{"line_id": str(uuid.uuid4()), "sku": "VMC-5AX", "quantity": 1,
                                     "unit_price": "860000.00", "vat_rate": "0.13"}]}, source="order"))
    signed = platform.wait_for(lambda: (lambda c: c["status"] == "signed" and c)(
        rep.get(f"customers/{acme['id']}", expect=200)), what="the customer signed by order.confirmed")
    assert signed["first_order_at"] is not None
    assert [p["order_number"] for p in rep.get(f"customers/{acme['id']}/purchases", expect=200)["items"]] == \
        ["SO-2026-000001"]
    classes = rep.get(f"customers/{acme['id']}/classification-history", expect=200)["items"]
    assert [(c["status"], c["source"]) for c in classes] == [("potential", "recorded"), ("key", "manual"),
                                                            ("signed", "order")]

    # the manager sees the team's work; the other rep sees none of it
    assert {c["id"] for c in manager.get("customers", expect=200)["items"]} == {acme["id"], lead["id"]}
    assert [v["id"] for v in manager.get("visits", expect=200)["items"]] == [visit["id"]]
    assert other.get("customers", expect=200)["items"] == []
    assert other.get("visits", expect=200)["items"] == []
    assert other.get("opportunities", expect=200)["items"] == []
    for path in (f"customers/{acme['id']}", f"customers/{lead['id']}", f"visits/{visit['id']}",
                 f"opportunities/{opportunity['id']}", f"customers/{acme['id']}/owner-history"):
        assert other.get(path).status_code == 404, path
