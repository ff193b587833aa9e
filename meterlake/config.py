"""Effective configuration: one file (``meterlake.toml``) with environment-variable overrides.

Precedence, highest first: environment (``METERLAKE_<SECTION>__<KEY>``, e.g. ``METERLAKE_KAFKA__BOOTSTRAP_SERVERS``),
then the config file, then the defaults below. The file is ``--config PATH``, else ``$METERLAKE_CONFIG``, else
``./meterlake.toml`` when present. Relative paths are taken relative to the config file's directory, or to the
working directory when there is no file.

Nothing here reads the environment at import time: :func:`load` is called once, by the CLI or a job's ``main``.
Secrets have no defaults. The local stack generates its own credentials on first ``stack up`` and keeps them in its
state directory (mode 0600); clients pointed at the local stack read them from there.
"""
from __future__ import annotations

import os
from datetime import date
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

CONFIG_ENV = "METERLAKE_CONFIG"
DEFAULT_CONFIG_NAME = "meterlake.toml"

Consistency = Literal["ONE", "LOCAL_ONE", "QUORUM", "LOCAL_QUORUM", "ALL", "EACH_QUORUM"]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")  # a misspelt key is an error, not silently ignored


class Paths(_Section):
    state_dir: Path = Field(Path("state"), description="local stack: conf, data, logs, PIDs, generated secrets")
    lake: str = Field("lake", description="lake root: a local path, hdfs://host:port/path or s3://bucket/path")
    jar_cache: Path = Field(Path("~/.cache/meterlake/jars"), description="jars resolved from Maven Central")
    warehouse: str = "warehouse/meterlake.duckdb"


class Stack(_Section):
    kafka_brokers: int = Field(1, ge=1, le=5)
    cassandra_nodes: int = Field(1, ge=1, le=5)
    hdfs_datanodes: int = Field(1, ge=1, le=5)
    spark_workers: int = Field(0, ge=0, le=4, description="0: no standalone cluster, jobs run on local[*]")
    services: list[str] = Field(["kafka", "cassandra", "hdfs", "spark"], description="what `stack up` starts")
    port_offset: int = Field(0, ge=0, le=20000, description="added to every port, to run two stacks side by side")
    start_timeout_s: int = Field(180, ge=10)
    metrics: bool = Field(False, description="Kafka and Cassandra serve JMX metrics to Prometheus (the JMX "
                          "exporter's java agent; ports in infra/local/versions.toml [jmx_exporter])")


class Kafka(_Section):
    bootstrap_servers: str = Field("", description="empty: the local stack's brokers")
    username: str | None = None
    password: str | None = None
    reads_topic: str = "meter-reads"
    files_topic: str = "meter-files"
    devices_topic: str = "device-reads"
    quarantine_topic: str = "meter-quarantine"
    partitions: int = Field(6, ge=1)
    replication_factor: int = Field(1, ge=1)
    wait_timeout_s: float = Field(30.0, gt=0, description="longest wait for one answer from the brokers (offsets, "
                                                          "commits, metadata); then the call fails and is retried")


class Cassandra(_Section):
    contact_points: list[str] = Field([], description="empty: the local stack's nodes")
    port: int | None = None
    username: str | None = None
    password: str | None = None
    keyspace: str = "meterlake"
    replication_factor: int = Field(1, ge=1)
    write_consistency: Consistency = "LOCAL_QUORUM"
    read_consistency: Consistency = "LOCAL_QUORUM"
    # the Spark Cassandra Connector (jobs backfill, reconcile, serve; docs/jobs.md)
    connector_split_size_mb: int = Field(64, ge=1, description="connector reads: Cassandra data per Spark task")
    connector_batch_rows: int = Field(64, ge=1, description="connector writes: rows per unlogged batch (rows "
                                                            "of one partition are batched together)")
    connector_concurrent_writes: int = Field(5, ge=1, description="connector writes: batches in flight per task")
    connector_throughput_mb_s: float = Field(1024.0, gt=0, description="connector writes: at most this many MB/s "
                                                                      "per core (to spare a busy ring)")
    connector_batch_grouping_key: Literal["partition", "replica_set", "none"] = Field(
        "partition", description="connector writes: which rows share a batch (partition: the same partition key)")
    connector_fetch_rows: int = Field(1000, ge=1, description="connector reads: rows per page fetched")


