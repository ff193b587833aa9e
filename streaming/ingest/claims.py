"""File claims: which ingest worker processes a landed file, decided by Cassandra lightweight transactions.

Table ``file_claims`` (:mod:`meterlake.keyspace`), one row per file *content*: the key is the SHA-256 of the
file's bytes. A content key (rather than path + size + mtime) is what makes a re-landed identical file, under any
name, recognisable as a duplicate: it finds its content's row ``done`` and is counted, not published again. It
costs one streaming hash of a file before claiming it (about 1 GB/s, small beside parsing, which runs at a few
hundred thousand lines a second); a worker remembers the hashes of the files it has seen.

Life of a row::

    (absent) --claim: INSERT ... IF NOT EXISTS USING TTL lease-->  working (owner = me)
    (absent) --announce (claim-check): INSERT ... IF NOT EXISTS USING TTL lease-->  announced
    announced --take: UPDATE ... USING TTL lease ... IF state = 'announced'-->  working (owner = me)
    working --renew every lease/3: UPDATE ... USING TTL lease ... IF owner = me AND state = 'working'--> working
    working --finish: UPDATE ... USING TTL 0 (no expiry) ... IF owner = me-->  done (outcome accepted|rejected)
    working --release (the file changed under us): DELETE ... IF owner = me-->  (absent)

A worker that dies stops renewing; when its lease runs out every cell of the row has expired, the row is gone,
and the next worker's ``INSERT ... IF NOT EXISTS`` succeeds: it takes the file over. Every write of a claim
rewrites all of the row's columns with the new TTL, so no column outlives the lease. All claim writes are
lightweight transactions (serial consistency ``LOCAL_SERIAL``; the commit at ``cassandra.write_consistency``):
never mixed with plain writes, as Cassandra requires for LWTs to be linearizable.

:class:`Lease` renews a claim from a heartbeat thread while the file is worked on, and :meth:`Lease.check` (called
just before the Kafka commit) raises :class:`LeaseLost` if a renewal failed, so a worker that lost its claim aborts
rather than publishing a file another worker now owns.
"""
from __future__ import annotations

import contextlib
import logging
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime

log = logging.getLogger(__name__)

WORKING, ANNOUNCED, DONE = "working", "announced", "done"
_LEASE_COLUMNS = "owner, state, path, size, mtime_ns, claimed_at, renewed_at"


class LeaseLost(RuntimeError):
    """This worker no longer holds the claim (its lease ran out, or another worker took the file)."""


@dataclass(frozen=True)
class ClaimRow:
    file_key: str
    owner: str | None
    state: str | None
    path: str | None
    size: int | None
    mtime_ns: int | None
    outcome: str | None = None
    archived_to: str | None = None

    @classmethod
    def of(cls, row) -> ClaimRow:
        get = getattr
        return cls(row.file_key, row.owner, row.state, row.path, row.size, row.mtime_ns,
                   get(row, "outcome", None), get(row, "archived_to", None))


def _now() -> datetime:
    # a claim's own bookkeeping instant (when it was claimed, renewed, finished): never a read's version
    return datetime.now(UTC)


