"""The local stack's S3-API server (s3proxy): the lake's commit protocol, the archive and a mirror run on it."""
from __future__ import annotations

import uuid
from datetime import date

import pyarrow.fs as pafs
import pytest

from infra.local import s3
from infra.local import stack as stack_mod
from meterlake.lake.files import open_lake

pytestmark = pytest.mark.stack


def test_properties_name_the_endpoint_keys_and_directory():
    text = s3.render_properties(port=9300, access_key="AK", secret_key="SK", data_dir="/d")
    assert "s3proxy.endpoint=http://127.0.0.1:9300\n" in text and "s3proxy.authorization=aws-v2-or-v4\n" in text
    assert "s3proxy.identity=AK\n" in text and "s3proxy.credential=SK\n" in text


@pytest.fixture
def s3_settings(s3_stack):
    url = f"s3://{s3.BUCKET}/tests-{uuid.uuid4().hex[:8]}"
    return s3_stack.model_copy(update={"paths": s3_stack.paths.model_copy(update={"lake": url})})


def test_anonymous_requests_are_refused(s3_stack):
    import requests

    answer = requests.get(f"{s3_stack.lake.s3_endpoint}/{s3.BUCKET}", timeout=30)
    assert answer.status_code == 403


def test_lake_writes_never_replace_and_manifests_are_versioned_on_s3(s3_settings):
    from streaming.mirror.compact import compact
    from streaming.mirror.query import sql
    from tests.streaming.mirror.test_lake_hdfs_safety import DAY, HORIZON, part

    lake = open_lake(s3_settings)
    assert isinstance(lake.fs, pafs.S3FileSystem)
    lake.write_parquet(*part(range(0, 4), 0))
    lake.write_parquet(*part(range(0, 4), 4))  # a replay
    with pytest.raises(FileExistsError):
        lake.write_parquet(*part(range(0, 4), 4))
    compact(lake, target_bytes=1 << 20, grace_s=0, horizon=HORIZON)
    lake.write_parquet(*part(range(4, 6), 8))
    compact(lake, target_bytes=1 << 20, grace_s=0, horizon=HORIZON)
    assert sql(lake, "SELECT count(*), count(DISTINCT meter_point) FROM reads_all")["rows"] == [[6 * 48, 6]]
    assert lake.manifest(DAY).version == 4  # each compaction: its swap, then its collection (grace 0)
    names = [i.base_name for i in lake.list_dir(f"_manifest/settlement_date={DAY}") if i.type == pafs.FileType.File]
    assert names[-1] == "000000000004.json" and "000000000001.json" not in names  # older versions collected


def test_the_archive_on_s3_keeps_both_files_of_one_name(s3_stack, tmp_path):
    from tests.streaming.ingest.test_storage import _check_nothing_is_lost, _storage

    _check_nothing_is_lost(_storage(f"s3://{s3.BUCKET}/archive-{uuid.uuid4().hex[:8]}", tmp_path, s3_stack), tmp_path)


def test_a_mirror_run_writes_the_lake_on_s3(kafka_stack, s3_settings, tmp_path):
    from streaming.mirror.consumer import Mirror
    from tests.streaming.mirror.mirrorhelp import lake_counts, meter_days, mirror_settings, publish

    settings = mirror_settings(stack_mod.remembered(s3_settings), tmp_path).model_copy(update={
        "paths": s3_settings.paths, "lake": s3_settings.lake})
    publish(settings, meter_days(4, 2, date(2016, 10, 29)))
    stats = Mirror(settings).run(until_caught_up=True)
    assert stats.reads == 4 * (48 + 50)
    assert lake_counts(open_lake(settings))[:2] == [4 * (48 + 50), 4 * (48 + 50)]


JOBS_DAY = date(2024, 10, 27)  # 50 periods
A, B = "1200000000014", "1200000000025"


