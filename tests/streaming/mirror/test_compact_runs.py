"""Compaction keeps settlement runs reproducible: a run with an early cut-off, settled by the real settle job
(jobs/settle) before and after compaction, is the same file byte for byte while the date is within its horizon;
past the horizon the superseded version is gone, and so is that run's answer.
"""
from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from jobs.settle import job as settle
from meterlake import config
from meterlake import settlement_runs as runs
from meterlake.lake.files import open_lake
from streaming.mirror.compact import compact, horizon_from
from streaming.mirror.query import sql
from tests.jobs.helpers import after, day_of, reads, starts, write_lake_reads

pytestmark = pytest.mark.slow

DAY = date(2024, 10, 16)  # a Wednesday: SF's cut-off is the end of 2024-10-23, R1's of 2024-11-16
MP = "1200000000014"
WITHIN = datetime(2025, 1, 1, tzinfo=UTC).timestamp()
PAST = datetime(2030, 1, 1, tzinfo=UTC).timestamp()


@pytest.fixture
def settings(tmp_path):
    s = config.load(None)
    return s.model_copy(update={"paths": s.paths.model_copy(update={"state_dir": tmp_path / "state",
                                                                     "lake": str(tmp_path / "lake")})})


@pytest.fixture
def lake(settings):
    # GIVEN a meter's day read a day after it, published twice, and period 20 corrected ten days after the day
    lake = open_lake(settings)
    first, correction = after(DAY, 24), after(DAY, 24 * 10)
    assert runs.cutoff_version(DAY, "SF") < correction < runs.cutoff_version(DAY, "R1")
    write_lake_reads(lake, day_of(MP, DAY, 0.5, version=first), offset=0)
    write_lake_reads(lake, day_of(MP, DAY, 0.5, version=first), offset=1)
    write_lake_reads(lake, reads(MP, starts(DAY, [20]), 1.5, version=correction), offset=2)
    return lake


def _compact(settings, lake, now):
    return compact(lake, target_bytes=1 << 20, grace_s=0, horizon=horizon_from(settings), now=now)


def test_a_run_before_a_correction_settles_the_same_bytes_after_compaction_within_the_horizon(settings, lake,
                                                                                                spark):
    sf = settle.run(settings, DAY, "SF", spark=spark)
    r1 = settle.run(settings, DAY, "R1", spark=spark)
    assert (sf["totals"]["consumption_kwh"], sf["totals"]["estimated_kwh"]) == (24.0, 0.0)
    assert r1["totals"]["consumption_kwh"] == 25.0
    [result] = _compact(settings, lake, WITHIN)
    # the copies collapsed, the superseded half-hour stayed
    assert (result.rows_in, result.rows_out, result.superseded, result.past_horizon) == (97, 49, 1, False)
    assert sql(lake, "SELECT value, count(*) FROM reads_all WHERE settlement_period = 20 GROUP BY 1 "
                     "ORDER BY 1")["rows"] == [[0.5, 1], [1.5, 1]]
    # WHEN both runs are settled again from the compacted date (its files changed, so they are recomputed)
    sf_again = settle.run(settings, DAY, "SF", spark=spark)
    r1_again = settle.run(settings, DAY, "R1", spark=spark)
    # THEN each is the same file as before, byte for byte
    assert (sf_again["status"], sf_again["same_as_previous"], sf_again["digest"]) == ("settled", True, sf["digest"])
    assert (r1_again["status"], r1_again["same_as_previous"], r1_again["digest"]) == ("settled", True, r1["digest"])


def test_past_the_horizon_compaction_keeps_the_latest_version_only(settings, lake, spark):
    [result] = _compact(settings, lake, PAST)
    assert (result.rows_in, result.rows_out, result.superseded, result.past_horizon) == (97, 48, 0, True)
    assert sql(lake, "SELECT value FROM reads_all WHERE settlement_period = 20")["rows"] == [[1.5]]
    # SF's version of period 20 is gone (the test above settles it as actual): SF now estimates the half-hour,
    # interpolated between its neighbours' 0.5 kWh
    sf = settle.run(settings, DAY, "SF", spark=spark)
    assert (sf["totals"]["consumption_kwh"], sf["totals"]["estimated_kwh"]) == (24.0, 0.5)
