"""THE read model: one versioned Arrow schema for a meter read, the quarantine schema, and the packed
"event stream set" that carries a meter's half-hourly reads for one settlement day as one unit.

Column names are a public contract: the lake's Parquet files, Kafka messages, Cassandra rows, dbt models and
notebooks derive from :data:`READ_SCHEMA`. Evolution: columns are only ever added (never renamed, retyped or
removed), and each addition bumps :data:`SCHEMA_VERSION`, which travels in every schema's metadata. Consumers of
Kafka messages read a newer version by the rule of :func:`streaming.kafka_io.decode_table` (the one decoder);
:func:`from_ipc_bytes` is the strict reader for tools, refusing anything newer.

Grain of :data:`READ_SCHEMA`: one row per read, i.e. per (meter_point, meter_serial, register_id, read_kind,
interval_start_utc, device_id, unit) and ``source_version``.

``read_kind``
    ``interval``: energy in the half-hour starting at ``interval_start_utc`` (on the 30-minute grid);
    ``register``: a cumulative register reading taken at ``interval_start_utc``;
    ``device``: an event from a device (``unit`` W for instantaneous power, Wh for a cumulative energy
    counter).
``source_file``, ``source_line``, ``device_id``
    Lineage: the file (its name) and 1-based line a read came from; ``device_id`` for device events and null
    for reads from meter files. A device event that did not arrive in a file has null ``source_file`` and
    ``source_line``; device events read from a JSON-lines file keep both.
``source_version``
    Taken from the data, never from the wall clock: microseconds since the epoch of the source's creation
    instant (e.g. the D0010 ZHV file creation date-time) plus a sequence below one second (e.g. the file
    identifier), see :func:`source_version`. A later version of the same read supersedes an earlier one; the
    store writes with ``USING TIMESTAMP source_version``, so replays change nothing.
``file_id``, ``batch_id``
    TimeUUIDs (RFC 4122 version 1 layout) derived from the source (its creation instant and a digest of its
    bytes), so a replayed file gets the same ids: see :func:`file_id` and :func:`batch_id`.
``settlement_date``, ``settlement_period``
    Computed from ``interval_start_utc`` by :func:`meterlake.calendar.locate_arrow` (for register and device
    reads, the period containing the read time).

The event stream set (:data:`SET_SCHEMA`): the interval reads of one meter point, serial, register and unit
for one settlement day, from one source version (and file), packed into ``values`` and ``qualities`` lists of
length ``periods`` (46, 48 or 50), null where the day has no read. 48M reads a day are 1M sets: the unit of
a Kafka message's rows (many sets per Arrow IPC message, :func:`to_ipc_bytes`) and of a Cassandra row. Only
interval reads are packed; register and device reads travel as rows. Packing drops ``source_line`` (the raw
file, kept in the lake's raw area, has it): :func:`unpack` gives null ``source_line``.
"""
from __future__ import annotations

import io
import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from meterlake import calendar as cal

SCHEMA_VERSION = 2  # 2: the quarantine schema's meter_point and settlement_date
_VERSION_KEY = b"meterlake.schema_version"
_NAME_KEY = b"meterlake.schema"

FUELS = ("electricity", "gas")
READ_KINDS = ("interval", "register", "device")
UNITS = ("kWh", "Wh", "W", "m3")
QUALITIES = ("actual", "estimated", "customer", "suspect", "withdrawn")

#: Record-level problems: the record goes to quarantine (file, line, field, reason, detail, raw).
QUARANTINE_REASONS: dict[str, str] = {
    "malformed_line": "the line cannot be split into the format's fields (wrong field count, invalid JSON)",
    "missing_value": "a required field (the value, a meter point, a device id) is empty",
    "non_numeric_value": "the value is not a finite number",
    "bad_meter_point": "the meter point is not an MPAN core, MPRN or LCL household id by shape",
    "bad_mpan_check_digit": "the MPAN core's check digit is wrong",
    "unknown_register": "the register id is not 1-2 upper-case letters or digits",
    "unknown_unit": "the unit is not one of kWh, m3 (gas) for the fuel",
    "unknown_quality": "the quality is not one of actual, estimated, customer, suspect, withdrawn",
    "unknown_read_kind": "the read kind is not interval or register",
    "bad_timestamp": "the timestamp cannot be parsed, has no UTC offset, or does not exist in UK local time",
    "off_grid_timestamp": "an interval read's timestamp is not on the half-hour grid",
    "future_timestamp": "the read ends after the validation instant ('now')",
    "conflicting_duplicate": "a read with the same key and a different value came earlier in the file",
    "orphan_group": "a D0010 030 register read without a preceding 026 MPAN and 028 meter group",
    "unknown_group": "a D0010 record type that the flow does not define",
}

