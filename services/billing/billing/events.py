"""Payloads of the events the billing service publishes (JSON Schemas in contracts/events/).
Money as decimal strings, ids as strings, times ISO 8601 UTC; every document event carries the
customer snapshot (customer_id, owner_id, owner_team, region)."""


def _s(value):
    return None if value is None else str(value)


def _iso(value):
    return None if value is None else value.isoformat()


def snapshot(row):
    return {"customer_id": _s(row["customer_id"]), "owner_id": _s(row.get("owner_id")),
            "owner_team": row.get("owner_team"), "region": row.get("region")}


def _line(line):
    return {"delivery_line_id": _s(line["delivery_line_id"]), "delivery_id": _s(line["delivery_id"]),
            "order_id": _s(line["order_id"]), "order_line_id": _s(line["order_line_id"]), "sku": line["sku"],
            "quantity": line["quantity"], "amount": str(line["amount"]), "net": str(line["net"]),
            "tax": str(line["tax"])}


def order_ids(lines):
    return sorted({str(line["order_id"]) for line in lines if line.get("order_id")})


def invoice_issued(invoice, lines):
    return dict(snapshot(invoice), invoice_id=_s(invoice["id"]), number=invoice["number"], kind=invoice["kind"],
                issued_at=_iso(invoice["issued_at"]), due_date=_iso(invoice["due_date"]),
                total=str(invoice["total"]), net_total=str(invoice["net_total"]), tax_total=str(invoice["tax_total"]),
                order_ids=order_ids(lines), lines=[_line(line) for line in lines])


def invoice_reversed(red, original, lines):
    return dict(snapshot(red), red_invoice_id=_s(red["id"]), original_invoice_id=_s(original["id"]),
                number=red["number"], original_number=original["number"], kind=red["kind"],
                issued_at=_iso(red["issued_at"]), total=str(red["total"]), net_total=str(red["net_total"]),
                tax_total=str(red["tax_total"]), reason=red["reason"], return_id=_s(red.get("return_id")),
                order_ids=order_ids(lines), lines=[_line(line) for line in lines])


def invoice_settled(invoice, orders, settled_at):
    return dict(snapshot(invoice), invoice_id=_s(invoice["id"]), number=invoice["number"], order_ids=orders,
                settled_at=_iso(settled_at), total=str(invoice["total"]),
                reversed_amount=str(invoice["reversed_amount"]), allocated_amount=str(invoice["allocated_amount"]))


def invoice_reopened(invoice, orders, reopened_at, open_amount):
    return dict(snapshot(invoice), invoice_id=_s(invoice["id"]), number=invoice["number"], order_ids=orders,
                reopened_at=_iso(reopened_at), open_amount=str(open_amount))


def receipt_confirmed(receipt):
    return dict(snapshot(receipt), receipt_id=_s(receipt["id"]), number=receipt["number"],
                amount=str(receipt["amount"]), currency=receipt["currency"], method=receipt["method"],
                received_at=_iso(receipt["received_at"]), confirmed_at=_iso(receipt["confirmed_at"]),
                confirmed_by=_s(receipt["confirmed_by"]))


def receipt_allocated(receipt, allocations):
    return dict(snapshot(receipt), receipt_id=_s(receipt["id"]), number=receipt["number"],
                amount=str(receipt["amount"]), unallocated_amount=str(receipt["amount"] - receipt["allocated_amount"]),
                allocated_at=_iso(allocations[0]["allocated_at"]),
                allocations=[{"allocation_id": _s(a["id"]), "invoice_id": _s(a["invoice_id"]),
                              "invoice_number": a["invoice_number"], "amount": str(a["amount"])} for a in allocations])


def receipt_allocation_reversed(receipt, allocation, invoice_number):
    return dict(snapshot(receipt), receipt_id=_s(receipt["id"]), number=receipt["number"],
                allocation_id=_s(allocation["id"]), invoice_id=_s(allocation["invoice_id"]),
                invoice_number=invoice_number, amount=str(allocation["amount"]), reason=allocation["reversal_reason"],
                reversed_at=_iso(allocation["reversed_at"]), reversed_by=_s(allocation["reversed_by"]),
                unallocated_amount=str(receipt["amount"] - receipt["allocated_amount"]))


def credit_limit_changed(customer_id, customer, old, new, grade, kind, reason, changed_by, quarter):
    base = snapshot(dict(customer or {}, customer_id=customer_id))
    return dict(base, old_limit=_s(old), new_limit=str(new), grade=grade, kind=kind, reason=reason,
                changed_by=_s(changed_by), quarter=quarter)


def credit_held(reservation_id, order_id, customer_id, customer, requested, limit, exposure, available):
    base = snapshot(dict(customer or {}, customer_id=customer_id))
    return dict(base, reservation_id=_s(reservation_id), order_id=_s(order_id), requested=str(requested),
                limit=str(limit), exposure=str(exposure), available=str(available))
