"""The public Low Carbon London shape (format ``lcl``): ``LCLid,tstp,energy(kWh/hh)``.

The London Datastore's "Smart meters in London" data and its derivatives come in a few header spellings; the
columns are found by name (case-insensitive), others (``stdorToU``) are ignored:

* household id: ``LCLid`` (``MAC`` and 6 digits; it is the read's ``meter_point``),
* time: ``tstp`` or ``DateTime``, e.g. ``2013-10-27 01:30:00`` or ``2012-10-12 00:30:00.0000000``,
* energy: ``energy(kWh/hh)`` or ``KWH/hh (per half hour)``, kWh in the half-hour, ``Null`` when missing.

Timestamps are UTC (no offset is written) and mark the END of the half-hour, so a read's
``interval_start_utc`` is the time minus 30 minutes. A read is electricity, register ``S``, ``actual``;
there is no meter serial. The data has no creation stamp, so a file's ``source_version`` is the latest
period end it holds: a longer extract of the same household supersedes a shorter one. The published files
contain exact duplicate rows (counted and dropped), ``Null`` values (quarantined as ``missing_value``) and
gaps (nothing to report: the set simply has no read there).

Grain: one line per (LCLid, tstp).
"""
from __future__ import annotations

from collections.abc import Iterator

from meterlake import ids
from streaming.ingest.common import (
    PERIOD_US,
    Collector,
    FileInfo,
    FileRejected,
    RecordProblem,
    TimestampParser,
    bad_line,
    check_grid,
    check_not_future,
    header_names,
    number,
    split_fields,
)

FORMAT = "lcl"
_TIME_NAMES = ("tstp", "datetime")


def sniff(first: str) -> bool:
    return first.split(",")[0].strip().lower() == "lclid"


def _find(names: list[str]) -> tuple[int, int, int]:
    lower = [n.strip().lower() for n in names]
    try:
        id_at = lower.index("lclid")
        time_at = next(i for i, n in enumerate(lower) if n in _TIME_NAMES)
        energy_at = next(i for i, n in enumerate(lower) if n.startswith(("energy", "kwh")))
    except (ValueError, StopIteration):
        raise FileRejected("bad_header", f"expected LCLid, tstp (or DateTime) and energy(kWh/hh) columns; "
                                         f"got {','.join(names)}") from None
    return id_at, time_at, energy_at


def parse(lines: Iterator[tuple[int, str, bool]], out: Collector, info: FileInfo, now_us: int) -> None:
    names = header_names(lines)
    id_at, time_at, energy_at = _find(names)
    width = len(names)
    timestamp = TimestampParser(naive_is_utc=True)
    for line_no, text, terminated in lines:
        if not text.strip():
            continue
        meter = start = None  # as far as the line is valid: its quarantine record counts against the meter-day
        try:
            fields = split_fields(text, width)
            household = fields[id_at].strip()
            problem = ids.lcl_problem(household)
            if problem:
                raise RecordProblem("LCLid", problem.reason, problem.detail)
            meter = household
            end = timestamp(fields[time_at].strip(), names[time_at].strip())
            start = end - PERIOD_US
            check_grid(end, names[time_at].strip())
            check_not_future(end, now_us, names[time_at].strip())
            value = number(fields[energy_at], names[energy_at].strip())
        except RecordProblem as problem:
            bad_line(out, line_no, problem, text, terminated, meter, start)
            continue
        info.saw_instant(end)
        out.read(line_no, text, meter_point=household, meter_serial=None, fuel="electricity", register_id="S",
                 read_kind="interval", start_us=end - PERIOD_US, value=value, unit="kWh", quality="actual")
