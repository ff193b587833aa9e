"""`meterlake ingest`: parse and validate read files (D0010, hh-csv, LCL, device JSON lines); publish them.

Run: ``meterlake ingest PATH... [--dry-run] [--format FORMAT] [--json]``. With ``--json`` the one object is
``{"files": [{"path", "format", "status", "lines", "reads", "quarantined", "duplicates", "reasons"}]}``, one
entry per PATH in order. Without ``--dry-run`` each accepted file is published in one Kafka transaction, and a
rejected one's reason goes to the quarantine topic.

``meterlake ingest watch DIR [--once] [--worker-id W] [--json]``: a worker over a landing directory
(:mod:`streaming.ingest.watch`).

``ingest`` is a group whose first argument, when it is not a subcommand (``watch``), is a PATH: ``meterlake ingest
a.csv --dry-run`` runs the hidden ``files`` subcommand. A file literally named ``watch`` is given as ``./watch``.
The parsing rules live in :mod:`streaming.ingest`; this module parses options and formats answers. The clock is
read once, for the future-timestamp check only (never for a version).
"""
from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import click

from meterlake.cli import output
from meterlake.cli.output import json_command
from meterlake.errors import UsageError
from meterlake.instants import parse_instant

_FORMATS = ("d0010", "hh-csv", "lcl", "device")


def _summary(rows: list[dict], details: dict[str, str]) -> str:
    lines = [f"{'STATUS':<9} {'FORMAT':<7} {'LINES':>9} {'READS':>9} {'QUARANT.':>9} {'DUPL.':>7}  PATH"]
    for r in rows:
        lines.append(f"{r['status']:<9} {r['format'] or '-':<7} {r['lines']:>9,} {r['reads']:>9,} "
                     f"{r['quarantined']:>9,} {r['duplicates']:>7,}  {r['path']}")
        if r["reasons"]:
            lines.append("          " + ", ".join(f"{k}: {v:,}" for k, v in r["reasons"].items()))
        if r["path"] in details:
            lines.append(f"          {details[r['path']]}")
    return "\n".join(lines)


def _format_option(ctx, param, value: str | None) -> str | None:
    if value is None or value in _FORMATS or (value.startswith("layout:") and len(value) > len("layout:")):
        return value
    raise click.BadParameter(f"{value!r} is none of {', '.join(_FORMATS)}, layout:NAME")


