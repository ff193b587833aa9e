"""``meterlake store run``: consume the reads topics and the quarantine topic into Cassandra.

Run: ``meterlake store run [--until-caught-up] [--json]``; ``meterlake store stats --json`` counts what is stored.

Loop: poll a batch; decode each message (Arrow IPC, :mod:`meterlake.schema`); write every row at the configured
consistency level and wait for all acknowledgements; only then commit the batch's offsets. A crash between the
writes and the commit replays the batch, which changes nothing (writes carry ``USING TIMESTAMP source_version``).
The consumer reads with ``isolation_level="read_committed"``: ingest publishes each file in one Kafka transaction
(:mod:`streaming.ingest.publish`), so the store never sees part of a file, nor a file whose publishing failed.
Messages are decoded by the one decoder the mirror uses too (:func:`streaming.kafka_io.decode_table`): a later
schema version's added optional columns are read; a message no version can read is not skipped silently: it
becomes a quarantine row (source ``kafka:<topic>/<partition>/<offset>``, reason ``incompatible_message``); a later
version this one cannot read stops the store before its batch is committed (upgrade, then run again).
``until_caught_up`` drains what the
topics hold at start and returns.

Each store owns its share of the partitions (``store.shards``, ``store.shard``) without a consumer group's
membership, and a stall watchdog (``store.stall_timeout_s``) replaces a consumer that makes no progress
(:mod:`streaming.offsets`).

Grain of :class:`StoreResult`: one per run.
"""
from __future__ import annotations

import logging
import time
from collections import Counter
from dataclasses import dataclass, field

import pyarrow as pa

from meterlake import clients, keyspace, privacy, schema
from meterlake.config import Settings
from streaming import kafka_io, metrics, offsets
from streaming.store.writer import Writer

log = logging.getLogger(__name__)
GROUP = "meterlake-store"
# rows handed to the driver as one concurrent stream: enough to keep its window full across messages, few enough
# that their Python parameters stay small (a set's are two 48-entry dicts)
WRITE_ROWS = 10_000


@dataclass
class StoreResult:
    messages: int = 0
    rows: Counter = field(default_factory=Counter)
    incompatible: int = 0
    retried_writes: int = 0
    seconds: float = 0.0
    busy_seconds: float = 0.0  # from the first message polled to the last commit (no group join, no idle tail)

    def as_dict(self) -> dict:
        return {"messages": self.messages, "rows": dict(sorted(self.rows.items())),
                "incompatible_messages": self.incompatible, "retried_writes": self.retried_writes,
                "seconds": round(self.seconds, 3), "busy_seconds": round(self.busy_seconds, 3)}


def message_table(value: bytes) -> pa.Table:
    """The table of one message, conformed to this version's schema of its kind, by the one decoder the mirror
    uses too (:func:`streaming.kafka_io.decode_table`). Pure.

    Raises :class:`streaming.kafka_io.IncompatibleMessage` (quarantined) or
    :class:`streaming.kafka_io.UpgradeRequired` (the store stops before committing it).
    """
    return kafka_io.decode_table(value, kafka_io.WITH_QUARANTINE)[1]


def _incompatible(record, reason: str) -> pa.Table:
    source = f"kafka:{record.topic}/{record.partition}/{record.offset}"
    batch = schema.quarantine_batch([{"source_file": source, "source_line": record.offset, "field": None,
                                      "reason": "incompatible_message", "detail": reason, "raw": None}])
    return pa.Table.from_batches([batch])


def topics(settings: Settings) -> list[str]:
    return clients.topics(settings, clients.STORED)


