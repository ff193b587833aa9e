"""Ingest workers watching one landing directory: each file processed exactly once, by whichever worker claims it.

Run: ``meterlake ingest watch DIR [--once] [--worker-id W] [--json]`` (DIR: a local path or ``hdfs://...``; default
``ingest.landing_dir``). Any number of workers, on any machines, may watch the same directory.

A pass (:meth:`Worker.scan`) lists the landing directory (:mod:`streaming.ingest.storage`) and, for each file:

1. hashes it (SHA-256: the claim key, see :mod:`streaming.ingest.claims` for why the content and not the name);
2. a file above ``ingest.claim_check_bytes`` is *announced* (claim-check, :mod:`streaming.ingest.claimcheck`):
   its claim goes to ``announced`` and a reference goes to ``kafka.files_topic``, from which any worker takes it
   (:meth:`Worker.take_references`), streams it from storage and continues at 4;
3. a smaller file is claimed (``INSERT ... IF NOT EXISTS USING TTL lease``); a file claimed by another worker
   is skipped; a file whose content is already ``done`` is a *duplicate file* when it landed under another
   name or at another time (counted, copied to the quarantine area with reason ``duplicate_file``, never
   published again), or the original itself, not yet removed by its worker (removed);
4. under a :class:`~streaming.ingest.claims.Lease` renewed by a heartbeat thread, the file is parsed into a
   spool and its checksum checked again (a file that changed is released for a later pass); it is copied to
   the lake's raw area (accepted) or quarantine area with ``<file>.reason.json`` (rejected) *before* it is
   published, so no published file goes unarchived; then it is published in one Kafka transaction
   (:mod:`streaming.ingest.publish`) whose commit first checks the lease is still held (a rejected file
   publishes only its rejection record, to the quarantine topic);
5. the claim is marked ``done`` (no TTL) with where the file was archived, and the file is removed from the
   landing directory.

A worker that dies (SIGKILL) stops renewing: after the lease another worker claims the file and publishes it
with the same transactional id, which aborts whatever the dead worker had sent. The one window left is a death
between the Kafka commit and the ``done`` mark (milliseconds): the file is then published twice, which the store
absorbs (same cells, same write timestamps) and the lake's compaction collapses.

Grain of :class:`WatchResult`: one per run of a worker; ``files`` has one entry per file this worker processed.
"""
from __future__ import annotations

import logging
import os
import socket
import tempfile
import time
import zlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from kafka.errors import KafkaError

from meterlake import clients, keyspace, privacy
from meterlake.config import Settings
from meterlake.errors import MeterlakeError
from streaming import metrics, offsets
from streaming.ingest import claimcheck, claims, publish
from streaming.ingest.claims import Claims, Lease, LeaseLost
from streaming.ingest.common import FileRejected
from streaming.ingest.pipeline import detect, validated_file
from streaming.ingest.storage import Landed, Storage

log = logging.getLogger(__name__)
GROUP = "meterlake-ingest"


def default_worker_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


class _Changed(Exception):
    """The file's bytes differ from the checksum it was claimed under (it was still being written)."""


class _Failed(Exception):
    """Processing a file failed for a reason outside the file's content (Kafka, the archive, a bug): the file is
    released for a later pass, or quarantined after ``ingest.max_attempts`` (a poison file)."""


#: Entries a worker's answer keeps in each of its lists (the most recent): a long-running watch stays bounded.
LISTED = 1000


class Recent(list):
    """A list that keeps only its last :data:`LISTED` entries."""

    def append(self, item) -> None:
        super().append(item)
        if len(self) > LISTED:
            del self[0]


@dataclass
class WatchResult:
    worker: str
    files: list[dict] = field(default_factory=Recent)  # processed here: accepted or rejected (the last LISTED)
    duplicates: list[dict] = field(default_factory=Recent)
    announced: list[dict] = field(default_factory=Recent)
    leftovers: int = 0  # originals found done but still landed (their worker died after finishing)
    skipped: int = 0  # claimed by another worker at the time
    released: int = 0  # changed while being read, or failed to publish: left for a later pass
    poisoned: int = 0  # failed ingest.max_attempts times here: quarantined with reason processing_failed
    lost: int = 0  # the lease ran out while working: another worker has the file
    references: int = 0  # claim-check references taken from the files topic
    passes: int = 0
    seconds: float = 0.0

    def to_json(self) -> dict:
        return {"worker": self.worker, "files": self.files, "duplicates": self.duplicates,
                "announced": self.announced, "leftovers": self.leftovers, "skipped": self.skipped,
                "released": self.released, "poisoned": self.poisoned, "lost": self.lost, "references": self.references,
                "passes": self.passes, "seconds": round(self.seconds, 3)}


