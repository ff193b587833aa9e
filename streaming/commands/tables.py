"""The Cassandra tables of meter commands (in ``cassandra.keyspace``), designed for their queries.

``meter_commands``: the audit trail, an event history as the reads are. Partition ``meter_point`` (a meter's
commands are few: a handful a year), clustering ``submitted_at DESC`` (newest command first), then the command id
and each transition's time, state and attempt: every transition is its own row, never updated. The command's
content (kind, parameters, operator, reason, idempotency key, not-before) is on every row, so any one row tells
what the command was. Rows are keyed by what they record, so writing one again changes nothing.

``meter_command_ids``: one row per command id, written once with a lightweight transaction (``IF NOT EXISTS``):
a submission retried with the same idempotency key finds its command (same meter point, time and content digest)
instead of making a second one, even when two submissions race.

``meter_tariff_changes``: the tariff changes meters confirmed, partitioned by the UK settlement date of the
acknowledgement (``day``): what billing takes, day by day (:mod:`streaming.commands.accounts`). Written with the
acknowledgement's row.

``meter_commands_open``: the commands not yet acknowledged, rejected or expired, partitioned by ``shard`` (the
partition number of the meter point on the commands topic, which is also its partition on the responses topic).
The service reads the open commands of the shards it is assigned when it starts, and new ones as they are
submitted; a command leaves the table once its terminal row is written. It is an index, not the state: a
command's status is always the fold of its ``meter_commands`` rows (:func:`streaming.commands.model.fold`).
"""
from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import UTC

from cassandra.query import UNSET_VALUE

from meterlake import calendar
from meterlake import keyspace as keyspace_mod
from streaming.commands.model import Command, State, Tracked, Transition, fold

_COLUMNS = ("meter_point, submitted_at, command_id, at, state, attempt, kind, params, not_before, operator, reason, "
            "idempotency_key, detail")


def ddl(keyspace: str, replication_factor: int, datacenter: str = "datacenter1") -> list[str]:
    """The statements that create the keyspace (if absent) and the tables. Idempotent. Pure."""
    ks = keyspace
    return [
        keyspace_mod.create_keyspace(ks, replication_factor, datacenter),
        f"""CREATE TABLE IF NOT EXISTS {ks}.meter_commands (
            meter_point text, submitted_at timestamp, command_id uuid, at timestamp, state text, attempt int,
            kind text, params map<text, text>, not_before timestamp, operator text, reason text,
            idempotency_key text, detail text,
            PRIMARY KEY ((meter_point), submitted_at, command_id, at, state, attempt)
        ) WITH CLUSTERING ORDER BY (submitted_at DESC, command_id ASC, at ASC, state ASC, attempt ASC)""",
        f"""CREATE TABLE IF NOT EXISTS {ks}.meter_command_ids (
            command_id uuid PRIMARY KEY, meter_point text, submitted_at timestamp, digest text
        )""",
        f"""CREATE TABLE IF NOT EXISTS {ks}.meter_tariff_changes (
            day date, effective_at timestamp, command_id uuid, meter_point text, tariff text, windows text,
            PRIMARY KEY ((day), effective_at, command_id)
        )""",
        f"""CREATE TABLE IF NOT EXISTS {ks}.meter_commands_open (
            shard int, command_id uuid, meter_point text, submitted_at timestamp,
            PRIMARY KEY ((shard), command_id)
        )""",
    ]


def ensure(session, keyspace: str, replication_factor: int) -> None:
    keyspace_mod.apply(session, ddl(keyspace, replication_factor))


def _tracked(rows: Iterable) -> list[Tracked]:
    """Commands with their status from ``meter_commands`` rows (any order, any number of commands)."""
    by_id: dict[uuid.UUID, list] = {}
    for row in rows:
        by_id.setdefault(row.command_id, []).append(row)
    out = []
    for cid, group in by_id.items():
        first = group[0]
        command = Command(cid, first.meter_point, first.kind, dict(first.params or {}), _utc(first.submitted_at),
                          _utc(first.not_before), first.operator, first.reason, first.idempotency_key)
        history = [Transition(cid, State(r.state), _utc(r.at), r.attempt, r.detail) for r in group]
        out.append(Tracked(command, fold(history), sorted(history, key=lambda t: (t.at, t.attempt))))
    return sorted(out, key=lambda t: t.command.submitted_at)


def _utc(value):
    return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


