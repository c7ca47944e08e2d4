"""Issue 12: which waiting documents are the caller's (the approvals inbox, FR-23, FR-46, FR-48, FR-98)."""
from gateway.api.approvals import inbox_items

ME = {"staff_id": "11111111-1111-1111-1111-111111111111", "role": "sales_manager"}
OTHER = "22222222-2222-2222-2222-222222222222"


def quote(steps, **more):
    return dict({"id": "q1", "number": "QT-1", "customer_id": "c1", "customer_name": "Acme", "owner_id": OTHER,
                 "total": "800.00", "approvals": steps, "submitted_at": "2026-11-20T01:00:00+00:00"}, **more)


def step(status, approver_id=None, role="sales_manager", relation="direct_manager"):
    return {"status": status, "approver_id": approver_id, "role": role, "relation": relation,
            "reason": "below floor", "assigned_at": "2026-11-20T02:00:00+00:00"}


def test_a_step_whose_turn_it_is_and_names_me_is_mine():
    [item] = inbox_items("quote", [quote([step("approved", OTHER), step("pending", ME["staff_id"])])], ME)
    assert item == {"kind": "quote", "id": "q1", "number": "QT-1", "customer_id": "c1", "customer_name": "Acme",
                    "owner_id": OTHER, "amount": "800.00", "reason": "below floor", "step": "direct_manager",
                    "since": "2026-11-20T02:00:00+00:00", "decide": "quotes/q1"}


def test_a_step_waiting_for_someone_else_or_not_yet_its_turn_is_not_mine():
    docs = [quote([step("pending", OTHER)]), quote([step("approved", ME["staff_id"]), step("waiting", ME["staff_id"])])]
    assert inbox_items("quote", docs, ME) == []
    assert inbox_items("contract", docs, ME) == []


def test_a_step_naming_no_one_is_for_its_role():
    docs = [quote([step("pending", None, role="product_manager", relation="product_manager")])]
    assert inbox_items("return", docs, ME) == []
    assert inbox_items("return", docs, {"staff_id": OTHER, "role": "product_manager"})[0]["decide"] == "returns/q1"


def test_visit_plans_are_mine_to_approve_unless_my_own():
    visits = [{"id": "v1", "number": "VIS-1", "customer_id": "c1", "customer_name": "Acme", "rep_id": OTHER,
               "purpose": "demo", "created_at": "2026-11-20T00:00:00+00:00"},
              {"id": "v2", "number": "VIS-2", "customer_id": "c1", "customer_name": "Acme", "rep_id": ME["staff_id"],
               "purpose": "own", "created_at": "2026-11-20T00:00:00+00:00"}]
    [item] = inbox_items("visit", visits, ME)
    assert (item["id"], item["owner_id"], item["reason"], item["decide"]) == ("v1", OTHER, "demo", "visits/v1")


def test_proposals_in_internal_review_are_mine_to_review_unless_my_own():
    """FR-40: the owner's manager reviews; their own proposal never lands in their inbox."""
    proposals = [{"id": "p1", "number": "PRP-1", "customer_id": "c1", "customer_name": "Acme", "owner_id": OTHER,
                  "title": "line 2 retrofit", "amount": "455000.00", "updated_at": "2026-11-22T00:00:00+00:00"},
                 {"id": "p2", "number": "PRP-2", "customer_id": "c1", "customer_name": "Acme",
                  "owner_id": ME["staff_id"], "title": "own", "amount": None, "updated_at": "2026-11-22T00:00:00+00:00"}]
    [item] = inbox_items("proposal", proposals, ME)
    assert (item["id"], item["amount"], item["reason"], item["step"], item["decide"]) == \
        ("p1", "455000.00", "line 2 retrofit", "manager", "proposals/p1")


def test_an_order_on_credit_hold_is_a_credit_release():
    order = {"id": "o1", "number": "SO-1", "customer_id": "c1", "customer_name": "Acme", "owner_id": OTHER,
             "total": "9000.00", "credit_held_at": "2026-11-21T00:00:00+00:00"}
    [item] = inbox_items("credit_release", [order], {"staff_id": ME["staff_id"], "role": "finance"})
    assert (item["amount"], item["since"], item["decide"]) == ("9000.00", "2026-11-21T00:00:00+00:00", "orders/o1")
