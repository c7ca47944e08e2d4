"""Sales-desk rules, free of any framework: pricing authority and the approvals it calls for
(FR-42–FR-48), the state machines of quotes, contracts, orders, returns and loans, the order
saga's decisions, returns and loan quantities (FR-93, FR-98–FR-100), quota periods (FR-67) and
the arithmetic of targets (FR-112–FR-118). Standard library and the service's own errors only.
"""
from dataclasses import dataclass
from datetime import date, datetime, timezone
from decimal import ROUND_HALF_UP, Decimal
from zoneinfo import ZoneInfo

from order.exceptions import (
    ApprovalRequired, InvalidState, LoanQuantityMismatch, PriceBelowFloor, ReturnExceedsDelivered, UnknownProduct,
    ValidationFailed,
)

CENT = Decimal("0.01")
ZERO = Decimal("0.00")
TZ = ZoneInfo("Asia/Shanghai")  # business dates (quote validity, quota months, periods)


def money(value):
    return Decimal(str(value)).quantize(CENT, rounding=ROUND_HALF_UP)


def business_date(moment):
    """The Asia/Shanghai date of an aware datetime."""
    return moment.astimezone(TZ).date()


def utcnow():
    return datetime.now(timezone.utc)


# -- org-chart relations an approval step names (customer.find_approver) ----------------------
DIRECT_MANAGER = "direct_manager"
DIVISION_HEAD = "division_head"
MARKETING_DIRECTOR = "marketing_director"
PRODUCT_MANAGER = "product_manager"


@dataclass(frozen=True)
class Approval:
    """One approval a document needs: who gives it (an org-chart relation), the role expected of
    them, and the rule that calls for it."""

    relation: str
    role: str
    reason: str


# -- pricing --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Authority:
    """What a staff member may grant alone (customer.get_staff): `discount_authority` is the
    fraction below list they may give; `price_authority` the lowest ratio of list they may sign
    without it being a major contract (FR-48)."""

    discount_authority: Decimal
    price_authority: Decimal


@dataclass(frozen=True)
class PricedLine:
    line_no: int
    sku: str
    name: str
    quantity: int
    unit_price: Decimal
    list_price: Decimal
    floor_price: Decimal
    vat_rate: Decimal

    @property
    def amount(self):
        return money(self.quantity * self.unit_price)

    @property
    def ratio(self):
        """unit price / list price (1 when the list price is 0)."""
        return Decimal(1) if self.list_price == 0 else self.unit_price / self.list_price

    @property
    def discount(self):
        return Decimal(1) - self.ratio

    @property
    def below_list(self):
        return self.unit_price < self.list_price

    @property
    def below_floor(self):
        return self.unit_price < self.floor_price


def price_lines(lines, price_list, field="lines"):
    """The lines priced from the price list: `unit_price` defaults to the list price. An unknown or
    inactive SKU is a 422 naming the line."""
    priced, errors = [], {}
    for index, line in enumerate(lines):
        product = price_list.get(line["sku"])
        if product is None or not product.get("active", True):
            errors[f"{field}.{index}.sku"] = ["no such product in the price list"]
            continue
        unit_price = line.get("unit_price")
        priced.append(PricedLine(
            line_no=index + 1, sku=line["sku"], name=product.get("name") or line["sku"],
            quantity=int(line["quantity"]),
            unit_price=money(product["list_price"] if unit_price is None else unit_price),
            list_price=money(product["list_price"]), floor_price=money(product["floor_price"]),
            vat_rate=Decimal(str(product["vat_rate"])),
        ))
    if errors:
        raise UnknownProduct("a line names a product that is not in the price list", errors=errors)
    return priced


def total_of(lines):
    return money(sum((line.amount for line in lines), ZERO))


