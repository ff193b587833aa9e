"""Turn Arrow tables of the read model into Cassandra writes (pure row builders) and write them concurrently.

All writes of reads are ``USING TIMESTAMP source_version`` (see :mod:`meterlake.keyspace`): replays change
nothing and older versions never overwrite newer ones. :meth:`Writer.write` returns only when every write is
acknowledged at the session's consistency level (failed writes are retried: they are idempotent); the consumer
commits Kafka offsets after that.
"""
from __future__ import annotations

import logging
import time
import uuid
from datetime import UTC, date, datetime

import numpy as np
import pyarrow as pa

from meterlake import schema
from streaming import metrics

log = logging.getLogger(__name__)


def _tid(value: str | None) -> uuid.UUID | None:
    return uuid.UUID(value) if value else None


def set_rows(sets: pa.Table) -> list[tuple]:
    """Parameters for the ``hh_sets`` update, one per set: the write timestamp (the source version) first, then
    the columns set (the present periods as ``{period: value}`` and ``{period: quality}``), then the key. Pure.

    Column-wise (numpy) rather than row by row: this runs for every set the store writes."""
    n = sets.num_rows
    if n == 0:
        return []
    sets = sets.combine_chunks()
    lengths, position, flat, present = schema.set_values(sets)
    keep = np.flatnonzero(present)
    periods_kept = (position[keep] + 1).tolist()
    values_kept = np.asarray(flat.fill_null(0.0).to_numpy(zero_copy_only=False))[keep].tolist()
    qualities_kept = sets.column("qualities").chunk(0).flatten().take(pa.array(keep)).to_pylist()
    running = np.concatenate([[0], np.cumsum(present, dtype=np.int64)])
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    bounds = running[offsets].tolist()  # set i's present values are kept[bounds[i]:bounds[i + 1]]
    col = {name: sets.column(name).to_pylist() for name in (
        "source_version", "fuel", "periods", "source_file", "file_id", "batch_id", "meter_point", "settlement_date",
        "register_id", "meter_serial", "unit")}
    out = []
    for i in range(n):
        a, b = bounds[i], bounds[i + 1]
        p = periods_kept[a:b]
        d: date = col["settlement_date"][i]
        version = col["source_version"][i]
        out.append((
            version, col["fuel"][i], col["periods"][i], dict(zip(p, values_kept[a:b], strict=True)),
            dict(zip(p, qualities_kept[a:b], strict=True)), version, col["source_file"][i],
            _tid(col["file_id"][i]), _tid(col["batch_id"][i]),
            col["meter_point"][i], f"{d:%Y-%m}", d, col["register_id"][i] or "", col["meter_serial"][i] or "",
            col["unit"][i],
        ))
    return out


def register_rows(reads: pa.Table) -> list[tuple]:
    out = []
    for r in reads.to_pylist():
        if r["read_kind"] != "register":
            continue
        at: datetime = r["interval_start_utc"]
        out.append((
            r["meter_point"], at.year, r["register_id"] or "", at, r["meter_serial"] or "", r["fuel"], r["value"],
            r["unit"], r["quality"], r["source_version"], r["source_file"], r["source_line"], _tid(r["file_id"]),
            _tid(r["batch_id"]), r["source_version"],
        ))
    return out


def device_rows(reads: pa.Table) -> list[tuple]:
    out = []
    for r in reads.to_pylist():
        if r["read_kind"] != "device":
            continue
        at: datetime = r["interval_start_utc"]
        out.append((
            r["device_id"] or "", at.astimezone(UTC).date(), at, r["unit"], r["meter_point"], r["value"],
            r["source_version"], r["source_version"],
        ))
    return out


def quarantine_rows(problems: pa.Table) -> list[tuple]:
    return [(r["source_file"], -1 if r["source_line"] is None else r["source_line"], r["field"] or "", r["reason"],
             r["detail"], r["raw"]) for r in problems.to_pylist()]


#: set rows sent as one unlogged batch, rows of the same replicas only (a set row is ~1-2 KB: a batch stays well
#: under Cassandra's batch_size_fail_threshold, 50 KiB). The driver's and the coordinator's cost is per request,
#: not per row: profiled, one request per row left the store's own process and Cassandra busy with requests.
BATCH_ROWS = 8

#: the driver's errors of a write that timed out (a coordinator's, or the client's own)
_TIMEOUTS = {"WriteTimeout", "OperationTimedOut"}


