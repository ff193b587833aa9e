"""Job run records: every batch job run (clean, settle, settle-diff, bill, quality, serve, backfill, reconcile,
dbt build) leaves one record in the lake, under ``job_runs/``, with what it read, what it used and what it cost.

The one place every run passes through is :func:`recorded`, the decorator of each job's ``run`` (and of
:func:`meterlake.warehouse.build`): the CLI, ``spark-submit jobs/NAME/job.py``, the scheduler and a notebook all
call ``run``, so all are recorded. A Spark session made or lent for the run is measured by :func:`spark_metrics`
(:func:`jobs.lakeio.session` wraps it): the run's Spark jobs carry a job group, and their stages' task metrics are
read from Spark's status store (the same data the web UI and its REST API show, with the UI off).

Grain of the output: one row per run, ``job_runs/started_date=YYYY-MM-DD/<UTC stamp>-<job>-<id>.parquet``
(one small Parquet file, written atomically: a run never rewrites another's record). Columns: :data:`SCHEMA`.

What the figures mean (docs/jobs.md, "Job runs and their cost"):

- ``cpu_s``: this Python process's CPU time, plus the Spark driver JVM's (its ``/proc`` counters; in ``local[*]``
  the executors are its threads), plus on a cluster the executors' task CPU time (Spark's ``executorCpuTime``).
- ``bytes_read``: what Spark's tasks read (``inputBytes``: after column and row-group pruning, so at most the files'
  sizes) plus the sizes of the Parquet files the job read in Python (reference tables, earlier outputs). DuckDB's
  reads in a dbt build are not metered (0).
- ``files_read``: the files given to Spark's readers and those read in Python; ``inputs_digest`` is the SHA-256 of
  their sorted paths (lake files and output versions are immutable, so the paths identify the contents).
- ``peak_memory_bytes``: the peak resident memory of this process during the run plus that of the Spark driver
  JVM during its part (Linux ``VmHWM``, reset at the start); the executors' peak execution memory is in
  ``spark_task_metrics``.
- ``cost`` = ``cpu_s`` / 3600 × ``[costs] core_hour_price`` + ``bytes_read`` / 10⁹ × ``[costs] gb_read_price``, in
  ``[costs] unit``. The defaults (1 per core-hour, 0 per GB, unit ``core-hours``) make the cost the core-hours
  used: no currency is assumed until the prices are configured.
"""
from __future__ import annotations

import contextvars
import functools
import hashlib
import inspect
import json
import logging
import os
import socket
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING

import pyarrow as pa

from meterlake import pseudonym

if TYPE_CHECKING:
    from meterlake.config import Settings
    from meterlake.lake.files import Lake

log = logging.getLogger(__name__)

RUNS_DIR = "job_runs"

SCHEMA = pa.schema([
    ("run_id", pa.string()), ("job", pa.string()), ("arguments", pa.string()),  # arguments: a JSON object
    ("status", pa.string()),  # succeeded | failed
    ("outcome", pa.string()),  # the job's own answer status (settled, unchanged, ...), when it gave one
    ("error", pa.string()),
    ("started_date", pa.date32()),  # the UTC date of started_at, as in the directory name
    ("started_at", pa.timestamp("us", tz="UTC")), ("ended_at", pa.timestamp("us", tz="UTC")),
    ("wall_s", pa.float64()), ("cpu_s", pa.float64()), ("python_cpu_s", pa.float64()),
    ("spark_driver_cpu_s", pa.float64()), ("spark_executor_cpu_s", pa.float64()),
    ("inputs_digest", pa.string()), ("files_read", pa.int64()), ("bytes_read", pa.int64()),
    ("rows_in", pa.int64()), ("rows_out", pa.int64()), ("bytes_written", pa.int64()),
    ("peak_memory_bytes", pa.int64()),
    ("spark_master", pa.string()), ("spark_task_metrics", pa.string()),  # a JSON object, or null without Spark
    ("cost", pa.float64()), ("cost_unit", pa.string()), ("core_hour_price", pa.float64()),
    ("gb_read_price", pa.float64()), ("host", pa.string()),
])