class Spark(_Section):
    master: str = Field("local[*]", description="local[*], or spark://host:port of a standalone master")
    driver_memory: str = "1g"
    executor_memory: str = "1g"
    shuffle_partitions: int = Field(8, ge=1)
    with_cassandra_connector: bool = True
    connector_jars: list[str] = Field([], description="the Spark Cassandra Connector's jars (with its runtime "
                                                      "dependencies); empty: the local stack's Maven cache")
    s3a_jars: list[str] = Field([], description="hadoop-aws 3.3.4 and its AWS SDK bundle, for s3:// lakes; "
                                                "empty: the local stack's Maven cache")
    master_conf: dict[str, dict[str, str]] = Field({}, description="extra Spark properties of sessions on a "
                                                                   "given master URL (a cluster's secret)")


class Lake(_Section):
    """How Python reaches the lake named by ``paths.lake`` (see ``meterlake.lakefs``).

    Spark speaks HDFS RPC (``hdfs://host:port/path``); Python speaks WebHDFS (HTTP) to the same NameNode, at
    ``webhdfs_url``. Empty fields for ``hdfs://`` mean the local stack's NameNode and user.
    """

    webhdfs_url: str = Field("", description="http://host:port of the NameNode's WebHDFS; empty: local stack's")
    hdfs_user: str | None = Field(None, description="HDFS user (simple auth); empty: the local stack's user")
    webhdfs_timeout_s: float = Field(60.0, gt=0, description="seconds a WebHDFS (or S3) request may wait to connect or "
                                                           "for data; a read that times out is retried")
    webhdfs_retries: int = Field(3, ge=0, description="retries of a WebHDFS read (GET) that failed to connect "
                                                      "or timed out")
    s3_endpoint: str = Field("", description="http(s)://host:port of an S3-compatible store; empty: AWS")
    s3_region: str = ""
    s3_timeout_s: float = Field(60.0, gt=0, description="seconds an S3 request may wait to connect or for an answer")
    s3_retries: int = Field(3, ge=0, description="retries of an S3 request that failed in a way S3 calls retryable")
    s3_access_key: str | None = None
    s3_secret_key: str | None = None
    pseudonym_key_file: str = Field("", description="file holding the key of the lake's pseudonyms of meter "
                                                    "points, serials and device ids (meterlake.pseudonym); "
                                                    "empty: the local stack's generated key")
    pseudonym_key: str | None = Field(None, description="the key itself, when it is not in a file (the local "
                                                        "stack's discovery fills it)")
    retention_days: int | None = Field(None, ge=1, description="`privacy retention` removes the reads and job "
                                                           "outputs of settlement dates older than this many "
                                                           "days; empty: kept for ever")


class _Watched(_Section):
    """A stage consuming a topic under a stall watchdog (:class:`streaming.offsets.Watchdog`)."""

    stall_timeout_s: float = Field(120.0, gt=0, description="no progress for this long while lag remains: a fresh "
                                                            "consumer")
    stall_rejoins: int = Field(3, ge=0, description="fresh consumers without progress before the stage exits "
                                                    "with an error naming the partitions and their lag")


class _Consuming(_Watched):
    """A stage consuming its own share of the topics' partitions (:mod:`streaming.offsets`)."""

    shards: int = Field(1, ge=1, description="instances sharing the topics: each owns partition p of every topic "
                                             "where p % shards == shard (no consumer group membership)")
    shard: int = Field(0, ge=0, description="this instance's share, 0..shards-1")


