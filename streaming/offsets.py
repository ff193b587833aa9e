"""Partitions a stage owns, its committed offsets, and the one rule for "caught up": every Kafka wait bounded.

Used by the mirror (:mod:`streaming.mirror.consumer`), the store (:mod:`streaming.store.consumer`) and
``ingest watch`` (:mod:`streaming.ingest.watch`).

- The mirror and the store do not use Kafka's group membership for their partitions: each instance is assigned
  its share (:func:`owned`: partition ``p`` of every topic where ``p % shards == shard``; one instance owns all)
  and reads where the group's committed offsets say (:class:`Offsets`). The group coordinator is asked only to
  read and write those offsets, each call bounded by ``kafka.wait_timeout_s``, and a fresh client is made after a
  failed call (kafka-python 3.0.12 does not rediscover a coordinator it has lost). So no heartbeat can expire while
  a large backlog is worked on, and fetching never waits on the coordinator.
- :class:`CatchUp` is ``--until-caught-up``: every owned partition's position has reached the end offset the
  broker gave for it when first asked (``read_committed``: the last stable offset); past its deadline it raises
  :class:`Stalled` naming the partitions and their lag.
- :class:`Watchdog` is the stall rule (``<section>.stall_timeout_s``): no progress for that long while lag remains
  means a fresh consumer; after ``stall_rejoins`` fresh consumers without progress, :class:`Stalled`.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping

from meterlake import clients
from meterlake.config import Settings
from meterlake.errors import MeterlakeError
from streaming import metrics

log = logging.getLogger(__name__)


class Stalled(MeterlakeError):
    """A stage could not reach the end of its partitions: ``partitions`` maps ``topic/partition`` to its lag
    (None: unknown, the broker did not answer)."""

    type = "stalled"

    def __init__(self, message: str, lag: Mapping | None = None):
        named = {f"{tp.topic}/{tp.partition}": n for tp, n in sorted((lag or {}).items())}
        super().__init__(f"{message}; lag: {describe(lag)}", partitions=named)


def describe(lag: Mapping | None) -> str:
    """``topic/partition: lag`` for people, or "unknown" when the broker did not answer."""
    if not lag:
        return "unknown (the broker did not answer)" if lag is None else "none"
    return ", ".join(f"{tp.topic}/{tp.partition}: {'?' if n is None else f'{n:,}'}" for tp, n in sorted(lag.items()))


def wait_ms(settings: Settings) -> int:
    return int(settings.kafka.wait_timeout_s * 1000)


def bounded(settings: Settings) -> dict:
    """kafka-python options bounding a client's first connection and each request by ``kafka.wait_timeout_s``."""
    ms = max(wait_ms(settings), 1000)
    return {"bootstrap_timeout_ms": ms, "request_timeout_ms": ms}


def owned(partitions: Mapping[str, Iterable[int]], shards: int = 1, shard: int = 0) -> list:
    """The partitions instance ``shard`` of ``shards`` owns: partition ``p`` of each topic where
    ``p % shards == shard``. Pure."""
    from kafka import TopicPartition

    if not 0 <= shard < shards:
        raise ValueError(f"shard {shard} is not one of 0..{shards - 1}")
    return [TopicPartition(topic, p) for topic in partitions for p in sorted(partitions[topic]) if p % shards == shard]


def topic_partitions(settings: Settings, topics: Iterable[str]) -> dict[str, list[int]]:
    """Each topic's partition ids, from the broker's metadata (a bounded request; raises KafkaError)."""
    from kafka.admin import KafkaAdminClient

    topics = list(topics)
    admin = KafkaAdminClient(**clients.kafka_options(settings), **bounded(settings))
    try:
        described = admin.describe_topics(topics)
    finally:
        admin.close()
    found = {t["topic"] if "topic" in t else t["name"]: sorted(p["partition"] if "partition" in p
                                                                else p["partition_index"] for p in t["partitions"])
             for t in described if t.get("partitions")}
    missing = [t for t in topics if t not in found]
    if missing:
        raise Stalled(f"Kafka reports no partitions for {missing}")
    return {t: found[t] for t in topics}


def fetcher(settings: Settings, **options):
    """A consumer without a group (``group_id=None``): it only fetches, so it never waits on a coordinator."""
    from kafka import KafkaConsumer

    return KafkaConsumer(**clients.kafka_options(settings), group_id=None, enable_auto_commit=False,
                         auto_offset_reset="earliest", isolation_level="read_committed", **bounded(settings),
                         **options)


class Offsets:
    """The committed offsets of ``group`` for partitions assigned by hand: read and written through a client that
    never joins the group, each call bounded; after a failed call the next one makes a fresh client."""

    def __init__(self, settings: Settings, group: str):
        self.settings = settings
        self.group = group
        self.timeout_ms = wait_ms(settings)
        self._client = None

    def _consumer(self):
        if self._client is None:
            from kafka import KafkaConsumer

            self._client = KafkaConsumer(**clients.kafka_options(self.settings), group_id=self.group,
                                         enable_auto_commit=False, **bounded(self.settings))
        return self._client

    def _reset(self) -> None:
        if self._client is not None:
            try:
                self._client.close(autocommit=False, timeout_ms=1000)
            except Exception as exc:  # closing a client that lost its broker may fail; it is dropped anyway
                log.debug("closing the offsets client: %s", exc)
            self._client = None

    def committed(self, tps: Iterable) -> dict:
        """``{tp: OffsetAndMetadata or None}``. Raises KafkaError (a timeout included)."""
        from kafka.errors import KafkaError

        try:
            consumer = self._consumer()
            return {tp: consumer.committed(tp, metadata=True, timeout_ms=self.timeout_ms) for tp in tps}
        except KafkaError:
            self._reset()
            raise

    def commit(self, offsets: Mapping) -> None:
        """Commit ``{tp: OffsetAndMetadata}``. Raises KafkaError (a timeout included)."""
        from kafka.errors import KafkaError

        if not offsets:
            return
        try:
            self._consumer().commit(dict(offsets), timeout_ms=self.timeout_ms)
        except KafkaError:
            self._reset()
            raise

    def close(self) -> None:
        self._reset()


