"""The finance rules alone (no broker, no database): money and VAT, the credit formula, the credit
check, red-letter invoices, allocation, statements, aging. Invariants with hypothesis."""
from datetime import date, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings, strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from billing import domain
from billing.exceptions import (
    Forbidden, InvalidState, OverAllocation, ReversalExceedsOriginal, StatementPeriodOpen, ValidationFailed,
)

D = Decimal
prices = st.decimals(min_value=D("0.00"), max_value=D("99999.99"), places=2, allow_nan=False, allow_infinity=False)
rates = st.sampled_from([D("0"), D("0.03"), D("0.06"), D("0.09"), D("0.13")])
quantities = st.integers(min_value=1, max_value=500)


# -- money and VAT (README "Rounding") -----------------------------------------------------------
def test_fr81_vat_is_split_per_line_half_up_as_chinese_vat_invoices_do():
    assert domain.split_vat(D("113.00"), D("0.13")) == (D("100.00"), D("13.00"))
    assert domain.split_vat(D("100.00"), D("0.13")) == (D("88.50"), D("11.50"))  # 88.4955… → 88.50
    assert domain.split_vat(D("0.05"), D("0.13")) == (D("0.04"), D("0.01"))      # 0.04424… → 0.04
    assert domain.split_vat(D("10.00"), D("0")) == (D("10.00"), D("0.00"))
    line = domain.invoice_line(3, D("33.33"), D("0.13"))
    assert (line["amount"], line["net"], line["tax"]) == (D("99.99"), D("88.49"), D("11.50"))


def test_money_is_never_a_float():
    with pytest.raises(TypeError):
        domain.money(0.1)
    assert domain.money("0.125") == D("0.13") and domain.money(D("2.675")) == D("2.68")  # half up, exact


@given(quantities, prices, rates)
def test_fr81_a_line_nets_and_taxes_to_its_amount_exactly(quantity, price, rate):
    line = domain.invoice_line(quantity, price, rate)
    assert line["amount"] == quantity * price
    assert line["net"] + line["tax"] == line["amount"]
    assert D(0) <= line["net"] <= line["amount"] and line["tax"] >= 0
    assert abs(line["net"] * (1 + rate) - line["amount"]) <= D("0.005") * (1 + rate)


# -- red-letter invoices (FR-95) -----------------------------------------------------------------
def blue_line(quantity, price, rate):
    return dict(domain.invoice_line(quantity, price, rate), sku="SKU-1", reversed_quantity=0,
                reversed_amount=D("0.00"), reversed_net=D("0.00"), reversed_tax=D("0.00"))


@given(quantities, prices, rates, st.data())
def test_fr95_a_line_reversed_in_parts_nets_to_exactly_zero(quantity, price, rate, data):
    line = blue_line(quantity, price, rate)
    while line["reversed_quantity"] < quantity:
        left = quantity - line["reversed_quantity"]
        part = data.draw(st.integers(min_value=1, max_value=left))
        red = domain.reversal(line, part)
        assert red["net"] + red["tax"] == red["amount"] and red["net"] >= 0 and red["tax"] >= 0
        line["reversed_quantity"] += part
        line["reversed_amount"] += red["amount"]
        line["reversed_net"] += red["net"]
        line["reversed_tax"] += red["tax"]
        assert line["reversed_amount"] <= line["amount"] and line["reversed_net"] <= line["net"]
    assert (line["reversed_amount"], line["reversed_net"], line["reversed_tax"]) == (
        line["amount"], line["net"], line["tax"])


def test_fr95_parts_are_rounded_cumulatively_so_no_part_has_negative_tax():
    # 63 × 0.01 at 13 %: net 0.56. Rounding each part alone gives 0.04 + 0.50, leaving 0.02 of
    # net on the last 0.01 (tax −0.01); cumulative rounding gives 0.04, 0.50, 0.02 → 0.04, 0.51, 0.01.
    line = blue_line(63, D("0.01"), D("0.13"))
    parts = []
    for units in (5, 57, 1):
        red = domain.reversal(line, units)
        parts.append((red["amount"], red["net"], red["tax"]))
        line["reversed_quantity"] += units
        for key in ("amount", "net", "tax"):
            line["reversed_" + key] += red[key]
    assert parts == [(D("0.05"), D("0.04"), D("0.01")), (D("0.57"), D("0.51"), D("0.06")),
                     (D("0.01"), D("0.01"), D("0.00"))]


