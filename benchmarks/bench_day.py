"""One UK-supplier day end to end: ``python -m benchmarks day --meters N`` (``make bench-day``).

A portfolio of ``meters`` meters (the generator's: 15% gas, Economy 7, flat and dynamic accounts; no defects) for
one ordinary settlement date goes through every stage as production runs it, each stage a ``meterlake`` command
in a process of its own (so its peak RSS is its own; a Spark job's includes its JVM):

  generate files -> ingest (parse, validate, Kafka) -> store (Cassandra) and mirror (the lake), concurrently, as
  two consumers of the topic -> clean (live versions, VEE) -> settle (SF) -> bill -> dbt marts.

Per stage: wall seconds, reads/s, peak RSS of its process tree, CPU seconds of it, and its floor measured in the
same run on the same data, after the day (so it neither competes with nor warms up the stage):

  generate  pyarrow writing the same hh-csv rows (``pyarrow.csv``)
  ingest    pyarrow parsing the same files + a bare kafka-python producer sending the same message bytes
  store     the Cassandra driver's concurrent inserts of the same set rows (a sample, as reads/s)
  mirror    a bare kafka-python consumer fetching the topic + pyarrow writing the same rows (zstd, fsync)
  clean     DuckDB: the live version of every read of the date's files, written to Parquet
  settle    DuckDB: the settlement aggregate over the same files (:func:`benchmarks.bench_settle.duckdb_aggregate`)
  bill      DuckDB: the bill aggregate over the same clean_reads (:func:`benchmarks.bench_bill.duckdb_aggregate`)
  dbt       DuckDB: the daily-consumption mart's query hand-written (:data:`benchmarks.bench_dbt.HAND_WRITTEN`)

Ratio = stage seconds / floor seconds (1.0: as fast as the plain tool). The day's wall (first file generated to
the last mart) is beside the sum of the stages: the store and the mirror overlap. Results: a table on stdout,
``benchmarks/results/<date>-day.json``; the README keeps the latest table.

The stage starts its own stack (Kafka + Cassandra; the lake a local directory) in a fresh
``build/bench-day`` (METERLAKE_BENCH_STATE_DIR) at port offset 2000 (METERLAKE_BENCH_PORT_OFFSET) and stops it
at the end. Scale: ``--meters`` (default small 200, full 20,000; the issue's day is 1,000,000 = 48M reads).
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import psutil

from benchmarks.harness import RESULTS, Report, duckdb_floor
from meterlake import config

ROOT = Path(__file__).resolve().parents[1]
DAY = date(2024, 11, 20)  # an ordinary Wednesday: 48 periods
SCALES = {"small": 200, "full": 20_000}
METERS_PER_FILE = 10_000
#: between two runs of a consumer that caught up while ingest still publishes
CONSUMER_PAUSE_S = 5.0
TINY_MDD = ROOT / "tests" / "meterlake" / "data" / "mdd_tiny"
#: the issue's goals, printed beside the figures
GOALS = {"day": "< 600 s at 48M reads", "settle": "<= 3x"}


@dataclass
class Stage:
    name: str
    seconds: float
    reads: int
    peak_rss_mb: float
    cpu_s: float
    floor_s: float | None = None
    floor: str = ""
    started: float = 0.0
    answer: dict = field(default_factory=dict, repr=False)
    #: CPU seconds of the stack's services (Kafka, Cassandra JVMs) at the stage's start and end: what the
    #: stage made them do (overlapping stages share theirs)
    services: tuple[float, float] | None = (0.0, 0.0)

    @property
    def services_cpu_s(self) -> float | None:
        return None if self.services is None else self.services[1] - self.services[0]

    @property
    def ratio(self) -> float | None:
        return None if not self.floor_s else self.seconds / self.floor_s


class _Tree:
    """A child process and its descendants, sampled every 0.2 s: peak RSS (sum over the tree), CPU seconds
    (per process, the last sample) and when the child exited (``ended``: two run side by side, and the first
    one collected must not lend its time to the other)."""

    def __init__(self, child: subprocess.Popen):
        self.child, self.peak, self.cpu, self.ended = child, 0, {}, None
        self.services = (services_cpu(), 0.0)
        self.thread = threading.Thread(target=self._sample, daemon=True)
        self.thread.start()

    def _sample(self):
        try:
            self._sample_until_exit(psutil.Process(self.child.pid))
        except psutil.NoSuchProcess:
            pass
        self.child.wait()
        self.ended = time.perf_counter()
        self.services = (self.services[0], services_cpu())

    def _sample_until_exit(self, root: psutil.Process):
        while self.child.poll() is None:
            procs = [root, *root.children(recursive=True)]
            rss = 0
            for p in procs:
                try:
                    rss += p.memory_info().rss
                    t = p.cpu_times()
                    self.cpu[p.pid] = t.user + t.system
                except psutil.NoSuchProcess:
                    pass
            self.peak = max(self.peak, rss)
            time.sleep(0.2)

    def join(self) -> tuple[float, float]:
        self.thread.join()
        return self.peak / 1e6, sum(self.cpu.values())


#: the stack's service processes (set once the stack is up)
_SERVICES: list[psutil.Process] = []


def services_cpu() -> float:
    """CPU seconds (user + system) the stack's services have used so far."""
    total = 0.0
    for proc in _SERVICES:
        try:
            t = proc.cpu_times()
            total += t.user + t.system
        except psutil.NoSuchProcess:
            pass
    return total


