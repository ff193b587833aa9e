"""`meterlake models`: the dbt project on the lake (dbt/) with the platform's configuration.

Run: ``meterlake models build`` (DuckDB, then the warehouse ``paths.warehouse`` is published atomically),
``meterlake models build --target spark`` (the Spark session, for a large or HDFS lake),
``meterlake models build --select fct_daily_consumption+``; add ``--json`` for one JSON object. The work is in
:mod:`meterlake.warehouse`; the marts are described in dbt/README.md.
"""
from __future__ import annotations

import click

from meterlake.cli.output import json_command, progress
from meterlake.errors import MeterlakeError
from meterlake.warehouse import TARGETS


@click.group("models")
def models() -> None:
    """The dbt models on the lake: staging, intermediate and marts, on DuckDB (default) or Spark."""


@models.command("build")
@click.option("--target", type=click.Choice(TARGETS), default="duckdb", show_default=True,
              help="duckdb: embedded, publishes paths.warehouse; spark: the Spark session (spark.master).")
@click.option("--select", "select", multiple=True, help="dbt node selection, e.g. 'marts.consumption' or "
                                                         "'fct_daily_consumption fct_load_profile' (repeatable).")
@click.option("--exclude", "exclude", multiple=True, help="dbt nodes to leave out, e.g. 'test_type:generic' "
                                                           "(repeatable).")
@click.option("--full-refresh", is_flag=True, help="Rebuild the incremental marts from scratch.")
@json_command
@click.pass_obj
def models_build(ctx, target: str, select: tuple[str, ...], exclude: tuple[str, ...], full_refresh: bool):
    """Build and test the dbt project (dbt build) on the lake paths.lake; the incremental marts rebuild only the
    settlement dates whose lake files changed."""
    from meterlake import warehouse

    progress(f"dbt build on {target} over {ctx.settings.lake_url}…")
    # dbt takes several selectors in one --select, separated by spaces
    select_list = [word for value in select for word in value.split()]
    exclude_list = [word for value in exclude for word in value.split()]
    out = warehouse.build(ctx.settings, target, select_list or None, exclude=exclude_list or None,
                          full_refresh=full_refresh)
    if not out["success"]:
        failed = [n["name"] for n in out["nodes"] if n["status"] in ("error", "fail", "runtime error")]
        raise MeterlakeError(f"dbt build failed on {target}: {out['error']}", target=target, failed=failed,
                             counts=out["counts"])
    counts = ", ".join(f"{n} {status}" for status, n in sorted(out["counts"].items()))
    where = f"; published {out['published']}" if out["published"] else ""
    return out, f"dbt build on {target}: {counts} in {out['seconds']:.1f} s{where}"
