"""The GB settlement calendar: clock changes, period boundaries, errors and the vectorised Arrow/pandas paths.

Expected dates, periods and instants are written out literally (from the published clock-change dates and the
rule "period 1 starts at local midnight, each period is 30 minutes of UTC").
"""
from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pandas as pd
import pyarrow as pa
import pytest

from meterlake import calendar as cal


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


# ------------------------------------------------------------------------------------------- periods a day

CLOCK_CHANGE_DAYS = [
    pytest.param(date(1996, 3, 31), 46, id="1996 spring"),
    pytest.param(date(1996, 10, 27), 50, id="1996 autumn"),
    pytest.param(date(2000, 3, 26), 46, id="2000 spring"),
    pytest.param(date(2000, 10, 29), 50, id="2000 autumn"),
    pytest.param(date(2008, 3, 30), 46, id="2008 spring"),
    pytest.param(date(2008, 10, 26), 50, id="2008 autumn"),
    pytest.param(date(2013, 3, 31), 46, id="2013 spring"),
    pytest.param(date(2013, 10, 27), 50, id="2013 autumn"),
    pytest.param(date(2016, 3, 27), 46, id="2016 spring"),
    pytest.param(date(2016, 10, 30), 50, id="2016 autumn"),
    pytest.param(date(2020, 3, 29), 46, id="2020 spring"),
    pytest.param(date(2020, 10, 25), 50, id="2020 autumn"),
    pytest.param(date(2024, 3, 31), 46, id="2024 spring"),
    pytest.param(date(2024, 10, 27), 50, id="2024 autumn"),
    pytest.param(date(2026, 3, 29), 46, id="2026 spring"),
    pytest.param(date(2026, 10, 25), 50, id="2026 autumn"),
    pytest.param(date(2035, 3, 25), 46, id="2035 spring"),
    pytest.param(date(2035, 10, 28), 50, id="2035 autumn"),
    pytest.param(date(2040, 3, 25), 46, id="2040 spring"),
    pytest.param(date(2040, 10, 28), 50, id="2040 autumn"),
]


@pytest.mark.parametrize("day, periods", CLOCK_CHANGE_DAYS)
def test_clock_change_days_have_46_or_50_periods(day, periods):
    assert cal.periods_in_day(day) == periods


@pytest.mark.parametrize("day", [
    pytest.param(date(2013, 3, 30), id="day before spring change"),
    pytest.param(date(2013, 4, 1), id="day after spring change"),
    pytest.param(date(2016, 10, 29), id="day before autumn change"),
    pytest.param(date(2016, 10, 31), id="day after autumn change"),
    pytest.param(date(2024, 1, 15), id="winter"),
    pytest.param(date(2024, 7, 15), id="summer"),
    pytest.param(date(2024, 2, 29), id="leap day"),
    pytest.param(date(2024, 12, 31), id="new year's eve"),
])
def test_ordinary_days_have_48_periods(day):
    assert cal.periods_in_day(day) == 48


def test_every_day_2000_to_2040_has_46_48_or_50_periods_with_one_spring_and_one_autumn_sunday_a_year():
    # GIVEN every day from 2000-01-01 to 2040-12-31
    # WHEN each is counted
    # THEN a year has 46 periods on exactly one March Sunday, 50 on exactly one October Sunday, 48 elsewhere
    by_year: dict[int, dict[int, list[date]]] = {}
    day = date(2000, 1, 1)
    while day <= date(2040, 12, 31):
        by_year.setdefault(day.year, {46: [], 48: [], 50: []})[cal.periods_in_day(day)].append(day)
        day += timedelta(days=1)
    assert sorted(by_year) == list(range(2000, 2041))
    for counts in by_year.values():
        (spring,), (autumn,) = counts[46], counts[50]
        assert (spring.month, spring.isoweekday()) == (3, 7)
        assert (autumn.month, autumn.isoweekday()) == (10, 7)


def test_clock_change_days_lists_the_years_two_changes():
    assert cal.clock_change_days(2024) == [(date(2024, 3, 31), 46), (date(2024, 10, 27), 50)]


def test_a_year_of_british_standard_time_has_no_clock_change_days():
    # 1968-10-27 to 1971-10-31 the UK kept GMT+1 all year
    assert cal.clock_change_days(1970) == []


# ----------------------------------------------------------------------------------------------------- bounds


