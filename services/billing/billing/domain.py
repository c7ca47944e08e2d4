"""Finance rules, free of any framework: money and VAT, the credit formula and grades (FR-63–FR-66),
the credit check, invoice and red-letter invoice rules (FR-81, FR-82, FR-95), allocation (核销,
FR-86), statements (FR-87, FR-89), aging and DSO (FR-91), and who may do what.

Money is Decimal with 2 places, rounded half up (ROUND_HALF_UP), never float. Prices include VAT:
a line's amount is quantity × unit price; its net is round(amount / (1 + vat_rate), 2) and its tax
amount − net, per line, as Chinese VAT invoices are made out (README "Rounding").
"""
import calendar
import re
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal

from billing.exceptions import (
    Forbidden, InvalidState, OverAllocation, ReversalExceedsOriginal, StatementPeriodOpen, ValidationFailed,
)

CURRENCY = "CNY"
CENT = Decimal("0.01")
ZERO = Decimal("0.00")
OPENING_LIMIT = ZERO  # a new customer has no credit until finance or the formula grants it
GRADES = ("A", "B", "C", "D")


# -- money --------------------------------------------------------------------------------------
def money(value):
    """A Decimal with 2 places, half up. Refuses floats: money never passes through binary floats."""
    if isinstance(value, float):
        raise TypeError("money is never a float")
    return Decimal(value).quantize(CENT, rounding=ROUND_HALF_UP)


def line_amount(quantity, unit_price):
    """quantity × unit price (prices include VAT)."""
    return money(Decimal(quantity) * money(unit_price))


def split_vat(amount, vat_rate):
    """(net, tax) of a VAT-inclusive amount: net = round(amount / (1 + rate), 2) half up, tax =
    amount − net, so net + tax == amount exactly."""
    amount = money(amount)
    net = money(amount / (Decimal(1) + Decimal(vat_rate)))
    return net, amount - net


def available(limit, exposure):
    """What the customer may still owe: never shown below zero."""
    return max(money(limit) - money(exposure), ZERO)


# -- business calendar (dates in Asia/Shanghai, computed by the caller) -------------------------
_QUARTER = re.compile(r"^(\d{4})-Q([1-4])$")
_MONTH = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")


def quarter_of(day):
    return f"{day.year}-Q{(day.month - 1) // 3 + 1}"


def parse_quarter(text):
    """`2026-Q3` → the first day of the quarter; a ValidationFailed naming `quarter` otherwise."""
    match = _QUARTER.match(str(text or ""))
    if not match:
        raise ValidationFailed("invalid quarter", errors={"quarter": ["must look like 2026-Q3"]})
    return date(int(match.group(1)), (int(match.group(2)) - 1) * 3 + 1, 1)


def parse_month(text):
    """`2026-06` → (first day, first day of the next month)."""
    match = _MONTH.match(str(text or ""))
    if not match:
        raise ValidationFailed("invalid month", errors={"month": ["must look like 2026-06 (YYYY-MM)"]})
    start = date(int(match.group(1)), int(match.group(2)), 1)
    return start, add_months(start, 1)


def month_of(day):
    return f"{day.year:04d}-{day.month:02d}"


def add_months(day, months):
    """The same day `months` later (or earlier), clamped to the month's last day."""
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    return date(year, month + 1, min(day.day, calendar.monthrange(year, month + 1)[1]))


def previous_month(month):
    start, _ = parse_month(month)
    return month_of(add_months(start, -1))


def next_month(month):
    start, _ = parse_month(month)
    return month_of(add_months(start, 1))


