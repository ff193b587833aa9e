"""The fault sweep (issue 17): the pipeline under faults, one line per scenario, nothing lost or duplicated.

- ``fuzzed files``: malformed files made from a valid one (cut short, binary, a huge line, Latin-1 bytes, mixed
  line endings, a repeated header, lines shuffled or duplicated, bytes flipped) through ingest's checking: each is
  rejected or has its bad lines quarantined, with a reason; none crashes it; memory stays bounded.
- ``mirror killed -9``: a portfolio's reads on Kafka, ``meterlake mirror run --until-caught-up`` killed (SIGKILL)
  at random instants, then run to the end: the lake's live reads against the reads published, lost and
  duplicated (rows of live files sharing a read's key and version).
- ``broker killed -9 mid-mirror``: the same, with the broker killed under the mirror and started again.

The pipeline scenarios take a portfolio from ``meterlake generate`` (no defects; 48-period days) through the CLI
(``ingest``, ``store run``, ``mirror run``) on topics, a keyspace and a lake of their own, and compare Cassandra
(the reads its sets hold) and the lake's live files with the reads of the generated files:

- ``broker killed -9 mid-ingest``: under ``ingest watch --once``, each time a file further on, then passes until
  the landing directory is empty; also files left, archived other than once, or quarantined;
- ``cassandra node killed -9 under store run``: a ring of 3 at RF 3 / QUORUM of its own (state dir ``<sweep
  state>-ring``, ports +500), the node started again while the store runs; the store must exit 0;
- ``disk full under the mirror``: the lake on a tmpfs mounted in a user and mount namespace (``unshare -rm``, no
  root), a filler leaving room for about half the files: a run with a deadline must stop with an error naming the
  failure and leave nothing half written; a run started on the full disk must finish once the filler is deleted.
  Skipped, saying why, where user namespaces are not allowed;
- ``1.67M-read catch-up``: issue 17's hang reproduction, ``ingest`` of the 100 LCL households of
  ../shared/realdata (a generated portfolio of the same size without it) then ``mirror run --until-caught-up``,
  METERLAKE_SWEEP_CATCH_UP_RUNS times (full scale 5, small 0), each on fresh topics: how many finished.

Starts its own single-broker Kafka (and Cassandra) for all but the first, as bench_mirror does
(METERLAKE_BENCH_STATE_DIR, METERLAKE_BENCH_PORT_OFFSET), and stops it at the end. Scale: small 100 files and 3
kills and 1 broker restart over 50k reads, 24,000 reads through the pipeline; full 1,000 files, 20 kills and 3
broker restarts over 240k reads (the issue's sizes), 240,000 reads through the pipeline.
"""
from __future__ import annotations

import os
import random
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

from benchmarks.harness import Report

ROOT = Path(__file__).resolve().parents[1]
NOW = datetime(2025, 1, 1, tzinfo=UTC)
HEADER = "meter_point,meter_serial,register_id,read_kind,interval_start_utc,value,unit,quality,created_utc"


def _valid_lines(rows: int) -> list[str]:
    from meterlake import ids

    out = []
    for i in range(rows):
        day, period = divmod(i, 48)
        out.append(f"{ids.make_mpan_core(10, i % 7)},E1,S,interval,2024-01-{1 + day % 28:02d}T"
                   f"{period // 2:02d}:{30 * (period % 2):02d}:00Z,0.{i % 1000:03d},kWh,actual,2024-02-01T00:00:00Z")
    return out


def fuzzed(rng: random.Random, lines: list[str]) -> bytes:
    """One malformed file made from a valid header and ``lines``, by one or two random mutations."""
    body = [HEADER, *lines]
    cut = False
    for _ in range(rng.choice((1, 2))):
        kind = rng.randrange(9) if len(body) > 1 else rng.choice((1, 6))
        if kind == 0:  # cut short, mid-line
            text = "\n".join(body)
            body, cut = [text[: rng.randrange(1, len(text))]], True
        elif kind == 1:  # binary garbage in place of a line
            body[rng.randrange(len(body))] = bytes(rng.randrange(256) for _ in range(80)).decode("latin-1")
        elif kind == 2:  # a huge line
            body.insert(rng.randrange(1, len(body) + 1), "9" * rng.choice((10_000, 1_000_000)))
        elif kind == 3:  # a repeated header
            body.insert(rng.randrange(1, len(body) + 1), HEADER)
        elif kind == 4:  # a field dropped or added
            at = rng.randrange(1, len(body))
            body[at] = body[at].rsplit(",", 1)[0] if rng.random() < 0.5 else body[at] + ",extra"
        elif kind == 5:  # lines duplicated with another value
            at = rng.randrange(1, len(body))
            body.insert(at, body[at].replace(",0.", ",9."))
        elif kind == 6:  # a flipped character
            at = rng.randrange(len(body))
            if body[at]:
                c = rng.randrange(len(body[at]))
                body[at] = body[at][:c] + rng.choice("x,;\"\t-:Z") + body[at][c + 1:]
        elif kind == 7:  # shuffled
            rng.shuffle(body)
        else:  # no header
            body = body[1:]
    ending = rng.choice(("\n", "\r\n", "mixed"))
    if ending == "mixed":
        text = "".join(line + rng.choice(("\n", "\r\n")) for line in body)
    else:
        text = ending.join(body) + ending
    if cut:  # no line end after the cut
        text = text.rstrip("\r\n")
    data = text.encode("latin-1" if rng.random() < 0.1 else "utf-8", errors="replace")
    return data.replace(b"\xef\xbf\xbd", b"\xe9")  # a Latin-1 byte where a character was unencodable


