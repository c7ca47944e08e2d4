"""What each RPC and event handler of billing does, inside the unit of work it is given: load the
rows (locked where a decision depends on them), apply the domain's rules, write with guarded
updates, record the events in the outbox. No nameko here; service.py opens the units of work.

Time comes in as `now` (UTC); business dates (quarters, months, due dates, aging) are taken in
Asia/Shanghai.
"""
import uuid
from datetime import datetime, time, timedelta, timezone
from decimal import Decimal

from billing import domain, events
from billing.db import (
    Allocations, CreditAccounts, Customers, DeliveryLines, Invoices, Ledger, Receipts, RecomputeRuns, Reports,
    Reservations,
)
from billing.exceptions import (
    AllocationNotFound, AlreadyInvoiced, CreditAccountNotFound, CreditAlreadyReserved, CreditLimitExceeded,
    CustomerNotFound, Forbidden, GoodsNotIssued, InvalidState, InvoiceNotFound, OverAllocation, ReceiptNotFound,
    ReversalExceedsOriginal, TaxDetailsMissing, ValidationFailed,
)
from shared import access, pagination
from shared.workdays import TZ, local_date

SYSTEM = access.SYSTEM_ACTOR
ZERO = domain.ZERO


def local_start(day):
    """The UTC instant at which a local (Asia/Shanghai) date begins."""
    return datetime.combine(day, time(0), TZ).astimezone(timezone.utc)


def _scope_allows(actor, row):
    return access.scope(actor).allows(row.get("owner_id"), row.get("owner_team"))


# -- customers (events) -------------------------------------------------------------------------
def apply_customer_fields(uow, customer_id, fields, occurred_at):
    """Keep billing's copy of a customer and move the snapshot on its documents."""
    customers = Customers(uow)
    applied = customers.upsert(customer_id, fields, occurred_at)
    moved = {k: (str(v) if k == "owner_id" and v is not None else v) for k, v in applied.items()
             if k in ("owner_id", "owner_team", "region")}
    customers.move_snapshot(customer_id, moved)
    return applied


def visible_customer(uow, actor, customer_id):
    """The customer as billing knows it, if the actor may see it; else NOT_FOUND (no probing)."""
    row = Customers(uow).get(customer_id)
    if row is None:
        if access.scope(actor).unrestricted and CreditAccounts(uow).get(customer_id) is not None:
            return {"customer_id": customer_id, "name": None, "owner_id": None, "owner_team": None, "region": None,
                    "tax_id": None, "bank_account": None}
        raise CustomerNotFound(f"customer {customer_id} not found")
    if not _scope_allows(actor, row):
        raise CustomerNotFound(f"customer {customer_id} not found")
    return row


# -- credit accounts ----------------------------------------------------------------------------
def credit_account(uow, actor, customer_id):
    # who may see the customer first: someone else's customer answers as an unknown one does
    visible_customer(uow, actor, customer_id)
    accounts = CreditAccounts(uow)
    account = accounts.get(customer_id)
    if account is None:
        raise CreditAccountNotFound(f"no credit account for customer {customer_id}")
    figures = {k: domain.money(v) for k, v in accounts.exposure(customer_id).items()}
    exposure = figures["receivable"] + figures["reserved"]
    return {
        "customer_id": str(account["customer_id"]), "limit": account["credit_limit"], "currency": account["currency"],
        "grade": account["grade"], "exposure": exposure, "open_receivables": figures["receivable"],
        "reserved": figures["reserved"], "available": domain.available(account["credit_limit"], exposure),
        "formula_limit": account["formula_limit"], "formula_quarter": account["formula_quarter"],
        "formula_inputs": account["formula_inputs"], "manual_limit": account["manual_limit"],
        "manual_quarter": account["manual_quarter"], "opened_at": account["opened_at"],
        "reservations": [_reservation(r) for r in Reservations(uow).active_for_customer(customer_id)],
        "history": accounts.history(customer_id),
    }


def credit_summary(uow, actor, customer_id):
    """The credit figures alone (the customer overview's part): credit_account's first eight
    fields, with the same answers for a customer the actor may not see or without an account, in
    one statement — without the account's reservations and history, which grow with its orders."""
    row = CreditAccounts(uow).summary(customer_id)
    if not row["known"]:  # as visible_customer: only an unrestricted actor sees an account billing has no copy of
        if not (access.scope(actor).unrestricted and row["has_account"]):
            raise CustomerNotFound(f"customer {customer_id} not found")
    elif not _scope_allows(actor, row):
        raise CustomerNotFound(f"customer {customer_id} not found")
    if not row["has_account"]:
        raise CreditAccountNotFound(f"no credit account for customer {customer_id}")
    receivable, reserved = domain.money(row["receivable"]), domain.money(row["reserved"])
    exposure = receivable + reserved
    return {"customer_id": str(customer_id), "limit": row["credit_limit"], "currency": row["currency"],
            "grade": row["grade"], "exposure": exposure, "open_receivables": receivable, "reserved": reserved,
            "available": domain.available(row["credit_limit"], exposure)}


def _reservation(row):
    override = None
    if row["override_by"] is not None:
        override = {"staff_id": str(row["override_by"]), "role": row["override_role"],
                    "username": row["override_username"], "reason": row["override_reason"]}
    return dict(row, override=override)


