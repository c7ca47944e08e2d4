"""The order saga and the other commands that move things in other services (DESIGN.md §3).

Each is a row in `sagas` whose state is stored at every step, driven by whoever holds its lease:
the request that started it, or — once the lease has run out because that process died — the
recovery job (`recover`), which resumes it from the stored state or compensates it. No database
transaction is ever open while another service is called. Every remote call is idempotent by a
key derived from the saga (reservation ids per attempt, request ids per saga), so calling again
after a crash has the effect of once.

Kinds:
  confirm       reserve_stock ∥ reserve_credit → confirmed | credit_hold | compensated back to draft
  release       reserve_credit with override (∥ reserve_stock again if the held stock expired)
                → confirmed | compensated back to credit_hold
  cancel        release_reservation ∥ release_credit for a cancelled order (compensating only)
  replacement   reserve_stock → confirmed no-charge order → commit_reservation → create_delivery
  convert       reserve_credit → inventory.convert_loan → confirmed order, loan quantities converted
  loan_issue / loan_return / return_receive   one idempotent inventory call, then the local change
No nameko here: the RPC proxies are passed in.
"""
import logging
import uuid
from datetime import timedelta

from order import domain, events
from order.chains import to_steps
from order.db import Contracts, Loans, Orders, Quotas, Quotes, Returns, Sagas, Steps
from order.domain import EXPIRED, KEPT, PENDING, REFUSED, RESERVED, UNKNOWN
from order.exceptions import (
    ApprovalRequired, ConfirmationInProgress, ContractNotSigned, CreditLimitExceeded, DocumentNotFound,
    InsufficientStock, InvalidState, QuotaExceeded, RoleNotAllowed,
)
from shared import approvals
from shared.access import SYSTEM_ACTOR, scope
from shared.errors import (
    BusinessRuleViolation, NotFound, SalesError, ServiceUnavailable, UpstreamTimeout, ValidationFailed,
)

log = logging.getLogger(__name__)

RUNNING, COMPENSATING, DONE, HELD, FAILED = "running", "compensating", "done", "held", "failed"
ACTIVE = (RUNNING, COMPENSATING)


def reservation_ids(order_id, attempt):
    order_id = uuid.UUID(str(order_id))
    return uuid.uuid5(order_id, f"stock-{attempt}"), uuid.uuid5(order_id, f"credit-{attempt}")


def _refusal(exc):
    """What a refusal said, as stored in the saga and carried on the error we raise."""
    if isinstance(exc, SalesError):
        return dict(exc.extra or {}, code=exc.code, detail=exc.detail, status=exc.status)
    return {"code": "UPSTREAM_FAILED", "detail": f"{type(exc).__name__}: {exc}", "status": 503}


def error_from(info, **extra):
    """A stored refusal as an error of the kind it was (so it crosses RPC as itself)."""
    status = int(info.get("status") or 503)
    kind = {404: NotFound, 409: BusinessRuleViolation, 422: ValidationFailed, 504: UpstreamTimeout}.get(
        status, ServiceUnavailable)
    fields = {k: v for k, v in info.items() if k not in ("code", "detail", "status")}
    fields.update(extra)
    return kind(info.get("detail") or "refused", code=info.get("code") or kind.code, **fields)


class Leg:
    """One remote call of a saga, started at once (call_async) and collected later."""

    def __init__(self, method, **kwargs):
        self.error = None
        self.reply = None
        try:
            self.reply = method.call_async(**kwargs)
        except Exception as exc:  # no such service: nothing was reserved
            self.error = exc

    def collect(self):
        """(status, answer or error): `reserved` (the call succeeded, whatever it did), `refused` (a
        business refusal, 409) or `unknown` (no answer in time, the service is down or crashed: it
        may or may not have acted)."""
        if self.error is not None:
            return UNKNOWN, self.error
        try:
            return RESERVED, self.reply.result()
        except SalesError as exc:
            return (REFUSED if exc.status == 409 else UNKNOWN), exc
        except Exception as exc:  # a crash in the callee arrives as RemoteError
            return UNKNOWN, exc


