"""After-sales rules, free of any framework (REQUIREMENTS 1.K: FR-97, FR-101–FR-108).

Standard library only (and this service's own exceptions). Calendar arithmetic (working hours on
the Chinese calendar) is passed in by the caller, so the rules stay pure and testable.

A service request:

    open --confirm (sales manager, FR-102)--> confirmed --assign (engineer)--> assigned
    assigned --start / first repair step--> in_progress ; assigned|in_progress --assign--> (re-assigned)
    assigned|in_progress --resolve (the assigned engineer, FR-103)--> resolved
    resolved --feedback (rating 1-5, FR-107)--> closed

Escalation (FR-104) is a mark on an unresolved request past its `due_at`, not a status: the
request keeps being worked while the owning rep's sales manager coordinates.

A repair (FR-97), type `repair` only:

    received --diagnose--> diagnosing --quote (out of warranty only)--> quoted
    quoted --approve--> approved --start--> repairing ; diagnosing --start (in warranty only)--> repairing
    repairing --complete--> repaired --return--> returned ; quoted --decline--> declined --return--> returned
"""
import calendar
import uuid
from datetime import date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal

from aftersales.exceptions import (
    ActionNotAllowed, DeliveryRequired, EngineerNotAssigned, InvalidState, InWarranty, NotARepair,
    ProductNotDelivered, QuantityExceedsDelivered, QuoteRequired, RepairNotFinished,
)

TYPES = ("repair", "replacement", "return", "complaint", "training", "consultation")
PRIORITIES = ("low", "normal", "high", "urgent")
STATUSES = ("open", "confirmed", "assigned", "in_progress", "resolved", "closed")
UNRESOLVED = ("open", "confirmed", "assigned", "in_progress")
ACTIONS = ("repair", "replacement", "return", "advice")
# Types about a unit the customer has: they name the delivery it came from.
PRODUCT_BOUND = ("repair", "replacement", "return")
# Actions carried out by another department, and the RPC that starts each there.
ACTION_TARGETS = {"return": "order.request_return", "replacement": "order.create_replacement"}
REPAIR_STATUSES = ("received", "diagnosing", "quoted", "approved", "declined", "repairing", "repaired", "returned")
REPAIR_STEPS = ("receive", "diagnose", "quote", "approve", "decline", "start", "complete", "return")
REPORT_GROUPS = ("rep", "team", "region", "product", "customer", "engineer")

# Who may take which step (the gateway checks the same sets; a service never trusts its caller).
OPENERS = frozenset({"sales_rep", "sales_manager", "sales_director", "general_manager", "order_desk", "admin",
                     "integration"})
CONFIRMERS = frozenset({"sales_manager"})  # FR-102
ASSIGNERS = frozenset({"sales_manager", "service_engineer"})
FEEDBACK_RECORDERS = frozenset({"sales_rep", "sales_manager", "sales_director", "general_manager", "order_desk",
                                "admin", "integration"})  # the customer's side, never the engineer
QUOTE_DECIDERS = frozenset({"sales_rep", "sales_manager", "sales_director"})  # relay the customer's answer

# SLA: working hours (09:00-18:00 on Chinese working days, so 9 h = one working day) from opening
# to resolution, by type and priority. config.yaml `AFTERSALES.SLA_HOURS` holds the table in use.
DEFAULT_SLA_HOURS = {
    "repair": {"urgent": 9, "high": 18, "normal": 45, "low": 90},
    "replacement": {"urgent": 9, "high": 18, "normal": 45, "low": 90},
    "return": {"urgent": 9, "high": 18, "normal": 27, "low": 45},
    "complaint": {"urgent": 4, "high": 9, "normal": 18, "low": 36},
    "training": {"urgent": 18, "high": 45, "normal": 90, "low": 180},
    "consultation": {"urgent": 2, "high": 4, "normal": 9, "low": 18},
}

_ACTION_NAMESPACE = uuid.UUID("6d0f8e2a-3c55-5c1e-9b7e-2f4a8f6c1d01")

_FLOW = {  # step: (statuses it may start from, status it leads to; None = decided below)
    "confirm": (("open",), "confirmed"),
    "assign": (("confirmed", "assigned", "in_progress"), None),
    "start": (("assigned",), "in_progress"),
    "repair_step": (("assigned", "in_progress"), "in_progress"),
    "resolve": (("assigned", "in_progress"), "resolved"),
    "feedback": (("resolved",), "closed"),
}
_REFUSALS = {
    "confirm": "only an open request is confirmed",
    "assign": "a request is assigned once the sales manager has confirmed it (FR-102), until it is resolved",
    "start": "work starts on an assigned request",
    "repair_step": "repair steps are taken on an assigned request until it is resolved",
    "resolve": "a request is resolved once it is assigned to an engineer, and only once",
    "feedback": "feedback is recorded once the request is resolved, and only once (FR-107)",
}