class Mirror(_Consuming):
    """The Kafka mirror into the Parquet lake and the lake's compaction (docs/lake.md)."""

    group_id: str = Field("meterlake-mirror", description="consumer group of the mirror")
    instance_id: str | None = Field(None, description="unused since the mirror assigns its partitions itself "
                                                      "(mirror.shards); kept so existing files still load")
    max_file_rows: int = Field(1_000_000, ge=1, description="rotate a partition's file at this many reads")
    max_file_bytes: int = Field(256 << 20, ge=1 << 10, description="... or this many bytes in memory (Arrow)")
    rotate_record_s: float = Field(3600.0, gt=0, description="... or when the Kafka record time spans this long")
    idle_flush_s: float = Field(30.0, gt=0, description="write what a partition holds after this long without "
                                                       "new messages, so a quiet topic still lands")
    max_buffer_bytes: int = Field(512 << 20, ge=1 << 10, description="all partitions' buffers together; "
                                                                    "beyond it the largest are written")
    compact_target_bytes: int = Field(128 << 20, ge=1 << 10, description="compacted file size to aim at")
    retire_grace_s: float = Field(600.0, ge=0, description="compaction deletes retired files this long after "
                                                          "retiring them (readers may still hold them)")
    assignment_timeout_s: float = Field(120.0, gt=0, description="unused since the mirror assigns its partitions "
                                                                 "itself (mirror.shards); kept so existing files "
                                                                 "still load")
    superseded_after_df_days: int = Field(30, ge=0, description="compaction keeps a settlement date's superseded "
                                          "read versions until this many days after the DF run's cut-off of "
                                          "the last settlement that reads the date, so every run stays "
                                          "reproducible until then (docs/lake.md)")
    write_timeout_s: float = Field(600.0, gt=0, description="a batch's files not written in this long count as a "
                                                            "failed write (paused and retried)")


class Store(_Consuming):
    """The store: Kafka into Cassandra (:mod:`streaming.store.consumer`)."""

    batch_rows: int = Field(8, ge=1, description="half-hourly set rows per unlogged batch (rows with the same "
                                                 "replicas; 1: a request per row). A set row is 1-2 KB: 8 rows "
                                                 "exceed Cassandra's default batch_size_warn_threshold (5 KiB), "
                                                 "so raise that threshold or lower this")


class IngestLayout(_Section):
    """A supplier's own half-hourly CSV layout (``[ingest.layouts.<name>]``; :mod:`streaming.ingest.layout`)."""

    timestamp_column: str = Field(description="the column holding the half-hour's time")
    timestamp_is: Literal["start", "end"] = Field("start", description="the time is the half-hour's start or end")
    timezone: Literal["UTC", "Europe/London"] = Field("UTC", description="zone of times written without an offset")
    timestamp_format: str = Field("iso", description="iso, or a strptime pattern")
    value_column: str = Field(description="the column holding the half-hour's energy")
    unit: Literal["kWh", "Wh"] = Field("kWh", description="the value's unit (Wh is stored as kWh)")
    meter_column: str | None = Field(None, description="the column holding the MPAN; absent: --meter-point")


class Ingest(_Watched):
    """Ingest workers: the landing directory they watch, claims, claim-checks and the file archive
    (:mod:`streaming.ingest.watch`)."""

    landing_dir: str = Field("landing", description="where files land: a local path or hdfs://host:port/path")
    worker_id: str | None = Field(None, description="this worker's name in file claims; empty: <host>-<pid>")
    lease_s: int = Field(60, ge=2, description="a claim's lease (Cassandra TTL); renewed every third of it "
                                               "while the file is worked on")
    claim_check_bytes: int = Field(64 << 20, ge=0, description="files larger than this are announced on "
                                                              "kafka.files_topic as a reference and taken "
                                                              "from there by any worker")
    archive_dir: str = Field("archive", description="where files are kept as they landed (their bytes, "
                                                  "identifiers included, so not in the lake): a local path or "
                                                  "hdfs://host:port/path or s3://bucket/path")
    raw_area: str = Field("raw", description="processed files: <archive_dir>/<raw_area>/<yyyy>/<mm>/<dd>/<file>")
    quarantine_area: str = Field("quarantine", description="rejected and duplicate files, each with "
                                                           "<file>.reason.json, under <archive_dir>/")
    transaction_timeout_s: int = Field(900, ge=10, description="a file's Kafka transaction must commit "
                                                               "within this (broker max: 15 min)")
    batch_rows: int = Field(50_000, ge=1, description="most reads in one spooled batch")
    poll_s: float = Field(5.0, gt=0, description="how often `ingest watch` lists the landing directory")
    max_attempts: int = Field(3, ge=1, description="a file whose processing fails this often in a worker (Kafka, "
                                                   "the archive, a bug) is quarantined as processing_failed")
    layouts: dict[str, IngestLayout] = Field({}, description="named supplier CSV layouts: "
                                                             "`ingest FILE --format layout:<name>`")


