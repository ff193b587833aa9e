"""Spark standalone: one master and ``N`` workers on 127.0.0.1, run from pyspark's own jars (no download).

``stack.spark_workers = 0`` (the default) starts nothing: jobs run on ``local[*]``. With workers, each worker
offers ``worker_cores`` cores and ``worker_memory`` for executors (versions.toml); executors are the worker's
children. Master, workers and every application share the stack's generated secret (``spark.authenticate``);
it is written to 0600 properties files, never put on a command line. The web UIs answer on loopback only.

Clients: ``local_master_url(ctx)``, ``app_properties(secret)`` (used by :func:`meterlake.spark.build_spark`),
``master_state(ctx)`` (the master's JSON: workers, applications).
"""
from __future__ import annotations

import importlib.util
import os
import time
from pathlib import Path

import requests

from infra.local import process, versions
from infra.local.process import JvmProcess
from infra.local.topology import StackContext
from meterlake.errors import ServiceError
from meterlake.spark import render_properties  # the sessions' secrets file is written the same way

SERVICE = "spark"
ADDRESS = "127.0.0.1"
MASTER = "spark-master"
MASTER_CLASS = "org.apache.spark.deploy.master.Master"
WORKER_CLASS = "org.apache.spark.deploy.worker.Worker"

# Spark 3.5 on Java 17 needs these (org.apache.spark.launcher.JavaModuleOptions). Spark adds them itself to
# the driver and the executors; the daemons we start by hand get them here.
MODULE_OPTIONS = (
    "-XX:+IgnoreUnrecognizedVMOptions",
    "--add-opens=java.base/java.lang=ALL-UNNAMED",
    "--add-opens=java.base/java.lang.invoke=ALL-UNNAMED",
    "--add-opens=java.base/java.lang.reflect=ALL-UNNAMED",
    "--add-opens=java.base/java.io=ALL-UNNAMED",
    "--add-opens=java.base/java.net=ALL-UNNAMED",
    "--add-opens=java.base/java.nio=ALL-UNNAMED",
    "--add-opens=java.base/java.util=ALL-UNNAMED",
    "--add-opens=java.base/java.util.concurrent=ALL-UNNAMED",
    "--add-opens=java.base/java.util.concurrent.atomic=ALL-UNNAMED",
    "--add-opens=java.base/jdk.internal.ref=ALL-UNNAMED",
    "--add-opens=java.base/sun.nio.ch=ALL-UNNAMED",
    "--add-opens=java.base/sun.nio.cs=ALL-UNNAMED",
    "--add-opens=java.base/sun.security.action=ALL-UNNAMED",
    "--add-opens=java.base/sun.util.calendar=ALL-UNNAMED",
    "--add-opens=java.security.jgss/sun.security.krb5=ALL-UNNAMED",
    "-Djdk.reflect.useDirectMethodHandle=false",
)


def pyspark_home() -> Path:
    """The installed pyspark package; its ``jars/`` is Spark's classpath (what ``bin/spark-class`` uses)."""
    spec = importlib.util.find_spec("pyspark")
    if spec is None or spec.origin is None:
        raise ServiceError("pyspark is not installed in this Python environment", service=SERVICE)
    return Path(spec.origin).parent


# ------------------------------------------------------------------------------------------- pure rendering


def daemon_properties(secret: str) -> dict[str, object]:
    """Properties of the master and the workers. Pure."""
    return {
        "spark.authenticate": True,
        "spark.authenticate.secret": secret,
        "spark.master.rest.enabled": False,   # no unauthenticated REST submission server
        "spark.ui.killEnabled": False,        # the UIs are read-only
        "spark.worker.cleanup.enabled": True,  # finished applications' work dirs
        "spark.worker.cleanup.appDataTtl": 24 * 3600,
    }


def app_properties(secret: str) -> dict[str, object]:
    """What an application needs to join the cluster (spark-submit reads it from a properties file). Pure."""
    return {"spark.authenticate": True, "spark.authenticate.secret": secret}


def master_args(*, port: int, ui_port: int, properties_file: Path) -> list[str]:
    return ["--host", ADDRESS, "--port", str(port), "--webui-port", str(ui_port),
            "--properties-file", str(properties_file)]


def worker_args(*, master_url: str, ui_port: int, cores: int, memory: str, work_dir: Path,
                properties_file: Path) -> list[str]:
    return ["--host", ADDRESS, "--webui-port", str(ui_port), "--cores", str(cores), "--memory", memory,
            "--work-dir", str(work_dir), "--properties-file", str(properties_file), master_url]


# ------------------------------------------------------------------------------------------- clients


def local_master_url(ctx: StackContext) -> str:
    return f"spark://{ADDRESS}:{ctx.port(SERVICE, 'master_port')}"


def master_ui_url(ctx: StackContext) -> str:
    return f"http://{ADDRESS}:{ctx.port(SERVICE, 'master_ui_port')}"


def worker_ui_port(ctx: StackContext, node: int) -> int:
    return ctx.port(SERVICE, "worker_ui_port", node)


def master_state(ctx: StackContext, timeout_s: float = 3.0) -> dict:
    """The master's own JSON summary: status, workers (with state and web UI address), applications."""
    response = requests.get(f"{master_ui_url(ctx)}/json/", timeout=timeout_s)
    response.raise_for_status()
    return response.json()


