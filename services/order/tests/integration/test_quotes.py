"""Quotes and their approval chains against real PostgreSQL and RabbitMQ, with fake customer,
inventory and billing services (FR-14, FR-42–FR-49)."""
import uuid
from datetime import date, timedelta

import pytest

from shared.errors import BusinessRuleViolation, Conflict, Forbidden, NotFound, ValidationFailed

TOMORROW = (date.today() + timedelta(days=30)).isoformat()


def rid():
    return str(uuid.uuid4())


def new_quote(desk, actor, customer, lines, **extra):
    return desk.rpc.create_quote(request_id=rid(), actor=actor,
                                 quote=dict({"customer_id": customer, "lines": lines, "valid_until": TOMORROW}, **extra))


def approve(desk, actor, quote, **kwargs):
    return desk.rpc.approve_quote(request_id=rid(), actor=actor, quote_id=quote["id"], **kwargs)


def test_fr42_fr43_a_quote_is_priced_from_the_price_list(desk):
    org = desk.org()
    quote = new_quote(desk, org.rep, org.customer, [{"sku": "P1", "quantity": 3}, {"sku": "P2", "quantity": 1,
                                                                                   "unit_price": "240.00"}])
    assert quote["status"] == "draft" and quote["number"].startswith("QT-")
    assert [(l["sku"], l["unit_price"], l["list_price"], l["floor_price"], l["amount"]) for l in quote["lines"]] == [
        ("P1", "100.00", "100.00", "80.00", "300.00"), ("P2", "240.00", "250.00", "200.00", "240.00")]
    assert quote["total"] == "540.00"
    assert quote["owner_id"] == org.rep["staff_id"] and quote["owner_team"] == "east-1"


def test_fr43_refusal_unknown_product_and_bad_input_name_the_field_and_change_nothing(desk):
    org = desk.org()
    for lines, field in (([{"sku": "NOPE", "quantity": 1}], "lines.0.sku"),
                         ([{"sku": "P1", "quantity": 0}], "lines.0.quantity"),
                         ([{"sku": "P1", "quantity": 1, "unit_price": "-5"}], "lines.0.unit_price"),
                         ([{"sku": "P1", "quantity": 1, "colour": "red"}], "lines.0.colour"),
                         ([], "lines")):
        with pytest.raises(ValidationFailed) as info:
            new_quote(desk, org.rep, org.customer, lines)
        assert field in info.value.errors, info.value.errors
    with pytest.raises(ValidationFailed) as info:
        new_quote(desk, org.rep, org.customer, [{"sku": "P1", "quantity": 1}], valid_until="2001-01-01")
    assert "valid_until" in info.value.errors
    assert desk.scalar("SELECT count(*) FROM quotes") == 0


def test_row_level_a_rep_cannot_quote_or_see_someone_elses_customer(desk):
    org = desk.org()
    with pytest.raises(NotFound):
        new_quote(desk, org.other_rep, org.customer, [{"sku": "P1", "quantity": 1}])
    quote = new_quote(desk, org.rep, org.customer, [{"sku": "P1", "quantity": 1}])
    with pytest.raises(NotFound):
        desk.rpc.get_quote(actor=org.other_rep, quote_id=quote["id"])
    with pytest.raises(NotFound):
        desk.rpc.get_quote(actor=org.west_manager, quote_id=quote["id"])
    assert desk.rpc.get_quote(actor=org.manager, quote_id=quote["id"])["id"] == quote["id"]
    assert desk.rpc.list_quotes(actor=org.other_rep)["items"] == []
    assert [q["id"] for q in desk.rpc.list_quotes(actor=org.director)["items"]] == [quote["id"]]


def test_fr45_within_authority_a_quote_is_approved_on_submit(desk):
    org = desk.org()
    quote = new_quote(desk, org.rep, org.customer, [{"sku": "P1", "quantity": 2, "unit_price": "95.00"}])
    submitted = desk.rpc.submit_quote(request_id=rid(), actor=org.rep, quote_id=quote["id"])
    assert submitted["status"] == "approved" and submitted["required_approvals"] == []
    assert [e["data"]["quote_id"] for e in desk.outbox("quote.approved")] == [quote["id"]]


