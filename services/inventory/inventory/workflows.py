"""The warehouse's use cases. Each runs inside the caller's unit of work (an RPC, an event handler
or the expiry job opens it), takes validated input, applies the domain's rules through the
repositories and writes its events to the outbox in the same transaction.

Rows are always locked in one order — reservation, delivery, reservation lines, stock levels (by
warehouse and SKU) — so two transactions never wait on each other crosswise.
"""
import uuid
from datetime import datetime, timezone

from inventory import domain, events
from inventory.db import (
    Books, Catalog, CustomerSnapshots, Deliveries, Documents, Loans, Reports, Reservations, Stock, Warehouses,
)
from inventory.exceptions import (
    DeliveryAlreadyIssued, DeliveryCancelled, DeliveryNotFound, DeliveryNotIssued, DocumentAlreadyReversed,
    DocumentNotFound, DocumentNotReversible, InsufficientStock, LoanExists, LoanNotFound, LoanOverConversion,
    LoanOverReturn, OverDelivery, OverReturn, ProductExists, ProductInactive, ProductNotFound,
    ReservationExists, ReservationNotCommitted, ReservationNotFound, UnknownSku, UnknownWarehouse, WarehouseExists,
)
from shared import access, books as kit_books


def utcnow():
    return datetime.now(timezone.utc)


# -- shared steps ---------------------------------------------------------------------------------
def resolve_warehouse(uow, code, field="warehouse"):
    repo = Warehouses(uow)
    row = repo.default() if code is None else repo.get(code)
    if row is None:
        raise UnknownWarehouse(f"no warehouse {code!r}", errors={field: ["no such warehouse"]})
    return row["code"]


def known_products(uow, lines, require_active=False):
    """The catalog rows of the lines' SKUs; an unknown SKU is refused naming its line."""
    products = Catalog(uow).many({line["sku"] for line in lines})
    unknown = {f"lines.{i}.sku": [f"{line['sku']} is not in the catalog"]
               for i, line in enumerate(lines) if line["sku"] not in products}
    if unknown:
        skus = sorted({line["sku"] for line in lines if line["sku"] not in products})
        raise UnknownSku(f"unknown SKU: {', '.join(skus)}", errors=unknown, skus=skus)
    if require_active:
        inactive = sorted({line["sku"] for line in lines if not products[line["sku"]]["active"]})
        if inactive:
            raise ProductInactive(f"not active in the catalog: {', '.join(inactive)}", skus=inactive)
    return products


def move(uow, moves, *, document_kind, document_id, document_number=None, reason=None, actor_id=None):
    """Apply `moves` = [(sku, warehouse, kind, quantity)] all or nothing, in lock order. A move the
    levels cannot take refuses the whole command with every shortage named. Levels that fall below
    their SKU's threshold publish `stock.low`."""
    totals = {}
    for sku, warehouse, kind, quantity in moves:
        totals[(warehouse, sku, kind)] = totals.get((warehouse, sku, kind), 0) + quantity
    stock = Stock(uow)
    ordered = [(warehouse, sku, kind, quantity) for (warehouse, sku, kind), quantity in sorted(totals.items())
               if quantity != 0]
    document = {"document_kind": document_kind, "document_id": document_id, "document_number": document_number,
                "reason": reason, "actor_id": actor_id}
    if len({(warehouse, sku) for warehouse, sku, _, _ in ordered}) == len(ordered):
        # one move per level (a reservation, a release, an issue …): all of them in two statements
        rows = {(r["warehouse"], r["sku"]): r for r in stock.apply_many(ordered, **document)} if ordered else {}
        results = [(move, rows.get((move[0], move[1]))) for move in ordered]
    else:  # two kinds on one level: one after the other, each checked on what the one before left
        results = [(move, stock.apply(sku=move[1], warehouse=move[0], kind=move[2], quantity=move[3], **document))
                   for move in ordered]
    applied, shortages = [], []
    for (warehouse, sku, kind, quantity), row in results:
        if row is None:
            level = stock.level(sku, warehouse) or {"available": 0, "on_hand": 0, "on_loan": 0}
            shortages.append({"sku": sku, "warehouse": warehouse, "requested": abs(quantity),
                              "available": level["available"], "on_hand": level["on_hand"],
                              "on_loan": level["on_loan"]})
        else:
            applied.append(row)
    if shortages:
        names = ", ".join(f"{s['sku']} ({s['requested']} wanted, {s['available']} available)" for s in shortages)
        raise InsufficientStock(f"not enough stock: {names}", shortages=shortages)
    for row in applied:
        if domain.crossed_below(row["threshold"], row["available_before"], row["available"]):
            uow.publish("stock.low", events.stock_low(row))
    return applied


