"""Bill accounts off the lake: energy per band from ``clean_reads`` priced by each account's tariff, standing
charge, VAT, per bill period.

Run: ``meterlake job bill --from 2024-01-01 --to 2024-02-01 [--account A] [--json]`` after ``meterlake job clean``,
``meterlake mdd load``, ``meterlake tariffs load`` and ``meterlake accounts load`` (or
``spark-submit jobs/bill/job.py --from … --to …``). Dates are UK local dates, ``--to`` exclusive.

Energy is the clean reads' (:mod:`jobs.clean.vee`: the live version of every half-hourly read, and the estimates
of missing half-hours, which are billed and shown as ``estimated_kwh``). Bill periods, prices and money are the
core package's rules (:mod:`meterlake.billing`, :mod:`meterlake.tariffs`, :mod:`meterlake.mdd`): the driver turns
them into small tables — the bills, the band of each (SSC, half-hour), the unit price of each (tariff, half-hour,
band) — Spark joins the half-hours to them and sums exact Wh and Wh × p per bill and band, and the driver prices
those sums (:func:`meterlake.billing.price_bill`). Cassandra is never read.

Grain of the output: ``billing/bills/from=F/to=T/[account=A/]bills.parquet`` (A: the account's pseudonym, as
in every column naming an account: the lake holds no clear account id, :mod:`jobs.bill.inputs`), one row per
bill (account, meter_point, bill_from); ``billing/bill_lines/…/bill_lines.parquet``, one row per (bill, band). Columns:
docs/jobs.md, "Billing".

Incremental: the ``clean_reads`` files of the dates billed, the accounts, tariffs, prices, MDD and registry tables
and the parameters are fingerprinted; a re-run with the same fingerprint and its output in place does nothing and
says so.
"""
from __future__ import annotations

import re
import sys
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING

import pyarrow as pa

from jobs import lakeio
from jobs.bill import inputs
from jobs.clean import vee
from jobs.clean.job import output_dir as clean_dir
from jobs.clean.job import output_schema as clean_schema
from jobs.clean.job import output_state as clean_state
from jobs.registry import job as registry_job
from meterlake import billing, jobruns, pseudonym, tariffs
from meterlake import calendar as cal
from meterlake.errors import UsageError

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

JOB = "bill"
JOB_VERSION = 1
BILLS_DIR, LINES_DIR = "billing/bills", "billing/bill_lines"
MONEY = pa.decimal128(18, 2)
TS = pa.timestamp("us", tz="UTC")
RATES_DDL = "rate_key long, band int, unit_up long"
#: prices reach Spark in micro-pence/kWh (tariff prices have at most 6 decimals): a bill's sum of Wh x price is
#: then a long, exact up to 9.2e18 (9.2e9 p x kWh in one bill and band, e.g. 30 GWh at 30 p)
MICRO = 1_000_000
BILLS_DDL = "bill int, bill_meter_point string, bill_from date, bill_to date, rate_base long"
_SAFE = re.compile(r"[A-Za-z0-9_.-]{1,64}")

BILLS_SCHEMA = pa.schema([
    pa.field("account", pa.string(), nullable=False),
    pa.field("meter_point", pa.string(), nullable=False),
    pa.field("tariff", pa.string(), nullable=False),
    pa.field("kind", pa.string(), nullable=False),
    pa.field("ssc", pa.string()),
    pa.field("bill_from", pa.date32(), nullable=False),
    pa.field("bill_to", pa.date32(), nullable=False),
    pa.field("days", pa.int16(), nullable=False),
    pa.field("status", pa.string(), nullable=False),
    pa.field("energy_kwh", pa.float64()),
    pa.field("estimated_kwh", pa.float64()),
    pa.field("energy_p", MONEY),
    pa.field("standing_p_per_day", inputs.PRICE),
    pa.field("standing_p", MONEY),
    pa.field("net_p", MONEY),
    pa.field("vat_rate", pa.decimal128(6, 4)),
    pa.field("vat_p", MONEY),
    pa.field("total_p", MONEY),
    pa.field("unpriced_periods", pa.int32()),
    pa.field("unpriced", pa.list_(TS)),
    pa.field("run_from", pa.date32()),
    pa.field("run_to", pa.date32()),
    pa.field("run_account", pa.string()),
])
LINES_SCHEMA = pa.schema([
    pa.field("account", pa.string(), nullable=False),
    pa.field("meter_point", pa.string(), nullable=False),
    pa.field("bill_from", pa.date32(), nullable=False),
    pa.field("bill_to", pa.date32(), nullable=False),
    pa.field("tariff", pa.string(), nullable=False),
    pa.field("band", pa.string(), nullable=False),
    pa.field("kwh", pa.float64()),
    pa.field("estimated_kwh", pa.float64()),
    pa.field("unit_p", inputs.PRICE),
    pa.field("amount_p", MONEY),
    pa.field("run_from", pa.date32()),
    pa.field("run_to", pa.date32()),
    pa.field("run_account", pa.string()),
])