class Archive(_Section):
    """The archive of files as they landed (``ingest.archive_dir``): how long it keeps them (docs/privacy.md)."""

    retention_days: int | None = Field(None, ge=1, description="`privacy retention` deletes archived files "
                                                               "processed (or quarantined) longer ago than this "
                                                               "many days; empty: kept for ever")


class Jobs(_Section):
    """The Spark jobs off the lake (clean, settle, settle-diff, quality; docs/jobs.md)."""

    default_gsp_group: str = Field("UNREGISTERED", description="GSP group of meters missing from the registry")
    default_supplier: str = Field("UNREGISTERED", description="supplier of meters missing from the registry")
    default_profile_class: str | None = Field(None, description="profile class of meters missing from the registry")
    default_measurement_class: str | None = Field(None, description="measurement class of unregistered meters")
    short_gap_periods: int = Field(4, ge=0, description="gaps up to this many half-hours are interpolated")
    profile_weeks: int = Field(4, ge=0, description="same-weekday weeks averaged for a long gap's profile")
    proration_days: int = Field(7, ge=0, description="register reads this many days either side prorate a gap")
    spike_factor: float = Field(10.0, gt=0, description="spike: above this multiple of the meter's median")
    spike_floor_kwh: float = Field(3.0, ge=0, description="... and above this many kWh in a half-hour")
    zero_run_periods: int = Field(12, ge=1, description="zero run: at least this many zero half-hours in a row")
    register_tolerance_kwh: float = Field(1.0, ge=0, description="register vs half-hourly sum: allowed kWh")
    register_tolerance_share: float = Field(0.02, ge=0, description="... or this share of the sum if larger")
    registry_broadcast_rows: int = Field(
        1_000_000, ge=0, description="a registry of at most this many rows is sent whole to every executor and "
        "joined there; a larger one is joined by shuffling the reads")
    bill_vat_rate: float = Field(0.05, ge=0, le=1, description="VAT on bills (job bill): 0.05 is the domestic rate")
    bill_register_tprs: dict[str, dict[str, str]] = Field(
        {"0151": {"DY": "00043", "NT": "00210"}, "0393": {"S": "00001"}},
        description="job bill-check: per SSC, the Time Pattern Regime of each register id the D0010s use")


class Meters(_Section):
    """Meter settings: commands to meters, their service and the device gateway simulator (streaming.commands)."""

    commands_topic: str = Field("meter-commands", description="commands to meters, keyed by meter point")
    responses_topic: str = Field("meter-command-responses", description="meters' answers, keyed by meter point")
    partitions: int = Field(6, ge=1, description="partitions of both topics (a meter's commands and answers "
                                                 "share a partition number)")
    registrations: str = Field("", description="CSV of registrations (the registry's columns, optional "
                                               "prepay_capable); empty: the lake's registry")
    operator: str | None = Field(None, description="operator identity recorded with commands (supply and credit "
                                                   "commands need one; --operator overrides)")
    group_id: str = Field("meterlake-meters", description="consumer group of `meters run` (the answers)")
    instance_id: str | None = Field(None, description="static group membership of `meters run`: a restarted "
                                                 "service takes its shards back at once (one id per service)")
    ack_timeout_s: float = Field(30.0, gt=0, description="a send waits this long for an answer before a retry")
    max_attempts: int = Field(3, ge=1, description="sends of one command (same id) before it expires")
    expire_after_s: float = Field(3600.0, gt=0, description="a command unanswered this long after it became due "
                                                           "expires, whatever attempts are left")
    max_credit_pence: int = Field(50_000, ge=1, description="largest add_credit")
    gateway_group_id: str = Field("meterlake-gateway", description="consumer group of `meters gateway`")
    gateway_instance_id: str | None = Field("gateway-1", description="static group membership of the gateway: "
                                            "a restarted gateway takes its partitions back at once instead of "
                                            "after the dead one's session times out (one id per gateway)")
    gateway_delay_s: float = Field(1.0, ge=0, description="simulator: seconds before a meter answers")
    gateway_reject_rate: float = Field(0.0, ge=0, le=1, description="simulator: share of commands rejected")
    gateway_drop_rate: float = Field(0.0, ge=0, le=1, description="simulator: share of sends never answered")
    gateway_seed: int = Field(0, description="simulator: seed of its (deterministic) rejections and drops")


