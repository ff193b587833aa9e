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
from itertools import islice

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from meterlake import formats, ids, schema
from streaming.ingest.common import (
    PERIOD_US,
    REGISTER_RE,
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


#: lines checked together by :func:`_block` (a block with any bad line is checked line by line instead), at most
#: the collector's ``batch_rows``: memory stays bounded by the batch size
BLOCK_LINES = 20_000


def parse(lines: Iterator[tuple[int, str, bool]], out: Collector, info: FileInfo, now_us: int) -> None:
    names = [name.strip() for name in header_names(lines)]
    missing = [c for c in COLUMNS if c not in names]
    if missing:
        raise FileRejected("bad_header", f"missing column(s) {', '.join(missing)}; expected {HEADER}")
    at = {name: names.index(name) for name in COLUMNS}
    width = len(names)
    timestamp = TimestampParser()
    qualities = set(schema.QUALITIES)
    block_lines = max(1, min(BLOCK_LINES, out.batch_rows))
    while block := list(islice(lines, block_lines)):
        if not _block(block, names, timestamp, now_us, out, info):
            _lines(block, at, width, timestamp, qualities, now_us, out, info)


def _lines(lines, at, width, timestamp, qualities, now_us: int, out: Collector, info: FileInfo) -> None:
    """Check and collect ``lines`` one by one (every problem quarantined with its line and field)."""
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


_CSV_PARSE = pacsv.ParseOptions(quote_char=False, double_quote=False, escape_char=False, newlines_in_values=False,
                                ignore_empty_lines=False)
_DECIMAL = r"^-?[0-9]+(\.[0-9]+)?$"  # what float() reads exactly as Arrow's cast does (both round correctly)


def _block(block, names: list[str], timestamp: TimestampParser, now_us: int, out: Collector,
           info: FileInfo) -> bool:
    """Check and collect a block of lines at once (pyarrow.csv, vectorised checks), with the same reads as
    :func:`_lines`; returns False, having collected nothing, unless every line is a good read in plain ASCII
    without stray blanks (then :func:`_lines` takes the block and names each problem)."""
    if out.erased is not None or len(set(names)) != len(names) or not all(item[2] for item in block):
        return False
    data = ("\n".join(item[1] for item in block) + "\n").encode()
    if not data.isascii():
        return False
    try:
        table = pacsv.read_csv(
            pa.py_buffer(data), parse_options=_CSV_PARSE,
            read_options=pacsv.ReadOptions(column_names=names, block_size=max(1 << 20, len(data) + 1)),
            convert_options=pacsv.ConvertOptions(column_types={name: pa.string() for name in COLUMNS},
                                                 include_columns=list(COLUMNS), strings_can_be_null=False))
    except pa.ArrowInvalid:
        return False
    if table.num_rows != len(block):
        return False
    col = {name: table.column(name).combine_chunks() for name in COLUMNS}

    def coded(name: str, check) -> pa.Array | None:
        """The column's values mapped by ``check`` (per distinct value; None: not a good value)."""
        encoded = col[name].dictionary_encode()
        mapped = []
        for text in encoded.dictionary.to_pylist():
            if text != text.strip():
                return None
            value = check(text)
            if value is None:
                return None
            mapped.append(value)
        return pa.array(mapped).take(encoded.indices)

    def fuel_of(text: str) -> str | None:
        fuel, problem = ids.meter_point_problem(text)
        return None if problem else fuel

    def instant(field: str):
        def parse_one(text: str) -> int | None:
            try:
                return timestamp(text, field)
            except RecordProblem:
                return None
        return parse_one

    fuel = coded("meter_point", fuel_of)
    registers = coded("register_id", lambda text: text if REGISTER_RE.fullmatch(text) else None)
    kinds = coded("read_kind", lambda text: text if text in ("interval", "register") else None)
    starts = coded("interval_start_utc", instant("interval_start_utc"))
    created = coded("created_utc", instant("created_utc"))
    quality = coded("quality", lambda text: text if text in schema.QUALITIES else None)
    serials = coded("meter_serial", lambda text: text)
    if any(a is None for a in (fuel, registers, kinds, starts, created, quality, serials)):
        return False
    if not pc.all(pc.match_substring_regex(col["value"], _DECIMAL)).as_py():
        return False
    value = pc.cast(col["value"], pa.float64())
    unit = col["unit"]
    start = starts.to_numpy()
    interval = pc.equal(kinds, "interval").to_numpy(zero_copy_only=False)
    in_time = np.where(interval, (start % PERIOD_US == 0) & (start + PERIOD_US <= now_us), start <= now_us)
    units = pc.or_(pc.equal(unit, "kWh"), pc.and_(pc.equal(unit, "m3"), pc.equal(fuel, "gas")))
    if not (in_time.all() and pc.all(units).as_py() and pc.all(pc.is_finite(value)).as_py()):
        return False
    lines = pa.array([item[0] for item in block], pa.int64())
    serial = pc.if_else(pc.equal(serials, ""), pa.scalar(None, pa.string()), serials)
    taken = out.read_block(meter_point=col["meter_point"], meter_serial=serial, fuel=fuel, register_id=registers,
                           read_kind=kinds, start_us=starts, value=value, unit=unit, quality=quality,
                           device_id=pa.nulls(len(block), pa.string()), version=created, line=lines)
    if taken:
        info.saw_instant(pc.max(created).as_py())
    return taken