def is_master_up(ctx: StackContext) -> bool:
    """Whether this stack's master process is running (cheap: no network call)."""
    return ctx.settings.stack.spark_workers > 0 and process.is_running(_master(ctx))


def _write_private(path: Path, text: str) -> None:
    """Write a file readable by its owner only (it holds the secret), atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    os.chmod(tmp, 0o600)  # in case it already existed with wider permissions
    os.replace(tmp, path)


# ------------------------------------------------------------------------------------------- readiness


def _master_ready(ctx: StackContext) -> bool:
    return master_state(ctx).get("status") == "ALIVE"


def _worker_ready(ctx: StackContext, node: int) -> bool:
    state = master_state(ctx)
    address = f"http://{ADDRESS}:{worker_ui_port(ctx, node)}"
    return state.get("status") == "ALIVE" and any(
        w.get("webuiaddress") == address and w.get("state") == "ALIVE" for w in state.get("workers", [])
    )


def _await_master(ctx: StackContext, name: str) -> None:
    """Workers start once the master answers; otherwise they back off for seconds between attempts."""
    deadline = time.monotonic() + ctx.settings.stack.start_timeout_s
    while True:
        if not process.is_running(_master(ctx)):
            raise ServiceError(f"{name} needs {MASTER}, which is not running (start it first)",
                               service=SERVICE, process=name)
        try:
            if _master_ready(ctx):
                return
        except requests.RequestException:
            pass
        if time.monotonic() > deadline:
            raise ServiceError(f"{name}: {MASTER} did not answer at {master_ui_url(ctx)}", service=SERVICE,
                               process=name)
        time.sleep(0.5)


# ------------------------------------------------------------------------------------------- processes


def scala_version() -> str:
    """Spark's Scala binary version, from its core jar's name (``spark-core_2.12-3.5.9.jar``)."""
    found = sorted((pyspark_home() / "jars").glob("spark-core_*.jar"))
    if not found:
        raise ServiceError(f"no spark-core jar in {pyspark_home() / 'jars'}", service=SERVICE)
    return found[0].name.removeprefix("spark-core_").split("-", 1)[0]


def _env(home: Path) -> dict[str, str]:
    # Workers build executor command lines with Spark's launcher, from $SPARK_HOME/jars; the launcher needs
    # the Scala version spelt out (bin/load-spark-env.sh does that for spark-class).
    return {
        "SPARK_HOME": str(pyspark_home()),
        "SPARK_SCALA_VERSION": scala_version(),
        "SPARK_LOCAL_IP": ADDRESS,           # web UIs bind here (RPC binds to --host)
        "SPARK_PUBLIC_DNS": ADDRESS,         # the addresses the UIs advertise
        "SPARK_LOCAL_DIRS": str(home / "data" / "local"),
    }


def _jvm_options(ctx: StackContext) -> list[str]:
    heap = ctx.heap(SERVICE)
    # The daemons only schedule and heartbeat: the client compiler alone starts faster and takes ~20 MiB less.
    return [f"-Xms{heap}", f"-Xmx{heap}", "-XX:TieredStopAtLevel=1", "-Djava.awt.headless=true",
            *MODULE_OPTIONS]


def _master(ctx: StackContext) -> JvmProcess:
    home = ctx.home(MASTER)
    props = home / "conf" / "spark.properties"
    port, ui_port = ctx.port(SERVICE, "master_port"), ctx.port(SERVICE, "master_ui_port")

    def prepare() -> None:
        _write_private(props, render_properties(daemon_properties(ctx.secrets["spark_secret"])))

    return JvmProcess(
        name=MASTER, service=SERVICE, home=home, main_class=MASTER_CLASS,
        classpath=[f"{pyspark_home() / 'jars'}/*"], jvm_options=_jvm_options(ctx),
        args=master_args(port=port, ui_port=ui_port, properties_file=props), address=ADDRESS,
        ports={"master": port, "ui": ui_port}, env=_env(home),
        is_ready=lambda: _master_ready(ctx), prepare=prepare,
    )


def _worker(ctx: StackContext, node: int) -> JvmProcess:
    spec = versions.service(SERVICE)
    name = f"spark-worker-{node}"
    home = ctx.home(name)
    props = home / "conf" / "spark.properties"
    ui_port = worker_ui_port(ctx, node)

    def prepare() -> None:
        _write_private(props, render_properties(daemon_properties(ctx.secrets["spark_secret"])))
        (home / "data" / "work").mkdir(parents=True, exist_ok=True)
        (home / "data" / "local").mkdir(parents=True, exist_ok=True)
        _await_master(ctx, name)

    return JvmProcess(
        name=name, service=SERVICE, home=home, main_class=WORKER_CLASS,
        classpath=[f"{pyspark_home() / 'jars'}/*"], jvm_options=_jvm_options(ctx),
        args=worker_args(master_url=local_master_url(ctx), ui_port=ui_port, cores=spec["worker_cores"],
                         memory=spec["worker_memory"], work_dir=home / "data" / "work",
                         properties_file=props),
        address=ADDRESS, ports={"ui": ui_port}, env=_env(home),
        is_ready=lambda: _worker_ready(ctx, node), prepare=prepare,
    )


def processes(ctx: StackContext) -> list[JvmProcess]:
    workers = ctx.settings.stack.spark_workers
    if workers == 0:
        return []
    return [_master(ctx), *(_worker(ctx, n) for n in range(1, workers + 1))]
