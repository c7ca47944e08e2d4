"""The sales desk (issue 5): entrypoints only. Each loads its input, calls the rules (domain,
shared.approvals) inside a unit of work, and dumps its answer; the order saga and every other
command that moves things in other services is driven by order.saga.SagaRunner.

Calls to other services are never made inside a transaction: a command that needs an answer
from the org chart (the customer, an approver, an authority) asks first, then checks everything
again in its transaction (guarded updates, row locks) before it changes anything.
"""
import logging
import uuid
from datetime import datetime, time, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal

from nameko.timer import timer

from order import domain, events, metrics as business_metrics, schemas, settings as order_settings, views
from order.chains import Chains, to_rows, to_steps
from order.db import (
    OSB_STEPS, Books, Contracts, Deliveries, Gauges, Invoices, Loans, Orders, PriceList, Quotas, Quotes, Reports,
    Returns, Snapshots, Steps, Targets, Views,
)
from order.exceptions import (
    ApprovalRequired, ConcurrentChange, ContractIncomplete, CustomerNotQuotable, DocumentNotFound, InvalidState,
    QuotaExceeded, QuoteExpired, RoleNotAllowed, TargetBreakdownMismatch, TargetExists,
)
from order.saga import SagaRunner
from shared import approvals, books as kit_books, pagination
from shared.access import OWN_ONLY, scope
from shared.db import dumps
from shared.dependencies import Database
from shared.entrypoints import event_handler, rpc
from shared.errors import NotFound, ValidationFailed
from shared.rpc import ServiceRpc
from shared.service import ServiceBase
from shared.validation import load, load_actor

log = logging.getLogger(__name__)

DIRECTORS = ("admin", "general_manager", "sales_director", "marketing_director")
COMPANY_SIGNATORIES = ("general_manager", "sales_director")
NUMBERED = [("quotes", "number"), ("contracts", "number"), ("orders", "number"), ("returns", "number"),
            ("loans", "number")]  # the tables holding the numbers this service gives (get_books)
REPLACEMENT_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "sales-platform:order:replacement")
DECISIONS = {"quote": (Quotes, domain.QUOTE_MACHINE), "contract": (Contracts, domain.CONTRACT_MACHINE),
             "return": (Returns, domain.RETURN_MACHINE), "loan": (Loans, domain.LOAN_MACHINE)}


def _uuid(value, field):
    try:
        return uuid.UUID(str(value))
    except (ValueError, TypeError):
        raise ValidationFailed(f"{field} is not a UUID", errors={field: ["not a valid UUID"]}) from None


def _when(event):
    return datetime.fromisoformat(event["occurred_at"])


def _as_of(value):
    if value is None:
        return domain.utcnow()
    moment = datetime.fromisoformat(str(value)) if not isinstance(value, datetime) else value
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def _usable(copy):
    """A copy of the customer we can place from: its owner and name heard of from its events."""
    return copy is not None and copy["owner_known"] and copy["name"] is not None


def _may_see(actor, copy):
    """The customer service's rule (its get_customer) on our copy: the caller's row-level scope,
    and the unowned pool for everyone but a rep."""
    if scope(actor).allows(copy["owner_id"], copy["owner_team"]):
        return True
    return copy["owner_id"] is None and actor.get("role") not in OWN_ONLY


def _from_copy(copy):
    return {"customer_id": copy["customer_id"], "customer_name": copy["name"], "owner_id": copy["owner_id"],
            "owner_team": copy["owner_team"], "region": copy["region"]}


def _customer_fields(data):
    """What a customer event says of the copy we keep: the owner (with its team) only when the event
    carries it, the region and name when it names them."""
    fields = {k: data[k] for k in ("region", "name") if data.get(k) is not None}
    if "owner_id" in data:
        fields.update(owner_id=data["owner_id"], owner_team=data.get("owner_team"))
    return fields