# -- the credit formula (FR-64, FR-66; README "Credit formula") ---------------------------------
@dataclass(frozen=True)
class CreditFormula:
    """The published coefficients (config.yaml CREDIT.*)."""

    months_of_sales: Decimal = Decimal("2")        # the limit covers this many months of average sales
    growth_weight: Decimal = Decimal("0.5")        # growth factor = 1 + weight × growth rate ...
    growth_min: Decimal = Decimal("0.8")           # ... clamped to [min, max]
    growth_max: Decimal = Decimal("1.3")
    grade_a_days: Decimal = Decimal("5")           # average days late up to: A
    grade_b_days: Decimal = Decimal("15")          # B
    grade_c_days: Decimal = Decimal("45")          # C; later: D
    standing: dict = field(default_factory=lambda: {
        "A": Decimal("1.2"), "B": Decimal("1.0"), "C": Decimal("0.6"), "D": Decimal("0")})
    no_history_grade: str = "C"                    # no sales and no payments in the 12 months
    round_to: Decimal = Decimal("1000")            # the limit is rounded down to a multiple of this
    max_limit: Decimal = Decimal("10000000")

    def __post_init__(self):
        problems = []
        for name in ("months_of_sales", "growth_weight", "growth_min", "growth_max", "grade_a_days",
                     "grade_b_days", "grade_c_days", "round_to", "max_limit"):
            if Decimal(getattr(self, name)) < 0:
                problems.append(f"{name} must not be negative")
        if Decimal(self.growth_min) > Decimal(self.growth_max):
            problems.append("growth_min must not exceed growth_max")
        if not Decimal(self.grade_a_days) <= Decimal(self.grade_b_days) <= Decimal(self.grade_c_days):
            problems.append("grade day thresholds must rise from A to C")
        if set(self.standing) != set(GRADES):
            problems.append("standing factors are needed for A, B, C and D")
        if self.no_history_grade not in GRADES:
            problems.append("no_history_grade must be one of A-D")
        if Decimal(self.round_to) <= 0:
            problems.append("round_to must be positive")
        if problems:
            raise ValueError("; ".join(problems))


@dataclass(frozen=True)
class CreditInputs:
    """One customer's record over the 12 months before the quarter starts."""

    sales_12m: Decimal                 # invoiced (issued − red), VAT included
    sales_prior_12m: Decimal           # the 12 months before those
    late_weighted: Decimal = ZERO      # Σ amount × days late (payments, and what is overdue now)
    late_weight: Decimal = ZERO        # Σ amount of those


@dataclass(frozen=True)
class Assessment:
    limit: Decimal
    grade: str
    average_days_late: Decimal
    growth: Decimal
    growth_factor: Decimal
    standing_factor: Decimal

    def as_dict(self):
        return {"limit": str(self.limit), "grade": self.grade, "average_days_late": str(self.average_days_late),
                "growth": str(self.growth), "growth_factor": str(self.growth_factor),
                "standing_factor": str(self.standing_factor)}


def average_days_late(inputs):
    if inputs.late_weight <= 0:
        return Decimal("0.0")
    return (Decimal(inputs.late_weighted) / Decimal(inputs.late_weight)).quantize(Decimal("0.1"), ROUND_HALF_UP)


def grade(inputs, formula):
    """A–D from the payment record; a customer with no sales and no payments gets no_history_grade."""
    if inputs.sales_12m <= 0 and inputs.late_weight <= 0:
        return formula.no_history_grade
    days = average_days_late(inputs)
    if days <= formula.grade_a_days:
        return "A"
    if days <= formula.grade_b_days:
        return "B"
    if days <= formula.grade_c_days:
        return "C"
    return "D"


def growth_rate(inputs):
    """(S − S0) / S0; 0 when there is no prior year to compare with."""
    if inputs.sales_prior_12m <= 0:
        return Decimal("0.0000")
    return ((Decimal(inputs.sales_12m) - Decimal(inputs.sales_prior_12m)) / Decimal(inputs.sales_prior_12m)
            ).quantize(Decimal("0.0001"), ROUND_HALF_UP)


