"""Payloads (`data`) of the events the inventory service publishes through its outbox; their
JSON Schemas are in contracts/events/. Each carries the ids it is about and what consumers need so
they never call back on the hot path (docs/INTEGRATION.md "Events")."""
from decimal import Decimal

from inventory import domain


def _money(value):
    return str(domain.money(value))


def _rate(value):
    return format(Decimal(value).normalize(), "f")


def _id(value):
    return None if value is None else str(value)


def _snapshot(row):
    return {"customer_id": _id(row["customer_id"]), "owner_id": _id(row["owner_id"]),
            "owner_team": row["owner_team"], "region": row["region"]}


def product(row):
    """product.created, product.updated: the product as the order service prices it."""
    return {
        "sku": row["sku"], "name": row["name"], "unit": row["unit"],
        "list_price": _money(row["list_price"]), "floor_price": _money(row["floor_price"]),
        "vat_rate": _rate(row["vat_rate"]), "active": row["active"], "warranty_months": row["warranty_months"],
        "version": row["version"], "changed_at": row["updated_at"].isoformat(),
    }


def product_updated(row, changed):
    return dict(product(row), changed=sorted(changed))


def product_price_changed(before, after):
    return dict(product(after), previous_list_price=_money(before["list_price"]),
                previous_floor_price=_money(before["floor_price"]), previous_vat_rate=_rate(before["vat_rate"]))


def stock_low(level):
    return {"sku": level["sku"], "warehouse": level["warehouse"], "available": level["available"],
            "on_hand": level["on_hand"], "reserved": level["reserved"], "threshold": level["threshold"]}


def reservation_expired(reservation):
    return {"reservation_id": _id(reservation["id"]), "order_id": _id(reservation["order_id"]),
            "order_number": reservation["order_number"], "warehouse": reservation["warehouse"],
            "expired_at": reservation["closed_at"].isoformat()}


def goods_issued(delivery, goods_issue):
    """The delivery note just issued, with its lines as billing invoices them."""
    return dict(
        _snapshot(delivery),
        delivery_id=_id(delivery["id"]), delivery_number=delivery["number"],
        goods_issue_id=_id(goods_issue["id"]), goods_issue_number=goods_issue["number"],
        order_id=_id(delivery["order_id"]), order_number=delivery["order_number"], loan_id=_id(delivery["loan_id"]),
        warehouse=delivery["warehouse"], issued_at=goods_issue["posted_at"].isoformat(),
        total=_money(sum((domain.line_amount(line["quantity"], line["unit_price"]) for line in delivery["lines"]),
                         Decimal(0))),
        lines=[{"delivery_line_id": _id(line["id"]), "order_line_id": _id(line["order_line_id"]), "sku": line["sku"],
                "quantity": line["quantity"], "unit_price": _money(line["unit_price"]),
                "vat_rate": _rate(line["vat_rate"])} for line in delivery["lines"]],
    )


def goods_returned(delivery, receipt, return_id, return_number):
    by_id = {str(line["id"]): line for line in delivery["lines"]}
    lines = []
    for line in receipt["lines"]:
        original = by_id[str(line["delivery_line_id"])]
        lines.append({"delivery_line_id": _id(line["delivery_line_id"]), "order_line_id": _id(original["order_line_id"]),
                      "sku": line["sku"], "quantity": line["quantity"], "unit_price": _money(original["unit_price"]),
                      "vat_rate": _rate(original["vat_rate"])})
    return dict(
        _snapshot(delivery),
        return_id=_id(return_id), return_number=return_number,
        receipt_id=_id(receipt["id"]), receipt_number=receipt["number"],
        delivery_id=_id(delivery["id"]), delivery_number=delivery["number"],
        order_id=_id(delivery["order_id"]), loan_id=_id(delivery["loan_id"]), warehouse=receipt["warehouse"],
        received_at=receipt["posted_at"].isoformat(), lines=lines,
    )

