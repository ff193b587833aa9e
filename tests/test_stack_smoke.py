"""One read's path through every real service of the stack: Kafka, Cassandra, Spark with the Cassandra connector,
Parquet on HDFS read back by pyarrow over WebHDFS. Each step asserts what the previous one wrote."""
from __future__ import annotations

import uuid

import pyarrow.parquet as pq
import pytest

from infra.local import hdfs, kafka, stack
from jobs import storeio
from meterlake import clients, lakefs
from meterlake.spark import cassandra_conf

pytestmark = [pytest.mark.stack, pytest.mark.slow]

READS = [("2000012345670", f"2026-03-29T{h:02d}:{m:02d}:00Z", 0.25 + h / 100) for h in range(3) for m in (0, 30)]


@pytest.fixture(scope="module")
def everything(kafka_stack, cassandra_stack, hdfs_stack):
    return stack.remembered(hdfs_stack)


def test_reads_go_through_kafka_into_cassandra_and_back_out_through_spark(everything, spark):
    from kafka import KafkaConsumer, KafkaProducer
    from kafka.admin import KafkaAdminClient, NewTopic

    settings = everything
    ctx = stack.context(settings)
    topic = f"smoke-{uuid.uuid4().hex[:6]}"
    opts = kafka.client_options(ctx)
    admin = KafkaAdminClient(**opts)
    admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])
    admin.close()
    producer = KafkaProducer(**opts, acks="all", enable_idempotence=True)
    for mp, ts, kwh in READS:
        producer.send(topic, key=mp.encode(), value=f"{mp},{ts},{kwh}".encode())
    producer.flush()
    producer.close()
    consumer = KafkaConsumer(topic, **opts, auto_offset_reset="earliest", consumer_timeout_ms=5000,
                             group_id=f"g-{topic}")
    consumed = [m.value.decode().split(",") for m in consumer]
    consumer.close()
    assert len(consumed) == len(READS)

    session = clients.cassandra_session(settings)
    try:
        session.execute("CREATE KEYSPACE IF NOT EXISTS stack_smoke WITH replication = "
                        "{'class': 'SimpleStrategy', 'replication_factor': 1}")
        session.execute("CREATE TABLE IF NOT EXISTS stack_smoke.reads (meter_point text, ts text, kwh double, "
                        "PRIMARY KEY (meter_point, ts))")
        insert = session.prepare("INSERT INTO stack_smoke.reads (meter_point, ts, kwh) VALUES (?, ?, ?)")
        for mp, ts, kwh in consumed:
            session.execute(insert, (mp, ts, float(kwh)))
        session.execute("CREATE TABLE IF NOT EXISTS stack_smoke.totals "
                        "(meter_point text PRIMARY KEY, kwh double, n int)")
        stored = session.execute("SELECT count(*) FROM stack_smoke.reads").one()[0]
        assert stored == len(READS)

        conf = cassandra_conf(settings)
        for key, value in conf.items():
            spark.conf.set(key, value)
        try:
            reads = storeio.table(spark, "stack_smoke", "reads")  # bounded wait: a table made a moment ago
            totals = reads.groupBy("meter_point").agg({"kwh": "sum", "ts": "count"}).withColumnRenamed(
                "sum(kwh)", "kwh").withColumnRenamed("count(ts)", "n")
            totals.write.format("org.apache.spark.sql.cassandra").options(keyspace="stack_smoke", table="totals") \
                .mode("append").save()
        finally:
            for key in conf:
                spark.conf.unset(key)
        row = session.execute("SELECT kwh, n FROM stack_smoke.totals WHERE meter_point = %s", ("2000012345670",)).one()
        assert row.n == 6
        assert row.kwh == pytest.approx(0.25 * 6 + (0 + 0 + 1 + 1 + 2 + 2) / 100)
    finally:
        session.cluster.shutdown()


def test_spark_writes_parquet_to_hdfs_and_pyarrow_reads_it_over_webhdfs(everything, spark):
    settings = everything
    ctx = stack.context(settings)
    path = f"/lake/smoke/run-{uuid.uuid4().hex[:6]}"
    df = spark.createDataFrame([(mp, ts, kwh) for mp, ts, kwh in READS], "meter_point string, ts string, kwh double")
    df.coalesce(1).write.parquet(hdfs.namenode_uri(ctx) + path)

    fs, _ = lakefs.resolve(settings, hdfs.namenode_uri(ctx) + path)
    table = pq.read_table(path, filesystem=fs)
    assert sorted(table.column("ts").to_pylist()) == sorted(ts for _, ts, _ in READS)
    back = spark.read.parquet(hdfs.namenode_uri(ctx) + path)
    assert back.count() == len(READS)

