"""What every job shares: the lake (reads in, outputs and checkpoints out), the calendar as a DataFrame, the
Spark schema of the lake's reads, and deterministic Parquet writes.

Reads come from the mirror's lake (:mod:`meterlake.lake.files`): per settlement date, the *live* files of the
manifest rule (:meth:`~meterlake.lake.files.Lake.live_files`); nothing here re-implements that rule. A job
lists the live files of the dates it needs with Python (local disk, or HDFS over WebHDFS), then hands their URLs
to Spark (``file://…`` or ``hdfs://host:port/…``). Outputs live beside the reads under the same root (see
:mod:`meterlake.lake.outputs` and docs/jobs.md); checkpoints under ``_jobs/checkpoints``.

The calendar frame is built from :mod:`meterlake.calendar` on the driver, one row per (settlement date,
period), and joined: no Spark-side copy of the clock-change rules exists.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import uuid
from collections.abc import Callable, Iterable
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import pyarrow as pa

from meterlake import calendar as cal
from meterlake import jobruns
from meterlake.instants import iso_utc
from meterlake.lake import layout  # noqa: F401 (the jobs that rebuild a date's files: backfill)
from meterlake.lake.files import PARQUET_OPTIONS, Lake, open_lake
from meterlake.lake.layout import parse_date_dir  # noqa: F401 (the jobs' outputs use the same date dirs)
from meterlake.lake.outputs import POINTERS, VERSION_PREFIX
from meterlake.lake.schema import LAKE_SCHEMA

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

    from meterlake.config import Settings

CHECKPOINT_DIR = "_jobs/checkpoints"


# ------------------------------------------------------------------------------------------------- the lake


@dataclass(frozen=True)
class JobLake:
    """The lake as the jobs see it: the mirror's :class:`Lake` (Python I/O) and the URL Spark uses for a path."""

    lake: Lake
    url: str  # the lake root as Spark addresses it: file:///abs/path or hdfs://host:port/path
    grace_s: float = 600.0  # how long a superseded output version stays for readers that listed it
    _live: dict = field(default_factory=dict, compare=False, repr=False)
    _memo: dict = field(default_factory=dict, compare=False, repr=False)

    def once(self, key: str, read: Callable[[], object]):
        """``read()`` the first time ``key`` is asked for, its answer after: a job's fingerprint of an input and
        its read of it see the same version, read once (the registry: :func:`jobs.registry.job.stored`)."""
        if key not in self._memo:
            self._memo[key] = read()
        return self._memo[key]

    def live_files(self, day: date) -> list:
        """The date's live files (:meth:`Lake.live_files`), listed once: a job's fingerprint of its inputs and
        its read of them see the same files, and the manifest is read once."""
        if day not in self._live:
            self._live[day] = self.lake.live_files(day)
        return self._live[day]

    def spark_url(self, relative: str) -> str:
        return f"{self.url.rstrip('/')}/{relative}" if relative else self.url

    def spark_url_of(self, path: str) -> str:
        """The Spark URL of a path on the lake's filesystem (as :meth:`Lake.live_files` gives them)."""
        root = self.lake.root.rstrip("/")
        if not path.startswith(root):
            raise ValueError(f"{path} is not under the lake root {root}")
        return self.spark_url(path[len(root):].lstrip("/"))


def spark_root_url(lake_url: str) -> str:
    """The URL Spark reads a lake root by: local paths become ``file://`` URLs, others stay as they are."""
    parts = urlsplit(lake_url)
    if parts.scheme in ("", "file"):
        path = parts.path if parts.scheme else lake_url
        return f"file://{path}"
    return lake_url


def open_job_lake(settings: Settings, url: str | None = None) -> JobLake:
    target = settings.lake_url if url is None else url
    lake = open_lake(settings, target)
    grace = settings.mirror.retire_grace_s
    if "://" not in target or target.startswith("file://"):
        return JobLake(lake, spark_root_url(lake.root), grace)
    return JobLake(lake, target.rstrip("/"), grace)


def partition_state(jl: JobLake, days: Iterable[date]) -> dict[str, list]:
    """Per settlement date (ISO), the live files as ``[name, size]`` pairs (empty for an absent date).

    The manifest generation is implied: compaction changes the live names. This is what a checkpoint compares.
    """
    return {d.isoformat(): sorted([f.name, f.size] for f in jl.live_files(d)) for d in sorted(set(days))}


