"""Entrypoints of the billing service: load and check the input, run the operation in a unit of
work (idempotent by request_id, or by the business key), dump the answer. The rules are in
domain.py, what each command does in operations.py, the SQL in db.py."""
import uuid
from datetime import date, datetime, timezone
from decimal import Decimal

import psycopg2
from nameko.extensions import DependencyProvider
from nameko.timer import timer
from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential

import billing.metrics  # noqa: F401  (registers the business metrics)
from billing import domain, operations, settings as billing_settings
from billing.db import Books, CreditAccounts, OrderDocuments
from billing.schemas import (
    aging_input, aging_out, allocate_input, campaign_input, campaign_out, cancel_invoice_input, confirm_statement_input,
    create_invoice_input, credit_account_out, credit_summary_out, customer_created_data, customer_owner_changed_data,
    customer_updated_data, goods_issued_data, goods_returned_data, invoice_filters, invoice_out, order_cancelled_data,
    receipt_filters, receipt_input, receipt_out, recompute_input, recompute_out, release_credit_input,
    release_credit_out, report_input, report_out, reserve_credit_input, reserve_credit_out, reverse_allocation_input,
    reverse_invoice_input, set_credit_limit_input, statement_input, statement_out,
)
from shared import access, books as kit_books, pagination
from shared.dependencies import Database
from shared.entrypoints import event_handler, rpc
from shared.errors import ValidationFailed
from shared.service import ServiceBase
from shared.validation import load, load_actor
from shared.workdays import local_date

# a deadlock or serialisation failure rolls the whole command back: it is safe to run it again
NUMBERED = [("invoices", "number"), ("receipts", "number")]  # the numbers this service gives (get_books)
RETRYABLE = (psycopg2.errors.DeadlockDetected, psycopg2.errors.SerializationFailure)


class Settings(DependencyProvider):
    """Billing's settings (billing.settings), read and checked when the container starts."""

    def setup(self):
        self.value = billing_settings.load()

    def get_dependency(self, worker_ctx):
        return self.value


def _now():
    return datetime.now(timezone.utc)


def _occurred_at(event):
    return datetime.fromisoformat(event["occurred_at"])


