"""A warehouse DuckDB file of the lake's job outputs, for the dashboards where no dbt build has published one.

The dashboards read ``paths.warehouse``, the file ``meterlake models build`` (dbt, dbt/) publishes. Their datasets
query dbt's staging views of the lake's outputs — ``stg_lake__clean_reads``, ``stg_lake__registry``,
``stg_lake__settlement``, ``stg_lake__settlement_diff``, ``stg_lake__quality`` (dbt/models/staging/lake/: each
the output's columns, renamed nowhere, cast to dates and integers) — so they work on dbt's warehouse and on this
one. :func:`publish_lake_views` writes those names as views over the outputs (docs/jobs.md; the views
``meterlake lake sql`` offers) into a new file and renames it over ``paths.warehouse``: a DuckDB writer cannot open
a file a reader (Superset) holds read-only, and a reader never sees a half-written file. Local lakes only (a view
over HDFS or S3 would need the lake's filesystem registered in every reader).
"""
from __future__ import annotations

import os
from pathlib import Path

from meterlake.config import Settings
from meterlake.errors import UsageError

STAGING = {"clean_reads": "stg_lake__clean_reads", "registry": "stg_lake__registry",
           "settlement": "stg_lake__settlement", "settlement_diff": "stg_lake__settlement_diff",
           "quality": "stg_lake__quality"}
# dbt's staging casts these; the lake's files hold them as date32 and int8 already, except the period's width
CASTS = {"settlement_date": "CAST(settlement_date AS DATE)", "settlement_period": "CAST(settlement_period AS INTEGER)"}


def publish_lake_views(settings: Settings, target: Path | None = None) -> dict:
    import duckdb

    from meterlake.lake.files import open_lake
    from meterlake.lake.outputs import register_duckdb

    lake = open_lake(settings)
    if not lake.local:
        raise UsageError(f"lake views in a warehouse file need a local lake, not {lake.root}", lake=lake.root)
    target = target or Path(settings.resolve_url(settings.paths.warehouse))
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    tmp.unlink(missing_ok=True)
    con = duckdb.connect(str(tmp))
    made = []
    try:
        con.execute("CREATE SCHEMA lake_outputs")
        con.execute("USE lake_outputs")
        outputs = register_duckdb(con, lake, list(STAGING))
        con.execute("USE main")
        for output in outputs:
            columns = [c for (c,) in con.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_schema = 'lake_outputs' "
                "AND table_name = ? ORDER BY ordinal_position", [output]).fetchall()]
            select = ", ".join(f"{CASTS[c]} AS {c}" if c in CASTS else c for c in columns)
            con.execute(f"CREATE VIEW {STAGING[output]} AS SELECT {select} FROM lake_outputs.{output}")
            made.append(STAGING[output])
        con.execute("CHECKPOINT")
    finally:
        con.close()
    os.replace(tmp, target)
    return {"warehouse": str(target), "views": made}
