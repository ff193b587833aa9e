"""Meter commands on the real stack: submit, send, answer, retry, expire; the audit trail; idempotency; refusals."""
from __future__ import annotations

import json
import time
import uuid

import pytest

from meterlake import calendar, clients
from meterlake.errors import UsageError
from streaming.commands import service
from tests.streaming import stackhelp
from tests.streaming.commands import stack

pytestmark = [pytest.mark.stack]


@pytest.fixture()
def settings(kafka_stack, cassandra_stack, tmp_path):
    """Topics and a keyspace of the test's own: for tests that run the service."""
    mps = stack.meter_points(5)
    return stack.settings_for(cassandra_stack, stack.write_registrations(tmp_path / "reg.csv", mps)), mps


@pytest.fixture(scope="module")
def _shared(kafka_stack, cassandra_stack, tmp_path_factory):
    mps = stack.meter_points(30)
    path = stack.write_registrations(tmp_path_factory.mktemp("reg") / "reg.csv", mps)
    return stack.settings_for(cassandra_stack, path), iter(mps)


@pytest.fixture()
def submitting(_shared):
    """One keyspace for the tests that only submit (each its own meter point): no service runs there."""
    settings, mps = _shared
    return settings, [next(mps)]


def rows(settings, meter_point):
    return stackhelp.query(settings, "SELECT command_id, state, attempt, operator, reason FROM {ks}.meter_commands "
                                     "WHERE meter_point = %s", meter_point)


