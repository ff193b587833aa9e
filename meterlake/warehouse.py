"""The dbt project on the lake (dbt/) and the DuckDB warehouse it publishes: ``meterlake models build``.

:func:`build` runs dbt (its programmatic ``dbtRunner``, in this process) with the platform's configuration: the
lake (``paths.lake``) and the target (``duckdb``, the default, or ``spark`` for scale). The DuckDB target builds
into ``build/<name>`` beside the warehouse (kept: the incremental marts update it in place), then :func:`publish`
copies it to a temporary name in the warehouse's directory, makes it durable and renames it over
``paths.warehouse`` in one step, so readers (Superset, notebooks) never open the file dbt writes and never see a
half-written warehouse. The Spark target runs in this process's Spark session (:func:`meterlake.spark.build_spark`,
with a Hive metastore whose Derby files live under the build directory).

The project's seeds are copies of the platform's rules, written by :func:`seed_rows` (tests check them):
``clock_change_days.csv`` from :mod:`meterlake.calendar`, ``settlement_runs.csv`` from
:mod:`meterlake.settlement_runs`.

Grain of the answer: one object per build (:func:`build`), with one entry per dbt node that ran.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

from meterlake import calendar as cal
from meterlake import jobruns, settlement_runs
from meterlake.errors import UsageError

PROJECT_DIR = Path(__file__).resolve().parents[1] / "dbt"
TARGETS = ("duckdb", "spark")
SEED_YEARS = range(1996, 2061)  # GB clocks have changed at 01:00 UTC since 1996

# the project's environment variables (dbt/profiles.yml, dbt/macros/lake.sql) and dbt's own switches
_DBT_ENV = {"DO_NOT_TRACK": "1", "DBT_SEND_ANONYMOUS_USAGE_STATS": "false", "DBT_USE_COLORS": "false"}


def seed_rows() -> dict[str, list[tuple]]:
    """The rows (header first) of the seeds that copy the platform's rules."""
    days = [("settlement_date", "periods_in_day")]
    days += [(d.isoformat(), n) for year in SEED_YEARS for d, n in cal.clock_change_days(year)]
    runs = [("run", "run_order")] + [(r, i + 1) for i, r in enumerate(settlement_runs.RUNS)]
    return {"clock_change_days": days, "settlement_runs": runs}


def seed_text(name: str) -> str:
    return "".join(",".join(str(v) for v in row) + "\n" for row in seed_rows()[name])


def build_copy(warehouse: Path) -> Path:
    """Where the DuckDB target builds: ``build/<name>`` beside the warehouse. The same file name, so the catalog
    name DuckDB gives it (the file's stem), which qualifies the names in the project's views, is the same in the
    published copy."""
    return warehouse.parent / "build" / warehouse.name


