"""Kafka in KRaft mode: ``N`` combined broker/controller nodes on 127.0.0.1, SASL/PLAIN on every listener.

Storage is formatted once per node with ``kafka.tools.StorageTool format`` and the stack's cluster id. Topics are
not auto-created: the platform creates its own with partitions and replication from configuration.
"""
from __future__ import annotations

import subprocess

from infra.local import jmx
from infra.local.process import JvmProcess
from infra.local.topology import StackContext
from meterlake.errors import ServiceError

SERVICE = "kafka"
ADDRESS = "127.0.0.1"


def _jaas(user: str, password: str) -> str:
    return (f'org.apache.kafka.common.security.plain.PlainLoginModule required username="{user}" '
            f'password="{password}" user_{user}="{password}";')


def render_server_properties(*, node: int, brokers: int, client_ports: list[int], controller_ports: list[int],
                             log_dir: str, user: str, password: str) -> str:
    """server.properties of node ``node`` (1-based) in a cluster of ``brokers`` combined nodes. Pure."""
    voters = ",".join(f"{n}@{ADDRESS}:{controller_ports[n - 1]}" for n in range(1, brokers + 1))
    rf = min(3, brokers)
    min_isr = 2 if brokers >= 3 else 1
    jaas = _jaas(user, password)
    props = {
        "process.roles": "broker,controller",
        "node.id": node,
        "controller.quorum.voters": voters,
        "listeners": f"SASL_PLAINTEXT://{ADDRESS}:{client_ports[node - 1]},"
                     f"CONTROLLER://{ADDRESS}:{controller_ports[node - 1]}",
        "advertised.listeners": f"SASL_PLAINTEXT://{ADDRESS}:{client_ports[node - 1]},"
                                f"CONTROLLER://{ADDRESS}:{controller_ports[node - 1]}",
        "listener.security.protocol.map": "SASL_PLAINTEXT:SASL_PLAINTEXT,CONTROLLER:SASL_PLAINTEXT",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "SASL_PLAINTEXT",
        "sasl.enabled.mechanisms": "PLAIN",
        "sasl.mechanism.inter.broker.protocol": "PLAIN",
        "sasl.mechanism.controller.protocol": "PLAIN",
        "listener.name.sasl_plaintext.plain.sasl.jaas.config": jaas,
        "listener.name.controller.plain.sasl.jaas.config": jaas,
        "log.dirs": log_dir,
        "auto.create.topics.enable": "false",
        "num.partitions": 1,
        "default.replication.factor": rf,
        "min.insync.replicas": min_isr,
        "offsets.topic.replication.factor": rf,
        "transaction.state.log.replication.factor": rf,
        "transaction.state.log.min.isr": min_isr,
        "share.coordinator.state.topic.replication.factor": rf,
        "share.coordinator.state.topic.min.isr": min_isr,
        "group.initial.rebalance.delay.ms": 0,
        "log.retention.hours": 168,
        "log.segment.bytes": 64 * 1024 * 1024,
        "message.max.bytes": 16 * 1024 * 1024,
        "replica.fetch.max.bytes": 16 * 1024 * 1024,
        "num.network.threads": 2,
        "num.io.threads": 2,
        "background.threads": 2,
        "log.cleaner.threads": 1,
    }
    return "".join(f"{k}={v}\n" for k, v in props.items())


LOG4J2 = """\
Configuration:
  Appenders:
    Console:
      name: STDOUT
      PatternLayout:
        pattern: "[%d] %p %m (%c)%n"
  Loggers:
    Root:
      level: INFO
      AppenderRef:
        - ref: STDOUT
    Logger:
      - name: kafka.request.logger
        level: WARN
      - name: org.apache.kafka.controller
        level: INFO
"""


def client_options(ctx: StackContext) -> dict:
    """kafka-python keyword arguments for this stack."""
    brokers = ctx.settings.stack.kafka_brokers
    servers = ",".join(f"{ADDRESS}:{ctx.port(SERVICE, 'client_port', n)}" for n in range(1, brokers + 1))
    return {
        "bootstrap_servers": servers,
        "security_protocol": "SASL_PLAINTEXT",
        "sasl_mechanism": "PLAIN",
        "sasl_plain_username": ctx.secrets["kafka_username"],
        "sasl_plain_password": ctx.secrets["kafka_password"],
    }


