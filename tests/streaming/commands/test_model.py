"""The pure core of meter commands: validation, ids, the state machine, the settings projection."""
from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from streaming.commands import model as m
from streaming.commands.model import Command, Policy, Registration, State, Status, Transition

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
CREDIT_METER = Registration("2000012345670", "electricity", ssc="0393", profile_class="1", prepay_capable=True)
E7_METER = Registration("2000012345670", "electricity", ssc="0151", profile_class="2", prepay_capable=True)
GAS_METER = Registration("1234567890", "gas", prepay_capable=True)
BUSINESS_METER = Registration("2000012345670", "electricity", ssc=None, profile_class=None, prepay_capable=False)
POLICY = Policy(ack_timeout=timedelta(seconds=30), max_attempts=3, expire_after=timedelta(minutes=10))


def refused(kind, params, registration=CREDIT_METER, **kw) -> m.Refused:
    with pytest.raises(m.Refused) as info:
        m.validate(kind, params, registration, **kw)
    return info.value


# ------------------------------------------------------------------------------------------------ validation


@pytest.mark.parametrize("kind, params, expected", [
    pytest.param("set_read_interval", {"interval": "30min"}, {"interval": "30min"}, id="half-hourly"),
    pytest.param("set_tariff", {"tariff": "E7-FIX-24"}, {"tariff": "E7-FIX-24"}, id="single rate"),
    pytest.param("set_prepay_mode", {"mode": "prepayment"}, {"mode": "prepayment"}, id="prepayment"),
    pytest.param("set_tariff", {"tariff": "GO", "windows": " 00:30-04:30 "}, {"tariff": "GO", "windows": "00:30-04:30"},
                 id="windows normalised"),
])
def test_a_possible_command_is_accepted_with_its_parameters_normalised(kind, params, expected):
    registration = E7_METER if "windows" in params else CREDIT_METER
    assert m.validate(kind, params, registration) == expected


def test_an_unknown_kind_is_refused():
    assert refused("set_colour", {"colour": "red"}).reason == "unknown_kind"


@pytest.mark.parametrize("kind, params, parameter", [
    pytest.param("set_read_interval", {"interval": "15min"}, "interval", id="interval not offered"),
    pytest.param("set_read_interval", {}, "interval", id="missing"),
    pytest.param("set_read_interval", {"interval": "daily", "colour": "red"}, "colour", id="unknown parameter"),
    pytest.param("set_tariff", {"tariff": "no spaces please"}, "tariff", id="not a tariff id"),
    pytest.param("set_tariff", {"tariff": "T", "windows": "00:15-07:30"}, "windows", id="off the half-hour"),
    pytest.param("set_tariff", {"tariff": "T", "windows": "00:30-07:30,07:00-08:00"}, "windows", id="overlap"),
    pytest.param("set_tariff", {"tariff": "T", "windows": "23:00-01:00,00:30-02:00"}, "windows",
                 id="overlap past midnight"),
    pytest.param("set_tariff", {"tariff": "T", "windows": "07:00-07:00"}, "windows", id="empty window"),
    pytest.param("set_prepay_mode", {"mode": "free"}, "mode", id="prepay mode"),
    pytest.param("set_supply", {"state": "off"}, "state", id="supply state"),
])
def test_bad_parameters_are_refused_naming_the_parameter(kind, params, parameter):
    error = refused(kind, params, operator="ops1", reason="ticket 7")
    assert (error.reason, error.details["parameter"]) == ("bad_parameter", parameter)


def test_a_meter_without_registration_gets_nothing():
    assert refused("set_read_interval", {"interval": "daily"}, None).reason == "not_registered"


def test_time_of_use_windows_need_a_multi_register_ssc():
    error = refused("set_tariff", {"tariff": "GO", "windows": "00:30-04:30"}, CREDIT_METER)
    assert error.reason == "not_supported" and "SSC 0393 has 1" in error.message


def test_time_of_use_windows_need_an_electricity_meter():
    assert "gas" in refused("set_tariff", {"tariff": "GO", "windows": "00:30-04:30"}, GAS_METER).message


def test_a_meter_with_an_unknown_ssc_takes_no_time_of_use_tariff():
    unknown = Registration("2000012345670", "electricity", ssc="9999", profile_class="1")
    assert "not known" in refused("set_tariff", {"tariff": "GO", "windows": "00:30-04:30"}, unknown).message


