"""`ingest watch` against a broker that stops answering while a claim-check reference waits (SIGSTOP): the
worker's stall watchdog replaces its consumer, then fails clearly within its bound naming the files topic; once
the broker answers again the worker takes the reference and ingests the file. It never hangs."""
from __future__ import annotations

import os
import signal
import threading
import time

import pytest

from streaming.ingest.watch import Worker
from streaming.offsets import Stalled
from tests.streaming.ingest.test_watch import NOW, _land
from tests.streaming.stackhelp import broker_pid, isolated

pytestmark = [pytest.mark.stack, pytest.mark.slow]


@pytest.fixture
def settings(kafka_stack, cassandra_stack):
    settings = isolated(cassandra_stack, "watchstall", lease_s=5, claim_check_bytes=2000)
    return settings.model_copy(update={
        "kafka": settings.kafka.model_copy(update={"wait_timeout_s": 2.0}),
        "ingest": settings.ingest.model_copy(update={"stall_timeout_s": 3.0, "stall_rejoins": 1})})


def _announced(settings, tmp_path) -> Worker:
    """A worker that has announced one large file (a reference waits on the files topic)."""
    _land(tmp_path / "landing", "HH_big.csv", range(3))
    worker = Worker(settings, str(tmp_path / "landing"), "w1", now=NOW)
    worker.scan()
    assert len(worker.result.announced) == 1
    return worker


def test_a_broker_that_stops_answering_fails_the_worker_clearly_and_in_time_and_it_resumes(settings, tmp_path):
    pid = broker_pid(settings)
    with _announced(settings, tmp_path) as worker:
        os.kill(pid, signal.SIGSTOP)
        started = time.monotonic()
        try:
            with pytest.raises(Stalled) as failed:
                worker.take_references(until_caught_up=True)
            took = time.monotonic() - started
        finally:
            os.kill(pid, signal.SIGCONT)
        # THEN it gave up after one fresh consumer made no progress either: 2 stall timeouts and the bounded waits
        assert took < 45, took
        assert "made no progress for 3s, 1 times over with a fresh consumer" in failed.value.message
        assert settings.kafka.files_topic in failed.value.message
        # AND with the broker back, the same worker takes the reference and ingests the file
        worker.take_references(until_caught_up=True)
    (done,) = worker.result.files
    assert (done["via"], done["reads"]) == ("reference", 3 * 48)


def test_a_broker_paused_for_less_than_the_bound_lets_the_worker_finish(settings, tmp_path):
    settings = settings.model_copy(update={"ingest": settings.ingest.model_copy(update={"stall_rejoins": 4})})
    pid = broker_pid(settings)
    with _announced(settings, tmp_path) as worker:
        os.kill(pid, signal.SIGSTOP)
        resumed = threading.Timer(6.0, os.kill, (pid, signal.SIGCONT))
        resumed.start()
        try:
            worker.take_references(until_caught_up=True)
        finally:
            resumed.cancel()
            os.kill(pid, signal.SIGCONT)
    (done,) = worker.result.files
    assert (done["via"], done["reads"]) == ("reference", 3 * 48)