class Tables:
    """Prepared statements over the three tables of one keyspace."""

    def __init__(self, session, keyspace: str):
        self.session = session
        ks = keyspace
        self._insert = session.prepare(f"INSERT INTO {ks}.meter_commands ({_COLUMNS}) "
                                       "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
        self._claim = session.prepare(f"INSERT INTO {ks}.meter_command_ids (command_id, meter_point, submitted_at, "
                                      "digest) VALUES (?, ?, ?, ?) IF NOT EXISTS")
        self._by_id = session.prepare(f"SELECT meter_point, submitted_at, digest FROM {ks}.meter_command_ids "
                                      "WHERE command_id = ?")
        self._meter = session.prepare(f"SELECT {_COLUMNS} FROM {ks}.meter_commands WHERE meter_point = ?")
        self._one = session.prepare(f"SELECT {_COLUMNS} FROM {ks}.meter_commands WHERE meter_point = ? AND "
                                    "submitted_at = ? AND command_id = ?")
        self._tariff = session.prepare(f"INSERT INTO {ks}.meter_tariff_changes (day, effective_at, command_id, "
                                       "meter_point, tariff, windows) VALUES (?, ?, ?, ?, ?, ?)")
        self._tariffs = session.prepare(f"SELECT effective_at, command_id, meter_point, tariff, windows FROM "
                                        f"{ks}.meter_tariff_changes WHERE day = ?")
        self._open = session.prepare(f"INSERT INTO {ks}.meter_commands_open (shard, command_id, meter_point, "
                                     "submitted_at) VALUES (?, ?, ?, ?)")
        self._close = session.prepare(f"DELETE FROM {ks}.meter_commands_open WHERE shard = ? AND command_id = ?")
        self._opened = session.prepare(f"SELECT command_id, meter_point, submitted_at FROM {ks}.meter_commands_open "
                                       "WHERE shard = ?")

    def claim(self, command: Command, digest: str) -> tuple[bool, object]:
        """Register the command id; ``(True, None)`` if this call did, else ``(False, the existing row)``."""
        result = self.session.execute(self._claim, (command.command_id, command.meter_point, command.submitted_at,
                                                    digest))
        row = result.one()
        if row.applied:
            return True, None
        return False, row

    def by_id(self, command_id: uuid.UUID):
        return self.session.execute(self._by_id, (command_id,)).one()

    def record(self, command: Command, transitions: Iterable[Transition]) -> None:
        """Write transition rows of one command (idempotent: a row is keyed by what it records)."""
        self.record_many([(command, t) for t in transitions])

    def record_many(self, pairs: list[tuple[Command, Transition]]) -> None:
        """Write many commands' transition rows concurrently; raises if any failed (after the driver's retries)."""
        from cassandra.concurrent import execute_concurrent_with_args

        if not pairs:
            return
        execute_concurrent_with_args(self.session, self._insert, [self._params(c, t) for c, t in pairs],
                                     concurrency=64, raise_on_first_error=True)
        tariffs = [(calendar.locate(t.at)[0], t.at, c.command_id, c.meter_point, c.params["tariff"],
                    c.params.get("windows", UNSET_VALUE)) for c, t in pairs
                   if c.kind == "set_tariff" and t.state == State.ACKNOWLEDGED]
        if tariffs:
            execute_concurrent_with_args(self.session, self._tariff, tariffs, concurrency=64,
                                         raise_on_first_error=True)

    def tariff_changes(self, days: list) -> list[dict]:
        """The confirmed tariff changes of the UK ``days``, as :func:`model.tariff_changes` gives them."""
        from cassandra.concurrent import execute_concurrent_with_args

        out = []
        for _ok, rows in execute_concurrent_with_args(self.session, self._tariffs, [(d,) for d in days],
                                                      concurrency=16, raise_on_first_error=True):
            out += [{"meter_point": r.meter_point, "tariff": r.tariff, "windows": r.windows,
                     "effective_at": _utc(r.effective_at), "command_id": str(r.command_id)} for r in rows]
        return sorted(out, key=lambda c: (c["effective_at"], c["command_id"]))

    @staticmethod
    def _params(command: Command, t: Transition) -> tuple:
        # an absent value is left unset, not written as null: a null is a tombstone, and every row would carry some
        values = (command.meter_point, command.submitted_at, command.command_id, t.at, str(t.state), t.attempt,
                  command.kind, dict(command.params), command.not_before, command.operator, command.reason,
                  command.idempotency_key, t.detail)
        return tuple(UNSET_VALUE if v is None else v for v in values)

    def open(self, shard: int, command: Command) -> None:
        self.session.execute(self._open, (shard, command.command_id, command.meter_point, command.submitted_at))

    def close_many(self, pairs: list[tuple[int, uuid.UUID]]) -> None:
        from cassandra.concurrent import execute_concurrent_with_args

        if pairs:
            execute_concurrent_with_args(self.session, self._close, pairs, concurrency=64, raise_on_first_error=True)

    def opened(self, shard: int) -> list:
        """``(command_id, meter_point, submitted_at)`` of the shard's open commands."""
        return list(self.session.execute(self._opened, (shard,)))

    def meter(self, meter_point: str) -> list[Tracked]:
        """Every command of a meter point with its status and history, oldest first."""
        return _tracked(self.session.execute(self._meter, (meter_point,)))

    def command(self, meter_point: str, submitted_at, command_id: uuid.UUID) -> Tracked | None:
        found = _tracked(self.session.execute(self._one, (meter_point, submitted_at, command_id)))
        return found[0] if found else None

    def commands(self, keys: list[tuple[str, object, uuid.UUID]]) -> list[Tracked]:
        """Several commands by (meter point, submitted_at, command id), read concurrently."""
        from cassandra.concurrent import execute_concurrent_with_args

        rows = []
        for _ok, result in execute_concurrent_with_args(self.session, self._one, keys, concurrency=64,
                                                       raise_on_first_error=True):
            rows.extend(result)
        return _tracked(rows)
