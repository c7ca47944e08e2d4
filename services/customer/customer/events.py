"""Payloads of the events the customer service publishes (schemas in contracts/events/)."""


def customer_created(row):
    return {
        "customer_id": str(row["id"]),
        "number": row["number"],
        "name": row["name"],
        "tax_id": row["tax_id"],
        "industry": row["industry"],
        "size": row["size"],
        "region": row["region"],
        "source": row["source"],
        "status": row["status"],
        "owner_id": str(row["owner_id"]) if row["owner_id"] else None,
        "created_at": row["created_at"].isoformat(),
    }
