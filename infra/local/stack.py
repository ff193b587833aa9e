"""The local stack: Kafka, Cassandra, HDFS, an S3-API server and Spark as JVM processes on loopback, under one state
directory.

``up`` is idempotent (running processes are left alone), waits until every process really answers, and fails
naming the service and its log's tail. The topology chosen at ``up`` (brokers, nodes, workers) is remembered in
``state/stack.json`` so later commands (``status``, ``down``, ``kill NAME``) act on the same processes.
"""
from __future__ import annotations

import importlib
import json
import logging
from collections.abc import Iterable
from pathlib import Path
from types import ModuleType

from infra.local import jars, process, secrets
from infra.local.topology import StackContext
from meterlake.config import Settings
from meterlake.errors import MeterlakeError, ServiceError, UsageError

log = logging.getLogger(__name__)

SERVICES = ("kafka", "cassandra", "hdfs", "s3", "spark")
TOPOLOGY_FILE = "stack.json"
SIZE_KEYS = {"kafka_brokers": "kafka", "cassandra_nodes": "cassandra", "hdfs_datanodes": "hdfs",
             "spark_workers": "spark"}
TOPOLOGY_KEYS = ("kafka_brokers", "cassandra_nodes", "hdfs_datanodes", "spark_workers", "services", "port_offset")


def module(service: str) -> ModuleType:
    if service not in SERVICES:
        raise UsageError(f"unknown service {service!r}; one of {', '.join(SERVICES)}")
    return importlib.import_module(f"infra.local.{service}")


def _topology_path(settings: Settings) -> Path:
    return settings.state_dir / TOPOLOGY_FILE


def remembered(settings: Settings) -> Settings:
    """The settings with the topology of the stack last brought up in this state dir, if any."""
    path = _topology_path(settings)
    if not path.is_file():
        return settings
    saved = json.loads(path.read_text())
    stack = settings.stack.model_copy(update={k: saved[k] for k in TOPOLOGY_KEYS if k in saved})
    return settings.model_copy(update={"stack": stack})


def _remember(settings: Settings) -> None:
    """Record the topology; services already up in this state dir stay part of it (so `down` stops them too)."""
    path = _topology_path(settings)
    saved = json.loads(path.read_text()) if path.is_file() else {}
    data = {k: getattr(settings.stack, k) for k in TOPOLOGY_KEYS}
    for key, service in SIZE_KEYS.items():  # sizes of services not being brought up now stay as they were
        if service not in settings.stack.services and key in saved:
            data[key] = saved[key]
    data["services"] = [s for s in SERVICES if s in set(data["services"]) | set(saved.get("services", []))]
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2))


def context(settings: Settings, *, create_secrets: bool = False) -> StackContext:
    data = secrets.load(settings.state_dir, create=create_secrets)
    if data is None:
        raise MeterlakeError(
            f"no local stack in {settings.state_dir} (run `meterlake stack up` first)",
            state_dir=str(settings.state_dir),
        )
    return StackContext(settings=settings, secrets=data)


def processes(ctx: StackContext, services: Iterable[str] | None = None) -> list[process.JvmProcess]:
    chosen = list(services if services is not None else ctx.settings.stack.services)
    out: list[process.JvmProcess] = []
    for service in SERVICES:  # fixed order: dependencies first
        if service in chosen:
            out.extend(module(service).processes(ctx))
    return out


def find(ctx: StackContext, name: str) -> process.JvmProcess:
    """A process of this stack's topology (the services brought up in its state dir) by name."""
    procs = processes(ctx)
    for proc in procs:
        if proc.name == name:
            return proc
    names = ", ".join(p.name for p in procs)
    raise UsageError(f"no process named {name!r} in this stack; processes: {names}")


def fetch(settings: Settings, services: Iterable[str] | None = None) -> dict[str, str]:
    """Resolve the jars of the chosen services (Maven, cached)."""
    chosen = list(services if services is not None else settings.stack.services)
    out = {s: str(jars.resolve(s, settings.jar_cache)) for s in SERVICES if s in chosen}
    if settings.stack.metrics and {"kafka", "cassandra"} & set(chosen):
        out["jmx_exporter"] = str(jars.resolve("jmx_exporter", settings.jar_cache))
    return out


# services whose node count is fixed once their data exists: a Kafka KRaft quorum's voters and a Cassandra ring
# (its superuser disabled on node 1, system_auth not on new nodes) are not grown by starting more processes
FIXED_SIZE = {"kafka": "kafka_brokers", "cassandra": "cassandra_nodes"}


def check_size(settings: Settings) -> None:
    """Refuse at once to start Kafka or Cassandra with a node count other than the one its data in this state dir
    was made with (a UsageError saying what to do)."""
    path = _topology_path(settings)
    saved = json.loads(path.read_text()) if path.is_file() else {}
    for service, key in FIXED_SIZE.items():
        if service not in settings.stack.services or service not in saved.get("services", []):
            continue
        made, asked = saved.get(key, 1), getattr(settings.stack, key)
        if asked == made or not (settings.state_dir / f"{service}-1" / "data").exists():
            continue
        flag = "--" + key.replace("_", "-")
        raise UsageError(
            f"the {service} in {settings.state_dir} was made with {made} node(s); it cannot be resized to {asked} "
            f"(a new node would not join its {'quorum' if service == 'kafka' else 'ring and roles'}). Keep "
            f"{flag} {made}, or start afresh: `meterlake stack down`, then remove {settings.state_dir}/{service}-* "
            f"(its data is lost) or use another paths.state_dir",
            service=service, made_with=made, asked=asked)


