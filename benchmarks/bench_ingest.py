"""Ingest throughput, each figure beside the plain client doing the same work in the same run.

* parsed: reads/s of ``ingest --dry-run`` (parse and validate, no service);
* into Kafka: reads/s of parse + publish (one transaction per file, packed sets, ~1 MiB messages) beside the
  kafka-python producer alone sending the very same message bytes (idempotent, acks=all), and beside that
  producer sending one message per read (the design the packing avoids);
* into Cassandra: reads/s of ``store run`` (consume, decode, write sets; timed from the first message to the last
  commit, and in total) beside the Python driver's concurrent prepared inserts alone, of one row per read, and of
  the same set rows;
* a large hh-csv file (1 GB; 100 MB with ``--scale small``) parsed in a child process whose RSS is sampled: the
  peak stays flat whatever the size. The file is generated under /tmp and deleted after.

The stage starts its own stack (Kafka + Cassandra) in ``build/bench-ingest`` at port offset 2000 (override with
METERLAKE_BENCH_STATE_DIR / METERLAKE_BENCH_PORT_OFFSET) and stops it at the end.
"""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, date, datetime
from pathlib import Path

import psutil

from benchmarks.harness import Report
from meterlake import clients, config, generate, ids, schema
from streaming import kafka_io

ROOT = Path(__file__).resolve().parents[1]
NOW = datetime(2025, 1, 1, tzinfo=UTC)


def _settings() -> config.Settings:
    base = config.load(None)
    run = datetime.now(UTC).strftime("%Y%m%d%H%M%S")  # topics of their own: the stack's state dir persists
    state = Path(os.environ.get("METERLAKE_BENCH_STATE_DIR", ROOT / "build" / "bench-ingest"))
    offset = int(os.environ.get("METERLAKE_BENCH_PORT_OFFSET", "2000"))
    return base.model_copy(update={
        "paths": base.paths.model_copy(update={"state_dir": state, "lake": str(state / "lake")}),
        "stack": base.stack.model_copy(update={"port_offset": offset, "services": ["kafka", "cassandra"]}),
        "kafka": base.kafka.model_copy(update={"reads_topic": f"bench-reads-{run}", "files_topic": f"bench-files-{run}",
                                               "devices_topic": f"bench-devices-{run}",
                                               "quarantine_topic": f"bench-quarantine-{run}", "partitions": 6}),
        "cassandra": base.cassandra.model_copy(update={"keyspace": "bench_ingest", "write_consistency": "ONE",
                                                       "read_consistency": "ONE"}),
    })


class _Recorder:
    """Stands in for a producer to collect the exact messages publish_reads would send."""

    def __init__(self):
        self.sent: list[tuple[str, bytes, bytes, int]] = []

    def send(self, topic, key, value, partition):
        self.sent.append((topic, key, value, partition))


