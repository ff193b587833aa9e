"""The Prometheus JMX exporter (``io.prometheus.jmx:jmx_prometheus_javaagent``) on the stack's Kafka brokers and
Cassandra nodes, when ``stack.metrics = true``: each JVM gets ``-javaagent:<jar>=<address>:<port>:<config>`` and
serves ``http://<address>:<port>/metrics`` (ports: versions.toml ``[jmx_exporter]``). The agent's configuration
(which MBeans, how they are named) is rendered per service by :func:`render_config` (pure); docs/deploy.md lists
the series the alert rules use.
"""
from __future__ import annotations

from pathlib import Path

from infra.local.topology import StackContext

SERVICE = "jmx_exporter"
CONFIG_FILE = "jmx-exporter.yaml"

#: The MBeans exported per service (everything else is skipped: Cassandra alone has thousands, and a scrape of all
#: of them takes seconds). Names follow the exporter's default rule: domain, type and name, lower case.
INCLUDE = {
    "kafka": ["kafka.server:type=BrokerTopicMetrics,*", "kafka.server:type=ReplicaManager,*",
              "kafka.controller:type=KafkaController,*", "kafka.network:type=RequestMetrics,name=RequestsPerSec,*",
              "java.lang:type=Memory", "java.lang:type=GarbageCollector,*"],
    "cassandra": ["org.apache.cassandra.metrics:type=ClientRequest,*", "org.apache.cassandra.metrics:type=Storage,*",
                  "org.apache.cassandra.metrics:type=CommitLog,*", "org.apache.cassandra.metrics:type=Compaction,*",
                  "java.lang:type=Memory", "java.lang:type=GarbageCollector,*"],
}


def render_config(service: str) -> str:
    """The agent's YAML configuration for ``service`` (kafka or cassandra). Pure."""
    names = "".join(f'  - "{name}"\n' for name in INCLUDE[service])
    return ("lowercaseOutputName: true\nlowercaseOutputLabelNames: true\n"
            f"includeObjectNames:\n{names}rules:\n  - pattern: \".*\"\n")


def port(ctx: StackContext, service: str, node: int) -> int:
    return ctx.port(SERVICE, f"{service}_port", node)


def agent_jar(ctx: StackContext) -> Path:
    found = sorted(ctx.jar_dir(SERVICE).glob("jmx_prometheus_javaagent-*.jar"))
    if not found:
        from meterlake.errors import ServiceError

        raise ServiceError("stack.metrics: the JMX exporter's agent jar is not resolved (`meterlake stack fetch`)",
                           service=SERVICE)
    return found[-1]


def agent(ctx: StackContext, service: str, node: int, address: str, conf: Path) -> tuple[list[str], dict[str, int]]:
    """The JVM options and ports the exporter adds to node ``node`` of ``service`` (none unless stack.metrics);
    the configuration file is written into ``conf`` when the node is prepared (:func:`write_config`)."""
    if not ctx.settings.stack.metrics:
        return [], {}
    p = port(ctx, service, node)
    return [f"-javaagent:{agent_jar(ctx)}={address}:{p}:{conf / CONFIG_FILE}"], {"metrics": p}


def write_config(ctx: StackContext, service: str, conf: Path) -> None:
    if ctx.settings.stack.metrics:
        (conf / CONFIG_FILE).write_text(render_config(service))
