"""The mirror: a Kafka consumer of the reads and device topics that writes every read to the Parquet lake exactly
once.

Run: ``meterlake mirror run [--until-caught-up] [--json]``. Grain of the output: one row per read per Kafka
message (:data:`~meterlake.lake.schema.LAKE_SCHEMA`), in files ``settlement_date=<D>/part-<topic>-<partition>-
<first>-<last>.parquet`` (docs/lake.md).

Exactly once, per topic partition, one batch at a time:

1. Messages are checked and pseudonymised as they arrive (:func:`~streaming.mirror.convert.decode`) into the
   partition's batch until it rotates: enough rows or bytes, a span of record time, or an idle spell (so a quiet
   topic lands too).
2. The batch's intent is committed: offset ``first`` (nothing new) with the metadata ``mirror:<first>-<last>``.
3. One file per settlement date is written to a temporary name, made durable and renamed to its final name, which
   carries topic, partition, first and last offset. This runs on a writer thread, which also unpacks the sets
   to one row per read (:func:`~streaming.mirror.convert.lake_rows`), so the consumer goes on fetching and
   checking the next messages meanwhile (one write under way per partition).
4. Offset ``last + 1`` is committed. Only now is the batch done, and only now may the partition's next batch
   announce its intent.

A mirror that starts on a partition reads its committed offset's metadata: an intent there means a batch may have
been cut short between 2 and 4, so it re-reads exactly ``first..last`` as one batch, skips the files already in
the lake (same names; or merged by compaction, see :mod:`~meterlake.lake.layout`) and writes the rest. So a
crash at any moment neither loses nor duplicates a read, and the next batch never starts before the last one is
whole, which is what lets compaction retire part files by offset watermark.

The mirror owns its partitions by configuration (``mirror.shards``/``mirror.shard``; one mirror owns all) and
keeps its progress in its group's committed offsets, read and written without joining the group
(:mod:`streaming.offsets`): no heartbeat, no rebalance, no coordinator in the fetch path. A stall watchdog
(``mirror.stall_timeout_s``) replaces a consumer that makes no progress while lag remains, as a restart would
(the protocol above makes that safe); after ``mirror.stall_rejoins`` such restarts it stops with an error naming
the partitions and their lag. Memory is bounded: past ``max_buffer_bytes`` the
largest batches are written early. When the lake cannot be written, the partitions are paused (the consumer keeps
its group membership) and the write is retried with back-off, rather than buffering without bound.
The reads of a meter on the erasure list (:mod:`meterlake.privacy`) are left out of the files: whatever of it is
still in the topics stays out of the lake.
"""
from __future__ import annotations

import logging
import time
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from concurrent.futures import wait as wait_futures
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc
from kafka import KafkaConsumer, TopicPartition
from kafka.errors import KafkaError
from kafka.structs import OffsetAndMetadata

from meterlake import clients, lakefs, privacy, pseudonym, schema
from meterlake.config import Settings
from meterlake.lake import layout
from meterlake.lake.files import Lake, open_lake
from streaming import metrics, offsets
from streaming.mirror.convert import Decoded, Message, check, lake_rows, split_by_date

log = logging.getLogger("meterlake.mirror")

INTENT_PREFIX = "mirror:"
REMOTE_WRITERS = 4  # files written at once to HDFS or S3
WRITERS = 2  # batches written at once to a local lake (each partition's batches one after another)
ERASED_REFRESH_S = 30.0  # how often the erasure list is listed again


def intent(first: int, last: int) -> str:
    """The commit metadata announcing the batch ``first..last`` (see the module docstring)."""
    return f"{INTENT_PREFIX}{first}-{last}"


def parse_intent(metadata: str | None, committed: int) -> int | None:
    """The ``last`` offset of the batch announced at the committed offset, or None if there is none."""
    if not metadata or not metadata.startswith(INTENT_PREFIX):
        return None
    try:
        first, last = (int(x) for x in metadata[len(INTENT_PREFIX):].split("-"))
    except ValueError:
        return None
    return last if first == committed and last >= first else None