@pytest.fixture(scope="module")
def s3_jobs(s3_stack, tmp_path_factory):
    """One S3 lake for the Spark jobs: two meters' reads of :data:`JOBS_DAY` (A: 0.5 kWh a half-hour, period 20
    corrected to 0.75 after SF's cut-off; B: 0.25 kWh without periods 10 and 11) and their registry, then clean,
    settle SF (twice), the SF->R1 diff and quality, in one Spark application of its own process (the S3A jars
    join the classpath when its JVM starts). Yields the lake's settings and the jobs' answers."""
    import json
    import os
    import subprocess
    import sys

    from jobs.registry import job as registry
    from meterlake import pseudonym
    from tests.jobs.helpers import JOBS_APP, write_two_meters_with_a_correction

    settings = s3_stack.model_copy(update={"paths": s3_stack.paths.model_copy(
        update={"lake": f"s3://{s3.BUCKET}/jobs-{uuid.uuid4().hex[:8]}"})})
    write_two_meters_with_a_correction(open_lake(settings), pseudonym.for_settings(settings), JOBS_DAY, A, B)
    csv = tmp_path_factory.mktemp("registry") / "registry.csv"
    csv.write_text("meter_point,gsp_group,supplier,profile_class,ssc,llfc,effective_from\n"
                   f"{A},_C,SUPA,1,0393,1,2024-01-01\n{B},_J,SUPB,1,0393,1,2024-01-01\n")
    registry.run(settings, csv)
    env = {**os.environ, "METERLAKE_PATHS__STATE_DIR": str(settings.state_dir),
           "METERLAKE_STACK__PORT_OFFSET": str(settings.stack.port_offset),
           "METERLAKE_PATHS__LAKE": settings.paths.lake, "METERLAKE_LAKE__S3_ENDPOINT": settings.lake.s3_endpoint,
           "METERLAKE_SPARK__SHUFFLE_PARTITIONS": "2"}
    out = subprocess.run([sys.executable, "-c", JOBS_APP, "local[2]", JOBS_DAY.isoformat()], capture_output=True,
                         text=True, env=env, timeout=900)
    assert out.returncode == 0, out.stderr[-4000:]
    return settings, json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_the_spark_jobs_read_and_write_an_s3_lake_through_s3a(s3_jobs):
    from tests.jobs.helpers import check_two_meters_jobs

    _, answers = s3_jobs
    check_two_meters_jobs(answers)
    # the diff is read back from the directory Spark wrote: A's correction of period 20 after SF
    diff = answers["diff"]
    assert diff["delta_kwh"] == 0.25
    assert [(r["settlement_period"], r["from_kwh"], r["to_kwh"]) for r in diff["rows"]] == [(20, 0.5, 0.75)]
    assert [(d["meters"], d["missing_periods"]) for d in answers["quality"]["dates"]] == [(2, 0)]


@pytest.mark.slow
def test_the_spark_jobs_outputs_on_s3_are_whole_versions_pyarrow_reads(s3_jobs):
    from jobs import lakeio
    from jobs.clean import job as clean
    from jobs.quality import job as quality
    from jobs.settle import job as settle
    from jobs.settle_diff import job as settle_diff

    settings, _ = s3_jobs
    lake = open_lake(settings)
    cleaned = lakeio.read_output(lake, clean.output_dir(JOBS_DAY)).to_pylist()
    estimated = sorted((r["settlement_period"], r["value"]) for r in cleaned if r["is_estimated"])
    assert estimated == [(10, 0.25), (11, 0.25)]
    assert len({(r["meter_point"], r["settlement_period"]) for r in cleaned}) == 2 * 50
    measured = {r["received_periods"] + r["estimated_periods"] for r in lakeio.read_output(
        lake, quality.output_dir(JOBS_DAY)).to_pylist()}
    assert measured == {50}
    diff = lakeio.read_output(lake, settle_diff.output_dir(JOBS_DAY, "SF", "R1"))
    assert diff.column("reason").to_pylist() == ["correction"]
    settled = lakeio.read_output(lake, settle.output_path(JOBS_DAY, "SF"))
    assert round(sum(settled.column("consumption_kwh").to_pylist()), 3) == 37.5
    # each Spark output is one committed version: no Hadoop _temporary left in it
    version = lakeio.current(lake, clean.output_dir(JOBS_DAY))
    assert [i.base_name for i in lake.list_dir(version) if i.base_name.startswith("_temporary")] == []


def _lease_lake(s3_settings, name: str, **ingest):
    """Settings with a keyspace of their own (the lease's row) and the S3 lake, holding one mirror file of DAY."""
    from tests.streaming.mirror.test_lake_hdfs_safety import part
    from tests.streaming.stackhelp import isolated

    settings = isolated(stack_mod.remembered(s3_settings), name, **ingest).model_copy(update={
        "paths": s3_settings.paths, "lake": s3_settings.lake})
    lake = open_lake(settings)
    lake.write_parquet(*part(range(0, 2), 0))
    return settings, lake