def test_fr45_beyond_the_reps_authority_the_direct_manager_approves(desk):
    org = desk.org()
    quote = new_quote(desk, org.rep, org.customer, [{"sku": "P1", "quantity": 2, "unit_price": "90.00"}])
    pending = desk.rpc.submit_quote(request_id=rid(), actor=org.rep, quote_id=quote["id"])
    assert pending["status"] == "pending_approval"
    [step] = pending["required_approvals"]
    assert (step["relation"], step["status"], step["approver_id"]) == (
        "direct_manager", "pending", org.manager["staff_id"])
    approved = approve(desk, org.manager, pending, comment="ok for this customer")
    assert approved["status"] == "approved" and approved["approved_at"]
    [step] = approved["approvals"]
    assert (step["decided_by"], step["comment"], step["status"]) == (org.manager["staff_id"], "ok for this customer",
                                                                     "approved")
    assert step["content_hash"] == approved["content_hash"]


def test_fr46_below_floor_manager_then_sales_head_found_when_each_step_becomes_current(desk, books):
    org = desk.org()
    quote = new_quote(desk, org.rep, org.customer, [{"sku": "P1", "quantity": 10, "unit_price": "79.00"}])
    pending = desk.rpc.submit_quote(request_id=rid(), actor=org.rep, quote_id=quote["id"])
    assert [(s["relation"], s["status"], s["approver_id"]) for s in pending["required_approvals"]] == [
        ("direct_manager", "pending", org.manager["staff_id"]), ("division_head", "waiting", None),
        ("marketing_director", "waiting", None)]
    # the org chart changes before the second step: the head who holds the post *now* approves
    new_head = books.add_staff("sales_director", username="new-head")
    books.staff[org.manager["staff_id"]]["manager_id"] = new_head["staff_id"]
    after_manager = approve(desk, org.manager, pending)
    assert after_manager["status"] == "pending_approval"
    assert after_manager["required_approvals"][1]["approver_id"] == new_head["staff_id"]
    with pytest.raises(Forbidden) as info:  # the old head is not the approver any more
        approve(desk, org.director, after_manager)
    assert info.value.code == "NOT_YOUR_TURN"
    after_head = approve(desk, new_head, after_manager)
    assert after_head["required_approvals"][2]["approver_id"] == org.marketing["staff_id"]
    done = approve(desk, org.marketing, after_head)
    assert done["status"] == "approved"
    assert [s["approver_role"] for s in done["approvals"]] == ["sales_manager", "sales_director",
                                                               "marketing_director"]
    assert [c["relation"] for c in books.of("customer.find_approver")] == [
        "direct_manager", "division_head", "marketing_director"]


def test_fr46_refusal_the_requester_or_a_stranger_cannot_approve(desk):
    org = desk.org()
    quote = new_quote(desk, org.rep, org.customer, [{"sku": "P1", "quantity": 1, "unit_price": "79.00"}])
    pending = desk.rpc.submit_quote(request_id=rid(), actor=org.rep, quote_id=quote["id"])
    with pytest.raises(NotFound):  # a stranger outside the team does not even see it
        approve(desk, org.west_manager, pending)
    with pytest.raises(Forbidden) as info:
        approve(desk, org.director, pending)  # not their turn yet
    assert info.value.code == "NOT_YOUR_TURN"
    with pytest.raises(Forbidden):
        approve(desk, org.rep, pending)
    assert desk.rpc.get_quote(actor=org.rep, quote_id=quote["id"])["status"] == "pending_approval"