class Worker:
    """One ingest worker: its claims, its view of the landing directory, its Kafka clients."""

    def __init__(self, settings: Settings, landing_url: str | None = None, worker_id: str | None = None, *,
                 now: datetime | None = None, spool_dir: str | None = None):
        self.settings = settings
        self.worker_id = worker_id or settings.ingest.worker_id or default_worker_id()
        self.storage = Storage(settings, landing_url)
        self.now = now  # the validation instant (future timestamps); None: the clock, per file
        self.spool_dir = spool_dir
        self.result = WatchResult(self.worker_id)
        clients.ensure_topics(settings)
        self.session = clients.cassandra_session(settings, consistency=settings.cassandra.write_consistency)
        try:
            keyspace.ensure(self.session, settings.cassandra.keyspace, settings.cassandra.replication_factor)
            self.claims = Claims(self.session, settings.cassandra.keyspace, self.worker_id, settings.ingest.lease_s)
        except BaseException:
            self.session.cluster.shutdown()
            raise
        self._producer = None
        self._consumer = None
        self._attempts: dict[str, int] = {}  # failed attempts at a file's content, by this worker
        ingest = settings.ingest
        self._watchdog = offsets.Watchdog(ingest.stall_timeout_s, ingest.stall_rejoins,
                                          what=f"ingest watch's consumer of {settings.kafka.files_topic}",
                                          service="ingest")
        self._committed: dict | None = None  # the files topic's committed offsets, at the watchdog's last look

    def _drop_consumer(self) -> None:
        consumer, self._consumer = self._consumer, None
        if consumer is not None:
            try:
                consumer.close(autocommit=False, timeout_ms=offsets.wait_ms(self.settings))
            except Exception as exc:  # a consumer that lost its broker may not close cleanly; it is dropped anyway
                log.debug("closing the files consumer: %s", exc)

    def close(self) -> None:
        self._drop_consumer()
        if self._producer is not None:
            self._producer.close(timeout=10)
        self.session.cluster.shutdown()

    def __enter__(self) -> Worker:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ------------------------------------------------------------------------------------------------ loop

    def run(self, *, once: bool = False, stop=None, max_seconds: float | None = None) -> WatchResult:
        """Scan and take references until ``stop`` is set (or after one pass with ``once``)."""
        start = time.monotonic()
        metrics.serve(self.settings, "ingest")
        while True:
            self.scan(stop)
            if once:
                if self._references_waiting():
                    self.take_references(until_caught_up=True, stop=stop)
                break
            try:
                self.take_references(max_seconds=self.settings.ingest.poll_s, stop=stop)
            except KafkaError as exc:  # the references wait in the topic; a fresh consumer on the next pass
                log.warning("taking references from %s failed: %s", self.settings.kafka.files_topic, exc)
                self._drop_consumer()
            if (stop is not None and stop.is_set()) or (max_seconds is not None
                                                         and time.monotonic() - start > max_seconds):
                break
        self.result.seconds += time.monotonic() - start
        return self.result

    def scan(self, stop=None) -> None:
        """One pass over the landing directory."""
        self.result.passes += 1
        landed = self.storage.list()
        if landed:  # workers start at different places, so they do not all contend for the same first file
            at = zlib.crc32(self.worker_id.encode()) % len(landed)
            landed = landed[at:] + landed[:at]
        threshold = self.settings.ingest.claim_check_bytes
        for file in landed:
            if stop is not None and stop.is_set():
                return
            try:
                key = self.storage.checksum(file)
            except FileNotFoundError:
                continue  # processed and removed by another worker meanwhile
            if file.size > threshold:
                self._announce(file, key)
            else:
                ok, row = self.claims.claim(key, file.url, file.size, file.mtime_ns)
                if ok:
                    self._process(file, key, via="scan")
                else:
                    self._existing(file, key, row)

    # ---------------------------------------------------------------------------------------- claim-check

    def _announce(self, file: Landed, key: str) -> None:
        ok, row = self.claims.claim(key, file.url, file.size, file.mtime_ns, state=claims.ANNOUNCED)
        if not ok:
            self._existing(file, key, row)
            return
        try:
            fmt = self._detect(file)
            ref = claimcheck.FileRef(file.url, key, file.size, fmt)
            claimcheck.announce(self._announcer(), self.settings.kafka.files_topic, ref)
        except Exception:
            self.claims.release(key)  # announce it again on a later pass
            raise
        self.result.announced.append({"path": file.url, "checksum": key, "size": file.size, "format": fmt})

    def _detect(self, file: Landed, fs=None) -> str | None:
        with tempfile.NamedTemporaryFile(prefix="meterlake-head-", dir=self.spool_dir) as head:
            head.write(self.storage.head(file, fs))
            head.flush()
            try:
                return detect(head.name)
            except FileRejected:
                return None

    def _announcer(self):
        if self._producer is None:
            from kafka import KafkaProducer

            self._producer = KafkaProducer(**clients.kafka_options(self.settings), acks="all",
                                           enable_idempotence=True)
        return self._producer

    def _references_waiting(self) -> bool:
        """Does the files topic hold references this group has not taken? (Cheap: no group join.)"""
        found = self._references_lag()
        if found is None:
            raise offsets.Stalled(f"the brokers did not answer about {self.settings.kafka.files_topic}")
        return bool(found[1])

    def _references_lag(self) -> tuple[dict, dict] | None:
        """(the group's committed offset, the references left) per partition of the files topic, asked of a fresh
        client that never joins the group, each call bounded; None when the brokers do not answer in time."""
        from kafka import KafkaConsumer

        topic = self.settings.kafka.files_topic
        wait_ms = offsets.wait_ms(self.settings)
        consumer = None
        try:
            tps = offsets.owned(offsets.topic_partitions(self.settings, [topic]))
            consumer = KafkaConsumer(**clients.kafka_options(self.settings), group_id=GROUP, enable_auto_commit=False,
                                     isolation_level="read_committed", **offsets.bounded(self.settings))
            ends = consumer.end_offsets(tps, timeout_ms=wait_ms)
            starts = consumer.beginning_offsets(tps, timeout_ms=wait_ms)
            committed = {tp: consumer.committed(tp, timeout_ms=wait_ms) for tp in tps}
        except KafkaError as exc:
            log.info("the lag of %s: %s", topic, exc)
            return None
        finally:
            if consumer is not None:
                consumer.close(autocommit=False, timeout_ms=wait_ms)
        at = {tp: starts[tp] if committed[tp] is None else committed[tp] for tp in tps}
        return at, {tp: ends[tp] - at[tp] for tp in tps if ends[tp] > at[tp]}

    def _watch(self) -> None:
        """The stall watchdog of the files consumer (``ingest.stall_timeout_s``): when it has taken no reference
        for that long, the group's committed offsets are compared with the last look; moved (another worker took
        them) or nothing left is progress, else the consumer is replaced by a fresh one, and after
        ``ingest.stall_rejoins`` of those without progress :class:`~streaming.offsets.Stalled` names the
        partitions and their lag."""
        if not self._watchdog.due():
            return
        found = self._references_lag()
        if found is not None and (not found[1] or found[0] != self._committed):
            self._committed = found[0]
            self._watchdog.progress()
            return
        try:
            self._watchdog.rejoin(None if found is None else found[1])
        except offsets.Stalled:
            self._watchdog.progress()  # reported: a later call (the worker run again) starts its count afresh
            raise
        finally:
            self._drop_consumer()

    def _files_consumer(self):
        if self._consumer is None:
            from kafka import KafkaConsumer

            ingest = self.settings.ingest
            self._consumer = KafkaConsumer(
                **clients.kafka_options(self.settings), group_id=GROUP, enable_auto_commit=False,
                auto_offset_reset="earliest", isolation_level="read_committed", max_poll_records=1,
                max_poll_interval_ms=(ingest.transaction_timeout_s + 300) * 1000, **offsets.bounded(self.settings))
            clients.subscribe(self._consumer, [self.settings.kafka.files_topic])
        return self._consumer

    def take_references(self, *, until_caught_up: bool = False, max_seconds: float | None = None,
                        stop=None) -> None:
        """Take claim-check references from the files topic: until caught up, or for ``max_seconds``."""
        start = time.monotonic()
        wait_ms = offsets.wait_ms(self.settings)
        catch_up = offsets.CatchUp(self.settings)
        while stop is None or not stop.is_set():
            self._watch()
            consumer, batch, assigned = self._poll_references(wait_ms)
            if until_caught_up and assigned and not batch and self._caught_up(consumer, assigned, catch_up):
                return
            if max_seconds is not None and time.monotonic() - start > max_seconds:
                return
            if until_caught_up and not assigned and time.monotonic() - start > 60:
                return  # no partition assigned in a minute: others hold them

    def _poll_references(self, wait_ms: int):
        """One poll of the files topic, its references handled and committed: (consumer, batch, assignment). A
        broker that does not answer is no progress (the watchdog counts it), not an error."""
        try:
            consumer = self._files_consumer()
            batch = consumer.poll(timeout_ms=500)
        except KafkaError as exc:
            log.info("polling %s: %s", self.settings.kafka.files_topic, exc)
            self._drop_consumer()
            time.sleep(min(1.0, self.settings.ingest.stall_timeout_s))
            return None, {}, set()
        for records in batch.values():
            for record in records:
                self._reference(record.value)
        if batch:
            self._watchdog.progress()
            try:  # the reference is handled: processed, or found claimed or done (a failed commit: taken again)
                consumer.commit(timeout_ms=wait_ms)
            except KafkaError as exc:
                log.info("committing %s: %s", self.settings.kafka.files_topic, exc)
                self._drop_consumer()
                return None, batch, set()
        return consumer, batch, consumer.assignment()

    def _caught_up(self, consumer, assigned, catch_up: offsets.CatchUp) -> bool:
        try:  # a partition revoked meanwhile raises; asked again on the next turn
            return catch_up.done(consumer, offsets.positions(consumer, assigned, offsets.wait_ms(self.settings)))
        except KafkaError as exc:
            log.info("positions of the files topic: %s", exc)
            return False

    def _reference(self, value: bytes) -> None:
        try:
            ref = claimcheck.FileRef.from_bytes(value)
        except claimcheck.BadReference as exc:
            log.warning("ignoring a message on %s: %s", self.settings.kafka.files_topic, exc)
            return
        self.result.references += 1
        fs, file = self.storage.at(ref.path)
        if file is None or file.size != ref.size:
            log.info("%s is gone or changed since it was announced; a scan will see it again", ref.path)
            return
        ok, row = self.claims.take(ref.checksum, file.url, file.size, file.mtime_ns)
        if ok:
            self._process(file, ref.checksum, via="reference", fs=fs, fmt=ref.format)
        else:
            self._existing(file, ref.checksum, row, fs)

    # ------------------------------------------------------------------------------------------ a file

    def _existing(self, file: Landed, key: str, row: claims.ClaimRow | None, fs=None) -> None:
        """A file whose content is already claimed: skip it, or handle a duplicate or a leftover."""
        if row is None or row.state != claims.DONE:
            self.result.skipped += 1
            return
        if (row.path, row.size, row.mtime_ns) == (file.url, file.size, file.mtime_ns):
            # the original: archived before it was marked done; its worker removes it, or died before that
            if self.storage.remove(file, fs):
                self.result.leftovers += 1
            return
        with self.storage.local(file, fs, self.spool_dir) as local:
            if self.storage.local_checksum(local) != key:
                return  # changed since it was hashed: a later pass sees it again
            where = self.storage.quarantine(file, key, {"reason": "duplicate_file", "duplicate_of": row.path,
                                                        "detail": f"the same bytes landed as {row.path}"}, local)
        self.storage.remove(file, fs)
        metrics.FILES.labels("ingest", "duplicate").inc()
        metrics.quarantined("ingest", ["duplicate_file"])
        self.result.duplicates.append({"path": file.url, "checksum": key, "duplicate_of": row.path,
                                       "quarantined_to": where})

    def _process(self, file: Landed, key: str, *, via: str, fs=None, fmt: str | None = None) -> None:
        now = self.now or datetime.now(UTC)
        began = time.monotonic()
        try:
            with Lease(self.claims, key, file.url, file.size, file.mtime_ns) as lease:
                try:
                    with self.storage.local(file, fs, self.spool_dir) as local:
                        result, outcome, where = self._publish(local, file, key, fmt, now, lease)
                except (_Changed, LeaseLost, MeterlakeError):
                    raise
                except Exception as exc:  # Kafka's own errors, the archive's, a bug: not this worker's end
                    where = self._failed(file, key, fs, exc)
                    lease.check()
                    if not self.claims.finish(key, file.url, file.size, file.mtime_ns, lease.claimed_at,
                                              outcome="rejected", format=fmt, file_id=None, reads=0, quarantined=0,
                                              archived_to=where):
                        raise LeaseLost(f"lost the claim on {file.url} before marking it done") from None
                    self.storage.remove(file, fs)
                    self.result.poisoned += 1
                    metrics.FILES.labels("ingest", "rejected").inc()
                    metrics.quarantined("ingest", ["processing_failed"])
                    self.result.files.append({"path": file.url, "checksum": key, "via": via, "status": "rejected",
                                              "reason": "processing_failed", "detail": f"{type(exc).__name__}: "
                                              f"{exc}", "archived_to": where})
                    return
                lease.check()
                if not self.claims.finish(key, file.url, file.size, file.mtime_ns, lease.claimed_at,
                                          outcome=outcome, format=result.format, file_id=result.file_id,
                                          reads=result.reads, quarantined=result.quarantined, archived_to=where):
                    raise LeaseLost(f"lost the claim on {file.url} before marking it done")
        except _Failed as exc:
            log.warning("processing %s failed, leaving it for a later pass: %s", file.url, exc)
            self._release(file, key)
            return
        except _Changed:
            log.info("%s changed while it was read; leaving it for a later pass", file.url)
            self.claims.release(key)
            self.result.released += 1
            return
        except LeaseLost as exc:
            log.warning("%s", exc)
            self.result.lost += 1
            return
        except MeterlakeError as exc:  # Kafka or Cassandra failed: nothing was published
            log.warning("processing %s failed, leaving it for a later pass: %s", file.url, exc.message)
            self._release(file, key)
            return
        self.storage.remove(file, fs)
        metrics.FILES.labels("ingest", result.status).inc()
        metrics.READS.labels("ingest").inc(result.reads)
        metrics.quarantined("ingest", result.reasons)
        metrics.succeeded("ingest", began)
        self.result.files.append({**result.to_json(), "path": file.url, "checksum": key, "via": via,
                                  "archived_to": where})

    def _release(self, file: Landed, key: str) -> None:
        try:
            self.claims.release(key)
        except Exception as release_exc:  # the lease expires by itself
            log.warning("releasing the claim on %s failed: %s", file.url, release_exc)
        self.result.released += 1

    def _failed(self, file: Landed, key: str, fs, exc: Exception) -> str:
        """An attempt at ``file`` failed with ``exc``: raise :class:`_Failed` (release it for a later pass), or after
        ``ingest.max_attempts`` quarantine it as a poison file and return where it went."""
        attempts = self._attempts[key] = self._attempts.get(key, 0) + 1
        if attempts < self.settings.ingest.max_attempts:
            raise _Failed(f"{type(exc).__name__}: {exc} (attempt {attempts} of "
                          f"{self.settings.ingest.max_attempts})") from exc
        log.error("%s failed %d times (last: %s: %s); quarantining it", file.url, attempts, type(exc).__name__, exc)
        try:
            with self.storage.local(file, fs, self.spool_dir) as local:
                return self.storage.quarantine(file, key, {"reason": "processing_failed", "attempts": attempts,
                                                           "detail": f"{type(exc).__name__}: {exc}"}, local)
        except Exception as quarantine_exc:
            raise _Failed(f"quarantining it failed too: {quarantine_exc}") from quarantine_exc

    def _publish(self, local: Path, file: Landed, key: str, fmt: str | None, now: datetime, lease: Lease):
        """Parse, archive (before publishing: a worker dying after the Kafka commit must not leave the file
        unarchived), publish. Returns (result, outcome, archived_to)."""
        settings = self.settings
        try:
            with validated_file(local, fmt, now=now, batch_rows=settings.ingest.batch_rows,
                                spool_dir=self.spool_dir, source_name=file.name,
                                erased=privacy.erasure_list(settings) or None) as validated:
                if validated.digest.hex() != key:
                    raise _Changed()
                where = self.storage.archive(file, key, local)
                publish.publish(validated, settings, before_commit=lease.check)
                return validated.result, "accepted", where
        except FileRejected as exc:
            if self.storage.local_checksum(local) != key:  # a file still being written looks truncated
                raise _Changed() from None
            result = exc.result
            where = self.storage.quarantine(file, key, {"reason": next(iter(result.reasons), None),
                                                        "detail": result.detail, "lines": result.lines}, local)
            publish.publish_rejection(result, settings, file.name, key, before_commit=lease.check)
            return result, "rejected", where