#: Spark's per-stage task metrics summed over a run's stages (StageData getters -> record keys); peak execution
#: memory is the largest stage's.
_STAGE_SUMS = {"numCompleteTasks": "tasks", "executorRunTime": "executor_run_ms", "executorCpuTime": "executor_cpu_ns",
               "jvmGcTime": "jvm_gc_ms", "inputBytes": "input_bytes", "inputRecords": "input_records",
               "outputBytes": "output_bytes", "outputRecords": "output_records",
               "shuffleReadBytes": "shuffle_read_bytes", "shuffleWriteBytes": "shuffle_write_bytes",
               "memoryBytesSpilled": "memory_spilled_bytes", "diskBytesSpilled": "disk_spilled_bytes"}


@dataclass
class _Run:
    job: str
    arguments: dict
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    files: dict[str, int] = field(default_factory=dict)  # path -> bytes (0: counted by Spark's input bytes)
    python_rows_in: int = 0
    rows_written: int = 0
    bytes_written: int = 0
    spark: dict | None = None
    spark_driver_cpu_s: float = 0.0
    spark_driver_peak: int = 0
    master: str | None = None
    outcome: str | None = None


_current: contextvars.ContextVar[_Run | None] = contextvars.ContextVar("meterlake_job_run", default=None)


# ------------------------------------------------------------------------------------------ what jobs note


def note_spark_files(paths: list[str]) -> None:
    """Files handed to a Spark reader (their bytes count through Spark's task metrics)."""
    run = _current.get()
    if run is not None:
        for p in paths:
            run.files.setdefault(p, 0)


def note_read(path: str, size: int, rows: int) -> None:
    """A file read in Python (``size`` bytes, ``rows`` rows)."""
    run = _current.get()
    if run is not None:
        run.files[path] = size
        run.python_rows_in += rows


def note_written(rows: int, size: int) -> None:
    """An output written in Python (Spark's writes count through its task metrics)."""
    run = _current.get()
    if run is not None:
        run.rows_written += rows
        run.bytes_written += size


# ------------------------------------------------------------------------------------- process measurements


def _proc_cpu_s(pid: int) -> float | None:
    """User + system CPU seconds of a process (Linux ``/proc``), None when unreadable."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def _reset_peak(pid: int | str = "self") -> None:
    try:
        with open(f"/proc/{pid}/clear_refs", "w") as f:
            f.write("5")  # resets VmHWM, the peak resident set
    except OSError:
        pass


def _peak_rss(pid: int | str = "self") -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 if pid == "self" else 0


def _jvm_pid(spark) -> int | None:
    """The Spark driver JVM's process id: pyspark's child, or (under spark-submit) this process's parent."""
    proc = getattr(spark.sparkContext._gateway, "proc", None)
    if proc is not None:
        return proc.pid
    return os.getppid() if "PYSPARK_GATEWAY_PORT" in os.environ else None


# ----------------------------------------------------------------------------------------- Spark's metrics


def stage_metrics(spark, group: str) -> dict:
    """The task metrics of the Spark jobs of ``group``, summed over their stages (:data:`_STAGE_SUMS`)."""
    sc = spark.sparkContext
    jsc = sc._jsc.sc()
    jsc.listenerBus().waitUntilEmpty()  # the status store is fed by the listener bus
    tracker, store = sc.statusTracker(), jsc.statusStore()
    stage_ids = sorted({s for j in tracker.getJobIdsForGroup(group) if (info := tracker.getJobInfo(j))
                        for s in info.stageIds})
    out = {key: 0 for key in _STAGE_SUMS.values()} | {"jobs": len(tracker.getJobIdsForGroup(group)), "stages": 0,
                                                       "peak_execution_memory_bytes": 0}
    for sid in stage_ids:
        try:
            stage = store.lastStageAttempt(sid)
        except Exception:  # noqa: BLE001 - a stage the store has already dropped (spark.ui.retainedStages)
            continue
        if stage.status().toString() == "SKIPPED":
            continue
        out["stages"] += 1
        for getter, key in _STAGE_SUMS.items():
            out[key] += int(getattr(stage, getter)())
        out["peak_execution_memory_bytes"] = max(out["peak_execution_memory_bytes"], int(stage.peakExecutionMemory()))
    return out


