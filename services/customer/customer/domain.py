"""The CRM's rules, free of any framework and of I/O (standard library and this service's errors).

The org chart (FR-119), the archive and its duplicate rule (FR-01, FR-02, FR-06, FR-07, FR-12),
ownership and the pool (FR-08–FR-11), classification (FR-13), customer reviews (FR-14), visits
(FR-23–FR-29), opportunities (FR-37–FR-39). Time comes in as arguments; the Chinese working-day
calendar comes in as a function (`deadline_after_working_days`), so every rule is testable alone.
"""
import calendar
import re
import unicodedata
from datetime import date, datetime, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal
from zoneinfo import ZoneInfo

from customer.exceptions import (
    ClassificationForbidden, FieldInvalid, InvalidState, NoApprover, OwnerNotEligible, ProposalApprovalForbidden,
    AcknowledgeForbidden, CollectionCheckForbidden, EscalationOwnerOnly, GuidanceForbidden, ProposalOwnerOnly, ReassignmentForbidden, ReviewApprovalForbidden, TenderClosed, ReviewExpired, StaffChangeForbidden, VisitApprovalForbidden, VisitRepOnly,
    VisitNotApproved,
)

TZ = ZoneInfo("Asia/Shanghai")  # business dates (DESIGN.md "Conventions")
CENT = Decimal("0.01")

# -- the archive ---------------------------------------------------------------------------------
SOURCES = (  # FR-02 acquisition channels
    "trade_fair", "trade_press", "internet", "industry_association",
    "mall_listing", "partner_referral", "company_data", "competitor_media",
)
SIZES = ("micro", "small", "medium", "large", "enterprise")  # FR-12
STATUSES = ("potential", "tracking", "progressing", "key", "loi_signed", "signed")  # FR-13
# Roles whose people collect customers themselves and so own what they record (FR-06).
COLLECTING_ROLES = ("sales_rep", "sales_manager", "sales_director")
# Roles that assign owners (FR-08, FR-09, FR-11) and may set any class (FR-13).
MANAGING_ROLES = frozenset({"sales_manager", "sales_director", "general_manager", "admin"})
ORG_ADMIN_ROLES = frozenset({"admin", "general_manager"})
OWN_ONLY_ROLES = frozenset({"sales_rep"})
CONTACT_WINDOW = timedelta(days=7)  # FR-10: a new customer is contacted within one week
CLOCK_SKEW = timedelta(minutes=5)   # what "not in the future" forgives

# Legal-form words that do not tell two companies apart.
_LEGAL_FORMS = (
    "股份有限公司", "有限责任公司", "有限公司", "集团公司", "公司",
    "company limited", "co ltd", "limited", "ltd", "incorporated", "inc",
    "corporation", "corp", "company", "co", "llc", "gmbh",
)
_NOT_WORD = re.compile(r"[\W_]+", re.UNICODE)


def name_key(name):
    """The key two records of one company share: width, case, spacing, punctuation and the legal
    form do not matter (`ACME Co., Ltd.` = `acme` = `ＡＣＭＥ有限公司`)."""
    text = unicodedata.normalize("NFKC", name).casefold()
    text = _NOT_WORD.sub(" ", text).strip()
    changed = True
    while changed and text:
        changed = False
        for form in _LEGAL_FORMS:
            # a Latin legal form must be a word of its own ("taco" keeps its "co")
            suffix = form if not form.isascii() else " " + form
            if text.endswith(suffix) and len(text) > len(suffix):
                text = text[: -len(suffix)].strip()
                changed = True
    return text.replace(" ", "")


def tax_key(tax_id):
    """Unified social credit codes compare without spaces, dashes or case."""
    if not tax_id:
        return None
    return re.sub(r"[\s\-]", "", unicodedata.normalize("NFKC", tax_id)).upper() or None


COLLECTION_DAILY_STANDARD = 10  # FR-03: new customer records per salesperson per working day
ENTRY_WORKING_DAYS = 2          # FR-04: entered within 2 working days of collection
MAX_COLLECTION_AGE = timedelta(days=366)