def post_document(uow, kind, warehouse, lines, actor_id, **refs):
    """Write a posted stock document under its next gap-free number."""
    now = utcnow()
    number = uow.next_number(domain.DOCUMENT_PREFIXES[kind], domain.business_year(now))
    return Documents(uow).add(dict(refs, id=uuid.uuid4(), number=number, kind=kind, warehouse=warehouse,
                                   posted_by=actor_id), lines)


def visible(actor, row):
    return access.scope(actor).allows(row["owner_id"], row["owner_team"])


# -- catalog ------------------------------------------------------------------------------------
def product_view(uow, row):
    return dict(row, price_history=Catalog(uow).price_history(row["sku"]))


def create_product(uow, actor, data):
    domain.require_role(actor, domain.CATALOG_MANAGERS, "manage the catalog")
    domain.check_prices(data)
    row = Catalog(uow).add(data, actor["staff_id"])
    if row is None:
        raise ProductExists(f"SKU {data['sku']} is already in the catalog", sku=data["sku"])
    uow.publish("product.created", events.product(row))
    return product_view(uow, row)


def update_product(uow, actor, sku, changes):
    """Price changes are kept with history and published (`product.price_changed`); other changes
    publish `product.updated`. A change that changes nothing publishes nothing."""
    domain.require_role(actor, domain.CATALOG_MANAGERS, "manage the catalog")
    catalog = Catalog(uow)
    before = catalog.get(sku, lock=True)
    if before is None:
        raise ProductNotFound(f"no product {sku}")
    after, changed = domain.apply_changes(before, changes)
    if not changed:
        return product_view(uow, before)
    row = catalog.update(sku, after)
    if domain.price_changed(changed):
        catalog.record_price(row, actor["staff_id"])
        uow.publish("product.price_changed", events.product_price_changed(before, row))
    others = [name for name in changed if name not in domain.PRICE_FIELDS]
    if others:
        uow.publish("product.updated", events.product_updated(row, others))
    return product_view(uow, row)


def create_warehouse(uow, actor, data):
    domain.require_role(actor, domain.STOCK_KEEPERS, "create warehouses")
    row = Warehouses(uow).add(data, actor["staff_id"])
    if row is None:
        raise WarehouseExists(f"warehouse {data['code']} already exists", warehouse=data["code"])
    return row


# -- goods in and counted corrections --------------------------------------------------------------
def post_receipt(uow, actor, data):
    """Goods in from production or purchase (入库单)."""
    domain.require_role(actor, domain.STOCK_KEEPERS, "receive goods")
    warehouse = resolve_warehouse(uow, data["warehouse"])
    known_products(uow, data["lines"])
    doc = post_document(uow, "goods_receipt", warehouse, data["lines"], actor["staff_id"], reason=data["reason"])
    move(uow, [(line["sku"], warehouse, "receipt", line["quantity"]) for line in data["lines"]],
         document_kind=doc["kind"], document_id=doc["id"], document_number=doc["number"], reason=data["reason"],
         actor_id=actor["staff_id"])
    return doc


def adjust_stock(uow, actor, data):
    """A counted correction of what is on hand, signed, with a reason; never below what is reserved."""
    domain.require_role(actor, domain.STOCK_KEEPERS, "adjust stock")
    warehouse = resolve_warehouse(uow, data["warehouse"])
    known_products(uow, data["lines"])
    lines = [{"sku": line["sku"], "quantity": line["delta"]} for line in data["lines"]]
    doc = post_document(uow, "adjustment", warehouse, lines, actor["staff_id"], reason=data["reason"])
    move(uow, [(line["sku"], warehouse, "adjustment", line["quantity"]) for line in lines],
         document_kind=doc["kind"], document_id=doc["id"], document_number=doc["number"], reason=data["reason"],
         actor_id=actor["staff_id"])
    return doc


