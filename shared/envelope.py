"""The event envelope every published event carries (STYLE.md)."""
import uuid
from datetime import datetime, timezone

REQUIRED = ("event_id", "event_type", "event_version", "occurred_at", "source", "data")


def build(event_type, data, *, source, version=1, correlation_id=None, causation_id=None,
          event_id=None, occurred_at=None):
    return {
        "event_id": str(event_id or uuid.uuid4()),
        "event_type": event_type,
        "event_version": version,
        "occurred_at": (occurred_at or datetime.now(timezone.utc)).isoformat(),
        "source": source,
        "correlation_id": correlation_id,
        "causation_id": str(causation_id) if causation_id else None,
        "data": data,
    }


def check(envelope):
    """Raise ValueError naming the first missing envelope field (a malformed message)."""
    if not isinstance(envelope, dict):
        raise ValueError("event body is not an object")
    for field in REQUIRED:
        if field not in envelope:
            raise ValueError(f"event envelope is missing {field!r}")
    uuid.UUID(str(envelope["event_id"]))
    return envelope
