"""Spark standalone on the local stack: rendered configuration (no processes), then a master and two workers.

Applications on the cluster run in a subprocess: this test process already has its own SparkContext (the
session ``spark`` fixture) and a Python process holds only one.
"""
from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from infra.local import process, stack
from infra.local import spark as spark_stack
from infra.local.topology import StackContext
from meterlake import config

SECRET = "s3cret-for-tests"


def _ctx(workers: int, offset: int = 300) -> StackContext:
    settings = config.Settings()
    settings = settings.model_copy(update={
        "paths": settings.paths.model_copy(update={"state_dir": Path("/nonexistent/state")}),
        "stack": settings.stack.model_copy(update={"spark_workers": workers, "port_offset": offset}),
    })
    return StackContext(settings=settings, secrets={"spark_secret": SECRET})


# ------------------------------------------------------------------------------------------- rendering


def test_daemons_require_the_shared_secret_and_offer_no_rest_submission():
    text = spark_stack.render_properties(spark_stack.daemon_properties(SECRET))

    lines = text.splitlines()
    assert "spark.authenticate=true" in lines
    assert f"spark.authenticate.secret={SECRET}" in lines
    assert "spark.master.rest.enabled=false" in lines
    assert "spark.ui.killEnabled=false" in lines


def test_application_properties_carry_the_secret():
    text = spark_stack.render_properties(spark_stack.app_properties(SECRET))

    assert text == f"spark.authenticate=true\nspark.authenticate.secret={SECRET}\n"


def test_properties_escape_backslashes_and_refuse_line_breaks():
    assert spark_stack.render_properties({"a.path": "C:\\x"}) == "a.path=C:\\\\x\n"
    with pytest.raises(ValueError):
        spark_stack.render_properties({"bad": "one\ntwo"})


def test_no_workers_means_no_processes():
    assert spark_stack.processes(_ctx(workers=0)) == []


def test_master_and_workers_listen_on_loopback_at_offset_ports():
    procs = spark_stack.processes(_ctx(workers=2, offset=300))

    assert [p.name for p in procs] == ["spark-master", "spark-worker-1", "spark-worker-2"]
    assert [p.ports for p in procs] == [{"master": 7377, "ui": 8380}, {"ui": 8381}, {"ui": 8382}]
    assert spark_stack.local_master_url(_ctx(workers=2, offset=300)) == "spark://127.0.0.1:7377"
    for proc in procs:
        assert proc.address == "127.0.0.1"
        assert proc.env["SPARK_LOCAL_IP"] == "127.0.0.1"
        assert proc.args[:2] == ["--host", "127.0.0.1"]


def test_workers_offer_the_pinned_cores_and_memory_to_the_master():
    worker = spark_stack.processes(_ctx(workers=1, offset=300))[1]

    args = list(worker.args)
    assert args[args.index("--cores") + 1] == "1"
    assert args[args.index("--memory") + 1] == "1g"
    assert args[-1] == "spark://127.0.0.1:7377"


def test_daemons_run_from_pysparks_jars_with_java17_module_options_and_no_secret_in_the_command():
    for proc in spark_stack.processes(_ctx(workers=1)):
        cmd = proc.command()
        assert cmd[cmd.index("-cp") + 1] == f"{spark_stack.pyspark_home() / 'jars'}/*"
        assert "--add-opens=java.base/sun.nio.ch=ALL-UNNAMED" in cmd
        assert f"-Dmeterlake.home={proc.home}" in cmd
        assert not any(SECRET in part for part in cmd)
    assert spark_stack.scala_version() == "2.12"


# ------------------------------------------------------------------------------------------- a real cluster

APP = """
import json, sys
import psutil
from meterlake import config
from meterlake.spark import build_spark

settings = config.discovered(config.load(None))
spark = build_spark("meterlake-test-two-workers", settings, master=sys.argv[1],
                    conf={"spark.cores.max": "2", "spark.scheduler.minRegisteredResourcesRatio": "1.0"})

def where(rows):
    import os, time
    time.sleep(0.5)  # long enough that one executor cannot take all four tasks
    yield os.getcwd(), sum(rows)

out = spark.sparkContext.parallelize(range(1, 101), 4).mapPartitions(where).collect()
secret = json.loads((settings.state_dir / "secrets.json").read_text())["spark_secret"]
leaks = [p.info["name"] for p in psutil.process_iter(["cmdline", "name"])
         if secret in " ".join(p.info["cmdline"] or [])]
print(json.dumps({"cwds": [c for c, _ in out], "total": sum(t for _, t in out), "leaks": leaks}))
spark.stop()
"""