def reverse_document(uow, actor, document_id, reason):
    """Posted documents are immutable: a wrong goods receipt or adjustment is corrected by a
    reversing document (same kind, quantities negated, `reverses_id`), once."""
    domain.require_role(actor, domain.STOCK_KEEPERS, "reverse stock documents")
    original = uow.one("SELECT id FROM stock_documents WHERE id = %s FOR UPDATE", (document_id,))
    doc = Documents(uow).get(document_id) if original else None
    if doc is None:
        raise DocumentNotFound(f"no stock document {document_id}")
    if doc["kind"] not in domain.REVERSIBLE or doc["reverses_id"] is not None:
        raise DocumentNotReversible(
            f"{doc['number']} cannot be reversed: goods issues are corrected by return receipts, loans by loan "
            f"returns, and a reversal is not reversed again", kind=doc["kind"])
    if doc["reversed_by"] is not None:
        raise DocumentAlreadyReversed(f"{doc['number']} is already reversed", reversed_by=str(doc["reversed_by"]))
    lines = [{"sku": line["sku"], "quantity": -line["quantity"]} for line in doc["lines"]]
    reversal = post_document(uow, doc["kind"], doc["warehouse"], lines, actor["staff_id"], reason=reason,
                             reverses_id=doc["id"])
    move(uow, [(line["sku"], doc["warehouse"], domain.REVERSIBLE[doc["kind"]], line["quantity"]) for line in lines],
         document_kind=reversal["kind"], document_id=reversal["id"], document_number=reversal["number"],
         reason=reason, actor_id=actor["staff_id"])
    return reversal


def get_document(uow, actor, document_id):
    doc = Documents(uow).get(document_id)
    if doc is None:
        raise DocumentNotFound(f"no stock document {document_id}")
    owner = None
    if doc["delivery_id"] is not None:
        owner = Deliveries(uow).get(doc["delivery_id"])
    elif doc["loan_id"] is not None:
        owner = Loans(uow).get(doc["loan_id"])
    if owner is not None and not visible(actor, owner):
        raise DocumentNotFound(f"no stock document {document_id}")
    return doc


# -- reservations ---------------------------------------------------------------------------------
def reservation_view(uow, reservation):
    return dict(reservation, lines=Reservations(uow).lines(reservation["id"]))


def reserve_stock(uow, actor, data, hold_minutes):
    """All lines or none, each a guarded UPDATE; at most one active reservation per order."""
    warehouse = resolve_warehouse(uow, data["warehouse"])
    products = known_products(uow, data["lines"], require_active=True)
    lines = [dict(line, vat_rate=line["vat_rate"] if line["vat_rate"] is not None
                  else products[line["sku"]]["vat_rate"]) for line in data["lines"]]
    reservations = Reservations(uow)
    row = reservations.add(dict(
        id=data["reservation_id"], order_id=data["order_id"], order_number=data["order_number"], warehouse=warehouse,
        customer_id=data["customer_id"], owner_id=data["owner_id"], owner_team=data["owner_team"],
        region=data["region"], hold_until=domain.hold_until(utcnow(), hold_minutes)))
    if row is None:
        active = reservations.active_for_order(data["order_id"])
        raise ReservationExists(
            f"order {data['order_id']} already has an active reservation; release it first",
            order_id=str(data["order_id"]), reservation_id=str(active["id"]) if active else None)
    added = reservations.add_lines(row["id"], lines)
    move(uow, [(line["sku"], warehouse, "reservation", line["quantity"]) for line in lines],
         document_kind="reservation", document_id=row["id"], document_number=data["order_number"],
         actor_id=actor["staff_id"])
    return dict(row, lines=added)  # reservation_view, without reading back what was just written


def commit_reservation(uow, order_id):
    """held → committed (the order is confirmed); already committed: nothing to do."""
    row = Reservations(uow).commit(order_id)
    return row if row is not None else Reservations(uow).active_for_order(order_id)