# ------------------------------------------------------------------------------------------------- extract


def days_of(start: date, end: date) -> list[date]:
    return [start + timedelta(days=i) for i in range((end - start).days)]


def utc_span(start: date, end: date) -> tuple[datetime, datetime]:
    return cal.day_bounds(start)[0], cal.day_bounds(end)[0]


def extract(spark: SparkSession, jl: lakeio.JobLake, start: date, end: date) -> DataFrame:
    """The clean reads of the dates."""
    urls = [jl.spark_url(lakeio.current(jl.lake, clean_dir(d))) for d in days_of(start, end)
            if lakeio.output_exists(jl.lake, clean_dir(d))]
    return lakeio.read_files(spark, urls, clean_schema())


def registrations(registry: pa.Table, meter_points: set[str]) -> dict[str, list[tuple]]:
    """Per meter point of ``meter_points``, its registry rows (effective_from, effective_to, ssc)."""
    out: dict[str, list[tuple]] = {}
    for r in registry.select(["meter_point", "effective_from", "effective_to", "ssc"]).to_pylist():
        if r["meter_point"] in meter_points:
            out.setdefault(r["meter_point"], []).append((r["effective_from"], r["effective_to"], r["ssc"]))
    return out


def reference_rows(bills: list[billing.BillPeriod], tariffs_: dict[str, tariffs.Tariff], register_of,
                   prices: dict[str, dict], start: date, end: date) -> tuple[list[tuple], list[tuple], list[str]]:
    """The two small tables the transform joins, from the core package's rules, and the bands: bills ``(bill,
    meter_point, bill_from, bill_to, rate_base)`` and rates ``(rate_key, band, unit_up)``: per tariff billed (and,
    for a tou tariff, per SSC of its bills: the *rate set* of a bill) each half-hour of [start, end) with its band
    (the SSC's register then, as its index in the sorted bands; a half-hour in none has no row) and unit price in
    micro-p/kWh (null: no price). Spark groups by a number faster than by a string; :func:`split` names them.

    A half-hour's rate is found by one number, ``rate_key = rate_base + slot``: the rate sets are numbered and
    each takes the next ``len(half-hours)`` keys, so a bill's ``rate_base`` is its set's first key minus the
    first half-hour's slot (half-hours since the epoch). A join on one long key whose values are dense is an
    array lookup in Spark, where (tariff, SSC, slot) would hash two strings per read."""
    halfhours = tariffs.halfhours(start, end)
    first = int(halfhours[0].timestamp()) // 1800

    def rate_set(b: billing.BillPeriod) -> tuple[str, str]:
        return b.tariff, (b.ssc or "") if tariffs_[b.tariff].kind == "tou" else ""

    sets = {key: n for n, key in enumerate(sorted({rate_set(b) for b in bills}))}
    bill_rows = [(n, b.meter_point, b.bill_from, b.bill_to, sets[rate_set(b)] * len(halfhours) - first)
                 for n, b in enumerate(bills)]
    rate_rows: list[tuple] = []
    rate_of: dict[tuple, int | None] = {}

    def unit_up(name: str, band: str, at: datetime) -> int | None:
        if (name, band, at) not in rate_of:
            p = tariffs.unit_price(tariffs_[name], band, at, prices.get(name))
            rate_of[name, band, at] = None if p is None else int(p * MICRO)
        return rate_of[name, band, at]

    for (name, ssc), n in sets.items():
        kind = tariffs_[name].kind
        for k, at in enumerate(halfhours):
            band = (tariffs.FLAT_BAND if kind == "flat" else tariffs.DYNAMIC_BAND if kind == "dynamic"
                    else register_of(ssc, at) if ssc and register_of is not None else None)
            if band is not None:
                rate_rows.append((n * len(halfhours) + k, band, unit_up(name, band, at)))
    bands = sorted({r[1] for r in rate_rows})
    index = {band: i for i, band in enumerate(bands)}
    return bill_rows, [(key, index[band], up) for key, band, up in rate_rows], bands


