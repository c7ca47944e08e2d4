"""Validation at every boundary with marshmallow: failures become `ValidationFailed` (422)
with field messages; unknown fields are refused, never silently stored."""
from marshmallow import RAISE, Schema, ValidationError

from shared.errors import ValidationFailed


class StrictSchema(Schema):
    class Meta:
        unknown = RAISE


def load(schema, data, detail="input failed validation"):
    try:
        return schema.load(data if data is not None else {})
    except ValidationError as exc:
        raise ValidationFailed(detail, errors=_flatten(exc.messages)) from None


def _flatten(messages, prefix=""):
    """`{"contacts": {0: {"name": [...]}}}` → `{"contacts.0.name": [...]}`."""
    flat = {}
    if isinstance(messages, dict):
        for key, value in messages.items():
            name = f"{prefix}.{key}" if prefix else str(key)
            if isinstance(value, dict):
                flat.update(_flatten(value, name))
            else:
                flat[name] = value if isinstance(value, list) else [value]
    else:
        flat[prefix or "_schema"] = messages if isinstance(messages, list) else [messages]
    return flat
