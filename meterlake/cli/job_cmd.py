"""`meterlake job` (the Spark jobs off the lake) and `meterlake registry` (the meter registry they settle by).

Run: ``meterlake registry load registry.csv``, ``meterlake job clean``, ``meterlake job settle --date D --run SF``,
``meterlake job settle-diff --date D --from SF --to R1``, ``meterlake job quality``; add ``--json`` for one JSON
object. Each job is incremental: it does nothing, and says so, for dates whose inputs have not changed. The work
is in :mod:`jobs`; the outputs are described in docs/jobs.md.
"""
from __future__ import annotations

import click

from jobs import options
from meterlake.cli.output import json_command, parse_date, progress
from meterlake.settlement_runs import RUNS


def click_option(o: options.Option):
    """A job's option (:mod:`jobs.options`, the declaration its spark-submit main takes too) as a click option.
    Dates stay text: the body parses them (:func:`parse_date`), so a bad one is the CLI's usage error."""
    typed = {"flag": {"is_flag": True}, "dates": {"multiple": True},
             "run": {"type": click.Choice(RUNS, case_sensitive=True)}, "count": {"type": click.IntRange(0)},
             "files": {"multiple": True, "type": click.Path(exists=True, dir_okay=False)},
             "text": {}, "date": {}}[o.kind]
    if o.kind not in ("flag", "dates", "files"):
        typed |= {"required": o.required, "default": o.default, "show_default": o.default is not None}
    return click.option(o.flag, o.dest, help=o.help or None, **typed)


def spark_job(group: click.Group, name: str):
    """Declare the Spark job command ``name`` of ``group`` from its options in :data:`jobs.options.JOBS`, then
    ``--master``, ``--force`` (where the job takes it) and ``--json``; the body gets the CLI context and each
    option's value by its ``dest``, and returns ``(result, summary)``."""
    job_options = options.JOBS[name]

    def declare(body):
        command = json_command(click.pass_obj(body))
        for option in reversed([*job_options.options, options.MASTER, *([options.FORCE] if job_options.force else [])]):
            command = click_option(option)(command)
        return group.command(name)(command)

    return declare


def _dates(days: tuple[str, ...]) -> list | None:
    return [parse_date(d) for d in days] or None


@click.group("registry")
def registry() -> None:
    """The meter registry: GSP group, supplier, profile class, SSC and LLFC of each meter point, by date."""


@registry.command("load")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--replace", is_flag=True, help="Drop the stored registry before loading (default: merge).")
@json_command
@click.pass_obj
def registry_load(ctx, file: str, replace: bool):
    """Load a registry CSV into the lake (columns: docs/jobs.md); a bad line rejects the whole file."""
    from jobs.registry import job

    out = job.run(ctx.settings, file, replace=replace)
    return out, (f"{out['loaded']} rows loaded from {file}: {out['added']} added, {out['replaced']} replaced; the "
                 f"registry holds {out['rows']} rows for {out['meter_points']} meter points")


@click.group("job")
def job() -> None:
    """Spark jobs off the lake: clean reads, settlement runs and their diffs, data quality, billing."""


@spark_job(job, "clean")
def job_clean(ctx, date: tuple[str, ...], master: str | None, force: bool):
    """Live version of every read, validation flags, gap detection and estimation -> clean_reads."""
    from jobs.clean import job as clean

    progress("cleaning reads (Spark)…")
    out = clean.run(ctx.settings, _dates(date), master=master, force=force)
    return out, out["message"]


@spark_job(job, "settle")
def job_settle(ctx, date: str, run: str, llf: tuple[str, ...], master: str | None, force: bool):
    """Settle a date for a run: consumption per period by GSP group, supplier, profile/measurement class."""
    from jobs.settle import job as settle

    progress(f"settling {date} {run.upper()} (Spark)…")
    out = settle.run(ctx.settings, parse_date(date), run, llf_paths=list(llf), master=master, force=force)
    return out, out["message"]