def assess(inputs, formula):
    """limit = floor_to(round_to, months × S / 12 × standing[grade] × clamp(1 + w × growth)), capped."""
    the_grade = grade(inputs, formula)
    growth = growth_rate(inputs)
    growth_factor = min(max(Decimal(1) + Decimal(formula.growth_weight) * growth, Decimal(formula.growth_min)),
                        Decimal(formula.growth_max)).quantize(Decimal("0.0001"), ROUND_HALF_UP)
    standing = Decimal(formula.standing[the_grade])
    raw = max(Decimal(inputs.sales_12m), Decimal(0)) / Decimal(12) * Decimal(formula.months_of_sales) \
        * standing * growth_factor
    step = Decimal(formula.round_to)
    limit = (raw / step).to_integral_value(rounding=ROUND_DOWN) * step
    limit = money(min(limit, Decimal(formula.max_limit)))
    return Assessment(limit, the_grade, average_days_late(inputs), growth, growth_factor, standing)


def effective_limit(formula_limit, manual_limit, manual_quarter, quarter):
    """Finance's manual limit holds for the quarter it was set in; then the formula's does."""
    if manual_limit is not None and manual_quarter == quarter:
        return money(manual_limit)
    return money(formula_limit or 0)


# -- credit reservations (FR-63, FR-65) ---------------------------------------------------------
OVERRIDE_ROLES = frozenset({"finance", "sales_director"})


def fits(limit, exposure, requested):
    """The credit check: exposure after the reservation stays within the limit."""
    return money(exposure) + money(requested) <= money(limit)


# -- who may do what (the gateway checks the same sets; a service never trusts its caller) -------
PERMISSIONS = {
    "set_credit_limit": frozenset({"finance"}),
    "recompute_credit": frozenset({"finance", "admin"}),
    "create_invoice": frozenset({"sales_rep", "sales_manager", "sales_director", "order_desk", "finance"}),
    "certify_invoice": frozenset({"sales_manager"}),
    "issue_invoice": frozenset({"finance"}),
    "cancel_invoice": frozenset({"sales_manager", "finance"}),
    "reverse_invoice": frozenset({"finance"}),
    "record_receipt": frozenset({"sales_rep", "order_desk", "finance"}),
    "confirm_receipt": frozenset({"finance"}),
    "allocate_receipt": frozenset({"sales_rep", "order_desk", "finance"}),
    "reverse_allocation": frozenset({"finance"}),
    "confirm_statement": frozenset({"sales_rep", "sales_manager", "order_desk", "finance"}),
}


def require_role(action, actor):
    allowed = PERMISSIONS[action]
    if actor.get("role") not in allowed:
        raise Forbidden(f"{action.replace('_', ' ')} is for {', '.join(sorted(allowed))}, not {actor.get('role')}",
                        action=action, allowed_roles=sorted(allowed))


# -- invoices (FR-81, FR-82) ---------------------------------------------------------------------
KINDS = ("special", "ordinary")
TRANSITIONS = {  # action: (from states, to state)
    "certify": (("draft",), "certified"),
    "issue": (("certified",), "issued"),
    "cancel": (("draft", "certified"), "cancelled"),
}


def transition(status, action, what="invoice"):
    sources, target = TRANSITIONS[action]
    if status not in sources:
        raise InvalidState(f"cannot {action} a {status} {what} (only {' or '.join(sources)})",
                           state=status, action=action)
    return target


def missing_tax_details(kind, tax_id, bank_account):
    """A special VAT invoice (专票) needs the buyer's tax id and bank account."""
    if kind != "special":
        return []
    missing = []
    if not tax_id:
        missing.append("tax_id")
    if not bank_account or not bank_account.get("bank_name") or not bank_account.get("account_no"):
        missing.append("bank_account")
    return missing


def invoiceable(quantity, returned, claimed, reversed_):
    """Units of a delivery line that may still go on a blue invoice: goods still with the
    customer less what stands invoiced."""
    return max(quantity - returned - (claimed - reversed_), 0)


