"""The one step that points the settings at the local stack: what the configuration leaves empty (service
addresses, credentials, the lake's pseudonym key, the connector's jars) is filled from the stack last brought up in
``paths.state_dir``. What the configuration names stays as it is.

The core takes addresses from configuration only; this step is how the local stack gets there. The CLI calls it
once (``meterlake.cli``), test fixtures and benchmarks call it where they build settings, and it is registered as
a ``meterlake.discovery`` entry point (setup.cfg) for the entry points that are not the CLI (a job under
``spark-submit``, a notebook's ``build_spark()``: :func:`meterlake.config.discovered`).
"""
from __future__ import annotations

from urllib.parse import urlsplit

from infra.local import cassandra, hdfs, jars, kafka, secrets, stack
from infra.local import spark as spark_stack
from infra.local.topology import StackContext
from meterlake.config import Settings
from meterlake.errors import ServiceError

LOOPBACK = {"127.0.0.1", "localhost"}


def discover(settings: Settings) -> Settings:
    """``settings`` filled from the local stack in its state dir (see the module docstring); without a stack
    there, only what needs no stack (the WebHDFS address its NameNode would have, the connector's jars)."""
    current = stack.remembered(settings)
    data = secrets.load(current.state_dir)
    ctx = StackContext(settings=current, secrets=data or {})
    filled = fill(settings, ctx)
    if data is None:
        return filled
    s = filled.spark
    if "master" not in s.model_fields_set and "spark" in current.stack.services and current.stack.spark_workers \
            and _master_up(ctx):
        s = s.model_copy(update={"master": spark_stack.local_master_url(ctx)})
        s.model_fields_set.add("master")
    lake = filled.lake
    if not lake.pseudonym_key_file and not lake.pseudonym_key:
        key = data.get("lake_pseudonym_key") or secrets.ensure(current.state_dir, "lake_pseudonym_key")
        lake = lake.model_copy(update={"pseudonym_key": key})
    return filled.model_copy(update={"spark": s, "lake": lake})


def fill(settings: Settings, ctx: StackContext) -> Settings:
    """``settings`` with their empty service fields taken from the stack ``ctx`` (its topology and secrets; no
    service is asked anything). Pure but for reading the jar cache."""
    update: dict = {}
    k, c, lake, s = settings.kafka, settings.cassandra, settings.lake, settings.spark
    known = ctx.secrets
    if not k.bootstrap_servers and "kafka_username" in known:
        options = kafka.client_options(ctx)
        update["kafka"] = k.model_copy(update={"bootstrap_servers": options["bootstrap_servers"],
                                               "username": options["sasl_plain_username"],
                                               "password": options["sasl_plain_password"]})
    if not c.contact_points and "cassandra_username" in known:
        user, password = cassandra.credentials(ctx)
        update["cassandra"] = c.model_copy(update={"contact_points": cassandra.contact_points(ctx),
                                                   "port": cassandra.native_port(ctx),
                                                   "username": user, "password": password})
    lake_update: dict = {}
    if not lake.webhdfs_url and not _names_another_namenode(settings, ctx):
        lake_update["webhdfs_url"] = hdfs.webhdfs_url(ctx)
    if not lake.hdfs_user and known.get("hdfs_user"):
        lake_update["hdfs_user"] = known["hdfs_user"]
    s3_port = ctx.port("s3", "port")
    endpoint = urlsplit(lake.s3_endpoint) if lake.s3_endpoint else None
    if endpoint is not None and endpoint.hostname in LOOPBACK and endpoint.port == s3_port \
            and not lake.s3_access_key and known.get("s3_access_key"):  # the local stack's S3-API server
        lake_update.update(s3_access_key=known["s3_access_key"], s3_secret_key=known["s3_secret_key"])
    if lake_update:
        update["lake"] = lake.model_copy(update=lake_update)
    spark_update: dict = {}
    if s.with_cassandra_connector and not s.connector_jars:
        try:
            folder = jars.resolve("spark", settings.jar_cache)  # cached after the first time
        except ServiceError:  # no Maven here: a session asking for the connector says what to set
            folder = None
        if folder is not None:
            spark_update["connector_jars"] = [str(p) for p in sorted(folder.glob("*.jar"))]
    if urlsplit(settings.paths.lake).scheme in ("s3", "s3a") and not s.s3a_jars:
        try:
            folder = jars.resolve("s3a", settings.jar_cache)  # only for an S3 lake: the AWS bundle is 280 MB
        except ServiceError:
            folder = None
        if folder is not None:
            spark_update["s3a_jars"] = [str(p) for p in sorted(folder.glob("*.jar"))]
    if "spark_secret" in known and ctx.settings.stack.spark_workers:
        url = spark_stack.local_master_url(ctx)
        props = {"spark.driver.host": "127.0.0.1", "spark.driver.bindAddress": "127.0.0.1",
                 **{key: str(v).lower() if isinstance(v, bool) else str(v)
                    for key, v in spark_stack.app_properties(known["spark_secret"]).items()}}
        spark_update["master_conf"] = {url: props, **s.master_conf}
    if spark_update:
        update["spark"] = s.model_copy(update=spark_update)
    return settings.model_copy(update=update) if update else settings


def _master_up(ctx: StackContext) -> bool:
    try:
        return spark_stack.is_master_up(ctx)
    except ServiceError:  # no Spark home to tell (a driver under spark-submit runs pyspark from a zip)
        return False


def _names_another_namenode(settings: Settings, ctx: StackContext) -> bool:
    """Whether an ``hdfs://`` URL of the settings (the lake, the landing directory) names a NameNode other than
    the local stack's: its WebHDFS address must then be configured, never guessed."""
    rpc_port = ctx.port(hdfs.SERVICE, "namenode_rpc_port")
    for url in (settings.paths.lake, settings.ingest.landing_dir):
        parts = urlsplit(url)
        if parts.scheme == "hdfs" and parts.hostname and (
                parts.hostname not in LOOPBACK or (parts.port or rpc_port) != rpc_port):
            return True
    return False
