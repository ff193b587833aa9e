"""A supplier's own half-hourly CSV (format ``layout:<name>``), described by a named layout in meterlake.toml.

Run: ``meterlake ingest FILE --format layout:octo [--meter-point MPAN]`` with::

    [ingest.layouts.octo]
    timestamp_column = "halfhour ending at"
    timestamp_is = "end"            # or "start": of the half-hour
    timezone = "UTC"                # or "Europe/London": times without an offset are UK clock time
    timestamp_format = "iso"        # or a strptime pattern, e.g. "%d/%m/%Y %H:%M"
    value_column = "usage"
    unit = "kWh"                    # or "Wh" (stored as kWh)
    # meter_column = "mpan"         # absent: every row is --meter-point's

(:class:`meterlake.config.IngestLayout`). ../shared/realdata/octopus_agile/electricity_records.csv is such a file
(UTC half-hour ends, newest first). A header line is required; columns are found by name, others ignored; rows
may come in any order. The checks and quarantine are the other formats': a bad meter point, a time that does not
parse, a time off the half-hour grid, a future half-hour, an empty or non-numeric value quarantine the row with
a reason; a truncated last line or a missing column rejects the file. In UK clock time a time in the repeated
autumn hour (01:00-02:00 on the last Sunday of October) is ambiguous unless it carries an offset: the row is
quarantined (``bad_timestamp``, the detail says why); a time in the skipped spring hour likewise.

Reads are electricity, register ``S``, ``actual``, no serial. The file has no creation stamp, so its
``source_version`` is the latest half-hour end it holds (as the LCL format's).
Grain: one line per (meter, half-hour).
"""
from __future__ import annotations

import csv
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

from meterlake import calendar as cal
from meterlake import ids
from meterlake.schema import epoch_us
from streaming.ingest.common import (
    PERIOD_US,
    Collector,
    FileInfo,
    FileRejected,
    RecordProblem,
    bad_line,
    check_grid,
    check_not_future,
    number,
)

PREFIX = "layout:"
_HALF_HOUR = timedelta(minutes=30)


class LayoutParser:
    """The parser of one layout (a :class:`meterlake.config.IngestLayout`), for :mod:`streaming.ingest.pipeline`."""

    def __init__(self, name: str, layout, meter_point: str | None = None):
        self.FORMAT = PREFIX + name
        self.layout = layout
        self.meter_point = meter_point
        if layout.meter_column is None and meter_point is None:
            from meterlake.errors import UsageError

            raise UsageError(f"layout {name} has no meter_column: give --meter-point MPAN", layout=name)

    def _instant(self, text: str) -> datetime:
        field = self.layout.timestamp_column
        try:
            when = (datetime.fromisoformat(text) if self.layout.timestamp_format == "iso"
                    else datetime.strptime(text, self.layout.timestamp_format))
        except ValueError as exc:
            raise RecordProblem(field, "bad_timestamp", f"{text!r}: {exc}") from None
        if when.tzinfo is not None:
            return when.astimezone(UTC)
        if self.layout.timezone == "UTC":
            return when.replace(tzinfo=UTC)
        try:
            first = cal.from_local_clock(when, fold=0)
        except ValueError:
            raise RecordProblem(field, "bad_timestamp",
                                f"{text!r} does not exist in UK time (clocks went forward)") from None
        if cal.from_local_clock(when, fold=1) != first:
            raise RecordProblem(field, "bad_timestamp",
                                f"{text!r} is in the repeated autumn hour; it needs an offset (+01:00 or +00:00)")
        return first

    def parse(self, lines: Iterator[tuple[int, str, bool]], out: Collector, info: FileInfo, now_us: int) -> None:
        layout = self.layout
        header = next(lines, None)
        if header is None:
            raise FileRejected("empty_file", "no header line")
        names = [n.strip() for n in next(csv.reader([header[1]]))]
        wanted = [layout.timestamp_column, layout.value_column] + ([layout.meter_column] if layout.meter_column
                                                                    else [])
        missing = [c for c in wanted if c not in names]
        if missing:
            raise FileRejected("bad_header", f"missing column(s) {', '.join(missing)} of layout "
                                             f"{self.FORMAT[len(PREFIX):]}; the header has {', '.join(names)}")
        t_at, v_at = names.index(layout.timestamp_column), names.index(layout.value_column)
        m_at = names.index(layout.meter_column) if layout.meter_column else None
        scale = 0.001 if layout.unit == "Wh" else 1.0
        for line_no, text, terminated in lines:
            if not text.strip():
                continue
            fields = next(csv.reader([text]))
            meter = start_us = None  # as far as the line is valid: its quarantine record counts against the day
            try:
                if len(fields) != len(names):
                    raise RecordProblem(None, "malformed_line", f"{len(fields)} fields, expected {len(names)}")
                meter_point = fields[m_at].strip() if m_at is not None else self.meter_point
                fuel, problem = ids.meter_point_problem(meter_point)
                if problem:
                    raise RecordProblem(layout.meter_column or "--meter-point", problem.reason, problem.detail)
                if fuel != "electricity":
                    raise RecordProblem(layout.meter_column or "--meter-point", "unknown_unit",
                                        f"{meter_point} is not an electricity meter point")
                meter = meter_point
                at = self._instant(fields[t_at].strip())
                start = at - _HALF_HOUR if layout.timestamp_is == "end" else at
                start_us = epoch_us(start)
                check_grid(start_us, layout.timestamp_column)
                check_not_future(start_us + PERIOD_US, now_us, layout.timestamp_column)
                value = round(number(fields[v_at], layout.value_column) * scale, 6)
            except RecordProblem as problem:
                bad_line(out, line_no, problem, text, terminated, meter, start_us)
                continue
            info.saw_instant(start_us + PERIOD_US)
            out.read(line_no, text, meter_point=meter_point, meter_serial=None, fuel="electricity", register_id="S",
                     read_kind="interval", start_us=start_us, value=value, unit="kWh", quality="actual")
