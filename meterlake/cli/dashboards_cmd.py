"""`meterlake dashboards`: Apache Superset with the dashboards of infra/superset/assets, as a local process."""
from __future__ import annotations

import click

from meterlake.cli import output
from meterlake.cli.output import json_command


def _summary(result: dict) -> str:
    proc = result.get("process") or {}
    lines = [f"superset: {proc.get('state', 'stopped')} at {result['url']} (pid {proc.get('pid') or '-'})",
             f"warehouse: {result['warehouse']}" + ("" if result["warehouse_exists"] else " (missing: build the "
                                                    "dbt models or `meterlake dashboards lake-views`)"),
             f"log in as admin or analyst; passwords in {result['credentials']} "
             "(superset_admin_password, superset_analyst_password)"]
    lines += [f"  {d['title']}: {d['url']}" for d in result["dashboards"]]
    return "\n".join(lines)


@click.group()
def dashboards() -> None:
    """Apache Superset on loopback, its dashboards imported from the repository (infra/superset/assets).

    Superset runs from its own virtualenv (`make superset-venv`) with its metadata under paths.state_dir; it reads
    the warehouse DuckDB file (paths.warehouse) read-only. Passwords are generated into the stack's secrets file.
    """


@dashboards.command("up")
@json_command
@click.pass_obj
def up(ctx):
    """Start Superset (idempotent), wait until it answers, and import the dashboards if their YAML changed."""
    from infra.superset import instance

    output.progress(f"starting superset under {ctx.settings.state_dir} ...")
    result = instance.up(ctx.settings)
    return result, _summary(result) + ("\ndashboards imported" if result["imported"] else "\ndashboards unchanged")


@dashboards.command("down")
@json_command
@click.pass_obj
def down(ctx):
    """Stop the Superset process this stack started (by PID). Its metadata stays."""
    from infra.superset import instance

    stopped = instance.down(ctx.settings)
    return {"stopped": stopped}, (f"stopped superset (pid {stopped[0]['pid']})" if stopped else "superset was not "
                                  "running")


@dashboards.command("status")
@json_command
@click.pass_obj
def status(ctx):
    """Superset's process, URL, dashboards and where the credentials are."""
    from infra.superset import instance

    result = instance.status(ctx.settings)
    return result, _summary(result)


@dashboards.command("export")
@click.option("--out", type=click.Path(file_okay=False), help="Bundle directory to write (default: the repository's "
              "infra/superset/assets).")
@json_command
@click.pass_obj
def export(ctx, out):
    """Write the running instance's dashboards, charts, datasets and database back to YAML for review."""
    from pathlib import Path

    from infra.superset import instance

    result = instance.export(ctx.settings, Path(out) if out else instance.ASSETS)
    return result, (f"{result['dashboards']} dashboards exported to {result['assets']}: "
                    f"{len(result['written'])} files changed, {len(result['added'])} new")


@dashboards.command("lake-views")
@json_command
@click.pass_obj
def lake_views(ctx):
    """Publish a warehouse file of views over the local lake's job outputs (while the dbt marts are not built)."""
    from infra.superset import warehouse

    result = warehouse.publish_lake_views(ctx.settings)
    return result, f"{result['warehouse']}: views {', '.join(result['views']) or '(none: no job outputs)'}"