# ----------------------------------------------------------------------------------------------- transform


def slot_of(ts):
    """The half-hour (since the epoch) an instant falls in, as the calendar frame's ``slot``."""
    from pyspark.sql import functions as F

    return F.floor(F.unix_seconds(ts) / 1800).cast("long")


#: :func:`slot_of` a read's ``interval_start_utc``, in SQL
SLOT_SQL = "floor(unix_seconds(interval_start_utc) / 1800)"


def transform(clean: DataFrame, bills: DataFrame, rates: DataFrame, *, start: date, end: date) -> DataFrame:
    """Per (bill, band, unpriced_slot): the priced Wh (``wh``; null when none is priced), of which estimated
    (``estimated_wh``), and the exact sum of Wh × micro-pence/kWh (``p_wh``: whole numbers, so exact and fast in
    a long; :data:`MICRO`); ``unpriced_slot`` is null on the priced rows, and on the others a half-hour with
    energy but no price (UTC half-hours since the epoch; ``band`` null where the meter's SSC has no register
    then). One pass over the reads, two broadcast joins, one hash aggregate on numbers. ``bills``, ``rates``:
    :func:`reference_rows`'s tables; :func:`split` folds the collected rows."""
    from pyspark.sql import functions as F

    # SQL text rather than Column calls, whose py4j round trips cost more than the aggregate on a small portfolio
    hh = (vee.usable_intervals(clean.filter(f"settlement_date >= DATE'{start}' AND settlement_date < DATE'{end}'"))
          .selectExpr("meter_point", "settlement_date", f"{SLOT_SQL} AS slot", "value_wh", "is_estimated"))
    # each usable read as it is (a bill's sum needs no per-period total first): its half-hour and whether it is
    # an estimate, the source's or the clean job's (the clean job's ``is_estimated`` is its quality 'estimated')
    billed = (hh.join(bills.hint("broadcast"), F.expr("meter_point = bill_meter_point AND settlement_date >= bill_from"
                                                      " AND settlement_date < bill_to"))
              .selectExpr("bill", "slot", "value_wh", "is_estimated", "rate_base + slot AS rate_key"))
    # the unpriced half-hour as a key (null for a priced one) keeps this one plain hash aggregate: a list of
    # them per bill would need an object aggregate, which sorts every read once a task holds more than a few
    # groups, or a second shuffle; the driver folds the few rows left (:func:`split`)
    return (billed.join(rates.hint("broadcast"), "rate_key", "left")
            .selectExpr("bill", "band", "CASE WHEN unit_up IS NULL AND value_wh <> 0 THEN slot END AS unpriced_slot",
                        "CASE WHEN unit_up IS NOT NULL THEN value_wh END AS wh",
                        "CASE WHEN unit_up IS NOT NULL AND is_estimated THEN value_wh ELSE 0 END AS estimated_wh",
                        "value_wh * unit_up AS p_wh")
            .groupBy("bill", "band", "unpriced_slot")
            .agg(F.expr("sum(wh) AS wh"), F.expr("sum(estimated_wh) AS estimated_wh"), F.expr("sum(p_wh) AS p_wh")))


def split(rows: list[dict], bands: list[str]) -> tuple[list[dict], dict[int, list[int]]]:
    """:func:`transform`'s collected rows as (the priced sums per bill and band, named, the unpriced half-hours
    per bill)."""
    energy = []
    unpriced: dict[int, set[int]] = defaultdict(set)
    for r in rows:
        if r["unpriced_slot"] is not None:
            unpriced[r["bill"]].add(r["unpriced_slot"])
        elif r["wh"] is not None:
            energy.append({**r, "band": None if r["band"] is None else bands[r["band"]]})
    return energy, {b: sorted(s) for b, s in unpriced.items()}


# ---------------------------------------------------------------------------------------------- pricing