def close_reservation(uow, reservation, status, reason, actor_id):
    """Release (status `released`) or expire (`expired`) an active reservation: its pending
    delivery notes are cancelled and what was not issued goes back to available. Guarded: a
    reservation someone else closed first is left alone (returns None)."""
    reservations = Reservations(uow)
    closed = reservations.close(reservation["id"], status, reason)
    if closed is None:
        return None
    deliveries = Deliveries(uow)
    for delivery in deliveries.pending_for_reservation(closed["id"]):
        deliveries.mark_cancelled(delivery["id"], actor_id, f"reservation {status}: {reason}")
        for line in delivery["lines"]:
            reservations.allocate(closed["id"], line["order_line_id"], -line["quantity"])
    lines = reservations.lines(closed["id"])
    move(uow, [(line["sku"], closed["warehouse"], "release", domain.releasable(line)) for line in lines],
         document_kind="reservation", document_id=closed["id"], document_number=closed["order_number"],
         reason=reason, actor_id=actor_id)
    return closed


def release_reservation(uow, actor, order_id, reason):
    reservation = Reservations(uow).active_for_order(order_id, lock=True)
    if reservation is None:
        return {"order_id": str(order_id), "reservation_id": None, "status": "released"}
    closed = close_reservation(uow, reservation, "released", reason, actor["staff_id"])
    return {"order_id": str(order_id), "reservation_id": str(reservation["id"]),
            "status": closed["status"] if closed else "released"}


def expire_reservations(uow, as_of, batch_size, actor_id):
    """One batch of held reservations past their hold time, claimed with SKIP LOCKED so every
    replica can run the job at once; each is expired once and publishes
    `stock.reservation_expired`. Returns the ids expired in this batch."""
    expired = []
    for reservation in Reservations(uow).expired_batch(as_of, batch_size):
        closed = close_reservation(uow, reservation, "expired", f"held past {reservation['hold_until'].isoformat()}",
                                   actor_id)
        if closed is not None:
            uow.publish("stock.reservation_expired", events.reservation_expired(closed))
            expired.append(str(closed["id"]))
    return expired


def get_reservation(uow, actor, order_id=None, reservation_id=None):
    reservations = Reservations(uow)
    row = reservations.get(reservation_id) if reservation_id else reservations.latest_for_order(order_id)
    if row is None or (order_id is not None and row["order_id"] != order_id) or not visible(actor, row):
        raise ReservationNotFound("no such reservation")
    return reservation_view(uow, row)


# -- delivery notes and goods issues --------------------------------------------------------------
def create_delivery(uow, actor, data):
    """A delivery note (发货单) from the order's committed reservation: never more than reserved
    for a line less what is already on delivery notes (issued or pending) (FR-77, FR-73)."""
    reservations = Reservations(uow)
    order_id = data["order_id"]
    reservation = reservations.active_for_order(order_id, lock=True) or reservations.latest_for_order(order_id)
    if (reservation is None and not access.scope(actor).unrestricted) or (
            reservation is not None and not visible(actor, reservation)):
        # someone else's order, an unknown one and (for a rep or manager, who sees only some orders) one
        # not confirmed yet answer alike: 409 for "no reservation" would tell another's order from none
        raise ReservationNotFound(f"order {order_id} not found among your confirmed orders")
    if reservation is not None and reservation["status"] == "consumed":
        over = [{"line": i, "sku": line["sku"], "requested": line["quantity"], "deliverable": 0}
                for i, line in enumerate(data["lines"])]
        raise OverDelivery(f"order {order_id} is fully delivered", lines=over)
    if reservation is None or reservation["status"] != "committed":
        state = "has no reservation" if reservation is None else f"has its reservation {reservation['status']}"
        raise ReservationNotCommitted(f"order {order_id} {state}: a delivery note needs a confirmed order",
                                      order_id=str(order_id),
                                      reservation_status=reservation["status"] if reservation else None)
    known_products(uow, data["lines"])
    lines = reservations.lines(reservation["id"])
    remaining = {line["line_id"]: line["quantity"] - line["allocated"] for line in lines}
    by_id = {line["line_id"]: line for line in lines}
    taken, over = {}, []
    for index, wanted in enumerate(data["lines"]):
        candidates = [(line["line_id"], remaining[line["line_id"]]) for line in lines
                      if line["sku"] == wanted["sku"]
                      and wanted["order_line_id"] in (None, line["line_id"])]
        allocation, short = domain.allocate(wanted["quantity"], candidates)
        if short:
            over.append({"line": index, "sku": wanted["sku"], "requested": wanted["quantity"],
                         "deliverable": wanted["quantity"] - short})
            continue
        for line_id, quantity in allocation:
            remaining[line_id] -= quantity
            taken[line_id] = taken.get(line_id, 0) + quantity
    if over:
        names = ", ".join(f"{o['sku']} ({o['requested']} asked, {o['deliverable']} left)" for o in over)
        raise OverDelivery(f"more than the order has left to deliver: {names}", lines=over)
    for line_id, quantity in taken.items():
        if reservations.allocate(reservation["id"], line_id, quantity) is None:
            raise OverDelivery("the order's lines changed meanwhile; try again",
                               lines=[{"sku": by_id[line_id]["sku"], "requested": quantity}])
    delivery = _delivery_record(uow, reservation, order_id, reservation["order_number"], actor["staff_id"],
                                reservation_id=reservation["id"])
    delivery_lines = [{"id": uuid.uuid4(), "order_line_id": line_id, "sku": by_id[line_id]["sku"],
                       "quantity": quantity, "unit_price": by_id[line_id]["unit_price"],
                       "vat_rate": by_id[line_id]["vat_rate"]}
                      for line_id, quantity in sorted(taken.items(), key=lambda item: by_id[item[0]]["line_no"])]
    Deliveries(uow).add(delivery, delivery_lines)
    return Deliveries(uow).get(delivery["id"])


