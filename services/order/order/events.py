"""Payloads of the events the order service publishes (their JSON Schemas: contracts/events/).
Every payload carries the ids it is about and the customer snapshot, so consumers never call back."""
from order.domain import money


def _s(value):
    return None if value is None else str(value)


def _t(value):
    return None if value is None else value.isoformat()


def snapshot(row):
    return {"customer_id": str(row["customer_id"]), "owner_id": _s(row.get("owner_id")),
            "owner_team": row.get("owner_team"), "region": row.get("region")}


def quote_approved(quote, steps):
    return dict(snapshot(quote), quote_id=str(quote["id"]), number=quote["number"], total=str(money(quote["total"])),
                approved_at=_t(quote["approved_at"]), major=bool(quote["major"]),
                approvals=[{"relation": s["relation"], "approver_id": _s(s["approver_id"]),
                            "decided_at": _t(s["decided_at"])} for s in steps])


def quote_accepted(quote):
    return dict(snapshot(quote), quote_id=str(quote["id"]), number=quote["number"], total=str(money(quote["total"])),
                accepted_at=_t(quote["accepted_at"]), order_id=_s(quote["order_id"]),
                contract_id=_s(quote["contract_id"]))


def contract_signed(contract):
    return dict(snapshot(contract), contract_id=str(contract["id"]), number=contract["number"],
                quote_id=str(contract["quote_id"]), order_id=_s(contract["order_id"]),
                total=str(money(contract["total"])), signed_at=_t(contract["signed_at"]),
                customer_signatory=contract["customer_signatory"], company_signed_by=_s(contract["company_signed_by"]))


def contract_effective(contract):
    return dict(snapshot(contract), contract_id=str(contract["id"]), number=contract["number"],
                quote_id=str(contract["quote_id"]), order_id=_s(contract["order_id"]),
                total=str(money(contract["total"])), effective_at=_t(contract["effective_at"]),
                registered_by=_s(contract["registered_by"]))


def order_confirmed(order, lines):
    return dict(snapshot(order), order_id=str(order["id"]), number=order["number"], kind=order["kind"],
                total=str(money(order["total"])), confirmed_at=_t(order["confirmed_at"]),
                quote_id=_s(order["quote_id"]), contract_id=_s(order["contract_id"]), loan_id=_s(order["loan_id"]),
                warehouse=order["warehouse"],
                lines=[{"line_id": str(l["id"]), "sku": l["sku"], "quantity": l["quantity"],
                        "unit_price": str(money(l["unit_price"])), "vat_rate": str(l["vat_rate"])} for l in lines])


def order_credit_held(order, refusal):
    return dict(snapshot(order), order_id=str(order["id"]), number=order["number"], total=str(money(order["total"])),
                held_at=_t(order["credit_held_at"]),
                limit=_s((refusal or {}).get("limit")), exposure=_s((refusal or {}).get("exposure")))


def order_cancelled(order, previous_status):
    return dict(snapshot(order), order_id=str(order["id"]), number=order["number"], reason=order["cancel_reason"],
                previous_status=previous_status, cancelled_at=_t(order["cancelled_at"]))


def order_moved(order, at_column):
    """order.shipped / order.invoiced / order.paid / order.closed."""
    return dict(snapshot(order), order_id=str(order["id"]), number=order["number"], total=str(money(order["total"])),
                status=order["status"], at=_t(order[at_column]))


def return_event(ret, lines, at_column):
    """return.approved / return.received."""
    return dict(snapshot(ret), return_id=str(ret["id"]), number=ret["number"], delivery_id=str(ret["delivery_id"]),
                order_id=str(ret["order_id"]), service_request_id=_s(ret["service_request_id"]),
                at=_t(ret[at_column]),
                lines=[{"delivery_line_id": str(l["delivery_line_id"]), "sku": l["sku"], "quantity": l["quantity"]}
                       for l in lines])


def loan_event(loan, lines, at, **extra):
    """loan.approved / loan.issued / loan.returned / loan.converted."""
    return dict(snapshot(loan), loan_id=str(loan["id"]), number=loan["number"], status=loan["status"], at=_t(at),
                lines=[{"sku": l["sku"], "quantity": int(l["quantity"])} for l in lines], **extra)


def target_published(target):
    return {"target_id": str(target["id"]), "period": target["period"], "scope": target["scope"],
            "scope_id": target["scope_id"], "amount": str(money(target["amount"])),
            "parent_id": _s(target["parent_id"]), "published_at": _t(target["published_at"])}