class _PathsOrSubcommand(click.Group):
    """A group whose default subcommand, ``files``, takes every argument when the first is not a subcommand."""

    default = "files"

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ctx.help_option_names:
            args = [self.default, *args]
        return super().parse_args(ctx, args)

    def format_usage(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        formatter.write(f"Usage: {ctx.command_path} PATH... [--dry-run] [--format F [--meter-point M]] [--json]\n"
                        f"       {ctx.command_path} watch [DIR] [--once] [--worker-id W] [--json]\n")


@click.group("ingest", cls=_PathsOrSubcommand)
def ingest() -> None:
    """Parse, validate and publish read files; or watch a landing directory as an ingest worker.

    \b
    meterlake ingest PATH... [--dry-run] [--format F] [--now I] [--json]
        Parse and validate files (a directory: every file under it); publish the accepted ones (each in one
        Kafka transaction).
        --dry-run publishes nothing and needs no service. See `meterlake ingest files --help`.
    meterlake ingest watch DIR [--once] [--worker-id W] [--json]
        Claim landed files (Cassandra LWT) and publish each exactly once; archive them (ingest.archive_dir).
    """


@ingest.command("files", hidden=True)
@click.argument("paths", nargs=-1, required=True, metavar="PATH...",
                type=click.Path(exists=True, path_type=Path))
@click.option("--format", "fmt", callback=_format_option, metavar="F",
              help=f"Skip detection: every PATH is this format ({', '.join(_FORMATS)}, or layout:NAME for a "
                   "[ingest.layouts.NAME] of the config).")
@click.option("--meter-point", metavar="MPAN", help="With a layout that has no meter_column: the MPAN of every row.")
@click.option("--dry-run", is_flag=True, help="Parse and validate only; publish nothing (needs no service).")
@click.option("--now", "now_text", metavar="INSTANT",
              help="Validation instant for the future-timestamp check (ISO 8601 with offset; default: the "
                   "clock), e.g. a generated portfolio's valid_as_of.")
@click.option("--batch-rows", type=click.IntRange(1), default=50_000, show_default=True,
              help="Most reads in one batch (memory is bounded by this, not by the file).")
@json_command
@click.pass_obj
def ingest_files(ctx, paths: tuple[Path, ...], fmt: str | None, meter_point: str | None, dry_run: bool,
                 now_text: str | None, batch_rows: int):
    """Parse and validate read files; publish the accepted ones, each in one Kafka transaction.

    Formats (detected from the first line, or --format): d0010 (the D0010 flow), hh-csv (meterlake's
    half-hourly CSV), lcl (LCLid,tstp,energy(kWh/hh)), device (JSON lines). A bad record goes to quarantine
    with a reason; a bad file (wrong trailer count, truncated, unknown flow, not UTF-8) is rejected whole.
    A directory means every file under it, sorted by path, hidden and temporary names (.x, _x, *.tmp, *.part)
    skipped, as `ingest watch` does.

    \b
    Example: meterlake ingest flows/*.uff lcl/MAC000002.csv --dry-run --json
    """
    from streaming.ingest.publish import ingest_paths
    from streaming.ingest.storage import files_under

    paths = tuple(f for p in paths for f in (files_under(p) if p.is_dir() else [p]))
    if fmt is not None and fmt.startswith("layout:"):
        from streaming.ingest.pipeline import register_layout

        name = fmt.removeprefix("layout:")
        layout = ctx.settings.ingest.layouts.get(name)
        if layout is None:
            raise UsageError(f"no layout {name!r} in the config ([ingest.layouts.{name}]); known: "
                             f"{sorted(ctx.settings.ingest.layouts)}", layout=name)
        fmt = register_layout(name, layout, meter_point)
    elif meter_point is not None:
        raise UsageError("--meter-point goes with --format layout:NAME")
    # the validation instant (future timestamps); never a version or an id
    now = parse_instant(now_text, name="--now") if now_text else datetime.now(UTC)
    results = ingest_paths(paths, ctx.settings, now=now, fmt=fmt, dry_run=dry_run, batch_rows=batch_rows,
                           progress=output.progress)
    rows = [r.to_json() for r in results]
    details = {r.path: r.detail for r in results if r.detail}
    return {"files": rows}, _summary(rows, details)


def _watch_summary(data: dict) -> str:
    lines = [f"worker {data['worker']}: {len(data['files'])} file(s) processed, "
             f"{len(data['duplicates'])} duplicate(s), {len(data['announced'])} announced, "
             f"{data['skipped']} claimed elsewhere, {data['released']} left for a later pass (changed or failed), "
             f"{data['passes']} pass(es) in {data['seconds']:.1f}s"]
    for f in data["files"]:
        lines.append(f"  {f['status']:<9} {f['format'] or '-':<7} {f['reads']:>9,} reads  {f['path']}")
    for d in data["duplicates"]:
        lines.append(f"  duplicate {d['path']} (same bytes as {d['duplicate_of']})")
    return "\n".join(lines)


@ingest.command("watch")
@click.argument("directory", required=False, metavar="[DIR]")
@click.option("--once", is_flag=True, help="One pass over DIR (and the claim-check references waiting), then exit.")
@click.option("--worker-id", metavar="W", help="This worker's name in claims (default: ingest.worker_id, else "
                                               "<host>-<pid>).")
@click.option("--now", "now_text", metavar="INSTANT",
              help="Validation instant for the future-timestamp check (default: the clock, per file).")
@json_command
@click.pass_obj
def ingest_watch(ctx, directory: str | None, once: bool, worker_id: str | None, now_text: str | None):
    """Watch a landing directory (local or hdfs://...; default ingest.landing_dir) as one of any number of
    workers: each file is claimed in Cassandra (a TTL lease renewed while working), published once, and archived
    to the lake's raw area (rejected and duplicate files to its quarantine area, with their reason). Files above
    ingest.claim_check_bytes are announced on the files topic and taken from there.

    \b
    Example: meterlake ingest watch landing/ --once --json
    """
    from streaming.ingest.watch import Worker

    now = parse_instant(now_text, name="--now") if now_text else None
    stop = output.stop_event(on_signals=not once)
    with Worker(ctx.settings, directory, worker_id, now=now) as worker:
        if not once:
            output.progress(f"worker {worker.worker_id} watching {worker.storage.landing_dir.url}; Ctrl-C to stop")
        data = worker.run(once=once, stop=stop).to_json()
    return data, _watch_summary(data)
