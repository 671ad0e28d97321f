"""Cron expressions in a time zone: the UTC instants they fire at, across daylight-saving changes in
Europe/Berlin (2026-03-29 02:00→03:00, 2026-10-25 03:00→02:00) and America/New_York (2026-03-08
02:00→03:00, 2026-11-01 02:00→01:00). Expected instants are written out by hand from the zones'
offsets (CET +01, CEST +02, EST -05, EDT -04)."""

from __future__ import annotations

import datetime as dt

import pytest

from flowforge.runner.cron import CronError, CronSchedule


def utc(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC)


def fires(expression: str, zone: str, start: str, end: str) -> list[str]:
    return [f"{t:%m-%d %H:%M}" for t in CronSchedule(expression, zone).fires_between(utc(start), utc(end))]


def test_berlin_daily_fixed_time_across_both_changes() -> None:
    # 02:30 does not exist on 29 March: it fires at the end of the gap, 03:00 CEST = 01:00 UTC
    assert fires("30 2 * * *", "Europe/Berlin", "2026-03-27", "2026-03-31") == [
        "03-27 01:30", "03-28 01:30", "03-29 01:00", "03-30 00:30"]
    # 02:30 happens twice on 25 October: it fires once, at the first (CEST) one
    assert fires("30 2 * * *", "Europe/Berlin", "2026-10-23", "2026-10-27") == [
        "10-23 00:30", "10-24 00:30", "10-25 00:30", "10-26 01:30"]


def test_berlin_hourly_follows_absolute_time() -> None:
    # spring: 02:00 local does not exist, yet an hourly job still fires every absolute hour
    assert fires("0 * * * *", "Europe/Berlin", "2026-03-28T23:30", "2026-03-29T03:30") == [
        "03-29 00:00", "03-29 01:00", "03-29 02:00", "03-29 03:00"]
    # autumn: the repeated 02:00 fires at both occurrences (00:00 and 01:00 UTC)
    assert fires("0 * * * *", "Europe/Berlin", "2026-10-24T22:30", "2026-10-25T02:30") == [
        "10-24 23:00", "10-25 00:00", "10-25 01:00", "10-25 02:00"]


def test_new_york_fixed_slots_in_the_gap_fire_once_at_its_end() -> None:
    # 02:00, 02:20, 02:40 EST do not exist on 8 March: one fire at 03:00 EDT = 07:00 UTC
    assert fires("*/20 2 * * *", "America/New_York", "2026-03-07T06:00", "2026-03-09T08:00") == [
        "03-07 07:00", "03-07 07:20", "03-07 07:40", "03-08 07:00", "03-09 06:00", "03-09 06:20", "03-09 06:40"]


def test_new_york_repeated_hour() -> None:
    # 01:30 happens at 05:30 UTC (EDT) and 06:30 UTC (EST) on 1 November: fires once, at the first
    assert fires("30 1 * * *", "America/New_York", "2026-10-31", "2026-11-03") == [
        "10-31 05:30", "11-01 05:30", "11-02 06:30"]
    # an every-30-minutes job keeps its pace through the repeated hour
    assert fires("*/30 * * * *", "America/New_York", "2026-11-01T04:45", "2026-11-01T07:15") == [
        "11-01 05:00", "11-01 05:30", "11-01 06:00", "11-01 06:30", "11-01 07:00"]


def test_next_fires_and_latest() -> None:
    schedule = CronSchedule("0 6 * * 1-5", "Europe/Berlin")
    after = utc("2026-03-26T12:00")  # a Thursday
    assert [f"{t:%m-%d %H:%M}" for t in schedule.next_fires(after, 5)] == [
        "03-27 05:00", "03-30 04:00", "03-31 04:00", "04-01 04:00", "04-02 04:00"]  # CET, then CEST
    assert schedule.latest_between(utc("2026-03-01"), utc("2026-03-29T12:00")) == utc("2026-03-27T05:00")
    assert CronSchedule("@hourly").next_fires(utc("2026-01-01T00:59"), 1) == [utc("2026-01-01T01:00")]


@pytest.mark.parametrize(("expression", "zone", "reason"), [
    ("banana", "UTC", "needs 5 fields"),
    ("61 * * * *", "UTC", "out of range"),
    ("0 0 30 2 *", "UTC", "never fires"),
    ("0 6 * * * *", "UTC", "for seconds use 'every'"),
    ("0 6 * * *", "Mars/Olympus", "unknown time zone 'Mars/Olympus'"),
])
def test_bad_expressions_say_why(expression: str, zone: str, reason: str) -> None:
    with pytest.raises(CronError, match=reason):
        CronSchedule(expression, zone)
