"""The pure core of meter commands: kinds and their parameters, validation against the meter's registration,
command ids, the state machine (submitted → sent → acknowledged | rejected | expired, with bounded retries) and
the settings projection (desired vs confirmed, pending). No I/O, no clock: every function takes ``now``.

Kinds (:data:`KINDS`) and their parameters (all given as text, as on the command line):

=================  ===================================================  ===========================================
kind               parameters                                           the meter must
=================  ===================================================  ===========================================
set_read_interval  ``interval``: ``30min`` | ``daily`` | ``monthly``     be registered
set_tariff         ``tariff``: a tariff id; ``windows`` (optional):     for ``windows`` (time-of-use): be an
                   ``HH:MM-HH:MM[,…]`` UK clock, on the half-hour       electricity meter whose SSC has two or more
                                                                        registers
set_prepay_mode    ``mode``: ``credit`` | ``prepayment``                be prepay-capable
add_credit         ``amount_pence``: 1 … ``max_credit_pence``           be prepay-capable and (desired) in
                                                                        prepayment mode; operator and reason
set_supply         ``state``: ``arm`` | ``disconnect``                  operator and reason
=================  ===================================================  ===========================================

Tariffs: ``tariff`` must be an id (:data:`TARIFF_ID`) and, given the ``tariffs`` catalogue (the service passes the
tariffs loaded into the lake, :mod:`~streaming.commands.catalogue`), one of them.

Ids: a command with a client-supplied idempotency key gets ``uuid5(NAMESPACE, meter point + key)``, so a retried
submission is the same command; without a key, a random UUID. :func:`digest` is the content a key stands for: the
same key with other content is a conflict, not a retry.
"""
from __future__ import annotations

import hashlib
import json
import re
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum

NAMESPACE = uuid.UUID("6f1c5e0a-3b7d-5c2e-9a41-7d2b8e4f0c11")
TARIFF_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}")
INTERVALS = ("30min", "daily", "monthly")
PREPAY_MODES = ("credit", "prepayment")
SUPPLY_STATES = ("arm", "disconnect")
#: Registers of the standard settlement configurations the platform knows (Elexon market domain data).
SSC_REGISTERS = {"0393": 1, "0151": 2}
_WINDOW = re.compile(r"(\d\d):(\d\d)-(\d\d):(\d\d)")


class Refused(ValueError):
    """A command that must not be sent; ``reason`` is a short code, the message says why for people."""

    def __init__(self, reason: str, message: str, **details):
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.details = details


@dataclass(frozen=True)
class Registration:
    """What the meter point is registered as, on the day the command is submitted."""

    meter_point: str
    fuel: str  # electricity | gas
    ssc: str | None = None
    profile_class: str | None = None
    prepay_capable: bool = False


@dataclass(frozen=True)
class Kind:
    name: str
    setting: str | None  # the setting it changes (None: an event, like adding credit)
    required: tuple[str, ...]
    optional: tuple[str, ...] = ()
    secured: bool = False  # needs an operator identity and a reason


KINDS: dict[str, Kind] = {k.name: k for k in (
    Kind("set_read_interval", "read_interval", ("interval",)),
    Kind("set_tariff", "tariff", ("tariff",), ("windows",)),
    Kind("set_prepay_mode", "prepay_mode", ("mode",)),
    Kind("add_credit", None, ("amount_pence",), secured=True),
    Kind("set_supply", "supply", ("state",), secured=True),
)}