class Claims:
    """Claims in ``keyspace.file_claims`` for worker ``owner`` with a ``lease_s`` TTL."""

    def __init__(self, session, keyspace: str, owner: str, lease_s: int, attempts: int = 6):
        from cassandra import ConsistencyLevel

        if lease_s < 2:
            raise ValueError("a lease must be at least 2 seconds")
        self.session, self.owner, self.lease_s, self.attempts = session, owner, int(lease_s), attempts
        ks = keyspace

        def prepare(cql: str):
            statement = session.prepare(cql)
            statement.serial_consistency_level = ConsistencyLevel.LOCAL_SERIAL
            return statement

        self._claim = prepare(
            f"INSERT INTO {ks}.file_claims (file_key, {_LEASE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
            "IF NOT EXISTS USING TTL ?")
        self._take = prepare(
            f"UPDATE {ks}.file_claims USING TTL ? SET owner = ?, state = 'working', path = ?, size = ?, "
            "mtime_ns = ?, claimed_at = ?, renewed_at = ? WHERE file_key = ? IF state = 'announced'")
        self._renew = prepare(
            f"UPDATE {ks}.file_claims USING TTL ? SET owner = ?, state = 'working', path = ?, size = ?, "
            "mtime_ns = ?, claimed_at = ?, renewed_at = ? WHERE file_key = ? IF owner = ? AND state = 'working'")
        self._finish = prepare(
            f"UPDATE {ks}.file_claims USING TTL 0 SET owner = ?, state = 'done', path = ?, size = ?, mtime_ns = ?, "
            "claimed_at = ?, renewed_at = ?, finished_at = ?, outcome = ?, format = ?, file_id = ?, reads = ?, "
            "quarantined = ?, archived_to = ? WHERE file_key = ? IF owner = ?")
        self._release = prepare(f"DELETE FROM {ks}.file_claims WHERE file_key = ? IF owner = ?")
        self._get = session.prepare(
            f"SELECT file_key, owner, state, path, size, mtime_ns, outcome, archived_to FROM {ks}.file_claims "
            "WHERE file_key = ?")
        self._get.consistency_level = ConsistencyLevel.SERIAL  # see the latest LWT outcome

    def _execute(self, statement, params: tuple):
        """Execute an LWT, retrying when the ring could not answer (a node went down mid-request, a timeout).

        A retried LWT may find its own earlier attempt applied; the callers treat "the row is mine, in the state
        I wanted" as success.
        """
        from cassandra import OperationTimedOut, Timeout, Unavailable
        from cassandra.cluster import NoHostAvailable
        from cassandra.connection import ConnectionException

        for attempt in range(self.attempts):
            try:
                return self.session.execute(statement, params, timeout=30)
            except (Unavailable, Timeout, OperationTimedOut, NoHostAvailable, ConnectionException) as exc:
                if attempt + 1 == self.attempts:
                    raise
                log.warning("claim statement failed (%s); retrying", exc)
                time.sleep(min(8.0, 0.5 * 2 ** attempt))
        raise AssertionError("unreachable")

    def _mine(self, key: str, state: str) -> tuple[bool, ClaimRow | None]:
        row = self.get(key)
        if row is not None and row.owner == self.owner and row.state == state:
            return True, None  # an earlier attempt of ours was applied
        return False, row

    def claim(self, key: str, path: str, size: int, mtime_ns: int, *,
              state: str = WORKING) -> tuple[bool, ClaimRow | None]:
        """Try to claim ``key`` (``state`` working, or announced for a claim-check). ``(True, None)`` when this
        worker now holds it, else ``(False, the existing row)``."""
        now = _now()
        rs = self._execute(self._claim, (key, self.owner, state, path, size, mtime_ns, now, now, self.lease_s))
        if rs.was_applied:
            return True, None
        row = ClaimRow.of(rs.one())
        if row.owner == self.owner and row.state == state and row.path == path:
            return self._mine(key, state)
        return False, row

    def take(self, key: str, path: str, size: int, mtime_ns: int) -> tuple[bool, ClaimRow | None]:
        """Take an announced file (claim-check); when the announcement has expired, claim it afresh."""
        now = _now()
        rs = self._execute(self._take, (self.lease_s, self.owner, path, size, mtime_ns, now, now, key))
        if rs.was_applied:
            return True, None
        row = rs.one()
        if getattr(row, "state", None) is None:  # no row (the announcement expired): claim it
            return self.claim(key, path, size, mtime_ns)
        return self._mine(key, WORKING)

    def renew(self, key: str, path: str, size: int, mtime_ns: int, claimed_at: datetime) -> bool:
        rs = self._execute(self._renew, (self.lease_s, self.owner, path, size, mtime_ns, claimed_at, _now(), key,
                                         self.owner))
        return rs.was_applied

    def finish(self, key: str, path: str, size: int, mtime_ns: int, claimed_at: datetime, *, outcome: str,
               format: str | None, file_id: str | None, reads: int, quarantined: int,
               archived_to: str | None = None) -> bool:
        """Mark ``key`` done for good (no TTL). False if this worker no longer held it."""
        import uuid

        now = _now()
        rs = self._execute(self._finish, (
            self.owner, path, size, mtime_ns, claimed_at, now, now, outcome, format,
            uuid.UUID(file_id) if file_id else None, reads, quarantined, archived_to, key, self.owner))
        return rs.was_applied or self._mine(key, DONE)[0]

    def release(self, key: str) -> bool:
        return self._execute(self._release, (key, self.owner)).was_applied

    def get(self, key: str) -> ClaimRow | None:
        row = self._execute(self._get, (key,)).one()
        return ClaimRow.of(row) if row is not None else None