def test_fr48_a_major_total_needs_the_marketing_director(desk):
    org = desk.org()
    quote = new_quote(desk, org.director, org.customer, [{"sku": "BIG", "quantity": 2}])  # 120000 > 100000
    pending = desk.rpc.submit_quote(request_id=rid(), actor=org.director, quote_id=quote["id"])
    assert [s["relation"] for s in pending["required_approvals"]] == ["marketing_director"]
    assert pending["major"] is True
    done = approve(desk, org.marketing, pending, comment="strategic")
    assert done["status"] == "approved"


def test_fr14_refusal_a_customer_without_a_valid_review_cannot_be_quoted(desk, books):
    org = desk.org()
    books.quotable[org.customer] = False
    quote = new_quote(desk, org.rep, org.customer, [{"sku": "P1", "quantity": 1}])
    with pytest.raises(BusinessRuleViolation) as info:
        desk.rpc.submit_quote(request_id=rid(), actor=org.rep, quote_id=quote["id"])
    assert info.value.code == "CUSTOMER_NOT_QUOTABLE" and info.value.extra["reason"]
    assert desk.rpc.get_quote(actor=org.rep, quote_id=quote["id"])["status"] == "draft"
    books.quotable[org.customer] = True
    assert desk.rpc.submit_quote(request_id=rid(), actor=org.rep, quote_id=quote["id"])["status"] == "approved"


def test_an_edit_after_approval_voids_it_and_returns_the_quote_to_draft(desk):
    org = desk.org()
    quote = new_quote(desk, org.rep, org.customer, [{"sku": "P1", "quantity": 2, "unit_price": "90.00"}])
    pending = desk.rpc.submit_quote(request_id=rid(), actor=org.rep, quote_id=quote["id"])
    approved = approve(desk, org.manager, pending)
    assert approved["status"] == "approved"
    unchanged = desk.rpc.update_quote(request_id=rid(), actor=org.rep, quote_id=quote["id"],
                                      changes={"lines": [{"sku": "P1", "quantity": 2, "unit_price": "90.0"}]})
    assert unchanged["status"] == "approved"  # the same content: nothing to void
    edited = desk.rpc.update_quote(request_id=rid(), actor=org.rep, quote_id=quote["id"],
                                   changes={"lines": [{"sku": "P1", "quantity": 3, "unit_price": "90.00"}]})
    assert edited["status"] == "draft" and edited["content_hash"] != approved["content_hash"]
    assert [s["status"] for s in edited["approvals"]] == ["voided"]
    assert edited["approvals"][0]["decided_by"] == org.manager["staff_id"]  # the trail is kept
    with pytest.raises(Conflict) as info:
        desk.rpc.accept_quote(request_id=rid(), actor=org.rep, quote_id=quote["id"])
    assert info.value.code == "INVALID_STATE"
    again = desk.rpc.submit_quote(request_id=rid(), actor=org.rep, quote_id=quote["id"])
    assert again["status"] == "pending_approval" and len(again["approvals"]) == 2


def test_an_approval_given_to_content_the_approver_did_not_see_is_stale(desk):
    org = desk.org()
    quote = new_quote(desk, org.rep, org.customer, [{"sku": "P1", "quantity": 2, "unit_price": "90.00"}])
    pending = desk.rpc.submit_quote(request_id=rid(), actor=org.rep, quote_id=quote["id"])
    with pytest.raises(Conflict) as info:
        approve(desk, org.manager, pending, content_hash="0" * 64)
    assert info.value.code == "APPROVAL_STALE"
    assert approve(desk, org.manager, pending, content_hash=pending["content_hash"])["status"] == "approved"


def test_a_rejection_returns_the_quote_to_draft_and_keeps_who_and_why(desk):
    org = desk.org()
    quote = new_quote(desk, org.rep, org.customer, [{"sku": "P1", "quantity": 2, "unit_price": "79.00"}])
    pending = desk.rpc.submit_quote(request_id=rid(), actor=org.rep, quote_id=quote["id"])
    rejected = desk.rpc.reject_quote(request_id=rid(), actor=org.manager, quote_id=quote["id"], comment="too low")
    assert rejected["status"] == "draft"
    assert [(s["status"], s["comment"]) for s in rejected["approvals"]] == [
        ("rejected", "too low"), ("voided", None), ("voided", None)]
    assert pending["id"] == rejected["id"]