class Writer:
    """Prepared statements for one keyspace; ``write(table)`` dispatches on the table's schema name."""

    def __init__(self, session, keyspace: str, concurrency: int = 64, attempts: int = 6,
                 batch_rows: int = BATCH_ROWS):
        self.session = session
        self.keyspace = keyspace
        self.concurrency = concurrency
        self.batch_rows = batch_rows
        self.attempts = attempts
        self.retried = 0  # writes retried after a failure
        ks = keyspace
        # values = values + ?: one cell per period, so versions and partial sets merge per period (keyspace)
        self.sets = session.prepare(
            f"UPDATE {ks}.hh_sets USING TIMESTAMP ? SET fuel = ?, periods = ?, values = values + ?, "
            "qualities = qualities + ?, source_version = ?, source_file = ?, file_id = ?, batch_id = ? "
            "WHERE meter_point = ? AND month = ? AND settlement_date = ? AND register_id = ? AND meter_serial = ? "
            "AND unit = ?")
        self.registers = session.prepare(
            f"INSERT INTO {ks}.register_reads (meter_point, year, register_id, read_at, meter_serial, fuel, value, "
            "unit, quality, source_version, source_file, source_line, file_id, batch_id) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) USING TIMESTAMP ?")
        self.devices = session.prepare(
            f"INSERT INTO {ks}.device_reads (device_id, day, ts, unit, meter_point, value, source_version) "
            "VALUES (?, ?, ?, ?, ?, ?, ?) USING TIMESTAMP ?")
        self.quarantine = session.prepare(
            f"INSERT INTO {ks}.quarantine (source_file, source_line, field, reason, detail, raw) "
            "VALUES (?, ?, ?, ?, ?, ?)")

    def _batches(self, statement, params: list[tuple]) -> list:
        """``params`` bound to ``statement``, as unlogged batches of at most ``batch_rows`` rows whose partitions
        have the same replicas (so token-aware routing sends each batch to a replica of all its rows)."""
        from cassandra.query import BatchStatement, BatchType

        metadata = self.session.cluster.metadata
        groups: dict = {}
        out = []
        for p in params:
            bound = statement.bind(p)
            replicas = tuple(sorted(str(h.endpoint) for h in metadata.get_replicas(self.keyspace, bound.routing_key)))
            group = groups.get(replicas)
            if group is None:
                group = groups[replicas] = BatchStatement(BatchType.UNLOGGED,
                                                          consistency_level=statement.consistency_level)
            group.add(bound)
            if len(group) >= self.batch_rows:
                out.append(group)
                del groups[replicas]
        out.extend(groups.values())
        return out

    def _run(self, statement, params: list[tuple], batched: bool = False) -> int:
        """Execute ``statement`` for every parameter tuple (``batched``: as unlogged batches of ``batch_rows``),
        ``concurrency`` requests at a time; failed writes (a node going down, a timeout) are retried: writes are
        idempotent. Raises the last error if some still fail."""
        from cassandra.concurrent import execute_concurrent

        # (statement, parameters) requests: a row with its parameters, or a batch (bound already)
        if batched and self.batch_rows > 1:
            pending = [(batch, None) for batch in self._batches(statement, params)]
        else:
            pending = [(statement, p) for p in params]
        for attempt in range(self.attempts):
            if not pending:
                break
            results = execute_concurrent(self.session, pending, concurrency=self.concurrency,
                                         raise_on_first_error=False)
            failed = [(p, result) for p, (ok, result) in zip(pending, results, strict=True) if not ok]
            timeouts = sum(1 for _, error in failed if type(error).__name__ in _TIMEOUTS)
            if timeouts:
                metrics.WRITE_TIMEOUTS.labels("store").inc(timeouts)
            if failed and attempt + 1 < self.attempts:
                self.retried += len(failed)
                metrics.WRITE_RETRIES.labels("store").inc(len(failed))
                log.warning("%d of %d writes failed (%s); retrying", len(failed), len(pending), failed[0][1])
                time.sleep(min(8.0, 0.5 * 2 ** attempt))
            elif failed:
                raise failed[0][1]
            pending = [p for p, _ in failed]
        return len(params)

    def write(self, table: pa.Table) -> dict[str, int]:
        """Write one decoded message; returns rows written per table. Raises if any write failed."""
        return self.write_many([table])

    def write_many(self, tables: list[pa.Table]) -> dict[str, int]:
        """Write many decoded messages (e.g. a poll's worth) as one concurrent stream per table, so the
        ``concurrency`` window stays full across message boundaries. Returns rows written per table."""
        params: dict[str, list[tuple]] = {"hh_sets": [], "register_reads": [], "device_reads": [], "quarantine": []}
        for table in tables:
            kind = schema.schema_name(table.schema)
            if kind == "set":
                params["hh_sets"] += set_rows(table)
            elif kind == "read":
                params["register_reads"] += register_rows(table)
                params["device_reads"] += device_rows(table)
            elif kind == "quarantine":
                params["quarantine"] += quarantine_rows(table)
            else:
                raise ValueError(f"not a read-model table: schema {kind!r}")
        statements = {"hh_sets": self.sets, "register_reads": self.registers, "device_reads": self.devices,
                      "quarantine": self.quarantine}
        return {name: self._run(statements[name], rows, batched=name == "hh_sets")
                for name, rows in params.items() if rows}
