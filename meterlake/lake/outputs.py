"""The jobs' outputs in the lake, for whoever registers views over it (``meterlake lake sql``, dbt, notebooks).

:data:`VIEWS` maps a view name to the output's directory under the lake root and a one-line grain;
:func:`view_files` lists the Parquet data files of each (the current version of every output directory; hidden and
``_`` files excluded), which is what a DuckDB
``read_parquet([...])`` or a pyarrow dataset takes. Every file carries all its columns, including the ones in the
directory names (``settlement_date``, ``run``), so read them with ``hive_partitioning = false``. docs/jobs.md
describes the columns.
"""
from __future__ import annotations

import pyarrow.fs as pafs

#: A job output's versions (``<slot>/_v-<token>/``) and their commit pointers (``<slot>/_current/<seq>-<token>.json``):
#: docs/jobs.md, :mod:`jobs.lakeio`.
VERSION_PREFIX = "_v-"
POINTERS = "_current"

VIEWS: dict[str, dict[str, str]] = {
    "clean_reads": {"path": "clean_reads", "grain": "one row per read's live version, plus one per estimated "
                                                    "half-hour, per settlement date"},
    "settlement": {"path": "settlement", "grain": "one row per (settlement_date, settlement_period, run, gsp_group, "
                                                  "supplier, profile_class, measurement_class)"},
    "settlement_diff": {"path": "settlement_diff", "grain": "one row per (settlement_date, from_run, to_run, "
                                                            "meter_point, settlement_period) that changed"},
    "quality": {"path": "quality", "grain": "one row per (settlement_date, meter_point) expected"},
    "registry": {"path": "registry", "grain": "one row per (meter_point, effective_from)"},
    "bills": {"path": "billing/bills", "grain": "one row per (run_from, run_to, run_account, account, meter_point, "
                                                "bill_from)"},
    "bill_lines": {"path": "billing/bill_lines", "grain": "one row per bill (as in bills) and band"},
    "tariffs": {"path": "tariffs/rates", "grain": "one row per (tariff, effective_from, band) of the loaded tariffs"},
    "register_checks": {"path": "billing/register_checks", "grain": "one row per (from, to) run, meter_point, "
                                                                    "register and pair of register reads"},
    "reconciliation": {"path": "reconciliation", "grain": "one row per (settlement_date, meter_point) with a read "
                                                          "in the Cassandra store or the lake"},
    "job_runs": {"path": "job_runs", "grain": "one row per batch job run (meterlake.jobruns, `meterlake runs`)"},
}


def _data_file(relative: str) -> bool:
    return relative.endswith(".parquet") and not any(p.startswith((".", "_")) for p in relative.split("/"))


def current_files(relatives: list[str]) -> list[str]:
    """Of a recursive listing of an output's files (paths relative to its directory), the data files of each
    slot's current version (docs/jobs.md): a slot with commit pointers (``<slot>/_current/<seq>-<token>.json``)
    gives the files of ``<slot>/_v-<token>/`` of its highest pointer; files outside any versioned slot (an older
    lake's) count as they are. Pure."""
    best: dict[str, tuple[int, str]] = {}
    for r in relatives:
        slot, _, rest = r.rpartition(f"{POINTERS}/")
        seq, _, token = rest.partition("-")
        if (slot == "" or slot.endswith("/")) and "/" not in rest and seq.isdigit() and token.endswith(".json"):
            key = slot.rstrip("/")
            best[key] = max(best.get(key, (-1, "")), (int(seq), token[:-len(".json")]))
    out = []
    for r in relatives:
        if not r.endswith(".parquet"):
            continue
        parts = r.split("/")
        at = next((i for i, p in enumerate(parts) if p.startswith(VERSION_PREFIX)), None)
        if at is None:
            slots = ["/".join(parts[:i]) for i in range(len(parts))]
            if not any(s in best for s in slots) and _data_file(r):
                out.append(r)
            continue
        slot = "/".join(parts[:at])
        if slot in best and parts[at] == VERSION_PREFIX + best[slot][1] and _data_file("/".join(parts[at + 1:])):
            out.append(r)
    return out


def view_files(lake, views: list[str] | None = None) -> dict[str, list[str]]:
    """{view: [paths on ``lake.fs``]} of the outputs present (a :class:`meterlake.lake.files.Lake`): the current
    version's files of each output directory (:func:`current_files`)."""
    out = {}
    for name in views or list(VIEWS):
        base = lake.path(VIEWS[name]["path"])
        selector = pafs.FileSelector(base, allow_not_found=True, recursive=True)
        listed = [i.path[len(base):].lstrip("/") for i in lake.fs.get_file_info(selector)
                  if i.type == pafs.FileType.File]
        out[name] = sorted(f"{base}/{r}" for r in current_files(listed))
    return out


def register_duckdb(con, lake, views: list[str] | None = None) -> list[str]:
    """Create the views in a DuckDB connection (an empty view is not created); the names created."""
    made = []
    for name, files in view_files(lake, views).items():
        if not files:
            continue
        if lake.local:
            listed = ", ".join("'" + f.replace("'", "''") + "'" for f in files)
            con.execute(f"CREATE OR REPLACE VIEW {name} AS SELECT * FROM read_parquet([{listed}], "
                        "union_by_name = true, hive_partitioning = false)")
        else:
            con.register(f"{name}_dataset", lake.dataset(files)[0])  # every file's columns (union by name)
            con.execute(f"CREATE OR REPLACE VIEW {name} AS SELECT * FROM {name}_dataset")
        made.append(name)
    return made