def entry_is_late(collected_at, entered_at, deadline_after_working_days):
    """FR-04: a record entered after the end of the second working day after its collection (Chinese
    calendar, passed in) is flagged late; a collection time in the future or over a year ago is refused."""
    if collected_at is None:
        return False
    not_in_future("collected_at", collected_at, entered_at)
    if collected_at < entered_at - MAX_COLLECTION_AGE:
        raise FieldInvalid("collected_at", "more than a year ago: record it as existing company data instead")
    return entered_at > deadline_after_working_days(collected_at, ENTRY_WORKING_DAYS)


def collection_standard(working_days, reps):
    """FR-03: 10 new records per rep per working day."""
    return COLLECTION_DAILY_STANDARD * working_days * reps


def initial_owner(actor):
    """The recorder owns what they collected (FR-06); others' records go to the pool (FR-09, FR-11)."""
    if actor.get("role") in COLLECTING_ROLES:
        return actor["staff_id"]
    return None


def contact_due_by(assigned_at):
    return assigned_at + CONTACT_WINDOW


def sees_pool(actor):
    """Who sees unowned customers (the pool) besides what their scope gives: everyone but a rep."""
    return actor.get("role") not in OWN_ONLY_ROLES


def not_in_future(field, moment, now):
    if moment > now + CLOCK_SKEW:
        raise FieldInvalid(field, "must not be in the future")


def counts_as_contact(assigned_at, occurred_at):
    """FR-10: a contact counts for the current assignment when it happened after it."""
    return assigned_at is None or occurred_at >= assigned_at


# -- the org chart (FR-119, FR-48) ------------------------------------------------------------------
# (discount a person may grant alone, lowest price ratio of list they may sign without a major contract)
AUTHORITY_DEFAULTS = {
    "sales_rep": (Decimal("0.05"), Decimal("0.85")),
    "sales_manager": (Decimal("0.10"), Decimal("0.80")),
    "sales_director": (Decimal("0.15"), Decimal("0.70")),
    "marketing_director": (Decimal("0.15"), Decimal("0.70")),
    "general_manager": (Decimal("0.15"), Decimal("0.70")),
}
NO_AUTHORITY = (Decimal("0.00"), Decimal("1.00"))
RELATIONS = ("direct_manager", "division_head", "marketing_director", "product_manager", "general_manager")


def authorities(role, discount_authority=None, price_authority=None):
    """The effective (discount_authority, price_authority): the person's own, else their role's;
    with two decimal places unless more are needed (`0.07`, `0.075`)."""
    discount, price = AUTHORITY_DEFAULTS.get(role, NO_AUTHORITY)
    return (_fraction(discount if discount_authority is None else discount_authority),
            _fraction(price if price_authority is None else price_authority))


def _fraction(value):
    value = Decimal(value)
    return value.quantize(CENT) if value == value.quantize(CENT) else value.normalize()


def check_org_change(actor):
    if actor.get("role") not in ORG_ADMIN_ROLES:
        raise StaffChangeForbidden(f"the role {actor.get('role')} may not change the org chart")


def pick_approver(relation, staff, chain, holders):
    """Who holds `relation` for `staff` now.

    `chain`: the staff member's managers, nearest first; `holders`: active staff with the role the
    relation names (oldest first). direct_manager is the nearest active manager up the chain;
    division_head the nearest sales_director up the chain, else a sales_director; the others the
    first active holder of the role — in the staff member's region when there are several.
    """
    if relation not in RELATIONS:
        raise FieldInvalid("relation", f"must be one of: {', '.join(RELATIONS)}")
    if relation == "direct_manager":
        for manager in chain:
            if manager["active"]:
                return manager
        raise NoApprover(f"{staff['username']} has no active manager", relation=relation)
    role = relation
    if relation == "division_head":
        role = "sales_director"
        for manager in chain:
            if manager["active"] and manager["role"] == role:
                return manager
    candidates = [h for h in holders if h["active"] and h["role"] == role and str(h["id"]) != str(staff["id"])]
    local = [h for h in candidates if staff.get("region") and h.get("region") == staff["region"]]
    found = local or candidates
    if not found:
        raise NoApprover(f"no active {role} in the org chart for {staff['username']}", relation=relation)
    return found[0]


