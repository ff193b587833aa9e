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


def test_the_tariff_what_if_prices_each_household_on_each_tariff_by_the_billing_rules():
    from datetime import UTC, datetime, timedelta
    from decimal import Decimal as D

    from meterlake.tariffs import Rate, Tariff

    # GIVEN two households over two ordinary June days (48 half-hours each): A 0.5 kWh every half-hour, B 1.0 kWh
    first = datetime(2024, 6, 2, 23, tzinfo=UTC)  # 00:00 BST on 3 June
    starts = [first + timedelta(minutes=30 * i) for i in range(96)]
    half_hours = pd.DataFrame({"meter_point": ["A"] * 96 + ["B"] * 96, "interval_start_utc": starts * 2,
                               "kwh": [0.5] * 96 + [1.0] * 96, "is_estimated": [False] * 192})
    tariffs = {
        # flat, 20 p/kWh, then 30 p/kWh from the second day (the what-if cuts the bill there, as the job does)
        "flat": Tariff("flat", "flat", (Rate(date(2024, 1, 1), {"all": D(20)}, D(50)),
                                        Rate(date(2024, 6, 4), {"all": D(30)}, D(50)))),
        # time of use: night (before 07:00 UTC) 10 p, day 30 p, as on an SSC 0151 meter
        "e7": Tariff("e7", "tou", (Rate(date(2024, 1, 1), {"N": D(10), "D": D(30)}, D(40)),)),
        "agile": Tariff("agile", "dynamic", (Rate(date(2024, 1, 1), {}, D(46)),)),
    }
    prices = {"agile": {s: D(10) for s in starts[1:]}}  # the first half-hour has no price

    def register_of(ssc, start):
        assert ssc == "0151"
        return "N" if start.hour < 7 else "D"

    # WHEN each household is priced on each tariff
    got = analytics.tariff_what_if(half_hours, tariffs, bill_from=date(2024, 6, 3), bill_to=date(2024, 6, 5),
                                   tou_ssc="0151", register_of=register_of, prices=prices)
    # THEN (by hand, VAT 5 %, each bill's total rounded to the penny):
    # A flat: 24 kWh x 20 + 50 = 530, +26.50 VAT = 557; 24 x 30 + 50 = 770, +38.50 = 809 (half-up): 1366
    # A e7: per day 14 night half-hours (7 kWh x 10) + 34 day (17 kWh x 30) = 580; 1160 + 80 = 1240, +62 = 1302
    # A agile: 95 priced half-hours x 0.5 x 10 = 475 + 92 = 567, +28.35 = 595 (one half-hour unpriced)
    # B flat: 48 x 20 + 50 = 1010, +50.50 = 1061; 48 x 30 + 50 = 1490, +74.50 = 1565: 2626
    # B e7: (14 x 10 + 34 x 30) x 2 = 2320 + 80 = 2400, +120 = 2520; B agile: 95 x 10 = 950 + 92 = 1042, +52.10 = 1094
    assert got[["meter_point", "tariff", "kind", "total_p", "unpriced", "status"]].values.tolist() == [
        ["A", "flat", "flat", 1366.0, 0, "complete"], ["A", "e7", "tou", 1302.0, 0, "complete"],
        ["A", "agile", "dynamic", 595.0, 1, "incomplete"],
        ["B", "flat", "flat", 2626.0, 0, "complete"], ["B", "e7", "tou", 2520.0, 0, "complete"],
        ["B", "agile", "dynamic", 1094.0, 1, "incomplete"]]
    assert got.loc[got.tariff == "agile", "kwh"].tolist() == [47.5, 95.0]
