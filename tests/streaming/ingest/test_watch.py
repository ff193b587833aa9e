"""Ingest workers over one landing directory, on the real Kafka and Cassandra: each file exactly once, a dead
worker's file taken over after its lease, duplicates counted, claim-check references, the raw archive."""
from __future__ import annotations

import gzip
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest

from meterlake import clients, ids
from streaming import kafka_io
from streaming.ingest.claims import Claims
from streaming.ingest.watch import Worker
from tests.streaming.stackhelp import consume, env, isolated, query

pytestmark = [pytest.mark.stack, pytest.mark.slow]

NOW = datetime(2025, 1, 1, tzinfo=UTC)
HEADER = "meter_point,meter_serial,register_id,read_kind,interval_start_utc,value,unit,quality,created_utc"
METERLAKE = str(Path(sys.executable).with_name("meterlake"))


def _meter(n: int) -> str:
    return ids.make_mpan_core(10, n)


def _day_lines(meter: str, value: str = "0.250") -> list[str]:
    """A meter's 48 reads of 2024-06-01 (BST: the day starts 2024-05-31T23:00Z)."""
    lines = []
    for p in range(48):
        minutes = 23 * 60 + 30 * p
        day = "2024-05-31" if minutes < 24 * 60 else "2024-06-01"
        hour, minute = divmod(minutes % (24 * 60), 60)
        lines.append(f"{meter},E1,S,interval,{day}T{hour:02d}:{minute:02d}:00Z,{value},kWh,actual,"
                     "2024-06-02T02:00:00Z")
    return lines


def _land(directory: Path, name: str, meters: range) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    with open(path, "w") as f:
        f.write(HEADER + "\n")
        for n in meters:
            f.write("\n".join(_day_lines(_meter(n))) + "\n")
    return path


