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


SETTLE = """
import json, sys
from datetime import date
from meterlake import config
from jobs.settle import job as settle

settings = config.discovered(config.load(None))
lean = settings.model_copy(update={"spark": settings.spark.model_copy(update={"with_cassandra_connector": False})})
day = date.fromisoformat(sys.argv[1])
print(json.dumps({"first": settle.run(lean, day, "SF", master="local[2]"),
                  "again": settle.run(lean, day, "SF", master="local[2]")}, default=str))
"""


@pytest.mark.slow
def test_a_settle_job_reads_and_writes_an_s3_lake_through_s3a(s3_settings):
    """Spark (its own process: the S3A jars join the classpath at start) settles a day of a lake on S3."""
    import json
    import os
    import subprocess
    import sys

    import pyarrow.parquet as pq

    from jobs import lakeio
    from jobs.settle import job as settle
    from meterlake import pseudonym
    from tests.jobs.helpers import after, day_of, write_lake_reads

    day = date(2024, 10, 27)  # 50 periods
    lake = open_lake(s3_settings)
    meter = pseudonym.for_settings(s3_settings).one("1200000000014")
    write_lake_reads(lake, day_of(meter, day, 0.5, version=after(day, 2)), offset=0)
    env = {**os.environ, "METERLAKE_PATHS__STATE_DIR": str(s3_settings.state_dir),
           "METERLAKE_STACK__PORT_OFFSET": str(s3_settings.stack.port_offset),
           "METERLAKE_PATHS__LAKE": s3_settings.paths.lake, "METERLAKE_LAKE__S3_ENDPOINT": s3_settings.lake.s3_endpoint,
           "METERLAKE_SPARK__SHUFFLE_PARTITIONS": "2"}
    out = subprocess.run([sys.executable, "-c", SETTLE, day.isoformat()], capture_output=True, text=True, env=env,
                         timeout=900)
    assert out.returncode == 0, out.stderr[-4000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert (result["first"]["status"], result["first"]["totals"]["periods"]) == ("settled", 50)
    assert result["first"]["totals"]["consumption_kwh"] == pytest.approx(50 * 0.5)
    assert (result["again"]["status"], result["again"]["digest"]) == ("unchanged", result["first"]["digest"])
    table = pq.read_table(lake.path(lakeio.current(lake, settle.output_path(day, "SF"))), filesystem=lake.fs)
    assert round(sum(table.column("consumption_kwh").to_pylist()), 3) == 25.0


def test_on_s3_compactions_take_turns_by_the_cassandra_lease(cassandra_stack, s3_settings):
    from meterlake.errors import MeterlakeError
    from streaming.mirror.compact import compact
    from tests.streaming.mirror.test_lake_hdfs_safety import HORIZON, part
    from tests.streaming.stackhelp import isolated

    settings = isolated(stack_mod.remembered(s3_settings), "lease").model_copy(update={
        "paths": s3_settings.paths, "lake": s3_settings.lake})
    lake = open_lake(settings)
    lake.write_parquet(*part(range(0, 2), 0))
    from meterlake.cli.mirror_cmd import _compaction_lease

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
