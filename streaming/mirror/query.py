"""SQL over the lake (DuckDB): ``meterlake lake sql "SELECT …"`` and ``meterlake lake stats``.

Views of a connection from :func:`connect`:

* ``reads``: the latest version of each read (one row per read key, see docs/lake.md): what to query.
* ``reads_all``: every row of the live files: a read published twice appears more than once until compaction
  collapses the copies, a corrected read once per version until its date is past the horizon of settlement runs
  (docs/lake.md).

Given the lake's pseudonymiser, the connection also has the function ``pseudonym(identifier)``, so a known meter
is found by ``WHERE meter_point = pseudonym('2000012345670')`` (the lake holds pseudonyms, not identifiers).

Grain of ``reads``: one row per (meter_point, meter_serial, register_id, read_kind, interval_start_utc,
device_id, unit). On a local lake DuckDB reads the live Parquet files itself; on HDFS or S3 they are opened as a
pyarrow dataset through the lake's filesystem and handed to DuckDB.
"""
from __future__ import annotations

import datetime as dt
import decimal
import uuid
from datetime import date

import pyarrow.parquet as pq

from meterlake.lake.files import Lake
from meterlake.lake.schema import LAKE_SCHEMA, LIVE_VERSION_ORDER, READ_KEY
from meterlake.pseudonym import Pseudonymiser


def _sql_list(paths: list[str]) -> str:
    return "[" + ", ".join("'" + p.replace("'", "''") + "'" for p in paths) + "]"


def connect(lake: Lake, days: list[date] | None = None, pseudonyms: Pseudonymiser | None = None):
    """A DuckDB connection with the ``reads`` and ``reads_all`` views over the live files (of ``days``), and the
    function ``pseudonym`` when ``pseudonyms`` is given."""
    import duckdb

    con = duckdb.connect()
    if pseudonyms is not None:
        con.create_function("pseudonym", pseudonyms.one, [duckdb.sqltype("VARCHAR")], duckdb.sqltype("VARCHAR"),
                            null_handling="special", side_effects=False)
    paths = [f.path for _, f in lake.all_live_files(days)]
    if not paths:
        con.register("lake_empty", LAKE_SCHEMA.empty_table())
        con.execute("CREATE VIEW reads_all AS SELECT * FROM lake_empty")
    elif lake.local:
        con.execute(f"CREATE VIEW reads_all AS SELECT * FROM read_parquet({_sql_list(paths)}, "
                    "union_by_name = true, hive_partitioning = false)")
    else:
        dataset, _ = lake.dataset(paths)  # every file's columns, as union_by_name does on a local lake
        con.register("lake_dataset", dataset)
        con.execute("CREATE VIEW reads_all AS SELECT * FROM lake_dataset")
    key = ", ".join(READ_KEY)
    live_order = ", ".join(f"{name} {'DESC' if way == 'descending' else 'ASC'} NULLS LAST"
                           for name, way in LIVE_VERSION_ORDER)
    con.execute(f"""CREATE VIEW reads AS SELECT * FROM reads_all
                    QUALIFY row_number() OVER (PARTITION BY {key} ORDER BY {live_order}) = 1""")
    from meterlake.lake.outputs import register_duckdb  # the jobs' outputs (docs/jobs.md): clean_reads, settlement, ...

    register_duckdb(con, lake)
    return con


def _plain(value):
    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).hex()
    if isinstance(value, dt.timedelta | dt.time):
        return str(value)
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


class TooManyRows(ValueError):
    """The query's result has more rows than the limit given to :func:`sql`."""


def sql(lake: Lake, query: str, pseudonyms: Pseudonymiser | None = None, limit: int | None = None) -> dict:
    """Run ``query``; ``{"columns": [...], "rows": [[...], ...]}`` with JSON-friendly values.

    ``limit``: at most this many rows are fetched (DuckDB hands them over in chunks, so memory stays bounded);
    a result with more raises :class:`TooManyRows` rather than being cut silently. None: no limit."""
    con = connect(lake, pseudonyms=pseudonyms)
    try:
        cursor = con.execute(query)
        columns = [d[0] for d in cursor.description] if cursor.description else []
        fetched = cursor.fetchall() if limit is None else cursor.fetchmany(limit + 1)
        if limit is not None and len(fetched) > limit:
            raise TooManyRows(f"the result has more than {limit} rows")
        rows = [[_plain(v) for v in row] for row in fetched]
    finally:
        con.close()
    return {"columns": columns, "rows": rows}


def stats(lake: Lake) -> dict:
    """Files, rows (of the live files, before collapsing versions), bytes and settlement dates of the lake."""
    files = rows = size = 0
    dates = []
    per_date = []
    for day in lake.dates():
        live = lake.live_files(day)
        if not live:
            continue
        n = sum(pq.read_metadata(f.path, filesystem=lake.fs).num_rows for f in live)
        b = sum(f.size for f in live)
        files, rows, size = files + len(live), rows + n, size + b
        dates.append(day)
        per_date.append({"settlement_date": day, "files": len(live), "rows": n, "bytes": b})
    return {"lake": lake.root, "files": files, "rows": rows, "bytes": size, "settlement_dates": dates,
            "partitions": per_date}
