"""Validation at every boundary with marshmallow: failures become `ValidationFailed` (422)
with field messages; unknown fields are refused, never silently stored."""
from marshmallow import RAISE, Schema, ValidationError, fields, validate

from shared.access import ROLES
from shared.errors import ValidationFailed


class StrictSchema(Schema):
    class Meta:
        unknown = RAISE


class ActorSchema(StrictSchema):
    """Who acts: every command and every row-filtered query takes `actor` (the gateway sends the
    caller's staff member; services acting on their own send a system actor)."""

    staff_id = fields.UUID(required=True)
    role = fields.String(required=True, validate=validate.OneOf(ROLES))
    username = fields.String(load_default=None, allow_none=True)
    team = fields.String(load_default=None, allow_none=True)


actor_schema = ActorSchema()


def load_actor(actor):
    """The actor as a dict with `staff_id` as a string (ready for SQL and JSON)."""
    data = load(actor_schema, actor, detail="actor failed validation")
    return dict(data, staff_id=str(data["staff_id"]))


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
