"""The store against a broker that stops answering mid-run (SIGSTOP): resumed, the run finishes with every set
stored; never resumed, the run fails clearly within its stall bound, naming its partitions. It never hangs."""
from __future__ import annotations

import os
import signal
import threading
import time
from datetime import date

import pytest

from streaming.offsets import Stalled
from streaming.store import consumer
from streaming.store.writer import Writer
from tests.streaming.mirror.mirrorhelp import meter_days, publish
from tests.streaming.stackhelp import at_first_call, broker_pid, isolated, query

pytestmark = pytest.mark.stack

SETS = 12 * 2


def _settings(cassandra_stack):
    settings = isolated(cassandra_stack, "storefault")
    return settings.model_copy(update={
        "kafka": settings.kafka.model_copy(update={"wait_timeout_s": 2.0}),
        "store": settings.store.model_copy(update={"stall_timeout_s": 4.0, "stall_rejoins": 2})})


def _stored(settings) -> int:
    return query(settings, "SELECT count(*) FROM {ks}.hh_sets")[0][0]


def test_a_broker_paused_mid_run_and_resumed_lets_the_store_finish(kafka_stack, cassandra_stack, monkeypatch):
    settings = _settings(cassandra_stack)
    publish(settings, meter_days(12, 2, date(2024, 1, 10)))
    pid = broker_pid(settings)
    resumed = threading.Timer(8.0, os.kill, (pid, signal.SIGCONT))
    at_first_call(monkeypatch, Writer, "write_many", lambda: (os.kill(pid, signal.SIGSTOP), resumed.start()))
    try:
        result = consumer.run(settings, until_caught_up=True, poll_records=1, deadline_s=120)
    finally:
        resumed.cancel()
        os.kill(pid, signal.SIGCONT)
    assert result.messages >= 1
    assert _stored(settings) == SETS


def test_a_broker_that_never_answers_again_fails_the_store_clearly_and_in_time(kafka_stack, cassandra_stack,
                                                                               monkeypatch):
    settings = _settings(cassandra_stack)
    publish(settings, meter_days(12, 2, date(2024, 1, 10)))
    pid = broker_pid(settings)
    at_first_call(monkeypatch, Writer, "write_many", lambda: os.kill(pid, signal.SIGSTOP))
    started = time.monotonic()
    try:
        with pytest.raises(Stalled) as failed:
            consumer.run(settings, until_caught_up=True, poll_records=1)
        took = time.monotonic() - started
    finally:
        os.kill(pid, signal.SIGCONT)
    assert took < 90
    assert "the store made no progress" in failed.value.message
    assert set(failed.value.details["partitions"]) <= {f"{t}/{p}" for t in consumer.topics(settings) for p in range(3)}
    # AND once the broker is back, the next run stores everything (what was written before is written again)
    monkeypatch.undo()
    consumer.run(settings, until_caught_up=True, deadline_s=120)
    assert _stored(settings) == SETS
