"""A device gateway simulator: plays the meters' side of the commands topic.

Run: ``meterlake meters gateway [--delay S] [--reject-rate R] [--drop-rate R] [--devices FILE]``.

It consumes ``meters.commands_topic`` (its own consumer group) and, after ``delay`` seconds, answers each command
on ``meters.responses_topic``: ``ack`` (the meter applied the setting) or ``reject``. Some sends are never
answered (``drop``: the message was lost on the way), which the service retries and in the end expires.
Rejections are decided per command and drops per (command, attempt) by a hash of the seed and the command id, not
by a random stream, so the same command meets the same fate whenever and however often it is delivered: a gateway
killed and restarted mid-run answers exactly as one that ran through.

What the meters hold (each meter's settings, its credit, the command ids it applied) is kept in a JSON file,
``devices`` (default ``<state_dir>/gateway/devices.json``), written (to a temporary name, then renamed) before the
batch's answers are sent and its offsets committed. A command delivered again (a retry, or a redelivery after a
crash) is answered again but applied once: credit is never added twice. The generator reads this file
(``meterlake generate --device-settings``): a meter set to ``30min`` sends half-hourly reads in the device stream.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from meterlake import clients
from meterlake.config import Settings
from meterlake.errors import ServiceError
from streaming.commands import messages

log = logging.getLogger(__name__)


def _unit(*parts) -> float:
    """A number in [0, 1) from ``parts``, the same every time."""
    digest = hashlib.sha256(":".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def decide(seed: int, command_id, attempt: int, reject_rate: float, drop_rate: float) -> str:
    """``drop`` (no answer to this send), ``reject`` or ``ack``: a pure function of its arguments."""
    if _unit(seed, "drop", command_id, attempt) < drop_rate:
        return "drop"
    if _unit(seed, "reject", command_id) < reject_rate:
        return "reject"
    return "ack"


class Devices:
    """The simulated meters' state: ``{meter_point: {"settings": {...}, "credit_pence": n, "applied": [ids]}}``."""

    def __init__(self, path: Path, meters: dict | None = None):
        self.path = path
        self.meters: dict[str, dict] = meters or {}

    @classmethod
    def load(cls, path: str | Path) -> Devices:
        path = Path(path)
        return cls(path, json.loads(path.read_text()) if path.exists() else {})

    def apply(self, command: dict, at: datetime) -> bool:
        """Apply a command (a decoded message); False if this meter applied it before (nothing changes)."""
        meter = self.meters.setdefault(command["meter_point"], {"settings": {}, "credit_pence": 0, "applied": []})
        cid = str(command["command_id"])
        if cid in meter["applied"]:
            return False
        params, kind, settings = command["params"], command["kind"], meter["settings"]
        since = messages.ms(at).isoformat().replace("+00:00", "Z")
        if kind == "add_credit":
            meter["credit_pence"] += int(params["amount_pence"])
        else:
            setting = {"set_read_interval": "read_interval", "set_tariff": "tariff", "set_prepay_mode": "prepay_mode",
                       "set_supply": "supply"}[kind]
            settings[setting] = {**params, "since": since}
        meter["applied"].append(cid)
        return True

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + ".tmp")
        with open(tmp, "w") as f:
            json.dump(self.meters, f, sort_keys=True)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)


def read_intervals(path: str | Path) -> dict[str, tuple[str, str]]:
    """``{meter_point: (since, interval)}`` of the meters a devices file says have a read interval set: what
    :class:`meterlake.generate.Options` takes as ``read_intervals``."""
    meters = Devices.load(path).meters
    return {mp: (m["settings"]["read_interval"]["since"], m["settings"]["read_interval"]["interval"])
            for mp, m in sorted(meters.items()) if "read_interval" in m.get("settings", {})}


def default_devices_path(settings: Settings) -> Path:
    return settings.state_dir / "gateway" / "devices.json"


