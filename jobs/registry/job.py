"""Load the meter registry (who settles each meter point, and how) from a CSV into the lake.

Run: ``meterlake registry load FILE [--replace] [--json]`` (or ``python -m jobs.registry.job FILE``).

The CSV (UTF-8, a header line, comma-separated; the generator writes one for its portfolio):

==================  ========  ==================================================================================
column              required  meaning
==================  ========  ==================================================================================
meter_point         yes       MPAN core (13 digits), MPRN (6-10 digits) or LCL household id (MAC + 6 digits)
gsp_group           yes       the GSP group, ``_A`` … ``_P`` (Elexon market domain data, GSP_Group)
supplier            yes       the supplier's market participant id (e.g. ``SUPA``)
effective_from      yes       first settlement date of this registration (YYYY-MM-DD)
effective_to        no        first settlement date it no longer applies (exclusive); empty: until the meter
                              point's next registration
profile_class       no        Elexon profile class ``1`` … ``8``; empty for half-hourly-settled and gas meters
ssc                 no        standard settlement configuration, four digits (e.g. ``0393``)
llfc                no        line loss factor class id, as in the distributor's D0265 (e.g. ``1``, ``101``)
measurement_class   no        measurement class (e.g. ``C``, ``E``, ``F``); empty when a profile class applies
==================  ========  ==================================================================================

Other columns are ignored, as every reader of the project ignores columns it does not know (the schema evolution
rule, docs/lake.md), and logged as a warning; when a required column is missing the problem names them too (a
misspelt column). A bad line rejects the whole file, and the answer lists the problems with their line numbers.

Grain of the lake table (``registry/registry.parquet``): one row per (meter_point, effective_from), the meter point
being its pseudonym (:mod:`meterlake.pseudonym`), as in every lake table. Loading
merges: a row replaces the stored row of the same meter point and effective date, other stored rows stay
(``--replace`` drops them all first). On a given day the registration in force is the one with the latest
``effective_from`` at or before it whose ``effective_to`` (when given) is after it, so a new registration ends
the previous one without restating it. The registry is small, so this job is plain Arrow rather than Spark.
"""
from __future__ import annotations

import argparse
import csv
import hashlib
import io
import json
import logging
import re
import sys
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from meterlake import ids, pseudonym, reference
from meterlake.errors import UsageError

PATH = "registry/registry.parquet"
REQUIRED = ("meter_point", "gsp_group", "supplier", "effective_from")
OPTIONAL = ("effective_to", "profile_class", "ssc", "llfc", "measurement_class")
GSP_GROUPS = frozenset(ids.DISTRIBUTOR_GSP_GROUP.values())
PROFILE_CLASSES = frozenset(str(n) for n in range(1, 9))
_SSC = re.compile(r"\d{4}")

SCHEMA = pa.schema([
    pa.field("meter_point", pa.string(), nullable=False),
    pa.field("fuel", pa.string(), nullable=False),
    pa.field("gsp_group", pa.string(), nullable=False),
    pa.field("supplier", pa.string(), nullable=False),
    pa.field("profile_class", pa.string()),
    pa.field("ssc", pa.string()),
    pa.field("llfc", pa.string()),
    pa.field("measurement_class", pa.string()),
    pa.field("effective_from", pa.date32(), nullable=False),
    pa.field("effective_to", pa.date32()),
    pa.field("source_file", pa.string()),
])


def _fuel(meter_point: str) -> str | None:
    return "electricity" if ids.lcl_problem(meter_point) is None else ids.fuel_of(meter_point)


def _date(text: str) -> date | None:
    try:
        return date.fromisoformat(text) if len(text) == 10 else None
    except ValueError:
        return None


def parse(text: str, source_file: str) -> tuple[pa.Table, list[dict]]:
    """The registry rows of a CSV's text and the problems found (``{"line", "field", "problem"}``).

    Pure: rows with a problem are left out; the caller refuses the file when there is any problem.
    """
    reader = csv.reader(io.StringIO(text))
    header = next(reader, None)
    if header is None:
        return SCHEMA.empty_table(), [{"line": 1, "field": None, "problem": "the file is empty"}]
    header = [h.strip() for h in header]
    problems: list[dict] = []
    missing = [c for c in REQUIRED if c not in header]
    unknown = [c for c in header if c not in REQUIRED + OPTIONAL]
    if missing:
        detail = "; ".join(filter(None, [f"missing {missing}", unknown and f"unknown {unknown}"]))
        return SCHEMA.empty_table(), [{"line": 1, "field": None, "problem": f"header: {detail}"}]
    if unknown:
        logging.getLogger("meterlake.registry").warning("%s: columns %s are not registry columns; ignored",
                                                        source_file, unknown)
    rows = []
    for line, values in enumerate(reader, 2):
        if not values or all(not v.strip() for v in values):
            continue
        if len(values) != len(header):
            problems.append({"line": line, "field": None,
                             "problem": f"{len(values)} fields, the header has {len(header)}"})
            continue
        row = {k: (v.strip() or None) for k, v in zip(header, values, strict=True)}
        bad = []
        mp = row["meter_point"] or ""
        fuel = _fuel(mp)
        if fuel is None:
            bad.append(("meter_point", f"{mp!r} is not an MPAN core, MPRN or LCL household id"))
        if row["gsp_group"] not in GSP_GROUPS:
            bad.append(("gsp_group", f"{row['gsp_group']!r} is not a GSP group (_A … _P)"))
        if not row["supplier"]:
            bad.append(("supplier", "empty"))
        start = _date(row["effective_from"] or "")
        if start is None:
            bad.append(("effective_from", f"{row['effective_from']!r} is not a date (YYYY-MM-DD)"))
        end = None
        if row.get("effective_to"):
            end = _date(row["effective_to"])
            if end is None:
                bad.append(("effective_to", f"{row['effective_to']!r} is not a date (YYYY-MM-DD)"))
            elif start is not None and end <= start:
                bad.append(("effective_to", f"{end} is not after effective_from {start}"))
        if row.get("profile_class") and row["profile_class"] not in PROFILE_CLASSES:
            bad.append(("profile_class", f"{row['profile_class']!r} is not a profile class (1-8)"))
        if row.get("ssc") and not _SSC.fullmatch(row["ssc"]):
            bad.append(("ssc", f"{row['ssc']!r} is not a four-digit standard settlement configuration"))
        for field, problem in bad:
            problems.append({"line": line, "field": field, "problem": problem})
        if not bad:
            rows.append({"meter_point": mp, "fuel": fuel, "gsp_group": row["gsp_group"], "supplier": row["supplier"],
                         "profile_class": row.get("profile_class"), "ssc": row.get("ssc"), "llfc": row.get("llfc"),
                         "measurement_class": row.get("measurement_class"), "effective_from": start,
                         "effective_to": end, "source_file": source_file})
    return pa.Table.from_pylist(rows, schema=SCHEMA), problems