def required_approvals(lines, authority, major_amount):
    """The approvals a priced document needs, in order (issue 5, FR-45–FR-48):
    every price within the requester's discount authority → none; beyond it but at or above the
    floor → the direct manager; below the floor → the direct manager, then the sales head of the
    requester's division (FR-46); any price below the requester's price authority, or a total above
    the major-contract amount → also the marketing director (FR-48)."""
    needed = []
    if any(line.below_floor for line in lines):
        needed.append(Approval(DIRECT_MANAGER, "sales_manager", "a price below the floor price (FR-46)"))
        needed.append(Approval(DIVISION_HEAD, "sales_director", "a price below the floor price (FR-46)"))
    elif any(line.discount > authority.discount_authority for line in lines):
        needed.append(Approval(DIRECT_MANAGER, "sales_manager",
                               "a discount beyond the requester's authority (FR-45)"))
    major = []
    if any(line.ratio < authority.price_authority for line in lines):
        major.append("a price below the requester's price authority")
    if total_of(lines) > major_amount:
        major.append(f"a total above the major-contract amount {money(major_amount)}")
    if major:
        needed.append(Approval(MARKETING_DIRECTOR, "marketing_director",
                               "major contract: " + " and ".join(major) + " (FR-48)"))
    return needed


def is_major(lines, authority, major_amount):
    return any(a.relation == MARKETING_DIRECTOR for a in required_approvals(lines, authority, major_amount))


def check_order_prices(lines, major_amount, quote_lines=None):
    """An order without a quote must be at list price or above and not a major amount (else an
    approved quote is needed: 409 APPROVAL_REQUIRED, or PRICE_BELOW_FLOOR below the floor). With a
    quote, every line must be covered by it: a quoted SKU, at or above the quoted price, not more
    than the quoted quantity."""
    if quote_lines is None:
        for line in lines:
            if line.below_floor:
                raise PriceBelowFloor(
                    f"{line.sku} at {line.unit_price} is below the floor price {line.floor_price}: "
                    "it needs a quote approved by the direct manager and the sales head (FR-46)",
                    sku=line.sku, unit_price=str(line.unit_price), floor_price=str(line.floor_price))
        below = [line.sku for line in lines if line.below_list]
        if below:
            raise ApprovalRequired(f"prices below list for {', '.join(below)} need an approved quote",
                                   skus=below)
        if total_of(lines) > major_amount:
            raise ApprovalRequired(f"an order above {money(major_amount)} is a major contract: it needs an "
                                   "approved quote (FR-48)")
        return
    quoted = {}
    for line in quote_lines:
        entry = quoted.setdefault(line["sku"], {"quantity": 0, "unit_price": money(line["unit_price"])})
        entry["quantity"] += int(line["quantity"])
        entry["unit_price"] = min(entry["unit_price"], money(line["unit_price"]))
    ordered = {}
    for line in lines:
        entry = quoted.get(line.sku)
        if entry is None:
            raise ApprovalRequired(f"{line.sku} is not on the quote", sku=line.sku)
        if line.unit_price < entry["unit_price"]:
            raise ApprovalRequired(f"{line.sku} at {line.unit_price} is below the quoted {entry['unit_price']}",
                                   sku=line.sku)
        ordered[line.sku] = ordered.get(line.sku, 0) + line.quantity
        if ordered[line.sku] > entry["quantity"]:
            raise ApprovalRequired(f"{line.sku}: {ordered[line.sku]} is more than the quoted {entry['quantity']}",
                                   sku=line.sku)


# -- state machines -------------------------------------------------------------------------------
QUOTE_MACHINE = {  # action: (from, to); "submit" and "decide" land where the approvals say
    "edit": ({"draft", "pending_approval", "approved", "sent"}, "draft"),
    "submit": ({"draft"}, None),
    "decide": ({"pending_approval"}, None),
    "send": ({"approved"}, "sent"),
    "accept": ({"approved", "sent"}, "accepted"),
    "decline": ({"approved", "sent"}, "rejected"),
    "cancel": ({"draft", "pending_approval", "approved", "sent"}, "cancelled"),
    "expire": ({"draft", "pending_approval", "approved", "sent"}, "expired"),
}
CONTRACT_MACHINE = {
    "edit": ({"draft"}, "draft"),
    "submit": ({"draft"}, None),
    "decide": ({"in_approval"}, None),
    "sign": ({"approved"}, None),
    "register": ({"signed"}, "effective"),
    "complete": ({"signed", "effective"}, "completed"),
    "terminate": ({"draft", "in_approval", "approved", "signed", "effective"}, "terminated"),
}
RETURN_MACHINE = {
    "decide": ({"requested"}, None),
    "receive": ({"approved"}, "received"),
}
LOAN_MACHINE = {
    "decide": ({"pending_approval"}, None),
    "issue": ({"approved"}, "lent"),
    "return": ({"lent"}, None),
    "convert": ({"lent"}, None),
}
ORDER_STATUSES = ("draft", "confirming", "credit_hold", "confirmed", "partially_shipped", "shipped", "invoiced",
                  "paid", "closed", "cancelled")