@contextmanager
def spark_metrics(spark) -> Iterator[None]:
    """Measure the Spark part of the current run (if any): its jobs get a job group, and at the end their task
    metrics, the driver JVM's CPU time and peak memory are added to the run."""
    run = _current.get()
    if run is None:
        yield
        return
    sc = spark.sparkContext
    group, before = f"meterlake-run-{run.run_id}", sc.getLocalProperty("spark.jobGroup.id")
    description = sc.getLocalProperty("spark.job.description")
    sc.setJobGroup(group, f"meterlake {run.job} run {run.run_id}")
    pid = _jvm_pid(spark)
    cpu0 = None if pid is None else _proc_cpu_s(pid)
    if pid is not None:
        _reset_peak(pid)
    try:
        yield
    finally:
        try:
            metrics = stage_metrics(spark, group)
            if run.spark is not None:  # a second session in the same run: add up
                metrics = {k: (max if k.startswith("peak") else sum)((v, run.spark.get(k, 0)))
                           for k, v in metrics.items()}
            run.spark = metrics
            run.master = sc.master
            cpu1 = None if pid is None else _proc_cpu_s(pid)
            if cpu0 is not None and cpu1 is not None:
                run.spark_driver_cpu_s += cpu1 - cpu0
            if pid is not None:
                run.spark_driver_peak = max(run.spark_driver_peak, _peak_rss(pid))
        except Exception:  # noqa: BLE001 - measuring must never fail the job
            log.warning("could not read Spark's task metrics of run %s", run.run_id, exc_info=True)
        sc.setJobGroup(before, description) if before else sc.setLocalProperty("spark.jobGroup.id", None)


# --------------------------------------------------------------------------------------------- the record


def _json(value) -> str:
    return json.dumps(value, sort_keys=True, default=lambda o: o.isoformat() if isinstance(o, (date, datetime))
                      else str(o))


def cost(settings: Settings, cpu_s: float, bytes_read: int) -> float:
    """The run's cost: CPU seconds at ``[costs] core_hour_price`` plus bytes read at ``[costs] gb_read_price``."""
    c = settings.costs
    return round(cpu_s / 3600 * c.core_hour_price + bytes_read / 1e9 * c.gb_read_price, 9)


def _record(settings: Settings, run: _Run, started: datetime, wall_s: float, python_cpu_s: float, status: str,
            outcome: str | None, error: str | None) -> dict:
    spark = run.spark or {}
    executor_cpu = spark.get("executor_cpu_ns", 0) / 1e9
    on_cluster = run.master is not None and not run.master.startswith("local")
    cpu_s = round(python_cpu_s + run.spark_driver_cpu_s + (executor_cpu if on_cluster else 0.0), 3)
    bytes_read = spark.get("input_bytes", 0) + sum(run.files.values())
    files = sorted(run.files)
    return {
        "run_id": run.run_id, "job": run.job, "arguments": _json(run.arguments), "status": status,
        "outcome": outcome, "error": error, "started_date": started.date(), "started_at": started,
        "ended_at": datetime.now(UTC), "wall_s": round(wall_s, 3), "cpu_s": cpu_s,
        "python_cpu_s": round(python_cpu_s, 3), "spark_driver_cpu_s": round(run.spark_driver_cpu_s, 3),
        "spark_executor_cpu_s": round(executor_cpu, 3),
        "inputs_digest": hashlib.sha256("\n".join(files).encode()).hexdigest() if files else None,
        "files_read": len(files), "bytes_read": bytes_read,
        "rows_in": spark.get("input_records", 0) + run.python_rows_in,
        "rows_out": spark.get("output_records", 0) + run.rows_written,
        "bytes_written": spark.get("output_bytes", 0) + run.bytes_written,
        "peak_memory_bytes": _peak_rss() + run.spark_driver_peak,
        "spark_master": run.master, "spark_task_metrics": _json(run.spark) if run.spark is not None else None,
        "cost": cost(settings, cpu_s, bytes_read), "cost_unit": settings.costs.unit,
        "core_hour_price": settings.costs.core_hour_price, "gb_read_price": settings.costs.gb_read_price,
        "host": socket.gethostname(),
    }


