from decimal import Decimal

from billing import domain


def test_available_credit_is_limit_less_exposure_never_negative():
    assert domain.available(Decimal("1000"), Decimal("250.5")) == Decimal("749.50")
    assert domain.available(Decimal("100"), Decimal("250")) == Decimal("0.00")


def test_new_accounts_open_with_no_credit():
    assert domain.OPENING_LIMIT == Decimal("0.00")