def invoice_line(quantity, unit_price, vat_rate):
    amount = line_amount(quantity, unit_price)
    net, tax = split_vat(amount, vat_rate)
    return {"quantity": quantity, "unit_price": money(unit_price), "vat_rate": Decimal(vat_rate),
            "amount": amount, "net": net, "tax": tax}


def totals(lines):
    return {"total": sum((l["amount"] for l in lines), ZERO), "net_total": sum((l["net"] for l in lines), ZERO),
            "tax_total": sum((l["tax"] for l in lines), ZERO)}


def due_date(issued_on, payment_terms_days):
    return issued_on + timedelta(days=int(payment_terms_days))


def open_amount(total, reversed_amount, allocated_amount):
    return money(total) - money(reversed_amount) - money(allocated_amount)


def payment_status(total, reversed_amount, allocated_amount):
    open_ = open_amount(total, reversed_amount, allocated_amount)
    if open_ == 0:
        return "reversed" if money(reversed_amount) == money(total) else "paid"
    return "partially_paid" if money(allocated_amount) > 0 else "open"


# -- red-letter invoices (FR-95) -----------------------------------------------------------------
def reversal(line, quantity):
    """The red line reversing `quantity` units of a blue invoice line (a dict with quantity,
    unit_price, vat_rate, amount, net, tax and reversed_quantity / _amount / _net so far). Never
    above the original. Rounded cumulatively: after each part, the net reversed so far is what one
    reversal of all the units so far would be, round(reversed amount / (1 + rate), 2); so each part
    has 0 <= net <= amount and tax >= 0, and a line reversed in parts nets to exactly zero."""
    left = line["quantity"] - line["reversed_quantity"]
    if quantity <= 0 or quantity > left:
        raise ReversalExceedsOriginal(
            f"cannot reverse {quantity} of {line['sku']}: {left} of {line['quantity']} left to reverse",
            sku=line["sku"], requested=quantity, reversible=left)
    reversed_amount, reversed_net = money(line["reversed_amount"]), money(line["reversed_net"])
    if quantity == left:
        amount = money(line["amount"]) - reversed_amount
        net = money(line["net"]) - reversed_net
    else:
        amount = line_amount(quantity, line["unit_price"])
        net = split_vat(reversed_amount + amount, line["vat_rate"])[0] - reversed_net
    return {"quantity": quantity, "unit_price": money(line["unit_price"]), "vat_rate": Decimal(line["vat_rate"]),
            "amount": amount, "net": net, "tax": amount - net}


def return_reversals(quantity, returned_after, issued_claims):
    """What a return takes back from issued invoices on one delivery line.

    `issued_claims`: [(invoice_line_id, units still unreversed)] of the line's issued blue invoices,
    newest first. Units with the customer after the return = quantity − returned_after; whatever
    stands invoiced above that is reversed, newest invoice first. Returns [(invoice_line_id, units)].
    """
    with_customer = quantity - returned_after
    excess = sum(units for _, units in issued_claims) - with_customer
    plan = []
    for line_id, units in issued_claims:
        if excess <= 0:
            break
        take = min(units, excess)
        if take > 0:
            plan.append((line_id, take))
            excess -= take
    return plan


def deallocation(excess, allocations):
    """When a red invoice takes more than an invoice's open amount, the paid part it reverses goes
    back to the receipts as the customer's credit: allocations (newest first, [(id, amount)]) are
    reversed until `excess` is covered. Returns (ids to reverse, amount to allocate again to the
    invoice from the last receipt touched: what was reversed beyond the excess)."""
    excess = money(excess)
    reversed_ids, covered = [], ZERO
    for allocation_id, amount in allocations:
        if covered >= excess:
            break
        reversed_ids.append(allocation_id)
        covered += money(amount)
    if covered < excess:
        raise ValueError("allocations do not cover the excess")
    return reversed_ids, covered - excess


