"""Cassandra 5.0: ``N`` nodes as JVM processes on 127.0.0.1..127.0.0.N, with passwords, like a ccm cluster.

Every node listens on its own loopback address with the same native (CQL) and storage ports; JMX is local
only, one port per node, for :func:`nodetool`. Node 1 is the seed. Nodes start with
``auto_bootstrap: false``: the ring is new and empty, so there is nothing to stream. Node 1 starts first, the
others together once it serves.

No default secrets: Cassandra creates the superuser ``cassandra``/``cassandra`` on a new ring, and
:func:`after_up` creates the stack's own superuser (its generated password is in the state dir's secrets) and
disables ``cassandra``. Other code connects through :func:`session` or
:func:`meterlake.clients.cassandra_session`.

Run: ``meterlake stack up --services cassandra --cassandra-nodes 3``; ``meterlake stack kill cassandra-2``.
"""
from __future__ import annotations

import re
import secrets as random_secrets
import socket
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from infra.local import jmx, process
from infra.local.process import JvmProcess
from infra.local.topology import StackContext
from meterlake.clients import cassandra_connect
from meterlake.errors import ServiceError

if TYPE_CHECKING:
    from cassandra.cluster import Session

SERVICE = "cassandra"
MAIN_CLASS = "org.apache.cassandra.service.CassandraDaemon"
NODETOOL_CLASS = "org.apache.cassandra.tools.NodeTool"
CLUSTER_NAME = "meterlake"
DATACENTER = "datacenter1"
RACK = "rack1"
# Cassandra creates this superuser on a new ring; after_up disables it.
DEFAULT_USER = ("cassandra", "cassandra")
# Not one node after another: on a new ring the default superuser is written at QUORUM of system_auth, which
# has a replica on every node, so node 1 alone never becomes ready. Node 1 does start first (see prepare).
SEQUENTIAL_START = False


def address(node: int) -> str:
    return f"127.0.0.{node}"


def render_cassandra_yaml(*, node: int, native_port: int, storage_port: int, data_dir: str,
                          cluster_name: str = CLUSTER_NAME) -> str:
    """cassandra.yaml of node ``node`` (1-based); node 1 is the seed. Sized for a 2-core laptop. Pure."""
    listen = address(node)
    config = {
        "cluster_name": cluster_name,
        "num_tokens": 4,  # few vnodes: repair and ring bookkeeping stay quick on a laptop
        "auto_bootstrap": False,  # a new ring: nothing to stream, and concurrent joins would fail
        "storage_compatibility_mode": "NONE",  # every node is 5.0 from the start
        "partitioner": "org.apache.cassandra.dht.Murmur3Partitioner",
        "seed_provider": [{
            "class_name": "org.apache.cassandra.locator.SimpleSeedProvider",
            "parameters": [{"seeds": f"{address(1)}:{storage_port}"}],
        }],
        "listen_address": listen,
        "rpc_address": listen,
        "storage_port": storage_port,
        "native_transport_port": native_port,
        "start_native_transport": True,
        # A coordinator that is a replica reads its own copy first, so a read at ONE through node N shows what
        # node N holds. SimpleSnitch keeps ring order and reads another node's copy instead; the dynamic
        # snitch reorders by latency. Datacenter and rack come from cassandra-rackdc.properties.
        "endpoint_snitch": "GossipingPropertyFileSnitch",
        "dynamic_snitch": False,
        # Storage: everything under the node's data dir.
        "data_file_directories": [f"{data_dir}/data"],
        "commitlog_directory": f"{data_dir}/commitlog",
        "saved_caches_directory": f"{data_dir}/saved_caches",
        "hints_directory": f"{data_dir}/hints",
        "cdc_raw_directory": f"{data_dir}/cdc_raw",
        "commitlog_sync": "periodic",
        "commitlog_sync_period": "10000ms",
        "commitlog_segment_size": "32MiB",
        "commitlog_total_space": "256MiB",
        "disk_failure_policy": "stop",
        "commit_failure_policy": "stop",
        # Security: passwords and permissions; nobody connects anonymously.
        "authenticator": "PasswordAuthenticator",
        "authorizer": "CassandraAuthorizer",
        "role_manager": "CassandraRoleManager",
        "network_authorizer": "AllowAllNetworkAuthorizer",
        "roles_validity": "2000ms",
        "permissions_validity": "2000ms",
        "credentials_validity": "2000ms",
        # Hints: a node that was down catches up when it returns (repair does the rest).
        "hinted_handoff_enabled": True,
        "max_hint_window": "3h",
        "hints_flush_period": "10000ms",
        "max_hints_delivery_threads": 2,
        "hinted_handoff_throttle": "1024KiB",
        # Small: two cores and a 768 MB heap.
        "concurrent_reads": 4,
        "concurrent_writes": 4,
        "concurrent_counter_writes": 2,
        "concurrent_materialized_view_writes": 2,
        "concurrent_compactors": 1,
        "concurrent_validations": 1,
        "concurrent_materialized_view_builders": 1,
        "memtable_flush_writers": 1,
        # Trie memtables (5.0) with their cells off heap: a bulk day's writes cost far less CPU and GC than the
        # skip-list default on heap, and flush less often (fewer sstables to compact).
        "memtable": {"configurations": {"skiplist": {"class_name": "SkipListMemtable"},
                                        "trie": {"class_name": "TrieMemtable"},
                                        "default": {"inherits": "trie"}}},
        "memtable_allocation_type": "offheap_objects",
        # The store sends set rows as unlogged batches of a few rows (~1-2 KB each): no warning per batch.
        "batch_size_warn_threshold": "32KiB",
        "memtable_heap_space": "128MiB",
        "memtable_offheap_space": "256MiB",
        "native_transport_max_threads": 32,
        "compaction_throughput": "32MiB/s",
        "key_cache_size": "16MiB",
        "counter_cache_size": "4MiB",
        "file_cache_size": "32MiB",
        "networking_cache_size": "16MiB",
        "prepared_statements_cache_size": "8MiB",
        # Not needed here.
        "cdc_enabled": False,
        "incremental_backups": False,
        "snapshot_before_compaction": False,
        "auto_snapshot": False,  # tests drop and truncate a lot; a laptop's disk is not a backup
        "materialized_views_enabled": False,
        "sasi_indexes_enabled": False,
        "transient_replication_enabled": False,
        "user_defined_functions_enabled": False,
        "diagnostic_events_enabled": False,
        "trickle_fsync": False,
    }
    return yaml.safe_dump(config, sort_keys=False)


