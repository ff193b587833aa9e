"""The jobs on the local Spark standalone cluster (master and two workers) reading and writing a lake on HDFS.

The test process already owns the local[2] session, so the jobs run in a child process that builds its own
application on the cluster with :func:`meterlake.spark.build_spark` (as ``spark-submit`` would).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import date

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from jobs import lakeio
from jobs.registry import job as registry
from jobs.settle import job as settle
from meterlake import pseudonym
from meterlake.lake.files import open_lake
from tests.jobs.helpers import hdfs_lake_settings, write_two_meters_with_a_correction

pytestmark = [pytest.mark.stack, pytest.mark.slow]

DAY = date(2024, 10, 27)  # 50 periods
A, B = "1200000000014", "1200000000025"

APP = """
import json, sys
from datetime import date
from meterlake import config
from meterlake.spark import build_spark
from jobs.clean import job as clean
from jobs.quality import job as quality
from jobs.settle import job as settle
from jobs.settle_diff import job as settle_diff

settings = config.discovered(config.load(None))
lean = settings.model_copy(update={"spark": settings.spark.model_copy(update={"with_cassandra_connector": False})})
spark = build_spark("meterlake-jobs-on-cluster", lean, master=sys.argv[1], conf={"spark.cores.max": "2"})
day = date.fromisoformat(sys.argv[2])
out = {"master": spark.sparkContext.master,
       "clean": clean.run(settings, [day], spark=spark),
       "settle": settle.run(settings, day, "SF", spark=spark),
       "again": settle.run(settings, day, "SF", spark=spark),
       "diff": settle_diff.run(settings, day, "SF", "R1", spark=spark),
       "quality": quality.run(settings, [day], spark=spark)}
executors = spark.sparkContext._jsc.sc().getExecutorMemoryStatus().size() - 1
out["executors"] = executors
spark.stop()
print(json.dumps(out, default=str))
"""


@pytest.fixture(scope="module")
def hdfs_lake(hdfs_stack, spark_cluster, tmp_path_factory):
    settings = hdfs_lake_settings(hdfs_stack, "settle-tests")
    write_two_meters_with_a_correction(open_lake(settings), pseudonym.for_settings(settings), DAY, A, B)
    csv = tmp_path_factory.mktemp("registry") / "registry.csv"
    csv.write_text("meter_point,gsp_group,supplier,profile_class,ssc,llfc,effective_from\n"
                   f"{A},_C,SUPA,1,0393,1,2024-01-01\n{B},_J,SUPB,1,0393,1,2024-01-01\n")
    registry.run(settings, csv)
    return settings


def test_the_jobs_run_on_the_standalone_cluster_against_the_lake_on_hdfs(hdfs_lake, spark_cluster, spark):
    settings = hdfs_lake
    env = {**os.environ, "METERLAKE_PATHS__STATE_DIR": str(settings.state_dir),
           "METERLAKE_STACK__PORT_OFFSET": str(settings.stack.port_offset),
           "METERLAKE_PATHS__LAKE": settings.paths.lake, "METERLAKE_SPARK__SHUFFLE_PARTITIONS": "2"}
    out = subprocess.run([sys.executable, "-c", APP, spark_cluster, DAY.isoformat()], capture_output=True,
                         text=True, env=env, timeout=900)
    assert out.returncode == 0, out.stderr[-4000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])

    assert result["master"] == spark_cluster and result["executors"] >= 1
    assert result["clean"]["status"] == "cleaned"
    sf = result["settle"]
    assert (sf["status"], sf["totals"]["periods"]) == ("settled", 50)
    assert sf["totals"]["consumption_kwh"] == pytest.approx(50 * 0.5 + 50 * 0.25)
    assert sf["totals"]["estimated_kwh"] == pytest.approx(2 * 0.25)  # B's periods 10 and 11 interpolated
    assert (result["again"]["status"], result["again"]["digest"]) == ("unchanged", sf["digest"])
    assert result["diff"]["reasons"]["correction"] == 1 and result["diff"]["changes"] == 1
    assert result["quality"]["status"] == "measured"
    # the same settlement on local[*] (this process's local session), forced, is the same file byte for byte
    local = settle.run(settings, DAY, "SF", spark=spark, force=True)
    assert (local["status"], local["digest"]) == ("settled", sf["digest"])
    assert spark.sparkContext.master.startswith("local")

    # the outputs are on HDFS, readable by pyarrow over WebHDFS
    lake = open_lake(settings)
    table = pq.read_table(lake.path(lakeio.current(lake, settle.output_path(DAY, "SF"))), filesystem=lake.fs)
    by_group = {}
    for r in table.to_pylist():
        by_group.setdefault(r["gsp_group"], []).append(r["consumption_kwh"])
    assert {g: (len(v), round(sum(v), 3)) for g, v in by_group.items()} == {"_C": (50, 25.0), "_J": (50, 12.5)}
    assert table.schema.equals(settle.SCHEMA) or table.schema.remove_metadata().equals(
        pa.schema(settle.SCHEMA).remove_metadata())


def test_a_job_runs_with_spark_submit_on_the_cluster(hdfs_lake, spark_cluster):
    # the documented way (docs/jobs.md): the venv's bin first on PATH, the job's options after the script
    settings = hdfs_lake
    bin_dir = os.path.dirname(sys.executable)
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
           "METERLAKE_PATHS__STATE_DIR": str(settings.state_dir),
           "METERLAKE_STACK__PORT_OFFSET": str(settings.stack.port_offset),
           "METERLAKE_PATHS__LAKE": settings.paths.lake, "METERLAKE_SPARK__SHUFFLE_PARTITIONS": "2"}
    script = os.path.join(os.path.dirname(settle.__file__), "job.py")
    out = subprocess.run([os.path.join(bin_dir, "spark-submit"), script, "--date", DAY.isoformat(), "--run", "R1",
                          "--master", spark_cluster], capture_output=True, text=True, env=env, timeout=900)
    assert out.returncode == 0, out.stderr[-4000:]
    answer = json.loads(out.stdout.strip().splitlines()[-1])
    # R1 (sources created by the end of 27 November) has A's correction of period 20: 0.75 kWh, not 0.5
    assert (answer["status"], answer["run"], answer["cutoff_utc"]) == ("settled", "R1", "2024-11-28T00:00:00Z")
    assert answer["totals"]["consumption_kwh"] == pytest.approx(49 * 0.5 + 0.75 + 50 * 0.25)