def _delivery_record(uow, snapshot, order_id, order_number, actor_id, reservation_id=None, loan_id=None,
                     warehouse=None):
    now = utcnow()
    return {"id": uuid.uuid4(), "number": uow.next_number(domain.DOCUMENT_PREFIXES["delivery"],
                                                          domain.business_year(now)),
            "order_id": order_id, "order_number": order_number, "reservation_id": reservation_id,
            "loan_id": loan_id, "warehouse": warehouse or snapshot["warehouse"],
            "customer_id": snapshot["customer_id"], "owner_id": snapshot["owner_id"],
            "owner_team": snapshot["owner_team"], "region": snapshot["region"], "created_by": actor_id}


def _find_delivery(uow, actor, delivery_id):
    found = Deliveries(uow).get(delivery_id)
    if found is None or not visible(actor, found):
        raise DeliveryNotFound(f"delivery {delivery_id} not found")
    return found


def _lock_pending(uow, actor, delivery_id):
    """The delivery note locked (after its reservation, the lock order), if still pending."""
    found = _find_delivery(uow, actor, delivery_id)
    if found["reservation_id"] is not None:
        Reservations(uow).get(found["reservation_id"], lock=True)
    delivery = Deliveries(uow).get(delivery_id, lock=True)
    if delivery["status"] == "cancelled":
        raise DeliveryCancelled(f"{delivery['number']} is cancelled", number=delivery["number"])
    if delivery["status"] == "issued":
        raise DeliveryAlreadyIssued(f"{delivery['number']} is already issued ({delivery['goods_issue_number']})",
                                    number=delivery["number"], goods_issue_number=delivery["goods_issue_number"])
    return delivery


def issue_goods(uow, actor, delivery_id):
    """The goods issue (出库单, FR-78): stock leaves, the reservation is consumed line by line, the
    note is posted and `goods.issued` published."""
    domain.require_role(actor, domain.STOCK_KEEPERS, "issue goods")
    delivery = _lock_pending(uow, actor, delivery_id)
    reservations = Reservations(uow)
    goods_issue = post_document(
        uow, "goods_issue", delivery["warehouse"],
        [{"sku": line["sku"], "quantity": line["quantity"], "delivery_line_id": line["id"],
          "order_line_id": line["order_line_id"], "unit_price": line["unit_price"], "vat_rate": line["vat_rate"]}
         for line in delivery["lines"]],
        actor["staff_id"], delivery_id=delivery["id"], order_id=delivery["order_id"])
    for line in delivery["lines"]:
        if reservations.issue(delivery["reservation_id"], line["order_line_id"], line["quantity"]) is None:
            raise OverDelivery(f"{line['sku']}: more than is on the order's delivery notes", sku=line["sku"])
    move(uow, [(line["sku"], delivery["warehouse"], "issue", line["quantity"]) for line in delivery["lines"]],
         document_kind="goods_issue", document_id=goods_issue["id"], document_number=goods_issue["number"],
         actor_id=actor["staff_id"])
    reservation = reservations.get(delivery["reservation_id"])
    if reservation["status"] == "committed":
        reservations.set_status(reservation["id"],
                                domain.reservation_status_after_issue(reservations.lines(reservation["id"])))
    Deliveries(uow).mark_issued(delivery["id"], goods_issue, actor["staff_id"])
    issued = Deliveries(uow).get(delivery["id"])
    uow.publish("goods.issued", events.goods_issued(issued, goods_issue))
    return issued