def test_fr95_a_red_letter_invoice_is_never_above_the_original():
    line = blue_line(10, D("5.00"), D("0.13"))
    with pytest.raises(ReversalExceedsOriginal) as refused:
        domain.reversal(line, 11)
    assert refused.value.code == "REVERSAL_EXCEEDS_ORIGINAL" and refused.value.extra["reversible"] == 10
    line["reversed_quantity"] = 7
    with pytest.raises(ReversalExceedsOriginal):
        domain.reversal(line, 4)
    with pytest.raises(ReversalExceedsOriginal):
        domain.reversal(line, 0)


def test_fr95_a_return_reverses_what_stands_invoiced_above_the_goods_still_with_the_customer():
    # 10 issued, all invoiced on one invoice: 3 come back → 3 reversed
    assert domain.return_reversals(10, 3, [("a", 10)]) == [("a", 3)]
    # nothing invoiced: nothing to reverse
    assert domain.return_reversals(10, 3, []) == []
    # 6 invoiced (4 not yet): 3 back leaves 7 with the customer, still above 6 → none reversed
    assert domain.return_reversals(10, 3, [("a", 6)]) == []
    # two invoices, newest first: the newest is reversed first
    assert domain.return_reversals(10, 10, [("new", 4), ("old", 6)]) == [("new", 4), ("old", 6)]
    assert domain.return_reversals(10, 5, [("new", 4), ("old", 6)]) == [("new", 4), ("old", 1)]


@given(st.integers(1, 50), st.data())
def test_fr95_returns_never_reverse_more_than_was_invoiced(quantity, data):
    invoiced = data.draw(st.integers(0, quantity))
    returned = data.draw(st.integers(0, quantity))
    plan = domain.return_reversals(quantity, returned, [("a", invoiced)] if invoiced else [])
    reversed_ = sum(units for _, units in plan)
    assert 0 <= reversed_ <= invoiced
    assert invoiced - reversed_ <= quantity - returned  # what stays invoiced is with the customer


def test_deallocation_takes_back_the_newest_payments_and_reallocates_the_rest():
    assert domain.deallocation(D("30"), [("a3", D("50")), ("a2", D("20"))]) == (["a3"], D("20.00"))
    assert domain.deallocation(D("60"), [("a3", D("50")), ("a2", D("20"))]) == (["a3", "a2"], D("10.00"))
    assert domain.deallocation(D("50"), [("a3", D("50"))]) == (["a3"], D("0.00"))


# -- allocation (FR-86) ---------------------------------------------------------------------------
def test_fr86_allocation_is_refused_above_an_invoice_open_amount_or_the_receipt():
    opens = {"i1": D("100.00"), "i2": D("50.00")}
    assert domain.check_allocations(D("120.00"), opens, [("i1", D("70")), ("i2", D("50"))]) == D("120.00")
    with pytest.raises(OverAllocation) as refused:
        domain.check_allocations(D("500.00"), opens, [("i2", D("50.01"))])
    assert refused.value.extra["invoices"] == [{"invoice_id": "i2", "requested": "50.01", "open": "50.00"}]
    with pytest.raises(OverAllocation) as refused:
        domain.check_allocations(D("119.99"), opens, [("i1", D("70")), ("i2", D("50"))])
    assert refused.value.extra == {"requested": "120.00", "unallocated": "119.99"}


