"""THE one Spark session factory: jobs, tests and notebooks all build their sessions with :func:`build_spark`.

A session always has the UTC session time zone, the web UI off (unless asked), ``spark.shuffle_partitions``
shuffle partitions and the configured driver/executor memory. From the settings (configuration only: for the
local stack, its discovery step ``infra.local.discover`` fills them in) it also gets:

- the Spark Cassandra Connector's jars (``spark.connector_jars``) and the Cassandra connection (hosts, port,
  credentials, consistency), when ``spark.with_cassandra_connector``;
- ``fs.defaultFS`` when the lake is on ``hdfs://``;
- ``spark.master_conf[master]``: the properties of the chosen master (the local stack's standalone master: its
  shared secret).

The master is the ``master`` argument, else ``spark.master`` (which the local stack's discovery sets to its
standalone master when that runs and the configuration names none), else ``local[*]``.

Secrets (the cluster secret, the Cassandra password) never go on a command line: pyspark passes its conf to
``spark-submit`` as ``--conf`` arguments, so they travel in a 0600 properties file read at JVM launch and
deleted right after (or over the py4j socket when this process's JVM already runs).
"""
from __future__ import annotations

import os
import shlex
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from meterlake import config
from meterlake.errors import UsageError

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

SECRET_SUFFIXES = (".secret", ".password", ".secret.key")
CONNECTOR_EXTENSIONS = "com.datastax.spark.connector.CassandraSparkExtensions"


def resolve_master(settings: config.Settings, master: str | None = None) -> str:
    return master or settings.spark.master


def cassandra_conf(settings: config.Settings) -> dict[str, str]:
    """The connector's connection settings, from ``settings.cassandra``.

    Empty when it names no Cassandra. Also usable on a running session (``spark.conf.set``).
    """
    c = settings.cassandra
    hosts, port, user, password = list(c.contact_points), c.port, c.username, c.password
    if not hosts:
        return {}
    conf = {
        "spark.cassandra.connection.host": ",".join(hosts),
        "spark.cassandra.output.consistency.level": c.write_consistency,
        "spark.cassandra.input.consistency.level": c.read_consistency,
    }
    if port:
        conf["spark.cassandra.connection.port"] = str(port)
    if user:
        conf["spark.cassandra.auth.username"] = user
    if password:
        conf["spark.cassandra.auth.password"] = password
    return conf


def connector_jars(settings: config.Settings) -> list[Path]:
    """The Spark Cassandra Connector and its runtime dependencies (``spark.connector_jars``)."""
    if not settings.spark.connector_jars:
        raise UsageError("no Spark Cassandra Connector jars: set spark.connector_jars, or resolve the local "
                         "stack's (`meterlake stack fetch`)")
    return [Path(p) for p in settings.spark.connector_jars]


def s3a_jars(settings: config.Settings) -> list[Path]:
    """Hadoop's S3A filesystem (hadoop-aws 3.3.4, pyspark's Hadoop) and its AWS SDK bundle (``spark.s3a_jars``)."""
    if not settings.spark.s3a_jars:
        raise UsageError("no S3A jars for an s3:// lake: set spark.s3a_jars (hadoop-aws 3.3.4 and "
                         "aws-java-sdk-bundle 1.12.262), or let the local stack resolve them (the CLI does)")
    return [Path(p) for p in settings.spark.s3a_jars]


def s3a_conf(settings: config.Settings) -> dict[str, str]:
    """Spark's settings for an ``s3://`` lake: S3A serves the ``s3`` and ``s3a`` schemes, with the lake's
    endpoint (path-style, as S3-compatible stores need), keys, timeouts and retries (``lake.s3_*``, as for
    Python)."""
    lake = settings.lake
    timeout_ms = str(int(lake.s3_timeout_s * 1000))
    conf = {"spark.hadoop.fs.s3.impl": "org.apache.hadoop.fs.s3a.S3AFileSystem",
            "spark.hadoop.fs.s3a.connection.timeout": timeout_ms,
            "spark.hadoop.fs.s3a.connection.establish.timeout": timeout_ms,
            "spark.hadoop.fs.s3a.attempts.maximum": str(lake.s3_retries + 1),
            "spark.hadoop.fs.s3a.retry.limit": str(lake.s3_retries + 1)}
    if lake.s3_endpoint:
        endpoint = urlsplit(lake.s3_endpoint)
        conf.update({"spark.hadoop.fs.s3a.endpoint": lake.s3_endpoint,
                     "spark.hadoop.fs.s3a.path.style.access": "true",
                     "spark.hadoop.fs.s3a.connection.ssl.enabled": str(endpoint.scheme == "https").lower()})
    if lake.s3_region:
        conf["spark.hadoop.fs.s3a.endpoint.region"] = lake.s3_region
    if lake.s3_access_key:
        conf.update({"spark.hadoop.fs.s3a.access.key": lake.s3_access_key,
                     "spark.hadoop.fs.s3a.secret.key": lake.s3_secret_key or ""})
    return conf