def cancel_delivery(uow, actor, delivery_id, reason):
    """A pending note is cancelled; its quantities go back to the order's reservation (still held
    for the order). An issued note is posted and cannot be cancelled."""
    delivery = _lock_pending(uow, actor, delivery_id)
    Deliveries(uow).mark_cancelled(delivery["id"], actor["staff_id"], reason)
    for line in delivery["lines"]:
        Reservations(uow).allocate(delivery["reservation_id"], line["order_line_id"], -line["quantity"])
    return Deliveries(uow).get(delivery["id"])


def receive_return(uow, actor, data):
    """Goods back from an approved return (红字出库单 / return inbound, FR-96): never more per line
    than was issued on that delivery note less what already came back; `goods.returned`."""
    found = _find_delivery(uow, actor, data["delivery_id"])
    delivery = Deliveries(uow).get(found["id"], lock=True)
    if delivery["status"] != "issued":
        raise DeliveryNotIssued(f"{delivery['number']} is {delivery['status']}: nothing was issued on it",
                                number=delivery["number"], delivery_status=delivery["status"])
    known_products(uow, data["lines"])
    remaining = {line["id"]: line["quantity"] - line["returned"] for line in delivery["lines"]}
    by_id = {line["id"]: line for line in delivery["lines"]}
    taken, over = {}, []
    for index, wanted in enumerate(data["lines"]):
        candidates = [(line["id"], remaining[line["id"]]) for line in delivery["lines"]
                      if line["sku"] == wanted["sku"] and wanted["delivery_line_id"] in (None, line["id"])]
        allocation, short = domain.allocate(wanted["quantity"], candidates)
        if short:
            over.append({"line": index, "sku": wanted["sku"], "requested": wanted["quantity"],
                         "returnable": wanted["quantity"] - short})
            continue
        for line_id, quantity in allocation:
            remaining[line_id] -= quantity
            taken[line_id] = taken.get(line_id, 0) + quantity
    if over:
        names = ", ".join(f"{o['sku']} ({o['requested']} back, {o['returnable']} returnable)" for o in over)
        raise OverReturn(f"more than was issued on {delivery['number']} and not yet returned: {names}", lines=over)
    lines = [{"sku": by_id[line_id]["sku"], "quantity": quantity, "delivery_line_id": line_id,
              "order_line_id": by_id[line_id]["order_line_id"], "unit_price": by_id[line_id]["unit_price"],
              "vat_rate": by_id[line_id]["vat_rate"]}
             for line_id, quantity in sorted(taken.items(), key=lambda item: by_id[item[0]]["line_no"])]
    for line in lines:
        if Deliveries(uow).take_back(line["delivery_line_id"], line["quantity"]) is None:
            raise OverReturn(f"{line['sku']}: more than was issued and not yet returned", sku=line["sku"])
    receipt = post_document(uow, "return_receipt", delivery["warehouse"], lines, actor["staff_id"],
                            delivery_id=delivery["id"], order_id=delivery["order_id"], loan_id=delivery["loan_id"],
                            return_id=data["return_id"], return_number=data["return_number"])
    move(uow, [(line["sku"], delivery["warehouse"], "return_receipt", line["quantity"]) for line in lines],
         document_kind="return_receipt", document_id=receipt["id"], document_number=receipt["number"],
         actor_id=actor["staff_id"])
    uow.publish("goods.returned", events.goods_returned(delivery, receipt, data["return_id"], data["return_number"]))
    return receipt


def get_delivery(uow, actor, delivery_id):
    return _find_delivery(uow, actor, delivery_id)


def list_deliveries(uow, actor, filters, after, limit):
    condition, params = access.scope(actor).sql("owner_id", "owner_team")
    return Deliveries(uow).list(scope_sql=condition, scope_params=params, after=after, limit=limit, **filters)


