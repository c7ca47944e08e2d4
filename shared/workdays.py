"""Business time on the Chinese working-day calendar (Asia/Shanghai).

Working days come from the maintained `chinesecalendar` package (public holidays and the make-up
working weekends, 调休). For a year the package does not cover yet, Monday to Friday are taken as
working days and a warning is logged once per year, so deadlines keep working until the package is
upgraded.

    log_due = deadline_after_working_days(visited_at, 2)     # FR-27: end of the 2nd working day
    due_at = add_working_hours(opened_at, 8)                  # an SLA of 8 working hours

Datetimes in and out are timezone-aware (UTC in the database); the calendar is applied in
Asia/Shanghai. Pure apart from that one log line: no framework, no I/O.
"""
import logging
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import chinese_calendar

log = logging.getLogger(__name__)

TZ = ZoneInfo("Asia/Shanghai")
DAY_START = time(9, 0)   # working hours for SLAs
DAY_END = time(18, 0)
_uncovered_years = set()


def local_date(moment):
    """The Asia/Shanghai date of an aware datetime (or the date itself)."""
    if isinstance(moment, datetime):
        return _aware(moment).astimezone(TZ).date()
    return moment


def is_working_day(day):
    day = local_date(day)
    try:
        return chinese_calendar.is_workday(day)
    except NotImplementedError:
        if day.year not in _uncovered_years:
            _uncovered_years.add(day.year)
            log.warning("chinesecalendar does not cover %s: taking Monday to Friday as working days", day.year)
        return day.weekday() < 5


def add_working_days(start, days):
    """The date `days` working days after `start`'s local date (days >= 0; 0: the next working
    day on or after it)."""
    day = local_date(start)
    if days == 0:
        while not is_working_day(day):
            day += timedelta(days=1)
        return day
    counted = 0
    while counted < days:
        day += timedelta(days=1)
        if is_working_day(day):
            counted += 1
    return day


def end_of_day(day):
    """The last instant of a local date, in UTC."""
    return datetime.combine(day + timedelta(days=1), time(0), TZ).astimezone(timezone.utc) - timedelta(microseconds=1)


def deadline_after_working_days(start, days):
    """End (local midnight) of the `days`-th working day after `start`, in UTC."""
    return end_of_day(add_working_days(start, days))


def working_days_between(start, end):
    """Working days after `start`'s date up to and including `end`'s date (0 when end <= start)."""
    day, last, count = local_date(start), local_date(end), 0
    while day < last:
        day += timedelta(days=1)
        if is_working_day(day):
            count += 1
    return count


def add_working_hours(start, hours):
    """`start` plus `hours` of working time (DAY_START to DAY_END on working days), in UTC."""
    remaining = timedelta(hours=hours)
    moment = _aware(start).astimezone(TZ)
    while True:
        day = moment.date()
        opens, closes = datetime.combine(day, DAY_START, TZ), datetime.combine(day, DAY_END, TZ)
        if not is_working_day(day) or moment >= closes:
            moment = datetime.combine(day + timedelta(days=1), DAY_START, TZ)
            continue
        moment = max(moment, opens)
        if moment + remaining <= closes:
            return (moment + remaining).astimezone(timezone.utc)
        remaining -= closes - moment
        moment = datetime.combine(day + timedelta(days=1), DAY_START, TZ)


def working_hours_between(start, end):
    """Working hours (float) between two instants; 0 when end <= start."""
    start, end = _aware(start).astimezone(TZ), _aware(end).astimezone(TZ)
    total = timedelta()
    day = start.date()
    while day <= end.date():
        if is_working_day(day):
            opens = max(datetime.combine(day, DAY_START, TZ), start)
            closes = min(datetime.combine(day, DAY_END, TZ), end)
            if closes > opens:
                total += closes - opens
        day += timedelta(days=1)
    return total.total_seconds() / 3600


def _aware(moment):
    if moment.tzinfo is None:
        raise ValueError("a timezone-aware datetime is needed")
    return moment
