"""Reads on Kafka: the message contract in code (see the read model, :mod:`meterlake.schema`).

* A message's value is one Arrow IPC stream (:func:`meterlake.schema.to_ipc_bytes`): a :data:`SET_SCHEMA` table
  (interval reads packed as meter-days, the common case) or a :data:`READ_SCHEMA` table (register and device
  reads as rows).
* A message holds meter points of ONE partition only, the partition Kafka's default partitioner (murmur2) gives
  the meter point's UTF-8 bytes; its key is its first row's meter point. So every read of a meter is on one
  partition, in order, and a keyed producer and :func:`publish_reads` agree.
* About ``target_bytes`` (1 MiB) of Arrow data per message before compression: many meter-days a message.

:func:`publish_reads` is the producer side, :func:`decode_table` the consumer side: the ONE decoder of every
consumer (the mirror and the store), so both take or refuse the same messages. Decoding is tolerant the way the
schema's evolution rule allows (columns are only ever added, docs/lake.md): a field this version does not know is
dropped if it is nullable, a nullable field the message lacks is filled with nulls. A message of a *later* schema
version that this rule cannot read (a required column added, a column retyped or removed) raises
:class:`UpgradeRequired`: the consumer stops without committing, and reads it once it is upgraded, so neither the
lake nor Cassandra skips what the other holds. Anything else this version cannot read (not Arrow IPC, not one of
our schemas, a column retyped or removed or nulls where the schema forbids them at this version or an earlier one:
a broken producer, not a newer one) raises :class:`IncompatibleMessage`, which consumers send to the quarantine
topic and commit past.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from kafka.partitioner.default import murmur2

from meterlake import calendar as cal
from meterlake import schema
from meterlake.errors import MeterlakeError

DEFAULT_TARGET_BYTES = 1 << 20


class IncompatibleMessage(ValueError):
    """A message no version can read as the read model (quarantined); the message says why in a few words."""


class UpgradeRequired(MeterlakeError):
    """A message of a later schema version that this version cannot read: stop, upgrade, then consume it."""


def partition_for(meter_point: bytes | str, partitions: int) -> int:
    """The partition Kafka's default partitioner (and kafka-python's) gives the key ``meter_point``."""
    key = meter_point.encode() if isinstance(meter_point, str) else meter_point
    if partitions < 1:
        raise ValueError(f"partitions must be at least 1, got {partitions}")
    return (murmur2(key) & 0x7FFFFFFF) % partitions


def partitions_of(meter_points: pa.Array | pa.ChunkedArray, partitions: int) -> np.ndarray:
    """:func:`partition_for` of every meter point of a string column (hashing each distinct value once)."""
    encoded = pc.dictionary_encode(meter_points)
    if isinstance(encoded, pa.ChunkedArray):
        encoded = encoded.combine_chunks()
    table = np.array([partition_for(v, partitions) for v in encoded.dictionary.to_pylist()], dtype=np.int64)
    return table[np.asarray(encoded.indices.to_numpy(zero_copy_only=False), dtype=np.int64)]


@dataclass
class Published:
    """What :func:`publish_reads` sent: messages and rows (sets or reads) per partition."""

    messages: int = 0
    rows: dict[int, int] = field(default_factory=dict)
    bytes: int = 0


def _messages(table: pa.Table, partitions: int, target_bytes: int):
    """``(partition, key, slice)`` for the rows of ``table``, one partition per slice, in row order within it."""
    if table.num_rows == 0:
        return
    parts = partitions_of(table.column("meter_point"), partitions)
    order = np.argsort(parts, kind="stable")
    sorted_parts = parts[order]
    table = table.take(pa.array(order))
    bounds = np.flatnonzero(np.diff(sorted_parts)) + 1
    starts = np.concatenate([[0], bounds])
    ends = np.concatenate([bounds, [len(order)]])
    per_row = max(1, table.nbytes // max(1, table.num_rows))
    rows_per_message = max(1, target_bytes // per_row)
    for start, end in zip(starts.tolist(), ends.tolist(), strict=True):
        p = int(sorted_parts[start])
        for at in range(start, end, rows_per_message):
            piece = table.slice(at, min(rows_per_message, end - at))
            yield p, piece.column("meter_point")[0].as_py(), piece


def publish_reads(producer, topic: str, table: pa.Table | pa.RecordBatch, partitions: int,
                  target_bytes: int = DEFAULT_TARGET_BYTES, *, flush: bool = True) -> Published:
    """Publish reads to ``topic`` by the contract; returns what was sent.

    ``table`` is a :data:`READ_SCHEMA` table (interval reads are packed into sets, the others travel as rows) or a
    :data:`SET_SCHEMA` table (sent as it is). ``partitions`` is the topic's partition count. With ``flush`` the
    call returns once the broker acknowledged every message, and raises the first send error.
    """
    if isinstance(table, pa.RecordBatch):
        table = pa.Table.from_batches([table])
    name = schema.schema_name(table.schema)
    if name == "read":
        interval = pc.equal(table.column("read_kind"), "interval")
        groups = [schema.pack_table(table.filter(interval)), table.filter(pc.invert(interval))]
    elif name == "set":
        groups = [table]
    else:
        raise ValueError(f"publish_reads takes read or set tables, not {name or 'a foreign schema'}")
    out, futures = Published(), []
    for group in groups:
        for p, key, piece in _messages(group, partitions, target_bytes):
            value = schema.to_ipc_bytes(piece)
            futures.append(producer.send(topic, key=key.encode(), value=value, partition=p))
            out.messages += 1
            out.bytes += len(value)
            out.rows[p] = out.rows.get(p, 0) + piece.num_rows
    if flush:
        producer.flush()
        for future in futures:
            future.get(timeout=0)  # raises the send error, if any
    return out


# ------------------------------------------------------------------------------------------------ decoding


def conform(table: pa.Table, expected: pa.Schema) -> pa.Table:
    """``table`` with exactly ``expected``'s columns, by the evolution rule (see the module docstring).

    Raises :class:`IncompatibleMessage`.
    """
    present = set(table.schema.names)
    for f in table.schema:
        if expected.get_field_index(f.name) < 0 and not f.nullable:
            raise IncompatibleMessage(f"required column {f.name!r} ({f.type}) is unknown to schema version "
                                      f"{schema.SCHEMA_VERSION}")
    arrays = []
    for f in expected:
        if f.name not in present:
            if not f.nullable:
                raise IncompatibleMessage(f"column {f.name!r} is missing")
            arrays.append(pa.nulls(table.num_rows, f.type))
            continue
        column = table.column(f.name)
        if column.type != f.type:
            raise IncompatibleMessage(f"column {f.name!r} is {column.type}, expected {f.type}")
        if not f.nullable and column.null_count:
            raise IncompatibleMessage(f"column {f.name!r} has {column.null_count} null(s)")
        arrays.append(column)
    return pa.Table.from_arrays(arrays, schema=expected)


def _check_periods(sets: pa.Table) -> None:
    days = pc.unique(sets.column("settlement_date")).to_pylist()
    counts = pa.array([cal.periods_in_day(d) for d in days], pa.int8())
    expected = pc.take(counts, pc.index_in(sets.column("settlement_date"), value_set=pa.array(days, pa.date32())))
    wrong = pc.not_equal(sets.column("periods"), expected)
    if pc.any(wrong).as_py():
        row = sets.filter(wrong).slice(0, 1).to_pylist()[0]
        raise IncompatibleMessage(f"a set of {row['settlement_date']} has {row['periods']} periods; the day has "
                                  f"{cal.periods_in_day(row['settlement_date'])}")


def decode(value: bytes) -> pa.Table:
    """The reads of one message as a :data:`READ_SCHEMA` table (a set table is unpacked, one row per read).

    Raises :class:`IncompatibleMessage` for a message this version cannot read.
    """
    name, table = decode_table(value)
    return unpack(table) if name == "set" else table


def unpack(sets: pa.Table) -> pa.Table:
    """:func:`meterlake.schema.unpack` of a conformed set table (see :func:`decode_table`)."""
    try:
        return schema.unpack(sets)
    except ValueError as exc:
        raise IncompatibleMessage(f"a set does not unpack: {exc}") from None


#: The tables a message may hold, by schema name: the reads topics carry sets and reads, the quarantine topic
#: quarantine records (only the store consumes it).
READS = {"read": schema.READ_SCHEMA, "set": schema.SET_SCHEMA}
WITH_QUARANTINE = {**READS, "quarantine": schema.QUARANTINE_SCHEMA}


def decode_table(value: bytes, kinds: dict[str, pa.Schema] = READS) -> tuple[str, pa.Table]:
    """``(name, table)``: the message's table as sent (``set`` or ``read``, or another of ``kinds``), conformed
    to this version's schema but not unpacked. Raises :class:`IncompatibleMessage` or
    :class:`UpgradeRequired` (see the module docstring)."""
    try:
        table = pa.ipc.open_stream(pa.py_buffer(value)).read_all()
    except (pa.ArrowInvalid, pa.ArrowTypeError, OSError) as exc:
        raise IncompatibleMessage(f"not an Arrow IPC stream: {exc}") from None
    name = schema.schema_name(table.schema)
    expected = kinds.get(name or "")
    if expected is None:
        raise IncompatibleMessage(f"schema {name!r} is not a {' or '.join(kinds)} table" if name
                                  else "not a meterlake message (no meterlake.schema in its schema metadata)")
    try:
        table = conform(table, expected)
    except IncompatibleMessage as exc:
        version = schema.schema_version(table.schema)
        if version is not None and version > schema.SCHEMA_VERSION:
            raise UpgradeRequired(f"a message of schema version {version} that version {schema.SCHEMA_VERSION} "
                                  f"cannot read ({exc}): upgrade this consumer", schema_version=version) from None
        raise
    if name == "set":
        _check_periods(table)
    return name, table
