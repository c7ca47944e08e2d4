"""Entrypoints of the inventory service (the warehouse): load and check the input, run the use
case (inventory.workflows) in one unit of work, dump the answer. Commands are idempotent by
`request_id` (uow.begin_command) or, for the order saga, by their business key
(`reservation_id`, `order_id`). See README.md for the contract."""
import logging
import uuid
from datetime import datetime, timezone

from nameko.timer import timer

from inventory import workflows
from inventory.schemas import (
    adjustment_input, cancel_delivery_input, convert_loan_input, create_delivery_input, customer_owner_changed_data,
    customer_updated_data, delivery_filters, delivery_out, document_out, expiry_input, issue_loan_input, loan_out,
    movement_filters, movement_out, order_cancelled_data, order_confirmed_data, product_changes, product_filters,
    product_input, product_out, receipt_input, receive_return_input, release_input, report_input, reservation_out,
    reserve_input, return_loan_input, reverse_input, stock_filters, stock_level_out, warehouse_input, warehouse_out,
)
from inventory.db import Catalog, OrderDocuments, Stock, Warehouses
from inventory.exceptions import InsufficientStock, ProductNotFound, ReservationNotFound
from shared import access, config, metrics, pagination
from shared.access import SYSTEM_ACTOR
from shared.dependencies import Database
from shared.entrypoints import event_handler, rpc
from shared.errors import ValidationFailed
from shared.service import ServiceBase
from shared.validation import load, load_actor

log = logging.getLogger(__name__)

EXPIRY_INTERVAL = 60  # seconds between expiry runs in each replica
EXPIRY_MAX_PER_RUN = 1000


def _request_id(value):
    if not isinstance(value, str) or not 1 <= len(value) <= 200:
        raise ValidationFailed("request_id is required", errors={"request_id": ["a string of 1 to 200 characters"]})
    return value


def _uuid(value, field):
    try:
        return uuid.UUID(str(value))
    except ValueError:
        raise ValidationFailed(f"{field} is not a UUID", errors={field: ["not a valid UUID"]}) from None


def _actor_or_system(actor):
    """Commands the order service calls on its own account may omit the actor."""
    return load_actor(actor) if actor is not None else dict(SYSTEM_ACTOR)


def _page(rows, limit, schema, key):
    items, next_cursor = pagination.page(rows, limit, key)
    return {"items": schema.dump(items, many=True), "next_cursor": next_cursor}