ORDER_CANCELLABLE = ("draft", "credit_hold", "confirmed")
QUOTE_OPEN = QUOTE_MACHINE["cancel"][0]


def check(machine, kind, status, action):
    """The state `action` leads to from `status` (None: decided by the caller), or 409 INVALID_STATE."""
    allowed, target = machine[action]
    if status not in allowed:
        raise InvalidState(f"a {kind} that is {status} cannot be {_verb(action)}", current_status=status,
                           action=action)
    return target


def _verb(action):
    return {"edit": "edited", "submit": "submitted", "decide": "approved or rejected", "send": "sent",
            "accept": "accepted", "decline": "declined", "cancel": "cancelled", "expire": "expired",
            "sign": "signed", "register": "registered", "complete": "completed", "terminate": "terminated",
            "receive": "received", "issue": "issued", "return": "returned", "convert": "converted"}.get(action, action)


def after_approvals(kind, outcome):
    """The document's status once its approval chain has this outcome."""
    return {
        "quote": {"approved": "approved", "rejected": "draft", "pending": "pending_approval"},
        "contract": {"approved": "approved", "rejected": "draft", "pending": "in_approval"},
        "return": {"approved": "approved", "rejected": "rejected", "pending": "requested"},
        "loan": {"approved": "approved", "rejected": "rejected", "pending": "pending_approval"},
    }[kind][outcome]


def quote_content(quote, lines):
    """What a quote's approvals are bound to: any change here voids them."""
    return {"customer_id": str(quote["customer_id"]), "valid_until": str(quote["valid_until"]),
            "notes": quote.get("notes"),
            "lines": [{"sku": l["sku"], "quantity": int(l["quantity"]), "unit_price": money(l["unit_price"])}
                      for l in lines]}


def contract_content(contract):
    return {"customer_id": str(contract["customer_id"]), "total": money(contract["total"]),
            "lines": [{"sku": l["sku"], "quantity": int(l["quantity"]), "unit_price": money(l["unit_price"])}
                      for l in contract["lines"]],
            "terms": contract["terms"]}


def loan_content(loan, lines):
    return {"customer_id": str(loan["customer_id"]), "due_date": str(loan["due_date"]),
            "lines": [{"sku": l["sku"], "quantity": int(l["quantity"])} for l in lines]}


def return_content(ret, lines):
    return {"delivery_id": str(ret["delivery_id"]), "reason": ret["reason"],
            "lines": [{"delivery_line_id": str(l["delivery_line_id"]), "quantity": int(l["quantity"])}
                      for l in lines]}


def quote_expired(valid_until, as_of):
    return valid_until < business_date(as_of)


# -- contracts (FR-50–FR-59) ----------------------------------------------------------------------
CONTRACT_TERMS = ("service_terms", "payment_terms", "delivery_terms")


def contract_needed(total, major, contract_amount):
    """A quote's acceptance raises a contract for an amount at or above `contract_amount`, or a
    major contract (FR-48, FR-50)."""
    return major or money(total) >= money(contract_amount)


def contract_approvals(major):
    """The company approves every contract through the sales head (FR-52); a major contract also
    needs the marketing director before it can be signed (FR-48)."""
    needed = [Approval(DIVISION_HEAD, "sales_director", "the company's approval of the contract (FR-52)")]
    if major:
        needed.append(Approval(MARKETING_DIRECTOR, "marketing_director", "major contract (FR-48)"))
    return needed


def missing_terms(terms):
    """FR-51/FR-56: a contract states its service terms (free modifications or how services are
    charged), payment and delivery terms, completely."""
    return {f"terms.{name}": ["the contract must state this"] for name in CONTRACT_TERMS
            if not (terms or {}).get(name) or not str(terms[name]).strip()}