def kinds_by_day(targets: Iterable[date], around: Iterable[tuple[int, str]]) -> dict[date, frozenset[str] | None]:
    """The lake partitions a job reads and which read kinds of each (None: every kind): every kind of each target
    day, and ``around`` each target the kinds given as (days from the target, kind) pairs."""
    need: dict[date, set[str] | None] = {d: None for d in targets}
    around = list(around)
    for d in list(need):
        for offset, kind in around:
            day = d + timedelta(days=offset)
            if need.get(day, ()) is not None:
                need.setdefault(day, set()).add(kind)
    return {d: (None if kinds is None else frozenset(kinds)) for d, kinds in sorted(need.items())}


def live_paths(jl: JobLake, days: Iterable[date]) -> dict[date, list[str]]:
    return {d: [f.path for f in jl.live_files(d)] for d in sorted(set(days))}


# ------------------------------------------------------------------------------------------------ schemas

def spark_schema(schema: pa.Schema):
    """The Spark schema of an Arrow schema (pyspark's own type mapping), every column nullable: Spark reads
    Parquet columns as nullable whatever the file says."""
    from pyspark.sql import types as T
    from pyspark.sql.pandas.types import from_arrow_type

    return T.StructType([T.StructField(f.name, from_arrow_type(f.type), True) for f in schema])


def lake_spark_schema():
    """The Spark schema of the lake's read files (the read model plus the Kafka columns)."""
    return spark_schema(LAKE_SCHEMA)


def read_files(spark: SparkSession, urls: list[str], schema, base: str | None = None) -> DataFrame:
    """Parquet files as one DataFrame with ``schema`` (missing columns null); an empty frame for no files.

    ``base``: the root the files' ``settlement_date=…`` directories are under. Spark then takes
    ``settlement_date`` from the directory as a partition column (the same value: the mirror writes a read into
    the directory of its date), so a filter on the date skips whole files when the query is planned instead of
    opening each to read its statistics. The columns keep ``schema``'s order.
    """
    if not urls:
        return empty_frame(spark, schema)
    reader = spark.read.schema(schema)
    if base is not None:
        reader = reader.option("basePath", base)
    df = reader.parquet(*urls)
    jobruns.note_spark_files(df.inputFiles())
    names = schema.fieldNames()
    # a select of every column is four py4j round trips per column: only when the order differs
    return df if df.columns == names else df.select(*names)


def read_lake_days(spark: SparkSession, jl: JobLake, kinds_by_day: dict[date, frozenset[str] | None]) -> DataFrame:
    """The live reads of each day, keeping only the read kinds given for it (None: every kind).

    Days that need the same kinds are read by one scan; the kind filter is pushed down to Parquet, and a filter
    on ``settlement_date`` prunes files (:func:`read_files` with the lake root as ``base``).
    """
    from functools import reduce

    from pyspark.sql import functions as F

    schema = lake_spark_schema()
    groups: dict[frozenset[str] | None, list[str]] = {}
    paths = live_paths(jl, kinds_by_day)
    for day, kinds in sorted(kinds_by_day.items()):
        groups.setdefault(kinds, []).extend(jl.spark_url_of(p) for p in paths[day])
    frames = []
    for kinds, urls in groups.items():
        if not urls:
            continue
        df = read_files(spark, urls, schema, base=jl.url)
        if kinds is not None:
            df = df.filter(F.col("read_kind").isin(sorted(kinds)))
        frames.append(df)
    if not frames:
        return empty_frame(spark, schema)
    return reduce(lambda a, b: a.unionByName(b), frames)


# ----------------------------------------------------------------------------------------------- calendar

CALENDAR_COLUMNS = ("settlement_date", "settlement_period", "slot", "local_slot", "weekday", "periods")