# -- ownership (FR-07–FR-11) --------------------------------------------------------------------
def assignment_kind(actor, customer, target):
    """Check that `actor` may give `customer` to `target` and say what kind of change it is:
    `assign` (from the pool), `reassign` (reclaimable, FR-10) or `override` (FR-08)."""
    if actor.get("role") not in MANAGING_ROLES:
        raise ReassignmentForbidden(f"the role {actor.get('role')} may not change a customer's owner (FR-08)")
    if target is None:
        raise OwnerNotEligible("the new owner is not in the org chart", errors={"owner_id": ["no such staff member"]})
    if not target["active"] or target["role"] not in COLLECTING_ROLES:
        raise OwnerNotEligible(f"{target['display_name']} is not an active salesperson",
                               errors={"owner_id": ["must be an active sales rep, manager or director"]})
    if actor["role"] == "sales_manager" and str(target["id"]) != actor["staff_id"] \
            and (not actor.get("team") or target["team"] != actor.get("team")):
        raise OwnerNotEligible(f"{target['display_name']} is not in your team",
                               errors={"owner_id": ["a sales manager assigns within their own team"]})
    if customer["owner_id"] is not None and str(customer["owner_id"]) == str(target["id"]):
        raise InvalidState(f"{target['display_name']} already owns this customer")
    if customer["owner_id"] is None:
        return "assign"
    if customer.get("reclaimable_since") is not None:
        return "reassign"
    return "override"


def balanced_plan(candidates, customers):
    """FR-09: give each customer in turn to the candidate with the lowest load, where load is the
    number of customers owned divided by the person's capacity (ties: fewer customers, then name).

    `candidates`: [{"staff_id", "display_name", "customers", "capacity"}]; `customers`: [{"id",
    "name", "owner_id"?}]. Returns (plan, candidates with their load after the plan)."""
    if not candidates:
        return [], []
    people = [dict(c, capacity=Decimal(c["capacity"])) for c in candidates]
    plan = []
    for customer in customers:
        # a reclaimable customer goes to someone other than the owner who did not contact it
        eligible = [p for p in people if str(p["staff_id"]) != str(customer.get("owner_id"))]
        if not eligible:
            continue
        best = min(eligible, key=lambda p: (Decimal(p["customers"]) / p["capacity"], p["customers"],
                                            p["display_name"], str(p["staff_id"])))
        best["customers"] += 1
        plan.append({"customer_id": customer["id"], "customer_name": customer["name"],
                     "owner_id": best["staff_id"], "owner_name": best["display_name"]})
    for person in people:
        person["load"] = (Decimal(person["customers"]) / person["capacity"]).quantize(CENT, ROUND_HALF_UP)
    return plan, sorted(people, key=lambda p: (p["load"], p["display_name"]))


# -- classification (FR-13) ---------------------------------------------------------------------
def classification_change(actor, current, new):
    """None when nothing changes; else (previous, new). `signed` comes from the first confirmed
    order; by hand only a manager sets it or moves a signed customer (FR-13: the manager decides)."""
    if new == current:
        return None
    manager = actor.get("role") in MANAGING_ROLES
    if new == "signed" and not manager:
        raise ClassificationForbidden("signed is set by the first confirmed order; by hand only a manager sets it")
    if current == "signed" and not manager:
        raise ClassificationForbidden("only a manager changes the class of a signed customer")
    return current, new


# -- customer review (FR-14) --------------------------------------------------------------------
BUSINESS_STATUSES = ("operating", "restricted", "suspended", "deregistered")
REVIEW_MAX_VALIDITY = timedelta(days=731)
REVIEW_APPROVER_ROLE = "product_manager"


def local_today(now):
    return now.astimezone(TZ).date()


def check_review_validity(valid_until, today):
    if valid_until < today:
        raise FieldInvalid("valid_until", "must be today or later")
    if valid_until > today + REVIEW_MAX_VALIDITY:
        raise FieldInvalid("valid_until", "a review is valid for at most two years")