def seek_committed(consumer, offsets: Offsets, tps: list) -> dict:
    """Assign ``tps`` to ``consumer`` and seek each to its committed offset (the beginning where none is).
    Returns the committed ``{tp: OffsetAndMetadata or None}``."""
    committed = offsets.committed(tps)
    consumer.assign(tps)
    start = [tp for tp, c in committed.items() if c is None]
    if start:
        consumer.seek_to_beginning(*start)
    for tp, c in committed.items():
        if c is not None:
            consumer.seek(tp, c.offset)
    return committed


class CatchUp:
    """``--until-caught-up``: done when every partition's position has reached the end offset the broker gave for
    it the first time this asked; past ``deadline_s`` (None: no deadline) :meth:`done` raises :class:`Stalled`."""

    def __init__(self, settings: Settings, deadline_s: float | None = None, *, clock=time.monotonic):
        self.timeout_ms = wait_ms(settings)
        self.deadline = None if deadline_s is None else clock() + deadline_s
        self.deadline_s = deadline_s
        self.clock = clock
        self.ends: dict = {}
        self.last_lag: dict | None = None

    def lag(self, consumer, positions: Mapping) -> dict:
        """``{tp: messages left}`` for the partitions of ``positions`` that have not reached their end. Raises
        KafkaError when the broker does not answer in time."""
        missing = [tp for tp in positions if tp not in self.ends]
        if missing:
            self.ends.update(consumer.end_offsets(missing, timeout_ms=self.timeout_ms))
        self.last_lag = {tp: self.ends[tp] - pos for tp, pos in positions.items()
                         if pos is None or pos < self.ends[tp]}
        return self.last_lag

    def done(self, consumer, positions: Mapping) -> bool:
        from kafka.errors import KafkaError

        try:
            if not self.lag(consumer, positions):
                return True
        except KafkaError as exc:
            log.warning("could not get the end offsets (%s)", exc)
        self.check_deadline()
        return False

    def check_deadline(self) -> None:
        if self.deadline is not None and self.clock() >= self.deadline:
            raise Stalled(f"not caught up within the deadline of {self.deadline_s:g}s", self.last_lag)


def positions(consumer, tps: Iterable, timeout_ms: int) -> dict:
    """The consumer's position on each of ``tps`` (bounded)."""
    return {tp: consumer.position(tp, timeout_ms=timeout_ms) for tp in tps}


def lag_or_none(catch_up: CatchUp, consumer, tps: Iterable, timeout_ms: int) -> dict | None:
    """``tps``' lag from the broker's end offsets (:meth:`CatchUp.lag`), or None if the broker did not answer."""
    from kafka.errors import KafkaError

    try:
        return catch_up.lag(consumer, positions(consumer, tps, timeout_ms))
    except KafkaError as exc:
        log.warning("could not get the lag (%s)", exc)
        return None


class Watchdog:
    """No progress for ``stall_timeout_s`` while lag remains: :meth:`stalled` says a fresh consumer is due; after
    ``rejoins`` of them without progress in between, :meth:`rejoin` raises :class:`Stalled`."""

    def __init__(self, stall_timeout_s: float, rejoins: int, *, what: str, clock=time.monotonic,
                 service: str | None = None):
        self.stall_timeout_s = stall_timeout_s
        self.service = service or what.removeprefix("the ")  # the label of its rejoins' metric
        self.rejoins = rejoins
        self.what = what
        self.clock = clock
        self.failed = 0
        self.last = clock()

    def progress(self) -> None:
        self.last = self.clock()
        self.failed = 0

    def due(self) -> bool:
        """Has there been no progress for ``stall_timeout_s``?"""
        return self.clock() - self.last >= self.stall_timeout_s

    def stalled(self, lag: Callable[[], Mapping | None], busy: bool = False) -> bool:
        """Asked on each turn of a stage's loop: after ``stall_timeout_s`` without progress, ``lag()`` (None: the
        broker did not answer) decides. Lag left, an unknown lag or a stage ``busy`` with work it cannot finish
        (batches unwritten or uncommitted) count a fresh consumer (:meth:`rejoin`) and answer True; nothing left to
        read is an idle stage, not a stalled one."""
        if not self.due():
            return False
        found = lag()
        if found is None or found or busy:
            self.rejoin(found)
            return True
        self.progress()
        return False

    def failed_to_connect(self, catch_up: CatchUp) -> None:
        """A fresh consumer could not reach Kafka: wait out the stall timeout (the run's deadline still holds),
        then count it as a fresh consumer without progress (:meth:`rejoin`)."""
        while not self.due():
            catch_up.check_deadline()
            time.sleep(min(0.5, self.stall_timeout_s))
        self.rejoin(catch_up.last_lag)

    def rejoin(self, lag: Mapping | None) -> None:
        """Count a fresh consumer about to be made; raise :class:`Stalled` if the last ``rejoins`` made none."""
        if self.failed >= self.rejoins:
            raise Stalled(f"{self.what} made no progress for {self.stall_timeout_s:g}s, "
                          f"{self.rejoins} times over with a fresh consumer", lag)
        self.failed += 1
        self.last = self.clock()
        metrics.REJOINS.labels(self.service).inc()
        log.warning("%s made no progress for %gs with lag %s: a fresh consumer (%d of %d)", self.what,
                    self.stall_timeout_s, describe(lag), self.failed, self.rejoins)
