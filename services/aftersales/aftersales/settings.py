"""The service's own settings, read once and checked at start (a bad SLA table stops the service
from starting, naming the cell), handed to every worker as `self.settings`."""
import json
from dataclasses import dataclass

from nameko.extensions import DependencyProvider

from aftersales import domain
from shared import config


@dataclass(frozen=True)
class Settings:
    sla_hours: dict
    default_warranty_months: int
    repeat_window_days: int
    escalation_batch: int
    action_batch: int
    action_lease_seconds: float
    action_retry_base_seconds: float
    action_retry_max_seconds: float

    @classmethod
    def from_config(cls):
        table = config.get("AFTERSALES.SLA_HOURS", domain.DEFAULT_SLA_HOURS)
        if isinstance(table, str):  # AFTERSALES_SLA_HOURS='{"repair": {...}, ...}' in the environment
            table = json.loads(table)
        settings = cls(
            sla_hours=domain.check_sla_table(table),
            default_warranty_months=config.get("AFTERSALES.DEFAULT_WARRANTY_MONTHS", 12, cast=int),
            repeat_window_days=config.get("AFTERSALES.REPEAT_WINDOW_DAYS", 30, cast=int),
            escalation_batch=config.get("AFTERSALES.ESCALATION_BATCH", 200, cast=int),
            action_batch=config.get("AFTERSALES.ACTION_BATCH", 50, cast=int),
            action_lease_seconds=config.get("AFTERSALES.ACTION_LEASE_SECONDS", 60, cast=float),
            action_retry_base_seconds=config.get("AFTERSALES.ACTION_RETRY_BASE_SECONDS", 10, cast=float),
            action_retry_max_seconds=config.get("AFTERSALES.ACTION_RETRY_MAX_SECONDS", 900, cast=float),
        )
        if settings.default_warranty_months < 0 or settings.repeat_window_days < 0:
            raise config.ConfigError("AFTERSALES.DEFAULT_WARRANTY_MONTHS and REPEAT_WINDOW_DAYS must be >= 0")
        return settings


class SettingsProvider(DependencyProvider):
    def setup(self):
        try:
            self.settings = Settings.from_config()
        except ValueError as exc:
            raise config.ConfigError(f"aftersales configuration: {exc}") from None

    def get_dependency(self, worker_ctx):
        return self.settings
