"""``meterlake demo`` (``make demo``): the main flow on the embedded default, end to end, with a readable summary.

1. The local stack comes up (Kafka, Cassandra, HDFS; Spark runs ``local[*]``).
2. A small synthetic portfolio is generated, spanning the autumn clock change (a 50-period settlement day).
3. Its files are ingested: parsed, validated, bad records quarantined, reads published to Kafka.
4. The store consumes the topic into Cassandra; the mirror writes it to the Parquet lake on HDFS.
5. Spark reads the lake back from HDFS and the store back from Cassandra through the connector, and the two agree.

Grain of the printed table: one row per settlement date.
"""
from __future__ import annotations

import time
from datetime import UTC, date, datetime

from meterlake import calendar
from meterlake.cli.output import progress as output_progress
from meterlake.config import Settings


def _stage(name: str, timings: dict, start: float) -> None:
    timings[name] = round(time.monotonic() - start, 1)
    output_progress(f"  {name}: {timings[name]} s")


def run(settings: Settings, *, meters: int, days: int, start: date, seed: int) -> dict:
    from infra.local import hdfs
    from infra.local import stack as stack_mod
    from infra.local.discover import discover
    from meterlake.generate import Options, generate
    from streaming.ingest.publish import ingest_paths
    from streaming.mirror import consumer as mirror
    from streaming.store import consumer as store

    timings: dict[str, float] = {}
    t = time.monotonic()
    output_progress("1/5 starting the local stack (first run: jars download) ...")
    base = settings.model_copy(update={"stack": settings.stack.model_copy(
        update={"services": ["kafka", "cassandra", "hdfs"]})})
    stack_mod.up(base)
    ctx = stack_mod.context(stack_mod.remembered(base))
    lake_url = hdfs.namenode_uri(ctx) + "/lake/demo"
    settings = discover(stack_mod.remembered(base).model_copy(update={
        "paths": base.paths.model_copy(update={"lake": lake_url})}))
    _stage("stack up", timings, t)

    t = time.monotonic()
    output_progress(f"2/5 generating {meters} meters x {days} days from {start} ...")
    landing = settings.state_dir / "demo" / "landing"
    manifest = generate(Options(meters=meters, days=days, start=start, seed=seed, meters_per_file=max(1, meters // 4)),
                        landing)
    files = sorted(p for p in landing.rglob("*") if p.is_file() and p.suffix in {".csv", ".uff", ".jsonl"})
    _stage("generate", timings, t)

    t = time.monotonic()
    output_progress(f"3/5 ingesting {len(files)} files into Kafka ...")
    results = ingest_paths(files, settings, now=datetime.now(UTC))
    ingested = {"files": len(results), "rejected": sum(r.status == "rejected" for r in results),
                "reads": sum(r.reads for r in results), "quarantined": sum(r.quarantined for r in results),
                "duplicates": sum(r.duplicates for r in results)}
    _stage("ingest", timings, t)

    t = time.monotonic()
    output_progress("4/5 storing into Cassandra and mirroring into the Parquet lake on HDFS ...")
    stored = store.run(settings, until_caught_up=True)
    mirrored = mirror.run(settings, until_caught_up=True)
    _stage("store + mirror", timings, t)

    t = time.monotonic()
    output_progress("5/5 reading back with Spark: the lake from HDFS, the store through the connector ...")
    per_day = _read_back(settings, lake_url)
    _stage("spark read-back", timings, t)
    return {
        "lake": lake_url,
        "generated": {"meters": meters, "days": days, "start": start.isoformat(), "files": len(files),
                      "defects": len(manifest["defects"])},
        "ingested": ingested,
        "stored": stored.as_dict(),
        "mirrored": mirrored.to_json(),
        "days": per_day,
        "seconds": timings,
    }


def _read_back(settings: Settings, lake_url: str) -> list[dict]:
    from pyspark.sql import functions as F

    from jobs import lakeio
    from jobs.clean import vee
    from meterlake.spark import build_spark, cassandra_conf

    spark = build_spark("meterlake-demo", settings, master="local[*]")
    try:
        # the live files of every date (the manifests' rule), then the live version of every read (the jobs' rule)
        jl = lakeio.open_job_lake(settings, lake_url)
        reads = lakeio.read_lake_days(spark, jl, {d: frozenset({"interval"}) for d in jl.lake.dates()})
        live = vee.live_reads(reads)
        from_lake = (live.groupBy("settlement_date")
                     .agg(F.max("settlement_period").alias("periods"), F.count("*").alias("lake_reads"),
                          F.round(F.sum(F.when(F.col("unit") == "kWh", F.col("value"))), 3).alias("lake_kwh"),
                          F.countDistinct("meter_point").alias("meters")))
        for k, v in cassandra_conf(settings).items():
            spark.conf.set(k, v)
        sets = (spark.read.format("org.apache.spark.sql.cassandra")
                .options(keyspace=settings.cassandra.keyspace, table="hh_sets").load())
        from_store = (sets.select("settlement_date", F.explode("values").alias("period", "v"))
                      .where(F.col("v").isNotNull())
                      .groupBy("settlement_date").agg(F.count("*").alias("store_reads")))
        rows = from_lake.join(from_store, "settlement_date", "left").orderBy("settlement_date").collect()
    finally:
        spark.stop()
    out = []
    for r in rows:
        d = r["settlement_date"]
        out.append({"settlement_date": d.isoformat(), "periods_in_day": calendar.periods_in_day(d),
                    "max_period_seen": r["periods"], "meters": r["meters"], "lake_reads": r["lake_reads"],
                    "store_reads": r["store_reads"], "lake_kwh": r["lake_kwh"]})
    return out


def summary(result: dict) -> str:
    g, i = result["generated"], result["ingested"]
    lines = [
        f"meterlake demo: {g['meters']} meters x {g['days']} days from {g['start']} ({g['files']} files)",
        f"ingested {i['files']} files ({i['rejected']} rejected whole, to quarantine): {i['reads']:,} reads, "
        f"{i['quarantined']} records quarantined, {i['duplicates']} duplicate lines dropped",
        f"store: {result['stored']['messages']} Kafka messages -> Cassandra rows {result['stored']['rows']}",
        f"lake:  {result['lake']}",
        "",
        f"{'settlement date':<16} {'periods':>7} {'max seen':>8} {'meters':>6} {'lake reads':>10} "
        f"{'store reads':>11} {'lake kWh':>10}",
    ]
    for d in result["days"]:
        lines.append(f"{d['settlement_date']:<16} {d['periods_in_day']:>7} {d['max_period_seen']:>8} "
                     f"{d['meters']:>6} {d['lake_reads']:>10,} {d['store_reads'] or 0:>11,} {d['lake_kwh']:>10,.1f}")
    lines.append("")
    lines.append("timings (s): " + ", ".join(f"{k} {v}" for k, v in result["seconds"].items()))
    lines.append("next: meterlake stack status | meterlake lake stats | meterlake stack down")
    return "\n".join(lines)


