"""Kafka in KRaft mode: rendered config (no process) and the real broker (SASL/PLAIN, no anonymous clients)."""
from __future__ import annotations

import uuid

import pytest

from infra.local import kafka, stack


def _props(text: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in text.splitlines() if line and not line.startswith("#"))


def test_node_two_of_three_votes_with_every_controller_and_listens_on_its_own_ports():
    props = _props(kafka.render_server_properties(
        node=2, brokers=3, client_ports=[9092, 9102, 9112], controller_ports=[9093, 9103, 9113],
        log_dir="/tmp/k2", user="meterlake", password="s3cret",
    ))
    assert props["node.id"] == "2"
    assert props["controller.quorum.voters"] == "1@127.0.0.1:9093,2@127.0.0.1:9103,3@127.0.0.1:9113"
    assert props["listeners"] == "SASL_PLAINTEXT://127.0.0.1:9102,CONTROLLER://127.0.0.1:9103"
    assert props["min.insync.replicas"] == "2"
    assert props["offsets.topic.replication.factor"] == "3"


def test_every_listener_requires_sasl():
    props = _props(kafka.render_server_properties(
        node=1, brokers=1, client_ports=[9092], controller_ports=[9093], log_dir="/tmp/k1",
        user="meterlake", password="s3cret",
    ))
    protocols = {entry.split(":")[1] for entry in props["listener.security.protocol.map"].split(",")}
    assert protocols == {"SASL_PLAINTEXT"}
    assert 'user_meterlake="s3cret"' in props["listener.name.sasl_plaintext.plain.sasl.jaas.config"]
    assert props["auto.create.topics.enable"] == "false"


@pytest.mark.stack
def test_produce_and_consume_with_the_stack_credentials(kafka_stack):
    from kafka import KafkaConsumer, KafkaProducer
    from kafka.admin import KafkaAdminClient, NewTopic

    opts = kafka.client_options(stack.context(kafka_stack))
    topic = f"smoke-{uuid.uuid4().hex[:8]}"
    admin = KafkaAdminClient(**opts)
    admin.create_topics([NewTopic(topic, num_partitions=2, replication_factor=1)])
    admin.close()
    producer = KafkaProducer(**opts, acks="all", enable_idempotence=True)
    for i in range(10):
        producer.send(topic, key=f"m{i % 3}".encode(), value=f"read-{i}".encode())
    producer.flush()
    producer.close()
    consumer = KafkaConsumer(topic, **opts, auto_offset_reset="earliest", consumer_timeout_ms=10000,
                             group_id=f"g-{topic}")
    values = sorted(m.value.decode() for m in consumer)
    consumer.close()
    assert values == sorted(f"read-{i}" for i in range(10))


@pytest.mark.stack
def test_a_client_without_credentials_is_refused(kafka_stack):
    from kafka import KafkaAdminClient
    from kafka.errors import KafkaError

    opts = kafka.client_options(stack.context(kafka_stack))
    with pytest.raises((KafkaError, OSError)):
        admin = KafkaAdminClient(bootstrap_servers=opts["bootstrap_servers"], request_timeout_ms=3000,
                                 bootstrap_timeout_ms=5000)
        admin.list_topics()


@pytest.mark.stack
def test_a_wrong_password_is_refused(kafka_stack):
    from kafka import KafkaAdminClient
    from kafka.errors import KafkaError

    opts = {**kafka.client_options(stack.context(kafka_stack)), "sasl_plain_password": "not-the-password"}
    with pytest.raises((KafkaError, OSError)):
        admin = KafkaAdminClient(**opts, request_timeout_ms=3000, bootstrap_timeout_ms=5000)
        admin.list_topics()
