"""The jobs' read of the lake (:func:`jobs.lakeio.read_lake_days`): each date's reads of the kinds asked for, in
the lake's columns, and a filter on the date that leaves the other dates' files unopened."""
from __future__ import annotations

from datetime import date

import pyarrow as pa
import pytest
from pyspark.sql import functions as F

from jobs import lakeio
from meterlake import config
from meterlake.lake import layout
from meterlake.lake.files import open_lake
from tests.jobs.helpers import MP, MP2, day_of, reads, starts, write_lake_reads

D1, D2 = date(2024, 11, 19), date(2024, 11, 20)


@pytest.fixture
def job_lake(tmp_path) -> lakeio.JobLake:
    """Two dates: every half-hour of one meter each day, and a register read of another meter each day."""
    s = config.load(None)
    s = s.model_copy(update={"paths": s.paths.model_copy(update={"state_dir": tmp_path / "state",
                                                                 "lake": str(tmp_path / "lake")})})
    lake = open_lake(s)
    write_lake_reads(lake, pa.concat_tables([
        day_of(MP, D1, 0.5), day_of(MP, D2, 0.25),
        reads(MP2, [starts(D1, [2])[0], starts(D2, [2])[0]], [1000.0, 1012.5], kind="register"),
    ]), offset=0)
    return lakeio.open_job_lake(s)


def _counts(df) -> dict[tuple, int]:
    return {(r.settlement_date, r.read_kind): r["count"]
            for r in df.groupBy("settlement_date", "read_kind").count().collect()}


def test_each_date_gives_its_reads_of_the_kinds_asked_for_in_the_lakes_columns(spark, job_lake):
    df = lakeio.read_lake_days(spark, job_lake, {D1: frozenset({"interval"}), D2: None})

    assert df.columns == lakeio.lake_spark_schema().fieldNames()
    assert _counts(df) == {(D1, "interval"): 48, (D2, "interval"): 48, (D2, "register"): 1}
    register = df.filter(F.col("read_kind") == "register").first()
    assert (register.meter_point, register.value, register.settlement_date) == (MP2, 1012.5, D2)


def test_a_filter_on_the_date_leaves_the_other_dates_files_unopened(spark, job_lake):
    # D1's file is made unreadable: a query that opened it would fail
    [d1_file] = job_lake.live_files(D1)
    with open(d1_file.path, "wb") as f:
        f.write(b"not a parquet file" * 100)
    df = lakeio.read_lake_days(spark, job_lake, {D1: None, D2: None})

    assert _counts(df.filter(F.col("settlement_date") == F.lit(D2))) == {(D2, "interval"): 48, (D2, "register"): 1}
    with pytest.raises(Exception, match=layout.date_dir(D1)):  # and the file is really unreadable
        df.filter(F.col("settlement_date") == F.lit(D1)).count()
