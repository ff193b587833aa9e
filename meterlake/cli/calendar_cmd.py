"""`meterlake calendar`: the GB settlement calendar from the command line.

Run: ``meterlake calendar day 2026-03-29``, ``meterlake calendar locate 2026-10-25T01:30:00Z``,
``meterlake calendar period 2026-10-25 4``, ``meterlake calendar changes 2026``; add ``--json`` for JSON.
The rules live in :mod:`meterlake.calendar`; this module only parses arguments and formats answers.
"""
from __future__ import annotations

from datetime import datetime

import click

from meterlake import calendar as cal
from meterlake.cli.output import json_command, parse_date
from meterlake.errors import UsageError
from meterlake.instants import iso_utc, parse_instant

_KIND = {46: "spring clock change", 50: "autumn clock change", 48: "ordinary day"}


def _local(instant: datetime) -> str:
    return instant.astimezone(cal.LONDON).strftime("%H:%M %Z")


@click.group()
def calendar() -> None:
    """The GB settlement calendar: settlement dates and half-hour periods (46/48/50 a day).

    A settlement day runs from midnight to midnight UK time; period 1 starts at local midnight and every
    period is 30 minutes of real time. All instants are shown in UTC.
    """


@calendar.command("day")
@json_command
@click.argument("settlement_date", metavar="DATE")
def day(settlement_date: str):
    """The number of periods and the UTC span of a settlement DATE (YYYY-MM-DD).

    \b
    Example: meterlake calendar day 2026-03-29 --json
    """
    d = parse_date(settlement_date)
    start, end = cal.day_bounds(d)
    count = cal.periods_in_day(d)
    result = {"settlement_date": d, "periods": count, "start_utc": start, "end_utc": end}
    summary = (f"{d.isoformat()}: {count} periods ({_KIND.get(count, 'irregular day')}), "
               f"{iso_utc(start)} to {iso_utc(end)}")
    return result, summary


@calendar.command("locate")
@json_command
@click.argument("instant", metavar="INSTANT")
def locate(instant: str):
    """The settlement date and period containing INSTANT (ISO 8601 with Z or an offset).

    An instant inside a period locates that period; utc_start is the period's start. A timestamp without a
    time zone is refused: it could be UTC or UK time.

    \b
    Example: meterlake calendar locate 2026-10-25T01:30:00Z --json
    """
    moment = parse_instant(instant)
    settlement_date, period = cal.locate(moment)
    start = cal.period_start(settlement_date, period)
    result = {"settlement_date": settlement_date, "settlement_period": period, "utc_start": start}
    summary = (f"{iso_utc(moment)} is in period {period} of {settlement_date.isoformat()} "
               f"(starts {iso_utc(start)}, {_local(start)})")
    return result, summary


@calendar.command("period")
@json_command
@click.argument("settlement_date", metavar="DATE")
@click.argument("period", metavar="PERIOD")
def period(settlement_date: str, period: str):
    """The UTC start of settlement PERIOD (1-based) of DATE.

    PERIOD runs from 1 to the day's count: 46 on the spring clock change, 50 on the autumn one, else 48.

    \b
    Example: meterlake calendar period 2026-10-25 4 --json
    """
    d = parse_date(settlement_date)
    try:
        number = int(period)
    except ValueError:
        raise UsageError(f"not a period number: {period!r}", value=period) from None
    count = cal.periods_in_day(d)
    try:
        start = cal.period_start(d, number)
    except ValueError as exc:
        raise UsageError(str(exc), settlement_date=d, settlement_period=number, periods=count) from None
    result = {"settlement_date": d, "settlement_period": number, "utc_start": start}
    summary = f"{d.isoformat()} period {number} of {count} starts {iso_utc(start)} ({_local(start)})"
    return result, summary


@calendar.command("changes")
@json_command
@click.argument("year", metavar="YEAR")
def changes(year: str):
    """The clock-change days of YEAR: the days with 46 or 50 periods instead of 48.

    \b
    Example: meterlake calendar changes 2026 --json
    """
    try:
        number = int(year)
    except ValueError:
        raise UsageError(f"not a year: {year!r}", value=year) from None
    if not 1 <= number <= 9998:
        raise UsageError(f"year {number} is outside 1-9998", value=year)
    found = cal.clock_change_days(number)
    result = {"year": number, "days": [{"settlement_date": d, "periods": n} for d, n in found]}
    lines = [f"{d.isoformat()} {d:%a}: {n} periods ({_KIND.get(n, 'irregular day')})" for d, n in found]
    return result, "\n".join(lines) or f"{number}: no clock changes"