class Schedule(_Section):
    """`meterlake schedule run`: the settlement calendar of runs, each followed by its report (reports/)."""

    runs: list[str] = Field(["SF", "R1", "R2", "R3", "RF", "DF"], description="the runs to settle; a run of a "
                            "date is due once its cut-off (meterlake.settlement_runs) has passed")
    cron: str = Field("0 6 * * *", description="when due runs are looked for (crontab, in schedule.timezone)")
    timezone: str = "Europe/London"
    first_date: date | None = Field(None, description="earliest settlement date to settle; empty: every date "
                                                      "in the lake")
    report_formats: list[str] = Field(["html", "pdf", "csv"], description="formats of each run's report")


class Costs(_Section):
    """The price of a job run (``meterlake runs``; :mod:`meterlake.jobruns`): CPU time and bytes read. The defaults
    make the cost the core-hours used (1 per core-hour, nothing per GB): no currency is assumed until set."""

    core_hour_price: float = Field(1.0, ge=0, description="price of one CPU core for an hour, in `unit`")
    gb_read_price: float = Field(0.0, ge=0, description="price of reading 10^9 bytes, in `unit`")
    unit: str = Field("core-hours", description="what the prices are in, e.g. GBP (a label; nothing converts)")


class Models(_Section):
    """The dbt project's DuckDB build (``meterlake models build``; dbt/profiles.yml)."""

    duckdb_memory: str = Field("2GB", description="DuckDB's memory_limit for the build (it runs beside Spark jobs "
                                                  "on small machines); a day of millions of meters needs more")


class Metrics(_Section):
    """Prometheus metrics of the long-running services (streaming/metrics.py, docs/deploy.md): each process serves
    ``/metrics`` on its own port; 0 (the default) serves none, so one-shot commands and several shards on one
    host open no port unless asked."""

    address: str = Field("127.0.0.1", description="the address the metrics endpoints listen on (0.0.0.0: all)")
    ingest_port: int = Field(0, ge=0, le=65535, description="`ingest watch`'s endpoint; 0: none")
    store_port: int = Field(0, ge=0, le=65535, description="`store run`'s endpoint; 0: none")
    mirror_port: int = Field(0, ge=0, le=65535, description="`mirror run`'s endpoint; 0: none")
    schedule_port: int = Field(0, ge=0, le=65535, description="`schedule run`'s endpoint (settlement runs due "
                               "and not done); 0: none")
    lag_interval_s: float = Field(15.0, gt=0, description="how often a consumer asks the brokers for the end "
                                                          "offsets behind its lag gauges")