@pytest.mark.parametrize("day, start, end", [
    pytest.param(date(2013, 3, 31), "2013-03-31T00:00", "2013-03-31T23:00", id="spring change"),
    pytest.param(date(2016, 10, 30), "2016-10-29T23:00", "2016-10-31T00:00", id="autumn change"),
    pytest.param(date(2016, 7, 1), "2016-06-30T23:00", "2016-07-01T23:00", id="summer"),
    pytest.param(date(2016, 1, 1), "2016-01-01T00:00", "2016-01-02T00:00", id="winter"),
])
def test_day_bounds_are_utc_local_midnight_to_next_local_midnight(day, start, end):
    assert cal.day_bounds(day) == (utc(start), utc(end))


def test_day_bounds_are_aware_utc_datetimes():
    start, end = cal.day_bounds(date(2016, 7, 1))
    assert start.utcoffset() == timedelta(0) and end.utcoffset() == timedelta(0)


def test_day_bounds_refuse_a_datetime():
    with pytest.raises(TypeError, match="datetime.date"):
        cal.day_bounds(datetime(2016, 7, 1, 12, tzinfo=UTC))


# ----------------------------------------------------------------------------------------------------- locate


@pytest.mark.parametrize("instant, expected", [
    pytest.param("2016-03-26T23:59:59", (date(2016, 3, 26), 48), id="last second before spring day"),
    pytest.param("2016-03-27T00:00:00", (date(2016, 3, 27), 1), id="spring day starts at 00:00Z"),
    pytest.param("2016-03-27T00:59:59", (date(2016, 3, 27), 2), id="last GMT second of spring day"),
    pytest.param("2016-03-27T01:00:00", (date(2016, 3, 27), 3), id="02:00 BST follows 01:00 GMT"),
    pytest.param("2016-03-27T22:30:00", (date(2016, 3, 27), 46), id="last period of spring day"),
    pytest.param("2016-03-27T22:59:59", (date(2016, 3, 27), 46), id="inside last period of spring day"),
    pytest.param("2016-03-27T23:00:00", (date(2016, 3, 28), 1), id="BST midnight after spring day"),
    pytest.param("2016-06-30T22:59:59", (date(2016, 6, 30), 48), id="last second of a BST day"),
    pytest.param("2016-06-30T23:00:00", (date(2016, 7, 1), 1), id="BST midnight is 23:00Z the day before"),
    pytest.param("2016-07-01T11:45:00", (date(2016, 7, 1), 26), id="inside a BST period"),
    pytest.param("2016-10-29T22:59:59", (date(2016, 10, 29), 48), id="last second before autumn day"),
    pytest.param("2016-10-29T23:00:00", (date(2016, 10, 30), 1), id="autumn day starts at 23:00Z"),
    pytest.param("2016-10-29T23:30:00", (date(2016, 10, 30), 2), id="autumn 00:30 BST"),
    pytest.param("2016-10-30T00:00:00", (date(2016, 10, 30), 3), id="autumn first 01:00 (BST)"),
    pytest.param("2016-10-30T00:30:00", (date(2016, 10, 30), 4), id="autumn first 01:30 (BST)"),
    pytest.param("2016-10-30T01:00:00", (date(2016, 10, 30), 5), id="autumn second 01:00 (GMT)"),
    pytest.param("2016-10-30T01:30:00", (date(2016, 10, 30), 6), id="autumn second 01:30 (GMT)"),
    pytest.param("2016-10-30T02:00:00", (date(2016, 10, 30), 7), id="autumn 02:00 GMT"),
    pytest.param("2016-10-30T23:59:59", (date(2016, 10, 30), 50), id="last second of autumn day"),
    pytest.param("2016-10-31T00:00:00", (date(2016, 10, 31), 1), id="GMT midnight after autumn day"),
])
def test_locate_finds_the_period_containing_a_utc_instant(instant, expected):
    assert cal.locate(utc(instant)) == expected


@pytest.mark.parametrize("instant, expected", [
    pytest.param(datetime(2016, 10, 30, 1, 15, tzinfo=timezone(timedelta(hours=1))), (date(2016, 10, 30), 3),
                 id="01:15 BST on the autumn day"),
    pytest.param(datetime(2016, 10, 30, 1, 15, tzinfo=UTC), (date(2016, 10, 30), 5),
                 id="01:15 GMT on the autumn day"),
    pytest.param(datetime(2016, 7, 1, 0, 10, tzinfo=cal.LONDON), (date(2016, 7, 1), 1),
                 id="London zone just after midnight"),
])
def test_locate_honours_the_instants_offset(instant, expected):
    assert cal.locate(instant) == expected


def test_locate_refuses_a_naive_datetime():
    with pytest.raises(ValueError, match="naive"):
        cal.locate(datetime(2016, 10, 30, 1, 15))


