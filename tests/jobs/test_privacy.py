"""The jobs' outputs under erasure and retention: a meter leaves every output slot that carries it through a new
committed version (the old one, which holds it, deleted), other slots and other meters untouched; a date past
retention loses its slots, pointers first."""
from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from jobs import lakeio
from jobs import privacy as outputs
from meterlake.lake.files import Lake
from meterlake.lake.outputs import view_files

Q1, Q2 = "quality/settlement_date=2024-01-10", "quality/settlement_date=2024-01-11"
SETTLED = "settlement/settlement_date=2024-01-10/run=SF"


def _lake(tmp_path: Path) -> Lake:
    lake = Lake(pafs.LocalFileSystem(), str(tmp_path / "lake"))
    lakeio.write_deterministic(lake, f"{Q1}/part-0.parquet",
                               pa.table({"meter_point": ["Pgone", "Pkept", None], "completeness": [1.0, 0.5, 0.0]}))
    lakeio.write_deterministic(lake, f"{Q2}/part-0.parquet", pa.table({"meter_point": ["Pkept"],
                                                                       "completeness": [0.9]}))
    lakeio.write_deterministic(lake, f"{SETTLED}/part-0.parquet", pa.table({"gsp_group": ["_A"], "kwh": [3.0]}))
    return lake


def _rows(lake: Lake, slot: str) -> list[dict]:
    return pq.read_table(lake.path(lakeio.current(lake, f"{slot}/part-0.parquet"))).to_pylist()


def test_erasing_a_meter_rewrites_the_outputs_that_carry_it_and_only_those(tmp_path):
    lake = _lake(tmp_path)
    before = {s: lakeio.current(lake, s) for s in (Q2, SETTLED)}
    old = lakeio.current(lake, Q1)
    assert outputs.erase_meter(lake, "Pgone") == [{"output": Q1, "rows": 1}]
    assert _rows(lake, Q1) == [{"meter_point": "Pkept", "completeness": 0.5},
                               {"meter_point": None, "completeness": 0.0}]
    assert not (tmp_path / "lake" / old).exists()  # the version that held it is gone at once
    assert {s: lakeio.current(lake, s) for s in (Q2, SETTLED)} == before
    assert outputs.erase_meter(lake, "Pgone") == []


def test_dropping_expired_slots_removes_their_dates_only(tmp_path):
    from datetime import date

    lake = _lake(tmp_path)
    expired = outputs.expired_slots(lake, date(2024, 1, 11))
    assert expired == [Q1, SETTLED]
    assert [outputs.drop_slot(lake, s) for s in expired] == [2, 2]  # a version's file and its pointer each
    assert not (tmp_path / "lake" / "quality" / "settlement_date=2024-01-10").exists()
    assert not (tmp_path / "lake" / "settlement").exists()
    files = view_files(lake, ["quality", "settlement"])
    assert len(files["quality"]) == 1 and files["settlement"] == []
