"""Three KRaft brokers: a replicated topic keeps taking acks=all writes with one broker killed."""
from __future__ import annotations

import os

import pytest

from infra.local import kafka, stack
from tests.conftest import _test_settings

pytestmark = [pytest.mark.stack, pytest.mark.multinode, pytest.mark.slow]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    offset = int(os.environ.get("METERLAKE_TEST_PORT_OFFSET", "1000")) + 600
    settings = _test_settings(tmp_path_factory.mktemp("kafka-cluster"), offset, services=["kafka"], kafka_brokers=3)
    try:
        stack.up(settings)
        yield settings
    finally:
        stack.down(settings)


def _produce(opts, topic, values):
    from kafka import KafkaProducer

    producer = KafkaProducer(**opts, acks="all", enable_idempotence=True, retries=10)
    futures = [producer.send(topic, key=v.split("-")[0].encode(), value=v.encode()) for v in values]
    producer.flush()
    producer.close()
    return [f.get(timeout=30) for f in futures]  # raises if any write failed


def test_status_finds_the_three_brokers_one_cluster(cluster):
    rows = stack.status(cluster)
    assert [(r["name"], r["state"]) for r in rows] == [("kafka-1", "ready"), ("kafka-2", "ready"), ("kafka-3", "ready")]
    ids = {kafka.view(stack.context(cluster), n)[0] for n in (1, 2, 3)}
    assert len(ids) == 1 and "" not in ids


def test_writes_and_reads_survive_a_killed_broker(cluster):
    from kafka import KafkaConsumer
    from kafka.admin import KafkaAdminClient, NewTopic

    opts = kafka.client_options(stack.context(cluster))
    admin = KafkaAdminClient(**opts)
    assert len(admin.describe_cluster()["brokers"]) == 3
    admin.create_topics([NewTopic("reads-rf3", num_partitions=3, replication_factor=3)])
    admin.close()

    before = [f"m{i % 7}-{i}" for i in range(300)]
    _produce(opts, "reads-rf3", before)
    stack.kill(cluster, "kafka-2")
    during = [f"m{i % 7}-{i}" for i in range(300, 600)]
    _produce(opts, "reads-rf3", during)

    consumer = KafkaConsumer("reads-rf3", **opts, group_id="rf3-check", auto_offset_reset="earliest",
                             consumer_timeout_ms=15000)
    seen = sorted(m.value.decode() for m in consumer)
    consumer.close()
    assert seen == sorted(before + during)

    stack.start(cluster, "kafka-2")
    admin = KafkaAdminClient(**opts)
    brokers = {b["broker_id"] for b in admin.describe_cluster()["brokers"]}
    admin.close()
    assert brokers == {1, 2, 3}
