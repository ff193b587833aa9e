"""The Prometheus JMX exporter agent on the stack's Kafka and Cassandra (stack.metrics = true, as the test stack
runs): its rendered configuration, and the real endpoints scraped while data flows."""
from __future__ import annotations

import time
import uuid

import pytest
import requests
import yaml
from prometheus_client.parser import text_string_to_metric_families

from infra.local import jmx, stack


def test_the_agent_configuration_exports_only_the_chosen_mbeans():
    for service in ("kafka", "cassandra"):
        config = yaml.safe_load(jmx.render_config(service))
        assert config["includeObjectNames"] == jmx.INCLUDE[service]
        assert config["lowercaseOutputName"] is True and config["rules"] == [{"pattern": ".*"}]


def test_without_stack_metrics_no_agent_is_added(stack_settings, tmp_path):
    ctx = stack.context(stack_settings.model_copy(update={"stack": stack_settings.stack.model_copy(
        update={"metrics": False})}), create_secrets=True)
    assert jmx.agent(ctx, "kafka", 1, "127.0.0.1", tmp_path) == ([], {})


def _scrape(address: str, port: int) -> dict[str, float]:
    """``{sample name{labels}: value}`` of one scrape."""
    text = requests.get(f"http://{address}:{port}/metrics", timeout=30).text
    return {f"{s.name}{sorted(s.labels.items())}": s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def _grown(before: dict, after: dict, *words: str) -> list[str]:
    """Samples whose name and labels hold every word (lower case) and whose value grew."""
    return [k for k, v in after.items() if all(w in k.lower() for w in words) and v > before.get(k, 0)]


@pytest.mark.stack
def test_kafka_serves_jmx_metrics_that_move_while_messages_flow(kafka_stack):
    from kafka import KafkaProducer
    from kafka.admin import KafkaAdminClient, NewTopic

    from infra.local import kafka

    ctx = stack.context(kafka_stack)
    broker = next(p for p in kafka.processes(ctx) if p.name == "kafka-1")
    port = broker.ports["metrics"]
    before = _scrape(broker.address, port)
    opts = kafka.client_options(ctx)
    topic = f"jmx-{uuid.uuid4().hex[:8]}"
    admin = KafkaAdminClient(**opts)
    admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])
    admin.close()
    producer = KafkaProducer(**opts, acks="all")
    for i in range(200):
        producer.send(topic, value=f"read-{i}".encode())
    producer.flush()
    producer.close()
    after = _scrape(broker.address, port)
    # the broker's count of messages in (MBean kafka.server:type=BrokerTopicMetrics,name=MessagesInPerSec)
    assert _grown(before, after, "kafka_server_brokertopicmetrics_count", "messagesinpersec"), sorted(after)[:50]
    assert any(k.startswith("jvm_memory") or k.startswith("java_lang_memory") for k in after)


@pytest.mark.stack
def test_cassandra_serves_jmx_metrics_that_move_while_rows_are_written(cassandra_stack):
    from infra.local import cassandra
    from meterlake import clients

    node = cassandra.processes(stack.context(cassandra_stack))[0]
    port = node.ports["metrics"]
    before = _scrape(node.address, port)
    session = clients.cassandra_session(cassandra_stack)
    try:
        ks = f"jmx_{uuid.uuid4().hex[:8]}"
        session.execute(f"CREATE KEYSPACE {ks} WITH replication = {{'class': 'SimpleStrategy', "
                        "'replication_factor': 1}")
        session.execute(f"CREATE TABLE {ks}.t (k int PRIMARY KEY, v text)")
        for i in range(100):
            session.execute(f"INSERT INTO {ks}.t (k, v) VALUES (%s, 'x')", (i,))
        session.execute(f"DROP KEYSPACE {ks}")
    finally:
        session.cluster.shutdown()
    deadline = time.monotonic() + 30
    # the coordinator's count of writes (MBean org.apache.cassandra.metrics:type=ClientRequest,scope=Write,...)
    while not _grown(before, after := _scrape(node.address, port), "clientrequest", "write"):
        assert time.monotonic() < deadline, sorted(after)[:80]
        time.sleep(1)