def price(bills: list[billing.BillPeriod], tariffs_: dict[str, tariffs.Tariff], energy: list[dict],
          unpriced: dict[int, list[int]], *, vat_rate: Decimal, run: tuple[date, date, str | None]
          ) -> tuple[pa.Table, pa.Table]:
    """The bills and bill lines as tables: each bill's sums priced by :func:`meterlake.billing.price_bill`."""
    by_bill: dict[int, list[billing.Energy]] = defaultdict(list)
    for e in energy:
        b = bills[e["bill"]]
        rate = tariffs_[b.tariff].rate_on(b.bill_from)
        unit = None if e["band"] == tariffs.DYNAMIC_BAND or rate is None else rate.unit_p.get(e["band"])
        exact_p = Decimal(e["p_wh"]) / 1000 / MICRO
        by_bill[e["bill"]].append(billing.Energy(e["band"], Decimal(e["wh"]) / 1000,
                                                 Decimal(e["estimated_wh"]) / 1000, exact_p, unit))
    run_cols = {"run_from": run[0], "run_to": run[1], "run_account": run[2]}
    heads, lines = [], []
    for n, b in enumerate(bills):
        tariff = tariffs_[b.tariff]
        rate = tariff.rate_on(b.bill_from)
        standing = rate.standing_p_per_day if rate else Decimal(0)
        m = billing.price_bill(by_bill.get(n, []), days=b.days, standing_p_per_day=standing, vat_rate=vat_rate)
        missing = [datetime.fromtimestamp(s * 1800, UTC) for s in unpriced.get(n, [])]
        key = {"account": b.account, "meter_point": b.meter_point}
        heads.append({**key, "tariff": b.tariff, "kind": tariff.kind, "ssc": b.ssc, "bill_from": b.bill_from,
                      "bill_to": b.bill_to, "days": b.days, "status": "incomplete" if missing else "complete",
                      "energy_kwh": float(m["energy_kwh"]), "estimated_kwh": float(m["estimated_kwh"]),
                      "energy_p": m["energy_p"], "standing_p_per_day": standing, "standing_p": m["standing_p"],
                      "net_p": m["net_p"], "vat_rate": m["vat_rate"], "vat_p": m["vat_p"], "total_p": m["total_p"],
                      "unpriced_periods": len(missing), "unpriced": missing, **run_cols})
        lines += [{**key, "bill_from": b.bill_from, "bill_to": b.bill_to, "tariff": b.tariff, "band": ln["band"],
                   "kwh": float(ln["kwh"]), "estimated_kwh": float(ln["estimated_kwh"]), "unit_p": ln["unit_p"],
                   "amount_p": ln["amount_p"], **run_cols} for ln in m["lines"]]
    return pa.Table.from_pylist(heads, schema=BILLS_SCHEMA), pa.Table.from_pylist(lines, schema=LINES_SCHEMA)


# ---------------------------------------------------------------------------------------------------- load


def run_dir(start: date, end: date, account: str | None) -> str:
    scope = "" if account is None else f"/account={account}"
    return f"from={start.isoformat()}/to={end.isoformat()}{scope}"


def output_paths(start: date, end: date, account: str | None) -> tuple[str, str]:
    d = run_dir(start, end, account)
    return f"{BILLS_DIR}/{d}/bills.parquet", f"{LINES_DIR}/{d}/bill_lines.parquet"


def load(heads: pa.Table, lines: pa.Table, jl: lakeio.JobLake, start: date, end: date, account: str | None) -> str:
    """Write the bills and lines; the digest of both files."""
    bills_path, lines_path = output_paths(start, end, account)
    d1 = lakeio.write_deterministic(jl.lake, lines_path, lines)
    d2 = lakeio.write_deterministic(jl.lake, bills_path, heads)
    return lakeio.fingerprint([d2, d1])


# ------------------------------------------------------------------------------------------------ answer


def _num(value) -> float | None:
    return None if value is None else float(value)


