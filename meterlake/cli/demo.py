"""``meterlake demo`` (``make demo``): a supplier's fortnight through the whole platform, with a summary a newcomer
reads at a glance.

Run: ``meterlake demo`` (default 1,000 meters x 14 days, 18-31 October 2026: the 25th is the autumn clock change,
a 50-period settlement day), ``meterlake demo --meters 5 --days 3 --no-dashboards --json``.

1. The local stack comes up (Kafka, Cassandra; Spark runs in this process, the lake is ``paths.lake``).
2. A synthetic portfolio is generated (:mod:`meterlake.generate`): flat, Economy 7 and dynamic-tariff accounts, a
   late file and corrections created 10 days after their day (past the SF cut-off), a duplicate file, bad files.
3. The registry, the market domain data (the tests' small MDD), the tariffs and the accounts are loaded.
4. The files that exist by each day's SF cut-off land in ``ingest.landing_dir`` and an ingest worker takes them
   (claims in Cassandra, so a file already ingested is recognised by its content); the store writes Cassandra and
   the mirror the Parquet lake, concurrently.
5. Spark cleans every date and settles it SF; data quality is measured.
6. The late files land and are ingested, stored and mirrored; every date is cleaned again and settled R1, and
   settle-diff says what changed since SF and why.
7. The fortnight is billed; the dbt marts are built into ``paths.warehouse``; Superset is started with its
   dashboards (``--no-dashboards`` skips it); the R1 settlement report of the clock-change day is rendered.

Every step calls the platform's own public functions (what the ``meterlake`` commands call); each job is
incremental, so a second run finds its inputs unchanged and prints the same numbers. ``make demo-down`` stops
Superset and the stack.

Grain of the answer: one object; ``days`` has one row per settlement date, ``bills`` one row per tariff kind.
"""
from __future__ import annotations

import json
import shutil
import time
from collections import Counter, defaultdict
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

from meterlake import calendar
from meterlake import settlement_runs as runs
from meterlake.config import Settings

ROOT = Path(__file__).resolve().parents[2]
# the small MDD extract the billing tests use (SSC 0151's Economy 7 windows): shipped, so the demo needs no download
MDD = ROOT / "tests" / "meterlake" / "data" / "mdd_tiny"
REPORT_DAY_RUN = "R1"
INGEST_BATCH = 16  # files landed per worker pass: the progress bar's step


@dataclass(frozen=True)
class Plan:
    meters: int = 1000
    days: int = 14
    start: date = date(2026, 10, 18)
    seed: int = 7
    late_days: int = 10
    dashboards: bool = True

    def dates(self) -> list[date]:
        return [self.start + timedelta(days=i) for i in range(self.days)]


class Stages:
    """Timed stages with rich progress on stderr (nothing on stdout, which ``--json`` keeps for its object)."""

    def __init__(self, quiet: bool = False):
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

        self.console = Console(stderr=True, quiet=quiet)
        self.progress = Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
                                 MofNCompleteColumn(), TimeElapsedColumn(), console=self.console, transient=True)
        self.seconds: dict[str, float] = {}
        self.notes: dict[str, str] = {}

    @contextmanager
    def stage(self, name: str, total: int | None = None):
        started = time.monotonic()
        with self.progress:
            task = self.progress.add_task(name, total=total)

            def advance(n: int = 1, detail: str | None = None) -> None:
                self.progress.update(task, advance=n,
                                     description=name if detail is None else f"{name}: {detail}")

            yield advance
        self.seconds[name] = round(time.monotonic() - started, 1)
        note = self.notes.get(name, "")
        self.console.print(f"[green]✓[/] {name:<34} {self.seconds[name]:>7.1f} s  {note}")


# ------------------------------------------------------------------------------------------------ settings


def demo_settings(settings: Settings) -> Settings:
    """The settings of the demo's stack: Kafka and Cassandra (Spark in-process; the lake is ``paths.lake``)."""
    from infra.local import stack as stack_mod
    from infra.local.discover import discover

    base = settings.model_copy(update={"stack": settings.stack.model_copy(update={"services": ["kafka", "cassandra"]})})
    stack_mod.up(base)
    return discover(stack_mod.remembered(base))


# ------------------------------------------------------------------------------------------------- stages