class Books(RuleBasedStateMachine):
    """The money invariant under any sequence of issue / red / receive / allocate / reverse:
    balance = Σ issued − Σ red − Σ allocated = Σ open amounts; no open amount below zero; no
    receipt allocated above its amount."""

    def __init__(self):
        super().__init__()
        self.invoices = []   # dicts: total, reversed, allocated
        self.receipts = []   # dicts: amount, allocated
        self.allocations = []  # (receipt index, invoice index, amount, active)
        self.issued = self.red = D("0")

    @rule(amount=st.decimals(D("0.01"), D("10000"), places=2))
    def issue(self, amount):
        self.invoices.append({"total": amount, "reversed": D("0"), "allocated": D("0")})
        self.issued += amount

    @rule(amount=st.decimals(D("0.01"), D("10000"), places=2))
    def receive(self, amount):
        self.receipts.append({"amount": amount, "allocated": D("0")})

    @precondition(lambda self: self.invoices and self.receipts)
    @rule(data=st.data())
    def allocate(self, data):
        r = data.draw(st.integers(0, len(self.receipts) - 1))
        i = data.draw(st.integers(0, len(self.invoices) - 1))
        amount = data.draw(st.decimals(D("0.01"), D("12000"), places=2))
        inv, rec = self.invoices[i], self.receipts[r]
        opens = {i: domain.open_amount(inv["total"], inv["reversed"], inv["allocated"])}
        try:
            domain.check_allocations(rec["amount"] - rec["allocated"], opens, [(i, amount)])
        except OverAllocation:
            assert amount > opens[i] or amount > rec["amount"] - rec["allocated"]
            return
        inv["allocated"] += amount
        rec["allocated"] += amount
        self.allocations.append([r, i, amount, True])

    @precondition(lambda self: any(a[3] for a in self.allocations))
    @rule(data=st.data())
    def unallocate(self, data):
        active = [a for a in self.allocations if a[3]]
        a = data.draw(st.sampled_from(active))
        a[3] = False
        self.invoices[a[1]]["allocated"] -= a[2]
        self.receipts[a[0]]["allocated"] -= a[2]

    @precondition(lambda self: any(i["total"] > i["reversed"] for i in self.invoices))
    @rule(data=st.data())
    def reverse(self, data):
        index = data.draw(st.sampled_from([n for n, i in enumerate(self.invoices) if i["total"] > i["reversed"]]))
        inv = self.invoices[index]
        amount = data.draw(st.decimals(D("0.01"), inv["total"] - inv["reversed"], places=2))
        excess = amount - domain.open_amount(inv["total"], inv["reversed"], inv["allocated"])
        if excess > 0:
            active = [a for a in reversed(self.allocations) if a[3] and a[1] == index]
            ids, again = domain.deallocation(excess, [(n, a[2]) for n, a in enumerate(active)])
            for n in ids:
                active[n][3] = False
                inv["allocated"] -= active[n][2]
                self.receipts[active[n][0]]["allocated"] -= active[n][2]
            if again:
                last = active[ids[-1]]
                inv["allocated"] += again
                self.receipts[last[0]]["allocated"] += again
                self.allocations.append([last[0], index, again, True])
        inv["reversed"] += amount
        self.red += amount

    @invariant()
    def money_adds_up(self):
        allocated = sum((a[2] for a in self.allocations if a[3]), D("0"))
        opens = [domain.open_amount(i["total"], i["reversed"], i["allocated"]) for i in self.invoices]
        assert all(o >= 0 for o in opens)
        assert sum(opens, D("0")) == self.issued - self.red - allocated
        assert all(D("0") <= r["allocated"] <= r["amount"] for r in self.receipts)
        assert sum((r["allocated"] for r in self.receipts), D("0")) == allocated


TestFr86MoneyInvariant = Books.TestCase
TestFr86MoneyInvariant.settings = settings(max_examples=60, stateful_step_count=30, deadline=None)


# -- the credit formula (FR-64) --------------------------------------------------------------------
FORMULA = domain.CreditFormula()


def inputs(sales, prior=D("0"), weighted=D("0"), weight=D("0")):
    return domain.CreditInputs(D(sales), D(prior), D(weighted), D(weight))


def test_fr64_the_published_formula_on_worked_examples():
    # 1.2 M a year, paid on time, no prior year: 2 months × 100 000 × 1.2 (A) × 1.0 = 240 000
    a = domain.assess(inputs("1200000", weighted="0", weight="1200000"), FORMULA)
    assert (a.limit, a.grade, a.growth_factor) == (D("240000.00"), "A", D("1"))
    # grew 50 % on 800 000 (factor 1 + 0.5 × 0.5 = 1.25), 10 days late on average (B: 1.0)
    b = domain.assess(inputs("1200000", "800000", weighted="12000000", weight="1200000"), FORMULA)
    assert (b.grade, b.growth, b.growth_factor, b.limit) == ("B", D("0.5000"), D("1.25"), D("250000.00"))
    # halved (factor clamped at 0.8), 30 days late (C: 0.6): 200 000 × 0.6 × 0.8 = 96 000
    c = domain.assess(inputs("1200000", "2400000", weighted="36000000", weight="1200000"), FORMULA)
    assert (c.grade, c.growth_factor, c.limit) == ("C", D("0.8"), D("96000.00"))
    # 60 days late: D, no credit at all
    assert domain.assess(inputs("1200000", weighted="72000000", weight="1200000"), FORMULA).limit == D("0.00")
    # no history: grade C, nothing to base a limit on
    assert (lambda x: (x.grade, x.limit))(domain.assess(inputs("0"), FORMULA)) == ("C", D("0.00"))
    # rounded down to 1000, capped
    assert domain.assess(inputs("4999"), FORMULA).limit == D("0.00")  # 999.80 → 0
    assert domain.assess(inputs("999999999999", weight="1"), FORMULA).limit == D("10000000.00")


