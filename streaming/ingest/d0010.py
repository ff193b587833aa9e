"""The D0010 "Meter Readings" flow (format ``d0010``): non-half-hourly register reads, pipe-delimited.

Layout (each record ends with ``|``; groups nest 026 > 028 > 030)::

    ZHV|0000475656|D0010002|D|UDMS|X|MRCY|20160302153151||||OPER|   header
    026|1200023305967|V|                                             MPAN core | BSC validation status
    028|F75A 00802|D|                                                meter id (serial) | reading type
    030|S|20160222000000|56311.0|||T|N|                              register read
    ZPT|0000475656|35||11|20160302154650|                            trailer

ZHV: file identifier (J0003-like sequence), data flow and version (``D0010`` + 3 digits), from role and
participant, to role and participant, file creation date-time (CCYYMMDDHHMMSS), then optional sub-addresses,
test flag. 026: MPAN core (check digit validated), BSC validation status (V valid, F failed, U not validated).
028: meter id (serial), reading type (J0171: A, C customer own read, D deemed/estimated, F final, I initial,
O old supplier's estimate, R routine, S special, W withdrawn, Z change of tenancy, ...). 030: meter register
id (J0010, e.g. ``S``, ``DY``/``NT``, ``01``), reading date-time, register reading (kWh), MD reset date-time,
number of MD resets, meter reading flag (T valid, F suspect), reading method (N not viewed, P viewed by an
agent).
027 (site visit), 029 and 032 (validation result) are counted and otherwise skipped. ZPT: file identifier,
total group count (every record between ZHV and ZPT), checksum, flow count, completion date-time.

Date-times in the flow are UK clock time (an NHH reading at "midnight" is at the start of the settlement day);
they become UTC through :func:`meterlake.calendar.from_local_clock`.

Reads are ``register`` reads, electricity, unit kWh. Quality: ``suspect`` if the 030 flag is F or the MPAN
failed BSC validation, else ``customer`` for reading type C, ``estimated`` for D and O, ``withdrawn`` for W,
``actual`` otherwise. ``source_version`` is the ZHV creation instant plus the file identifier modulo 10**6.
A 030 under a bad MPAN core is quarantined with the MPAN's reason (one record per read, nothing vanishes).

File-level problems (the file is rejected, nothing published): no ZHV first (bad_header), a flow other than
D0010 (unknown_flow), no ZPT (truncated_file), a ZPT whose group count or file identifier differs
(trailer_count_mismatch, trailer_file_id_mismatch), records after the ZPT (data_after_trailer).

Grain: one 030 line per (MPAN core, meter id, register id, reading date-time).
"""
from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

from meterlake import calendar as cal
from meterlake import ids
from meterlake.schema import epoch_us
from streaming.ingest.common import (
    Collector,
    FileInfo,
    FileRejected,
    RecordProblem,
    check_not_future,
    local_clock_us,
    number,
    register,
)

FORMAT = "d0010"
FLOW = "D0010"
KNOWN_GROUPS = {"026", "027", "028", "029", "030", "032"}
_QUALITY_BY_READING_TYPE = {"C": "customer", "D": "estimated", "O": "estimated", "W": "withdrawn"}


def sniff(first: str) -> bool:
    return first.startswith("ZHV|")


def _fields(text: str) -> list[str]:
    fields = text.split("|")
    if fields and fields[-1] == "":
        fields.pop()
    return fields


def _header(text: str, info: FileInfo) -> str:
    fields = _fields(text)
    if not fields or fields[0] != "ZHV":
        raise FileRejected("bad_header", "the first record is not a ZHV header")
    if len(fields) < 8:
        raise FileRejected("bad_header", f"the ZHV header has {len(fields)} fields, expected at least 8")
    flow = fields[2]
    if flow[:5] != FLOW:
        raise FileRejected("unknown_flow", f"the ZHV header names flow {flow!r}, not {FLOW}")
    try:
        if len(fields[7]) != 14 or not fields[7].isdigit():
            raise ValueError("not CCYYMMDDHHMMSS")
        created = cal.from_local_clock(datetime.strptime(fields[7], "%Y%m%d%H%M%S"))
    except ValueError as exc:
        raise FileRejected("bad_header", f"ZHV file creation date-time {fields[7]!r}: {exc}") from None
    info.created_us = epoch_us(created)
    file_id = fields[1]
    info.sequence = int(file_id) % 1_000_000 if file_id.isdigit() else 0
    return file_id


