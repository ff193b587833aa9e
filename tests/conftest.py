"""Session fixtures: the real local services, started once per test session and stopped at its end.

The test stack lives in its own state directory (``build/test-stack``) and port range (``port_offset`` 1000 by
default), so a developer's own stack on the default ports is left alone. Override with METERLAKE_TEST_STATE_DIR and
METERLAKE_TEST_PORT_OFFSET. Each service fixture starts only that service; the session ends with ``stack down``,
also on failure or Ctrl-C (pytest runs session finalizers then).
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from meterlake import config

ROOT = Path(__file__).resolve().parents[1]
REALDATA = ROOT.parent / "shared" / "realdata"


def _test_settings(state_dir: Path, port_offset: int, **stack) -> config.Settings:
    settings = config.load(None)
    settings = settings.model_copy(
        update={
            "paths": settings.paths.model_copy(update={"state_dir": state_dir, "lake": str(state_dir / "lake")}),
            "stack": settings.stack.model_copy(update={"port_offset": port_offset, **stack}),
        }
    )
    return settings


@pytest.fixture(scope="session")
def stack_settings() -> config.Settings:
    state = Path(os.environ.get("METERLAKE_TEST_STATE_DIR", ROOT / "build" / "test-stack"))
    offset = int(os.environ.get("METERLAKE_TEST_PORT_OFFSET", "1000"))
    return _test_settings(state, offset, metrics=True)  # Kafka and Cassandra with the JMX exporter (test_jmx_exporter)


@pytest.fixture(scope="session")
def _stack_session(stack_settings):
    from infra.local import stack

    yield stack_settings
    stack.down(stack_settings)


def _service(settings: config.Settings, service: str, **stack_overrides) -> config.Settings:
    from infra.local import stack
    from infra.local.discover import discover

    chosen = settings.model_copy(
        update={"stack": settings.stack.model_copy(update={"services": [service], **stack_overrides})}
    )
    stack.up(chosen)
    return discover(stack.remembered(settings))


@pytest.fixture(scope="session")
def kafka_stack(_stack_session):
    """Settings of a running single-broker Kafka."""
    return _service(_stack_session, "kafka")


@pytest.fixture(scope="session")
def cassandra_stack(_stack_session):
    """Settings of a running single-node Cassandra."""
    return _service(_stack_session, "cassandra")


@pytest.fixture(scope="session")
def hdfs_stack(_stack_session):
    """Settings of a running HDFS (one NameNode, one DataNode)."""
    return _service(_stack_session, "hdfs")


@pytest.fixture(scope="session")
def s3_stack(_stack_session):
    """Settings of a running S3-API server (s3proxy), with ``lake.s3_endpoint`` set to it."""
    from infra.local import s3, stack
    from infra.local.discover import discover

    settings = _service(_stack_session, "s3")
    endpoint = s3.endpoint(stack.context(settings))
    # discovery again: it fills the keys of the local stack's S3 endpoint once the settings name it
    return discover(settings.model_copy(update={"lake": settings.lake.model_copy(update={"s3_endpoint": endpoint})}))


@pytest.fixture(scope="session")
def realdata() -> Path:
    # a git worktree sits one level deeper (e.g. /work/wt/<name>) than the main checkout (/work/main)
    candidates = [Path(os.environ["METERLAKE_REALDATA"])] if os.environ.get("METERLAKE_REALDATA") else []
    candidates += [REALDATA, ROOT.parent.parent / "shared" / "realdata"]
    for candidate in candidates:
        if candidate.is_dir():
            return candidate
    pytest.skip("../shared/realdata is absent (set METERLAKE_REALDATA to its path)")


@pytest.fixture(scope="session")
def spark(stack_settings, tmp_path_factory):
    """The one SparkSession of the test run: local[2], 2 shuffle partitions, UI off, session time zone UTC.

    It carries the Cassandra connector's jars but knows no stack (its own empty state dir), so it is the same
    whichever service fixtures ran first; a test that talks to Cassandra sets
    ``meterlake.spark.cassandra_conf(cassandra_stack)`` on it with ``spark.conf.set``.
    """
    from infra.local.discover import discover
    from meterlake.spark import build_spark

    settings = discover(stack_settings.model_copy(update={
        "paths": stack_settings.paths.model_copy(update={"state_dir": tmp_path_factory.mktemp("no-stack")}),
        "lake": stack_settings.lake.model_copy(update={"hdfs_user": "meterlake"}),  # the stack's HDFS user
        "spark": stack_settings.spark.model_copy(update={"shuffle_partitions": 2,
                                                          "with_cassandra_connector": True}),
    }))
    session = build_spark("meterlake-tests", settings, master="local[2]",
                          conf={"spark.ui.enabled": "false", "spark.sql.session.timeZone": "UTC"})
    yield session
    session.stop()


@pytest.fixture(scope="session")
def spark_cluster(_stack_session) -> str:
    """URL (spark://127.0.0.1:<port>) of a running standalone master with two workers."""
    from infra.local import spark as spark_stack
    from infra.local import stack

    settings = _service(_stack_session, "spark", spark_workers=2)
    return spark_stack.local_master_url(stack.context(settings))


@pytest.fixture(scope="session")
def settled_portfolio(spark, tmp_path_factory):
    """A generated portfolio's lake, cleaned, settled (SF, then R1 after late data), diffed and measured
    (tests/portfolio.py): what dashboards and reports read."""
    from tests.portfolio import settle_portfolio

    return settle_portfolio(spark, tmp_path_factory.mktemp("settled"))
