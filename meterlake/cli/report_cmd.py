"""`meterlake report`: reports rendered from the jobs' outputs into the lake (reports/<date>/<run>/)."""
from __future__ import annotations

import click

from meterlake.cli.output import json_command, parse_date


@click.group()
def report() -> None:
    """Render reports from the lake's job outputs (HTML with plots, PDF, CSV), written back into the lake."""


@report.command("settlement")
@click.option("--date", "day", required=True, help="Settlement date, YYYY-MM-DD.")
@click.option("--run", "run_name", required=True, help="Settlement run: SF, R1, R2, R3, RF or DF.")
@click.option("--format", "formats", default="html,pdf,csv", show_default=True,
              help="Comma-separated: html, pdf, csv.")
@json_command
@click.pass_obj
def settlement(ctx, day, run_name, formats):
    """One run of one settlement date: totals, the period profile against the previous run, the changes since
    it with their reasons, estimated share and quality. Writes reports/<date>/<run>/ with a manifest.json."""
    from reports import settlement as report_mod

    chosen = report_mod.parse_formats(formats)
    result = report_mod.run(ctx.settings, parse_date(day), run_name, chosen)
    names = ", ".join(f["name"] for f in result["files"])
    return result, (f"{result['settlement_date']} {result['run']}: {result['periods']} periods, "
                    f"{result['consumption_kwh']:.3f} kWh; wrote {result['path']}/ ({names}, manifest.json)")
