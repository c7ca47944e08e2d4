"""The warehouse's pure rules (inventory.domain): movements and levels, allocation, low stock,
loans, prices, money and business dates — exhaustively, with hypothesis where an invariant exists."""
from datetime import date, datetime, timezone
from decimal import Decimal

import pytest
from hypothesis import given, strategies as st

from inventory import domain
from inventory.exceptions import (
    ActionNotAllowed, FloorAboveListPrice, LoanOverConversion, LoanOverReturn, LoanReturnMismatch,
)

KINDS = sorted(domain.MOVEMENTS)


# -- movements and levels ----------------------------------------------------------------------
@given(st.sampled_from(KINDS), st.integers(-1000, 1000), st.integers(-1000, 1000))
def test_movement_deltas_are_linear_so_the_ledger_sums_to_the_levels(kind, a, b):
    assert domain.deltas(kind, a + b) == tuple(x + y for x, y in zip(domain.deltas(kind, a), domain.deltas(kind, b)))
    assert domain.deltas(kind, -a) == tuple(-x for x in domain.deltas(kind, a))


def test_each_movement_moves_what_its_document_says():
    level = domain.Level(on_hand=10, reserved=4, on_loan=1)
    assert level.available == 6
    assert level.after("receipt", 5) == domain.Level(15, 4, 1)
    assert level.after("reservation", 2) == domain.Level(10, 6, 1)
    assert level.after("release", 2) == domain.Level(10, 2, 1)
    assert level.after("issue", 3) == domain.Level(7, 1, 1)          # consumes the hold
    assert level.after("return_receipt", 1) == domain.Level(11, 4, 1)
    assert level.after("loan_issue", 2) == domain.Level(8, 4, 3)
    assert level.after("loan_return", 1) == domain.Level(11, 4, 0)
    assert level.after("loan_conversion", 1) == domain.Level(10, 4, 0)  # no goods move again
    assert level.after("adjustment", -3) == domain.Level(7, 4, 1)
    assert not level.after("reservation", 7).valid                     # more than available
    assert not level.after("loan_return", 2).valid                     # more back than out


@given(st.lists(st.tuples(st.sampled_from(KINDS), st.integers(-50, 50).filter(bool)), max_size=60))
def test_applying_only_valid_moves_keeps_every_level_valid_and_equal_to_the_ledger(moves):
    level = domain.Level()
    ledger = [0, 0, 0]
    for kind, quantity in moves:
        candidate = level.after(kind, quantity)
        if candidate.valid:  # what the guarded UPDATE lets through
            level = candidate
            ledger = [x + d for x, d in zip(ledger, domain.deltas(kind, quantity))]
    assert level.valid and level.available >= 0
    assert (level.on_hand, level.reserved, level.on_loan) == tuple(ledger)


def test_stock_low_fires_only_when_crossing_below_the_threshold():
    assert domain.crossed_below(5, 5, 4)
    assert domain.crossed_below(5, 9, 0)
    assert not domain.crossed_below(5, 4, 3)    # already below
    assert not domain.crossed_below(5, 6, 5)    # at the threshold is not below
    assert not domain.crossed_below(5, 3, 8)    # going up
    assert not domain.crossed_below(0, 5, 0)    # no threshold, no alert


def test_ledger_mismatches_name_each_kind_of_difference():
    key = ("A", "MAIN")
    assert domain.ledger_mismatches({key: (5, 2, 1)}, {key: (5, 2, 1)}, {key: 2}, {key: 1}) == []
    [problem] = domain.ledger_mismatches({key: (6, 2, 1)}, {key: (5, 2, 1)}, {key: 3}, {})
    assert problem["problems"] == ["stored levels differ from the movement ledger",
                                   "reserved differs from what active reservations hold",
                                   "on_loan differs from what open loans have out"]
    [missing] = domain.ledger_mismatches({}, {key: (1, 0, 0)}, {}, {})
    assert missing["stored"] == {"on_hand": 0, "reserved": 0, "on_loan": 0}


# -- allocation over document lines ---------------------------------------------------------
@given(st.integers(0, 100), st.lists(st.integers(-5, 30), max_size=8))
def test_allocation_never_takes_more_than_remains_and_accounts_for_every_unit(requested, remaining):
    candidates = list(enumerate(remaining))
    taken, short = domain.allocate(requested, candidates)
    assert sum(q for _, q in taken) + short == requested
    assert all(0 < q <= remaining[key] for key, q in taken)
    assert short == max(0, requested - sum(max(r, 0) for r in remaining))
    assert [key for key, _ in taken] == sorted(key for key, _ in taken)  # in the lines' order