def test_a_window_may_run_past_midnight():
    assert m.validate("set_tariff", {"tariff": "N", "windows": "23:00-06:00,13:00-16:00"}, E7_METER)["windows"] \
        == "23:00-06:00,13:00-16:00"


def test_a_tariff_outside_the_catalogue_is_refused_when_there_is_one():
    assert refused("set_tariff", {"tariff": "NOPE"}, tariffs={"E7-FIX-24"}).reason == "unknown_tariff"
    assert m.validate("set_tariff", {"tariff": "E7-FIX-24"}, CREDIT_METER, tariffs={"E7-FIX-24"})


def test_prepay_needs_a_prepay_capable_meter():
    assert refused("set_prepay_mode", {"mode": "prepayment"}, BUSINESS_METER).reason == "not_supported"


@pytest.mark.parametrize("kind, params", [
    pytest.param("add_credit", {"amount_pence": "1000"}, id="credit"),
    pytest.param("set_supply", {"state": "disconnect"}, id="supply"),
])
@pytest.mark.parametrize("operator, reason", [
    pytest.param(None, "customer asked", id="no operator"),
    pytest.param("ops1", None, id="no reason"),
    pytest.param("  ", "customer asked", id="blank operator"),
])
def test_supply_and_credit_commands_need_an_operator_and_a_reason(kind, params, operator, reason):
    error = refused(kind, params, operator=operator, reason=reason, prepay_mode="prepayment")
    assert error.reason == "unauthorised"


def test_supply_with_operator_and_reason_is_accepted():
    assert m.validate("set_supply", {"state": "arm"}, CREDIT_METER, operator="ops1", reason="paid") == {"state": "arm"}


def test_credit_needs_prepayment_mode_and_a_bounded_amount():
    who = {"operator": "ops1", "reason": "top-up"}
    assert "credit mode" in refused("add_credit", {"amount_pence": "500"}, prepay_mode="credit", **who).message
    assert refused("add_credit", {"amount_pence": "0"}, prepay_mode="prepayment", **who).reason == "bad_parameter"
    assert refused("add_credit", {"amount_pence": "2.50"}, prepay_mode="prepayment", **who).reason == "bad_parameter"
    assert refused("add_credit", {"amount_pence": "50001"}, prepay_mode="prepayment", **who).reason == "bad_parameter"
    assert m.validate("add_credit", {"amount_pence": "0500"}, CREDIT_METER, prepay_mode="prepayment",
                      **who) == {"amount_pence": "500"}


# ----------------------------------------------------------------------------------------------------- ids


def test_the_same_idempotency_key_gives_the_same_command_id():
    first = m.command_id("2000012345670", "client-42")
    assert first == m.command_id("2000012345670", "client-42")
    assert first.version == 5
    assert first != m.command_id("2000012345670", "client-43")
    assert first != m.command_id("2000012345671", "client-42")


def test_without_a_key_every_submission_is_a_new_command():
    assert m.command_id("2000012345670") != m.command_id("2000012345670")


def test_the_digest_tells_other_content_apart():
    a = m.digest("2000012345670", "set_tariff", {"tariff": "A"}, None)
    assert a == m.digest("2000012345670", "set_tariff", {"tariff": "A"}, None)
    assert a != m.digest("2000012345670", "set_tariff", {"tariff": "B"}, None)
    assert a != m.digest("2000012345670", "set_tariff", {"tariff": "A"}, T0)


# ------------------------------------------------------------------------------------------ state machine

CID = uuid.UUID("00000000-0000-0000-0000-000000000001")


def command(**kw) -> Command:
    return Command(**{"command_id": CID, "meter_point": "2000012345670", "kind": "set_read_interval",
                      "params": {"interval": "30min"}, "submitted_at": T0, **kw})


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def test_a_submitted_command_is_sent_at_once():
    status = m.fold([m.submitted(command())])
    assert m.step(command(), status, at(0), POLICY) == Transition(CID, State.SENT, at(0), 1)


