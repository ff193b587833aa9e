"""Kafka messages to lake rows: the mirror's pure transform (no broker, no files).

Grain of the output (:data:`LAKE_SCHEMA`): one row per read of a message, i.e. the read model's columns
(:data:`meterlake.schema.READ_SCHEMA`, a set message unpacked to one row per half-hour) plus the Kafka topic,
partition and offset the read came from. ``settlement_date`` and ``settlement_period`` are stamped here, at write
time, from ``interval_start_utc`` by :func:`meterlake.calendar.locate_arrow` (whatever the message carried).
Meter points, meter serials and device ids are replaced by their pseudonyms (:mod:`meterlake.pseudonym`): the lake
never holds them in clear.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass, field
from datetime import date, timedelta

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from meterlake import calendar as cal
from meterlake import schema
from meterlake.lake.schema import LAKE_SCHEMA
from meterlake.pseudonym import Pseudonymiser
from streaming import kafka_io


@dataclass(frozen=True)
class Message:
    """The parts of a Kafka record the mirror uses (``timestamp`` in ms since the epoch, the record time)."""

    topic: str
    partition: int
    offset: int
    value: bytes
    timestamp: int = 0

    @classmethod
    def of(cls, record) -> Message:
        """From a kafka-python ``ConsumerRecord``."""
        return cls(record.topic, record.partition, record.offset, record.value, record.timestamp or 0)


@dataclass
class Converted:
    """Rows for the lake and the messages refused (as quarantine records)."""

    table: pa.Table
    quarantine: list[dict] = field(default_factory=list)


def stamp(reads: pa.Table) -> pa.Table:
    """``reads`` with ``settlement_date`` and ``settlement_period`` computed from ``interval_start_utc``."""
    dates, periods = cal.locate_arrow(reads.column("interval_start_utc"))
    reads = reads.set_column(reads.schema.get_field_index("settlement_date"), schema.READ_SCHEMA.field(
        "settlement_date"), dates)
    return reads.set_column(reads.schema.get_field_index("settlement_period"), schema.READ_SCHEMA.field(
        "settlement_period"), periods)


def with_kafka(reads: pa.Table, topic: str, partition: int, offset: int) -> pa.Table:
    n = reads.num_rows
    arrays = list(reads.columns) + [
        pa.repeat(pa.scalar(topic, pa.string()), n),
        pa.array(np.full(n, partition, dtype=np.int32)),
        pa.array(np.full(n, offset, dtype=np.int64)),
    ]
    return pa.Table.from_arrays(arrays, schema=LAKE_SCHEMA)


def quarantine_record(message: Message, reason: str) -> dict:
    """A :data:`~meterlake.schema.QUARANTINE_SCHEMA` record for a message the mirror cannot read."""
    return {"source_file": f"kafka:{message.topic}/{message.partition}/{message.offset}",
            "source_line": message.offset, "field": None, "reason": "incompatible_message", "detail": reason,
            "raw": None}


def _by_date(table: pa.Table) -> pa.Table:
    if table.num_rows < 2:
        return table
    days = table.column("settlement_date").cast(pa.int32()).to_numpy()
    if (days[1:] >= days[:-1]).all():  # as producers send them: nothing to move
        return table
    return table.take(pc.sort_indices(table.column("settlement_date")))  # stable


@dataclass(frozen=True)
class Decoded:
    """One message checked and pseudonymised, not yet unpacked: ``table`` is a set table (``name`` ``set``,
    a meter-day a row) or a read table (``read``); ``rows`` is how many lake rows it makes."""

    message: Message
    name: str
    table: pa.Table
    rows: int

    @functools.cached_property
    def nbytes(self) -> int:
        """The bytes its rows take as lake rows (:func:`rows_of`): what the mirror holds when it writes them. A
        set table is a few dozen times smaller than its reads unpacked; its first set is unpacked to measure."""
        if self.rows == 0:
            return self.table.nbytes
        sample = self.table.slice(0, 1) if self.name == "set" else self.table.slice(0, min(self.table.num_rows, 64))
        sample_rows = rows_of(Decoded(self.message, self.name, sample, 0))
        if sample_rows.num_rows == 0:
            return self.table.nbytes
        per_row = sample_rows.nbytes / sample_rows.num_rows
        return max(self.table.nbytes, int(per_row * self.rows))


def decode(message: Message, pseudonyms: Pseudonymiser) -> Decoded:
    """Check one message and pseudonymise its identifiers: everything that can refuse it, and cheap (a set
    message is worked on once per meter-day, not per read). Raises
    :class:`~streaming.kafka_io.IncompatibleMessage`."""
    name, table = kafka_io.decode_table(message.value)
    table = pseudonyms.table(table)
    if name == "set":
        values = table.column("values")
        if not pc.all(pc.equal(pc.list_value_length(values), table.column("periods"))).as_py():
            raise kafka_io.IncompatibleMessage("a set does not unpack: a set's values list is not as long as its "
                                               "periods")
        flat = pc.list_flatten(values)
        rows = len(flat) - flat.null_count
    else:
        rows = table.num_rows
    return Decoded(message, name, table, rows)


def check(message: Message, pseudonyms: Pseudonymiser) -> Decoded | dict:
    """:func:`decode`, or the quarantine record of a message it refuses (:func:`quarantine_record`)."""
    try:
        return decode(message, pseudonyms)
    except kafka_io.UpgradeRequired as exc:  # not quarantined: the mirror stops before committing it
        raise kafka_io.UpgradeRequired(f"kafka:{message.topic}/{message.partition}/{message.offset}: "
                                       f"{exc.message}", **exc.details) from None
    except kafka_io.IncompatibleMessage as exc:
        return quarantine_record(message, str(exc))


def rows_of(decoded: Decoded) -> pa.Table:
    """The lake rows of one decoded message, in settlement date order."""
    if decoded.name == "set":
        # sorting the sets (48 times fewer rows than reads) keeps each date's reads together, so a batch splits
        # into dates without moving data (split_by_date). Not stamped: unpacking gives each read its set's date,
        # its period and that period's start by the calendar (a set's period count checked against its day by
        # decode), which is what stamping would compute again from the start
        reads = kafka_io.unpack(_by_date(decoded.table))
    else:
        reads = _by_date(stamp(decoded.table))
    m = decoded.message
    return with_kafka(reads, m.topic, m.partition, m.offset)


def lake_rows(decoded: list[Decoded]) -> pa.Table:
    """The lake rows of decoded messages, in message order (the mirror does this on its writer threads)."""
    tables = [rows_of(d) for d in decoded]
    return pa.concat_tables(tables) if tables else LAKE_SCHEMA.empty_table()


def to_table(messages: list[Message], pseudonyms: Pseudonymiser) -> Converted:
    """The lake rows of ``messages`` (in message order) and a quarantine record per message refused."""
    checked = [check(message, pseudonyms) for message in messages]
    return Converted(lake_rows([c for c in checked if isinstance(c, Decoded)]),
                     [c for c in checked if not isinstance(c, Decoded)])


def split_by_date(table: pa.Table) -> list[tuple[date, pa.Table]]:
    """``table``'s rows per settlement date, in date order (row order kept within a date).

    Runs of one date within a record batch are sliced, not copied (the mirror's batches are date-sorted per
    message, :func:`rows_of`); a batch whose dates are scattered is sorted first.
    """
    pieces: dict[int, list[pa.RecordBatch]] = {}
    for batch in table.to_batches():
        if batch.num_rows == 0:
            continue
        days = np.asarray(batch.column(table.schema.get_field_index("settlement_date")).cast(pa.int32())
                          .to_numpy(zero_copy_only=False), dtype=np.int64)
        bounds = np.flatnonzero(np.diff(days)) + 1
        if len(bounds) > 64 and len(bounds) * 8 > batch.num_rows:  # scattered: sort this batch once
            order = np.argsort(days, kind="stable")
            batch, days = batch.take(pa.array(order)), days[order]
            bounds = np.flatnonzero(np.diff(days)) + 1
        starts = np.concatenate([[0], bounds]).tolist()
        ends = np.concatenate([bounds, [batch.num_rows]]).tolist()
        for start, end in zip(starts, ends, strict=True):
            pieces.setdefault(int(days[start]), []).append(batch.slice(start, end - start))
    epoch = date(1970, 1, 1)
    return [(epoch + timedelta(days=d), pa.Table.from_batches(pieces[d], schema=table.schema))
            for d in sorted(pieces)]
