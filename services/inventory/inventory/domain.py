"""Warehouse rules, free of any framework: stock movements and the levels they move, allocation
of a request over document lines, reservations, loans, low stock, catalog prices, money, business
dates (REQUIREMENTS.md 1.G, FR-77–FR-80, FR-96, FR-98–FR-100, part 2 "inventory service").

Stock per SKU × warehouse has three counters, all kept non-negative:
  on_hand   the goods physically in the warehouse (reserved ones included)
  reserved  the part of on_hand held for orders
  on_loan   goods out with customers on loan (not in on_hand)
and `available = on_hand - reserved`. Every change is a movement of a kind below, whose deltas
are linear in its quantity, so the ledger of movements sums to the stored levels.
"""
from dataclasses import dataclass
from datetime import datetime, time, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal
from zoneinfo import ZoneInfo

from inventory.exceptions import (
    ActionNotAllowed, FloorAboveListPrice, LoanOverConversion, LoanOverReturn, LoanReturnMismatch,
)

TZ = ZoneInfo("Asia/Shanghai")
CENT = Decimal("0.01")
DEFAULT_VAT_RATE = Decimal("0.13")
DEFAULT_WARRANTY_MONTHS = 12

# -- movements ----------------------------------------------------------------------------------
# kind -> (on_hand, reserved, on_loan) change per unit moved
MOVEMENTS = {
    "receipt": (1, 0, 0),           # goods in from production or purchase (入库单)
    "reservation": (0, 1, 0),       # held for an order
    "release": (0, -1, 0),          # an order's hold given back (cancel, edit, expiry)
    "issue": (-1, -1, 0),           # goods out against a delivery note (出库单): consumes the hold
    "return_receipt": (1, 0, 0),    # goods back from a customer (红字出库单, FR-96)
    "loan_issue": (-1, 0, 1),       # goods out on loan (借出单, FR-98)
    "loan_return": (1, 0, -1),      # loaned goods back (借出归还单, FR-100)
    "loan_conversion": (0, 0, -1),  # loaned goods sold where they are (借出转换单, FR-99)
    "adjustment": (1, 0, 0),        # a counted correction, signed, with a reason
}


def deltas(kind, quantity):
    """(on_hand, reserved, on_loan) change of `quantity` units of a movement (signed quantity:
    a reversal moves a negative quantity of its original's kind)."""
    unit = MOVEMENTS[kind]
    return tuple(quantity * d for d in unit)


@dataclass(frozen=True)
class Level:
    on_hand: int = 0
    reserved: int = 0
    on_loan: int = 0

    @property
    def available(self):
        return self.on_hand - self.reserved

    @property
    def valid(self):
        return self.on_hand >= 0 and self.reserved >= 0 and self.on_loan >= 0 and self.reserved <= self.on_hand

    def after(self, kind, quantity):
        d_hand, d_reserved, d_loan = deltas(kind, quantity)
        return Level(self.on_hand + d_hand, self.reserved + d_reserved, self.on_loan + d_loan)


def crossed_below(threshold, before, after):
    """`stock.low` fires once, when availability falls below the SKU's threshold (0 = no alert)."""
    return bool(threshold) and before >= threshold > after


def ledger_mismatches(stored, ledger, held_for_orders, still_on_loan):
    """Compare the stored levels with what the books say. Each argument maps (sku, warehouse) to:
    stored / ledger: (on_hand, reserved, on_loan); held_for_orders: what active reservations still
    hold; still_on_loan: what open loans still have out. Returns the differences, one per item."""
    problems = []
    for key in sorted(set(stored) | set(ledger) | set(held_for_orders) | set(still_on_loan)):
        level = tuple(stored.get(key, (0, 0, 0)))
        books = tuple(ledger.get(key, (0, 0, 0)))
        held = held_for_orders.get(key, 0)
        out = still_on_loan.get(key, 0)
        found = []
        if level != books:
            found.append("stored levels differ from the movement ledger")
        if level[1] != held:
            found.append("reserved differs from what active reservations hold")
        if level[2] != out:
            found.append("on_loan differs from what open loans have out")
        if not Level(*level).valid:
            found.append("a level is negative or reserved exceeds on hand")
        if found:
            problems.append({
                "sku": key[0], "warehouse": key[1], "problems": found,
                "stored": dict(zip(("on_hand", "reserved", "on_loan"), level)),
                "ledger": dict(zip(("on_hand", "reserved", "on_loan"), books)),
                "held_for_orders": held, "still_on_loan": out,
            })
    return problems


# -- allocation of a requested quantity over document lines ---------------------------------------
def allocate(requested, candidates):
    """Spread `requested` units over `candidates` = [(key, remaining), ...] in their order.
    Returns ([(key, quantity), ...], shortfall); shortfall > 0 means not enough remains."""
    taken = []
    left = requested
    for key, remaining in candidates:
        if left <= 0:
            break
        quantity = min(left, max(remaining, 0))
        if quantity > 0:
            taken.append((key, quantity))
            left -= quantity
    return taken, left


def merge_quantities(lines, key=lambda line: line["sku"]):
    """Sum the quantities of lines with the same key, in key order (the order rows are locked in,
    so two transactions never wait on each other's rows crosswise)."""
    totals = {}
    for line in lines:
        totals[key(line)] = totals.get(key(line), 0) + line["quantity"]
    return sorted(totals.items())


