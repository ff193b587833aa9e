"""What a meter point is registered as (fuel, SSC, profile class, prepay capability), for validating commands.

Two sources, chosen by ``meters.registrations``:

* a CSV file: the registry's CSV (``meterlake registry load``'s columns; the generator writes one) with an optional
  ``prepay_capable`` column (``true``/``false``). Columns it does not use are ignored.
* empty (the default): the lake's registry table (the ``registry`` output of :mod:`meterlake.lake.outputs`), as
  ``meterlake registry load`` writes it. Its meter points are pseudonyms, so a meter point is looked up by its
  pseudonym.

The registration that applies is the one in force on the given day: the latest ``effective_from`` on or before it
whose ``effective_to`` (exclusive) is after it. Prepay capability, when no column says: domestic (profile class 1
or 2) and gas meters are prepay-capable, others (non-domestic, half-hourly settled) are not.
"""
from __future__ import annotations

import csv
from collections.abc import Callable
from datetime import date
from pathlib import Path

from meterlake import ids
from meterlake.errors import UsageError
from streaming.commands.model import Registration

_TRUE = {"true", "yes", "1", "y"}
_FALSE = {"false", "no", "0", "n", ""}

Lookup = Callable[[str, date], Registration | None]


def _prepay(value: str | None, fuel: str, profile_class: str | None) -> bool:
    if value is not None and value.strip() != "":
        return value.strip().lower() in _TRUE
    return fuel == "gas" or profile_class in ("1", "2")


def in_force(rows: list[dict], day: date) -> dict | None:
    """The row in force on ``day`` among one meter point's rows (``effective_from``, ``effective_to`` dates)."""
    live = [r for r in rows
            if r["effective_from"] <= day and (r.get("effective_to") is None or r["effective_to"] > day)]
    return max(live, key=lambda r: r["effective_from"]) if live else None


def _registration(meter_point: str, row: dict) -> Registration:
    fuel = row.get("fuel") or ids.fuel_of(meter_point) or "electricity"
    return Registration(meter_point=meter_point, fuel=fuel, ssc=row.get("ssc") or None,
                        profile_class=row.get("profile_class") or None,
                        prepay_capable=_prepay(row.get("prepay_capable"), fuel, row.get("profile_class") or None))


def parse_csv(text: str, source: str) -> dict[str, list[dict]]:
    """Rows per meter point of a registrations CSV. Raises UsageError naming the file, line and field."""
    reader = csv.DictReader(text.splitlines())
    header = reader.fieldnames or []
    for needed in ("meter_point", "effective_from"):
        if needed not in header:
            raise UsageError(f"{source}: line 1: no column {needed!r}", path=source, line=1, field=needed)
    out: dict[str, list[dict]] = {}
    for line, row in enumerate(reader, 2):
        mp = (row.get("meter_point") or "").strip()
        if not mp:
            continue
        try:
            start = date.fromisoformat((row.get("effective_from") or "").strip())
            end_text = (row.get("effective_to") or "").strip()
            end = date.fromisoformat(end_text) if end_text else None
        except ValueError as exc:
            raise UsageError(f"{source}: line {line}: effective_from/effective_to: {exc}", path=source, line=line,
                             field="effective_from") from None
        flag = row.get("prepay_capable")
        if flag is not None and flag.strip().lower() not in _TRUE | _FALSE:
            raise UsageError(f"{source}: line {line}: prepay_capable {flag!r} is not true or false", path=source,
                             line=line, field="prepay_capable")
        out.setdefault(mp, []).append({
            "effective_from": start, "effective_to": end, "ssc": (row.get("ssc") or "").strip() or None,
            "profile_class": (row.get("profile_class") or "").strip() or None, "prepay_capable": flag})
    return out


def from_csv(path: str | Path) -> Lookup:
    path = Path(path)
    try:
        rows = parse_csv(path.read_text(encoding="utf-8"), str(path))
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read the registrations {path}: {exc}", path=str(path)) from None

    def lookup(meter_point: str, day: date) -> Registration | None:
        row = in_force(rows.get(meter_point, []), day)
        return _registration(meter_point, row) if row else None

    return lookup


def from_lake(settings) -> Lookup:
    """Registrations from the lake's registry table (by pseudonym); read once, on the first lookup."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from meterlake import pseudonym
    from meterlake.lake import files, outputs

    cache: dict = {}

    def table():
        if "table" not in cache:
            lake = files.open_lake(settings)
            found = outputs.view_files(lake, ["registry"])["registry"]
            if not found:
                raise UsageError(f"no registry in the lake {settings.lake_url}: load one with `meterlake registry "
                                 "load FILE`, or set meters.registrations to a CSV")
            cache["table"] = pa.concat_tables(pq.read_table(f, filesystem=lake.fs) for f in found)
            cache["pseudonyms"] = pseudonym.for_settings(settings)
        return cache["table"], cache["pseudonyms"]

    def lookup(meter_point: str, day: date) -> Registration | None:
        registry, names = table()
        rows = registry.filter(pc.equal(registry.column("meter_point"), names.one(meter_point))).to_pylist()
        row = in_force(rows, day)
        return _registration(meter_point, row) if row else None

    return lookup


def for_settings(settings) -> Lookup:
    source = settings.meters.registrations
    return from_csv(settings.resolve(source)) if source else from_lake(settings)
