"""Billing's reference data in the lake: Elexon MDD, tariffs (with dynamic prices and price file defects) and
accounts. Small tables, so plain Arrow, as the registry.

Run: ``meterlake mdd load DIR``, ``meterlake tariffs load FILE...``, ``meterlake accounts load FILE [--replace]``
(add ``--json``). The parsing rules are the core package's (:mod:`meterlake.mdd`, :mod:`meterlake.tariffs`,
:mod:`meterlake.billing`); this module stores and reads back.

Tables (docs/jobs.md, "Billing"):

* ``mdd/ssc.parquet``, ``mdd/tpr.parquet``, ``mdd/clock_intervals.parquet``, ``mdd/ssc_tpr.parquet``: one
  release, replaced whole by a load.
* ``tariffs/rates.parquet``: one row per (tariff, effective_from, band) (a dynamic tariff's band is null);
  ``tariffs/prices.parquet``: one row per (tariff, interval_start_utc) of a dynamic tariff;
  ``tariffs/defects.parquet``: one row per price file defect. Loading a file replaces the tariffs it names.
* ``accounts/accounts.parquet``: one row per (account, meter_point, effective_from), the account and the meter
  point as their pseudonyms (:mod:`meterlake.pseudonym`); loading merges on that key (``--replace`` starts
  afresh).

Clear account ids never enter the lake. They live where the operator keeps them: the accounts files loaded, and
``<state_dir>/accounts/identifiers.parquet`` (0600, beside the local stack's secrets, outside the lake), which a
load merges its accounts' (pseudonym, account) pairs into, so that ``job bill --account A`` finds A's pseudonym
and ``--json`` prints A back (:func:`account_ids`). The lake's readers (dbt, notebooks, ``lake sql``) see
pseudonyms, and ``lake sql "… WHERE account = pseudonym('A')"`` finds an account's bills.
"""
from __future__ import annotations

import contextlib
import dataclasses
import os
import tempfile
from collections.abc import Iterable
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from meterlake import billing, mdd, pseudonym, reference, tariffs
from meterlake.errors import UsageError

MDD_DIR = "mdd"
RATES = "tariffs/rates/rates.parquet"   # one table per slot: an output version is a whole directory
PRICES = "tariffs/prices/prices.parquet"
DEFECTS = "tariffs/defects/defects.parquet"
ACCOUNTS = "accounts/accounts.parquet"
PRICE = pa.decimal128(18, 6)
TS = pa.timestamp("us", tz="UTC")

RATES_SCHEMA = pa.schema([("tariff", pa.string()), ("kind", pa.string()), ("effective_from", pa.date32()),
                          ("band", pa.string()), ("unit_p", PRICE), ("standing_p_per_day", PRICE),
                          ("source_file", pa.string())])
PRICES_SCHEMA = pa.schema([("tariff", pa.string()), ("interval_start_utc", TS), ("unit_p", PRICE),
                           ("source_file", pa.string())])
DEFECTS_SCHEMA = pa.schema([("tariff", pa.string()), ("local_date", pa.date32()), ("kind", pa.string()),
                            ("detail", pa.string()), ("unpriced", pa.list_(TS))])
ACCOUNTS_SCHEMA = pa.schema([("account", pa.string()), ("meter_point", pa.string()), ("tariff", pa.string()),
                             ("effective_from", pa.date32()), ("effective_to", pa.date32()), ("bill_day", pa.int8()),
                             ("source_file", pa.string())])


def _lake(settings):
    from jobs.lakeio import open_job_lake

    return open_job_lake(settings)


def _write(lake, relative: str, table: pa.Table) -> str:
    from jobs.lakeio import write_deterministic

    return write_deterministic(lake, relative, table)


def _read(lake, relative: str, schema: pa.Schema) -> pa.Table:
    from jobs.lakeio import output_exists, read_output

    return read_output(lake, relative).select(schema.names).cast(schema) \
        if output_exists(lake, relative) \
        else schema.empty_table()


def mdd_path(table: str) -> str:
    return f"{MDD_DIR}/{table}/{table}.parquet"