def after_signature(customer_signed, company_signed):
    """FR-58: a contract is signed only with both signatures; until then it stays approved."""
    return "signed" if customer_signed and company_signed else "approved"


# -- the order after confirmation -----------------------------------------------------------------
_RANK = {status: rank for rank, status in enumerate(
    ("confirmed", "partially_shipped", "shipped", "invoiced", "paid", "closed"))}


def order_progress(status, lines, invoices):
    """Where an order stands from what the events told it, never moving backwards.

    `lines`: [{"quantity", "shipped_quantity", "returned_quantity", "invoiced_quantity"}];
    `invoices`: [{"settled": bool, "open_amount": Decimal}] (red-letter reversals already netted)."""
    if status not in _RANK:
        return status
    shipped_any = any(l["shipped_quantity"] > 0 for l in lines)
    shipped_all = bool(lines) and all(l["shipped_quantity"] >= l["quantity"] for l in lines)
    invoiced_all = shipped_all and bool(invoices) and all(
        l["invoiced_quantity"] >= l["shipped_quantity"] - l["returned_quantity"] for l in lines)
    paid = invoiced_all and all(inv["settled"] for inv in invoices)
    target = "confirmed"
    if shipped_any:
        target = "partially_shipped"
    if shipped_all:
        target = "shipped"
    if invoiced_all:
        target = "invoiced"
    if paid:
        target = "paid"
    return target if _RANK[target] > _RANK[status] else status


# -- the order saga -------------------------------------------------------------------------------
PENDING, RESERVED, REFUSED, UNKNOWN, RELEASED, KEPT, EXPIRED = (
    "pending", "reserved", "refused", "unknown", "released", "kept", "expired")


def saga_outcome(stock, credit):
    """What the confirmation does once both legs answered (DESIGN.md §3):
    stock refused → `stock_short` (release the credit; 409 INSUFFICIENT_STOCK); a leg that did not
    answer → `error` (release both); both reserved → `confirm`; credit refused → `credit_hold`."""
    if stock == REFUSED:
        return "stock_short"
    if UNKNOWN in (stock, credit) or PENDING in (stock, credit):
        return "error"
    if stock in (RESERVED, KEPT) and credit == RESERVED:
        return "confirm"
    if stock in (RESERVED, KEPT) and credit == REFUSED:
        return "credit_hold"
    return "error"


def may_resume(started_at, as_of, window_seconds):
    """A saga interrupted by a crash is resumed while young enough, else compensated."""
    return (as_of - started_at).total_seconds() <= window_seconds


# -- returns (FR-93) ------------------------------------------------------------------------------
def plan_return(requested, delivery_lines, pending):
    """Map the requested `[{"sku", "quantity"}]` onto the delivery's lines; never more than delivered
    less returned less already requested (`pending`: delivery_line_id → quantity in open returns).
    Returns [{"delivery_line_id", "order_id", "order_line_id", "sku", "quantity", "unit_price"}]."""
    planned, errors = [], {}
    wanted = {}
    for index, line in enumerate(requested):
        wanted.setdefault(line["sku"], [0, index])[0] += int(line["quantity"])
    for sku, (quantity, index) in wanted.items():
        candidates = [dl for dl in delivery_lines if dl["sku"] == sku]
        if not candidates:
            errors[f"lines.{index}.sku"] = ["not on this delivery"]
            continue
        available = {dl["delivery_line_id"]: dl["quantity"] - dl["returned_quantity"]
                     - pending.get(str(dl["delivery_line_id"]), 0) for dl in candidates}
        returnable = sum(max(v, 0) for v in available.values())
        if quantity > returnable:
            raise ReturnExceedsDelivered(
                f"{sku}: {quantity} requested, but only {returnable} delivered and not yet returned or requested",
                sku=sku, requested=quantity, returnable=returnable)
        left = quantity
        for dl in candidates:
            take = min(left, max(available[dl["delivery_line_id"]], 0))
            if take:
                planned.append({"delivery_line_id": dl["delivery_line_id"], "order_id": dl["order_id"],
                                "order_line_id": dl["order_line_id"], "sku": sku, "quantity": take,
                                "unit_price": dl["unit_price"]})
                left -= take
    if errors:
        raise ValidationFailed("a line names a product that is not on this delivery", errors=errors)
    return planned