def render_properties(props: dict[str, object]) -> str:
    """A Java properties file (``key=value`` lines). Pure."""
    lines = []
    for key, value in props.items():
        text = str(value).lower() if isinstance(value, bool) else str(value)
        if "\n" in text or "\r" in text:
            raise ValueError(f"property {key} contains a line break")
        lines.append(f"{key}={text.replace(chr(92), chr(92) * 2)}\n")
    return "".join(lines)


def session_conf(settings: config.Settings, master: str) -> dict[str, str]:
    """Every Spark setting of a session on ``master`` (secrets included; see :func:`build_spark`)."""
    s = settings.spark
    conf = {
        "spark.master": master,
        "spark.sql.session.timeZone": "UTC",
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
        "spark.sql.shuffle.partitions": str(s.shuffle_partitions),
        "spark.driver.memory": s.driver_memory,
        "spark.executor.memory": s.executor_memory,
    }
    if master.startswith("local"):
        conf["spark.driver.host"] = "127.0.0.1"
        conf["spark.driver.bindAddress"] = "127.0.0.1"
    conf.update(s.master_conf.get(master, {}))
    jar_list: list[Path] = []
    if s.with_cassandra_connector:
        jar_list += connector_jars(settings)
        # the connector's SQL extensions: writetime()/ttl() of Cassandra columns (a map's cells' write times are
        # the store's per-period source versions, jobs/backfill) and joins pushed down to Cassandra
        conf["spark.sql.extensions"] = CONNECTOR_EXTENSIONS
        conf.update(cassandra_conf(settings))
    lake = urlsplit(settings.lake_url)
    if lake.scheme in ("s3", "s3a"):
        jar_list += s3a_jars(settings)
        conf.update(s3a_conf(settings))
    if jar_list:
        conf["spark.jars"] = ",".join(str(p) for p in jar_list)
    if lake.scheme == "hdfs":
        conf["spark.hadoop.fs.defaultFS"] = f"hdfs://{lake.netloc}"
    hdfs_user = settings.lake.hdfs_user
    if hdfs_user:  # simple auth: HDFS trusts the stated user; the driver's is set from it at launch
        conf["spark.executorEnv.HADOOP_USER_NAME"] = hdfs_user
    return conf


def is_secret(key: str) -> bool:
    return key.endswith(SECRET_SUFFIXES)


@contextmanager
def _secrets_at_launch(secret_conf: dict[str, str]):
    """Have spark-submit read ``secret_conf`` from a 0600 properties file, deleted once the JVM read it."""
    if not secret_conf:
        yield
        return
    fd, name = tempfile.mkstemp(prefix="meterlake-spark-", suffix=".properties")  # mode 0600
    old = os.environ.get("PYSPARK_SUBMIT_ARGS")
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(render_properties(secret_conf))
        os.environ["PYSPARK_SUBMIT_ARGS"] = f"--properties-file {shlex.quote(name)} {old or 'pyspark-shell'}"
        yield
    finally:
        if old is None:
            os.environ.pop("PYSPARK_SUBMIT_ARGS", None)
        else:
            os.environ["PYSPARK_SUBMIT_ARGS"] = old
        os.unlink(name)


def build_spark(app: str, settings: config.Settings | None = None, master: str | None = None,
                conf: dict[str, str] | None = None) -> SparkSession:
    """A SparkSession for ``app``; ``conf`` entries override the derived ones (e.g. ``spark.ui.enabled``).

    One JVM (and one SparkContext) per Python process: while a session runs, asking for another master fails;
    asking for the same master returns the running session.
    """
    from pyspark import SparkContext
    from pyspark.sql import SparkSession

    settings = settings if settings is not None else config.discovered(config.load())
    chosen = resolve_master(settings, master)
    options = session_conf(settings, chosen)
    options.update({k: str(v) for k, v in (conf or {}).items()})

    active = SparkContext._active_spark_context
    if active is not None and active.master != options["spark.master"]:
        raise UsageError(
            f"a Spark session on {active.master} already runs in this process; stop it before asking for "
            f"{options['spark.master']}", running=active.master, requested=options["spark.master"],
        )
    if options.get("spark.driver.bindAddress") == "127.0.0.1":
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")  # stay on loopback, whatever the hostname resolves to
    # Executors run Python with the driver's interpreter, so they see the same packages.
    os.environ["PYSPARK_PYTHON"] = sys.executable
    if "spark.executorEnv.HADOOP_USER_NAME" in options and SparkContext._gateway is None:
        os.environ["HADOOP_USER_NAME"] = options["spark.executorEnv.HADOOP_USER_NAME"]

    builder = SparkSession.builder.appName(app)
    # under spark-submit the JVM is already up (pyspark connects to its gateway): no launch to pass a file to
    jvm_running = SparkContext._gateway is not None or "PYSPARK_GATEWAY_PORT" in os.environ
    secret_conf = {k: v for k, v in options.items() if is_secret(k)}
    for key, value in options.items():
        if jvm_running or key not in secret_conf:  # a running JVM gets them over py4j, not a command line
            builder = builder.config(key, value)
    with _secrets_at_launch({} if jvm_running else secret_conf):
        return builder.getOrCreate()
