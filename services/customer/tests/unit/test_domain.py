"""The customer rules without any I/O."""
from datetime import datetime, timedelta, timezone
import uuid

import pytest

from customer import domain


@pytest.mark.parametrize("a,b", [
    ("ACME Co., Ltd.", "acme"),
    ("ＡＣＭＥ有限公司", "Acme"),
    ("上海 华东 贸易有限公司", "上海华东贸易"),
    ("Acme Corporation", "ACME corp."),
    ("Beta  Inc", "beta"),
])
def test_fr07_same_company_written_differently_has_one_key(a, b):
    assert domain.name_key(a) == domain.name_key(b)


@pytest.mark.parametrize("a,b", [("Taco", "Ta"), ("Acme East", "Acme West"), ("华东贸易", "华南贸易")])
def test_fr07_different_companies_keep_different_keys(a, b):
    assert domain.name_key(a) != domain.name_key(b)


def test_legal_form_alone_is_kept_as_the_name():
    assert domain.name_key("Company") == "company"


def test_tax_key_ignores_spacing_and_case():
    assert domain.tax_key("91310000-1234 5678xk") == "913100001234 5678XK".replace(" ", "")
    assert domain.tax_key("") is None and domain.tax_key(None) is None


def test_fr06_the_collector_owns_and_others_feed_the_pool():
    rep = {"staff_id": str(uuid.uuid4()), "role": "sales_rep"}
    marketing = {"staff_id": str(uuid.uuid4()), "role": "marketing_director"}
    assert domain.initial_owner(rep) == rep["staff_id"]
    assert domain.initial_owner(marketing) is None  # FR-09: campaign leads go to the pool


def test_fr10_contact_is_due_within_one_week():
    now = datetime(2026, 11, 24, 9, tzinfo=timezone.utc)
    assert domain.contact_due_by(now) == now + timedelta(days=7)


def test_row_level_access_rep_sees_only_own():
    me, other = str(uuid.uuid4()), str(uuid.uuid4())
    rep = {"staff_id": me, "role": "sales_rep"}
    assert domain.can_see(rep, me)
    assert not domain.can_see(rep, other)
    assert not domain.can_see(rep, None)
    assert domain.can_see({"staff_id": other, "role": "sales_director"}, me)