def check_review_decision(actor, review, today, approve):
    if actor.get("role") != REVIEW_APPROVER_ROLE:
        raise ReviewApprovalForbidden(f"the role {actor.get('role')} may not decide a customer review (FR-14)")
    if review["state"] != "submitted":
        raise InvalidState(f"the review is {review['state']}, not waiting for a decision")
    if str(review["submitted_by"]) == actor["staff_id"]:
        raise ReviewApprovalForbidden("nobody approves their own review")
    if approve and review["valid_until"] < today:
        raise ReviewExpired(f"the review was valid until {review['valid_until']}; submit a new one")


def quotable(approved_reviews, today):
    """FR-14: (quotable, reason, review) from the customer's approved reviews."""
    valid = [r for r in approved_reviews if r["valid_until"] >= today]
    if valid:
        return True, None, max(valid, key=lambda r: r["valid_until"])
    if approved_reviews:
        latest = max(approved_reviews, key=lambda r: r["valid_until"])
        return False, f"the customer review expired on {latest['valid_until'].isoformat()}", latest
    return False, "the customer has no approved review", None


# -- visits (FR-23–FR-27, FR-29) ------------------------------------------------------------------
VISIT_WEEKLY_STANDARD = 10   # FR-26
LOG_WORKING_DAYS = 2         # FR-27
DEFAULT_VISIT_LENGTH = timedelta(hours=4)
VISIT_APPROVER_ROLES = frozenset({"sales_manager", "sales_director", "general_manager"})
_VISIT_MOVES = {
    "approve": {"planned": "approved"},
    "reject": {"planned": "rejected"},
    "cancel": {"planned": "cancelled", "approved": "cancelled"},
    "check_out": {"approved": "in_field"},
    "check_in": {"in_field": "returned"},
    "report_delay": {"in_field": "in_field"},
    "log": {"approved": "logged", "in_field": "logged", "returned": "logged"},
}
OPEN_VISIT_STATES = ("approved", "in_field", "returned")  # approved and not yet logged


def visit_move(state, action):
    """The state after `action`; refused with VISIT_NOT_APPROVED (a log without an approved plan)
    or INVALID_STATE."""
    moves = _VISIT_MOVES[action]
    if state in moves:
        return moves[state]
    if action == "log" and state in ("planned", "rejected", "cancelled"):
        raise VisitNotApproved(f"the visit plan is {state}: a visit is logged only against an approved plan (FR-23)")
    raise InvalidState(f"a {state} visit cannot {action.replace('_', ' ')}")


def check_plan(planned_at, planned_return_at, now, had_logged_visit, tracking_report):
    """FR-23: a plan is made before the visit; FR-29: a re-visit reports the recent tracking first.
    Returns the planned return time (default: four hours after the start)."""
    if planned_at < now - CLOCK_SKEW:
        raise FieldInvalid("planned_at", "a visit is planned before it happens: must not be in the past")
    planned_return_at = planned_return_at or planned_at + DEFAULT_VISIT_LENGTH
    if planned_return_at <= planned_at:
        raise FieldInvalid("planned_return_at", "must be after planned_at")
    if had_logged_visit and not (tracking_report or "").strip():
        raise FieldInvalid("tracking_report", "a re-visit needs a report of the recent tracking status (FR-29)")
    return planned_return_at


def check_line_approver(actor, author_id, manager_chain_ids, refuse, own, other):
    """A director, or a sales manager up the author's chain — never the author: else `refuse(own)`
    or `refuse(other)`."""
    if str(author_id) == actor["staff_id"]:
        raise refuse(own)
    role = actor.get("role")
    if role in ("sales_director", "general_manager"):
        return
    if role == "sales_manager" and actor["staff_id"] in {str(i) for i in manager_chain_ids}:
        return
    raise refuse(other)


def check_visit_approver(actor, visit, manager_chain_ids):
    check_line_approver(actor, visit["rep_id"], manager_chain_ids, VisitApprovalForbidden,
                        "a rep does not approve their own visit plan (FR-23)",
                        "the visit plan is approved by the rep's own manager or a director (FR-23)")


