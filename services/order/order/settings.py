"""The order service's own settings (config.yaml `ORDER:`, else `ORDER_*` environment variables),
read once per use through the kit's single config reader."""
from dataclasses import dataclass
from decimal import Decimal

from shared import config


@dataclass(frozen=True)
class Settings:
    major_contract_amount: Decimal   # FR-48: a total above it is a major contract (marketing director)
    contract_amount: Decimal         # an accepted quote at or above it raises a contract (FR-50)
    saga_lease: float                # seconds a saga's driver owns it before the recovery job may take over
    resume_window: float             # a crashed confirmation younger than this is resumed, older compensated
    close_after_days: int            # a paid order is closed this many days later (returns window)


def load():
    return Settings(
        major_contract_amount=Decimal(str(config.get("ORDER.MAJOR_CONTRACT_AMOUNT", "1000000.00"))),
        contract_amount=Decimal(str(config.get("ORDER.CONTRACT_AMOUNT", "100000.00"))),
        saga_lease=float(config.get("ORDER.SAGA_LEASE_SECONDS", 60)),
        resume_window=float(config.get("ORDER.SAGA_RESUME_WINDOW_SECONDS", 300)),
        close_after_days=int(config.get("ORDER.CLOSE_AFTER_DAYS", 30)),
    )
