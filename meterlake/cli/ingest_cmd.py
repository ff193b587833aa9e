"""`meterlake ingest`: parse and validate read files (D0010, hh-csv, LCL, device JSON lines); publish them.

Run: ``meterlake ingest PATH... --dry-run [--format FORMAT] [--json]``. With ``--json`` the one object is
``{"files": [{"path", "format", "status", "lines", "reads", "quarantined", "duplicates", "reasons"}]}``, one
entry per PATH in order. The parsing rules live in :mod:`streaming.ingest`; this module parses options and
formats answers. The clock is read once, for the future-timestamp check only (never for a version).
"""
from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import click

from meterlake.cli import output
from meterlake.cli.output import json_command
from meterlake.errors import UsageError

_FORMATS = ("d0010", "hh-csv", "lcl", "device")


def _instant(text: str) -> datetime:
    try:
        instant = datetime.fromisoformat(text)
    except ValueError:
        raise UsageError(f"--now {text!r} is not an ISO 8601 instant (e.g. 2024-11-01T00:00:00Z)") from None
    if instant.tzinfo is None:
        raise UsageError(f"--now {text!r} has no offset: add Z for UTC")
    return instant


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


@click.command("ingest")
@click.argument("paths", nargs=-1, required=True, metavar="PATH...",
                type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--format", "fmt", type=click.Choice(_FORMATS),
              help="Skip detection: every PATH is this format.")
@click.option("--dry-run", is_flag=True, help="Parse and validate only; publish nothing (needs no service).")
@click.option("--now", "now_text", metavar="INSTANT",
              help="Validation instant for the future-timestamp check (ISO 8601 with offset; default: the "
                   "clock), e.g. a generated portfolio's valid_as_of.")
@click.option("--batch-rows", type=click.IntRange(1), default=50_000, show_default=True,
              help="Most reads in one batch (memory is bounded by this, not by the file).")
@json_command
@click.pass_obj
def ingest(ctx, paths: tuple[Path, ...], fmt: str | None, dry_run: bool, now_text: str | None,
           batch_rows: int):
    """Parse and validate read files; publish the accepted ones (not yet: use --dry-run).

    Formats (detected from the first line, or --format): d0010 (the D0010 flow), hh-csv (meterlake's
    half-hourly CSV), lcl (LCLid,tstp,energy(kWh/hh)), device (JSON lines). A bad record goes to quarantine
    with a reason; a bad file (wrong trailer count, truncated, unknown flow, not UTF-8) is rejected whole.

    \b
    Example: meterlake ingest flows/*.uff lcl/MAC000002.csv --dry-run --json
    """
    from streaming.ingest import FileRejected, ingest_file, validated_file
    from streaming.ingest.publish import publish

    # the validation instant (future timestamps); never a version or an id
    now = _instant(now_text) if now_text else datetime.now(UTC)
    results = []
    for path in paths:
        output.progress(f"{'checking' if dry_run else 'ingesting'} {path} ...")
        if dry_run:
            results.append(ingest_file(path, fmt, now=now, batch_rows=batch_rows))
            continue
        try:
            with validated_file(path, fmt, now=now, batch_rows=batch_rows) as validated:
                publish(validated, ctx.settings)
                results.append(validated.result)
        except FileRejected as exc:
            results.append(exc.result)
    rows = [r.to_json() for r in results]
    details = {r.path: r.detail for r in results if r.detail}
    return {"files": rows}, _summary(rows, details)
