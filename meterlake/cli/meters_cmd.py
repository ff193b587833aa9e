"""`meterlake meters`: settings written to meters (read interval, tariff, prepay mode and credit, supply).

Run: ``meterlake meters command MPAN KIND --param k=v``, ``meterlake meters run``, ``meterlake meters gateway``,
``meterlake meters show MPAN``; add ``--json`` for one JSON object. The work is in :mod:`streaming.commands`.
"""
from __future__ import annotations

import click

from meterlake.cli.output import json_command, parse_date, progress, stop_event
from meterlake.errors import UsageError
from streaming.commands.model import KINDS  # pure, stdlib only: cheap to import for --help


@click.group("meters")
def meters() -> None:
    """Commands to meters: submit, send and follow up (retries, expiry), a gateway simulator, settings."""


def _params(pairs: tuple[str, ...]) -> dict[str, str]:
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"--param {pair!r} is not k=v", value=pair)
        out[key.strip()] = value
    return out


@meters.command("command")
@click.argument("meter_point")
@click.argument("kind", type=click.Choice(list(KINDS)))
@click.option("--param", "params", multiple=True, metavar="K=V",
              help="A parameter (repeatable): interval=30min|daily|monthly, tariff=ID, windows=HH:MM-HH:MM[,…], "
                   "mode=credit|prepayment, amount_pence=N, state=arm|disconnect.")
@click.option("--not-before", help="Do not send before this instant (ISO 8601 with a zone).")
@click.option("--idempotency-key", help="A key of yours: submitting again with it gives the same command.")
@click.option("--operator", help="Who asks (default: meters.operator); supply and credit commands need one.")
@click.option("--reason", help="Why (recorded); supply and credit commands need one.")
@json_command
@click.pass_obj
def meters_command(ctx, meter_point: str, kind: str, params: tuple[str, ...], not_before: str | None,
                   idempotency_key: str | None, operator: str | None, reason: str | None):
    """Submit a command for METER_POINT (validated against its registration; refused with a reason if it
    cannot apply). `meters run` sends it."""
    from meterlake.instants import parse_instant
    from streaming.commands import service

    when = parse_instant(not_before, name="--not-before") if not_before else None
    tracked, duplicate = service.submit(ctx.settings, meter_point, kind, _params(params), not_before=when,
                                        idempotency_key=idempotency_key, operator=operator, reason=reason)
    out = {**{k: v for k, v in service.describe(tracked).items() if k != "history"}, "duplicate": duplicate}
    verb = "already submitted as" if duplicate else "submitted:"
    return out, f"{verb} {out['command_id']} {kind} {out['params']} for {meter_point} ({out['state']})"


@meters.command("show")
@click.argument("meter_point")
@click.option("--limit", type=click.IntRange(0), default=20, show_default=True, help="Latest commands listed.")
@json_command
@click.pass_obj
def meters_show(ctx, meter_point: str, limit: int):
    """A meter's registration, desired and confirmed settings, pending commands and latest commands."""
    from streaming.commands import service

    out = service.show(ctx.settings, meter_point, limit=limit)
    lines = [f"{meter_point}:"]
    for setting in sorted(set(out["desired"]) | set(out["confirmed"])):
        desired = out["desired"].get(setting, {})
        confirmed = out["confirmed"].get(setting, {})
        lines.append(f"  {setting}: desired {_value(desired)}, confirmed {_value(confirmed)}")
    lines.append(f"  credit: {out['credit']['confirmed_pence']}p confirmed, {out['credit']['pending_pence']}p pending")
    lines += [f"  pending {c['command_id']} {c['kind']} {c['params']} ({c['state']}, attempt {c['attempt']})"
              for c in out["pending"]]
    return out, "\n".join(lines)


def _value(setting: dict) -> str:
    shown = {k: v for k, v in setting.items() if k not in ("command_id", "confirmed_at")}
    return ", ".join(f"{k}={v}" for k, v in shown.items()) or "-"


