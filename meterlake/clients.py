"""Clients of the platform's services, built from the settings: one place that knows how to connect.

Each function takes the effective :class:`~meterlake.config.Settings` and connects where they say: addresses and
credentials come from configuration only (for the local stack, its discovery step, ``infra.local.discover``, has
filled them in). Drivers are imported when a function runs, so importing this module stays cheap.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from meterlake.config import Settings
from meterlake.errors import MeterlakeError, ServiceError, UsageError

if TYPE_CHECKING:
    from cassandra.cluster import Session


def kafka_options(settings: Settings) -> dict:
    """kafka-python keyword arguments (servers, SASL) for the configured Kafka."""
    k = settings.kafka
    if not k.bootstrap_servers:
        raise MeterlakeError(f"no Kafka configured and no local stack in {settings.state_dir}: set "
                             "kafka.bootstrap_servers, or run `meterlake stack up` first",
                             state_dir=str(settings.state_dir))
    options: dict = {"bootstrap_servers": k.bootstrap_servers}
    if k.username is not None or k.password is not None:
        if k.username is None or k.password is None:
            raise UsageError("set both kafka.username and kafka.password (or neither)")
        options.update(security_protocol="SASL_PLAINTEXT", sasl_mechanism="PLAIN",
                       sasl_plain_username=k.username, sasl_plain_password=k.password)
    return options


#: The platform's topics, by the ``[kafka] <kind>_topic`` setting naming each: reads, files (claim checks), device
#: reads, quarantine. The stages consume subsets of them: the mirror :data:`MIRRORED`, the store :data:`STORED`.
TOPICS = ("reads", "files", "devices", "quarantine")
MIRRORED = ("reads", "devices")
STORED = ("reads", "devices", "quarantine")


def topics(settings: Settings, kinds: Sequence[str] = TOPICS) -> list[str]:
    """The names of the topics of ``kinds`` (default: all of :data:`TOPICS`), in that order."""
    return [getattr(settings.kafka, f"{kind}_topic") for kind in kinds]


def ensure_topics(settings: Settings, names: Sequence[str] | None = None, partitions: int | None = None) -> list[str]:
    """Create the platform's topics (or ``names``) that do not exist yet, with ``kafka.partitions`` (or
    ``partitions``) and ``replication_factor``.

    Idempotent: existing topics are left as they are. Returns the names created now.
    """
    from kafka.admin import KafkaAdminClient, NewTopic
    from kafka.errors import KafkaError, TopicAlreadyExistsError

    k = settings.kafka
    wait_ms = max(1000, int(k.wait_timeout_s * 1000))  # bounded: a broker that does not answer fails the call
    admin = KafkaAdminClient(**kafka_options(settings), request_timeout_ms=min(15000, wait_ms),
                             bootstrap_timeout_ms=wait_ms)
    try:
        existing = set(admin.list_topics())
        missing = [t for t in (topics(settings) if names is None else names) if t not in existing]
        if not missing:
            return []
        count = k.partitions if partitions is None else partitions
        new = [NewTopic(t, num_partitions=count, replication_factor=k.replication_factor) for t in missing]
        try:
            admin.create_topics(new)
        except TopicAlreadyExistsError:  # another client created one meanwhile
            pass
        except KafkaError as exc:
            raise ServiceError(f"creating Kafka topics {missing} failed: {exc}", service="kafka") from exc
        return missing
    finally:
        admin.close()


def subscribe(consumer, topic_names: Sequence[str], *, listener=None, timeout_s: float = 120.0) -> None:
    """Subscribe ``consumer`` once its metadata knows every topic. The group leader assigns only the partitions
    its metadata knows, so a topic created a moment ago (``ensure_topics``) would otherwise get no consumer until
    the next metadata refresh (``metadata_max_age_ms``, five minutes by default)."""
    import time

    deadline = time.monotonic() + timeout_s
    while not all(consumer.partitions_for_topic(t) for t in topic_names) and time.monotonic() < deadline:
        time.sleep(0.2)
    if listener is None:
        consumer.subscribe(list(topic_names))
    else:
        consumer.subscribe(list(topic_names), listener=listener)


def cassandra_connect(contact_points: Sequence[str], port: int, username: str, password: str, *,
                      keyspace: str | None = None, consistency: str = "LOCAL_QUORUM",
                      only_hosts: Sequence[str] | None = None, request_timeout_s: float = 20.0,
                      connect_timeout_s: float = 10.0, protocol_version: int = 5,
                      metadata: bool = True) -> Session:
    """A cassandra-driver session (password authentication) with ``consistency`` as its default level.

    ``only_hosts`` restricts every request to those addresses (say, one node of a ring). The caller owns the
    connection: ``session.cluster.shutdown()`` when done. Protocol v5 is Cassandra 4.0 and later's. Without
    ``metadata`` the driver skips reading schema and token ring: a quicker connection, no token-aware routing.
    """
    from cassandra import ConsistencyLevel
    from cassandra.auth import PlainTextAuthProvider
    from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile
    from cassandra.policies import DCAwareRoundRobinPolicy, TokenAwarePolicy, WhiteListRoundRobinPolicy

    try:
        level = ConsistencyLevel.name_to_value[consistency.upper()]
    except KeyError:
        raise UsageError(f"unknown Cassandra consistency level {consistency!r}") from None
    if only_hosts:
        policy = WhiteListRoundRobinPolicy(list(only_hosts))
    else:
        policy = TokenAwarePolicy(DCAwareRoundRobinPolicy())
    profile = ExecutionProfile(load_balancing_policy=policy, consistency_level=level,
                               request_timeout=request_timeout_s)
    cluster = Cluster(
        contact_points=list(only_hosts or contact_points), port=port,
        auth_provider=PlainTextAuthProvider(username=username, password=password),
        execution_profiles={EXEC_PROFILE_DEFAULT: profile},
        connect_timeout=connect_timeout_s, control_connection_timeout=connect_timeout_s,
        protocol_version=protocol_version, schema_metadata_enabled=metadata, token_metadata_enabled=metadata,
    )
    try:
        return cluster.connect(keyspace)
    except BaseException:
        cluster.shutdown()
        raise


def cassandra_session(settings: Settings, keyspace: str | None = None, *,
                      consistency: str | None = None) -> Session:
    """A session to the configured Cassandra.

    ``consistency`` defaults to ``cassandra.write_consistency``; readers pass ``cassandra.read_consistency``.
    """
    c = settings.cassandra
    level = consistency or c.write_consistency
    if not c.contact_points:
        raise MeterlakeError(f"no Cassandra configured and no local stack in {settings.state_dir}: set "
                             "cassandra.contact_points, or run `meterlake stack up` first",
                             state_dir=str(settings.state_dir))
    if c.username is None or c.password is None:
        raise UsageError("cassandra.contact_points is set but cassandra.username/password are not "
                         "(METERLAKE_CASSANDRA__USERNAME / METERLAKE_CASSANDRA__PASSWORD)")
    return cassandra_connect(c.contact_points, c.port or 9042, c.username, c.password, keyspace=keyspace,
                             consistency=level)
