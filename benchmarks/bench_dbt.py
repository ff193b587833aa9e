"""The dbt-duckdb build of the daily-consumption mart against the same query hand-written in DuckDB, on the same
lake files: dbt's view layers (staging, the live-version de-dup, half-hours, the lake fingerprints) must cost
little over the plain query (goal: at most 1.2x).

The lake: synthetic interval reads of ``meters`` households over ``days`` settlement dates (one part file per
date, as the mirror writes; 1% of the half-hours corrected by a later version in a second file). Both sides start
from nothing each time: dbt a full refresh of ``+fct_daily_consumption`` into a fresh build file, DuckDB a
``CREATE TABLE`` in a fresh database file. Figures: seconds of each; the model's own execution time as dbt
reports it; ratios.
"""
from __future__ import annotations

import shutil
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from benchmarks.harness import Report
from meterlake import calendar as cal
from meterlake import config, warehouse
from meterlake.lake.schema import LAKE_SCHEMA

START = date(2024, 10, 1)
HAND_WRITTEN = """
CREATE TABLE daily AS
WITH latest AS (
    SELECT * FROM read_parquet('{lake}/settlement_date=*/*.parquet', hive_partitioning = true, union_by_name = true)
    WHERE read_kind = 'interval' AND unit = 'kWh'
    QUALIFY row_number() OVER (
        PARTITION BY meter_point, meter_serial, register_id, read_kind, interval_start_utc, device_id, unit
        ORDER BY source_version DESC, kafka_topic, kafka_partition, kafka_offset, source_file, source_line) = 1
), half_hours AS (
    SELECT settlement_date, meter_point, settlement_period, sum(value) AS kwh,
           sum(value) FILTER (WHERE quality = 'estimated') AS estimated_kwh,
           bool_or(quality = 'estimated') AS is_estimated
    FROM latest WHERE quality <> 'withdrawn'
    GROUP BY ALL
)
SELECT settlement_date, meter_point, count(*) AS periods_read, sum(kwh) AS consumption_kwh,
       coalesce(sum(estimated_kwh), 0) AS estimated_kwh, count(*) FILTER (WHERE is_estimated) AS estimated_periods,
       max(kwh) AS max_half_hour_kwh, min(kwh) AS min_half_hour_kwh
FROM half_hours GROUP BY ALL
"""


def _day_table(day: date, meters: np.ndarray, rng, offset: int, fraction: float = 1.0) -> pa.Table:
    starts = np.array([int(s.timestamp() * 1_000_000) for _, s in cal.periods(day)], dtype=np.int64)
    chosen = meters if fraction >= 1 else meters[rng.random(len(meters)) < fraction]
    mp = np.repeat(chosen, len(starts))
    ts = np.tile(starts, len(chosen))
    n = len(mp)
    dates, periods = cal.locate_arrow(pa.array(ts, pa.timestamp("us", tz="UTC")))
    version = int((cal.day_bounds(day)[1].timestamp() + 3600 * (1 if fraction >= 1 else 240)) * 1_000_000)
    columns = {
        "meter_point": pa.array(mp), "meter_serial": pa.array(np.char.add("S", mp.astype(str))),
        "fuel": pa.repeat("electricity", n), "register_id": pa.repeat("S", n), "read_kind": pa.repeat("interval", n),
        "interval_start_utc": pa.array(ts, pa.timestamp("us", tz="UTC")), "settlement_date": dates,
        "settlement_period": periods, "value": pa.array(np.round(rng.gamma(2.0, 0.15, n), 3)),
        "unit": pa.repeat("kWh", n),
        "quality": pa.array(np.where(rng.random(n) < 0.005, "estimated", "actual")),
        "source_file": pa.repeat(f"HH_{day}_{offset}.csv", n), "source_line": pa.nulls(n, pa.int64()),
        "device_id": pa.nulls(n, pa.string()), "source_version": pa.array(np.full(n, version, dtype=np.int64)),
        "file_id": pa.nulls(n, pa.string()), "batch_id": pa.nulls(n, pa.string()),
        "kafka_topic": pa.repeat("meter-reads", n), "kafka_partition": pa.array(np.zeros(n, dtype=np.int32)),
        "kafka_offset": pa.array(np.full(n, offset, dtype=np.int64)),
    }
    return pa.table({f.name: columns[f.name].cast(f.type) for f in LAKE_SCHEMA}, schema=LAKE_SCHEMA)


def write_lake(root: Path, meters: int, days: int, seed: int = 11) -> int:
    """The synthetic lake; returns its rows."""
    rng = np.random.default_rng(seed)
    ids = np.array([f"P{i:024x}" for i in range(meters)])
    rows = 0
    for k in range(days):
        day = START + timedelta(days=k)
        folder = root / f"settlement_date={day}"
        folder.mkdir(parents=True)
        for offset, fraction in ((2 * k, 1.0), (2 * k + 1, 0.01)):
            table = _day_table(day, ids, rng, offset, fraction)
            pq.write_table(table, folder / f"part-meter-reads-0-{offset}-{offset}.parquet", compression="zstd")
            rows += table.num_rows
    return rows


def run(report: Report, scale: str) -> None:
    meters, days = (2000, 60) if scale == "full" else (300, 14)
    base = Path(tempfile.mkdtemp(prefix="bench-dbt-"))
    try:
        rows = write_lake(base / "lake", meters, days)
        settings = config.load(None)
        settings = settings.model_copy(update={"paths": settings.paths.model_copy(update={
            "lake": str(base / "lake"), "warehouse": str(base / "wh" / "meterlake.duckdb")})})
        seeded = warehouse.run_dbt(["seed", "--select", "clock_change_days"], settings)
        assert seeded["success"], seeded["error"]
        dbt_best = model_best = mart_best = hand_best = float("inf")
        for _ in range(3):
            start = time.perf_counter()
            out = warehouse.run_dbt(["run", "--select", "+fct_daily_consumption", "--full-refresh"], settings)
            dbt_best = min(dbt_best, time.perf_counter() - start)
            assert out["success"], out["error"]
            model_best = min(model_best, sum(n["seconds"] for n in out["nodes"]))
            mart_best = min(mart_best, next(n["seconds"] for n in out["nodes"] if n["name"] == "fct_daily_consumption"))
            path = base / f"hand-{_}.duckdb"
            start = time.perf_counter()
            con = duckdb.connect(str(path))
            con.execute(HAND_WRITTEN.format(lake=base / "lake"))
            con.close()
            hand_best = min(hand_best, time.perf_counter() - start)
        con = duckdb.connect(str(warehouse.build_copy(settings.warehouse_path)), read_only=True)
        mart = con.execute("SELECT count(*), round(sum(consumption_kwh), 3) FROM fct_daily_consumption").fetchone()
        con.close()
        hand = duckdb.connect(str(path), read_only=True).execute(
            "SELECT count(*), round(sum(consumption_kwh), 3) FROM daily").fetchone()
        assert mart == hand, (mart, hand)
        report.figure("lake rows", rows, "rows", meters=meters, days=days)
        report.figure("dbt run +fct_daily_consumption (whole invocation)", dbt_best, "s")
        report.figure("dbt models' own execution time (all upstream)", model_best, "s")
        report.figure("fct_daily_consumption model alone", mart_best, "s")
        report.figure("hand-written DuckDB query", hand_best, "s")
        report.ratio("dbt models / hand-written", model_best, hand_best, goal="<= 1.2")
        report.ratio("fct_daily_consumption model / hand-written", mart_best, hand_best)
        report.ratio("dbt invocation / hand-written", dbt_best, hand_best)
    finally:
        shutil.rmtree(base, ignore_errors=True)