def set_credit_limit(uow, actor, data, now):
    """FR-66: finance sets the limit by hand, with a reason; it holds for the current quarter."""
    domain.require_role("set_credit_limit", actor)
    customer_id = data["customer_id"]
    accounts = CreditAccounts(uow)
    account = accounts.lock(customer_id)
    if account is None:
        raise CreditAccountNotFound(f"no credit account for customer {customer_id}")
    quarter = domain.quarter_of(local_date(now))
    limit = data["limit"]
    if account["manual_limit"] == limit and account["manual_quarter"] == quarter and account["credit_limit"] == limit:
        return  # the same limit again: nothing changes (PUT is idempotent)
    accounts.set_manual(customer_id, limit, quarter)
    accounts.add_history(customer_id, account["credit_limit"], limit, data["reason"], kind="manual",
                         changed_by=actor["staff_id"], quarter=quarter, grade=account["grade"],
                         inputs={"formula_limit": str(account["formula_limit"]) if account["formula_limit"] is not None
                                 else None, "adjustment": str(limit - (account["formula_limit"] or ZERO))})
    uow.publish("credit_limit.changed", events.credit_limit_changed(
        customer_id, Customers(uow).get(customer_id), account["credit_limit"], limit, account["grade"], "manual",
        data["reason"], actor["staff_id"], quarter))


def recompute_credit(transaction, quarter, formula, trigger="scheduled", run_id=None, requested_by=None,
                     batch_size=50):
    """FR-64/FR-66: the formula for every account, in batches of locked rows that other replicas
    skip; each batch commits on its own, so a crash loses at most a batch and the next run goes on.
    A scheduled run computes each account once per quarter; an on-demand run recomputes them all."""
    quarter_start = domain.parse_quarter(quarter)
    prior_start = domain.add_months(quarter_start, -12)
    instants = (local_start(quarter_start), local_start(prior_start),
                local_start(domain.add_months(quarter_start, -24)))
    with transaction() as uow:
        runs = RecomputeRuns(uow)
        run = runs.scheduled(quarter) if trigger == "scheduled" else runs.manual(run_id, quarter, requested_by)
    if run["quarter"] != quarter:
        raise ValidationFailed("request_id was already used to recompute another quarter",
                               code="IDEMPOTENCY_KEY_REUSED", errors={"request_id": ["used for " + run["quarter"]]})
    if run["finished_at"] is None:
        forced = run["trigger"] == "manual"
        while True:
            with transaction() as uow:
                accounts = CreditAccounts(uow)
                rows = accounts.claim_batch(quarter, run["id"], forced, batch_size)
                if not rows:
                    break
                inputs = accounts.inputs([r["customer_id"] for r in rows], instants[0], instants[1], instants[2],
                                         quarter_start, prior_start)
                changed = sum(_apply_formula(uow, row, inputs[row["customer_id"]], quarter, run["id"], formula)
                              for row in rows)
                RecomputeRuns(uow).count(run["id"], len(rows), changed)
        with transaction() as uow:
            if CreditAccounts(uow).remaining(quarter, run["id"], forced) == 0:
                run = RecomputeRuns(uow).finish(run["id"])
            else:
                run = uow.one("SELECT * FROM credit_recompute_runs WHERE id = %s", (run["id"],))
    return {"run_id": str(run["id"]), "quarter": run["quarter"], "trigger": run["trigger"],
            "accounts": run["accounts"], "changed": run["changed"], "finished": run["finished_at"] is not None}


def _apply_formula(uow, account, inputs, quarter, run_id, formula):
    credit_inputs = domain.CreditInputs(**{k: Decimal(v) for k, v in inputs.items()})
    assessment = domain.assess(credit_inputs, formula)
    limit = domain.effective_limit(assessment.limit, account["manual_limit"], account["manual_quarter"], quarter)
    details = dict(assessment.as_dict(), quarter=quarter,
                   sales_12m=str(domain.money(credit_inputs.sales_12m)),
                   sales_prior_12m=str(domain.money(credit_inputs.sales_prior_12m)))
    accounts = CreditAccounts(uow)
    accounts.set_formula(account["customer_id"], assessment.limit, quarter, run_id, details, assessment.grade, limit)
    if limit == account["credit_limit"] and assessment.grade == account["grade"]:
        return False
    reason = f"credit review {quarter}: formula limit {assessment.limit}, grade {assessment.grade}"
    if limit != assessment.limit:
        reason += f"; finance's limit for {quarter} stands"
    elif account["manual_limit"] is not None and (account["manual_quarter"] or "") < quarter:
        reason += f"; finance's limit for {account['manual_quarter']} has lapsed"
    accounts.add_history(account["customer_id"], account["credit_limit"], limit, reason, kind="formula",
                         changed_by=SYSTEM["staff_id"], quarter=quarter, grade=assessment.grade, inputs=details)
    uow.publish("credit_limit.changed", events.credit_limit_changed(
        account["customer_id"], Customers(uow).get(account["customer_id"]), account["credit_limit"], limit,
        assessment.grade, "formula", reason, SYSTEM["staff_id"], quarter))
    return True


# -- credit reservations (FR-63, FR-65) ---------------------------------------------------------
class Refusal:
    """A refused reservation: recorded (credit hold) and committed, then raised by the caller."""

    def __init__(self, limit, exposure, requested):
        self.error = CreditLimitExceeded(
            f"credit limit {limit} exceeded: exposure {exposure} + requested {requested}",
            limit=str(limit), exposure=str(exposure), requested=str(requested),
            available=str(domain.available(limit, exposure)))


