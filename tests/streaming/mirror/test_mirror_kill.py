"""Exactly once under SIGKILL: the mirror runs as its own process (the CLI) and is killed at random moments while
reads stream through the real broker; after restarts the lake holds every read exactly once.

Every other kill is aimed inside a batch: the mirror is frozen (SIGSTOP) at random instants until the group's
committed offsets show a batch's intent without its completion, and is killed there, so the repair path is
exercised whatever the machine's speed.

Size: METERLAKE_KILL_READS reads (default 1,000,000) and METERLAKE_KILLS kills (default 20).
"""
from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from datetime import date

import pyarrow as pa
import pytest
from kafka import KafkaAdminClient

from meterlake import clients, pseudonym, schema
from meterlake.lake.files import open_lake
from streaming import kafka_io
from streaming.mirror.consumer import INTENT_PREFIX, Mirror
from streaming.mirror.query import connect
from tests.streaming.mirror.mirrorhelp import env_of, meter_days, mirror_settings, producer_for

pytestmark = [pytest.mark.stack, pytest.mark.slow]

READS = int(os.environ.get("METERLAKE_KILL_READS", "1000000"))
KILLS = int(os.environ.get("METERLAKE_KILLS", "20"))
CHECKSUM = "SELECT count(*), count(DISTINCT (meter_point, interval_start_utc)), " \
           "sum(hash(meter_point, interval_start_utc, value)) FROM {}"


def _chunks(total_reads: int, pieces: int, days: int) -> list[pa.Table]:
    """Meter-days of 48 reads (ordinary January days), ``pieces`` chunks of distinct meters."""
    meter_days_total = total_reads // 48
    meters = meter_days_total // days
    per_chunk = max(1, meters // pieces)
    out = []
    for i, first in enumerate(range(0, meters, per_chunk)):
        n = min(per_chunk, meters - first)
        out.append(meter_days(n, days, date(2024, 1, 1), seed=i, prefix=f"K{i:03d}M"))
    return out


def _stream(settings, chunks: list[pa.Table], pace_s: float, message_bytes: int, done: threading.Event,
            errors: list) -> None:
    try:
        producer = producer_for(settings)
        for chunk in chunks:
            # small messages and small files: many batches, so kills often land inside one
            kafka_io.publish_reads(producer, settings.kafka.reads_topic, chunk, settings.kafka.partitions,
                                   target_bytes=message_bytes)
            time.sleep(pace_s)
        producer.close()
    except Exception as exc:  # reported by the test
        errors.append(exc)
    finally:
        done.set()


def _checksum(table_sql: str, con) -> tuple:
    return tuple(con.execute(CHECKSUM.format(table_sql)).fetchone())


def _wait_for(log_path, since: int, text: str, timeout_s: float) -> bool:
    """Has ``text`` appeared in the log after byte ``since`` (within ``timeout_s``)?"""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with open(log_path, "rb") as f:
            f.seek(since)
            if text.encode() in f.read():
                return True
        time.sleep(0.1)
    return False


def _freeze_inside_a_batch(proc, admin, group: str, rng: random.Random, timeout_s: float = 10.0) -> bool:
    """Freeze ``proc`` at random instants until a batch's intent is committed but not its end; True if it is left
    frozen there (a SIGKILL then cuts that batch short), False if no such instant came within ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        proc.send_signal(signal.SIGSTOP)
        offsets = admin.list_group_offsets(group)[group]
        if any((meta.metadata or "").startswith(INTENT_PREFIX) for meta in offsets.values()):
            return True
        proc.send_signal(signal.SIGCONT)
        time.sleep(rng.uniform(0.005, 0.1))
    return False


def kill_and_restart(settings, tmp_path, *, reads: int, kills: int, max_file_rows: int, days: int = 30,
                     message_bytes: int = 16 << 10) -> int:
    """Stream ``reads`` reads while the mirror (the CLI, its own process) is SIGKILLed ``kills`` times at random
    moments and restarted; drain with a last run; check the lake. Returns how many batches were cut short and
    rewritten on restart; at least one per kill aimed inside a batch."""
    settings = settings.model_copy(update={"mirror": settings.mirror.model_copy(update={
        "max_file_rows": max_file_rows, "idle_flush_s": 0.3, "instance_id": "kill-test"})})
    clients.ensure_topics(settings)
    chunks = _chunks(reads, kills, days)
    expected_reads = sum(sum(chunk.column("periods").to_pylist()) for chunk in chunks)
    done, errors = threading.Event(), []
    rng = random.Random(20)
    producer = threading.Thread(target=_stream, args=(settings, chunks, 1.5, message_bytes, done, errors))
    producer.start()
    cli = [sys.executable, "-c", "from meterlake.cli import main; main()", "-v", "mirror", "run"]
    env = env_of(settings)
    log_path = tmp_path / "mirror.log"
    log_path.touch()
    admin = KafkaAdminClient(**clients.kafka_options(settings))
    killed_at, inside = [], 0
    with open(log_path, "ab") as log:
        try:
            for i in range(kills):
                since = log_path.stat().st_size
                started = time.monotonic()
                proc = subprocess.Popen(cli, env=env, stdout=subprocess.DEVNULL, stderr=log)
                try:
                    # a random moment once the mirror works, not while it is still importing and joining the group
                    _wait_for(log_path, since, "assigned [", 120)
                    time.sleep(rng.uniform(0.1, 2.5))
                    if i % 2 and _freeze_inside_a_batch(proc, admin, settings.mirror.group_id, rng):
                        inside += 1
                finally:
                    proc.send_signal(signal.SIGKILL)
                    proc.wait()
                killed_at.append(round(time.monotonic() - started, 2))
        finally:
            producer.join()
            admin.close()
    assert not errors, errors
    assert len(killed_at) == kills
    rewritten = log_path.read_text(errors="replace").count("cut short by the last run")
    # WHEN a last run drains what is left
    rewritten += Mirror(settings).run(until_caught_up=True).recovered_batches
    print(f"killed after {killed_at} s, {inside} inside a batch; {rewritten} batches were cut short and rewritten")
    assert rewritten >= inside
    # THEN the lake holds exactly the reads produced: count, distinct reads and a checksum of every read
    con = connect(open_lake(settings))
    produced = pseudonym.for_settings(settings).table(
        schema.unpack(pa.concat_tables(chunks)).select(["meter_point", "interval_start_utc", "value"]))
    con.register("produced", produced)
    expected = _checksum("produced", con)
    assert expected[:2] == (expected_reads, expected_reads)
    assert _checksum("reads_all", con) == expected
    con.close()
    return rewritten


def test_twenty_sigkills_lose_and_duplicate_nothing(kafka_stack, tmp_path):
    settings = mirror_settings(kafka_stack, tmp_path / "lake")
    rewritten = kill_and_restart(settings, tmp_path, reads=READS, kills=KILLS, max_file_rows=2_500)
    if KILLS >= 2:  # kills did land inside batches, so the repair path ran
        assert rewritten >= 1
