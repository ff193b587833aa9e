"""The session factory: what a session built by build_spark is, and the configuration it derives."""
from __future__ import annotations

import re
import socket
from pathlib import Path

import pytest

from infra.local.discover import discover, fill
from infra.local.topology import StackContext
from meterlake import config
from meterlake import spark as ml_spark
from meterlake.errors import UsageError


def _settings(*, state_dir: Path, lake: str = "lake", connector: bool = False, workers: int = 0,
              offset: int = 0, **spark) -> config.Settings:
    s = config.Settings()
    return s.model_copy(update={
        "paths": s.paths.model_copy(update={"state_dir": state_dir, "lake": lake}),
        "stack": s.stack.model_copy(update={"spark_workers": workers, "port_offset": offset}),
        "spark": s.spark.model_copy(update={"with_cassandra_connector": connector, **spark}),
    })


# ------------------------------------------------------------------------------------------- the session


def test_session_renders_timestamps_in_utc(spark):
    # 1774747800 s after the epoch is 2026-03-29 01:30 UTC (02:30 in London, after the spring clock change)
    row = spark.sql("SELECT CAST(CAST(1774747800 AS TIMESTAMP) AS STRING) AS t").first()

    assert spark.conf.get("spark.sql.session.timeZone") == "UTC"
    assert row.t == "2026-03-29 01:30:00"


def test_session_uses_two_shuffle_partitions_and_no_ui(spark):
    assert spark.conf.get("spark.sql.shuffle.partitions") == "2"
    assert spark.sparkContext.uiWebUrl is None


def test_cassandra_connector_classes_load(spark):
    jvm = spark._jvm
    loader = jvm.Thread.currentThread().getContextClassLoader()
    name = "com.datastax.spark.connector.cql.CassandraConnector"
    connector = jvm.java.lang.Class.forName(name, True, loader)
    source = jvm.org.apache.spark.sql.execution.datasources.DataSource.lookupDataSource(
        "org.apache.spark.sql.cassandra", spark._jsparkSession.sessionState().conf())

    assert connector.getName() == "com.datastax.spark.connector.cql.CassandraConnector"
    assert source.getName() == "org.apache.spark.sql.cassandra.DefaultSource"


def test_connector_reads_connection_settings_from_the_session(spark):
    # GIVEN a port where nothing listens, set on the running session as a test against Cassandra would
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    conf = {"spark.cassandra.connection.host": "127.0.0.1", "spark.cassandra.connection.port": str(port)}
    for key, value in conf.items():
        spark.conf.set(key, value)
    try:
        # WHEN a Cassandra table is read THEN the connector itself (driver, shaded netty) reports that address
        expected = re.escape(f"Failed to open native connection to Cassandra at {{127.0.0.1:{port}}}")
        with pytest.raises(Exception, match=expected):
            spark.read.format("org.apache.spark.sql.cassandra").options(keyspace="k", table="t").load()
    finally:
        for key in conf:
            spark.conf.unset(key)


def test_asking_for_another_master_while_a_session_runs_fails(spark, tmp_path):
    with pytest.raises(UsageError, match="already runs"):
        ml_spark.build_spark("other", _settings(state_dir=tmp_path), master="local[1]")


# ------------------------------------------------------------------------------------ derived configuration


def test_defaults_without_a_stack(tmp_path):
    conf = ml_spark.session_conf(_settings(state_dir=tmp_path, shuffle_partitions=3, driver_memory="2g"),
                                 "local[*]")

    assert conf["spark.master"] == "local[*]"
    assert conf["spark.sql.session.timeZone"] == "UTC"
    assert conf["spark.ui.enabled"] == "false"
    assert conf["spark.sql.shuffle.partitions"] == "3"
    assert conf["spark.driver.memory"] == "2g"
    assert conf["spark.driver.bindAddress"] == "127.0.0.1"
    assert "spark.jars" not in conf
    assert "spark.authenticate" not in conf
    assert "spark.hadoop.fs.defaultFS" not in conf


def test_hdfs_lake_sets_the_default_filesystem(tmp_path):
    conf = ml_spark.session_conf(_settings(state_dir=tmp_path, lake="hdfs://127.0.0.1:9000/meterlake/lake"),
                                 "local[*]")

    assert conf["spark.hadoop.fs.defaultFS"] == "hdfs://127.0.0.1:9000"


def test_connector_brings_its_jars_and_the_configured_cassandra(tmp_path):
    settings = _settings(state_dir=tmp_path, connector=True)
    settings = settings.model_copy(update={"cassandra": settings.cassandra.model_copy(update={
        "contact_points": ["10.0.0.1", "10.0.0.2"], "port": 9142, "username": "app", "password": "pw",
        "write_consistency": "QUORUM"})})

    conf = ml_spark.session_conf(discover(settings), "local[*]")

    jars = conf["spark.jars"].split(",")
    assert any(Path(j).name == "spark-cassandra-connector_2.12-3.5.1.jar" for j in jars)
    assert not any(Path(j).name.startswith(("scala-library", "scala-collection-compat")) for j in jars)
    assert conf["spark.cassandra.connection.host"] == "10.0.0.1,10.0.0.2"
    assert conf["spark.cassandra.connection.port"] == "9142"
    assert conf["spark.cassandra.auth.username"] == "app"
    assert conf["spark.cassandra.auth.password"] == "pw"
    assert conf["spark.cassandra.output.consistency.level"] == "QUORUM"
    assert conf["spark.cassandra.input.consistency.level"] == "LOCAL_QUORUM"


def test_the_local_stack_master_gets_the_cluster_secret(tmp_path):
    settings = _settings(state_dir=tmp_path, workers=2, offset=300)
    ctx = StackContext(settings=settings, secrets={"spark_secret": "s3cret"})

    conf = ml_spark.session_conf(fill(settings, ctx), "spark://127.0.0.1:7377")

    assert conf["spark.authenticate"] == "true"
    assert conf["spark.authenticate.secret"] == "s3cret"
    assert conf["spark.driver.host"] == "127.0.0.1"
    assert ml_spark.is_secret("spark.authenticate.secret")
    assert ml_spark.is_secret("spark.cassandra.auth.password")
    assert not ml_spark.is_secret("spark.authenticate")


def test_another_standalone_master_gets_no_secret(tmp_path):
    settings = _settings(state_dir=tmp_path, workers=2, offset=300)
    ctx = StackContext(settings=settings, secrets={"spark_secret": "s3cret"})

    conf = ml_spark.session_conf(fill(settings, ctx), "spark://10.1.2.3:7077")

    assert "spark.authenticate.secret" not in conf
    assert "spark.driver.host" not in conf


def test_master_argument_wins_then_configured_master_then_local(tmp_path):
    configured = _settings(state_dir=tmp_path, master="spark://10.1.2.3:7077")

    assert ml_spark.resolve_master(configured, "local[2]") == "local[2]"
    assert ml_spark.resolve_master(configured) == "spark://10.1.2.3:7077"
    assert ml_spark.resolve_master(_settings(state_dir=tmp_path)) == "local[*]"


@pytest.mark.stack
def test_a_running_local_cluster_is_the_default_master(spark_cluster, stack_settings):
    assert ml_spark.resolve_master(discover(stack_settings)) == spark_cluster