def check_visit_actor(actor, visit, action="record it"):
    if str(visit["rep_id"]) != actor["staff_id"]:
        raise VisitRepOnly(f"only the rep who planned the visit may {action}")


def log_due_by(visited_at, deadline_after_working_days):
    """FR-27: end of the second working day after the visit (Chinese calendar, passed in)."""
    return deadline_after_working_days(visited_at, LOG_WORKING_DAYS)


def check_log(visit, visited_at, now):
    not_in_future("visited_at", visited_at, now)
    if visit["approved_at"] is not None and visited_at < visit["approved_at"]:
        raise FieldInvalid("visited_at", "is before the plan was approved: approval comes before the visit (FR-23)")


def check_delay(expected_return_at, now):
    if expected_return_at <= now:
        raise FieldInvalid("expected_return_at", "must be in the future")


def iso_week(moment):
    """`2026-W48`: the ISO week of a moment (Asia/Shanghai) or a date."""
    day = moment.astimezone(TZ).date() if isinstance(moment, datetime) else moment
    year, week, _ = day.isocalendar()
    return f"{year}-W{week:02d}"


def week_dates(week):
    """(Monday, next Monday) of an ISO week `YYYY-Www`."""
    match = re.fullmatch(r"(\d{4})-W(\d{2})", week or "")
    if not match:
        raise FieldInvalid("week", "an ISO week like 2026-W48")
    try:
        monday = date.fromisocalendar(int(match.group(1)), int(match.group(2)), 1)
    except ValueError:
        raise FieldInvalid("week", "no such ISO week") from None
    return monday, monday + timedelta(days=7)


def local_range(start, end_exclusive):
    """UTC instants of local (Asia/Shanghai) midnights: [start, end_exclusive)."""
    as_utc = lambda d: datetime.combine(d, datetime.min.time(), TZ).astimezone(timezone.utc)  # noqa: E731
    return as_utc(start), as_utc(end_exclusive)


def check_period(period_start, period_end):
    if period_end < period_start:
        raise FieldInvalid("period_end", "must not be before period_start")
    if (period_end - period_start).days > 366 * 3:
        raise FieldInvalid("period_end", "a period spans at most three years")


def visit_standard(period_start, period_end, reps):
    """FR-26: 10 visits per rep per week, pro rata for a period of days (inclusive)."""
    weeks = Decimal((period_end - period_start).days + 1) / 7
    return (VISIT_WEEKLY_STANDARD * weeks * reps).quantize(CENT, ROUND_HALF_UP)


def share(part, whole):
    """part / whole as a percentage with 2 places; None when there is no whole."""
    if not whole:
        return None
    return (Decimal(part) * 100 / Decimal(whole)).quantize(CENT, ROUND_HALF_UP)


# -- opportunities (FR-37–FR-39) --------------------------------------------------------------------
STAGES = ("identified", "qualified", "proposal", "negotiation")
CLOSED_STAGES = ("won", "lost")
PRIORITIES = ("high", "medium", "low")
OPPORTUNITY_SOURCES = ("market_research", "customer_feedback", "visit", "campaign", "referral", "tender", "other")


def check_stage_move(opportunity, new_stage):
    """Forward one stage at a time, or back to any earlier one; qualifying needs the feasibility
    and priority scored (FR-38); closing is its own command."""
    current = opportunity["stage"]
    if current in CLOSED_STAGES:
        raise InvalidState(f"the opportunity is {current}")
    if new_stage in CLOSED_STAGES:
        raise FieldInvalid("stage", "close an opportunity with its close command (outcome won or lost)")
    if new_stage == current:
        return False
    now_at, to = STAGES.index(current), STAGES.index(new_stage)
    if to > now_at + 1:
        raise InvalidState(f"{current} → {new_stage} skips {STAGES[now_at + 1]}")
    if to > STAGES.index("identified") and not opportunity.get("priority"):
        raise FieldInvalid("priority", "score the priority before qualifying the opportunity (FR-38)")
    return True


