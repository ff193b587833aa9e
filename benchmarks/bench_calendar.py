"""Stamping settlement date and period on a column of UTC instants: meterlake's vectorised calendar against the
obvious alternatives — a Python loop over the scalar function, and pandas' tz_convert-based arithmetic."""
from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pyarrow as pa

from benchmarks.harness import Report, timed
from meterlake import calendar


def _instants(n: int) -> pa.Array:
    start = int(datetime(2025, 1, 1, tzinfo=UTC).timestamp()) * 1_000_000
    rng = np.random.default_rng(7)
    offsets = rng.integers(0, 365 * 86400, size=n) * 1_000_000
    return pa.array(start + offsets, type=pa.timestamp("us", tz="UTC"))


def _pandas_alternative(series: pd.Series) -> pd.DataFrame:
    local = series.dt.tz_convert("Europe/London")
    day = local.dt.normalize()  # local midnight, as an aware timestamp
    period = ((series - day.dt.tz_convert("UTC")) // pd.Timedelta(minutes=30)) + 1
    return pd.DataFrame({"settlement_date": local.dt.date, "settlement_period": period})


def run(report: Report, scale: str) -> None:
    n = 10_000_000 if scale == "full" else 1_000_000
    ts = _instants(n)
    vec = timed(lambda: calendar.locate_arrow(ts))
    report.figure("locate_arrow", n / vec, "rows/s", rows=n)
    series = pd.Series(ts.to_pandas())
    alt = timed(lambda: _pandas_alternative(series), repeat=1)
    report.figure("pandas tz_convert alternative", n / alt, "rows/s", rows=n)
    sample = ts.slice(0, 100_000).to_pylist()
    loop = timed(lambda: [calendar.locate(t) for t in sample], repeat=1)
    report.figure("python loop over scalar locate", len(sample) / loop, "rows/s", rows=len(sample))
    report.ratio("locate_arrow / pandas", n / vec, n / alt)
    report.ratio("locate_arrow / scalar loop", n / vec, len(sample) / loop)