def run(settings: Settings, *, until_caught_up: bool = False, group: str = GROUP, max_seconds: float | None = None,
        poll_records: int = 200, stop=None, deadline_s: float | None = None) -> StoreResult:
    """Consume into the keyspace until caught up (``until_caught_up``; past ``deadline_s``,
    :class:`~streaming.offsets.Stalled`), ``max_seconds`` pass, or ``stop`` (an Event) is set.

    The store owns its share of the partitions (``store.shards``/``store.shard``) and keeps its progress in
    ``group``'s committed offsets without joining the group (:mod:`streaming.offsets`); a consumer that makes no
    progress for ``store.stall_timeout_s`` while lag remains is replaced by a fresh one."""
    metrics.serve(settings, "store")
    session = clients.cassandra_session(settings, consistency=settings.cassandra.write_consistency)
    result = StoreResult()
    start = time.monotonic()
    writer = None
    try:
        keyspace.ensure(session, settings.cassandra.keyspace, settings.cassandra.replication_factor)
        clients.ensure_topics(settings)  # a store started before any ingest still finds its partitions
        writer = Writer(session, settings.cassandra.keyspace, batch_rows=settings.store.batch_rows)
        opts = settings.store
        owned = offsets.owned(offsets.topic_partitions(settings, topics(settings)), opts.shards, opts.shard)
        catch_up = offsets.CatchUp(settings, deadline_s)
        watchdog = offsets.Watchdog(opts.stall_timeout_s, opts.stall_rejoins, what="the store")
        loop = _Loop(settings, group, owned, writer, result, poll_records)
        while loop.session(until_caught_up, stop, catch_up, watchdog, start, max_seconds) == "stalled":
            pass
    finally:
        session.cluster.shutdown()
    result.retried_writes = writer.retried if writer is not None else 0
    result.seconds = time.monotonic() - start
    return result


class _Loop:
    """The store's consuming loop over ``owned`` partitions; one :meth:`session` per consumer."""

    def __init__(self, settings: Settings, group: str, owned: list, writer: Writer, result: StoreResult,
                 poll_records: int):
        self.settings, self.group, self.owned = settings, group, owned
        self.writer, self.result, self.poll_records = writer, result, poll_records
        self.first: float | None = None
        self.erased = privacy.Refreshing(settings)

    def session(self, until_caught_up: bool, stop, catch_up: offsets.CatchUp, watchdog: offsets.Watchdog,
                start: float, max_seconds: float | None) -> str:
        """Consume with a fresh consumer: ``done``, or ``stalled`` (no progress for ``store.stall_timeout_s``
        while lag remains; the watchdog has counted it)."""
        from kafka.errors import KafkaError
        from kafka.structs import OffsetAndMetadata

        committer = offsets.Offsets(self.settings, self.group)
        wait_ms = offsets.wait_ms(self.settings)
        consumer = None
        try:
            try:
                consumer = offsets.fetcher(self.settings, max_poll_records=self.poll_records,
                                           fetch_max_bytes=32 * 1024 * 1024,
                                           max_partition_fetch_bytes=16 * 1024 * 1024)
                offsets.seek_committed(consumer, committer, self.owned)
            except KafkaError as exc:
                log.warning("connecting to Kafka failed (%s)", exc)
                watchdog.failed_to_connect(catch_up)
                return "stalled"
            pending: dict = {}  # offsets of batches written whose commit failed
            lag_probe, polled = metrics.LagProbe(self.settings, "store"), None
            while stop is None or not stop.is_set():
                at = time.monotonic()
                batch = consumer.poll(timeout_ms=1000)
                lag_probe(consumer, self.owned)
                if batch and polled is None:
                    polled = at
                if batch and self.first is None:
                    self.first = time.monotonic()
                self._write(batch)
                if batch:
                    # every write of the batch is acknowledged by now
                    pending.update({tp: OffsetAndMetadata(records[-1].offset + 1, "", -1)
                                    for tp, records in batch.items()})
                    watchdog.progress()
                if pending:
                    try:
                        committer.commit(pending)
                        pending = {}
                        self.result.busy_seconds = time.monotonic() - self.first
                        metrics.succeeded("store", polled)
                        polled = None
                    except KafkaError as exc:
                        log.warning("commit failed (%s); retried with the next batch", exc)
                if until_caught_up and not batch and not pending:
                    try:
                        if catch_up.done(consumer, offsets.positions(consumer, self.owned, wait_ms)):
                            return "done"
                    except KafkaError as exc:
                        log.warning("could not get the positions (%s)", exc)
                        catch_up.check_deadline()
                if max_seconds is not None and time.monotonic() - start > max_seconds:
                    return "done"
                if watchdog.stalled(lambda: offsets.lag_or_none(catch_up, consumer, self.owned, wait_ms),
                                    busy=bool(pending)):
                    return "stalled"
            return "done"
        finally:
            if consumer is not None:
                try:
                    consumer.close(autocommit=False, timeout_ms=1000)
                except Exception as exc:  # one that lost its broker may not close cleanly; it is dropped anyway
                    log.debug("closing the consumer: %s", exc)
            committer.close()

    def _write(self, batch: dict) -> None:
        result, writer = self.result, self.writer
        tables: list[pa.Table] = []
        pending = 0  # rows in ``tables``
        for records in batch.values():
            for record in records:
                try:
                    tables.append(message_table(record.value))
                except kafka_io.UpgradeRequired as exc:  # nothing of this batch is committed
                    raise kafka_io.UpgradeRequired(f"kafka:{record.topic}/{record.partition}/{record.offset}: "
                                                   f"{exc.message}", **exc.details) from None
                except kafka_io.IncompatibleMessage as exc:
                    log.warning("message %s/%d/%d is incompatible: %s", record.topic, record.partition,
                                record.offset, exc)
                    tables.append(_incompatible(record, str(exc)))
                    result.incompatible += 1
                result.messages += 1
                pending += tables[-1].num_rows
                if pending >= WRITE_ROWS:
                    _write_many(result, writer, self._kept(tables))
                    tables, pending = [], 0
        if tables:
            _write_many(result, writer, self._kept(tables))

    def _kept(self, tables: list[pa.Table]) -> list[pa.Table]:
        """``tables`` without the rows of erased meters (:mod:`meterlake.privacy`): reads still in the topics, or
        replayed from them, do not come back (the erasure's tombstones would shadow older reads; not a quarantine
        record, written at the time of its arrival)."""
        erased = self.erased()
        return [privacy.without_erased(erased, t) for t in tables] if erased else tables


