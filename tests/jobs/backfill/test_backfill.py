"""Back-fill on the real stack: lake partitions deleted or damaged are rebuilt from Cassandra, through the
connector, to the content the mirror wrote (the same reads, versions, pseudonyms and lineage)."""
from __future__ import annotations

import json
import shutil
from datetime import timedelta
from pathlib import Path

import pytest

from jobs.backfill import job as backfill
from meterlake.lake import layout
from meterlake.lake.files import open_lake
from tests.jobs.storehelp import ANSWER, DAYS, START, digest, lake_rows, stored  # noqa: F401 (the session's portfolio)

pytestmark = [pytest.mark.stack, pytest.mark.slow]

DELETED, DAMAGED, UNTOUCHED = START, START + timedelta(days=1), START + timedelta(days=2)


def test_a_deleted_and_a_damaged_partition_are_rebuilt_to_the_mirrors_content(stored, spark):  # noqa: F811
    lake = open_lake(stored)
    days = [START + timedelta(days=i) for i in range(DAYS)]
    # GIVEN the mirror's lake, its live versions and its rows per date
    answers = {d: lake_rows(stored, d, ANSWER) for d in days}
    rows = {d: lake_rows(stored, d) for d in days}
    every = {d: lake_rows(stored, d, view="reads_all") for d in days}
    assert all(answers[d] for d in days)
    # WHEN one partition is deleted and a file of another overwritten with garbage
    shutil.rmtree(lake.path(layout.date_dir(DELETED)))
    damaged = lake.live_files(DAMAGED)[0]
    with open(damaged.path, "r+b") as f:
        f.write(b"not parquet" * 100)
    assert lake_rows(stored, DELETED) == []
    with pytest.raises(Exception):  # noqa: B017 (duckdb raises its own IO error)
        lake_rows(stored, DAMAGED)

    # AND the two dates are rebuilt from the store
    out = backfill.run(stored, DELETED, DAMAGED, spark=spark)

    # THEN the answer says what was done
    assert set(out) == {"status", "dates", "seconds"}
    assert out["status"] == "rebuilt"
    done = {d["settlement_date"]: d for d in out["dates"]}
    assert done[DELETED]["reads"] == len(answers[DELETED]) and done[DELETED]["replaced"] == 0
    assert done[DAMAGED]["reads"] == len(answers[DAMAGED]) and done[DAMAGED]["replaced"] >= 1
    # the live versions are the mirror's, read for read (values, qualities, versions, pseudonyms): digests equal
    for day in (DELETED, DAMAGED):
        assert digest(lake_rows(stored, day, ANSWER)) == digest(answers[day]), day
        # and the rows too, lineage included, where no period was restated in part by a later version
        if every[day] == rows[day]:
            assert lake_rows(stored, day) == rows[day], day
    assert any(every[d] == rows[d] for d in (DELETED, DAMAGED)), "no date without corrections was compared whole"
    # the other date is untouched; the run is recorded
    assert lake_rows(stored, UNTOUCHED, view="reads_all") == every[UNTOUCHED]
    records = sorted(Path(lake.path(backfill.RECORD_DIR)).glob("*.json"))
    record = json.loads(records[-1].read_text())
    assert [d["settlement_date"] for d in record["dates"]] == [DELETED.isoformat(), DAMAGED.isoformat()]
    assert record["dates"][1]["damaged"] == [damaged.name]