@given(st.decimals(D("0"), D("100000000"), places=2), st.decimals(D("0"), D("100000000"), places=2),
       st.decimals(D("0"), D("200"), places=1))
def test_fr64_limit_is_never_negative_and_grows_with_sales_and_shrinks_with_lateness(sales, prior, days):
    weight = max(sales, D("1"))
    base = domain.assess(inputs(sales, prior, days * weight, weight), FORMULA)
    assert D("0") <= base.limit <= FORMULA.max_limit and base.limit % FORMULA.round_to == 0
    assert domain.assess(inputs(sales * 2, prior, days * weight, weight), FORMULA).limit >= base.limit
    assert domain.assess(inputs(sales, prior, (days + 20) * weight, weight), FORMULA).limit <= base.limit
    assert base.grade == domain.grade(inputs(sales, prior, days * weight, weight), FORMULA)


def test_fr64_coefficients_are_checked():
    with pytest.raises(ValueError, match="growth_min"):
        domain.CreditFormula(growth_min=D("2"), growth_max=D("1"))
    with pytest.raises(ValueError, match="standing"):
        domain.CreditFormula(standing={"A": D("1")})


def test_fr66_a_manual_limit_holds_for_its_quarter_then_the_formula_again():
    assert domain.effective_limit(D("1000"), D("5000"), "2026-Q3", "2026-Q3") == D("5000.00")
    assert domain.effective_limit(D("1000"), D("5000"), "2026-Q2", "2026-Q3") == D("1000.00")
    assert domain.effective_limit(D("1000"), None, None, "2026-Q3") == D("1000.00")


def test_fr65_credit_check_and_available():
    assert domain.fits(D("1000"), D("600"), D("400")) and not domain.fits(D("1000"), D("600"), D("400.01"))
    assert domain.available(D("1000"), D("250.5")) == D("749.50")
    assert domain.available(D("100"), D("250")) == D("0.00")
    assert domain.OPENING_LIMIT == D("0.00")


def test_roles_finance_changes_limits_sales_manager_certifies():
    domain.require_role("set_credit_limit", {"role": "finance"})
    for role in ("sales_manager", "sales_director", "sales_rep", "admin", "general_manager"):
        with pytest.raises(Forbidden):
            domain.require_role("set_credit_limit", {"role": role})
    domain.require_role("certify_invoice", {"role": "sales_manager"})
    with pytest.raises(Forbidden):
        domain.require_role("certify_invoice", {"role": "finance"})


def test_fr82_invoice_state_machine():
    assert domain.transition("draft", "certify") == "certified"
    assert domain.transition("certified", "issue") == "issued"
    for status, action in (("draft", "issue"), ("issued", "certify"), ("issued", "cancel"), ("cancelled", "issue")):
        with pytest.raises(InvalidState):
            domain.transition(status, action)


def test_fr81_special_invoices_need_tax_id_and_bank_account():
    assert domain.missing_tax_details("ordinary", None, None) == []
    assert domain.missing_tax_details("special", None, {}) == ["tax_id", "bank_account"]
    assert domain.missing_tax_details("special", "91310000MA1FL8XQ3K", {"bank_name": "ICBC"}) == ["bank_account"]
    assert domain.missing_tax_details("special", "9131", {"bank_name": "ICBC", "account_no": "6222"}) == []


# -- statements, calendar (FR-87, FR-89) -------------------------------------------------------------
entries = st.lists(st.tuples(
    st.datetimes(min_value=datetime(2025, 1, 1), max_value=datetime(2026, 12, 31)),
    st.sampled_from(["invoice", "red_invoice", "receipt"]),
    st.decimals(D("0.01"), D("100000"), places=2)), max_size=40)