def _write_many(result: StoreResult, writer: Writer, tables: list[pa.Table]) -> None:
    """Write, count the rows, and the quarantine rows by reason."""
    written = writer.write_many(tables)
    result.rows.update(written)
    metrics.READS.labels("store").inc(sum(n for table, n in written.items() if table != "quarantine"))
    metrics.quarantined("store", Counter(r for t in tables if schema.schema_name(t.schema) == "quarantine"
                                         for r in t.column("reason").to_pylist()))


def stats(settings: Settings) -> dict:
    """Rows per table, reads in ``hh_sets`` and claims by state: a full scan (fine for a laptop; on a production
    ring use the lake's statistics instead)."""
    session = clients.cassandra_session(settings, consistency=settings.cassandra.read_consistency)
    ks = settings.cassandra.keyspace
    try:
        keyspace.ensure(session, ks, settings.cassandra.replication_factor)
        tables: dict[str, int] = {}
        for table in ("hh_sets", "register_reads", "device_reads", "quarantine", "file_claims"):
            tables[table] = session.execute(f"SELECT count(*) FROM {ks}.{table}", timeout=300).one()[0]
        interval_reads = 0
        for row in session.execute(f"SELECT values FROM {ks}.hh_sets", timeout=300):
            interval_reads += len(row.values or ())
        claims: Counter = Counter()
        for row in session.execute(f"SELECT state, outcome FROM {ks}.file_claims", timeout=300):
            claims[row.outcome if row.state == "done" else row.state] += 1
        reasons: Counter = Counter()
        for row in session.execute(f"SELECT reason FROM {ks}.quarantine", timeout=300):
            reasons[row.reason] += 1
        return {"keyspace": ks, "tables": tables, "interval_reads": interval_reads,
                "claims": dict(sorted(claims.items())), "quarantine_reasons": dict(sorted(reasons.items()))}
    finally:
        session.cluster.shutdown()
