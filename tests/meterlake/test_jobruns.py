"""Job run records (meterlake.jobruns) without Spark: a failed run is recorded as failed, the cost follows the
configured prices, records are listed per job and read as the `job_runs` view."""
from __future__ import annotations

import pytest

from meterlake import config, jobruns
from meterlake.lake.files import open_lake
from streaming.mirror import query


def _settings(tmp_path, **costs) -> config.Settings:
    s = config.Settings()
    return s.model_copy(update={"paths": s.paths.model_copy(update={"lake": str(tmp_path / "lake")}),
                                "costs": s.costs.model_copy(update=costs)})


def test_runs_are_recorded_failed_or_not_and_listed_per_job(tmp_path):
    settings = _settings(tmp_path, core_hour_price=3600.0, gb_read_price=1000.0, unit="test-units")

    @jobruns.recorded("toy")
    def run(settings, day, *, spark=None, force=False):
        if force:
            raise RuntimeError("the toy broke")
        jobruns.note_read("/lake/a.parquet", 2_000_000, 10)  # 0.002 GB at 1000 per GB: 2 units
        jobruns.note_written(4, 100)
        return {"status": "toyed"}

    @jobruns.recorded("other")
    def other(settings):
        return {"success": True}

    # GIVEN a toy job run once, then once failing, and another job run once
    assert run(settings, "2024-10-27") == {"status": "toyed"}
    with pytest.raises(RuntimeError):
        run(settings, "2024-10-28", force=True)
    other(settings)
    # WHEN the toy's runs are listed
    listed = jobruns.list_runs(open_lake(settings), "toy")
    # THEN both are there, newest first, with their arguments, status and the failure's error
    assert [(r["arguments"], r["status"], r["outcome"], r["error"]) for r in listed] == [
        ({"day": "2024-10-28", "force": True}, "failed", None, "RuntimeError: the toy broke"),
        ({"day": "2024-10-27", "force": False}, "succeeded", "toyed", None)]
    ok = listed[1]
    assert (ok["files_read"], ok["bytes_read"], ok["rows_in"], ok["rows_out"], ok["bytes_written"]) == (
        1, 2_000_000, 10, 4, 100)
    # the cost: CPU seconds at 3600 per core-hour (1 per second) plus 2 units for the bytes
    assert ok["cost"] == pytest.approx(ok["cpu_s"] + 2.0, abs=1e-6) and ok["cost_unit"] == "test-units"
    assert [r["outcome"] for r in jobruns.list_runs(open_lake(settings), "other")] == ["success"]
    # and the records are the lake's job_runs view
    answer = query.sql(open_lake(settings), "SELECT job, count(*) FROM job_runs GROUP BY job ORDER BY job")
    assert answer["rows"] == [["other", 1], ["toy", 2]]