@meters.command("run")
@click.option("--until-idle", is_flag=True, help="Exit once no command is open (else run until Ctrl-C).")
@click.option("--max-seconds", type=click.FloatRange(0, min_open=True), help="Exit after this long.")
@json_command
@click.pass_obj
def meters_run(ctx, until_idle: bool, max_seconds: float | None):
    """The service: send due commands, retry unanswered ones (same id) after meters.ack_timeout_s, expire them
    after meters.max_attempts sends or meters.expire_after_s; record every transition."""
    from streaming.commands import service

    stop = stop_event(on_signals=True)
    if not until_idle:
        progress(f"sending commands on {ctx.settings.meters.commands_topic}; Ctrl-C to stop")
    out = service.run(ctx.settings, until_idle=until_idle, max_seconds=max_seconds, stop=stop).as_dict()
    return out, (f"{out['sent']} sent, {out['retried']} retried; {out['acknowledged']} acknowledged, "
                 f"{out['rejected']} rejected, {out['expired']} expired; {out['open']} still open")


@meters.command("gateway")
@click.option("--delay", "delay_s", type=click.FloatRange(0), help="Seconds before a meter answers "
              "(default: meters.gateway_delay_s).")
@click.option("--reject-rate", type=click.FloatRange(0, 1), help="Share of commands rejected.")
@click.option("--drop-rate", type=click.FloatRange(0, 1), help="Share of sends never answered.")
@click.option("--seed", type=int, help="Seed of the rejections and drops (default: meters.gateway_seed).")
@click.option("--devices", type=click.Path(dir_okay=False), help="The meters' state file "
              "(default: <state_dir>/gateway/devices.json).")
@click.option("--max-seconds", type=click.FloatRange(0, min_open=True), help="Exit after this long.")
@click.option("--idle-exit", "idle_exit_s", type=click.FloatRange(0, min_open=True),
              help="Exit after this many seconds without a command.")
@json_command
@click.pass_obj
def meters_gateway(ctx, delay_s, reject_rate, drop_rate, seed, devices, max_seconds, idle_exit_s):
    """A device gateway simulator: answer commands (ack or reject) after a delay, drop some sends, and keep
    what each meter applied (once per command)."""
    from streaming.commands import gateway

    stop = stop_event(on_signals=True)
    progress(f"answering commands on {ctx.settings.meters.commands_topic}; Ctrl-C to stop")
    out = gateway.run(ctx.settings, delay_s=delay_s, reject_rate=reject_rate, drop_rate=drop_rate, seed=seed,
                      devices=devices, stop=stop, max_seconds=max_seconds, idle_exit_s=idle_exit_s).as_dict()
    return out, (f"{out['received']} commands: {out['acknowledged']} acknowledged, {out['rejected']} rejected, "
                 f"{out['dropped']} dropped, {out['already_applied']} delivered again")


@meters.command("tariff-changes")
@click.option("--since", required=True, help="First UK day (YYYY-MM-DD) of confirmations.")
@click.option("--until", help="Last UK day (default: --since).")
@click.option("--load", is_flag=True, help="Merge the account rows the changes make into the lake's accounts "
                                           "(`accounts load`'s table): the next `job bill` uses them.")
@click.option("--accounts", "accounts_path", type=click.Path(exists=True, dir_okay=False),
              help="Billing's accounts CSV: write the account rows the changes make (needs --out).")
@click.option("--out", type=click.Path(dir_okay=False), help="Where to write those rows (an accounts CSV).")
@json_command
@click.pass_obj
def meters_tariff_changes(ctx, since: str, until: str | None, load: bool, accounts_path: str | None,
                          out: str | None):
    """Tariff changes the meters confirmed, by UK day; with --load, stored as account rows for billing (a change
    applies from the day the meter confirmed it); with --accounts, written as such rows to a CSV."""
    from streaming.commands import service

    lake_accounts = None
    if load:
        from jobs.bill import inputs

        source = f"meters tariff-changes {since}"
        lake_accounts = (lambda mps: inputs.accounts_of(ctx.settings, mps),
                         lambda rows: inputs.store_accounts(ctx.settings, rows, source))
    first = parse_date(since)
    data = service.tariff_changes(ctx.settings, first, parse_date(until) if until else first,
                                  accounts_path=accounts_path, out=out, lake_accounts=lake_accounts)
    summary = f"{len(data['changes'])} confirmed tariff change(s) {data['since']} … {data['until']}"
    if data["out"]:
        summary += f"; {data['rows']} account row(s) written to {data['out']}, {len(data['unmatched'])} unmatched"
    if data["accounts"] == "lake":
        summary += f"; {data['rows']} account row(s) loaded into the lake, {len(data['unmatched'])} unmatched"
    return data, summary