def reserve_credit(uow, data, override_actor):
    """Check and hold in one step, the account row locked: two orders of one customer queue here,
    so they cannot both fit under a limit that fits only one (exposure = open receivables +
    credit reserved and not yet invoiced). Idempotent by reservation_id."""
    customer_id, order_id, amount = data["customer_id"], data["order_id"], data["amount"]
    accounts = CreditAccounts(uow)
    account = accounts.lock(customer_id)
    if account is None:  # the order came before customer.created: an account with no credit
        accounts.open(customer_id, domain.OPENING_LIMIT, domain.CURRENCY,
                      "account opened by a credit reservation before the customer was known")
        account = accounts.lock(customer_id)
    reservations = Reservations(uow)
    existing, active = reservations.by_id_or_active(data["reservation_id"], order_id)
    if existing is not None:
        if (existing["order_id"], existing["customer_id"], existing["amount"]) != (order_id, customer_id, amount):
            raise ValidationFailed("reservation_id was already used for another reservation",
                                   code="IDEMPOTENCY_KEY_REUSED",
                                   errors={"reservation_id": ["already used for another order, customer or amount"]})
        return _reservation_answer(existing)
    if active is not None:
        raise CreditAlreadyReserved(f"order {order_id} already holds credit under reservation "
                                    f"{active['reservation_id']}", reservation_id=str(active["reservation_id"]))
    figures = accounts.exposure(customer_id)
    exposure = domain.money(figures["receivable"] + figures["reserved"])
    limit = account["credit_limit"]
    override = None
    if data.get("override") is not None:
        if override_actor["role"] not in domain.OVERRIDE_ROLES:
            raise Forbidden(f"a credit hold is released by {' or '.join(sorted(domain.OVERRIDE_ROLES))}, "
                            f"not {override_actor['role']}", allowed_roles=sorted(domain.OVERRIDE_ROLES))
        override = {"override_by": override_actor["staff_id"], "override_role": override_actor["role"],
                    "override_username": override_actor.get("username"), "override_reason": data["override"]["reason"]}
    if override is None and not domain.fits(limit, exposure, amount):
        if reservations.hold(data["reservation_id"], order_id, customer_id, amount, limit, exposure):
            uow.publish("credit.held", events.credit_held(
                data["reservation_id"], order_id, customer_id, Customers(uow).get(customer_id), amount, limit,
                exposure, domain.available(limit, exposure)))
        return Refusal(limit, exposure, amount)
    row = reservations.add(dict(
        {"override_by": None, "override_role": None, "override_username": None, "override_reason": None},
        **(override or {}), reservation_id=data["reservation_id"], order_id=order_id, customer_id=customer_id,
        amount=amount, status="reserved", limit_at=limit, exposure_at=exposure + amount))
    return _reservation_answer(row)


def _reservation_answer(row):
    return {"reservation_id": row["reservation_id"], "order_id": row["order_id"], "customer_id": row["customer_id"],
            "status": row["status"], "amount": row["amount"], "limit": row["limit_at"],
            "exposure": row["exposure_at"], "available": domain.available(row["limit_at"], row["exposure_at"]),
            "override": _reservation(row)["override"]}


def release_credit(uow, order_id, reason):
    released = Reservations(uow).release(order_id, reason)
    return {"order_id": order_id, "status": "released", "released": sum((r["remaining"] for r in released), ZERO),
            "reservations": [str(r["reservation_id"]) for r in released]}


# -- delivery lines (goods.issued / goods.returned) ---------------------------------------------
def record_goods_issued(uow, data, event_id):
    lines = DeliveryLines(uow)
    for number, line in enumerate(data["lines"], start=1):
        lines.add({
            "delivery_line_id": line["delivery_line_id"], "delivery_id": data["delivery_id"],
            "delivery_number": data["delivery_number"], "line_no": number, "order_id": data["order_id"],
            "order_number": data["order_number"], "order_line_id": line["order_line_id"], "loan_id": data["loan_id"],
            "customer_id": data["customer_id"], "owner_id": data["owner_id"], "owner_team": data["owner_team"],
            "region": data["region"], "warehouse": data["warehouse"], "sku": line["sku"],
            "quantity": line["quantity"], "unit_price": line["unit_price"], "vat_rate": line["vat_rate"],
            "issued_at": data["issued_at"], "source_event": event_id,
        })
    # a customer billing has not heard of yet gets the snapshot the warehouse saw (any customer event
    # wins); a snapshot without the owner's team gets it when the owner is the same
    uow.execute("INSERT INTO customers (customer_id, owner_id, owner_team, region) VALUES (%s, %s, %s, %s)"
                " ON CONFLICT (customer_id) DO UPDATE SET owner_team = EXCLUDED.owner_team"
                " WHERE customers.owner_team IS NULL AND customers.owner_id = EXCLUDED.owner_id",
                (data["customer_id"], data["owner_id"], data["owner_team"], data["region"]))
    if data["owner_team"] is not None:
        uow.execute("UPDATE invoices SET owner_team = %s WHERE customer_id = %s AND owner_id = %s"
                    " AND owner_team IS NULL", (data["owner_team"], data["customer_id"], data["owner_id"]))
        uow.execute("UPDATE receipts SET owner_team = %s WHERE customer_id = %s AND owner_id = %s"
                    " AND owner_team IS NULL", (data["owner_team"], data["customer_id"], data["owner_id"]))