@dataclass
class _Batch:
    items: list[Decoded] = field(default_factory=list)  # unpacked to lake rows on the writer thread
    first: int | None = None
    last: int = -1
    rows: int = 0
    nbytes: int = 0
    first_time_ms: int = 0
    last_time_ms: int = 0
    last_arrival: float = 0.0
    first_arrival: float = 0.0

    def add(self, message: Message, decoded: Decoded | None, now: float) -> None:
        """Add ``message`` (``decoded``, or None if it was refused: its offset still counts)."""
        if self.first is None:
            self.first, self.first_time_ms = message.offset, message.timestamp
            self.first_arrival = now
        self.last = message.offset
        self.last_time_ms = max(self.last_time_ms, message.timestamp)
        self.last_arrival = now
        if decoded is not None and decoded.rows:
            self.items.append(decoded)
            self.rows += decoded.rows
            self.nbytes += decoded.nbytes


def rotation_due(batch: _Batch, options) -> str | None:
    """Why a partition's batch must be written now that a message was added (``rows``, ``bytes``,
    ``record_time``), or None."""
    if batch.first is None:
        return None
    if batch.rows >= options.max_file_rows:
        return "rows"
    if batch.nbytes >= options.max_file_bytes:
        return "bytes"
    if batch.last_time_ms - batch.first_time_ms >= options.rotate_record_s * 1000:
        return "record_time"
    return None


def flush_due(batches: dict, options, now: float, in_flight_bytes: int = 0) -> list:
    """The partitions whose batches to write between polls: those idle for ``idle_flush_s``, then, while all
    batches together (with those being written, ``in_flight_bytes``) hold more than ``max_buffer_bytes``, the
    largest until they hold half of it."""
    live = {tp: b for tp, b in batches.items() if b.first is not None}
    due = [tp for tp, b in live.items() if now - b.last_arrival >= options.idle_flush_s]
    total = sum(b.nbytes for b in live.values()) + in_flight_bytes
    if total > options.max_buffer_bytes:
        for tp, b in sorted(live.items(), key=lambda item: -item[1].nbytes):
            if total <= options.max_buffer_bytes // 2:
                break
            if tp not in due:
                due.append(tp)
                total -= b.nbytes
    return due


@dataclass
class MirrorStats:
    messages: int = 0
    reads: int = 0
    batches: int = 0
    files: int = 0
    files_skipped: int = 0
    bytes_written: int = 0
    quarantined: int = 0
    recovered_batches: int = 0
    sink_failures: int = 0
    seconds: float = 0.0

    def to_json(self) -> dict:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


@dataclass
class _Write:
    """A batch handed to a writer thread: its intent is committed, its end is not yet."""

    batch: _Batch
    last: int  # the announced last offset (a rewrite keeps its range)
    future: Future


class SinkError(Exception):
    """Writing to the lake failed; the batch stays buffered and is retried."""