# -- loans (FR-98–FR-100) -------------------------------------------------------------------------
def issue_loan(uow, actor, data):
    """Goods out to a customer without a sale (借出单): on hand → on loan."""
    if Loans(uow).get(data["loan_id"]) is not None:
        raise LoanExists(f"loan {data['loan_id']} is already issued", loan_id=str(data["loan_id"]))
    warehouse = resolve_warehouse(uow, data["warehouse"])
    known_products(uow, data["lines"])
    doc = post_document(uow, "loan_issue", warehouse, data["lines"], actor["staff_id"], loan_id=data["loan_id"])
    added = Loans(uow).add({"id": data["loan_id"], "number": data["loan_number"], "warehouse": warehouse,
                            "customer_id": data["customer_id"], "owner_id": data["owner_id"],
                            "owner_team": data["owner_team"], "region": data["region"],
                            "issue_document_id": doc["id"], "created_by": actor["staff_id"]}, data["lines"])
    if not added:
        raise LoanExists(f"loan {data['loan_id']} is already issued", loan_id=str(data["loan_id"]))
    move(uow, [(line["sku"], warehouse, "loan_issue", line["quantity"]) for line in data["lines"]],
         document_kind="loan_issue", document_id=doc["id"], document_number=doc["number"],
         actor_id=actor["staff_id"])
    return Loans(uow).get(data["loan_id"])


def _loan_lines(loan):
    return {line["sku"]: domain.LoanLine(line["sku"], line["quantity"], line["returned"], line["converted"])
            for line in loan["lines"]}


def _locked_loan(uow, actor, loan_id):
    loan = Loans(uow).get(loan_id, lock=True)
    if loan is None or not visible(actor, loan):
        raise LoanNotFound(f"loan {loan_id} not found")
    return loan


def _settle_loan(uow, loan_id):
    loan = Loans(uow).get(loan_id)
    status = domain.loan_status(_loan_lines(loan).values())
    if status != loan["status"]:
        Loans(uow).set_status(loan_id, status)
    return Loans(uow).get(loan_id)


def return_loan(uow, actor, data):
    """Loaned goods back (借出归还单, FR-100): per line the stated quantity must equal the goods
    counted and be no more than is still out."""
    loan = _locked_loan(uow, actor, data["loan_id"])
    lines = _loan_lines(loan)
    for wanted in data["lines"]:
        domain.check_loan_return(lines.get(wanted["sku"]), wanted["sku"], wanted["quantity"],
                                 wanted["counted_quantity"])
    for wanted in data["lines"]:
        if Loans(uow).take_back(loan["id"], wanted["sku"], wanted["quantity"]) is None:
            raise LoanOverReturn(f"{wanted['sku']}: more than is still out", sku=wanted["sku"])
    doc = post_document(uow, "loan_return", loan["warehouse"],
                        [{"sku": line["sku"], "quantity": line["quantity"]} for line in data["lines"]],
                        actor["staff_id"], loan_id=loan["id"])
    move(uow, [(line["sku"], loan["warehouse"], "loan_return", line["quantity"]) for line in data["lines"]],
         document_kind="loan_return", document_id=doc["id"], document_number=doc["number"],
         actor_id=actor["staff_id"])
    return dict(_settle_loan(uow, loan["id"]), document=doc)


def convert_loan(uow, actor, data):
    """Loaned goods sold where they are (借出转换单, FR-99): a delivery note raised already issued
    and its goods issue, with no stock moving again (on loan → sold); `goods.issued` with loan_id."""
    loan = _locked_loan(uow, actor, data["loan_id"])
    lines = _loan_lines(loan)
    totals = domain.merge_quantities(data["lines"])  # two order lines may convert the same SKU
    for sku, quantity in totals:
        domain.check_loan_conversion(lines.get(sku), sku, quantity)
    products = known_products(uow, data["lines"])
    for sku, quantity in totals:
        if Loans(uow).convert(loan["id"], sku, quantity) is None:
            raise LoanOverConversion(f"{sku}: more than is still out", sku=sku)
    delivery = _delivery_record(uow, loan, data["order_id"], data["order_number"], actor["staff_id"],
                                loan_id=loan["id"])
    delivery_lines = [{"id": uuid.uuid4(), "order_line_id": line["order_line_id"], "sku": line["sku"],
                       "quantity": line["quantity"], "unit_price": line["unit_price"],
                       "vat_rate": line["vat_rate"] if line["vat_rate"] is not None
                       else products[line["sku"]]["vat_rate"]} for line in data["lines"]]
    deliveries = Deliveries(uow)
    deliveries.add(delivery, delivery_lines)
    pending = deliveries.get(delivery["id"])
    goods_issue = post_document(
        uow, "goods_issue", loan["warehouse"],
        [{"sku": line["sku"], "quantity": line["quantity"], "delivery_line_id": line["id"],
          "order_line_id": line["order_line_id"], "unit_price": line["unit_price"], "vat_rate": line["vat_rate"]}
         for line in pending["lines"]],
        actor["staff_id"], delivery_id=delivery["id"], order_id=data["order_id"], loan_id=loan["id"])
    move(uow, [(sku, loan["warehouse"], "loan_conversion", quantity) for sku, quantity in totals],
         document_kind="goods_issue", document_id=goods_issue["id"], document_number=goods_issue["number"],
         actor_id=actor["staff_id"])
    deliveries.mark_issued(delivery["id"], goods_issue, actor["staff_id"])
    issued = deliveries.get(delivery["id"])
    uow.publish("goods.issued", events.goods_issued(issued, goods_issue))
    return dict(_settle_loan(uow, loan["id"]), delivery=issued)