def check_close(opportunity, outcome, reason, order_id):
    if opportunity["stage"] in CLOSED_STAGES:
        raise InvalidState(f"the opportunity is already {opportunity['stage']}")
    if outcome == "lost" and not (reason or "").strip():
        raise FieldInvalid("reason", "a lost opportunity needs the reason it was lost")
    if outcome == "won":
        if not order_id:
            raise FieldInvalid("order_id", "a won opportunity links the order it became")
        if opportunity["stage"] not in ("proposal", "negotiation"):
            raise InvalidState(f"an opportunity is won from proposal or negotiation, not {opportunity['stage']}")
    return 100 if outcome == "won" else 0


def weighted(amount, probability):
    return (Decimal(amount) * Decimal(probability) / 100).quantize(CENT, ROUND_HALF_UP)


# -- proposals and tenders (FR-40, FR-41) -----------------------------------------------------------
PROPOSAL_KINDS = ("proposal", "tender")
PROPOSAL_STATES = ("draft", "internal_review", "approved", "submitted", "accepted", "rejected")
PROPOSAL_STAGES = ("qualified", "proposal", "negotiation")  # an opportunity worth a proposal (FR-38)
_PROPOSAL_MOVES = {
    "revise": {"draft": "draft", "rejected": "draft"},    # modify; after the customer's no, a new round
    "submit": {"draft": "internal_review"},               # to the internal proposal review
    "approve": {"internal_review": "approved"},
    "reject": {"internal_review": "draft"},                # back to modify, with the reviewer's comment
    "send": {"approved": "submitted"},                     # to the customer
    "accept": {"submitted": "accepted"},
    "decline": {"submitted": "rejected"},
}


def proposal_move(state, action):
    moves = _PROPOSAL_MOVES[action]
    if state not in moves:
        if action == "send" and state in ("draft", "internal_review"):
            raise InvalidState(f"the proposal is {state}: it goes to the customer only after the internal"
                               " review approved it (FR-40)")
        raise InvalidState(f"a {state} proposal cannot {action}")
    return moves[state]


def next_revision(proposal, action):
    """A new round (revision + 1) starts when a proposal the customer turned down is modified."""
    return proposal["revision"] + 1 if action == "revise" and proposal["state"] == "rejected" else proposal["revision"]


def check_proposal_opportunity(opportunity):
    if opportunity["stage"] not in PROPOSAL_STAGES:
        raise InvalidState(f"the opportunity is {opportunity['stage']}: a proposal is made for a qualified, open"
                           " opportunity (FR-38, FR-40)")


def check_proposal_owner(actor, proposal, action):
    if str(proposal["owner_id"]) != actor["staff_id"]:
        raise ProposalOwnerOnly(f"only the proposal's owner may {action} it")


def check_proposal_reviewer(actor, proposal, manager_chain_ids):
    """FR-40: the internal review is the owner's manager's (anyone up the chain) or a director's."""
    check_line_approver(actor, proposal["owner_id"], manager_chain_ids, ProposalApprovalForbidden,
                        "the author does not review their own proposal (FR-40)",
                        "a proposal is reviewed by its owner's manager or a director (FR-40)")


def check_tender_open(proposal, now):
    """FR-41: a tender's offer is in before the tender closes."""
    if proposal["kind"] == "tender" and now >= proposal["closes_at"]:
        raise TenderClosed(f"the tender closed at {proposal['closes_at'].isoformat()}: the offer can no longer"
                           " be submitted (FR-41)")


def check_tender_window(kind, closes_at, now):
    if kind == "tender":
        if closes_at is None:
            raise FieldInvalid("closes_at", "a tender needs the time it closes (FR-41)")
        if closes_at <= now:
            raise FieldInvalid("closes_at", "the tender has already closed: must be in the future (FR-41)")
    elif closes_at is not None:
        raise FieldInvalid("closes_at", "only a tender has a closing time")


# -- escalations and guidance (FR-28, FR-30) --------------------------------------------------------
GUIDANCE_WORKING_DAYS = 1  # FR-30: the manager guides daily: by the end of the next working day