def _ready(ctx: StackContext, node: int) -> bool:
    from kafka import KafkaAdminClient

    opts = client_options(ctx)
    opts["bootstrap_servers"] = f"{ADDRESS}:{ctx.port(SERVICE, 'client_port', node)}"
    admin = KafkaAdminClient(**opts, request_timeout_ms=5000)
    try:
        cluster = admin.describe_cluster()
        ids = {b["broker_id"] for b in cluster["brokers"] if not b.get("is_fenced")}
        return node in ids and cluster.get("controller_id", -1) != -1
    finally:
        admin.close()


def member(ctx: StackContext, node: int) -> int:
    """How broker ``node`` is named in :func:`view`: its node id."""
    return node


def view(ctx: StackContext, node: int) -> tuple[str, frozenset]:
    """(cluster id, the ids of its unfenced brokers) as broker ``node`` sees its cluster."""
    from kafka import KafkaAdminClient

    opts = client_options(ctx)
    opts["bootstrap_servers"] = f"{ADDRESS}:{ctx.port(SERVICE, 'client_port', node)}"
    admin = KafkaAdminClient(**opts, request_timeout_ms=5000)
    try:
        cluster = admin.describe_cluster()
        return cluster.get("cluster_id") or "", frozenset(b["broker_id"] for b in cluster["brokers"]
                                                          if not b.get("is_fenced"))
    finally:
        admin.close()


def processes(ctx: StackContext) -> list[JvmProcess]:
    brokers = ctx.settings.stack.kafka_brokers
    client_ports = [ctx.port(SERVICE, "client_port", n) for n in range(1, brokers + 1)]
    controller_ports = [ctx.port(SERVICE, "controller_port", n) for n in range(1, brokers + 1)]
    jar_dir = ctx.jar_dir(SERVICE)
    heap = ctx.heap(SERVICE)
    procs = []
    for node in range(1, brokers + 1):
        name = f"kafka-{node}"
        home = ctx.home(name)
        conf = home / "conf"
        data = home / "data"
        classpath = [f"{jar_dir}/*"]
        jvm = [f"-Xms{heap}", f"-Xmx{heap}", "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20", "-Djava.awt.headless=true",
               f"-Dlog4j2.configurationFile={conf / 'log4j2.yaml'}", f"-Dkafka.logs.dir={home / 'log'}"]

        def prepare(node=node, conf=conf, data=data, classpath=classpath, jvm=jvm, name=name) -> None:
            props = render_server_properties(
                node=node, brokers=brokers, client_ports=client_ports, controller_ports=controller_ports,
                log_dir=str(data / "kraft"), user=ctx.secrets["kafka_username"],
                password=ctx.secrets["kafka_password"],
            )
            (conf / "server.properties").write_text(props)
            (conf / "log4j2.yaml").write_text(LOG4J2)
            jmx.write_config(ctx, SERVICE, conf)
            if (data / "kraft" / "meta.properties").exists():
                return
            cmd = ["java", *jvm, "-cp", ":".join(classpath), "kafka.tools.StorageTool", "format",
                   "-t", ctx.secrets["kafka_cluster_id"], "-c", str(conf / "server.properties"), "--ignore-formatted"]
            out = subprocess.run(cmd, capture_output=True, text=True)
            if out.returncode != 0:
                raise ServiceError(f"{name}: formatting KRaft storage failed", service=SERVICE, process=name,
                                   log_tail="\n".join((out.stdout + out.stderr).splitlines()[-20:]))

        agent, agent_ports = jmx.agent(ctx, SERVICE, node, ADDRESS, conf)  # not on the format tool's JVM
        procs.append(JvmProcess(
            name=name, service=SERVICE, home=home, main_class="kafka.Kafka", classpath=classpath,
            jvm_options=jvm + agent, args=[str(conf / "server.properties")], address=ADDRESS,
            ports={"client": client_ports[node - 1], "controller": controller_ports[node - 1], **agent_ports},
            is_ready=lambda node=node: _ready(ctx, node), prepare=prepare,
        ))
    return procs
