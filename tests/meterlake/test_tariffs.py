"""meterlake.tariffs: TOML definitions, price files checked against the settlement calendar, unit prices."""
from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from meterlake import tariffs
from meterlake.errors import UsageError

ROOT = Path(__file__).resolve().parents[2]
SPEC = tariffs.PriceFile(Path("prices.csv"), "Period from", "%d/%m/%Y %H:%M", "Europe/London", "price")


def z(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


def day_rows(day: str, times: list[str], price: str = "20.00") -> list[str]:
    return [f"{day} {t},{price}" for t in times]


def clock(start_h: int, end_h: int) -> list[str]:
    return [f"{h:02d}:{m:02d}" for h in range(start_h, end_h) for m in (0, 30)]


def csv_text(*rows: str) -> str:
    return "\n".join(["Period from,price", *rows]) + "\n"


def test_the_repository_examples_load():
    loaded = {t.name: t for f in sorted((ROOT / "tariffs").glob("*.toml")) for t in tariffs.load_toml(f)}
    assert {n: t.kind for n, t in loaded.items()} == {"agile-2023": "dynamic", "e7-2024": "tou",
                                                      "flat-2024": "flat"}
    flat = loaded["flat-2024"]
    assert flat.rate_on(date(2024, 3, 31)).unit_p == {"all": Decimal("28.62")}
    assert flat.rate_on(date(2024, 4, 1)).standing_p_per_day == Decimal("60.1")
    assert loaded["e7-2024"].rate_on(date(2024, 6, 1)).unit_p == {"00043": Decimal("32.0"),
                                                                  "00210": Decimal("15.0")}
    assert loaded["agile-2023"].prices.file == ROOT / "tariffs" / "agile-prices.csv"


def test_a_bad_definition_names_file_tariff_and_key(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text('[tariffs.x]\nkind = "tou"\nstanding_p_per_day = 50\n'
                    '[[tariffs.x.rates]]\neffective_from = "2024-01-01"\nunit_p = 12\n')
    with pytest.raises(UsageError, match=r"bad.toml: \[tariffs.x\] unit_p: a tou rate is a table"):
        tariffs.load_toml(path)


def test_a_50_period_day_with_50_rows_prices_both_repeated_hours():
    # 2023-10-29: 01:00 and 01:30 UK time happen twice; the second rows are the GMT ones
    rows = (day_rows("29/10/2023", clock(0, 2)) + day_rows("29/10/2023", ["01:00", "01:30"], "40.00")
            + day_rows("29/10/2023", clock(2, 24)))
    prices, defects = tariffs.parse_prices(csv_text(*rows), SPEC, "t", "prices.csv")
    assert defects == []
    assert len(prices) == 50
    assert prices[z(2023, 10, 29, 0, 0)] == Decimal("20.00")  # 01:00 BST
    assert prices[z(2023, 10, 29, 1, 0)] == Decimal("40.00")  # 01:00 GMT
    assert prices[z(2023, 10, 29, 1, 30)] == Decimal("40.00")


def test_a_clock_change_day_with_48_rows_is_a_defect_and_leaves_the_gmt_hour_unpriced():
    prices, defects = tariffs.parse_prices(csv_text(*day_rows("29/10/2023", clock(0, 24))), SPEC, "agile",
                                           "prices.csv")
    assert len(prices) == 48
    assert z(2023, 10, 29, 1, 0) not in prices and z(2023, 10, 29, 1, 30) not in prices
    assert defects == [tariffs.Defect("agile", date(2023, 10, 29), "period_count",
                                      "48 half-hours for a day of 50; unpriced: 2023-10-29T01:00:00Z, "
                                      "2023-10-29T01:30:00Z", (z(2023, 10, 29, 1, 0), z(2023, 10, 29, 1, 30)))]


def test_the_real_agile_file_has_that_defect(realdata):
    spec = tariffs.PriceFile(Path("x"), "Period from", "%d/%m/%Y %H:%M", "Europe/London",
                             "Agile Import price (p/kWh)")
    text = (realdata / "octopus_agile" / "agile-half-hour-actual-rates-01-11-2022_20-12-2023.csv").read_text()
    prices, defects = tariffs.parse_prices(text, spec, "agile", "agile.csv")
    assert [(d.local_date, d.kind) for d in defects] == [(date(2023, 10, 29), "period_count")]
    assert prices[z(2023, 3, 26, 0, 30)] == Decimal("30.03")  # the spring day's 46 rows are right


def test_a_46_period_day_with_46_rows_is_right_and_the_skipped_hour_is_refused():
    rows = day_rows("31/03/2024", clock(0, 1) + clock(2, 24))
    prices, defects = tariffs.parse_prices(csv_text(*rows), SPEC, "t", "prices.csv")
    assert (len(prices), defects) == (46, [])
    assert prices[z(2024, 3, 31, 1, 0)] == Decimal("20.00")  # 02:00 BST
    prices, defects = tariffs.parse_prices(csv_text(*day_rows("31/03/2024", clock(0, 24))), SPEC, "t", "p.csv")
    assert len(prices) == 46
    assert [(d.kind, d.detail) for d in defects] == [
        ("nonexistent_time", "p.csv: line 4: 01:00 does not exist in UK time on 2024-03-31 (clocks went forward); "
                             "row not used"),
        ("nonexistent_time", "p.csv: line 5: 01:30 does not exist in UK time on 2024-03-31 (clocks went forward); "
                             "row not used")]


def test_two_prices_for_one_half_hour_price_neither():
    rows = day_rows("01/06/2024", clock(0, 24)) + ["01/06/2024 12:00,99.0"]
    prices, defects = tariffs.parse_prices(csv_text(*rows), SPEC, "t", "p.csv")
    assert z(2024, 6, 1, 11, 0) not in prices
    assert [(d.kind, d.unpriced) for d in defects] == [
        ("conflicting_prices", (z(2024, 6, 1, 11, 0),))]


def test_a_bad_price_names_file_line_and_column():
    with pytest.raises(UsageError, match=r"p.csv: line 3: price: \['n/a'\] is not a number with at most 6 decimals"):
        tariffs.parse_prices(csv_text("01/06/2024 00:00,1.0", "01/06/2024 00:30,n/a"), SPEC, "t", "p.csv")
