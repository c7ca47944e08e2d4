"""The sales desk's rules, pure (order.domain): the approval matrix (FR-45–FR-48) over prices ×
roles, order pricing without a quote, the state machines, the order's progress after
confirmation, the saga's decisions, returns (FR-93), loans (FR-98–FR-100), periods and targets
(FR-112–FR-118)."""
import uuid
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from hypothesis import given, strategies as st

from order import domain
from order.domain import Authority, DIRECT_MANAGER as DM, DIVISION_HEAD as DH, MARKETING_DIRECTOR as MD
from order.exceptions import (
    ApprovalRequired, InvalidState, LoanQuantityMismatch, PriceBelowFloor, ReturnExceedsDelivered, UnknownProduct,
    ValidationFailed,
)

PRICES = {"P1": {"name": "Pump", "list_price": "100.00", "floor_price": "80.00", "vat_rate": "0.13"},
          "P2": {"name": "Valve", "list_price": "10.00", "floor_price": "8.00", "vat_rate": "0.13"},
          "OLD": {"name": "Old", "list_price": "10.00", "floor_price": "5.00", "vat_rate": "0.13", "active": False}}
AUTHORITY = {  # INTEGRATION.md defaults: (discount authority, price authority)
    "sales_rep": Authority(Decimal("0.05"), Decimal("0.85")),
    "sales_manager": Authority(Decimal("0.10"), Decimal("0.80")),
    "sales_director": Authority(Decimal("0.15"), Decimal("0.70")),
}
MAJOR = Decimal("100000.00")


def priced(unit_price, quantity=1, sku="P1"):
    return domain.price_lines([{"sku": sku, "quantity": quantity, "unit_price": unit_price}], PRICES)


# -- the approval matrix: prices × roles (list 100, floor 80) ---------------------------------------
MATRIX = [
    # price   rep                 manager             director
    ("100.00", [], [], []),                                     # at list: nothing
    ("96.00", [], [], []),                                      # within every authority
    ("95.00", [], [], []),                                      # exactly the rep's 5 %
    ("94.00", [DM], [], []),                                    # beyond the rep's discount authority
    ("90.00", [DM], [], []),                                    # exactly the manager's 10 %
    ("89.99", [DM], [DM], []),
    ("85.00", [DM], [DM], []),                                  # exactly the director's 15 %, rep's price authority
    ("84.99", [DM, MD], [DM], [DM]),                            # below the rep's price authority (FR-48)
    ("80.00", [DM, MD], [DM], [DM]),                            # at the floor, manager's price authority
    ("79.99", [DM, DH, MD], [DM, DH, MD], [DM, DH]),            # below the floor (FR-46)
    ("70.00", [DM, DH, MD], [DM, DH, MD], [DM, DH]),            # the director's price authority
    ("69.99", [DM, DH, MD], [DM, DH, MD], [DM, DH, MD]),
]


@pytest.mark.parametrize("role_index,role", enumerate(["sales_rep", "sales_manager", "sales_director"]))
@pytest.mark.parametrize("price,rep,manager,director", MATRIX, ids=[m[0] for m in MATRIX])
def test_fr45_fr46_fr48_approval_matrix_prices_by_roles(price, rep, manager, director, role_index, role):
    expected = (rep, manager, director)[role_index]
    needed = domain.required_approvals(priced(price), AUTHORITY[role], MAJOR)
    assert [a.relation for a in needed] == expected
    assert all(a.reason for a in needed)


def test_fr48_a_major_amount_needs_the_marketing_director_even_at_list_price():
    needed = domain.required_approvals(priced("100.00", quantity=1001), AUTHORITY["sales_director"], MAJOR)
    assert [a.relation for a in needed] == [MD] and "major" in needed[0].reason
    assert domain.required_approvals(priced("100.00", quantity=1000), AUTHORITY["sales_director"], MAJOR) == []


def test_fr46_below_floor_comes_first_whatever_the_authority():
    generous = Authority(Decimal("0.50"), Decimal("0.10"))
    assert [a.relation for a in domain.required_approvals(priced("79.00"), generous, MAJOR)] == [DM, DH]


def test_fr43_lines_are_priced_from_the_price_list_and_unknown_products_refused():
    line = priced(None, quantity=3)[0]
    assert (line.unit_price, line.amount, line.vat_rate) == (Decimal("100.00"), Decimal("300.00"), Decimal("0.13"))
    with pytest.raises(UnknownProduct) as info:
        domain.price_lines([{"sku": "P1", "quantity": 1}, {"sku": "NOPE", "quantity": 1},
                            {"sku": "OLD", "quantity": 1}], PRICES)
    assert set(info.value.errors) == {"lines.1.sku", "lines.2.sku"} and info.value.status == 422