def get_loan(uow, actor, loan_id):
    loan = Loans(uow).get(loan_id)
    if loan is None or not visible(actor, loan):
        raise LoanNotFound(f"loan {loan_id} not found")
    return loan


# -- the customer snapshot ------------------------------------------------------------------------
def move_owner(uow, data, occurred_at):
    """customer.owner_changed: every document of the customer follows its new owner (row-level
    access), unless a newer change was already applied."""
    return CustomerSnapshots(uow).move_owner(data["customer_id"], data["owner_id"], data["owner_team"], occurred_at)


def move_region(uow, data, occurred_at):
    return CustomerSnapshots(uow).move_region(data["customer_id"], data["region"], occurred_at)


# -- the books ------------------------------------------------------------------------------------
def check_ledger(uow):
    """Recompute every level from the movement ledger (and from the reservations and loans that
    hold stock) in one snapshot and compare with the stored levels."""
    uow.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
    stock = Stock(uow)
    stored = stock.stored_levels()
    problems = domain.ledger_mismatches(stored, stock.ledger_levels(), stock.held_for_orders(), stock.still_on_loan())
    return {"ok": not problems, "items_checked": len(stored), "mismatches": problems,
            "checked_at": utcnow().isoformat()}


NUMBERED = [("stock_documents", "number"), ("deliveries", "number")]


def get_books(uow):
    """The warehouse's books for the invariant checker (tests/invariants), in one snapshot: each
    level with its ledger by movement kind, every reservation and issued delivery, and the kit's
    part (outbox, parked messages, document numbers)."""
    return kit_books.snapshot(uow, "inventory", NUMBERED, Books(uow).read)


def report_shipped(uow, actor, data):
    """Shipped (issued) and returned amounts per group in a period of Asia/Shanghai dates, as the
    caller may see them (docs/INTEGRATION.md "Aggregates for reports")."""
    begin, end = domain.period_bounds(data["period_start"], data["period_end"])
    condition, params = access.scope(actor).sql("d.owner_id", "d.owner_team")
    issued, returned = Reports(uow).shipped(column=domain.REPORT_GROUPS[data["group_by"]], begin=begin, end=end,
                                            scope_sql=condition, scope_params=params)
    groups = {}
    zero = domain.money(0)
    for rows, amount_key, quantity_key in ((issued, "shipped", "shipped_quantity"),
                                           (returned, "returned", "returned_quantity")):
        for row in rows:
            group = groups.setdefault(row["key"], {"key": row["key"], "shipped": zero, "shipped_quantity": 0,
                                                   "returned": zero, "returned_quantity": 0})
            group[amount_key] = domain.money(row["amount"])
            group[quantity_key] = int(row["quantity"])
    result = []
    for key in sorted(groups, key=lambda k: (k is None, k or "")):
        group = groups[key]
        result.append(dict(group, shipped=str(group["shipped"]), returned=str(group["returned"]),
                           net_shipped=str(group["shipped"] - group["returned"])))
    return {"group_by": data["group_by"], "period_start": data["period_start"].isoformat(),
            "period_end": data["period_end"].isoformat(), "groups": result}
