"""`meterlake stack`: the local Kafka/Cassandra/HDFS/Spark stack, one JVM process per node, like ccm."""
from __future__ import annotations

import click

from meterlake.cli import output
from meterlake.cli.output import json_command


def _settings(ctx, **overrides):
    """The remembered topology of this state dir (if any), with the command's options on top."""
    from infra.local import stack as stack_mod

    settings = stack_mod.remembered(ctx.configured)
    overrides.setdefault("services", None)
    if overrides["services"] is None:  # sizes are remembered; which services to start comes from the config
        overrides["services"] = ctx.configured.stack.services
    update = {k: v for k, v in overrides.items() if v is not None}
    if not update:
        return settings
    stack = settings.stack.model_copy(update=update)
    return settings.model_copy(update={"stack": stack})


def _human_bytes(n: int | None) -> str:
    if n is None:
        return "-"
    return f"{n / 2**20:,.0f} MiB"


def _table(rows: list[dict]) -> str:
    if not rows:
        return "no local stack processes"
    lines = [f"{'NAME':<14} {'SERVICE':<10} {'STATE':<9} {'ADDRESS':<22} {'PID':>8} {'RSS':>10}"]
    for r in rows:
        port = next(iter(r["ports"].values()), "")
        lines.append(f"{r['name']:<14} {r['service']:<10} {r['state']:<9} {r['address'] + ':' + str(port):<22} "
                     f"{r['pid'] or '-':>8} {_human_bytes(r['rss_bytes']):>10}")
    total = sum(r["rss_bytes"] or 0 for r in rows)
    lines.append(f"total resident memory: {_human_bytes(total)}")
    return "\n".join(lines)


@click.group()
def stack() -> None:
    """Start, stop and inspect the local stack of real services (JVM processes on loopback).

    Jars come from Maven Central into a cache outside the repository (paths.jar_cache); each process has its own
    conf, data, log and PID file under paths.state_dir. Credentials are generated on first `up`.
    """


@stack.command("up")
@click.option("--kafka-brokers", type=click.IntRange(1, 5), help="Kafka KRaft nodes (broker+controller).")
@click.option("--cassandra-nodes", type=click.IntRange(1, 5), help="Cassandra nodes on 127.0.0.1..n.")
@click.option("--hdfs-datanodes", type=click.IntRange(1, 5), help="HDFS DataNodes beside the one NameNode.")
@click.option("--spark-workers", type=click.IntRange(0, 4), help="Standalone Spark workers (0: local[*] only).")
@click.option("--services", help="Comma-separated subset: kafka,cassandra,hdfs,s3,spark.")
@json_command
@click.pass_obj
def up(ctx, kafka_brokers, cassandra_nodes, hdfs_datanodes, spark_workers, services):
    """Start every service (idempotent) and wait until each really answers."""
    from infra.local import stack as stack_mod

    svc = [s.strip() for s in services.split(",")] if services else None
    settings = _settings(ctx, kafka_brokers=kafka_brokers, cassandra_nodes=cassandra_nodes,
                         hdfs_datanodes=hdfs_datanodes, spark_workers=spark_workers, services=svc)
    output.progress(f"starting {', '.join(settings.stack.services)} under {settings.state_dir} ...")
    rows = stack_mod.up(settings)
    return {"processes": rows}, _table(rows)


@stack.command("down")
@json_command
@click.pass_obj
def down(ctx):
    """Stop every process this stack started (by PID); leaves none behind. Data stays."""
    from infra.local import stack as stack_mod

    stopped = stack_mod.down(ctx.configured)
    return {"stopped": stopped}, (f"stopped {len(stopped)} process(es)" if stopped else "nothing was running")


@stack.command("status")
@json_command
@click.pass_obj
def status(ctx):
    """Each process with its service, state, address, PID and resident memory."""
    from infra.local import stack as stack_mod

    rows = stack_mod.status(ctx.configured)
    return {"processes": rows}, _table(rows)


@stack.command("logs")
@click.argument("name")
@click.option("--tail", default=50, show_default=True, help="Lines from the end of the log.")
@json_command
@click.pass_obj
def logs(ctx, name, tail):
    """Show the end of one process's log (e.g. `meterlake stack logs cassandra-2`)."""
    from infra.local import stack as stack_mod

    result = stack_mod.logs(ctx.configured, name, tail)
    return result, "\n".join(result["lines"])


@stack.command("kill")
@click.argument("name")
@json_command
@click.pass_obj
def kill(ctx, name):
    """SIGKILL one process, as a crash would; its data stays for `start NAME`."""
    from infra.local import stack as stack_mod

    result = stack_mod.kill(ctx.configured, name)
    return result, f"{name}: {result['state']}"


@stack.command("start")
@click.argument("name")
@json_command
@click.pass_obj
def start(ctx, name):
    """Start one stopped or killed process with its data, and wait until it answers."""
    from infra.local import stack as stack_mod

    result = stack_mod.start(ctx.configured, name)
    return result, f"{name}: {result['state']} (pid {result['pid']})"


@stack.command("fetch")
@click.option("--services", help="Comma-separated subset: kafka,cassandra,hdfs,s3,spark.")
@json_command
@click.pass_obj
def fetch(ctx, services):
    """Resolve the pinned jars from Maven Central into the jar cache (the first run takes a few minutes)."""
    from infra.local import stack as stack_mod

    svc = [s.strip() for s in services.split(",")] if services else list(stack_mod.SERVICES)
    output.progress("resolving jars from Maven Central (cached after the first run) ...")
    result = stack_mod.fetch(ctx.configured, svc)
    return {"jars": result}, "\n".join(f"{k}: {v}" for k, v in result.items())
