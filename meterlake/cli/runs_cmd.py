"""`meterlake runs`: the recorded runs of the batch jobs (job_runs/ in the lake), with what each read and cost.

Run: ``meterlake runs``, ``meterlake runs --job settle --limit 5``; add ``--json`` for one JSON object. The
records and the meaning of each figure are described in :mod:`meterlake.jobruns` and docs/jobs.md.
"""
from __future__ import annotations

import click

from meterlake.cli.output import json_command


@click.command("runs")
@click.option("--job", help="Only this job's runs (clean, settle, settle-diff, bill, quality, serve, backfill, "
                            "reconcile, dbt-build).")
@click.option("--limit", type=click.IntRange(1), default=20, show_default=True, help="The newest this many runs.")
@json_command
@click.pass_obj
def runs(ctx, job: str | None, limit: int):
    """The batch jobs' runs, newest first: status, wall and CPU seconds, bytes read and cost."""
    from meterlake import jobruns
    from meterlake.lake.files import open_lake

    settings = ctx.settings
    found = jobruns.list_runs(open_lake(settings, settings.lake_url), job, limit)
    lines = [f"{len(found)} run(s)" + (f" of {job}" if job else "")] + [
        f"  {r['started_at']:%Y-%m-%dT%H:%M:%SZ} {r['job']:<11} {r['status']:<9} {r['outcome'] or '':<10} "
        f"{r['wall_s']:>8.1f} s wall {r['cpu_s']:>8.1f} s CPU {r['bytes_read']:>14,} B read  "
        f"cost {r['cost']:.6g} {r['cost_unit']}" for r in found]
    return {"lake": settings.lake_url, "job": job, "runs": found}, "\n".join(lines)