def bills_json(heads: pa.Table, lines: pa.Table, clear: dict[str, str]) -> list[dict]:
    """The bills of the ``--json`` answer (README) from the written tables, accounts by their clear ids
    (``clear``: {pseudonym: id})."""
    by_bill: dict[tuple, list[dict]] = defaultdict(list)
    for ln in lines.to_pylist():
        by_bill[(ln["account"], ln["meter_point"], ln["bill_from"])].append(
            {"band": ln["band"], "kwh": round(ln["kwh"], 3), "unit_p": _num(ln["unit_p"]),
             "amount_p": _num(ln["amount_p"]), "estimated_kwh": round(ln["estimated_kwh"], 3)})
    out = []
    for h in heads.to_pylist():
        out.append({"account": clear.get(h["account"], h["account"]), "meter_point": h["meter_point"],
                    "tariff": h["tariff"], "kind": h["kind"], "bill_from": h["bill_from"], "bill_to": h["bill_to"],
                    "days": h["days"],
                    "status": h["status"], "lines": by_bill[(h["account"], h["meter_point"], h["bill_from"])],
                    "energy_kwh": round(h["energy_kwh"], 3), "energy_p": _num(h["energy_p"]),
                    "standing_p": _num(h["standing_p"]), "net_p": _num(h["net_p"]), "vat_rate": _num(h["vat_rate"]),
                    "vat_p": _num(h["vat_p"]), "total_p": _num(h["total_p"]), "unpriced": h["unpriced"]})
    # in the order of the accounts' clear ids, as an operator reads them (the lake's rows: their pseudonyms')
    return sorted(out, key=lambda b: (b["account"], b["meter_point"], b["bill_from"]))


def bills_summary(heads: pa.Table, lines: pa.Table) -> dict:
    """The ``--summary`` answer's counts and totals of the written bills (``--json`` lists each bill instead: a
    list that grows with the meters, 390 MB at a million). Sums in columnar form, exact in Decimal for money."""
    import pyarrow.compute as pc

    def total(name, digits):
        value = pc.sum(heads.column(name)).as_py()
        return round(float(value or 0), digits)

    incomplete = pc.sum(pc.equal(heads.column("status"), "incomplete")).as_py() or 0
    return {"bills": heads.num_rows, "complete": heads.num_rows - incomplete, "incomplete": incomplete,
            "lines": lines.num_rows, "meter_points": len(pc.unique(heads.column("meter_point"))),
            "accounts": len(pc.unique(heads.column("account"))), "energy_kwh": total("energy_kwh", 3),
            "estimated_kwh": total("estimated_kwh", 3), "energy_p": total("energy_p", 2),
            "standing_p": total("standing_p", 2), "net_p": total("net_p", 2), "vat_p": total("vat_p", 2),
            "total_p": total("total_p", 2), "unpriced_periods": int(pc.sum(heads.column("unpriced_periods")).as_py()
                                                                    or 0)}


def _message(status: str, heads: pa.Table, start: date, end: date, uncleaned: list[date], since: str = "") -> str:
    import pyarrow.compute as pc

    # columnar: a million bills as Python rows would cost the driver seconds and gigabytes
    incomplete = pc.sum(pc.equal(heads.column("status"), "incomplete")).as_py() or 0
    total = pc.sum(heads.column("total_p")).as_py() or Decimal(0)
    text = f"{start} to {end}: {heads.num_rows} bill(s), {incomplete} incomplete, £{total / 100:,.2f} including VAT"
    if uncleaned:  # no energy is billed for a date the clean job has not written
        text += f"; {len(uncleaned)} date(s) without clean_reads (`meterlake job clean --date D`): {uncleaned[0]}…"
    return f"{text}; inputs unchanged since {since}, nothing to do" if status == "unchanged" else text


# ----------------------------------------------------------------------------------------------------- run


def _fingerprint(jl: lakeio.JobLake, start: date, end: date, account: str | None, vat_rate: Decimal) -> str:
    return lakeio.fingerprint({
        "job": JOB, "version": JOB_VERSION, "from": start, "to": end, "account": account, "vat_rate": str(vat_rate),
        "clean": {d.isoformat(): clean_state(jl, d) for d in days_of(start, end)},
        "reference": inputs.digests(jl.lake), "registry": lakeio.file_digest(jl.lake, registry_job.PATH),
    })