def up(settings: Settings) -> list[dict]:
    """Start the chosen services and wait until each answers. A failure stops the processes this call started."""
    chosen = settings.stack.services
    for s in chosen:
        module(s)  # validates names early
    check_size(settings)
    fetch(settings, chosen)
    ctx = context(settings, create_secrets=True)
    _remember(settings)
    started: list[process.JvmProcess] = []
    try:
        _start(ctx, chosen, started)
    except BaseException:
        stopped = process.stop_all(started)
        if stopped:
            log.warning("stack up failed: stopped %s, which it had started", ", ".join(p.name for p in stopped))
        raise
    return status(settings)


def _start(ctx: StackContext, chosen: list[str], started: list[process.JvmProcess]) -> None:
    timeout = ctx.settings.stack.start_timeout_s
    for service in SERVICES:
        if service not in chosen:
            continue
        mod = module(service)
        procs = mod.processes(ctx)
        for proc in procs:
            if not process.is_running(proc):
                for port_name, port in proc.ports.items():
                    if process.port_in_use(proc.address, port):
                        raise ServiceError(
                            f"{proc.name}: {proc.address}:{port} ({port_name} port) is already in use by another "
                            "program; stop it or set stack.port_offset",
                            service=service, process=proc.name, port=port,
                        )
        if getattr(mod, "SEQUENTIAL_START", False):
            for proc in procs:
                _launch(proc, started)
                process.wait_ready([proc], timeout)
        else:
            for proc in procs:
                _launch(proc, started)
            process.wait_ready(procs, timeout)
        after_up = getattr(mod, "after_up", None)
        if after_up is not None:
            after_up(ctx)


def _launch(proc: process.JvmProcess, started: list[process.JvmProcess]) -> None:
    if not process.is_running(proc):
        started.append(proc)
    process.launch(proc)


def down(settings: Settings) -> list[dict]:
    settings = remembered(settings)
    data = secrets.load(settings.state_dir)
    if data is None:
        return []
    ctx = StackContext(settings=settings, secrets=data)
    stopped = []
    # Clients before servers: Spark, then HDFS, Cassandra, Kafka; the nodes of one service together.
    for service in reversed(SERVICES):
        procs = [p for p in processes(ctx) if p.service == service]
        pids = {p.name: process.pid(p) for p in procs}
        for proc in process.stop_all(procs):
            stopped.append({"name": proc.name, "service": proc.service, "pid": pids[proc.name]})
    return stopped


def status(settings: Settings, *, check_ready: bool = True) -> list[dict]:
    settings = remembered(settings)
    data = secrets.load(settings.state_dir)
    if data is None:
        return []
    ctx = StackContext(settings=settings, secrets=data)
    rows = [process.status(p, check_ready=check_ready) for p in processes(ctx)]
    if check_ready:
        for service in GROUPED:
            _check_group(ctx, service, [r for r in rows if r["service"] == service])
    return rows


#: services whose nodes must form one group: Kafka's brokers one cluster, Cassandra's nodes one ring
GROUPED = ("kafka", "cassandra")


def apart(views: dict[str, tuple[str, frozenset] | None], ready: frozenset) -> dict[str, str]:
    """The nodes (by name) whose view of their group (:func:`view` of the service's module: the group's id and
    the members it sees) is not the one group of all the ``ready`` members, each with why: a node that sees
    another group id than the first node's, or misses a ready member (a stopped node may be missing). Pure."""
    ids = [v[0] for _, v in sorted(views.items()) if v is not None]
    out = {}
    for name, seen in sorted(views.items()):
        if seen is None:
            out[name] = "it did not say which group it is in"
        elif seen[0] != ids[0]:
            out[name] = f"it is in another group ({seen[0]}, not {ids[0]})"
        elif not ready <= seen[1]:
            missing = ", ".join(str(m) for m in sorted(ready - seen[1]))
            out[name] = f"it does not see {missing}, which answer{'s' if len(ready - seen[1]) == 1 else ''}"
    return out


def _check_group(ctx: StackContext, service: str, rows: list[dict]) -> None:
    """Mark the ready nodes of ``service`` that are not in its one group (cluster or ring) ``split``."""
    mod = module(service)
    ready = [r for r in rows if r["state"] == "ready"]
    if len(ready) < 2:
        return
    nodes = {r["name"]: int(r["name"].rsplit("-", 1)[1]) for r in ready}
    views: dict[str, tuple[str, frozenset] | None] = {}
    for row in ready:
        try:
            views[row["name"]] = mod.view(ctx, nodes[row["name"]])
        except Exception as exc:  # a node that answered its readiness check and then not this: not known a member
            log.info("%s: %s", row["name"], exc)
            views[row["name"]] = None
    found = apart(views, frozenset(mod.member(ctx, n) for n in nodes.values()))
    for row in ready:
        why = found.get(row["name"])
        if why is not None:
            row["state"] = "split"
            log.warning("%s is not part of the stack's one %s: %s", row["name"],
                        "cluster" if service == "kafka" else "ring", why)


def kill(settings: Settings, name: str) -> dict:
    ctx = context(remembered(settings))
    proc = find(ctx, name)
    was = process.pid(proc)
    process.kill(proc)
    return {"name": name, "service": proc.service, "pid": was, "state": "killed" if was else "not running"}


def start(settings: Settings, name: str) -> dict:
    settings = remembered(settings)
    ctx = context(settings)
    proc = find(ctx, name)
    process.launch(proc)
    process.wait_ready([proc], settings.stack.start_timeout_s)
    return process.status(proc)


def logs(settings: Settings, name: str, tail: int) -> dict:
    ctx = context(remembered(settings))
    proc = find(ctx, name)
    return {"name": name, "log": str(proc.log_file), "lines": process.log_tail(proc, tail).splitlines()}