def record_goods_returned(uow, data, now):
    """FR-95: goods back from the customer. Whatever of them stands on an issued invoice is
    reversed by a red-letter invoice (one per original invoice, linked to it); a draft or certified
    invoice that would bill goods no longer with the customer is cancelled, to be raised again."""
    lines_repo, invoices = DeliveryLines(uow), Invoices(uow)
    plan = {}  # blue invoice id -> [(blue line, units)]
    returned = []
    for item in sorted(data["lines"], key=lambda l: str(l["delivery_line_id"])):
        line = lines_repo.lock(item["delivery_line_id"])
        if line is None or line["delivery_id"] != data["delivery_id"]:
            raise ValueError(f"return {data['return_id']}: delivery line {item['delivery_line_id']} was never issued "
                             f"on delivery {data['delivery_id']}")
        after = line["returned_quantity"] + item["quantity"]
        if after > line["quantity"]:
            raise ValueError(f"return {data['return_id']}: {after} of {line['quantity']} units of "
                             f"{line['delivery_line_id']} would be back")
        claims = invoices.issued_claims(line["delivery_line_id"])
        take = domain.return_reversals(line["quantity"], after, [(c["id"], c["quantity"] - c["reversed_quantity"])
                                                                 for c in claims])
        by_id = {c["id"]: c for c in claims}
        for line_id, units in take:
            plan.setdefault(by_id[line_id]["invoice_id"], []).append((by_id[line_id], units))
        returned.append((line, item["quantity"], sum(units for _, units in take)))
    reason = f"goods returned ({data.get('return_number') or data['return_id']})"
    for invoice_id in sorted(plan):
        blue = invoices.get(invoice_id, lock=True)
        raise_red(uow, blue, plan[invoice_id], reason, SYSTEM["staff_id"], now, return_id=data["return_id"])
    for line, quantity, _ in returned:
        after = lines_repo.add_returned(line["delivery_line_id"], quantity)
        stands = after["claimed_quantity"] - after["reversed_quantity"]
        if stands > after["quantity"] - after["returned_quantity"]:
            for pending in invoices.pending_claims(line["delivery_line_id"]):
                cancel_invoice(uow, SYSTEM, {"invoice_id": pending["id"],
                                             "reason": f"{reason} before the invoice was issued: raise it again"},
                               check_role=False)
    return sorted(plan)


# -- invoices (FR-81, FR-82) --------------------------------------------------------------------
def create_invoice(uow, actor, data, now):
    """A draft invoice for every issued and not yet invoiced unit of the deliveries named."""
    domain.require_role("create_invoice", actor)
    scope = access.scope(actor)
    delivery_ids = data["delivery_ids"]
    rows = [r for r in DeliveryLines(uow).of_deliveries(delivery_ids) if scope.allows(r["owner_id"], r["owner_team"])]
    seen = {r["delivery_id"] for r in rows}
    unknown = [str(d) for d in delivery_ids if d not in seen]
    if unknown:
        raise GoodsNotIssued(f"no issued goods known for delivery {', '.join(unknown)}: only issued goods are "
                             "invoiced", delivery_ids=unknown)
    customers = {r["customer_id"] for r in rows}
    if len(customers) > 1:
        raise ValidationFailed("the deliveries belong to different customers",
                               errors={"delivery_ids": ["one invoice bills one customer: these deliveries belong "
                                                        f"to {len(customers)} customers"]})
    lines, fully = [], []
    for delivery_id in delivery_ids:
        units = [(r, domain.invoiceable(r["quantity"], r["returned_quantity"], r["claimed_quantity"],
                                        r["reversed_quantity"]))
                 for r in sorted(rows, key=lambda r: r["line_no"]) if r["delivery_id"] == delivery_id]
        units = [(r, n) for r, n in units if n > 0]
        if not units:
            fully.append(str(delivery_id))
        lines += units
    if fully:
        raise AlreadyInvoiced(f"delivery {', '.join(fully)} is already invoiced in full (or its goods came back)",
                              delivery_ids=fully)
    customer_id = customers.pop()
    customer = Customers(uow).get(customer_id) or {}
    missing = domain.missing_tax_details(data["kind"], customer.get("tax_id"), customer.get("bank_account"))
    if missing:
        raise TaxDetailsMissing(f"a special VAT invoice needs the customer's {' and '.join(missing)}; "
                                "record them on the customer or raise an ordinary invoice", missing=missing)
    repo = DeliveryLines(uow)
    invoice_lines = []
    for row, units in lines:
        if not repo.claim(row["delivery_line_id"], units):  # guarded; the rows are locked, so this holds
            raise AlreadyInvoiced(f"delivery line {row['delivery_line_id']} was invoiced meanwhile",
                                  delivery_ids=[str(row["delivery_id"])])
        invoice_lines.append(dict(domain.invoice_line(units, row["unit_price"], row["vat_rate"]),
                                  **{k: row[k] for k in ("delivery_line_id", "delivery_id", "delivery_number",
                                                         "order_id", "order_number", "order_line_id", "sku")}))
    snap = _snapshot(customer, lines[0][0])
    invoice = dict(domain.totals(invoice_lines), id=uuid.uuid4(), number=None, kind=data["kind"], red=False,
                   reverses=None, status="draft", customer_id=customer_id, owner_id=snap["owner_id"],
                   owner_team=snap["owner_team"], region=snap["region"],
                   buyer_name=customer.get("name"), buyer_tax_id=customer.get("tax_id"),
                   buyer_bank=customer.get("bank_account"), due_date=None, reason=None, return_id=None,
                   remarks=data.get("remarks"), created_by=actor["staff_id"], created_at=now, issued_by=None,
                   issued_at=None)
    Invoices(uow).add(invoice, invoice_lines)
    return invoice["id"]


def _snapshot(customer, line):
    """The owner, team and region a new document carries: billing's copy of the customer, with
    what it lacks taken from the delivery line when the owner is the same."""
    if customer.get("owner_id") is None:
        return {k: line[k] for k in ("owner_id", "owner_team", "region")}
    same = customer["owner_id"] == line["owner_id"]
    return {"owner_id": customer["owner_id"],
            "owner_team": customer.get("owner_team") or (line["owner_team"] if same else None),
            "region": customer.get("region") or line["region"]}


def _visible_invoice(uow, actor, invoice_id, lock=False):
    row = Invoices(uow).get(invoice_id, lock=lock)
    if row is None or not _scope_allows(actor, row):
        raise InvoiceNotFound(f"invoice {invoice_id} not found")
    return row


def certify_invoice(uow, actor, invoice_id):
    """FR-82: the sales manager certifies the draft before finance issues it."""
    domain.require_role("certify_invoice", actor)
    invoice = _visible_invoice(uow, actor, invoice_id, lock=True)
    target = domain.transition(invoice["status"], "certify")
    Invoices(uow).move(invoice_id, invoice["status"], target, actor_column="certified", actor_id=actor["staff_id"])