#: File-level problems: the whole file is rejected and nothing from it is published.
REJECTION_REASONS: dict[str, str] = {
    "unknown_format": "the format cannot be recognised from the file's first line",
    "unreadable_encoding": "the file is not UTF-8 text (or is binary, or a damaged gzip stream)",
    "empty_file": "the file has no lines",
    "bad_header": "the header (CSV column names, D0010 ZHV) is missing or malformed",
    "unknown_flow": "the ZHV header names a flow other than D0010",
    "truncated_file": "the file ends early (no ZPT trailer, an unterminated last record, a cut gzip stream)",
    "trailer_count_mismatch": "the ZPT trailer's group count differs from the groups in the file",
    "trailer_file_id_mismatch": "the ZPT trailer's file identifier differs from the ZHV header's",
    "data_after_trailer": "records follow the ZPT trailer",
}


def _meta(name: str) -> dict[bytes, bytes]:
    return {_NAME_KEY: name.encode(), _VERSION_KEY: str(SCHEMA_VERSION).encode()}


TIMESTAMP = pa.timestamp("us", tz="UTC")

READ_SCHEMA = pa.schema(
    [
        pa.field("meter_point", pa.string(), nullable=False),
        pa.field("meter_serial", pa.string()),
        pa.field("fuel", pa.string(), nullable=False),
        pa.field("register_id", pa.string()),
        pa.field("read_kind", pa.string(), nullable=False),
        pa.field("interval_start_utc", TIMESTAMP, nullable=False),
        pa.field("settlement_date", pa.date32(), nullable=False),
        pa.field("settlement_period", pa.int8(), nullable=False),
        pa.field("value", pa.float64(), nullable=False),
        pa.field("unit", pa.string(), nullable=False),
        pa.field("quality", pa.string(), nullable=False),
        pa.field("source_file", pa.string()),
        pa.field("source_line", pa.int64()),
        pa.field("device_id", pa.string()),
        pa.field("source_version", pa.int64(), nullable=False),
        pa.field("file_id", pa.string()),
        pa.field("batch_id", pa.string()),
    ],
    metadata=_meta("read"),
)
READ_COLUMNS = tuple(READ_SCHEMA.names)

QUARANTINE_SCHEMA = pa.schema(
    [
        pa.field("source_file", pa.string(), nullable=False),
        pa.field("source_line", pa.int64()),
        pa.field("field", pa.string()),
        pa.field("reason", pa.string(), nullable=False),
        pa.field("detail", pa.string()),
        pa.field("raw", pa.string()),
        # where the record says (null where it does not): the data-quality job counts a meter-day's rejected lines
        pa.field("meter_point", pa.string()),
        pa.field("settlement_date", pa.date32()),
    ],
    metadata=_meta("quarantine"),
)

# The key of a set, in order; a set is also tied to the file and batch it came from.
SET_KEY = ("meter_point", "meter_serial", "fuel", "register_id", "unit", "settlement_date", "source_version")
_SET_LINEAGE = ("source_file", "file_id", "batch_id")

SET_SCHEMA = pa.schema(
    [READ_SCHEMA.field(name) for name in SET_KEY]
    + [
        pa.field("periods", pa.int8(), nullable=False),
        pa.field("values", pa.list_(pa.float64()), nullable=False),
        pa.field("qualities", pa.list_(pa.string()), nullable=False),
    ]
    + [READ_SCHEMA.field(name) for name in _SET_LINEAGE],
    metadata=_meta("set"),
)

# ------------------------------------------------------------------------------------------- versions and ids

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_SEQUENCE_LIMIT = 1_000_000
# 100-ns intervals from the start of the Gregorian calendar (1582-10-15) to the Unix epoch
_UUID_EPOCH_TICKS = 0x01B21DD213814000