def parse(lines: Iterator[tuple[int, str, bool]], out: Collector, info: FileInfo, now_us: int) -> None:
    first = next(lines, None)
    if first is None:
        raise FileRejected("empty_file", "no ZHV header")
    file_id = _header(first[1], info)
    groups = 0
    trailer_seen = False
    mpan: str | None = None
    mpan_problem: RecordProblem | None = None
    mpan_failed = False
    serial: str | None = None
    reading_type = ""
    for line_no, text, _ in lines:
        if not text.strip():
            continue
        fields = _fields(text)
        record = fields[0]
        if trailer_seen:
            raise FileRejected("data_after_trailer", f"line {line_no} follows the ZPT trailer")
        if record == "ZPT":
            _trailer(fields, file_id, groups, line_no)
            trailer_seen = True
            continue
        groups += 1
        if record == "026":
            mpan = fields[1].strip() if len(fields) > 1 else ""
            problem = ids.mpan_problem(mpan) if mpan else ids.Problem("missing_value", "026 has no MPAN core")
            mpan_problem = RecordProblem("mpan_core", problem.reason,
                                         f"{problem.detail} (026 on line {line_no})") if problem else None
            mpan_failed = len(fields) > 2 and fields[2] == "F"
            serial, reading_type = None, ""
        elif record == "028":
            serial = (fields[1].strip() or None) if len(fields) > 1 else None
            reading_type = fields[2].strip() if len(fields) > 2 else ""
            if mpan is None:
                out.quarantine(line_no, None, "orphan_group", "028 before any 026 MPAN group", text)
        elif record == "030":
            _register_read(out, line_no, text, fields, now_us, mpan, mpan_problem, serial, reading_type,
                           mpan_failed)
        elif record in KNOWN_GROUPS:
            continue
        elif len(record) == 3 and record.isdigit():
            out.quarantine(line_no, None, "unknown_group", f"record type {record} is not a D0010 group", text)
        else:
            detail = f"record type {record[:10]!r} is not a group"
            out.quarantine(line_no, None, "malformed_line", detail, text)
    if not trailer_seen:
        raise FileRejected("truncated_file", f"no ZPT trailer after {groups} group(s)")


def _trailer(fields: list[str], file_id: str, groups: int, line_no: int) -> None:
    if len(fields) < 3:
        raise FileRejected("trailer_count_mismatch", f"the ZPT trailer on line {line_no} has no group count")
    if fields[1] != file_id:
        raise FileRejected("trailer_file_id_mismatch",
                           f"ZPT file identifier {fields[1]!r} differs from the ZHV's {file_id!r}")
    count = fields[2].strip()
    if not count.isdigit() or int(count) != groups:
        raise FileRejected("trailer_count_mismatch", f"the ZPT trailer counts {count!r} groups; the file has "
                                                     f"{groups}")


def _register_read(out: Collector, line_no: int, text: str, fields: list[str], now_us: int, mpan: str | None,
                   mpan_problem: RecordProblem | None, serial: str | None, reading_type: str,
                   mpan_failed: bool) -> None:
    taken = None  # as far as the line is valid: its quarantine record counts against the meter-day
    try:
        if mpan is None:
            raise RecordProblem(None, "orphan_group", "030 register read before any 026 MPAN group")
        if mpan_problem is not None:
            raise mpan_problem
        if len(fields) < 4:
            raise RecordProblem(None, "malformed_line", f"030 has {len(fields)} fields, expected at least 4")
        register_id = register(fields[1].strip(), "meter_register_id")
        taken = local_clock_us(fields[2].strip(), "reading_date_time")
        check_not_future(taken, now_us, "reading_date_time")
        value = number(fields[3], "register_reading")
    except RecordProblem as problem:
        out.problem(line_no, problem, text, None if mpan_problem is not None else mpan, taken)
        return
    flag = fields[6].strip() if len(fields) > 6 else ""
    if flag == "F" or mpan_failed:
        quality = "suspect"
    else:
        quality = _QUALITY_BY_READING_TYPE.get(reading_type, "actual")
    out.read(line_no, text, meter_point=mpan, meter_serial=serial, fuel="electricity",
             register_id=register_id, read_kind="register", start_us=taken, value=value, unit="kWh",
             quality=quality)
