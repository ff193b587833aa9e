"""`meterlake mdd`, `meterlake tariffs`, `meterlake accounts` (billing's reference data) and `meterlake job bill`.

Run: ``meterlake mdd load DIR``, ``meterlake tariffs load FILE...``, ``meterlake accounts load FILE``,
``meterlake job bill --from D --to D [--account A]``; add ``--json`` for one JSON object. The work is in
:mod:`jobs.bill`; the tables and columns are described in docs/jobs.md ("Billing").
"""
from __future__ import annotations

import click

from meterlake.cli.job_cmd import job, spark_job
from meterlake.cli.output import json_command, parse_date, progress


@click.group("mdd")
def mdd() -> None:
    """Elexon market domain data: SSCs, time pattern regimes and their clock intervals (the registers' windows)."""


@mdd.command("load")
@click.argument("directory", type=click.Path(exists=True, file_okay=False))
@json_command
@click.pass_obj
def mdd_load(ctx, directory: str):
    """Load an MDD release's CSV files (e.g. ../shared/realdata/elexon/mdd_377) into the lake."""
    from jobs.bill import inputs

    out = inputs.load_mdd(ctx.settings, directory)
    rows = ", ".join(f"{n} {k}" for k, n in out["rows"].items())
    return out, f"{out['loaded']} rows loaded from {directory}: {rows}"


@click.group("tariffs")
def tariffs() -> None:
    """Tariffs: flat, time-of-use (a rate per register of the SSC) and dynamic (a price per half-hour)."""


@tariffs.command("load")
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@json_command
@click.pass_obj
def tariffs_load(ctx, files: tuple[str, ...]):
    """Load tariff TOML files (and dynamic tariffs' price files, checked against the settlement calendar)."""
    from jobs.bill import inputs

    out = inputs.load_tariffs(ctx.settings, list(files))
    lines = [f"{out['loaded']} tariff(s) loaded"] + [
        f"  {t['tariff']} ({t['kind']}): {t['rates']} rate(s), {t['prices']} prices, {t['defects']} defect(s)"
        for t in out["tariffs"]] + [f"  defect {d['tariff']} {d['local_date']} {d['kind']}: {d['detail']}"
                                    for d in out["defects"]]
    return out, "\n".join(lines)


@click.group("accounts")
def accounts() -> None:
    """Accounts: which meter point is billed on which tariff, from when, on which bill day."""


@accounts.command("load")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--replace", is_flag=True, help="Drop the stored accounts before loading (default: merge).")
@json_command
@click.pass_obj
def accounts_load(ctx, file: str, replace: bool):
    """Load an accounts CSV (account, meter_point, tariff, effective_from[, effective_to, bill_day])."""
    from jobs.bill import inputs

    out = inputs.load_accounts(ctx.settings, file, replace=replace)
    return out, (f"{out['loaded']} rows loaded from {file}; {out['rows']} rows for {out['accounts']} account(s) "
                 "stored")


@spark_job(job, "bill")
def job_bill(ctx, start: str, end: str, account: str | None, summary: bool, master: str | None, force: bool):
    """Bills per account and bill period: energy per band, standing charge, VAT -> billing/."""
    from jobs.bill import job as bill

    span = parse_date(start), parse_date(end)
    progress("billing (Spark)…")
    out = bill.run(ctx.settings, *span, account=account, master=master, force=force, summary=summary)
    lines = [out["message"]] + [
        f"  {b['account']} {b['bill_from']}..{b['bill_to']} {b['tariff']:<12} {b['energy_kwh']:>10.3f} kWh "
        f"total {b['total_p']:>10.2f} p {b['status']}" for b in out.get("bills", [])[:50]]
    lines += [f"  defect {d['tariff']} {d['local_date']} {d['kind']}: {d['detail']}" for d in out["defects"]]
    return out, "\n".join(lines)


@spark_job(job, "bill-check")
def job_bill_check(ctx, start: str, end: str, master: str | None):
    """Register reconciliation: each register's advance vs the half-hourly energy in its windows."""
    from jobs.bill import check

    span = parse_date(start), parse_date(end)
    progress("reconciling registers (Spark)…")
    out = check.run(ctx.settings, *span, master=master)
    lines = [out["message"]] + [
        f"  {c['meter_point']} {c['register']:<3} {c['from']:%Y-%m-%d %H:%M}..{c['to']:%Y-%m-%d %H:%M} register "
        f"{c['register_kwh']} kWh, half-hourly {c['hh_kwh']} kWh: {c['status']}" for c in out["checks"]
        if c["status"] != "ok"][:50]
    return out, "\n".join(lines)
