"""Submitting commands, the service that sends them and follows them up, and a meter's settings.

Run: ``meterlake meters command MPAN KIND --param k=v`` (:func:`submit`), ``meterlake meters run``
(:func:`run`), ``meterlake meters show MPAN`` (:func:`show`).

Submit
    Validate against the meter's registration and its desired settings (:func:`model.validate`); an impossible
    command is refused with a reason and nothing is written or sent. Then register the command id with a
    lightweight transaction, write its ``submitted`` row and list it as open (:mod:`~streaming.commands.tables`).
    A submission with an idempotency key already used finds the same command (``duplicate``) if its content is
    the same, and is refused if not. Submitting writes to Cassandra only: sending is the service's job, so a
    command whose submitter dies after the write is still sent.

The service (``meters run``)
    One loop, for the partitions the consumer group gives it on the responses topic (a meter's commands and
    answers share a partition number, the command's *shard*):

    1. poll the meters' answers; each answer to a command awaiting one acknowledges or rejects it
       (:func:`model.respond`); a duplicate or late answer changes nothing and is counted;
    2. read the shards' open commands (new submissions), and for each ask :func:`model.step` what is due: the
       first send, a retry (same id, next attempt) after ``meters.ack_timeout_s``, or expiry after
       ``meters.max_attempts`` sends or ``meters.expire_after_s``;
    3. send what is due to the commands topic and wait for Kafka's acknowledgement; only then write the ``sent``
       rows, the answers' and expiries' rows; close the finished commands; then commit the answers' offsets.

    A crash anywhere replays safely: an unrecorded send is sent again under the same id and attempt (the meter
    answers a command it already applied without applying it again), an uncommitted answer is read again and
    finds its command already finished. The status of a command is always the fold of its rows.

Grain of :class:`RunResult`: one per run.
"""
from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta

from meterlake import calendar, clients, ids
from meterlake.config import Settings
from meterlake.errors import ServiceError, UsageError
from streaming.commands import catalogue, messages, model, registrations
from streaming.commands.model import Command, Policy, State, Tracked
from streaming.commands.tables import Tables, ensure

log = logging.getLogger(__name__)


def now_utc() -> datetime:
    return messages.ms(datetime.now(UTC))


def policy(settings: Settings) -> Policy:
    m = settings.meters
    return Policy(ack_timeout=timedelta(seconds=m.ack_timeout_s), max_attempts=m.max_attempts,
                  expire_after=timedelta(seconds=m.expire_after_s))


def topics(settings: Settings) -> list[str]:
    return [settings.meters.commands_topic, settings.meters.responses_topic]


def open_tables(settings: Settings) -> Tables:
    """The tables (created if absent) on a new session; the caller shuts ``tables.session.cluster`` down."""
    session = clients.cassandra_session(settings, consistency=settings.cassandra.write_consistency)
    try:
        ensure(session, settings.cassandra.keyspace, settings.cassandra.replication_factor)
        return Tables(session, settings.cassandra.keyspace)
    except BaseException:
        session.cluster.shutdown()
        raise


@contextmanager
def _using(settings: Settings, tables: Tables | None):
    """``tables`` as given (the caller's), or on a session of its own that is shut down after."""
    if tables is not None:
        yield tables
        return
    own = open_tables(settings)
    try:
        yield own
    finally:
        own.session.cluster.shutdown()


def check_meter_point(meter_point: str) -> str:
    _, problem = ids.meter_point_problem(meter_point)
    if problem is not None:
        raise UsageError(f"not a meter point: {problem.detail}", meter_point=meter_point)
    return meter_point


def describe(tracked: Tracked) -> dict:
    """A command as the CLI answers it."""
    c, s = tracked.command, tracked.status
    return {"command_id": str(c.command_id), "meter_point": c.meter_point, "kind": c.kind, "params": dict(c.params),
            "state": str(s.state), "attempt": s.attempt, "submitted_at": c.submitted_at, "not_before": c.not_before,
            "operator": c.operator, "reason": c.reason, "idempotency_key": c.idempotency_key,
            "history": [{"state": str(t.state), "at": t.at, "attempt": t.attempt, "detail": t.detail}
                        for t in tracked.history]}