def _watch_services(state: Path) -> None:
    _SERVICES.clear()
    for pid_file in sorted(state.glob("*/*.pid")):
        try:
            _SERVICES.append(psutil.Process(int(pid_file.read_text().split()[0])))
        except (ValueError, psutil.NoSuchProcess):
            pass


#: the stages' processes still running: a signal that ends the day ends them too (:func:`stopped_on_signals`)
_RUNNING: set[subprocess.Popen] = set()


def _start(args: list[str], env: dict, logs: Path, tag: str = "") -> tuple[subprocess.Popen, _Tree, float]:
    """The command started, its output to files under ``logs`` (a pipe nobody reads yet could stall it)."""
    cli = str(Path(sys.executable).with_name("meterlake"))
    logs.mkdir(exist_ok=True)
    name = "-".join(a for a in args[:2] if os.sep not in a) + tag  # "ingest", not the first file's path
    with open(logs / f"{name}.json", "w") as out, open(logs / f"{name}.log", "w") as err:
        child = subprocess.Popen([cli, *args, "--json"], env=env, stdout=out, stderr=err)
    _RUNNING.add(child)
    child.out, child.err = logs / f"{name}.json", logs / f"{name}.log"
    return child, _Tree(child), time.perf_counter()


def _finish(name: str, child: subprocess.Popen, tree: _Tree, started: float, reads) -> Stage:
    child.wait()
    _RUNNING.discard(child)
    rss, cpu = tree.join()
    seconds = tree.ended - started
    if child.returncode != 0:
        raise RuntimeError(f"stage {name} failed (exit {child.returncode}): "
                           f"{child.err.read_text().strip()[-2000:]}")
    answer = json.loads(child.out.read_text())
    n = reads(answer) if callable(reads) else reads
    print(f"  {name:<9} {seconds:8.1f} s  {n:>12,} reads  peak {rss:8.0f} MB", flush=True)
    return Stage(name, seconds, n, rss, cpu, started=started, answer=answer, services=tree.services)


