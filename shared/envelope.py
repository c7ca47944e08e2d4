"""The event envelope every published event carries (STYLE.md)."""
import uuid
from datetime import datetime, timezone

REQUIRED = ("event_id", "event_type", "event_version", "occurred_at", "source", "data")


def versioned_type(event_type, version=1):
    """The type an event of `version` travels as: `order.confirmed` for v1, `order.confirmed.v2`
    for v2 — its own routing key, so a v1 consumer never receives a v2 payload and both versions
    can be published side by side while consumers move (docs/CONTRACTS.md)."""
    base, found = split_type(event_type)
    version = found if found > 1 else version
    return base if version == 1 else f"{base}.v{version}"


def split_type(event_type):
    """`order.confirmed.v2` → ("order.confirmed", 2); `order.confirmed` → ("order.confirmed", 1)."""
    base, _, suffix = event_type.rpartition(".v")
    if base and suffix.isdigit() and int(suffix) > 1:
        return base, int(suffix)
    return event_type, 1


def build(event_type, data, *, source, version=1, correlation_id=None, causation_id=None,
          event_id=None, occurred_at=None):
    version = max(version, split_type(event_type)[1])
    return {
        "event_id": str(event_id or uuid.uuid4()),
        "event_type": versioned_type(event_type, version),
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