# ----------------------------------------------------------------------------------------------- period start


@pytest.mark.parametrize("day, period, start", [
    pytest.param(date(2013, 3, 31), 1, "2013-03-31T00:00", id="spring first"),
    pytest.param(date(2013, 3, 31), 3, "2013-03-31T01:00", id="spring after the jump"),
    pytest.param(date(2013, 3, 31), 46, "2013-03-31T22:30", id="spring last"),
    pytest.param(date(2016, 10, 30), 1, "2016-10-29T23:00", id="autumn first"),
    pytest.param(date(2016, 10, 30), 4, "2016-10-30T00:30", id="autumn first 01:30"),
    pytest.param(date(2016, 10, 30), 6, "2016-10-30T01:30", id="autumn second 01:30"),
    pytest.param(date(2016, 10, 30), 50, "2016-10-30T23:30", id="autumn last"),
    pytest.param(date(2016, 7, 1), 1, "2016-06-30T23:00", id="summer first"),
    pytest.param(date(2016, 1, 1), 48, "2016-01-01T23:30", id="winter last"),
])
def test_period_start_is_the_utc_start_of_the_period(day, period, start):
    assert cal.period_start(day, period) == utc(start)


def test_period_end_is_the_next_periods_start():
    assert cal.period_end(date(2013, 3, 31), 46) == utc("2013-03-31T23:00")


@pytest.mark.parametrize("day, period, message", [
    pytest.param(date(2013, 3, 31), 0, "2013-03-31 has 46 periods; period 0 does not exist",
                 id="period 0"),
    pytest.param(date(2013, 3, 31), 47, "2013-03-31 has 46 periods; period 47 does not exist",
                 id="47 in spring"),
    pytest.param(date(2016, 10, 30), 51, "2016-10-30 has 50 periods; period 51 does not exist",
                 id="51 in autumn"),
    pytest.param(date(2016, 7, 1), 49, "2016-07-01 has 48 periods; period 49 does not exist",
                 id="49 on an ordinary day"),
])
def test_period_start_refuses_a_period_the_day_does_not_have(day, period, message):
    with pytest.raises(ValueError, match=f"^{message}$"):
        cal.period_start(day, period)


def test_periods_lists_every_period_of_a_spring_day_with_its_start():
    listed = list(cal.periods(date(2013, 3, 31)))
    assert len(listed) == 46
    assert listed[:3] == [(1, utc("2013-03-31T00:00")), (2, utc("2013-03-31T00:30")),
                          (3, utc("2013-03-31T01:00"))]
    assert listed[-1] == (46, utc("2013-03-31T22:30"))


def test_periods_lists_the_repeated_hour_of_an_autumn_day():
    listed = list(cal.periods(date(2016, 10, 30)))
    assert len(listed) == 50
    assert listed[2:6] == [(3, utc("2016-10-30T00:00")), (4, utc("2016-10-30T00:30")),
                           (5, utc("2016-10-30T01:00")), (6, utc("2016-10-30T01:30"))]


# ------------------------------------------------------------------------------------------------ vectorised

# instants across the 2016 autumn change and the 2016 spring change; None is a null
INSTANTS = [
    utc("2016-10-29T22:59:59"),
    utc("2016-10-29T23:00:00"),
    None,
    utc("2016-10-30T00:00:00"),
    utc("2016-10-30T00:30:00"),
    utc("2016-10-30T01:00:00"),
    utc("2016-10-30T01:30:00"),
    utc("2016-10-30T23:59:59"),
    utc("2016-03-27T01:00:00"),
    utc("2016-03-27T22:59:59"),
    utc("2016-03-27T23:00:00"),
]
EXPECTED_DATES = [
    date(2016, 10, 29), date(2016, 10, 30), None, date(2016, 10, 30), date(2016, 10, 30), date(2016, 10, 30),
    date(2016, 10, 30), date(2016, 10, 30), date(2016, 3, 27), date(2016, 3, 27), date(2016, 3, 28),
]
EXPECTED_PERIODS = [48, 1, None, 3, 4, 5, 6, 50, 3, 46, 1]


@pytest.mark.parametrize("unit", ["s", "ms", "us", "ns"])
def test_locate_arrow_gives_dates_and_periods_for_any_unit_with_nulls(unit):
    dates, periods = cal.locate_arrow(pa.array(INSTANTS, type=pa.timestamp(unit, tz="UTC")))
    assert dates.type == pa.date32() and periods.type == pa.int8()
    assert dates.to_pylist() == EXPECTED_DATES
    assert periods.to_pylist() == EXPECTED_PERIODS