def calendar_rows(days: Iterable[date]) -> list[tuple]:
    """One row per settlement period of each day, from :mod:`meterlake.calendar`:

    ``(settlement_date, settlement_period, slot, local_slot, weekday, periods)`` where ``slot`` is the period's
    UTC start in half-hours since the epoch (consecutive across days and clock changes), ``local_slot`` the UK
    clock half-hour (0-47) the period starts in (periods 3-6 of the autumn day share local slots 2 and 3), and
    ``weekday`` 0 for Monday.
    """
    rows = []
    for d in sorted(set(days)):
        n = cal.periods_in_day(d)
        for period, start in cal.periods(d):
            wall = cal.to_local_clock(start)
            slot = int(start.timestamp()) // 1800
            rows.append((d, period, slot, (wall.hour * 60 + wall.minute) // 30, d.weekday(), n))
    return rows


def calendar_frame(spark: SparkSession, days: Iterable[date]) -> DataFrame:
    from pyspark.sql import functions as F

    schema = ("settlement_date date, settlement_period int, slot long, local_slot int, weekday int, "
              "periods int")
    df = small_frame(spark, calendar_rows(days), schema)
    return df.withColumn("start_utc", F.timestamp_seconds(F.col("slot") * 1800))


def day_end_utc(d: date) -> datetime:
    return cal.day_bounds(d)[1]


# ---------------------------------------------------------------------------------------- writes, checkpoints


def write_deterministic(lake: Lake, relative: str, table: pa.Table, grace_s: float = 600.0) -> str:
    """Write ``table`` as the output file ``relative`` (a new version of its directory, :func:`publish`; the
    mirror's Parquet options put no time or random value in the file, so the same rows give the same bytes);
    returns the SHA-256 of the file. A job's output is small: it is made in memory, hashed, then written."""
    import pyarrow.parquet as pq

    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, **PARQUET_OPTIONS)
    data = sink.getvalue().to_pybytes()
    jobruns.note_written(table.num_rows, len(data))
    slot, _, name = relative.rpartition("/")
    version = new_version(slot)
    lake.write_bytes(f"{version}/{name}", data, exclusive=True)
    publish(lake, version, grace_s)
    return hashlib.sha256(data).hexdigest()


def fingerprint(value) -> str:
    """A stable digest of a JSON-able value (dates as ISO text)."""
    text = json.dumps(value, sort_keys=True, default=lambda o: o.isoformat(), separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def _checkpoint_dir(job: str) -> str:
    return f"{CHECKPOINT_DIR}/{job}"


def read_checkpoint(lake: Lake, job: str) -> dict:
    """The job's checkpoint: its entries by key, merged over the runs' files (:func:`write_checkpoint`), a later
    run's entry replacing an earlier one's."""
    merged, _ = _checkpoint_files(lake, job)
    return merged


def _checkpoint_files(lake: Lake, job: str) -> tuple[dict, list[tuple[str, set[str]]]]:
    """The merged entries, and each run file's name and keys, oldest first."""
    data = lake.read_bytes(f"{CHECKPOINT_DIR}/{job}.json")  # the one file of lakes written before per-run files
    merged = {} if data is None else json.loads(data.decode())
    files = []
    names = sorted(i.base_name for i in lake.list_dir(_checkpoint_dir(job))
                   if i.base_name.endswith(".json") and not i.base_name.startswith((".", "_")))
    for name in names:
        data = lake.read_bytes(f"{_checkpoint_dir(job)}/{name}")
        if data is None:  # collected since the listing: every entry of it is in a later file
            continue
        entries = json.loads(data.decode())
        merged.update(entries)
        files.append((name, set(entries)))
    return merged, files


def write_checkpoint(lake: Lake, job: str, entries: dict) -> None:
    """Record ``entries`` (the keys this run wrote; not the whole checkpoint) in a file of this run's own:
    ``_jobs/checkpoints/<job>/<UTC stamp>-<random>.json``. Runs of a job at the same time never write the same
    file, so none loses another's entries (a read-modify-write of one file would). Files whose every entry a
    later file repeats are deleted: the merge is the same with or without them."""
    instant = now_utc()
    name = f"{instant:%Y%m%dT%H%M%S%f}Z-{uuid.uuid4().hex[:8]}.json"
    lake.write_bytes(f"{_checkpoint_dir(job)}/{name}", json.dumps(entries, indent=1, sort_keys=True, default=str)
                     .encode(), exclusive=True)
    _, files = _checkpoint_files(lake, job)
    later: set[str] = set()
    for other, keys in reversed(files):
        if other != name and keys <= later:
            lake.delete(f"{_checkpoint_dir(job)}/{other}")
        later |= keys


def changed_dates(lake: Lake, checkpoint: dict, fingerprints: dict[str, str], targets: list[date], output_dir,
                  force: bool = False) -> tuple[list[date], list[date]]:
    """``(changed, unchanged)`` of ``targets``: a date is changed when forced, when its fingerprint differs from
    the checkpoint's, or when its output (``output_dir(date)``) is missing."""
    changed = [d for d in targets if force or checkpoint.get(d.isoformat(), {}).get("fingerprint")
               != fingerprints[d.isoformat()] or not output_exists(lake, output_dir(d))]
    return changed, [d for d in targets if d not in changed]


def now_utc() -> datetime:
    return datetime.now(UTC)


def stamp(instant: datetime | None = None) -> str:
    """``instant`` (default now) as the answers and checkpoints write times: ISO 8601 UTC with a ``Z``."""
    return iso_utc(now_utc() if instant is None else instant)


def file_digest(lake: Lake, relative: str) -> str | None:
    """The SHA-256 of an output file (its current version, :func:`current`); None when there is none."""
    data = lake.read_bytes(current(lake, relative))
    return None if data is None else hashlib.sha256(data).hexdigest()


def write_spark_dir(df: DataFrame, jl: JobLake, relative: str) -> None:
    """Write ``df`` as the output directory ``relative``: a new version of it (:func:`publish`), so a reader
    sees the previous version or this one, whole, on every store; nothing is moved or deleted to make the change."""
    version = new_version(relative)
    df.write.mode("errorifexists").parquet(jl.spark_url(version))
    publish(jl.lake, version, jl.grace_s)


# ------------------------------------------------------------------------------------ versioned job outputs
#
# An output directory ``<slot>`` (e.g. ``clean_reads/settlement_date=D``) holds versions ``<slot>/_v-<token>/``,
# written whole, and a commit pointer per version ``<slot>/_current/<seq>-<token>.json``; the current version is
# the one of the highest pointer name. Creating a pointer is atomic on every store (a rename to a new name on a
# local disk and HDFS, one PUT on S3), and nothing is renamed over, moved as a directory or deleted to commit.
# Versions superseded for longer than the grace period, and versions never committed (a crashed writer), are
# deleted by the next commit of the slot. A slot without pointers is an output of an older lake: its files, as
# they are.



def new_version(slot: str) -> str:
    """A fresh, not yet committed version directory of ``slot`` (relative)."""
    return f"{slot.rstrip('/')}/{VERSION_PREFIX}{uuid.uuid4().hex[:16]}"


def _pointers(lake: Lake, slot: str) -> list:
    """The slot's commit pointers, ``(seq, token, info)``, oldest first."""
    out = []
    for info in lake.list_dir(f"{slot}/{POINTERS}"):
        seq, _, rest = info.base_name.partition("-")
        if seq.isdigit() and rest.endswith(".json"):
            out.append((int(seq), rest[:-len(".json")], info))
    return sorted(out, key=lambda p: (p[0], p[1]))


def current(lake: Lake, relative: str) -> str:
    """Where to read the output ``relative`` (a slot directory, or a file directly in one): its current
    version's path, or ``relative`` itself for an output of an older lake or one not written yet."""
    slot, name = (relative.rpartition("/")[0], relative.rpartition("/")[2]) if relative.endswith(".parquet") \
        else (relative, "")
    pointers = _pointers(lake, slot)
    if not pointers:
        return relative
    version = f"{slot}/{VERSION_PREFIX}{pointers[-1][1]}"
    return f"{version}/{name}" if name else version


def read_output(lake: Lake, relative: str) -> pa.Table:
    """The output ``relative`` (a file in a slot) as its current version holds it (:func:`current`)."""
    path = current(lake, relative)
    table = lake.read_parquet(path)
    jobruns.note_read(lake.path(path), lake.fs.get_file_info(lake.path(path)).size or 0, table.num_rows)
    return table


def output_exists(lake: Lake, relative: str) -> bool:
    """Whether the output ``relative`` (a slot, or a file in one) has a committed version (or, in an older lake,
    is there)."""
    slot = relative.rpartition("/")[0] if relative.endswith(".parquet") else relative
    if _pointers(lake, slot):
        return True
    return lake.exists(relative) and (relative.endswith(".parquet") or any(
        not i.base_name.startswith(("_", ".")) for i in lake.list_dir(relative)))


def publish(lake: Lake, version: str, grace_s: float) -> None:
    """Commit the written ``version`` as its slot's current one, then collect what the grace period allows."""
    slot, _, base = version.rpartition("/")
    token = base[len(VERSION_PREFIX):]
    pointers = _pointers(lake, slot)
    seq = pointers[-1][0] + 1 if pointers else 1
    lake.write_bytes(f"{slot}/{POINTERS}/{seq:012d}-{token}.json", json.dumps({"version": base}).encode(),
                     exclusive=True)
    _collect_versions(lake, slot, grace_s)


def _collect_versions(lake: Lake, slot: str, grace_s: float) -> None:
    import time

    import pyarrow.fs as pafs

    now = time.time()
    pointers = _pointers(lake, slot)
    if not pointers:
        return
    committed = {token for _, token, _ in pointers}
    # a version is superseded when the next pointer was made; collect it once that is older than the grace
    for (_, token, info), (_, _, after) in zip(pointers, pointers[1:], strict=False):
        if after.mtime is not None and now - after.mtime.timestamp() >= grace_s:
            _delete_tree(lake, f"{slot}/{VERSION_PREFIX}{token}")
            lake.delete(f"{slot}/{POINTERS}/{info.base_name}")
    first_commit = pointers[0][2].mtime
    old_enough = first_commit is not None and now - first_commit.timestamp() >= grace_s
    for info in lake.list_dir(slot):
        name = info.base_name
        uncommitted = name.startswith(VERSION_PREFIX) and name[len(VERSION_PREFIX):] not in committed
        if uncommitted and _age(lake, info, now) >= grace_s:
            _delete_tree(lake, f"{slot}/{name}")  # a writer that never committed
        elif old_enough and not name.startswith(("_", ".")):  # an older lake's files, replaced by the versions
            if info.type == pafs.FileType.Directory:
                _delete_tree(lake, f"{slot}/{name}")
            else:
                lake.delete(f"{slot}/{name}")
    parent, _, name = slot.rpartition("/")
    for info in lake.list_dir(parent):  # an older writer's staging directories beside the slot
        if info.base_name.startswith(".staging-") and info.base_name.endswith(f"-{name}") \
                and _age(lake, info, now) >= grace_s:
            _delete_tree(lake, f"{parent}/{info.base_name}" if parent else info.base_name)


def _age(lake: Lake, info, now: float) -> float:
    """Seconds since ``info`` (or, for a directory, the newest file in it) last changed; 0 when unknown."""
    import pyarrow.fs as pafs

    times = [info.mtime] if info.type != pafs.FileType.Directory else [info.mtime] + [
        i.mtime for i in lake.fs.get_file_info(pafs.FileSelector(info.path, recursive=True, allow_not_found=True))]
    times = [t.timestamp() for t in times if t is not None]
    return now - max(times) if times else 0.0


def _delete_tree(lake: Lake, relative: str) -> None:
    try:
        lake.fs.delete_dir(lake.path(relative))
    except FileNotFoundError:
        pass


#: The jobs' session settings:
#:
#: - joins are broadcast only when adaptive execution has measured the smaller side (the jobs' materialized
#:   intermediate results carry no reliable size estimate, and a wrong one broadcasts millions of rows); the
#:   calendar, a few rows a day, is broadcast by hint, and so is the registry when its footer says it is small
#:   (``[jobs] registry_broadcast_rows``);
#: - no window group limit: the live version is the first row of each read key, and a read key has one or a few
#:   versions, so the partial limit Spark would add before the shuffle only sorts every read once more;
#: - a file is split for parallel reading from 1 MB (not 4 MB): a date's file of a million reads is a few MB
#:   and would otherwise be read, and its shuffle written, by one task;
#: - an aggregate whose input is already sorted by its keys streams through it (a sort aggregate) instead of
#:   building a hash table: the per-meter-period sums follow the live-version window's sort, one group per read
#:   or few, and a hash aggregate there (a partial and a final one, with no shuffle between) costs more than the
#:   window itself;
#: - no runtime bloom filters: the jobs' intermediate results are local checkpoints, which the optimizer sizes as
#:   unbounded, so it takes them for the large side of a join and builds a bloom filter over the lake's files to
#:   prune them: the reverse of its purpose, a scan and a job more per branch of the read union, and it keeps
#:   the branches' identical broadcasts from being reused;
#: - small frames of Python rows reach the JVM as Arrow (:func:`small_frame`), not as a Python RDD.
JOB_CONF = {"spark.sql.autoBroadcastJoinThreshold": "-1", "spark.sql.adaptive.autoBroadcastJoinThreshold": "10MB",
            "spark.sql.optimizer.windowGroupLimitThreshold": "-1", "spark.sql.files.openCostInBytes": "1MB",
            "spark.sql.execution.replaceHashWithSortAgg": "true",
            "spark.sql.optimizer.runtime.bloomFilter.enabled": "false",
            "spark.sql.execution.arrow.pyspark.enabled": "true"}


@contextmanager
def session(settings: Settings, app: str, spark: SparkSession | None = None, master: str | None = None, *,
            connector_conf: dict[str, str] | None = None):
    """The Spark session a job runs in, with :data:`JOB_CONF`: ``spark`` when given (a test's, a notebook's; its
    settings are restored after), else one built by :func:`meterlake.spark.build_spark` and stopped at the end.
    Without ``connector_conf`` the session has no Cassandra connector (most jobs read the lake only); with it (the
    connection settings, :func:`jobs.storeio.session`) a built session carries the connector's jars and those
    settings are set as well."""
    conf = {**JOB_CONF, **(connector_conf or {})}
    if spark is not None:
        before = {k: spark.conf.get(k, None) for k in conf}
        for k, v in conf.items():
            spark.conf.set(k, v)
        try:
            with jobruns.spark_metrics(spark):
                yield spark
        finally:
            for k, v in before.items():
                spark.conf.unset(k) if v is None else spark.conf.set(k, v)
        return
    from meterlake.spark import build_spark

    spark_settings = settings.spark.model_copy(update={"with_cassandra_connector": connector_conf is not None})
    built = build_spark(app, settings.model_copy(update={"spark": spark_settings}), master=master, conf=conf)
    built.sparkContext.setLogLevel("WARN")
    try:
        with jobruns.spark_metrics(built):
            yield built
    finally:
        built.stop()


# ------------------------------------------------------------------------------------------- spark-submit


def job_main(argv: list[str] | None, name: str, doc: str, run: Callable[..., dict]) -> int:
    """A job's ``main`` (``spark-submit jobs/NAME/job.py …``): the options of ``name`` in :data:`jobs.options.JOBS`
    (those ``meterlake job NAME`` takes), then ``--master``, ``--force``, ``--config`` and ``--dry-run`` (print the
    parsed options, run nothing); calls ``run(settings, args, master=…, force=…)`` and prints its answer as the
    CLI's ``--json`` does (one object, times in UTC with a ``Z``)."""
    from jobs import options
    from meterlake import config
    from meterlake.jsontext import dumps

    job = options.JOBS[name]
    parser = argparse.ArgumentParser(prog=job.script, description=doc.splitlines()[0])
    options.add_arguments(parser, (*job.options, options.MASTER, options.FORCE))
    parser.add_argument("--config", help="the config file (default: $METERLAKE_CONFIG or ./meterlake.toml)")
    parser.add_argument("--dry-run", action="store_true", help="check the options and the configuration, print "
                                                               "what would run as JSON, run nothing")
    args = parser.parse_args(argv)
    settings = config.load(args.config)
    if args.dry_run:  # no discovery of a local stack, no Spark: a deployment's command line checked where it runs
        given = {k: v for k, v in vars(args).items() if k not in ("dry_run", "config")}
        print(dumps({"job": job.script, "options": given, "master": args.master or settings.spark.master,
                     "lake": settings.lake_url, "dry_run": True}))
        return 0
    print(dumps(run(config.discovered(settings), args, master=args.master, force=args.force)))
    return 0


def dates_job_main(argv: list[str] | None, name: str, doc: str, run: Callable[..., dict]) -> int:
    """:func:`job_main` for a job over settlement dates (clean, quality): ``run(settings, dates or None, …)``
    with repeatable ``--date`` (default: every date)."""
    return job_main(argv, name, doc, lambda settings, args, **kw: run(settings, args.date or None, **kw))


def small_frame(spark: SparkSession, rows: list[tuple], ddl: str) -> DataFrame:
    """A DataFrame of a few Python rows (reference data: calendars, factors, day lists, a bill run's prices).

    The rows reach the JVM as Arrow (``spark.sql.execution.arrow.pyspark.enabled``, :data:`JOB_CONF`): a frame
    made of Python rows is a Python RDD, and every job that reads it (each broadcast of it) starts Python workers
    to unpickle them, seconds per frame on a busy machine (the bill job's three reference tables cost more than
    its scan of the reads)."""
    from pyspark.sql.types import _parse_datatype_string

    schema = _parse_datatype_string(ddl)
    if not rows:
        return empty_frame(spark, schema)
    import pandas as pd

    return spark.createDataFrame(pd.DataFrame.from_records(rows, columns=schema.names), schema)


def empty_frame(spark: SparkSession, schema) -> DataFrame:
    """No rows, ``schema``'s columns (a StructType), made in the JVM: an empty frame of Python rows is a Python
    RDD too, and each job that reads it starts Python workers for its empty partitions (:func:`small_frame`)."""
    from pyspark.sql import functions as F

    return spark.range(0).select(*[F.lit(None).cast(f.dataType).alias(f.name) for f in schema.fields])