def test_money_is_decimal_rounded_half_up():
    assert domain.money("2.675") == Decimal("2.68") and domain.money(Decimal("1")) == Decimal("1.00")
    assert domain.total_of(priced("33.335", quantity=3)) == Decimal("100.02")


# -- orders without a quote (FR-43, FR-45) ----------------------------------------------------------
def test_fr43_an_order_at_list_price_needs_no_quote():
    domain.check_order_prices(priced("100.00", quantity=2), MAJOR)
    domain.check_order_prices(priced("120.00"), MAJOR)  # above list is fine


def test_fr43_refusal_below_list_needs_an_approved_quote_and_below_floor_is_price_below_floor():
    with pytest.raises(ApprovalRequired):
        domain.check_order_prices(priced("95.00"), MAJOR)
    with pytest.raises(PriceBelowFloor) as info:
        domain.check_order_prices(priced("79.00"), MAJOR)
    assert info.value.code == "PRICE_BELOW_FLOOR" and info.value.extra["floor_price"] == "80.00"
    with pytest.raises(ApprovalRequired):
        domain.check_order_prices(priced("100.00", quantity=1001), MAJOR)  # major amount


def test_an_order_on_a_quote_must_stay_within_what_was_quoted():
    quote = [{"sku": "P1", "quantity": 5, "unit_price": Decimal("79.00")}]
    domain.check_order_prices(priced("79.00", quantity=5), MAJOR, quote)
    domain.check_order_prices(priced("85.00", quantity=2), MAJOR, quote)


@pytest.mark.parametrize("lines", [
    lambda: priced("78.00", quantity=5),           # below the quoted price
    lambda: priced("79.00", quantity=6),           # more than quoted
    lambda: priced("10.00", sku="P2"),             # not on the quote
])
def test_refusal_an_order_beyond_its_quote_needs_approval(lines):
    quote = [{"sku": "P1", "quantity": 5, "unit_price": Decimal("79.00")}]
    with pytest.raises(ApprovalRequired):
        domain.check_order_prices(lines(), MAJOR, quote)


# -- state machines ----------------------------------------------------------------------------------
@pytest.mark.parametrize("status,action,target", [
    ("draft", "submit", None), ("pending_approval", "decide", None), ("approved", "send", "sent"),
    ("approved", "accept", "accepted"), ("sent", "accept", "accepted"), ("sent", "decline", "rejected"),
    ("approved", "edit", "draft"), ("sent", "edit", "draft"), ("pending_approval", "cancel", "cancelled"),
])
def test_quote_machine_allows(status, action, target):
    assert domain.check(domain.QUOTE_MACHINE, "quote", status, action) == target


@pytest.mark.parametrize("status,action", [
    ("draft", "accept"), ("pending_approval", "accept"), ("accepted", "edit"), ("expired", "submit"),
    ("rejected", "send"), ("draft", "send"), ("cancelled", "cancel"),
])
def test_quote_machine_refuses(status, action):
    with pytest.raises(InvalidState) as info:
        domain.check(domain.QUOTE_MACHINE, "quote", status, action)
    assert info.value.code == "INVALID_STATE" and info.value.status == 409


def test_rejection_returns_a_quote_or_contract_to_draft_and_a_return_or_loan_to_rejected():
    assert domain.after_approvals("quote", "rejected") == "draft"
    assert domain.after_approvals("contract", "rejected") == "draft"
    assert domain.after_approvals("return", "rejected") == "rejected"
    assert domain.after_approvals("loan", "approved") == "approved"


def test_fr58_a_contract_is_signed_only_with_both_signatures():
    now = datetime.now(timezone.utc)
    assert domain.after_signature(now, None) == "approved"
    assert domain.after_signature(None, now) == "approved"
    assert domain.after_signature(now, now) == "signed"
    with pytest.raises(InvalidState):
        domain.check(domain.CONTRACT_MACHINE, "contract", "in_approval", "sign")
    with pytest.raises(InvalidState):
        domain.check(domain.CONTRACT_MACHINE, "contract", "approved", "register")


def test_fr51_fr56_contract_terms_must_be_complete():
    assert domain.missing_terms({"service_terms": "free changes twice", "payment_terms": "30 days",
                                 "delivery_terms": "EXW"}) == {}
    assert set(domain.missing_terms({"service_terms": "  ", "payment_terms": "30 days"})) == {
        "terms.service_terms", "terms.delivery_terms"}


def test_fr50_fr52_contract_needed_and_its_approvals():
    assert domain.contract_needed(Decimal("50000.00"), False, Decimal("50000.00"))
    assert not domain.contract_needed(Decimal("49999.99"), False, Decimal("50000.00"))
    assert domain.contract_needed(Decimal("10.00"), True, Decimal("50000.00"))
    assert [a.relation for a in domain.contract_approvals(False)] == [DH]
    assert [a.relation for a in domain.contract_approvals(True)] == [DH, MD]


