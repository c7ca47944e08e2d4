"""The kit's part of a service's books (issue 9): what every service answers in its read-only
`get_books` RPC besides its own documents — the state of its outbox, the messages it parked, and
its document-number sequences against the numbers its documents carry. `tests/invariants` asks
every service for its books and checks them across services.

Plain JSON: counts as integers, ages in seconds, money (in the services' parts) as strings.
"""
from shared import metrics

NUMBER_PATTERN = r"^([A-Z]+)-([0-9]{4})-([0-9]+)$"


def snapshot(uow, service, numbered, read=None):
    """A service's whole books in one snapshot (REPEATABLE READ, READ ONLY — the first statement
    of the caller's unit of work): the kit's part and what `read()` returns, as plain JSON."""
    uow.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
    books = kit_books(uow, service, numbered)
    books.update(read() if read is not None else {})
    return plain(books)


def kit_books(uow, service, numbered):
    """The kit's tables, read in the caller's unit of work. `numbered` lists the (table, column)
    pairs holding the numbers this service gives from `uow.next_number`."""
    outbox = uow.one(
        "SELECT count(*) AS pending, COALESCE(extract(epoch FROM now() - min(created_at)), 0)::float AS oldest_age"
        "  FROM outbox WHERE published_at IS NULL")
    parked = uow.all(
        "SELECT id, handler, event_type, event_id::text AS event_id, error, attempts,"
        "       first_failed_at::text AS first_failed_at"
        "  FROM failed_messages WHERE resolved_at IS NULL ORDER BY id")
    return {
        "service": service,
        "outbox": {"pending": outbox["pending"], "oldest_age_seconds": round(outbox["oldest_age"], 3)},
        "parked": [dict(row, error=row["error"][:500]) for row in parked],
        # what this process reports to Prometheus (the alert rule SalesFailedMessages reads it)
        "parked_gauge": gauge_value(metrics.FAILED_MESSAGES_UNRESOLVED, service),
        "numbers": number_books(uow, numbered),
    }


def number_books(uow, numbered):
    """Per prefix and year: the sequence's last value, and how many numbers the documents carry,
    how many distinct, the lowest and the highest — enough to tell a repeat or a gap."""
    sequences = {(r["prefix"], r["year"]): r["last_value"]
                 for r in uow.all("SELECT prefix, year, last_value FROM document_sequences")}
    used = {}
    for table, column in numbered:
        rows = uow.all(
            f"SELECT m[1] AS prefix, m[2]::int AS year, array_agg(m[3]::bigint) AS values"  # noqa: S608 (names are ours)
            f"  FROM (SELECT regexp_match({column}, %s) AS m FROM {table} WHERE {column} IS NOT NULL) t"
            f" WHERE m IS NOT NULL GROUP BY 1, 2", (NUMBER_PATTERN,))
        for row in rows:
            used.setdefault((row["prefix"], row["year"]), []).extend(row["values"])
    books = []
    for prefix, year in sorted(set(sequences) | set(used)):
        values = used.get((prefix, year), [])
        books.append({
            "prefix": prefix, "year": year, "last_value": sequences.get((prefix, year)),
            "count": len(values), "distinct": len(set(values)),
            "lowest": min(values, default=None), "highest": max(values, default=None),
        })
    return books


def gauge_value(gauge, service):
    """The current value of a labelled gauge for `service` (None when never set)."""
    for family in gauge.collect():
        for sample in family.samples:
            if sample.labels.get("service") == service:
                return sample.value
    return None


def plain(value):
    """Rows as plain JSON values: Decimal and UUID as strings, times in ISO 8601."""
    import json

    from shared.db import dumps

    return json.loads(dumps(value))
