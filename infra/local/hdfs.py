"""HDFS from the Maven jars: one NameNode and ``N`` DataNodes on 127.0.0.1, each with its own home.

Each node gets ``conf/core-site.xml``, ``conf/hdfs-site.xml`` and ``conf/log4j.properties`` rendered by pure
functions; the conf dir goes first on the classpath (what ``HADOOP_CONF_DIR`` does for the tarball's
scripts). The Maven jars lack the tarball's ``share/hadoop/hdfs/webapps`` folders, which Hadoop's HTTP
server looks up on the classpath, so each node gets empty ``webapps/{hdfs,datanode,static}`` folders
(``www/`` in its home) instead: WebHDFS, ``/jmx`` and ``/conf`` work; the HTML UIs do not. The NameNode is
formatted once (``NameNode -format``) with a fixed cluster id.

Clients: Spark and Hadoop clients use :func:`namenode_uri` (``hdfs://127.0.0.1:<rpc>``); Python uses WebHDFS
at :func:`webhdfs_url` (see ``meterlake.lakefs``). The platform's data lives under ``/lake``, owned by the
stack user, mode 750.

Security, and its honest limit: every process runs as the stack user (``secrets["hdfs_user"]``,
``meterlake``), who is therefore the HDFS superuser; permissions are enforced. HTTP requests without
``user.name`` are refused (401) by the NameNode (WebHDFS, /jmx, /conf, /logs) and by the DataNodes' web
servers (/jmx). The DataNodes' WebHDFS data path (a Netty handler the NameNode redirects to) does not
authenticate: a request there without a user acts as ``dr.who``, which is why ``/lake`` is closed to "other"
and the default umask is 027. And this is Hadoop's *simple* authentication throughout: the RPC port and
WebHDFS trust whatever user name the client states. It keeps out anonymous clients; it does not stop a
program on this machine that claims to be ``meterlake``. Kerberos
(``hadoop.security.authentication=kerberos``, SPNEGO on HTTP, a KDC, block access tokens) is the production
answer; the local stack binds only to loopback instead.
"""
from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from xml.sax.saxutils import escape

import requests

from infra.local.process import JvmProcess
from infra.local.topology import StackContext
from meterlake.errors import ServiceError

SERVICE = "hdfs"
ADDRESS = "127.0.0.1"
NAMENODE = "namenode"
NAMENODE_MAIN = "org.apache.hadoop.hdfs.server.namenode.NameNode"
DATANODE_MAIN = "org.apache.hadoop.hdfs.server.datanode.DataNode"
CLUSTER_ID = "CID-meterlake-local"
LAKE_DIR = "/lake"
LAKE_PERMISSION = "750"
WEBAPPS = ("hdfs", "datanode", "static")
HTTP_TIMEOUT_S = 30  # the first WebHDFS request initialises Jersey: seconds on a busy 2-core machine

# Hadoop 3.3 predates Java 17's strong encapsulation: WebHDFS's Jersey/JAXB injects classes through
# ClassLoader.defineClass, and without this every WebHDFS call fails (HTTP 500, InaccessibleObjectException).
# Nothing else in NameNode or DataNode needed opening in our tests.
ADD_OPENS = ["java.base/java.lang=ALL-UNNAMED"]


def render_site(props: dict[str, object]) -> str:
    """A Hadoop ``*-site.xml`` from a flat mapping. Pure."""
    lines = ['<?xml version="1.0" encoding="UTF-8"?>', "<configuration>"]
    for key, value in props.items():
        if isinstance(value, bool):
            value = str(value).lower()
        lines.append(f"  <property><name>{escape(key)}</name><value>{escape(str(value))}</value></property>")
    lines.append("</configuration>")
    return "\n".join(lines) + "\n"


