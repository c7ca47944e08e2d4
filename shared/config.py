"""The one reader of configuration.

Values come from nameko's config (each service's config.yaml, whose `${VAR:default}` entries read
the environment) and, failing that, from the environment itself. A value that is missing, empty
where required, or still holds an unresolved `${...}` fails fast with the key named.
"""
import os
from collections.abc import Mapping

from nameko import config as nameko_config


class ConfigError(RuntimeError):
    pass


_MISSING = object()


def _lookup(key):
    node = nameko_config
    for part in key.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return os.environ.get(key.replace(".", "_"), _MISSING)
        node = node[part]
    return node


def get(key, default=_MISSING, cast=None, required=True):
    """`get("DB.HOST")` reads nested keys; `DB_HOST` in the environment answers when absent."""
    value = _lookup(key)
    if value is _MISSING or value is None or (value == "" and required and default is _MISSING):
        if default is not _MISSING:
            return default
        raise ConfigError(f"configuration value {key!r} is missing")
    if isinstance(value, str) and "${" in value:
        raise ConfigError(f"configuration value {key!r} is unresolved: {value!r}")
    if cast is not None:
        try:
            value = cast(value)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"configuration value {key!r} is invalid: {exc}") from None
    return value


def require(*keys):
    """Check every key at start-up; raise one error naming all that are missing."""
    problems = []
    for key in keys:
        try:
            get(key)
        except ConfigError as exc:
            problems.append(str(exc))
    if problems:
        raise ConfigError("; ".join(problems))


def as_bool(value):
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(f"not a boolean: {value!r}")
