"""The gateway's settings, read once at start (shared.config is the only reader) and checked:
the gateway refuses to start without a token secret worth the name."""
from dataclasses import dataclass

from shared import config
from shared.config import ConfigError

MIN_SECRET_LENGTH = 32  # bytes of HS256 key; shorter keys are guessable offline


@dataclass(frozen=True)
class Settings:
    token_secret: str
    token_ttl: int
    admin_username: str
    admin_password: str
    idempotency_ttl: int
    idempotency_lock_timeout: int
    max_body_bytes: int
    rate_limit_rate: float = 20.0  # requests a second per credential, per replica (0: no limit)
    rate_limit_burst: int = 100
    view_timeout: float = 2.0  # seconds each part of an overview or timeline may take
    report_timeout: float = 10.0  # seconds each service's part of a report may take

    def __repr__(self):  # never print the secrets
        return f"Settings(token_ttl={self.token_ttl}, admin_username={self.admin_username!r}, ...)"

    @classmethod
    def from_config(cls):
        """Read the GATEWAY section; raises ConfigError naming what is missing or wrong."""
        config.require("GATEWAY.TOKEN_SECRET")
        secret = str(config.get("GATEWAY.TOKEN_SECRET"))
        if len(secret) < MIN_SECRET_LENGTH:
            raise ConfigError(f"configuration value 'GATEWAY.TOKEN_SECRET' must be at least "
                              f"{MIN_SECRET_LENGTH} characters")
        settings = cls(
            token_secret=secret,
            token_ttl=config.get("GATEWAY.TOKEN_TTL", 3600, cast=int),
            admin_username=str(config.get("GATEWAY.ADMIN_USERNAME", "admin")),
            admin_password=str(config.get("GATEWAY.ADMIN_PASSWORD", "", required=False) or ""),
            idempotency_ttl=config.get("GATEWAY.IDEMPOTENCY_TTL", 86400, cast=int),
            idempotency_lock_timeout=config.get("GATEWAY.IDEMPOTENCY_LOCK_TIMEOUT", 120, cast=int),
            max_body_bytes=config.get("GATEWAY.MAX_BODY_BYTES", 1048576, cast=int),
            rate_limit_rate=config.get("GATEWAY.RATE_LIMIT_RATE", 20.0, cast=float),
            rate_limit_burst=config.get("GATEWAY.RATE_LIMIT_BURST", 100, cast=int),
            view_timeout=config.get("GATEWAY.VIEW_TIMEOUT", 2.0, cast=float),
            report_timeout=config.get("GATEWAY.REPORT_TIMEOUT", 10.0, cast=float),
        )
        for name in ("token_ttl", "idempotency_ttl", "idempotency_lock_timeout", "max_body_bytes",
                     "rate_limit_burst", "view_timeout", "report_timeout"):
            if getattr(settings, name) <= 0:
                raise ConfigError(f"configuration value 'GATEWAY.{name.upper()}' must be positive")
        if settings.rate_limit_rate < 0:
            raise ConfigError("configuration value 'GATEWAY.RATE_LIMIT_RATE' must not be negative (0: no limit)")
        return settings
