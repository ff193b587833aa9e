"""The fault sweep's pipeline scenarios (benchmarks/bench_faults.py) at a small size, through the public CLI on the
test stack: a generated portfolio ingested, stored and mirrored under a fault, then Cassandra and the lake's live
files compared with what the generator wrote. The sweep runs them at 240,000 reads (``make bench``); the Cassandra
node killed under ``store run`` needs a ring of 3 and is the sweep's only (tests/streaming/store/test_store_ha.py
kills a node under the store in-process)."""
from __future__ import annotations

import random

import pytest

from benchmarks import bench_faults as sweep

pytestmark = [pytest.mark.stack, pytest.mark.slow]


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    # 40 meters x 5 days x 48 periods: 25 files (a day of 8 meters each)
    return sweep.portfolio(tmp_path_factory.mktemp("sweep") / "portfolio", meters=40, per_file=8)


def test_the_portfolio_is_what_the_generator_wrote(generated):
    assert len(generated["files"]) == 25
    assert generated["reads"] == 9_600


def test_the_broker_killed_mid_ingest_loses_and_duplicates_nothing(kafka_stack, cassandra_stack, generated,
                                                                   tmp_path):
    settings = sweep._fresh(cassandra_stack, tmp_path / "lake")
    # WHEN `ingest watch` is publishing the files and the broker is killed -9 under it, then started again
    out = sweep.broker_mid_ingest(settings, generated, 1, random.Random(7), tmp_path)
    # THEN the files left are taken by later passes; each was published whole, once
    assert out["faults"] == 1
    assert (out["lost"], out["duplicated"], out["unexpected"]) == (0, 0, 0)
    assert out["in_cassandra"] == out["in_lake"] == generated["reads"]
    # and every file was archived once, none left in the landing directory or quarantined
    assert out["misplaced"] == 0
    assert out["poisoned"] == 0


def test_a_full_disk_stops_the_mirror_clearly_and_it_resumes_when_space_returns(kafka_stack, cassandra_stack,
                                                                                generated, tmp_path):
    if why_not := sweep.SmallDisk.available():
        pytest.skip(why_not)
    settings = sweep._fresh(cassandra_stack, tmp_path / "lake")
    # WHEN the mirror runs on a lake whose filesystem has room for about half the reads
    out = sweep.disk_full(settings, generated, tmp_path, full_deadline_s=15)
    # THEN a run with a deadline stops with an error naming the full disk, leaving no file half written
    assert out["faults"] > 0
    assert out["first_run_exit"] != 0
    assert "No space left on device" in out["first_run_error"]
    assert out["half_written_visible"] == 0
    # and a run started on the full disk finishes once space returns, with every read once
    assert (out["lost"], out["duplicated"], out["unexpected"]) == (0, 0, 0)
    assert out["in_lake"] == generated["reads"]