class Mirror:
    """One mirror process. :meth:`run` consumes until stopped, or until caught up."""

    def __init__(self, settings: Settings, lake: Lake | None = None, *, clock=time.monotonic):
        self.settings = settings
        self.options = settings.mirror
        self.lake = lake or open_lake(settings)
        self._pseudonyms = pseudonym.for_settings(settings)  # no key, no mirror: the lake holds no identifiers
        self.topics = clients.topics(settings, clients.MIRRORED)
        self.stats = MirrorStats()
        self.clock = clock
        self._consumer: KafkaConsumer | None = None
        self._offsets: offsets.Offsets | None = None
        self._owned: list[TopicPartition] = []
        self._uncommitted: dict[TopicPartition, OffsetAndMetadata] = {}  # batch ends written, commit failed
        self._producer = None
        self._buffers: dict[TopicPartition, _Batch] = {}
        self._forced: dict[TopicPartition, int] = {}
        self._paused: set[TopicPartition] = set()
        self._retry_at: float | None = None
        self._backoff = 0.5
        self._last_failure: str | None = None  # the lake's last write error, for a deadline's message
        self._closing = False
        self._pool: ThreadPoolExecutor | None = None
        self._writer: ThreadPoolExecutor | None = None
        self._inflight: dict[TopicPartition, _Write] = {}
        self._erased_list: frozenset[str] = frozenset()
        self._erased_at: float | None = None

    def _erased(self) -> frozenset[str]:
        """The erasure list's pseudonyms (:mod:`meterlake.privacy`), listed again every
        :data:`ERASED_REFRESH_S`."""
        now = self.clock()
        if self._erased_at is None or now - self._erased_at >= ERASED_REFRESH_S:
            self._erased_list, self._erased_at = privacy.erased_pseudonyms(self.lake), now
        return self._erased_list

    # ------------------------------------------------------------------------------------------------ run

    def _connect(self) -> KafkaConsumer:
        """A consumer of this mirror's partitions, each at its committed offset; an intent there means a batch to
        rewrite (see the module docstring)."""
        clients.ensure_topics(self.settings)
        if not self._owned:
            self._owned = offsets.owned(offsets.topic_partitions(self.settings, self.topics),
                                        self.options.shards, self.options.shard)
        self._offsets = offsets.Offsets(self.settings, self.options.group_id)
        consumer = offsets.fetcher(self.settings, client_id="meterlake-mirror", max_partition_fetch_bytes=4 << 20,
                                   max_poll_records=64)
        try:
            # read_committed (fetcher): ingest publishes a file in one transaction, all of it or none
            committed = offsets.seek_committed(consumer, self._offsets, self._owned)
        except BaseException:
            consumer.close(autocommit=False, timeout_ms=1000)
            self._offsets.close()
            raise
        for tp, c in committed.items():
            last = parse_intent(c.metadata, c.offset) if c is not None else None
            if last is not None:
                log.info("%s/%d: rewriting batch %d-%d cut short by the last run", tp.topic, tp.partition,
                         c.offset, last)
                self._forced[tp] = last
                self.stats.recovered_batches += 1
        log.info("assigned %s", sorted(f"{tp.topic}/{tp.partition}" for tp in self._owned))
        return consumer

    def run(self, *, until_caught_up: bool = False, stop=None, deadline_s: float | None = None) -> MirrorStats:
        """Consume and write until ``stop`` (a ``threading.Event``) is set, or with ``until_caught_up`` until every
        owned partition has reached the end offset the broker gave when this run first asked
        (:class:`~streaming.offsets.CatchUp`; past ``deadline_s``, :class:`~streaming.offsets.Stalled`)."""
        started = self.clock()
        metrics.serve(self.settings, "mirror")
        self._writer = ThreadPoolExecutor(WRITERS if self.lake.local else REMOTE_WRITERS, "lake-batch")
        if not self.lake.local:
            self._pool = ThreadPoolExecutor(REMOTE_WRITERS, "lake-writer")
        catch_up = offsets.CatchUp(self.settings, deadline_s, clock=self.clock)
        watchdog = offsets.Watchdog(self.options.stall_timeout_s, self.options.stall_rejoins, what="the mirror",
                                    clock=self.clock)
        clean = False
        try:
            while True:
                self._consumer = self._connect_or_none(watchdog, catch_up)
                if self._consumer is None:
                    continue
                outcome = self._session(until_caught_up, stop, catch_up, watchdog)
                if outcome != "stalled":
                    clean = outcome == "clean"
                    break
                self._reset(watchdog, catch_up)
        finally:
            self.stats.seconds = round(self.clock() - started, 3)
            self._closing = True
            try:
                # a write still under way finishes, but is not committed: the next run finds its files
                self._writer.shutdown(wait=True)
                if self._consumer is not None:
                    self._consumer.close(autocommit=False, timeout_ms=offsets.wait_ms(self.settings))
            finally:
                if self._offsets is not None:
                    self._offsets.close()
                if self._producer is not None:
                    self._producer.close(timeout=offsets.wait_ms(self.settings) / 1000)
                if self._pool is not None:
                    self._pool.shutdown()
                    self._pool = None
            if not clean:
                log.warning("mirror stopped with unflushed batches (they are re-read on the next run)")
        return self.stats

    def _connect_or_none(self, watchdog: offsets.Watchdog, catch_up: offsets.CatchUp) -> KafkaConsumer | None:
        """:meth:`_connect`, or None after a failure to reach Kafka (counted by the watchdog as a fresh consumer
        that made no progress)."""
        try:
            return self._connect()
        except KafkaError as exc:
            log.warning("connecting to Kafka failed (%s)", exc)
            watchdog.failed_to_connect(catch_up)
            return None

    def _session(self, until_caught_up: bool, stop, catch_up: offsets.CatchUp, watchdog: offsets.Watchdog) -> str:
        """One consumer's life: ``clean`` (stopped or caught up, all written), ``unclean`` (stopped with batches
        unwritten) or ``stalled`` (no progress for ``stall_timeout_s`` while lag remains)."""
        consumer = self._consumer
        progress = self.stats.messages, self.stats.batches, self.stats.files_skipped
        lag_probe = metrics.LagProbe(self.settings, "mirror")
        while True:
            records = consumer.poll(timeout_ms=200)
            lag_probe(consumer, self._owned)
            for tp, batch in records.items():
                self._add(tp, [Message.of(r) for r in batch])
            self._maybe_flush()
            now = self.stats.messages, self.stats.batches, self.stats.files_skipped
            if now != progress:
                progress = now
                watchdog.progress()
            if stop is not None and stop.is_set():
                clean = self._drain()
                if not clean:
                    log.warning("the last batches could not be written")
                return "clean" if clean else "unclean"
            if until_caught_up and self._caught_up(catch_up):
                # the last batches, with the same retry as any other: done only once they are written
                if self._drain():
                    return "clean"
            if watchdog.stalled(lambda: offsets.lag_or_none(catch_up, consumer, self._owned,
                                                            offsets.wait_ms(self.settings)),
                                busy=bool(self._forced or self._paused or self._uncommitted)):
                return "stalled"

    def _reset(self, watchdog: offsets.Watchdog, catch_up: offsets.CatchUp) -> None:
        """Drop this consumer and everything it held, as a crash would (its batches are re-read from the
        committed offsets); writes under way end first, or the mirror stops."""
        pending = [w.future for w in self._inflight.values()]
        _, not_done = wait_futures(pending, timeout=self.options.write_timeout_s)
        if not_done:
            raise offsets.Stalled(f"{len(not_done)} lake writes did not finish within "
                                  f"{self.options.write_timeout_s:g}s", catch_up.last_lag)
        self._inflight.clear()
        self._buffers.clear()
        self._forced.clear()
        self._paused.clear()
        self._uncommitted.clear()
        self._retry_at, self._backoff = None, 0.5
        try:
            self._consumer.close(autocommit=False, timeout_ms=1000)
        except Exception as exc:  # a consumer that lost its broker may not close cleanly; it is dropped anyway
            log.debug("closing the stalled consumer: %s", exc)
        self._consumer = None
        self._offsets.close()

    def _caught_up(self, catch_up: offsets.CatchUp) -> bool:
        if self._forced or self._paused or self._uncommitted:
            try:
                catch_up.check_deadline()
            except offsets.Stalled as exc:
                if self._last_failure is None:
                    raise
                # the positions are at the end: what holds the run back is the lake, so say so
                held = ", ".join(f"{tp.topic}/{tp.partition}" for tp in sorted(self._forced or self._paused))
                raise offsets.Stalled(f"not caught up within the deadline of {catch_up.deadline_s:g}s: batches of "
                                      f"{held} not written, the lake's last write failed ({self._last_failure})",
                                      catch_up.last_lag) from exc
            return False
        try:
            positions = offsets.positions(self._consumer, self._owned, offsets.wait_ms(self.settings))
        except KafkaError as exc:
            log.warning("could not get the positions (%s)", exc)
            catch_up.check_deadline()
            return False
        return catch_up.done(self._consumer, positions)

    def _drain(self) -> bool:
        """Write and commit everything held: the writes under way, then every whole batch. True if all is
        committed (nothing paused)."""
        if not self._finish(list(self._inflight)):
            return False
        flushed = self._flush([tp for tp in self._buffers if self._complete(tp)], wait=True)
        if self._uncommitted:
            self._commit_ends({})
        return flushed and not self._paused and not self._uncommitted

    def _complete(self, tp: TopicPartition) -> bool:
        """May this partition's batch be written now? Not a batch being rewritten that has not reached its end:
        its files must carry the announced range."""
        forced = self._forced.get(tp)
        return forced is None or (tp in self._buffers and self._buffers[tp].last >= forced)

    # --------------------------------------------------------------------------------------------- intake

    def _add(self, tp: TopicPartition, messages: list[Message]) -> None:
        if tp in self._paused:
            return  # fetched before the pause; the partition is re-read from its batch's end
        for message in messages:
            buf = self._buffers.setdefault(tp, _Batch())
            forced = self._forced.get(tp)
            if forced is not None and message.offset > forced:
                if buf.first is None:  # the batch's messages are gone from the topic: nothing to rewrite
                    log.warning("%s/%d: offsets up to %d no longer exist", tp.topic, tp.partition, forced)
                    del self._forced[tp]
                elif not self._flush([tp]):
                    return
                forced = None
                buf = self._buffers.setdefault(tp, _Batch())
            decoded = check(message, self._pseudonyms)
            if not isinstance(decoded, Decoded):  # refused: quarantined, its offset still counts
                self._quarantine([decoded])
                decoded = None
            buf.add(message, decoded, self.clock())
            self.stats.messages += 1
            self.stats.reads += decoded.rows if decoded is not None else 0
            if forced is not None:
                done = message.offset >= forced
            else:
                done = rotation_due(buf, self.options) is not None
            if done and not self._flush([tp]):
                return

    def _quarantine(self, records: list[dict]) -> None:
        if self._producer is None:
            from kafka import KafkaProducer

            self._producer = KafkaProducer(**clients.kafka_options(self.settings), acks="all",
                                           enable_idempotence=True)
        value = schema.to_ipc_bytes(schema.quarantine_batch(records))
        key = records[0]["source_file"].encode()
        self._producer.send(self.settings.kafka.quarantine_topic, key=key, value=value).get(timeout=60)
        self.stats.quarantined += len(records)
        metrics.quarantined("mirror", [r["reason"] for r in records])
        for r in records:
            log.warning("quarantined %s: %s", r["source_file"], r["detail"])

    # ---------------------------------------------------------------------------------------------- flush

    def _maybe_flush(self) -> None:
        self._finish([tp for tp, w in self._inflight.items() if w.future.done()])
        now = self.clock()
        if self._paused:
            if self._retry_at is not None and now >= self._retry_at:
                self._retry()
            return
        due = flush_due({tp: b for tp, b in self._buffers.items() if tp not in self._forced}, self.options, now,
                        sum(w.batch.nbytes for w in self._inflight.values()))
        if due:
            self._flush(due)

    def _flush(self, tps: list[TopicPartition], *, wait: bool = False) -> bool:
        """Start writing the batches of ``tps``, in the order the module docstring gives: a partition's last
        write is finished and committed, this batch's intent is committed, its files are handed to a writer
        thread (so the next messages are decoded meanwhile); :meth:`_finish` commits its end once they are
        durable. With ``wait``, finish them before returning.

        Returns False if a partition's position moved back (the intent could not be committed, or a write
        failed and the partition is paused for a retry): the caller drops the messages it still holds for it.
        """
        if not self._finish([tp for tp in tps if tp in self._inflight]):
            return False
        batches = [(tp, self._buffers[tp]) for tp in tps
                   if tp in self._buffers and self._buffers[tp].first is not None]
        if not batches:
            return True
        intents = self._intents(batches)
        for tp in intents:  # a new intent supersedes a batch end not yet committed
            self._uncommitted.pop(tp, None)
        if intents and not self._commit(intents):
            # not announced, so nothing may be written: forget the batches and read them again
            assigned = self._consumer.assignment()
            for tp, b in batches:
                self._buffers.pop(tp, None)
                if tp in assigned:
                    self._consumer.seek(tp, b.first)
            return False
        for tp, b in batches:
            last, rewrite = self._announced(tp, b)
            self._forced.pop(tp, None)
            del self._buffers[tp]
            self._inflight[tp] = _Write(b, last, self._writer.submit(self._write, tp, b, last, rewrite))
        return self._finish([tp for tp, _ in batches]) if wait else True

    def _intents(self, batches: list[tuple[TopicPartition, _Batch]]) -> dict[TopicPartition, OffsetAndMetadata]:
        """The intents to commit before writing ``batches``: none for a batch being rewritten (its intent stands)
        or one without rows."""
        return {tp: OffsetAndMetadata(b.first, intent(b.first, b.last), -1)
                for tp, b in batches if tp not in self._forced and b.rows}

    def _announced(self, tp: TopicPartition, b: _Batch) -> tuple[int, bool]:
        """The last offset the batch's files carry and whether it is a rewrite (which keeps the announced
        range)."""
        return max(b.last, self._forced.get(tp, b.last)), tp in self._forced

    def _finish(self, tps: list[TopicPartition]) -> bool:
        """Wait for the writes under way of ``tps`` and commit the end of each batch written. A failed write
        pauses its partition (see :meth:`_failed`). True if all were written and committed."""
        written, failures = self._collect(tps)
        for failure in failures:
            self._failed(*failure)
        if written:
            self._commit_ends(written)
            self.stats.batches += len(written)
        return not failures

    def _commit_ends(self, written: dict[TopicPartition, OffsetAndMetadata]) -> None:
        """Commit the ends of batches written, with those whose commit failed before. One that fails again stays
        in ``_uncommitted`` (a restart finds its intent and skips its files; a caught-up run retries it)."""
        ends = {**self._uncommitted, **written}
        if self._commit(ends):
            self._uncommitted.clear()
            metrics.succeeded("mirror")
        else:
            self._uncommitted = ends

    def _collect(self, tps: list[TopicPartition]) -> tuple[dict[TopicPartition, OffsetAndMetadata], list]:
        """Wait for the writes under way of ``tps``: the end offsets to commit for those written, and
        ``(tp, write, error)`` for those that failed."""
        written, failures = {}, []
        for tp in tps:
            w = self._inflight.pop(tp, None)
            if w is None:
                continue
            try:
                self._written(tp, w, w.future.result(timeout=self.options.write_timeout_s))
                written[tp] = OffsetAndMetadata(w.last + 1, "", -1)
            except SinkError as exc:
                failures.append((tp, w, exc))
            except FutureTimeout:  # a hung write: retried, and its files, should it finish, are skipped then
                failures.append((tp, w, SinkError(f"not written within {self.options.write_timeout_s:g}s")))
        return written, failures

    def _written(self, tp: TopicPartition, w: _Write, sizes: list[int | None]) -> None:
        self._count(sizes)
        metrics.READS.labels("mirror").inc(w.batch.rows)
        metrics.FILES.labels("mirror", "written").inc(sum(1 for s in sizes if s is not None))
        metrics.BATCH.labels("mirror").observe(max(0.0, self.clock() - w.batch.first_arrival))
        log.info("%s/%d: offsets %d-%d, %d reads written", tp.topic, tp.partition, w.batch.first, w.last,
                 w.batch.rows)

    def _count(self, sizes: list[int | None]) -> None:
        self.stats.files_skipped += sum(1 for s in sizes if s is None)
        self.stats.files += sum(1 for s in sizes if s is not None)
        self.stats.bytes_written += sum(s for s in sizes if s is not None)

    def _failed(self, tp: TopicPartition, w: _Write, exc: Exception) -> None:
        """A batch whose intent is committed could not be written: keep exactly its boundaries, drop what came
        after it, pause the partition and retry later with back-off."""
        self.stats.sink_failures += 1
        self._last_failure = str(exc)
        log.warning("writing to the lake failed (%s); pausing %s/%d, retry in %.1fs", exc, tp.topic, tp.partition,
                    self._backoff)
        self._buffers[tp] = w.batch
        self._forced[tp] = w.last
        self._consumer.seek(tp, w.last + 1)
        self._pause([tp])
        self._retry_at = self.clock() + self._backoff
        self._backoff = min(self._backoff * 2, 30.0)

    def _pause(self, tps: list[TopicPartition]) -> None:
        self._paused.update(tps)
        self._consumer.pause(*tps)

    def _retry(self) -> None:
        tps = [tp for tp in self._paused if tp in self._buffers]
        if not self._flush(tps, wait=True):
            return  # paused again, with a longer back-off
        self._consumer.resume(*self._paused)
        self._paused.clear()
        self._retry_at, self._backoff, self._last_failure = None, 0.5, None

    def _commit(self, offsets: dict[TopicPartition, OffsetAndMetadata]) -> bool:
        try:
            self._offsets.commit(offsets)
            return True
        except KafkaError as exc:
            log.warning("commit failed (%s)", exc)
            return False

    def _write(self, tp: TopicPartition, b: _Batch, last: int, rewrite: bool) -> list[int | None]:
        """Write batch ``b`` of ``tp`` (offsets ``b.first..last``): a file per settlement date, each made durable
        under its final name. A rewrite skips the files already there. Runs on a writer thread; returns each
        file's size (None: skipped)."""
        if not b.items:
            return []
        part = layout.PartName(tp.topic, tp.partition, b.first, last)

        def write_one(day, rows) -> int | None:
            if rewrite and self.lake.part_retired_or_present(day, part):
                return None
            return self.lake.write_parquet(f"{layout.date_dir(day)}/{part.name}", rows)

        try:
            rows = lake_rows(b.items)
            erased = self._erased()
            if erased:  # reads of an erased meter still in the topics (in flight, or replayed) stay out
                rows = rows.filter(pc.invert(pc.is_in(rows["meter_point"], value_set=pa.array(sorted(erased)))))
            by_date = split_by_date(rows)
            if self._pool is None or len(by_date) == 1:
                sizes = [write_one(day, rows) for day, rows in by_date]
            else:  # a remote store is latency-bound: the dates' files go up side by side
                sizes = list(self._pool.map(lambda item: write_one(*item), by_date))
        except Exception as exc:
            if not lakefs.transient(exc):  # a bug, not the lake's weather: stop clearly
                raise
            raise SinkError(f"{type(exc).__name__}: {exc}") from exc
        return sizes


def run(settings: Settings, *, until_caught_up: bool = False, stop=None,
        deadline_s: float | None = None) -> MirrorStats:
    """Run a mirror with the settings' lake and topics; see :class:`Mirror`."""
    return Mirror(settings).run(until_caught_up=until_caught_up, stop=stop, deadline_s=deadline_s)
