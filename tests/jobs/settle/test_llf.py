"""Line loss factors from D0265 flows: a tiny literal flow, a zipped one, and the real London file."""
from __future__ import annotations

import zipfile
from datetime import date
from pathlib import Path

import pytest

from jobs.settle import llf
from meterlake.errors import UsageError

TINY = Path(__file__).with_name("data") / "llflond_tiny.ptf"


def test_factors_of_the_days_asked_for_are_read_with_the_distributors_gsp_group():
    rows = llf.parse(TINY, [date(2024, 10, 27)])
    assert len(rows) == 50  # only LLFC 1 has the autumn clock-change day, with its 50 periods
    assert rows[0] == ("_C", "1", date(2024, 10, 27), 1, 1.05)
    assert rows[-1] == ("_C", "1", date(2024, 10, 27), 50, 1.1)


def test_every_class_of_a_day_is_read():
    rows = llf.parse(TINY, [date(2024, 10, 16)])
    assert {(r[1], len([x for x in rows if x[1] == r[1]])) for r in rows} == {("1", 48), ("101", 48)}
    assert {r[4] for r in rows if r[1] == "101"} == {1.2}


def test_a_zipped_flow_is_read(tmp_path):
    zipped = tmp_path / "llflond_tiny.zip"
    with zipfile.ZipFile(zipped, "w") as z:
        z.write(TINY, "llflond_tiny.ptf")
    assert llf.parse(zipped, [date(2024, 10, 16)]) == llf.parse(TINY, [date(2024, 10, 16)])


def test_a_file_that_is_not_a_d0265_is_refused(tmp_path):
    other = tmp_path / "x.ptf"
    other.write_text("ZHV|0001|D0010002|D|X|X|X|20240101000000||||OPER|\n")
    with pytest.raises(UsageError, match="not a D0265"):
        llf.parse(other)


@pytest.mark.realdata
def test_the_real_london_factors_cover_the_autumn_clock_change(realdata):
    rows = llf.parse(realdata / "elexon" / "llflond20250401ptf.zip", [date(2025, 10, 26)])
    classes = {r[1] for r in rows}
    assert len(classes) == 166
    assert {r[0] for r in rows} == {"_C"}
    assert sorted(r[3] for r in rows if r[1] == "1") == list(range(1, 51))
    assert [r[4] for r in rows if r[1] == "1" and r[3] == 1] == [1.077]
