"""`meterlake generate`: write a deterministic synthetic portfolio (reads, registry, manifest of defects).

Run: ``meterlake generate --meters 1000 --days 7 --start 2024-10-24 --seed 1 --out build/portfolio [--json]``.
The rules live in :mod:`meterlake.generate`; this module parses options and formats the answer.
"""
from __future__ import annotations

from collections import Counter
from datetime import date
from pathlib import Path

import click

from meterlake.cli import output
from meterlake.cli.output import json_command
from meterlake.errors import UsageError


def _defect_counts(specs: tuple[str, ...], none: bool) -> dict[str, int]:
    from meterlake.generate import DEFAULT_DEFECTS, DEFECTS

    counts = {} if none else dict(DEFAULT_DEFECTS)
    for spec in specs:
        kind, _, number = spec.partition("=")
        if kind not in DEFECTS or not number.isdigit():
            kinds = ", ".join(sorted(DEFECTS))
            raise UsageError(f"--defect {spec!r}: expected KIND=N with KIND one of {kinds}", value=spec)
        counts[kind] = int(number)
    return counts


@click.command("generate")
@click.option("--meters", type=click.IntRange(1), default=100, show_default=True)
@click.option("--days", type=click.IntRange(1), default=7, show_default=True)
@click.option("--start", type=click.DateTime(formats=["%Y-%m-%d"]), default="2024-10-24", show_default=True,
              help="First settlement date (YYYY-MM-DD).")
@click.option("--seed", type=int, default=1, show_default=True)
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path))
@click.option("--meters-per-file", type=click.IntRange(1), default=1000, show_default=True,
              help="Meters in one hh-csv file (one file per day per chunk of meters).")
@click.option("--gas-share", type=click.FloatRange(0, 1), default=0.15, show_default=True)
@click.option("--economy7-share", type=click.FloatRange(0, 1), default=0.2, show_default=True)
@click.option("--lcl-meters", type=click.IntRange(0), default=2, show_default=True,
              help="Electricity meters also written in the public LCL shape.")
@click.option("--device-meters", type=click.IntRange(0), default=2, show_default=True,
              help="Electricity meters with an in-home device sending JSON-line events.")
@click.option("--defect", "defects", multiple=True, metavar="KIND=N",
              help="How many of a defect to inject (repeatable), e.g. --defect correction=3.")
@click.option("--no-defects", is_flag=True, help="Inject no defects (except those given with --defect).")
@click.option("--device-settings", type=click.Path(exists=True, dir_okay=False),
              help="The meters' state a `meters gateway` kept: meters set to a read interval send their reads in "
                   "the device stream (30min: half-hourly) from the time they applied it.")
@json_command
def generate(meters, days, start, seed, out_dir, meters_per_file, gas_share, economy7_share, lcl_meters,
             device_meters, defects, no_defects, device_settings):
    """Write a synthetic portfolio: hh-csv, D0010, LCL and device files, registry.csv and manifest.json.

    Same options, same bytes. The manifest lists every file in arrival order and every injected defect with
    what ingest (or the store) must make of it.

    \b
    Example: meterlake generate --meters 50 --days 3 --start 2024-10-26 --seed 7 --out build/p --json
    """
    from meterlake.generate import Options
    from meterlake.generate import generate as run

    intervals = {}
    if device_settings:
        from streaming.commands.gateway import read_intervals

        intervals = read_intervals(device_settings)
    try:
        options = Options(meters=meters, days=days, start=date.fromisoformat(f"{start:%Y-%m-%d}"), seed=seed,
                          meters_per_file=meters_per_file, gas_share=gas_share, economy7_share=economy7_share,
                          lcl_meters=lcl_meters, device_meters=device_meters,
                          defects=_defect_counts(defects, no_defects), read_intervals=intervals)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    output.progress(f"generating {meters} meters x {days} days into {out_dir} ...")
    manifest = run(options, out_dir)
    kinds = dict(sorted(Counter(d["kind"] for d in manifest["defects"]).items()))
    result = {"out": str(out_dir), "manifest": str(out_dir / "manifest.json"),
              "files": len(manifest["files"]), "counts": manifest["counts"], "defects": kinds,
              "valid_as_of": manifest["valid_as_of"]}
    summary = (f"wrote {len(manifest['files'])} files for {meters} meters x {days} days under {out_dir}\n"
               f"defects: {', '.join(f'{k} {v}' for k, v in kinds.items()) or 'none'}\n"
               f"validate as of {manifest['valid_as_of']} (e.g. ingest --dry-run); manifest: "
               f"{out_dir / 'manifest.json'}")
    return result, summary