# -- loans (FR-98–FR-100) ---------------------------------------------------------------------------
def out_on_loan(line):
    return line["issued_quantity"] - line["returned_quantity"] - line["converted_quantity"]


def check_loan_movement(requested, loan_lines, what):
    """Returned or converted quantities must match what is out, SKU by SKU (FR-100)."""
    by_sku = {l["sku"]: l for l in loan_lines}
    totals = {}
    for line in requested:
        totals[line["sku"]] = totals.get(line["sku"], 0) + int(line["quantity"])
    for sku, quantity in totals.items():
        line = by_sku.get(sku)
        out = out_on_loan(line) if line else 0
        if quantity > out:
            raise LoanQuantityMismatch(f"{sku}: {quantity} to be {what}, but {out} out on loan",
                                       sku=sku, requested=quantity, out=out)
    return totals


def loan_status_after(lines):
    """`lent` while anything is out; then `returned`, `converted` or `closed` (some of each)."""
    if any(out_on_loan(l) > 0 for l in lines):
        return "lent"
    returned = sum(l["returned_quantity"] for l in lines)
    converted = sum(l["converted_quantity"] for l in lines)
    if converted == 0:
        return "returned"
    return "converted" if returned == 0 else "closed"


# -- quotas (FR-67) and periods (FR-112–FR-118) -----------------------------------------------------
@dataclass(frozen=True)
class Period:
    text: str
    kind: str  # year | quarter | month
    start: date
    end: date  # exclusive

    def contains(self, other):
        return self.start <= other.start and other.end <= self.end


def parse_period(text, field="period"):
    """`2026`, `2026-Q4` or `2026-10`; anything else is a 422 naming the field."""
    try:
        if len(text) == 4 and text.isdigit():
            year = int(text)
            return Period(text, "year", date(year, 1, 1), date(year + 1, 1, 1))
        year_text, _, part = text.partition("-")
        year = int(year_text)
        if len(year_text) == 4 and part[:1] == "Q" and part[1:] in ("1", "2", "3", "4"):
            quarter = int(part[1:])
            start = date(year, 3 * quarter - 2, 1)
            end = date(year + 1, 1, 1) if quarter == 4 else date(year, 3 * quarter + 1, 1)
            return Period(text, "quarter", start, end)
        if len(year_text) == 4 and len(part) == 2 and part.isdigit() and 1 <= int(part) <= 12:
            month = int(part)
            end = date(year + 1, 1, 1) if month == 12 else date(year, month + 1, 1)
            return Period(text, "month", date(year, month, 1), end)
    except (ValueError, TypeError):
        pass
    raise ValidationFailed(f"{text!r} is not a period", errors={field: ["a year (2026), quarter (2026-Q4) "
                                                                      "or month (2026-10)"]})


def quota_month(moment):
    """The quota period an order falls in: its confirmation month in Asia/Shanghai."""
    return business_date(moment).strftime("%Y-%m")


TARGET_SCOPES = ("rep", "team", "region", "product", "customer")


def check_child_target(child_period, parent_period):
    if not parent_period.contains(child_period):
        raise ValidationFailed(f"{child_period.text} is not within the parent's period {parent_period.text}",
                               errors={"period": [f"must lie within {parent_period.text}"]})


def breakdown_mismatches(targets):
    """Every target whose children (targets naming it as parent) do not sum to its amount, with
    the difference (FR-113, FR-118). `targets`: [{"id", "parent_id", "amount", ...}]."""
    children = {}
    for target in targets:
        if target.get("parent_id") is not None:
            children.setdefault(str(target["parent_id"]), []).append(target)
    mismatches = []
    for target in targets:
        kids = children.get(str(target["id"]))
        if not kids:
            continue
        total = money(sum((money(k["amount"]) for k in kids), ZERO))
        if total != money(target["amount"]):
            mismatches.append({"target_id": str(target["id"]), "period": target["period"], "scope": target["scope"],
                               "scope_id": target["scope_id"], "amount": str(money(target["amount"])),
                               "children_total": str(total),
                               "difference": str(money(target["amount"]) - total)})
    return mismatches