def _generate(plan: Plan, out: Path) -> dict:
    from meterlake.generate import DEFAULT_DEFECTS, Options, generate

    options = Options(meters=plan.meters, days=plan.days, start=plan.start, seed=plan.seed,
                      meters_per_file=max(1, -(-plan.meters // 4)), late_days=plan.late_days,
                      defects=DEFAULT_DEFECTS | {"late_file": 2})
    return generate(options, out)


def split_on_sf(manifest: dict) -> tuple[list[dict], list[dict]]:
    """The files in arrival order: those created by their day's SF cut-off, and the late ones (created after it)."""
    on_time, late = [], []
    for f in manifest["files"]:
        created = f.get("created_utc")
        is_late = bool(f.get("day") and created) and datetime.fromisoformat(created) > runs.cutoff_instant(
            date.fromisoformat(f["day"]), "SF")
        (late if is_late else on_time).append(f)
    return on_time, late


def _reference_data(settings: Settings, root: Path) -> dict:
    from jobs.bill import inputs
    from jobs.registry import job as registry

    reg = registry.run(settings, root / "registry.csv")
    mdd = inputs.load_mdd(settings, MDD)
    tariffs = inputs.load_tariffs(settings, [root / "tariffs.toml"])
    accounts = inputs.load_accounts(settings, root / "accounts.csv", replace=True)
    return {"registry_meter_points": reg["meter_points"], "mdd_rows": mdd["loaded"],
            "tariffs": [{"tariff": t["tariff"], "kind": t["kind"]} for t in tariffs["tariffs"]],
            "tariff_defects": len(tariffs["defects"]), "accounts": accounts["accounts"]}


def _ledger_path(settings: Settings) -> Path:
    return settings.state_dir / "demo" / "ingested.json"


def _ingest(settings: Settings, root: Path, files: list[dict], now: datetime, advance) -> dict:
    """Land ``files`` (copies) in the landing directory, a batch at a time, for one ingest worker to take; the
    outcome of each file, kept in a ledger so that a re-run (where the claims recognise every file as ingested)
    reports the same outcome."""
    from streaming.ingest.watch import Worker

    landing = Path(settings.resolve_url(settings.ingest.landing_dir))
    landing.mkdir(parents=True, exist_ok=True)
    ledger_file = _ledger_path(settings)
    ledger = json.loads(ledger_file.read_text()) if ledger_file.is_file() else {}
    new = again = 0
    duplicates: list[dict] = []
    with Worker(settings, str(landing), worker_id="demo", now=now) as worker:
        for at in range(0, len(files), INGEST_BATCH):
            batch = files[at:at + INGEST_BATCH]
            for f in batch:
                shutil.copyfile(root / f["path"], landing / Path(f["path"]).name)
            seen = len(worker.result.files), len(worker.result.duplicates)
            worker.run(once=True)
            for entry in list(worker.result.files)[seen[0]:]:
                name = Path(entry["path"]).name
                ledger[name] = {k: entry.get(k) for k in ("status", "format", "reads", "quarantined",
                                                           "duplicates", "reasons", "checksum")}
                new += 1
            for entry in list(worker.result.duplicates)[seen[1]:]:
                if Path(entry["duplicate_of"]).name == Path(entry["path"]).name:
                    again += 1  # landed again by a re-run: its content was ingested before
                else:
                    duplicates.append({"file": Path(entry["path"]).name,
                                       "duplicate_of": Path(entry["duplicate_of"]).name})
                    ledger[Path(entry["path"]).name] = {"status": "duplicate_file",
                                                        "duplicate_of": Path(entry["duplicate_of"]).name}
            advance(len(batch))
    ledger_file.parent.mkdir(parents=True, exist_ok=True)
    ledger_file.write_text(json.dumps(ledger, indent=1, sort_keys=True))
    return {"landed": len(files), "new": new, "already_ingested": again, "duplicate_files": duplicates}


def _store_and_mirror(settings: Settings) -> dict:
    """The store (Kafka -> Cassandra) and the mirror (Kafka -> the lake) consuming concurrently, until caught up."""
    from concurrent.futures import ThreadPoolExecutor

    from streaming.mirror import consumer as mirror
    from streaming.store import consumer as store

    with ThreadPoolExecutor(2) as pool:
        stored = pool.submit(store.run, settings, until_caught_up=True)
        mirrored = pool.submit(mirror.run, settings, until_caught_up=True)
        s, m = stored.result(), mirrored.result()
    return {"store_messages": s.messages, "store_rows": sum(s.rows.values()), "mirror_messages": m.messages,
            "mirror_reads": m.reads, "mirror_files": m.files}


def _each_day(days: list[date], advance, job) -> dict:
    """``job(day)`` for each day, in order, the progress bar advanced with each answer's status."""
    out = {}
    for d in days:
        out[d] = job(d)
        advance(1, f"{d} {out[d]['status']}")
    return out


def _status(answers) -> str:
    """"unchanged" when every answer found its inputs unchanged (or re-ran to the same bytes), else what ran."""
    answers = list(answers)
    fresh = [a for a in answers if a["status"] not in ("unchanged",) and a.get("same_as_previous") is not True]
    return "unchanged" if not fresh else f"{len(fresh)} of {len(answers)} ran"


# ---------------------------------------------------------------------------------------------------- run


def run(settings: Settings, plan: Plan, *, start_stack: bool = True, spark=None, quiet: bool = False) -> dict:
    """The demo; ``start_stack``: bring up the local stack of ``settings`` first (else they are a running
    stack's, discovered); ``spark``: a session to use (else one is built and stopped)."""
    from jobs.bill import job as bill
    from jobs.clean import job as clean
    from jobs.quality import job as quality
    from jobs.settle import job as settle
    from jobs.settle_diff import job as settle_diff
    from meterlake import warehouse
    from meterlake.lake.files import open_lake
    from reports import settlement as report
    from streaming.mirror import query
    from streaming.store import consumer as store

    st = Stages(quiet)
    if start_stack:
        with st.stage("local stack up (Kafka, Cassandra)"):
            settings = demo_settings(settings)
    root = settings.state_dir / "demo" / "portfolio"
    days = plan.dates()

    with st.stage("generate the portfolio"):
        manifest = _generate(plan, root)
        on_time, late = split_on_sf(manifest)
        now = datetime.fromisoformat(manifest["valid_as_of"])
    st.notes["generate the portfolio"] = f"{len(manifest['files'])} files, {len(late)} of them late"

    with st.stage("load registry, MDD, tariffs, accounts"):
        reference = _reference_data(settings, root)

    own_spark = spark is None
    if own_spark:
        from meterlake.spark import build_spark

        with st.stage("start Spark"):
            spark = build_spark("meterlake-demo", settings)
    try:
        def arrive(files: list[dict], which: str) -> tuple[dict, dict, dict]:
            """Files land and are ingested, stored and mirrored; every date is cleaned."""
            with st.stage(f"ingest {which} files", total=len(files)) as advance:
                ingested = _ingest(settings, root, files, now, advance)
            st.notes[f"ingest {which} files"] = (f"{ingested['new']} new, {ingested['already_ingested']} ingested "
                                                 "before")
            with st.stage(f"store + mirror ({which})"):
                flow = _store_and_mirror(settings)
            st.notes[f"store + mirror ({which})"] = f"{flow['mirror_reads']:,} reads to the lake"
            with st.stage(f"clean ({which})"):
                cleaned = clean.run(settings, spark=spark)
            st.notes[f"clean ({which})"] = cleaned["message"]
            return ingested, flow, cleaned

        ingest_1, flow_1, clean_1 = arrive(on_time, "on-time")
        with st.stage("settle SF", total=len(days)) as advance:
            sf = _each_day(days, advance, lambda d: settle.run(settings, d, "SF", spark=spark))
        st.notes["settle SF"] = _status(sf.values())
        ingest_2, flow_2, clean_2 = arrive(late, "late")
        with st.stage("settle R1", total=len(days)) as advance:
            r1 = _each_day(days, advance, lambda d: settle.run(settings, d, "R1", spark=spark))
        st.notes["settle R1"] = _status(r1.values())
        with st.stage("settle-diff SF -> R1", total=len(days)) as advance:
            diffs = _each_day(days, advance,
                              lambda d: settle_diff.run(settings, d, "SF", "R1", limit=0, spark=spark))
        with st.stage("data quality"):
            quality_out = quality.run(settings, spark=spark)
        st.notes["data quality"] = quality_out["message"]
        with st.stage("bill the fortnight"):
            billed = bill.run(settings, days[0], days[-1] + timedelta(days=1), spark=spark)
        st.notes["bill the fortnight"] = billed["status"]
    finally:
        if own_spark:
            spark.stop()

    with st.stage("dbt marts (models build)"):
        models = warehouse.build(settings, "duckdb")
    if not models["success"]:
        from meterlake.errors import MeterlakeError

        raise MeterlakeError(f"dbt build failed: {models['error']}", counts=models["counts"])
    st.notes["dbt marts (models build)"] = ", ".join(f"{n} {s}" for s, n in sorted(models["counts"].items()))

    dashboards = None
    if plan.dashboards:
        from infra.superset import instance

        with st.stage("Superset + dashboards"):
            dashboards = instance.up(settings)
        st.notes["Superset + dashboards"] = "imported" if dashboards["imported"] else "unchanged"

    report_day = _report_day(days)
    with st.stage("settlement report"):
        lake = open_lake(settings)
        before = _report_digests(lake, report_day)
        # generated_at is the portfolio's validation instant, so a re-run writes the same report
        rendered = report.run(settings, report_day, REPORT_DAY_RUN, now=now)
        rendered["status"] = "unchanged" if before == _report_digests(lake, report_day) else "rendered"
    st.notes["settlement report"] = rendered["status"]

    with st.stage("count what is stored"):
        stored = store.stats(settings)
        in_lake = query.stats(lake)

    ingest_2["late_files"] = len(late)
    return _answer(settings, plan, manifest, reference, (ingest_1, ingest_2), (flow_1, flow_2), stored, in_lake,
                   (clean_1, clean_2), sf, r1, diffs, quality_out, billed, models, dashboards, rendered, st.seconds)


def _report_day(days: list[date]) -> date:
    """The clock-change day of the span if there is one (46 or 50 periods), else its first day."""
    return next((d for d in days if calendar.periods_in_day(d) != 48), days[0])


def _report_digests(lake, day: date) -> dict | None:
    path = f"{report_dir_of(day)}/manifest.json"
    if not lake.exists(path):
        return None
    # the PDF carries its creation time; the HTML and CSV files are the report's content
    return {f["name"]: f["sha256"] for f in json.loads(lake.read_bytes(path))["files"] if f["name"] != "settlement.pdf"}


def report_dir_of(day: date) -> str:
    from reports import settlement as report

    return report.report_dir(day, REPORT_DAY_RUN)


def _answer(settings, plan, manifest, reference, ingests, flows, stored, in_lake, cleans, sf, r1, diffs, quality_out,
            billed, models, dashboards, rendered, seconds) -> dict:
    from infra.local import secrets

    ledger = json.loads(_ledger_path(settings).read_text())
    delivered = {Path(f["path"]).name for f in manifest["files"]}
    outcomes = [v for k, v in ledger.items() if k in delivered]
    rejected = Counter(next(iter(v["reasons"]), v["status"]) for v in outcomes if v["status"] == "rejected")
    accepted = [v for v in outcomes if v["status"] == "accepted"]
    quarantined = Counter()
    for v in accepted:
        quarantined.update({r: n for r, n in (v.get("reasons") or {}).items()})
    day_rows = []
    for d in plan.dates():
        a, b, diff = sf[d]["totals"], r1[d]["totals"], diffs[d]
        day_rows.append({"settlement_date": d, "periods": calendar.periods_in_day(d),
                         "sf_kwh": a["consumption_kwh"], "sf_estimated_kwh": a["estimated_kwh"],
                         "r1_kwh": b["consumption_kwh"], "r1_estimated_kwh": b["estimated_kwh"],
                         "delta_kwh": diff["delta_kwh"], "changes": diff["changes"],
                         "reasons": {k: v for k, v in diff["reasons"].items() if v}})
    kinds: dict[str, dict] = defaultdict(lambda: {"bills": 0, "accounts": set(), "energy_kwh": 0.0, "total_p": 0.0,
                                                  "incomplete": 0})
    for bl in billed["bills"]:
        k = kinds[bl["kind"]]
        k["bills"] += 1
        k["accounts"].add(bl["account"])
        k["energy_kwh"] += bl["energy_kwh"]
        k["total_p"] += float(bl["total_p"] or 0)
        k["incomplete"] += bl["status"] == "incomplete"
    bills = [{"kind": kind, "bills": v["bills"], "accounts": len(v["accounts"]),
              "energy_kwh": round(v["energy_kwh"], 3), "total_gbp": round(v["total_p"] / 100, 2),
              "incomplete": v["incomplete"]} for kind, v in sorted(kinds.items())]
    local_lake = "://" not in settings.lake_url
    report_file = Path(settings.lake_url) / rendered["path"] / "settlement.html" if local_lake else None
    return {
        "plan": {**asdict(plan), "end": plan.dates()[-1]},
        "counts": manifest["counts"],
        "reference": reference,
        "files": {"delivered": len(manifest["files"]), "accepted": len(accepted),
                  "rejected": sum(rejected.values()), "rejected_reasons": dict(sorted(rejected.items())),
                  "duplicate_files": sum(v["status"] == "duplicate_file" for v in outcomes),
                  "late": ingests[1]["late_files"],
                  "this_run": {"new": ingests[0]["new"] + ingests[1]["new"],
                               "already_ingested": ingests[0]["already_ingested"] + ingests[1]["already_ingested"]}},
        "reads": {"accepted": sum(v["reads"] for v in accepted),
                  "quarantined": sum(v["quarantined"] for v in accepted),
                  "quarantine_reasons": dict(sorted(quarantined.items())),
                  "duplicate_lines": sum(v["duplicates"] for v in accepted),
                  "stored_interval_reads": stored["interval_reads"],
                  "stored_register_reads": stored["tables"]["register_reads"],
                  "stored_device_reads": stored["tables"]["device_reads"],
                  "lake_rows": in_lake["rows"], "lake_files": in_lake["files"],
                  "this_run": {"store_rows": flows[0]["store_rows"] + flows[1]["store_rows"],
                               "lake_reads": flows[0]["mirror_reads"] + flows[1]["mirror_reads"]}},
        "cleaned": {"first": cleans[0]["status"], "after_late_files": cleans[1]["status"]},
        "days": day_rows,
        "quality": quality_out["status"],
        "bills": bills,
        "billing": {"status": billed["status"], "from": billed["from"], "to": billed["to"],
                    "defects": len(billed["defects"])},
        "models": {"counts": models["counts"], "warehouse": models["warehouse"], "seconds": models["seconds"]},
        "dashboards": None if dashboards is None else {
            "status": "imported" if dashboards["imported"] else "unchanged", "url": dashboards["url"],
            "dashboards": [{"title": d["title"], "url": d["url"]} for d in dashboards["dashboards"]]},
        "report": {"status": rendered["status"], "path": rendered["path"],
                   "url": report_file.as_uri() if report_file else f"{settings.lake_url}/{rendered['path']}",
                   "settlement_date": rendered["settlement_date"], "run": rendered["run"]},
        "credentials": {"file": str(secrets.path(settings.state_dir)),
                        "keys": ["superset_admin_password", "superset_analyst_password"]},
        "seconds": {**seconds, "total": round(sum(seconds.values()), 1)},
    }


# ------------------------------------------------------------------------------------------------ summary


def summary(result: dict) -> str:
    """The answer as a few rich tables, rendered to plain text (no colour codes: it may be piped)."""
    import io

    from rich import box
    from rich.console import Console
    from rich.table import Table

    buf = io.StringIO()
    out = Console(file=buf, width=132, color_system=None, force_terminal=False)
    p, c, f, r = result["plan"], result["counts"], result["files"], result["reads"]
    out.print(f"meterlake demo: a supplier's fortnight, {p['start']} to {p['end']}: {c['meters']:,} meters "
              f"({c['electricity']:,} electricity, {c['economy7']:,} of them Economy 7; {c['gas']:,} gas)")
    kinds = Counter(t["kind"] for t in result["reference"]["tariffs"])
    names = ", ".join(f"{t['tariff']} ({t['kind']})" for t in result["reference"]["tariffs"])
    out.print(f"tariffs: {names}; "
              f"{result['reference']['accounts']:,} accounts; {sum(kinds.values())} tariffs loaded")

    t = Table(title="Files and reads", box=box.SIMPLE_HEAVY, title_justify="left")
    t.add_column("what")
    t.add_column("count", justify="right")
    t.add_column("notes")
    t.add_row("files delivered", f"{f['delivered']:,}",
              f"{f['late']} late (created after their day's SF cut-off, ingested after SF)")
    t.add_row("  accepted", f"{f['accepted']:,}", "")
    t.add_row("  rejected whole", f"{f['rejected']:,}",
              ", ".join(f"{k} {v}" for k, v in f["rejected_reasons"].items()) + " (to the quarantine area)")
    t.add_row("  duplicate files", f"{f['duplicate_files']:,}", "same content as a file already ingested: not "
              "published again")
    t.add_row("  this run", f"{f['this_run']['new']:,} new",
              f"{f['this_run']['already_ingested']:,} recognised as ingested before (claims by content)")
    t.add_row("reads in accepted files", f"{r['accepted']:,}", "")
    t.add_row("  records quarantined", f"{r['quarantined']:,}",
              ", ".join(f"{k} {v}" for k, v in r["quarantine_reasons"].items()))
    t.add_row("  exact duplicate lines", f"{r['duplicate_lines']:,}", "dropped")
    t.add_row("stored in Cassandra", f"{r['stored_interval_reads']:,}",
              f"interval reads (+ {r['stored_register_reads']:,} register, {r['stored_device_reads']:,} device rows)")
    t.add_row("rows in the Parquet lake", f"{r['lake_rows']:,}",
              f"{r['lake_files']:,} live files; every version kept (the jobs take the live one)")
    t.add_row("  this run", f"{r['this_run']['lake_reads']:,}", f"reads mirrored ({r['this_run']['store_rows']:,} "
              "store rows written)")
    out.print(t)

    t = Table(title="Settlement: SF, then R1 after the late files (kWh)", box=box.SIMPLE_HEAVY, title_justify="left")
    for name, justify in (("date", "left"), ("periods", "right"), ("SF kWh", "right"), ("SF estimated", "right"),
                          ("R1 kWh", "right"), ("R1 estimated", "right"), ("R1 - SF", "right"),
                          ("half-hours changed: why", "left")):
        t.add_column(name, justify=justify)
    for d in result["days"]:
        mark = {46: " (spring clock change)", 50: " (autumn clock change)"}.get(d["periods"], "")
        why = ", ".join(f"{k} {v}" for k, v in d["reasons"].items())
        t.add_row(f"{d['settlement_date']}", f"{d['periods']}{mark}", f"{d['sf_kwh']:,.1f}",
                  f"{d['sf_estimated_kwh']:,.1f}", f"{d['r1_kwh']:,.1f}", f"{d['r1_estimated_kwh']:,.1f}",
                  f"{d['delta_kwh']:+,.1f}", f"{d['changes']:,}: {why}" if d["changes"] else "none")
    out.print(t)
    out.print("  why: late_read = no read at SF, a read now; estimate_replaced = an SF estimate, a read now; "
              "correction = a newer version of a read; newly_estimated, estimate_revised = estimates moved with "
              "the new reads around them (docs/jobs.md, settle-diff)")

    t = Table(title=f"Bills {result['billing']['from']} to {result['billing']['to']} ({result['billing']['status']})",
              box=box.SIMPLE_HEAVY, title_justify="left")
    for name in ("tariff kind", "accounts", "bills", "kWh", "total £ incl. VAT", "incomplete"):
        t.add_column(name, justify="left" if name == "tariff kind" else "right")
    for b in result["bills"]:
        label = {"flat": "flat", "tou": "Economy 7 (time of use)", "dynamic": "dynamic (half-hourly prices)"}
        t.add_row(label.get(b["kind"], b["kind"]), f"{b['accounts']:,}", f"{b['bills']:,}", f"{b['energy_kwh']:,.1f}",
                  f"{b['total_gbp']:,.2f}", f"{b['incomplete']:,}")
    out.print(t)

    m = result["models"]
    out.print(f"dbt marts: {', '.join(f'{n} {s}' for s, n in sorted(m['counts'].items()))}; warehouse {m['warehouse']}")
    dash = result["dashboards"]
    if dash:
        out.print(f"Superset ({dash['status']}): {dash['url']}")
        for d in dash["dashboards"]:
            out.print(f"  {d['title']}: {d['url']}")
        out.print(f"  log in as admin (or analyst): the passwords are in {result['credentials']['file']} "
                  f"({', '.join(result['credentials']['keys'])})")
    else:
        out.print("Superset: skipped (--no-dashboards)")
    rep = result["report"]
    out.print(f"settlement report {rep['settlement_date']} {rep['run']} ({rep['status']}): {rep['url']}")
    sec = result["seconds"]
    out.print("seconds: " + ", ".join(f"{k} {v}" for k, v in sec.items() if k != "total") + f"; total {sec['total']}")
    out.print("next: meterlake lake sql \"SELECT ...\" | meterlake dashboards status | make demo-down")
    return buf.getvalue().rstrip()
