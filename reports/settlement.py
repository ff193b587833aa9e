"""The settlement report of one run of one settlement date: HTML, PDF and CSV, written into the lake.

Run: ``meterlake report settlement --date 2024-10-27 --run R1 [--format html,pdf,csv]``

Reads the jobs' outputs (docs/jobs.md): the run's ``settlement`` rows, the previous run's (the latest earlier run
of the date in the lake) and their ``settlement_diff`` when the diff job compared them, and the date's
``quality``. Writes under ``reports/<date>/<run>/`` of the lake's filesystem (local, HDFS or S3):

=========================  ==============================================================================
``settlement.html``        totals, the period profile plot (46/48/50 periods) against the previous run, the
                           run-to-run changes with their reasons, estimated share and quality
``settlement.pdf``         the same page printed by WeasyPrint
``periods.csv``            one row per settlement period: energy of this run and of the previous one
``summary.csv``            one row per figure of the totals (``figure,value``)
``changes.csv``            one row per reason of the run-to-run diff
``manifest.json``          what was written (name, bytes, SHA-256), the inputs' files, when
=========================  ==============================================================================

Every file is written atomically (temporary name, then rename); the manifest last, so a report with a manifest
is whole.
"""
from __future__ import annotations

import csv
import hashlib
import io
import json
from datetime import UTC, date, datetime
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, select_autoescape

from meterlake import calendar as cal
from meterlake import settlement_runs as runs
from meterlake.errors import UsageError
from meterlake.instants import iso_utc

FORMATS = ("html", "pdf", "csv")
TEMPLATES = Path(__file__).with_name("templates")


def report_dir(day: date, run: str) -> str:
    return f"reports/{day.isoformat()}/{run}"


def _connect(lake, views: list[str]):
    import duckdb

    from meterlake.lake.outputs import register_duckdb, view_files

    con = duckdb.connect()
    made = register_duckdb(con, lake, views)
    return con, made, view_files(lake, views)


def gather(lake, day: date, run: str) -> dict:
    """The report's numbers: plain Python values (no I/O after this)."""
    run = runs.check_run(run)
    con, made, files = _connect(lake, ["settlement", "settlement_diff", "quality"])
    try:
        if "settlement" not in made:
            raise UsageError(f"no settlement output in the lake {lake.root}: run `meterlake job settle` first",
                             lake=lake.root)
        settled = [r for (r,) in con.execute("SELECT DISTINCT run FROM settlement WHERE settlement_date = ?",
                                             [day]).fetchall()]
        if run not in settled:
            raise UsageError(f"{day} {run} is not settled in the lake (settled runs of the date: "
                             f"{', '.join(sorted(settled, key=runs.RUNS.index)) or 'none'})",
                             settlement_date=day.isoformat(), run=run)
        earlier = [r for r in runs.RUNS[:runs.RUNS.index(run)] if r in settled]
        previous = earlier[-1] if earlier else None
        totals = dict(zip(
            ("consumption_kwh", "actual_kwh", "estimated_kwh", "loss_adjusted_kwh", "meter_periods",
             "estimated_meter_periods", "unsettled_meter_periods", "default_registry_meter_periods", "periods",
             "cutoff_utc"),
            con.execute("""SELECT round(sum(consumption_kwh), 3), round(sum(actual_kwh), 3),
                                  round(sum(estimated_kwh), 3), round(sum(loss_adjusted_kwh), 3), sum(meters),
                                  sum(estimated_meters), sum(unsettled_meters), sum(default_registry_meters),
                                  count(DISTINCT settlement_period), max(cutoff_utc)
                           FROM settlement WHERE settlement_date = ? AND run = ?""", [day, run]).fetchone(),
            strict=True))
        totals["cutoff_utc"] = iso_utc(totals["cutoff_utc"]) if totals["cutoff_utc"] is not None else None
        totals["estimated_share"] = (totals["estimated_kwh"] / totals["consumption_kwh"]
                                     if totals["consumption_kwh"] else 0.0)
        per_period = con.execute("""
            SELECT settlement_period,
                   round(sum(consumption_kwh) FILTER (WHERE run = ?), 3),
                   round(sum(estimated_kwh) FILTER (WHERE run = ?), 3),
                   round(sum(consumption_kwh) FILTER (WHERE run = ?), 3)
            FROM settlement WHERE settlement_date = ? GROUP BY 1 ORDER BY 1""",
                                 [run, run, previous, day]).fetchall()
        periods = [{"settlement_period": p, "consumption_kwh": kwh or 0.0, "estimated_kwh": est or 0.0,
                    "previous_kwh": prev} for p, kwh, est, prev in per_period]
        gsp_groups = [{"gsp_group": g, "consumption_kwh": kwh, "meter_periods": m} for g, kwh, m in con.execute(
            """SELECT gsp_group, round(sum(consumption_kwh), 3), sum(meters) FROM settlement
               WHERE settlement_date = ? AND run = ? GROUP BY 1 ORDER BY 1""", [day, run]).fetchall()]
        changes = []
        if previous and "settlement_diff" in made:
            changes = [{"reason": reason, "changes": n, "delta_kwh": delta} for reason, n, delta in con.execute(
                """SELECT reason, count(*), round(sum(delta_kwh), 3) FROM settlement_diff
                   WHERE settlement_date = ? AND from_run = ? AND to_run = ? GROUP BY 1 ORDER BY 2 DESC, 1""",
                [day, previous, run]).fetchall()]
        diffed = bool(previous and "settlement_diff" in made and con.execute(
            "SELECT count(*) FROM (SELECT 1 FROM settlement_diff WHERE settlement_date = ? AND from_run = ? "
            "AND to_run = ? LIMIT 1)", [day, previous, run]).fetchone()[0]) or bool(changes)
        quality = None
        if "quality" in made:
            row = con.execute("""SELECT count(*), avg(completeness), avg(estimated_share), sum(missing_periods),
                                        sum(late_reads), sum(quarantined_reads), sum(flagged_reads)
                                 FROM quality WHERE settlement_date = ?""", [day]).fetchone()
            if row[0]:
                quality = dict(zip(("meters", "mean_completeness", "mean_estimated_share", "missing_periods",
                                    "late_reads", "quarantined_reads", "flagged_reads"), row, strict=True))
    finally:
        con.close()
    inputs = sorted(f for view in ("settlement", "settlement_diff", "quality") for f in files.get(view, [])
                    if f"settlement_date={day.isoformat()}" in f)
    return {"settlement_date": day, "run": run, "previous_run": previous, "calendar_periods": cal.periods_in_day(day),
            "totals": totals, "periods": periods, "gsp_groups": gsp_groups, "changes": changes, "diffed": diffed,
            "quality": quality, "inputs": inputs}


