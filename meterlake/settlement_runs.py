"""Settlement runs and their cut-offs: which reads each run of a settlement date may use.

A run of settlement date D uses the reads whose ``source_version`` (the instant its source was created, taken
from the data) is at or before the run's cut-off: the end (UK local midnight) of the cut-off day. The cut-off days
approximate the BSC settlement calendar:

=====  ===========================================  ==============================================================
run    cut-off day                                  BSC timetable (approximately)
=====  ===========================================  ==============================================================
SF     D + 5 working days (Monday to Friday)        Initial Settlement, ~5 working days after the day (bank
                                                    holidays are not skipped here)
R1     D + 1 month                                  First Reconciliation
R2     D + 2 months                                 Second Reconciliation
R3     D + 4 months                                 Third Reconciliation
RF     D + 14 months                                Final Reconciliation
DF     D + 28 months                                Dispute Final
=====  ===========================================  ==============================================================

Months are calendar months, clamped to the month's last day (31 January + 1 month = 28 or 29 February). Because
the cut-off is a function of the settlement date only, and versions come from the data, a run can be recomputed
at any later time from the same lake and gives the same answer, as long as the lake keeps the versions at or
before the cut-off: the lake's compaction (``streaming/mirror/compact.py``) uses these cut-offs to decide how long
it keeps superseded versions. The settlement jobs (``jobs/settle``) use them to choose the reads of a run.
"""
from __future__ import annotations

import calendar as _calendar
from datetime import date, datetime, timedelta

from meterlake import calendar as cal
from meterlake import schema
from meterlake.errors import UsageError

RUNS = ("SF", "R1", "R2", "R3", "RF", "DF")
_MONTHS = {"R1": 1, "R2": 2, "R3": 4, "RF": 14, "DF": 28}
SF_WORKING_DAYS = 5


def check_run(run: str) -> str:
    name = run.upper()
    if name not in RUNS:
        raise UsageError(f"unknown settlement run {run!r}: one of {', '.join(RUNS)}", run=run)
    return name


def add_working_days(day: date, n: int) -> date:
    while n > 0:
        day += timedelta(days=1)
        if day.weekday() < 5:
            n -= 1
    return day


def add_months(day: date, months: int) -> date:
    month0 = day.month - 1 + months
    year, month = day.year + month0 // 12, month0 % 12 + 1
    return date(year, month, min(day.day, _calendar.monthrange(year, month)[1]))


def cutoff_day(day: date, run: str) -> date:
    """The last day whose sources run ``run`` of settlement date ``day`` includes."""
    run = check_run(run)
    if run == "SF":
        return add_working_days(day, SF_WORKING_DAYS)
    return add_months(day, _MONTHS[run])


def cutoff_instant(day: date, run: str) -> datetime:
    """The cut-off as a UTC instant: the end of :func:`cutoff_day` (local midnight after it)."""
    return cal.day_bounds(cutoff_day(day, run))[1]


def cutoff_version(day: date, run: str) -> int:
    """The highest source version the run includes (``source_version <= cutoff_version``)."""
    return schema.epoch_us(cutoff_instant(day, run)) - 1