@dataclass
class GatewayResult:
    received: int = 0
    acknowledged: int = 0
    rejected: int = 0
    dropped: int = 0
    already_applied: int = 0  # delivered again (a retry, a redelivery): answered, not applied twice
    bad_messages: int = 0
    seconds: float = 0.0

    def as_dict(self) -> dict:
        return {**asdict(self), "seconds": round(self.seconds, 3)}


def run(settings: Settings, *, delay_s: float | None = None, reject_rate: float | None = None,
        drop_rate: float | None = None, seed: int | None = None, devices: str | Path | None = None, stop=None,
        max_seconds: float | None = None, idle_exit_s: float | None = None) -> GatewayResult:
    """Answer commands until ``stop`` is set, ``max_seconds`` pass, or ``idle_exit_s`` pass without a command."""
    from kafka import KafkaConsumer, KafkaProducer
    from kafka.errors import KafkaError

    m = settings.meters
    delay = m.gateway_delay_s if delay_s is None else delay_s
    reject = m.gateway_reject_rate if reject_rate is None else reject_rate
    drop = m.gateway_drop_rate if drop_rate is None else drop_rate
    seed = m.gateway_seed if seed is None else seed
    state = Devices.load(devices or default_devices_path(settings))
    result = GatewayResult()
    start = last = time.monotonic()
    clients.ensure_topics(settings, [m.commands_topic, m.responses_topic], m.partitions)
    options = clients.kafka_options(settings)
    producer = KafkaProducer(**options, acks="all", enable_idempotence=True, linger_ms=5)
    static = {"group_instance_id": m.gateway_instance_id} if m.gateway_instance_id else {}
    consumer = KafkaConsumer(**options, group_id=m.gateway_group_id, enable_auto_commit=False,
                             auto_offset_reset="earliest", max_poll_records=500, **static)
    try:
        clients.subscribe(consumer, [m.commands_topic])
        while stop is None or not stop.is_set():
            if max_seconds is not None and time.monotonic() - start > max_seconds:
                break
            batch = consumer.poll(timeout_ms=500)
            if not batch:
                if idle_exit_s is not None and time.monotonic() - last > idle_exit_s:
                    break
                continue
            last = received = time.monotonic()
            answers = []
            for record in (r for rs in batch.values() for r in rs):
                result.received += 1
                try:
                    command = messages.decode_command(record.value)
                except messages.BadMessage as exc:
                    log.warning("command %s/%d/%d is not readable: %s", record.topic, record.partition,
                                record.offset, exc)
                    result.bad_messages += 1
                    continue
                outcome = decide(seed, command["command_id"], command["attempt"], reject, drop)
                if outcome == "drop":
                    result.dropped += 1
                    continue
                detail = None
                if outcome == "reject":
                    result.rejected += 1
                    detail = "the meter refused the command (simulated)"
                else:
                    result.acknowledged += 1
                    if not state.apply(command, datetime.now(UTC)):
                        result.already_applied += 1
                answers.append((record.partition, command, outcome, detail))
            state.save()  # before answering: a crash after this answers again but applies nothing twice
            while stop is None or not stop.is_set():
                wait = received + delay - time.monotonic()
                if wait <= 0:
                    break
                time.sleep(min(wait, 0.2))
            now = messages.ms(datetime.now(UTC))
            futures = [producer.send(m.responses_topic, key=c["meter_point"].encode(), partition=p,
                                     value=messages.encode({"command_id": str(c["command_id"]),
                                                            "meter_point": c["meter_point"], "outcome": outcome,
                                                            "attempt": c["attempt"], "detail": detail,
                                                            "answered_at": now}))
                       for p, c, outcome, detail in answers]
            try:
                producer.flush()
                for f in futures:
                    f.get(timeout=0)
            except KafkaError as exc:
                raise ServiceError(f"answering commands failed: {exc}", service="kafka") from exc
            messages.commit(consumer)  # a failed commit (a rebalance) replays the batch: answered again, applied once
    finally:
        consumer.close(autocommit=False)
        producer.close(timeout=10)
    result.seconds = time.monotonic() - start
    return result
