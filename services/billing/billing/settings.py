"""Billing's settings from config.yaml (each value can be set from the environment): payment
terms, the DSO window and the published credit formula's coefficients. Read and checked once at
start-up, so a bad value stops the service with the key named."""
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from billing import domain
from shared import config
from shared.config import ConfigError

FORMULA_KEYS = {  # config key under CREDIT -> CreditFormula field
    "MONTHS_OF_SALES": "months_of_sales", "GROWTH_WEIGHT": "growth_weight", "GROWTH_MIN": "growth_min",
    "GROWTH_MAX": "growth_max", "GRADE_A_DAYS": "grade_a_days", "GRADE_B_DAYS": "grade_b_days",
    "GRADE_C_DAYS": "grade_c_days", "ROUND_TO": "round_to", "MAX_LIMIT": "max_limit",
}


@dataclass(frozen=True)
class Settings:
    payment_terms_days: int
    dso_days: int
    formula: domain.CreditFormula
    recompute_schedule: bool


def _decimal(key, default):
    value = config.get(key, default)
    try:
        return Decimal(str(value))
    except InvalidOperation:
        raise ConfigError(f"configuration value {key!r} is not a decimal number: {value!r}") from None


def load():
    defaults = domain.CreditFormula()
    values = {field: _decimal(f"CREDIT.{key}", getattr(defaults, field)) for key, field in FORMULA_KEYS.items()}
    standing = {grade: _decimal(f"CREDIT.STANDING_{grade}", defaults.standing[grade]) for grade in domain.GRADES}
    try:
        formula = domain.CreditFormula(standing=standing,
                                       no_history_grade=str(config.get("CREDIT.NO_HISTORY_GRADE",
                                                                       defaults.no_history_grade)),
                                       **values)
    except ValueError as exc:
        raise ConfigError(f"CREDIT: {exc}") from None
    return Settings(
        payment_terms_days=config.get("BILLING.PAYMENT_TERMS_DAYS", 30, cast=int),
        dso_days=config.get("BILLING.DSO_DAYS", 90, cast=int),
        formula=formula,
        recompute_schedule=config.as_bool(config.get("CREDIT.RECOMPUTE_SCHEDULE", True)),
    )