_REPAIR_FLOW = {
    "receive": ((None,), "received"),
    "diagnose": (("received",), "diagnosing"),
    "quote": (("diagnosing",), "quoted"),
    "approve": (("quoted",), "approved"),
    "decline": (("quoted",), "declined"),
    "start": (("diagnosing", "approved"), "repairing"),
    "complete": (("repairing",), "repaired"),
    "return": (("repaired", "declined"), "returned"),
}


# -- the request's life ------------------------------------------------------------------------
def allowed_from(step):
    return _FLOW[step][0]


def next_status(step, status):
    """The status `step` leads to from `status`, or InvalidState naming both."""
    sources, target = _FLOW[step]
    if status not in sources:
        raise InvalidState(f"cannot {step.replace('_', ' ')} a request that is {status}: {_REFUSALS[step]}",
                           current_status=status, allowed_from=list(sources))
    if step == "assign":
        return "in_progress" if status == "in_progress" else "assigned"
    return target


def require_role(actor, roles, what):
    if actor["role"] not in roles:
        raise ActionNotAllowed(f"{what} is for {', '.join(sorted(roles))}, not {actor['role']}",
                               role=actor["role"])


def is_assigned_engineer(actor, request):
    return (actor["role"] == "service_engineer" and request.get("engineer_id") is not None
            and str(request["engineer_id"]) == str(actor["staff_id"]))


def require_assigned_engineer(actor, request, what):
    """FR-103: the engineer a request is assigned to works and resolves it, nobody else."""
    if not is_assigned_engineer(actor, request):
        raise EngineerNotAssigned(
            f"only the engineer the request is assigned to may {what}"
            + ("" if request.get("engineer_id") else "; it is not assigned yet"),
            engineer_id=str(request["engineer_id"]) if request.get("engineer_id") else None)


# -- what was delivered ------------------------------------------------------------------------
def check_delivered(sku, delivery_id, lines):
    """The delivery a request names, checked against what goods.issued says reached the customer.

    `lines`: the customer's delivered lines of `sku` (`delivery_id`, `delivery_number`, `quantity`,
    `issued_at`). Returns `{"delivery_id", "delivery_number", "delivered_at", "quantity"}` for the
    named delivery, None when none is named; ProductNotDelivered when it did not reach them."""
    if not lines:
        raise ProductNotDelivered(f"{sku} was never delivered to this customer",
                                  errors={"sku": ["this product was never delivered to this customer"]}, sku=sku)
    if delivery_id is None:
        return None
    on_delivery = [line for line in lines if str(line["delivery_id"]) == str(delivery_id)]
    if not on_delivery:
        raise ProductNotDelivered(
            f"delivery {delivery_id} did not bring {sku} to this customer",
            errors={"delivery_id": [f"this delivery did not bring {sku} to this customer"]},
            sku=sku, delivery_id=str(delivery_id))
    return {
        "delivery_id": on_delivery[0]["delivery_id"],
        "delivery_number": on_delivery[0].get("delivery_number"),
        "delivered_at": min(line["issued_at"] for line in on_delivery),
        "quantity": sum(line["quantity"] for line in on_delivery),
    }


# -- warranty (FR-97, FR-101) --------------------------------------------------------------------
def add_months(day, months):
    """The same day `months` later, clamped to the month's last day (31 Jan + 1 = 28/29 Feb)."""
    index = day.month - 1 + months
    year, month = day.year + index // 12, index % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def warranty_until(delivered_on, months):
    """The last day under warranty: the day before the delivery's `months`-th monthly anniversary."""
    if delivered_on is None or months is None:
        return None
    return add_months(delivered_on, months) - timedelta(days=1)


def in_warranty(claim_on, delivered_on, months):
    until = warranty_until(delivered_on, months)
    return until is not None and claim_on <= until


# -- SLA (FR-104) ----------------------------------------------------------------------------
def check_sla_table(table):
    """The SLA table with every type x priority a positive number of hours; ValueError naming the
    first cell that is missing or wrong."""
    checked = {}
    for type_ in TYPES:
        row = (table or {}).get(type_)
        if not isinstance(row, dict):
            raise ValueError(f"SLA_HOURS has no row for {type_!r}")
        checked[type_] = {}
        for priority in PRIORITIES:
            hours = row.get(priority)
            if isinstance(hours, bool) or not isinstance(hours, (int, float)) or not 0 < hours <= 2000:
                raise ValueError(f"SLA_HOURS.{type_}.{priority} must be hours between 0 and 2000, not {hours!r}")
            checked[type_][priority] = hours
    unknown = set(table) - set(TYPES)
    if unknown:
        raise ValueError(f"SLA_HOURS has unknown types {sorted(unknown)}")
    return checked


def due_at(opened_at, type_, priority, table, add_working_hours):
    """When the request must be resolved: `table[type][priority]` working hours after opening."""
    return add_working_hours(opened_at, table[type_][priority])


def is_overdue(status, due, now):
    return status in UNRESOLVED and due < now


def sla_met(resolved_at, due):
    return resolved_at <= due


def needs_escalation(request, as_of):
    """FR-104: unresolved, past due and not escalated yet (a request escalates once)."""
    return request["status"] in UNRESOLVED and request["escalated_at"] is None and request["due_at"] < as_of