class BillingService(ServiceBase):
    name = "billing"

    db = Database()
    settings = Settings()

    # -- plumbing --------------------------------------------------------------------------------
    def _transaction(self, work):
        """Run `work(uow)` in a unit of work, again (at most twice more) after a deadlock."""
        for attempt in Retrying(stop=stop_after_attempt(3), wait=wait_exponential(multiplier=0.05, max=0.5),
                                retry=retry_if_exception_type(RETRYABLE), reraise=True):
            with attempt:
                with self.db.transaction() as uow:
                    return work(uow)

    def _read(self, work):
        """Run `work(uow)`, reads only, each statement committed on its own: no BEGIN, no COMMIT
        (issue 11: a round trip less; under READ COMMITTED each statement saw its own snapshot anyway)."""
        with self.db.autocommit() as uow:
            return work(uow)

    def _command(self, command, request_id, request, work):
        """An idempotent command: the same request_id and request answer the first answer again."""
        if not request_id or not str(request_id).strip():
            raise ValidationFailed("request_id is required", errors={"request_id": ["required"]})

        def run(uow):
            replay = uow.begin_command(command, request_id, request)
            if replay:
                return replay.response
            return uow.finish_command(work(uow))
        return self._transaction(run)

    # -- events consumed -------------------------------------------------------------------------
    @event_handler("customer", "customer.created", expects=customer_created_data)
    def on_customer_created(self, uow, event):
        """A new customer gets a credit account with limit 0 (FR-63) and billing keeps its tax
        details and owner for invoices and row-level access."""
        data = event["data"]
        customer_id = data.pop("customer_id")
        CreditAccounts(uow).open(customer_id, domain.OPENING_LIMIT, domain.CURRENCY,
                                            reason="account opened for a new customer", source_event=event["event_id"])
        operations.apply_customer_fields(uow, customer_id, data, _occurred_at(event))

    @event_handler("customer", "customer.updated", expects=customer_updated_data)
    def on_customer_updated(self, uow, event):
        data = event["data"]
        operations.apply_customer_fields(uow, data.pop("customer_id"), data, _occurred_at(event))

    @event_handler("customer", "customer.owner_changed", expects=customer_owner_changed_data)
    def on_customer_owner_changed(self, uow, event):
        """Row-level access follows the customer: its documents move to the new owner and team."""
        data = event["data"]
        operations.apply_customer_fields(uow, data.pop("customer_id"), data, _occurred_at(event))

    @event_handler("inventory", "goods.issued", expects=goods_issued_data)
    def on_goods_issued(self, uow, event):
        """The issued delivery lines become invoiceable (FR-81)."""
        operations.record_goods_issued(uow, event["data"], event["event_id"])

    @event_handler("inventory", "goods.returned", expects=goods_returned_data)
    def on_goods_returned(self, uow, event):
        """FR-95: a red-letter invoice for the invoiced part of returned goods."""
        operations.record_goods_returned(uow, event["data"], _now())

    @event_handler("order", "order.cancelled", expects=order_cancelled_data)
    def on_order_cancelled(self, uow, event):
        """A safety net beside the saga's own release_credit call."""
        data = event["data"]
        operations.release_credit(uow, data["order_id"], "order cancelled" + (f": {data['reason']}"
                                                                              if data["reason"] else ""))

    # -- credit (FR-63–FR-66) --------------------------------------------------------------------
    @rpc
    def get_credit_account(self, *, actor, customer_id):
        actor = load_actor(actor)
        customer_id = _uuid(customer_id, "customer_id")
        return credit_account_out.dump(self._transaction(lambda uow: operations.credit_account(uow, actor,
                                                                                               customer_id)))

    @rpc
    def get_credit_summary(self, *, actor, customer_id):
        """The credit figures of get_credit_account alone (limit, grade, exposure, receivable,
        reserved, available), in one statement: the customer overview's part. The same NOT_FOUND
        for a customer the caller may not see or without an account."""
        actor = load_actor(actor)
        customer_id = _uuid(customer_id, "customer_id")
        return credit_summary_out.dump(self._read(lambda uow: operations.credit_summary(uow, actor, customer_id)))

    @rpc
    def set_credit_limit(self, *, request_id, actor, customer_id, limit, reason):
        actor = load_actor(actor)
        data = load(set_credit_limit_input, {"customer_id": customer_id, "limit": limit, "reason": reason})

        def work(uow):
            operations.set_credit_limit(uow, actor, data, _now())
            return credit_account_out.dump(operations.credit_account(uow, actor, data["customer_id"]))
        return self._command("set_credit_limit", request_id, dict(data, actor=actor), work)

    @rpc
    def recompute_credit(self, *, request_id, actor, quarter):
        """On demand (finance): recompute every account's formula limit for `quarter`."""
        actor = load_actor(actor)
        domain.require_role("recompute_credit", actor)
        quarter = load(recompute_input, {"quarter": quarter})["quarter"]
        if domain.parse_quarter(quarter) > local_date(_now()):
            raise ValidationFailed("the quarter has not started", errors={"quarter": ["not started yet"]})
        run_id = uuid.uuid5(uuid.NAMESPACE_URL, f"sales-platform:billing:recompute:{request_id}")
        return recompute_out.dump(operations.recompute_credit(
            self.db.transaction, quarter, self.settings.formula, trigger="manual", run_id=run_id,
            requested_by=actor["staff_id"]))

    @rpc
    def run_credit_recompute(self, *, as_of=None):
        """The quarterly job at `as_of` (ISO date or datetime; default now): computes each account
        once for the quarter `as_of` falls in. Safe in every replica at once."""
        return recompute_out.dump(operations.recompute_credit(
            self.db.transaction, domain.quarter_of(_local_day(as_of)), self.settings.formula))

    @rpc
    def get_books(self):
        """Read-only: the books the invariant checker compares across services (tests/invariants)."""
        with self.db.transaction() as uow:
            return kit_books.snapshot(uow, self.name, NUMBERED, Books(uow).read)

    @timer(interval=3600, eager=True)
    def credit_recompute_timer(self):
        if self.settings.recompute_schedule:
            self.run_credit_recompute()

    @rpc
    def reserve_credit(self, *, reservation_id, order_id, customer_id, amount, override=None):
        data = load(reserve_credit_input, {"reservation_id": reservation_id, "order_id": order_id,
                                           "customer_id": customer_id, "amount": amount, "override": override})
        override_actor = load_actor(data["override"]["actor"]) if data["override"] else None
        result = self._transaction(lambda uow: operations.reserve_credit(uow, data, override_actor))
        if isinstance(result, operations.Refusal):
            raise result.error  # the hold is committed; nothing is reserved
        return reserve_credit_out.dump(result)

    @rpc
    def release_credit(self, *, order_id, reason):
        data = load(release_credit_input, {"order_id": order_id, "reason": reason})
        return release_credit_out.dump(self._transaction(
            lambda uow: operations.release_credit(uow, data["order_id"], data["reason"])))

    # -- invoices (FR-81–FR-83, FR-95) ------------------------------------------------------------
    @rpc
    def create_invoice(self, *, request_id, actor, delivery_ids, kind, remarks=None):
        actor = load_actor(actor)
        data = load(create_invoice_input, {"delivery_ids": delivery_ids, "kind": kind, "remarks": remarks})

        def work(uow):
            invoice_id = operations.create_invoice(uow, actor, data, _now())
            return invoice_out.dump(operations.get_invoice(uow, actor, invoice_id))
        return self._command("create_invoice", request_id, dict(data, actor=actor), work)

    @rpc
    def certify_invoice(self, *, request_id, actor, invoice_id):
        return self._invoice_command("certify_invoice", request_id, actor, invoice_id,
                                     lambda uow, actor, invoice_id: operations.certify_invoice(uow, actor, invoice_id))

    @rpc
    def issue_invoice(self, *, request_id, actor, invoice_id):
        return self._invoice_command(
            "issue_invoice", request_id, actor, invoice_id,
            lambda uow, actor, invoice_id: operations.issue_invoice(uow, actor, invoice_id, _now(),
                                                                    self.settings.payment_terms_days))

    def _invoice_command(self, command, request_id, actor, invoice_id, step):
        actor = load_actor(actor)
        invoice_id = _uuid(invoice_id, "invoice_id")

        def work(uow):
            step(uow, actor, invoice_id)
            return invoice_out.dump(operations.get_invoice(uow, actor, invoice_id))
        return self._command(command, request_id, {"actor": actor, "invoice_id": invoice_id}, work)

    @rpc
    def cancel_invoice(self, *, request_id, actor, invoice_id, reason):
        actor = load_actor(actor)
        data = load(cancel_invoice_input, {"invoice_id": invoice_id, "reason": reason})

        def work(uow):
            operations.cancel_invoice(uow, actor, data)
            return invoice_out.dump(operations.get_invoice(uow, actor, data["invoice_id"]))
        return self._command("cancel_invoice", request_id, dict(data, actor=actor), work)

    @rpc
    def reverse_invoice(self, *, request_id, actor, invoice_id, reason, lines=None):
        """A red-letter invoice for all (no lines) or part of an issued invoice; answers the red one."""
        actor = load_actor(actor)
        data = load(reverse_invoice_input, {"invoice_id": invoice_id, "reason": reason, "lines": lines})

        def work(uow):
            red_id = operations.reverse_invoice(uow, actor, data, _now())
            return invoice_out.dump(operations.get_invoice(uow, actor, red_id))
        return self._command("reverse_invoice", request_id, dict(data, actor=actor), work)

    @rpc
    def get_invoice(self, *, actor, invoice_id):
        actor = load_actor(actor)
        invoice_id = _uuid(invoice_id, "invoice_id")
        return invoice_out.dump(self._transaction(lambda uow: operations.get_invoice(uow, actor, invoice_id)))

    @rpc
    def list_invoices(self, *, actor, filters=None, limit=None, cursor=None):
        actor = load_actor(actor)
        filters = load(invoice_filters, filters or {})
        limit = pagination.check_limit(limit)
        after = pagination.decode(cursor, 2)
        rows = self._transaction(lambda uow: operations.list_invoices(uow, actor, filters, after, limit))
        items, next_cursor = pagination.page(rows, limit, key=lambda r: (r["created_at"].isoformat(), r["id"]))
        return {"items": [invoice_out.dump(item) for item in items], "next_cursor": next_cursor}

    # -- receipts and allocation (FR-84–FR-86) ------------------------------------------------------
    @rpc
    def record_receipt(self, *, request_id, actor, receipt):
        actor = load_actor(actor)
        data = load(receipt_input, receipt)

        def work(uow):
            receipt_id = operations.record_receipt(uow, actor, data, _now())
            return receipt_out.dump(operations.get_receipt(uow, actor, receipt_id))
        return self._command("record_receipt", request_id, dict(data, actor=actor), work)

    @rpc
    def confirm_receipt(self, *, request_id, actor, receipt_id):
        actor = load_actor(actor)
        receipt_id = _uuid(receipt_id, "receipt_id")

        def work(uow):
            operations.confirm_receipt(uow, actor, receipt_id, _now())
            return receipt_out.dump(operations.get_receipt(uow, actor, receipt_id))
        return self._command("confirm_receipt", request_id, {"actor": actor, "receipt_id": receipt_id}, work)

    @rpc
    def allocate_receipt(self, *, request_id, actor, receipt_id, allocations, note=None):
        actor = load_actor(actor)
        data = load(allocate_input, {"receipt_id": receipt_id, "allocations": allocations, "note": note})

        def work(uow):
            operations.allocate_receipt(uow, actor, data, _now())
            return receipt_out.dump(operations.get_receipt(uow, actor, data["receipt_id"]))
        return self._command("allocate_receipt", request_id, dict(data, actor=actor), work)

    @rpc
    def reverse_allocation(self, *, request_id, actor, receipt_id, allocation_id, reason):
        actor = load_actor(actor)
        data = load(reverse_allocation_input, {"receipt_id": receipt_id, "allocation_id": allocation_id,
                                               "reason": reason})

        def work(uow):
            operations.reverse_allocation(uow, actor, data, _now())
            return receipt_out.dump(operations.get_receipt(uow, actor, data["receipt_id"]))
        return self._command("reverse_allocation", request_id, dict(data, actor=actor), work)

    @rpc
    def get_receipt(self, *, actor, receipt_id):
        actor = load_actor(actor)
        receipt_id = _uuid(receipt_id, "receipt_id")
        return receipt_out.dump(self._transaction(lambda uow: operations.get_receipt(uow, actor, receipt_id)))

    @rpc
    def list_receipts(self, *, actor, filters=None, limit=None, cursor=None):
        actor = load_actor(actor)
        filters = load(receipt_filters, filters or {})
        limit = pagination.check_limit(limit)
        after = pagination.decode(cursor, 2)

        def work(uow):
            rows = operations.list_receipts(uow, actor, filters, after, limit)
            return [operations.receipt_view(uow, row) for row in rows]
        rows = self._transaction(work)
        items, next_cursor = pagination.page(rows, limit, key=lambda r: (r["registered_at"].isoformat(), r["id"]))
        return {"items": [receipt_out.dump(item) for item in items], "next_cursor": next_cursor}

    # -- statements (FR-87–FR-89) ---------------------------------------------------------------------
    @rpc
    def get_statement(self, *, actor, customer_id, month):
        actor = load_actor(actor)
        data = load(statement_input, {"customer_id": customer_id, "month": month})
        return statement_out.dump(self._transaction(
            lambda uow: operations.statement(uow, actor, data["customer_id"], data["month"], _now())))

    @rpc
    def confirm_statement(self, *, request_id, actor, customer_id, month, outcome, contact=None, note=None):
        actor = load_actor(actor)
        data = load(confirm_statement_input, {"customer_id": customer_id, "month": month, "outcome": outcome,
                                              "contact": contact, "note": note})

        def work(uow):
            now = _now()
            operations.confirm_statement(uow, actor, data, now)
            return statement_out.dump(operations.statement(uow, actor, data["customer_id"], data["month"], now))
        return self._command("confirm_statement", request_id, dict(data, actor=actor), work)

    @rpc
    def get_confirmation_campaign(self, *, actor, month):
        actor = load_actor(actor)
        month = load(campaign_input, {"month": month})["month"]
        return campaign_out.dump(self._transaction(lambda uow: operations.campaign(uow, actor, month, _now())))

    # -- receivables and reports (FR-90, FR-91) -------------------------------------------------------
    @rpc
    def get_receivables_aging(self, *, actor, as_of=None, customer_id=None, limit=None, cursor=None):
        """FR-91: totals and DSO over every open item in the caller's scope, and a page of the
        customers with one — the `limit` (default 50, at most 200) with the largest totals, then
        `next_cursor` for the next page; `customer_count` says how many there are (issue 11)."""
        actor = load_actor(actor)
        data = load(aging_input, {"as_of": as_of, "customer_id": customer_id})
        as_of = data["as_of"] or local_date(_now())
        limit = pagination.check_limit(limit)
        after = pagination.decode(cursor, 2)
        if after is not None:
            try:
                after = (Decimal(after[0]), uuid.UUID(after[1]))
                if not after[0].is_finite():
                    raise ValueError(after[0])
            except (ArithmeticError, ValueError):
                raise ValidationFailed("invalid cursor", errors={"cursor": ["not a cursor this list gave out"]}) from None
        return aging_out.dump(self._transaction(lambda uow: operations.aging(
            uow, actor, as_of, data["customer_id"], self.settings.dso_days, limit, after)))

    @rpc
    def report_billing(self, *, actor, period_start, period_end, group_by):
        actor = load_actor(actor)
        data = load(report_input, {"period_start": period_start, "period_end": period_end, "group_by": group_by})
        return report_out.dump(self._transaction(lambda uow: operations.report_billing(uow, actor, data)))

    # -- the gateway's order timeline (issue 8) -------------------------------------------------------
    @rpc
    def list_order_documents(self, *, actor, order_id):
        """Billing's part of `GET /orders/{id}/timeline`: the invoices with a line of the order (red
        ones too, any status; lines, red invoices and allocations as get_invoice answers them) and
        the receipts allocated to them — as the caller may see them (someone else's: empty lists)."""
        actor = load_actor(actor)
        order_id = _uuid(order_id, "order_id")
        visible = access.scope(actor)

        def work(uow):
            found = OrderDocuments(uow)
            invoices = found.invoices(order_id, *visible.sql("i.owner_id", "i.owner_team"))
            receipts = found.receipts([i["id"] for i in invoices], *visible.sql("r.owner_id", "r.owner_team"))
            return ([operations.invoice_view(uow, row) for row in invoices],
                    [operations.receipt_view(uow, row) for row in receipts])
        invoices, receipts = self._read(work)
        return {"order_id": str(order_id), "invoices": [invoice_out.dump(i) for i in invoices],
                "receipts": [receipt_out.dump(r) for r in receipts]}


def _uuid(value, field):
    try:
        return uuid.UUID(str(value))
    except ValueError:
        raise ValidationFailed(f"{field} is not a UUID", errors={field: ["not a valid UUID"]}) from None


def _local_day(as_of):
    """A job's time: now, or an ISO date / datetime (a naive datetime is taken as UTC)."""
    if as_of is None:
        return local_date(_now())
    if isinstance(as_of, (date, datetime)) and not isinstance(as_of, str):
        value = as_of
    else:
        try:
            value = datetime.fromisoformat(str(as_of))
        except ValueError:
            raise ValidationFailed("as_of is not an ISO date or datetime",
                                   errors={"as_of": ["an ISO 8601 date or datetime"]}) from None
        if len(str(as_of)) == 10:
            return value.date()
    if isinstance(value, datetime):
        return local_date(value if value.tzinfo else value.replace(tzinfo=timezone.utc))
    return value