def transform(existing: pa.Table, new: pa.Table, *, replace: bool = False) -> tuple[pa.Table, dict]:
    """The registry after loading ``new`` over ``existing``, sorted by meter point and effective date, and
    counts (``rows``, ``meter_points``, ``added``, ``replaced``, ``kept``)."""
    new_keys = list(zip(new.column("meter_point").to_pylist(), new.column("effective_from").to_pylist(),
                        strict=True))
    new_set = set(new_keys)
    if len(new_set) != len(new_keys):
        raise UsageError("the file registers a meter point twice with the same effective_from")
    old = SCHEMA.empty_table() if replace else existing.select(SCHEMA.names).cast(SCHEMA)
    old_keys = list(zip(old.column("meter_point").to_pylist(), old.column("effective_from").to_pylist(),
                        strict=True))
    old_set = set(old_keys)
    kept = old.filter(pa.array([k not in new_set for k in old_keys], pa.bool_()))
    merged = pa.concat_tables([kept, new.cast(SCHEMA)])
    order = pc.sort_indices(merged, sort_keys=[("meter_point", "ascending"), ("effective_from", "ascending")])
    out = merged.take(order).combine_chunks()
    counts = {"rows": out.num_rows, "meter_points": len(pc.unique(out.column("meter_point"))),
              "added": len(new_set - old_set), "replaced": len(new_set & old_set),
              "kept": kept.num_rows}
    return out, counts


def extract(lake) -> pa.Table:
    """The stored registry (empty when none was loaded)."""
    from jobs.lakeio import current

    path = current(lake, PATH)
    if not lake.exists(path):
        return SCHEMA.empty_table()
    return lake.read_parquet(path)


@dataclass(frozen=True)
class Stored:
    """The stored registry's current version as a job reads it: its path (None when none was loaded), its
    SHA-256 (what a job's fingerprint records) and its rows (from the same bytes' Parquet footer)."""

    path: str | None
    digest: str | None
    rows: int


def stored(jl) -> Stored:
    """The stored registry of ``jl`` (a :class:`jobs.lakeio.JobLake`), read once per job run: the fingerprint,
    the broadcast decision and the Spark read all see this version."""
    from jobs.lakeio import current

    def read() -> Stored:
        path = current(jl.lake, PATH)
        data = jl.lake.read_bytes(path)
        if data is None:
            return Stored(None, None, 0)
        return Stored(path, hashlib.sha256(data).hexdigest(), pq.read_metadata(pa.BufferReader(data)).num_rows)

    return jl.once("registry", read)


def read_spark(spark, jl):
    """The stored registry as a Spark DataFrame, for the jobs (empty when none was loaded). ``jl``: a
    :class:`jobs.lakeio.JobLake`."""
    from jobs.lakeio import read_files, spark_schema

    path = stored(jl).path
    return read_files(spark, [jl.spark_url(path)] if path is not None else [], spark_schema(SCHEMA))


def fits_broadcast(jl, max_rows: int) -> bool:
    """Whether the stored registry has at most ``max_rows`` rows (``[jobs] registry_broadcast_rows``), so a job
    may send it whole to every executor."""
    return stored(jl).rows <= max_rows


def load(table: pa.Table, lake) -> str:
    """Write the registry; returns the SHA-256 of the file (what settlement runs record)."""
    from jobs.lakeio import write_deterministic

    return write_deterministic(lake, PATH, table.select(SCHEMA.names).cast(SCHEMA))


def run(settings, path: str | Path, *, replace: bool = False) -> dict:
    from jobs.lakeio import open_job_lake

    path = Path(path)
    new = reference.parse_whole(path, parse)
    new = pseudonym.for_settings(settings).table(new)  # the lake holds pseudonyms, never meter points
    jl = open_job_lake(settings)
    table, counts = transform(extract(jl.lake), new, replace=replace)
    digest = load(table, jl.lake)
    return {"path": str(path), "lake": jl.url, "table": PATH, "digest": digest, "loaded": new.num_rows, **counts}


def main(argv: list[str] | None = None) -> int:
    from meterlake import config

    parser = argparse.ArgumentParser(prog="python -m jobs.registry.job", description=__doc__.splitlines()[0])
    parser.add_argument("file")
    parser.add_argument("--replace", action="store_true", help="drop the stored registry first")
    parser.add_argument("--config")
    args = parser.parse_args(argv)
    print(json.dumps(run(config.discovered(config.load(args.config)), args.file, replace=args.replace), default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