def issue_invoice(uow, actor, invoice_id, now, payment_terms_days):
    """Finance issues a certified invoice: its number (gap-free per year), its due date; the
    order's credit reservation turns into this receivable; `invoice.issued`."""
    domain.require_role("issue_invoice", actor)
    invoice = _visible_invoice(uow, actor, invoice_id)
    CreditAccounts(uow).lock(invoice["customer_id"])  # exposure changes: queue with reservations
    invoice = Invoices(uow).get(invoice_id, lock=True)
    target = domain.transition(invoice["status"], "issue")
    today = local_date(now)
    number = uow.next_number("INV", today.year)
    issued = Invoices(uow).move(invoice_id, invoice["status"], target, actor_column="issued",
                                actor_id=actor["staff_id"],
                                extra={"number": number, "due_date": domain.due_date(today, payment_terms_days)})
    lines = Invoices(uow).lines(invoice_id)
    per_order = {}
    for line in lines:
        if line["order_id"] is not None:
            per_order[line["order_id"]] = per_order.get(line["order_id"], ZERO) + line["amount"]
    reservations = Reservations(uow)
    for order_id, amount in sorted(per_order.items()):
        reservations.consume(order_id, amount)
    uow.publish("invoice.issued", events.invoice_issued(issued, lines))


def cancel_invoice(uow, actor, data, check_role=True):
    """A draft or certified invoice is withdrawn; its delivery lines may be invoiced again."""
    if check_role:
        domain.require_role("cancel_invoice", actor)
    invoice = _visible_invoice(uow, actor, data["invoice_id"], lock=True)
    target = domain.transition(invoice["status"], "cancel")
    Invoices(uow).move(invoice["id"], invoice["status"], target, actor_column="cancelled",
                       actor_id=actor["staff_id"], extra={"cancel_reason": data["reason"]})
    repo = DeliveryLines(uow)
    for line in Invoices(uow).lines(invoice["id"]):
        repo.unclaim(line["delivery_line_id"], line["quantity"])


def reverse_invoice(uow, actor, data, now):
    """FR-95: a red-letter invoice reversing all or part of an issued invoice, linked to it."""
    domain.require_role("reverse_invoice", actor)
    blue = _visible_invoice(uow, actor, data["invoice_id"], lock=True)
    if blue["red"] or blue["status"] != "issued":
        raise InvalidState("only an issued (blue) invoice can be reversed", state=blue["status"], red=blue["red"])
    lines = Invoices(uow).lines(blue["id"])
    by_delivery_line = {line["delivery_line_id"]: line for line in lines}
    if data.get("lines"):
        plan = []
        for index, item in enumerate(data["lines"]):
            line = by_delivery_line.get(item["delivery_line_id"])
            if line is None:
                raise ValidationFailed("a line is not on this invoice", errors={
                    f"lines.{index}.delivery_line_id": ["not a line of invoice " + blue["number"]]})
            plan.append((line, item["quantity"]))
    else:
        plan = [(line, line["quantity"] - line["reversed_quantity"]) for line in lines
                if line["quantity"] > line["reversed_quantity"]]
        if not plan:
            raise ReversalExceedsOriginal(f"invoice {blue['number']} is already reversed in full",
                                          requested="all", reversible=0)
    return raise_red(uow, blue, plan, data["reason"], actor["staff_id"], now)


def raise_red(uow, blue, plan, reason, actor_id, now, return_id=None):
    """Issue the red-letter invoice for `plan` ([(blue invoice line, units)]) against `blue`
    (locked): never above what is left of the original; the paid part it takes back returns to
    the receipts as the customer's credit."""
    invoices, delivery = Invoices(uow), DeliveryLines(uow)
    red_lines = []
    for line, units in plan:
        red = domain.reversal(line, units)
        if not invoices.reverse_line(line["id"], red):
            raise ReversalExceedsOriginal(f"line {line['line_no']} of {blue['number']} was reversed meanwhile",
                                          sku=line["sku"], requested=units)
        delivery.add_reversed(line["delivery_line_id"], units)
        red_lines.append(dict(red, reverses_line=line["id"],
                              **{k: line[k] for k in ("delivery_line_id", "delivery_id", "delivery_number", "order_id",
                                                      "order_number", "order_line_id", "sku")}))
    total = domain.totals(red_lines)
    today = local_date(now)
    red_invoice = dict(total, id=uuid.uuid4(), number=uow.next_number("INV", today.year), kind=blue["kind"], red=True,
                       reverses=blue["id"], status="issued", customer_id=blue["customer_id"],
                       owner_id=blue["owner_id"], owner_team=blue["owner_team"], region=blue["region"],
                       buyer_name=blue["buyer_name"], buyer_tax_id=blue["buyer_tax_id"],
                       buyer_bank=blue["buyer_bank"], due_date=None, reason=reason, return_id=return_id, remarks=None,
                       created_by=actor_id, created_at=now, issued_by=actor_id, issued_at=now)
    invoices.add(red_invoice, red_lines)
    excess = total["total"] - domain.open_amount(blue["total"], blue["reversed_amount"], blue["allocated_amount"])
    if excess > 0:
        _take_back_payments(uow, blue, excess, actor_id, now, f"red-letter invoice {red_invoice['number']}")
    after = invoices.change_amounts(blue["id"], total["total"], -max(excess, ZERO))
    if after is None:
        raise ReversalExceedsOriginal(f"the red-letter invoice would take more than is left of {blue['number']}",
                                      requested=str(total["total"]))
    _settlement(uow, blue, after, now)
    stored = invoices.get(red_invoice["id"])
    uow.publish("invoice.reversed", events.invoice_reversed(stored, blue, invoices.lines(red_invoice["id"])))
    return red_invoice["id"]


