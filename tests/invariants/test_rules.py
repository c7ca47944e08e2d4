"""The invariant checker's rules on hand-made books: consistent books pass, and each rule catches
the violation it is there for (naming the rule, its FR and the document)."""
import copy

import pytest

from tests.invariants.rules import check, nothing_parked

ORDER, LINE, DELIVERY_LINE, CUSTOMER = "o-1", "ol-1", "dl-1", "c-1"


def kit(service, **more):
    return dict({"service": service, "outbox": {"pending": 0, "oldest_age_seconds": 0.0}, "parked": [],
                 "parked_gauge": 0.0, "numbers": []}, **more)


@pytest.fixture
def books():
    """One order of 5 pumps confirmed, 2 issued and invoiced (226.00 with VAT), 100.00 collected;
    20 received, one counted missing."""
    return {
        "inventory": kit("inventory", levels=[{
            "sku": "PUMP", "warehouse": "MAIN", "on_hand": 17, "reserved": 3, "on_loan": 0,
            "on_hand_by_kind": {"receipt": 20, "issue": -2, "adjustment": -1}, "reserved_ledger": 3,
            "on_loan_ledger": 0}],
            reservations=[{"id": "r-1", "order_id": ORDER, "order_number": "SO-2026-000001", "warehouse": "MAIN",
                           "status": "committed", "lines": [{"line_id": LINE, "sku": "PUMP", "quantity": 5,
                                                             "issued": 2}]}],
            deliveries=[{"id": "d-1", "number": "DN-2026-000001", "order_id": ORDER, "loan_id": None,
                         "lines": [{"id": DELIVERY_LINE, "sku": "PUMP", "quantity": 2, "returned": 0}]}],
            numbers=[{"prefix": "DN", "year": 2026, "last_value": 1, "count": 1, "distinct": 1, "lowest": 1,
                      "highest": 1}]),
        "order": kit("order", orders=[{
            "id": ORDER, "number": "SO-2026-000001", "kind": "sale", "status": "partially_shipped",
            "customer_id": CUSTOMER, "total": "565.00", "loan_id": None, "idle_seconds": 3.0,
            "lines": [{"id": LINE, "sku": "PUMP", "quantity": 5, "shipped": 2, "returned": 0}]}],
            sagas=[{"id": "s-1", "kind": "confirm", "subject_id": ORDER, "order_id": ORDER, "attempt": 1,
                    "state": "done", "step": None, "stock_status": "reserved", "credit_status": "reserved",
                    "stock_reservation_id": "r-1", "credit_reservation_id": "cr-1", "recoveries": 0,
                    "lease_expired": True, "idle_seconds": 10.0}]),
        "billing": kit("billing", credit_reservations=[{
            "reservation_id": "cr-1", "order_id": ORDER, "customer_id": CUSTOMER, "status": "reserved",
            "amount": "565.00", "remaining": "339.00"}],
            invoices=[{"id": "i-1", "number": "INV-2026-000001", "red": False, "reverses": None, "status": "issued",
                       "customer_id": CUSTOMER, "total": "226.00", "reversed_amount": "0.00",
                       "allocated_amount": "100.00",
                       "lines": [{"id": "il-1", "delivery_line_id": DELIVERY_LINE, "quantity": 2,
                                  "reversed_quantity": 0, "reverses_line": None, "amount": "226.00"}]}],
            delivery_lines=[{"delivery_line_id": DELIVERY_LINE, "delivery_id": "d-1",
                             "delivery_number": "DN-2026-000001", "order_id": ORDER, "quantity": 2,
                             "claimed_quantity": 2, "reversed_quantity": 0, "returned_quantity": 0}],
            allocations=[{"id": "a-1", "receipt_id": "rc-1", "invoice_id": "i-1", "customer_id": CUSTOMER,
                          "amount": "100.00", "reversed": False}],
            balances=[{"customer_id": CUSTOMER, "open_receivables": "126.00", "ledger_balance": "126.00"}]),
    }


def broken(books, change):
    books = copy.deepcopy(books)
    change(books)
    return check(books)


def test_consistent_books_pass(books):
    assert check(books) == []


def test_a_partial_platform_is_checked_for_what_it_runs(books):
    del books["inventory"], books["billing"]
    assert check(books) == []


def only(violations):
    assert len({(v.rule, v.document) for v in violations}) >= 1, violations
    return {v.rule for v in violations}


def test_on_hand_off_its_ledger(books):
    def lose_a_pump(b):
        b["inventory"]["levels"][0]["on_hand_by_kind"]["issue"] = -3
    [violation] = broken(books, lose_a_pump)
    assert violation.rule == "on hand = receipts − issues + returns ± adjustments"
    assert violation.fr == "FR-78" and violation.document == "stock PUMP@MAIN"
    assert "stored on hand 17, ledger 16" in violation.detail


def test_reserved_without_a_reservation(books):
    def reserve_more(b):
        level = b["inventory"]["levels"][0]
        level["reserved"] = level["reserved_ledger"] = 4
    [violation] = broken(books, reserve_more)
    assert violation.rule == "reserved = open reservations of confirmed orders and nothing else"
    assert "reserved 4, open reservations hold 3" in violation.detail


def test_stock_held_for_a_cancelled_order(books):
    def cancel(b):
        b["order"]["orders"][0]["status"] = "cancelled"
    rules = only(broken(books, cancel))
    assert {"reserved = open reservations of confirmed orders and nothing else",
            "an order not confirmed holds no stock", "an order not confirmed holds no credit"} <= rules


