"""Payloads (`data`) of the events the customer service publishes; their JSON Schemas are in
contracts/events/. Every payload names the ids it is about and what consumers need so that they
never call back: the customer snapshot (`customer_id`, `owner_id`, `owner_team`, `region`)."""
from customer import domain


def _id(value):
    return str(value) if value is not None else None


def _at(value):
    return value.isoformat() if value is not None else None


def staff(row):
    discount, price = domain.authorities(row["role"], row["discount_authority"], row["price_authority"])
    return {
        "staff_id": str(row["id"]), "username": row["username"], "display_name": row["display_name"],
        "role": row["role"], "manager_id": _id(row["manager_id"]), "team": row["team"], "region": row["region"],
        "territory": row["territory"], "capacity": str(row["capacity"]), "discount_authority": str(discount),
        "price_authority": str(price), "active": row["active"], "version": row["version"],
    }


def customer_created(row):
    return {
        "customer_id": str(row["id"]),
        "number": row["number"],
        "name": row["name"],
        "tax_id": row["tax_id"],
        "bank_account": row["bank_account"],
        "industry": row["industry"],
        "size": row["size"],
        "region": row["region"],
        "source": row["source"],
        "status": row["status"],
        "owner_id": _id(row["owner_id"]),
        "owner_team": row["owner_team"],
        "collected_at": _at(row["collected_at"]),
        "late_entry": row["late_entry"],
        "created_at": _at(row["created_at"]),
    }


def customer_updated(row, changed):
    return {
        "customer_id": str(row["id"]), "number": row["number"], "changed": sorted(changed),
        "name": row["name"], "tax_id": row["tax_id"], "bank_account": row["bank_account"],
        "industry": row["industry"], "size": row["size"], "region": row["region"], "address": row["address"],
        "owner_id": _id(row["owner_id"]), "owner_team": row["owner_team"], "updated_at": _at(row["updated_at"]),
    }


def owner_changed(customer, *, kind, previous_owner_id, previous_owner_team, reason, changed_by, changed_at):
    return {
        "customer_id": str(customer["id"]), "number": customer["number"], "region": customer["region"],
        "owner_id": _id(customer["owner_id"]), "owner_team": customer["owner_team"],
        "previous_owner_id": _id(previous_owner_id), "previous_owner_team": previous_owner_team,
        "kind": kind, "reason": reason, "changed_by": _id(changed_by), "changed_at": _at(changed_at),
    }


def reclaimable(row, as_of):
    return {
        "customer_id": str(row["id"]), "number": row["number"], "region": row["region"],
        "owner_id": _id(row["owner_id"]), "owner_team": row["owner_team"], "manager_id": _id(row["manager_id"]),
        "assigned_at": _at(row["assigned_at"]), "contact_due_by": _at(row["contact_due_by"]),
        "reclaimable_since": _at(as_of),
    }


def classified(customer, *, previous_status, status, source, changed_by, reason=None, order_id=None, at=None):
    return {
        "customer_id": str(customer["id"]), "number": customer["number"], "region": customer["region"],
        "owner_id": _id(customer["owner_id"]), "owner_team": customer["owner_team"],
        "status": status, "previous_status": previous_status, "source": source, "reason": reason,
        "order_id": _id(order_id), "changed_by": _id(changed_by), "classified_at": _at(at),
    }


def reviewed(review, customer):
    return {
        "review_id": str(review["id"]), "customer_id": str(review["customer_id"]),
        "owner_id": _id(customer["owner_id"]), "owner_team": customer["owner_team"], "region": customer["region"],
        "outcome": review["state"], "business_status": review["business_status"],
        "credit_opinion": review["credit_opinion"], "valid_until": review["valid_until"].isoformat(),
        "decided_by": _id(review["decided_by"]), "decided_at": _at(review["decided_at"]), "comment": review["comment"],
    }


def visit_logged(visit):
    return {
        "visit_id": str(visit["id"]), "number": visit["number"], "customer_id": str(visit["customer_id"]),
        "region": visit["customer_region"], "rep_id": str(visit["rep_id"]), "rep_team": visit["rep_team"],
        "planned_at": _at(visit["planned_at"]), "visited_at": _at(visit["visited_at"]),
        "logged_at": _at(visit["logged_at"]), "log_due_by": _at(visit["log_due_by"]), "late": visit["late"],
    }


def visit_return_overdue(row, as_of):
    return {
        "visit_id": str(row["id"]), "number": row["number"], "customer_id": str(row["customer_id"]),
        "rep_id": str(row["rep_id"]), "rep_team": row["rep_team"], "manager_id": _id(row["manager_id"]),
        "expected_return_at": _at(row["expected_return_at"] or row["planned_return_at"]),
        "overdue_since": _at(as_of),
    }


def opportunity_closed(row):
    data = {
        "opportunity_id": str(row["id"]), "number": row["number"], "customer_id": str(row["customer_id"]),
        "owner_id": _id(row["owner_id"]), "owner_team": row["owner_team"], "region": row["customer_region"],
        "title": row["title"], "expected_amount": str(row["expected_amount"]), "outcome": row["stage"],
        "reason": row["reason"], "closed_at": _at(row["closed_at"]), "closed_by": _id(row["closed_by"]),
    }
    if row["stage"] == "won":
        data["order_id"] = str(row["order_id"])
    return data