def submit(settings: Settings, meter_point: str, kind: str, params: Mapping[str, str], *,
           not_before: datetime | None = None, idempotency_key: str | None = None, operator: str | None = None,
           reason: str | None = None, now: datetime | None = None, tables: Tables | None = None,
           lookup: registrations.Lookup | None = None,
           tariffs: Iterable[str] | None = None) -> tuple[Tracked, bool]:
    """Submit a command; returns it with its status and whether it was a duplicate (an idempotency key already
    used for the same content). Raises UsageError when it is refused (``details["refusal"]``: the reason code).
    A ``set_tariff`` must name one of ``tariffs`` (default: the tariffs loaded into the lake,
    :mod:`~streaming.commands.catalogue`)."""
    check_meter_point(meter_point)
    operator = operator or settings.meters.operator
    now = messages.ms(now or datetime.now(UTC))
    not_before = messages.ms(not_before) if not_before else None
    clean = {str(k).strip(): str(v).strip() for k, v in params.items()}
    cid = model.command_id(meter_point, idempotency_key)
    digest = model.digest(meter_point, kind, clean, not_before)
    with _using(settings, tables) as tables:
        if idempotency_key is not None:
            existing = tables.by_id(cid)
            if existing is not None:
                return _duplicate(tables, settings, cid, existing, digest, kind, clean, not_before, operator,
                                  reason, idempotency_key), True
        history = tables.meter(meter_point)
        registration = (lookup or registrations.for_settings(settings))(meter_point, calendar.locate(now)[0])
        try:
            if kind == "set_tariff" and tariffs is None:
                tariffs = catalogue.from_lake(settings)
            valid = model.validate(kind, clean, registration, operator=operator, reason=reason,
                                   prepay_mode=model.prepay_mode(history),
                                   max_credit_pence=settings.meters.max_credit_pence, tariffs=tariffs)
        except model.Refused as exc:
            raise UsageError(f"refused: {exc.message}", refusal=exc.reason, meter_point=meter_point, kind=kind,
                             **exc.details) from None
        command = Command(cid, meter_point, kind, valid, now, not_before, operator, reason, idempotency_key)
        claimed, existing = tables.claim(command, digest)
        if not claimed:  # another submission with the same key won the race
            return _duplicate(tables, settings, cid, existing, digest, kind, clean, not_before, operator, reason,
                              idempotency_key), True
        first = model.submitted(command)
        tables.record(command, [first])
        tables.open(messages.shard(meter_point, settings.meters.partitions), command)
        return Tracked(command, model.fold([first]), [first]), False


def _duplicate(tables: Tables, settings: Settings, cid: uuid.UUID, existing, digest: str, kind: str,
               params: dict, not_before, operator, reason, key) -> Tracked:
    if existing.digest != digest:
        raise UsageError(f"idempotency key {key!r} was used for another command ({cid}); use a new key",
                         refusal="idempotency_conflict", command_id=str(cid))
    submitted_at = existing.submitted_at.replace(tzinfo=UTC)
    found = tables.command(existing.meter_point, submitted_at, cid)
    if found is not None:
        return found
    # the first submission died between registering the id and writing its row: finish it (same id and time)
    command = Command(cid, existing.meter_point, kind, params, submitted_at, not_before, operator, reason, key)
    first = model.submitted(command)
    tables.record(command, [first])
    tables.open(messages.shard(existing.meter_point, settings.meters.partitions), command)
    return Tracked(command, model.fold([first]), [first])


def show(settings: Settings, meter_point: str, *, limit: int = 20, tables: Tables | None = None,
         lookup: registrations.Lookup | None = None, now: datetime | None = None) -> dict:
    """The meter's registration, desired and confirmed settings, pending commands and latest commands."""
    check_meter_point(meter_point)
    with _using(settings, tables) as t:
        tracked = t.meter(meter_point)
    try:
        registration = (lookup or registrations.for_settings(settings))(
            meter_point, calendar.locate(now or datetime.now(UTC))[0])
    except UsageError as exc:  # no registry to look in: still show the commands
        log.warning("registration unknown: %s", exc.message)
        registration = None
    return {"meter_point": meter_point, "registration": asdict(registration) if registration else None,
            **model.project(tracked), "tariff_changes": model.tariff_changes(tracked),
            "commands": [describe(t) for t in reversed(tracked[-limit:])] if limit else []}