def fuzz(count: int, seed: int = 17) -> dict:
    """Check ``count`` fuzzed files with ingest's own checking; the outcome of each."""
    from streaming.ingest import ingest_file

    rng = random.Random(seed)
    lines = _valid_lines(96)
    outcomes: Counter = Counter()
    reasons: Counter = Counter()
    crashes = []
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with tempfile.TemporaryDirectory(prefix="bench-fuzz-") as tmp:
        for n in range(count):
            path = Path(tmp) / f"fuzz_{n:04d}.csv"
            path.write_bytes(fuzzed(rng, lines))
            try:
                result = ingest_file(path, "hh-csv", now=NOW)
            except Exception as exc:  # noqa: BLE001 (what the sweep counts: any crash)
                crashes.append(f"{path.name}: {type(exc).__name__}: {exc}")
                continue
            outcomes[result.status if not (result.status == "accepted" and result.quarantined)
                     else "accepted, lines quarantined"] += 1
            reasons.update(result.reasons)
            path.unlink()
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    return {"files": count, "outcomes": dict(outcomes), "reasons": dict(reasons), "crashes": crashes,
            "peak_rss_growth_mb": round(grown_mb, 1)}


# ------------------------------------------------------------------------------------------ mirror kills


def _settings(lake: Path):
    """bench_mirror's settings (its own stack, topics of their own), files rotated every 20k reads: a kill meets
    files half written and offsets not yet committed."""
    from benchmarks.bench_mirror import _settings as mirror_settings

    settings = mirror_settings(lake)
    return settings.model_copy(update={"mirror": settings.mirror.model_copy(update={"max_file_rows": 20_000})})


def _env(settings) -> dict[str, str]:
    k = settings.kafka
    return {**os.environ, "METERLAKE_PATHS__STATE_DIR": str(settings.state_dir),
            "METERLAKE_PATHS__LAKE": settings.lake_url,
            "METERLAKE_STACK__PORT_OFFSET": str(settings.stack.port_offset),
            "METERLAKE_KAFKA__READS_TOPIC": k.reads_topic, "METERLAKE_KAFKA__FILES_TOPIC": k.files_topic,
            "METERLAKE_KAFKA__DEVICES_TOPIC": k.devices_topic, "METERLAKE_KAFKA__QUARANTINE_TOPIC": k.quarantine_topic,
            "METERLAKE_KAFKA__PARTITIONS": str(k.partitions), "METERLAKE_MIRROR__GROUP_ID": settings.mirror.group_id,
            "METERLAKE_MIRROR__MAX_FILE_ROWS": str(settings.mirror.max_file_rows),
            "METERLAKE_MIRROR__IDLE_FLUSH_S": str(settings.mirror.idle_flush_s)}


def _mirror(settings, log: Path) -> subprocess.Popen:
    with open(log, "a") as err:  # a file, not a pipe: a mirror waiting out a dead broker logs a lot
        return subprocess.Popen([str(Path(sys.executable).with_name("meterlake")), "mirror", "run",
                                 "--until-caught-up", "--deadline", "600", "--json"], env=_env(settings),
                                stdout=subprocess.DEVNULL, stderr=err)


