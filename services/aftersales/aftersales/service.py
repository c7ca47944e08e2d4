"""Entrypoints of the aftersales service: load input, run the rules in a unit of work, dump output.

Calls to other services (customer.get_customer / get_staff / find_approver, order.request_return /
create_replacement) are made outside any database transaction. Resolution actions for other
departments are written in the resolving transaction and carried out after it, retried by a
periodic job until the other side answers (idempotent there by a request id derived from the
service request). Periodic jobs run in every replica and take `as_of`, also as `run_<job>` RPCs.
"""
import logging
import uuid
from datetime import datetime, timedelta, timezone

from nameko.timer import timer

from aftersales import domain, events, metrics
from aftersales.db import Customers, Deliveries, PendingActions, Products, Repairs, Reports, ServiceRequests, Steps
from aftersales.exceptions import AlreadyAssigned, InvalidState, ServiceRequestNotFound
from aftersales.schemas import (
    ApproverAnswer, CustomerAnswer,
    as_of_input, assign_input, confirm_input, customer_created_data, customer_owner_changed_data,
    customer_updated_data, feedback_input, goods_issued_data, product_created_data, product_price_changed_data,
    repair_step_input, report_input, request_filters, request_ref, resolve_input, service_request_input,
    service_request_out, start_input,
)
from aftersales.settings import SettingsProvider
from shared import access, books as kit_books, metrics as shared_metrics, pagination, workdays
from shared.access import SYSTEM_ACTOR
from shared.dependencies import Database
from shared.entrypoints import event_handler, rpc
from shared.errors import NotFound, SalesError, ValidationFailed
from shared.rpc import ServiceRpc
from shared.service import ServiceBase
from shared.validation import load, load_actor

log = logging.getLogger(__name__)

ESCALATION_INTERVAL = 60  # seconds between escalation runs (each replica; the update is guarded)
ACTION_INTERVAL = 10  # seconds between runs of the resolution-action retry job
# The first attempt at a resolution action is made while the engineer waits for the answer: it is
# bounded well below the caller's own RPC timeout, and the job carries on if it does not finish.
FIRST_ATTEMPT_TIMEOUT = 3


class _FirstCall(Exception):
    """Rolls back the look-ahead for a stored answer when there is none."""


def utcnow():
    return datetime.now(timezone.utc)