# -- repairs (FR-97) ---------------------------------------------------------------------------
def require_repair(request):
    if request["type"] != "repair":
        raise NotARepair(f"repair steps belong to repair requests; this one is a {request['type']}",
                         type=request["type"])


def next_repair_status(step, current, under_warranty):
    sources, target = _REPAIR_FLOW[step]
    if current not in sources:
        raise InvalidState(
            f"cannot {step} a repair that is {current or 'not received yet'}",
            repair_status=current, allowed_from=[s for s in sources if s is not None] or ["(not received)"])
    if step == "quote" and under_warranty:
        raise InWarranty("the unit is under warranty: the repair is free and is not quoted")
    if step == "start" and current == "diagnosing" and not under_warranty:
        raise QuoteRequired("the unit is out of warranty: quote the repair and have the customer approve it first")
    return target


def check_repair_actor(step, actor, request):
    """Technical steps are the assigned engineer's; the customer's answer to a quote may also be
    relayed by the sales side (the owner's rep or manager, whose scope already admitted them)."""
    if step in ("approve", "decline") and actor["role"] in QUOTE_DECIDERS:
        return
    require_assigned_engineer(actor, request, f"{step} the repair")


# -- resolution ------------------------------------------------------------------------------
def check_resolution(request, action, quantity, repair, delivered_quantity):
    """What a resolution needs: a repair is finished and back with the customer; a return or a
    replacement names a delivery and no more units than it brought."""
    if action == "repair":
        if request["type"] != "repair":
            raise NotARepair(f"a {request['type']} request is not resolved by a repair", type=request["type"])
        if repair is None or repair["status"] != "returned" or not repair["repaired"]:
            raise RepairNotFinished(
                "the repaired unit must be back with the customer first (repair status: "
                f"{repair['status'] if repair else 'not received'})",
                repair_status=repair["status"] if repair else None)
    if action in ACTION_TARGETS:
        if request.get("delivery_id") is None:
            raise DeliveryRequired(f"a {action} needs the delivery the product came from; this request names none")
        if quantity > (delivered_quantity or 0):
            raise QuantityExceedsDelivered(
                f"{quantity} to {action} but that delivery brought {delivered_quantity or 0}",
                errors={"quantity": [f"at most {delivered_quantity or 0}"]}, delivered=delivered_quantity or 0)


def first_time_fix(assignment_count):
    """FR-108: resolved by the first engineer assigned (a later repeat request for the same product
    on the same delivery takes it back, see `repeat_of`)."""
    return assignment_count == 1


def repeat_of(previous, opened_at, window_days):
    """The most recent earlier request for the same product (and delivery) resolved within
    `window_days` before `opened_at`: the new one is a repeat of it. `previous`: (id, resolved_at)."""
    window_start = opened_at - timedelta(days=window_days)
    recent = [(resolved_at, id_) for id_, resolved_at in previous
              if resolved_at is not None and window_start <= resolved_at <= opened_at]
    return max(recent)[1] if recent else None


def action_request_id(service_request_id, kind):
    """The request id another service sees for this request's action: the same on every attempt."""
    return uuid.uuid5(_ACTION_NAMESPACE, f"aftersales:{service_request_id}:{kind}")


def action_call(kind, request, quantity, resolution, actor):
    """The exact keyword arguments of the other department's RPC (INTEGRATION.md "order")."""
    request_id = str(action_request_id(request["id"], kind))
    if kind == "return":
        reason = f"after-sales {request['number']} ({request['type']}): {resolution}"
        return {
            "request_id": request_id, "actor": actor, "delivery_id": str(request["delivery_id"]),
            "lines": [{"sku": request["sku"], "quantity": quantity}], "reason": reason[:500],
            "service_request_id": str(request["id"]),
        }
    if kind == "replacement":
        return {
            "request_id": request_id, "actor": actor, "customer_id": str(request["customer_id"]),
            "sku": request["sku"], "quantity": quantity, "delivery_id": str(request["delivery_id"]),
            "service_request_id": str(request["id"]),
        }
    raise ValueError(f"no other department carries out {kind!r}")


def retry_delay(attempts, base_seconds, max_seconds):
    """Backoff before the next attempt after `attempts` failed ones: base, 2 x base, ... up to max."""
    return timedelta(seconds=min(max_seconds, base_seconds * 2 ** max(0, attempts - 1)))


# -- reports (FR-107, FR-108) ------------------------------------------------------------------
def period_bounds(period_start, period_end, tz):
    """[start, end) instants of the business dates `period_start`..`period_end` (both included) in
    `tz`; ValueError when the end is before the start."""
    if period_end < period_start:
        raise ValueError("period_end is before period_start")
    return (datetime.combine(period_start, time(0), tz),
            datetime.combine(period_end + timedelta(days=1), time(0), tz))


def ratio(part, whole):
    """part / whole as a 4-place decimal string, None when there is nothing to divide."""
    if not whole:
        return None
    return str((Decimal(part) / Decimal(whole)).quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP))


def average(total, count):
    if not count:
        return None
    return str((Decimal(total) / Decimal(count)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))
