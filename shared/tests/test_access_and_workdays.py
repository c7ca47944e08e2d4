"""The kit's pure helpers: row-level scopes (API.md) and the Chinese working-day calendar (FR-27)."""
import uuid
from datetime import date, datetime, timezone

import pytest
from hypothesis import given, strategies as st

from shared import access, workdays
from shared.errors import ValidationFailed
from shared.validation import load_actor

REP, OTHER = str(uuid.uuid4()), str(uuid.uuid4())


def test_a_rep_sees_only_what_they_own():
    scope = access.scope({"staff_id": REP, "role": "sales_rep", "team": "east-1"})
    assert scope.allows(REP) and not scope.allows(OTHER, "east-1") and not scope.allows(None)
    assert scope.sql("c.owner_id", "c.owner_team") == ("c.owner_id = %s", [REP])


def test_a_manager_sees_their_team_and_their_own():
    scope = access.scope({"staff_id": REP, "role": "sales_manager", "team": "east-1"})
    assert scope.allows(OTHER, "east-1") and scope.allows(REP, None) and not scope.allows(OTHER, "west-2")
    assert scope.sql("owner_id", "owner_team") == ("(owner_id = %s OR owner_team = %s)", [REP, "east-1"])


def test_a_manager_without_a_team_sees_only_their_own():
    scope = access.scope({"staff_id": REP, "role": "sales_manager"})
    assert not scope.allows(OTHER, None) and scope.sql("o", "t") == ("o = %s", [REP])


@pytest.mark.parametrize("role", ["sales_director", "finance", "warehouse", "order_desk", "admin"])
def test_other_roles_are_not_restricted_by_owner(role):
    scope = access.scope({"staff_id": REP, "role": role})
    assert scope.unrestricted and scope.allows(OTHER) and scope.sql("o", "t") == ("TRUE", [])


def test_an_actor_with_an_unknown_role_is_refused_naming_the_field():
    with pytest.raises(ValidationFailed) as refused:
        load_actor({"staff_id": REP, "role": "pirate"})
    assert "role" in refused.value.errors
    assert load_actor({"staff_id": REP, "role": "sales_rep"})["staff_id"] == REP


# -- the working-day calendar -----------------------------------------------------------------
def shanghai(*args):
    return datetime(*args, tzinfo=workdays.TZ)


def test_fr27_holidays_do_not_count_and_make_up_saturdays_do():
    assert not workdays.is_working_day(date(2026, 10, 5))  # National Day week
    assert workdays.is_working_day(date(2026, 10, 10))  # a make-up working Saturday (调休)
    assert not workdays.is_working_day(date(2026, 10, 11))  # an ordinary Sunday
    # a visit on the eve of the holiday: 2 working days are 8 and 9 October, not 1 and 2
    assert workdays.add_working_days(shanghai(2026, 9, 30, 15), 2) == date(2026, 10, 9)
    due = workdays.deadline_after_working_days(shanghai(2026, 9, 30, 15), 2)
    assert due.tzinfo is not None and due.astimezone(workdays.TZ).date() == date(2026, 10, 9)
    assert workdays.working_days_between(shanghai(2026, 9, 30, 15), shanghai(2026, 10, 12, 9)) == 4


def test_a_year_the_calendar_does_not_cover_falls_back_to_weekdays():
    assert workdays.is_working_day(date(2099, 6, 1))  # a Monday
    assert not workdays.is_working_day(date(2099, 6, 6))  # a Saturday


def test_working_hours_skip_nights_weekends_and_holidays():
    start = shanghai(2026, 9, 30, 17)  # one working hour left before the National Day week
    due = workdays.add_working_hours(start, 3)
    assert due.astimezone(workdays.TZ) == shanghai(2026, 10, 8, 11)
    assert workdays.working_hours_between(start, due) == pytest.approx(3)
    assert workdays.working_hours_between(due, start) == 0


def test_naive_datetimes_are_refused():
    with pytest.raises(ValueError):
        workdays.add_working_hours(datetime(2026, 1, 5, 9), 1)


@given(st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2026, 12, 20), timezones=st.just(timezone.utc)),
       st.integers(min_value=0, max_value=40))
def test_working_hours_added_are_the_working_hours_between(start, hours):
    due = workdays.add_working_hours(start, hours)
    assert due >= start
    assert workdays.working_hours_between(start, due) == pytest.approx(hours)