def render_core_site(*, namenode_rpc_port: int, tmp_dir: str, user: str) -> str:
    """core-site.xml, the same for every node. Pure."""
    return render_site({
        "fs.defaultFS": f"hdfs://{ADDRESS}:{namenode_rpc_port}",
        "hadoop.tmp.dir": tmp_dir,  # the default is /tmp/hadoop-${user.name}, shared with every other stack
        "hadoop.security.authentication": "simple",
        # No anonymous HTTP: every request must name its user (user.name=...). The NameNode swaps this
        # initializer for its own AuthFilterInitializer, which reads the same hadoop.http.authentication.*.
        "hadoop.http.filter.initializers": "org.apache.hadoop.security.AuthenticationFilterInitializer",
        "hadoop.http.authentication.type": "simple",
        "hadoop.http.authentication.simple.anonymous.allowed": False,
        # The stack user exists in HDFS, not as an OS account: map its groups here instead of asking `id`.
        "hadoop.user.group.static.mapping.overrides": f"dr.who=;{user}={user}",
        # New files and folders are not world-readable: a DataNode's WebHDFS port serves reads that carry no
        # user.name as the static user (dr.who), so "other" must get nothing.
        "fs.permissions.umask-mode": "027",
        "ipc.client.connect.max.retries": 5,
        "ipc.client.connect.retry.interval": 500,
    })


def render_hdfs_site(*, datanodes: int, namenode_rpc_port: int, namenode_http_port: int, name_dir: str,
                     data_dir: str, datanode_ports: dict[str, int] | None, user: str) -> str:
    """hdfs-site.xml. ``datanode_ports`` (``data``, ``http``, ``ipc``) for a DataNode, None for the NameNode.

    Pure.
    """
    props: dict[str, object] = {
        "dfs.namenode.rpc-address": f"{ADDRESS}:{namenode_rpc_port}",
        "dfs.namenode.http-address": f"{ADDRESS}:{namenode_http_port}",
        "dfs.http.policy": "HTTP_ONLY",
        "dfs.namenode.name.dir": name_dir,
        "dfs.datanode.data.dir": data_dir,
        "dfs.replication": min(3, datanodes),
        "dfs.permissions.enabled": True,
        "dfs.permissions.superusergroup": user,
        "dfs.webhdfs.enabled": True,
        # A small machine: few handler threads.
        "dfs.namenode.handler.count": 4,
        "dfs.namenode.service.handler.count": 2,
        "dfs.datanode.handler.count": 2,
        "dfs.namenode.safemode.extension": 1000,
        # Notice a killed DataNode within about a minute (default 10.5) so failure tests see it.
        "dfs.namenode.heartbeat.recheck-interval": 15000,
        # Loopback everywhere: the DataNode registers as 127.0.0.1, so the NameNode's WebHDFS redirects and
        # the block locations it hands out point at 127.0.0.1, never at a host name or outside address.
        "dfs.datanode.hostname": ADDRESS,
        "dfs.client.use.datanode.hostname": True,
        "dfs.datanode.use.datanode.hostname": True,
        "dfs.namenode.datanode.registration.ip-hostname-check": False,
        # With at most 3 DataNodes there is no spare to swap into a failed write pipeline.
        "dfs.client.block.write.replace-datanode-on-failure.policy": "NEVER",
    }
    if datanode_ports is not None:
        props.update({
            "dfs.datanode.address": f"{ADDRESS}:{datanode_ports['data']}",
            "dfs.datanode.http.address": f"{ADDRESS}:{datanode_ports['http']}",
            "dfs.datanode.ipc.address": f"{ADDRESS}:{datanode_ports['ipc']}",
        })
    return render_site(props)


LOG4J = """\
log4j.rootLogger=INFO, stdout
log4j.appender.stdout=org.apache.log4j.ConsoleAppender
log4j.appender.stdout.Target=System.out
log4j.appender.stdout.layout=org.apache.log4j.PatternLayout
log4j.appender.stdout.layout.ConversionPattern=%d{ISO8601} %p %c{2}: %m%n
# Per-request and per-block chatter.
log4j.logger.org.apache.hadoop.hdfs.server.datanode.DataNode.clienttrace=WARN
log4j.logger.org.apache.hadoop.hdfs.StateChange=WARN
log4j.logger.BlockStateChange=WARN
log4j.logger.org.apache.hadoop.hdfs.server.namenode.FSNamesystem.audit=WARN
log4j.logger.org.apache.hadoop.util.NativeCodeLoader=ERROR
log4j.logger.org.eclipse.jetty=WARN
# Without a secret file each server signs its auth cookies with a random secret: all one process needs.
log4j.logger.org.apache.hadoop.security.authentication.server.AuthenticationFilter=ERROR
log4j.logger.org.apache.hadoop.metrics2.impl.MetricsConfig=ERROR
"""