@jobruns.recorded("bill")
def run(settings, start: date, end: date, *, account: str | None = None, spark: SparkSession | None = None,
        master: str | None = None, force: bool = False, summary: bool = False) -> dict:
    """Bill the accounts (or ``account``) for local dates [start, end) unless the inputs are unchanged.
    ``summary``: the answer has ``summary`` (:func:`bills_summary`) in place of ``bills``."""
    if end <= start:
        raise UsageError(f"--to {end} is not after --from {start}")
    if account is not None and not _SAFE.fullmatch(account):
        raise UsageError(f"--account {account!r}: letters, digits, '_', '.', '-' only (1-64)")
    vat_rate = tariffs.money(settings.jobs.bill_vat_rate)
    jl = lakeio.open_job_lake(settings)
    # the lake names accounts by pseudonym (the output path, its rows, the checkpoint); the answer by clear id
    wanted = None if account is None else pseudonym.for_settings(settings).one(account)
    accounts = [a for a in inputs.read_accounts(jl.lake) if wanted is None or a.account == wanted]
    if not accounts:
        raise UsageError("no accounts to bill: load them with `meterlake accounts load FILE`"
                         + (f" (none is {account!r})" if account else ""))
    tariffs_ = inputs.read_tariffs(jl.lake)
    unknown = sorted({a.tariff for a in accounts} - set(tariffs_))
    if unknown:
        raise UsageError(f"accounts name tariffs that are not loaded: {unknown} (`meterlake tariffs load FILE`)",
                         tariffs=unknown)
    bills = billing.bill_periods(accounts, tariffs_, start, end)
    tou = {name for name, t in tariffs_.items() if t.kind == "tou"}
    registry = registry_job.extract(jl.lake)
    bills = billing.with_ssc(bills, registrations(registry, {b.meter_point for b in bills if b.tariff in tou}), tou)
    used = {b.tariff for b in bills}
    defects = inputs.read_defects(jl.lake, used, start, end)
    clear = {} if summary else inputs.account_ids(settings, {a.account for a in accounts})  # bills_json's
    paths = output_paths(start, end, wanted)
    key = f"{start}/{end}/{wanted or '*'}"
    checkpoint = lakeio.read_checkpoint(jl.lake, JOB)
    previous = checkpoint.get(key)
    fp = _fingerprint(jl, start, end, wanted, vat_rate)
    answer = {"path": paths[0]}

    def listing(heads: pa.Table, lines: pa.Table) -> dict:
        return {"summary": bills_summary(heads, lines)} if summary else {"bills": bills_json(heads, lines, clear)}
    uncleaned = [d for d in days_of(start, end) if not clean_state(jl, d)]
    if not force and previous and previous["fingerprint"] == fp \
            and all(lakeio.output_exists(jl.lake, p) for p in paths):
        heads, lines = (lakeio.read_output(jl.lake, p) for p in paths)
        if lakeio.fingerprint([lakeio.file_digest(jl.lake, p) for p in paths]) == previous["digest"]:
            return {"status": "unchanged", **answer, "digest": previous["digest"], "from": start, "to": end,
                    **listing(heads, lines),
                    "defects": defects, "message": _message("unchanged", heads, start, end, uncleaned, previous["at"])}
    rules = inputs.read_mdd(jl.lake)
    if rules is None and any(tariffs_[t].kind == "tou" for t in used):
        raise UsageError("a tou tariff needs the market domain data: `meterlake mdd load DIR` first")
    dynamic = {t for t in used if tariffs_[t].kind == "dynamic"}
    prices = inputs.read_prices(jl.lake, dynamic, *utc_span(start, end))
    bill_rows, rate_rows, bands = reference_rows(bills, tariffs_, rules.register_of if rules else None, prices,
                                                 start, end)
    with lakeio.session(settings, f"meterlake-bill-{start}-{end}", spark, master) as s:
        clean = extract(s, jl, start, end)
        bills_df = lakeio.small_frame(s, bill_rows, BILLS_DDL)
        rates_df = lakeio.small_frame(s, rate_rows, RATES_DDL)
        result = transform(clean, bills_df, rates_df, start=start, end=end)
        energy_rows, unpriced_rows = split([r.asDict() for r in result.collect()], bands)
    heads, lines = price(bills, tariffs_, energy_rows, unpriced_rows, vat_rate=vat_rate, run=(start, end, wanted))
    digest = load(heads, lines, jl, start, end, wanted)
    checkpoint[key] = {"fingerprint": fp, "digest": digest, "bills": heads.num_rows, "at": lakeio.stamp()}
    lakeio.write_checkpoint(jl.lake, JOB, checkpoint)
    return {"status": "billed", **answer, "digest": digest, "from": start, "to": end,
            **listing(heads, lines), "defects": defects,
            "message": _message("billed", heads, start, end, uncleaned)}


def main(argv: list[str] | None = None) -> int:
    return lakeio.job_main(argv, "bill", __doc__,
                           lambda settings, a, **kw: run(settings, a.start, a.end, account=a.account,
                                                         summary=a.summary, **kw))


if __name__ == "__main__":
    sys.exit(main())
