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
* Tariff what-if: :func:`households_half_hours` (households' half-hours from the lake's latest versions) and
  :func:`tariff_what_if` (what each would pay on each tariff: the bill job's rules, :func:`meterlake.billing.
  bill_halfhours`, never a second pricing).

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


# ---------------------------------------------------------------------------------------------- tariff what-if


def households_half_hours(con, meter_points: list[str], start, end) -> pd.DataFrame:
    """Households' electricity half-hours of settlement dates [start, end) from the lake's latest versions (the
    ``reads`` view of a ``streaming.mirror.query.connect`` connection): one row per (meter_point,
    interval_start_utc) with ``kwh`` (registers summed, withdrawn reads left out) and ``is_estimated``."""
    return con.execute("""
        SELECT meter_point, interval_start_utc, sum(value) AS kwh, bool_or(quality = 'estimated') AS is_estimated
        FROM reads
        WHERE meter_point IN (SELECT unnest(?)) AND read_kind = 'interval' AND unit = 'kWh'
          AND quality <> 'withdrawn' AND settlement_date >= ? AND settlement_date < ?
        GROUP BY meter_point, interval_start_utc ORDER BY meter_point, interval_start_utc""",
                       [list(meter_points), start, end]).df()


def tariff_what_if(half_hours: pd.DataFrame, tariffs: dict, *, bill_from, bill_to, tou_ssc: str | None = None,
                   register_of=None, prices: dict | None = None) -> pd.DataFrame:
    """What each household of ``half_hours`` (:func:`households_half_hours`) would pay for local dates
    [bill_from, bill_to) on each of ``tariffs`` ({name: :class:`meterlake.tariffs.Tariff`}), priced by the bill
    job's rules (:func:`meterlake.billing.bill_halfhours`, cut where a tariff's rates change): a time-of-use tariff
    as on a meter of SSC ``tou_ssc`` with ``register_of`` (:meth:`meterlake.mdd.Mdd.register_of`), a dynamic one
    with ``prices`` ({tariff: {UTC half-hour: p/kWh}}). One row per (meter_point, tariff): ``kind``, ``kwh``,
    ``energy_p``, ``standing_p``, ``total_p`` (pence, VAT included), ``unpriced`` (half-hours with energy and no
    price, not billed) and ``status``."""
    from meterlake import billing

    rows = []
    for meter_point, hh in half_hours.groupby("meter_point", sort=True):
        starts = [t.to_pydatetime() for t in hh["interval_start_utc"]]
        readings = list(zip(starts, hh["kwh"], hh["is_estimated"], strict=True))
        for name, tariff in tariffs.items():
            cuts = sorted({bill_from, bill_to, *(d for d in tariff.changes() if bill_from < d < bill_to)})
            bills = [billing.bill_halfhours(readings, tariff, bill_from=lo, bill_to=hi, register_of=register_of,
                                            ssc=tou_ssc if tariff.kind == "tou" else None,
                                            prices=(prices or {}).get(name))
                     for lo, hi in zip(cuts, cuts[1:], strict=False)]
            unpriced = sum(len(b["unpriced"]) for b in bills)
            rows.append({"meter_point": meter_point, "tariff": name, "kind": tariff.kind,
                         "kwh": float(sum(b["energy_kwh"] for b in bills)),
                         "energy_p": float(sum(b["energy_p"] for b in bills)),
                         "standing_p": float(sum(b["standing_p"] for b in bills)),
                         "total_p": float(sum(b["total_p"] for b in bills)), "unpriced": unpriced,
                         "status": "incomplete" if unpriced else "complete"})
    return pd.DataFrame(rows, columns=["meter_point", "tariff", "kind", "kwh", "energy_p", "standing_p", "total_p",
                                       "unpriced", "status"])


def settings_for(config_file: str = "", lake: str = "", warehouse: str = ""):
    """The notebooks' settings: ``meterlake.toml`` (or ``config_file``) with the lake and the warehouse
    overridden when given (papermill parameters)."""
    from meterlake import config

    settings = config.load(config_file or None)
    paths = {k: v for k, v in (("lake", lake), ("warehouse", warehouse)) if v}
    return settings.model_copy(update={"paths": settings.paths.model_copy(update=paths)}) if paths else settings