def profile_png(data: dict) -> bytes:
    """The period profile: this run's energy per settlement period, the previous run's dashed, estimates shaded."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    fig = Figure(figsize=(9, 3.6), dpi=110)
    ax = fig.add_subplot()
    xs = [p["settlement_period"] for p in data["periods"]]
    ax.bar(xs, [p["estimated_kwh"] for p in data["periods"]], color="#f4a259", label="estimated kWh")
    ax.plot(xs, [p["consumption_kwh"] for p in data["periods"]], color="#1f6f8b", marker="o", markersize=3,
            label=f"{data['run']} kWh")
    if data["previous_run"]:
        ax.plot(xs, [p["previous_kwh"] if p["previous_kwh"] is not None else float("nan") for p in data["periods"]],
                color="#888888", linestyle="--", label=f"{data['previous_run']} kWh")
    ax.set_xlabel(f"settlement period ({data['calendar_periods']} on {data['settlement_date']})")
    ax.set_ylabel("kWh")
    ax.set_xlim(0.5, data["calendar_periods"] + 0.5)
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()


def render_html(data: dict, png: bytes) -> str:
    import base64

    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html", "j2"]))
    return env.get_template("settlement.html.j2").render(
        d=data, profile_png=base64.b64encode(png).decode(), generated_at=data.get("generated_at"))


def _csv(header: list[str], rows: list[list]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue().encode()


def render(data: dict, formats: tuple[str, ...]) -> dict[str, bytes]:
    """File name → bytes of the report in ``formats``."""
    out: dict[str, bytes] = {}
    if {"html", "pdf"} & set(formats):
        png = profile_png(data)
        html = render_html(data, png)
        if "html" in formats:
            out["settlement.html"] = html.encode()
        if "pdf" in formats:
            from weasyprint import HTML

            out["settlement.pdf"] = HTML(string=html).write_pdf()
    if "csv" in formats:
        out["periods.csv"] = _csv(
            ["settlement_date", "run", "settlement_period", "consumption_kwh", "estimated_kwh", "previous_run",
             "previous_kwh"],
            [[data["settlement_date"], data["run"], p["settlement_period"], p["consumption_kwh"], p["estimated_kwh"],
              data["previous_run"] or "", "" if p["previous_kwh"] is None else p["previous_kwh"]]
             for p in data["periods"]])
        summary = [[k, v] for k, v in data["totals"].items()]
        summary += [[f"quality_{k}", v] for k, v in (data["quality"] or {}).items()]
        out["summary.csv"] = _csv(["figure", "value"], summary)
        out["changes.csv"] = _csv(["settlement_date", "from_run", "to_run", "reason", "changes", "delta_kwh"],
                                  [[data["settlement_date"], data["previous_run"], data["run"], c["reason"],
                                    c["changes"], c["delta_kwh"]] for c in data["changes"]])
    return out


def parse_formats(text: str) -> tuple[str, ...]:
    chosen = tuple(dict.fromkeys(f.strip().lower() for f in text.split(",") if f.strip()))
    unknown = [f for f in chosen if f not in FORMATS]
    if unknown or not chosen:
        raise UsageError(f"unknown report format(s) {', '.join(unknown) or '(none)'}: choose from "
                         f"{', '.join(FORMATS)}", formats=text)
    return chosen


def run(settings, day: date, run_name: str, formats: tuple[str, ...] = FORMATS, *, now: datetime | None = None) -> dict:
    """Render and write the report; the manifest as the answer (plus ``path``)."""
    from meterlake.lake.files import open_lake

    lake = open_lake(settings)
    data = gather(lake, day, run_name)
    generated = (now or datetime.now(UTC)).astimezone(UTC)
    data["generated_at"] = iso_utc(generated)
    files = render(data, formats)
    base = report_dir(day, data["run"])
    written = []
    for name, blob in files.items():
        lake.write_bytes(f"{base}/{name}", blob)
        written.append({"name": name, "bytes": len(blob), "sha256": hashlib.sha256(blob).hexdigest()})
    manifest = {"report": "settlement", "settlement_date": day.isoformat(), "run": data["run"],
                "previous_run": data["previous_run"], "formats": list(formats), "generated_at": data["generated_at"],
                "periods": data["totals"]["periods"], "consumption_kwh": data["totals"]["consumption_kwh"],
                "files": written, "inputs": [i[len(lake.root):].lstrip("/") if i.startswith(lake.root) else i
                                             for i in data["inputs"]]}
    lake.write_text(f"{base}/manifest.json", json.dumps(manifest, indent=2, default=str))
    return {"path": base, **manifest}