def topic_messages(settings: config.Settings, topic: str, limit_bytes: int | None = None) -> list:
    """The committed records of ``topic`` (all, or the first ones up to about ``limit_bytes`` of values)."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(**clients.kafka_options(settings), enable_auto_commit=False,
                             isolation_level="read_committed", fetch_max_bytes=32 << 20,
                             max_partition_fetch_bytes=16 << 20)
    try:
        tps = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or [])]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        ends = consumer.end_offsets(tps)
        out, size = [], 0
        while any(consumer.position(tp) < ends[tp] for tp in tps):
            for batch in consumer.poll(timeout_ms=500).values():
                out.extend(batch)
                size += sum(len(r.value) for r in batch)
            if limit_bytes is not None and size >= limit_bytes:
                break
        return out
    finally:
        consumer.close()


def _messages(settings: config.Settings, topic: str) -> list[bytes]:
    """Every committed message value of ``topic``."""
    return [r.value for r in topic_messages(settings, topic)]


def _portfolio(out: Path, meters: int) -> list[Path]:
    no_defects = {kind: 0 for kind in generate.DEFECTS}
    generate.generate(generate.Options(meters=meters, days=2, start=date(2024, 11, 4), seed=1, lcl_meters=0,
                                       device_meters=0, defects=no_defects), out)
    return sorted((out / "hh").glob("*.csv"))


def _parse(report: Report, files: list[Path]) -> int:
    from streaming.ingest import ingest_file

    start = time.perf_counter()
    reads = sum(ingest_file(f, now=NOW).reads for f in files)
    report.figure("parsed (dry run)", reads / (time.perf_counter() - start), "reads/s", reads=reads)
    return reads


def _one_message_per_read(settings: config.Settings, path: Path, topic: str, n: int) -> float:
    """reads/s of the plain producer sending one message per read, keyed by meter point (the naive design)."""
    from kafka import KafkaProducer

    with open(path) as f:
        next(f)
        lines = [line.encode() for line, _ in zip(f, range(n), strict=False)]
    producer = KafkaProducer(**clients.kafka_options(settings), acks="all", enable_idempotence=True, linger_ms=5)
    try:
        start = time.perf_counter()
        for line in lines:
            producer.send(topic, key=line.split(b",", 1)[0], value=line)
        producer.flush()
        return len(lines) / (time.perf_counter() - start)
    finally:
        producer.close()


def plain_producer_seconds(settings: config.Settings, topic: str, messages: list[tuple[bytes, bytes, int]]) -> float:
    """Seconds the kafka-python producer alone (idempotent, acks=all) takes to send ``messages`` (key, value,
    partition) to ``topic``, which it creates (or finds: a resumed day made it before it stopped)."""
    from kafka import KafkaProducer
    from kafka.admin import KafkaAdminClient, NewTopic
    from kafka.errors import TopicAlreadyExistsError

    admin = KafkaAdminClient(**clients.kafka_options(settings))
    try:
        admin.create_topics([NewTopic(topic, num_partitions=settings.kafka.partitions, replication_factor=1)])
    except TopicAlreadyExistsError:
        pass
    finally:
        admin.close()
    producer = KafkaProducer(**clients.kafka_options(settings), acks="all", enable_idempotence=True,
                             linger_ms=5, batch_size=1 << 20, max_request_size=16 << 20)
    try:
        start = time.perf_counter()
        for key, value, partition in messages:
            producer.send(topic, key=key, value=value, partition=partition)
        producer.flush()
        return time.perf_counter() - start
    finally:
        producer.close()


def _kafka(report: Report, settings: config.Settings, files: list[Path], sample_reads: int) -> None:

    from streaming.ingest import validated_file
    from streaming.ingest.publish import publish

    clients.ensure_topics(settings)
    reads = messages = 0
    publishing = 0.0
    recorder = _Recorder()
    start = time.perf_counter()
    for f in files:
        with validated_file(f, now=NOW) as validated:
            at = time.perf_counter()
            sent = publish(validated, settings)
            publishing += time.perf_counter() - at
            reads += validated.result.reads
            messages += sent.messages
    ours = reads / (time.perf_counter() - start)
    report.figure("into Kafka: parse + publish (transaction per file)", ours, "reads/s", reads=reads,
                  messages=messages)
    report.figure("into Kafka: publish alone (pack, encode, transaction)", reads / publishing, "reads/s")
    plain_topic = settings.kafka.reads_topic.replace("reads", "plain")
    for f in files:  # the same messages, for the plain producer
        with validated_file(f, now=NOW) as validated:
            for batch in validated.reads():
                kafka_io.publish_reads(recorder, plain_topic, batch, settings.kafka.partitions, flush=False)
    total = sum(len(v) for _, _, v, _ in recorder.sent)
    plain = reads / plain_producer_seconds(settings, plain_topic, [(k, v, p) for _, k, v, p in recorder.sent])
    report.figure("into Kafka: kafka-python producer alone, same bytes", plain, "reads/s", reads=reads,
                  messages=len(recorder.sent), mbytes=round(total / 1e6, 1))
    one_each = _one_message_per_read(settings, files[0], plain_topic, sample_reads)
    report.figure("into Kafka: producer alone, one message per read (its CSV line)", one_each, "reads/s",
                  reads=sample_reads)
    report.ratio("into Kafka: parse + publish / producer alone", ours, plain)
    report.ratio("into Kafka: publish alone / producer alone", reads / publishing, plain)
    report.ratio("into Kafka: parse + publish / one message per read", ours, one_each)


def _set_rows_seconds(session, params: list[tuple]) -> float:
    """Seconds the driver's concurrent prepared updates alone take to write ``params`` (store's set rows) into
    bench_plain.hh_sets."""
    from cassandra.concurrent import execute_concurrent_with_args

    update = session.prepare(
        "UPDATE bench_plain.hh_sets USING TIMESTAMP ? SET fuel = ?, periods = ?, values = values + ?, "
        "qualities = qualities + ?, source_version = ?, source_file = ?, file_id = ?, batch_id = ? "
        "WHERE meter_point = ? AND month = ? AND settlement_date = ? AND register_id = ? AND meter_serial = ? "
        "AND unit = ?")
    start = time.perf_counter()
    execute_concurrent_with_args(session, update, params, concurrency=64, raise_on_first_error=True)
    return time.perf_counter() - start


def plain_set_rows_rate(settings: config.Settings, sets: list, limit: int) -> float:
    """Reads/s of the driver's concurrent inserts alone writing the set rows of ``sets`` (set tables, the
    first ones up to about ``limit`` reads) into a keyspace of their own."""
    from meterlake import keyspace
    from streaming.store.writer import set_rows

    session = clients.cassandra_session(settings, consistency="ONE")
    try:
        keyspace.ensure(session, "bench_plain", 1)
        params, reads = [], 0
        for t in sets:
            params += set_rows(t)
            reads += sum(sum(v is not None for v in values) for values in t.column("values").to_pylist())
            if reads >= limit:
                break
        return reads / _set_rows_seconds(session, params)
    finally:
        session.execute("DROP KEYSPACE IF EXISTS bench_plain", timeout=120)
        session.cluster.shutdown()


def _cassandra(report: Report, settings: config.Settings, sample_reads: int) -> None:
    from cassandra.concurrent import execute_concurrent_with_args

    from meterlake import keyspace
    from streaming.store import consumer
    from streaming.store.writer import set_rows

    session = clients.cassandra_session(settings, consistency="ONE")
    try:
        session.execute("DROP KEYSPACE IF EXISTS bench_ingest", timeout=120)
        session.execute("DROP KEYSPACE IF EXISTS bench_plain", timeout=120)
    finally:
        session.cluster.shutdown()
    result = consumer.run(settings, until_caught_up=True, group=f"bench-store-{settings.kafka.reads_topic}")
    stored = result.rows["hh_sets"]
    # reads written = the reads the sets carry; read back from the topic's messages (untimed)
    tables = [schema.from_ipc_bytes(value) for value in _messages(settings, settings.kafka.reads_topic)]
    sets = [t for t in tables if schema.schema_name(t.schema) == "set"]  # (gas meters' register reads are rows)
    reads = sum(sum(v is not None for v in values) for t in sets for values in t.column("values").to_pylist())
    ours = reads / result.busy_seconds
    report.figure("into Cassandra: store run (Kafka -> set rows), first message to last commit", ours, "reads/s",
                  reads=reads, rows=stored)
    report.figure("into Cassandra: store run, with group join and idle tail", reads / result.seconds, "reads/s")

    session = clients.cassandra_session(settings, consistency="ONE")
    try:
        keyspace.ensure(session, "bench_plain", 1)
        session.execute("CREATE TABLE IF NOT EXISTS bench_plain.reads (meter_point text, day date, ts timestamp, "
                        "register_id text, value double, quality text, "
                        "PRIMARY KEY ((meter_point, day), ts, register_id))", timeout=60)
        per_read = session.prepare("INSERT INTO bench_plain.reads (meter_point, day, ts, register_id, value, quality) "
                                   "VALUES (?, ?, ?, ?, ?, ?) USING TIMESTAMP ?")
        rows = []
        for t in sets:
            for r in kafka_io.decode(schema.to_ipc_bytes(t)).to_pylist():
                rows.append((r["meter_point"], r["settlement_date"], r["interval_start_utc"], r["register_id"],
                             r["value"], r["quality"], r["source_version"]))
                if len(rows) >= sample_reads:
                    break
            if len(rows) >= sample_reads:
                break
        start = time.perf_counter()
        execute_concurrent_with_args(session, per_read, rows, concurrency=64, raise_on_first_error=True)
        plain_reads = len(rows) / (time.perf_counter() - start)
        report.figure("into Cassandra: driver alone, one row per read", plain_reads, "reads/s", rows=len(rows))

        plain_sets = reads / _set_rows_seconds(session, [p for t in sets for p in set_rows(t)])
        report.figure("into Cassandra: driver alone, the same set rows", plain_sets, "reads/s")
    finally:
        session.cluster.shutdown()
    report.ratio("into Cassandra: ours / driver one row per read", ours, plain_reads)
    report.ratio("into Cassandra: ours / driver same set rows", ours, plain_sets)


def _big_file(path: Path, target_bytes: int) -> int:
    """An hh-csv file of about ``target_bytes``: one settlement day (2024-11-04, 48 periods) per meter."""
    from meterlake import calendar as cal

    starts = [s.strftime("%Y-%m-%dT%H:%M:%SZ") for _, s in cal.periods(date(2024, 11, 4))]
    written = 0
    meter = 0
    with open(path, "w", buffering=1 << 20) as out:
        header = generate.HH_HEADER + "\n"
        out.write(header)
        written += len(header)
        while written < target_bytes:
            mp = ids.make_mpan_core(10, meter)
            block = "".join(f"{mp},E{meter:08d},S,interval,{s},{0.1 + (meter + p) % 17 / 100:.3f},kWh,actual,"
                            "2024-11-05T02:00:00Z\n" for p, s in enumerate(starts))
            out.write(block)
            written += len(block)
            meter += 1
    return written


def _memory(report: Report, target_bytes: int) -> None:
    with tempfile.TemporaryDirectory(prefix="meterlake-bench-", dir="/tmp") as tmp:
        path = Path(tmp) / "HH_big.csv"
        size = _big_file(path, target_bytes)
        cli = str(Path(sys.executable).with_name("meterlake"))
        child = subprocess.Popen([cli, "ingest", str(path), "--dry-run", "--json", "--now", NOW.isoformat()],
                                 stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        samples: list[tuple[float, int]] = []

        def sample():
            proc = psutil.Process(child.pid)
            while child.poll() is None:
                try:
                    samples.append((time.perf_counter(), proc.memory_info().rss))
                except psutil.NoSuchProcess:
                    return
                time.sleep(0.2)

        start = time.perf_counter()
        sampler = threading.Thread(target=sample)
        sampler.start()
        out, _ = child.communicate()
        sampler.join()
        seconds = time.perf_counter() - start
        import json

        reads = json.loads(out)["files"][0]["reads"]
        peak = max(rss for _, rss in samples)
        # RSS once the parse is under way (a tenth of the run) against the peak: flat means no growth with size
        early = max(rss for t, rss in samples if t - start <= seconds / 10)
        report.figure("large file parsed (dry run)", reads / seconds, "reads/s", file_mb=round(size / 1e6),
                      reads=reads)
        report.figure("large file: peak RSS", peak / 1e6, "MB", file_mb=round(size / 1e6))
        report.figure("large file: RSS growth after the first tenth", (peak - early) / 1e6, "MB",
                      early_mb=round(early / 1e6))


def run(report: Report, scale: str) -> None:
    from infra.local import stack
    from infra.local.discover import discover

    small = scale == "small"
    settings = _settings()
    with tempfile.TemporaryDirectory(prefix="meterlake-bench-ingest-") as tmp:
        files = _portfolio(Path(tmp) / "gen", 2000 if small else 20_000)
        _parse(report, files)
        stack.up(settings)
        try:
            settings = discover(stack.remembered(settings))
            _kafka(report, settings, files, 20_000 if small else 100_000)
            _cassandra(report, settings, 50_000 if small else 200_000)
        finally:
            stack.down(settings)
    _memory(report, (100 if small else 1000) * 1_000_000)