def tariff_changes(settings: Settings, since, until, *, accounts_path=None, out=None, lake_accounts=None,
                   tables: Tables | None = None) -> dict:
    """The tariff changes meters confirmed on the UK days ``since`` … ``until`` (inclusive), and the account rows
    they make (:mod:`streaming.commands.accounts`) from billing's accounts: with ``accounts_path`` (an accounts
    CSV) written to ``out`` as an accounts CSV for ``meterlake accounts load``; with ``lake_accounts`` (billing's
    stored accounts, ``(read, store)``: ``read(meter_points)`` gives their account rows, ``store(rows)`` merges
    new rows and answers what it stored; the CLI passes billing's, which this context does not import) stored
    at once (``loaded``), so the next bill run prices the days from the change at the new tariff."""
    from streaming.commands import accounts

    if until < since:
        raise UsageError(f"--until {until} is before --since {since}")
    if accounts_path is not None and lake_accounts is not None:
        raise UsageError("--accounts (a CSV) or --load (the lake's accounts), not both")
    days = [since + timedelta(days=n) for n in range((until - since).days + 1)]
    with _using(settings, tables) as t:
        changes = t.tariff_changes(days)
    answer = {"since": since, "until": until, "changes": changes, "accounts": None, "rows": None,
              "unmatched": None, "out": None, "loaded": None}
    if accounts_path is not None:
        if out is None:
            raise UsageError("--accounts needs --out (the accounts CSV of the new rows)")
        rows, unmatched = accounts.account_rows(changes, accounts.read_accounts(accounts_path))
        accounts.write_rows(rows, out)
        answer.update(accounts=str(accounts_path), rows=len(rows), unmatched=unmatched, out=str(out))
    elif lake_accounts is not None:
        read, store = lake_accounts
        rows, unmatched = accounts.account_rows(changes, read({c["meter_point"] for c in changes}))
        answer.update(accounts="lake", rows=len(rows), unmatched=unmatched, loaded=store(rows) if rows else None)
    return answer


# ------------------------------------------------------------------------------------------------ the service


@dataclass
class RunResult:
    sent: int = 0
    retried: int = 0
    acknowledged: int = 0
    rejected: int = 0
    expired: int = 0
    ignored_responses: int = 0  # duplicates, late answers, answers to unknown commands
    bad_responses: int = 0
    open: int = 0
    seconds: float = 0.0

    def as_dict(self) -> dict:
        return {**asdict(self), "seconds": round(self.seconds, 3)}


class _Service:
    """The state of one run: the open commands of the assigned shards, by id."""

    def __init__(self, settings: Settings, tables: Tables, producer, result: RunResult,
                 clock: Callable[[], datetime]):
        self.settings = settings
        self.tables = tables
        self.producer = producer
        self.result = result
        self.clock = clock
        self.policy = policy(settings)
        self.open: dict[uuid.UUID, tuple[int, Tracked]] = {}

    def refresh(self, shards: set[int]) -> None:
        """Forget commands of shards no longer assigned; load the shards' open commands not yet known."""
        for cid in [c for c, (s, _) in self.open.items() if s not in shards]:
            del self.open[cid]
        unknown: list[tuple[int, tuple]] = []
        for s in sorted(shards):
            for row in self.tables.opened(s):
                if row.command_id not in self.open:
                    unknown.append((s, (row.meter_point, row.submitted_at, row.command_id)))
        if not unknown:
            return
        shard_of = {key[2]: s for s, key in unknown}
        found = {t.command.command_id: t for t in self.tables.commands([key for _, key in unknown])}
        closes = []
        for cid, s in shard_of.items():
            t = found.get(cid)
            if t is None:  # listed before its submitted row is visible: the next refresh finds it
                continue
            if t.status.terminal:  # finished before a crash closed it
                closes.append((s, cid))
            else:
                self.open[cid] = (s, t)
        self.tables.close_many(closes)

    def answers(self, records) -> list[tuple[Command, model.Transition]]:
        writes = []
        for record in records:
            try:
                answer = messages.decode_response(record.value)
            except messages.BadMessage as exc:
                log.warning("answer %s/%d/%d is not readable: %s", record.topic, record.partition, record.offset,
                            exc)
                self.result.bad_responses += 1
                continue
            entry = self.open.get(answer["command_id"])
            if entry is None:
                self.result.ignored_responses += 1
                continue
            s, tracked = entry
            at = max(answer["answered_at"] or self.clock(), tracked.status.at)
            t = model.respond(tracked.status, answer["command_id"], answer["outcome"], at, answer.get("detail"))
            if t is None:
                self.result.ignored_responses += 1
                continue
            self.open[answer["command_id"]] = (s, model.with_status(tracked, t))
            writes.append((tracked.command, t))
        return writes

    def due(self) -> tuple[list, list]:
        """(sends, expiries) due now, each ``(shard, command, transition)``."""
        now = self.clock()
        sends, expiries = [], []
        for s, tracked in self.open.values():
            t = model.step(tracked.command, tracked.status, now, self.policy)
            if t is not None:
                (sends if t.state == State.SENT else expiries).append((s, tracked.command, t))
        return sends, expiries

    def send(self, sends: list) -> None:
        from kafka.errors import KafkaError

        topic = self.settings.meters.commands_topic
        futures = []
        for s, command, t in sends:
            value = messages.encode({**command.message(t.attempt), "sent_at": t.at})
            futures.append(self.producer.send(topic, key=command.meter_point.encode(), value=value, partition=s))
        try:
            self.producer.flush()
            for f in futures:
                f.get(timeout=0)
        except KafkaError as exc:
            raise ServiceError(f"sending commands failed: {exc}", service="kafka") from exc

    def apply(self, transitions: list[tuple[int, Command, model.Transition]]) -> None:
        closes = []
        for s, command, t in transitions:
            _, tracked = self.open[command.command_id]
            tracked = model.with_status(tracked, t)
            self.open[command.command_id] = (s, tracked)
        for cid, (s, tracked) in list(self.open.items()):
            if tracked.status.terminal:
                closes.append((s, cid))
                del self.open[cid]
                setattr(self.result, str(tracked.status.state), getattr(self.result, str(tracked.status.state)) + 1)
        self.tables.close_many(closes)