def test_approving_is_idempotent_by_request_id(desk):
    org = desk.org()
    quote = new_quote(desk, org.rep, org.customer, [{"sku": "P1", "quantity": 2, "unit_price": "90.00"}])
    desk.rpc.submit_quote(request_id=rid(), actor=org.rep, quote_id=quote["id"])
    key = rid()
    first = desk.rpc.approve_quote(request_id=key, actor=org.manager, quote_id=quote["id"], comment="ok")
    second = desk.rpc.approve_quote(request_id=key, actor=org.manager, quote_id=quote["id"], comment="ok")
    assert first == second
    assert desk.scalar("SELECT count(*) FROM outbox WHERE event_type = 'quote.approved'") == 1


def test_send_accept_creates_the_order_and_no_contract_below_the_contract_amount(desk):
    org = desk.org()
    quote = new_quote(desk, org.rep, org.customer, [{"sku": "P1", "quantity": 2, "unit_price": "90.00"}])
    desk.rpc.submit_quote(request_id=rid(), actor=org.rep, quote_id=quote["id"])
    approve(desk, org.manager, quote)
    sent = desk.rpc.send_quote(request_id=rid(), actor=org.rep, quote_id=quote["id"])
    assert sent["status"] == "sent" and sent["sent_at"]
    accepted = desk.rpc.accept_quote(request_id=rid(), actor=org.rep, quote_id=quote["id"])
    assert accepted["status"] == "accepted" and accepted["order_id"] and accepted["contract_id"] is None
    order = desk.rpc.get_order(actor=org.rep, order_id=accepted["order_id"])
    assert (order["status"], order["quote_id"], order["total"]) == ("draft", quote["id"], "180.00")
    assert [(l["sku"], l["quantity"], l["unit_price"]) for l in order["lines"]] == [("P1", 2, "90.00")]


def test_declined_cancelled_and_expired_quotes_are_closed(desk):
    org = desk.org()
    make = lambda: new_quote(desk, org.rep, org.customer, [{"sku": "P1", "quantity": 1}])  # noqa: E731
    a, b, c = make(), make(), make()
    desk.rpc.submit_quote(request_id=rid(), actor=org.rep, quote_id=a["id"])
    assert desk.rpc.decline_quote(request_id=rid(), actor=org.rep, quote_id=a["id"])["status"] == "rejected"
    assert desk.rpc.cancel_quote(request_id=rid(), actor=org.rep, quote_id=b["id"])["status"] == "cancelled"
    later = (date.today() + timedelta(days=40)).isoformat() + "T12:00:00+00:00"
    result = desk.rpc.run_expire_quotes(as_of=later)
    assert result["expired"] == [c["number"]]
    assert desk.rpc.get_quote(actor=org.rep, quote_id=c["id"])["status"] == "expired"
    with pytest.raises(Conflict):
        desk.rpc.submit_quote(request_id=rid(), actor=org.rep, quote_id=c["id"])


def test_document_numbers_are_gap_free_under_concurrency(desk):
    import eventlet
    from nameko.standalone.rpc import ClusterRpcClient

    org = desk.org()
    numbers = []

    def make():  # one client each: a standalone client is not shared between green threads
        with ClusterRpcClient(timeout=20) as client:
            numbers.append(client.order.create_quote(
                request_id=rid(), actor=org.rep, quote={"customer_id": org.customer, "valid_until": TOMORROW,
                                                        "lines": [{"sku": "P1", "quantity": 1}]})["number"])

    pool = eventlet.GreenPool()
    for _ in range(8):
        pool.spawn(make)
    pool.waitall()
    year = date.today().year
    assert sorted(numbers) == [f"QT-{year}-{n:06d}" for n in range(1, 9)]