def render_rackdc_properties() -> str:
    return f"dc={DATACENTER}\nrack={RACK}\n"


# Console only: the process's stdout is its log file (state/cassandra-N/log/cassandra-N.log).
LOGBACK = """\
<configuration scan="false">
  <appender name="STDOUT" class="ch.qos.logback.core.ConsoleAppender">
    <encoder><pattern>%-5level [%thread] %date{ISO8601} %F:%L - %msg%n</pattern></encoder>
  </appender>
  <root level="INFO"><appender-ref ref="STDOUT"/></root>
</configuration>
"""

LOGBACK_TOOLS = """\
<configuration scan="false">
  <appender name="STDERR" class="ch.qos.logback.core.ConsoleAppender">
    <target>System.err</target>
    <encoder><pattern>%-5level %date{ISO8601} %F:%L - %msg%n</pattern></encoder>
  </appender>
  <root level="WARN"><appender-ref ref="STDERR"/></root>
</configuration>
"""

# From Cassandra's conf/jvm17-server.options: module access its internals need on Java 17.
JAVA17_OPTIONS = [
    "-Djdk.attach.allowAttachSelf=true",
    "--add-exports", "java.base/jdk.internal.misc=ALL-UNNAMED",
    "--add-exports", "java.management.rmi/com.sun.jmx.remote.internal.rmi=ALL-UNNAMED",
    "--add-exports", "java.rmi/sun.rmi.registry=ALL-UNNAMED",
    "--add-exports", "java.rmi/sun.rmi.server=ALL-UNNAMED",
    "--add-exports", "java.sql/java.sql=ALL-UNNAMED",
    "--add-exports", "java.base/java.lang.ref=ALL-UNNAMED",
    "--add-exports", "jdk.unsupported/sun.misc=ALL-UNNAMED",
    "--add-exports", "jdk.compiler/com.sun.tools.javac.file=ALL-UNNAMED",
    "--add-exports", "jdk.attach/sun.tools.attach=ALL-UNNAMED",
    "--add-opens", "java.base/java.lang.module=ALL-UNNAMED",
    "--add-opens", "java.base/jdk.internal.loader=ALL-UNNAMED",
    "--add-opens", "java.base/jdk.internal.ref=ALL-UNNAMED",
    "--add-opens", "java.base/jdk.internal.reflect=ALL-UNNAMED",
    "--add-opens", "java.base/jdk.internal.math=ALL-UNNAMED",
    "--add-opens", "java.base/jdk.internal.module=ALL-UNNAMED",
    "--add-opens", "java.base/jdk.internal.util.jar=ALL-UNNAMED",
    "--add-opens", "jdk.management/com.sun.management.internal=ALL-UNNAMED",
    "--add-opens", "java.base/sun.nio.ch=ALL-UNNAMED",
    "--add-opens", "java.base/java.io=ALL-UNNAMED",
    "--add-opens", "java.base/java.lang.reflect=ALL-UNNAMED",
    "--add-opens", "jdk.compiler/com.sun.tools.javac=ALL-UNNAMED",
    "--add-opens", "java.base/java.lang=ALL-UNNAMED",
    "--add-opens", "java.base/java.util=ALL-UNNAMED",
    "-Dio.netty.tryReflectionSetAccessible=true",
    "-Dio.netty.allocator.useCacheForAllThreads=true",
    "-Dio.netty.allocator.maxOrder=11",
]