def lake_counts(settings) -> tuple[int, int]:
    """(reads in the lake's live files, rows of them repeating a read's key and version): lost and duplicated are
    measured against what was published."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from meterlake.lake.files import open_lake

    lake = open_lake(settings)
    key = ["meter_point", "settlement_date", "settlement_period", "source_version"]
    tables = [pq.read_table(f.path, filesystem=lake.fs, columns=key)
              for day in lake.dates() for f in lake.live_files(day)]
    if not tables:
        return 0, 0
    rows = pa.concat_tables(tables)
    return rows.num_rows, rows.num_rows - rows.group_by(key).aggregate([]).num_rows


def kill_the_mirror(settings, proc: subprocess.Popen, rng: random.Random) -> bool:
    """SIGKILL the mirror at a random instant (False: it finished first)."""
    try:
        proc.wait(timeout=rng.uniform(1.0, 8.0))
        return False
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        return True


def restart_the_broker(settings, proc: subprocess.Popen, rng: random.Random) -> bool:
    """SIGKILL the broker under the mirror at a random instant and start it again (False: the mirror finished
    first); the mirror rides it out or stops with its error, and the next run goes on."""
    from infra.local import stack

    try:
        proc.wait(timeout=rng.uniform(1.0, 6.0))
        return False
    except subprocess.TimeoutExpired:
        stack.kill(settings, "kafka-1")
        time.sleep(2)
        stack.start(settings, "kafka-1")
        proc.wait(timeout=900)
        return True


def mirror_faults(settings, reads: int, faults: int, inject, seed: int = 5) -> dict:
    """Publish ``reads``, run the mirror ``faults`` times with ``inject`` (one of the two above), then to the
    end; what the lake's live files hold against what was published."""
    from kafka import KafkaProducer

    from benchmarks.bench_mirror import _sets
    from meterlake import clients
    from streaming import kafka_io

    rng = random.Random(seed)
    clients.ensure_topics(settings)
    sets = _sets(reads, meters_per_day=500, seed=seed)
    producer = KafkaProducer(**clients.kafka_options(settings), acks="all", enable_idempotence=True,
                             max_request_size=16 << 20)
    published = kafka_io.publish_reads(producer, settings.kafka.reads_topic, sets, settings.kafka.partitions,
                                       target_bytes=64 << 10)
    producer.close()
    expected = int(sum(sets.column("periods").to_pylist()))
    log = Path(settings.lake_url).with_suffix(".mirror.log")
    injected = sum(inject(settings, _mirror(settings, log), rng) for _ in range(faults))
    started = time.monotonic()
    proc = _mirror(settings, log)
    if proc.wait(timeout=900) != 0:
        raise RuntimeError(f"the mirror's last run failed: {log.read_text()[-2000:]}")
    recovered_s = time.monotonic() - started
    stored, duplicated = lake_counts(settings)
    return {"reads": expected, "messages": published.messages, "faults": injected, "in_lake": stored,
            "lost": expected - (stored - duplicated), "duplicated": duplicated, "recover_s": round(recovered_s, 1)}


# ------------------------------------------------------------- a generated portfolio through the public CLI

START = "2024-06-03"  # ordinary 48-period days: the portfolio's reads are meters x days x 48
DAYS = 5


def _cli(*args: str, env: dict, timeout: float = 1800, prefix: tuple[str, ...] = ()) -> tuple[int, dict, str]:
    """Run ``meterlake ARGS --json`` (under ``prefix``: nsenter): its exit code, its one JSON object, its log."""
    import json

    exe = str(Path(sys.executable).with_name("meterlake"))
    proc = subprocess.run([*prefix, exe, *args, "--json"], env=env, capture_output=True, text=True,
                          timeout=timeout)
    try:
        return proc.returncode, json.loads(proc.stdout), proc.stderr
    except ValueError:
        return proc.returncode, {"error": {"type": "no json", "message": proc.stdout[-2000:]}}, proc.stderr


def _popen(*args: str, env: dict, log: Path, prefix: tuple[str, ...] = ()) -> subprocess.Popen:
    """``meterlake ARGS --json`` started: its JSON object to ``log`` + ``.json``, its log to ``log`` (a file, not
    a pipe: a process waiting out a dead service logs a lot)."""
    exe = str(Path(sys.executable).with_name("meterlake"))
    with open(log, "a") as err, open(f"{log}.json", "w") as out:
        return subprocess.Popen([*prefix, exe, *args, "--json"], env=env, stdout=out, stderr=err)


def _answer(log: Path) -> dict:
    import json

    try:
        return json.loads(Path(f"{log}.json").read_text())
    except ValueError:
        return {}


def portfolio(out: Path, meters: int, per_file: int) -> dict:
    """``meterlake generate``: ``meters`` electricity meters over DAYS ordinary days, no defects, no gas, LCL or
    device meters; the hh-csv files its manifest lists and the interval reads they hold."""
    import json

    import pyarrow.csv as pacsv

    code, answer, _ = _cli("generate", "--meters", str(meters), "--days", str(DAYS), "--start", START, "--seed", "17",
                        "--meters-per-file", str(per_file), "--gas-share", "0", "--lcl-meters", "0",
                        "--device-meters", "0", "--no-defects", "--out", str(out), env=dict(os.environ))
    if code != 0:
        raise RuntimeError(f"meterlake generate failed: {answer}")
    manifest = json.loads((out / "manifest.json").read_text())
    files = [out / f["path"] for f in manifest["files"] if f["format"] == "hh-csv"]
    reads = 0
    for path in files:
        kinds = pacsv.read_csv(path, convert_options=pacsv.ConvertOptions(include_columns=["read_kind"]))
        reads += kinds.column("read_kind").to_pylist().count("interval")
    return {"files": files, "reads": reads, "root": out}