def _choice(kind: str, name: str, value: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise Refused("bad_parameter", f"{kind}: {name} must be one of {', '.join(allowed)}, not {value!r}",
                      parameter=name)
    return value


def parse_windows(text: str) -> list[tuple[str, str]]:
    """``"00:30-07:30,13:00-16:00"`` as ``[("00:30", "07:30"), ("13:00", "16:00")]``: UK clock times on the
    half-hour; a window may run past midnight (``23:00-06:00``); windows must not overlap. Raises Refused."""
    slots: set[int] = set()
    out = []
    for part in (p.strip() for p in text.split(",")):
        m = _WINDOW.fullmatch(part)
        if not m:
            raise Refused("bad_parameter", f"set_tariff: window {part!r} is not HH:MM-HH:MM", parameter="windows")
        h1, m1, h2, m2 = (int(g) for g in m.groups())
        if h1 > 23 or h2 > 24 or m1 not in (0, 30) or m2 not in (0, 30) or (h2 == 24 and m2):
            raise Refused("bad_parameter", f"set_tariff: window {part!r} is not on the half-hour (00:00 … 24:00)",
                          parameter="windows")
        start, end = (h1 * 60 + m1) // 30, (h2 * 60 + m2) // 30
        if start == end % 48:
            raise Refused("bad_parameter", f"set_tariff: window {part!r} is empty or the whole day",
                          parameter="windows")
        covered = {s % 48 for s in range(start, end if end > start else end + 48)}
        if covered & slots:
            raise Refused("bad_parameter", f"set_tariff: window {part!r} overlaps another", parameter="windows")
        slots |= covered
        out.append((f"{h1:02d}:{m1:02d}", f"{h2:02d}:{m2:02d}"))
    return out


def validate(kind: str, params: Mapping[str, str], registration: Registration | None, *,
             operator: str | None = None, reason: str | None = None, prepay_mode: str | None = None,
             max_credit_pence: int = 50_000, tariffs: Iterable[str] | None = None) -> dict[str, str]:
    """The command's parameters, normalised, or :class:`Refused` saying why it cannot be sent.

    ``registration`` is the meter's (None: not registered); ``prepay_mode`` its desired prepay mode (from the
    projection), which ``add_credit`` needs to be ``prepayment``; ``tariffs`` the known tariff ids, when there is
    a catalogue to check against. Pure.
    """
    spec = KINDS.get(kind)
    if spec is None:
        raise Refused("unknown_kind", f"unknown command kind {kind!r}; known: {', '.join(KINDS)}")
    unknown = sorted(set(params) - set(spec.required) - set(spec.optional))
    if unknown:
        raise Refused("bad_parameter", f"{kind} takes no parameter {', '.join(unknown)}", parameter=unknown[0])
    missing = [p for p in spec.required if not params.get(p)]
    if missing:
        raise Refused("bad_parameter", f"{kind} needs --param {missing[0]}=…", parameter=missing[0])
    if spec.secured and not (operator and operator.strip() and reason and reason.strip()):
        raise Refused("unauthorised", f"{kind} changes supply or credit: it needs an operator identity and a "
                                      "reason (meters.operator or --operator, and --reason)")
    if registration is None:
        raise Refused("not_registered", "the meter point has no registration: nothing can be sent to it")
    out = {k: str(v).strip() for k, v in params.items() if v is not None and str(v).strip() != ""}
    if kind == "set_read_interval":
        _choice(kind, "interval", out["interval"], INTERVALS)
    elif kind == "set_tariff":
        if not TARIFF_ID.fullmatch(out["tariff"]):
            raise Refused("bad_parameter", f"set_tariff: {out['tariff']!r} is not a tariff id", parameter="tariff")
        known = None if tariffs is None else sorted(set(tariffs))
        if known is not None and out["tariff"] not in known:
            shown = ", ".join(known[:10]) + (", …" if len(known) > 10 else "")
            raise Refused("unknown_tariff", f"set_tariff: no tariff {out['tariff']!r} among billing's tariffs "
                                            f"({shown or 'none'}); load it with `meterlake tariffs load FILE`",
                          parameter="tariff")
        if "windows" in out:
            windows = parse_windows(out["windows"])
            out["windows"] = ",".join(f"{a}-{b}" for a, b in windows)
            if registration.fuel != "electricity":
                raise Refused("not_supported", "set_tariff: time-of-use windows need an electricity meter's "
                                               f"registers; this meter point is {registration.fuel}")
            registers = SSC_REGISTERS.get(registration.ssc or "")
            if registers is None:
                raise Refused("not_supported", f"set_tariff: time-of-use windows need an SSC with two or more "
                                               f"registers; the meter's SSC {registration.ssc!r} is not known")
            if registers < 2:
                raise Refused("not_supported", f"set_tariff: time-of-use windows need an SSC with two or more "
                                               f"registers; SSC {registration.ssc} has {registers}")
    elif kind == "set_prepay_mode":
        _choice(kind, "mode", out["mode"], PREPAY_MODES)
        if not registration.prepay_capable:
            raise Refused("not_supported", "set_prepay_mode: the meter is not prepay-capable")
    elif kind == "add_credit":
        try:
            amount = int(out["amount_pence"])
        except ValueError:
            raise Refused("bad_parameter", f"add_credit: amount_pence {out['amount_pence']!r} is not a whole "
                                           "number of pence", parameter="amount_pence") from None
        if not 1 <= amount <= max_credit_pence:
            raise Refused("bad_parameter", f"add_credit: amount_pence must be 1 … {max_credit_pence}, not "
                                           f"{amount}", parameter="amount_pence")
        out["amount_pence"] = str(amount)
        if not registration.prepay_capable:
            raise Refused("not_supported", "add_credit: the meter is not prepay-capable")
        if prepay_mode != "prepayment":
            raise Refused("not_supported", f"add_credit: the meter is in {prepay_mode or 'credit'} mode; set "
                                           "prepayment mode first")
    elif kind == "set_supply":
        _choice(kind, "state", out["state"], SUPPLY_STATES)
    return out


def command_id(meter_point: str, idempotency_key: str | None = None) -> uuid.UUID:
    """The id of a command: ``uuid5`` of the meter point and the client's idempotency key, or random without one."""
    if idempotency_key is None:
        return uuid.uuid4()
    return uuid.uuid5(NAMESPACE, f"{meter_point}\x1f{idempotency_key}")


def digest(meter_point: str, kind: str, params: Mapping[str, str], not_before: datetime | None) -> str:
    """SHA-256 of a command's content (what an idempotency key stands for)."""
    text = json.dumps([meter_point, kind, dict(sorted(params.items())),
                       not_before.isoformat() if not_before else None], separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


# ------------------------------------------------------------------------------------------ the state machine


class State(StrEnum):
    SUBMITTED = "submitted"
    SENT = "sent"
    ACKNOWLEDGED = "acknowledged"
    REJECTED = "rejected"
    EXPIRED = "expired"


TERMINAL = frozenset({State.ACKNOWLEDGED, State.REJECTED, State.EXPIRED})


@dataclass(frozen=True)
class Policy:
    """When to retry and give up: each attempt waits ``ack_timeout`` for an answer; at most ``max_attempts``
    sends; a command not answered within ``expire_after`` of becoming due (``not_before``, else submission)
    expires, whatever attempts are left."""

    ack_timeout: timedelta
    max_attempts: int
    expire_after: timedelta

    def __post_init__(self):
        if self.max_attempts < 1 or self.ack_timeout <= timedelta(0) or self.expire_after <= timedelta(0):
            raise ValueError("max_attempts, ack_timeout and expire_after must be positive")


@dataclass(frozen=True)
class Command:
    """A submitted command: what and for whom; it never changes (its :class:`Status` does)."""

    command_id: uuid.UUID
    meter_point: str
    kind: str
    params: Mapping[str, str]
    submitted_at: datetime
    not_before: datetime | None = None
    operator: str | None = None
    reason: str | None = None
    idempotency_key: str | None = None

    @property
    def due_at(self) -> datetime:
        return max(self.submitted_at, self.not_before) if self.not_before else self.submitted_at

    def expires_at(self, policy: Policy) -> datetime:
        return self.due_at + policy.expire_after

    def message(self, attempt: int) -> dict:
        """The command as sent to the meter (the Kafka message's value)."""
        return {"command_id": str(self.command_id), "meter_point": self.meter_point, "kind": self.kind,
                "params": dict(self.params), "attempt": attempt}


@dataclass(frozen=True)
class Transition:
    """One row of a command's history: it entered ``state`` at ``at`` (``attempt``: sends so far)."""

    command_id: uuid.UUID
    state: State
    at: datetime
    attempt: int = 0
    detail: str | None = None


@dataclass(frozen=True)
class Status:
    """Where a command stands: the fold of its transitions."""

    state: State
    at: datetime  # when it entered ``state``
    attempt: int = 0
    detail: str | None = None

    @property
    def terminal(self) -> bool:
        return self.state in TERMINAL


def submitted(command: Command) -> Transition:
    return Transition(command.command_id, State.SUBMITTED, command.submitted_at)


def apply(status: Status | None, t: Transition) -> Status:
    """The status after ``t``. Raises ValueError for a transition the state machine does not allow."""
    allowed = {None: {State.SUBMITTED}, State.SUBMITTED: {State.SENT, State.EXPIRED},
               State.SENT: {State.SENT, State.ACKNOWLEDGED, State.REJECTED, State.EXPIRED}}
    current = status.state if status else None
    if t.state not in allowed.get(current, set()):
        raise ValueError(f"command {t.command_id}: {current or 'nothing'} -> {t.state} is not a transition")
    if t.state == State.SENT and t.attempt != (status.attempt if status else 0) + 1:
        raise ValueError(f"command {t.command_id}: send attempt {t.attempt} after {status.attempt}")
    return Status(t.state, t.at, t.attempt if t.state == State.SENT else (status.attempt if status else 0),
                  t.detail)


def fold(transitions: Iterable[Transition]) -> Status | None:
    """The status after a command's transitions (in any order: sorted by time, then state order)."""
    order = {s: i for i, s in enumerate(State)}
    status = None
    for t in sorted(transitions, key=lambda t: (t.at, order[t.state], t.attempt)):
        status = apply(status, t)
    return status


def step(command: Command, status: Status, now: datetime, policy: Policy) -> Transition | None:
    """What the service does now for a command: send it (the first time or again, same id) or expire it; None
    when there is nothing to do yet (or ever: a terminal status)."""
    if status.terminal:
        return None
    expires = command.expires_at(policy)
    if status.state == State.SUBMITTED:
        if KINDS[command.kind].secured and not (command.operator and command.reason):
            # submit() refuses these; a row written past it is never sent either
            return Transition(command.command_id, State.EXPIRED, now, 0, "refused: no operator identity or reason")
        if now >= expires:
            return Transition(command.command_id, State.EXPIRED, now, 0, "not sent before it expired")
        if now >= command.due_at:
            return Transition(command.command_id, State.SENT, now, 1)
        return None
    # sent: waiting for an answer to attempt ``status.attempt`` since ``status.at``
    if now < status.at + policy.ack_timeout and now < expires:
        return None
    if status.attempt < policy.max_attempts and now < expires:
        return Transition(command.command_id, State.SENT, now, status.attempt + 1)
    why = (f"no answer after {status.attempt} attempt(s)" if status.attempt >= policy.max_attempts
           else f"no answer before it expired ({status.attempt} attempt(s))")
    return Transition(command.command_id, State.EXPIRED, now, status.attempt, why)


def next_due(command: Command, status: Status, policy: Policy) -> datetime | None:
    """When :func:`step` will next have something to do (None: never)."""
    if status.terminal:
        return None
    expires = command.expires_at(policy)
    if status.state == State.SUBMITTED:
        return min(command.due_at, expires)
    return min(status.at + policy.ack_timeout, expires)


def respond(status: Status, command_id: uuid.UUID, outcome: str, at: datetime,
            detail: str | None = None) -> Transition | None:
    """The transition a meter's answer (``ack`` or ``reject``) makes, or None when it makes none: an answer to a
    command not (or no longer) awaiting one, i.e. a duplicate, or late after expiry, is recorded by nobody."""
    if status.state != State.SENT:
        return None
    if outcome == "ack":
        return Transition(command_id, State.ACKNOWLEDGED, at, status.attempt, detail)
    if outcome == "reject":
        return Transition(command_id, State.REJECTED, at, status.attempt, detail)
    raise ValueError(f"unknown outcome {outcome!r} (ack or reject)")


# -------------------------------------------------------------------------------------- the settings projection


@dataclass
class Tracked:
    """A command with its status, for the projection."""

    command: Command
    status: Status
    history: list[Transition] = field(default_factory=list)


def _setting_value(command: Command) -> dict:
    return dict(command.params)


def project(tracked: Iterable[Tracked]) -> dict:
    """A meter's settings from its commands: ``confirmed`` (per setting, the last acknowledged command's
    parameters and when the meter confirmed it), ``desired`` (the last submitted command not rejected or expired,
    else the confirmed value), ``pending`` (commands still submitted or sent, oldest first) and ``credit``
    (pence confirmed and pending). Pure."""
    items = sorted(tracked, key=lambda t: (t.command.submitted_at, str(t.command.command_id)))
    confirmed: dict[str, dict] = {}
    desired: dict[str, dict] = {}
    credit = {"confirmed_pence": 0, "pending_pence": 0}
    for t in sorted(items, key=lambda t: (t.status.at, t.command.submitted_at)):
        setting = KINDS[t.command.kind].setting
        if t.status.state == State.ACKNOWLEDGED:
            if setting:
                confirmed[setting] = {**_setting_value(t.command), "command_id": str(t.command.command_id),
                                      "confirmed_at": t.status.at}
            else:
                credit["confirmed_pence"] += int(t.command.params["amount_pence"])
    pending = []
    for t in items:
        setting = KINDS[t.command.kind].setting
        if not t.status.terminal:
            pending.append({"command_id": str(t.command.command_id), "kind": t.command.kind,
                            "params": dict(t.command.params), "state": str(t.status.state),
                            "attempt": t.status.attempt, "submitted_at": t.command.submitted_at})
            if setting is None:
                credit["pending_pence"] += int(t.command.params["amount_pence"])
        if setting and t.status.state not in (State.REJECTED, State.EXPIRED):
            desired[setting] = {**_setting_value(t.command), "command_id": str(t.command.command_id)}
    return {"desired": desired, "confirmed": confirmed, "pending": pending, "credit": credit}


def prepay_mode(tracked: Iterable[Tracked]) -> str | None:
    """The meter's desired prepay mode (what ``add_credit`` is validated against)."""
    return project(tracked)["desired"].get("prepay_mode", {}).get("mode")


def tariff_changes(tracked: Iterable[Tracked]) -> list[dict]:
    """Every tariff change the meter confirmed: ``{"meter_point", "tariff", "windows", "effective_at",
    "command_id"}`` in the order confirmed; ``effective_at`` is the acknowledgement's instant (the meter switched
    when it answered). What billing takes as the meter's account/tariff rows. Pure."""
    out = []
    for t in sorted(tracked, key=lambda t: t.status.at):
        if t.command.kind == "set_tariff" and t.status.state == State.ACKNOWLEDGED:
            out.append({"meter_point": t.command.meter_point, "tariff": t.command.params["tariff"],
                        "windows": t.command.params.get("windows"), "effective_at": t.status.at,
                        "command_id": str(t.command.command_id)})
    return out


def with_status(tracked: Tracked, t: Transition) -> Tracked:
    return replace(tracked, status=apply(tracked.status, t), history=[*tracked.history, t])