@pytest.mark.parametrize("unit, instant", [
    pytest.param("ms", datetime(2016, 3, 27, 22, 59, 59, 999000, tzinfo=UTC), id="ms"),
    pytest.param("us", datetime(2016, 3, 27, 22, 59, 59, 999999, tzinfo=UTC), id="us"),
])
def test_locate_arrow_keeps_the_last_fraction_of_a_second_in_its_period(unit, instant):
    dates, periods = cal.locate_arrow(pa.array([instant], type=pa.timestamp(unit, tz="UTC")))
    assert (dates.to_pylist(), periods.to_pylist()) == ([date(2016, 3, 27)], [46])


def test_locate_arrow_reads_instants_whatever_the_tz_label():
    london = pa.array(INSTANTS, type=pa.timestamp("us", tz="Europe/London"))
    dates, periods = cal.locate_arrow(london)
    assert (dates.to_pylist(), periods.to_pylist()) == (EXPECTED_DATES, EXPECTED_PERIODS)


def test_locate_arrow_maps_a_chunked_array_chunk_for_chunk():
    ts = pa.chunked_array([INSTANTS[:2], INSTANTS[2:]], type=pa.timestamp("us", tz="UTC"))
    dates, periods = cal.locate_arrow(ts)
    assert [len(c) for c in dates.chunks] == [2, 9]
    assert (dates.to_pylist(), periods.to_pylist()) == (EXPECTED_DATES, EXPECTED_PERIODS)


@pytest.mark.parametrize("values", [
    pytest.param([], id="empty"),
    pytest.param([None, None], id="all null"),
])
def test_locate_arrow_handles_empty_and_all_null_columns(values):
    dates, periods = cal.locate_arrow(pa.array(values, type=pa.timestamp("us", tz="UTC")))
    assert (dates.to_pylist(), periods.to_pylist()) == (values, values)


def test_locate_arrow_handles_instants_centuries_apart():
    # a span too wide for the dense per-day table: distinct days only
    ts = pa.array([utc("2190-01-15T12:00"), utc("1990-07-01T12:00")], type=pa.timestamp("us", tz="UTC"))
    dates, periods = cal.locate_arrow(ts)
    assert dates.to_pylist() == [date(2190, 1, 15), date(1990, 7, 1)]
    assert periods.to_pylist() == [25, 27]


def test_locate_arrow_refuses_naive_timestamps():
    with pytest.raises(ValueError, match="naive"):
        cal.locate_arrow(pa.array([datetime(2016, 10, 30, 1)], type=pa.timestamp("us")))


def test_locate_pandas_gives_a_frame_on_the_series_index_with_nulls():
    instants = pd.to_datetime(["2016-10-30T00:30:00Z", None, "2016-06-30T23:00:00Z"])
    series = pd.Series(instants, index=[7, 8, 9])
    expected = pd.DataFrame(
        {
            "settlement_date": pd.Series([date(2016, 10, 30), None, date(2016, 7, 1)], index=[7, 8, 9],
                                         dtype=object),
            "settlement_period": pd.Series([4, None, 1], index=[7, 8, 9], dtype="Int8"),
        }
    )
    pd.testing.assert_frame_equal(cal.locate_pandas(series), expected)


def test_locate_pandas_accepts_london_local_datetimes():
    instants = pd.to_datetime(["2016-10-30T00:30:00Z", "2016-10-30T01:30:00Z"])
    series = pd.Series(instants.tz_convert("Europe/London"))
    result = cal.locate_pandas(series)
    assert result["settlement_period"].tolist() == [4, 6]


def test_locate_pandas_refuses_naive_datetimes():
    with pytest.raises(ValueError, match="naive"):
        cal.locate_pandas(pd.Series(pd.to_datetime(["2016-10-30T01:30:00"])))


def test_period_start_arrow_gives_utc_starts_with_nulls():
    dates = pa.array([date(2016, 10, 30), date(2013, 3, 31), None, date(2016, 7, 1)])
    periods = pa.array([4, 46, 1, None], type=pa.int8())
    starts = cal.period_start_arrow(dates, periods)
    assert starts.type == pa.timestamp("us", tz="UTC")
    assert starts.to_pylist() == [utc("2016-10-30T00:30"), utc("2013-03-31T22:30"), None, None]


def test_period_start_arrow_refuses_a_period_the_day_does_not_have():
    dates = pa.array([date(2016, 7, 1), date(2016, 10, 30)])
    with pytest.raises(ValueError, match="^2016-10-30 has 50 periods; period 51 does not exist$"):
        cal.period_start_arrow(dates, pa.array([1, 51]))
