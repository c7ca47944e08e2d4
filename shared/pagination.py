"""Opaque keyset cursors for list RPCs: `{"items": [...], "next_cursor": "..."|None}`."""
import base64
import json

from shared.errors import ValidationFailed

DEFAULT_LIMIT = 50
MAX_LIMIT = 200


def encode(*values):
    raw = json.dumps([str(v) for v in values], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode(cursor, size):
    """The values a cursor carries; a cursor that was not ours is a 422 naming `cursor`."""
    if not cursor:
        return None
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        values = json.loads(base64.urlsafe_b64decode(padded.encode()))
        if not isinstance(values, list) or len(values) != size:
            raise ValueError
        return values
    except (ValueError, TypeError):
        raise ValidationFailed("invalid cursor", errors={"cursor": ["not a cursor this list gave out"]}) from None


def check_limit(limit):
    if limit is None:
        return DEFAULT_LIMIT
    try:
        limit = int(limit)
    except (TypeError, ValueError):
        limit = 0
    if not 1 <= limit <= MAX_LIMIT:
        raise ValidationFailed("invalid limit", errors={"limit": [f"must be between 1 and {MAX_LIMIT}"]})
    return limit


def page(rows, limit, key):
    """Cut `rows` (fetched with LIMIT limit + 1) to a page; `key(row)` gives the cursor values."""
    items = rows[:limit]
    next_cursor = encode(*key(items[-1])) if len(rows) > limit and items else None
    return items, next_cursor
