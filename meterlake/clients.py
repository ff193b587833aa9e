"""Clients of the platform's services, built from the settings: one place that knows how to connect.

Each function takes the effective :class:`~meterlake.config.Settings`. Where a section names no endpoint (empty
``kafka.bootstrap_servers``), the client points at the local stack in ``paths.state_dir`` and uses the credentials
it generated. Drivers are imported when a function runs, so importing this module stays cheap.
"""
from __future__ import annotations

from meterlake.config import Settings
from meterlake.errors import ServiceError, UsageError


def kafka_options(settings: Settings) -> dict:
    """kafka-python keyword arguments (servers, SASL) for the configured Kafka, or the local stack's."""
    k = settings.kafka
    if k.bootstrap_servers:
        options: dict = {"bootstrap_servers": k.bootstrap_servers}
        if k.username is not None or k.password is not None:
            if k.username is None or k.password is None:
                raise UsageError("set both kafka.username and kafka.password (or neither)")
            options.update(security_protocol="SASL_PLAINTEXT", sasl_mechanism="PLAIN",
                           sasl_plain_username=k.username, sasl_plain_password=k.password)
        return options
    from infra.local import kafka as local
    from infra.local import stack

    return local.client_options(stack.context(stack.remembered(settings)))


def topics(settings: Settings) -> list[str]:
    """The platform's topics: reads, files (claim checks), device reads, quarantine."""
    k = settings.kafka
    return [k.reads_topic, k.files_topic, k.devices_topic, k.quarantine_topic]


def ensure_topics(settings: Settings) -> list[str]:
    """Create the platform's topics that do not exist yet, with ``kafka.partitions`` and ``replication_factor``.

    Idempotent: existing topics are left as they are. Returns the names created now.
    """
    from kafka.admin import KafkaAdminClient, NewTopic
    from kafka.errors import KafkaError, TopicAlreadyExistsError

    k = settings.kafka
    admin = KafkaAdminClient(**kafka_options(settings), request_timeout_ms=15000)
    try:
        existing = set(admin.list_topics())
        missing = [t for t in topics(settings) if t not in existing]
        if not missing:
            return []
        new = [NewTopic(t, num_partitions=k.partitions, replication_factor=k.replication_factor) for t in missing]
        try:
            admin.create_topics(new)
        except TopicAlreadyExistsError:  # another client created one meanwhile
            pass
        except KafkaError as exc:
            raise ServiceError(f"creating Kafka topics {missing} failed: {exc}", service="kafka") from exc
        return missing
    finally:
        admin.close()
