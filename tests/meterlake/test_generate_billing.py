"""The generator's billing inputs: an account per electricity meter on flat, Economy 7 and dynamic tariffs, and a
price file that is right on a clock change."""
from __future__ import annotations

import csv
from datetime import date

from meterlake import billing, tariffs
from meterlake.generate import Options, generate


def test_accounts_tariffs_and_prices_over_the_autumn_clock_change(tmp_path):
    manifest = generate(Options(meters=12, days=2, start=date(2024, 10, 26), seed=5, lcl_meters=0, device_meters=0,
                                defects={}), tmp_path)
    accounts, problems = billing.parse_accounts((tmp_path / "accounts.csv").read_text(), "accounts.csv")
    assert problems == []
    assert len(accounts) == manifest["counts"]["electricity"]
    with open(tmp_path / "registry.csv", newline="") as f:
        ssc = {r["meter_point"]: r["ssc"] for r in csv.DictReader(f)}
    kinds = {a.tariff for a in accounts}
    assert kinds == {"flat-gen", "e7-gen", "agile-gen"}
    # Economy 7 accounts are exactly the SSC 0151 meters
    assert {a.meter_point for a in accounts if a.tariff == "e7-gen"} == {m for m, s in ssc.items() if s == "0151"}
    defined = {t.name: t for t in tariffs.load_toml(tmp_path / "tariffs.toml")}
    prices, defects = tariffs.read_prices(defined["agile-gen"])
    # 48 + 50 half-hours, every one priced once
    assert (len(prices), defects) == (98, [])