# ---------------------------------------------------------------------------------------------------- MDD


def load_mdd(settings, directory: str | Path) -> dict:
    tables = mdd.read_dir(directory)
    jl = _lake(settings)
    digests = {name: _write(jl.lake, mdd_path(name), table) for name, table in tables.items()}
    rows = {name: t.num_rows for name, t in tables.items()}
    return {"path": str(directory), "lake": jl.url, "loaded": sum(rows.values()), "rows": rows,
            "ssc": rows["ssc"], "digest": _digest_of(digests)}


def read_mdd(lake) -> mdd.Mdd | None:
    """The stored release's rules (None when none was loaded)."""
    from jobs.lakeio import output_exists, read_output

    if not all(output_exists(lake, mdd_path(t)) for t in mdd.FILES):
        return None
    return mdd.Mdd.from_tables({t: read_output(lake, mdd_path(t)) for t in mdd.FILES})


# ------------------------------------------------------------------------------------------------ tariffs


def _rate_rows(t: tariffs.Tariff) -> list[dict]:
    rows = []
    for r in t.rates:
        bands = r.unit_p.items() or [(None, None)]
        rows += [{"tariff": t.name, "kind": t.kind, "effective_from": r.effective_from, "band": band,
                  "unit_p": price, "standing_p_per_day": r.standing_p_per_day, "source_file": t.source_file}
                 for band, price in bands]
    return rows


def _without(table: pa.Table, names: set[str]) -> pa.Table:
    return table.filter(pc.invert(pc.is_in(table.column("tariff"), pa.array(sorted(names), pa.string()))))


def load_tariffs(settings, files: list[str | Path]) -> dict:
    """Store the tariffs of ``files`` (replacing stored tariffs of the same names); a dynamic tariff's price file
    is read and checked, its defects stored beside its prices."""
    defined: dict[str, tariffs.Tariff] = {}
    for f in files:
        for t in tariffs.load_toml(f):
            if t.name in defined:
                raise UsageError(f"{f}: tariff {t.name} is defined twice", path=str(f), tariff=t.name)
            defined[t.name] = t
    rates, prices, defects = [], [], []
    for t in defined.values():
        rates += _rate_rows(t)
        if t.kind == "dynamic":
            found, problems = tariffs.read_prices(t)
            source = t.prices.file.name
            prices += [{"tariff": t.name, "interval_start_utc": at, "unit_p": p, "source_file": source}
                       for at, p in sorted(found.items())]
            defects += [{"tariff": d.tariff, "local_date": d.local_date, "kind": d.kind, "detail": d.detail,
                         "unpriced": list(d.unpriced)} for d in problems]
    jl = _lake(settings)
    names = set(defined)
    out = {}
    for path, schema, new in ((RATES, RATES_SCHEMA, rates), (PRICES, PRICES_SCHEMA, prices),
                              (DEFECTS, DEFECTS_SCHEMA, defects)):
        kept = _without(_read(jl.lake, path, schema), names)
        merged = pa.concat_tables([kept, pa.Table.from_pylist(new, schema=schema)])
        out[path] = _write(jl.lake, path, merged)
    return {"paths": [str(f) for f in files], "lake": jl.url, "loaded": len(defined), "rows": len(rates),
            "tariffs": [{"tariff": t.name, "kind": t.kind, "rates": len(t.rates),
                         "prices": sum(1 for p in prices if p["tariff"] == t.name),
                         "defects": sum(1 for d in defects if d["tariff"] == t.name)} for t in defined.values()],
            "defects": [{k: d[k] for k in ("tariff", "local_date", "kind", "detail")} for d in defects],
            "digest": _digest_of(out)}