def _pipeline_settings(state: Path, offset: int, lake: Path, **stack_options):
    """Settings of a Kafka + Cassandra stack of the sweep's own (``stack_options``: its size, RF and CL)."""
    from meterlake import config

    base = config.load(None)
    cassandra = {k: stack_options.pop(k) for k in ("replication_factor", "write_consistency", "read_consistency")
                 if k in stack_options}
    tag = uuid.uuid4().hex[:8]
    return base.model_copy(update={
        "paths": base.paths.model_copy(update={"state_dir": state, "lake": str(lake)}),
        "stack": base.stack.model_copy(update={"port_offset": offset, "services": ["kafka", "cassandra"],
                                               "kafka_brokers": 1, **stack_options}),
        "kafka": base.kafka.model_copy(update={"reads_topic": f"sweep-reads-{tag}",
                                               "devices_topic": f"sweep-devices-{tag}",
                                               "files_topic": f"sweep-files-{tag}",
                                               "quarantine_topic": f"sweep-quarantine-{tag}", "partitions": 3}),
        "cassandra": base.cassandra.model_copy(update={"keyspace": f"sweep_{tag}", **cassandra}),
        "mirror": base.mirror.model_copy(update={"group_id": f"sweep-mirror-{tag}", "idle_flush_s": 1.0,
                                                 "max_file_rows": 20_000}),
        "ingest": base.ingest.model_copy(update={"archive_dir": str(lake.with_name(lake.name + "-archive")),
                                                 "lease_s": 10}),
    })


def _fresh(settings, lake: Path):
    """``settings`` with topics, a keyspace, a lake and an archive of their own (a clean state on one stack)."""
    from infra.local import stack
    from infra.local.discover import discover

    c = settings.cassandra
    again = _pipeline_settings(settings.state_dir, settings.stack.port_offset, lake,
                               replication_factor=c.replication_factor, write_consistency=c.write_consistency,
                               read_consistency=c.read_consistency)
    # the same stack, so a node the scenario restarts comes back as it was started (its JMX agent included)
    again = again.model_copy(update={"stack": settings.stack})
    return discover(stack.remembered(again))


def _pipeline_env(settings) -> dict[str, str]:
    c, i = settings.cassandra, settings.ingest
    return {**_env(settings), "METERLAKE_CASSANDRA__KEYSPACE": c.keyspace,
            "METERLAKE_CASSANDRA__REPLICATION_FACTOR": str(c.replication_factor),
            "METERLAKE_CASSANDRA__WRITE_CONSISTENCY": c.write_consistency,
            "METERLAKE_CASSANDRA__READ_CONSISTENCY": c.read_consistency,
            "METERLAKE_INGEST__ARCHIVE_DIR": i.archive_dir, "METERLAKE_INGEST__LEASE_S": str(i.lease_s)}


def cassandra_reads(settings) -> int:
    """Reads the keyspace's hh_sets hold (one cell per period of a set), read at the configured consistency."""
    from meterlake import clients

    session = clients.cassandra_session(settings, consistency=settings.cassandra.read_consistency)
    try:
        # a node killed -9 may come back without a schema change still in its commit log: it answers "keyspace
        # does not exist" until it has the ring's schema again
        session.cluster.control_connection.wait_for_schema_agreement(wait_time=120)
        rows = session.execute(f"SELECT values FROM {settings.cassandra.keyspace}.hh_sets", timeout=120)
        return sum(len(r.values or {}) for r in rows)
    finally:
        session.cluster.shutdown()


def compare(settings, expected: int, lake_root: str | None = None) -> dict:
    """Cassandra and the lake's live files against the generator's reads: lost, duplicated."""
    lake_settings = settings if lake_root is None else settings.model_copy(
        update={"paths": settings.paths.model_copy(update={"lake": lake_root})})
    in_lake, duplicated = lake_counts(lake_settings)
    stored = cassandra_reads(settings)
    return {"reads": expected, "in_cassandra": stored, "in_lake": in_lake, "duplicated": duplicated,
            "lost": max(expected - stored, expected - (in_lake - duplicated)),
            "unexpected": max(0, in_lake - duplicated - expected, stored - expected)}


def _drain(env: dict) -> None:
    """``store run`` and ``mirror run`` to the end of the topics; both must finish."""
    for what in (("store", "run"), ("mirror", "run")):
        code, answer, _ = _cli(*what, "--until-caught-up", "--deadline", "900", env=env)
        if code != 0:
            raise RuntimeError(f"meterlake {' '.join(what)} failed: {answer}")


def _place(pf: dict, landing: Path) -> None:
    landing.mkdir(parents=True, exist_ok=True)
    for path in pf["files"]:
        shutil.copy2(path, landing / path.name)