def check_escalation_raiser(actor, customer):
    """FR-28: the rep who owns the customer escalates it (a manager raising it would be escalating to
    themselves)."""
    if customer["owner_id"] is None or str(customer["owner_id"]) != actor["staff_id"]:
        raise EscalationOwnerOnly("only the customer's owner escalates it to their manager (FR-28)")


def check_guide(actor, escalation, manager_chain_ids):
    check_line_approver(actor, escalation["owner_id"], manager_chain_ids, GuidanceForbidden,
                        "the owner does not guide themselves: their manager does (FR-30)",
                        "guidance comes from the owner's manager or a director (FR-30)")


def check_escalation_open(escalation):
    if escalation["state"] == "closed":
        raise InvalidState("the escalation is closed")


def guidance_overdue(escalation, now):
    """FR-30: no guidance since the escalation or the last guidance, by the end of the next working day."""
    return escalation["state"] != "closed" and now > escalation["guidance_due_by"]


# -- the weekly check of collected records (FR-05) ---------------------------------------------------
_COLLECTION_MOVES = {"submit": {None: "submitted", "returned": "submitted"},
                     "checked": {"submitted": "checked"}, "returned": {"submitted": "returned"}}


def collection_move(state, action):
    moves = _COLLECTION_MOVES[action]
    if state not in moves:
        raise InvalidState(f"the week's records are already {state}" if action == "submit"
                           else f"the week's records are {state}, not waiting for the check")
    return moves[state]


def check_collection_week(week, now):
    """FR-05: a week's records are submitted during or after that week, never for a week to come."""
    monday, _ = week_dates(week)
    if monday > now.astimezone(TZ).date():
        raise FieldInvalid("week", "this week has not begun: submit the records of this week or an earlier one")
    return monday


def check_collection_checker(actor, collection, manager_chain_ids):
    check_line_approver(actor, collection["rep_id"], manager_chain_ids, CollectionCheckForbidden,
                        "a rep does not check their own records (FR-05)",
                        "the records are checked by the rep's sales manager or a director (FR-05)")


# -- market intelligence (FR-33) --------------------------------------------------------------------
INTELLIGENCE_KINDS = ("trend", "demand", "competitor", "dealer_request", "problem")
ACKNOWLEDGE_WORKING_DAYS = 1  # FR-33: problems reach the manager quickly: answered by the next working day


def intelligence_urgent(kind, urgent):
    """A problem of the sales work is always escalated (FR-33); other reports when marked urgent."""
    return kind == "problem" or bool(urgent)


def check_acknowledger(actor, report, manager_chain_ids):
    if actor.get("role") == "marketing_director":  # market intelligence is marketing's to act on
        if str(report["reported_by"]) == actor["staff_id"]:
            raise AcknowledgeForbidden("the reporter does not answer their own report (FR-33)")
        return
    check_line_approver(actor, report["reported_by"], manager_chain_ids, AcknowledgeForbidden,
                        "the reporter does not answer their own report (FR-33)",
                        "a report is answered by the reporter's manager, a director or marketing (FR-33)")


def check_acknowledgeable(report):
    if report["state"] != "reported":
        raise InvalidState(f"the report is already {report['state']}")


def response_overdue(report, now):
    return report["state"] == "reported" and report["response_due_by"] is not None and now > report["response_due_by"]


# -- the logistics information sheet (FR-18) --------------------------------------------------------
def add_months(moment, months):
    """The same local (Asia/Shanghai) time `months` calendar months later (or earlier), on the
    month's last day when it is shorter (31 March - 1 month = 28/29 February)."""
    local = moment.astimezone(TZ)
    index = local.year * 12 + local.month - 1 + months
    year, month = divmod(index, 12)
    day = min(local.day, calendar.monthrange(year, month + 1)[1])
    return local.replace(year=year, month=month + 1, day=day).astimezone(timezone.utc)


def logistics_review_due(reviewed_at):
    """FR-18: reviewed monthly — due one calendar month after the last review."""
    return add_months(reviewed_at, 1)