def epoch_us(instant: datetime) -> int:
    """Microseconds since the Unix epoch of a timezone-aware instant."""
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise ValueError(f"naive datetime {instant.isoformat()}: give a timezone")
    return (instant - _EPOCH) // timedelta(microseconds=1)


def from_epoch_us(us: int) -> datetime:
    return _EPOCH + timedelta(microseconds=int(us))


def source_version(created: datetime, sequence: int = 0) -> int:
    """A source version: microseconds since the epoch of ``created`` (taken from the data) plus ``sequence``.

    ``sequence`` (0 to 999,999, e.g. a flow's file identifier modulo 10**6) orders sources created within the
    same second; it must stay below one second so a source created later always has a higher version.
    """
    if not 0 <= sequence < _SEQUENCE_LIMIT:
        raise ValueError(f"sequence must be in [0, {_SEQUENCE_LIMIT}), got {sequence}")
    return epoch_us(created) + sequence


def time_uuid(us: int, node: int, clock_seq: int, ticks: int = 0) -> uuid.UUID:
    """A version-1 UUID (a Cassandra ``timeuuid``) for the instant ``us`` (+ ``ticks`` of 100 ns).

    Deterministic: the same arguments give the same UUID (unlike :func:`uuid.uuid1`, which reads the clock).
    """
    t = us * 10 + ticks + _UUID_EPOCH_TICKS
    if not 0 <= t < 1 << 60:
        raise ValueError(f"instant {us} us is outside the TimeUUID range")
    time_low = t & 0xFFFFFFFF
    time_mid = (t >> 32) & 0xFFFF
    time_hi_version = ((t >> 48) & 0x0FFF) | 0x1000
    clock_seq &= 0x3FFF
    return uuid.UUID(fields=(time_low, time_mid, time_hi_version, (clock_seq >> 8) | 0x80, clock_seq & 0xFF,
                             node & 0xFFFFFFFFFFFF))


def _node_and_seq(digest: bytes) -> tuple[int, int]:
    if len(digest) < 8:
        raise ValueError("digest must have at least 8 bytes")
    # the multicast bit marks a node that is not a network card's address (RFC 4122, section 4.5)
    node = int.from_bytes(digest[:6], "big") | 0x010000000000
    return node, int.from_bytes(digest[6:8], "big") & 0x3FFF


def file_id(created_us: int, digest: bytes) -> str:
    """The TimeUUID of a source file: its creation instant and a digest of its bytes (e.g. SHA-256).

    The same bytes created at the same instant always give the same id; an identical copy under another name
    gets the same id too, which is how a duplicate file is recognised.
    """
    node, seq = _node_and_seq(digest)
    return str(time_uuid(created_us, node, seq))


def batch_id(created_us: int, digest: bytes, index: int) -> str:
    """The TimeUUID of the ``index``-th batch (from 0) cut from the file of :func:`file_id`."""
    node, seq = _node_and_seq(digest)
    return str(time_uuid(created_us, node, seq, ticks=index + 1))