def test_a_command_not_before_a_time_waits_for_it():
    cmd = command(not_before=at(120))
    status = m.fold([m.submitted(cmd)])
    assert m.step(cmd, status, at(119), POLICY) is None
    assert m.step(cmd, status, at(120), POLICY) == Transition(CID, State.SENT, at(120), 1)
    assert m.next_due(cmd, status, POLICY) == at(120)


def test_an_answered_command_is_acknowledged_or_rejected():
    sent = Status(State.SENT, at(0), 1)
    assert m.respond(sent, CID, "ack", at(2)) == Transition(CID, State.ACKNOWLEDGED, at(2), 1)
    assert m.respond(sent, CID, "reject", at(2), "busy") == Transition(CID, State.REJECTED, at(2), 1, "busy")


def test_an_unanswered_send_is_retried_with_the_same_id_then_expired():
    cmd = command()
    history = [m.submitted(cmd), Transition(CID, State.SENT, at(0), 1)]
    assert m.step(cmd, m.fold(history), at(29), POLICY) is None
    retry = m.step(cmd, m.fold(history), at(30), POLICY)
    assert retry == Transition(CID, State.SENT, at(30), 2)
    history += [retry, Transition(CID, State.SENT, at(60), 3)]
    assert m.fold(history) == Status(State.SENT, at(60), 3)
    expired = m.step(cmd, m.fold(history), at(90), POLICY)
    assert (expired.state, expired.attempt, expired.detail) == (State.EXPIRED, 3, "no answer after 3 attempt(s)")
    assert m.step(cmd, m.apply(m.fold(history), expired), at(1000), POLICY) is None


def test_a_command_expires_at_its_deadline_whatever_attempts_are_left():
    policy = Policy(ack_timeout=timedelta(seconds=30), max_attempts=100, expire_after=timedelta(seconds=45))
    cmd = command()
    status = m.fold([m.submitted(cmd), Transition(CID, State.SENT, at(0), 1), Transition(CID, State.SENT, at(30), 2)])
    assert m.next_due(cmd, status, policy) == at(45)
    assert m.step(cmd, status, at(45), policy).state == State.EXPIRED


def test_a_command_never_sent_expires():
    cmd = command(not_before=at(60))
    policy = Policy(ack_timeout=timedelta(seconds=30), max_attempts=3, expire_after=timedelta(seconds=10))
    # the service was down from before not_before until after the expiry
    t = m.step(cmd, m.fold([m.submitted(cmd)]), at(70), policy)
    assert (t.state, t.attempt) == (State.EXPIRED, 0)


def test_the_service_never_sends_a_supply_command_without_an_operator_and_a_reason():
    bare = command(kind="set_supply", params={"state": "disconnect"}, operator="ops1")
    t = m.step(bare, m.fold([m.submitted(bare)]), at(0), POLICY)
    assert (t.state, t.detail) == (State.EXPIRED, "refused: no operator identity or reason")
    signed = command(kind="set_supply", params={"state": "disconnect"}, operator="ops1", reason="debt")
    assert m.step(signed, m.fold([m.submitted(signed)]), at(0), POLICY).state == State.SENT


@pytest.mark.parametrize("status", [
    pytest.param(Status(State.ACKNOWLEDGED, at(3), 1), id="duplicate answer"),
    pytest.param(Status(State.EXPIRED, at(90), 3), id="answer after expiry"),
    pytest.param(Status(State.SUBMITTED, at(0), 0), id="answer before the send is recorded"),
])
def test_an_answer_to_a_command_not_awaiting_one_changes_nothing(status):
    assert m.respond(status, CID, "ack", at(100)) is None


@pytest.mark.parametrize("history", [
    pytest.param([Transition(CID, State.SENT, at(0), 1)], id="sent before submitted"),
    pytest.param([Transition(CID, State.SUBMITTED, at(0)), Transition(CID, State.ACKNOWLEDGED, at(1), 0)],
                 id="acknowledged before sent"),
    pytest.param([Transition(CID, State.SUBMITTED, at(0)), Transition(CID, State.SENT, at(1), 2)],
                 id="attempt skipped"),
    pytest.param([Transition(CID, State.SUBMITTED, at(0)), Transition(CID, State.SENT, at(1), 1),
                  Transition(CID, State.REJECTED, at(2), 1), Transition(CID, State.ACKNOWLEDGED, at(3), 1)],
                 id="terminal is terminal"),
])
def test_impossible_histories_are_errors(history):
    with pytest.raises(ValueError):
        m.fold(history)