def nodes(ctx: StackContext) -> int:
    return ctx.settings.stack.cassandra_nodes


def native_port(ctx: StackContext) -> int:
    """The CQL port; every node listens on it, each on its own address."""
    return ctx.port(SERVICE, "native_port")


def storage_port(ctx: StackContext) -> int:
    return ctx.port(SERVICE, "storage_port")


def jmx_port(ctx: StackContext, node: int) -> int:
    return ctx.port(SERVICE, "jmx_port", node, step_key="jmx_step")


def contact_points(ctx: StackContext) -> list[str]:
    return [address(n) for n in range(1, nodes(ctx) + 1)]


def credentials(ctx: StackContext) -> tuple[str, str]:
    return ctx.secrets["cassandra_username"], ctx.secrets["cassandra_password"]


def session(ctx: StackContext, keyspace: str | None = None, consistency: str = "LOCAL_QUORUM",
            node: int | None = None) -> Session:
    """A driver session to the ring as the stack's user; with ``node``, every request goes to that node only.

    The caller closes it with ``session.cluster.shutdown()``.
    """
    user, password = credentials(ctx)
    only = [address(node)] if node is not None else None
    return cassandra_connect(contact_points(ctx), native_port(ctx), user, password, keyspace=keyspace,
                             consistency=consistency, only_hosts=only)


def _auth_failed(exc: Exception) -> bool:
    """True when ``exc`` (from connecting) says the credentials were refused, not that the node is down."""
    from cassandra import AuthenticationFailed
    from cassandra.cluster import NoHostAvailable

    if isinstance(exc, AuthenticationFailed):
        return True
    if isinstance(exc, NoHostAvailable) and isinstance(exc.errors, dict):
        errors = list(exc.errors.values())
        return bool(errors) and all(isinstance(e, AuthenticationFailed) for e in errors)
    return False


def _node_session(ctx: StackContext, node: int, user: str, password: str) -> Session:
    return cassandra_connect([address(node)], native_port(ctx), user, password, consistency="ONE",
                             only_hosts=[address(node)], request_timeout_s=10.0, connect_timeout_s=5.0,
                             metadata=False)


def _login(ctx: StackContext, node: int) -> Session:
    """A session to ``node`` as the stack's user, or (until :func:`after_up` made that) as the default one."""
    try:
        return _node_session(ctx, node, *credentials(ctx))
    except Exception as exc:
        if not _auth_failed(exc):
            raise
    return _node_session(ctx, node, *DEFAULT_USER)


def _ready(ctx: StackContext, node: int) -> bool:
    """The node answers a CQL query, as a logged-in user, with itself as the only coordinator."""
    s = _login(ctx, node)
    try:
        row = s.execute("SELECT release_version FROM system.local").one()
        return row is not None and bool(row.release_version)
    finally:
        s.cluster.shutdown()


def member(ctx: StackContext, node: int) -> str:
    """How ``node`` is named in :func:`view`: its address."""
    return address(node)


def view(ctx: StackContext, node: int) -> tuple[str, frozenset]:
    """(cluster name, the addresses of the ring's nodes: itself and its peers) as ``node`` sees its ring."""
    s = _login(ctx, node)
    try:
        local = s.execute("SELECT cluster_name, broadcast_address FROM system.local").one()
        peers = {str(row.peer) for row in s.execute("SELECT peer FROM system.peers_v2")}
        return local.cluster_name, frozenset({str(local.broadcast_address), *peers})
    finally:
        s.cluster.shutdown()


def can_login(ctx: StackContext, node: int, user: str, password: str) -> bool:
    """Whether ``node`` accepts these credentials."""
    from cassandra.cluster import NoHostAvailable

    try:
        s = _node_session(ctx, node, user, password)
    except Exception as exc:
        if _auth_failed(exc):
            return False
        if isinstance(exc, NoHostAvailable) and not isinstance(exc.errors, dict):
            # The control connection logged in, the connection pool was refused: a credentials cache expiring.
            return True
        raise
    s.cluster.shutdown()
    return True