def check_partitions(settings: Settings, producer) -> None:
    """Both topics must have ``meters.partitions``: a command's shard (where it is listed as open, where it is
    sent, where its answer comes back) is its meter point's partition under that count."""
    m = settings.meters
    for topic in topics(settings):
        found = len(producer.partitions_for(topic) or ())
        if found != m.partitions:
            raise UsageError(f"topic {topic} has {found} partitions, meters.partitions is {m.partitions}: set "
                             f"meters.partitions to {found} (or recreate the topic)", topic=topic, partitions=found)


def run(settings: Settings, *, until_idle: bool = False, max_seconds: float | None = None, stop=None,
        tick_s: float = 0.5, clock: Callable[[], datetime] = now_utc) -> RunResult:
    """Send, follow up, retry and expire commands until ``stop`` is set, ``max_seconds`` pass, or (with
    ``until_idle``) no open command is left in the assigned shards."""
    from kafka import KafkaConsumer, KafkaProducer

    m = settings.meters
    result = RunResult()
    start = time.monotonic()
    clients.ensure_topics(settings, topics(settings), m.partitions)
    tables = open_tables(settings)
    producer = consumer = None
    service = None
    try:
        options = clients.kafka_options(settings)
        producer = KafkaProducer(**options, acks="all", enable_idempotence=True, linger_ms=5)
        static = {"group_instance_id": m.instance_id} if m.instance_id else {}
        consumer = KafkaConsumer(**options, group_id=m.group_id, enable_auto_commit=False,
                                 auto_offset_reset="earliest", max_poll_records=500, **static)
        clients.subscribe(consumer, [m.responses_topic])
        check_partitions(settings, producer)
        service = _Service(settings, tables, producer, result, clock)
        assigned: set = set()
        backlog: dict = {}
        while stop is None or not stop.is_set():
            batch = consumer.poll(timeout_ms=int(tick_s * 1000))
            if consumer.assignment() != assigned:  # (re)started or rebalanced: answers may be waiting
                assigned = set(consumer.assignment())
                backlog = consumer.end_offsets(list(assigned)) if assigned else {}
            shards = {tp.partition for tp in assigned}
            records = [r for rs in batch.values() for r in rs]
            if shards:
                service.refresh(shards)
                answered = service.answers(records)
                # nothing is retried or expired before the answers that were waiting are read: after a restart
                # they would otherwise look missing, and a command acknowledged meanwhile would be sent again
                if backlog and all(consumer.position(tp) >= end for tp, end in backlog.items()):
                    backlog = {}
                sends, expiries = ([], []) if backlog else service.due()
                service.send(sends)
                result.sent += sum(1 for *_, t in sends if t.attempt == 1)
                result.retried += sum(1 for *_, t in sends if t.attempt > 1)
                tables.record_many([(c, t) for c, t in answered] + [(c, t) for _, c, t in sends + expiries])
                service.apply(sends + expiries)
                service.apply([])  # closes the answered ones too
                if records:
                    messages.commit(consumer)
                if until_idle and not service.open and not records:
                    break
            if max_seconds is not None and time.monotonic() - start > max_seconds:
                break
        result.open = len(service.open)
    finally:
        if consumer is not None:
            consumer.close(autocommit=False)
        if producer is not None:
            producer.close(timeout=10)
        tables.session.cluster.shutdown()
    result.seconds = time.monotonic() - start
    return result
