"""`meterlake schedule`: the settlement calendar of runs on a schedule, each run followed by its report."""
from __future__ import annotations

import click

from meterlake.cli import output
from meterlake.cli.output import json_command


def _line(entry: dict) -> str:
    if entry["status"] == "done":
        return (f"{entry['settlement_date']} {entry['run']}: {entry['settle_status']}, "
                f"{entry['consumption_kwh']:.3f} kWh; report {entry['report']}/")
    return f"{entry['settlement_date']} {entry['run']}: FAILED {entry['error']}"


@click.group()
def schedule() -> None:
    """Settle every run of the settlement calendar once its cut-off has passed, and report it ([schedule])."""


@schedule.command("run")
@click.option("--once", is_flag=True, help="Catch up the due runs and exit (for cron, systemd or Airflow).")
@click.option("--now", "now_text", help="Take this instant as now (ISO 8601 with a zone); implies --once.")
@json_command
@click.pass_obj
def run(ctx, once, now_text):
    """Run the due settlement runs (missed ones first), each followed by settle-diff against the previous run,
    quality and the report; then, unless --once, wait for the next trigger (schedule.cron) until stopped."""
    from meterlake.cli.schedule import Scheduler
    from meterlake.instants import iso_utc, parse_instant

    now = parse_instant(now_text, name="--now") if now_text else None
    scheduler = Scheduler(ctx.settings, clock=(lambda: now) if now else None)
    if once or now:
        done = scheduler.tick()
    else:
        output.progress(f"schedule: {ctx.settings.schedule.cron} ({ctx.settings.schedule.timezone}); next "
                        f"{iso_utc(scheduler.next_trigger())}; Ctrl-C stops")
        done = scheduler.serve(output.stop_event(on_signals=True))
    failed = [e for e in done if e["status"] != "done"]
    result = {"ran": done, "failed": len(failed), "next_trigger_utc": iso_utc(scheduler.next_trigger()),
              "record": f"{scheduler.lake.root}/_jobs/schedule/runs.json"}
    summary = "\n".join(_line(e) for e in done) or "no run was due"
    return result, summary