# -- the order after confirmation ----------------------------------------------------------------------
def line(quantity, shipped=0, returned=0, invoiced=0):
    return {"quantity": quantity, "shipped_quantity": shipped, "returned_quantity": returned,
            "invoiced_quantity": invoiced}


@pytest.mark.parametrize("lines,invoices,expected", [
    ([line(5), line(2)], [], "confirmed"),
    ([line(5, 2), line(2)], [], "partially_shipped"),
    ([line(5, 5), line(2, 2)], [], "shipped"),
    ([line(5, 5, invoiced=5), line(2, 2)], [{"settled": False}], "shipped"),
    ([line(5, 5, invoiced=5), line(2, 2, invoiced=2)], [{"settled": False}], "invoiced"),
    ([line(5, 5, invoiced=5), line(2, 2, invoiced=2)], [{"settled": True}, {"settled": False}], "invoiced"),
    ([line(5, 5, invoiced=5), line(2, 2, invoiced=2)], [{"settled": True}], "paid"),
    ([line(5, 5, returned=1, invoiced=4)], [{"settled": True}], "paid"),   # a return reversed by a red invoice
])
def test_the_order_follows_shipments_invoices_and_payments(lines, invoices, expected):
    assert domain.order_progress("confirmed", lines, invoices) == expected


def test_the_order_never_moves_backwards_and_ignores_other_states():
    assert domain.order_progress("invoiced", [line(5, 5)], []) == "invoiced"
    assert domain.order_progress("credit_hold", [line(5, 5)], []) == "credit_hold"
    assert domain.order_progress("cancelled", [line(5, 5)], []) == "cancelled"


# -- the saga's decisions --------------------------------------------------------------------------------
@pytest.mark.parametrize("stock,credit,outcome", [
    ("reserved", "reserved", "confirm"), ("reserved", "refused", "credit_hold"), ("refused", "reserved", "stock_short"),
    ("refused", "refused", "stock_short"), ("unknown", "reserved", "error"), ("reserved", "unknown", "error"),
    ("refused", "unknown", "stock_short"), ("kept", "reserved", "confirm"), ("kept", "refused", "credit_hold"),
])
def test_saga_outcome(stock, credit, outcome):
    assert domain.saga_outcome(stock, credit) == outcome


def test_a_crashed_saga_is_resumed_while_young_else_compensated():
    start = datetime(2026, 1, 5, tzinfo=timezone.utc)
    assert domain.may_resume(start, start + timedelta(seconds=300), 300)
    assert not domain.may_resume(start, start + timedelta(seconds=301), 300)


# -- returns (FR-93) -----------------------------------------------------------------------------------
def delivered(sku, quantity, returned=0):
    return {"delivery_line_id": uuid.uuid4(), "order_id": uuid.uuid4(), "order_line_id": uuid.uuid4(), "sku": sku,
            "quantity": quantity, "returned_quantity": returned, "unit_price": Decimal("100.00")}


def test_fr93_a_return_takes_what_was_delivered_less_returned_less_requested():
    a, b = delivered("P1", 5, returned=1), delivered("P1", 3)
    plan = domain.plan_return([{"sku": "P1", "quantity": 6}], [a, b], {str(a["delivery_line_id"]): 1})
    assert [(p["delivery_line_id"], p["quantity"]) for p in plan] == [(a["delivery_line_id"], 3),
                                                                      (b["delivery_line_id"], 3)]


def test_fr93_refusal_more_than_returnable_names_the_sku_and_what_is_left():
    a = delivered("P1", 5, returned=2)
    with pytest.raises(ReturnExceedsDelivered) as info:
        domain.plan_return([{"sku": "P1", "quantity": 3}], [a], {str(a["delivery_line_id"]): 1})
    assert info.value.extra == {"sku": "P1", "requested": 3, "returnable": 2}
    with pytest.raises(ValidationFailed) as info:
        domain.plan_return([{"sku": "P9", "quantity": 1}], [a], {})
    assert "lines.0.sku" in info.value.errors


# -- loans (FR-98–FR-100) ----------------------------------------------------------------------------------
def loan_line(sku, issued, returned=0, converted=0):
    return {"sku": sku, "issued_quantity": issued, "returned_quantity": returned, "converted_quantity": converted}