def wait_for(predicate, timeout=60.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met in time")
        time.sleep(0.2)


def test_a_command_is_sent_acknowledged_and_confirmed_with_every_transition_a_row(settings, tmp_path):
    settings, (mp, *_) = settings
    svc, gw = stack.run_service(settings), stack.run_gateway(settings, tmp_path / "devices.json")
    try:
        tracked, duplicate = service.submit(settings, mp, "set_read_interval", {"interval": "30min"})
        cid = tracked.command.command_id
        tariff, _ = service.submit(settings, mp, "set_tariff", {"tariff": "GO-2"})
        wait_for(lambda: len(service.show(settings, mp)["confirmed"]) == 2)
    finally:
        result = svc.stop()
        gw.stop()
    assert not duplicate
    assert sorted((r.state, r.attempt) for r in rows(settings, mp) if r.command_id == cid) == [
        ("acknowledged", 1), ("sent", 1), ("submitted", 0)]
    shown = service.show(settings, mp)
    assert shown["confirmed"]["read_interval"]["interval"] == "30min"
    assert shown["confirmed"]["read_interval"]["command_id"] == str(cid)
    assert shown["pending"] == []
    assert (result.sent, result.acknowledged) == (2, 2)
    devices = json.loads((tmp_path / "devices.json").read_text())
    assert devices[mp]["settings"]["read_interval"]["interval"] == "30min"
    sent = stackhelp.consume(settings, settings.meters.commands_topic)
    assert [r.key.decode() for r in sent] == [mp, mp]

    # the confirmed tariff change, as a new row of the meter's account for billing, from the UK day confirmed
    confirmed_at = shown["confirmed"]["tariff"]["confirmed_at"]
    day = calendar.locate(confirmed_at)[0]
    (tmp_path / "accounts.csv").write_text(f"account,meter_point,tariff,effective_from\nACC-1,{mp},FLAT,2020-01-01\n")
    code, out = stack.cli(settings, "meters", "tariff-changes", "--since", str(day), "--accounts",
                          str(tmp_path / "accounts.csv"), "--out", str(tmp_path / "new.csv"))
    assert code == 0, out
    assert [(c["meter_point"], c["tariff"], c["command_id"]) for c in out["changes"]] == [
        (mp, "GO-2", str(tariff.command.command_id))]
    assert (out["rows"], out["unmatched"]) == (1, [])
    assert (tmp_path / "new.csv").read_text().splitlines()[1] == f"ACC-1,{mp},GO-2,{day},,1"


def test_the_same_idempotency_key_is_the_same_command(submitting):
    settings, (mp, *_) = submitting
    first, dup1 = service.submit(settings, mp, "set_tariff", {"tariff": "FIX-24"}, idempotency_key="k-1")
    again, dup2 = service.submit(settings, mp, "set_tariff", {"tariff": "FIX-24"}, idempotency_key="k-1")
    assert (dup1, dup2) == (False, True)
    assert again.command.command_id == first.command.command_id
    assert again.command.submitted_at == first.command.submitted_at
    assert [r.state for r in rows(settings, mp)] == ["submitted"]
    with pytest.raises(UsageError) as info:
        service.submit(settings, mp, "set_tariff", {"tariff": "OTHER"}, idempotency_key="k-1")
    assert info.value.details["refusal"] == "idempotency_conflict"


def test_a_refused_command_writes_and_sends_nothing(submitting):
    settings, (mp, *_) = submitting
    with pytest.raises(UsageError) as info:
        service.submit(settings, mp, "set_tariff", {"tariff": "GO", "windows": "00:30-04:30"})
    assert info.value.details["refusal"] == "not_supported"
    with pytest.raises(UsageError) as info:
        service.submit(settings, stack.meter_points(1, start=900)[0], "set_read_interval", {"interval": "daily"})
    assert info.value.details["refusal"] == "not_registered"
    assert rows(settings, mp) == []


def test_a_tariff_billing_has_not_loaded_is_refused(submitting, tmp_path):
    # GIVEN the lake's tariffs (stack.TARIFFS), WHEN a command names another, THEN it is refused, naming them
    settings, (mp, *_) = submitting
    with pytest.raises(UsageError) as info:
        service.submit(settings, mp, "set_tariff", {"tariff": "GO-3"})
    assert info.value.details["refusal"] == "unknown_tariff"
    assert "no tariff 'GO-3' among billing's tariffs (FIX-24, GO, GO-2, OTHER, T0, T1, T2)" in info.value.message
    # a lake without tariffs refuses every set_tariff, saying how to load them
    empty = settings.model_copy(update={"paths": settings.paths.model_copy(update={"lake": str(tmp_path / "lake")})})
    with pytest.raises(UsageError) as info:
        service.submit(empty, mp, "set_tariff", {"tariff": "GO"})
    assert info.value.details["refusal"] == "no_tariffs" and "meterlake tariffs load" in info.value.message
    assert rows(settings, mp) == []


def test_supply_and_credit_need_an_operator_and_a_reason_which_are_recorded(submitting):
    settings, (mp, *_) = submitting
    with pytest.raises(UsageError) as info:
        service.submit(settings, mp, "set_supply", {"state": "disconnect"}, reason="debt")
    assert info.value.details["refusal"] == "unauthorised"
    assert rows(settings, mp) == []
    configured = settings.model_copy(update={"meters": settings.meters.model_copy(update={"operator": "ops-7"})})
    service.submit(configured, mp, "set_supply", {"state": "disconnect"}, reason="debt, letter 3")
    assert [(r.state, r.operator, r.reason) for r in rows(settings, mp)] == [("submitted", "ops-7", "debt, letter 3")]


def test_an_unanswered_command_is_retried_with_the_same_id_then_expired(settings):
    settings, (mp, *_) = settings
    settings = settings.model_copy(update={"meters": settings.meters.model_copy(
        update={"ack_timeout_s": 1.0, "max_attempts": 2})})
    svc = stack.run_service(settings)  # no gateway: nobody answers
    try:
        tracked, _ = service.submit(settings, mp, "set_read_interval", {"interval": "daily"})
        wait_for(lambda: any(r.state == "expired" for r in rows(settings, mp)))
    finally:
        result = svc.stop()
    assert sorted((r.state, r.attempt) for r in rows(settings, mp)) == [
        ("expired", 2), ("sent", 1), ("sent", 2), ("submitted", 0)]
    sent = [json.loads(r.value) for r in stackhelp.consume(settings, settings.meters.commands_topic)]
    assert [(uuid.UUID(s["command_id"]), s["attempt"]) for s in sent] == [
        (tracked.command.command_id, 1), (tracked.command.command_id, 2)]
    assert (result.sent, result.retried, result.expired, result.open) == (1, 1, 1, 0)


def test_the_cli_submits_refuses_and_shows(submitting):
    settings, (mp, *_) = submitting
    code, submitted = stack.cli(settings, "meters", "command", mp, "set_tariff", "--param", "tariff=FIX-24",
                                "--idempotency-key", "cli-1")
    assert code == 0
    assert set(submitted) == {"command_id", "meter_point", "kind", "params", "state", "attempt", "submitted_at",
                              "not_before", "operator", "reason", "idempotency_key", "duplicate"}
    assert (submitted["state"], submitted["params"], submitted["duplicate"]) == ("submitted", {"tariff": "FIX-24"},
                                                                               False)
    code, refused = stack.cli(settings, "meters", "command", mp, "set_supply", "--param", "state=arm")
    assert code == 2
    assert (refused["error"]["type"], refused["error"]["refusal"]) == ("usage", "unauthorised")
    code, shown = stack.cli(settings, "meters", "show", mp)
    assert code == 0
    assert shown["desired"] == {"tariff": {"tariff": "FIX-24", "command_id": submitted["command_id"]}}
    assert shown["confirmed"] == {}
    assert [p["command_id"] for p in shown["pending"]] == [submitted["command_id"]]
    assert shown["registration"]["ssc"] == "0393"


def test_the_service_refuses_topics_of_another_partition_count(submitting):
    settings, _ = submitting
    clients.ensure_topics(settings, service.topics(settings), settings.meters.partitions)
    other = settings.model_copy(update={"meters": settings.meters.model_copy(update={"partitions": 2})})
    with pytest.raises(UsageError, match="has 3 partitions"):
        service.run(other, max_seconds=30)