def _take_back_payments(uow, blue, excess, actor_id, now, reason):
    allocations, receipts = Allocations(uow), Receipts(uow)
    active = allocations.active_for_invoice(blue["id"])
    ids, again = domain.deallocation(excess, [(a["id"], a["amount"]) for a in active])
    by_id = {a["id"]: a for a in active}
    for allocation_id in ids:
        reversed_ = allocations.reverse(allocation_id, actor_id, reason, now)
        receipt = receipts.change_allocated(reversed_["receipt_id"], -reversed_["amount"])
        uow.publish("receipt.allocation_reversed", events.receipt_allocation_reversed(receipt, reversed_,
                                                                                      blue["number"]))
    if again > 0:
        last = by_id[ids[-1]]
        allocation = allocations.add({"id": uuid.uuid4(), "receipt_id": last["receipt_id"], "invoice_id": blue["id"],
                                      "customer_id": blue["customer_id"], "amount": again, "allocated_by": actor_id,
                                      "allocated_at": now, "note": f"what {reason} left paid"})
        receipt = receipts.change_allocated(last["receipt_id"], again)
        uow.publish("receipt.allocated", events.receipt_allocated(
            receipt, [dict(allocation, invoice_number=blue["number"])]))


def _settlement(uow, before, after, now):
    """invoice.settled when the open amount reaches zero; invoice.reopened when it leaves zero."""
    was = domain.open_amount(before["total"], before["reversed_amount"], before["allocated_amount"])
    now_open = domain.open_amount(after["total"], after["reversed_amount"], after["allocated_amount"])
    if was > 0 and now_open == 0:
        Invoices(uow).set_settled(after["id"], now)
        uow.publish("invoice.settled", events.invoice_settled(after, events.order_ids(Invoices(uow).lines(after["id"])),
                                                              now))
    elif was == 0 and now_open > 0:
        Invoices(uow).set_settled(after["id"], None)
        uow.publish("invoice.reopened", events.invoice_reopened(
            after, events.order_ids(Invoices(uow).lines(after["id"])), now, now_open))


def invoice_view(uow, invoice, lines=None, detail=True):
    row = dict(invoice)
    if not invoice["red"] and invoice["status"] == "issued":
        row["open_amount"] = domain.open_amount(invoice["total"], invoice["reversed_amount"],
                                                invoice["allocated_amount"])
        row["payment_status"] = domain.payment_status(invoice["total"], invoice["reversed_amount"],
                                                      invoice["allocated_amount"])
    else:
        row["open_amount"], row["payment_status"] = None, None
    lines = Invoices(uow).lines(invoice["id"]) if lines is None else lines
    row["lines"] = [dict(line, vat_rate=line["vat_rate"].normalize()) for line in lines]
    row["red_invoices"] = Invoices(uow).reds_of(invoice["id"]) if detail and not invoice["red"] else []
    row["allocations"] = Allocations(uow).of_invoice(invoice["id"]) if detail and not invoice["red"] else []
    return row


def get_invoice(uow, actor, invoice_id):
    return invoice_view(uow, _visible_invoice(uow, actor, invoice_id))


def list_invoices(uow, actor, filters, after, limit):
    scope_sql, scope_params = access.scope(actor).sql("i.owner_id", "i.owner_team")
    for name in ("issued_from", "issued_to"):
        if filters.get(name) is not None:
            day = filters[name] + (timedelta(days=1) if name == "issued_to" else timedelta())
            filters[name] = local_start(day)
    rows = Invoices(uow).list(scope_sql, scope_params, filters, after, limit)
    lines = Invoices(uow).lines_of([row["id"] for row in rows])
    return [invoice_view(uow, row, lines=lines.get(row["id"], []), detail=False) for row in rows]


# -- receipts and allocation (FR-84–FR-86) ------------------------------------------------------
def record_receipt(uow, actor, data, now):
    domain.require_role("record_receipt", actor)
    if data["received_at"] > local_date(now):
        raise ValidationFailed("received_at is in the future", errors={"received_at": ["must not be after today"]})
    customer = visible_customer(uow, actor, data["customer_id"])
    receipt = dict(data, id=uuid.uuid4(), number=uow.next_number("RC", local_date(now).year),
                   owner_id=customer.get("owner_id"), owner_team=customer.get("owner_team"),
                   region=customer.get("region"), currency=domain.CURRENCY, registered_by=actor["staff_id"],
                   registered_at=now)
    return Receipts(uow).add(receipt)["id"]


def _visible_receipt(uow, actor, receipt_id, lock=False):
    row = Receipts(uow).get(receipt_id, lock=lock)
    if row is None or not _scope_allows(actor, row):
        raise ReceiptNotFound(f"receipt {receipt_id} not found")
    return row


def confirm_receipt(uow, actor, receipt_id, now):
    """FR-84/85: finance confirms the money arrived."""
    domain.require_role("confirm_receipt", actor)
    receipt = _visible_receipt(uow, actor, receipt_id, lock=True)
    if receipt["status"] != "registered":
        raise InvalidState(f"the receipt is already {receipt['status']}", state=receipt["status"])
    confirmed = Receipts(uow).confirm(receipt_id, actor["staff_id"], now)
    uow.publish("receipt.confirmed", events.receipt_confirmed(confirmed))


