"""Customer analytics over the warehouse's marts and the lake: what the notebooks (notebooks/) call, so no rule
lives only in a notebook.

* Connections: :func:`warehouse_connection` (the published DuckDB warehouse, read-only: ``paths.warehouse``); the
  lake's views (``reads``: latest versions) are ``streaming.mirror.query.connect`` (a floor above this core
  package, so the notebooks call it themselves).
* Load profiles: :func:`monthly_profiles` (households x 48 UK clock half-hours from ``fct_meter_profiles_monthly``),
  :func:`normalise` (each day's shape, summing to 1), :func:`cluster_profiles` (k-means, scikit-learn).
* Baseload and peaks: :func:`meter_half_hours` (one household's half-hours from the lake's latest versions),
  :func:`daily_baseload` (the lowest half-hour of each night, as kW) and :func:`peak_half_hours` (half-hours far
  above the household's own typical level).

Grain of the frames: stated per function. Every frame carries pseudonyms only (``meter_point``).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

SLOTS = 48  # UK clock half-hours of a day: 1 = 00:00-00:30 ... 48 = 23:30-24:00


def warehouse_connection(settings):
    """A read-only DuckDB connection to the published warehouse (``paths.warehouse``)."""
    import duckdb

    path = settings.warehouse_path
    if not path.exists():
        raise FileNotFoundError(f"no warehouse at {path}: run `meterlake models build` first")
    return duckdb.connect(str(path), read_only=True)


def slot_label(slot: int) -> str:
    """``"HH:MM"``: the UK clock time a clock half-hour starts."""
    return f"{(slot - 1) // 2:02d}:{30 * ((slot - 1) % 2):02d}"


# ---------------------------------------------------------------------------------------------------- profiles


def monthly_profiles(con, month: str | None = None, day_type: str = "weekday") -> pd.DataFrame:
    """Households' typical days: one row per (month_start, meter_point), columns 1..48 (mean kWh per clock
    half-hour) from ``fct_meter_profiles_monthly``. Households missing a slot (e.g. a part month) are left out."""
    where = ["day_type = ?"]
    params: list = [day_type]
    if month:
        where.append("month_start = CAST(? AS DATE)")
        params.append(month)
    long = con.execute(f"""SELECT month_start, meter_point, clock_slot, mean_kwh FROM fct_meter_profiles_monthly
                          WHERE {' AND '.join(where)}""", params).df()
    wide = long.pivot_table(index=["month_start", "meter_point"], columns="clock_slot", values="mean_kwh")
    wide = wide.reindex(columns=range(1, SLOTS + 1)).dropna()
    wide.columns = list(range(1, SLOTS + 1))
    return wide


def normalise(profiles: pd.DataFrame) -> pd.DataFrame:
    """Each row divided by its total: the shape of the day, whatever the household's size. Rows with no
    consumption are dropped (they have no shape)."""
    totals = profiles.sum(axis=1)
    kept = profiles[totals > 0]
    return kept.div(totals[totals > 0], axis=0)


@dataclass(frozen=True)
class Clusters:
    labels: pd.Series          # cluster of each row of the input, same index
    centres: pd.DataFrame      # one row per cluster, columns 1..48 (normalised shape)
    sizes: pd.Series           # rows per cluster
    inertia: float


def cluster_profiles(shapes: pd.DataFrame, k: int, seed: int = 0) -> Clusters:
    """k-means on normalised daily shapes (scikit-learn ``KMeans``, ``n_init=10``, ``random_state=seed``).
    Clusters are numbered by the clock half-hour of their centre's peak, so the numbering is stable across runs."""
    from sklearn.cluster import KMeans

    if k < 1 or k > len(shapes):
        raise ValueError(f"k must be between 1 and the number of profiles ({len(shapes)}), got {k}")
    model = KMeans(n_clusters=k, n_init=10, random_state=seed).fit(shapes.to_numpy())
    order = np.argsort(model.cluster_centers_.argmax(axis=1), kind="stable")
    rank = np.empty(k, dtype=int)
    rank[order] = np.arange(k)
    labels = pd.Series(rank[model.labels_], index=shapes.index, name="cluster")
    centres = pd.DataFrame(model.cluster_centers_[order], columns=shapes.columns)
    centres.index.name = "cluster"
    return Clusters(labels, centres, labels.value_counts().sort_index(), float(model.inertia_))


# ------------------------------------------------------------------------------------------- baseload and peaks


def meter_half_hours(con, meter_point: str) -> pd.DataFrame:
    """One household's electricity half-hours from the lake's latest versions (the ``reads`` view of a
    ``streaming.mirror.query.connect`` connection): one row per
    (settlement_date, settlement_period) with ``interval_start_utc`` and ``kwh`` (registers summed, withdrawn
    reads left out)."""
    return con.execute("""
        SELECT settlement_date, settlement_period, min(interval_start_utc) AS interval_start_utc, sum(value) AS kwh
        FROM reads
        WHERE meter_point = ? AND read_kind = 'interval' AND unit = 'kWh' AND quality <> 'withdrawn'
        GROUP BY settlement_date, settlement_period ORDER BY settlement_date, settlement_period""",
                       [meter_point]).df()


def daily_baseload(half_hours: pd.DataFrame, night_periods: int = 10) -> pd.Series:
    """The baseload of each settlement date, in kW: the lowest half-hour of the night (the first ``night_periods``
    settlement periods, 00:00-05:00 on an ordinary day) times 2. The dbt mart ``fct_meter_behaviour_monthly``
    uses the same rule (on clock half-hours) with var ``baseload_last_slot``."""
    night = half_hours[half_hours["settlement_period"] <= night_periods]
    return (night.groupby("settlement_date")["kwh"].min() * 2).rename("baseload_kw")


def peak_half_hours(half_hours: pd.DataFrame, factor: float = 3.0, floor_kwh: float = 0.5) -> pd.DataFrame:
    """The household's peaks: half-hours above ``factor`` times its median half-hour and above ``floor_kwh``
    (a quiet home's median is tiny). Returns those rows, largest first."""
    median = half_hours["kwh"].median()
    peaks = half_hours[(half_hours["kwh"] > factor * median) & (half_hours["kwh"] > floor_kwh)]
    return peaks.sort_values("kwh", ascending=False)


def settings_for(config_file: str = "", lake: str = "", warehouse: str = ""):
    """The notebooks' settings: ``meterlake.toml`` (or ``config_file``) with the lake and the warehouse
    overridden when given (papermill parameters)."""
    from meterlake import config

    settings = config.load(config_file or None)
    paths = {k: v for k, v in (("lake", lake), ("warehouse", warehouse)) if v}
    return settings.model_copy(update={"paths": settings.paths.model_copy(update=paths)}) if paths else settings