def test_fr100_returned_or_converted_quantities_must_match_what_is_out():
    lines = [loan_line("P1", 5, returned=1), loan_line("P2", 2)]
    assert domain.check_loan_movement([{"sku": "P1", "quantity": 4}], lines, "returned") == {"P1": 4}
    with pytest.raises(LoanQuantityMismatch) as info:
        domain.check_loan_movement([{"sku": "P1", "quantity": 3}, {"sku": "P1", "quantity": 2}], lines, "returned")
    assert info.value.extra == {"sku": "P1", "requested": 5, "out": 4}
    with pytest.raises(LoanQuantityMismatch):
        domain.check_loan_movement([{"sku": "P3", "quantity": 1}], lines, "converted")


def test_fr99_fr100_loan_status_once_everything_is_accounted_for():
    assert domain.loan_status_after([loan_line("P1", 5, returned=1)]) == "lent"
    assert domain.loan_status_after([loan_line("P1", 5, returned=5)]) == "returned"
    assert domain.loan_status_after([loan_line("P1", 5, converted=5)]) == "converted"
    assert domain.loan_status_after([loan_line("P1", 5, returned=2, converted=3)]) == "closed"


# -- periods, quotas and targets (FR-67, FR-112–FR-118) ---------------------------------------------------
@pytest.mark.parametrize("text,kind,start,end", [
    ("2026", "year", date(2026, 1, 1), date(2027, 1, 1)),
    ("2026-Q4", "quarter", date(2026, 10, 1), date(2027, 1, 1)),
    ("2026-Q1", "quarter", date(2026, 1, 1), date(2026, 4, 1)),
    ("2026-12", "month", date(2026, 12, 1), date(2027, 1, 1)),
    ("2026-02", "month", date(2026, 2, 1), date(2026, 3, 1)),
])
def test_fr114_periods_year_quarter_month(text, kind, start, end):
    period = domain.parse_period(text)
    assert (period.kind, period.start, period.end) == (kind, start, end)


@pytest.mark.parametrize("text", ["26", "2026-Q5", "2026-13", "2026-1", "2026/10", "Q4-2026", ""])
def test_fr114_refusal_not_a_period(text):
    with pytest.raises(ValidationFailed) as info:
        domain.parse_period(text)
    assert "period" in info.value.errors


def test_fr118_a_child_target_lies_within_its_parent():
    domain.check_child_target(domain.parse_period("2026-Q4"), domain.parse_period("2026"))
    domain.check_child_target(domain.parse_period("2026-11"), domain.parse_period("2026-Q4"))
    with pytest.raises(ValidationFailed):
        domain.check_child_target(domain.parse_period("2026-09"), domain.parse_period("2026-Q4"))


def test_fr113_a_breakdown_must_sum_to_its_parent_and_shows_the_difference():
    root = {"id": 1, "parent_id": None, "amount": Decimal("1000.00"), "period": "2026", "scope": "region",
            "scope_id": "East"}
    kids = [dict(root, id=2, parent_id=1, amount=Decimal("600.00"), scope="rep", scope_id="a"),
            dict(root, id=3, parent_id=1, amount=Decimal("300.00"), scope="rep", scope_id="b")]
    [mismatch] = domain.breakdown_mismatches([root] + kids)
    assert (mismatch["amount"], mismatch["children_total"], mismatch["difference"]) == ("1000.00", "900.00", "100.00")
    kids[1]["amount"] = Decimal("400.00")
    assert domain.breakdown_mismatches([root] + kids) == []
    assert domain.breakdown_mismatches([root]) == []  # not broken down: nothing to add up


@given(st.lists(st.decimals(min_value=0, max_value=10**6, places=2, allow_nan=False, allow_infinity=False),
                min_size=1, max_size=8))
def test_fr113_children_that_sum_to_the_parent_always_pass(parts):
    total = sum(parts, Decimal("0"))
    root = {"id": "r", "parent_id": None, "amount": total, "period": "2026", "scope": "team", "scope_id": "t"}
    kids = [{"id": f"k{i}", "parent_id": "r", "amount": p, "period": "2026-Q1", "scope": "rep", "scope_id": str(i)}
            for i, p in enumerate(parts)]
    assert domain.breakdown_mismatches([root] + kids) == []


def test_fr67_the_quota_month_is_the_shanghai_month():
    assert domain.quota_month(datetime(2026, 1, 31, 17, 0, tzinfo=timezone.utc)) == "2026-02"
    assert domain.quota_month(datetime(2026, 1, 31, 15, 59, tzinfo=timezone.utc)) == "2026-01"


def test_quote_validity_is_a_shanghai_date():
    assert domain.quote_expired(date(2026, 3, 1), datetime(2026, 3, 1, 16, 0, tzinfo=timezone.utc))
    assert not domain.quote_expired(date(2026, 3, 1), datetime(2026, 3, 1, 15, 0, tzinfo=timezone.utc))