class Lease:
    """Holds a claim while a file is worked on: renews it every third of the lease from a daemon thread.

    Use as a context manager around the work, entered right after the claim. :meth:`check` raises
    :class:`LeaseLost` once a renewal was refused, or when the lease may run out within ``margin`` seconds (a
    renewal still retrying while the ring is short of nodes does not count as held): the expiry is reckoned from
    the moment each successful renewal was *sent*, never later than the row's real TTL.
    """

    def __init__(self, claims: Claims, key: str, path: str, size: int, mtime_ns: int):
        self.claims, self.key, self.path, self.size, self.mtime_ns = claims, key, path, size, mtime_ns
        self.claimed_at = _now()
        self.renewals = 0
        self.margin = min(5.0, claims.lease_s / 4)
        self._expires = time.monotonic() + claims.lease_s  # the claim was written just before
        self._lost: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name=f"lease-{key[:8]}", daemon=True)

    def __enter__(self) -> Lease:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=60)

    def _beat(self) -> None:
        interval = self.claims.lease_s / 3
        while not self._stop.wait(interval):
            sent = time.monotonic()
            try:
                if not self.claims.renew(self.key, self.path, self.size, self.mtime_ns, self.claimed_at):
                    self._lost = "another worker holds the claim (the lease ran out)"
                    return
                self.renewals += 1
                self._expires = sent + self.claims.lease_s
            except Exception as exc:  # the ring did not answer: keep trying while the lease may still hold
                log.warning("renewing the claim on %s failed: %s", self.path, exc)
                if time.monotonic() >= self._expires:
                    self._lost = f"the lease ran out while renewals failed ({exc})"
                    return

    @property
    def held(self) -> bool:
        return self._lost is None and time.monotonic() < self._expires - self.margin

    def check(self) -> None:
        if self._lost is not None:
            raise LeaseLost(f"lost the claim on {self.path}: {self._lost}")
        left = self._expires - time.monotonic()
        if left < self.margin:
            raise LeaseLost(f"the claim on {self.path} may run out in {max(left, 0):.1f}s (renewals failing)")


@contextlib.contextmanager
def held_lease(settings, key: str, path: str, what: str = "another process holds it"):
    """Hold the lease ``key`` on a resource (e.g. a lake's compaction, :mod:`streaming.mirror.compact`) by a claim
    row of ``file_claims``, renewed while held; yields the :class:`Lease`, whose ``check()`` raises
    :class:`LeaseLost` once it is lost, and releases it at the end. Raises
    :class:`~meterlake.errors.MeterlakeError` (saying ``what``) while another process holds it."""
    import os
    import socket
    import uuid

    from meterlake import clients, keyspace
    from meterlake.errors import MeterlakeError

    cassandra = settings.cassandra
    session = clients.cassandra_session(settings, consistency=cassandra.write_consistency)
    try:
        keyspace.ensure(session, cassandra.keyspace, cassandra.replication_factor)
        owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        claims = Claims(session, cassandra.keyspace, owner, settings.ingest.lease_s)
        held, row = claims.claim(key, path, 0, 0)
        if not held:
            raise MeterlakeError(what, key=key, holder=row.owner if row is not None else None)
        try:
            with Lease(claims, key, path, 0, 0) as lease:
                yield lease
        finally:
            claims.release(key)
    finally:
        session.cluster.shutdown()
