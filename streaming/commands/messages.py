"""The two topics' messages, as JSON (small, few, and read by devices' head-end systems rather than the lake).

``meters.commands_topic``, keyed by meter point (so a meter's commands stay in order on one partition)::

    {"command_id": "…", "meter_point": "2000012345670", "kind": "set_tariff", "params": {"tariff": "E7"},
     "attempt": 1, "sent_at": "2026-03-01T09:00:00Z"}

``meters.responses_topic``, keyed by meter point, on the same partition number as its commands::

    {"command_id": "…", "meter_point": "…", "outcome": "ack" | "reject", "attempt": 1,
     "detail": null | "why", "answered_at": "…"}

A retried send carries the same ``command_id`` with the next ``attempt``. Pure.
"""
from __future__ import annotations

import json
import logging
import uuid
from datetime import UTC, datetime

from kafka.partitioner.default import murmur2

from meterlake.errors import UsageError
from meterlake.instants import iso_utc, parse_instant

log = logging.getLogger(__name__)
OUTCOMES = ("ack", "reject")


def ms(instant: datetime) -> datetime:
    """``instant`` in UTC to the millisecond: what a Cassandra timestamp keeps, so a command read back is equal."""
    instant = instant.astimezone(UTC)
    return instant.replace(microsecond=instant.microsecond // 1000 * 1000)


def shard(meter_point: str, partitions: int) -> int:
    """The partition of ``meter_point`` on both topics (Kafka's default partitioner on the key)."""
    return (murmur2(meter_point.encode()) & 0x7FFFFFFF) % partitions


def encode(payload: dict) -> bytes:
    return json.dumps({k: iso_utc(v) if isinstance(v, datetime) else v for k, v in payload.items()},
                      separators=(",", ":")).encode()


class BadMessage(ValueError):
    """A message that is not one of ours; ``str()`` says why."""


def _decode(value: bytes, required: tuple[str, ...]) -> dict:
    try:
        data = json.loads(value)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadMessage(f"not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise BadMessage("not a JSON object")
    missing = [k for k in required if k not in data]
    if missing:
        raise BadMessage(f"no {', '.join(missing)}")
    try:
        data["command_id"] = uuid.UUID(data["command_id"])
        data["attempt"] = int(data["attempt"])
    except (ValueError, TypeError) as exc:
        raise BadMessage(f"command_id or attempt: {exc}") from None
    return data


def decode_command(value: bytes) -> dict:
    return _decode(value, ("command_id", "meter_point", "kind", "params", "attempt"))


def decode_response(value: bytes) -> dict:
    data = _decode(value, ("command_id", "meter_point", "outcome", "attempt"))
    if data["outcome"] not in OUTCOMES:
        raise BadMessage(f"outcome {data['outcome']!r} is not ack or reject")
    try:
        data["answered_at"] = ms(parse_instant(data["answered_at"])) if data.get("answered_at") else None
    except UsageError as exc:
        raise BadMessage(f"answered_at: {exc.message}") from None
    return data


def commit(consumer) -> bool:
    """Commit the polled offsets; False when a rebalance is under way. What the records did is written already and
    replaying them changes nothing, so a failed commit only means they are read again."""
    from kafka.errors import CommitFailedError, RebalanceInProgressError

    try:
        consumer.commit()
        return True
    except (CommitFailedError, RebalanceInProgressError) as exc:
        log.warning("offsets not committed (%s); the records will be read again", type(exc).__name__)
        return False