def publish(source: Path, warehouse: Path) -> Path:
    """Copy ``source`` (a closed DuckDB file) to ``warehouse`` atomically: a temporary file in the same directory,
    fsynced, then renamed over the old warehouse (a reader holding the old file keeps reading it)."""
    warehouse.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{warehouse.name}.", suffix=".tmp", dir=warehouse.parent)
    try:
        with os.fdopen(fd, "wb") as out, open(source, "rb") as src:
            shutil.copyfileobj(src, out, 1 << 20)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, warehouse)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    dir_fd = os.open(warehouse.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
    return warehouse


@contextmanager
def _environment(values: dict[str, str]):
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def spark_dir(settings) -> Path:
    """The Spark target's metastore (Derby) and managed tables: ``<warehouse's directory>/spark``."""
    return settings.warehouse_path.parent / "spark"


def dbt_environment(settings, target: str) -> dict[str, str]:
    """The environment dbt/profiles.yml and the lake macros read, from the platform's settings."""
    warehouse = settings.warehouse_path
    env = dict(_DBT_ENV)
    env.update({
        "METERLAKE_PATHS__LAKE": settings.lake_url,
        "METERLAKE_DBT_TARGET": target,
        "METERLAKE_DBT_DUCKDB_MEMORY": settings.models.duckdb_memory,
        "METERLAKE_DBT_DUCKDB_PATH": str(build_copy(warehouse)),
        "METERLAKE_DBT_SPARK_DIR": str(spark_dir(settings)),
        "METERLAKE_DBT_TARGET_PATH": str(warehouse.parent / "dbt-target" / target),
        "METERLAKE_DBT_LAKE_FILES": json.dumps(current_output_files(settings)),
    })
    return env


# the lake sources that are jobs' outputs (docs/lake.md: a job's output is versioned; only the current version's
# files are its rows, so the sources read exactly those files rather than a glob of the directory)
OUTPUT_SOURCES = ("clean_reads", "settlement", "settlement_diff", "quality", "registry", "bills")


def current_output_files(settings) -> dict[str, list[str]]:
    """{source: [URLs of its current version's files]} of the jobs' outputs in the lake (meterlake.lake.outputs)."""
    from urllib.parse import urlsplit

    from meterlake.lake import outputs
    from meterlake.lake.files import open_lake

    lake = open_lake(settings)
    parts = urlsplit(settings.lake_url)
    prefix = "" if lake.local or not parts.scheme else f"{parts.scheme}://{parts.netloc}"
    return {name: [prefix + f for f in files] for name, files in outputs.view_files(lake, list(OUTPUT_SOURCES)).items()}


def _spark_session(settings):
    """The platform's Spark session with a Hive metastore under the build directory (dbt-spark's ``session``
    method takes the running session)."""
    from meterlake.spark import build_spark

    base = spark_dir(settings)
    base.mkdir(parents=True, exist_ok=True)
    conf = {
        "spark.sql.catalogImplementation": "hive",
        # a file: URI: with an hdfs:// lake the default filesystem is HDFS, and the tables belong beside the metastore
        "spark.sql.warehouse.dir": (base / "warehouse").as_uri(),
        "spark.driver.extraJavaOptions": f"-Dderby.system.home={base / 'derby'}",
        "spark.sql.session.timeZone": "UTC",
        "spark.sql.sources.partitionOverwriteMode": "dynamic",
        "spark.ui.enabled": "false",
    }
    plain = settings.model_copy(update={"spark": settings.spark.model_copy(update={"with_cassandra_connector": False})})
    return build_spark("meterlake-dbt", plain, conf=conf)


def _close_duckdb() -> None:
    """Close the DuckDB database dbt-duckdb keeps open for the process (it would otherwise hold the build copy,
    and its last writes, until the process ends)."""
    from dbt.adapters.duckdb.connections import DuckDBConnectionManager

    with DuckDBConnectionManager._LOCK:
        env, DuckDBConnectionManager._ENV = DuckDBConnectionManager._ENV, None
    if env is not None:
        env.close()


def run_dbt(args: list[str], settings, target: str = "duckdb") -> dict:
    """Run one dbt command (e.g. ``["build", "--select", "marts"]``) on ``target`` with the platform's settings;
    ``{"success", "nodes": [{"name", "resource_type", "status", "seconds", "message"}]}``."""
    from dbt.cli.main import dbtRunner

    if target not in TARGETS:
        raise UsageError(f"unknown dbt target {target!r}; one of {', '.join(TARGETS)}", target=target)
    env = dbt_environment(settings, target)
    Path(env["METERLAKE_DBT_DUCKDB_PATH"]).parent.mkdir(parents=True, exist_ok=True)
    with _environment(env):
        if target == "spark":
            _spark_session(settings)
        try:
            result = dbtRunner().invoke([*args, "--project-dir", str(PROJECT_DIR), "--profiles-dir",
                                         str(PROJECT_DIR), "--target", target, "--log-path",
                                         env["METERLAKE_DBT_TARGET_PATH"], "--no-use-colors", "--quiet"])
        finally:
            if target == "duckdb":
                _close_duckdb()
    nodes = []
    for r in (result.result or []) if hasattr(result.result, "__iter__") else []:
        node = getattr(r, "node", None)
        if node is None:
            continue
        nodes.append({"name": node.name, "resource_type": str(node.resource_type), "status": str(r.status),
                      "seconds": round(getattr(r, "execution_time", 0.0) or 0.0, 3),
                      "message": getattr(r, "message", None)})
    error = None if result.success else (str(result.exception) if result.exception else
                                         next((f"{n['name']}: {n['message']}" for n in nodes
                                               if n["status"] in ("error", "fail")), "dbt failed"))
    return {"success": bool(result.success), "nodes": nodes, "error": error}


@jobruns.recorded("dbt-build")
def build(settings, target: str = "duckdb", select: list[str] | None = None, *, full_refresh: bool = False,
          publish_warehouse: bool = True, exclude: list[str] | None = None) -> dict:
    """``dbt build`` of the project (``select``: dbt selectors) on ``target``; for DuckDB, then publish the
    warehouse. ``{"target", "lake", "warehouse", "success", "nodes", "counts", "published", "seconds", "error"}``."""
    started = time.monotonic()
    # a selection takes the tests whose parents are all selected (dbt's default also takes a test of a selected
    # model and an unselected one, which then fails on a relation that was not built)
    args = ["build"] + (["--select", *select, "--indirect-selection", "cautious"] if select else [])
    args += ["--exclude", *exclude] if exclude else []
    args += ["--full-refresh"] if full_refresh else []
    out = run_dbt(args, settings, target)
    published = None
    if out["success"] and target == "duckdb" and publish_warehouse:
        published = str(publish(build_copy(settings.warehouse_path), settings.warehouse_path))
    counts: dict[str, int] = {}
    for n in out["nodes"]:
        counts[n["status"]] = counts.get(n["status"], 0) + 1
    return {"target": target, "lake": settings.lake_url,
            "warehouse": str(settings.warehouse_path) if target == "duckdb" else str(spark_dir(settings)),
            "success": out["success"], "nodes": out["nodes"], "counts": counts, "published": published,
            "seconds": round(time.monotonic() - started, 3), "error": out["error"]}
