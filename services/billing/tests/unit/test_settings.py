"""Billing's settings: the published formula's coefficients come from config, checked at start."""
from decimal import Decimal

import pytest
from nameko import config

from billing import settings
from shared.config import ConfigError


def test_fr64_coefficients_come_from_config_as_decimals():
    with config.patch({"CREDIT": {"MONTHS_OF_SALES": "3", "STANDING_A": "1.5", "RECOMPUTE_SCHEDULE": "false"},
                       "BILLING": {"PAYMENT_TERMS_DAYS": 45}}, clear=True):
        loaded = settings.load()
    assert loaded.formula.months_of_sales == Decimal("3") and loaded.formula.standing["A"] == Decimal("1.5")
    assert loaded.formula.growth_max == Decimal("1.3")  # the default where config is silent
    assert (loaded.payment_terms_days, loaded.dso_days, loaded.recompute_schedule) == (45, 90, False)


@pytest.mark.parametrize("credit,named", [
    ({"GROWTH_WEIGHT": "half"}, "CREDIT.GROWTH_WEIGHT"),
    ({"GROWTH_MIN": "2", "GROWTH_MAX": "1"}, "growth_min"),
    ({"NO_HISTORY_GRADE": "E"}, "no_history_grade"),
])
def test_a_bad_coefficient_stops_the_service_naming_it(credit, named):
    with config.patch({"CREDIT": credit}, clear=True), pytest.raises(ConfigError, match=named):
        settings.load()