class SagaRunner:
    def __init__(self, db, inventory, billing, settings, clock=domain.utcnow):
        self.db = db
        self.inventory = inventory
        self.billing = billing
        self.settings = settings
        self.clock = clock
        self.outcome = None  # the order, its lines and saga as the last confirmation left them

    def lease(self, now):
        return now + timedelta(seconds=self.settings.saga_lease)

    # -- starting ------------------------------------------------------------------------------
    def _begin(self, uow, saga, now):
        """Record a new running saga (its lease taken by this request)."""
        row = Sagas(uow).start(dict(saga, lease_until=self.lease(now), started_at=now))
        if row is None:
            raise ConfirmationInProgress("another operation is running on this document; retry shortly",
                                         subject_id=str(saga["subject_id"]))
        return row

    def _running(self, subject_id, now):
        """A saga already running on the subject: take it over if its driver has gone quiet (a
        retried request after a crash), else 409 — it is being worked on."""
        with self.db.transaction() as uow:
            active = Sagas(uow).active_for(subject_id)
        if active is None:
            return None
        taken = self.take_over(active, now)
        if taken is None:
            raise ConfirmationInProgress("this document is being worked on; retry shortly",
                                         subject_id=str(subject_id), kind=active["kind"])
        return taken

    def confirm(self, actor, order_id):
        """Confirm an order (FR-60, FR-63, FR-65, FR-67, FR-73): contract signed if it has one,
        the quote's approvals still bound to its content, quotas consumed, then stock and credit
        reserved in parallel. Confirming a confirmed (or held) order answers it again."""
        now = self.clock()
        with self.db.transaction() as uow:
            orders = Orders(uow)
            # a draft the caller may see moves to confirming at once (the checks below roll it back)
            order = orders.start_confirming(order_id, scope(actor), now)
            saga = None
            if order is not None:
                self._check_approvals(uow, order)
                month = domain.quota_month(now)
                lines = orders.lines_for_quotas(order, month)
                shortfall = Quotas(uow).consume(order, lines, month) if any(l["quota"] for l in lines) else None
                if shortfall:
                    raise QuotaExceeded(
                        f"{shortfall['sku']}: {shortfall['requested']} more would exceed the quota of "
                        f"{shortfall['quota']} for {shortfall['period']} ({shortfall['consumed']} already taken)",
                        **shortfall)
                attempt = order["attempts"]
                stock_id, credit_id = reservation_ids(order_id, attempt)
                saga = self._begin(uow, {"id": uuid.uuid4(), "kind": "confirm", "subject_id": order_id,
                                         "order_id": order_id, "attempt": attempt, "stock_reservation_id": stock_id,
                                         "credit_reservation_id": credit_id}, now)
            else:
                order = orders.get(order_id, scope(actor), lock=True)
                if order is None:
                    raise DocumentNotFound(f"order {order_id} not found")
                if order["status"] == "cancelled":
                    raise InvalidState("a cancelled order cannot be confirmed", current_status="cancelled")
                if order["status"] == "draft":  # cannot be: the update above would have moved it
                    raise ConfirmationInProgress("the order changed while it was being confirmed; retry shortly",
                                                 subject_id=str(order_id))
                if order["status"] != "confirming":
                    return order_id
        if saga is None:
            saga = self._running(order_id, now)
            if saga is None:
                return order_id
            return self.drive(saga)
        # the order and its lines as this transaction left them: the reservations are asked from them
        return self._reserve(saga, (order, lines))

    @staticmethod
    def _check_approvals(uow, order):
        if order["contract_id"] is not None:
            contract = Contracts(uow).get(order["contract_id"])
            if contract is None or contract["status"] not in ("signed", "effective", "completed"):
                raise ContractNotSigned(
                    f"contract {contract['number'] if contract else order['contract_id']} is not signed by both "
                    "parties (FR-58)", contract_id=str(order["contract_id"]),
                    contract_status=contract["status"] if contract else None)
        if order["quote_id"] is not None:
            quote = Quotes(uow).get(order["quote_id"])
            steps = to_steps(Steps(uow).load("quote", quote["id"], quote["round"]))
            if quote["status"] not in ("approved", "sent", "accepted") or not approvals.valid_for(
                    steps, quote["content_hash"]):
                raise ApprovalRequired(f"quote {quote['number']} is no longer approved for its content",
                                       quote_id=str(quote["id"]))

    def release_hold(self, actor, order_id, reason):
        """Finance or the sales director releases a credit hold: credit reserved with an override
        that records who and why; stock reserved again if the held stock expired meanwhile."""
        if actor["role"] not in ("finance", "sales_director"):
            raise RoleNotAllowed("only finance or the sales director release a credit hold", role=actor["role"])
        now = self.clock()
        with self.db.transaction() as uow:
            orders = Orders(uow)
            order = orders.get(order_id, scope(actor), lock=True)
            if order is None:
                raise DocumentNotFound(f"order {order_id} not found")
            if order["status"] not in ("credit_hold", "confirming"):
                if order["status"] in ("confirmed", "partially_shipped", "shipped", "invoiced", "paid", "closed"):
                    return order_id
                raise InvalidState(f"an order that is {order['status']} is not on credit hold",
                                   current_status=order["status"])
            saga = None
            if order["status"] == "credit_hold":
                held = Sagas(uow).latest(order_id, kinds=("confirm", "release"))
                attempt = order["attempts"] + 1
                stock_id, credit_id = reservation_ids(order_id, attempt)
                kept = held is not None and held["stock_status"] in (RESERVED, KEPT)
                saga = self._begin(uow, {
                    "id": uuid.uuid4(), "kind": "release", "subject_id": order_id, "order_id": order_id,
                    "attempt": attempt, "stock_status": KEPT if kept else PENDING,
                    "stock_reservation_id": held["stock_reservation_id"] if kept else stock_id,
                    "credit_reservation_id": credit_id,
                    "payload": {"override": {"actor": actor, "reason": reason}, "rereserve": not kept}}, now)
                orders.move(order_id, ["credit_hold"], status="confirming", attempts=attempt, _now=now)
        if saga is None:
            saga = self._running(order_id, now)
            if saga is None:
                return order_id
        return self.drive(saga)

    def cancel(self, actor, order_id, reason):
        """Cancel from draft, credit hold or confirmed with nothing shipped: the quota is given
        back and order.cancelled published at once; the stock and credit held are released (now, or
        by the recovery job if a service is down)."""
        now = self.clock()
        with self.db.transaction() as uow:
            orders = Orders(uow)
            order = orders.get(order_id, scope(actor), lock=True)
            if order is None:
                raise DocumentNotFound(f"order {order_id} not found")
            if order["status"] == "cancelled":
                return order_id
            if order["status"] == "confirming":
                raise ConfirmationInProgress("the order is being confirmed; cancel it once that has finished")
            domain.check({"cancel": (set(domain.ORDER_CANCELLABLE), "cancelled")}, "order", order["status"], "cancel")
            previous = order["status"]
            order = orders.move(order_id, [previous], status="cancelled", cancelled_at=now, cancel_reason=reason,
                                _now=now)
            Quotas(uow).release(order_id)
            uow.publish("order.cancelled", events.order_cancelled(order, previous))
            saga = None
            if previous in ("credit_hold", "confirmed"):
                held = Sagas(uow).latest(order_id, kinds=("confirm", "release", "replacement", "convert"))
                saga = self._begin(uow, {
                    "id": uuid.uuid4(), "kind": "cancel", "subject_id": order_id, "order_id": order_id,
                    "attempt": order["attempts"], "state": COMPENSATING,
                    "stock_status": held["stock_status"] if held else PENDING,
                    "credit_status": held["credit_status"] if held else PENDING,
                    "payload": {"reason": reason}}, now)
        if saga is not None:
            try:
                self.compensate(saga)
            except ServiceUnavailable:
                log.warning("order %s cancelled; its releases are left to the recovery job", order_id)
        return order_id

    def replacement(self, actor, order_id, order, lines):
        """A no-charge order for after-sales (unit price 0): stock reserved, no credit needed,
        confirmed, and its delivery note raised. Idempotent by the caller's request id (the order id
        is derived from it)."""
        now = self.clock()
        with self.db.transaction() as uow:
            existing = Orders(uow).get(order_id)
            if existing is None:
                Orders(uow).add(dict(order, id=order_id, number=uow.next_number("SO", now.year), status="confirming",
                                     total=domain.ZERO, created_at=now), lines)
                stock_id, _ = reservation_ids(order_id, 1)
                saga = self._begin(uow, {"id": uuid.uuid4(), "kind": "replacement", "subject_id": order_id,
                                         "order_id": order_id, "stock_reservation_id": stock_id,
                                         "credit_status": KEPT}, now)
                uow.execute("UPDATE orders SET attempts = 1 WHERE id = %s", (order_id,))
            else:
                saga = None
        if saga is None:
            saga = self._running(order_id, now)
            if saga is None:
                return order_id
        return self.drive(saga)

    def convert(self, actor, loan_id, order_id, order, priced):
        """FR-99: a loan converted to a sale raises the order (confirmed once credit is reserved)
        and, through inventory.convert_loan, the delivery and goods issue — no goods move again."""
        now = self.clock()
        with self.db.transaction() as uow:
            if Orders(uow).get(order_id) is None:
                loans = Loans(uow)
                loan = loans.get(loan_id, scope(actor), lock=True)
                if loan is None:
                    raise DocumentNotFound(f"loan {loan_id} not found")
                domain.check(domain.LOAN_MACHINE, "loan", loan["status"], "convert")
                domain.check_loan_movement([{"sku": l.sku, "quantity": l.quantity} for l in priced],
                                           loans.lines(loan_id), "converted")
                Orders(uow).add(dict(order, id=order_id, number=uow.next_number("SO", now.year), status="confirming",
                                     total=domain.total_of(priced), created_at=now, attempts=1), priced)
                _, credit_id = reservation_ids(order_id, 1)
                saga = self._begin(uow, {"id": uuid.uuid4(), "kind": "convert", "subject_id": loan_id,
                                         "order_id": order_id, "stock_status": KEPT,
                                         "credit_reservation_id": credit_id}, now)
                uow.execute("UPDATE orders SET attempts = 1 WHERE id = %s", (order_id,))
            else:
                saga = None
        if saga is None:
            saga = self._running(loan_id, now)
            if saga is None:
                return order_id
        return self.drive(saga)

    def _remote(self, kind, actor, subject_id, saga_id, prepare):
        """Start (or take over) a single-remote-step saga; `prepare(uow)` checks the subject and
        returns the payload, or None when the work is already done."""
        now = self.clock()
        with self.db.transaction() as uow:
            done = Sagas(uow).get(saga_id)
            saga = None
            if done is None:
                payload = prepare(uow)
                if payload is not None:
                    saga = self._begin(uow, {"id": saga_id, "kind": kind, "subject_id": subject_id,
                                             "payload": payload}, now)
            elif done["state"] == FAILED:
                raise error_from((done["error"] or {}).get("step") or {"status": 409, "code": "REFUSED"})
        if saga is None:
            saga = self._running(subject_id, now)
            if saga is None or saga["id"] != saga_id:
                return subject_id
        return self.drive(saga)

    def issue_loan(self, actor, loan_id):
        def prepare(uow):
            loan = Loans(uow).get(loan_id, scope(actor), lock=True)
            if loan is None:
                raise DocumentNotFound(f"loan {loan_id} not found")
            if loan["status"] == "lent" or loan["issued_at"] is not None:
                return None
            domain.check(domain.LOAN_MACHINE, "loan", loan["status"], "issue")
            return {}

        return self._remote("loan_issue", actor, loan_id, uuid.uuid5(uuid.UUID(str(loan_id)), "issue"), prepare)

    def return_loan(self, actor, loan_id, request_id, lines):
        def prepare(uow):
            loans = Loans(uow)
            loan = loans.get(loan_id, scope(actor), lock=True)
            if loan is None:
                raise DocumentNotFound(f"loan {loan_id} not found")
            domain.check(domain.LOAN_MACHINE, "loan", loan["status"], "return")
            totals = domain.check_loan_movement(lines, loans.lines(loan_id), "returned")
            return {"lines": [{"sku": sku, "quantity": quantity} for sku, quantity in sorted(totals.items())]}

        return self._remote("loan_return", actor, loan_id, uuid.uuid5(uuid.UUID(str(loan_id)), f"return:{request_id}"),
                            prepare)

    def receive_return(self, actor, return_id):
        def prepare(uow):
            ret = Returns(uow).get(return_id, scope(actor), lock=True)
            if ret is None:
                raise DocumentNotFound(f"return {return_id} not found")
            if ret["status"] == "received":
                return None
            domain.check(domain.RETURN_MACHINE, "return", ret["status"], "receive")
            return {}

        return self._remote("return_receive", actor, return_id, uuid.uuid5(uuid.UUID(str(return_id)), "receive"),
                            prepare)

    # -- driving a saga ------------------------------------------------------------------------
    def drive(self, saga):
        """Run `saga` from its stored state to its end (or as far as the other services allow)."""
        kind = saga["kind"]
        if saga["state"] == COMPENSATING:
            return self.compensate(saga)
        return getattr(self, f"_run_{kind}")(saga)

    def take_over(self, saga, now):
        """The lease of a saga whose driver has gone quiet, for a retried request; None if it is
        still someone else's."""
        if saga["lease_until"] >= now:
            return None
        with self.db.transaction() as uow:
            return Sagas(uow).renew(saga["id"], self.lease(now), saga["lease_until"])

    def _update(self, saga, **fields):
        with self.db.transaction() as uow:
            return Sagas(uow).update(saga["id"], self.clock(), **fields)

    # -- confirm and release (the order saga) ----------------------------------------------------
    def _run_confirm(self, saga):
        return self._reserve(saga)

    def _run_release(self, saga):
        return self._reserve(saga)

    def _reserve(self, saga, loaded=None):
        """Reserve what the saga has not yet got, in parallel; then confirm, hold or compensate.
        The legs' answers are stored with the outcome in one transaction (confirmed or held): a
        crash before it leaves the saga running, and resuming it asks again under the same
        reservation ids, which has the effect of once."""
        if loaded is None:
            with self.db.transaction() as uow:
                orders = Orders(uow)
                loaded = orders.get(saga["order_id"]), orders.lines(saga["order_id"])
        order, lines = loaded
        stock_leg = credit_leg = None
        if saga["stock_status"] in (PENDING, UNKNOWN, EXPIRED):
            stock_leg = self._stock_leg(saga, order, lines)
        if saga["credit_status"] in (PENDING, UNKNOWN):
            credit_leg = Leg(
                self.billing.reserve_credit, reservation_id=str(saga["credit_reservation_id"]),
                order_id=str(order["id"]), customer_id=str(order["customer_id"]),
                amount=str(domain.money(order["total"])), override=saga["payload"].get("override"))
        stock, stock_info = stock_leg.collect() if stock_leg else (saga["stock_status"], None)
        credit, credit_info = credit_leg.collect() if credit_leg else (saga["credit_status"], None)
        refusals = dict(saga["error"] or {})
        if stock_info is not None and stock != RESERVED:
            refusals["stock"] = _refusal(stock_info)
        if credit_info is not None and credit != RESERVED:
            refusals["credit"] = _refusal(credit_info)
        answered = {"stock_status": stock, "credit_status": credit, "error": refusals or None}
        outcome = domain.saga_outcome(stock, credit)
        if outcome == "confirm":
            return self._confirmed(saga, answered=answered, lines=lines)
        if outcome == "credit_hold":
            return self._held(saga, refusals.get("credit"), answered=answered)
        saga = self._update(saga, step="answered", **answered)
        return self.compensate(saga)

    def _stock_leg(self, saga, order, lines):
        """inventory.reserve_stock for the order, keyed by the saga's reservation id."""
        return Leg(
            self.inventory.reserve_stock, reservation_id=str(saga["stock_reservation_id"]),
            order_id=str(order["id"]), order_number=order["number"], customer_id=str(order["customer_id"]),
            owner_id=events._s(order["owner_id"]), owner_team=order["owner_team"], region=order["region"],
            warehouse=order["warehouse"],
            lines=[{"line_id": str(l["id"]), "sku": l["sku"], "quantity": l["quantity"],
                    "unit_price": str(l["unit_price"]), "vat_rate": str(l["vat_rate"])} for l in lines])

    def _confirmed(self, saga, next_step=None, answered=None, lines=None):
        """The order is confirmed and order.confirmed goes out, in one transaction with the legs'
        answers (`answered`); the saga ends there, or stays running at `next_step` (a replacement
        still raises its delivery). `lines`: the order's, when the caller has them (they do not
        change once the order is placed). The order as it now stands is kept in `self.outcome`."""
        now = self.clock()
        with self.db.transaction() as uow:
            orders = Orders(uow)
            fields = {"status": "confirmed", "confirmed_at": now, "_now": now}
            if saga["kind"] == "release":
                fields["credit_released_by"] = saga["payload"]["override"]["actor"]["staff_id"]
            order = orders.move(saga["order_id"], ["confirming"], **fields)
            if order is not None:
                lines = lines if lines is not None else orders.lines(order["id"])
                uow.publish("order.confirmed", events.order_confirmed(order, lines))
            if next_step:
                saga = Sagas(uow).set(saga, now, step=next_step, **(answered or {}))
            else:
                stored = Sagas(uow).set(saga, now, state=DONE, step="confirmed", finished_at=now,
                                        **(answered or {}))
                if order is not None:
                    self.outcome = {"order": order, "lines": lines, "saga": stored}
        return saga if next_step else saga["order_id"]

    def _held(self, saga, refusal, answered=None):
        now = self.clock()
        with self.db.transaction() as uow:
            order = Orders(uow).move(saga["order_id"], ["confirming"], status="credit_hold", credit_held_at=now,
                                     _now=now)
            if order is not None:
                uow.publish("order.credit_held", events.order_credit_held(order, refusal))
            Sagas(uow).set(saga, now, state=HELD, step="credit_hold", finished_at=now, **(answered or {}))
        return saga["order_id"]

    # -- compensation ----------------------------------------------------------------------------
    def compensate(self, saga, reason=None):
        """Give back what the saga took, then put its subject back where it was. Raises the error
        that made it fail (INSUFFICIENT_STOCK with the shortages, CREDIT_LIMIT_EXCEEDED, the
        timeout, ...) once done; if a release cannot be made now, the saga stays `compensating`
        and the recovery job finishes it."""
        if saga["state"] != COMPENSATING:
            error = dict(saga["error"] or {})
            if reason:
                error["abandoned"] = {"code": "SAGA_ABANDONED", "detail": reason}
            saga = self._update(saga, state=COMPENSATING, step="releasing", error=error or None)
        kind = saga["kind"]
        why = f"order saga {kind} compensated"
        # a leg still `pending` may have acted before a crash: it is released like an unknown one
        maybe = (RESERVED, UNKNOWN, PENDING)
        legs = {}
        if kind in ("confirm", "cancel", "replacement") and saga["stock_status"] in maybe + (KEPT,):
            legs["stock"] = Leg(self.inventory.release_reservation, order_id=str(saga["order_id"]), reason=why)
        if kind == "release" and saga["payload"].get("rereserve") and saga["stock_status"] in maybe:
            legs["stock"] = Leg(self.inventory.release_reservation, order_id=str(saga["order_id"]), reason=why)
        if kind in ("confirm", "release", "cancel", "convert") and saga["credit_status"] in maybe:
            legs["credit"] = Leg(self.billing.release_credit, order_id=str(saga["order_id"]), reason=why)
        outcomes = {name: leg.collect() for name, leg in legs.items()}
        failed = {name: info for name, (status, info) in outcomes.items() if status != RESERVED}
        if failed:
            log.warning("saga %s: releases not done yet (%s); the recovery job will retry", saga["id"],
                        ", ".join(f"{k}: {v}" for k, v in failed.items()))
            raise ServiceUnavailable("the reservations could not be released yet; they will be released shortly",
                                     code="COMPENSATION_PENDING", order_id=str(saga["order_id"]))
        self._compensated(saga, released=set(outcomes))
        if kind == "cancel":
            return saga["order_id"]
        raise self._failure(saga)

    def _compensated(self, saga, released):
        now = self.clock()
        kind = saga["kind"]
        with self.db.transaction() as uow:
            orders = Orders(uow)
            fields = {"finished_at": now, "state": DONE if kind == "cancel" else FAILED, "step": "released"}
            if "stock" in released:
                fields["stock_status"] = domain.RELEASED
            if "credit" in released:
                fields["credit_status"] = domain.RELEASED
            Sagas(uow).update(saga["id"], now, **fields)
            if kind == "confirm":
                if orders.move(saga["order_id"], ["confirming"], status="draft", _now=now) is not None:
                    Quotas(uow).release(saga["order_id"])
            elif kind == "release":
                orders.move(saga["order_id"], ["confirming"], status="credit_hold", _now=now)
            elif kind in ("replacement", "convert"):
                order = orders.move(saga["order_id"], ["confirming"], status="cancelled", cancelled_at=now,
                                    cancel_reason=f"{kind} failed", _now=now)
                if order is not None:
                    uow.publish("order.cancelled", events.order_cancelled(order, "confirming"))

    def _failure(self, saga):
        error = saga["error"] or {}
        order_id = str(saga["order_id"])
        stock, credit = error.get("stock"), error.get("credit")
        if saga["stock_status"] == REFUSED and stock:
            extra = {k: v for k, v in stock.items() if k not in ("code", "detail", "status")}
            return InsufficientStock(stock.get("detail") or "not enough stock", order_id=order_id, **extra)
        if saga["credit_status"] == REFUSED and credit and saga["kind"] == "convert":
            extra = {k: v for k, v in credit.items() if k not in ("code", "detail", "status")}
            return CreditLimitExceeded(credit.get("detail") or "credit refused", order_id=order_id, **extra)
        if "abandoned" in error:
            return ServiceUnavailable(error["abandoned"]["detail"], code="SAGA_ABANDONED", order_id=order_id)
        for leg in ("stock", "credit", "step"):
            if leg in error:
                return error_from(error[leg], order_id=order_id)
        return ServiceUnavailable("the operation could not be completed", code="UPSTREAM_FAILED", order_id=order_id)

    # -- cancel ------------------------------------------------------------------------------------
    def _run_cancel(self, saga):
        return self.compensate(saga)

    # -- single remote steps -------------------------------------------------------------------------
    def _step(self, saga, method, **kwargs):
        """One idempotent remote call. Refused → the saga fails and the refusal is raised;
        no answer → the saga stays running (the recovery job retries) and a 504/503 is raised."""
        status, info = Leg(method, **kwargs).collect()
        if status == RESERVED:
            return info
        if status == REFUSED:
            now = self.clock()
            self._update(saga, state=FAILED, step="refused", error={"step": _refusal(info)}, finished_at=now)
            raise info
        self._update(saga, error={"step": _refusal(info)})
        raise info if isinstance(info, SalesError) else ServiceUnavailable(
            f"{type(info).__name__}: {info}", code="UPSTREAM_FAILED")

    def _run_loan_issue(self, saga):
        with self.db.transaction() as uow:
            loans = Loans(uow)
            loan, lines = loans.get(saga["subject_id"]), loans.lines(saga["subject_id"])
        self._step(saga, self.inventory.issue_loan, request_id=str(saga["id"]), loan_id=str(loan["id"]),
                   loan_number=loan["number"], customer_id=str(loan["customer_id"]),
                   owner_id=events._s(loan["owner_id"]), owner_team=loan["owner_team"], region=loan["region"],
                   warehouse=loan["warehouse"], lines=[{"sku": l["sku"], "quantity": l["quantity"]} for l in lines])
        now = self.clock()
        with self.db.transaction() as uow:
            loans = Loans(uow)
            loan = loans.move(loan["id"], ["approved"], status="lent", issued_at=now, _now=now)
            if loan is not None:
                loans.issued(loan["id"])
                uow.publish("loan.issued", events.loan_event(loan, loans.lines(loan["id"]), now))
            Sagas(uow).update(saga["id"], now, state=DONE, step="issued", finished_at=now)
        return saga["subject_id"]

    def _run_loan_return(self, saga):
        lines = saga["payload"]["lines"]
        self._step(saga, self.inventory.return_loan, request_id=str(saga["id"]), loan_id=str(saga["subject_id"]),
                   lines=lines)
        now = self.clock()
        with self.db.transaction() as uow:
            loans = Loans(uow)
            totals = {l["sku"]: l["quantity"] for l in lines}
            if loans.add_movement(saga["subject_id"], "returned_quantity", totals):
                loan = self._settle_loan(uow, saga["subject_id"], now)
                uow.publish("loan.returned", events.loan_event(loan, lines, now))
            Sagas(uow).update(saga["id"], now, state=DONE, step="returned", finished_at=now)
        return saga["subject_id"]

    @staticmethod
    def _settle_loan(uow, loan_id, now):
        loans = Loans(uow)
        status = domain.loan_status_after(loans.lines(loan_id))
        fields = {"status": status, "_now": now}
        if status != "lent":
            fields["closed_at"] = now
        return loans.move(loan_id, ["lent"], **fields) or loans.get(loan_id)

    def _run_return_receive(self, saga):
        with self.db.transaction() as uow:
            returns = Returns(uow)
            ret, lines = returns.get(saga["subject_id"]), returns.lines(saga["subject_id"])
        self._step(saga, self.inventory.receive_return, request_id=str(saga["id"]), return_id=str(ret["id"]),
                   return_number=ret["number"], delivery_id=str(ret["delivery_id"]),
                   lines=[{"delivery_line_id": str(l["delivery_line_id"]), "sku": l["sku"],
                           "quantity": l["quantity"]} for l in lines])
        now = self.clock()
        with self.db.transaction() as uow:
            returns = Returns(uow)
            moved = returns.move(ret["id"], ["approved"], status="received", received_at=now, _now=now)
            if moved is not None:
                uow.publish("return.received", events.return_event(moved, returns.lines(ret["id"]), "received_at"))
            Sagas(uow).update(saga["id"], now, state=DONE, step="received", finished_at=now)
        return saga["subject_id"]

    # -- replacement (after-sales) -------------------------------------------------------------------
    def _run_replacement(self, saga):
        if saga["step"] != "delivery":
            if saga["stock_status"] != RESERVED:
                with self.db.transaction() as uow:
                    orders = Orders(uow)
                    order, lines = orders.get(saga["order_id"]), orders.lines(saga["order_id"])
                status, info = self._stock_leg(saga, order, lines).collect()
                error = {"stock": _refusal(info)} if status != RESERVED else None
                saga = self._update(saga, stock_status=status, step="answered", error=error)
                if status != RESERVED:
                    return self.compensate(saga)
            saga = self._confirmed(saga, next_step="delivery")
        with self.db.transaction() as uow:
            orders = Orders(uow)
            order, lines = orders.get(saga["order_id"]), orders.lines(saga["order_id"])
        # the delivery note needs a committed reservation now, not when order.confirmed arrives
        self._step(saga, self.inventory.commit_reservation, order_id=str(order["id"]))
        delivery = self._step(saga, self.inventory.create_delivery, request_id=str(uuid.uuid5(saga["id"], "delivery")),
                              actor=SYSTEM_ACTOR, order_id=str(order["id"]),
                              lines=[{"sku": l["sku"], "quantity": l["quantity"]} for l in lines])
        now = self.clock()
        with self.db.transaction() as uow:
            uow.execute("UPDATE orders SET delivery_id = %s, updated_at = %s WHERE id = %s",
                        (delivery.get("id"), now, order["id"]))
            Sagas(uow).update(saga["id"], now, state=DONE, step="delivered", finished_at=now)
        return saga["order_id"]

    # -- loan conversion (FR-99) ---------------------------------------------------------------------
    def _run_convert(self, saga):
        with self.db.transaction() as uow:
            orders = Orders(uow)
            order, lines = orders.get(saga["order_id"]), orders.lines(saga["order_id"])
        if saga["credit_status"] in (PENDING, UNKNOWN):
            status, info = Leg(self.billing.reserve_credit, reservation_id=str(saga["credit_reservation_id"]),
                               order_id=str(order["id"]), customer_id=str(order["customer_id"]),
                               amount=str(domain.money(order["total"])), override=None).collect()
            saga = self._update(saga, credit_status=status, step="credit",
                                error={"credit": _refusal(info)} if status != RESERVED else None)
            if status != RESERVED:
                return self.compensate(saga)
        status, info = Leg(
            self.inventory.convert_loan, request_id=str(saga["id"]), loan_id=str(saga["subject_id"]),
            order_id=str(order["id"]), order_number=order["number"],
            lines=[{"order_line_id": str(l["id"]), "sku": l["sku"], "quantity": l["quantity"],
                    "unit_price": str(l["unit_price"]), "vat_rate": str(l["vat_rate"])} for l in lines],
        ).collect()
        if status == REFUSED:
            saga = self._update(saga, error={"step": _refusal(info)})
            return self.compensate(saga)
        if status == UNKNOWN:  # the goods are with the customer: only ever resumed, never undone half-way
            self._update(saga, error={"step": _refusal(info)})
            raise info if isinstance(info, SalesError) else ServiceUnavailable(str(info), code="UPSTREAM_FAILED")
        now = self.clock()
        with self.db.transaction() as uow:
            orders, loans = Orders(uow), Loans(uow)
            order = orders.move(saga["order_id"], ["confirming"], status="confirmed", confirmed_at=now, _now=now)
            if order is not None:
                order_lines = orders.lines(order["id"])
                uow.publish("order.confirmed", events.order_confirmed(order, order_lines))
                totals = {}
                for line in order_lines:
                    totals[line["sku"]] = totals.get(line["sku"], 0) + line["quantity"]
                if loans.add_movement(saga["subject_id"], "converted_quantity", totals):
                    loan = self._settle_loan(uow, saga["subject_id"], now)
                    uow.publish("loan.converted", events.loan_event(
                        loan, [{"sku": k, "quantity": v} for k, v in totals.items()], now, order_id=str(order["id"]),
                        order_number=order["number"]))
            Sagas(uow).update(saga["id"], now, state=DONE, step="converted", finished_at=now)
        return saga["order_id"]

    # -- the recovery job ---------------------------------------------------------------------------
    def recover(self, as_of, limit=100):
        """Resume or compensate every saga whose driver died (its lease ran out before `as_of`).
        Replica-safe: each saga is claimed with SKIP LOCKED and a new lease. A confirmation younger
        than the resume window is resumed (the same reservation ids: the effect of once), an older
        one compensated; cancellations and compensations are finished; single remote steps retried."""
        report = {"claimed": 0, "resumed": 0, "compensated": 0, "finished": 0, "pending": 0}
        for _ in range(limit):
            with self.db.transaction() as uow:
                saga = Sagas(uow).claim_stale(as_of, self.lease(as_of))
            if saga is None:
                break
            report["claimed"] += 1
            try:
                if saga["state"] == RUNNING and saga["kind"] in ("confirm", "release") and not domain.may_resume(
                        saga["started_at"], as_of, self.settings.resume_window):
                    report["compensated"] += 1
                    self.compensate(saga, reason="abandoned by a crashed confirmation, compensated by the recovery job")
                else:
                    report["resumed" if saga["state"] == RUNNING else "compensated"] += 1
                    self.drive(saga)
            except SalesError as exc:  # a refusal ends a saga too (compensated): see where it stands
                log.info("recovered saga %s (%s): %s", saga["id"], saga["kind"], exc)
            except Exception:
                log.exception("recovering saga %s failed; it will be retried", saga["id"])
            with self.db.transaction() as uow:
                state = Sagas(uow).get(saga["id"])["state"]
            report["pending" if state in ACTIVE else "finished"] += 1
        return report

