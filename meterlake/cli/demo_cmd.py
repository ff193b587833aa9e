"""`meterlake demo`: the main flow on the embedded default (what `make demo` runs)."""
from __future__ import annotations

from datetime import date

import click

from meterlake.cli.output import json_command


@click.command()
@click.option("--meters", default=40, show_default=True, help="Meters in the synthetic portfolio.")
@click.option("--days", default=3, show_default=True, help="Days of reads.")
@click.option("--start", default="2026-10-24", show_default=True,
              help="First settlement date (the default spans the autumn clock change: a 50-period day).")
@click.option("--seed", default=7, show_default=True, help="Generator seed (same seed, same files).")
@json_command
@click.pass_obj
def demo(ctx, meters: int, days: int, start: str, seed: int):
    """Run the whole flow on the local stack and print what each stage did.

    Files -> ingest -> Kafka -> Cassandra and the Parquet lake on HDFS -> read back by Spark, from the lake and
    from Cassandra through the connector. Leaves the stack running (`meterlake stack down` stops it).
    """
    from meterlake.cli import demo as demo_mod

    result = demo_mod.run(ctx.configured, meters=meters, days=days, start=date.fromisoformat(start), seed=seed)
    return result, demo_mod.summary(result)