def _worker(settings, landing: Path, worker_id: str, *extra: str) -> subprocess.Popen:
    return subprocess.Popen([METERLAKE, "ingest", "watch", str(landing), "--worker-id", worker_id, "--now",
                             NOW.isoformat(), "--json", *extra], env=env(settings), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _finished(proc: subprocess.Popen, timeout: float = 600) -> dict:
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, err[-3000:]
    return json.loads(out)


def _sets_per_file(settings) -> Counter:
    """Sets (meter-days) on the reads topic, read_committed, by source file."""
    counts: Counter = Counter()
    for record in consume(settings, settings.kafka.reads_topic, timeout_s=120):
        reads = kafka_io.decode(record.value)
        for meter_day in {(r["source_file"], r["meter_point"], r["settlement_date"]) for r in reads.to_pylist()}:
            counts[meter_day] += 1
    return counts


@pytest.fixture
def settings(kafka_stack, cassandra_stack):
    return isolated(cassandra_stack, "watch", lease_s=5)


def test_four_workers_racing_over_200_files_process_each_exactly_once(settings, tmp_path):
    landing = tmp_path / "landing"
    for n in range(200):
        _land(landing, f"HH_{n:03d}.csv", range(n, n + 1))
    workers = [_worker(settings, landing, f"w{k}", "--once") for k in range(4)]
    results = [_finished(w) for w in workers]
    processed = [f["path"] for r in results for f in r["files"]]
    assert len(processed) == 200
    assert sorted(Path(p).name for p in processed) == [f"HH_{n:03d}.csv" for n in range(200)]
    assert sum(len(r["files"]) > 0 for r in results) >= 2  # the work really was shared
    assert list(landing.iterdir()) == []
    rows = query(settings, "SELECT owner, state, outcome FROM {ks}.file_claims")
    assert len(rows) == 200 and {(r.state, r.outcome) for r in rows} == {("done", "accepted")}
    assert Counter(r.owner for r in rows) == Counter({r["worker"]: len(r["files"]) for r in results if r["files"]})
    sets = _sets_per_file(settings)
    assert len(sets) == 200 and set(sets.values()) == {1}  # every file's one meter-day, published once
    day = datetime.now(UTC)
    archived = Path(settings.ingest.archive_dir) / "raw" / f"{day:%Y}" / f"{day:%m}" / f"{day:%d}"
    assert len(list(archived.iterdir())) == 200
    assert not Path(settings.lake_url).exists()  # the files, identifiers in clear, are kept out of the lake


def _wait_for_claim(settings, owner: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            rows = query(settings, "SELECT owner, state FROM {ks}.file_claims")
        except Exception:  # the keyspace is not created yet
            rows = []
        if any(r.owner == owner and r.state == "working" for r in rows):
            return
        time.sleep(0.1)
    raise TimeoutError(f"{owner} claimed nothing in {timeout}s")


def test_a_worker_killed_mid_file_is_taken_over_after_its_lease_and_nothing_is_duplicated(settings, tmp_path):
    landing = tmp_path / "landing"
    _land(landing, "HH_big.csv", range(1000, 4000))  # 3,000 meter-days: a few seconds of work
    doomed = _worker(settings, landing, "doomed", "--once")
    _wait_for_claim(settings, "doomed")
    time.sleep(1.0)  # well into the file
    os.kill(doomed.pid, signal.SIGKILL)
    doomed.communicate()
    key = hashlib.sha256((landing / "HH_big.csv").read_bytes()).hexdigest()
    session = clients.cassandra_session(settings)
    try:
        claims = Claims(session, settings.cassandra.keyspace, "heir", settings.ingest.lease_s)
        ok, row = claims.claim(key, "elsewhere", 1, 1)
        assert (ok, row.owner, row.state) == (False, "doomed", "working")  # the lease still holds
    finally:
        session.cluster.shutdown()
    time.sleep(settings.ingest.lease_s + 1)
    later = _finished(_worker(settings, landing, "heir", "--once"))
    assert [Path(f["path"]).name for f in later["files"]] == ["HH_big.csv"]
    (claim,) = query(settings, "SELECT owner, state, reads FROM {ks}.file_claims")
    assert (claim.owner, claim.state, claim.reads) == ("heir", "done", 144_000)
    sets = _sets_per_file(settings)
    assert len(sets) == 3000 and set(sets.values()) == {1}


def test_claim_check_announces_a_reference_and_a_worker_streams_the_file(settings, tmp_path):
    settings = settings.model_copy(update={"ingest": settings.ingest.model_copy(update={"claim_check_bytes": 2000})})
    landing = tmp_path / "landing"
    big = _land(landing, "HH_big.csv", range(7, 9))
    small = _land(landing, "HH_small.csv", range(0, 0))  # a header only: under the threshold
    size = big.stat().st_size
    with Worker(settings, str(landing), "w1", now=NOW) as worker:
        result = worker.run(once=True)
    (announced,) = result.announced
    assert (announced["path"], announced["size"], announced["format"]) == (str(big), size, "hh-csv")
    (message,) = consume(settings, settings.kafka.files_topic)
    assert set(json.loads(message.value)) == {"path", "checksum", "size", "format"}  # a reference, no content
    assert len(message.value) < 300
    by_name = {Path(f["path"]).name: f for f in result.files}
    assert (by_name["HH_big.csv"]["via"], by_name["HH_big.csv"]["reads"]) == ("reference", 96)
    assert (by_name["HH_small.csv"]["via"], by_name["HH_small.csv"]["reads"]) == ("scan", 0)
    assert not big.exists() and not small.exists()


def test_rejected_and_duplicate_files_go_to_quarantine_with_their_reason(settings, tmp_path):
    landing = tmp_path / "landing"
    good = _land(landing, "HH_good.csv", range(1, 3))
    (landing / "HH_copy.csv").write_bytes(good.read_bytes())
    (landing / "HH_cut.csv").write_text(HEADER + "\n" + "\n".join(_day_lines(_meter(5)))[:-5])
    zipped = _land(tmp_path, "HH_zipped.csv", range(6, 7))
    packed = gzip.compress(zipped.read_bytes(), mtime=0)
    (landing / "HH_zipped.csv.gz").write_bytes(packed)
    with Worker(settings, str(landing), "w1", now=NOW) as worker:
        first = worker.run(once=True)
    assert sorted((Path(f["path"]).name, f["status"]) for f in first.files) in (
        [("HH_cut.csv", "rejected"), ("HH_good.csv", "accepted"), ("HH_zipped.csv.gz", "accepted")],
        [("HH_copy.csv", "accepted"), ("HH_cut.csv", "rejected"), ("HH_zipped.csv.gz", "accepted")])
    day = datetime.now(UTC)
    raw = Path(settings.ingest.archive_dir) / "raw" / f"{day:%Y}" / f"{day:%m}" / f"{day:%d}"
    assert (raw / "HH_zipped.csv.gz").read_bytes() == packed  # archived as it landed, not gunzipped
    assert len(first.duplicates) == 1
    quarantine = Path(settings.ingest.archive_dir) / "quarantine"
    cut_reason = json.loads((quarantine / "HH_cut.csv.reason.json").read_text())
    assert (cut_reason["reason"], cut_reason["lines"]) == ("truncated_file", 49)
    duplicate = Path(first.duplicates[0]["path"]).name
    assert json.loads((quarantine / f"{duplicate}.reason.json").read_text())["reason"] == "duplicate_file"
    assert list(landing.iterdir()) == []
    sent = len(consume(settings, settings.kafka.reads_topic))
    # the same bytes land again, under the original name: a duplicate, counted and not published
    time.sleep(0.01)
    _land(landing, "HH_good.csv", range(1, 3))
    with Worker(settings, str(landing), "w2", now=NOW) as worker:
        again = worker.run(once=True)
    assert (again.files, len(again.duplicates)) == ([], 1)
    assert len(consume(settings, settings.kafka.reads_topic)) == sent


def test_a_landing_directory_and_lake_on_hdfs(kafka_stack, cassandra_stack, hdfs_stack, tmp_path):
    import pyarrow.fs as pafs

    from meterlake import lakefs

    base = isolated(hdfs_stack, "hdfs", claim_check_bytes=6000)
    tag = base.cassandra.keyspace
    settings = base.model_copy(update={"paths": base.paths.model_copy(update={"lake": f"hdfs:///lake/{tag}"}),
                                       "ingest": base.ingest.model_copy(update={
                                           "archive_dir": f"hdfs:///lake/{tag}-archive"})})
    landing = f"hdfs:///lake/{tag}-landing"
    fs, root = lakefs.resolve(settings, landing)
    fs.create_dir(root, recursive=True)
    for name, meters in (("HH_small.csv", range(1, 2)), ("HH_large.csv", range(2, 5))):  # 4.5 KB, 13.5 KB
        local = _land(tmp_path, name, meters)
        with fs.open_output_stream(f"{root}/{name}", compression=None) as out:
            out.write(local.read_bytes())
    with Worker(settings, landing, "h1", now=NOW) as worker:
        result = worker.run(once=True)
    assert sorted((Path(f["path"]).name, f["via"], f["reads"]) for f in result.files) == [
        ("HH_large.csv", "reference", 144), ("HH_small.csv", "scan", 48)]
    assert [a["path"] for a in result.announced] == [f"{landing}/HH_large.csv"]
    assert fs.get_file_info(pafs.FileSelector(root)) == []
    day = datetime.now(UTC)
    archived = fs.get_file_info(pafs.FileSelector(f"/lake/{tag}-archive/raw/{day:%Y}/{day:%m}/{day:%d}"))
    assert sorted(i.base_name for i in archived) == ["HH_large.csv", "HH_small.csv"]
    assert sum(_sets_per_file(settings).values()) == 4


def test_a_raw_kafka_error_releases_the_file_and_a_poison_file_is_quarantined_after_its_attempts(settings, tmp_path,
                                                                                                 monkeypatch):
    from kafka.errors import KafkaConnectionError

    from streaming.ingest import publish
    from streaming.ingest.storage import Storage

    settings = settings.model_copy(update={"ingest": settings.ingest.model_copy(update={"max_attempts": 2})})
    landing = tmp_path / "landing"
    _land(landing, "HH_once.csv", range(1, 2))
    # GIVEN a Kafka that fails the first publish with its own error (not the project's)
    real_publish = publish.publish
    calls = []

    def flaky(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise KafkaConnectionError("broker went away")
        return real_publish(*args, **kwargs)

    monkeypatch.setattr(publish, "publish", flaky)
    with Worker(settings, str(landing), "w1", now=NOW) as worker:
        first = worker.run(once=True)
        # THEN the worker survives: the file is released, and the next pass publishes it
        assert (first.files, first.released) == ([], 1)
        second = worker.run(once=True)
    assert [(Path(f["path"]).name, f["status"]) for f in second.files] == [("HH_once.csv", "accepted")]
    # GIVEN an archive that always fails for a file
    _land(landing, "HH_poison.csv", range(2, 3))
    monkeypatch.setattr(Storage, "archive", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("archive down")))
    with Worker(settings, str(landing), "w2", now=NOW) as worker:
        tries = [worker.run(once=True) for _ in range(2)]
    # THEN after two attempts it is quarantined as a poison file, with its reason, and leaves the landing directory
    assert tries[0].released == 1
    (poisoned,) = tries[1].files
    assert (poisoned["status"], poisoned["reason"], tries[1].poisoned) == ("rejected", "processing_failed", 1)
    reason = json.loads((Path(settings.ingest.archive_dir) / "quarantine" / "HH_poison.csv.reason.json").read_text())
    assert (reason["reason"], reason["attempts"], reason["detail"]) == ("processing_failed", 2,
                                                                        "RuntimeError: archive down")
    assert list(landing.iterdir()) == []
    rows = query(settings, "SELECT state, outcome FROM {ks}.file_claims")
    assert sorted((r.state, r.outcome) for r in rows) == [("done", "accepted"), ("done", "rejected")]