def _ingested(settings, pf: dict, landing: Path) -> dict:
    """The portfolio's files put in ``landing`` and published by ``meterlake ingest``; the CLI's environment."""
    env = _pipeline_env(settings)
    _place(pf, landing)
    code, answer, _ = _cli("ingest", str(landing), env=env)
    if code != 0:
        raise RuntimeError(f"meterlake ingest failed: {answer}")
    return env


def _misplaced(pf: dict, landing: Path, archive: Path) -> int:
    """Files not where they belong: left in the landing directory, quarantined, or not archived exactly once."""
    archived = Counter(p.name for p in archive.rglob("HH_*.csv")) if archive.exists() else Counter()
    left = [p for p in landing.iterdir() if p.is_file()] if landing.exists() else []
    wrong = len(left) + sum(1 for p in pf["files"] if archived[p.name] != 1)
    quarantined = list(archive.rglob("*.reason.json")) if archive.exists() else []
    return wrong + len(quarantined)


# ------------------------------------------------------------------------------ the broker killed mid-ingest


def _working(proc: subprocess.Popen, landing: Path, rng: random.Random) -> bool:
    """Wait until ``proc`` has taken a first file out of ``landing``, then a random 0-2 s more: True if it is
    still running then (a fault lands mid-ingest, not before it started)."""
    files = sum(1 for _ in landing.iterdir())
    while proc.poll() is None and sum(1 for _ in landing.iterdir()) == files:
        time.sleep(0.05)
    try:
        proc.wait(timeout=rng.uniform(0.0, 2.0))
        return False
    except subprocess.TimeoutExpired:
        return True


def broker_mid_ingest(settings, pf: dict, kills: int, rng: random.Random, work: Path) -> dict:
    """``meterlake ingest watch DIR --once`` with the broker killed -9 under it and started again, ``kills``
    times (each after a further file was done); then passes until the landing directory is empty. Each file is
    published whole or not at all (one transaction per file); a file whose publishing failed is released and
    taken again by the next pass."""
    from infra.local import stack

    env = _pipeline_env(settings)
    landing = work / "landing-ingest"
    _place(pf, landing)
    log = work / "ingest.log"
    injected, failed_runs, released, poisoned = 0, 0, 0, 0
    back = time.monotonic()
    proc = _popen("ingest", "watch", str(landing), "--once", "--worker-id", "sweep", env=env, log=log)
    for _ in range(kills):  # each time a file further on
        if not _working(proc, landing, rng):
            break
        stack.kill(settings, "kafka-1")
        injected += 1
        time.sleep(2)
        stack.start(settings, "kafka-1")
        back = time.monotonic()
    failed_runs += proc.wait(timeout=1800) != 0
    answer = _answer(log)
    released, poisoned = released + answer.get("released", 0), poisoned + answer.get("poisoned", 0)
    passes = 0
    while any(landing.iterdir()) and passes < 10:
        passes += 1
        code, answer, _ = _cli("ingest", "watch", str(landing), "--once", "--worker-id", "sweep", env=env)
        failed_runs += code != 0
        released, poisoned = released + answer.get("released", 0), poisoned + answer.get("poisoned", 0)
    ingested_s = time.monotonic() - back
    _drain(env)
    out = compare(settings, pf["reads"])
    return {**out, "faults": injected, "failed_runs": failed_runs, "passes": passes, "released": released,
            "poisoned": poisoned, "misplaced": _misplaced(pf, landing, Path(settings.ingest.archive_dir)),
            "recover_s": round(ingested_s, 1)}


# --------------------------------------------------------------------- a Cassandra node killed under the store


def _sees_the_ring(settings, node: int, timeout_s: float = 300) -> None:
    """Wait until cassandra-``node`` sees every node of the ring up (UN in ``nodetool status``)."""
    from infra.local import cassandra, stack

    ctx = stack.context(stack.remembered(settings))
    deadline = time.monotonic() + timeout_s
    while True:
        out = cassandra.nodetool(ctx, node, "status")
        if sum(line.startswith("UN ") for line in out.splitlines()) == settings.stack.cassandra_nodes:
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"cassandra-{node} does not see the ring up:\n{out}")
        time.sleep(2)