def read_tariffs(lake) -> dict[str, tariffs.Tariff]:
    """The stored tariffs (without their price files: :func:`read_prices` has the prices)."""
    table = _read(lake, RATES, RATES_SCHEMA)
    by_tariff: dict[str, dict] = {}
    for r in table.to_pylist():
        t = by_tariff.setdefault(r["tariff"], {"kind": r["kind"], "source": r["source_file"], "rates": {}})
        rate = t["rates"].setdefault(r["effective_from"], [{}, r["standing_p_per_day"]])
        if r["band"] is not None:
            rate[0][r["band"]] = r["unit_p"]
    out = {}
    for name, t in by_tariff.items():
        rates = tuple(tariffs.Rate(when, bands, standing) for when, (bands, standing) in sorted(t["rates"].items()))
        out[name] = tariffs.Tariff(name, t["kind"], rates, None, t["source"])
    return out


def read_prices(lake, names: set[str], start: datetime, end: datetime) -> dict[str, dict[datetime, Decimal]]:
    """{dynamic tariff: {UTC half-hour start: p/kWh}} for ``names``, half-hours in [start, end)."""
    from jobs.lakeio import output_exists, read_output

    if not output_exists(lake, PRICES) or not names:
        return {}
    table = read_output(lake, PRICES)
    at = table.column("interval_start_utc")
    keep = pc.and_(pc.is_in(table.column("tariff"), pa.array(sorted(names), pa.string())),
                   pc.and_(pc.greater_equal(at, pa.scalar(start, TS)), pc.less(at, pa.scalar(end, TS))))
    out: dict[str, dict[datetime, Decimal]] = {}
    for r in table.filter(keep).to_pylist():
        out.setdefault(r["tariff"], {})[r["interval_start_utc"]] = r["unit_p"]
    return out


def read_defects(lake, names: set[str], start: date, end: date) -> list[dict]:
    """The stored price file defects of ``names`` on local dates [start, end): {tariff, local_date, kind, detail}."""
    rows = _read(lake, DEFECTS, DEFECTS_SCHEMA).to_pylist()
    return [{k: r[k] for k in ("tariff", "local_date", "kind", "detail")} for r in rows
            if r["tariff"] in names and start <= r["local_date"] < end]


# ---------------------------------------------------------------------------------------------- accounts


def load_accounts(settings, path: str | Path, *, replace: bool = False) -> dict:
    path = Path(path)
    accounts = reference.parse_whole(path, billing.parse_accounts)
    return {"path": str(path), **store_accounts(settings, accounts, path.name, replace=replace)}


def store_accounts(settings, accounts: list[billing.Account], source: str, *, replace: bool = False) -> dict:
    """Merge ``accounts`` (accounts and meter points as identifiers) into the lake's accounts on (account,
    meter_point, effective_from), or replace them all; ``source`` is recorded as each new row's ``source_file``.
    The accounts' clear ids go to :func:`identifiers_path`, outside the lake."""
    keys = [(a.account, a.meter_point, a.effective_from) for a in accounts]
    if len(set(keys)) != len(keys):
        raise UsageError(f"{source}: an account and meter point appear twice with the same effective_from",
                         path=source)
    new = pa.Table.from_pylist([{"account": a.account, "meter_point": a.meter_point, "tariff": a.tariff,
                                 "effective_from": a.effective_from, "effective_to": a.effective_to,
                                 "bill_day": a.bill_day, "source_file": source} for a in accounts],
                               schema=ACCOUNTS_SCHEMA)
    names = pseudonym.for_settings(settings)
    remember_accounts(settings, {a.account for a in accounts}, names)
    new = names.table(new)  # the lake holds pseudonyms, never meter points or account ids
    jl = _lake(settings)
    old = ACCOUNTS_SCHEMA.empty_table() if replace else _read(jl.lake, ACCOUNTS, ACCOUNTS_SCHEMA)
    new_keys = set(zip(*(new.column(c).to_pylist() for c in ("account", "meter_point", "effective_from")),
                       strict=True))
    old_keys = list(zip(*(old.column(c).to_pylist() for c in ("account", "meter_point", "effective_from")),
                        strict=True))
    kept = old.filter(pa.array([k not in new_keys for k in old_keys], pa.bool_()))
    merged = pa.concat_tables([kept, new])
    merged = merged.take(pc.sort_indices(merged, sort_keys=[("account", "ascending"), ("meter_point", "ascending"),
                                                            ("effective_from", "ascending")]))
    digest = _write(jl.lake, ACCOUNTS, merged)
    return {"lake": jl.url, "table": ACCOUNTS, "digest": digest, "loaded": new.num_rows,
            "rows": merged.num_rows, "accounts": len(pc.unique(merged.column("account"))),
            "replaced": len(new_keys & set(old_keys)), "kept": kept.num_rows}