def spark_scale(meters: int) -> tuple[str, int, str]:
    """(driver memory, shuffle partitions) of the day's Spark jobs (local[2]) and DuckDB's memory for the dbt
    build: the defaults up to 100,000 meters; beyond, a bigger heap (the machine has 24 GiB; the stack takes
    about 1.5) and partitions of about 800,000 reads each, and 8 GB for DuckDB (2 GB ran out of memory in a
    uniqueness test over 41M meter half-hours)."""
    if meters <= 100_000:
        return "2g", 16, "2GB"
    return "8g", max(16, meters // 16_000), "8GB"


def _settings_file(work: Path, state: Path, offset: int, meters: int) -> Path:
    memory, partitions, duckdb_memory = spark_scale(meters)
    path = work / "meterlake.toml"
    path.write_text(f"""\
[paths]
state_dir = "{state}"
lake = "{work / 'lake'}"
warehouse = "{work / 'warehouse' / 'meterlake.duckdb'}"

[stack]
port_offset = {offset}
services = ["kafka", "cassandra"]

[cassandra]
write_consistency = "ONE"
read_consistency = "ONE"

[spark]
master = "local[2]"
driver_memory = "{memory}"
shuffle_partitions = {partitions}
with_cassandra_connector = false

[models]
duckdb_memory = "{duckdb_memory}"
""")
    return path


#: the day's finished stages, saved as each one ends: ``--resume`` goes on from the first stage not in it
STAGES_FILE = "stages.json"


def saved_stages(work: Path) -> tuple[list[Stage], float]:
    """The stages a day under ``work`` finished, and the day's seconds until the last of them ended."""
    path = work / STAGES_FILE
    if not path.exists():
        return [], 0.0
    data = json.loads(path.read_text())
    stages = [Stage(**{**d, "services": None if d.get("services") is None else tuple(d["services"])})
              for d in data["stages"]]
    return stages, data["elapsed_s"]


def saved_meters(work: Path) -> int | None:
    """The meters of the day whose stages are saved under ``work`` (None: none saved, or saved without them)."""
    path = work / STAGES_FILE
    return json.loads(path.read_text()).get("meters") if path.exists() else None


def _save(work: Path, stages: list[Stage], elapsed: float, meters: int | None = None) -> None:
    rows = [{k: v for k, v in asdict(s).items() if k not in ("answer", "started")} for s in stages]
    tmp = work / (STAGES_FILE + ".tmp")
    tmp.write_text(json.dumps({"meters": meters, "stages": rows, "elapsed_s": elapsed}, indent=2))
    tmp.replace(work / STAGES_FILE)


def day_stages(work: Path, env: dict, meters: int, done: list[Stage] | None = None,
               clock: Callable[[], float] = time.perf_counter) -> list[Stage]:
    """Run the day; its stages in order (store and mirror concurrently). ``done``: stages an earlier run of
    this day finished (:func:`saved_stages`), not run again; ``clock``: the day's seconds so far (saved with
    each stage)."""
    landing = work / "landing"
    stages = list(done or [])

    def keep(*new: Stage) -> None:
        stages.extend(new)
        _save(work, stages, clock(), meters)

    def have(name: str) -> bool:
        return any(s.name == name for s in stages)
    logs = work / "logs"  # each command's --json answer and its log

    def _run(name: str, args: list[str], reads) -> Stage:
        return _finish(name, *_start(args, env, logs), reads)

    def _consume(name: str, args: list[str], ingest: subprocess.Popen) -> Stage:
        """``args --until-caught-up`` run after run while ``ingest`` publishes, as production's always-on
        consumers would drain the topic; the run started after ingest ended drains the rest. One stage: from
        the first run's start to the last one's end."""
        runs: list[Stage] = []
        while True:
            last = ingest.poll() is not None
            runs.append(_finish(name, *_start([*args, "--until-caught-up"], env, logs, f"-{len(runs) + 1}"), 0))
            if last:
                break
            time.sleep(CONSUMER_PAUSE_S)
        end = runs[-1].started + runs[-1].seconds
        return Stage(name, end - runs[0].started, 0, max(r.peak_rss_mb for r in runs), sum(r.cpu_s for r in runs),
                     started=runs[0].started, answer={"runs": [r.answer for r in runs]},
                     services=(runs[0].services[0], runs[-1].services[1]))

    if not have("generate"):
        keep(_run("generate", ["generate", "--meters", str(meters), "--days", "1", "--start", DAY.isoformat(),
                               "--out", str(landing), "--no-defects", "--lcl-meters", "0", "--device-meters", "0",
                               "--meters-per-file", str(min(meters, METERS_PER_FILE))], 0))
    if not have("mirror"):
        files = sorted(str(p) for p in landing.rglob("*") if p.suffix in {".csv", ".uff"} and p.parent != landing)
        # ingest publishes while the store and the mirror consume (production's shape): three stages at once
        ingest = _start(["ingest", *files], env, logs)
        with ThreadPoolExecutor(2) as pool:
            consumers = [pool.submit(_consume, name, [name, "run"], ingest[0]) for name in ("store", "mirror")]
            published = _finish("ingest", *ingest, lambda a: sum(f["reads"] for f in a["files"]))
            streamed = [published, *(c.result() for c in consumers)]
        for s in [*stages, *streamed]:  # generate's reads are the files' reads: what ingest found in them
            s.reads = s.reads or published.reads
        keep(*streamed)
    if not have("reference"):
        # the day's reference data (registry, market domain data, tariffs, accounts): one row, four commands
        loads = [_run(f"reference ({args[0]})", args, 0)
                 for args in (["registry", "load", str(landing / "registry.csv")], ["mdd", "load", str(TINY_MDD)],
                              ["tariffs", "load", str(landing / "tariffs.toml")],
                              ["accounts", "load", str(landing / "accounts.csv")])]
        keep(Stage("reference", sum(s.seconds for s in loads), 0, max(s.peak_rss_mb for s in loads),
                   sum(s.cpu_s for s in loads), started=loads[0].started, answer={s.name: s.answer for s in loads},
                   services=(loads[0].services[0], loads[-1].services[1])))
    n = next(s.reads for s in stages if s.name == "ingest")
    end = (DAY + timedelta(days=1)).isoformat()
    for name, args in (("clean", ["job", "clean", "--date", DAY.isoformat()]),
                       ("settle", ["job", "settle", "--date", DAY.isoformat(), "--run", "SF"]),
                       ("bill", ["job", "bill", "--from", DAY.isoformat(), "--to", end, "--summary"]),
                       ("dbt", ["models", "build", "--select", "+fct_daily_consumption"])):
        if not have(name):
            keep(_run(name, args, n))
    return stages


# ------------------------------------------------------------------------------------------------- floors


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _csv_floors(landing: Path, work: Path) -> tuple[float, float]:
    """(seconds pyarrow takes to parse the hh-csv files, to write the same rows back as CSV)."""
    import pyarrow.csv as pcsv

    parse = write = 0.0
    out = work / "floor.csv"
    for path in sorted((landing / "hh").glob("*.csv")):
        start = time.perf_counter()
        table = pcsv.read_csv(path)
        parse += time.perf_counter() - start
        write += _timed(lambda t=table: pcsv.write_csv(t, out))
    out.unlink(missing_ok=True)
    return parse, write


def _kafka_floors(settings: config.Settings, sample_bytes: int) -> tuple[float, float, list]:
    """(seconds a bare consumer takes to fetch every message of the reads topic, reads/s of a bare producer
    sending a sample of the same message bytes, the sample's set tables)."""
    from benchmarks import bench_ingest, bench_mirror
    from meterlake import schema

    topic = settings.kafka.reads_topic
    messages = bench_ingest.topic_messages(settings, topic, limit_bytes=sample_bytes)
    tables = [schema.from_ipc_bytes(m.value) for m in messages]
    sets = [t for t in tables if schema.schema_name(t.schema) == "set"]
    reads = sum(sum(v is not None for v in values) for t in sets for values in t.column("values").to_pylist())
    produce = bench_ingest.plain_producer_seconds(settings, topic + "-plain",
                                                  [(m.key, m.value, m.partition) for m in messages])
    return bench_mirror.bare_consume(settings), reads / produce, sets


def floors(stages: dict[str, Stage], settings: config.Settings, work: Path) -> None:
    """Measure each stage's floor on the day's data (see the module docstring); fills ``floor_s``."""
    import pyarrow as pa

    from benchmarks import bench_bill, bench_dbt, bench_ingest, bench_mirror, bench_settle
    from meterlake.lake.files import open_lake

    n = stages["ingest"].reads
    parse, write = _csv_floors(work / "landing", work)
    stages["generate"].floor_s, stages["generate"].floor = write, "pyarrow.csv write"
    consume, produce_rate, sets = _kafka_floors(settings, 256 << 20)
    stages["ingest"].floor_s, stages["ingest"].floor = parse + n / produce_rate, "pyarrow.csv + bare producer"
    sample = pa.concat_tables(sets) if sets else None
    sample_reads = sum(sum(v is not None for v in values) for t in sets for values in t.column("values").to_pylist())
    store_rate = bench_ingest.plain_set_rows_rate(settings, sets, limit=200_000)
    stages["store"].floor_s, stages["store"].floor = n / store_rate, "driver concurrent inserts"
    plain = work / "plain"
    plain.mkdir(exist_ok=True)
    write_rate = sample_reads / bench_mirror.pyarrow_write(sample, plain) if sample is not None else float("inf")
    shutil.rmtree(plain, ignore_errors=True)
    stages["mirror"].floor_s, stages["mirror"].floor = consume + n / write_rate, "bare consumer + pyarrow write"

    lake = open_lake(settings)
    files = ", ".join(f"'{f.path}'" for f in lake.live_files(DAY))
    clean_sql = f"""
        COPY (SELECT * FROM read_parquet([{files}], hive_partitioning = false)
              QUALIFY row_number() OVER (PARTITION BY meter_point, meter_serial, register_id, read_kind,
                                         interval_start_utc, device_id, unit
                                         ORDER BY source_version DESC, kafka_topic, kafka_partition, kafka_offset) = 1)
        TO '{work / 'floor-clean.parquet'}' (FORMAT parquet, COMPRESSION zstd)"""
    con = duckdb_floor()
    try:
        stages["clean"].floor_s = _timed(lambda: con.execute(clean_sql))
    finally:
        con.close()
    stages["clean"].floor = "DuckDB live versions to Parquet"
    stages["settle"].floor_s = _timed(lambda: bench_settle.duckdb_aggregate(settings, DAY))
    stages["settle"].floor = "DuckDB settlement aggregate"
    end = DAY + timedelta(days=1)
    refs = bench_bill.references(settings, DAY, end)
    stages["bill"].floor_s = _timed(lambda: bench_bill.duckdb_aggregate(settings, DAY, end, refs))
    stages["bill"].floor = "DuckDB bill aggregate"
    con = duckdb_floor(str(work / "floor.duckdb"))
    try:
        stages["dbt"].floor_s = _timed(lambda: con.execute(bench_dbt.HAND_WRITTEN.format(lake=lake.path(""))))
    finally:
        con.close()
    stages["dbt"].floor = "DuckDB hand-written mart"


# ------------------------------------------------------------------------------------------------- report


def table(result: dict) -> str:
    """The day's figures as a Markdown table (what the README keeps)."""
    rows = ["| stage | wall s | reads/s | peak RSS MB | CPU s | services CPU s | floor | floor s | ratio |",
            "|---|---:|---:|---:|---:|---:|---|---:|---:|"]
    for s in result["stages"]:
        rate = f"{s['reads'] / s['seconds']:,.0f}" if s["reads"] else ""
        floor_s = "" if s["floor_s"] is None else f"{s['floor_s']:.1f}"
        ratio = "" if s["ratio"] is None else f"{s['ratio']:.2f}x"
        services = "" if s.get("services_cpu_s") is None else f"{s['services_cpu_s']:.1f}"
        cpu = "" if s["cpu_s"] is None else f"{s['cpu_s']:.1f}"
        rows.append(f"| {s['name']} | {s['seconds']:.1f} | {rate} | {s['peak_rss_mb']:,.0f} | {cpu} | "
                    f"{services} | "
                    f"{s['floor']} | {floor_s} | {ratio} |")
    rows.append(f"| **sum of stages** | {result['sum_of_stages_s']:.1f} | | | | | | | |")
    rows.append(f"| **the day (wall)** | {result['day_wall_s']:.1f} | {result['reads'] / result['day_wall_s']:,.0f} "
                f"| | | | goal {GOALS['day']} | | |")
    settle = next(s for s in result["stages"] if s["name"] == "settle")
    if settle["ratio"] is not None:
        rows.append(f"\nsettle job / DuckDB settlement aggregate: {settle['ratio']:.2f}x (goal {GOALS['settle']})")
    return "\n".join(rows)


@contextmanager
def stopped_on_signals(teardown: Callable[[], None]):
    """Run the block, then ``teardown``, also when SIGTERM or SIGINT ends the block (the signal raises
    SystemExit in it); the stages' processes still running are terminated first. Signals arriving during the
    teardown are ignored: a second Ctrl-C must not leave a half-stopped stack."""
    def stop(signum, frame):
        raise SystemExit(128 + signum)

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig in previous:
            signal.signal(sig, signal.SIG_IGN)
        try:
            for child in list(_RUNNING):
                child.terminate()
            for child in list(_RUNNING):
                try:
                    child.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    child.kill()
                _RUNNING.discard(child)
            teardown()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


def run(report: Report, scale: str, meters: int | None = None, resume: bool = False) -> dict:
    """The day at ``meters``; ``resume``: go on with the day left in the state directory by a run that stopped
    (its finished stages are kept; the stack restarts on its data), else a fresh day."""
    from infra.local import stack
    from infra.local.discover import discover

    state = Path(os.environ.get("METERLAKE_BENCH_STATE_DIR", ROOT / "build" / "bench-day"))
    offset = int(os.environ.get("METERLAKE_BENCH_PORT_OFFSET", "2000"))
    work = state / "work"
    done, elapsed = saved_stages(work) if resume else ([], 0.0)
    if resume and not done:
        raise SystemExit(f"nothing to resume: no finished stage saved in {work / STAGES_FILE}")
    saved = saved_meters(work) if resume else None
    if saved is not None and meters not in (None, saved):
        raise SystemExit(f"the day saved in {work / STAGES_FILE} is of {saved:,} meters, not {meters:,}: resume "
                         "it without --meters, or start a fresh day")
    meters = saved or meters or SCALES[scale]
    if not resume:
        shutil.rmtree(state, ignore_errors=True)  # a fresh stack: topics, keyspace and lake of this day only
        work.mkdir(parents=True)
        _settings_file(work, state / "stack", offset, meters)
    path = work / "meterlake.toml"
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("METERLAKE_")},
           "METERLAKE_CONFIG": str(path), "DO_NOT_TRACK": "1"}
    settings = config.load(path)
    with stopped_on_signals(lambda: stack.down(settings)):  # a killed benchmark leaves no stack behind
        up = _timed(lambda: stack.up(settings))
        settings = discover(stack.remembered(settings))
        _watch_services(state / "stack")
        print(f"  stack up in {up:.0f} s; the day of {meters:,} meters ...", flush=True)
        started = time.perf_counter()
        stages = day_stages(work, env, meters, done, lambda: elapsed + time.perf_counter() - started)
        wall = elapsed + time.perf_counter() - started
        by_name = {s.name: s for s in stages}
        print("  floors ...", flush=True)
        floors(by_name, settings, work)
    result = {
        "run_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"), "meters": meters, "reads": by_name["ingest"].reads,
        "settlement_date": DAY.isoformat(),
        "machine": {"cores": os.cpu_count(), "memory_gb": round(psutil.virtual_memory().total / 2**30),
                    "load_average_1m": round(os.getloadavg()[0], 1), "python": sys.version.split()[0]},
        "stages": [{**{k: v for k, v in asdict(s).items() if k not in ("answer", "started", "services")},
                    "services_cpu_s": None if s.services_cpu_s is None else round(s.services_cpu_s, 1),
                    "ratio": s.ratio} for s in stages],
        "resumed": resume,
        "sum_of_stages_s": sum(s.seconds for s in stages), "day_wall_s": wall, "goals": GOALS,
    }
    for s in stages:
        report.figure(f"{s.name} (wall)", s.seconds, "s", reads=s.reads, peak_rss_mb=round(s.peak_rss_mb))
        if s.floor_s:
            report.ratio(f"{s.name} / {s.floor}", s.seconds, s.floor_s,
                         goal=GOALS.get(s.name, ""))
    report.figure("the day (wall)", wall, "s", reads=result["reads"], goal=GOALS["day"])
    report.figure("sum of stages", result["sum_of_stages_s"], "s")
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"{date.today().isoformat()}-day.json"
    out.write_text(json.dumps(result, indent=2))
    print(table(result))
    print(f"  day figures written to {out}")
    return result
