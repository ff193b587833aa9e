"""The meterlake half-hourly read CSV (format ``hh-csv``): long form, one read per line, instants in UTC.

Shape
-----
UTF-8 text (optionally gzipped), comma-separated, no quoting (no field contains a comma), every line ending
with a newline (a file whose last line is unterminated is taken as truncated and rejected). The first line is
the header; these columns, in any order (others are ignored)::

    meter_point,meter_serial,register_id,read_kind,interval_start_utc,value,unit,quality,created_utc
    1200023305967,E00000001,S,interval,2024-10-26T23:00:00Z,0.213,kWh,actual,2024-10-28T02:00:00Z
    1200023305967,E00000001,S,interval,2024-10-26T23:30:00Z,0.198,kWh,actual,2024-10-28T02:00:00Z
    7434918404,G00000002,S,register,2024-10-26T23:00:00Z,1843.250,m3,actual,2024-10-28T02:00:00Z

``meter_point``
    An MPAN core (13 digits, check digit valid: electricity) or an MPRN (6-10 digits: gas).
``meter_serial``
    The meter's serial number; may be empty.
``register_id``
    1-2 upper-case letters or digits: ``S`` single rate, ``DY``/``NT`` for Economy 7 day and night, ``01``...
``read_kind``
    ``interval`` (energy in the half-hour starting at ``interval_start_utc``; on the 30-minute UTC grid) or
    ``register`` (a cumulative register reading taken at ``interval_start_utc``, e.g. a gas meter's daily
    read).
``interval_start_utc``, ``created_utc``
    ISO 8601 instants with an offset (``Z`` or ``+00:00``; another offset is converted). ``created_utc`` is
    when the data collector produced the value: the read's ``source_version``. A correction is the same reads
    with a later ``created_utc``: each read it restates replaces the earlier version of that read (the store
    and the lake keep the latest version per read; to withdraw a read, restate it with quality ``withdrawn``).
``value``
    A finite decimal number. ``unit``: ``kWh`` (electricity or gas), ``m3`` (gas).
``quality``
    ``actual``, ``estimated``, ``customer``, ``suspect`` or ``withdrawn``.

Grain: one line per (meter_point, meter_serial, register_id, read_kind, interval_start_utc).
"""
from __future__ import annotations

from collections.abc import Iterator

from meterlake import formats, ids, schema
from streaming.ingest.common import (
    PERIOD_US,
    Collector,
    FileInfo,
    FileRejected,
    RecordProblem,
    TimestampParser,
    check_grid,
    check_not_future,
    header_names,
    number,
    register,
    split_fields,
)

FORMAT = "hh-csv"
COLUMNS = formats.HH_CSV_COLUMNS
HEADER = formats.HH_CSV_HEADER
UNITS = {"electricity": ("kWh",), "gas": ("kWh", "m3")}


def sniff(first: str) -> bool:
    names = {name.strip() for name in first.split(",")}
    return set(COLUMNS) <= names


def parse(lines: Iterator[tuple[int, str, bool]], out: Collector, info: FileInfo, now_us: int) -> None:
    names = [name.strip() for name in header_names(lines)]
    missing = [c for c in COLUMNS if c not in names]
    if missing:
        raise FileRejected("bad_header", f"missing column(s) {', '.join(missing)}; expected {HEADER}")
    at = {name: names.index(name) for name in COLUMNS}
    width = len(names)
    timestamp = TimestampParser()
    qualities = set(schema.QUALITIES)
    for line_no, text, terminated in lines:
        if not terminated:
            raise FileRejected("truncated_file", f"line {line_no} has no line end: the file was cut short")
        if not text.strip():
            continue
        meter = start = None  # as far as the line is valid: its quarantine record counts against the meter-day
        try:
            fields = split_fields(text, width)
            meter_point = fields[at["meter_point"]].strip()
            fuel, problem = ids.meter_point_problem(meter_point)
            if problem:
                raise RecordProblem("meter_point", problem.reason, problem.detail)
            meter = meter_point
            register_id = register(fields[at["register_id"]].strip())
            kind = fields[at["read_kind"]].strip()
            if kind not in ("interval", "register"):
                raise RecordProblem("read_kind", "unknown_read_kind", f"read kind {kind!r}")
            start = timestamp(fields[at["interval_start_utc"]].strip(), "interval_start_utc")
            if kind == "interval":
                check_grid(start, "interval_start_utc")
                check_not_future(start + PERIOD_US, now_us, "interval_start_utc")
            else:
                check_not_future(start, now_us, "interval_start_utc")
            value = number(fields[at["value"]], "value")
            unit = fields[at["unit"]].strip()
            if unit not in UNITS[fuel]:
                raise RecordProblem("unit", "unknown_unit", f"unit {unit!r} for {fuel}")
            quality = fields[at["quality"]].strip()
            if not quality:
                raise RecordProblem("quality", "missing_value", "quality is empty")
            if quality not in qualities:
                raise RecordProblem("quality", "unknown_quality", f"quality {quality!r}")
            created = timestamp(fields[at["created_utc"]].strip(), "created_utc")
        except RecordProblem as problem:
            out.problem(line_no, problem, text, meter, start)
            continue
        info.saw_instant(created)
        serial = fields[at["meter_serial"]].strip() or None
        out.read(line_no, text, meter_point=meter_point, meter_serial=serial, fuel=fuel,
                 register_id=register_id, read_kind=kind, start_us=start, value=value, unit=unit,
                 quality=quality, version=created)