def node_under_store(settings, pf: dict, rng: random.Random, work: Path) -> dict:
    """``meterlake ingest`` the portfolio, then ``meterlake store run --until-caught-up`` on a 3-node ring at RF 3
    / QUORUM with cassandra-2 killed -9 under it and started again while it runs: the store must finish (no
    write failed), and every read be in Cassandra (read at QUORUM) and, mirrored, in the lake."""
    from infra.local import stack

    env = _ingested(settings, pf, work / "landing-ring")
    log = work / "store.log"
    started = time.monotonic()
    proc = _popen("store", "run", "--until-caught-up", "--deadline", "1800", env=env, log=log)
    injected, down_s, ready_s = 0, 0.0, 0.0
    try:
        proc.wait(timeout=rng.uniform(2.0, 5.0))
    except subprocess.TimeoutExpired:
        stack.kill(settings, "cassandra-2")
        injected = 1
        killed = time.monotonic()
        try:  # down for a while under the store (or until it finished)
            proc.wait(timeout=rng.uniform(10.0, 20.0))
        except subprocess.TimeoutExpired:
            pass
        down_s = time.monotonic() - killed
        stack.start(settings, "cassandra-2")
        _sees_the_ring(settings, 2)
        ready_s = time.monotonic() - killed - down_s
    code = proc.wait(timeout=1800)
    store_s = time.monotonic() - started
    failed_writes = 0 if code == 0 else 1
    if code != 0:
        print(f"    store run failed: {log.read_text()[-1500:]}")
    code, answer, _ = _cli("mirror", "run", "--until-caught-up", "--deadline", "900", env=env)
    if code != 0:
        raise RuntimeError(f"meterlake mirror run failed: {answer}")
    out = compare(settings, pf["reads"])
    return {**out, "faults": injected, "failed_writes": failed_writes, "node_down_s": round(down_s, 1),
            "node_ready_s": round(ready_s, 1), "store_s": round(store_s, 1), "recover_s": round(ready_s, 1)}


# ------------------------------------------------------------------------------------------- the disk full


class SmallDisk:
    """A tmpfs of ``size`` bytes mounted at ``where`` inside a user and mount namespace of its own (``unshare
    -rm``: no root, no loop device): a real filesystem that says ENOSPC. Commands run in it through
    :attr:`prefix` (nsenter); from outside it is seen at :meth:`outside`."""

    def __init__(self, where: Path, size: int):
        self.where, self.size = where, size
        self.holder: subprocess.Popen | None = None

    @staticmethod
    def available() -> str | None:
        """None if a namespace tmpfs can be made here, else why not."""
        if not (shutil.which("unshare") and shutil.which("nsenter")):
            return "unshare/nsenter not installed"
        probe = subprocess.run(["unshare", "-rm", "sh", "-c", "mount -t tmpfs -o size=1m tmpfs /mnt"],
                               capture_output=True, text=True)
        return None if probe.returncode == 0 else f"no user namespace tmpfs here: {probe.stderr.strip()}"

    def __enter__(self) -> SmallDisk:
        self.where.mkdir(parents=True, exist_ok=True)
        self.holder = subprocess.Popen(["unshare", "-rm", "--propagation", "private", "sleep", "infinity"])
        time.sleep(0.2)
        subprocess.run([*self.prefix, "mount", "-t", "tmpfs", "-o", f"size={self.size}", "tmpfs",
                        str(self.where)], check=True)
        return self

    def __exit__(self, *exc) -> None:
        if self.holder is not None:
            self.holder.kill()  # the namespace, and its tmpfs, go with it
            self.holder.wait()

    @property
    def prefix(self) -> tuple[str, ...]:
        return ("nsenter", "-t", str(self.holder.pid), "-U", "-m", "--preserve-credentials")

    def outside(self, path: Path | None = None) -> Path:
        return Path(f"/proc/{self.holder.pid}/root{path or self.where}")

    def fill(self, leave: int) -> Path:
        """A filler file leaving ``leave`` bytes free."""
        filler = self.outside() / "filler"
        free = shutil.disk_usage(self.outside()).free
        with open(filler, "wb") as f:
            f.truncate(0)
            chunk = b"\0" * (1 << 20)
            todo = max(0, free - leave)
            while todo > 0:
                todo -= f.write(chunk[: min(len(chunk), todo)])
        return filler


def half_written(root: Path) -> int:
    """Files under the lake a reader would open (``*.parquet``; temporary names are hidden ``.tmp``) that are not
    whole Parquet files."""
    import pyarrow.parquet as pq

    bad = 0
    for path in root.rglob("*.parquet"):
        try:
            pq.read_metadata(path)
        except Exception:  # noqa: BLE001 (what the sweep counts: any unreadable file)
            bad += 1
    return bad