# -- allocation, 核销 (FR-86) --------------------------------------------------------------------
def check_allocations(receipt_unallocated, invoice_open, requested):
    """`requested`: [(invoice_id, amount)], each invoice once. Refuse, with the figures, any amount
    above an invoice's open amount or a sum above the receipt's unallocated amount."""
    total = sum((money(a) for _, a in requested), ZERO)
    over = [{"invoice_id": str(i), "requested": str(money(a)), "open": str(money(invoice_open[i]))}
            for i, a in requested if money(a) > money(invoice_open[i])]
    if over:
        raise OverAllocation(
            "an allocation exceeds the invoice's open amount: "
            + ", ".join(f"{o['invoice_id']} open {o['open']}, asked {o['requested']}" for o in over),
            invoices=over)
    if total > money(receipt_unallocated):
        raise OverAllocation(
            f"allocations of {total} exceed the receipt's unallocated {money(receipt_unallocated)}",
            requested=str(total), unallocated=str(money(receipt_unallocated)))
    return total


# -- statements (FR-87, FR-89) --------------------------------------------------------------------
STATEMENT_OUTCOMES = ("confirmed", "disputed")
CAMPAIGN_MONTHS = (6, 12)


def statement(opening, entries):
    """Opening + invoices − red invoices − receipts = closing. `entries`: dicts with kind
    (invoice | red_invoice | receipt) and a signed amount as the ledger holds it."""
    invoiced = sum((e["amount"] for e in entries if e["kind"] == "invoice"), ZERO)
    red = -sum((e["amount"] for e in entries if e["kind"] == "red_invoice"), ZERO)
    received = -sum((e["amount"] for e in entries if e["kind"] == "receipt"), ZERO)
    opening = money(opening)
    return {"opening": opening, "invoiced": invoiced, "red": red, "received": received,
            "closing": opening + invoiced - red - received}


def check_month_ended(month_end, today):
    """A statement is confirmed for a month that has ended."""
    if today < month_end:
        raise StatementPeriodOpen("the month has not ended yet: its statement can be confirmed from "
                                  f"{month_end.isoformat()}", month_end=month_end.isoformat())


def statement_transition(current, outcome):
    """none → confirmed | disputed; disputed → confirmed | disputed (resolved or still open);
    confirmed is final."""
    if current == "confirmed":
        raise InvalidState("the statement is already confirmed by the customer", state=current)
    return outcome


def check_campaign_month(month):
    start, _ = parse_month(month)
    if start.month not in CAMPAIGN_MONTHS:
        raise ValidationFailed("not a confirmation campaign month",
                               errors={"month": ["balance confirmation campaigns are for June and December"]})
    return start


# -- receivables aging and DSO (FR-91, FR-90) ----------------------------------------------------
BUCKETS = ("current", "days_1_30", "days_31_60", "days_61_90", "days_over_90")


def bucket(days_past_due):
    if days_past_due <= 0:
        return "current"
    if days_past_due <= 30:
        return "days_1_30"
    if days_past_due <= 60:
        return "days_31_60"
    if days_past_due <= 90:
        return "days_61_90"
    return "days_over_90"


def aging(items, as_of):
    """items: [(due_date, open amount)] → {bucket: amount, "total": amount}."""
    result = {name: ZERO for name in BUCKETS}
    for due, amount in items:
        result[bucket((as_of - due).days)] += money(amount)
    result["total"] = sum((result[name] for name in BUCKETS), ZERO)
    return result


def dso(receivable, sales, days):
    """Days sales outstanding: receivable / sales of the period × days in it; None without sales."""
    if money(sales) <= 0:
        return None
    return (money(receivable) / money(sales) * Decimal(days)).quantize(Decimal("0.1"), ROUND_HALF_UP)


def collection_rate(collected, invoiced):
    """collected / invoiced, 4 places; None when nothing was invoiced."""
    if money(invoiced) <= 0:
        return None
    return (money(collected) / money(invoiced)).quantize(Decimal("0.0001"), ROUND_HALF_UP)