def namenode_uri(ctx: StackContext) -> str:
    """``hdfs://127.0.0.1:<rpc port>``: fs.defaultFS for Spark and Hadoop clients."""
    return f"hdfs://{ADDRESS}:{ctx.port(SERVICE, 'namenode_rpc_port')}"


def webhdfs_url(ctx: StackContext) -> str:
    """``http://127.0.0.1:<http port>``: the NameNode's HTTP address (WebHDFS under ``/webhdfs/v1``)."""
    return f"http://{ADDRESS}:{ctx.port(SERVICE, 'namenode_http_port')}"


def datanode_ports(ctx: StackContext, node: int) -> dict[str, int]:
    return {
        "data": ctx.port(SERVICE, "datanode_port", node),
        "http": ctx.port(SERVICE, "datanode_http_port", node),
        "ipc": ctx.port(SERVICE, "datanode_ipc_port", node),
    }


def _jmx(base_url: str, query: str, user: str) -> dict:
    resp = requests.get(f"{base_url}/jmx", params={"qry": query, "user.name": user}, timeout=HTTP_TIMEOUT_S)
    resp.raise_for_status()
    beans = resp.json()["beans"]
    if not beans:
        raise ServiceError(f"no JMX bean {query} at {base_url}", service=SERVICE)
    return beans[0]


def live_datanodes(ctx: StackContext) -> dict[str, dict]:
    """The NameNode's live DataNodes, keyed by data-transfer address (``127.0.0.1:9866``)."""
    info = _jmx(webhdfs_url(ctx), "Hadoop:service=NameNode,name=NameNodeInfo", ctx.secrets["hdfs_user"])
    nodes = json.loads(info["LiveNodes"])
    return {n["xferaddr"]: n for n in nodes.values()}


def _namenode_ready(ctx: StackContext) -> bool:
    user = ctx.secrets["hdfs_user"]
    info = _jmx(webhdfs_url(ctx), "Hadoop:service=NameNode,name=NameNodeInfo", user)
    state = _jmx(webhdfs_url(ctx), "Hadoop:service=NameNode,name=FSNamesystemState", user)
    out_of_safe_mode = info.get("Safemode", "") == "" and state.get("FSState") == "Operational"
    if not (out_of_safe_mode and state.get("NumLiveDataNodes", 0) >= ctx.settings.stack.hdfs_datanodes):
        return False
    # WebHDFS itself answers (this also initialises its Jersey application before the first real client call).
    resp = requests.get(f"{webhdfs_url(ctx)}/webhdfs/v1/", params={"op": "GETFILESTATUS", "user.name": user},
                        timeout=HTTP_TIMEOUT_S)
    return resp.status_code == 200 and resp.json()["FileStatus"]["type"] == "DIRECTORY"


def _datanode_ready(ctx: StackContext, node: int) -> bool:
    """This DataNode's own server answers and has registered, and the NameNode counts it live."""
    ports = datanode_ports(ctx, node)
    info = _jmx(f"http://{ADDRESS}:{ports['http']}", "Hadoop:service=DataNode,name=DataNodeInfo",
                ctx.secrets["hdfs_user"])
    actors = json.loads(info.get("BPServiceActorInfo") or "[]")
    if not actors or any(a.get("ActorState") != "RUNNING" for a in actors):
        return False
    return f"{ADDRESS}:{ports['data']}" in live_datanodes(ctx)


def _write_conf(conf: Path, *, core: str, hdfs: str) -> None:
    conf.mkdir(parents=True, exist_ok=True)
    (conf / "core-site.xml").write_text(core)
    (conf / "hdfs-site.xml").write_text(hdfs)
    (conf / "log4j.properties").write_text(LOG4J)


def _make_webapps(www: Path) -> None:
    for app in WEBAPPS:
        (www / "webapps" / app).mkdir(parents=True, exist_ok=True)


def _jvm_options(heap: str, home: Path, conf: Path, user: str) -> list[str]:
    return [
        f"-Xmx{heap}", "-Xms64m", "-XX:+UseSerialGC", "-Djava.awt.headless=true",
        "-Djava.net.preferIPv4Stack=true",
        *[f"--add-opens={o}" for o in ADD_OPENS],
        f"-Dlog4j.configuration=file:{conf / 'log4j.properties'}",
        f"-Dhadoop.log.dir={home / 'log'}",
        f"-DHADOOP_USER_NAME={user}",
    ]


