"""The fault sweep (issue 17): the pipeline under faults, one line per scenario, nothing lost or duplicated.

- ``fuzzed files``: malformed files made from a valid one (cut short, binary, a huge line, Latin-1 bytes, mixed
  line endings, a repeated header, lines shuffled or duplicated, bytes flipped) through ingest's checking: each is
  rejected or has its bad lines quarantined, with a reason; none crashes it; memory stays bounded.
- ``mirror killed -9``: a portfolio's reads on Kafka, ``meterlake mirror run --until-caught-up`` killed (SIGKILL)
  at random instants, then run to the end: the lake's live reads against the reads published, lost and
  duplicated (rows of live files sharing a read's key and version).
- ``broker killed -9 mid-mirror``: the same, with the broker killed under the mirror and started again.

Starts its own single-broker Kafka for the second, as bench_mirror does (METERLAKE_BENCH_STATE_DIR,
METERLAKE_BENCH_PORT_OFFSET), and stops it at the end. Scale: small 100 files and 3 kills
and 1 broker restart over 50k reads, full 1,000 files, 20 kills and 3 broker restarts over 240k reads (the
issue's sizes).
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
    finally:
        stack.down(settings)
        shutil.rmtree(work, ignore_errors=True)