@given(entries, st.integers(2025, 2026), st.integers(1, 12))
def test_fr87_statement_closing_is_the_next_month_opening(raw, year, month):
    ledger = [{"posted_at": at, "kind": kind, "amount": amount if kind == "invoice" else -amount}
              for at, kind, amount in raw]

    def month_statement(label):
        start, end = domain.parse_month(label)
        start, end = datetime.combine(start, datetime.min.time()), datetime.combine(end, datetime.min.time())
        opening = sum((e["amount"] for e in ledger if e["posted_at"] < start), D("0"))
        return domain.statement(opening, [e for e in ledger if start <= e["posted_at"] < end])

    label = f"{year}-{month:02d}"
    this, following = month_statement(label), month_statement(domain.next_month(label))
    assert this["closing"] == following["opening"]
    assert this["closing"] == this["opening"] + this["invoiced"] - this["red"] - this["received"]


def test_fr87_months_and_quarters():
    assert domain.parse_month("2026-12") == (date(2026, 12, 1), date(2027, 1, 1))
    assert domain.previous_month("2026-01") == "2025-12" and domain.next_month("2026-12") == "2027-01"
    assert domain.quarter_of(date(2026, 8, 31)) == "2026-Q3" and domain.parse_quarter("2026-Q4") == date(2026, 10, 1)
    assert domain.add_months(date(2026, 3, 31), -1) == date(2026, 2, 28)
    for bad in ("2026-13", "26-01", "2026-1", None):
        with pytest.raises(ValidationFailed) as refused:
            domain.parse_month(bad)
        assert "month" in refused.value.errors
    with pytest.raises(ValidationFailed):
        domain.parse_quarter("2026-Q5")


def test_fr89_confirmation_rules_and_campaign_months():
    assert domain.statement_transition(None, "disputed") == "disputed"
    assert domain.statement_transition("disputed", "confirmed") == "confirmed"
    with pytest.raises(InvalidState):
        domain.statement_transition("confirmed", "disputed")
    with pytest.raises(StatementPeriodOpen):
        domain.check_month_ended(date(2026, 7, 1), date(2026, 6, 30))
    domain.check_month_ended(date(2026, 7, 1), date(2026, 7, 1))
    assert domain.check_campaign_month("2026-12") == date(2026, 12, 1)
    with pytest.raises(ValidationFailed):
        domain.check_campaign_month("2026-05")


# -- aging and DSO (FR-91, FR-90) -----------------------------------------------------------------
def test_fr91_aging_buckets_by_days_past_due():
    as_of = date(2026, 6, 30)
    items = [(as_of, D("1")), (as_of - timedelta(days=1), D("2")), (as_of - timedelta(days=30), D("4")),
             (as_of - timedelta(days=31), D("8")), (as_of - timedelta(days=60), D("16")),
             (as_of - timedelta(days=61), D("32")), (as_of - timedelta(days=90), D("64")),
             (as_of - timedelta(days=91), D("128")), (as_of + timedelta(days=10), D("256"))]
    assert domain.aging(items, as_of) == {"current": D("257.00"), "days_1_30": D("6.00"), "days_31_60": D("24.00"),
                                          "days_61_90": D("96.00"), "days_over_90": D("128.00"),
                                          "total": D("511.00")}


@given(st.lists(st.tuples(st.integers(-100, 400), st.decimals(D("0.01"), D("1000"), places=2)), max_size=30))
def test_fr91_aging_buckets_add_up_to_the_total(items):
    as_of = date(2026, 6, 30)
    result = domain.aging([(as_of - timedelta(days=d), a) for d, a in items], as_of)
    assert sum(result[b] for b in domain.BUCKETS) == result["total"] == sum((a for _, a in items), D("0"))


def test_fr90_dso_and_collection_rate():
    assert domain.dso(D("300000"), D("900000"), 90) == D("30.0")
    assert domain.dso(D("1"), D("0"), 90) is None
    assert domain.collection_rate(D("75"), D("100")) == D("0.7500")
    assert domain.collection_rate(D("1"), D("0")) is None
    assert domain.payment_status(D("100"), D("0"), D("40")) == "partially_paid"
    assert domain.payment_status(D("100"), D("100"), D("0")) == "reversed"
    assert domain.payment_status(D("100"), D("30"), D("70")) == "paid"