def allocate_receipt(uow, actor, data, now):
    """FR-86 (核销): a confirmed receipt to one or more issued invoices of its customer, in any
    amounts: never more than the receipt's unallocated amount nor any invoice's open amount."""
    domain.require_role("allocate_receipt", actor)
    receipt = _visible_receipt(uow, actor, data["receipt_id"], lock=True)
    if receipt["status"] != "confirmed":
        raise InvalidState("a receipt is allocated once finance has confirmed it", state=receipt["status"])
    requested = [(a["invoice_id"], a["amount"]) for a in data["allocations"]]
    invoices = {row["id"]: row for row in Invoices(uow).lock_many([i for i, _ in requested])}
    errors = {}
    for index, (invoice_id, _) in enumerate(requested):
        invoice = invoices.get(invoice_id)
        if invoice is None or not _scope_allows(actor, invoice):
            errors[f"allocations.{index}.invoice_id"] = ["no such invoice"]
        elif invoice["red"] or invoice["status"] != "issued":
            errors[f"allocations.{index}.invoice_id"] = [f"invoice is {'red' if invoice['red'] else invoice['status']}:"
                                                         " only issued invoices are allocated"]
        elif invoice["customer_id"] != receipt["customer_id"]:
            errors[f"allocations.{index}.invoice_id"] = ["invoice of another customer than the receipt's"]
    if errors:
        raise ValidationFailed("allocations name invoices this receipt cannot pay", errors=errors)
    opens = {i: domain.open_amount(inv["total"], inv["reversed_amount"], inv["allocated_amount"])
             for i, inv in invoices.items()}
    total = domain.check_allocations(receipt["amount"] - receipt["allocated_amount"], opens, requested)
    made = []
    repo = Allocations(uow)
    for invoice_id, amount in requested:
        before = invoices[invoice_id]
        after = Invoices(uow).change_amounts(invoice_id, ZERO, amount)
        if after is None:
            raise OverAllocation(f"invoice {before['number']} has only {opens[invoice_id]} open")
        allocation = repo.add({"id": uuid.uuid4(), "receipt_id": receipt["id"], "invoice_id": invoice_id,
                               "customer_id": receipt["customer_id"], "amount": amount,
                               "allocated_by": actor["staff_id"], "allocated_at": now, "note": data.get("note")})
        made.append(dict(allocation, invoice_number=before["number"]))
        _settlement(uow, before, after, now)
    updated = Receipts(uow).change_allocated(receipt["id"], total)
    if updated is None:
        raise OverAllocation(f"the receipt has only {receipt['amount'] - receipt['allocated_amount']} unallocated")
    uow.publish("receipt.allocated", events.receipt_allocated(updated, made))


def reverse_allocation(uow, actor, data, now):
    """An allocation is undone with a reason; the money is the customer's unallocated credit again."""
    domain.require_role("reverse_allocation", actor)
    receipt = _visible_receipt(uow, actor, data["receipt_id"], lock=True)
    allocation = Allocations(uow).get(data["allocation_id"])
    if allocation is None or allocation["receipt_id"] != receipt["id"]:
        raise AllocationNotFound(f"allocation {data['allocation_id']} not found on receipt {receipt['number']}")
    if allocation["reversed_at"] is not None:
        raise InvalidState("the allocation is already reversed", reversed_at=allocation["reversed_at"].isoformat())
    before = Invoices(uow).get(allocation["invoice_id"], lock=True)
    reversed_ = Allocations(uow).reverse(allocation["id"], actor["staff_id"], data["reason"], now)
    after = Invoices(uow).change_amounts(before["id"], ZERO, -allocation["amount"])
    updated = Receipts(uow).change_allocated(receipt["id"], -allocation["amount"])
    _settlement(uow, before, after, now)
    uow.publish("receipt.allocation_reversed", events.receipt_allocation_reversed(updated, reversed_, before["number"]))


def receipt_view(uow, receipt):
    return dict(receipt, unallocated_amount=receipt["amount"] - receipt["allocated_amount"],
                allocations=Allocations(uow).of_receipt(receipt["id"]))


def get_receipt(uow, actor, receipt_id):
    return receipt_view(uow, _visible_receipt(uow, actor, receipt_id))


def list_receipts(uow, actor, filters, after, limit):
    scope_sql, scope_params = access.scope(actor).sql("owner_id", "owner_team")
    return Receipts(uow).list(scope_sql, scope_params, filters, after, limit)


# -- statements (FR-87–FR-89) -------------------------------------------------------------------
def statement(uow, actor, customer_id, month, now):
    """FR-87: opening + invoices − red invoices − receipts = closing, with the entries. Also the
    open receivables and the unallocated receipts at the month's end, each from its own records
    (closing = receivable − unallocated, a check of the books)."""
    customer = visible_customer(uow, actor, customer_id)
    start_day, end_day = domain.parse_month(month)
    start, end = local_start(start_day), local_start(end_day)
    ledger = Ledger(uow)
    entries = ledger.entries(customer_id, start, end)
    figures = domain.statement(ledger.balance_before(customer_id, start), entries)
    receivable = sum((i["open"] for i in ledger.open_items(end, customer_id=customer_id)), ZERO)
    return dict(figures, customer_id=str(customer_id), customer_name=customer.get("name"), month=month,
                period_start=start_day, period_end=end_day - timedelta(days=1), final=local_date(now) >= end_day,
                receivable=receivable, unallocated=ledger.unallocated_at(customer_id, end), entries=entries,
                confirmation=ledger.confirmation(customer_id, month),
                confirmation_history=ledger.confirmation_history(customer_id, month))


def confirm_statement(uow, actor, data, now):
    """FR-87/FR-89: the customer confirms the month's statement, or disputes it (with a note)."""
    domain.require_role("confirm_statement", actor)
    customer = visible_customer(uow, actor, data["customer_id"])
    start_day, end_day = domain.parse_month(data["month"])
    domain.check_month_ended(end_day, local_date(now))
    ledger = Ledger(uow)
    current = ledger.confirmation(data["customer_id"], data["month"])
    status = domain.statement_transition(current["status"] if current else None, data["outcome"])
    figures = domain.statement(ledger.balance_before(data["customer_id"], local_start(start_day)),
                               ledger.entries(data["customer_id"], local_start(start_day), local_start(end_day)))
    ledger.record_confirmation({
        "customer_id": data["customer_id"], "month": data["month"], "status": status, "opening": figures["opening"],
        "closing": figures["closing"], "contact": data.get("contact"), "note": data.get("note"),
        "recorded_by": actor["staff_id"], "recorded_at": now, "owner_id": customer.get("owner_id"),
        "owner_team": customer.get("owner_team"), "region": customer.get("region")})