def duplicates(values):
    seen, dup = set(), []
    for index, value in enumerate(values):
        if value in seen:
            dup.append(index)
        seen.add(value)
    return dup


# -- reservations -------------------------------------------------------------------------------
# held --order.confirmed--> committed --all issued--> consumed; held|committed --release--> released;
# held --hold time passed--> expired
ACTIVE_RESERVATION = ("held", "committed")


def hold_until(now, minutes):
    return now + timedelta(minutes=minutes)


def reservation_status_after_issue(lines):
    """`consumed` once every line is fully issued, else still `committed`."""
    return "consumed" if all(line["issued"] >= line["quantity"] for line in lines) else "committed"


def releasable(line):
    """What a release gives back on a reservation line: all but what was already issued."""
    return line["quantity"] - line["issued"]


# -- loans (FR-98–FR-100) --------------------------------------------------------------------------
@dataclass(frozen=True)
class LoanLine:
    """Invariant: lent = returned + converted + still out (still out never negative)."""

    sku: str
    lent: int
    returned: int = 0
    converted: int = 0

    @property
    def still_out(self):
        return self.lent - self.returned - self.converted

    @property
    def balanced(self):
        return self.returned >= 0 and self.converted >= 0 and self.still_out >= 0 and \
            self.lent == self.returned + self.converted + self.still_out


def check_loan_return(line, sku, quantity, counted):
    """FR-100: the quantity stated on a loan-return note must equal the goods counted, the goods
    must be those on the loan, and never more than is still out."""
    if line is None:
        raise LoanReturnMismatch(f"{sku} is not on this loan", sku=sku)
    if counted != quantity:
        raise LoanReturnMismatch(f"{sku}: {quantity} stated but {counted} counted", sku=sku,
                                 stated=quantity, counted=counted)
    if quantity > line.still_out:
        raise LoanOverReturn(f"{sku}: {quantity} returned but only {line.still_out} still out", sku=sku,
                             requested=quantity, still_out=line.still_out)


def check_loan_conversion(line, sku, quantity):
    if line is None:
        raise LoanOverConversion(f"{sku} is not on this loan", sku=sku, requested=quantity, still_out=0)
    if quantity > line.still_out:
        raise LoanOverConversion(f"{sku}: {quantity} to convert but only {line.still_out} still out", sku=sku,
                                 requested=quantity, still_out=line.still_out)


def loan_status(lines):
    """`out` while anything is still out, then `closed` (FR-100, FR-99)."""
    return "out" if any(line.still_out > 0 for line in lines) else "closed"


# -- catalog --------------------------------------------------------------------------------------
PRICE_FIELDS = ("list_price", "floor_price", "vat_rate")


def check_prices(product):
    if product["floor_price"] > product["list_price"]:
        raise FloorAboveListPrice(
            f"floor price {product['floor_price']} is above list price {product['list_price']}",
            errors={"floor_price": [f"must not be above the list price {product['list_price']}"]})


def apply_changes(product, changes):
    """(the product after `changes`, the names of the fields that really changed)."""
    after = dict(product)
    changed = []
    for name, value in changes.items():
        if after.get(name) != value:
            after[name] = value
            changed.append(name)
    check_prices(after)
    return after, changed


def price_changed(changed):
    return any(name in PRICE_FIELDS for name in changed)


# -- money (prices include VAT: API.md "Conventions") --------------------------------------------
def money(value):
    return Decimal(value).quantize(CENT, rounding=ROUND_HALF_UP)


def line_amount(quantity, unit_price):
    return money(Decimal(quantity) * Decimal(unit_price))


# -- roles the service itself insists on (the gateway checks them first) -------------------------
CATALOG_MANAGERS = frozenset({"admin", "product_manager"})
STOCK_KEEPERS = frozenset({"admin", "warehouse"})


def require_role(actor, roles, what):
    if actor.get("role") not in roles:
        raise ActionNotAllowed(f"a {actor.get('role')} may not {what}", allowed_roles=sorted(roles))


# -- business time (Asia/Shanghai) ----------------------------------------------------------------
# Gap-free per-year numbers (uow.next_number): DN-2026-000001 ...
DOCUMENT_PREFIXES = {
    "delivery": "DN",          # delivery note 发货单
    "goods_issue": "GI",       # goods issue 出库单
    "goods_receipt": "GR",     # goods receipt 入库单
    "adjustment": "ADJ",       # stock adjustment
    "return_receipt": "RT",    # return receipt, the red outbound 红字出库单
    "loan_issue": "LO",        # loan issue 借出出库
    "loan_return": "LR",       # loan return 借出归还单
}
REVERSIBLE = {"goods_receipt": "receipt", "adjustment": "adjustment"}  # document kind -> movement kind


def business_year(moment):
    """The year a document is numbered in: its Asia/Shanghai date's."""
    return moment.astimezone(TZ).year


def period_bounds(start, end):
    """Asia/Shanghai dates `start`..`end` (both included) as a UTC [from, to) range."""
    begin = datetime.combine(start, time.min, tzinfo=TZ).astimezone(timezone.utc)
    finish = datetime.combine(end + timedelta(days=1), time.min, tzinfo=TZ).astimezone(timezone.utc)
    return begin, finish


REPORT_GROUPS = {  # group_by -> the snapshot or line column the figures are grouped on
    "rep": "owner_id",
    "team": "owner_team",
    "region": "region",
    "product": "sku",
    "customer": "customer_id",
}