def test_a_confirmed_order_without_its_credit_reservation(books):
    def release(b):
        b["billing"]["credit_reservations"][0]["status"] = "released"
    [violation] = broken(books, release)
    assert violation.rule == "a confirmed order has exactly its credit reservation" and violation.fr == "FR-65"
    assert violation.document == "order SO-2026-000001"


def test_a_confirmed_order_reserved_twice(books):
    def twice(b):
        b["billing"]["credit_reservations"].append(dict(b["billing"]["credit_reservations"][0], reservation_id="cr-2"))
    assert "a confirmed order has exactly its credit reservation" in only(broken(books, twice))


def test_a_credit_reservation_of_another_amount(books):
    def more(b):
        b["billing"]["credit_reservations"][0]["amount"] = "565.01"
    [violation] = broken(books, more)
    assert "total 565.00, credit reserved 565.01" in violation.detail


def test_a_stock_reservation_of_other_quantities(books):
    def fewer(b):
        b["order"]["orders"][0]["lines"][0]["quantity"] = 4
    violations = broken(books, fewer)
    assert "a confirmed order has exactly its stock reservation" in only(violations)


def test_goods_invoiced_twice(books):
    def again(b):
        b["billing"]["invoices"].append(dict(copy.deepcopy(b["billing"]["invoices"][0]), id="i-2",
                                             number="INV-2026-000002", allocated_amount="0.00"))
        b["billing"]["balances"][0]["open_receivables"] = "352.00"
    [violation] = broken(books, again)
    assert violation.rule == "issued goods are invoiced once" and violation.fr == "FR-83"
    assert violation.detail == "4 invoiced of 2 issued"


def test_an_invoice_for_goods_never_issued(books):
    def unissued(b):
        b["inventory"]["deliveries"] = []
    rules = only(broken(books, unissued))
    assert "an issued invoice covers issued goods" in rules
    assert "billing's delivery lines are the warehouse's" in rules


def test_a_red_invoice_reverses_what_it_takes_back(books):
    def red(b):
        blue = b["billing"]["invoices"][0]
        blue["lines"][0]["reversed_quantity"] = 2
        b["billing"]["invoices"].append({
            "id": "i-2", "number": "INV-2026-000002", "red": True, "reverses": "i-1", "status": "issued",
            "customer_id": CUSTOMER, "total": "126.00", "reversed_amount": "0.00", "allocated_amount": "0.00",
            "lines": [{"id": "il-2", "delivery_line_id": DELIVERY_LINE, "quantity": 2, "reversed_quantity": 0,
                       "reverses_line": "il-1", "amount": "126.00"}]})
        b["billing"]["balances"][0]["open_receivables"] = "0.00"
    assert broken(books, red) == []


def test_a_balance_off_its_documents(books):
    def forget_allocation(b):
        b["billing"]["allocations"][0]["reversed"] = True
    [violation] = broken(books, forget_allocation)
    assert violation.rule == "customer balance = invoices − red invoices − allocated receipts"
    assert violation.fr == "FR-72" and violation.detail == "billing says 126.00, the documents say 226.00"


@pytest.mark.parametrize("numbers, rule", [
    ({"count": 2, "distinct": 1, "lowest": 1, "highest": 1, "last_value": 1}, "no document number repeated"),
    ({"count": 2, "distinct": 2, "lowest": 1, "highest": 3, "last_value": 3}, "no document number skipped"),
    ({"count": 1, "distinct": 1, "lowest": 1, "highest": 1, "last_value": 2}, "no document number skipped"),
])
def test_document_numbers(books, numbers, rule):
    def renumber(b):
        b["inventory"]["numbers"][0].update(numbers)
    violations = broken(books, renumber)
    assert rule in only(violations) and violations[0].document == "inventory DN-2026"


def test_a_saga_left_half_way(books):
    def crash(b):
        b["order"]["sagas"][0].update(state="running", step="reserve")
        b["order"]["orders"][0]["status"] = "confirming"
    violations = broken(books, crash)
    assert {v.document for v in violations if v.rule == "no saga left half-way"} == {
        "saga confirm s-1", "order SO-2026-000001"}


def test_an_outbox_row_older_than_a_minute(books):
    def stall(b):
        b["billing"]["outbox"] = {"pending": 3, "oldest_age_seconds": 61.0}
    [violation] = broken(books, stall)
    assert violation.document == "billing outbox" and "3 pending, oldest 61 s" in violation.detail


def test_an_outbox_row_younger_than_a_minute_is_fine(books):
    books["billing"]["outbox"] = {"pending": 3, "oldest_age_seconds": 59.0}
    assert check(books) == []


def test_a_parked_message_without_an_alert(books):
    row = {"id": 1, "handler": "billing.on_goods_issued", "event_type": "goods.issued", "event_id": "e-1",
           "error": "boom", "attempts": 5, "first_failed_at": "2026-01-01T00:00:00+00:00"}
    books["billing"]["parked"] = [row]
    books["billing"]["parked_gauge"] = 0.0
    [violation] = check(books)
    assert violation.rule == "no message parked without an alert"
    books["billing"]["parked_gauge"] = 1.0
    assert check(books) == []
    assert [v.rule for v in check(books, strict=True)] == ["nothing parked after the run"]
    assert list(nothing_parked(books))[0].document == "billing billing.on_goods_issued"