def accounts_of(settings, meter_points: Iterable[str]) -> list[billing.Account]:
    """The stored account rows of ``meter_points`` (identifiers: the lake holds their pseudonyms), with the
    identifiers (meter points and accounts) put back, as :func:`store_accounts` takes them."""
    names = pseudonym.for_settings(settings)
    identifier = {names.one(mp): mp for mp in meter_points}
    rows = [a for a in read_accounts(_lake(settings).lake) if a.meter_point in identifier]
    clear = account_ids(settings, {a.account for a in rows})
    unknown = sorted(p for p, a in clear.items() if p == a)
    if unknown:
        raise UsageError(f"the clear ids of accounts {unknown[:3]} are not in {identifiers_path(settings)}: load "
                         "their accounts file here first (`meterlake accounts load FILE`)")
    return [dataclasses.replace(a, account=clear[a.account], meter_point=identifier[a.meter_point]) for a in rows]


# ------------------------------------------------------------------------------------- clear account ids


IDS_SCHEMA = pa.schema([("pseudonym", pa.string()), ("account", pa.string())])


def identifiers_path(settings) -> Path:
    """Where the clear account ids of the loaded accounts are kept: the operator's state directory, not the lake."""
    return settings.state_dir / "accounts" / "identifiers.parquet"


def _read_ids(settings) -> dict[str, str]:
    import pyarrow.parquet as pq

    path = identifiers_path(settings)
    if not path.exists():
        return {}
    table = pq.read_table(path, schema=IDS_SCHEMA)
    return dict(zip(table.column("pseudonym").to_pylist(), table.column("account").to_pylist(), strict=True))


def remember_accounts(settings, accounts: Iterable[str], names: pseudonym.Pseudonymiser) -> None:
    """Merge ``accounts``' (pseudonym, clear id) pairs into :func:`identifiers_path` (written whole, 0600)."""
    import pyarrow.parquet as pq

    known = _read_ids(settings)
    new = {names.one(a): a for a in accounts}
    if all(known.get(p) == a for p, a in new.items()):
        return
    known.update(new)
    path = identifiers_path(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    pairs = sorted(known.items())
    table = pa.table([pa.array([p for p, _ in pairs], pa.string()), pa.array([a for _, a in pairs], pa.string())],
                     schema=IDS_SCHEMA)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".identifiers-")
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "wb") as f:
            pq.write_table(table, f)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def account_ids(settings, pseudonyms: Iterable[str] | None) -> dict[str, str]:
    """{pseudonym: clear account id} for ``pseudonyms`` (None: every one kept), from :func:`identifiers_path`; a
    pseudonym whose clear id is not kept there (its accounts were loaded on another machine) maps to itself."""
    known = _read_ids(settings)
    return known if pseudonyms is None else {p: known.get(p, p) for p in pseudonyms}


def read_accounts(lake) -> list[billing.Account]:
    return [billing.Account(r["account"], r["meter_point"], r["tariff"], r["effective_from"], r["effective_to"],
                            r["bill_day"]) for r in _read(lake, ACCOUNTS, ACCOUNTS_SCHEMA).to_pylist()]


def digests(lake) -> dict[str, str | None]:
    """The SHA-256 of every reference table a bill run reads (its fingerprint)."""
    from jobs.lakeio import file_digest

    paths = [mdd_path(t) for t in mdd.FILES] + [RATES, PRICES, DEFECTS, ACCOUNTS]
    return {p: file_digest(lake, p) for p in paths}


def _digest_of(parts: dict[str, str]) -> str:
    import hashlib

    return hashlib.sha256("".join(f"{k}={v};" for k, v in sorted(parts.items())).encode()).hexdigest()

