"""The day benchmark's report (benchmarks/bench_day.py): its table is what the README keeps, so it must say what
the figures are. The day itself runs in ``make bench-day`` (minutes of Spark jobs: too long for ``make test``)."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from benchmarks import __main__ as bench_main
from benchmarks.bench_day import table

ROOT = Path(__file__).resolve().parents[2]


def _stage(name, seconds, reads, floor_s=None, floor=""):
    return {"name": name, "seconds": seconds, "reads": reads, "peak_rss_mb": 100.0, "cpu_s": 1.0, "services_cpu_s": 0.5,
            "floor_s": floor_s, "floor": floor, "ratio": None if floor_s is None else seconds / floor_s}


def test_table_gives_each_stage_its_rate_and_ratio_and_the_day_both_ways():
    # GIVEN a day of 9,600 reads whose store and mirror overlapped (the sum of stages exceeds the wall)
    result = {"reads": 9_600, "sum_of_stages_s": 40.0, "day_wall_s": 32.0,
              "stages": [_stage("ingest", 4.0, 9_600, 2.0, "pyarrow.csv + bare producer"),
                         _stage("settle", 12.0, 9_600, 3.0, "DuckDB settlement aggregate"),
                         _stage("generate", 2.0, 0)]}
    # WHEN it is tabulated
    lines = table(result).splitlines()
    # THEN each stage has its reads/s and its ratio to the floor, and the day has both its sum and its wall
    assert "| ingest | 4.0 | 2,400 | 100 | 1.0 | 0.5 | pyarrow.csv + bare producer | 2.0 | 2.00x |" in lines
    assert "| settle | 12.0 | 800 | 100 | 1.0 | 0.5 | DuckDB settlement aggregate | 3.0 | 4.00x |" in lines
    assert "| generate | 2.0 |  | 100 | 1.0 | 0.5 |  |  |  |" in lines
    assert "| **sum of stages** | 40.0 | | | | | | | |" in lines
    assert lines[-3].startswith("| **the day (wall)** | 32.0 | 300 |")
    assert lines[-1] == "settle job / DuckDB settlement aggregate: 4.00x (goal <= 3x)"


def test_meters_is_refused_for_other_stages():
    with pytest.raises(SystemExit):
        bench_main.main(["settle", "--meters", "10"])


_STOPPED = """
import subprocess, sys, time
from pathlib import Path
from benchmarks import bench_day
out = Path(sys.argv[1])
with bench_day.stopped_on_signals(lambda: out.joinpath("torn-down").write_text("yes")):
    child = subprocess.Popen(["sleep", "60"])
    bench_day._RUNNING.add(child)
    out.joinpath("child").write_text(str(child.pid))
    time.sleep(60)
"""


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_stops_the_stages_and_tears_the_stack_down(tmp_path, sig):
    # GIVEN a day running a stage's process
    day = subprocess.Popen([sys.executable, "-c", _STOPPED, str(tmp_path)], cwd=ROOT)
    deadline = time.monotonic() + 30
    while not (tmp_path / "child").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    stage = int((tmp_path / "child").read_text())
    # WHEN the benchmark is sent the signal
    day.send_signal(sig)
    # THEN it exits after the teardown ran and the stage's process is gone
    assert day.wait(timeout=30) == 128 + sig
    assert (tmp_path / "torn-down").read_text() == "yes"
    with pytest.raises(ProcessLookupError):
        os.kill(stage, 0)


def test_a_resumed_day_keeps_the_finished_stages_and_the_time_they_took(tmp_path):
    from benchmarks.bench_day import Stage, _save, saved_meters, saved_stages

    # GIVEN a day that finished two stages, the second with its services' CPU, 95 s into the day
    done = [Stage("generate", 5.0, 100, 90.0, 4.0, services=(10.0, 10.5)),
            Stage("ingest", 20.0, 100, 300.0, 18.0, floor_s=2.0, floor="bare", services=None)]
    _save(tmp_path, done, 95.0, meters=100)
    # WHEN a resumed run reads them back
    stages, elapsed = saved_stages(tmp_path)
    # THEN each stage is as it was (its services' CPU included, or unknown), and the day goes on from 95 s
    assert [(s.name, s.seconds, s.reads, s.cpu_s, s.floor_s, s.services_cpu_s) for s in stages] == [
        ("generate", 5.0, 100, 4.0, None, 0.5), ("ingest", 20.0, 100, 18.0, 2.0, None)]
    assert elapsed == 95.0
    # AND it is the day of the meters it was started with (a resume at another size would mislabel it)
    assert saved_meters(tmp_path) == 100
    # AND a day with nothing saved resumes nothing
    assert saved_stages(tmp_path / "elsewhere") == ([], 0.0)