UNAUTHENTICATED_APP = """
import sys
from pyspark.sql import SparkSession

builder = (SparkSession.builder.master(sys.argv[1]).appName("meterlake-test-intruder")
           .config("spark.ui.enabled", "false").config("spark.driver.host", "127.0.0.1")
           .config("spark.driver.bindAddress", "127.0.0.1"))
for pair in sys.argv[2:]:
    key, value = pair.split("=", 1)
    builder = builder.config(key, value)
builder.getOrCreate()
print("REGISTERED", flush=True)
"""


@pytest.fixture(scope="module")
def cluster(spark_cluster, stack_settings) -> StackContext:
    return stack.context(stack.remembered(stack_settings))


def _env(settings: config.Settings) -> dict[str, str]:
    return {**os.environ, "METERLAKE_PATHS__STATE_DIR": str(settings.state_dir),
            "METERLAKE_STACK__PORT_OFFSET": str(settings.stack.port_offset)}


@pytest.mark.stack
def test_both_workers_registered_alive_with_the_master(cluster):
    state = spark_stack.master_state(cluster)

    offset = cluster.offset
    alive = {w["webuiaddress"] for w in state["workers"] if w["state"] == "ALIVE"}
    assert state["status"] == "ALIVE"
    assert alive == {f"http://127.0.0.1:{8081 + offset}", f"http://127.0.0.1:{8082 + offset}"}
    assert state["cores"] == 2


@pytest.mark.stack
def test_secret_files_are_private(cluster):
    for proc in spark_stack.processes(cluster):
        mode = stat.S_IMODE((proc.conf_dir / "spark.properties").stat().st_mode)
        assert mode == 0o600, proc.name


@pytest.mark.stack
@pytest.mark.slow
def test_a_job_runs_on_executors_of_both_workers(cluster, spark_cluster):
    # GIVEN the master with two one-core workers
    # WHEN an application built by build_spark sums 1..100 in four partitions that each take half a second
    out = subprocess.run([sys.executable, "-c", APP, spark_cluster], capture_output=True, text=True,
                         env=_env(cluster.settings), timeout=240)
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])

    # THEN the answer is right, each worker's executor ran tasks (an executor's working directory is
    # <worker home>/data/work/<app>/<executor>), and no process has the cluster secret on its command line
    assert result["total"] == 5050
    workers = {Path(cwd).relative_to(cluster.state_dir).parts[0] for cwd in result["cwds"]}
    assert workers == {"spark-worker-1", "spark-worker-2"}
    assert len(set(result["cwds"])) == 2
    assert result["leaks"] == []


@pytest.mark.stack
@pytest.mark.slow
@pytest.mark.parametrize("auth", [
    pytest.param([], id="no secret"),
    pytest.param(["spark.authenticate=true", "spark.authenticate.secret=not-the-secret"], id="wrong secret"),
])
def test_the_master_refuses_an_application_without_the_secret(cluster, spark_cluster, tmp_path, auth):
    # The refused driver retries for a minute before giving up; its first refusal is enough to observe.
    log = tmp_path / "driver.log"
    with log.open("wb") as fh:
        child = subprocess.Popen([sys.executable, "-c", UNAUTHENTICATED_APP, spark_cluster, *auth],
                                 stdout=fh, stderr=subprocess.STDOUT, env=_env(cluster.settings),
                                 start_new_session=True)
    try:
        deadline = time.monotonic() + 90
        text = ""
        while time.monotonic() < deadline and child.poll() is None:
            text = log.read_text(errors="replace")
            if "Failed to connect to master" in text and "Sasl" in text:
                break
            time.sleep(0.5)
        state = spark_stack.master_state(cluster)
    finally:
        os.killpg(child.pid, signal.SIGKILL)  # the driver and its JVM: a group this test started
        child.wait()

    assert "Failed to connect to master" in text, text[-3000:]
    assert "Sasl" in text  # refused by the authentication handshake, not some other failure
    assert "REGISTERED" not in text
    names = {a["name"] for a in state["activeapps"] + state["completedapps"]}
    assert "meterlake-test-intruder" not in names


@pytest.mark.stack
def test_no_process_of_the_cluster_has_the_secret_on_its_command_line(cluster):
    secret = cluster.secrets["spark_secret"]
    for proc in spark_stack.processes(cluster):
        pid = process.pid(proc)
        assert pid is not None, proc.name
        assert not any(secret in part for part in psutil.Process(pid).cmdline()), proc.name