def test_merge_quantities_sums_by_key_in_lock_order():
    lines = [{"sku": "B", "quantity": 1}, {"sku": "A", "quantity": 2}, {"sku": "B", "quantity": 3}]
    assert domain.merge_quantities(lines) == [("A", 2), ("B", 4)]
    assert domain.duplicates(["a", "b", "a", "a"]) == [2, 3]


def test_a_reservation_is_consumed_once_every_line_is_issued():
    assert domain.reservation_status_after_issue([{"quantity": 2, "issued": 2}, {"quantity": 1, "issued": 1}]) == \
        "consumed"
    assert domain.reservation_status_after_issue([{"quantity": 2, "issued": 2}, {"quantity": 1, "issued": 0}]) == \
        "committed"
    assert domain.releasable({"quantity": 5, "issued": 2}) == 3


# -- loans (FR-98–FR-100) --------------------------------------------------------------------
@given(st.integers(1, 50), st.lists(st.tuples(st.sampled_from(["return", "convert"]), st.integers(1, 20)),
                                    max_size=20))
def test_loan_invariant_lent_equals_returned_plus_converted_plus_still_out(lent, steps):
    line = domain.LoanLine("A", lent)
    for action, quantity in steps:
        try:
            if action == "return":
                domain.check_loan_return(line, "A", quantity, quantity)
                line = domain.LoanLine("A", lent, line.returned + quantity, line.converted)
            else:
                domain.check_loan_conversion(line, "A", quantity)
                line = domain.LoanLine("A", lent, line.returned, line.converted + quantity)
        except (LoanOverReturn, LoanOverConversion):
            assert quantity > line.still_out
        assert line.balanced and line.still_out >= 0
    assert domain.loan_status([line]) == ("closed" if line.still_out == 0 else "out")


def test_fr100_a_loan_return_must_equal_the_counted_goods_on_the_loan():
    line = domain.LoanLine("A", 5, returned=1)
    with pytest.raises(LoanReturnMismatch) as info:
        domain.check_loan_return(line, "A", 2, 1)
    assert info.value.extra == {"sku": "A", "stated": 2, "counted": 1}
    with pytest.raises(LoanReturnMismatch):
        domain.check_loan_return(None, "B", 1, 1)  # not the loaned material
    with pytest.raises(LoanOverReturn):
        domain.check_loan_return(line, "A", 5, 5)
    domain.check_loan_return(line, "A", 4, 4)
    with pytest.raises(LoanOverConversion):
        domain.check_loan_conversion(None, "B", 1)


# -- catalog, roles ----------------------------------------------------------------------------
def test_fr43_the_floor_price_is_never_above_the_list_price():
    domain.check_prices({"list_price": Decimal("10.00"), "floor_price": Decimal("10.00")})
    with pytest.raises(FloorAboveListPrice) as info:
        domain.check_prices({"list_price": Decimal("10.00"), "floor_price": Decimal("10.01")})
    assert "floor_price" in info.value.errors
    after, changed = domain.apply_changes({"list_price": Decimal("10.00"), "floor_price": Decimal("8.00"),
                                           "name": "x"}, {"name": "x", "list_price": Decimal("12.00")})
    assert changed == ["list_price"] and domain.price_changed(changed)
    assert not domain.price_changed(["name", "active"])


def test_only_the_roles_named_may_act():
    domain.require_role({"role": "warehouse"}, domain.STOCK_KEEPERS, "issue goods")
    with pytest.raises(ActionNotAllowed) as info:
        domain.require_role({"role": "sales_rep"}, domain.STOCK_KEEPERS, "issue goods")
    assert info.value.code == "FORBIDDEN" and info.value.status == 403


# -- money and time ----------------------------------------------------------------------------
def test_money_is_decimal_rounded_half_up_to_cents():
    assert domain.line_amount(3, Decimal("33.335")) == Decimal("100.01")
    assert domain.money("0.005") == Decimal("0.01")
    assert str(domain.line_amount(4, Decimal("99.50"))) == "398.00"


def test_documents_are_numbered_in_the_asia_shanghai_year():
    assert domain.business_year(datetime(2026, 12, 31, 15, 59, tzinfo=timezone.utc)) == 2026
    assert domain.business_year(datetime(2026, 12, 31, 16, 0, tzinfo=timezone.utc)) == 2027


def test_a_report_period_is_whole_asia_shanghai_days():
    begin, end = domain.period_bounds(date(2026, 3, 1), date(2026, 3, 31))
    assert begin == datetime(2026, 2, 28, 16, 0, tzinfo=timezone.utc)
    assert end == datetime(2026, 3, 31, 16, 0, tzinfo=timezone.utc)
