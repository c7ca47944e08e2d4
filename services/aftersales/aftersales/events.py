"""Payloads of the events the aftersales service publishes (JSON Schemas in contracts/events/).

Each carries the ids it is about, the customer snapshot (`customer_id`, `owner_id`, `owner_team`,
`region`) and what report consumers need, so nobody calls back on the hot path."""


def _iso(value):
    return value.isoformat() if value is not None else None


def _id(value):
    return str(value) if value is not None else None


def _base(row):
    return {
        "service_request_id": str(row["id"]),
        "number": row["number"],
        "type": row["type"],
        "priority": row["priority"],
        "status": row["status"],
        "customer_id": str(row["customer_id"]),
        "owner_id": _id(row["owner_id"]),
        "owner_team": row["owner_team"],
        "region": row["region"],
        "sku": row["sku"],
        "delivery_id": _id(row["delivery_id"]),
        "due_at": _iso(row["due_at"]),
    }


def opened(row):
    return dict(_base(row), opened_at=_iso(row["opened_at"]), opened_by=str(row["opened_by"]),
                sla_hours=float(row["sla_hours"]), in_warranty=row["in_warranty"], repeat_of=_id(row["repeat_of"]))


def assigned(row, previous_engineer_id, assigned_by):
    return dict(_base(row), engineer_id=str(row["engineer_id"]), engineer_name=row["engineer_name"],
                assigned_at=_iso(row["assigned_at"]), assigned_by=str(assigned_by),
                previous_engineer_id=_id(previous_engineer_id))


def escalated(row, overdue_hours, reason):
    return dict(_base(row), escalated_at=_iso(row["escalated_at"]), escalated_to=_id(row["escalated_to"]),
                escalated_to_name=row["escalated_to_name"], engineer_id=_id(row["engineer_id"]),
                overdue_working_hours=overdue_hours, reason=reason)


def resolved(row):
    return dict(_base(row), engineer_id=str(row["engineer_id"]), resolved_at=_iso(row["resolved_at"]),
                action=row["action"], quantity=row["action_quantity"], sla_met=row["sla_met"],
                first_time_fix=row["first_time_fix"])


def closed(row):
    return dict(_base(row), engineer_id=_id(row["engineer_id"]), closed_at=_iso(row["closed_at"]),
                rating=row["rating"], sla_met=row["sla_met"])