def _format_namenode(name: str, cmd_prefix: list[str], env: dict[str, str], name_dir: Path) -> None:
    if (name_dir / "current" / "VERSION").is_file():
        return
    cmd = [*cmd_prefix, NAMENODE_MAIN, "-format", "-nonInteractive", "-force", "-clusterid", CLUSTER_ID]
    out = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, **env})
    if out.returncode != 0 or not (name_dir / "current" / "VERSION").is_file():
        raise ServiceError(f"{name}: formatting the NameNode failed", service=SERVICE, process=name,
                           log_tail="\n".join((out.stdout + out.stderr).splitlines()[-20:]))


def processes(ctx: StackContext) -> list[JvmProcess]:
    datanodes = ctx.settings.stack.hdfs_datanodes
    user = ctx.secrets["hdfs_user"]
    rpc_port = ctx.port(SERVICE, "namenode_rpc_port")
    http_port = ctx.port(SERVICE, "namenode_http_port")
    jar_dir = ctx.jar_dir(SERVICE)
    heap = ctx.heap(SERVICE)
    env = {"HADOOP_USER_NAME": user}
    procs = []

    def node_files(home: Path, dn_ports: dict[str, int] | None) -> tuple[Path, list, list, str, str]:
        conf, data, www = home / "conf", home / "data", home / "www"
        classpath = [str(conf), str(www), f"{jar_dir}/*"]
        jvm = _jvm_options(heap, home, conf, user)
        core = render_core_site(namenode_rpc_port=rpc_port, tmp_dir=str(data / "tmp"), user=user)
        hdfs = render_hdfs_site(datanodes=datanodes, namenode_rpc_port=rpc_port, namenode_http_port=http_port,
                                name_dir=str(data / "name"), data_dir=str(data / "dn"),
                                datanode_ports=dn_ports, user=user)
        return conf, classpath, jvm, core, hdfs

    home = ctx.home(NAMENODE)
    conf, classpath, jvm, core, hdfs = node_files(home, None)

    def prepare_namenode(home=home, conf=conf, classpath=classpath, jvm=jvm, core=core, hdfs=hdfs) -> None:
        _write_conf(conf, core=core, hdfs=hdfs)
        _make_webapps(home / "www")
        prefix = ["java", *jvm, "-cp", ":".join(classpath)]
        _format_namenode(NAMENODE, prefix, env, home / "data" / "name")

    procs.append(JvmProcess(
        name=NAMENODE, service=SERVICE, home=home, main_class=NAMENODE_MAIN, classpath=classpath,
        jvm_options=jvm, address=ADDRESS, ports={"rpc": rpc_port, "http": http_port}, env=env,
        is_ready=lambda: _namenode_ready(ctx), prepare=prepare_namenode,
    ))

    for node in range(1, datanodes + 1):
        name = f"datanode-{node}"
        home = ctx.home(name)
        ports = datanode_ports(ctx, node)
        conf, classpath, jvm, core, hdfs = node_files(home, ports)

        def prepare_datanode(home=home, conf=conf, core=core, hdfs=hdfs) -> None:
            _write_conf(conf, core=core, hdfs=hdfs)
            _make_webapps(home / "www")

        procs.append(JvmProcess(
            name=name, service=SERVICE, home=home, main_class=DATANODE_MAIN, classpath=classpath,
            jvm_options=jvm, address=ADDRESS, ports=ports, env=env,
            is_ready=lambda node=node: _datanode_ready(ctx, node), prepare=prepare_datanode,
        ))
    return procs


def after_up(ctx: StackContext) -> None:
    """Create ``/lake``, owned by the stack user and closed to others (idempotent)."""
    user = ctx.secrets["hdfs_user"]
    url = f"{webhdfs_url(ctx)}/webhdfs/v1{LAKE_DIR}"
    for op in ("MKDIRS", "SETPERMISSION"):
        resp = requests.put(url, params={"op": op, "permission": LAKE_PERMISSION, "user.name": user},
                            timeout=HTTP_TIMEOUT_S)
        if resp.status_code != 200:
            raise ServiceError(f"hdfs: {op} {LAKE_DIR} failed: HTTP {resp.status_code} {resp.text[:300]}",
                               service=SERVICE)