def disk_full(settings, pf: dict, work: Path, full_deadline_s: float) -> dict:
    """The portfolio ingested; ``meterlake mirror run`` on a lake whose filesystem fills up mid-batch: a run
    with a short deadline must stop with an error, nothing half-written visible; a run started on the full disk
    must wait (pausing its partitions) and finish once space returns (the filler deleted)."""
    env = _ingested(settings, pf, work / "landing-disk")
    lake = work / "small-disk"
    needs = pf["reads"] * 3  # a little under what the lake's files take (zstd Parquet): about 4-6 bytes a read
    with SmallDisk(lake, size=needs + (8 << 20)) as disk:
        filler = disk.fill(leave=needs // 2)
        lake_env = {**env, "METERLAKE_PATHS__LAKE": str(lake / "lake")}
        log = work / "mirror-disk.log"
        first_code, first, first_log = _cli("mirror", "run", "--until-caught-up", "--deadline",
                                            str(full_deadline_s), env=lake_env, prefix=disk.prefix)
        error = (first.get("error") or {}).get("message", "")
        visible_bad = half_written(disk.outside() / "lake")
        proc = _popen("mirror", "run", "--until-caught-up", "--deadline", "900", env=lake_env, log=log,
                      prefix=disk.prefix)
        time.sleep(5)
        filler.unlink()  # space returns
        back = time.monotonic()
        resumed = proc.wait(timeout=900)
        recover_s = time.monotonic() - back
        text = log.read_text()
        enospc = first_log.count("No space left on device") + text.count("No space left on device")
        if resumed != 0:
            raise RuntimeError(f"the mirror did not resume once space returned: {text[-2000:]}")
        code, answer, _ = _cli("store", "run", "--until-caught-up", "--deadline", "900", env=env)
        if code != 0:
            raise RuntimeError(f"meterlake store run failed: {answer}")
        out = compare(settings, pf["reads"], lake_root=str(disk.outside() / "lake"))
    return {**out, "faults": enospc, "first_run_exit": first_code, "first_run_error": error[:500],
            "half_written_visible": visible_bad, "recover_s": round(recover_s, 1)}


# --------------------------------------------------------------------- the 1.67M-read catch-up, run after run

def lcl_households() -> Path | None:
    """../shared/realdata's 100 LCL households (METERLAKE_REALDATA, else beside the checkout or, from a git
    worktree, one level up: the rule of the tests' ``realdata`` fixture), or None."""
    candidates = [Path(os.environ["METERLAKE_REALDATA"])] if os.environ.get("METERLAKE_REALDATA") else []
    candidates += [ROOT.parent / "shared" / "realdata", ROOT.parent.parent / "shared" / "realdata"]
    found = [c / "lcl" / "halfhourly_2013_100_households" for c in candidates]
    return next((c for c in found if c.is_dir()), None)


def catch_up_runs(settings, source: Path, runs: int, work: Path) -> dict:
    """Issue 17's reproduction, ``runs`` times, each on topics, a group and a lake of its own: ``meterlake ingest``
    of ``source`` (100 LCL households, 1,674,718 reads; or a generated portfolio of that size), then ``meterlake
    mirror run --until-caught-up`` with the default file rotation. A run that hangs meets its deadline and
    counts as not finished; every finished run's lake must hold every read accepted, once."""
    from meterlake import config

    default_rows = config.load(None).mirror.max_file_rows
    finished, seconds, worst = 0, [], {"lost": 0, "duplicated": 0}
    reads = 0
    for n in range(runs):
        fresh = _fresh(settings, work / f"lake-catch-up-{n}")
        fresh = fresh.model_copy(update={"mirror": fresh.mirror.model_copy(update={"max_file_rows": default_rows})})
        env = _pipeline_env(fresh)
        code, answer, _ = _cli("ingest", str(source), env=env)
        if code != 0:
            raise RuntimeError(f"meterlake ingest failed: {answer}")
        reads = sum(f["reads"] for f in answer["files"])
        started = time.monotonic()
        code, answer, _ = _cli("mirror", "run", "--until-caught-up", "--deadline", "900", env=env, timeout=1000)
        took = time.monotonic() - started
        print(f"    catch-up run {n + 1}: exit {code} in {took:.0f}s"
              + (f" ({answer.get('error', {}).get('message', '')[:200]})" if code else ""), flush=True)
        if code == 0:
            finished += 1
            seconds.append(took)
            in_lake, duplicated = lake_counts(fresh)
            worst["lost"] = max(worst["lost"], reads - (in_lake - duplicated))
            worst["duplicated"] = max(worst["duplicated"], duplicated)
        shutil.rmtree(work / f"lake-catch-up-{n}", ignore_errors=True)
    return {"runs": runs, "finished": finished, "reads": reads, **worst,
            "slowest_s": round(max(seconds), 1) if seconds else None}


def run(report: Report, scale: str) -> None:
    from infra.local import stack
    from infra.local.discover import discover

    files = 1000 if scale == "full" else 100
    started = time.monotonic()
    fuzzing = fuzz(files)
    report.figure("fuzzed files: crashes", len(fuzzing["crashes"]), "files", files=files,
                  outcomes=fuzzing["outcomes"], seconds=round(time.monotonic() - started, 1))
    for line in fuzzing["crashes"][:10]:
        print(f"    crash: {line}")
    report.figure("fuzzed files: peak memory growth", fuzzing["peak_rss_growth_mb"], "MB",
                  reasons=len(fuzzing["reasons"]))

    reads, scenarios = (240_000, [("mirror killed -9", kill_the_mirror, 20),
                                  ("broker killed -9 mid-mirror", restart_the_broker, 3)]) if scale == "full" else (
        50_000, [("mirror killed -9", kill_the_mirror, 3), ("broker killed -9 mid-mirror", restart_the_broker, 1)])
    work = Path(tempfile.mkdtemp(prefix="bench-faults-"))
    settings = _settings(work / "lake-0")
    try:
        stack.up(settings)
        for n, (name, inject, faults) in enumerate(scenarios):
            fresh = discover(stack.remembered(_settings(work / f"lake-{n}")))  # topics and a lake of its own
            out = mirror_faults(fresh, reads, faults, inject)
            report.figure(f"{name}: reads lost", out["lost"], "reads", faults=out["faults"],
                          expected=out["reads"], in_lake=out["in_lake"], messages=out["messages"])
            report.figure(f"{name}: reads duplicated", out["duplicated"], "reads")
            report.figure(f"{name}: time to recover", out["recover_s"], "s")
        pipeline(report, scale, settings, work)
    finally:
        stack.down(settings)
        shutil.rmtree(work, ignore_errors=True)
    ring(report, scale, settings, work)


SIZES = {"full": {"meters": 1000, "per_file": 100, "kills": 3, "full_deadline_s": 60},  # 240,000 reads, 50 files
         "small": {"meters": 100, "per_file": 20, "kills": 1, "full_deadline_s": 20}}   # 24,000 reads, 25 files


def _lines(report: Report, name: str, out: dict, **context) -> None:
    report.figure(f"{name}: reads lost", out["lost"], "reads", faults=out["faults"], expected=out["reads"],
                  in_cassandra=out["in_cassandra"], in_lake=out["in_lake"], unexpected=out["unexpected"],
                  **context)
    report.figure(f"{name}: reads duplicated", out["duplicated"], "reads")
    report.figure(f"{name}: time to recover", out["recover_s"], "s")


def pipeline(report: Report, scale: str, stack_settings, work: Path) -> None:
    """The broker killed mid-ingest and the disk full under the mirror, on the sweep's stack with Cassandra
    added (claims, the store)."""
    from infra.local import stack

    size = SIZES[scale]
    settings = _pipeline_settings(stack_settings.state_dir, stack_settings.stack.port_offset, work / "lake-p")
    stack.up(settings)
    pf = portfolio(work / "portfolio", size["meters"], size["per_file"])
    out = broker_mid_ingest(_fresh(settings, work / "lake-ingest"), pf, size["kills"], random.Random(7), work)
    _lines(report, "broker killed -9 mid-ingest", out, failed_runs=out["failed_runs"], released=out["released"],
           poisoned=out["poisoned"], passes=out["passes"], misplaced=out["misplaced"])
    why_not = SmallDisk.available()
    if why_not:
        print(f"    disk full: not swept ({why_not})")
    else:
        out = disk_full(_fresh(settings, work / "lake-disk"), pf, work, size["full_deadline_s"])
        _lines(report, "disk full under the mirror", out, first_run_exit=out["first_run_exit"],
               half_written_visible=out["half_written_visible"], first_run_error=repr(out["first_run_error"]))
    runs = int(os.environ.get("METERLAKE_SWEEP_CATCH_UP_RUNS", "5" if scale == "full" else "0"))
    if runs:
        if lcl := lcl_households():
            source, what = lcl, "100 LCL households"
        else:  # the same size generated: 7,000 meters x 5 days x 48
            source, what = portfolio(work / "portfolio-1.67m", 7_000, 1_000)["root"] / "hh", "generated"
        out = catch_up_runs(settings, source, runs, work)
        report.figure("1.67M-read catch-up: runs finished", out["finished"], "runs", of=out["runs"], source=what,
                      reads=out["reads"], lost=out["lost"], duplicated=out["duplicated"],
                      slowest_s=out["slowest_s"])


def ring(report: Report, scale: str, stack_settings, work: Path) -> None:
    """A Cassandra node killed -9 under ``store run`` on a ring of 3 at RF 3 / QUORUM, and started again: a stack
    of its own (state dir ``<sweep state>-ring``, ports +500)."""
    from infra.local import stack

    size = SIZES[scale]
    work.mkdir(parents=True, exist_ok=True)
    settings = _pipeline_settings(Path(f"{stack_settings.state_dir}-ring"), stack_settings.stack.port_offset + 500,
                                  work / "lake-ring", cassandra_nodes=3, replication_factor=3,
                                  write_consistency="QUORUM", read_consistency="QUORUM")
    stack.down(settings)  # a run interrupted before its teardown
    shutil.rmtree(settings.state_dir, ignore_errors=True)
    try:
        stack.up(settings)
        pf = portfolio(work / "portfolio-ring", size["meters"], size["per_file"])
        out = node_under_store(_fresh(settings, work / "lake-ring"), pf, random.Random(11), work)
        _lines(report, "cassandra node killed -9 under store run", out, failed_writes=out["failed_writes"],
               node_down_s=out["node_down_s"], store_s=out["store_s"])
    finally:
        stack.down(settings)
        shutil.rmtree(work, ignore_errors=True)
