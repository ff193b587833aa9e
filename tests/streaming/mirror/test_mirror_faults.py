"""The mirror against a broker that stops answering mid-run (SIGSTOP), one that is restarted (kill -9, start) and one
that never comes back: the run finishes with every read once, or fails clearly within its bound; it never hangs.

The fault is injected from the lake's first write, so it always falls mid-run: offsets are read, an intent is
committed, and the batch's end, the next intents and the remaining fetches all meet the fault.
"""
from __future__ import annotations

import os
import signal
import threading
import time
from datetime import date

import pytest

from infra.local import stack
from meterlake.lake.files import Lake, open_lake
from streaming.mirror.consumer import Mirror
from streaming.offsets import Stalled
from tests.streaming.mirror.mirrorhelp import lake_counts, meter_days, mirror_settings, publish
from tests.streaming.stackhelp import at_first_call, broker_pid

pytestmark = pytest.mark.stack

READS = 12 * 2 * 48


def _settings(kafka_stack, tmp_path):
    settings = mirror_settings(kafka_stack, tmp_path / "lake", max_file_rows=100, stall_timeout_s=4.0,
                               stall_rejoins=2)
    return settings.model_copy(update={"kafka": settings.kafka.model_copy(update={"wait_timeout_s": 2.0})})


def test_a_broker_paused_mid_run_and_resumed_lets_the_run_finish_with_every_read_once(kafka_stack, tmp_path,
                                                                                        monkeypatch):
    # GIVEN reads on every partition, and a broker that stops for 8 s (twice the stall timeout) at the first write
    settings = _settings(kafka_stack, tmp_path)
    publish(settings, meter_days(12, 2, date(2024, 1, 10)))
    pid = broker_pid(settings)
    resumed = threading.Timer(8.0, os.kill, (pid, signal.SIGCONT))
    at_first_call(monkeypatch, Lake, "write_parquet", lambda: (os.kill(pid, signal.SIGSTOP), resumed.start()))
    try:
        # WHEN the mirror runs until caught up
        started = time.monotonic()
        stats = Mirror(settings).run(until_caught_up=True, deadline_s=120)
    finally:
        resumed.cancel()
        os.kill(pid, signal.SIGCONT)
    # THEN it finishes, well within its deadline, and the lake holds every read once
    assert time.monotonic() - started < 120
    assert stats.reads >= READS
    assert lake_counts(open_lake(settings))[:2] == [READS, READS]


def test_a_broker_restarted_mid_run_lets_the_run_finish_with_every_read_once(kafka_stack, tmp_path, monkeypatch):
    settings = _settings(kafka_stack, tmp_path)
    publish(settings, meter_days(12, 2, date(2024, 1, 10)))
    at_first_call(monkeypatch, Lake, "write_parquet",
                  lambda: (stack.kill(settings, "kafka-1"), stack.start(settings, "kafka-1")))
    stats = Mirror(settings).run(until_caught_up=True, deadline_s=240)
    assert stats.reads >= READS
    assert lake_counts(open_lake(settings))[:2] == [READS, READS]


def test_a_broker_that_never_answers_again_fails_the_run_clearly_and_in_time(kafka_stack, tmp_path, monkeypatch):
    # GIVEN a broker that stops at the mirror's first write and stays stopped
    settings = _settings(kafka_stack, tmp_path)
    publish(settings, meter_days(12, 2, date(2024, 1, 10)))
    pid = broker_pid(settings)
    at_first_call(monkeypatch, Lake, "write_parquet", lambda: os.kill(pid, signal.SIGSTOP))
    started = time.monotonic()
    try:
        # WHEN the mirror runs until caught up, with no deadline of its own
        with pytest.raises(Stalled) as failed:
            Mirror(settings).run(until_caught_up=True)
        took = time.monotonic() - started
    finally:
        os.kill(pid, signal.SIGCONT)
    # THEN it stops after its stall timeout and two fresh consumers (3 x 4 s, plus the bounded waits), naming
    # the mirror's partitions
    assert took < 90
    assert "no progress" in failed.value.message
    assert set(failed.value.details["partitions"]) <= {f"{t}/{p}" for t in (settings.kafka.reads_topic,
                                                                           settings.kafka.devices_topic)
                                                      for p in range(3)}
    # AND once the broker is back, the next run lands every read once
    monkeypatch.undo()
    Mirror(settings).run(until_caught_up=True, deadline_s=120)
    assert lake_counts(open_lake(settings))[:2] == [READS, READS]


def test_a_namenode_in_safe_mode_pauses_the_mirror_which_resumes_when_it_leaves(kafka_stack, tmp_path, monkeypatch):
    # GIVEN a lake that answers as WebHDFS does while its NameNode is in safe mode (fsspec: a RuntimeError)
    settings = _settings(kafka_stack, tmp_path)
    publish(settings, meter_days(12, 2, date(2024, 1, 10)))
    real = Lake.write_parquet
    refused = []

    def safe_mode(self, relative, table):
        if len(refused) < 3:
            refused.append(relative)
            raise RuntimeError(f"Cannot create file{relative}. Name node is in safe mode.")
        return real(self, relative, table)

    monkeypatch.setattr(Lake, "write_parquet", safe_mode)
    # WHEN the mirror runs: THEN it pauses, retries, and lands every read once
    stats = Mirror(settings).run(until_caught_up=True, deadline_s=120)
    assert stats.sink_failures == 3
    assert lake_counts(open_lake(settings))[:2] == [READS, READS]


def test_a_deadline_met_while_the_lake_refuses_writes_names_the_failure(kafka_stack, tmp_path, monkeypatch):
    # GIVEN a lake whose every write fails as a full disk's does (the sweep's real full disk:
    # benchmarks/bench_faults.py, tests/benchmarks/test_faults_sweep.py, where user namespaces are allowed)
    settings = _settings(kafka_stack, tmp_path)
    publish(settings, meter_days(12, 2, date(2024, 1, 10)))

    def full(self, relative, table):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Lake, "write_parquet", full)
    # WHEN the mirror runs until caught up with a deadline
    with pytest.raises(Stalled) as failed:
        Mirror(settings).run(until_caught_up=True, deadline_s=8)
    # THEN the error says the batches were not written and why, not only the (fetched, so empty) lag
    assert "not written" in failed.value.message
    assert "No space left on device" in failed.value.message