def _role(name: str) -> str:
    if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", name):
        raise ServiceError(f"cassandra: unusable role name {name!r}", service=SERVICE)
    return f'"{name}"'


def after_up(ctx: StackContext) -> None:
    """Replace the default superuser with the stack's own (idempotent); keep logins working with a node down.

    Logged in as whoever can: system_auth gets one replica per node, and the stack's role is created (or its
    password reset). Then, as that role, ``cassandra`` gets a random password and loses superuser and login.
    """
    n = nodes(ctx)
    user, password = credentials(ctx)
    s = _login(ctx, 1)
    try:
        row = s.execute("SELECT replication FROM system_schema.keyspaces "
                        "WHERE keyspace_name = 'system_auth'").one()
        changed_rf = row.replication.get("replication_factor") != str(n)
        if changed_rf:
            s.execute("ALTER KEYSPACE system_auth WITH replication = "
                      f"{{'class': 'SimpleStrategy', 'replication_factor': {n}}}")
        if s.cluster.auth_provider.username != user:
            options = "WITH PASSWORD = %s AND SUPERUSER = true AND LOGIN = true"
            s.execute(f"CREATE ROLE IF NOT EXISTS {_role(user)} {options}", (password,))
            s.execute(f"ALTER ROLE {_role(user)} {options}", (password,))
    finally:
        s.cluster.shutdown()
    if changed_rf and n > 1:
        # Roles written before the change live on fewer nodes: copy them to every node.
        nodetool(ctx, 1, "repair", "-full", "system_auth")
    s = _node_session(ctx, 1, user, password)
    try:
        row = s.execute("SELECT can_login, is_superuser FROM system_auth.roles WHERE role = %s",
                        (DEFAULT_USER[0],)).one()
        if row is not None and (row.can_login or row.is_superuser):
            s.execute(f"ALTER ROLE {_role(DEFAULT_USER[0])} "
                      "WITH PASSWORD = %s AND SUPERUSER = false AND LOGIN = false",
                      (random_secrets.token_urlsafe(24),))
    finally:
        s.cluster.shutdown()
    # A node may serve the old credentials from its cache for credentials_validity (2 s).
    deadline = time.monotonic() + 20
    for node in range(1, n + 1):
        while can_login(ctx, node, *DEFAULT_USER):
            if time.monotonic() > deadline:
                name = f"{SERVICE}-{node}"
                raise ServiceError(f"{name}: the default superuser cassandra/cassandra can still log in",
                                   service=SERVICE, process=name)
            time.sleep(1)


def _common_jvm_options(home: Path) -> list[str]:
    return [
        "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=300", "-XX:+ParallelRefProcEnabled", "-Xss256k",
        "-XX:+UseThreadPriorities", "-XX:+PerfDisableSharedMem", "-Djava.net.preferIPv4Stack=true",
        "-Djava.awt.headless=true",
        f"-Dcassandra.storagedir={home / 'data'}",
        f"-Dcassandra.logdir={home / 'log'}",
        *JAVA17_OPTIONS,
    ]