def campaign(uow, actor, month, now):
    """FR-89: the June / December balance confirmation, per customer and per owner: every customer
    with a balance at the month's end or any movement in the half-year ending with it."""
    start_day = domain.check_campaign_month(month)
    _, end_day = domain.parse_month(month)
    half_start = local_start(domain.add_months(start_day, -5))
    scope_sql, scope_params = access.scope(actor).sql("c.owner_id", "c.owner_team")
    rows = Ledger(uow).campaign(month, half_start, local_start(end_day), scope_sql, scope_params)
    items = [dict(row, status=row["status"] or "pending") for row in rows]
    owners = {}
    for item in items:
        counts = owners.setdefault(item["owner_id"], {"owner_id": item["owner_id"], "customers": 0, "confirmed": 0,
                                                      "disputed": 0, "pending": 0})
        counts["customers"] += 1
        counts[item["status"]] += 1
    total = {"customers": len(items), "confirmed": sum(1 for i in items if i["status"] == "confirmed"),
             "disputed": sum(1 for i in items if i["status"] == "disputed"),
             "pending": sum(1 for i in items if i["status"] == "pending")}
    by_owner = [dict(c, completion=_completion(c)) for c in owners.values()]
    return dict(total, month=month, final=local_date(now) >= end_day, completion=_completion(total),
                by_owner=by_owner, items=items)


def _completion(counts):
    if not counts["customers"]:
        return Decimal("0")
    return (Decimal(counts["confirmed"]) / counts["customers"]).quantize(Decimal("0.0001"))


# -- receivables aging, DSO and the billing report (FR-90, FR-91) -------------------------------
def aging(uow, actor, as_of, customer_id, dso_days, limit, after=None):
    """FR-91: the open receivables at the end of `as_of` by days past due, in total and per
    customer, and DSO. Issue 11: the buckets are summed by PostgreSQL and the customers come as a
    page — the `limit` with the largest totals (after the keyset `after` = (total, customer_id)),
    with how many customers have an open item and `next_cursor` for the rest; `totals` and `dso`
    are over every open item in the caller's scope, whatever the page."""
    instant = local_start(as_of + timedelta(days=1))
    scope_sql, scope_params = access.scope(actor).sql("i.owner_id", "i.owner_team")
    totals, rows = Ledger(uow).aging(instant, as_of, scope_sql=scope_sql, scope_params=scope_params,
                                     customer_id=customer_id, limit=limit + 1, after=after)
    rows, next_cursor = pagination.page(rows, limit, key=lambda r: (r["total"], r["customer_id"]))
    customers = [{k: row[k] for k in ("customer_id", "name", "owner_id", "owner_team", "region", "oldest_due_date",
                                      *domain.BUCKETS, "total")} for row in rows]
    scope_sql_plain, scope_params_plain = access.scope(actor).sql("owner_id", "owner_team")
    if customer_id is not None:
        scope_sql_plain += " AND customer_id = %s"
        scope_params_plain = list(scope_params_plain) + [customer_id]
    sales = Ledger(uow).sales_between(instant - timedelta(days=dso_days), instant, scope_sql_plain, scope_params_plain)
    figures = {k: totals[k] for k in (*domain.BUCKETS, "total")}
    return {"as_of": as_of, "totals": figures, "dso": domain.dso(figures["total"], sales, dso_days),
            "dso_days": dso_days, "customer_count": totals["customers"], "customers": customers,
            "next_cursor": next_cursor}


def report_billing(uow, actor, data):
    """Invoiced and collected per rep | team | region | product | customer, with collection rate,
    receivable at the period's end and DSO (the gateway joins these with the other services')."""
    start, end = local_start(data["period_start"]), local_start(data["period_end"] + timedelta(days=1))
    days = (data["period_end"] - data["period_start"]).days + 1
    scope_sql, scope_params = access.scope(actor).sql("i.owner_id", "i.owner_team")
    reports = Reports(uow)
    invoiced, collected = reports.billing(data["group_by"], start, end, scope_sql, scope_params)
    receivable = reports.receivable_by(data["group_by"], end, scope_sql, scope_params)
    groups = {}
    for figure, rows in (("invoiced", [(r["key"], r["amount"]) for r in invoiced]),
                         ("collected", [(r["key"], r["amount"]) for r in collected]), ("receivable", receivable)):
        for key, amount in rows:
            if figure == "receivable" and not amount:
                continue
            group = groups.setdefault(None if key is None else str(key),
                                      {"invoiced": ZERO, "collected": ZERO, "receivable": ZERO})
            group[figure] += Decimal(amount or 0)
    result = []
    for key, group in sorted(groups.items(), key=lambda kv: (kv[0] is None, kv[0] or "")):
        result.append(_report_figures(dict(group, key=key), days))
    totals = _report_figures({"key": None, **{name: sum((g[name] for g in groups.values()), ZERO)
                                              for name in ("invoiced", "collected", "receivable")}}, days)
    return {"period_start": data["period_start"], "period_end": data["period_end"], "group_by": data["group_by"],
            "groups": result, "totals": totals}


def _report_figures(group, days):
    invoiced, collected, receivable = (domain.money(group[k]) for k in ("invoiced", "collected", "receivable"))
    return {"key": group["key"], "invoiced": invoiced, "collected": collected, "receivable": receivable,
            "collection_rate": domain.collection_rate(collected, invoiced),
            "dso": domain.dso(receivable, invoiced, days)}