class InventoryService(ServiceBase):
    name = "inventory"

    db = Database()

    def _command(self, command, request_id, request, run, dump):
        """Run `run(uow)` once per request_id; a repeat answers the first answer."""
        with self.db.transaction() as uow:
            replay = uow.begin_command(command, _request_id(request_id), request)
            if replay:
                return replay.response
            return uow.finish_command(dump(run(uow)))

    # -- catalog (product managers) -------------------------------------------------------------
    @rpc
    def create_product(self, *, request_id, actor, product):
        actor = load_actor(actor)
        data = load(product_input, product)
        return self._command("create_product", request_id, {"actor": actor, "product": data},
                             lambda uow: workflows.create_product(uow, actor, data), product_out.dump)

    @rpc
    def update_product(self, *, request_id, actor, sku, changes):
        actor = load_actor(actor)
        data = load(product_changes, changes)
        return self._command("update_product", request_id, {"actor": actor, "sku": sku, "changes": data},
                             lambda uow: workflows.update_product(uow, actor, str(sku), data), product_out.dump)

    @rpc
    def get_product(self, *, sku):
        with self.db.transaction() as uow:
            row = Catalog(uow).get(str(sku))
            if row is None:
                raise ProductNotFound(f"no product {sku}")
            return product_out.dump(workflows.product_view(uow, row))

    @rpc
    def list_products(self, *, filters=None, limit=None, cursor=None):
        filters = load(product_filters, filters or {})
        limit = pagination.check_limit(limit)
        after = pagination.decode(cursor, 1)
        with self.db.transaction() as uow:
            rows = Catalog(uow).list(after=after, limit=limit, **filters)
        return _page(rows, limit, product_out, lambda r: (r["sku"],))

    # -- warehouses and stock -------------------------------------------------------------------
    @rpc
    def create_warehouse(self, *, request_id, actor, warehouse):
        actor = load_actor(actor)
        data = load(warehouse_input, warehouse)
        return self._command("create_warehouse", request_id, {"actor": actor, "warehouse": data},
                             lambda uow: workflows.create_warehouse(uow, actor, data), warehouse_out.dump)

    @rpc
    def list_warehouses(self, *, limit=None, cursor=None):
        limit = pagination.check_limit(limit)
        after = pagination.decode(cursor, 1)
        with self.db.transaction() as uow:
            rows = Warehouses(uow).list(after=after, limit=limit)
        return _page(rows, limit, warehouse_out, lambda r: (r["code"],))

    @rpc
    def list_stock(self, *, filters=None, limit=None, cursor=None):
        """On hand, reserved, available and on loan per SKU × warehouse."""
        filters = load(stock_filters, filters or {})
        limit = pagination.check_limit(limit)
        after = pagination.decode(cursor, 2)
        with self.db.transaction() as uow:
            rows = Stock(uow).list(after=after, limit=limit, **filters)
        return _page(rows, limit, stock_level_out, lambda r: (r["sku"], r["warehouse"]))

    @rpc
    def list_movements(self, *, filters=None, limit=None, cursor=None):
        """The ledger, newest first."""
        filters = load(movement_filters, filters or {})
        limit = pagination.check_limit(limit)
        after = pagination.decode(cursor, 1)
        with self.db.transaction() as uow:
            rows = Stock(uow).movements(after=after, limit=limit, **filters)
        return _page(rows, limit, movement_out, lambda r: (r["id"],))

    @rpc
    def post_receipt(self, *, request_id, actor, receipt):
        """Goods in from production or purchase (入库单)."""
        actor = load_actor(actor)
        data = load(receipt_input, receipt)
        return self._command("post_receipt", request_id, {"actor": actor, "receipt": data},
                             lambda uow: workflows.post_receipt(uow, actor, data), document_out.dump)

    @rpc
    def adjust_stock(self, *, request_id, actor, adjustment):
        actor = load_actor(actor)
        data = load(adjustment_input, adjustment)
        return self._command("adjust_stock", request_id, {"actor": actor, "adjustment": data},
                             lambda uow: workflows.adjust_stock(uow, actor, data), document_out.dump)

    @rpc
    def reverse_stock_document(self, *, request_id, actor, document_id, reason):
        actor = load_actor(actor)
        data = load(reverse_input, {"document_id": document_id, "reason": reason})
        return self._command("reverse_stock_document", request_id, {"actor": actor, **data},
                             lambda uow: workflows.reverse_document(uow, actor, data["document_id"], data["reason"]),
                             document_out.dump)

    @rpc
    def get_stock_document(self, *, actor, document_id):
        actor = load_actor(actor)
        document_id = _uuid(document_id, "document_id")
        with self.db.transaction() as uow:
            return document_out.dump(workflows.get_document(uow, actor, document_id))

    @rpc
    def check_stock_ledger(self):
        """Recompute every level from the ledger and compare (the reliability suite's invariant)."""
        with self.db.transaction() as uow:
            return workflows.check_ledger(uow)

    @rpc
    def get_books(self):
        """Read-only: the books the invariant checker compares across services (tests/invariants)."""
        with self.db.transaction() as uow:
            return workflows.get_books(uow)

    # -- reservations (the order saga) ----------------------------------------------------------
    @rpc
    def reserve_stock(self, *, reservation_id, order_id, customer_id, lines, order_number=None, owner_id=None,
                      owner_team=None, region=None, warehouse=None, actor=None):
        actor = _actor_or_system(actor)
        data = load(reserve_input, {
            "reservation_id": reservation_id, "order_id": order_id, "order_number": order_number,
            "customer_id": customer_id, "owner_id": owner_id, "owner_team": owner_team, "region": region,
            "warehouse": warehouse, "lines": lines})
        hold = int(config.get("INVENTORY.RESERVATION_HOLD_MINUTES", 60))
        with self.db.transaction() as uow:
            # idempotent by reservation_id: a repeat answers the reservation as it is now
            if uow.begin_command("reserve_stock", str(data["reservation_id"]), data):
                return reservation_out.dump(workflows.get_reservation(uow, SYSTEM_ACTOR,
                                                                      reservation_id=data["reservation_id"]))
            try:
                result = reservation_out.dump(workflows.reserve_stock(uow, actor, data, hold))
            except InsufficientStock:
                metrics.STOCKOUTS.labels(self.name).inc()
                raise
            return uow.finish_command(result)

    @rpc
    def release_reservation(self, *, order_id, reason="released", actor=None):
        actor = _actor_or_system(actor)
        data = load(release_input, {"order_id": order_id, "reason": reason})
        with self.db.transaction() as uow:
            return workflows.release_reservation(uow, actor, data["order_id"], data["reason"])

    @rpc
    def commit_reservation(self, *, order_id):
        """held → committed, as `order.confirmed` does, for a caller that needs it done now."""
        order_id = _uuid(order_id, "order_id")
        with self.db.transaction() as uow:
            row = workflows.commit_reservation(uow, order_id)
            if row is None:
                raise ReservationNotFound(f"order {order_id} has no active reservation")
            return reservation_out.dump(workflows.reservation_view(uow, row))

    @rpc
    def get_reservation(self, *, actor, order_id=None, reservation_id=None):
        """The reservation by id, or the order's latest."""
        actor = load_actor(actor)
        if (order_id is None) == (reservation_id is None):
            raise ValidationFailed("name the order or the reservation",
                                   errors={"order_id": ["give order_id or reservation_id"]})
        with self.db.transaction() as uow:
            row = workflows.get_reservation(
                uow, actor, order_id=_uuid(order_id, "order_id") if order_id else None,
                reservation_id=_uuid(reservation_id, "reservation_id") if reservation_id else None)
            return reservation_out.dump(row)

    @event_handler("order", "order.confirmed", expects=order_confirmed_data)
    def on_order_confirmed(self, uow, event):
        """The order is confirmed: its held reservation is committed (no longer expires)."""
        data = event["data"]
        if workflows.commit_reservation(uow, data["order_id"]) is None:
            log.warning("order.confirmed for order %s, which has no active reservation", data["order_id"])

    @event_handler("order", "order.cancelled", expects=order_cancelled_data)
    def on_order_cancelled(self, uow, event):
        """A safety net to the saga's own release_reservation call."""
        data = event["data"]
        workflows.release_reservation(uow, dict(SYSTEM_ACTOR), data["order_id"],
                                      f"order cancelled: {data['reason'] or 'no reason given'}")

    def _expire(self, as_of):
        as_of = as_of or datetime.now(timezone.utc)
        expired = []
        for _ in range(EXPIRY_MAX_PER_RUN):  # one reservation per transaction: locks stay short
            with self.db.transaction() as uow:
                batch = workflows.expire_reservations(uow, as_of, 1, SYSTEM_ACTOR["staff_id"])
            if not batch:
                break
            expired += batch
        return as_of, expired

    @timer(interval=EXPIRY_INTERVAL)
    def expire_reservations(self):
        """Held reservations past their hold time are released (every replica; SKIP LOCKED)."""
        _, expired = self._expire(None)
        if expired:
            log.info("expired %d reservations", len(expired))

    @rpc
    def run_expire_reservations(self, *, as_of=None):
        data = load(expiry_input, {"as_of": as_of})
        as_of, expired = self._expire(data["as_of"])
        return {"as_of": as_of.isoformat(), "expired": len(expired), "reservation_ids": expired}

    # -- delivery notes and goods issues --------------------------------------------------------
    @rpc
    def create_delivery(self, *, request_id, actor, order_id, lines):
        actor = load_actor(actor)
        data = load(create_delivery_input, {"order_id": order_id, "lines": lines})
        return self._command("create_delivery", request_id, {"actor": actor, **data},
                             lambda uow: workflows.create_delivery(uow, actor, data), delivery_out.dump)

    @rpc
    def issue_goods(self, *, request_id, actor, delivery_id):
        actor = load_actor(actor)
        delivery_id = _uuid(delivery_id, "delivery_id")
        return self._command("issue_goods", request_id, {"actor": actor, "delivery_id": delivery_id},
                             lambda uow: workflows.issue_goods(uow, actor, delivery_id), delivery_out.dump)

    @rpc
    def cancel_delivery(self, *, request_id, actor, delivery_id, reason):
        actor = load_actor(actor)
        data = load(cancel_delivery_input, {"delivery_id": delivery_id, "reason": reason})
        return self._command("cancel_delivery", request_id, {"actor": actor, **data},
                             lambda uow: workflows.cancel_delivery(uow, actor, data["delivery_id"], data["reason"]),
                             delivery_out.dump)

    @rpc
    def get_delivery(self, *, actor, delivery_id):
        actor = load_actor(actor)
        delivery_id = _uuid(delivery_id, "delivery_id")
        with self.db.transaction() as uow:
            return delivery_out.dump(workflows.get_delivery(uow, actor, delivery_id))

    @rpc
    def list_deliveries(self, *, actor, filters=None, limit=None, cursor=None):
        actor = load_actor(actor)
        filters = load(delivery_filters, filters or {})
        limit = pagination.check_limit(limit)
        after = pagination.decode(cursor, 2)
        with self.db.transaction() as uow:
            rows = workflows.list_deliveries(uow, actor, filters, after, limit)
        return _page(rows, limit, delivery_out, lambda r: (r["created_at"].isoformat(), r["id"]))

    @rpc
    def receive_return(self, *, request_id, return_id, delivery_id, lines, return_number=None, actor=None):
        """Goods back from an approved return (the order service calls it when the warehouse receives)."""
        actor = _actor_or_system(actor)
        data = load(receive_return_input, {"return_id": return_id, "return_number": return_number,
                                           "delivery_id": delivery_id, "lines": lines})
        return self._command("receive_return", request_id, {"actor": actor, **data},
                             lambda uow: workflows.receive_return(uow, actor, data), document_out.dump)

    # -- loans (the order service owns the agreement; these are its stock movements) ------------
    @rpc
    def issue_loan(self, *, request_id, loan_id, customer_id, lines, loan_number=None, owner_id=None,
                   owner_team=None, region=None, warehouse=None, actor=None):
        actor = _actor_or_system(actor)
        data = load(issue_loan_input, {
            "loan_id": loan_id, "loan_number": loan_number, "customer_id": customer_id, "owner_id": owner_id,
            "owner_team": owner_team, "region": region, "warehouse": warehouse, "lines": lines})
        return self._command("issue_loan", request_id, {"actor": actor, **data},
                             lambda uow: workflows.issue_loan(uow, actor, data), loan_out.dump)

    @rpc
    def return_loan(self, *, request_id, loan_id, lines, actor=None):
        actor = _actor_or_system(actor)
        data = load(return_loan_input, {"loan_id": loan_id, "lines": lines})

        def dump(result):
            return dict(loan_out.dump(result), document=document_out.dump(result["document"]))

        return self._command("return_loan", request_id, {"actor": actor, **data},
                             lambda uow: workflows.return_loan(uow, actor, data), dump)

    @rpc
    def convert_loan(self, *, request_id, loan_id, order_id, lines, order_number=None, actor=None):
        actor = _actor_or_system(actor)
        data = load(convert_loan_input, {"loan_id": loan_id, "order_id": order_id, "order_number": order_number,
                                         "lines": lines})

        def dump(result):
            return dict(loan_out.dump(result), delivery=delivery_out.dump(result["delivery"]))

        return self._command("convert_loan", request_id, {"actor": actor, **data},
                             lambda uow: workflows.convert_loan(uow, actor, data), dump)

    @rpc
    def get_loan(self, *, actor, loan_id):
        actor = load_actor(actor)
        loan_id = _uuid(loan_id, "loan_id")
        with self.db.transaction() as uow:
            return loan_out.dump(workflows.get_loan(uow, actor, loan_id))

    # -- reports --------------------------------------------------------------------------------
    @rpc
    def report_shipped(self, *, actor, period_start, period_end, group_by):
        """Shipped amount per rep | team | region | product | customer (for the gateway's reports)."""
        actor = load_actor(actor)
        data = load(report_input, {"period_start": period_start, "period_end": period_end, "group_by": group_by})
        with self.db.transaction() as uow:
            return workflows.report_shipped(uow, actor, data)

    # -- the customer snapshot on documents -----------------------------------------------------
    @event_handler("customer", "customer.owner_changed", expects=customer_owner_changed_data)
    def on_customer_owner_changed(self, uow, event):
        data = event["data"]
        workflows.move_owner(uow, data, datetime.fromisoformat(event["occurred_at"]))

    @event_handler("customer", "customer.updated", expects=customer_updated_data)
    def on_customer_updated(self, uow, event):
        data = event["data"]
        if "region" in data:
            workflows.move_region(uow, data, datetime.fromisoformat(event["occurred_at"]))

    # -- the gateway's order timeline (issue 8) -------------------------------------------------
    @rpc
    def list_order_documents(self, *, actor, order_id):
        """The warehouse's part of `GET /orders/{id}/timeline`: the order's reservations (every
        attempt, released ones too), its delivery notes with their goods issues, and the return
        receipts against them — as the caller may see them (someone else's order: empty lists)."""
        actor = load_actor(actor)
        order_id = _uuid(order_id, "order_id")
        scope_sql, scope_params = access.scope(actor).sql("owner_id", "owner_team")
        with self.db.autocommit() as uow:  # reads only: no BEGIN, no COMMIT (issue 11)
            found = OrderDocuments(uow)
            reservations = found.reservations(order_id, scope_sql, scope_params)
            deliveries = found.deliveries(order_id, scope_sql, scope_params)
            receipts = found.return_receipts([d["id"] for d in deliveries])
        return {"order_id": str(order_id), "reservations": reservation_out.dump(reservations, many=True),
                "deliveries": delivery_out.dump(deliveries, many=True),
                "return_receipts": document_out.dump(receipts, many=True)}