def uuid_time(value: str | uuid.UUID) -> datetime:
    """The instant (to the microsecond) of a version-1 UUID."""
    u = value if isinstance(value, uuid.UUID) else uuid.UUID(value)
    if u.version != 1:
        raise ValueError(f"{u} is not a version-1 (time) UUID")
    return from_epoch_us((u.time - _UUID_EPOCH_TICKS) // 10)


# ---------------------------------------------------------------------------------------------------- reads


def _column(value: Any, n: int, type_: pa.DataType) -> pa.Array:
    if isinstance(value, pa.ChunkedArray):
        value = value.combine_chunks()
    if isinstance(value, pa.Array):
        array = value if value.type == type_ else value.cast(type_)
    elif isinstance(value, np.ndarray) or (isinstance(value, Sequence) and not isinstance(value, str)):
        array = pa.array(value, type=type_)
    else:
        return pa.nulls(n, type_) if value is None else pa.array([value] * n, type=type_)
    if len(array) != n:
        raise ValueError(f"column of length {len(array)}, expected {n}")
    return array


def build_reads(**columns: Any) -> pa.RecordBatch:
    """A :data:`READ_SCHEMA` batch from columns (sequences, arrays, or scalars repeated down the column).

    ``interval_start_utc`` may be datetimes, a timestamp array, or integers (microseconds since the epoch);
    ``settlement_date`` and ``settlement_period`` are computed from it and must not be given. Columns left
    out are null. The length is that of ``interval_start_utc``.
    """
    for computed in ("settlement_date", "settlement_period"):
        if computed in columns:
            raise ValueError(f"{computed} is computed from interval_start_utc; do not pass it")
    unknown = set(columns) - set(READ_COLUMNS)
    if unknown:
        raise ValueError(f"unknown read columns: {sorted(unknown)}")
    starts = columns["interval_start_utc"]
    if isinstance(starts, pa.ChunkedArray):
        starts = starts.combine_chunks()
    if isinstance(starts, pa.Array):
        integers = pa.types.is_integer(starts.type)
        ts = starts.cast(pa.int64()).view(TIMESTAMP) if integers else starts.cast(TIMESTAMP)
    else:
        items = list(starts)
        if items and isinstance(items[0], datetime):
            ts = pa.array(items, type=TIMESTAMP)
        else:
            ts = pa.array(items, type=pa.int64()).view(TIMESTAMP)
    n = len(ts)
    dates, periods = cal.locate_arrow(ts)
    arrays = []
    for field in READ_SCHEMA:
        if field.name == "interval_start_utc":
            arrays.append(ts)
        elif field.name == "settlement_date":
            arrays.append(dates)
        elif field.name == "settlement_period":
            arrays.append(periods)
        else:
            arrays.append(_column(columns.get(field.name), n, field.type))
    return pa.RecordBatch.from_arrays(arrays, schema=READ_SCHEMA)


def empty_reads() -> pa.Table:
    return READ_SCHEMA.empty_table()


def validate_reads(table: pa.Table | pa.RecordBatch) -> None:
    """Raise ValueError unless ``table`` has :data:`READ_SCHEMA`'s columns and types, no nulls where the
    contract says not null, and only known fuels and read kinds."""
    names = tuple(table.schema.names)
    if names != READ_COLUMNS:
        raise ValueError(f"columns {names} differ from the read schema's {READ_COLUMNS}")
    for field in READ_SCHEMA:
        column = table.column(field.name)
        if column.type != field.type:
            raise ValueError(f"column {field.name} is {column.type}, expected {field.type}")
        if not field.nullable and column.null_count:
            raise ValueError(f"column {field.name} has {column.null_count} null(s)")
    for name, allowed in (("fuel", FUELS), ("read_kind", READ_KINDS)):
        bad = pc.invert(pc.is_in(table.column(name), value_set=pa.array(allowed)))
        if pc.any(bad).as_py():
            raise ValueError(f"column {name} has values outside {allowed}")


def quarantine_batch(rows: Sequence[Mapping[str, Any]]) -> pa.RecordBatch:
    """A :data:`QUARANTINE_SCHEMA` batch from dicts with its column names."""
    return pa.RecordBatch.from_pylist(list(rows), schema=QUARANTINE_SCHEMA)


# ------------------------------------------------------------------------------------------------- packing


def _as_table(data: pa.Table | pa.RecordBatch | Iterable[pa.RecordBatch]) -> pa.Table:
    if isinstance(data, pa.Table):
        return data
    if isinstance(data, pa.RecordBatch):
        return pa.Table.from_batches([data])
    return pa.Table.from_batches(list(data), schema=READ_SCHEMA)


def differs_from_previous(column: pa.Array) -> np.ndarray:
    """For rows 1..n-1 of a sorted column: does the row differ from the one before? (Nulls equal nulls.)"""
    a, b = column.slice(1), column.slice(0, len(column) - 1)
    ne = pc.fill_null(pc.not_equal(a, b), False)
    either_null = pc.xor(a.is_null(), b.is_null())
    return np.asarray(pc.or_(ne, either_null).to_numpy(zero_copy_only=False), dtype=bool)


def _periods_per_day(days: np.ndarray) -> np.ndarray:
    counts = {int(d): cal.periods_in_day(date(1970, 1, 1) + timedelta(days=int(d))) for d in np.unique(days)}
    return np.array([counts[int(d)] for d in days], dtype=np.int64)


def pack_table(reads: pa.Table | pa.RecordBatch) -> pa.Table:
    """Pack interval reads into event stream sets (:data:`SET_SCHEMA`), one per set key and lineage.

    Raises ValueError for a non-interval read, or for two reads of the same set and period (the ingest drops
    exact duplicates and quarantines conflicting ones, so its output never has them).
    """
    table = _as_table(reads)
    if table.num_rows == 0:
        return SET_SCHEMA.empty_table()
    kinds = pc.unique(table.column("read_kind")).to_pylist()
    if kinds != ["interval"]:
        raise ValueError(f"only interval reads are packed; got read kinds {kinds}")
    group_cols = SET_KEY + _SET_LINEAGE
    order = pc.sort_indices(table, sort_keys=[(c, "ascending") for c in group_cols + ("settlement_period",)])
    t = table.take(order).combine_chunks()
    n = t.num_rows
    new = np.zeros(n, dtype=bool)
    new[0] = True
    for name in group_cols:
        new[1:] |= differs_from_previous(t.column(name).chunk(0))
    periods = np.asarray(t.column("settlement_period").to_numpy(), dtype=np.int64)
    repeated = ~new[1:] & (periods[1:] == periods[:-1])
    if repeated.any():
        i = int(np.argmax(repeated)) + 1
        row = t.slice(i, 1).to_pylist()[0]
        raise ValueError(f"two reads for the same set and period: {row['meter_point']} {row['register_id']} "
                         f"{row['settlement_date']} period {row['settlement_period']}")
    starts = np.flatnonzero(new)
    group = np.cumsum(new) - 1
    days = np.asarray(t.column("settlement_date").cast(pa.int32()).to_numpy(), dtype=np.int64)
    lengths = _periods_per_day(days[starts])
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    slot = offsets[group] + periods - 1
    total = int(offsets[-1])
    values = np.zeros(total, dtype=np.float64)
    present = np.zeros(total, dtype=bool)
    values[slot] = np.asarray(t.column("value").to_numpy(), dtype=np.float64)
    present[slot] = True
    qualities = np.full(total, None, dtype=object)
    qualities[slot] = np.asarray(t.column("quality").to_numpy(zero_copy_only=False), dtype=object)
    list_offsets = pa.array(offsets, type=pa.int32())
    keys = t.take(pa.array(starts))
    arrays = []
    for field in SET_SCHEMA:
        if field.name == "periods":
            arrays.append(pa.array(lengths, type=pa.int8()))
        elif field.name == "values":
            arrays.append(pa.ListArray.from_arrays(list_offsets, pa.array(values, mask=~present)))
        elif field.name == "qualities":
            arrays.append(pa.ListArray.from_arrays(list_offsets, pa.array(qualities, type=pa.string())))
        else:
            arrays.append(keys.column(field.name).combine_chunks())
    return pa.Table.from_arrays(arrays, schema=SET_SCHEMA)


def pack(reads: pa.Table | pa.RecordBatch) -> list[dict]:
    """:func:`pack_table` as plain records: ``meter_point, ..., settlement_date, source_version, periods,
    values, qualities, source_file, file_id, batch_id``."""
    return pack_table(reads).to_pylist()


def set_values(sets: pa.Table) -> tuple[np.ndarray, np.ndarray, pa.Array, np.ndarray]:
    """The values of event stream sets (:data:`SET_SCHEMA`, one chunk), flat in set order, as
    ``(lengths, position, values, present)``: each set's number of values, each value's 0-based place in its set
    (its period less one), the values, and whether each is present (not null)."""
    values_list = sets.column("values").chunk(0)
    lengths = np.asarray(pc.list_value_length(values_list).to_numpy(zero_copy_only=False), dtype=np.int64)
    position = np.arange(int(lengths.sum())) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    flat_values = values_list.flatten()
    present = np.asarray(flat_values.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
    return lengths, position, flat_values, present


def _spread(column: pa.Array, rows: pa.Array) -> pa.Array:
    """``column.take(rows)``; a column of one value (or all null), as most of a set's columns are, is repeated
    instead of gathered (a few times faster for strings)."""
    if len(column) and column.null_count == len(column):
        return pa.nulls(len(rows), column.type)
    if len(column) and not column.null_count and pc.all(pc.equal(column, column[0])).as_py():
        return pa.repeat(column[0], len(rows))
    return column.take(rows)


def unpack(sets: pa.Table | pa.RecordBatch | Sequence[Mapping[str, Any]]) -> pa.Table:
    """The reads of event stream sets (:data:`READ_SCHEMA`), one row per non-null value, in set order.

    ``source_line`` and ``device_id`` are null; ``read_kind`` is ``interval``.
    """
    if isinstance(sets, pa.RecordBatch):
        sets = pa.Table.from_batches([sets])
    elif not isinstance(sets, pa.Table):
        sets = pa.Table.from_pylist(list(sets), schema=SET_SCHEMA)
    if sets.num_rows == 0:
        return empty_reads()
    sets = sets.combine_chunks()
    lengths, position, flat_values, keep = set_values(sets)
    declared = np.asarray(sets.column("periods").to_numpy(), dtype=np.int64)
    if (lengths != declared).any():
        raise ValueError("a set's values list is not as long as its periods")
    parent = np.repeat(np.arange(len(lengths)), lengths)
    flat_qualities = sets.column("qualities").chunk(0).flatten()
    every = bool(keep.all())  # the usual case: no missing value, so nothing to filter
    rows = pa.array(parent if every else parent[keep])
    period = pa.array((position[keep] + 1).astype(np.int8))
    dates = sets.column("settlement_date").chunk(0).take(rows)
    starts = cal.period_start_arrow(dates, period)
    keep_mask = pa.array(keep)
    arrays = []
    for field in READ_SCHEMA:
        name = field.name
        if name == "interval_start_utc":
            arrays.append(starts)
        elif name == "settlement_date":
            arrays.append(dates)
        elif name == "settlement_period":
            arrays.append(period)
        elif name == "value":
            arrays.append(flat_values if every else flat_values.filter(keep_mask))
        elif name == "quality":
            arrays.append(flat_qualities if every else flat_qualities.filter(keep_mask))
        elif name == "read_kind":
            arrays.append(pa.repeat(pa.scalar("interval", pa.string()), len(rows)))
        elif name in SET_SCHEMA.names:
            arrays.append(_spread(sets.column(name).chunk(0), rows))
        else:
            arrays.append(pa.nulls(len(rows), field.type))
    return pa.Table.from_arrays(arrays, schema=READ_SCHEMA)


# ---------------------------------------------------------------------------------------------- Arrow IPC


def to_ipc_bytes(table: pa.Table | pa.RecordBatch, compression: str | None = "zstd") -> bytes:
    """One Arrow IPC stream (e.g. one Kafka message) holding ``table``; the schema keeps its version metadata.

    Use it for many sets at once (:data:`SET_SCHEMA`), or rows of reads or quarantine records.
    """
    if isinstance(table, pa.RecordBatch):
        table = pa.Table.from_batches([table])
    if _VERSION_KEY not in (table.schema.metadata or {}):
        raise ValueError("not a meterlake schema (no meterlake.schema_version in its metadata)")
    sink = io.BytesIO()
    options = pa.ipc.IpcWriteOptions(compression=compression)
    with pa.ipc.new_stream(sink, table.schema, options=options) as writer:
        writer.write_table(table)
    return sink.getvalue()


def from_ipc_bytes(data: bytes) -> pa.Table:
    """The table of :func:`to_ipc_bytes`. Raises ValueError for data of a newer schema version or not ours."""
    table = pa.ipc.open_stream(pa.py_buffer(data)).read_all()
    version = (table.schema.metadata or {}).get(_VERSION_KEY)
    if version is None:
        raise ValueError("not a meterlake message (no meterlake.schema_version in its schema metadata)")
    if int(version) > SCHEMA_VERSION:
        raise ValueError(f"written with schema version {int(version)}; "
                         f"this meterlake reads up to {SCHEMA_VERSION}")
    return table


def schema_version(schema: pa.Schema) -> int | None:
    """The schema version a table was written with (its metadata), or None when it carries none."""
    value = (schema.metadata or {}).get(_VERSION_KEY)
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def schema_name(schema: pa.Schema) -> str | None:
    """``read``, ``quarantine`` or ``set`` for one of our schemas, else None."""
    value = (schema.metadata or {}).get(_NAME_KEY)
    return value.decode() if value else None
