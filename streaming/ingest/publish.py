"""Publishing an accepted file: all of it in ONE Kafka transaction, or nothing.

:func:`publish` takes a :class:`~streaming.ingest.pipeline.ValidatedFile` (handed out only once the whole file
was read and accepted) and sends, inside one transaction:

* every reads batch to ``kafka.reads_topic`` by the message contract (:func:`streaming.kafka_io.publish_reads`:
  interval reads packed into event stream sets, register and device reads as rows, one partition's meters per
  message, keyed by meter point);
* every quarantine batch (:data:`~meterlake.schema.QUARANTINE_SCHEMA` as Arrow IPC) to ``kafka.quarantine_topic``,
  keyed by the source file's name;

then commits. On any error the transaction is aborted: consumers reading with ``isolation_level=
"read_committed"`` (the store, the mirror) never see part of a file. :func:`publish_rejection` sends the one
quarantine record of a rejected file (its reason; none of its reads), also transactionally.

Transactional id: one per file, ``meterlake-ingest-<first 32 hex digits of the file's SHA-256>``
(:func:`transactional_id`). Kafka fences an older producer with the same id and aborts its open transaction as
soon as a new one calls ``init_transactions``: so the worker that takes over a dead (or paused, "zombie") worker's
file (see :mod:`streaming.ingest.watch`) aborts what the dead one had sent at once, and a zombie that wakes up
after losing its lease cannot commit a second copy. A per-worker id would leave a dead worker's transaction open,
blocking read_committed consumers until ``transaction_timeout_s``, and would not fence a zombie.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa

from meterlake import clients, schema
from meterlake.config import Settings
from meterlake.errors import ServiceError
from streaming import kafka_io

log = logging.getLogger(__name__)

MAX_REQUEST_BYTES = 16 << 20  # the local brokers' message.max.bytes; messages aim at ~1 MiB before compression


def transactional_id(digest: bytes | str) -> str:
    """The transactional id of the file with SHA-256 ``digest`` (bytes or hex)."""
    hexdigest = digest.hex() if isinstance(digest, bytes) else digest
    return f"meterlake-ingest-{hexdigest[:32]}"


def transactional_producer(settings: Settings, txn_id: str):
    """A kafka-python producer with ``txn_id`` (idempotent, acks=all), its transactions initialised (which
    fences any older producer with the same id and aborts its open transaction). The caller closes it."""
    from kafka import KafkaProducer
    from kafka.errors import KafkaError

    try:
        producer = KafkaProducer(
            **clients.kafka_options(settings), transactional_id=txn_id, enable_idempotence=True, acks="all",
            transaction_timeout_ms=settings.ingest.transaction_timeout_s * 1000,
            max_request_size=MAX_REQUEST_BYTES, linger_ms=5, batch_size=1 << 20, max_block_ms=120_000)
    except KafkaError as exc:
        raise ServiceError(f"cannot connect to Kafka: {exc}", service="kafka") from exc
    try:
        producer.init_transactions()
    except BaseException:
        producer.close(timeout=5)
        raise
    return producer


@dataclass
class Publication:
    """What one transaction sent."""

    messages: int = 0
    rows: int = 0  # sets and read rows on the reads topic
    quarantine_messages: int = 0
    quarantine_rows: int = 0
    bytes: int = 0
    partitions: dict[int, int] = field(default_factory=dict)

    def to_json(self) -> dict:
        return {"messages": self.messages, "rows": self.rows, "quarantine_messages": self.quarantine_messages,
                "quarantine_rows": self.quarantine_rows, "bytes": self.bytes}


def _partitions(producer, topic: str, settings: Settings) -> int:
    known = producer.partitions_for(topic)
    return len(known) if known else settings.kafka.partitions


def _transaction(producer, settings: Settings, txn_id: str | None, send: Callable[[object], None],
                 before_commit: Callable[[], None] | None, what: str) -> None:
    from kafka.errors import KafkaError

    own = producer is None
    if own:
        producer = transactional_producer(settings, txn_id)
    try:
        producer.begin_transaction()
        try:
            send(producer)
            if before_commit is not None:
                before_commit()  # e.g. "do I still hold the claim?"; raising aborts
            producer.commit_transaction()
        except BaseException as exc:
            try:
                producer.abort_transaction()
            except Exception as abort_exc:  # fenced or the broker gone: the coordinator aborts it on timeout
                log.warning("aborting the transaction of %s failed: %s", what, abort_exc)
            if isinstance(exc, KafkaError):
                raise ServiceError(f"publishing {what} failed, nothing of it is visible: {exc}",
                                   service="kafka") from exc
            raise
    finally:
        if own:
            producer.close(timeout=10)


def publish(validated, settings: Settings, producer=None, *,
            before_commit: Callable[[], None] | None = None) -> Publication:
    """Publish an accepted file's reads and quarantine records in one transaction; returns what was sent.

    ``producer``: a transactional producer whose transactions are initialised (:func:`transactional_producer`);
    None makes one with the file's :func:`transactional_id` and closes it after. ``before_commit`` runs after the
    last send and before the commit; if it raises, the transaction is aborted. Raises
    :class:`~meterlake.errors.ServiceError` when nothing was published.
    """
    out = Publication()
    k = settings.kafka
    name = validated.result.path

    def send(p) -> None:
        partitions = _partitions(p, k.reads_topic, settings)
        for batch in validated.reads():
            sent = kafka_io.publish_reads(p, k.reads_topic, batch, partitions, flush=False)
            out.messages += sent.messages
            out.bytes += sent.bytes
            for partition, rows in sent.rows.items():
                out.rows += rows
                out.partitions[partition] = out.partitions.get(partition, 0) + rows
        for batch in validated.quarantine():
            _send_quarantine(p, k.quarantine_topic, batch, out)

    _transaction(producer, settings, transactional_id(validated.digest), send, before_commit, name)
    return out


def _send_quarantine(producer, topic: str, batch: pa.RecordBatch, out: Publication) -> None:
    value = schema.to_ipc_bytes(batch)
    key = batch.column(0)[0].as_py().encode()  # the source file (one file per batch)
    producer.send(topic, key=key, value=value)
    out.quarantine_messages += 1
    out.quarantine_rows += batch.num_rows
    out.bytes += len(value)


def rejection_batch(result, source_name: str) -> pa.RecordBatch:
    """The one quarantine record of a rejected file: its rejection reason, no line."""
    reason = next(iter(result.reasons), "unknown_format")
    return schema.quarantine_batch([{"source_file": source_name, "source_line": None, "field": None,
                                     "reason": reason, "detail": result.detail, "raw": None}])


def publish_rejection(result, settings: Settings, source_name: str, digest: bytes | str | None = None,
                      producer=None, *, before_commit: Callable[[], None] | None = None) -> Publication:
    """Record a rejected file on the quarantine topic (its reason only: none of its reads are published)."""
    out = Publication()
    batch = rejection_batch(result, source_name)
    txn_id = transactional_id(digest) if digest else f"meterlake-ingest-rejected-{source_name}"[:200]
    _transaction(producer, settings, txn_id,
                 lambda p: _send_quarantine(p, settings.kafka.quarantine_topic, batch, out), before_commit,
                 source_name)
    return out


def ingest_paths(paths, settings: Settings, *, now, fmt: str | None = None, dry_run: bool = False,
                 batch_rows: int | None = None, progress=None) -> list:
    """Ingest files one after another: each is checked whole, then published in one transaction (or, rejected,
    announced on the quarantine topic); with ``dry_run`` only checked. Returns one ``FileResult`` per path.

    ``now`` is the validation instant (future timestamps), never a version or an id. The CLI's
    ``meterlake ingest PATH…`` and the demo both run this. Publishing consults the erasure list
    (:mod:`meterlake.privacy`): an erased meter's reads are dropped; a dry run does not (it needs no service).
    """
    from meterlake import clients, privacy
    from streaming.ingest import DEFAULT_BATCH_ROWS, FileRejected, ingest_file, validated_file

    rows = batch_rows or DEFAULT_BATCH_ROWS
    erased = None
    if not dry_run:
        clients.ensure_topics(settings)
        erased = privacy.erasure_list(settings) or None  # None: no check per read at all
    results = []
    for path in paths:
        path = Path(path)
        if progress is not None:
            progress(f"{'checking' if dry_run else 'ingesting'} {path} ...")
        if dry_run:
            results.append(ingest_file(path, fmt, now=now, batch_rows=rows))
            continue
        try:
            with validated_file(path, fmt, now=now, batch_rows=rows, erased=erased) as validated:
                publish(validated, settings)
                results.append(validated.result)
        except FileRejected as exc:
            publish_rejection(exc.result, settings, path.name)
            results.append(exc.result)
    return results