def record_path(record: dict) -> str:
    started: datetime = record["started_at"]
    return (f"{RUNS_DIR}/started_date={started.date().isoformat()}/"
            f"{started:%Y%m%dT%H%M%S%f}Z-{record['job']}-{record['run_id']}.parquet")


def write_record(lake: Lake, record: dict) -> str:
    """Write one run's record (its own new file); returns its path relative to the lake."""
    import pyarrow.parquet as pq

    from meterlake.lake.files import PARQUET_OPTIONS

    sink = pa.BufferOutputStream()
    pq.write_table(pa.Table.from_pylist([record], schema=SCHEMA), sink, **PARQUET_OPTIONS)
    path = record_path(record)
    lake.write_bytes(path, sink.getvalue().to_pybytes(), exclusive=True)
    return path


@contextmanager
def recording(settings: Settings, job: str, arguments: dict) -> Iterator[_Run]:
    """Record the run of ``job`` in the lake of ``settings`` when the block ends (failed, with the error, when it
    raises). A record that cannot be written is logged, never fails the job."""
    run = _Run(job, arguments)
    token = _current.set(run)
    started, t0, cpu0 = datetime.now(UTC), time.monotonic(), time.process_time()
    _reset_peak()
    status, error = "succeeded", None
    try:
        yield run
    except BaseException as exc:
        status, error = "failed", f"{type(exc).__name__}: {exc}"
        raise
    finally:
        _current.reset(token)
        try:
            from meterlake.lake.files import open_lake

            record = _record(settings, run, started, time.monotonic() - t0, time.process_time() - cpu0, status,
                             run.outcome, error)
            write_record(open_lake(settings, settings.lake_url), record)
        except Exception:  # noqa: BLE001 - the job's own result stands without its record
            log.warning("could not write the record of %s run %s", job, run.run_id, exc_info=True)


def recorded(job: str) -> Callable:
    """Decorate a job's ``run(settings, ...)``: each call is recorded (:func:`recording`) with its arguments
    (all but the settings and a lent Spark session) and its answer's ``status`` as the outcome."""

    def wrap(fn: Callable) -> Callable:
        signature = inspect.signature(fn)

        @functools.wraps(fn)
        def run(settings, *args, **kwargs):
            bound = signature.bind(settings, *args, **kwargs)
            bound.apply_defaults()
            arguments = {k: v for k, v in bound.arguments.items() if k not in ("settings", "spark")}
            named = {k for k, v in arguments.items() if k in pseudonym.IDENTIFIERS and isinstance(v, str)}
            if named:  # the record is in the lake: an identifier argument (`--account A`) as its pseudonym
                names = pseudonym.for_settings(settings)
                arguments.update({k: names.one(arguments[k]) for k in named})
            with recording(settings, job, arguments) as current:
                out = fn(settings, *args, **kwargs)
                current.outcome = out.get("status") if isinstance(out, dict) else None
                if current.outcome is None and isinstance(out, dict) and "success" in out:
                    current.outcome = "success" if out["success"] else "failure"
                return out

        return run

    return wrap


# ---------------------------------------------------------------------------------------------- reading


def list_runs(lake: Lake, job: str | None = None, limit: int | None = None) -> list[dict]:
    """The recorded runs (of ``job``), newest first; ``arguments`` and ``spark_task_metrics`` as objects."""
    import pyarrow.fs as pafs

    paths = []
    for day in lake.list_dir(RUNS_DIR):
        if day.type == pafs.FileType.Directory:
            paths += [f"{RUNS_DIR}/{day.base_name}/{i.base_name}" for i in lake.list_dir(f"{RUNS_DIR}/{day.base_name}")
                      if i.base_name.endswith(".parquet") and not i.base_name.startswith((".", "_"))
                      and (job is None or i.base_name.split("-", 1)[1].rsplit("-", 1)[0] == job)]
    paths.sort(reverse=True)  # the file name starts with the UTC start
    out = []
    for path in paths[:limit] if limit else paths:
        for row in lake.read_parquet(path).to_pylist():
            row["arguments"] = json.loads(row["arguments"]) if row["arguments"] else {}
            row["spark_task_metrics"] = json.loads(row["spark_task_metrics"]) if row["spark_task_metrics"] else None
            out.append(row)
    return out
