"""The long-running services' Prometheus endpoints (streaming/metrics.py), scraped while a small portfolio flows
through ingest watch, the store and the mirror on the real Kafka and Cassandra."""
from __future__ import annotations

import shutil
import socket
import threading
import time
from datetime import datetime

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from meterlake import generate
from streaming.ingest.watch import Worker
from streaming.mirror import consumer as mirror
from streaming.store import consumer as store
from tests.streaming.stackhelp import isolated

pytestmark = [pytest.mark.stack, pytest.mark.slow]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def scrape(port: int) -> dict[tuple, float]:
    """``{(sample name, frozenset of labels): value}`` of one scrape."""
    text = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def value(samples: dict, name: str, **labels) -> float:
    """The sum of the samples ``name`` whose labels include ``labels`` (0 when there are none)."""
    return sum(v for (n, ls), v in samples.items() if n == name and set(labels.items()) <= ls)


def test_the_services_metrics_move_while_a_portfolio_flows(kafka_stack, cassandra_stack, tmp_path):
    ports = {service: _free_port() for service in ("ingest", "store", "mirror")}
    settings = isolated(cassandra_stack, "metrics")
    settings = settings.model_copy(update={
        "metrics": settings.metrics.model_copy(update={f"{s}_port": p for s, p in ports.items()}
                                               | {"lag_interval_s": 0.5}),
        "mirror": settings.mirror.model_copy(update={"idle_flush_s": 1.0})})
    manifest = generate.generate(generate.Options(meters=6, days=2, start=generate.date(2024, 10, 25), seed=5),
                                 tmp_path / "gen")
    landing = tmp_path / "landing"
    landing.mkdir()
    for f in manifest["files"]:
        shutil.copy(tmp_path / "gen" / f["path"], landing)
    # GIVEN the store and the mirror running, each serving its endpoint
    stop = threading.Event()
    threads = [threading.Thread(target=run, kwargs={"stop": stop}, args=(settings,), daemon=True)
               for run in (store.run, mirror.run)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 120
    while True:
        try:
            before = {s: scrape(p) for s, p in ports.items() if s != "ingest"}
            break
        except requests.ConnectionError:
            assert time.monotonic() < deadline, "the endpoints never came up"
            time.sleep(0.5)
    try:
        # WHEN an ingest worker takes the landed files
        with Worker(settings, str(landing), "w1", now=datetime.fromisoformat(manifest["valid_as_of"])) as worker:
            worker.run(once=True)
        ingest = scrape(ports["ingest"])
        published = sum(f["reads"] for f in worker.result.files)
        # THEN ingest counts the files by outcome, the reads it published and the quarantined lines by reason
        assert value(ingest, "meterlake_files_total", service="ingest", outcome="rejected") >= 1
        assert value(ingest, "meterlake_files_total", service="ingest", outcome="accepted") >= 1
        assert value(ingest, "meterlake_reads_total", service="ingest") >= published > 0
        reasons = {dict(ls)["reason"] for (n, ls), v in ingest.items()
                   if n == "meterlake_quarantined_total" and dict(ls)["service"] == "ingest" and v}
        assert {d["reason"] for d in manifest["defects"] if d["expect"] == "quarantine"} <= reasons
        assert value(ingest, "meterlake_batch_seconds_count", service="ingest") >= 1
        # and the store and the mirror move: reads, batches, last success, lag per partition back to 0
        deadline = time.monotonic() + 180
        while True:
            now = {s: scrape(p) for s, p in ports.items() if s != "ingest"}
            moved = {s: value(now[s], "meterlake_reads_total", service=s)
                     - value(before[s], "meterlake_reads_total", service=s) for s in now}
            lags = {s: [v for (n, ls), v in now[s].items() if n == "meterlake_consumer_lag"
                        and dict(ls)["service"] == s and dict(ls)["topic"] == settings.kafka.reads_topic]
                    for s in now}
            if all(moved.values()) and all(lags[s] and not any(lags[s]) for s in now) \
                    and moved["mirror"] >= published:
                break
            assert time.monotonic() < deadline, (moved, lags)
            time.sleep(1)
        for s in ("store", "mirror"):
            assert len(lags[s]) == settings.kafka.partitions  # one gauge per partition of the reads topic
            assert value(now[s], "meterlake_batch_seconds_count", service=s) > value(
                before[s], "meterlake_batch_seconds_count", service=s)
            assert value(now[s], "meterlake_last_success_timestamp_seconds", service=s) > time.time() - 300
            assert ("meterlake_watchdog_rejoins_total", frozenset({("service", s)})) in now[s]
        assert value(now["mirror"], "meterlake_files_total", service="mirror", outcome="written") > 0
        for name in ("meterlake_cassandra_write_retries_total", "meterlake_cassandra_write_timeouts_total"):
            assert (name, frozenset({("service", "store")})) in now["store"]
        # the store wrote the quarantined lines it read from the quarantine topic, by reason
        assert value(now["store"], "meterlake_quarantined_total", service="store") > value(
            before["store"], "meterlake_quarantined_total", service="store")
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=120)