@spark_job(job, "settle-diff")
def job_settle_diff(ctx, date: str, from_run: str, to_run: str, limit: int, master: str | None, force: bool):
    """Per meter and period, what changed between two runs of a date and why."""
    from jobs.settle_diff import job as settle_diff

    progress(f"comparing {date} {from_run.upper()} -> {to_run.upper()} (Spark)…")
    out = settle_diff.run(ctx.settings, parse_date(date), from_run, to_run, limit=limit, master=master, force=force)
    lines = [out["message"]] + [f"  {r['settlement_period']:>2} {r['meter_point']} {r['reason']:<17} "
                                f"{r['from_kwh']} -> {r['to_kwh']}" for r in out["rows"]]
    return out, "\n".join(lines)


@spark_job(job, "quality")
def job_quality(ctx, date: tuple[str, ...], master: str | None, force: bool):
    """Completeness, lateness, estimated share and quarantined reads per meter-day (from clean_reads)."""
    from jobs.quality import job as quality

    progress("measuring data quality (Spark)…")
    out = quality.run(ctx.settings, _dates(date), master=master, force=force)
    return out, out["message"]


@spark_job(job, "backfill")
def job_backfill(ctx, first: str, last: str, meter_point: str | None, master: str | None):
    """Rebuild lake partitions from the Cassandra event store (Spark Cassandra Connector), swapped atomically."""
    from jobs.backfill import job as backfill

    progress(f"rebuilding {first}..{last} from Cassandra (Spark)…")
    out = backfill.run(ctx.settings, parse_date(first), parse_date(last), meter_point=meter_point, master=master)
    done = [d for d in out["dates"] if d["files"]]
    lines = [f"{len(done)} of {len(out['dates'])} date(s) rebuilt from Cassandra in {out['seconds']} s"] + [
        f"  {d['settlement_date']}: {d['reads']:,} reads in {d['files']} file(s), {d['replaced']} file(s) replaced"
        if d["files"] else f"  {d['settlement_date']}: nothing in the store; the lake's partition is left as it is"
        for d in out["dates"]]
    return out, "\n".join(lines)


@spark_job(job, "reconcile")
def job_reconcile(ctx, first: str, last: str, store_group: str, master: str | None):
    """Per meter-day, the Cassandra store and the lake compared: reads, kWh, versions, reads on one side only."""
    from jobs.reconcile import job as reconcile

    progress(f"reconciling {first}..{last}: Cassandra vs the lake (Spark)…")
    out = reconcile.run(ctx.settings, parse_date(first), parse_date(last), store_group=store_group, master=master)
    lines = [out["message"]] + [f"  {d['settlement_date']}: {d['meters']} meters, lake {d['lake_reads']:,} reads "
                                f"{d['lake_kwh']:,.3f} kWh, store {d['store_reads']:,} reads {d['store_kwh']:,.3f} "
                                f"kWh, {d['differences']} difference(s)" for d in out["dates"]]
    return out, "\n".join(lines)


@spark_job(job, "serve")
def job_serve(ctx, first: str, last: str, master: str | None):
    """Serving aggregates off the lake into Cassandra (daily consumption per meter), as idempotent upserts."""
    from jobs.serve import job as serve
    from meterlake import clients, keyspace

    session = clients.cassandra_session(ctx.settings)  # the store's keyspace migration creates the serving tables
    try:
        keyspace.ensure(session, ctx.settings.cassandra.keyspace, ctx.settings.cassandra.replication_factor)
    finally:
        session.cluster.shutdown()
    progress(f"serving {first}..{last}: the lake's aggregates into Cassandra (Spark)…")
    out = serve.run(ctx.settings, parse_date(first), parse_date(last), master=master)
    return out, (f"{out['from']}..{out['to']}: " + ", ".join(f"{t} {n:,} rows" for t, n in out["tables"].items())
                 + f" upserted in {out['seconds']} s")
