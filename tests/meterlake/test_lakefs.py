"""The lake's filesystem for Python: URL to (filesystem, path); Parquet round trips, local and on HDFS."""
from __future__ import annotations

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq
import pytest

from infra.local.discover import discover
from meterlake import config, lakefs
from meterlake.errors import UsageError

READS = pa.table({
    "meter_id": ["M-0001", "M-0002", "M-0001"],
    "settlement_period": pa.array([1, 1, 2], pa.int8()),
    "energy_kwh": [0.25, 1.5, 0.375],
})


def with_lake(settings: config.Settings, lake: str, **lake_fields) -> config.Settings:
    return settings.model_copy(update={
        "paths": settings.paths.model_copy(update={"lake": lake}),
        "lake": settings.lake.model_copy(update=lake_fields),
    })


# ------------------------------------------------------------------------------------------ URL mapping

def test_local_lake_round_trip(tmp_path):
    settings = with_lake(config.Settings(), str(tmp_path / "lake"))
    fs, root = lakefs.resolve(settings)
    fs.create_dir(f"{root}/reads")

    pq.write_table(READS, f"{root}/reads/part-0.parquet", filesystem=fs)

    assert isinstance(fs, pafs.LocalFileSystem)
    assert root == str(tmp_path / "lake")
    assert pq.read_table(f"{root}/reads/part-0.parquet", filesystem=fs).equals(READS)
    assert (tmp_path / "lake" / "reads" / "part-0.parquet").is_file()


def test_hdfs_url_maps_to_the_local_stacks_webhdfs_port():
    settings = config.Settings()
    settings = settings.model_copy(update={"stack": settings.stack.model_copy(update={"port_offset": 300})})

    assert lakefs.webhdfs_address(discover(settings), "hdfs:///lake") == ("127.0.0.1", 10170)
    assert lakefs.webhdfs_address(discover(settings), "hdfs://127.0.0.1:9300/lake") == ("127.0.0.1", 10170)


def test_configured_webhdfs_address_wins():
    settings = with_lake(config.Settings(), "hdfs://nn.example:8020/lake", webhdfs_url="http://nn.example:9870")
    assert lakefs.webhdfs_address(settings, settings.lake_url) == ("nn.example", 9870)


@pytest.mark.parametrize("url", ["hdfs://nn.example:8020/lake", "hdfs://127.0.0.1:8020/lake"])
def test_a_namenode_other_than_the_local_stacks_needs_its_webhdfs_address(url):
    with pytest.raises(UsageError, match="lake.webhdfs_url"):
        lakefs.webhdfs_address(config.Settings(), url)


def test_s3_lake_uses_pyarrow_s3_with_bucket_path():
    settings = with_lake(config.Settings(), "s3://meter-lake/prod/", s3_endpoint="http://127.0.0.1:9999",
                         s3_region="eu-west-2", s3_access_key="AKIA-TEST", s3_secret_key="not-a-secret")
    fs, path = lakefs.resolve(settings)
    assert isinstance(fs, pafs.S3FileSystem)
    assert path == "meter-lake/prod"
    assert fs.region == "eu-west-2"


def test_s3_secret_key_is_masked_in_the_public_config():
    settings = with_lake(config.Settings(), "s3://b/p", s3_secret_key="not-a-secret")
    assert settings.public_dict()["lake"]["s3_secret_key"] == "********"


def test_unknown_scheme_is_a_usage_error():
    with pytest.raises(UsageError, match="unsupported lake URL"):
        lakefs.resolve(config.Settings(), "gs://bucket/lake")


# ----------------------------------------------------------------------------------------------- on HDFS

@pytest.mark.stack
def test_parquet_round_trip_through_webhdfs(hdfs_stack):
    settings = with_lake(hdfs_stack, "hdfs:///lake")
    fs, path = lakefs.resolve(settings, "hdfs:///lake/smoke/x.parquet")

    pq.write_table(READS, path, filesystem=fs)

    assert path == "/lake/smoke/x.parquet"
    assert pq.read_table(path, filesystem=fs).equals(READS)


@pytest.mark.stack
def test_listing_the_lake_on_hdfs(hdfs_stack):
    settings = with_lake(hdfs_stack, "hdfs:///lake")
    fs, root = lakefs.resolve(settings)
    pq.write_table(READS, f"{root}/listing/a.parquet", filesystem=fs)
    pq.write_table(READS, f"{root}/listing/b.parquet", filesystem=fs)

    infos = fs.get_file_info(pafs.FileSelector(f"{root}/listing"))

    assert root == "/lake"
    assert sorted((i.path, i.type) for i in infos) == [
        ("/lake/listing/a.parquet", pafs.FileType.File),
        ("/lake/listing/b.parquet", pafs.FileType.File),
    ]


@pytest.mark.stack
def test_another_user_cannot_write_into_the_lake(hdfs_stack):
    settings = with_lake(hdfs_stack, "hdfs:///lake", hdfs_user="mallory")
    fs, path = lakefs.resolve(settings, "hdfs:///lake/intruder.parquet")

    # The DataNode that would take the bytes refuses (HTTP 403, an OSError through fsspec and pyarrow).
    with pytest.raises(OSError, match="403"):
        pq.write_table(READS, path, filesystem=fs)

    owner_fs, _ = lakefs.resolve(with_lake(hdfs_stack, "hdfs:///lake"))
    assert owner_fs.get_file_info(path).type == pafs.FileType.NotFound


def test_a_webhdfs_server_that_never_answers_fails_the_read_after_its_retries():
    import socket
    import threading

    # GIVEN a "NameNode" that accepts connections and never answers
    server = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []

    def accept():
        while True:
            try:
                held.append(server.accept()[0])
            except OSError:
                return

    threading.Thread(target=accept, daemon=True).start()
    port = server.getsockname()[1]
    settings = with_lake(config.Settings(), f"hdfs://127.0.0.1:{port}/lake", webhdfs_url=f"http://127.0.0.1:{port}",
                         hdfs_user="meterlake", webhdfs_timeout_s=0.3, webhdfs_retries=2)
    fs, root = lakefs.resolve(settings)
    outcome: list = []

    def read():
        try:
            fs.get_file_info(root)
            outcome.append("answered")
        except OSError as exc:
            outcome.append(exc)

    # WHEN the lake is read
    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(30)
    server.close()
    # THEN the read fails (it does not hang), after the first attempt and two retries
    assert not reader.is_alive(), "the WebHDFS read hung"
    assert isinstance(outcome[0], OSError), outcome
    assert len(held) == 3


@pytest.mark.parametrize("exc, expected", [
    pytest.param(OSError(28, "No space left on device"), True, id="disk full"),
    pytest.param(RuntimeError("Cannot create file/lake/x.parquet. Name node is in safe mode."), True, id="safe mode"),
    pytest.param(RuntimeError("Operation category WRITE is not supported in state standby"), True, id="standby"),
    pytest.param(RuntimeError("The DiskSpace quota of /lake is exceeded: quota = 1024 B"), True, id="quota"),
    pytest.param(RuntimeError("File /lake/x could only be written to 0 of the 1 minReplication nodes."), True,
                 id="no datanode"),
    pytest.param(RuntimeError("Failed to find datanode, suggest to check cluster health. excludeDatanodes=null"),
                 True, id="namenode restarted, datanode not yet back"),
    pytest.param(ValueError("Invalid value for webhdfs parameter \"op\""), False, id="a bad request"),
    pytest.param(KeyError("settlement_date"), False, id="a bug"),
])
def test_transient_lake_failures_are_told_from_the_rest(exc, expected):
    assert lakefs.transient(exc) is expected