class OrderService(ServiceBase):
    name = "order"

    db = Database()
    customer = ServiceRpc("customer")
    inventory = ServiceRpc("inventory")
    billing = ServiceRpc("billing")

    # -- plumbing --------------------------------------------------------------------------------
    def _runner(self):
        return SagaRunner(self.db, self.inventory, self.billing, order_settings.load())

    def _chains(self):
        return Chains(self.customer)

    def _customer(self, actor, customer_id):
        """The customer as the caller may see it (404 otherwise) and its snapshot."""
        answer = self.customer.get_customer(actor=actor, customer_id=str(customer_id))
        found = load(schemas.customer_answer, answer, detail="the customer service answered without an id")
        return {"customer_id": found["id"], "customer_name": found["name"], "owner_id": found["owner_id"],
                "owner_team": found["owner_team"], "region": found["region"]}

    def _authority(self, staff_id):
        staff = load(schemas.staff_answer, self.customer.get_staff(staff_id=str(staff_id)),
                     detail="the org chart answered without the staff member's authority")
        return domain.Authority(staff["discount_authority"], staff["price_authority"])

    def _view(self, kind, doc_id):
        repo, render = views.LOADERS[kind]
        with self.db.transaction() as uow:
            return render(uow, repo(uow).get(doc_id))

    def _get(self, kind, actor, doc_id):
        actor = load_actor(actor)
        repo, render = views.LOADERS[kind]
        with self.db.transaction() as uow:
            row = repo(uow).get(_uuid(doc_id, f"{kind}_id"), scope(actor), approver_id=actor["staff_id"])
            if row is None:
                raise DocumentNotFound(f"{kind} {doc_id} not found")
            return render(uow, row)

    def _list(self, kind, actor, schema, filters, limit, cursor, date_column="created_at"):
        actor = load_actor(actor)
        filters = load(schema, filters or {})
        if "from_" in filters:
            filters["from"] = filters.pop("from_")
        if filters.get("to") is not None:  # `to` is a date, inclusive
            filters["to"] = filters["to"] + timedelta(days=1)
        limit = pagination.check_limit(limit)
        after = pagination.decode(cursor, 2)
        repo, render = views.LOADERS[kind]
        with self.db.transaction() as uow:
            rows = repo(uow).list(scope(actor), filters, after, limit, date_column)
            return views.page(uow, rows, limit, render)

    # -- the price list and customer snapshots (events) ---------------------------------------------
    @event_handler("inventory", "product.created", expects=schemas.product_data)
    def on_product_created(self, uow, event):
        """The price list follows the catalog (list price, floor price, VAT rate: FR-43)."""
        PriceList(uow).upsert(event["data"], _when(event))

    @event_handler("inventory", "product.price_changed", expects=schemas.product_data)
    def on_product_price_changed(self, uow, event):
        PriceList(uow).upsert(event["data"], _when(event))

    @event_handler("customer", "customer.created", expects=schemas.customer_created_data)
    def on_customer_created(self, uow, event):
        """Our copy of the customer starts (owner, team, region, name): orders are placed from it."""
        Snapshots(uow).apply(event["data"]["customer_id"], _when(event), **_customer_fields(event["data"]))

    @event_handler("customer", "customer.owner_changed", expects=schemas.customer_owner_changed_data)
    def on_customer_owner_changed(self, uow, event):
        """Row-level access moves with the customer: every document's snapshot takes the new owner."""
        Snapshots(uow).apply(event["data"]["customer_id"], _when(event), **_customer_fields(event["data"]))

    @event_handler("customer", "customer.updated", expects=schemas.customer_updated_data)
    def on_customer_updated(self, uow, event):
        Snapshots(uow).apply(event["data"]["customer_id"], _when(event), **_customer_fields(event["data"]))

    # -- quotes (FR-42–FR-49) --------------------------------------------------------------------
    @rpc
    def create_quote(self, *, request_id, actor, quote):
        """A draft quote priced from the price list (FR-42, FR-43): a line without `unit_price` is
        at list price."""
        actor = load_actor(actor)
        data = load(schemas.quote_input, quote)
        customer = self._customer(actor, data["customer_id"])
        now = domain.utcnow()
        with self.db.transaction() as uow:
            replay = uow.begin_command("create_quote", request_id, {"actor": actor, "quote": data})
            if replay:
                return replay.response
            if data["valid_until"] < domain.business_date(now):
                raise ValidationFailed("valid_until is in the past", errors={"valid_until": ["must be today or later"]})
            priced = domain.price_lines(data["lines"], PriceList(uow).get_many(l["sku"] for l in data["lines"]))
            row = dict(customer, id=uuid.uuid4(), number=uow.next_number("QT", now.year),
                       valid_until=data["valid_until"], notes=data["notes"], total=domain.total_of(priced),
                       created_by=actor["staff_id"], created_at=now)
            row["content_hash"] = approvals.content_hash(domain.quote_content(row, [vars(l) for l in priced]))
            Quotes(uow).add(row, priced)
            return uow.finish_command(views.quote(uow, Quotes(uow).get(row["id"])))

    @rpc
    def update_quote(self, *, request_id, actor, quote_id, changes):
        """Edit a quote. Any change of its content voids its approvals and returns it to draft
        (issue 5: approvals are bound to the content); the voided steps stay in the trail."""
        actor = load_actor(actor)
        data = load(schemas.quote_changes, changes)
        quote_id = _uuid(quote_id, "quote_id")
        now = domain.utcnow()
        with self.db.transaction() as uow:
            replay = uow.begin_command("update_quote", request_id, {"actor": actor, "quote_id": str(quote_id),
                                                                    "changes": data})
            if replay:
                return replay.response
            quotes = Quotes(uow)
            quote = quotes.get(quote_id, scope(actor), lock=True)
            if quote is None:
                raise DocumentNotFound(f"quote {quote_id} not found")
            domain.check(domain.QUOTE_MACHINE, "quote", quote["status"], "edit")
            if "valid_until" in data and data["valid_until"] < domain.business_date(now):
                raise ValidationFailed("valid_until is in the past", errors={"valid_until": ["must be today or later"]})
            priced = None
            if "lines" in data:
                priced = domain.price_lines(data["lines"], PriceList(uow).get_many(l["sku"] for l in data["lines"]))
            fields = {k: data[k] for k in ("valid_until", "notes") if k in data}
            merged = dict(quote, **fields)
            lines = [vars(l) for l in priced] if priced is not None else quotes.lines(quote_id)
            new_hash = approvals.content_hash(domain.quote_content(merged, lines))
            if new_hash != quote["content_hash"]:
                voided = Steps(uow).void_open("quote", quote_id)
                if priced is not None:
                    quotes.replace_lines(quote_id, priced)
                    fields["total"] = domain.total_of(priced)
                quotes.move(quote_id, [quote["status"]], status="draft", content_hash=new_hash, major=False,
                            approved_at=None, sent_at=None, _now=now, **fields)
                log.info("quote %s edited: %s approval step(s) voided", quote["number"], voided)
            return uow.finish_command(views.quote(uow, quotes.get(quote_id)))

    @rpc
    def submit_quote(self, *, request_id, actor, quote_id):
        """Submit for approval: the customer must have a valid review (FR-14); the steps come from
        the rules (domain.required_approvals, FR-45–FR-48) and the requester's authority; none →
        approved at once, else pending_approval with its first approver found in the org chart."""
        actor = load_actor(actor)
        quote_id = _uuid(quote_id, "quote_id")
        now = domain.utcnow()
        settings = order_settings.load()
        with self.db.transaction() as uow:
            quote = Quotes(uow).get(quote_id, scope(actor))
            lines = Quotes(uow).lines(quote_id) if quote else []
            prices = PriceList(uow).get_many(l["sku"] for l in lines)
        if quote is None:
            raise DocumentNotFound(f"quote {quote_id} not found")
        prepared = None
        if quote["status"] == "draft":
            quotable = load(schemas.quotable_answer, self.customer.check_quotable(customer_id=str(quote["customer_id"])))
            priced = domain.price_lines([{"sku": l["sku"], "quantity": l["quantity"], "unit_price": l["unit_price"]}
                                         for l in lines], prices)
            needed = domain.required_approvals(priced, self._authority(actor["staff_id"]),
                                               settings.major_contract_amount)
            prepared = {"quotable": quotable, "needed": needed, "hash": quote["content_hash"],
                        "approver": self._chains().first_approver(needed, actor["staff_id"])}
        with self.db.transaction() as uow:
            replay = uow.begin_command("submit_quote", request_id, {"actor": actor, "quote_id": str(quote_id)})
            if replay:
                return replay.response
            quotes = Quotes(uow)
            quote = quotes.get(quote_id, scope(actor), lock=True)
            domain.check(domain.QUOTE_MACHINE, "quote", quote["status"], "submit")
            if prepared is None or prepared["hash"] != quote["content_hash"]:
                raise ConcurrentChange("the quote changed while it was being submitted; submit it again")
            if not prepared["quotable"]["quotable"]:
                raise CustomerNotQuotable(
                    "the customer has no approved review still valid: it cannot be quoted (FR-14)",
                    customer_id=str(quote["customer_id"]), reason=prepared["quotable"]["reason"])
            if domain.quote_expired(quote["valid_until"], now):
                raise QuoteExpired(f"quote {quote['number']} was valid until {quote['valid_until']}")
            steps = self._chains().start(prepared["needed"], prepared["approver"], now)
            round_ = quote["round"] + 1
            Steps(uow).save("quote", quote_id, round_, to_rows(steps))
            status = domain.after_approvals("quote", approvals.outcome(steps))
            major = any(a.relation == domain.MARKETING_DIRECTOR for a in prepared["needed"])
            quote = quotes.move(quote_id, ["draft"], status=status, round=round_, requested_by=actor["staff_id"],
                                submitted_at=now, major=major, approved_at=now if status == "approved" else None,
                                _now=now)
            if status == "approved":
                uow.publish("quote.approved", events.quote_approved(quote, []))
            return uow.finish_command(views.quote(uow, quote))

    def _decide(self, kind, request_id, actor, doc_id, decision, comment, content_hash=None):
        """An approver decides the current step of a document's chain (shared.approvals): only the
        approver the org chart named for it, never the requester, on the content they saw."""
        actor = load_actor(actor)
        doc_id = _uuid(doc_id, f"{kind}_id")
        repo, machine = DECISIONS[kind]
        now = domain.utcnow()
        with self.db.transaction() as uow:
            doc = repo(uow).get(doc_id, scope(actor), approver_id=actor["staff_id"])
            rows = Steps(uow).load(kind, doc_id, doc["round"]) if doc else []
        if doc is None:
            raise DocumentNotFound(f"{kind} {doc_id} not found")
        prepared = self._chains().prepare_decision(
            rows, actor_id=actor["staff_id"], decision=decision, document_hash=doc["content_hash"],
            requester_id=doc.get("requested_by"), now=now)
        with self.db.transaction() as uow:
            replay = uow.begin_command(f"{decision}_{kind}", request_id,
                                       {"actor": actor, "id": str(doc_id), "comment": comment,
                                        "content_hash": content_hash})
            if replay:
                return replay.response
            docs = repo(uow)
            doc = docs.get(doc_id, scope(actor), lock=True, approver_id=actor["staff_id"])
            domain.check(machine, kind, doc["status"], "decide")
            if content_hash is not None and content_hash != doc["content_hash"]:
                raise approvals.ApprovalStale(f"the {kind} changed since you read it; read it again",
                                              content_hash=doc["content_hash"])
            steps, decided, outcome = self._chains().decide(
                Steps(uow).load(kind, doc_id, doc["round"]), prepared, actor_id=actor["staff_id"],
                decision=decision, comment=comment, document_hash=doc["content_hash"],
                requester_id=doc.get("requested_by"), now=now)
            Steps(uow).save(kind, doc_id, doc["round"], to_rows(steps))
            status = domain.after_approvals(kind, outcome)
            fields = {"status": status, "_now": now}
            if status == "approved":
                fields["approved_at"] = now
            if kind == "return" and status == "rejected":
                fields["rejected_at"] = now
            if kind == "loan" and status == "rejected":
                fields["closed_at"] = now
            doc = docs.move(doc_id, [doc["status"]], **fields)
            if status == "approved":
                self._approved(uow, kind, doc)
            return uow.finish_command(views.LOADERS[kind][1](uow, doc))

    @staticmethod
    def _approved(uow, kind, doc):
        if kind == "quote":
            uow.publish("quote.approved", events.quote_approved(doc, Steps(uow).load("quote", doc["id"], doc["round"])))
        elif kind == "return":
            uow.publish("return.approved", events.return_event(doc, Returns(uow).lines(doc["id"]), "approved_at"))
        elif kind == "loan":
            uow.publish("loan.approved", events.loan_event(doc, Loans(uow).lines(doc["id"]), doc["approved_at"]))

    @rpc
    def approve_quote(self, *, request_id, actor, quote_id, comment=None, content_hash=None):
        return self._decide("quote", request_id, actor, quote_id, approvals.APPROVE, comment, content_hash)

    @rpc
    def reject_quote(self, *, request_id, actor, quote_id, comment=None, content_hash=None):
        """A rejection returns the quote to draft; the trail keeps who rejected it and why."""
        return self._decide("quote", request_id, actor, quote_id, approvals.REJECT, comment, content_hash)

    def _quote_move(self, command, request_id, actor, quote_id, action, **fields):
        actor = load_actor(actor)
        quote_id = _uuid(quote_id, "quote_id")
        now = domain.utcnow()
        with self.db.transaction() as uow:
            replay = uow.begin_command(command, request_id, {"actor": actor, "quote_id": str(quote_id), **fields})
            if replay:
                return replay.response
            quotes = Quotes(uow)
            quote = quotes.get(quote_id, scope(actor), lock=True)
            if quote is None:
                raise DocumentNotFound(f"quote {quote_id} not found")
            target = domain.check(domain.QUOTE_MACHINE, "quote", quote["status"], action)
            if action == "send" and domain.quote_expired(quote["valid_until"], now):
                raise QuoteExpired(f"quote {quote['number']} was valid until {quote['valid_until']}")
            stamp = {"send": {"sent_at": now}}.get(action, {"closed_at": now})
            quote = quotes.move(quote_id, [quote["status"]], status=target, _now=now, **stamp)
            return uow.finish_command(views.quote(uow, quote))

    @rpc
    def send_quote(self, *, request_id, actor, quote_id):
        """The approved quote goes to the customer (sent_at is the server's time, FR-59)."""
        return self._quote_move("send_quote", request_id, actor, quote_id, "send")

    @rpc
    def decline_quote(self, *, request_id, actor, quote_id, comment=None):
        """The customer said no: the quote is rejected (closed)."""
        return self._quote_move("decline_quote", request_id, actor, quote_id, "decline", comment=comment)

    @rpc
    def cancel_quote(self, *, request_id, actor, quote_id, reason=None):
        return self._quote_move("cancel_quote", request_id, actor, quote_id, "cancel", reason=reason)

    @rpc
    def accept_quote(self, *, request_id, actor, quote_id):
        """The customer accepts: the quote (approved for exactly this content, still valid) raises
        a draft order at the quoted prices, and a draft contract when the amount needs one (a total
        at or above the contract amount, or a major contract; FR-50)."""
        actor = load_actor(actor)
        quote_id = _uuid(quote_id, "quote_id")
        settings = order_settings.load()
        now = domain.utcnow()
        with self.db.transaction() as uow:
            replay = uow.begin_command("accept_quote", request_id, {"actor": actor, "quote_id": str(quote_id)})
            if replay:
                return replay.response
            quotes = Quotes(uow)
            quote = quotes.get(quote_id, scope(actor), lock=True)
            if quote is None:
                raise DocumentNotFound(f"quote {quote_id} not found")
            domain.check(domain.QUOTE_MACHINE, "quote", quote["status"], "accept")
            steps = to_steps(Steps(uow).load("quote", quote_id, quote["round"]))
            if not approvals.valid_for(steps, quote["content_hash"]):
                raise ApprovalRequired(f"quote {quote['number']} is not approved for its current content")
            if domain.quote_expired(quote["valid_until"], now):
                raise QuoteExpired(f"quote {quote['number']} was valid until {quote['valid_until']}")
            lines = quotes.lines(quote_id)
            order_id = uuid.uuid4()
            snapshot = {k: quote[k] for k in ("customer_id", "customer_name", "owner_id", "owner_team", "region")}
            contract_id = None
            if domain.contract_needed(quote["total"], quote["major"], settings.contract_amount):
                contract_id = uuid.uuid4()
                contract_lines = [{"sku": l["sku"], "quantity": l["quantity"], "unit_price": str(l["unit_price"]),
                                   "amount": str(l["amount"])} for l in lines]
                contract = dict(snapshot, id=contract_id, number=uow.next_number("CT", now.year), quote_id=quote_id,
                                order_id=order_id, total=quote["total"], lines=contract_lines, terms={},
                                major=quote["major"], created_by=actor["staff_id"], created_at=now)
                contract["content_hash"] = approvals.content_hash(domain.contract_content(contract))
                Contracts(uow).add(contract)
            priced = [domain.PricedLine(l["line_no"], l["sku"], l["name"], l["quantity"], l["unit_price"],
                                        l["list_price"], l["floor_price"], l["vat_rate"]) for l in lines]
            Orders(uow).add(dict(snapshot, id=order_id, number=uow.next_number("SO", now.year), quote_id=quote_id,
                                 contract_id=contract_id, status="draft", total=quote["total"],
                                 created_by=actor["staff_id"], created_at=now), priced)
            quote = quotes.move(quote_id, [quote["status"]], status="accepted", accepted_at=now, order_id=order_id,
                                contract_id=contract_id, sent_at=quote["sent_at"] or now, _now=now)
            uow.publish("quote.accepted", events.quote_accepted(quote))
            return uow.finish_command(views.quote(uow, quote))

    @rpc
    def get_quote(self, *, actor, quote_id):
        return self._get("quote", actor, quote_id)

    @rpc
    def list_quotes(self, *, actor, filters=None, limit=None, cursor=None):
        return self._list("quote", actor, schemas.quote_filters, filters, limit, cursor)

    # -- contracts (FR-50–FR-59) -----------------------------------------------------------------
    @rpc
    def get_contract(self, *, actor, contract_id):
        return self._get("contract", actor, contract_id)

    @rpc
    def list_contracts(self, *, actor, filters=None, limit=None, cursor=None):
        return self._list("contract", actor, schemas.contract_filters, filters, limit, cursor)

    @rpc
    def update_contract(self, *, request_id, actor, contract_id, terms):
        """Fill in the contract's terms while it is a draft (FR-51: free modifications or how
        services are charged; payment; delivery). Changing them voids earlier approvals."""
        actor = load_actor(actor)
        data = load(schemas.terms_input, terms)
        contract_id = _uuid(contract_id, "contract_id")
        now = domain.utcnow()
        with self.db.transaction() as uow:
            replay = uow.begin_command("update_contract", request_id, {"actor": actor, "id": str(contract_id),
                                                                       "terms": data})
            if replay:
                return replay.response
            contracts = Contracts(uow)
            contract = contracts.get(contract_id, scope(actor), lock=True)
            if contract is None:
                raise DocumentNotFound(f"contract {contract_id} not found")
            domain.check(domain.CONTRACT_MACHINE, "contract", contract["status"], "edit")
            merged = dict(contract["terms"] or {}, **data)
            new_hash = approvals.content_hash(domain.contract_content(dict(contract, terms=merged)))
            if new_hash != contract["content_hash"]:
                Steps(uow).void_open("contract", contract_id)
                contract = contracts.move(contract_id, ["draft"], terms=dumps(merged), content_hash=new_hash, _now=now)
            return uow.finish_command(views.contract(uow, contract))

    @rpc
    def submit_contract(self, *, request_id, actor, contract_id):
        """Submit for the company's approval (FR-52, FR-53): complete terms first (FR-51, FR-56);
        the sales head approves, and the marketing director too for a major contract (FR-48)."""
        actor = load_actor(actor)
        contract_id = _uuid(contract_id, "contract_id")
        now = domain.utcnow()
        with self.db.transaction() as uow:
            contract = Contracts(uow).get(contract_id, scope(actor))
        if contract is None:
            raise DocumentNotFound(f"contract {contract_id} not found")
        needed = domain.contract_approvals(contract["major"])
        approver = self._chains().first_approver(needed, actor["staff_id"]) if contract["status"] == "draft" else None
        with self.db.transaction() as uow:
            replay = uow.begin_command("submit_contract", request_id, {"actor": actor, "id": str(contract_id)})
            if replay:
                return replay.response
            contracts = Contracts(uow)
            contract = contracts.get(contract_id, scope(actor), lock=True)
            domain.check(domain.CONTRACT_MACHINE, "contract", contract["status"], "submit")
            missing = domain.missing_terms(contract["terms"])
            if missing:
                raise ContractIncomplete("the contract does not state all it must (FR-51, FR-56)", errors=missing)
            steps = self._chains().start(needed, approver, now)
            round_ = contract["round"] + 1
            Steps(uow).save("contract", contract_id, round_, to_rows(steps))
            status = domain.after_approvals("contract", approvals.outcome(steps))
            contract = contracts.move(contract_id, ["draft"], status=status, round=round_,
                                      requested_by=actor["staff_id"], _now=now)
            return uow.finish_command(views.contract(uow, contract))

    @rpc
    def approve_contract(self, *, request_id, actor, contract_id, comment=None, content_hash=None):
        return self._decide("contract", request_id, actor, contract_id, approvals.APPROVE, comment, content_hash)

    @rpc
    def reject_contract(self, *, request_id, actor, contract_id, comment=None, content_hash=None):
        """Rejected: back to draft to be modified (FR-53)."""
        return self._decide("contract", request_id, actor, contract_id, approvals.REJECT, comment, content_hash)

    @rpc
    def sign_contract(self, *, request_id, actor, contract_id, party, signatory=None):
        """Record one party's signature (server time, FR-59): the customer's signatory, or the
        company's seal by the general manager or the sales director. Only with both is the contract
        signed (FR-58: an unsigned document is invalid)."""
        actor = load_actor(actor)
        data = load(schemas.signature_input, {"party": party, "signatory": signatory})
        contract_id = _uuid(contract_id, "contract_id")
        if data["party"] == "company" and actor["role"] not in COMPANY_SIGNATORIES:
            raise RoleNotAllowed("the company signs through the general manager or the sales director",
                                 role=actor["role"])
        now = domain.utcnow()
        with self.db.transaction() as uow:
            replay = uow.begin_command("sign_contract", request_id, {"actor": actor, "id": str(contract_id), **data})
            if replay:
                return replay.response
            contracts = Contracts(uow)
            contract = contracts.get(contract_id, scope(actor), lock=True)
            if contract is None:
                raise DocumentNotFound(f"contract {contract_id} not found")
            domain.check(domain.CONTRACT_MACHINE, "contract", contract["status"], "sign")
            fields = ({"customer_signatory": data["signatory"], "customer_signed_at": now}
                      if data["party"] == "customer" else {"company_signed_by": actor["staff_id"],
                                                            "company_signed_at": now})
            signed = dict(contract, **fields)
            status = domain.after_signature(signed["customer_signed_at"], signed["company_signed_at"])
            if status == "signed":
                fields["signed_at"] = now
            contract = contracts.move(contract_id, ["approved"], status=status, _now=now, **fields)
            if status == "signed":
                uow.publish("contract.signed", events.contract_signed(contract))
            return uow.finish_command(views.contract(uow, contract))

    @rpc
    def register_contract(self, *, request_id, actor, contract_id):
        """The signed contract is entered as effective by the sales office (FR-55, FR-56: who
        registered it is kept; its terms must be complete)."""
        actor = load_actor(actor)
        contract_id = _uuid(contract_id, "contract_id")
        now = domain.utcnow()
        with self.db.transaction() as uow:
            replay = uow.begin_command("register_contract", request_id, {"actor": actor, "id": str(contract_id)})
            if replay:
                return replay.response
            contracts = Contracts(uow)
            contract = contracts.get(contract_id, scope(actor), lock=True)
            if contract is None:
                raise DocumentNotFound(f"contract {contract_id} not found")
            domain.check(domain.CONTRACT_MACHINE, "contract", contract["status"], "register")
            missing = domain.missing_terms(contract["terms"])
            if missing:
                raise ContractIncomplete("the contract does not state all it must (FR-56)", errors=missing)
            contract = contracts.move(contract_id, ["signed"], status="effective", effective_at=now,
                                      registered_by=actor["staff_id"], _now=now)
            uow.publish("contract.effective", events.contract_effective(contract))
            return uow.finish_command(views.contract(uow, contract))

    @rpc
    def terminate_contract(self, *, request_id, actor, contract_id, reason):
        """Directors terminate a contract whose order is not confirmed yet (its draft order is
        cancelled with it)."""
        actor = load_actor(actor)
        if actor["role"] not in DIRECTORS:
            raise RoleNotAllowed("only a director terminates a contract", role=actor["role"])
        if not reason or not str(reason).strip():
            raise ValidationFailed("a reason is required", errors={"reason": ["required"]})
        contract_id = _uuid(contract_id, "contract_id")
        now = domain.utcnow()
        with self.db.transaction() as uow:
            replay = uow.begin_command("terminate_contract", request_id, {"actor": actor, "id": str(contract_id),
                                                                          "reason": reason})
            if replay:
                return replay.response
            contracts = Contracts(uow)
            contract = contracts.get(contract_id, scope(actor), lock=True)
            if contract is None:
                raise DocumentNotFound(f"contract {contract_id} not found")
            domain.check(domain.CONTRACT_MACHINE, "contract", contract["status"], "terminate")
            order = Orders(uow).get(contract["order_id"], lock=True) if contract["order_id"] else None
            if order is not None and order["status"] not in ("draft", "cancelled"):
                raise InvalidState(f"its order {order['number']} is {order['status']}: cancel the order first",
                                   order_status=order["status"])
            if order is not None and order["status"] == "draft":
                order = Orders(uow).move(order["id"], ["draft"], status="cancelled", cancelled_at=now,
                                         cancel_reason=f"contract terminated: {reason}", _now=now)
                uow.publish("order.cancelled", events.order_cancelled(order, "draft"))
            contract = contracts.move(contract_id, [contract["status"]], status="terminated", terminated_at=now,
                                      terminated_by=actor["staff_id"], termination_reason=reason, _now=now)
            return uow.finish_command(views.contract(uow, contract))

    # -- orders (FR-60–FR-67, FR-73) ----------------------------------------------------------------
    @rpc
    def place_order(self, *, request_id, actor, order):
        """A draft order. Prices come from the price list; a price below list, below the floor or
        a major amount needs an approved quote that covers the lines (APPROVAL_REQUIRED,
        PRICE_BELOW_FLOOR; FR-43, FR-45, FR-46, FR-48).

        The customer comes from the service's own copy (customer events) when that copy lets the
        caller see it; otherwise — no copy yet (a customer created a moment ago), or the copy says
        no (it may be behind a reassignment) — the customer service is asked, and its answer
        decides (404 for someone else's customer)."""
        actor = load_actor(actor)
        data = load(schemas.order_input, order)
        settings = order_settings.load()
        with self.db.transaction() as uow:
            copy = Snapshots(uow).read(data["customer_id"])
            if _usable(copy) and _may_see(actor, copy):
                return self._place(uow, request_id, actor, data, _from_copy(copy), settings)
        seen = copy["revision"] if copy else 0
        answer = self._customer(actor, data["customer_id"])
        with self.db.transaction() as uow:
            copy = Snapshots(uow).hold(data["customer_id"])
            if copy["revision"] == seen:
                # nothing applied since we asked: a change the answer reflects is still to come,
                # and will move this order (it waits on the row we hold)
                customer = answer
            elif _usable(copy) and _may_see(actor, copy):
                customer = dict(_from_copy(copy), customer_name=copy["name"] or answer["customer_name"])
            else:  # a change landed while we asked, and it takes the customer from the caller
                raise NotFound(f"customer {data['customer_id']} not found")
            return self._place(uow, request_id, actor, data, customer, settings)

    def _place(self, uow, request_id, actor, data, customer, settings):
        now = domain.utcnow()
        replay = uow.begin_command("place_order", request_id, {"actor": actor, "order": data})
        if replay:
            return replay.response
        priced = domain.price_lines(data["lines"], PriceList(uow).get_many(l["sku"] for l in data["lines"]))
        quote_lines = None
        if data["quote_id"] is not None:
            quote = Quotes(uow).get(data["quote_id"], scope(actor))
            if quote is None or quote["customer_id"] != customer["customer_id"]:
                raise ValidationFailed("no such quote for this customer", errors={"quote_id": ["no such quote"]})
            steps = to_steps(Steps(uow).load("quote", quote["id"], quote["round"]))
            if quote["status"] not in ("approved", "sent", "accepted") or not approvals.valid_for(
                    steps, quote["content_hash"]):
                raise ApprovalRequired(f"quote {quote['number']} is {quote['status']}, not approved")
            if domain.quote_expired(quote["valid_until"], now):
                raise QuoteExpired(f"quote {quote['number']} was valid until {quote['valid_until']}")
            used = Orders(uow).by_quote(quote["id"])
            if used is not None:
                raise ApprovalRequired(f"quote {quote['number']} is already ordered as {used['number']}",
                                       order_id=str(used["id"]))
            quote_lines = Quotes(uow).lines(quote["id"])
        domain.check_order_prices(priced, settings.major_contract_amount, quote_lines)
        row, lines = Orders(uow).add(dict(customer, id=uuid.uuid4(), number=uow.next_number("SO", now.year),
                                          quote_id=data["quote_id"], warehouse=data["warehouse"], status="draft",
                                          total=domain.total_of(priced), created_by=actor["staff_id"],
                                          created_at=now), priced)
        return uow.finish_command(schemas.order_out.dump(dict(row, lines=lines, saga=None)))  # new: no saga yet

    @rpc
    def get_order(self, *, actor, order_id):
        return self._get("order", actor, order_id)

    @rpc
    def list_orders(self, *, actor, filters=None, limit=None, cursor=None):
        return self._list("order", actor, schemas.order_filters, filters, limit, cursor)

    @rpc
    def confirm_order(self, *, request_id, actor, order_id):
        """The order saga (DESIGN.md §3): stock and credit reserved in parallel → confirmed;
        credit refused → credit_hold; stock refused → 409 INSUFFICIENT_STOCK with the credit
        released; quota → 409 QUOTA_EXCEEDED. Idempotent by the order: confirming again answers
        the order as it stands."""
        actor = load_actor(actor)
        order_id = _uuid(order_id, "order_id")
        runner = self._runner()
        runner.confirm(actor, order_id)
        if runner.outcome is not None:  # confirmed now: answered as that transaction left it
            done = runner.outcome
            return schemas.order_out.dump(dict(done["order"], lines=done["lines"], saga=done["saga"]))
        return self._view("order", order_id)

    @rpc
    def release_credit_hold(self, *, request_id, actor, order_id, reason):
        """Finance or the sales director releases a credit hold (override recorded in billing)."""
        actor = load_actor(actor)
        if not reason or not str(reason).strip():
            raise ValidationFailed("a reason is required", errors={"reason": ["required"]})
        order_id = _uuid(order_id, "order_id")
        self._runner().release_hold(actor, order_id, str(reason))
        return self._view("order", order_id)

    @rpc
    def cancel_order(self, *, request_id, actor, order_id, reason=None):
        """Cancel (from draft, credit hold, or confirmed with nothing shipped): releases the stock,
        the credit and the quota the order holds."""
        actor = load_actor(actor)
        order_id = _uuid(order_id, "order_id")
        self._runner().cancel(actor, order_id, reason or "cancelled")
        return self._view("order", order_id)

    # -- after confirmation: the order follows events -----------------------------------------------
    def _progress(self, uow, order_id, at):
        """Move the order on from what it now knows (shipped, invoiced, paid), one event each; the
        stage's time is the business time the event carried (`at`), for the OSB cycle (FR-62)."""
        orders = Orders(uow)
        order = orders.get(order_id, lock=True)
        if order is None:
            return
        lines = orders.lines(order_id)
        invoices = [{"settled": inv["settled_at"] is not None or inv["amount"] - inv["reversed_amount"] <= 0}
                    for inv in orders.invoices(order_id)]
        target = domain.order_progress(order["status"], lines, invoices)
        if target == order["status"]:
            return
        now = domain.utcnow()
        at = at or now
        passed = ("partially_shipped", "shipped", "invoiced", "paid")
        stamps = {"shipped": "shipped_at", "invoiced": "invoiced_at", "paid": "paid_at"}
        start = passed.index(order["status"]) + 1 if order["status"] in passed else 0
        fields = {"status": target, "_now": now}
        for status in passed[start:passed.index(target) + 1]:
            if status in stamps:
                fields[stamps[status]] = order[stamps[status]] or at
        order = orders.move(order_id, [order["status"]], **fields)
        for status in passed[start:passed.index(target) + 1]:
            if status in stamps:
                uow.publish(f"order.{status}", events.order_moved(order, stamps[status]))
        if target == "paid" and order["contract_id"]:
            Contracts(uow).complete_for_order(order_id, now)

    @event_handler("inventory", "goods.issued", expects=schemas.goods_issued_data)
    def on_goods_issued(self, uow, event):
        """Shipped quantities per order line; the delivered lines are kept for returns (FR-93)."""
        data = event["data"]
        if data["order_id"] is None or Orders(uow).get(data["order_id"]) is None:
            log.info("goods.issued for no order of ours (delivery %s)", data["delivery_id"])
            return
        deliveries, orders = Deliveries(uow), Orders(uow)
        for line in data["lines"]:
            added = deliveries.add_line(dict(line, delivery_id=data["delivery_id"],
                                             delivery_number=data["delivery_number"], order_id=data["order_id"],
                                             loan_id=data["loan_id"], issued_at=data["issued_at"]))
            if added is not None and line["order_line_id"] is not None:
                orders.add_shipped(line["order_line_id"], line["quantity"])
        orders.set_once(data["order_id"], "first_shipped_at", data["issued_at"])
        self._progress(uow, data["order_id"], data["issued_at"])

    @event_handler("billing", "invoice.issued", expects=schemas.invoice_issued_data)
    def on_invoice_issued(self, uow, event):
        data = event["data"]
        deliveries, orders, invoices = Deliveries(uow), Orders(uow), Invoices(uow)
        touched = {}
        for line in data["lines"]:
            if line["order_id"] is None or line["order_line_id"] is None:
                continue
            key = f"{line['order_line_id']}:{line['delivery_line_id']}"
            if deliveries.mark("invoice_line", data["invoice_id"], key):
                if orders.add_invoiced(line["order_line_id"], line["quantity"], line["amount"]) is None:
                    continue
                orders.add_amounts(line["order_id"], invoiced=line["amount"])
                touched[line["order_id"]] = touched.get(line["order_id"], 0) + line["amount"]
        for order_id, amount in touched.items():
            invoices.add(data["invoice_id"], order_id, data["number"], amount, data["issued_at"])
            self._progress(uow, order_id, data["issued_at"])
        settled_at = invoices.settled_early(data["invoice_id"]) if touched else None
        if settled_at is not None:  # invoice.settled came first: it applies now, at its own time
            for row in invoices.settle(data["invoice_id"], settled_at):
                self._progress(uow, row["order_id"], settled_at)

    @event_handler("billing", "invoice.reversed", expects=schemas.invoice_reversed_data)
    def on_invoice_reversed(self, uow, event):
        """A red-letter invoice reverses (part of) an invoice: invoiced quantities and amounts follow."""
        data = event["data"]
        deliveries, orders, invoices = Deliveries(uow), Orders(uow), Invoices(uow)
        for line in data["lines"]:
            if line["order_id"] is None or line["order_line_id"] is None:
                continue
            if deliveries.mark("reversal_line", data["red_invoice_id"],
                               f"{line['order_line_id']}:{line['delivery_line_id']}"):
                quantity, amount = abs(line["quantity"]), abs(line["amount"])
                if orders.add_invoiced(line["order_line_id"], -quantity, -amount) is not None:
                    orders.add_amounts(line["order_id"], invoiced=-amount)
                    invoices.reverse(data["original_invoice_id"], line["order_id"], amount)
        for order_id in {line["order_id"] for line in data["lines"] if line["order_id"] is not None}:
            self._progress(uow, order_id, _when(event))

    @event_handler("billing", "invoice.settled", expects=schemas.invoice_settled_data)
    def on_invoice_settled(self, uow, event):
        """Paid once every invoice of the order is settled."""
        data = event["data"]
        invoices = Invoices(uow)
        if not invoices.known(data["invoice_id"]):
            if data["order_ids"]:  # it came before invoice.issued: applied when that one comes
                invoices.settle_later(data["invoice_id"], data["settled_at"])
            return
        for row in invoices.settle(data["invoice_id"], data["settled_at"]):
            self._progress(uow, row["order_id"], data["settled_at"])

    @event_handler("inventory", "goods.returned", expects=schemas.goods_returned_data)
    def on_goods_returned(self, uow, event):
        """Returned goods are back (FR-94, FR-96): the delivery's and the order's returned
        quantities and amounts follow, the quota is given back, the return is received."""
        data = event["data"]
        deliveries, orders = Deliveries(uow), Orders(uow)
        for line in data["lines"]:
            if not deliveries.mark("return_line", data["return_id"], line["delivery_line_id"]):
                continue
            delivered = deliveries.add_returned(line["delivery_line_id"], line["quantity"])
            if delivered is None:
                log.warning("goods.returned for delivery line %s beyond what was delivered, or unknown",
                            line["delivery_line_id"])
                continue
            if delivered["order_line_id"] is not None:
                returned = orders.add_returned(delivered["order_line_id"], line["quantity"])
                if returned is not None:
                    orders.add_amounts(returned["order_id"], returned=domain.money(line["quantity"]
                                                                                   * returned["unit_price"]))
            Quotas(uow).release(delivered["order_id"], sku=line["sku"], quantity=line["quantity"])
            uow.execute("UPDATE return_lines SET received_quantity = received_quantity + %s"
                        " WHERE return_id = %s AND delivery_line_id = %s",
                        (line["quantity"], data["return_id"], line["delivery_line_id"]))
        if data["order_id"] is not None:
            self._progress(uow, data["order_id"], data["received_at"])
        returns = Returns(uow)
        moved = returns.move(data["return_id"], ["approved"], status="received", received_at=data["received_at"])
        if moved is not None:
            uow.publish("return.received", events.return_event(moved, returns.lines(moved["id"]), "received_at"))

    @event_handler("inventory", "stock.reservation_expired", expects=schemas.stock_reservation_expired_data)
    def on_stock_reservation_expired(self, uow, event):
        """Held stock of an order on credit hold expired: releasing the hold will reserve it again."""
        data = event["data"]
        uow.execute(
            "UPDATE sagas SET stock_status = 'expired', updated_at = now() WHERE order_id = %s"
            " AND stock_reservation_id = %s AND state = 'held'", (data["order_id"], data["reservation_id"]))

    # -- quotas (FR-67) --------------------------------------------------------------------------
    @rpc
    def set_quota(self, *, request_id, actor, quota):
        """A quota per month × customer or market × product (directors); never below what is
        already consumed."""
        actor = load_actor(actor)
        if actor["role"] not in DIRECTORS:
            raise RoleNotAllowed("only a director sets quotas", role=actor["role"])
        data = load(schemas.quota_input, quota)
        now = domain.utcnow()
        with self.db.transaction() as uow:
            replay = uow.begin_command("set_quota", request_id, {"actor": actor, "quota": data})
            if replay:
                return replay.response
            row = Quotas(uow).upsert(dict(data, id=uuid.uuid4(), created_by=actor["staff_id"], now=now))
            if row is None:
                raise QuotaExceeded("the quota cannot be set below what confirmed orders already took",
                                    errors={"quantity": ["below the quantity already consumed"]})
            return uow.finish_command(views.quota(row))

    @rpc
    def list_quotas(self, *, actor, filters=None, limit=None, cursor=None):
        load_actor(actor)
        filters = load(schemas.quota_filters, filters or {})
        limit = pagination.check_limit(limit)
        after = pagination.decode(cursor, 2)
        with self.db.transaction() as uow:
            rows = Quotas(uow).list(filters, after, limit)
        items, next_cursor = pagination.page(rows, limit, key=lambda r: (r["created_at"].isoformat(), r["id"]))
        return {"items": [views.quota(r) for r in items], "next_cursor": next_cursor}

    # -- returns (FR-93–FR-96) ---------------------------------------------------------------------
    @rpc
    def request_return(self, *, request_id, actor, delivery_id, lines, reason, service_request_id=None):
        """A return request referencing a delivery's lines (FR-93): never more than delivered less
        returned less already requested. It goes to the product manager for approval (FR-94)."""
        actor = load_actor(actor)
        data = load(schemas.return_input, {"delivery_id": delivery_id, "lines": lines, "reason": reason,
                                           "service_request_id": service_request_id})
        approver = self._chains().approver(actor["staff_id"], domain.PRODUCT_MANAGER)
        now = domain.utcnow()
        with self.db.transaction() as uow:
            replay = uow.begin_command("request_return", request_id, {"actor": actor, "return": data})
            if replay:
                return replay.response
            delivery_lines = Deliveries(uow).lines(data["delivery_id"], lock=True)
            order = Orders(uow).get(delivery_lines[0]["order_id"], scope(actor)) if delivery_lines else None
            if order is None:
                raise DocumentNotFound(f"delivery {data['delivery_id']} not found")
            planned = domain.plan_return(data["lines"], delivery_lines,
                                         Returns(uow).pending_quantities(data["delivery_id"]))
            return_id = uuid.uuid4()
            row = {"id": return_id, "number": uow.next_number("RR", now.year), "delivery_id": data["delivery_id"],
                   "order_id": order["id"], "customer_id": order["customer_id"], "owner_id": order["owner_id"],
                   "owner_team": order["owner_team"], "region": order["region"], "reason": data["reason"],
                   "service_request_id": data["service_request_id"], "requested_by": actor["staff_id"],
                   "created_at": now}
            row["content_hash"] = approvals.content_hash(domain.return_content(row, planned))
            Returns(uow).add(row, planned)
            needed = [domain.Approval(domain.PRODUCT_MANAGER, "product_manager", "returns are approved by the "
                                      "product manager (FR-94)")]
            Steps(uow).save("return", return_id, 1, to_rows(self._chains().start(needed, approver, now)))
            return uow.finish_command(views.return_(uow, Returns(uow).get(return_id)))

    @rpc
    def approve_return(self, *, request_id, actor, return_id, comment=None):
        return self._decide("return", request_id, actor, return_id, approvals.APPROVE, comment)

    @rpc
    def reject_return(self, *, request_id, actor, return_id, comment=None):
        return self._decide("return", request_id, actor, return_id, approvals.REJECT, comment)

    @rpc
    def receive_return(self, *, request_id, actor, return_id):
        """The warehouse receives the returned goods (inventory.receive_return: a red outbound,
        FR-96); billing raises the red-letter invoice from goods.returned (FR-95)."""
        actor = load_actor(actor)
        return_id = _uuid(return_id, "return_id")
        self._runner().receive_return(actor, return_id)
        return self._view("return", return_id)

    @rpc
    def get_return(self, *, actor, return_id):
        return self._get("return", actor, return_id)

    @rpc
    def list_returns(self, *, actor, filters=None, limit=None, cursor=None):
        return self._list("return", actor, schemas.return_filters, filters, limit, cursor)

    # -- loans (FR-98–FR-100) ----------------------------------------------------------------------
    @rpc
    def request_loan(self, *, request_id, actor, loan):
        """A loan of trial goods, approved by the direct manager and then the division head (FR-98)."""
        actor = load_actor(actor)
        data = load(schemas.loan_input, loan)
        customer = self._customer(actor, data["customer_id"])
        needed = [domain.Approval(domain.DIRECT_MANAGER, "sales_manager", "loans are approved by the direct "
                                  "manager (FR-98)"),
                  domain.Approval(domain.DIVISION_HEAD, "sales_director", "and by the division head (FR-98)")]
        approver = self._chains().first_approver(needed, actor["staff_id"])
        now = domain.utcnow()
        with self.db.transaction() as uow:
            replay = uow.begin_command("request_loan", request_id, {"actor": actor, "loan": data})
            if replay:
                return replay.response
            if data["due_date"] < domain.business_date(now):
                raise ValidationFailed("due_date is in the past", errors={"due_date": ["must be today or later"]})
            priced = domain.price_lines([dict(l, unit_price=None) for l in data["lines"]],
                                        PriceList(uow).get_many(l["sku"] for l in data["lines"]))
            totals = {}
            for line in priced:
                totals.setdefault(line.sku, {"sku": line.sku, "name": line.name, "quantity": 0})["quantity"] += line.quantity
            loan_id = uuid.uuid4()
            row = dict(customer, id=loan_id, number=uow.next_number("LN", now.year), due_date=data["due_date"],
                       warehouse=data["warehouse"], requested_by=actor["staff_id"], created_at=now)
            row["content_hash"] = approvals.content_hash(domain.loan_content(row, list(totals.values())))
            Loans(uow).add(row, list(totals.values()))
            Steps(uow).save("loan", loan_id, 1, to_rows(self._chains().start(needed, approver, now)))
            return uow.finish_command(views.loan(uow, Loans(uow).get(loan_id)))

    @rpc
    def approve_loan(self, *, request_id, actor, loan_id, comment=None):
        return self._decide("loan", request_id, actor, loan_id, approvals.APPROVE, comment)

    @rpc
    def reject_loan(self, *, request_id, actor, loan_id, comment=None):
        return self._decide("loan", request_id, actor, loan_id, approvals.REJECT, comment)

    @rpc
    def issue_loan(self, *, request_id, actor, loan_id):
        """The warehouse issues the approved loan (inventory.issue_loan)."""
        actor = load_actor(actor)
        loan_id = _uuid(loan_id, "loan_id")
        self._runner().issue_loan(actor, loan_id)
        return self._view("loan", loan_id)

    @rpc
    def return_loan(self, *, request_id, actor, loan_id, lines):
        """Loaned goods come back: never more than is out, SKU by SKU (FR-100)."""
        actor = load_actor(actor)
        data = load(schemas.loan_lines_input, {"lines": lines})
        loan_id = _uuid(loan_id, "loan_id")
        self._runner().return_loan(actor, loan_id, str(request_id), data["lines"])
        return self._view("loan", loan_id)

    @rpc
    def convert_loan(self, *, request_id, actor, loan_id, lines):
        """FR-99: loaned goods the customer keeps become a sale: the order (at list price, or the
        price given if not below list) confirmed with its credit, and the delivery and goods issue
        raised by inventory without moving the goods again. Answers the order."""
        actor = load_actor(actor)
        data = load(schemas.conversion_input, {"lines": lines})
        loan_id = _uuid(loan_id, "loan_id")
        settings = order_settings.load()
        order_id = uuid.uuid5(loan_id, f"conversion:{request_id}")
        with self.db.transaction() as uow:
            loan = Loans(uow).get(loan_id, scope(actor))
            if loan is None:
                raise DocumentNotFound(f"loan {loan_id} not found")
            priced = domain.price_lines(data["lines"], PriceList(uow).get_many(l["sku"] for l in data["lines"]))
        domain.check_order_prices(priced, settings.major_contract_amount)
        snapshot = {k: loan[k] for k in ("customer_id", "customer_name", "owner_id", "owner_team", "region")}
        self._runner().convert(actor, loan_id, order_id,
                               dict(snapshot, kind="loan_conversion", loan_id=loan_id, warehouse=loan["warehouse"],
                                    created_by=actor["staff_id"]), priced)
        return self._view("order", order_id)

    @rpc
    def get_loan(self, *, actor, loan_id):
        return self._get("loan", actor, loan_id)

    @rpc
    def list_loans(self, *, actor, filters=None, limit=None, cursor=None):
        return self._list("loan", actor, schemas.loan_filters, filters, limit, cursor)

    # -- after-sales ---------------------------------------------------------------------------------
    @rpc
    def create_replacement(self, *, request_id, actor, customer_id, sku, quantity, delivery_id, service_request_id):
        """A no-charge replacement (unit price 0) for an after-sales request: confirmed with its
        stock reserved (no credit needed) and its delivery note raised. Idempotent by request_id."""
        actor = load_actor(actor)
        data = load(schemas.replacement_input, {"customer_id": customer_id, "sku": sku, "quantity": quantity,
                                                "delivery_id": delivery_id, "service_request_id": service_request_id})
        order_id = uuid.uuid5(REPLACEMENT_NAMESPACE, str(request_id))
        with self.db.transaction() as uow:
            existing = Orders(uow).get(order_id)
            prices = PriceList(uow).get_many([data["sku"]])
        if existing is None:
            customer = self._customer(actor, data["customer_id"])
            priced = domain.price_lines([{"sku": data["sku"], "quantity": data["quantity"], "unit_price": 0}],
                                        prices, field="sku")
            order = dict(customer, kind="replacement", service_request_id=data["service_request_id"],
                         source_delivery_id=data["delivery_id"], created_by=actor["staff_id"])
        else:
            order, priced = None, None
        self._runner().replacement(actor, order_id, order, priced)
        return self._view("order", order_id)

    # -- sales plans and targets (FR-112–FR-118) -----------------------------------------------------
    def _may_plan(self, actor, scope_kind, scope_id):
        """Directors plan anything; a sales manager only their own team and its reps (FR-118)."""
        if actor["role"] in DIRECTORS:
            if scope_kind == "team":
                return scope_id
            if scope_kind == "rep":
                return self._staff_team(scope_id)
            return actor.get("team")
        if actor["role"] == "sales_manager" and actor.get("team"):
            if scope_kind == "team" and scope_id == actor["team"]:
                return scope_id
            if scope_kind == "rep" and self._staff_team(scope_id) == actor["team"]:
                return actor["team"]
        raise RoleNotAllowed("a sales manager sets targets for their own team and its reps; directors for "
                             "anything", role=actor["role"])

    def _staff_team(self, staff_id):
        staff = load(schemas.staff_answer, self.customer.get_staff(staff_id=str(staff_id)),
                     detail="the org chart answered without the staff member")
        return staff["team"]

    @rpc
    def set_target(self, *, request_id, actor, target):
        """A draft target for a period (year, quarter, month) and a rep, team, region, product or
        customer (FR-112–FR-114); optionally a child of a broader one (its period within the
        parent's). Setting it again while a draft changes its amount."""
        actor = load_actor(actor)
        data = load(schemas.target_input, target)
        period = domain.parse_period(data["period"])
        if data["scope"] in ("rep", "customer"):
            _uuid(data["scope_id"], "scope_id")
        team = self._may_plan(actor, data["scope"], data["scope_id"])
        now = domain.utcnow()
        with self.db.transaction() as uow:
            replay = uow.begin_command("set_target", request_id, {"actor": actor, "target": data})
            if replay:
                return replay.response
            targets = Targets(uow)
            if data["parent_id"] is not None:
                parent = targets.get(data["parent_id"])
                if parent is None:
                    raise ValidationFailed("no such parent target", errors={"parent_id": ["no such target"]})
                domain.check_child_target(period, domain.parse_period(parent["period"]))
            row = targets.upsert(dict(data, id=uuid.uuid4(), period_start=period.start, period_end=period.end,
                                      owner_team=team, created_by=actor["staff_id"], now=now))
            if row is None:
                raise TargetExists(f"the {data['period']} target of {data['scope']} {data['scope_id']} is published")
            return uow.finish_command(views.target(row))

    @rpc
    def publish_target(self, *, request_id, actor, target_id):
        """Publish a target and its breakdown: every target broken down must equal the sum of its
        children, and a target under a parent must keep its siblings summing to the parent; else
        409 TARGET_BREAKDOWN_MISMATCH showing each difference (FR-113, FR-118)."""
        actor = load_actor(actor)
        target_id = _uuid(target_id, "target_id")
        with self.db.transaction() as uow:
            row = Targets(uow).get(target_id)
        if row is None:
            raise DocumentNotFound(f"target {target_id} not found")
        self._may_plan(actor, row["scope"], row["scope_id"])
        now = domain.utcnow()
        with self.db.transaction() as uow:
            replay = uow.begin_command("publish_target", request_id, {"actor": actor, "id": str(target_id)})
            if replay:
                return replay.response
            targets = Targets(uow)
            tree = targets.subtree(target_id)
            mismatches = domain.breakdown_mismatches(tree)
            root = tree[0]
            if root["parent_id"] is not None:
                family = targets.subtree(root["parent_id"])
                siblings = [t for t in family if t["id"] == root["parent_id"] or t["parent_id"] == root["parent_id"]]
                mismatches += domain.breakdown_mismatches(siblings)
            if mismatches:
                raise TargetBreakdownMismatch(
                    "the breakdown does not add up: " + "; ".join(
                        f"{m['scope']} {m['scope_id']} {m['period']} is {m['amount']}, its parts sum to "
                        f"{m['children_total']} (difference {m['difference']})" for m in mismatches),
                    mismatches=mismatches)
            for published in targets.publish([t["id"] for t in tree], now):
                uow.publish("target.published", events.target_published(published))
            return uow.finish_command(views.target(targets.get(target_id)))

    @rpc
    def list_targets(self, *, actor, filters=None, limit=None, cursor=None):
        """Targets: a rep sees their own, a manager their team's, directors all."""
        actor = load_actor(actor)
        filters = load(schemas.target_filters, filters or {})
        limit = pagination.check_limit(limit)
        after = pagination.decode(cursor, 2)
        rep = actor["staff_id"] if actor["role"] == "sales_rep" else None
        team = actor.get("team") or "" if actor["role"] == "sales_manager" else None
        with self.db.transaction() as uow:
            rows = Targets(uow).list(filters, after, limit, team=team, rep=rep)
            items, next_cursor = pagination.page(rows, limit, key=lambda r: (r["created_at"].isoformat(), r["id"]))
            totals = {}
            for row in items:
                kids = uow.one("SELECT sum(amount) AS total FROM targets WHERE parent_id = %s", (row["id"],))
                totals[row["id"]] = kids["total"]
        return {"items": [views.target(r, totals[r["id"]]) for r in items], "next_cursor": next_cursor}

    # -- reports (the gateway joins them, issue 8) --------------------------------------------------
    @rpc
    def report_orders(self, *, actor, period_start, period_end, group_by):
        """Ordered (confirmed in the period), returned, shipped and invoiced amounts and the
        published target per group (rep, team, region, product, customer)."""
        actor = load_actor(actor)
        data = load(schemas.report_input, {"period_start": period_start, "period_end": period_end,
                                           "group_by": group_by})
        if data["group_by"] is None:
            raise ValidationFailed("group_by is required", errors={"group_by": ["one of rep team region product "
                                                                                "customer"]})
        start, end = (datetime.combine(d, time(), tzinfo=domain.TZ) for d in (data["period_start"], data["period_end"]))
        with self.db.transaction() as uow:
            reports = Reports(uow)
            ordered = reports.ordered(scope(actor), start, end, data["group_by"])
            targets = reports.targets(data["group_by"], data["period_start"], data["period_end"])
        groups = {}
        for row in ordered:
            groups[row["key"]] = {"key": row["key"], "orders": row["orders"], "ordered": str(domain.money(row["ordered"])),
                                  "returned": str(domain.money(row["returned"])),
                                  "shipped": str(domain.money(row["shipped"])),
                                  "invoiced": str(domain.money(row["invoiced"])), "target": None}
        visible = scope(actor)
        for row in targets:
            if not visible.unrestricted and row["key"] not in groups:
                continue
            group = groups.setdefault(row["key"], {"key": row["key"], "orders": 0, "ordered": "0.00",
                                                   "returned": "0.00", "shipped": "0.00", "invoiced": "0.00"})
            group["target"] = str(domain.money(row["target"]))
        return {"groups": sorted(groups.values(), key=lambda g: str(g["key"]))}

    @rpc
    def report_osb_cycle(self, *, actor, period_start, period_end, group_by=None):
        """The raw OSB timestamps of the orders confirmed in the period (FR-61, FR-62, FR-71):
        created → confirmed → first shipment → shipped → invoiced → paid, per group."""
        actor = load_actor(actor)
        data = load(schemas.report_input, {"period_start": period_start, "period_end": period_end,
                                           "group_by": group_by})
        start, end = (datetime.combine(d, time(), tzinfo=domain.TZ) for d in (data["period_start"], data["period_end"]))
        with self.db.transaction() as uow:
            rows = Reports(uow).cycle(scope(actor), start, end, data["group_by"])
        groups = {}
        for row in rows:
            groups.setdefault(str(row["key"]), []).append({
                "order_id": str(row["id"]), "number": row["number"], "customer_id": str(row["customer_id"]),
                "owner_id": events._s(row["owner_id"]), "total": str(domain.money(row["total"])),
                "status": row["status"], **{k: events._t(row[k]) for k in (
                    "created_at", "confirmed_at", "first_shipped_at", "shipped_at", "invoiced_at", "paid_at")}})
        return {"groups": [{"key": key, "orders": orders} for key, orders in sorted(groups.items())]}

    # -- periodic jobs (every replica; each claims its work) -----------------------------------------
    @rpc
    def get_books(self):
        """Read-only: the books the invariant checker compares across services (tests/invariants)."""
        with self.db.transaction() as uow:
            return kit_books.snapshot(uow, self.name, NUMBERED, Books(uow).read)

    @rpc
    def run_recover_sagas(self, *, as_of=None):
        """Resume or compensate sagas left half-way by a crash (their lease ran out before as_of)."""
        return self._runner().recover(_as_of(as_of))

    @timer(interval=5)
    def recover_sagas(self):
        """Every 5 s in every replica: one indexed query when nothing is stuck; then the gauges of
        what waits (sagas in progress, credit holds), the same in every replica."""
        self._runner().recover(domain.utcnow())
        with self.db.transaction() as uow:
            business_metrics.set_gauges(Gauges(uow).read())

    @rpc
    def run_expire_quotes(self, *, as_of=None):
        """Quotes past their valid_until (Asia/Shanghai date) expire."""
        today = domain.business_date(_as_of(as_of))
        with self.db.transaction() as uow:
            expired = Quotes(uow).to_expire(today)
        return {"expired": [row["number"] for row in expired]}

    @timer(interval=3600)
    def expire_quotes(self):
        self.run_expire_quotes(as_of=None)

    @rpc
    def run_archive_contracts(self, *, as_of=None):
        """FR-57: by the 5th of each month, last month's contracts are filed (archived_at)."""
        moment = _as_of(as_of).astimezone(domain.TZ)
        first = datetime(moment.year, moment.month, 1, tzinfo=domain.TZ)
        with self.db.transaction() as uow:
            if not uow.try_lock("order.archive_contracts"):
                return {"archived": [], "skipped": "running in another replica"}
            archived = Contracts(uow).archive(first)
        return {"archived": [row["number"] for row in archived]}

    @timer(interval=3600)
    def archive_contracts(self):
        self.run_archive_contracts(as_of=None)

    @rpc
    def run_close_orders(self, *, as_of=None):
        """Paid orders are closed once the returns window (ORDER.CLOSE_AFTER_DAYS) has passed."""
        settings = order_settings.load()
        before = _as_of(as_of) - timedelta(days=settings.close_after_days)
        with self.db.transaction() as uow:
            closed = Orders(uow).to_close(before)
            for order in closed:
                uow.publish("order.closed", events.order_moved(order, "closed_at"))
        return {"closed": [row["number"] for row in closed]}

    @timer(interval=3600)
    def close_orders(self):
        self.run_close_orders(as_of=None)


    # -- the gateway's aggregated views and the OSB cycle report (issue 8) ---------------------------
    @rpc
    def list_open_orders(self, *, actor, customer_id, limit=10):
        """The order service's part of the customer overview: the customer's open orders (not yet
        paid, closed or cancelled) as the caller may see them: how many, their total, the newest
        `limit` (1-50) without lines."""
        actor = load_actor(actor)
        customer_id = _uuid(customer_id, "customer_id")
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= 50:
            raise ValidationFailed("limit must be a whole number from 1 to 50", errors={"limit": ["1 to 50"]})
        with self.db.autocommit() as uow:  # reads only: no BEGIN, no COMMIT (issue 11)
            totals, rows = Views(uow).open_orders(scope(actor), customer_id, limit)
        return {"count": totals["count"], "amount": str(domain.money(totals["amount"])),
                "items": [_ORDER_SUMMARY.dump(row) for row in rows]}

    @rpc
    def get_order_timeline(self, *, actor, order_id):
        """The order service's part of `GET /orders/{id}/timeline`: the order (someone else's:
        NOT_FOUND, as get_order), its quote and contract with their approval trails, the sagas
        that reserved (and released) its stock and credit, its return requests, and the invoices
        it learnt of (billing's events)."""
        actor = load_actor(actor)
        with self.db.autocommit() as uow:  # reads only: no BEGIN, no COMMIT (issue 11)
            row = Orders(uow).get(_uuid(order_id, "order_id"), scope(actor), approver_id=actor["staff_id"])
            if row is None:
                raise DocumentNotFound(f"order {order_id} not found")
            found = Views(uow)
            quote = Quotes(uow).get(row["quote_id"]) if row["quote_id"] else None
            contract = Contracts(uow).get(row["contract_id"]) if row["contract_id"] else None
            sagas = found.sagas_of(row["id"])
            return {
                "order": views.order(uow, row, sagas=sagas),
                "quote": views.quote(uow, quote) if quote else None,
                "contract": views.contract(uow, contract) if contract else None,
                "sagas": [_SAGA.dump(saga) for saga in sagas],
                "returns": [views.return_(uow, ret) for ret in found.returns_of(row["id"])],
                "invoices": [{"invoice_id": str(inv["invoice_id"]), "number": inv["number"],
                              "amount": str(domain.money(inv["amount"])),
                              "reversed_amount": str(domain.money(inv["reversed_amount"])),
                              "issued_at": events._t(inv["issued_at"]), "settled_at": events._t(inv["settled_at"])}
                             for inv in Orders(uow).invoices(row["id"])],
            }

    @rpc
    def report_osb_cycle_stats(self, *, actor, period_start, period_end, group_by=None):
        """The OSB cycle (FR-62) of the sale orders confirmed in [period_start, period_end)
        (Asia/Shanghai dates, the end excluded as in report_orders), per group (rep, team, region,
        customer; none: only the total): per step — order → ship (created → all shipped), ship →
        invoice (→ all invoiced), invoice → cash (→ all paid) and order → cash — how many orders
        completed it and the median and 90th percentile of its days, computed in SQL."""
        actor = load_actor(actor)
        data = load(schemas.report_input, {"period_start": period_start, "period_end": period_end,
                                           "group_by": group_by})
        if data["group_by"] == "product":
            raise ValidationFailed("an order's cycle is not per product",
                                   errors={"group_by": ["one of rep team region customer, or none"]})
        start, end = (datetime.combine(d, time(), tzinfo=domain.TZ) for d in (data["period_start"], data["period_end"]))
        with self.db.transaction() as uow:
            rows = Views(uow).cycle_percentiles(scope(actor), start, end, data["group_by"])
        groups, totals = [], None
        for row in rows:
            figures = {"orders": row["orders"], "steps": {step: {
                "count": row[f"{step}_count"], "median_days": _days(row[f"{step}_median"]),
                "p90_days": _days(row[f"{step}_p90"])} for step in OSB_STEPS}}
            if row["total"]:
                totals = figures
            else:
                groups.append(dict(figures, key=row["key"]))
        empty = {"orders": 0, "steps": {step: {"count": 0, "median_days": None, "p90_days": None}
                                        for step in OSB_STEPS}}
        return {"period_start": data["period_start"].isoformat(), "period_end": data["period_end"].isoformat(),
                "group_by": data["group_by"], "steps": list(OSB_STEPS), "groups": groups,
                "totals": totals or empty}


_ORDER_SUMMARY = schemas.OrderOut(exclude=("lines", "saga"))
_SAGA = schemas.SagaOut()


def _days(value):
    """Days as a decimal string with 2 places (None stays None)."""
    return None if value is None else str(Decimal(str(value)).quantize(Decimal("0.01"), ROUND_HALF_UP))