class AftersalesService(ServiceBase):
    name = "aftersales"

    db = Database()
    settings = SettingsProvider()
    customer = ServiceRpc("customer", reads={"get_customer": CustomerAnswer, "find_approver": ApproverAnswer})
    order = ServiceRpc("order")
    order_now = ServiceRpc("order", timeout=FIRST_ATTEMPT_TIMEOUT)

    @rpc
    def get_books(self):
        """Read-only: the books the invariant checker compares across services (tests/invariants)."""
        with self.db.transaction() as uow:
            return kit_books.snapshot(uow, self.name, [("service_requests", "number")])

    # -- service requests -----------------------------------------------------------------------
    @rpc
    def open_request(self, *, request_id, actor, service_request):
        """FR-101: a request for a product the customer received, with its SLA clock (`due_at`)."""
        actor = load_actor(actor)
        data = load(service_request_input, service_request)
        command = {"actor": actor, "service_request": data}
        stored = self._stored_answer("open_request", request_id, command)
        if stored is not None:
            return stored
        domain.require_role(actor, domain.OPENERS, "opening a service request")
        asked_at = utcnow()
        customer = self._customer(actor, data["customer_id"])
        now = utcnow()
        with self.db.transaction() as uow:
            replay = uow.begin_command("open_request", request_id, command)
            if replay:
                return replay.response
            requests = ServiceRequests(uow)
            delivery = domain.check_delivered(
                data["sku"], data["delivery_id"], Deliveries(uow).lines_for(data["customer_id"], data["sku"]))
            product = Products(uow).get(data["sku"])
            months = self._warranty_months(product)
            delivered_on = workdays.local_date(delivery["delivered_at"]) if delivery else None
            repeat = domain.repeat_of(requests.resolved_for(data["customer_id"], data["sku"], data["delivery_id"]),
                                      now, self.settings.repeat_window_days)
            # the snapshot as of when the customer service was asked, merged with what its events
            # said meanwhile (the newest owner wins; the row lock orders us with the consumer)
            snapshot = Customers(uow).record(data["customer_id"], asked_at, number=customer.get("number"),
                                             name=customer.get("name"), owner_id=customer.get("owner_id"),
                                             owner_team=customer.get("owner_team"), region=customer.get("region"))
            row = requests.add({
                "id": uuid.uuid4(),
                "number": uow.next_number("SR", workdays.local_date(now).year),
                "type": data["type"], "priority": data["priority"], "status": "open",
                "description": data["description"],
                "customer_id": data["customer_id"], "customer_name": snapshot["name"],
                "owner_id": snapshot["owner_id"], "owner_team": snapshot["owner_team"],
                "region": snapshot["region"],
                "sku": data["sku"], "product_name": product["name"] if product else None,
                "delivery_id": data["delivery_id"],
                "delivery_number": delivery["delivery_number"] if delivery else None,
                "delivered_at": delivery["delivered_at"] if delivery else None,
                "warranty_until": domain.warranty_until(delivered_on, months),
                "in_warranty": domain.in_warranty(workdays.local_date(now), delivered_on, months) if delivery else None,
                "repeat_of": repeat,
                "sla_hours": self.settings.sla_hours[data["type"]][data["priority"]],
                "opened_at": now, "opened_by": actor["staff_id"],
                "due_at": domain.due_at(now, data["type"], data["priority"], self.settings.sla_hours,
                                        workdays.add_working_hours),
            })
            if repeat is not None:
                requests.not_first_time_fix(repeat)
            Steps(uow).add(row["id"], "opened", actor, None, "open", note=data["description"],
                           details={"due_at": row["due_at"], "sla_hours": row["sla_hours"], "repeat_of": repeat},
                           at=now)
            uow.publish("service_request.opened", events.opened(row))
            return uow.finish_command(self._dump(uow, row, now))

    @rpc
    def confirm_request(self, *, request_id, actor, service_request_id, note=None):
        """FR-102: the sales manager confirms the request (their own or their team's customers)."""
        actor = load_actor(actor)
        data = load(confirm_input, {"service_request_id": service_request_id, "note": note})
        domain.require_role(actor, domain.CONFIRMERS, "confirming a service request (FR-102)")
        now = utcnow()
        with self.db.transaction() as uow:
            replay = uow.begin_command("confirm_request", request_id, {"actor": actor, **data})
            if replay:
                return replay.response
            row = self._locked(uow, actor, data["service_request_id"])
            row = self._move(uow, actor, row, "confirm", {"confirmed_at": now, "confirmed_by": actor["staff_id"]},
                             step="confirmed", note=data["note"], at=now)
            return uow.finish_command(self._dump(uow, row, now))

    @rpc
    def assign_request(self, *, request_id, actor, service_request_id, engineer_id, note=None):
        """Assign (or re-assign) a confirmed request to a service engineer."""
        actor = load_actor(actor)
        data = load(assign_input, {"service_request_id": service_request_id, "engineer_id": engineer_id,
                                   "note": note})
        command = {"actor": actor, **data}
        stored = self._stored_answer("assign_request", request_id, command)
        if stored is not None:
            return stored
        domain.require_role(actor, domain.ASSIGNERS, "assigning a service request")
        engineer = self._engineer(data["engineer_id"])
        now = utcnow()
        with self.db.transaction() as uow:
            replay = uow.begin_command("assign_request", request_id, command)
            if replay:
                return replay.response
            row = self._locked(uow, actor, data["service_request_id"])
            previous = row["engineer_id"]
            if previous is not None and str(previous) == str(engineer["id"]) and row["status"] in domain.UNRESOLVED:
                raise AlreadyAssigned(f"{row['number']} is already assigned to {engineer['display_name']}",
                                      engineer_id=engineer["id"])
            row = self._move(uow, actor, row, "assign",
                             {"engineer_id": engineer["id"], "engineer_name": engineer["display_name"],
                              "assigned_at": now},
                             increment=("assignment_count",), step="reassigned" if previous else "assigned",
                             note=data["note"], at=now,
                             details={"engineer_id": engineer["id"], "engineer_name": engineer["display_name"],
                                      "previous_engineer_id": previous})
            uow.publish("service_request.assigned", events.assigned(row, previous, actor["staff_id"]))
            return uow.finish_command(self._dump(uow, row, now))

    @rpc
    def start_work(self, *, request_id, actor, service_request_id, note=None):
        """The assigned engineer starts working the request (FR-103)."""
        actor = load_actor(actor)
        data = load(start_input, {"service_request_id": service_request_id, "note": note})
        now = utcnow()
        with self.db.transaction() as uow:
            replay = uow.begin_command("start_work", request_id, {"actor": actor, **data})
            if replay:
                return replay.response
            row = self._locked(uow, actor, data["service_request_id"])
            domain.require_assigned_engineer(actor, row, "start work on this request")
            row = self._move(uow, actor, row, "start", {"started_at": now}, step="started", note=data["note"], at=now)
            return uow.finish_command(self._dump(uow, row, now))

    @rpc
    def record_repair_step(self, *, request_id, actor, service_request_id, step, note=None, amount=None):
        """FR-97: received -> diagnosing -> quoted (out of warranty) -> approved -> repairing ->
        repaired -> returned (or quoted -> declined -> returned)."""
        actor = load_actor(actor)
        data = load(repair_step_input, {"service_request_id": service_request_id, "step": step, "note": note,
                                        "amount": amount})
        now = utcnow()
        with self.db.transaction() as uow:
            replay = uow.begin_command("record_repair_step", request_id, {"actor": actor, **data})
            if replay:
                return replay.response
            row = self._locked(uow, actor, data["service_request_id"])
            domain.require_repair(row)
            domain.check_repair_actor(data["step"], actor, row)
            domain.next_status("repair_step", row["status"])
            repairs = Repairs(uow)
            repair = repairs.get(row["id"], lock=True)
            current = repair["status"] if repair else None
            if data["step"] == "receive":
                # warranty is decided when the unit comes in: the delivery date, the product's
                # warranty period as known now, the day the customer claimed (FR-97)
                months = self._warranty_months(Products(uow).get(row["sku"]))
                delivered_on = workdays.local_date(row["delivered_at"]) if row["delivered_at"] else None
                under_warranty = domain.in_warranty(workdays.local_date(row["opened_at"]), delivered_on, months)
            else:
                under_warranty = repair["in_warranty"] if repair else None
            target = domain.next_repair_status(data["step"], current, under_warranty)
            if data["step"] == "receive":
                until = domain.warranty_until(delivered_on, months)
                repairs.add(row["id"], under_warranty, until, now)
                request_changes = {"in_warranty": under_warranty, "warranty_until": until}
            else:
                changes = {"status": target}
                if data["step"] == "diagnose":
                    changes["diagnosis"] = data["note"]
                elif data["step"] == "quote":
                    changes["quote_amount"] = data["amount"]
                elif data["step"] == "complete":
                    changes["repaired"] = True
                repairs.advance(row["id"], current, changes)
                request_changes = {}
            if row["status"] == "assigned":
                request_changes["started_at"] = now
            details = {"repair_from": current, "repair_to": target}
            if data["amount"] is not None:
                details["amount"] = data["amount"]
            row = self._move(uow, actor, row, "repair_step", request_changes, step=f"repair_{data['step']}",
                             note=data["note"], details=details, at=now)
            return uow.finish_command(self._dump(uow, row, now))

    @rpc
    def resolve_request(self, *, request_id, actor, service_request_id, resolution, action, quantity=None):
        """The assigned engineer resolves the request (FR-103); a `return` or `replacement` reaches
        the order service (order.request_return / order.create_replacement), reliably."""
        actor = load_actor(actor)
        data = load(resolve_input, {"service_request_id": service_request_id, "resolution": resolution,
                                    "action": action, "quantity": quantity})
        now = utcnow()
        pending = None
        with self.db.transaction() as uow:
            replay = uow.begin_command("resolve_request", request_id, {"actor": actor, **data})
            if replay:
                return replay.response
            row = self._locked(uow, actor, data["service_request_id"])
            domain.require_assigned_engineer(actor, row, "resolve this request")
            domain.next_status("resolve", row["status"])
            goods = data["action"] in domain.ACTION_TARGETS
            units = (data["quantity"] or 1) if goods else None
            delivered = (Deliveries(uow).quantity(row["customer_id"], row["delivery_id"], row["sku"])
                         if goods and row["delivery_id"] else None)
            domain.check_resolution(row, data["action"], units, Repairs(uow).get(row["id"]), delivered)
            row = self._move(uow, actor, row, "resolve", {
                "resolved_at": now, "resolved_by": actor["staff_id"], "resolution": data["resolution"],
                "action": data["action"], "action_quantity": units, "sla_met": domain.sla_met(now, row["due_at"]),
                "first_time_fix": domain.first_time_fix(row["assignment_count"]),
            }, step="resolved", note=data["resolution"], at=now,
                details={"action": data["action"], "quantity": units, "sla_met": domain.sla_met(now, row["due_at"])})
            if goods:
                pending = PendingActions(uow).add({
                    "id": uuid.uuid4(), "service_request_id": row["id"], "kind": data["action"],
                    "target": domain.ACTION_TARGETS[data["action"]],
                    "request_id": domain.action_request_id(row["id"], data["action"]),
                    # the engineer who resolved it asks the other department, as a person of the
                    # org chart: the order service finds the return's approver relative to them
                    "payload": domain.action_call(data["action"], row, units, data["resolution"], actor),
                    "next_attempt_at": now,
                })
            uow.publish("service_request.resolved", events.resolved(row))
            answer = uow.finish_command(self._dump(uow, row, now))
        if pending is None:
            return answer
        # first attempt at once (no transaction held); the retry job carries on if it fails
        self._run_actions(utcnow(), action_id=pending["id"], client=self.order_now)
        with self.db.transaction() as uow:
            return self._dump(uow, ServiceRequests(uow).get(row["id"]), utcnow())

    @rpc
    def record_feedback(self, *, request_id, actor, service_request_id, rating, comment=None):
        """FR-107: the customer's rating (1-5) and comment close a resolved request."""
        actor = load_actor(actor)
        data = load(feedback_input, {"service_request_id": service_request_id, "rating": rating,
                                     "comment": comment})
        domain.require_role(actor, domain.FEEDBACK_RECORDERS, "recording the customer's feedback")
        now = utcnow()
        with self.db.transaction() as uow:
            replay = uow.begin_command("record_feedback", request_id, {"actor": actor, **data})
            if replay:
                return replay.response
            row = self._locked(uow, actor, data["service_request_id"])
            row = self._move(uow, actor, row, "feedback", {
                "rating": data["rating"], "feedback_comment": data["comment"], "feedback_at": now,
                "feedback_by": actor["staff_id"], "closed_at": now,
            }, step="closed", note=data["comment"], details={"rating": data["rating"]}, at=now)
            uow.publish("service_request.closed", events.closed(row))
            return uow.finish_command(self._dump(uow, row, now))

    @rpc
    def get_request(self, *, actor, service_request_id):
        """One request with its repair, its action and every step (FR-106)."""
        actor = load_actor(actor)
        data = load(request_ref, {"service_request_id": service_request_id})
        with self.db.transaction() as uow:
            row = ServiceRequests(uow).get(data["service_request_id"], self._scope(actor))
            if row is None:
                raise ServiceRequestNotFound(f"service request {service_request_id} not found")
            return self._dump(uow, row, utcnow(), history=True)

    @rpc
    def list_requests(self, *, actor, filters=None, limit=None, cursor=None):
        """`{items, next_cursor}`, newest first; filters `status`, `overdue`, `active`, `escalated`,
        `customer_id`, `type`, `priority`, `engineer`, `sku`."""
        actor = load_actor(actor)
        filters = load(request_filters, filters or {})
        limit = pagination.check_limit(limit)
        after = pagination.decode(cursor, 2)
        now = utcnow()
        with self.db.autocommit() as uow:  # reads only: no BEGIN, no COMMIT (issue 11)
            rows = ServiceRequests(uow).list(scope=self._scope(actor), now=now, after=after, limit=limit, **filters)
            items, next_cursor = pagination.page(rows, limit, key=lambda r: (r["opened_at"].isoformat(), r["id"]))
            return {"items": self._dump_many(uow, items, now), "next_cursor": next_cursor}

    # -- reports (FR-107, FR-108) --------------------------------------------------------------
    @rpc
    def report_service(self, *, actor, period_start, period_end, group_by):
        """Per group (rep, team, region, product, customer, engineer): requests opened and resolved,
        SLA compliance, first-time-fix rate, escalations, still overdue, satisfaction."""
        actor = load_actor(actor)
        data = load(report_input, {"period_start": period_start, "period_end": period_end, "group_by": group_by})
        start, end = domain.period_bounds(data["period_start"], data["period_end"], workdays.TZ)
        with self.db.transaction() as uow:
            rows = Reports(uow).service(scope=self._scope(actor), start=start, end=end, now=utcnow(),
                                        group_by=data["group_by"])
        return {
            "period_start": data["period_start"].isoformat(), "period_end": data["period_end"].isoformat(),
            "group_by": data["group_by"],
            "groups": [{
                "key": row["key"], "label": row["label"],
                "opened": row["opened"], "resolved": row["resolved"],
                "resolved_within_sla": row["resolved_within_sla"],
                "sla_compliance": domain.ratio(row["resolved_within_sla"], row["resolved"]),
                "first_time_fixed": row["first_time_fixed"],
                "first_time_fix_rate": domain.ratio(row["first_time_fixed"], row["resolved"]),
                "escalated": row["escalated"], "overdue_open": row["overdue_open"],
                "feedback_count": row["feedback_count"],
                "average_rating": domain.average(row["rating_total"], row["feedback_count"]),
            } for row in rows],
        }

    # -- periodic jobs --------------------------------------------------------------------------
    @timer(interval=ESCALATION_INTERVAL)
    def escalate_overdue(self):
        now = utcnow()
        self._escalate(now)
        with self.db.transaction() as uow:  # the gauge is the same in every replica
            shared_metrics.SERVICE_REQUESTS_OVERDUE.labels(self.name).set(ServiceRequests(uow).overdue_count(now))

    @rpc
    def run_escalations(self, *, as_of=None):
        """FR-104: escalate every unresolved request past its due time to the owning rep's sales
        manager (found in the org chart now), once. `as_of` (ISO, with offset) defaults to now."""
        return self._escalate(self._as_of(as_of))

    @timer(interval=ACTION_INTERVAL)
    def retry_actions(self):
        self._run_actions(utcnow())

    @rpc
    def run_pending_actions(self, *, as_of=None):
        """Carry out the resolution actions that are due (first attempts that failed, retries)."""
        return self._run_actions(self._as_of(as_of))

    # -- consumed events -------------------------------------------------------------------------
    @event_handler("inventory", "goods.issued", expects=goods_issued_data)
    def on_goods_issued(self, uow, event):
        """What reached which customer and when: requests are checked against it."""
        Deliveries(uow).record(event["data"], event["event_id"])

    @event_handler("inventory", "product.created", expects=product_created_data)
    def on_product_created(self, uow, event):
        Products(uow).record(event["data"], _occurred_at(event))

    @event_handler("inventory", "product.price_changed", expects=product_price_changed_data)
    def on_product_price_changed(self, uow, event):
        Products(uow).record(event["data"], _occurred_at(event))

    @event_handler("customer", "customer.created", expects=customer_created_data)
    def on_customer_created(self, uow, event):
        data = event["data"]
        Customers(uow).record(data["customer_id"], _occurred_at(event), number=data["number"], name=data["name"],
                              owner_id=data["owner_id"], owner_team=data["owner_team"], region=data["region"])

    @event_handler("customer", "customer.owner_changed", expects=customer_owner_changed_data)
    def on_customer_owner_changed(self, uow, event):
        """Move the snapshot on every request of the customer (row-level access, escalation)."""
        data = event["data"]
        if Customers(uow).change_owner(data["customer_id"], data["owner_id"], data["owner_team"],
                                       _occurred_at(event)):
            ServiceRequests(uow).move_owner(data["customer_id"], data["owner_id"], data["owner_team"])

    @event_handler("customer", "customer.updated", expects=customer_updated_data)
    def on_customer_updated(self, uow, event):
        data = event["data"]
        changes = {key: data[key] for key in ("name", "region") if key in data}
        Customers(uow).update_profile(data["customer_id"], changes)
        ServiceRequests(uow).move_profile(data["customer_id"], changes)

    # -- helpers ---------------------------------------------------------------------------------
    def _scope(self, actor):
        return access.scope(actor).sql("owner_id", "owner_team")

    def _locked(self, uow, actor, service_request_id):
        row = ServiceRequests(uow).get(service_request_id, self._scope(actor), lock=True)
        if row is None:
            raise ServiceRequestNotFound(f"service request {service_request_id} not found")
        return row

    def _move(self, uow, actor, row, action, changes, *, step, note=None, details=None, at=None, increment=()):
        """The guarded transition `action` of a locked request, recorded as a step (FR-106)."""
        target = domain.next_status(action, row["status"])
        updated = ServiceRequests(uow).update(row["id"], [row["status"]], dict(changes, status=target),
                                              increment=increment)
        if updated is None:  # cannot happen on a locked row; never write over a change we did not see
            raise InvalidState(f"{row['number']} changed meanwhile; read it again")
        Steps(uow).add(row["id"], step, actor, row["status"], target, note=note, details=details, at=at)
        return updated

    def _stored_answer(self, command, request_id, request):
        """The answer of an earlier identical call, looked up before calling another service (so a
        retried command does not depend on that service again); None for a first call."""
        try:
            with self.db.transaction() as uow:
                replay = uow.begin_command(command, request_id, request)
                if replay is not None:
                    return replay.response
                raise _FirstCall()
        except _FirstCall:
            return None

    def _customer(self, actor, customer_id):
        """The customer as the actor may see it (the snapshot the request keeps)."""
        try:
            return self.customer.get_customer(actor=actor, customer_id=str(customer_id))
        except NotFound:
            raise ValidationFailed("no such customer", errors={
                "customer_id": ["no such customer, or not one you may see"]}) from None

    def _engineer(self, engineer_id):
        try:
            staff = self.customer.get_staff(staff_id=str(engineer_id))
        except NotFound:
            staff = None
        if staff is None:
            raise ValidationFailed("no such staff member", errors={"engineer_id": ["no such staff member"]})
        if staff.get("role") != "service_engineer":
            raise ValidationFailed("not a service engineer", errors={
                "engineer_id": [f"not a service engineer (role: {staff.get('role')})"]})
        if staff.get("active") is False:
            raise ValidationFailed("engineer not active", errors={"engineer_id": ["no longer active"]})
        return {"id": str(staff["id"]), "display_name": staff.get("display_name") or staff.get("username")}

    def _warranty_months(self, product):
        if product is not None and product["warranty_months"] is not None:
            return product["warranty_months"]
        return self.settings.default_warranty_months

    def _as_of(self, as_of):
        return load(as_of_input, {"as_of": as_of})["as_of"] or utcnow()

    def _dump(self, uow, row, now, history=False):
        return self._dump_many(uow, [row], now, history=history)[0]

    def _dump_many(self, uow, rows, now, history=False):
        ids = [row["id"] for row in rows]
        repairs = Repairs(uow).of(ids) if ids else {}
        actions = PendingActions(uow).of(ids) if ids else {}
        items = []
        for row in rows:
            item = dict(row, overdue=domain.is_overdue(row["status"], row["due_at"], now),
                        escalated=row["escalated_at"] is not None, repair=repairs.get(row["id"]),
                        action_status=actions.get(row["id"]))
            if history:
                item["history"] = Steps(uow).of(row["id"])
            items.append(service_request_out.dump(item))
        return items

    # -- escalation (FR-104) ---------------------------------------------------------------------
    def _escalate(self, as_of):
        with self.db.transaction() as uow:
            candidates = ServiceRequests(uow).escalation_candidates(as_of, self.settings.escalation_batch)
        escalated, deferred = [], 0
        for index, candidate in enumerate(candidates):
            try:
                manager, reason = self._manager_of(candidate["owner_id"])
            except Exception as exc:  # unavailable, timed out, crashed: the next run tries again
                deferred = len(candidates) - index
                log.warning("escalation deferred: the org chart did not answer (%s: %s)", type(exc).__name__, exc)
                break
            with self.db.transaction() as uow:
                row = ServiceRequests(uow).mark_escalated(
                    candidate["id"], as_of, manager["id"] if manager else None,
                    manager.get("display_name") if manager else None)
                if row is None:  # resolved meanwhile, or another replica escalated it
                    continue
                overdue = round(workdays.working_hours_between(row["due_at"], as_of), 2)
                Steps(uow).add(row["id"], "escalated", SYSTEM_ACTOR, row["status"], row["status"], note=reason,
                               details={"escalated_to": manager["id"] if manager else None,
                                        "due_at": row["due_at"], "overdue_working_hours": overdue}, at=as_of)
                uow.publish("service_request.escalated", events.escalated(row, overdue, reason))
            metrics.ESCALATIONS.labels(self.name, str(manager is not None).lower()).inc()
            escalated.append(row["number"])
        return {"as_of": as_of.isoformat(), "escalated": escalated, "deferred": deferred}

    def _manager_of(self, owner_id):
        """(the owning rep's direct manager now, why) — (None, why) when there is none to find."""
        if owner_id is None:
            return None, "the customer has no owner (pool): nobody to escalate to"
        try:
            manager = self.customer.find_approver(staff_id=str(owner_id), relation="direct_manager")
        except SalesError as exc:
            if exc.status >= 500:
                raise
            return None, f"no sales manager found for the owner: {exc.code}: {exc.detail}"
        return manager, "overdue: escalated to the owning rep's sales manager (FR-104)"

    # -- resolution actions ----------------------------------------------------------------------
    def _run_actions(self, as_of, action_id=None, client=None):
        settings = self.settings
        lease = as_of + timedelta(seconds=settings.action_lease_seconds)
        with self.db.transaction() as uow:
            claimed = PendingActions(uow).claim(as_of, lease, settings.action_batch, action_id=action_id)
        outcome = {"done": 0, "retrying": 0, "failed": 0}
        for action in claimed:
            result = self._carry_out(action, as_of, client or self.order)
            metrics.RESOLUTION_ACTIONS.labels(self.name, action["kind"], result).inc()
            outcome[result] += 1
        return outcome

    def _carry_out(self, action, as_of, client):
        """Call the other department with the stored arguments (identical every time, so its
        idempotency by request_id holds); record what happened."""
        method = getattr(client, action["target"].split(".", 1)[1])
        try:
            result = method(**action["payload"])
        except SalesError as exc:
            if exc.status >= 500:
                return self._retry(action, as_of, f"{exc.code}: {exc.detail}")
            return self._refused(action, exc)
        except Exception as exc:  # a remote crash or the broker: retried, never lost
            return self._retry(action, as_of, f"{type(exc).__name__}: {exc}")
        with self.db.transaction() as uow:
            if PendingActions(uow).done(action["id"], result) is not None:
                Steps(uow).add(action["service_request_id"], f"{action['kind']}_requested", SYSTEM_ACTOR, None, None,
                               note=f"{action['target']} answered",
                               details={"request_id": action["request_id"], "result": result})
        return "done"

    def _retry(self, action, as_of, error):
        settings = self.settings
        later = as_of + domain.retry_delay(action["attempts"], settings.action_retry_base_seconds,
                                           settings.action_retry_max_seconds)
        log.warning("resolution action %s of %s will be retried at %s: %s", action["target"],
                    action["service_request_id"], later.isoformat(), error)
        with self.db.transaction() as uow:
            PendingActions(uow).retry_later(action["id"], error, later)
        return "retrying"

    def _refused(self, action, exc):
        log.error("resolution action %s of %s was refused: %s", action["target"], action["service_request_id"], exc)
        with self.db.transaction() as uow:
            if PendingActions(uow).failed(action["id"], f"{exc.code}: {exc.detail}") is not None:
                Steps(uow).add(action["service_request_id"], f"{action['kind']}_refused", SYSTEM_ACTOR, None, None,
                               note=exc.detail, details={"request_id": action["request_id"], "code": exc.code})
        return "failed"


def _occurred_at(event):
    try:
        moment = datetime.fromisoformat(str(event["occurred_at"]))
    except ValueError:
        raise ValidationFailed("occurred_at is not an ISO date-time",
                               errors={"occurred_at": ["not an ISO date-time"]}) from None
    if moment.tzinfo is None:
        raise ValidationFailed("occurred_at has no offset", errors={"occurred_at": ["needs a UTC offset"]})
    return moment
