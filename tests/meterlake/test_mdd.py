"""meterlake.mdd: which register (Time Pattern Regime) of an SSC a half-hour is, from the MDD's clock intervals."""
from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from meterlake import mdd
from meterlake.errors import UsageError

TINY = Path(__file__).parent / "data" / "mdd_tiny"  # SSCs 0151 (E7, GMT), 0242 (7-hour night, local), 0393


@pytest.fixture(scope="module")
def rules() -> mdd.Mdd:
    return mdd.Mdd.from_tables(mdd.read_dir(TINY))


def z(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


def test_the_tables_of_the_tiny_release(rules):
    tables = mdd.read_dir(TINY)
    assert {k: t.num_rows for k, t in tables.items()} == {"ssc": 3, "tpr": 5, "clock_intervals": 49, "ssc_tpr": 5}
    assert rules.registers("0151") == ["00043", "00210"]
    assert rules.registers("0393") == ["00001"]
    assert rules.registers("9999") == []


@pytest.mark.parametrize("instant, tpr", [
    # winter (GMT = UK time): night 00:30-07:30 UK time
    pytest.param(z(2024, 1, 15, 0, 0), "00043", id="winter 00:00 day"),
    pytest.param(z(2024, 1, 15, 0, 30), "00210", id="winter 00:30 night"),
    pytest.param(z(2024, 1, 15, 7, 0), "00210", id="winter 07:00 night"),
    pytest.param(z(2024, 1, 15, 7, 30), "00043", id="winter 07:30 day"),
    # summer: the GMT window is 01:30-08:30 UK time; 00:30Z is 01:30 BST
    pytest.param(z(2024, 7, 15, 0, 0), "00043", id="summer 01:00 BST day"),
    pytest.param(z(2024, 7, 15, 0, 30), "00210", id="summer 01:30 BST night"),
    pytest.param(z(2024, 7, 15, 7, 0), "00210", id="summer 08:00 BST night"),
    pytest.param(z(2024, 7, 15, 7, 30), "00043", id="summer 08:30 BST day"),
])
def test_ssc_0151_night_is_gmt_all_year(rules, instant, tpr):
    assert rules.register_of("0151", instant) == tpr


@pytest.mark.parametrize("instant, tpr", [
    pytest.param(z(2024, 7, 15, 23, 30), "00208", id="summer 00:30 BST night"),
    pytest.param(z(2024, 7, 15, 6, 0), "00208", id="summer 07:00 BST night"),
    pytest.param(z(2024, 7, 15, 6, 30), "00044", id="summer 07:30 BST day"),
    pytest.param(z(2024, 1, 15, 0, 30), "00208", id="winter 00:30 night"),
])
def test_a_local_time_regime_follows_the_uk_clock(rules, instant, tpr):
    assert rules.register_of("0242", instant) == tpr


def test_a_flat_ssc_has_one_register_every_half_hour(rules):
    assert {rules.register_of("0393", z(2024, 3, 31, h, m)) for h in range(24) for m in (0, 30)} == {"00001"}


def test_an_unknown_ssc_has_no_register(rules):
    assert rules.register_of("9999", z(2024, 1, 15, 0, 0)) is None


def test_a_bad_line_names_file_line_and_field(tmp_path):
    for stem in mdd.FILES.values():
        (tmp_path / f"{stem}_1.csv").write_text((TINY / f"{stem}_377.csv").read_text())
    path = tmp_path / "Time_Pattern_Regime_1.csv"
    path.write_text(path.read_text() + '"00999","C","X"\n')
    with pytest.raises(UsageError, match=r"Time_Pattern_Regime_1.csv: line 7: GMT Indicator 'X'"):
        mdd.read_dir(tmp_path)


def test_the_real_release_knows_e7(realdata):
    rules = mdd.Mdd.from_tables(mdd.read_dir(realdata / "elexon" / "mdd_377"))
    assert rules.register_of("0151", z(2023, 7, 1, 0, 30)) == "00210"
    assert rules.register_of("0151", z(2023, 7, 1, 23, 30)) == "00043"