def test_on_s3_compactions_take_turns_by_the_cassandra_lease(cassandra_stack, s3_settings):
    from meterlake.cli.mirror_cmd import _compaction_lease
    from meterlake.errors import MeterlakeError
    from streaming.mirror.compact import compact
    from tests.streaming.mirror.test_lake_hdfs_safety import HORIZON

    settings, lake = _lease_lake(s3_settings, "lease")

    # GIVEN a compaction holding the lake's lease (the one `meterlake lake compact` takes on S3)
    with _compaction_lease(settings, lake) as lease:
        assert lease.held
        # THEN another one is refused, and nothing of it is written
        with pytest.raises(MeterlakeError, match="another compaction is running"):
            compact(lake, target_bytes=1 << 20, grace_s=600, horizon=HORIZON,
                    lease=_compaction_lease(settings, lake))
        assert lake.manifest(date(2016, 10, 29)).version == 0
    # AND once it is released the next one runs
    assert [r.compacted for r in compact(lake, target_bytes=1 << 20, grace_s=600, horizon=HORIZON,
                                         lease=_compaction_lease(settings, lake))] == [True]


def test_two_compactions_started_together_on_s3_swap_the_date_once(cassandra_stack, s3_settings):
    import threading

    from meterlake.cli.mirror_cmd import _compaction_lease
    from meterlake.errors import MeterlakeError
    from streaming.mirror.compact import compact
    from streaming.mirror.query import sql
    from tests.streaming.mirror.test_lake_hdfs_safety import DAY, HORIZON, part

    settings, lake = _lease_lake(s3_settings, "race")
    lake.write_parquet(*part(range(0, 2), 2))  # a replay: compaction collapses it
    start, outcomes = threading.Barrier(2), []

    def one() -> None:
        start.wait()
        try:
            outcomes.append([r.compacted for r in compact(lake, target_bytes=1 << 20, grace_s=600, horizon=HORIZON,
                                                           lease=_compaction_lease(settings, lake))])
        except MeterlakeError as exc:
            outcomes.append(str(exc))

    threads = [threading.Thread(target=one) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    # one compacted the date; the other was refused, or (if the first had finished) found nothing left to do
    refused = "another compaction is running on this lake"
    assert sorted(map(str, outcomes)) in (["[False]", "[True]"], ["[True]", refused])
    assert lake.manifest(DAY).version == 1  # one swap, never two writers' manifests
    assert sql(lake, "SELECT count(*), count(DISTINCT meter_point) FROM reads_all")["rows"] == [[2 * 48, 2]]


HOLDER = """
import sys, time
from meterlake import config
from meterlake.cli.mirror_cmd import _compaction_lease
from meterlake.lake.files import open_lake

settings = config.discovered(config.load(None))
with _compaction_lease(settings, open_lake(settings)):
    print("held", flush=True)
    time.sleep(600)
"""


def test_the_s3_compaction_lease_of_a_killed_holder_expires(cassandra_stack, s3_settings):
    import os
    import subprocess
    import sys
    import time

    from meterlake.cli.mirror_cmd import _compaction_lease
    from meterlake.errors import MeterlakeError
    from streaming.mirror.compact import compact
    from tests.streaming.mirror.test_lake_hdfs_safety import DAY, HORIZON
    from tests.streaming.stackhelp import env

    lease_s = 15  # renewed every 5 s: a killed holder leaves 10 s or more of it
    settings, lake = _lease_lake(s3_settings, "dead", lease_s=lease_s)
    # GIVEN a process holding the lake's compaction lease, killed (no release, no more renewals)
    holder = subprocess.Popen([sys.executable, "-c", HOLDER], stdout=subprocess.PIPE, text=True, env={
        **os.environ, **env(settings), "METERLAKE_LAKE__S3_ENDPOINT": settings.lake.s3_endpoint})
    try:
        assert holder.stdout.readline().strip() == "held"
    finally:
        holder.kill()
        holder.wait(timeout=60)
    killed = time.monotonic()

    def attempt():
        return compact(lake, target_bytes=1 << 20, grace_s=600, horizon=HORIZON,
                       lease=_compaction_lease(settings, lake))

    # THEN a compaction is refused while the lease lasts, and runs once it has expired (its Cassandra TTL)
    with pytest.raises(MeterlakeError, match="another compaction is running"):
        attempt()
    while True:
        try:
            results = attempt()
            break
        except MeterlakeError:
            assert time.monotonic() - killed < lease_s + 30, "the dead holder's lease never expired"
            time.sleep(0.5)
    assert [r.compacted for r in results] == [True] and lake.manifest(DAY).version == 1
