"""The notebooks' functions on tiny literal data."""
from __future__ import annotations

from datetime import date

import duckdb
import pandas as pd
import pytest

from meterlake import analytics


def _flat(level: float, peak_slot: int | None = None, peak: float = 0.0) -> list[float]:
    day = [level] * 48
    if peak_slot:
        day[peak_slot - 1] += peak
    return day


def test_normalised_shapes_sum_to_one_and_empty_days_are_dropped():
    profiles = pd.DataFrame([_flat(0.5), _flat(0.0), _flat(1.0, 36, 2.0)], index=["a", "b", "c"],
                            columns=range(1, 49))
    shapes = analytics.normalise(profiles)
    assert list(shapes.index) == ["a", "c"]
    assert shapes.sum(axis=1).tolist() == pytest.approx([1.0, 1.0])
    assert shapes.loc["a", 1] == pytest.approx(1 / 48)
    assert shapes.loc["c", 36] == pytest.approx(3.0 / 50.0)


def test_k_means_separates_evening_peakers_from_morning_peakers_numbered_by_peak_time():
    # GIVEN three households peaking at 07:30 (slot 16) and three at 18:00 (slot 37)
    rows = {f"m{i}": _flat(0.2, 16, 2.0 + 0.1 * i) for i in range(3)}
    rows |= {f"e{i}": _flat(0.2, 37, 2.0 + 0.1 * i) for i in range(3)}
    shapes = analytics.normalise(pd.DataFrame.from_dict(rows, orient="index", columns=range(1, 49)))
    # WHEN they are clustered in two
    clusters = analytics.cluster_profiles(shapes, k=2, seed=1)
    # THEN the morning peakers are cluster 0 (the earlier peak) and the evening ones cluster 1
    assert clusters.labels.to_dict() == {"m0": 0, "m1": 0, "m2": 0, "e0": 1, "e1": 1, "e2": 1}
    assert clusters.sizes.tolist() == [3, 3]
    assert (clusters.centres.idxmax(axis=1).tolist()) == [16, 37]


def test_k_out_of_range_is_refused():
    shapes = pd.DataFrame([_flat(1.0)], columns=range(1, 49))
    with pytest.raises(ValueError, match="between 1 and the number of profiles"):
        analytics.cluster_profiles(shapes, k=2)


def _half_hours(day: date, values: list[float]) -> pd.DataFrame:
    return pd.DataFrame({"settlement_date": day, "settlement_period": range(1, len(values) + 1), "kwh": values})


def test_baseload_is_the_nights_lowest_half_hour_as_kw():
    night = [0.3, 0.2, 0.15, 0.2, 0.25, 0.3, 0.3, 0.3, 0.3, 0.3]
    day = [0.05] + [1.0] * 37  # a low half-hour after the night does not count
    frame = pd.concat([_half_hours(date(2024, 10, 25), night + day),
                       _half_hours(date(2024, 10, 26), [0.1] * 48)])
    assert analytics.daily_baseload(frame).to_dict() == {date(2024, 10, 25): pytest.approx(0.3),
                                                         date(2024, 10, 26): pytest.approx(0.2)}


def test_peaks_are_far_above_the_households_median():
    values = [0.2] * 48
    values[36], values[37], values[10] = 2.5, 1.5, 0.55  # 0.55 is above 3 x 0.2 but under the floor
    peaks = analytics.peak_half_hours(_half_hours(date(2024, 10, 25), values), factor=3.0, floor_kwh=0.6)
    assert peaks["settlement_period"].tolist() == [37, 38]


def test_monthly_profiles_pivot_the_mart_and_drop_part_days():
    con = duckdb.connect()
    con.execute("""CREATE TABLE fct_meter_profiles_monthly AS
        SELECT DATE '2024-10-01' AS month_start, 'P1' AS meter_point, 'weekday' AS day_type, s AS clock_slot,
               1 AS days, s / 100.0 AS mean_kwh FROM range(1, 49) t(s)
        UNION ALL SELECT DATE '2024-10-01', 'P2', 'weekday', s, 1, 0.1 FROM range(1, 40) t(s)""")
    wide = analytics.monthly_profiles(con, "2024-10-01")
    assert list(wide.index.get_level_values("meter_point")) == ["P1"]
    assert wide.iloc[0, 47] == pytest.approx(0.48)
    assert analytics.slot_label(1) == "00:00" and analytics.slot_label(37) == "18:00"