class Settings(BaseSettings):
    """The whole configuration. Sections mirror the TOML tables."""

    model_config = SettingsConfigDict(
        env_prefix="METERLAKE_", env_nested_delimiter="__", extra="forbid", validate_default=True
    )

    paths: Paths = Paths()
    stack: Stack = Stack()
    kafka: Kafka = Kafka()
    cassandra: Cassandra = Cassandra()
    spark: Spark = Spark()
    lake: Lake = Lake()
    mirror: Mirror = Mirror()
    store: Store = Store()
    ingest: Ingest = Ingest()
    jobs: Jobs = Jobs()
    meters: Meters = Meters()
    schedule: Schedule = Schedule()
    costs: Costs = Costs()
    models: Models = Models()
    metrics: Metrics = Metrics()
    archive: Archive = Archive()

    # Set by load(); not a setting.
    _source: Path | None = None
    _base: Path = Path(".")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml_file = _TOML_FILE.get("path")
        sources: list[PydanticBaseSettingsSource] = [env_settings, init_settings]
        if toml_file is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=toml_file))
        return tuple(sources)

    @property
    def source(self) -> Path | None:
        return self._source

    def resolve(self, path: Path | str) -> Path:
        p = Path(path).expanduser()
        return p if p.is_absolute() else (self._base / p).resolve()

    @property
    def state_dir(self) -> Path:
        return self.resolve(self.paths.state_dir)

    @property
    def jar_cache(self) -> Path:
        return self.resolve(self.paths.jar_cache)

    @property
    def lake_url(self) -> str:
        return self.resolve_url(self.paths.lake)

    @property
    def warehouse_path(self) -> Path:
        """The DuckDB warehouse the dbt project publishes (``paths.warehouse``), resolved like the lake."""
        return self.resolve(self.paths.warehouse)

    def resolve_url(self, value: str) -> str:
        """A URL (``hdfs://…``, ``s3://…``, ``file://…``) as it is; a local path made absolute (:meth:`resolve`)."""
        return value if "://" in value else str(self.resolve(value))

    def public_dict(self) -> dict[str, Any]:
        """The effective configuration with secrets masked, for `config show`."""
        data = self.model_dump(mode="json")
        for section in ("kafka", "cassandra"):
            if data[section].get("password"):
                data[section]["password"] = "********"
        for key in ("s3_secret_key", "pseudonym_key"):
            if data["lake"].get(key):
                data["lake"][key] = "********"
        for props in data["spark"]["master_conf"].values():
            for key in props:
                if key.endswith((".secret", ".password")):
                    props[key] = "********"
        data["paths"]["state_dir"] = str(self.state_dir)
        data["paths"]["jar_cache"] = str(self.jar_cache)
        data["paths"]["lake"] = self.lake_url
        data["paths"]["warehouse"] = str(self.warehouse_path)
        return data


# pydantic-settings builds sources from class-level hooks; the file to read is passed through this holder.
_TOML_FILE: dict[str, Path | None] = {"path": None}


def find_config(explicit: str | Path | None = None, environ: dict[str, str] | None = None) -> Path | None:
    environ = os.environ if environ is None else environ
    if explicit:
        path = Path(explicit).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"config file not found: {path}")
        return path.resolve()
    if environ.get(CONFIG_ENV):
        return find_config(environ[CONFIG_ENV], environ)
    local = Path.cwd() / DEFAULT_CONFIG_NAME
    return local.resolve() if local.is_file() else None


DISCOVERY_GROUP = "meterlake.discovery"


def discovered(settings: Settings) -> Settings:
    """``settings`` with what they leave empty (service addresses, credentials, keys, jars) filled by the installed
    discovery steps: the ``meterlake.discovery`` entry points, each a function of the settings returning settings
    (setup.cfg registers the local stack's, ``infra.local.discover:discover``). For entry points that are not the
    CLI (a job under ``spark-submit``, a notebook's ``build_spark``); the CLI calls the launcher's step itself.
    The core names no launcher: it takes whatever is installed."""
    from importlib.metadata import entry_points

    for entry in sorted(entry_points(group=DISCOVERY_GROUP), key=lambda e: e.name):
        settings = entry.load()(settings)
    return settings


def load(explicit: str | Path | None = None) -> Settings:
    """Build the effective settings: defaults < file < environment."""
    path = find_config(explicit)
    _TOML_FILE["path"] = path
    try:
        settings = Settings()
    finally:
        _TOML_FILE["path"] = None
    settings._source = path
    settings._base = path.parent if path is not None else Path.cwd()
    return settings