def processes(ctx: StackContext) -> list[JvmProcess]:
    n = nodes(ctx)
    jar_dir = ctx.jar_dir(SERVICE)
    heap = ctx.heap(SERVICE)
    classpath = [f"{jar_dir}/*"]
    procs = []
    for node in range(1, n + 1):
        name = f"{SERVICE}-{node}"
        home = ctx.home(name)
        conf = home / "conf"
        data = home / "data"
        jvm = [
            f"-Xms{heap}", f"-Xmx{heap}",
            "-ea", "-da:net.openhft...",
            *_common_jvm_options(home),
            "-XX:+ExitOnOutOfMemoryError",  # a node that ran out of heap may be inconsistent: let it die
            f"-XX:ErrorFile={home / 'log' / 'hs_err_%p.log'}",
            "-Dcassandra-foreground=yes",
            f"-Dcassandra.config=file://{conf / 'cassandra.yaml'}",
            f"-Dcassandra-rackdc.properties=file://{conf / 'cassandra-rackdc.properties'}",
            f"-Dlogback.configurationFile={conf / 'logback.xml'}",
            f"-Dcassandra.triggers_dir={conf / 'triggers'}",
            f"-Dcassandra.jmx.local.port={jmx_port(ctx, node)}",  # JMX bound to loopback, for nodetool only
            # A local ring: no waiting for gossip to settle, system_auth on every node from the start. The
            # ring delay bounds a starting node's first gossip round with the seed and its known peers: the
            # others start once the seed serves, so they hear back at once, and a restarting seed need not
            # wait 30 s for peers that are not up yet.
            "-Dcassandra.skip_wait_for_gossip_to_settle=0",
            "-Dcassandra.ring_delay_ms=5000",
            "-Dcassandra.superuser_setup_delay_ms=1000",
            f"-Dcassandra.system_auth.default_rf={n}",
        ]

        def prepare(node=node, conf=conf, data=data, name=name) -> None:
            if node > 1:
                _wait_for_seed(ctx, procs[0])
            # Every node's JMX listens on 127.0.0.1, which stack.up's check of the node's own address misses.
            if process.port_in_use("127.0.0.1", jmx_port(ctx, node)):
                raise ServiceError(f"{name}: 127.0.0.1:{jmx_port(ctx, node)} (JMX port) is already in use by "
                                   "another program; stop it or set stack.port_offset",
                                   service=SERVICE, process=name, port=jmx_port(ctx, node))
            (conf / "cassandra.yaml").write_text(render_cassandra_yaml(
                node=node, native_port=native_port(ctx), storage_port=storage_port(ctx), data_dir=str(data)))
            (conf / "cassandra-rackdc.properties").write_text(render_rackdc_properties())
            (conf / "logback.xml").write_text(LOGBACK)
            (conf / "logback-tools.xml").write_text(LOGBACK_TOOLS)
            (conf / "triggers").mkdir(exist_ok=True)
            jmx.write_config(ctx, SERVICE, conf)

        agent, agent_ports = jmx.agent(ctx, SERVICE, node, address(node), conf)
        procs.append(JvmProcess(
            name=name, service=SERVICE, home=home, main_class=MAIN_CLASS, classpath=classpath,
            jvm_options=jvm + agent, address=address(node),
            ports={"native": native_port(ctx), "storage": storage_port(ctx), "jmx": jmx_port(ctx, node),
                   **agent_ports},
            is_ready=lambda node=node: _ready(ctx, node), prepare=prepare,
        ))
    return procs


def _serves_cql(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1.0):
            return True
    except OSError:
        return False


def _wait_for_seed(ctx: StackContext, seed: JvmProcess) -> None:
    """Wait until the seed serves CQL. A joining node gossips with the seed first and gives up after the ring
    delay; and the seed starts faster with both cores to itself. The other nodes then start together."""
    deadline = time.monotonic() + ctx.settings.stack.start_timeout_s
    while not _serves_cql(seed.address, seed.ports["native"]):
        if not process.is_running(seed):
            raise ServiceError(f"{seed.name}, the seed, is not running: start it first (see {seed.log_file})",
                               service=SERVICE, process=seed.name, log=str(seed.log_file),
                               log_tail=process.log_tail(seed))
        if time.monotonic() > deadline:
            raise ServiceError(f"{seed.name}, the seed, did not start serving within "
                               f"{ctx.settings.stack.start_timeout_s}s (see {seed.log_file})",
                               service=SERVICE, process=seed.name, log=str(seed.log_file),
                               log_tail=process.log_tail(seed))
        time.sleep(0.5)


def nodetool(ctx: StackContext, node: int, *args: str, timeout_s: float = 600.0) -> str:
    """Run ``nodetool ARGS`` against ``node`` over its local JMX port; its output, or a ServiceError."""
    home = ctx.home(f"{SERVICE}-{node}")
    conf = home / "conf"
    cmd = ["java", "-Xmx128m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
           *_tool_jvm_options(home, conf), "-cp", f"{ctx.jar_dir(SERVICE)}/*", NODETOOL_CLASS,
           "-h", "127.0.0.1", "-p", str(jmx_port(ctx, node)), *args]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s)
    if out.returncode != 0:
        tail = "\n".join((out.stdout + out.stderr).splitlines()[-20:])
        raise ServiceError(f"{SERVICE}-{node}: nodetool {' '.join(args)} failed (exit {out.returncode})",
                           service=SERVICE, process=f"{SERVICE}-{node}", log_tail=tail)
    return out.stdout


def _tool_jvm_options(home: Path, conf: Path) -> Sequence[str]:
    return [
        "-Djava.net.preferIPv4Stack=true",
        f"-Dcassandra.storagedir={home / 'data'}",
        f"-Dcassandra.logdir={home / 'log'}",
        f"-Dlogback.configurationFile={conf / 'logback-tools.xml'}",
        *JAVA17_OPTIONS,
    ]