def test_a_history_folds_in_time_order_whatever_order_it_is_read_in():
    history = [Transition(CID, State.ACKNOWLEDGED, at(31), 2), Transition(CID, State.SENT, at(30), 2),
               Transition(CID, State.SUBMITTED, at(0)), Transition(CID, State.SENT, at(0), 1)]
    assert m.fold(history) == Status(State.ACKNOWLEDGED, at(31), 2)


# ------------------------------------------------------------------------------------------- projection


def tracked(n: int, kind: str, params: dict, state: State, submitted_s: float, status_s: float) -> m.Tracked:
    cid = uuid.UUID(int=n)
    return m.Tracked(Command(cid, "2000012345670", kind, params, at(submitted_s)),
                     Status(state, at(status_s), 1))


def test_the_projection_tells_desired_from_confirmed_and_lists_pending():
    commands = [
        tracked(1, "set_read_interval", {"interval": "daily"}, State.ACKNOWLEDGED, 0, 5),
        tracked(2, "set_read_interval", {"interval": "30min"}, State.SENT, 100, 100),
        tracked(3, "set_tariff", {"tariff": "A"}, State.ACKNOWLEDGED, 10, 12),
        tracked(4, "set_tariff", {"tariff": "B"}, State.REJECTED, 200, 201),
        tracked(5, "set_supply", {"state": "disconnect"}, State.EXPIRED, 300, 400),
    ]
    p = m.project(commands)
    assert p["confirmed"] == {
        "read_interval": {"interval": "daily", "command_id": str(uuid.UUID(int=1)), "confirmed_at": at(5)},
        "tariff": {"tariff": "A", "command_id": str(uuid.UUID(int=3)), "confirmed_at": at(12)},
    }
    assert p["desired"] == {"read_interval": {"interval": "30min", "command_id": str(uuid.UUID(int=2))},
                            "tariff": {"tariff": "A", "command_id": str(uuid.UUID(int=3))}}
    assert [c["command_id"] for c in p["pending"]] == [str(uuid.UUID(int=2))]


def test_credit_adds_up_confirmed_and_pending():
    commands = [tracked(1, "add_credit", {"amount_pence": "500"}, State.ACKNOWLEDGED, 0, 1),
                tracked(2, "add_credit", {"amount_pence": "700"}, State.ACKNOWLEDGED, 2, 3),
                tracked(3, "add_credit", {"amount_pence": "1000"}, State.SUBMITTED, 4, 4),
                tracked(4, "add_credit", {"amount_pence": "9999"}, State.REJECTED, 5, 6)]
    assert m.project(commands)["credit"] == {"confirmed_pence": 1200, "pending_pence": 1000}


def test_a_later_acknowledgement_confirms_over_an_earlier_one():
    commands = [tracked(1, "set_prepay_mode", {"mode": "prepayment"}, State.ACKNOWLEDGED, 0, 50),
                tracked(2, "set_prepay_mode", {"mode": "credit"}, State.ACKNOWLEDGED, 10, 20)]
    assert m.project(commands)["confirmed"]["prepay_mode"]["mode"] == "prepayment"
    assert m.prepay_mode(commands) == "credit"  # desired: the last submitted


def test_confirmed_tariff_changes_are_the_acknowledged_ones_in_order():
    commands = [tracked(1, "set_tariff", {"tariff": "A"}, State.ACKNOWLEDGED, 0, 9),
                tracked(2, "set_tariff", {"tariff": "B"}, State.REJECTED, 10, 11),
                tracked(3, "set_tariff", {"tariff": "C", "windows": "00:30-07:30"}, State.ACKNOWLEDGED, 20, 21),
                tracked(4, "set_read_interval", {"interval": "daily"}, State.ACKNOWLEDGED, 30, 31)]
    assert m.tariff_changes(commands) == [
        {"meter_point": "2000012345670", "tariff": "A", "windows": None, "effective_at": at(9),
         "command_id": str(uuid.UUID(int=1))},
        {"meter_point": "2000012345670", "tariff": "C", "windows": "00:30-07:30", "effective_at": at(21),
         "command_id": str(uuid.UUID(int=3))},
    ]
