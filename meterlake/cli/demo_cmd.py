"""`meterlake demo`: a supplier's fortnight through the whole platform (what `make demo` runs)."""
from __future__ import annotations

import click

from meterlake.cli.output import json_command, parse_date


@click.command()
@click.option("--meters", default=1000, show_default=True, help="Meters in the synthetic portfolio.")
@click.option("--days", default=14, show_default=True, help="Days of reads.")
@click.option("--start", default="2026-10-18", show_default=True,
              help="First settlement date (the default fortnight holds the autumn clock change, 2026-10-25: "
                   "50 periods).")
@click.option("--seed", default=7, show_default=True, help="Generator seed (same seed, same files).")
@click.option("--no-dashboards", is_flag=True, help="Do not start Superset.")
@json_command
@click.pass_obj
def demo(ctx, meters: int, days: int, start: str, seed: int, no_dashboards: bool):
    """Run a supplier's fortnight through the platform and print what each stage did.

    Local stack (Kafka, Cassandra) -> files generated (flat, Economy 7 and dynamic-tariff accounts; late,
    duplicate, corrected and bad files) -> ingest -> Cassandra and the Parquet lake -> clean -> settle SF -> late
    files -> settle R1 and the SF->R1 diff -> bills -> dbt marts -> Superset dashboards -> the settlement report.
    A second run changes nothing and prints the same numbers. Leaves the stack and Superset running
    (`make demo-down` stops them). Progress and timings go to stderr.
    """
    from meterlake.cli import demo as demo_mod
    from meterlake.errors import UsageError

    if meters < 1 or days < 1:
        raise UsageError("--meters and --days must be at least 1")
    plan = demo_mod.Plan(meters=meters, days=days, start=parse_date(start), seed=seed, dashboards=not no_dashboards)
    result = demo_mod.run(ctx.configured, plan)
    return result, demo_mod.summary(result)
